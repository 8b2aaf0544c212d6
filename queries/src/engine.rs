//! The query engine: a DataFusion session per query over the lake, with a
//! memory limit and a time limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use utfall_events::ProgramName;

use crate::{QueryError, Snapshot, catalog, read_only};

/// Times a query is started again when compaction removed a file it read.
const RETRIES: u32 = 5;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Memory the engine may hold for sorts, joins and aggregations.
    pub memory_bytes: usize,
    /// How long one query (or one outcome report) may run.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            timeout: Duration::from_secs(300),
        }
    }
}

/// A query result: the schema (also when there are no rows) and the rows.
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

#[derive(Clone)]
pub struct Analytics {
    events_dir: PathBuf,
    limits: Limits,
    /// Only this programme's events, when set.
    programme: Option<ProgramName>,
}

impl Analytics {
    /// Queries the lake whose `events` files are in `events_dir`.
    pub fn new(events_dir: &Path, limits: Limits) -> Self {
        Self {
            events_dir: events_dir.to_path_buf(),
            limits,
            programme: None,
        }
    }

    /// The same engine seeing only `programme`'s events: its reports read
    /// a fraction of the lake.
    pub fn for_programme(&self, programme: &ProgramName) -> Self {
        Self {
            programme: Some(programme.clone()),
            ..self.clone()
        }
    }

    /// A session whose catalog answers for `snapshot`.
    pub async fn context(&self, snapshot: &Snapshot) -> Result<SessionContext, QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .build_arc()?;
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        // Decode the events' JSON only for rows that pass the filters (type,
        // programme, dates): most of a query's time is that column.
        config.options_mut().execution.parquet.pushdown_filters = true;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        // DataFusion 55.2 moves JSON getters below joins and windows with
        // names that clash ("ambiguous __datafusion_extracted_1") on the
        // catalog's views; the catalog runs without that rewrite.
        ctx.remove_optimizer_rule("extract_leaf_expressions");
        ctx.remove_optimizer_rule("push_down_leaf_projections");
        catalog::register(&ctx, &self.events_dir, snapshot, self.programme.as_ref()).await?;
        Ok(ctx)
    }

    /// Runs one read-only query.
    pub async fn sql(&self, snapshot: &Snapshot, sql: &str) -> Result<Answer, QueryError> {
        self.within_limit(|ctx| async move { run(&ctx, sql).await }, snapshot)
            .await
    }

    /// Runs `work` in a fresh session under the time limit, again when a
    /// lake file was compacted away under it.
    pub(crate) async fn within_limit<T, F>(
        &self,
        work: impl Fn(SessionContext) -> F,
        snapshot: &Snapshot,
    ) -> Result<T, QueryError>
    where
        F: Future<Output = Result<T, QueryError>>,
    {
        let attempts = async {
            let mut attempt = 1;
            loop {
                match work(self.context(snapshot).await?).await {
                    Err(QueryError::LakeChanged) if attempt < RETRIES => attempt += 1,
                    other => return other,
                }
            }
        };
        tokio::time::timeout(self.limits.timeout, attempts)
            .await
            .map_err(|_| QueryError::Timeout(self.limits.timeout))?
    }
}

/// Plans `sql` in `ctx`, refuses anything but reading, and collects it.
pub async fn run(ctx: &SessionContext, sql: &str) -> Result<Answer, QueryError> {
    let plan = ctx.state().create_logical_plan(sql).await?;
    read_only::check(&plan)?;
    let frame = ctx.execute_logical_plan(plan).await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    Ok(Answer { schema, batches })
}
