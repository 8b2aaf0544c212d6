//! `utfall extract`: a funder extract written into a temporary folder and
//! renamed into place, so a failure leaves nothing half-written; its
//! revisions; and its reproduction and verification from `manifest.json`.

pub mod folders;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use utfall_events::ProgramName;
use utfall_queries::Analytics;
use utfall_queries::language::Language;
use utfall_queries::extract::files::{render, sha256};
use utfall_queries::extract::revision::changes;
use utfall_queries::extract::{Asked, Extract, Format, Manifest, Period};

use crate::analytics::current;
use crate::cli::{ExtractArgs, StoreArgs};
use crate::store::open_sealing;

/// One extract to make.
#[derive(Clone, Debug)]
pub struct Order {
    pub program: ProgramName,
    pub period: Period,
    pub known_at: DateTime<Utc>,
    pub threshold: u64,
    pub horizon: Option<utfall_queries::Horizon>,
    pub compare_with: Option<ProgramName>,
    pub lang: Option<Language>,
    pub formats: Vec<Format>,
}

/// What was written.
pub struct Written {
    pub folder: PathBuf,
    pub files: usize,
    pub extract: Extract,
}

pub async fn run(args: ExtractArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.verify {
        return verify(dir);
    }
    if let Some(path) = &args.reproduce {
        let analytics = current(&args.store, args.limits.limits()).await?;
        return reproduce(&analytics, &args.store, path, &args.out).await;
    }
    let order = Order {
        program: ProgramName::new(args.program.clone().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("--program: {e}"))?,
        period: args
            .period
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--period is required"))?,
        known_at: args.known_at.unwrap_or_else(Utc::now),
        threshold: args.min_cell,
        horizon: args.horizon.horizon(),
        compare_with: args.compare_with.clone(),
        lang: args.lang,
        formats: args.format.clone(),
    };
    if order.period.last >= Utc::now().date_naive() {
        bail!(
            "period {} has not ended yet (it ends {})",
            order.period,
            order.period.last
        );
    }
    let analytics = current(&args.store, args.limits.limits()).await?;
    let written = if args.revise {
        match revise(&analytics, &args.out, &order).await? {
            Some(written) => written,
            None => {
                println!(
                    "no figure of {} {} has changed; no revision written",
                    order.program, order.period
                );
                return Ok(());
            }
        }
    } else {
        deliver(&analytics, &args.out, &order).await?
    };
    let x = &written.extract;
    println!(
        "{}: revision {}, {} files; {} cells suppressed as small, {} to protect them",
        written.folder.display(),
        x.revision,
        written.files,
        x.primary,
        x.secondary
    );
    Ok(())
}

/// The first delivery of a period; refuses when one exists.
pub async fn deliver(analytics: &Analytics, out: &Path, order: &Order) -> anyhow::Result<Written> {
    let target = folders::folder(out, order.program.as_str(), &order.period.to_string(), 1);
    folders::refuse_existing(&target)?;
    let extract = analytics
        .extract(
            &order.program,
            &order.period,
            order.known_at,
            Asked {
                threshold: order.threshold,
                horizon: order.horizon,
                compare_with: order.compare_with.as_ref(),
                lang: order.lang,
            },
        )
        .await?;
    write(target, extract, &order.formats)
}

/// A new revision beside the latest delivered one when any figure has
/// changed since; its threshold, horizon, language and formats are the
/// delivered ones. With
/// nothing delivered yet, this is the first delivery.
pub async fn revise(analytics: &Analytics, out: &Path, order: &Order) -> anyhow::Result<Option<Written>> {
    let Some((revision, folder)) = folders::latest(out, order.program.as_str(), &order.period.to_string()) else {
        return deliver(analytics, out, order).await.map(Some);
    };
    let delivered = folders::read_manifest(&folder.join("manifest.json"))?;
    let previous = delivered_extract(analytics, &delivered).await?;
    let compare_with = compared_programme(&delivered)?;
    let mut extract = analytics
        .extract(
            &order.program,
            &order.period,
            order.known_at,
            as_delivered(&delivered, compare_with.as_ref()),
        )
        .await?;
    let changed = changes(&previous, &extract);
    if changed.rows.is_empty() {
        return Ok(None);
    }
    extract.revise(&previous, revision + 1, changed);
    let target = folders::folder(out, order.program.as_str(), &order.period.to_string(), revision + 1);
    write(target, extract, &delivered.formats).map(Some)
}

/// The extract a manifest describes, rebuilt from the log (the figures as
/// known at its known-at time, and for a revision its changes section).
async fn delivered_extract(analytics: &Analytics, manifest: &Manifest) -> anyhow::Result<Extract> {
    let program = ProgramName::new(manifest.program.clone()).map_err(|e| anyhow::anyhow!("manifest: program: {e}"))?;
    let period: Period = manifest.period.parse()?;
    let known_at = |t: &str| -> anyhow::Result<DateTime<Utc>> {
        Ok(DateTime::parse_from_rfc3339(t)
            .context("manifest: known_at")?
            .with_timezone(&Utc))
    };
    let compare_with = compared_programme(manifest)?;
    let asked = as_delivered(manifest, compare_with.as_ref());
    let mut extract = analytics
        .extract(
            &program,
            &period,
            known_at(&manifest.known_at)?,
            asked,
        )
        .await?;
    if let Some(replaced) = &manifest.replaces {
        let mut previous = analytics
            .extract(
                &program,
                &period,
                known_at(&replaced.known_at)?,
                asked,
            )
            .await?;
        previous.revision = replaced.revision;
        let changed = changes(&previous, &extract);
        extract.revise(&previous, manifest.revision, changed);
    }
    Ok(extract)
}

