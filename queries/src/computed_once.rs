//! A catalog table that is computed at its first use and then read from
//! memory. `participants` is read by every outcome metric and most
//! evaluators' queries, `status_spells` by every metric at a horizon; deriving
//! either costs more than reading its rows; a catalog answers for one lake commit and one snapshot (see
//! `catalogs`), so the rows computed once stay exact for its lifetime.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::{ExecutionPlan, collect};
use tokio::sync::OnceCell;

#[derive(Debug)]
pub(crate) struct ComputedOnce {
    view: Arc<dyn TableProvider>,
    rows: OnceCell<MemTable>,
}

impl ComputedOnce {
    pub fn new(view: Arc<dyn TableProvider>) -> Self {
        Self {
            view,
            rows: OnceCell::new(),
        }
    }

    async fn rows(&self, state: &dyn Session) -> Result<&MemTable> {
        self.rows
            .get_or_try_init(|| async {
                let Some(plan) = self.view.get_logical_plan() else {
                    return plan_err!("a table computed once must be a view");
                };
                let plan = state.create_physical_plan(&plan).await?;
                let batches = collect(plan, state.task_ctx()).await?;
                // As many partitions as the session runs at once, so a
                // query over the rows is spread over every core.
                let mut partitions = vec![Vec::new(); state.config().target_partitions().max(1)];
                let count = partitions.len();
                for (i, batch) in batches.into_iter().enumerate() {
                    partitions[i % count].push(batch);
                }
                MemTable::try_new(self.view.schema(), partitions)
            })
            .await
    }
}

#[async_trait::async_trait]
impl TableProvider for ComputedOnce {
    fn schema(&self) -> SchemaRef {
        self.view.schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.rows(state).await?.scan(state, projection, filters, limit).await
    }
}
