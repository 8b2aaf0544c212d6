//! Catalogs made for the lake's latest commit, kept for the queries that
//! come after. Making one registers every lake file and plans every view of
//! the catalog, which costs more than a small query itself, and its
//! `participants` is computed once (see `computed_once`). A catalog reads
//! one commit and answers for one snapshot and scope, so it stays exact
//! until the next commit, when the ones kept are dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::prelude::SessionContext;
use utfall_events::ProgramName;

use crate::Snapshot;

/// Most catalogs kept for one commit, the least recently used going first:
/// each may hold a computed `participants` and `status_spells` (tens of MB
/// each for the whole lake at 10 M events).
const MOST: usize = 10;

/// Whom and when a catalog answers for: its snapshot, the programmes it
/// is limited to, and the evaluators' programmes and pseudonym key.
pub(crate) type Key = (Snapshot, Option<Vec<ProgramName>>, Option<(Vec<ProgramName>, Arc<[u8]>)>);

#[derive(Clone, Default)]
pub(crate) struct Catalogs(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    /// The commit the catalogs read.
    version: u64,
    /// The most recently used last.
    catalogs: VecDeque<(Key, SessionContext)>,
}

impl Catalogs {
    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The catalog kept for `key` over commit `version`, if there is one.
    pub fn get(&self, version: u64, key: &Key) -> Option<SessionContext> {
        let mut kept = self.kept();
        if kept.version != version {
            return None;
        }
        let at = kept.catalogs.iter().position(|(k, _)| k == key)?;
        let used = kept.catalogs.remove(at)?;
        let catalog = used.1.clone();
        kept.catalogs.push_back(used);
        Some(catalog)
    }

    /// Keeps `catalog` for `key` over commit `version`; catalogs of other
    /// commits go (a query already running holds its own).
    pub fn keep(&self, version: u64, key: Key, catalog: SessionContext) {
        let mut kept = self.kept();
        if kept.version != version {
            kept.catalogs.clear();
            kept.version = version;
        }
        kept.catalogs.retain(|(k, _)| *k != key);
        if kept.catalogs.len() >= MOST {
            kept.catalogs.pop_front();
        }
        kept.catalogs.push_back((key, catalog));
    }

    /// Drops every catalog kept: one of them named a file that is gone.
    pub fn forget(&self) {
        self.kept().catalogs.clear();
    }
}
