//! What the dashboard polls: programme list, a programme's summary, and its
//! participants page by page. Read straight from the read models.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::ReadModels;
use crate::ProjectionError;

#[derive(Debug, Serialize, PartialEq)]
pub struct ProgramListing {
    pub program: String,
    pub name: String,
    pub organisation: String,
    pub country: String,
    pub starts_on: String,
    pub ends_on: Option<String>,
    pub enrolled: i64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    pub program: String,
    pub name: String,
    pub enrolled: i64,
    pub active: i64,
    pub exited: i64,
    /// Outcome group → enrolled participants whose last status is in it
    /// (exited or not); `unknown` for those with no status yet.
    pub status_distribution: BTreeMap<String, i64>,
    /// Contacts dated within the 30 days up to `today`.
    pub contacts_last_30_days: i64,
    pub today: String,
    /// Consultant → active participants.
    pub caseload: BTreeMap<String, i64>,
    pub targets: Vec<TargetRow>,
    pub latest_measurements: Vec<LatestMeasurement>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct TargetRow {
    pub metric: String,
    pub op: String,
    pub value: f64,
    pub set_on: String,
}

/// Per instrument, its latest wave: how many were measured and their mean
/// composite score, beside wave 1 for comparison.
#[derive(Debug, Serialize, PartialEq)]
pub struct LatestMeasurement {
    pub instrument: String,
    pub wave: Option<i64>,
    pub measured: i64,
    pub mean_composite: f64,
    pub first_wave_mean_composite: Option<f64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ParticipantRow {
    pub participant: String,
    pub enrolled_on: String,
    pub exited_on: Option<String>,
    pub exit_reason: Option<String>,
    pub consultant: Option<String>,
    pub current_status: Option<String>,
    pub current_outcome_group: Option<String>,
    pub current_status_since: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ParticipantPage {
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
    pub participants: Vec<ParticipantRow>,
}

/// Filters for the participant list; `None` matches all.
#[derive(Debug, Default)]
pub struct ParticipantFilter {
    pub status: Option<String>,
    pub consultant: Option<String>,
}

impl ReadModels {
    pub async fn programs(&self) -> Result<Vec<ProgramListing>, ProjectionError> {
        let rows = sqlx::query(
            "SELECT p.program, p.name, p.organisation, p.country, p.starts_on, p.ends_on,
                    (SELECT COUNT(*) FROM participants x WHERE x.program = p.program)
             FROM programs p ORDER BY p.program",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProgramListing {
                    program: r.try_get(0)?,
                    name: r.try_get(1)?,
                    organisation: r.try_get(2)?,
                    country: r.try_get(3)?,
                    starts_on: r.try_get(4)?,
                    ends_on: r.try_get(5)?,
                    enrolled: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// `None` when the programme is not defined.
    pub async fn summary(&self, program: &str, today: &str) -> Result<Option<Summary>, ProjectionError> {
        let Some(name) = sqlx::query("SELECT name FROM programs WHERE program = $1")
            .bind(program)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
        else {
            return Ok(None);
        };
        let counts = sqlx::query("SELECT COUNT(*), COUNT(exited_on) FROM participants WHERE program = $1")
            .bind(program)
            .fetch_one(&self.pool)
            .await?;
        let (enrolled, exited): (i64, i64) = (counts.try_get(0)?, counts.try_get(1)?);
        let status_distribution = self
            .counts(
                "SELECT COALESCE(current_outcome_group, 'unknown'), COUNT(*) FROM participants
                 WHERE program = $1 GROUP BY COALESCE(current_outcome_group, 'unknown')",
                program,
            )
            .await?;
        let caseload = self
            .counts(
                "SELECT COALESCE(consultant, 'unassigned'), COUNT(*) FROM participants
                 WHERE program = $1 AND exited_on IS NULL GROUP BY COALESCE(consultant, 'unassigned')",
                program,
            )
            .await?;
        let since = chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d")
            .map(|d| (d - chrono::Duration::days(29)).to_string())
            .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
        let contacts_last_30_days: i64 =
            sqlx::query("SELECT COUNT(*) FROM contacts WHERE program = $1 AND occurred_on >= $2 AND occurred_on <= $3")
                .bind(program)
                .bind(since)
                .bind(today)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        Ok(Some(Summary {
            program: program.to_string(),
            name,
            enrolled,
            active: enrolled - exited,
            exited,
            status_distribution,
            contacts_last_30_days,
            today: today.to_string(),
            caseload,
            targets: self.targets(program).await?,
            latest_measurements: self.latest_measurements(program).await?,
        }))
    }

    async fn counts(&self, sql: &'static str, program: &str) -> Result<BTreeMap<String, i64>, ProjectionError> {
        let rows = sqlx::query(sql).bind(program).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    async fn targets(&self, program: &str) -> Result<Vec<TargetRow>, ProjectionError> {
        let rows = sqlx::query("SELECT metric, op, value, set_on FROM targets WHERE program = $1 ORDER BY metric")
            .bind(program)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TargetRow {
                    metric: r.try_get(0)?,
                    op: r.try_get(1)?,
                    value: r.try_get(2)?,
                    set_on: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn latest_measurements(&self, program: &str) -> Result<Vec<LatestMeasurement>, ProjectionError> {
        let rows = sqlx::query(
            "SELECT instrument, wave, COUNT(*), AVG(composite) FROM measurement_scores
             WHERE program = $1 GROUP BY instrument, wave ORDER BY instrument, wave",
        )
        .bind(program)
        .fetch_all(&self.pool)
        .await?;
        let mut by_instrument: BTreeMap<String, Vec<(Option<i64>, i64, f64)>> = BTreeMap::new();
        for r in &rows {
            by_instrument
                .entry(r.try_get(0)?)
                .or_default()
                .push((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
        }
        Ok(by_instrument
            .into_iter()
            .filter_map(|(instrument, waves)| {
                let first = waves.iter().find(|w| w.0 == Some(1)).map(|w| w.2);
                let (wave, measured, mean_composite) = *waves.last()?;
                Some(LatestMeasurement {
                    instrument,
                    wave,
                    measured,
                    mean_composite,
                    first_wave_mean_composite: first,
                })
            })
            .collect())
    }

    /// A page of the programme's participants; `None` for an unknown programme.
    pub async fn participants(
        &self,
        program: &str,
        filter: &ParticipantFilter,
        page: u32,
        per_page: u32,
    ) -> Result<Option<ParticipantPage>, ProjectionError> {
        let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM programs WHERE program = $1")
            .bind(program)
            .fetch_optional(&self.pool)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let (page, per_page) = (page.max(1), per_page.clamp(1, 500));
        // NULL filters match everything, so one statement serves every combination.
        let filtered = "FROM participants WHERE program = $1
                          AND ($2 IS NULL OR current_status = $2)
                          AND ($3 IS NULL OR consultant = $3)";
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {filtered}")))
            .bind(program)
            .bind(filter.status.clone())
            .bind(filter.consultant.clone())
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT participant, enrolled_on, exited_on, exit_reason, consultant, current_status,
                    current_outcome_group, current_status_since
             {filtered} ORDER BY participant LIMIT $4 OFFSET $5"
        )))
        .bind(program)
        .bind(filter.status.clone())
        .bind(filter.consultant.clone())
        .bind(i64::from(per_page))
        .bind(i64::from(page - 1) * i64::from(per_page))
        .fetch_all(&self.pool)
        .await?;
        let participants = rows
            .iter()
            .map(|r| {
                Ok(ParticipantRow {
                    participant: r.try_get(0)?,
                    enrolled_on: r.try_get(1)?,
                    exited_on: r.try_get(2)?,
                    exit_reason: r.try_get(3)?,
                    consultant: r.try_get(4)?,
                    current_status: r.try_get(5)?,
                    current_outcome_group: r.try_get(6)?,
                    current_status_since: r.try_get(7)?,
                })
            })
            .collect::<Result<_, ProjectionError>>()?;
        Ok(Some(ParticipantPage {
            total,
            page,
            per_page,
            participants,
        }))
    }
}
