//! The query engine: a DataFusion session per query over the lake, with a
//! memory limit, a time limit that covers planning, execution and rendering,
//! and a bound on the size of an answer. A session per query reads the
//! lake's latest commit, all its tables from that one commit.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::execution::cache::cache_manager::{
    CacheManagerConfig, DEFAULT_FILE_STATISTICS_MEMORY_LIMIT, DEFAULT_METADATA_CACHE_LIMIT,
};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use utfall_events::ProgramName;
use utfall_projections::lake::Manifest;

use crate::catalogs::Catalogs;
use crate::evaluation::Evaluation;
use crate::{QueryError, Snapshot, bounded_functions, catalog, horizon, nesting, read_only};

/// Times a query is started again when compaction removed a file it read.
const RETRIES: u32 = 5;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Memory the engine may hold for sorts, joins and aggregations.
    pub memory_bytes: usize,
    /// How long one query (or one outcome report) may run, rendering of
    /// the answer included.
    pub timeout: Duration,
    /// Most rows an answer to a query may hold.
    pub max_rows: usize,
    /// Most bytes (in Arrow's memory layout) an answer may hold.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            timeout: Duration::from_secs(300),
            max_rows: 1_000_000,
            max_bytes: 256 << 20,
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
    /// The lake's folder.
    lake: PathBuf,
    limits: Limits,
    /// Only these programmes' events, when set.
    programmes: Option<Vec<ProgramName>>,
    /// An evaluator's restricted, pseudonymised view, when set.
    evaluation: Option<Evaluation>,
    /// Queries running now, for `/metrics` (shared by the clones).
    running: Arc<AtomicUsize>,
    /// Parquet footers and file statistics, shared by every query and
    /// clone: a lake file never changes once written (a merge writes new
    /// ones), so what was read from it stays true, and a query need not
    /// read every footer of the lake again before it starts.
    file_caches: CacheManagerConfig,
    /// Catalogs of the latest commit (shared by the clones).
    catalogs: Catalogs,
}

