//! The analytics layer: DESIGN's SQL catalog in DataFusion, derived from the
//! lake's typed tables as of a valid-time date and as known at a transaction time;
//! the outcome metrics (one SQL file each, under `queries/sql/metrics/`) and
//! their statistics; read-only SQL for evaluators.

pub mod bounded_functions;
pub mod catalog;
pub mod cohorts;
mod catalogs;
mod computed_once;
pub mod engine;
pub mod evaluation;
pub mod extract;
pub mod horizon;
pub mod indicators;
pub mod language;
pub mod metrics;
pub mod nesting;
pub mod on_track;
pub mod outcomes;
pub mod programmes;
pub mod read_only;
pub mod render;
pub mod snapshot;
pub mod statistics;
mod values;

pub use engine::{Analytics, Limits};
pub use evaluation::Evaluation;
pub use horizon::{Anchor, Horizon};
pub use outcomes::{Outcomes, Sections};
pub use cohorts::Cohorts;
pub use programmes::Programme;
pub use snapshot::Snapshot;

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement would change something: SQL access is read-only.
    #[error("SQL access is read-only: {0} statements are not allowed")]
    ReadOnly(String),
    /// The query cannot run as written (syntax, unknown table or column,
    /// types, a bad cast, more memory than the limit).
    #[error("{0}")]
    Sql(String),
    /// The answer is larger than the limits allow.
    #[error(
        "the answer holds {0}, more than a query may return; add a LIMIT, filter or aggregate (the server's --max-result-rows and --max-result-mb set the bound)"
    )]
    TooLarge(String),
    #[error("the query ran longer than {0:?} and was stopped")]
    Timeout(std::time::Duration),
    #[error("no programme named {0:?}")]
    UnknownProgram(String),
    /// A lake file was merged away while the query read it; asking again
    /// sees the new files.
    #[error("the analytics lake changed during the query; ask again")]
    LakeChanged,
    /// The engine failed (I/O, memory limit, a broken lake file).
    #[error("query failed: {0}")]
    Engine(String),
    /// The lake's manifest could not be read.
    #[error("query failed: {0}")]
    Lake(#[from] utfall_projections::ProjectionError),
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        // The object store reports a vanished file as text inside a Parquet
        // error; compaction removing a part is the one way that happens.
        if e.to_string().contains("No such file or directory") {
            return QueryError::LakeChanged;
        }
        match e.find_root() {
            // Storage failures are the engine's; everything else (syntax,
            // planning, types, casts, the memory limit) the query's.
            DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) | DataFusionError::ParquetError(_) => {
                QueryError::Engine(e.to_string())
            }
            root => QueryError::Sql(root.to_string()),
        }
    }
}

impl From<arrow::error::ArrowError> for QueryError {
    fn from(e: arrow::error::ArrowError) -> Self {
        QueryError::Engine(e.to_string())
    }
}
