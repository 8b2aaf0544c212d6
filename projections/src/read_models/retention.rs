//! Who is due for erasure under their programme's retention rule: a
//! participant is due `months_after_exit` months after their exit, or,
//! never having exited, as long after the programme's `ends_on` (one with
//! neither is never due). Read from the read models, which hold only
//! participants not yet erased.

use chrono::{Months, NaiveDate};
use serde::Serialize;
use sqlx::Row;

use super::ReadModels;
use crate::ProjectionError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Due {
    pub program: String,
    pub participant: String,
    /// Their exit; none when the programme's end is what the rule counts from.
    pub exited_on: Option<String>,
    pub due_on: NaiveDate,
}

impl ReadModels {
    /// Every participant due for erasure on `on` (of `program`, or of all
    /// programmes), soonest due first.
    pub async fn due_for_erasure(&self, on: NaiveDate, program: Option<&str>) -> Result<Vec<Due>, ProjectionError> {
        let rows = sqlx::query(
            "SELECT p.program, p.participant, p.exited_on, g.ends_on, r.months_after_exit
             FROM participants p
             JOIN retention_rules r ON r.program = p.program
             JOIN programs g ON g.program = p.program
             WHERE $1 IS NULL OR p.program = $1",
        )
        .bind(program)
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::new();
        for row in rows {
            let exited_on: Option<String> = row.try_get(2)?;
            let ends_on: Option<String> = row.try_get(3)?;
            let months: i64 = row.try_get(4)?;
            let Some(from) = exited_on.as_deref().or(ends_on.as_deref()) else {
                continue;
            };
            let due_on = NaiveDate::parse_from_str(from, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.checked_add_months(Months::new(u32::try_from(months).ok()?)));
            let Some(due_on) = due_on else {
                continue;
            };
            if due_on <= on {
                due.push(Due {
                    program: row.try_get(0)?,
                    participant: row.try_get(1)?,
                    exited_on,
                    due_on,
                });
            }
        }
        due.sort_by(|a, b| (a.due_on, &a.program, &a.participant).cmp(&(b.due_on, &b.program, &b.participant)));
        Ok(due)
    }
}
