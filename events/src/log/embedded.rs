//! The embedded store: the log in a local SQLite file, for one programme
//! office on one machine with no set-up. Appends are serialized and each batch
//! is one `BEGIN IMMEDIATE` transaction with `synchronous=FULL`, so an
//! acknowledged batch survives a crash and a failed one leaves no trace.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::stream::BoxStream;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection};
use tokio::sync::{Mutex, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::{AppendError, Appended, EventLog, LogError, decode};
use crate::date::Date;
use crate::envelope::{NewEvent, StoredEvent, StreamKey};
use crate::names::Pseudonym;
use crate::rules::{Dated, KnownEvent, Planner, StateReader, Step, StreamState};

/// File name of the log inside the data directory.
pub const FILE_NAME: &str = "events.db";

/// How often a tail looks for events appended by another process.
const TAIL_POLL: Duration = Duration::from_millis(250);
const TAIL_PAGE: usize = 1000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    program     TEXT NOT NULL,
    participant TEXT NOT NULL,
    version     INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    UNIQUE (program, participant, version)
);
CREATE TABLE IF NOT EXISTS streams (
    program     TEXT NOT NULL,
    participant TEXT NOT NULL,
    version     INTEGER NOT NULL,
    defined     INTEGER NOT NULL,
    enrolled_id TEXT,
    enrolled_on TEXT,
    exited_id   TEXT,
    exited_on   TEXT,
    PRIMARY KEY (program, participant)
) WITHOUT ROWID;
";

pub struct EmbeddedLog {
    pool: SqlitePool,
    write: Mutex<()>,
    appended: watch::Sender<u64>,
}

