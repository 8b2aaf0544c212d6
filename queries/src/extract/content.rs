//! What a funder extract holds, section by section, with small cells
//! suppressed. Figures come from the same catalog and metric SQL as
//! `utfall outcomes`, as of the period's last day and as known at the
//! extract's known-at time.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use utfall_events::ProgramName;

use super::{by_cohort, compared, methods, on_track};
use super::disclosure::{Cell, Cells};
use super::period::Period;
use crate::horizon::Horizon;
use crate::language::Language;
use crate::values::{dates, ints, strings};
use crate::horizon::Anchor;
use crate::outcomes::MetricValue;
use crate::{Analytics, Cohorts, Outcomes, QueryError, Sections, Snapshot};

/// How a column is typed in Parquet and XLSX and aligned in HTML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    /// A mean or score.
    Decimal,
    /// A proportion from 0 to 1 (a percentage in XLSX).
    Share,
}

/// A published value.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Text(String),
    Integer(i64),
    Decimal(f64),
    Suppressed,
    Empty,
}

pub struct Section {
    pub name: &'static str,
    pub title: &'static str,
    pub columns: Vec<(&'static str, Kind)>,
    /// How many leading columns name a row (the rest are figures).
    pub keys: usize,
    pub rows: Vec<Vec<Shown>>,
}

/// What an extract is asked for beside its programme, period and
/// known-at time.
#[derive(Clone, Copy, Debug)]
pub struct Asked<'a> {
    /// Counts from 1 to this are suppressed.
    pub threshold: u64,
    /// The share metrics also at this horizon.
    pub horizon: Option<Horizon>,
    /// Each share beside this programme's.
    pub compare_with: Option<&'a ProgramName>,
    pub lang: Option<Language>,
}

pub struct Extract {
    pub program: String,
    pub programme_name: String,
    pub period: Period,
    pub as_of: NaiveDate,
    pub known_at: DateTime<Utc>,
    pub log_position: i64,
    pub threshold: u64,
    /// The horizon of the metrics at a horizon, when asked for.
    pub horizon: Option<Horizon>,
    /// Another programme each share is set beside, when asked for.
    pub compare_with: Option<String>,
    /// The language of the XLSX and HTML files and of the Methods text;
    /// none: identifiers and English, as before languages existed (CSV
    /// and Parquet always keep identifiers).
    pub lang: Option<Language>,
    /// 1 for the first delivery of a period; a revision counts on.
    pub revision: u32,
    pub replaces: Option<super::files::Replaced>,
    /// Cells hidden because they were small, and to protect those.
    pub primary: usize,
    pub secondary: usize,
    pub sections: Vec<Section>,
}

/// A value before suppression is decided.
pub(super) enum Pending {
    Text(String),
    Count(Cell),
    /// A share, mean or whether a target is met: hidden when any cell it is
    /// made of is hidden or it rests on 1 to `threshold` people.
    Derived {
        value: Shown,
        of: Vec<Cell>,
        people: u64,
    },
    Decimal(Option<f64>),
    Integer(i64),
    Empty,
}

