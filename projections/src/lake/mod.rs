//! The analytics lake: the log's events as Parquet tables under one folder —
//! `events` (every event, its data as JSON text, for the catalog's
//! `events`) and the typed tables of [`FACTS`] (one per kind of fact,
//! data in typed columns, for everything else). Tables are appended in log
//! order and keep every event, not a folded state, because the analytics
//! layer answers "as of" a valid-time date and "as known at" a
//! transaction time: each row carries both, and a retraction is a row of
//! its own.
//!
//! Each append writes one file per table for its range of log positions
//! and commits them in the [`Manifest`], the lake's checkpoint and the one
//! thing readers consult: a crash leaves either the old commit or the new.
//! Ranges are compacted in tiers (four of about the same size become one),
//! so the file count grows with the logarithm of the log. One process
//! writes a lake at a time: the first to open it holds `writer.lock`;
//! others open it to read, and wait for the writer to catch up.
//!
//! Two tables are derived rather than appended: `participant_versions`
//! (the catalog's participants) and `measurement_pairs`, as bitemporal
//! versions the projector keeps up to date (see [`participants`]).
//!
//! An erased participant leaves nothing in the lake: their rows (and their
//! erasure) are left out of every file, old ones rewritten (see [`erasure`]).

mod erasure;
mod facts;
mod manifest;
mod participants;
mod parts;
mod schema;
mod versions;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, BooleanArray, Int64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int64Type, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use chrono::Utc;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use utfall_events::{EventLog, StoredEvent};

use crate::ProjectionError;
pub use facts::{FACTS, FactTable};
pub use manifest::{GRACE, Manifest, PartFiles};
pub use participants::{PAIRS, VERSIONS, VOIDS};
use participants::{Participants, pairs_schema, versions_schema, voids_schema};
pub use parts::Part;
pub use schema::events_schema;

/// The table of every event as stored.
pub const EVENTS: &str = "events";

/// Ranges of one size tier merged together.
const MERGE_WIDTH: usize = 4;
/// Rows per Parquet row group: small enough that a query filtering by
/// date or programme skips most of a large file by its statistics.
const ROW_GROUP: usize = 128 * 1024;

pub struct Lake {
    root: PathBuf,
    /// The lock that makes this process the lake's writer; None when
    /// another process holds it.
    writer: Option<File>,
    /// The participants' fold as of the last commit; loaded from the lake
    /// by the first append, dropped when an append fails.
    participants: Mutex<Option<Participants>>,
}

/// The file whose lock marks the lake's one writer.
const WRITER_LOCK: &str = "writer.lock";

/// Every table's name and columns, `events` first.
pub fn tables() -> impl Iterator<Item = (&'static str, SchemaRef)> {
    std::iter::once((EVENTS, events_schema()))
        .chain(FACTS.iter().map(|t| (t.name, t.schema())))
        .chain([
            (VERSIONS, versions_schema()),
            (PAIRS, pairs_schema()),
            (VOIDS, voids_schema()),
        ])
}

impl Lake {
    /// Opens the lake under `root`, creating it. As its writer, tidies what
    /// a crash may have left: files no commit names; a lake without a
    /// manifest of this format (an earlier layout) starts empty, to be
    /// refilled from the log. When another process writes the lake, it is
    /// opened to read only (see [`Lake::is_writer`]).
    pub fn open(root: &Path) -> Result<Self, ProjectionError> {
        std::fs::create_dir_all(root).map_err(|e| ProjectionError::file(root, e))?;
        let lock_path = root.join(WRITER_LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| ProjectionError::file(&lock_path, e))?;
        let writer = match lock.try_lock() {
            Ok(()) => Some(lock),
            Err(std::fs::TryLockError::WouldBlock) => None,
            Err(std::fs::TryLockError::Error(e)) => return Err(ProjectionError::file(&lock_path, e)),
        };
        let lake = Self {
            root: root.to_path_buf(),
            writer,
            participants: Mutex::new(None),
        };
        if !lake.is_writer() {
            return Ok(lake);
        }
        let manifest = match Manifest::load(root)? {
            Some(manifest) => manifest,
            None => {
                let empty = Manifest::empty();
                empty.commit(root)?;
                empty
            }
        };
        lake.tidy(&manifest)?;
        Ok(lake)
    }

