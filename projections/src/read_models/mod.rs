//! The relational read models that dashboards poll: a projector folds the
//! log into all of them, with its checkpoint in the same transaction. One
//! projector may fold every programme, or several may share them out
//! (see [`checkpoint`]).

pub mod checkpoint;
pub mod dashboard;
pub mod retention;
mod derived;
mod fold;
mod rows;
pub mod schema;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use utfall_events::{EventLog, StoredEvent};

pub use self::checkpoint::Scope;
use crate::ProjectionError;

/// PostgreSQL advisory lock key held while the schema is created ("utfall").
const SCHEMA_LOCK: i64 = 0x7574_6661_6c6c;

/// Read models in PostgreSQL (`postgres://…`) or SQLite (`sqlite://…`).
pub struct ReadModels {
    pool: AnyPool,
    url: String,
    postgres: bool,
    /// The programmes this process folds.
    scope: Scope,
}

impl ReadModels {
    /// Connects and creates any missing table.
    pub async fn connect(url: &str) -> Result<Self, ProjectionError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(4).connect(url).await?;
        let mut conn = pool.acquire().await?;
        let postgres = conn.backend_name() == "PostgreSQL";
        let boolean = if postgres { "BOOLEAN" } else { "INTEGER" };
        // PostgreSQL fails concurrent `CREATE TABLE IF NOT EXISTS` of one
        // table (two processes starting together), so schema creation takes
        // a lock; SQLite serializes it on its own.
        if postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(SCHEMA_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        let created = async {
            for statement in schema::SCHEMA {
                sqlx::query(sqlx::AssertSqlSafe(statement.replace("{bool}", boolean)))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(SCHEMA_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        created?;
        drop(conn);
        Ok(Self {
            pool,
            url: url.to_string(),
            postgres,
            scope: Scope::All,
        })
    }

    /// The same read models, folded for some programmes only.
    pub fn scoped(self, scope: Scope) -> Self {
        Self { scope, ..self }
    }

    /// The last log position folded in for every programme of the scope
    /// (0 when none).
    pub async fn position(&self) -> Result<u64, ProjectionError> {
        checkpoint::position(&mut *self.pool.acquire().await?, &self.scope).await
    }

    /// Every read-model projector's checkpoint, by name.
    pub async fn checkpoints(&self) -> Result<Vec<(String, u64)>, ProjectionError> {
        checkpoint::all(&mut *self.pool.acquire().await?).await
    }

    /// Folds a page of events, read from the log after position `after`,
    /// in one transaction with the checkpoint. Events at or below the
    /// checkpoint are skipped, so a page delivered twice (after a crash, a
    /// redelivery) is applied once.
    pub async fn apply(&self, after: u64, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        let mut tx = self.pool.begin().await?;
        let standing = checkpoint::lock(&mut tx, &self.scope, self.postgres).await?;
        let checkpoint = standing.position;
        if let Some(first) = events.iter().find(|e| e.position > checkpoint)
            && crate::follow::is_gap(checkpoint, after, first.position)
        {
            return Err(ProjectionError::Gap {
                checkpoint,
                next: first.position,
            });
        }
        let mut page = fold::PageFold::new();
        for event in events.iter().filter(|e| standing.folds(e.event.program.as_str(), e.position)) {
            page.apply(&mut tx, event).await?;
        }
        page.finish(&mut tx).await?;
        if let Some(last) = events.last().map(|e| e.position).filter(|last| *last > checkpoint) {
            checkpoint::advance(&mut tx, &standing, last).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Folds everything the log holds beyond the checkpoint; returns the new
    /// position.
    pub async fn catch_up(&self, log: &dyn EventLog, page: usize) -> Result<u64, ProjectionError> {
        crate::follow::catch_up(log, self, page).await
    }

    /// Rebuilds every read model from position 0 into scratch tables, then
    /// replaces the live tables' contents with them in one transaction, so
    /// readers see the old models until the new ones are complete. A
    /// projector running meanwhile notices the moved checkpoint and carries
    /// on from it. Returns the rebuilt position.
    pub async fn rebuild(&self, log: &dyn EventLog, page: usize) -> Result<u64, ProjectionError> {
        let scratch = Scratch::new(self)?;
        scratch.prepare(self).await?;
        let result = async {
            let models = ReadModels::connect(&scratch.url).await?;
            let position = models.catch_up(log, page).await?;
            models.pool.close().await;
            self.replace_from(&scratch).await?;
            Ok(position)
        }
        .await;
        scratch.remove(self).await?;
        result
    }

    async fn replace_from(&self, scratch: &Scratch) -> Result<(), ProjectionError> {
        let mut conn = self.pool.acquire().await?;
        if !self.postgres {
            let attach = format!("ATTACH DATABASE '{}' AS rebuilt", scratch.name.replace('\'', "''"));
            sqlx::query(sqlx::AssertSqlSafe(attach)).execute(&mut *conn).await?;
        }
        let source = if self.postgres {
            scratch.name.as_str()
        } else {
            "rebuilt"
        };
        let copied = async {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for table in schema::TABLES.iter().chain(schema::OWN_TABLES.iter()) {
                // Table names are the fixed list in `schema`; the source is ours.
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                    .execute(&mut *tx)
                    .await?;
                let copy = format!("INSERT INTO {table} SELECT * FROM {source}.{table}");
                sqlx::query(sqlx::AssertSqlSafe(copy)).execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await;
        if !self.postgres {
            sqlx::query("DETACH DATABASE rebuilt").execute(&mut *conn).await?;
        }
        Ok(copied?)
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

/// Where a rebuild folds: a fresh PostgreSQL schema, or a SQLite file beside
/// the live one.
struct Scratch {
    /// Schema name (PostgreSQL) or file path (SQLite).
    name: String,
    url: String,
}

impl Scratch {
    fn new(live: &ReadModels) -> Result<Self, ProjectionError> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        if live.postgres {
            let name = format!("utfall_rebuild_{}_{stamp}", std::process::id());
            let separator = if live.url.contains('?') { '&' } else { '?' };
            let url = format!("{}{separator}options=-c%20search_path%3D{name}", live.url);
            return Ok(Self { name, url });
        }
        let path = live
            .url
            .strip_prefix("sqlite://")
            .map(|rest| rest.split('?').next().unwrap_or(rest))
            .filter(|p| !p.is_empty() && *p != ":memory:")
            .ok_or_else(|| ProjectionError::Unsupported(format!("cannot rebuild beside {}", live.url)))?;
        let name = format!("{path}.rebuild-{stamp}");
        Ok(Self {
            url: format!("sqlite://{name}?mode=rwc"),
            name,
        })
    }

    async fn prepare(&self, live: &ReadModels) -> Result<(), ProjectionError> {
        if live.postgres {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {}", self.name)))
                .execute(&live.pool)
                .await?;
        }
        Ok(())
    }

    async fn remove(&self, live: &ReadModels) -> Result<(), ProjectionError> {
        if live.postgres {
            let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&live.pool).await?;
        } else {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
            }
        }
        Ok(())
    }
}