pub(super) struct Draft {
    name: &'static str,
    title: &'static str,
    columns: Vec<(&'static str, Kind)>,
    pub(super) keys: usize,
    pub(super) rows: Vec<Vec<Pending>>,
}

/// Age bands at enrolment.
const AGE_BANDS: [(&str, i64, i64); 4] = [
    ("under 25", 0, 24),
    ("25-34", 25, 34),
    ("35-49", 35, 49),
    ("50 and over", 50, 200),
];

struct Person {
    enrolled_on: Option<NaiveDate>,
    exited_on: Option<NaiveDate>,
    exit_reason: Option<String>,
    gender: Option<String>,
    age: Option<i64>,
    job: bool,
}

impl Analytics {
    /// Builds the extract of `program` for `period` as known at `known_at`,
    /// as `asked`.
    pub async fn extract(
        &self,
        program: &ProgramName,
        period: &Period,
        known_at: DateTime<Utc>,
        asked: Asked<'_>,
    ) -> Result<Extract, QueryError> {
        let Asked {
            threshold,
            horizon,
            compare_with,
            lang,
        } = asked;
        let snapshot = Snapshot::new(Some(period.last), Some(known_at));
        // Every query below reads only this programme's events.
        let scoped = self.for_programme(program);
        let programme = scoped
            .programmes(known_at)
            .await?
            .into_iter()
            .find(|p| p.program == program.as_str())
            .ok_or_else(|| QueryError::UnknownProgram(program.to_string()))?;
        if let Some(starts_on) = programme.starts_on.filter(|s| period.last < *s) {
            return Err(QueryError::Sql(format!(
                "period {period} ends before programme {program} started ({starts_on})"
            )));
        }
        let outcomes = scoped
            .outcomes_with(&snapshot, Some(program.as_str()), &Sections {
                    horizon,
                    quarterly: true,
                    cohorts: Some(Cohorts::Year),
                    on_track: true,
                    ..Sections::default()
                },)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| QueryError::UnknownProgram(program.to_string()))?;
        let other = match compare_with {
            Some(other) => Some(
                self.for_programme(other)
                    .outcomes(&snapshot, Some(other.as_str()))
                    .await?
                    .into_iter()
                    .next()
                    .ok_or_else(|| QueryError::UnknownProgram(other.to_string()))?,
            ),
            None => None,
        };
        // The program name is validated ([a-z0-9-]), so it can stand in the SQL.
        let people = scoped
            .sql(
                &snapshot,
                &format!(
                    "SELECT enrolled_on, exited_on, exit_reason, gender, birth_year, first_job_on IS NOT NULL AS job
                     FROM participants WHERE program = '{}'",
                    program.as_str()
                ),
            )
            .await?;
        let people = persons(&people.batches)?;
        let mut cells = Cells::new();
        let drafts = drafts(&outcomes, other.as_ref(), &people, period, &mut cells, threshold);
        let (primary, secondary) = cells.suppress(threshold);
        let sections = drafts.into_iter().map(|d| resolve(d, &cells, threshold)).collect();
        let mut extract = Extract {
            program: program.to_string(),
            programme_name: programme.name,
            period: period.clone(),
            as_of: period.last,
            known_at,
            log_position: outcomes.log_position,
            threshold,
            horizon,
            compare_with: compare_with.map(ToString::to_string),
            lang,
            revision: 1,
            replaces: None,
            primary,
            secondary,
            sections,
        };
        let indicators = scoped.indicators(&snapshot, Some(program.as_str())).await?;
        extract.sections.push(methods::section(&extract, &indicators));
        Ok(extract)
    }
}

fn persons(batches: &[arrow::array::RecordBatch]) -> Result<Vec<Person>, QueryError> {
    let enrolled = dates(batches, "enrolled_on")?;
    let exited = dates(batches, "exited_on")?;
    let reasons = strings(batches, "exit_reason")?;
    let genders = strings(batches, "gender")?;
    let births = ints(batches, "birth_year")?;
    let jobs = crate::values::bools(batches, "job")?;
    Ok((0..enrolled.len())
        .map(|i| {
            let enrolled_on = enrolled[i];
            Person {
                enrolled_on,
                exited_on: exited[i],
                exit_reason: reasons[i].clone(),
                gender: genders[i].clone(),
                age: births[i].zip(enrolled_on).map(|(b, e)| i64::from(e.year()) - b),
                job: jobs[i].unwrap_or(false),
            }
        })
        .collect())
}