/// What a delivered extract was asked for, as its manifest keeps it.
fn as_delivered<'a>(manifest: &Manifest, compare_with: Option<&'a ProgramName>) -> Asked<'a> {
    Asked {
        threshold: manifest.threshold,
        horizon: manifest.horizon,
        compare_with,
        lang: manifest.lang,
    }
}

/// The programme a delivered extract was compared with, if any.
fn compared_programme(manifest: &Manifest) -> anyhow::Result<Option<ProgramName>> {
    manifest
        .compare_with
        .clone()
        .map(ProgramName::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("manifest: compare_with: {e}"))
}

fn write(target: PathBuf, extract: Extract, formats: &[Format]) -> anyhow::Result<Written> {
    let files = render(&extract, formats)?;
    folders::write(&target, &files)?;
    Ok(Written {
        folder: target,
        files: files.len(),
        extract,
    })
}

/// Regenerates the extract of `manifest_path` under `out` and checks every
/// file against the manifest's hashes. Files that differ fail it, unless
/// participants of the programme were erased after the extract was made:
/// then their data can no longer be read, and it reports which files and
/// figures cannot be reproduced, and why.
async fn reproduce(analytics: &Analytics, store: &StoreArgs, manifest_path: &Path, out: &Path) -> anyhow::Result<()> {
    let manifest = folders::read_manifest(manifest_path)?;
    let extract = delivered_extract(analytics, &manifest).await?;
    let target = folders::folder(out, &manifest.program, &manifest.period, manifest.revision);
    let written = write(target, extract, &manifest.formats)?;
    let differing: Vec<&str> = manifest
        .files
        .iter()
        .filter(|f| std::fs::read(written.folder.join(&f.file)).map_or(true, |bytes| sha256(&bytes) != f.sha256))
        .map(|f| f.file.as_str())
        .collect();
    if !differing.is_empty() {
        let program = ProgramName::new(manifest.program.clone()).map_err(|e| anyhow::anyhow!("manifest: program: {e}"))?;
        let made = DateTime::parse_from_rfc3339(&manifest.known_at).context("manifest: known_at")?;
        let erased: Vec<String> = open_sealing(store)
            .await?
            .keys()
            .erasures(&program)
            .await?
            .into_iter()
            .filter(|at| DateTime::parse_from_rfc3339(at).is_ok_and(|at| at > made))
            .collect();
        let (Some(first), Some(last)) = (erased.first(), erased.last()) else {
            bail!("reproduced files differ from the manifest: {}", differing.join(", "));
        };
        println!(
            "{}: cannot be reproduced: {} participant(s) of {} were erased after it was made (from {first} to {last}), \
             and figures resting on their data can no longer be computed. Files that differ: {}",
            written.folder.display(),
            erased.len(),
            manifest.program,
            differing.join(", ")
        );
        let delivered = manifest_path.parent().unwrap_or(Path::new("."));
        for file in differing.iter().filter(|f| f.ends_with(".csv")) {
            for line in differing_rows(&delivered.join(file), &written.folder.join(file))? {
                println!("  {file}: {line}");
            }
        }
        println!("The delivered files are unchanged: `utfall extract --verify` checks them against the manifest.");
        return Ok(());
    }
    println!(
        "{}: every file is identical to the delivered one",
        written.folder.display()
    );
    Ok(())
}

/// The rows of a delivered CSV file that its reproduction no longer has,
/// and those it has instead.
fn differing_rows(delivered: &Path, reproduced: &Path) -> anyhow::Result<Vec<String>> {
    let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
    let (was, is) = (read(delivered)?, read(reproduced)?);
    let mut rows: Vec<String> = was
        .lines()
        .filter(|l| !is.lines().any(|n| n == *l))
        .map(|l| format!("delivered {l}"))
        .collect();
    rows.extend(is.lines().filter(|l| !was.lines().any(|o| o == *l)).map(|l| format!("now       {l}")));
    Ok(rows)
}

/// Checks every file's SHA-256 against the manifest; fails naming each
/// file that differs or is missing.
fn verify(dir: &Path) -> anyhow::Result<()> {
    let manifest = folders::read_manifest(&dir.join("manifest.json"))?;
    let mut bad = Vec::new();
    for f in &manifest.files {
        match std::fs::read(dir.join(&f.file)) {
            Ok(bytes) if sha256(&bytes) == f.sha256 => {}
            Ok(_) => bad.push(format!("{} (changed)", f.file)),
            Err(_) => bad.push(format!("{} (missing)", f.file)),
        }
    }
    if !bad.is_empty() {
        bail!("{}: does not match its manifest: {}", dir.display(), bad.join(", "));
    }
    println!(
        "{}: all {} files match the manifest",
        dir.display(),
        manifest.files.len()
    );
    Ok(())
}