    /// Whether this process writes the lake (another one does when not).
    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    /// The lake's folder (tables are its subfolders, `manifest.json` names
    /// their files).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The current commit (an empty one before the writer's first).
    pub fn manifest(&self) -> Result<Manifest, ProjectionError> {
        Ok(Manifest::load(&self.root)?.unwrap_or_else(Manifest::empty))
    }

    /// The ranges of log positions committed, in log order.
    pub fn parts(&self) -> Result<Vec<Part>, ProjectionError> {
        Ok(self.manifest()?.parts.iter().map(PartFiles::part).collect())
    }

    /// The last position in the lake (0 when empty).
    pub fn position(&self) -> Result<u64, ProjectionError> {
        Ok(self.manifest()?.position)
    }

    /// Appends the events beyond the lake's position, read from the log
    /// after position `after`, as one file per table, then compacts; one
    /// commit for both. Refuses a gap, as the read models do.
    pub fn append(&self, after: u64, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        if !self.is_writer() {
            return Err(ProjectionError::Lake(format!(
                "{}: another process writes this lake",
                self.root.display()
            )));
        }
        let mut manifest = self.manifest()?;
        let checkpoint = manifest.position;
        let new: Vec<&StoredEvent> = events.iter().filter(|e| e.position > checkpoint).collect();
        let (Some(first), Some(last)) = (new.first(), new.last()) else {
            return Ok(());
        };
        if crate::follow::is_gap(checkpoint, after, first.position) {
            return Err(ProjectionError::Gap {
                checkpoint,
                next: first.position,
            });
        }
        let part = Part {
            first: first.position,
            last: last.position,
        };
        let erased = erasure::erased_in(&new);
        let new: Vec<&StoredEvent> = new.into_iter().filter(|e| !erasure::is_of(&erased, e)).collect();
        let mut state = self
            .participants
            .lock()
            .map_err(|_| ProjectionError::Lake("the participants' fold was poisoned".into()))?;
        let mut participants = match state.take() {
            Some(p) => p,
            None => Participants::load(&self.root, &manifest)?,
        };
        // The events table (the largest, its data as JSON) is written on a
        // thread of its own, beside the typed and derived tables.
        let (events_file, files) = std::thread::scope(|scope| {
            let events = scope.spawn(|| self.write(EVENTS, events_schema(), part, [schema::to_batch(&new)]));
            let files = (|| -> Result<BTreeMap<String, String>, ProjectionError> {
                let changes = participants.apply(&new, &mut manifest.next_version)?;
                let facts = FACTS.iter().map(|t| t.name).zip(facts::to_batches(&new)?);
                let derived = [
                    (VERSIONS, changes.versions),
                    (PAIRS, changes.pairs),
                    (VOIDS, changes.voids),
                ];
                let mut files = BTreeMap::new();
                for (table, batch) in facts.chain(derived) {
                    if let Some(batch) = batch {
                        files.insert(table.to_string(), self.write(table, batch.schema(), part, [Ok(batch)])?);
                    }
                }
                Ok(files)
            })();
            (joined(events.join()), files)
        });
        let mut files = files?;
        files.insert(EVENTS.to_string(), events_file?);
        manifest.parts.push(PartFiles {
            first: part.first,
            last: part.last,
            files,
        });
        manifest.position = part.last;
        let purged = if erased.is_empty() {
            Vec::new()
        } else {
            participants.forget(&erased);
            self.erase(&mut manifest, &erased)?
        };
        self.compact(&mut manifest)?;
        self.commit(manifest, purged)?;
        *state = Some(participants);
        Ok(())
    }

