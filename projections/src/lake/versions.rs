//! Bitemporal versions of a row derived from a series of facts: the row as
//! it stood on the valid-time dates `valid_from..valid_to`, in the record
//! of the transaction times `recorded_from..recorded_to` (ends exclusive;
//! none = still so). Versions are a pure function of the facts and the
//! retractions recorded against them, by the catalog's rules (a fact counts
//! from its own recording, a retraction from its own; same-day facts in log
//! order), so they can be derived again whenever a fact arrives, and the
//! difference written.

use std::collections::HashMap;
use std::hash::Hash;

use utfall_events::instrument::Instrument;
use utfall_events::vocabulary::{ExitReason, Status};
use uuid::Uuid;

use crate::ProjectionError;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Enrolment,
    Exit(ExitReason),
    Status(Status),
    Psychiatric,
    /// A measurement with at least one item: its wave and composite.
    Measurement(Instrument, Option<i64>, f64),
}

#[derive(Clone, Copy, Debug)]
pub struct Fact {
    pub event_id: Uuid,
    pub position: u64,
    /// Days since 1970-01-01.
    pub occurred_on: i32,
    /// Microseconds since 1970-01-01T00:00Z.
    pub recorded_at: i64,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug)]
pub struct Retraction {
    pub target: Uuid,
    pub recorded_at: i64,
}

/// One series' facts, and the ids of its versions in force in the lake,
/// in the order [`versions`] derives them.
#[derive(Debug, Default)]
pub struct History {
    pub facts: Vec<Fact>,
    pub retractions: Vec<Retraction>,
    pub ids: Vec<i64>,
}

/// What a series' row says, folded over its facts in valid-time order.
pub trait Fold: Default {
    type State: Copy + PartialEq + std::fmt::Debug;
    fn add(&mut self, fact: &Fact);
    /// None while the series has no row (e.g. before an enrolment).
    fn state(&self) -> Option<Self::State>;
}

/// A state over the valid-time dates `from..to`.
pub type Tile<S> = (i32, Option<i32>, S);

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Version<S> {
    pub tile: Tile<S>,
    pub recorded_from: i64,
    pub recorded_to: Option<i64>,
}

impl<S> Version<S> {
    /// Unique among one series' versions: at one transaction time one
    /// tile starts on a date.
    pub fn key(&self) -> (i32, i64) {
        (self.tile.0, self.recorded_from)
    }
}

/// The row for every valid-time date, from the facts in force (in
/// valid-time order, same day in log order): one tile per date a fact
/// happened on, while the fold has a row. Written into `tiles`.
fn tiles<'a, F: Fold>(live: impl Iterator<Item = &'a Fact>, tiles: &mut Vec<Tile<F::State>>) {
    tiles.clear();
    let mut fold = F::default();
    let mut live = live.peekable();
    while let Some(first) = live.next() {
        let day = first.occurred_on;
        fold.add(first);
        while let Some(fact) = live.next_if(|f| f.occurred_on == day) {
            fold.add(fact);
        }
        if let Some(state) = fold.state() {
            tiles.push((day, live.peek().map(|f| f.occurred_on), state));
        }
    }
}

/// Every version of the series' row, ordered by [`Version::key`]: the
/// tiles in force at each transaction time a fact or retraction was
/// recorded at, each kept as one version while it stays in force. (Runs
/// for every series a page touches, twice: it allocates per call, not per
/// transaction time.)
pub fn versions<F: Fold>(history: &History) -> Vec<Version<F::State>> {
    let mut facts: Vec<&Fact> = history.facts.iter().collect();
    facts.sort_unstable_by_key(|f| (f.occurred_on, f.position));
    let mut times: Vec<i64> = history
        .facts
        .iter()
        .map(|f| f.recorded_at)
        .chain(history.retractions.iter().map(|r| r.recorded_at))
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut open: Vec<(Tile<F::State>, i64)> = Vec::new();
    let mut out = Vec::new();
    let mut now = Vec::new();
    for t in times {
        let retracted = |f: &Fact| {
            history
                .retractions
                .iter()
                .any(|r| r.recorded_at <= t && r.target == f.event_id)
        };
        tiles::<F>(
            facts.iter().copied().filter(|f| f.recorded_at <= t && !retracted(f)),
            &mut now,
        );
        let mut i = 0;
        while let Some((tile, from)) = open.get(i).copied() {
            if now.contains(&tile) {
                i += 1;
            } else {
                open.swap_remove(i);
                out.push(Version {
                    tile,
                    recorded_from: from,
                    recorded_to: Some(t),
                });
            }
        }
        for tile in now.drain(..) {
            if !open.iter().any(|(o, _)| *o == tile) {
                open.push((tile, t));
            }
        }
    }
    out.extend(open.into_iter().map(|(tile, from)| Version {
        tile,
        recorded_from: from,
        recorded_to: None,
    }));
    out.sort_unstable_by_key(Version::key);
    out
}

/// Takes `history`'s versions from `before` (what they were, with its
/// ids) to what its facts give now: versions no longer so are voided, new
/// ones get ids from `next_id` on and are handed to `write`.
pub fn refold<F: Fold>(
    history: &mut History,
    before: &[Version<F::State>],
    next_id: &mut i64,
    voids: &mut Vec<i64>,
    mut write: impl FnMut(i64, &Version<F::State>),
) {
    let after = versions::<F>(history);
    let mut ids = Vec::with_capacity(after.len());
    let mut old = before.iter().zip(history.ids.iter().copied()).peekable();
    for version in &after {
        while let Some((_, id)) = old.next_if(|(o, _)| o.key() < version.key()) {
            voids.push(id);
        }
        if let Some((same, id)) = old.next_if(|(o, _)| o.key() == version.key()) {
            if same == version {
                ids.push(id);
                continue;
            }
            voids.push(id);
        }
        let id = *next_id;
        *next_id += 1;
        ids.push(id);
        write(id, version);
    }
    voids.extend(old.map(|(_, id)| id));
    history.ids = ids;
}

/// A series' versions stored in the lake and not voided: (key, id) each.
pub type Stored = Vec<((i32, i64), i64)>;

/// Gives every history the ids of its versions stored in the lake.
/// Refuses when they are not the versions its facts give.
pub fn assign_ids<'a, K: Eq + Hash + std::fmt::Debug, F: Fold>(
    histories: impl Iterator<Item = (K, &'a mut History)>,
    mut stored: HashMap<K, Stored>,
    table: &str,
) -> Result<(), ProjectionError> {
    let disagree = |key: &K| {
        ProjectionError::Lake(format!(
            "{table} of {key:?} are not what its events give; rebuild the lake (utfall rebuild --projection lake)"
        ))
    };
    for (key, history) in histories {
        let mut kept = stored.remove(&key).unwrap_or_default();
        kept.sort_unstable();
        let derived = versions::<F>(history);
        if kept.iter().map(|k| k.0).ne(derived.iter().map(Version::key)) {
            return Err(disagree(&key));
        }
        history.ids = kept.into_iter().map(|k| k.1).collect();
    }
    match stored.keys().next() {
        Some(key) => Err(disagree(key)),
        None => Ok(()),
    }
}
