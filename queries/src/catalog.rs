//! DESIGN's analytics catalog as DataFusion views over the lake's typed
//! tables. Every table is derived in SQL (the files under
//! `queries/sql/catalog/`) from the rows a [`Snapshot`] sees — by their
//! valid-time date, transaction time and the retractions recorded by then
//! — so a figure can be asked as of any date and as known at any time,
//! with no JSON parsed on the way. `participants` picks, by the same
//! snapshot, one of the versions the lake projector keeps. Helpers live in
//! the `internal` schema, out of the evaluators' way.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableType;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use utfall_events::ProgramName;
use utfall_projections::lake::{self, Manifest};

use crate::computed_once::ComputedOnce;
use crate::{QueryError, Snapshot};

/// DESIGN's tables, the catalog every user of SQL sees (the read models
/// hold the same ones).
pub use utfall_projections::read_models::schema::TABLES;

/// The template of every typed table's rows in force, `internal.<table>`.
const IN_FORCE: &str = include_str!("../sql/catalog/in_force.sql");

/// Views in the order they must be created (each uses only those before
/// it); the typed tables' in-force views come right after the first.
const VIEWS: [(&str, &str); 15] = [
    (
        "internal.retracted_events",
        include_str!("../sql/catalog/retracted_events.sql"),
    ),
    (
        "internal.withdrawn_consent",
        include_str!("../sql/catalog/withdrawn_consent.sql"),
    ),
    ("internal.known_events", include_str!("../sql/catalog/known_events.sql")),
    ("internal.indicators", include_str!("../sql/catalog/indicators.sql")),
    ("events", include_str!("../sql/catalog/events.sql")),
    ("programs", include_str!("../sql/catalog/programs.sql")),
    ("targets", include_str!("../sql/catalog/targets.sql")),
    ("status_spells", include_str!("../sql/catalog/status_spells.sql")),
    ("participants", include_str!("../sql/catalog/participants.sql")),
    (
        "internal.measurement_pairs",
        include_str!("../sql/catalog/measurement_pairs.sql"),
    ),
    ("measurements", include_str!("../sql/catalog/measurements.sql")),
    (
        "measurement_scores",
        include_str!("../sql/catalog/measurement_scores.sql"),
    ),
    ("contacts", include_str!("../sql/catalog/contacts.sql")),
    ("services", include_str!("../sql/catalog/services.sql")),
    ("internal.snapshot", ""),
];

/// Tables kept in memory once computed: `participants`, read by every
/// outcome metric, and `status_spells`, read by every metric at a horizon
/// and the quarterly rate (each spell's end is a window over every status
/// change, which costs far more than reading the spells again).
const COMPUTED_ONCE: [&str; 2] = ["participants", "status_spells"];

/// The lake's table of retractions, read only by `internal.retracted_events`.
const RETRACTIONS: &str = "retractions";

/// Registers the catalog in `ctx` over the lake commit `manifest` of the
/// lake at `root`; with `programmes`, only those programmes' rows.
pub async fn register(
    ctx: &SessionContext,
    root: &Path,
    manifest: &Manifest,
    snapshot: &Snapshot,
    programmes: Option<&[ProgramName]>,
) -> Result<(), QueryError> {
    // A programme name is [a-z0-9-], so it can stand in the SQL.
    let scope = match programmes {
        None => "TRUE".into(),
        Some([]) => "FALSE".into(),
        Some(names) => {
            let quoted: Vec<String> = names.iter().map(|p| format!("'{}'", p.as_str())).collect();
            format!("program IN ({})", quoted.join(", "))
        }
    };
    let fill = |body: &str| {
        body.replace("{valid_time}", &snapshot.valid_time())
            .replace("{transaction_time}", &snapshot.transaction_time())
            .replace("{valid_interval}", &snapshot.valid_interval())
            .replace("{recorded_interval}", &snapshot.recorded_interval())
            .replace("{programme}", &scope)
    };
    let state = ctx.state_ref();
    datafusion_functions_json::register_all(&mut *state.write())?;
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| QueryError::Engine("no default catalog".into()))?;
    catalog.register_schema("internal", Arc::new(MemorySchemaProvider::new()))?;
    for (name, schema) in lake::tables() {
        ctx.register_table(
            format!("internal.lake_{name}"),
            lake_table(&manifest.files(root, name), schema)?,
        )?;
    }
    for (i, (name, body)) in VIEWS.into_iter().enumerate() {
        let body = match name {
            "internal.snapshot" => snapshot.table_sql(),
            _ => fill(body),
        };
        ctx.sql(&format!("CREATE VIEW {name} AS {body}")).await?;
        if i == 0 {
            for table in lake::FACTS.iter().filter(|t| t.name != RETRACTIONS) {
                let body = fill(&IN_FORCE.replace("{table}", table.name));
                ctx.sql(&format!("CREATE VIEW internal.{} AS {body}", table.name))
                    .await?;
            }
        }
    }
    for name in TABLES {
        let view = ctx.table_provider(name).await?;
        ctx.deregister_table(name)?;
        let table: Arc<dyn TableProvider> = if COMPUTED_ONCE.contains(&name) {
            Arc::new(ComputedOnce::new(view))
        } else {
            Arc::new(CatalogTable(view))
        };
        ctx.register_table(name, table)?;
    }
    Ok(())
}

/// One of DESIGN's tables. Derived in SQL from the lake's typed tables,
/// it is still a table to its users: SQL clients list tables (psql's `\dt`,
/// BI tools' catalogs), so it says it is one. Planning still inlines its
/// definition, as for any view.
#[derive(Debug)]
pub(crate) struct CatalogTable(pub Arc<dyn TableProvider>);

#[async_trait::async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
}

/// One lake table as the commit names its files (an empty table when it
/// names none).
fn lake_table(files: &[PathBuf], schema: SchemaRef) -> Result<Arc<dyn TableProvider>, QueryError> {
    if files.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(f.display().to_string()))
        .collect::<DfResult<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}