    /// Writes the whole log into a new lake beside `root`, then moves it into
    /// place (the old one is removed); returns the position reached.
    /// Refused while another process writes the lake.
    pub async fn rebuild(root: &Path, log: &dyn EventLog, page: usize) -> Result<u64, ProjectionError> {
        let live = Lake::open(root)?;
        if !live.is_writer() {
            return Err(ProjectionError::Lake(format!(
                "{}: another process (utfall serve?) writes this lake; stop it before rebuilding",
                root.display()
            )));
        }
        let scratch = root.with_extension("rebuild");
        let _ = std::fs::remove_dir_all(&scratch);
        let lake = Arc::new(Lake::open(&scratch)?);
        let position = crate::follow::catch_up(log, &lake, page).await?;
        let old = root.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        if root.exists() {
            std::fs::rename(root, &old).map_err(|e| ProjectionError::file(root, e))?;
        }
        std::fs::rename(&scratch, root).map_err(|e| ProjectionError::file(root, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(position)
    }

    /// Reads every row of the `events` table back, in log order.
    pub fn read_all(&self) -> Result<Vec<RecordBatch>, ProjectionError> {
        let mut batches = Vec::new();
        for path in self.manifest()?.files(&self.root, EVENTS) {
            for batch in read(&path)? {
                batches.push(batch?);
            }
        }
        Ok(batches)
    }

    /// Writes one table's file of a range from `batches`, one at a time,
    /// and syncs it; returns its path relative to the lake. Only a commit
    /// makes it part of the lake.
    fn write(
        &self,
        table: &str,
        schema: SchemaRef,
        part: Part,
        batches: impl IntoIterator<Item = Result<RecordBatch, ProjectionError>>,
    ) -> Result<String, ProjectionError> {
        self.write_named(table, &part.file_name(), schema, batches)
    }

    /// [`Self::write`] to the file `name` of the table's folder.
    fn write_named(
        &self,
        table: &str,
        name: &str,
        schema: SchemaRef,
        batches: impl IntoIterator<Item = Result<RecordBatch, ProjectionError>>,
    ) -> Result<String, ProjectionError> {
        let dir = self.root.join(table);
        std::fs::create_dir_all(&dir).map_err(|e| ProjectionError::file(&dir, e))?;
        let relative = format!("{table}/{name}");
        let path = self.root.join(&relative);
        let file = File::create(&path).map_err(|e| ProjectionError::file(&path, e))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .build();
        let mut writer = ArrowWriter::try_new(file, schema, Some(properties))?;
        for batch in batches {
            writer.write(&batch?)?;
        }
        writer
            .into_inner()?
            .sync_all()
            .map_err(|e| ProjectionError::file(&path, e))?;
        manifest::sync_dir(&dir)?;
        Ok(relative)
    }

    /// Merges ranges until no span of neighbouring ranges holds
    /// `MERGE_WIDTH` of one tier and none larger. The merged-away files are
    /// retired, not deleted: a running query may still read them.
    fn compact(&self, manifest: &mut Manifest) -> Result<(), ProjectionError> {
        loop {
            let parts: Vec<Part> = manifest.parts.iter().map(PartFiles::part).collect();
            let Some(run) = parts::mergeable(&parts, MERGE_WIDTH) else {
                return Ok(());
            };
            let merged = Part {
                first: parts[run.start].first,
                last: parts[run.end - 1].last,
            };
            let mut files = BTreeMap::new();
            let inputs = |table: &str| -> Vec<PathBuf> {
                manifest.parts[run.clone()]
                    .iter()
                    .filter_map(|p| p.files.get(table))
                    .map(|f| self.root.join(f))
                    .collect()
            };
            // The events table merges on a thread of its own, beside the rest.
            let events = inputs(EVENTS);
            let (events_file, rest) = std::thread::scope(|scope| {
                let merged_events = scope.spawn(|| {
                    (!events.is_empty())
                        .then(|| self.write(EVENTS, events_schema(), merged, batches(events.clone())))
                        .transpose()
                });
                let rest = (|| -> Result<BTreeMap<String, String>, ProjectionError> {
                    let mut files = BTreeMap::new();
                    for (table, schema) in tables().filter(|(t, _)| ![EVENTS, VERSIONS, PAIRS, VOIDS].contains(t)) {
                        let inputs = inputs(table);
                        if !inputs.is_empty() {
                            files.insert(table.to_string(), self.write(table, schema, merged, batches(inputs))?);
                        }
                    }
                    files.extend(self.merge_versions(
                        merged,
                        &[VERSIONS, PAIRS].map(|t| (t, inputs(t))),
                        &inputs(VOIDS),
                    )?);
                    Ok(files)
                })();
                (joined(merged_events.join()), rest)
            });
            files.extend(rest?);
            if let Some(file) = events_file? {
                files.insert(EVENTS.to_string(), file);
            }
            let now = Utc::now();
            let replaced: Vec<PartFiles> = manifest
                .parts
                .splice(
                    run,
                    [PartFiles {
                        first: merged.first,
                        last: merged.last,
                        files,
                    }],
                )
                .collect();
            manifest.retired.extend(
                replaced
                    .into_iter()
                    .flat_map(|p| p.files.into_values())
                    .map(|file| manifest::Retired { file, at: now }),
            );
        }
    }

    /// Merges participant versions, leaving out those voided in the same
    /// span; the voids of versions in earlier spans are kept. Versions
    /// still so (open in transaction time, then also in valid time) are
    /// written first, so their row groups hold little else and a query for
    /// the present skips the rest by the row groups' null counts.
    fn merge_versions(
        &self,
        merged: Part,
        tables: &[(&str, Vec<PathBuf>)],
        voids: &[PathBuf],
    ) -> Result<Vec<(String, String)>, ProjectionError> {
        let mut voided = HashSet::new();
        for batch in batches(voids.to_vec()) {
            voided.extend(batch?.column(0).as_primitive::<Int64Type>().values().iter().copied());
        }
        let applied = RefCell::new(HashSet::new());
        let mut files = Vec::new();
        for (table, versions) in tables.iter().filter(|(_, files)| !files.is_empty()) {
            let Some((_, schema)) = self::tables().find(|(t, _)| t == table) else {
                continue;
            };
            let (valid_to, recorded_to) = (schema.index_of("valid_to")?, schema.index_of("recorded_to")?);
            // 0: in force now; 1: in the record, for earlier dates; 2: no
            // longer in the record.
            let class = |batch: &RecordBatch, row: usize| match (
                batch.column(recorded_to).is_null(row),
                batch.column(valid_to).is_null(row),
            ) {
                (true, true) => 0,
                (true, false) => 1,
                (false, _) => 2,
            };
            let (voided, applied, class) = (&voided, &applied, &class);
            let kept = (0..3).flat_map(|pass| {
                batches(versions.to_vec()).map(move |batch| {
                    let batch = batch?;
                    let ids = batch.column(0).as_primitive::<Int64Type>();
                    let keep: BooleanArray = (0..batch.num_rows())
                        .map(|row| {
                            let id = ids.value(row);
                            if voided.contains(&id) {
                                applied.borrow_mut().insert(id);
                                return Some(false);
                            }
                            Some(class(&batch, row) == pass)
                        })
                        .collect();
                    Ok(filter_record_batch(&batch, &keep)?)
                })
            });
            files.push((table.to_string(), self.write(table, schema, merged, kept)?));
        }
        let applied = applied.into_inner();
        let left: Vec<i64> = voided.difference(&applied).copied().collect();
        if !left.is_empty() {
            let batch = RecordBatch::try_new(voids_schema(), vec![Arc::new(Int64Array::from(left))])?;
            files.push((
                VOIDS.to_string(),
                self.write(VOIDS, voids_schema(), merged, [Ok(batch)])?,
            ));
        }
        Ok(files)
    }

    /// Writes again, without the rows of `erased`, every file that holds
    /// some; returns the files the manifest no longer names.
    fn erase(&self, manifest: &mut Manifest, erased: &erasure::Erased) -> Result<Vec<String>, ProjectionError> {
        let version = manifest.version + 1;
        let mut dropped = Vec::new();
        for part in &mut manifest.parts {
            let range = part.part();
            for (table, file) in part.files.iter_mut() {
                let path = self.root.join(&*file);
                if !holds_any(&path, erased)? {
                    continue;
                }
                let schema = read(&path)?.schema();
                let kept = batches([path]).map(|batch| Ok(erasure::without(batch?, erased)?.0));
                let rewritten = self.write_named(table, &range.file_name_at(version), schema, kept)?;
                dropped.push(std::mem::replace(file, rewritten));
            }
        }
        Ok(dropped)
    }

    /// Commits `manifest` as the next version, then deletes the retired
    /// files whose grace has passed. When `purged` names files (an erased
    /// participant's), they and every retired file are deleted at once.
    fn commit(&self, mut manifest: Manifest, purged: Vec<String>) -> Result<(), ProjectionError> {
        let cutoff = Utc::now() - GRACE;
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut manifest.retired)
            .into_iter()
            .partition(|r| r.at < cutoff || !purged.is_empty());
        manifest.retired = kept;
        manifest.version += 1;
        manifest.commit(&self.root)?;
        for file in expired.into_iter().map(|r| r.file).chain(purged) {
            remove(&self.root.join(file))?;
        }
        Ok(())
    }

    /// Removes files in the tables' folders that no commit names: what a
    /// crash between writing and committing left, or an earlier layout.
    fn tidy(&self, manifest: &Manifest) -> Result<(), ProjectionError> {
        let known: std::collections::HashSet<&str> = manifest.known().collect();
        for (table, _) in tables() {
            let dir = self.root.join(table);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let relative = format!("{table}/{}", entry.file_name().to_string_lossy());
                if !known.contains(relative.as_str()) {
                    remove(&entry.path())?;
                }
            }
        }
        Ok(())
    }
}

