//! The lake's manifest (`manifest.json`): which files make up each table
//! now. It is the lake's one commit point: files are written first, then a
//! new manifest names them, replacing the old one by an atomic rename. A
//! reader loads the manifest once and reads exactly the files it names, so
//! every table of its query comes from the same commit, and another engine
//! (DuckDB, pyarrow, Spark) reads a table by reading the manifest's files
//! for it. Files a commit drops (merged into a larger one) stay on disk for
//! [`GRACE`], so a query that started before it can finish.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::parts::Part;
use crate::ProjectionError;

pub const FILE: &str = "manifest.json";
/// The manifest's layout; a lake of another (or no) format is rebuilt.
pub const FORMAT: u32 = 3;
/// How long a file stays on disk after a commit dropped it: longer than a
/// query may run by default (five minutes).
pub const GRACE: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// One more with every commit.
    pub version: u64,
    /// The last log position the lake holds (0 when empty).
    pub position: u64,
    /// The id the next participant version gets.
    pub next_version: i64,
    /// The files of each range of log positions, in log order.
    pub parts: Vec<PartFiles>,
    /// Files no longer part of the lake, kept until `GRACE` has passed.
    #[serde(default)]
    pub retired: Vec<Retired>,
}

/// One range of log positions: the file holding each table's rows of it
/// (paths relative to the lake; a table with no rows there has none).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartFiles {
    pub first: u64,
    pub last: u64,
    pub files: BTreeMap<String, String>,
}

impl PartFiles {
    pub fn part(&self) -> Part {
        Part {
            first: self.first,
            last: self.last,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Retired {
    pub file: String,
    pub at: DateTime<Utc>,
}

impl Manifest {
    pub fn empty() -> Self {
        Self {
            format: FORMAT,
            ..Self::default()
        }
    }

    /// The lake's current manifest: None when there is none, or it is of
    /// another format.
    pub fn load(root: &Path) -> Result<Option<Self>, ProjectionError> {
        let path = root.join(FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ProjectionError::file(&path, e)),
        };
        let manifest: Self =
            serde_json::from_slice(&text).map_err(|e| ProjectionError::Lake(format!("{}: {e}", path.display())))?;
        Ok((manifest.format == FORMAT).then_some(manifest))
    }

    /// The files of `table`, in log order, as absolute paths.
    pub fn files(&self, root: &Path, table: &str) -> Vec<PathBuf> {
        self.parts
            .iter()
            .filter_map(|p| p.files.get(table))
            .map(|f| root.join(f))
            .collect()
    }

    /// Writes this manifest as the lake's current one.
    pub fn commit(&self, root: &Path) -> Result<(), ProjectionError> {
        let path = root.join(FILE);
        let temporary = root.join(format!("{FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(|e| ProjectionError::Lake(e.to_string()))?;
        let mut file = File::create(&temporary).map_err(|e| ProjectionError::file(&temporary, e))?;
        file.write_all(&text)
            .and_then(|_| file.sync_all())
            .map_err(|e| ProjectionError::file(&temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| ProjectionError::file(&path, e))?;
        sync_dir(root)
    }

    /// Every file the manifest knows of, current or retired.
    pub fn known(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .flat_map(|p| p.files.values())
            .chain(self.retired.iter().map(|r| &r.file))
            .map(String::as_str)
    }
}

pub fn sync_dir(dir: &Path) -> Result<(), ProjectionError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ProjectionError::file(dir, e))
}
