//! `utfall import`: check whole files against the log, then append them in
//! batches. If any event is rejected nothing is written.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use utfall_events::rules::Planner;
use utfall_events::wire::{BatchError, Problems, is_blank, latest_allowed_date, parse_batch, parse_line};
use utfall_events::{AppendError, EventLog, Invalid, NewEvent};

use crate::cli::ImportArgs;
use utfall_queries::{Analytics, Limits};

use crate::indicators;
use crate::store::{lake_dir, open_log};

#[derive(Debug, Default)]
pub struct Outcome {
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let log = open_log(&args.store).await?;
    let analytics = Analytics::new(&lake_dir(&args.store), Limits::default());
    let batch_size = args.batch_size.max(1);
    let mut outcome = Outcome::default();
    let mut spooled = Vec::new();
    for file in &args.files {
        let source = Source::open(file, &mut spooled)?;
        let problems = check(log.as_ref(), &analytics, &source, batch_size).await?;
        if problems.total > 0 {
            for problem in &problems.list {
                eprintln!("{}: rejected {problem}", source.name);
            }
            if problems.total > problems.list.len() {
                eprintln!("{}: … and {} more", source.name, problems.total - problems.list.len());
            }
            outcome.rejected += problems.total as u64;
            println!(
                "{}: {} event(s) rejected; nothing of this file was written",
                source.name, problems.total
            );
            continue;
        }
        let (stored, duplicates) = append(log.as_ref(), &source, batch_size).await?;
        println!(
            "{}: {} stored, {} duplicate(s) skipped",
            source.name, stored, duplicates
        );
        outcome.stored += stored;
        outcome.duplicates += duplicates;
    }
    println!(
        "imported: {} stored, {} duplicate(s) skipped, {} rejected",
        outcome.stored, outcome.duplicates, outcome.rejected
    );
    Ok(outcome)
}

/// A file to import. Standard input is spooled to a temporary file, since
/// it is read twice (check, then append).
struct Source {
    name: String,
    path: PathBuf,
}

impl Source {
    fn open(file: &Path, spooled: &mut Vec<tempfile::NamedTempFile>) -> anyhow::Result<Self> {
        if file != Path::new("-") {
            File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
            return Ok(Self {
                name: file.display().to_string(),
                path: file.to_path_buf(),
            });
        }
        let mut spool = tempfile::NamedTempFile::new().context("cannot spool standard input")?;
        std::io::copy(&mut std::io::stdin().lock(), &mut spool).context("cannot read standard input")?;
        let path = spool.path().to_path_buf();
        spooled.push(spool);
        Ok(Self {
            name: "stdin".into(),
            path,
        })
    }

    /// The file's events in batches, parsed on a thread of their own while
    /// the caller checks or stores the batches before them.
    fn parsed(&self, batch_size: usize) -> anyhow::Result<tokio::sync::mpsc::Receiver<anyhow::Result<Batch>>> {
        let batches = self.batches(batch_size)?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            for batch in batches {
                if tx.blocking_send(batch).is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// The file's events in batches, numbered from 0 across the file.
    fn batches(&self, batch_size: usize) -> anyhow::Result<Batches> {
        let mut reader = BufReader::new(File::open(&self.path).with_context(|| format!("cannot read {}", self.name))?);
        let whole = if starts_with_bracket(&mut reader)? {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            Some(parse_batch(&body))
        } else {
            None
        };
        Ok(Batches {
            reader,
            whole,
            batch_size,
            today: latest_allowed_date(),
            index: 0,
            line_no: 0,
            done: false,
        })
    }
}

/// Batches of one file: a JSON array is parsed whole, NDJSON line by line.
struct Batches {
    reader: BufReader<File>,
    whole: Option<Result<Vec<NewEvent>, BatchError>>,
    batch_size: usize,
    today: chrono::NaiveDate,
    index: usize,
    line_no: usize,
    done: bool,
}

type Batch = (usize, Result<Vec<NewEvent>, BatchError>);

impl Batches {
    fn next_array_batch(&mut self) -> Option<Batch> {
        let first = self.index;
        match self.whole.as_mut()? {
            Err(_) => {
                self.done = true;
                self.whole.take().map(|e| (0, e))
            }
            Ok(events) if events.is_empty() => {
                self.done = true;
                None
            }
            Ok(events) => {
                let rest = events.split_off(self.batch_size.min(events.len()));
                let batch = std::mem::replace(events, rest);
                self.index += batch.len();
                Some((first, Ok(batch)))
            }
        }
    }

    fn next_ndjson_batch(&mut self) -> std::io::Result<Option<Batch>> {
        let first = self.index;
        let mut events = Vec::with_capacity(self.batch_size);
        let mut problems = Problems::default();
        let mut line = Vec::new();
        while self.index - first < self.batch_size {
            line.clear();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                self.done = true;
                break;
            }
            self.line_no += 1;
            if is_blank(&line) {
                continue;
            }
            match parse_line(&line, self.index, self.line_no, self.today) {
                Ok(event) => events.push(event),
                Err(p) => problems.extend(p),
            }
            self.index += 1;
        }
        Ok(match (self.index, self.index > first) {
            (0, _) => Some((0, Err(BatchError::Empty))),
            (_, true) => Some((first, problems.into_result(events))),
            (_, false) => None,
        })
    }
}

impl Iterator for Batches {
    type Item = anyhow::Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.whole.is_some() {
            return self.next_array_batch().map(Ok);
        }
        self.next_ndjson_batch().map_err(anyhow::Error::from).transpose()
    }
}