/// Counts a query as running while it lives: dropped when it ends, times
/// out, or its caller gives it up.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Analytics {
    /// Queries the lake in the folder `lake`.
    pub fn new(lake: &Path, limits: Limits) -> Self {
        Self {
            lake: lake.to_path_buf(),
            limits,
            programmes: None,
            evaluation: None,
            running: Arc::default(),
            file_caches: CacheManagerConfig::default()
                .with_file_metadata_cache(Some(Arc::new(
                    DefaultCache::new(DEFAULT_METADATA_CACHE_LIMIT).with_name("lake footers"),
                )))
                .with_file_statistics_cache(Some(Arc::new(
                    DefaultCache::new(DEFAULT_FILE_STATISTICS_MEMORY_LIMIT).with_name("lake statistics"),
                ))),
            catalogs: Catalogs::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The version of the lake's latest commit (0 before the first).
    pub fn lake_version(&self) -> Result<u64, QueryError> {
        Ok(Manifest::load(&self.lake)?.map_or(0, |m| m.version))
    }

    /// Queries and reports running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// The same engine seeing only `programme`'s events: its reports read
    /// a fraction of the lake.
    pub fn for_programme(&self, programme: &ProgramName) -> Self {
        Self {
            programmes: Some(vec![programme.clone()]),
            ..self.clone()
        }
    }

    /// The same engine as an evaluator sees it (see [`Evaluation`]).
    pub fn for_evaluator(&self, evaluation: Evaluation) -> Self {
        Self {
            programmes: Some(evaluation.programmes.clone()),
            evaluation: Some(evaluation),
            ..self.clone()
        }
    }

    /// A session whose catalog answers for `snapshot`, over the lake's
    /// latest commit: every table of the session reads that one commit.
    /// The catalog is made once per commit, snapshot and scope; each
    /// session gets a memory pool of its own.
    pub async fn context(&self, snapshot: &Snapshot) -> Result<SessionContext, QueryError> {
        let manifest = Manifest::load(&self.lake)?.unwrap_or_else(Manifest::empty);
        let key = (
            *snapshot,
            self.programmes.clone(),
            self.evaluation.as_ref().map(Evaluation::identity),
        );
        let catalog = match self.catalogs.get(manifest.version, &key) {
            Some(catalog) => catalog,
            None => {
                let catalog = self.catalog(&manifest, snapshot).await?;
                self.catalogs.keep(manifest.version, key, catalog.clone());
                catalog
            }
        };
        let state = SessionStateBuilder::new_from_existing(catalog.state())
            .with_runtime_env(self.runtime()?)
            .build();
        Ok(SessionContext::new_with_state(state))
    }

    /// A runtime with this engine's memory limit and the shared file caches.
    fn runtime(&self) -> Result<Arc<RuntimeEnv>, QueryError> {
        Ok(RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .with_cache_manager(self.file_caches.clone())
            .build_arc()?)
    }

    /// The catalog over commit `manifest` as `snapshot` sees it.
    async fn catalog(&self, manifest: &Manifest, snapshot: &Snapshot) -> Result<SessionContext, QueryError> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        // Decode other columns only for rows that pass the filters
        // (programme, dates).
        config.options_mut().execution.parquet.pushdown_filters = true;
        let ctx = session(config, self.runtime()?);
        catalog::register(&ctx, &self.lake, manifest, snapshot, self.programmes.as_deref()).await?;
        let ctx = match &self.evaluation {
            Some(evaluation) => evaluation.restrict(&ctx).await?,
            None => ctx,
        };
        horizon::register(&ctx, snapshot).await?;
        Ok(ctx)
    }

    /// Runs one read-only query; its answer is bounded by the limits.
    pub async fn sql(&self, snapshot: &Snapshot, sql: &str) -> Result<Answer, QueryError> {
        self.sql_as(snapshot, sql, Ok).await
    }

    /// Runs one read-only query and renders its answer, both within the
    /// time limit.
    pub async fn sql_as<T>(
        &self,
        snapshot: &Snapshot,
        sql: &str,
        render: impl Fn(Answer) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let limits = self.limits;
        let render = &render;
        self.within_limit(
            |ctx| async move { render(bounded(&ctx, plan(&ctx, sql).await?, &limits).await?) },
            snapshot,
        )
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
        let _running = Running::start(&self.running);
        let attempts = async {
            let mut attempt = 1;
            loop {
                match work(self.context(snapshot).await?).await {
                    Err(QueryError::LakeChanged) if attempt < RETRIES => {
                        self.catalogs.forget();
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        };
        tokio::time::timeout(self.limits.timeout, attempts)
            .await
            .map_err(|_| QueryError::Timeout(self.limits.timeout))?
    }
}

/// A session with the rules and functions every utfall query runs under.
pub(crate) fn session(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionContext {
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    // DataFusion 55.2 moves JSON getters below joins and windows with
    // names that clash ("ambiguous __datafusion_extracted_1") on the
    // catalog's views; the catalog runs without that rewrite.
    ctx.remove_optimizer_rule("extract_leaf_expressions");
    ctx.remove_optimizer_rule("push_down_leaf_projections");
    bounded_functions::install(&ctx);
    ctx.register_udf(horizon::add_months());
    ctx
}

/// Plans `sql` in `ctx` and collects it: for the metric files, whose
/// answers are small by construction.
pub async fn run(ctx: &SessionContext, sql: &str) -> Result<Answer, QueryError> {
    let unbounded = Limits {
        max_rows: usize::MAX,
        max_bytes: usize::MAX,
        ..Limits::default()
    };
    bounded(ctx, plan(ctx, sql).await?, &unbounded).await
}

/// Plans `sql`, refusing a query that nests too deeply to plan safely and
/// anything but reading.
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan, QueryError> {
    nesting::check_length(sql)?;
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect)?;
    nesting::check(&statement)?;
    let plan = state.statement_to_plan(statement).await?;
    read_only::check(&plan)?;
    Ok(plan)
}

/// Executes `plan`, pulling batches only while the answer stays within the
/// row and byte limits: past them the execution is dropped (which stops it)
/// and the query is refused.
pub async fn bounded(ctx: &SessionContext, plan: LogicalPlan, limits: &Limits) -> Result<Answer, QueryError> {
    let frame = ctx.execute_logical_plan(plan).await?;
    let schema = unique_names(frame.schema().as_arrow());
    let mut stream = frame.execute_stream().await?;
    let (mut rows, mut bytes, mut batches) = (0usize, 0usize, Vec::new());
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        bytes += batch
            .columns()
            .iter()
            .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
            .sum::<usize>();
        if rows > limits.max_rows {
            return Err(QueryError::TooLarge(format!("more than {} rows", limits.max_rows)));
        }
        if bytes > limits.max_bytes {
            return Err(QueryError::TooLarge(format!(
                "more than {} MiB",
                limits.max_bytes >> 20
            )));
        }
        batches.push(RecordBatch::try_new(schema.clone(), batch.columns().to_vec())?);
    }
    Ok(Answer { schema, batches })
}

/// The schema with every column name made unique (`x`, `x_2`, …): JSON
/// objects, data frames and spreadsheets cannot hold two columns of one name.
fn unique_names(schema: &Schema) -> SchemaRef {
    let mut taken: HashSet<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut seen = HashSet::new();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            if seen.insert(field.name().clone()) {
                return field.as_ref().clone();
            }
            let name = (2..)
                .map(|n| format!("{}_{n}", field.name()))
                .find(|candidate| !taken.contains(candidate))
                .unwrap_or_default();
            taken.insert(name.clone());
            field.as_ref().clone().with_name(name)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}
