//! The relational read models that dashboards poll: one projector folds the
//! log into all of them, with its checkpoint in the same transaction.

pub mod dashboard;
mod fold;
pub mod schema;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use utfall_events::{EventLog, StoredEvent};

use crate::ProjectionError;

/// The name under which the read-model projector keeps its checkpoint.
const PROJECTOR: &str = "read_models";

/// Read models in PostgreSQL (`postgres://…`) or SQLite (`sqlite://…`).
pub struct ReadModels {
    pool: AnyPool,
}

impl ReadModels {
    /// Connects and creates any missing table.
    pub async fn connect(url: &str) -> Result<Self, ProjectionError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(4).connect(url).await?;
        let boolean = if pool.acquire().await?.backend_name() == "PostgreSQL" {
            "BOOLEAN"
        } else {
            "INTEGER"
        };
        for statement in schema::SCHEMA {
            sqlx::query(sqlx::AssertSqlSafe(statement.replace("{bool}", boolean)))
                .execute(&pool)
                .await?;
        }
        Ok(Self { pool })
    }

    /// The last log position folded in (0 when none).
    pub async fn position(&self) -> Result<u64, ProjectionError> {
        let row = sqlx::query("SELECT last_position FROM checkpoints WHERE projector = $1")
            .bind(PROJECTOR)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.unwrap_or(0) as u64)
    }

    /// Folds a page of events in one transaction with the checkpoint.
    /// Events at or below the checkpoint are skipped, so a page delivered
    /// twice (after a crash, a redelivery) is applied once.
    pub async fn apply(&self, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT last_position FROM checkpoints WHERE projector = $1")
            .bind(PROJECTOR)
            .fetch_optional(&mut *tx)
            .await?;
        let checkpoint = row.map(|r| r.try_get::<i64, _>(0)).transpose()?.unwrap_or(0) as u64;
        let mut last = checkpoint;
        for event in events.iter().filter(|e| e.position > checkpoint) {
            fold::apply(&mut tx, event).await?;
            last = event.position;
        }
        if last > checkpoint {
            sqlx::query(
                "INSERT INTO checkpoints (projector, last_position) VALUES ($1, $2)
                 ON CONFLICT (projector) DO UPDATE SET last_position = excluded.last_position
                 WHERE checkpoints.last_position < excluded.last_position",
            )
            .bind(PROJECTOR)
            .bind(last as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Folds everything the log holds beyond the checkpoint; returns the new
    /// position.
    pub async fn catch_up(&self, log: &dyn EventLog, page: usize) -> Result<u64, ProjectionError> {
        let mut position = self.position().await?;
        loop {
            let events = log.read(position, page).await?;
            let Some(last) = events.last() else { return Ok(position) };
            let last = last.position;
            self.apply(&events).await?;
            position = last;
        }
    }

    /// Every row of a table as text, in a stable order, for comparing two
    /// sets of read models (PostgreSQL and SQLite, incremental and rebuilt).
    /// Booleans read as `1`/`0` and numbers in Rust's formatting, whatever
    /// the database.
    pub async fn dump(&self, table: &str) -> Result<Vec<Vec<String>>, ProjectionError> {
        if !schema::TABLES.contains(&table) {
            return Err(ProjectionError::UnknownTable(table.to_string()));
        }
        let sql = format!("SELECT * FROM {table}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        let mut dumped: Vec<Vec<String>> = rows
            .iter()
            .map(|row| (0..row.len()).map(|i| cell(row, i)).collect())
            .collect();
        dumped.sort();
        Ok(dumped)
    }
}

fn cell(row: &sqlx::any::AnyRow, i: usize) -> String {
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v.unwrap_or_else(|| "NULL".into());
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
        return v
            .map(|b| if b { "1" } else { "0" }.to_string())
            .unwrap_or_else(|| "NULL".into());
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return v.map(|n| n.to_string()).unwrap_or_else(|| "NULL".into());
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return v.map(|n| n.to_string()).unwrap_or_else(|| "NULL".into());
    }
    "?".into()
}
