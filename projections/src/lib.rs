//! Projectors that fold the event log into read models (PostgreSQL or
//! SQLite), with checkpoints kept in the same transaction as the writes,
//! and into the Arrow/Parquet analytics lake. Depends on
//! `utfall-events` only.

pub mod follow;
pub mod lake;
pub mod read_models;

pub use follow::{Projection, ProjectorStatus, Stall, follow, observe};
pub use lake::Lake;
pub use read_models::ReadModels;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read-model database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Log(#[from] utfall_events::LogError),
    #[error("read models hold an unreadable event: {0}")]
    Corrupt(String),
    #[error("no read model named {0}")]
    UnknownTable(String),
    #[error("the read models are at position {checkpoint} but the next event offered is {next}")]
    Gap { checkpoint: u64, next: u64 },
    #[error("{0}")]
    Unsupported(String),
    #[error("analytics lake: {0}")]
    Lake(String),
    #[error("analytics lake: {path}: {source}")]
    LakeFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("analytics lake: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("analytics lake: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

impl ProjectionError {
    fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::LakeFile {
            path: path.to_path_buf(),
            source,
        }
    }
}
