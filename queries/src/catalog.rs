//! DESIGN's analytics catalog as DataFusion views over the lake's events.
//! Every table is derived in SQL (the files under `queries/sql/catalog/`)
//! from the events a [`Snapshot`] sees, so a figure can be asked as of any
//! date and as known at any time. Helpers live in the `internal` schema,
//! out of the evaluators' way.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::MemTable;
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use utfall_events::ProgramName;
use utfall_events::vocabulary::Status;

use crate::{QueryError, Snapshot};

/// DESIGN's tables, the catalog every user of SQL sees (the read models
/// hold the same ones).
pub use utfall_projections::read_models::schema::TABLES;

/// Views in the order they must be created (each uses only those before it).
const VIEWS: [(&str, &str); 15] = [
    ("internal.known_events", include_str!("../sql/catalog/known_events.sql")),
    (
        "internal.retracted_events",
        include_str!("../sql/catalog/retracted_events.sql"),
    ),
    (
        "internal.withdrawn_consent",
        include_str!("../sql/catalog/withdrawn_consent.sql"),
    ),
    ("events", include_str!("../sql/catalog/events.sql")),
    ("internal.in_force", include_str!("../sql/catalog/in_force.sql")),
    ("programs", include_str!("../sql/catalog/programs.sql")),
    ("targets", include_str!("../sql/catalog/targets.sql")),
    ("status_spells", include_str!("../sql/catalog/status_spells.sql")),
    ("participants", include_str!("../sql/catalog/participants.sql")),
    (
        "internal.measurement_items",
        include_str!("../sql/catalog/measurement_items.sql"),
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

/// Registers the catalog in `ctx`, reading the lake's Parquet files in
/// `events_dir`; with `programmes`, only those programmes' events.
pub async fn register(
    ctx: &SessionContext,
    events_dir: &Path,
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
    let state = ctx.state_ref();
    datafusion_functions_json::register_all(&mut *state.write())?;
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| QueryError::Engine("no default catalog".into()))?;
    catalog.register_schema("internal", Arc::new(MemorySchemaProvider::new()))?;
    ctx.register_table("internal.lake_events", lake_events(events_dir)?)?;
    ctx.register_table("internal.outcome_groups", outcome_groups()?)?;
    for (name, body) in VIEWS {
        let body = match name {
            "internal.snapshot" => snapshot.table_sql(),
            _ => body
                .replace("{valid_time}", &snapshot.valid_time())
                .replace("{transaction_time}", &snapshot.transaction_time())
                .replace("{programme}", &scope),
        };
        ctx.sql(&format!("CREATE VIEW {name} AS {body}")).await?;
    }
    for name in TABLES {
        let view = ctx.table_provider(name).await?;
        ctx.deregister_table(name)?;
        ctx.register_table(name, Arc::new(CatalogTable(view)))?;
    }
    Ok(())
}

/// One of DESIGN's tables. Derived in SQL from the lake's events today,
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

fn lake_events(events_dir: &Path) -> Result<Arc<ListingTable>, QueryError> {
    let url = ListingTableUrl::parse(format!("{}/", events_dir.display()))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(utfall_projections::lake::events_schema());
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// DESIGN's default status taxonomy, from the one mapping in `utfall-events`.
fn outcome_groups() -> Result<Arc<MemTable>, QueryError> {
    let code = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let (statuses, groups): (Vec<String>, Vec<String>) = Status::ALL
        .iter()
        .map(|s| {
            (
                code(serde_json::to_value(s).unwrap_or_default()),
                code(serde_json::to_value(s.outcome_group()).unwrap_or_default()),
            )
        })
        .unzip();
    let schema = Arc::new(Schema::new(vec![
        Field::new("status", DataType::Utf8, false),
        Field::new("outcome_group", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(statuses)),
            Arc::new(StringArray::from(groups)),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
