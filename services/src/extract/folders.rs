//! Where extracts live: `<out>/<program>/<period>/` holds a period's first
//! delivery, `<out>/<program>/<period>-revision-N/` its revision N. A
//! folder appears whole (written beside it under a hidden name, then
//! renamed) or not at all, so an extract exists exactly when its folder
//! does.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde::Serialize;
use utfall_queries::extract::Manifest;

const REVISION: &str = "-revision-";
const TEMPORARY: &str = ".tmp-";

/// The folder of `revision` of `program`'s extract for `period`.
pub fn folder(out: &Path, program: &str, period: &str, revision: u32) -> PathBuf {
    let name = match revision {
        1 => period.to_string(),
        n => format!("{period}{REVISION}{n}"),
    };
    out.join(program).join(name)
}

/// The latest delivered revision of a period, if any.
pub fn latest(out: &Path, program: &str, period: &str) -> Option<(u32, PathBuf)> {
    (1..)
        .map(|r| (r, folder(out, program, period, r)))
        .take_while(|(_, f)| f.exists())
        .last()
}

pub fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not an extract manifest", path.display()))
}

/// Fails when `target` exists: an extract is never overwritten.
pub fn refuse_existing(target: &Path) -> anyhow::Result<()> {
    if target.exists() {
        bail!(
            "{} already holds an extract; it is never overwritten (`--revise` writes a revision beside it)",
            target.display()
        );
    }
    Ok(())
}

/// Writes `files` into a new folder `target`; refuses a folder that exists.
pub fn write(target: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    refuse_existing(target)?;
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let temporary: PathBuf = parent.join(format!(
        ".{}{TEMPORARY}{}",
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

/// Removes what a killed writer left under `out`: hidden temporary folders
/// of processes that no longer run.
pub fn tidy(out: &Path) {
    let Ok(programs) = std::fs::read_dir(out) else { return };
    for program in programs.flatten() {
        let Ok(entries) = std::fs::read_dir(program.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.starts_with('.').then(|| name.rsplit_once(TEMPORARY)).flatten() else {
                continue;
            };
            let alive = pid
                .1
                .parse::<u32>()
                .is_ok_and(|p| Path::new("/proc").join(p.to_string()).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A produced extract, as `GET /v1/extracts` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    /// `<program>.<folder>`: programme names hold no dots.
    pub id: String,
    pub program: String,
    pub period: String,
    pub revision: u32,
    pub known_at: String,
    /// When the folder was written.
    pub created: String,
    pub files: Vec<String>,
    #[serde(skip)]
    pub folder: PathBuf,
}

/// Every extract under `out`, by programme, period and revision.
pub fn list(out: &Path) -> Vec<Listed> {
    let mut found: Vec<Listed> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|program| std::fs::read_dir(program.path()).into_iter().flatten().flatten())
        .filter_map(|folder| listed(&folder.path()))
        .collect();
    found.sort_by(|a, b| (&a.program, &a.period, a.revision).cmp(&(&b.program, &b.period, b.revision)));
    found
}

/// A file or folder name that cannot lead out of its folder: not empty, not
/// hidden (nor `.`/`..`), no separator.
pub fn plain(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// The extract `id` names under `out`, if there is one.
pub fn find(out: &Path, id: &str) -> Option<Listed> {
    let (program, name) = id.split_once('.')?;
    if !plain(program) || !plain(name) {
        return None;
    }
    listed(&out.join(program).join(name))
}

/// The extract in `folder`: a visible folder holding a manifest.
fn listed(folder: &Path) -> Option<Listed> {
    let name = folder.file_name()?.to_str()?.to_string();
    if name.starts_with('.') {
        return None;
    }
    let manifest = read_manifest(&folder.join("manifest.json")).ok()?;
    let created = std::fs::metadata(folder.join("manifest.json"))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    // A manifest is a file on disk that anyone with access may have edited:
    // only plain names of regular files inside the folder are listed.
    let mut files: Vec<String> = manifest
        .files
        .iter()
        .map(|f| f.file.clone())
        .filter(|f| plain(f) && std::fs::symlink_metadata(folder.join(f)).is_ok_and(|m| m.is_file()))
        .collect();
    files.push("manifest.json".into());
    Some(Listed {
        id: format!("{}.{name}", manifest.program),
        program: manifest.program,
        period: manifest.period,
        revision: manifest.revision,
        known_at: manifest.known_at,
        created: chrono::DateTime::<chrono::Utc>::from(created).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        files,
        folder: folder.to_path_buf(),
    })
}