pub(super) fn draft(name: &'static str, title: &'static str, columns: &[(&'static str, Kind)]) -> Draft {
    Draft {
        name,
        title,
        columns: columns.to_vec(),
        keys: 1,
        rows: Vec::new(),
    }
}

/// A count whose complement within `total` is protected too: 14 of 15 in
/// a job tells that one was not.
pub(super) fn count_in(cells: &mut Cells, value: u64, total: u64, small: &dyn Fn(u64) -> bool) -> Cell {
    cells.count_or_hide(value, small(total.saturating_sub(value)))
}

/// The columns of a section of share metrics.
const METRIC_COLUMNS: [(&str, Kind); 9] = [
    ("metric", Kind::Text),
    ("numerator", Kind::Integer),
    ("denominator", Kind::Integer),
    ("value", Kind::Share),
    ("ci_low", Kind::Share),
    ("ci_high", Kind::Share),
    ("target_op", Kind::Text),
    ("target_value", Kind::Share),
    ("met", Kind::Text),
];

/// A share metric's row, its value, interval and verdict hidden with its cells.
fn metric_row(m: &MetricValue, numerator: Cell, denominator: Cell) -> Vec<Pending> {
    let derived = |value: Shown| Pending::Derived {
        value,
        of: vec![numerator, denominator],
        people: m.denominator,
    };
    let share = |v: Option<f64>| derived(v.map_or(Shown::Empty, Shown::Decimal));
    vec![
        Pending::Text(m.metric.clone()),
        Pending::Count(numerator),
        Pending::Count(denominator),
        share(m.value),
        share(m.ci_low),
        share(m.ci_high),
        m.target
            .as_ref()
            .map_or(Pending::Empty, |t| Pending::Text(t.op.clone())),
        m.target
            .as_ref()
            .map_or(Pending::Empty, |t| Pending::Decimal(Some(t.value))),
        m.met
            .map_or(Pending::Empty, |met| derived(Shown::Text(if met { "yes" } else { "no" }.into()))),
    ]
}

fn drafts(
    o: &Outcomes,
    other: Option<&Outcomes>,
    people: &[Person],
    period: &Period,
    cells: &mut Cells,
    threshold: u64,
) -> Vec<Draft> {
    use Kind::*;
    let small = |v: u64| (1..=threshold).contains(&v);
    let enrolled = people.len() as u64;
    let exited_n = people.iter().filter(|p| p.exited_on.is_some()).count() as u64;
    let in_period = |d: Option<NaiveDate>| d.is_some_and(|d| d >= period.first && d <= period.last);

    let mut summary = draft(
        "summary",
        "Participants",
        &[("figure", Text), ("participants", Integer)],
    );
    let e = cells.count(enrolled);
    let active = cells.count(enrolled - exited_n);
    let x = cells.count(exited_n);
    cells.sum(e, &[active, x]);
    let new = cells.count(people.iter().filter(|p| in_period(p.enrolled_on)).count() as u64);
    let exits_in_period: Vec<&Person> = people.iter().filter(|p| in_period(p.exited_on)).collect();
    let left = cells.count(exits_in_period.len() as u64);
    for (label, cell) in [
        ("enrolled by the as-of date", e),
        ("active at the as-of date", active),
        ("exited by the as-of date", x),
        ("enrolled in the period", new),
        ("exited in the period", left),
    ] {
        summary
            .rows
            .push(vec![Pending::Text(label.into()), Pending::Count(cell)]);
    }

    let mut reasons = draft(
        "exits_by_reason",
        "Exits in the period by reason",
        &[("reason", Text), ("participants", Integer)],
    );
    let mut by_reason: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for p in &exits_in_period {
        *by_reason
            .entry(p.exit_reason.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    let reason_cells: Vec<Cell> = by_reason
        .iter()
        .map(|(reason, n)| {
            let c = cells.count(*n);
            reasons
                .rows
                .push(vec![Pending::Text(reason.clone()), Pending::Count(c)]);
            c
        })
        .collect();
    cells.sum(left, &reason_cells);

    let mut metrics = draft("metrics", "Outcome metrics", &METRIC_COLUMNS);
    let mut job_cell = None;
    let mut metric_cells = Vec::new();
    for m in &o.metrics {
        // A programme's own indicator counts whom its condition names.
        let denominator = match (m.description.is_some(), m.metric.as_str()) {
            (true, _) => cells.count(m.denominator),
            (false, "clarified_share") => x,
            (false, _) => e,
        };
        let numerator = count_in(cells, m.numerator, m.denominator, &small);
        if m.metric == "job_share" {
            job_cell = Some(numerator);
        }
        metric_cells.push((m.metric.clone(), numerator, denominator));
        metrics.rows.push(metric_row(m, numerator, denominator));
    }

    let at_horizon = o.horizon.as_ref().map(|h| {
        let mut section = draft("metrics_at_horizon", "Outcome metrics at the horizon (see Methods)", &METRIC_COLUMNS);
        // Everyone past the anchor is due (in the denominators), not yet
        // due or censored.
        let population = if h.from == Anchor::Exit { x } else { e };
        let due_n = h.metrics.iter().find(|m| m.metric == "job_share").map_or(0, |m| m.denominator);
        let due = cells.count(due_n);
        let not_yet_due = cells.count(h.not_yet_due);
        let censored = cells.count(h.censored);
        cells.sum(population, &[due, not_yet_due, censored]);
        for (label, cell) in [("not yet due at the horizon", not_yet_due), ("censored at the horizon", censored)] {
            summary.rows.push(vec![Pending::Text(label.into()), Pending::Count(cell)]);
        }
        for m in &h.metrics {
            let denominator = if m.denominator == due_n { due } else { cells.count(m.denominator) };
            section.rows.push(metric_row(m, count_in(cells, m.numerator, m.denominator, &small), denominator));
        }
        section
    });

    let mut distribution = draft(
        "status_distribution",
        "Status at the as-of date by outcome group",
        &[("outcome_group", Text), ("participants", Integer)],
    );
    let group_cells: Vec<Cell> = o
        .status_distribution
        .iter()
        .map(|(group, n)| {
            let c = cells.count(*n);
            distribution
                .rows
                .push(vec![Pending::Text(group.clone()), Pending::Count(c)]);
            c
        })
        .collect();
    cells.sum(e, &group_cells);

    let mut change = draft(
        "measurement_change",
        "Measurement change, first to last (paired)",
        &[
            ("instrument", Text),
            ("paired", Integer),
            ("mean_first", Decimal),
            ("mean_last", Decimal),
            ("improved", Integer),
            ("unchanged", Integer),
            ("worse", Integer),
            ("lowest_composite", Decimal),
            ("highest_composite", Decimal),
        ],
    );
    for c in &o.measurement_change {
        let paired = cells.count(c.paired);
        let parts = [c.improved, c.unchanged, c.worse].map(|n| cells.count(n));
        cells.sum(paired, &parts);
        let mean = |v: Option<f64>| Pending::Derived {
            value: v.map_or(Shown::Empty, Shown::Decimal),
            of: vec![paired],
            people: c.paired,
        };
        change.rows.push(vec![
            Pending::Text(c.instrument.clone()),
            Pending::Count(paired),
            mean(c.mean_first),
            mean(c.mean_last),
            Pending::Count(parts[0]),
            Pending::Count(parts[1]),
            Pending::Count(parts[2]),
            mean(c.lowest_composite),
            mean(c.highest_composite),
        ]);
    }

    let mut poor = draft(
        "poor_by_wave",
        "Share \"poor\" per measurement wave",
        &[
            ("instrument", Text),
            ("wave", Integer),
            ("poor", Integer),
            ("measured", Integer),
            ("share", Share),
        ],
    );
    poor.keys = 2;
    for p in &o.poor_by_wave {
        let measured = cells.count(p.measured);
        let k = count_in(cells, p.poor, p.measured, &small);
        poor.rows.push(vec![
            Pending::Text(p.instrument.clone()),
            Pending::Integer(p.wave),
            Pending::Count(k),
            Pending::Count(measured),
            Pending::Derived {
                value: p.value.map_or(Shown::Empty, Shown::Decimal),
                of: vec![k, measured],
                people: p.measured,
            },
        ]);
    }

    let mut quarterly = draft(
        "quarterly_employment",
        "Quarterly employment: served in the quarter, worked in it",
        &[("quarter", Text), ("served", Integer), ("employed", Integer), ("share", Share)],
    );
    for q in o.quarterly_employment.iter().flatten() {
        let served = cells.count(q.served);
        let employed = count_in(cells, q.employed, q.served, &small);
        quarterly.rows.push(vec![
            Pending::Text(q.quarter.clone()),
            Pending::Count(served),
            Pending::Count(employed),
            Pending::Derived {
                value: q.value.map_or(Shown::Empty, Shown::Decimal),
                of: vec![served, employed],
                people: q.served,
            },
        ]);
    }

    let mut breakdowns = Vec::new();
    for (name, title, key) in [
        ("by_gender", "Enrolled and in a job by gender", 0),
        ("by_age_band", "Enrolled and in a job by age band at enrolment", 1),
    ] {
        let mut section = draft(
            name,
            title,
            &[
                ("group", Text),
                ("enrolled", Integer),
                ("job", Integer),
                ("job_share", Share),
            ],
        );
        let label = |p: &Person| -> String {
            if key == 0 {
                p.gender.clone().unwrap_or_else(|| "unknown".into())
            } else {
                p.age
                    .and_then(|a| AGE_BANDS.iter().find(|b| a >= b.1 && a <= b.2))
                    .map_or("unknown".into(), |b| b.0.to_string())
            }
        };
        let mut groups: std::collections::BTreeMap<String, (u64, u64)> = std::collections::BTreeMap::new();
        for p in people {
            let g = groups.entry(label(p)).or_default();
            g.0 += 1;
            g.1 += u64::from(p.job);
        }
        let (mut enrolled_cells, mut job_cells) = (Vec::new(), Vec::new());
        for (group, (n, job)) in groups {
            let nc = cells.count(n);
            let jc = count_in(cells, job, n, &small);
            enrolled_cells.push(nc);
            job_cells.push(jc);
            section.rows.push(vec![
                Pending::Text(group),
                Pending::Count(nc),
                Pending::Count(jc),
                Pending::Derived {
                    value: if n > 0 {
                        Shown::Decimal(job as f64 / n as f64)
                    } else {
                        Shown::Empty
                    },
                    of: vec![nc, jc],
                    people: n,
                },
            ]);
        }
        cells.sum(e, &enrolled_cells);
        if let Some(job) = job_cell {
            cells.sum(job, &job_cells);
        }
        breakdowns.push(section);
    }

    let totals = by_cohort::Totals {
        enrolled: e,
        metrics: &metric_cells,
    };
    let cohorts = by_cohort::section(o, &totals, cells, &small);
    let tracks = on_track::section(o, &metric_cells);
    let compared = other.map(|other| compared::section(other, o, &metric_cells, cells, &small));
    let mut all = vec![summary, metrics, tracks, cohorts];
    all.extend(compared);
    all.extend(at_horizon);
    all.extend([distribution, change, poor, reasons, quarterly]);
    all.extend(breakdowns);
    all
}

fn resolve(d: Draft, cells: &Cells, threshold: u64) -> Section {
    let rows = d
        .rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| match v {
                    Pending::Text(t) => Shown::Text(t),
                    Pending::Count(c) if cells.is_hidden(c) => Shown::Suppressed,
                    Pending::Count(c) => Shown::Integer(cells.value(c) as i64),
                    Pending::Derived { of, people, .. }
                        if of.iter().any(|c| cells.is_hidden(*c)) || (1..=threshold).contains(&people) =>
                    {
                        Shown::Suppressed
                    }
                    Pending::Derived { value, .. } => value,
                    Pending::Decimal(value) => value.map_or(Shown::Empty, Shown::Decimal),
                    Pending::Integer(i) => Shown::Integer(i),
                    Pending::Empty => Shown::Empty,
                })
                .collect()
        })
        .collect();
    Section {
        name: d.name,
        title: d.title,
        columns: d.columns,
        keys: d.keys,
        rows,
    }
}
