//! The programmes the catalog knows, with their names and start dates.

use chrono::{DateTime, NaiveDate, Utc};

use crate::values::strings;
use crate::{Analytics, QueryError, Snapshot};

#[derive(Clone, Debug, PartialEq)]
pub struct Programme {
    pub program: String,
    pub name: String,
    pub starts_on: Option<NaiveDate>,
}

impl Analytics {
    /// Every programme defined as known at `known_at`, by code.
    pub async fn programmes(&self, known_at: DateTime<Utc>) -> Result<Vec<Programme>, QueryError> {
        let answer = self
            .sql(
                &Snapshot::new(None, Some(known_at)),
                "SELECT program, name, CAST(starts_on AS VARCHAR) AS starts_on FROM programs ORDER BY program",
            )
            .await?;
        let programs = strings(&answer.batches, "program")?;
        let names = strings(&answer.batches, "name")?;
        let starts = strings(&answer.batches, "starts_on")?;
        Ok(programs
            .into_iter()
            .zip(names)
            .zip(starts)
            .filter_map(|((program, name), starts_on)| {
                Some(Programme {
                    program: program?,
                    name: name.unwrap_or_default(),
                    starts_on: starts_on.and_then(|s| s.parse().ok()),
                })
            })
            .collect())
    }
}
