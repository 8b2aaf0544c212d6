//! The analytics lake: every event as Arrow record batches in Parquet files
//! under `<lake>/events/`, appended in log order. The lake keeps events, not
//! folded tables, because the analytics layer answers "as of" a valid-time
//! date and "as known at" a transaction time, which needs every event with
//! its `recorded_at`; whether an event is retracted depends on that too, so
//! it is not stored here.
//!
//! Each file is named for the positions it holds (`part-<first>-<last>`), so
//! the file set is the lake's checkpoint: a file is written under a
//! temporary name, synced and renamed into place, and a crash leaves either
//! the old set or the new. Files are compacted in tiers (four files of about
//! the same size become one), so their count grows with the logarithm of the
//! log. One process writes a lake at a time.

mod parts;
mod schema;

use std::fs::File;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use utfall_events::{EventLog, StoredEvent};

use crate::ProjectionError;
pub use parts::Part;
pub use schema::events_schema;

/// Files of one size tier merged together.
const MERGE_WIDTH: usize = 4;

pub struct Lake {
    dir: PathBuf,
}

impl Lake {
    /// Opens the lake under `root`, creating it, and tidies what a crash may
    /// have left: temporary files and files already merged into another.
    pub fn open(root: &Path) -> Result<Self, ProjectionError> {
        let dir = root.join("events");
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let lake = Self { dir };
        parts::tidy(&lake.dir)?;
        Ok(lake)
    }

    /// The folder of the `events` Parquet files, for query engines.
    pub fn events_dir(&self) -> &Path {
        &self.dir
    }

    /// The files, in log order.
    pub fn parts(&self) -> Result<Vec<Part>, ProjectionError> {
        parts::list(&self.dir)
    }

    /// The last position in the lake (0 when empty).
    pub fn position(&self) -> Result<u64, ProjectionError> {
        Ok(self.parts()?.last().map_or(0, |p| p.last))
    }

    /// Appends the events beyond the lake's position, read from the log
    /// after position `after`, as one file, then compacts. Refuses a gap, as
    /// the read models do.
    pub fn append(&self, after: u64, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        let checkpoint = self.position()?;
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
        let batch = schema::to_batch(&new)?;
        self.write(
            Part {
                first: first.position,
                last: last.position,
            },
            &[batch],
        )?;
        self.compact()
    }

    /// Writes the whole log into a new lake beside `root`, then moves it into
    /// place (the old one is removed); returns the position reached.
    pub async fn rebuild(root: &Path, log: &dyn EventLog, page: usize) -> Result<u64, ProjectionError> {
        let scratch = root.with_extension("rebuild");
        let _ = std::fs::remove_dir_all(&scratch);
        let lake = Arc::new(Lake::open(&scratch)?);
        let position = crate::follow::catch_up(log, &lake, page).await?;
        let old = root.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        if root.exists() {
            std::fs::rename(root, &old).map_err(|e| io(root, e))?;
        }
        std::fs::rename(&scratch, root).map_err(|e| io(root, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(position)
    }

    /// Reads every event row back, in log order.
    pub fn read_all(&self) -> Result<Vec<RecordBatch>, ProjectionError> {
        let mut batches = Vec::new();
        for part in self.parts()? {
            batches.extend(self.read(&part)?);
        }
        Ok(batches)
    }

    fn read(&self, part: &Part) -> Result<Vec<RecordBatch>, ProjectionError> {
        let path = self.dir.join(part.file_name());
        let file = File::open(&path).map_err(|e| io(&path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
        Ok(reader.collect::<Result<Vec<_>, _>>()?)
    }

    /// Writes a file under a temporary name, syncs it and renames it into place.
    fn write(&self, part: Part, batches: &[RecordBatch]) -> Result<(), ProjectionError> {
        let path = self.dir.join(part.file_name());
        let temporary = self.dir.join(format!("{}{}", part.file_name(), parts::TEMPORARY));
        let file = File::create(&temporary).map_err(|e| io(&temporary, e))?;
        let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let mut writer = ArrowWriter::try_new(file, schema::events_schema(), Some(properties))?;
        for batch in batches {
            writer.write(batch)?;
        }
        let file = writer.into_inner()?;
        file.sync_all().map_err(|e| io(&temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io(&path, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&self.dir, e))
    }

    /// Merges files until no span of neighbouring files holds
    /// `MERGE_WIDTH` files of one tier and none larger.
    fn compact(&self) -> Result<(), ProjectionError> {
        loop {
            let parts = self.parts()?;
            let Some(run) = parts::mergeable(&parts, MERGE_WIDTH) else {
                return Ok(());
            };
            let merged = Part {
                first: run[0].first,
                last: run[run.len() - 1].last,
            };
            let mut batches = Vec::new();
            for part in run {
                batches.extend(self.read(part)?);
            }
            self.write(merged, &batches)?;
            for part in run {
                let path = self.dir.join(part.file_name());
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
        }
    }
}

fn io(path: &Path, e: std::io::Error) -> ProjectionError {
    ProjectionError::Lake(format!("{}: {e}", path.display()))
}