fn starts_with_bracket(reader: &mut BufReader<File>) -> std::io::Result<bool> {
    loop {
        let buf = reader.fill_buf()?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => return Ok(buf[i] == b'['),
            None if buf.is_empty() => return Ok(false),
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

fn progress(label: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} {human_pos} events ({per_sec}) {elapsed}") {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    bar
}

/// Checks every event of the file against the log and against the earlier
/// events of the file, writing nothing.
async fn check(log: &dyn EventLog, analytics: &Analytics, source: &Source, batch_size: usize) -> anyhow::Result<Problems> {
    let bar = progress(&format!("checking {}", source.name));
    let mut planner = Planner::default();
    let mut problems = Problems::default();
    let mut batches = source.parsed(batch_size)?;
    while let Some(batch) = batches.recv().await {
        let (first, batch) = batch?;
        let events = match batch {
            Ok(events) => events,
            Err(BatchError::Invalid { problems: p, total }) => {
                let unlisted = total.saturating_sub(p.len());
                problems.extend(p);
                problems.total += unlisted;
                continue;
            }
            Err(e) => {
                problems.extend(vec![whole_file_problem(e)]);
                continue;
            }
        };
        let n = events.len() as u64;
        problems.extend(indicators::check(analytics, &events, first).await?);
        let mut reader = log.state_reader().await?;
        match planner.plan(reader.as_mut(), events, first, Utc::now()).await {
            Ok(_) => {}
            Err(AppendError::Invalid(p)) => problems.extend(p),
            Err(AppendError::Conflict(c)) => problems.extend(
                c.into_iter()
                    .map(|c| {
                        Invalid::new(
                            c.index,
                            None,
                            Some(c.event_id.clone()),
                            "expected_version",
                            &c.to_string(),
                        )
                    })
                    .collect(),
            ),
            Err(AppendError::Log(e)) => return Err(e.into()),
        }
        bar.inc(n);
    }
    bar.finish_and_clear();
    Ok(problems)
}

fn whole_file_problem(e: BatchError) -> Invalid {
    Invalid::new(0, None, None, "", &e.to_string())
}

async fn append(log: &dyn EventLog, source: &Source, batch_size: usize) -> anyhow::Result<(u64, u64)> {
    let bar = progress(&format!("importing {}", source.name));
    let started = Instant::now();
    let (mut stored, mut duplicates) = (0u64, 0u64);
    let mut batches = source.parsed(batch_size)?;
    while let Some(batch) = batches.recv().await {
        let (_, batch) = batch?;
        let appended = log.append(batch?).await?;
        let dup = appended.iter().filter(|a| a.duplicate).count() as u64;
        duplicates += dup;
        stored += appended.len() as u64 - dup;
        bar.inc(appended.len() as u64);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        events = stored + duplicates,
        seconds,
        rate = (stored + duplicates) as f64 / seconds.max(1e-9),
        "appended"
    );
    Ok((stored, duplicates))
}
