//! SQL access is read-only: a plan that would define, change or copy
//! anything is refused before it runs.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

use crate::QueryError;

/// Refuses DDL, DML (INSERT, UPDATE, DELETE, COPY … TO) and statements
/// (SET, PREPARE, transactions) anywhere in the plan, EXPLAIN included.
pub fn check(plan: &LogicalPlan) -> Result<(), QueryError> {
    let mut refused = None;
    plan.apply_with_subqueries(|node| {
        refused = match node {
            LogicalPlan::Ddl(ddl) => Some(ddl.name().to_string()),
            LogicalPlan::Dml(dml) => Some(dml.op.to_string()),
            LogicalPlan::Copy(_) => Some("COPY".to_string()),
            LogicalPlan::Statement(s) => Some(s.name().to_string()),
            _ => None,
        };
        Ok(if refused.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    match refused {
        Some(kind) => Err(QueryError::ReadOnly(kind)),
        None => Ok(()),
    }
}
