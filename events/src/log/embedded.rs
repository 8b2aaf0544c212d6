//! The embedded store: the log in a local SQLite file, for one programme
//! office on one machine with no set-up. Appends are serialized: the
//! batches waiting meanwhile go together into one `BEGIN IMMEDIATE`
//! transaction with `synchronous=FULL` (one fsync for the group), each in a
//! savepoint of its own. So an acknowledged batch survives a crash, and a
//! refused or failed one leaves no trace and costs the others nothing.

use std::collections::HashMap;
use std::ops::DerefMut;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::stream::BoxStream;
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::{AppendError, Appended, EventLog, LogError, Quarantined, must_be_unreadable};
use crate::date::Date;
use crate::envelope::{NewEvent, RecordedEvent, StoredEvent, StreamKey};
use crate::names::Pseudonym;
use crate::rules::{Dated, KnownEvent, Planner, StateReader, Step, StreamState};
use crate::sealing::Sealing;
use crate::vocabulary::EventData;

/// File name of the log inside the data directory.
pub const FILE_NAME: &str = "events.db";

/// How often a tail looks for events appended by another process.
const TAIL_POLL: Duration = Duration::from_millis(250);
const TAIL_PAGE: usize = 1000;
/// Events sealed in one transaction by [`EmbeddedLog::seal_stored`].
const SEAL_PAGE: usize = 5000;

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
    erased_on   TEXT,
    indicators  TEXT,
    PRIMARY KEY (program, participant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    position    INTEGER PRIMARY KEY,
    reason      TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
";

pub struct EmbeddedLog {
    pool: SqlitePool,
    sealing: Arc<Sealing>,
    writer: Arc<GroupWriter>,
}

/// A batch waiting for the writer, and where its answer goes.
struct Waiting {
    batch: Vec<NewEvent>,
    answer: oneshot::Sender<Result<Vec<Appended>, AppendError>>,
}

/// Writes the waiting batches, one group at a time.
struct GroupWriter {
    pool: SqlitePool,
    sealing: Arc<Sealing>,
    waiting: std::sync::Mutex<Vec<Waiting>>,
    /// Held while a group (or `seal_stored`) writes.
    write: Mutex<()>,
    appended: watch::Sender<u64>,
}

/// Programme streams are stored with an empty participant.
fn participant_column(key: &StreamKey) -> &str {
    key.participant.as_ref().map(Pseudonym::as_str).unwrap_or("")
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`, sealing participants'
    /// data with the keys of `sealing`.
    pub async fn open(dir: &Path, sealing: Arc<Sealing>) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LogError::Unavailable(format!("cannot create data directory {}: {e}", dir.display())))?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(dir.join(FILE_NAME))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            // A larger page cache keeps the id and stream indexes in memory.
            .pragma("cache_size", "-131072");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        // Logs made before erasure or indicators existed lack their columns.
        for column in ["erased_on", "indicators"] {
            let present: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info('streams') WHERE name = $1")
                .bind(column)
                .fetch_one(&pool)
                .await?;
            if present == 0 {
                sqlx::query(AssertSqlSafe(format!("ALTER TABLE streams ADD COLUMN {column} TEXT")))
                    .execute(&pool)
                    .await?;
            }
        }
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&pool)
            .await?;
        let (appended, _) = watch::channel(head as u64);
        let writer = Arc::new(GroupWriter {
            pool: pool.clone(),
            sealing: sealing.clone(),
            waiting: std::sync::Mutex::default(),
            write: Mutex::new(()),
            appended,
        });
        Ok(Self { pool, sealing, writer })
    }

    /// Stores again, sealed, every participant's event (those stored in
    /// clear before sealing existed, and the rest with a fresh nonce), in
    /// place: positions, versions and recording times stay. Then rewrites
    /// the file so that no page of the clear payloads is left in it. An
    /// unreadable event is left as it is. Returns how many were sealed.
    pub async fn seal_stored(&self) -> Result<u64, LogError> {
        let _one_writer = self.writer.write.lock().await;
        let (mut after, mut sealed) = (0, 0);
        loop {
            let rows = sqlx::query("SELECT position, payload FROM events WHERE position > ? ORDER BY position LIMIT ?")
                .bind(after as i64)
                .bind(SEAL_PAGE as i64)
                .fetch_all(&self.pool)
                .await?;
            let Some(last) = rows.last().map(|row| row.get::<i64, _>(0) as u64) else {
                break;
            };
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                let payload: String = row.get(1);
                match self.sealing.open(row.get::<i64, _>(0) as u64, payload.as_bytes()).await {
                    Ok(stored) if stored.event.participant.is_some() => events.push(stored),
                    Ok(_) | Err(LogError::Unreadable { .. } | LogError::Erased { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let streams: Vec<StreamKey> = events.iter().map(|e| e.event.stream()).collect();
            self.sealing.keys().ensure(&streams).await?;
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            for stored in &events {
                sqlx::query("UPDATE events SET payload = ? WHERE position = ?")
                    .bind(self.sealing.seal(&stored.event)?)
                    .bind(stored.position as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            sealed += events.len() as u64;
            after = last;
        }
        sqlx::query("VACUUM").execute(&self.pool).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        Ok(sealed)
    }
}

impl GroupWriter {
    async fn append(self: &Arc<Self>, batch: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        let (answer, answered) = oneshot::channel();
        self.waiting
            .lock()
            .map_err(|_| LogError::Unavailable("the log's write queue was poisoned by a panic".into()))?
            .push(Waiting { batch, answer });
        // On a task of its own: a caller that goes away (a client hanging
        // up) does not cut short the group its batch went into.
        let writer = self.clone();
        tokio::spawn(async move { writer.write_waiting().await });
        answered
            .await
            .unwrap_or_else(|_| Err(LogError::Unavailable("the log's writer stopped".into()).into()))
    }

    /// Writes every batch waiting, once the previous group is written.
    async fn write_waiting(&self) {
        let _one_writer = self.write.lock().await;
        let group = match self.waiting.lock() {
            Ok(mut waiting) => std::mem::take(&mut *waiting),
            Err(_) => return,
        };
        let (mut batches, mut answers) = (Vec::with_capacity(group.len()), Vec::with_capacity(group.len()));
        for Waiting { batch, answer } in group {
            // Keys first, outside the log's write transaction: the key store
            // may share the file, and a key without events is harmless.
            match self.sealing.prepare(&batch).await {
                Ok(()) => {
                    batches.push(batch);
                    answers.push(answer);
                }
                Err(e) => {
                    let _ = answer.send(Err(e.into()));
                }
            }
        }
        if batches.is_empty() {
            return;
        }
        let results = self.write_group(batches).await;
        if let Some(last) = results.iter().flatten().flatten().map(|a| a.position).max() {
            self.appended.send_if_modified(|head| {
                let newer = last > *head;
                *head = (*head).max(last);
                newer
            });
        }
        for (answer, result) in answers.into_iter().zip(results) {
            let _ = answer.send(result);
        }
    }

    /// Writes the batches in one transaction; each batch's outcome.
    async fn write_group(&self, batches: Vec<Vec<NewEvent>>) -> Vec<Result<Vec<Appended>, AppendError>> {
        let count = batches.len();
        let everyone = |e: LogError| {
            let text = e.to_string();
            (0..count).map(|_| Err(LogError::Unavailable(text.clone()).into())).collect()
        };
        let mut tx = match self.pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(e) => return everyone(e.into()),
        };
        let (mut results, mut stored) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for batch in batches {
            match in_savepoint(&mut tx, &self.sealing, batch).await {
                Ok(Ok((appended, events))) => {
                    results.push(Ok(appended));
                    stored.push(events);
                }
                Ok(Err(refused)) => {
                    results.push(Err(refused));
                    stored.push(Vec::new());
                }
                Err(broken) => return everyone(broken),
            }
        }
        if let Err(e) = tx.commit().await {
            return everyone(e.into());
        }
        for (result, events) in results.iter_mut().zip(stored) {
            for event in &events {
                if let Err(e) = self.sealing.finish_erasure(event).await {
                    *result = Err(e.into());
                    break;
                }
            }
        }
        results
    }
}

/// One batch of a group, in a savepoint: where its events went, or why it
/// was refused (and its writes undone). Err when the transaction broke.
async fn in_savepoint(
    tx: &mut SqliteConnection,
    sealing: &Sealing,
    batch: Vec<NewEvent>,
) -> Result<Result<(Vec<Appended>, Vec<RecordedEvent>), AppendError>, LogError> {
    sqlx::query("SAVEPOINT batch").execute(&mut *tx).await?;
    let written = write_batch(tx, sealing, batch).await;
    if written.is_err() {
        sqlx::query("ROLLBACK TO batch").execute(&mut *tx).await?;
    }
    sqlx::query("RELEASE batch").execute(&mut *tx).await?;
    Ok(written)
}

/// Checks and writes one batch in `tx`: where each event went, and the
/// events stored.
async fn write_batch(
    tx: &mut SqliteConnection,
    sealing: &Sealing,
    batch: Vec<NewEvent>,
) -> Result<(Vec<Appended>, Vec<RecordedEvent>), AppendError> {
    let mut planner = Planner::default();
    let steps = {
        let mut reader = SqliteReader::new(&mut *tx, sealing);
        planner.plan(&mut reader, batch, 0, Utc::now()).await?
    };
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut *tx)
        .await
        .map_err(LogError::from)?;
    let mut appended = Vec::with_capacity(steps.len());
    let mut rows = Vec::new();
    let mut duplicates = Vec::new();
    for step in steps {
        match step {
            Step::Append(event) => {
                let position = head as u64 + rows.len() as u64 + 1;
                let payload = sealing.seal(&event)?;
                appended.push(Appended {
                    event_id: event.event_id,
                    position,
                    version: event.version,
                    duplicate: false,
                });
                rows.push((position, event, payload));
            }
            Step::Duplicate { event_id, .. } => {
                duplicates.push(appended.len());
                appended.push(Appended {
                    event_id,
                    position: 0,
                    version: 0,
                    duplicate: true,
                });
            }
        }
    }
    insert_events(&mut *tx, &rows).await?;
    for i in duplicates {
        let row = sqlx::query("SELECT position, version FROM events WHERE event_id = ?")
            .bind(appended[i].event_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(LogError::from)?;
        appended[i].position = row.get::<i64, _>(0) as u64;
        appended[i].version = row.get::<i64, _>(1) as u64;
    }
    save_states(&mut *tx, planner.states()).await?;
    Ok((appended, rows.into_iter().map(|(_, event, _)| event).collect()))
}

/// Rows per multi-row statement (SQLite allows 32766 parameters).
const ROWS_PER_STATEMENT: usize = 500;

fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

async fn insert_events(conn: &mut SqliteConnection, rows: &[(u64, RecordedEvent, String)]) -> Result<(), LogError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO events (position, event_id, program, participant, version, payload) VALUES {}",
            placeholders(chunk.len(), 6)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (position, event, payload) in chunk {
            query = query
                .bind(*position as i64)
                .bind(event.event_id.to_string())
                .bind(event.program.as_str())
                .bind(participant_column(&event.stream()).to_string())
                .bind(event.version as i64)
                .bind(payload.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn save_states(conn: &mut SqliteConnection, states: &HashMap<StreamKey, StreamState>) -> Result<(), LogError> {
    let states: Vec<_> = states.iter().collect();
    for chunk in states.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO streams (program, participant, version, defined, enrolled_id, enrolled_on, exited_id, exited_on, erased_on, indicators)
             VALUES {}
             ON CONFLICT (program, participant) DO UPDATE SET
               version = excluded.version, defined = excluded.defined,
               enrolled_id = excluded.enrolled_id, enrolled_on = excluded.enrolled_on,
               exited_id = excluded.exited_id, exited_on = excluded.exited_on, erased_on = excluded.erased_on,
               indicators = excluded.indicators",
            placeholders(chunk.len(), 10)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (key, state) in chunk {
            query = query
                .bind(key.program.as_str())
                .bind(participant_column(key))
                .bind(state.version as i64)
                .bind(state.defined)
                .bind(state.enrolment.map(|d| d.event_id.to_string()))
                .bind(state.enrolment.map(|d| d.on.to_string()))
                .bind(state.exit.map(|d| d.event_id.to_string()))
                .bind(state.exit.map(|d| d.on.to_string()))
                .bind(state.erased.map(|on| on.to_string()))
                // Indicator names are codes ([a-z0-9_]), so a comma parts them.
                .bind((!state.indicators.is_empty()).then(|| state.indicators.iter().cloned().collect::<Vec<_>>().join(",")));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn state_from_row(row: &SqliteRow) -> Result<StreamState, LogError> {
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
        version: row.get::<i64, _>("version") as u64,
        defined: row.get("defined"),
        enrolment: dated(row.get("enrolled_id"), row.get("enrolled_on"))?,
        exit: dated(row.get("exited_id"), row.get("exited_on"))?,
        erased: row
            .get::<Option<String>, _>("erased_on")
            .map(|on| Date::parse(&on))
            .transpose()
            .map_err(|reason| LogError::Unreadable { position: 0, reason })?,
        indicators: row
            .get::<Option<String>, _>("indicators")
            .map(|names| names.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

async fn known_from_row(sealing: &Sealing, row: &SqliteRow) -> Result<(Uuid, KnownEvent), LogError> {
    let payload: String = row.get(1);
    let stored = sealing.open(row.get::<i64, _>(0) as u64, payload.as_bytes()).await?;
    let e = stored.event;
    Ok((e.event_id, KnownEvent::of(e.stream(), e.occurred_on, &e.body)))
}

/// Answers the planner from SQLite, fetching a whole batch's streams and
/// events in a few statements ([`StateReader::prefetch`]).
struct SqliteReader<'a, C> {
    conn: C,
    sealing: &'a Sealing,
    states: HashMap<StreamKey, StreamState>,
    known: HashMap<Uuid, Option<KnownEvent>>,
}

impl<'a, C: DerefMut<Target = SqliteConnection> + Send> SqliteReader<'a, C> {
    fn new(conn: C, sealing: &'a Sealing) -> Self {
        Self {
            conn,
            sealing,
            states: HashMap::new(),
            known: HashMap::new(),
        }
    }

    async fn fetch_states(&mut self, keys: &[StreamKey]) -> Result<(), LogError> {
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT program, participant, version, defined, enrolled_id, enrolled_on, exited_id, exited_on, erased_on, indicators
                 FROM streams WHERE (program, participant) IN (VALUES {})",
                placeholders(chunk.len(), 2)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for key in chunk {
                query = query.bind(key.program.as_str()).bind(participant_column(key));
                self.states.insert(key.clone(), StreamState::default());
            }
            for row in query.fetch_all(&mut *self.conn).await? {
                let found = chunk.iter().find(|k| {
                    k.program.as_str() == row.get::<&str, _>(0) && participant_column(k) == row.get::<&str, _>(1)
                });
                if let Some(key) = found {
                    self.states.insert(key.clone(), state_from_row(&row)?);
                }
            }
        }
        Ok(())
    }

    async fn fetch_events(&mut self, ids: &[Uuid]) -> Result<(), LogError> {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT position, payload FROM events WHERE event_id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.to_string());
                self.known.insert(*id, None);
            }
            for row in query.fetch_all(&mut *self.conn).await? {
                // An erased participant's event is known no more; their
                // stream refuses everything anyway.
                match known_from_row(self.sealing, &row).await {
                    Ok((id, known)) => {
                        self.known.insert(id, Some(known));
                    }
                    Err(LogError::Erased { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl<C: DerefMut<Target = SqliteConnection> + Send> StateReader for SqliteReader<'_, C> {
    async fn prefetch(&mut self, batch: &[NewEvent]) -> Result<(), LogError> {
        let mut keys: Vec<StreamKey> = batch.iter().map(NewEvent::stream).collect();
        keys.extend(batch.iter().map(|e| StreamKey::program(e.program.clone())));
        keys.sort();
        keys.dedup();
        keys.retain(|k| !self.states.contains_key(k));
        self.fetch_states(&keys).await?;
        let mut ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        ids.extend(batch.iter().filter_map(|e| match &e.body {
            EventData::EventRetracted(r) => Some(r.event_id),
            _ => None,
        }));
        ids.sort();
        ids.dedup();
        ids.retain(|id| !self.known.contains_key(id));
        self.fetch_events(&ids).await
    }

    async fn stream_state(&mut self, key: &StreamKey) -> Result<StreamState, LogError> {
        if !self.states.contains_key(key) {
            self.fetch_states(std::slice::from_ref(key)).await?;
        }
        Ok(self.states.get(key).cloned().unwrap_or_default())
    }

    async fn known_event(&mut self, _key: &StreamKey, id: Uuid) -> Result<Option<KnownEvent>, LogError> {
        if !self.known.contains_key(&id) {
            self.fetch_events(&[id]).await?;
        }
        Ok(self.known.get(&id).cloned().flatten())
    }
}

/// Decodes `(position, payload)` rows, skipping quarantined positions and
/// erased participants' events.
async fn decode_rows(pool: &SqlitePool, sealing: &Sealing, rows: &[SqliteRow]) -> Result<Vec<StoredEvent>, LogError> {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let position = row.get::<i64, _>(0) as u64;
        let decoded = match row.try_get::<String, _>(1) {
            Ok(payload) => sealing.open(position, payload.as_bytes()).await,
            Err(e) => Err(LogError::Unreadable {
                position,
                reason: e.to_string(),
            }),
        };
        match decoded {
            Ok(event) => events.push(event),
            Err(LogError::Erased { .. }) => {}
            Err(e @ LogError::Unreadable { .. }) => {
                let quarantined: Option<i64> = sqlx::query_scalar("SELECT position FROM quarantine WHERE position = ?")
                    .bind(position as i64)
                    .fetch_optional(pool)
                    .await?;
                if quarantined.is_none() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(events)
}

/// Up to `max` readable events after `after`; empty only when none follows.
async fn read_page(pool: &SqlitePool, sealing: &Sealing, after: u64, max: usize) -> Result<Vec<StoredEvent>, LogError> {
    let mut after = after;
    loop {
        let rows = sqlx::query("SELECT position, payload FROM events WHERE position > ? ORDER BY position LIMIT ?")
            .bind(after as i64)
            .bind(max as i64)
            .fetch_all(pool)
            .await?;
        let Some(last) = rows.last().map(|row| row.get::<i64, _>(0) as u64) else {
            return Ok(Vec::new());
        };
        let events = decode_rows(pool, sealing, &rows).await?;
        if !events.is_empty() {
            return Ok(events);
        }
        // Every event of the page was quarantined.
        after = last;
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        self.writer.append(batch).await
    }

    async fn read(&self, after: u64, max: usize) -> Result<Vec<StoredEvent>, LogError> {
        read_page(&self.pool, &self.sealing, after, max).await
    }

    async fn tail(&self, after: u64) -> Result<BoxStream<'static, Result<StoredEvent, LogError>>, LogError> {
        let (tx, rx) = mpsc::channel(TAIL_PAGE);
        let (pool, sealing) = (self.pool.clone(), self.sealing.clone());
        let mut appended = self.writer.appended.subscribe();
        tokio::spawn(async move {
            let mut after = after;
            loop {
                match read_page(&pool, &sealing, after, TAIL_PAGE).await {
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
        let rows =
            sqlx::query("SELECT position, payload FROM events WHERE program = ? AND participant = ? ORDER BY version")
                .bind(key.program.as_str())
                .bind(participant_column(key))
                .fetch_all(&self.pool)
                .await?;
        decode_rows(&self.pool, &self.sealing, &rows).await
    }

    async fn quarantine(&self, position: u64, reason: &str) -> Result<Quarantined, LogError> {
        let payload: Option<String> = sqlx::query_scalar("SELECT CAST(payload AS TEXT) FROM events WHERE position = ?")
            .bind(position as i64)
            .fetch_optional(&self.pool)
            .await?;
        let entry = must_be_unreadable(&self.sealing, position, payload.as_deref().map(str::as_bytes), reason).await?;
        sqlx::query("INSERT INTO quarantine (position, reason, recorded_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(position as i64)
            .bind(&entry.reason)
            .bind(entry.recorded_at.to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(entry)
    }

    fn sealing(&self) -> &Sealing {
        &self.sealing
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>, LogError> {
        let rows = sqlx::query("SELECT position, reason, recorded_at FROM quarantine ORDER BY position")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let recorded_at: String = row.get(2);
                Ok(Quarantined {
                    position: row.get::<i64, _>(0) as u64,
                    reason: row.get(1),
                    recorded_at: chrono::DateTime::parse_from_rfc3339(&recorded_at)
                        .map_err(|e| LogError::Unavailable(format!("quarantine record {recorded_at:?}: {e}")))?
                        .to_utc(),
                })
            })
            .collect()
    }

    async fn head(&self) -> Result<u64, LogError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(head as u64)
    }

    async fn state_reader(&self) -> Result<Box<dyn StateReader + '_>, LogError> {
        Ok(Box::new(SqliteReader::new(self.pool.acquire().await?, &self.sealing)))
    }
}