/// Programme streams are stored with an empty participant.
fn participant_column(key: &StreamKey) -> &str {
    key.participant.as_ref().map(Pseudonym::as_str).unwrap_or("")
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`.
    pub async fn open(dir: &Path) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LogError::Unavailable(format!("cannot create data directory {}: {e}", dir.display())))?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(dir.join(FILE_NAME))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events").fetch_one(&pool).await?;
        let (appended, _) = watch::channel(head as u64);
        Ok(Self { pool, write: Mutex::new(()), appended })
    }

    async fn write_batch(&self, batch: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(LogError::from)?;
        let mut planner = Planner::default();
        let steps = planner.plan(&mut TxReader(&mut tx), batch, 0, Utc::now()).await?;
        let mut appended = Vec::with_capacity(steps.len());
        for step in steps {
            appended.push(match step {
                Step::Append(event) => {
                    let payload = serde_json::to_string(&event).map_err(|e| LogError::Unavailable(e.to_string()))?;
                    let position: i64 = sqlx::query_scalar(
                        "INSERT INTO events (event_id, program, participant, version, payload)
                         VALUES (?, ?, ?, ?, ?) RETURNING position",
                    )
                    .bind(event.event_id.to_string())
                    .bind(event.program.as_str())
                    .bind(participant_column(&event.stream()))
                    .bind(event.version as i64)
                    .bind(payload)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(LogError::from)?;
                    Appended { event_id: event.event_id, position: position as u64, version: event.version, duplicate: false }
                }
                Step::Duplicate { event_id, .. } => {
                    let row = sqlx::query("SELECT position, version FROM events WHERE event_id = ?")
                        .bind(event_id.to_string())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(LogError::from)?;
                    Appended {
                        event_id,
                        position: row.get::<i64, _>(0) as u64,
                        version: row.get::<i64, _>(1) as u64,
                        duplicate: true,
                    }
                }
            });
        }
        for (key, state) in planner.states() {
            save_state(&mut tx, key, state).await?;
        }
        tx.commit().await.map_err(LogError::from)?;
        Ok(appended)
    }
}

async fn save_state(conn: &mut SqliteConnection, key: &StreamKey, state: &StreamState) -> Result<(), LogError> {
    sqlx::query(
        "INSERT INTO streams (program, participant, version, defined, enrolled_id, enrolled_on, exited_id, exited_on)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (program, participant) DO UPDATE SET
           version = excluded.version, defined = excluded.defined,
           enrolled_id = excluded.enrolled_id, enrolled_on = excluded.enrolled_on,
           exited_id = excluded.exited_id, exited_on = excluded.exited_on",
    )
    .bind(key.program.as_str())
    .bind(participant_column(key))
    .bind(state.version as i64)
    .bind(state.defined)
    .bind(state.enrolment.map(|d| d.event_id.to_string()))
    .bind(state.enrolment.map(|d| d.on.to_string()))
    .bind(state.exit.map(|d| d.event_id.to_string()))
    .bind(state.exit.map(|d| d.on.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn load_state(conn: &mut SqliteConnection, key: &StreamKey) -> Result<StreamState, LogError> {
    let row = sqlx::query(
        "SELECT version, defined, enrolled_id, enrolled_on, exited_id, exited_on
         FROM streams WHERE program = ? AND participant = ?",
    )
    .bind(key.program.as_str())
    .bind(participant_column(key))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(StreamState::default()) };
    let dated = |id: Option<String>, on: Option<String>| -> Result<Option<Dated>, LogError> {
        match (id, on) {
            (Some(id), Some(on)) => {
                let bad = |reason: String| LogError::Unreadable { position: 0, reason };
                Ok(Some(Dated {
                    event_id: Uuid::parse_str(&id).map_err(|e| bad(e.to_string()))?,
                    on: Date::parse(&on).map_err(bad)?,
                }))
            }
            _ => Ok(None),
        }
    };
    Ok(StreamState {
        version: row.get::<i64, _>(0) as u64,
        defined: row.get(1),
        enrolment: dated(row.get(2), row.get(3))?,
        exit: dated(row.get(4), row.get(5))?,
    })
}

async fn find_event(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<KnownEvent>, LogError> {
    let row = sqlx::query("SELECT position, payload FROM events WHERE event_id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored = decode(row.get::<i64, _>(0) as u64, row.get::<String, _>(1).as_bytes())?;
    let e = stored.event;
    Ok(Some(KnownEvent::of(e.stream(), e.occurred_on, &e.body)))
}

struct TxReader<'c>(&'c mut SqliteConnection);

#[async_trait]
impl StateReader for TxReader<'_> {
    async fn stream_state(&mut self, key: &StreamKey) -> Result<StreamState, LogError> {
        load_state(self.0, key).await
    }

    async fn known_event(&mut self, _key: &StreamKey, id: Uuid) -> Result<Option<KnownEvent>, LogError> {
        find_event(self.0, id).await
    }
}

fn decode_rows(rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Vec<StoredEvent>, LogError> {
    rows.iter()
        .map(|row| decode(row.get::<i64, _>(0) as u64, row.get::<String, _>(1).as_bytes()))
        .collect()
}

async fn read_page(pool: &SqlitePool, after: u64, max: usize) -> Result<Vec<StoredEvent>, LogError> {
    let rows = sqlx::query("SELECT position, payload FROM events WHERE position > ? ORDER BY position LIMIT ?")
        .bind(after as i64)
        .bind(max as i64)
        .fetch_all(pool)
        .await?;
    decode_rows(rows)
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        let _one_writer = self.write.lock().await;
        let appended = self.write_batch(batch).await?;
        if let Some(last) = appended.iter().map(|a| a.position).max() {
            self.appended.send_if_modified(|head| {
                let newer = last > *head;
                *head = (*head).max(last);
                newer
            });
        }
        Ok(appended)
    }

    async fn read(&self, after: u64, max: usize) -> Result<Vec<StoredEvent>, LogError> {
        read_page(&self.pool, after, max).await
    }

    async fn tail(&self, after: u64) -> Result<BoxStream<'static, Result<StoredEvent, LogError>>, LogError> {
        let (tx, rx) = mpsc::channel(TAIL_PAGE);
        let pool = self.pool.clone();
        let mut appended = self.appended.subscribe();
        tokio::spawn(async move {
            let mut after = after;
            loop {
                match read_page(&pool, after, TAIL_PAGE).await {
                    Ok(page) if page.is_empty() => {
                        // Woken by an append in this process, or by the poll
                        // for appends by another process on the same file.
                        let _ = tokio::time::timeout(TAIL_POLL, appended.changed()).await;
                    }
                    Ok(page) => {
                        for event in page {
                            after = event.position;
                            if tx.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn read_stream(&self, key: &StreamKey) -> Result<Vec<StoredEvent>, LogError> {
        let rows = sqlx::query(
            "SELECT position, payload FROM events WHERE program = ? AND participant = ? ORDER BY version",
        )
        .bind(key.program.as_str())
        .bind(participant_column(key))
        .fetch_all(&self.pool)
        .await?;
        decode_rows(rows)
    }

    async fn head(&self) -> Result<u64, LogError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events").fetch_one(&self.pool).await?;
        Ok(head as u64)
    }

    async fn stream_state(&self, key: &StreamKey) -> Result<StreamState, LogError> {
        let mut conn = self.pool.acquire().await?;
        load_state(&mut conn, key).await
    }

    async fn known_event(&self, _key: &StreamKey, id: Uuid) -> Result<Option<KnownEvent>, LogError> {
        let mut conn = self.pool.acquire().await?;
        find_event(&mut conn, id).await
    }
}
