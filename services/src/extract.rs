//! `utfall extract`: a funder extract written into a temporary folder and
//! renamed into place, so a failure leaves nothing half-written; and its
//! reproduction and verification from `manifest.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::Utc;
use utfall_events::ProgramName;
use utfall_queries::extract::Period;
use utfall_queries::extract::files::{Manifest, render, sha256};

use crate::analytics::current;
use crate::cli::ExtractArgs;

pub async fn run(args: ExtractArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.verify {
        return verify(dir);
    }
    let (program, period, known_at, threshold, formats, expected) = match &args.reproduce {
        Some(path) => {
            let manifest = read_manifest(path)?;
            let known_at = chrono::DateTime::parse_from_rfc3339(&manifest.known_at)
                .context("manifest: known_at")?
                .with_timezone(&Utc);
            let period: Period = manifest.period.parse()?;
            let formats = manifest.formats.clone();
            (
                manifest.program.clone(),
                period,
                known_at,
                manifest.threshold,
                formats,
                Some(manifest),
            )
        }
        None => (
            args.program.clone().unwrap_or_default(),
            args.period
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--period is required"))?,
            args.known_at.unwrap_or_else(Utc::now),
            args.min_cell,
            args.format.clone(),
            None,
        ),
    };
    let program = ProgramName::new(program).map_err(|e| anyhow::anyhow!("--program: {e}"))?;
    if period.last >= Utc::now().date_naive() {
        bail!("period {period} has not ended yet (it ends {})", period.last);
    }
    let analytics = current(&args.store, args.limits.limits()).await?;
    let extract = analytics.extract(&program, &period, known_at, threshold).await?;
    let files = render(&extract, &formats)?;
    let target = args.out.join(program.as_str()).join(period.to_string());
    write_folder(&target, &files)?;
    println!(
        "{}: {} files; {} cells suppressed as small, {} to protect them",
        target.display(),
        files.len(),
        extract.primary,
        extract.secondary
    );
    if let Some(manifest) = expected {
        let differing: Vec<&str> = manifest
            .files
            .iter()
            .filter(|f| {
                files
                    .iter()
                    .all(|(name, bytes)| name != &f.file || sha256(bytes) != f.sha256)
            })
            .map(|f| f.file.as_str())
            .collect();
        if !differing.is_empty() {
            bail!("reproduced files differ from the manifest: {}", differing.join(", "));
        }
        println!("every file is identical to the delivered one");
    }
    Ok(())
}

fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not an extract manifest", path.display()))
}

/// Writes `files` into a new folder `target`; refuses a folder that exists.
fn write_folder(target: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    if target.exists() {
        bail!(
            "{} already holds an extract; it is never overwritten (a revision goes beside it)",
            target.display()
        );
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let temporary: PathBuf = parent.join(format!(
        ".{}.tmp-{}",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("extract"),
        std::process::id()
    ));
    let written = (|| -> anyhow::Result<()> {
        std::fs::create_dir(&temporary).with_context(|| format!("cannot create {}", temporary.display()))?;
        for (name, bytes) in files {
            let path = temporary.join(name);
            std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        std::fs::rename(&temporary, target).with_context(|| format!("cannot move the extract to {}", target.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    written
}

/// Checks every file's SHA-256 against the manifest; fails naming each
/// file that differs or is missing.
fn verify(dir: &Path) -> anyhow::Result<()> {
    let manifest = read_manifest(&dir.join("manifest.json"))?;
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