/// Test events from NDJSON at log positions 1, 2, …, each recorded at the
/// time `recorded_at` gives for its position.
#[cfg(test)]
fn stored_events(ndjson: &str, recorded_at: impl Fn(u64) -> chrono::DateTime<Utc>) -> Vec<StoredEvent> {
    utfall_events::wire::parse_batch(ndjson.as_bytes())
        .unwrap_or_default()
        .into_iter()
        .zip(1..)
        .map(|(e, position)| StoredEvent {
            position,
            event: utfall_events::RecordedEvent {
                event_id: e.event_id,
                program: e.program,
                participant: e.participant,
                version: 1,
                occurred_on: e.occurred_on,
                recorded_at: recorded_at(position),
                recorded_by: e.recorded_by,
                schema_version: 1,
                body: e.body,
            },
        })
        .collect()
}

/// A writer thread's result (a panic in it as an error).
fn joined<T>(result: std::thread::Result<Result<T, ProjectionError>>) -> Result<T, ProjectionError> {
    result.unwrap_or_else(|_| Err(ProjectionError::Lake("a lake writer thread panicked".into())))
}

/// The batches of `files`, one at a time, so a merge holds one batch in
/// memory, not the files.
fn batches(files: impl IntoIterator<Item = PathBuf>) -> impl Iterator<Item = Result<RecordBatch, ProjectionError>> {
    files
        .into_iter()
        .map(|path| read(&path))
        .flat_map(|reader| match reader {
            Ok(reader) => Box::new(reader.map(|b| b.map_err(ProjectionError::from)))
                as Box<dyn Iterator<Item = Result<RecordBatch, ProjectionError>>>,
            Err(e) => Box::new(std::iter::once(Err(e))),
        })
}

/// Whether the file at `path` holds a row of one of `erased`, reading its
/// `program` and `participant` columns only.
fn holds_any(path: &Path, erased: &erasure::Erased) -> Result<bool, ProjectionError> {
    let file = File::open(path).map_err(|e| ProjectionError::file(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let columns = ProjectionMask::columns(builder.parquet_schema(), ["program", "participant"]);
    for batch in builder.with_projection(columns).build()? {
        if erasure::without(batch?, erased)?.1 > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn read(path: &Path) -> Result<ParquetRecordBatchReader, ProjectionError> {
    let file = File::open(path).map_err(|e| ProjectionError::file(path, e))?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(file)?.build()?)
}

fn remove(path: &Path) -> Result<(), ProjectionError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ProjectionError::file(path, e)),
        _ => Ok(()),
    }
}
