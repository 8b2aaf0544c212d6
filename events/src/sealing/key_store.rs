//! Participants' data keys, each wrapped by the master key, kept with the
//! log (the embedded store's `events.db`, or a PostgreSQL shared by the
//! hosts of a JetStream deployment).
//! A key is made before the first event sealed with it is stored, so no
//! stored event ever lacks its key; every key is held in memory once read
//! (all of them at start), so sealing and opening cost no round trip.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Generate, Key};
use chrono::Utc;
use sqlx::any::{AnyPoolOptions, AnyRow, install_default_drivers};
use sqlx::{AnyPool, Row};

use super::SealingError;
use super::master_key::MasterKey;
use crate::envelope::StreamKey;
use crate::names::{ProgramName, Pseudonym};

/// A participant's data key.
pub(crate) type DataKey = Key<XChaCha20Poly1305>;

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS data_keys (
        program TEXT NOT NULL, participant TEXT NOT NULL, wrapped TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (program, participant))",
    // Participants whose key was destroyed: no key is ever made for them again.
    "CREATE TABLE IF NOT EXISTS erased_data_keys (
        program TEXT NOT NULL, participant TEXT NOT NULL, erased_at TEXT NOT NULL,
        PRIMARY KEY (program, participant))",
    // Erasures begun: each is finished (its event stored, then the key
    // destroyed) or found not to have happened, at the next start.
    "CREATE TABLE IF NOT EXISTS pending_erasures (
        program TEXT NOT NULL, participant TEXT NOT NULL, begun_at TEXT NOT NULL,
        PRIMARY KEY (program, participant))",
    // What tells a wrong master key from a damaged key row: a known
    // value wrapped by the master key the store was made with.
    "CREATE TABLE IF NOT EXISTS data_keys_check (id INTEGER PRIMARY KEY, wrapped TEXT NOT NULL)",
];
const CHECK: &[u8] = b"utfall data keys";
/// Every key row, then every erasure mark (which wins over a key row).
const ALL_KEYS: &str = "SELECT program, participant, wrapped FROM data_keys \
    UNION ALL SELECT program, participant, NULL FROM erased_data_keys";
const CHECK_CONTEXT: &str = "check";

/// Keys asked for in one statement at most (parameters stay well under
/// SQLite's and PostgreSQL's limits).
const KEYS_PER_STATEMENT: usize = 400;

pub struct KeyStore {
    pool: AnyPool,
    postgres: bool,
    master: MasterKey,
    keys: RwLock<HashMap<StreamKey, Held>>,
}

/// A participant's key row as read: its key, a row the master key does
/// not open (altered on disk), or the mark of a destroyed key. A damaged
/// row makes only that participant's events unreadable, each named, never
/// the whole store.
#[derive(Clone, Debug, PartialEq)]
enum Held {
    Key(DataKey),
    Damaged,
    Erased,
}

/// What a wrapped key is bound to: its participant.
fn context(key: &StreamKey) -> String {
    key.to_string()
}

impl KeyStore {
    /// Opens the key store at `url`, making its tables when needed, and
    /// checks that `master` is the key it was made with.
    pub async fn open(url: &str, master: MasterKey) -> Result<Self, SealingError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(4).connect(url).await?;
        if url.starts_with("sqlite") {
            // The embedded log shares the file and writes it in WAL mode.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        // Several processes may start at once. SQLite: take the write lock
        // at the start (a read lock taken first cannot be upgraded while
        // another process writes, and the busy wait does not apply to that).
        let mut tx = if url.starts_with("sqlite") {
            pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            pool.begin().await?
        };
        if url.starts_with("postgres") {
            // Several processes may start at once; one sets the tables up.
            sqlx::query("SELECT pg_advisory_xact_lock(7244302)")
                .execute(&mut *tx)
                .await?;
        }
        for statement in SCHEMA {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO data_keys_check (id, wrapped) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(BASE64.encode(master.wrap(CHECK, CHECK_CONTEXT)?))
            .execute(&mut *tx)
            .await?;
        check(&mut tx, &master).await?;
        tx.commit().await?;
        let store = Self {
            pool,
            postgres: url.starts_with("postgres"),
            master,
            keys: RwLock::new(HashMap::new()),
        };
        // Every key at once: a projector reading the log needs them all,
        // and one statement costs less than one per participant.
        store.load_all().await?;
        Ok(store)
    }

    fn held_row(&self, stream: &StreamKey) -> Result<Option<Held>, SealingError> {
        Ok(self.keys.read().map_err(|_| SealingError::Poisoned)?.get(stream).cloned())
    }

    /// Whether the store at `url` was made already (with a master key).
    pub async fn made(url: &str) -> Result<bool, SealingError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(1).connect(url).await?;
        // No table yet is the answer "not made", not a failure.
        let made = sqlx::query("SELECT id FROM data_keys_check").fetch_optional(&pool).await;
        pool.close().await;
        Ok(matches!(made, Ok(Some(_))))
    }

    /// The data key of `stream` if it is held in memory.
    pub(crate) fn held(&self, stream: &StreamKey) -> Result<Option<DataKey>, SealingError> {
        match self.held_row(stream)? {
            Some(Held::Key(key)) => Ok(Some(key)),
            Some(Held::Damaged) => Err(SealingError::DamagedKey(stream.to_string())),
            Some(Held::Erased) => Err(SealingError::Erased(stream.to_string())),
            None => Ok(None),
        }
    }

    /// The data key of `stream`, read from the store when not held; none
    /// when the store has none.
    pub(crate) async fn get(&self, stream: &StreamKey) -> Result<Option<DataKey>, SealingError> {
        if self.held_row(stream)?.is_none() {
            self.load(std::slice::from_ref(stream)).await?;
        }
        self.held(stream)
    }

    /// Makes sure every one of `streams` has a data key, held in memory:
    /// missing ones are made and stored (by whichever process comes first).
    pub async fn ensure(&self, streams: &[StreamKey]) -> Result<(), SealingError> {
        let mut missing: Vec<StreamKey> = streams
            .iter()
            .filter(|s| s.participant.is_some() && !matches!(self.held_row(s), Ok(Some(_))))
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        self.load(&missing).await?;
        missing.retain(|s| !matches!(self.held_row(s), Ok(Some(_))));
        if missing.is_empty() {
            return Ok(());
        }
        let now = Utc::now().to_rfc3339();
        let mut tx = self.pool.begin().await?;
        for stream in &missing {
            let fresh = DataKey::generate();
            // An erased participant never gets a key again, even when another
            // process erased them after this one looked.
            sqlx::query(
                "INSERT INTO data_keys (program, participant, wrapped, created_at) SELECT $1, $2, $3, $4 \
                 WHERE NOT EXISTS (SELECT 1 FROM erased_data_keys WHERE program = $1 AND participant = $2) \
                 ON CONFLICT (program, participant) DO NOTHING",
            )
            .bind(stream.program.as_str())
            .bind(participant(stream))
            .bind(BASE64.encode(self.master.wrap(&fresh, &context(stream))?))
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        // A process started before a rotation must not store keys wrapped
        // by the master key that no longer opens the store. (Checked after
        // writing, so that SQLite takes the write lock first.)
        check(&mut tx, &self.master).await?;
        tx.commit().await?;
        // Another process may have stored its key first: read back what won.
        self.load(&missing).await
    }

    /// Destroys the data key of `stream`'s participant, for good: the row
    /// is deleted (and its bytes overwritten, in SQLite) and a mark kept
    /// that no key is made for them again. Erasing twice is harmless.
    pub async fn erase(&self, stream: &StreamKey) -> Result<(), SealingError> {
        if self.held_row(stream)? == Some(Held::Erased) {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if !self.postgres {
            sqlx::query("PRAGMA secure_delete = ON").execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO erased_data_keys (program, participant, erased_at) VALUES ($1, $2, $3) \
             ON CONFLICT (program, participant) DO NOTHING",
        )
        .bind(stream.program.as_str())
        .bind(participant(stream))
        .bind(Utc::now().to_rfc3339())
        .execute(&mut *tx)
        .await?;
        for table in ["data_keys", "pending_erasures"] {
            // `table` is one of the two names above.
            let sql = format!("DELETE FROM {table} WHERE program = $1 AND participant = $2");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(stream.program.as_str())
                .bind(participant(stream))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.keys
            .write()
            .map_err(|_| SealingError::Poisoned)?
            .insert(stream.clone(), Held::Erased);
        // No copy of the key may stay in a file: SQLite's write-ahead log
        // is emptied; PostgreSQL's table is rewritten without the dead row.
        let scrub = if self.postgres {
            "VACUUM FULL data_keys"
        } else {
            "PRAGMA wal_checkpoint(TRUNCATE)"
        };
        sqlx::query(scrub).execute(&self.pool).await?;
        Ok(())
    }

    /// Marks the erasure of `stream`'s participant as begun, before its
    /// event is stored: should the process die before the key is
    /// destroyed, the next start finishes it (see
    /// [`crate::log::finish_erasures`]).
    pub async fn begin_erasure(&self, stream: &StreamKey) -> Result<(), SealingError> {
        sqlx::query(
            "INSERT INTO pending_erasures (program, participant, begun_at) VALUES ($1, $2, $3) \
             ON CONFLICT (program, participant) DO NOTHING",
        )
        .bind(stream.program.as_str())
        .bind(participant(stream))
        .bind(Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When each erased participant of `program` was erased (RFC 3339), in
    /// order: what tells why a figure delivered earlier cannot be
    /// reproduced any more.
    pub async fn erasures(&self, program: &ProgramName) -> Result<Vec<String>, SealingError> {
        Ok(
            sqlx::query_scalar("SELECT erased_at FROM erased_data_keys WHERE program = $1 ORDER BY erased_at")
                .bind(program.as_str())
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Erasures begun and not finished.
    pub async fn pending_erasures(&self) -> Result<Vec<StreamKey>, SealingError> {
        let rows = sqlx::query("SELECT program, participant FROM pending_erasures")
            .fetch_all(&self.pool)
            .await?;
        let mut pending = Vec::with_capacity(rows.len());
        for row in rows {
            let (program, participant): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if let (Ok(program), Ok(participant)) = (ProgramName::new(program), Pseudonym::new(participant)) {
                pending.push(StreamKey {
                    program,
                    participant: Some(participant),
                });
            }
        }
        Ok(pending)
    }

    /// Forgets a begun erasure whose event was never stored: nothing was
    /// erased, and the request may be made again.
    pub async fn drop_pending_erasure(&self, stream: &StreamKey) -> Result<(), SealingError> {
        sqlx::query("DELETE FROM pending_erasures WHERE program = $1 AND participant = $2")
            .bind(stream.program.as_str())
            .bind(participant(stream))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Wraps every data key with `new` instead of the current master key,
    /// all at once (the data keys themselves, and so the log, do not
    /// change); from then on only `new` opens the store. Returns how many
    /// keys were re-wrapped.
    pub async fn rewrap(&self, new: &MasterKey) -> Result<u64, SealingError> {
        let mut tx = self.pool.begin().await?;
        if self.postgres {
            sqlx::query("LOCK TABLE data_keys, data_keys_check IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        // Writing first takes SQLite's write lock before anything is read.
        sqlx::query("UPDATE data_keys_check SET wrapped = $1 WHERE id = 1")
            .bind(BASE64.encode(new.wrap(CHECK, CHECK_CONTEXT)?))
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query("SELECT program, participant, wrapped FROM data_keys")
            .fetch_all(&mut *tx)
            .await?;
        for (stream, held) in self.open_rows(&rows)? {
            let Held::Key(key) = held else {
                return Err(SealingError::DamagedKey(stream.to_string()));
            };
            sqlx::query("UPDATE data_keys SET wrapped = $1 WHERE program = $2 AND participant = $3")
                .bind(BASE64.encode(new.wrap(&key, &context(&stream))?))
                .bind(stream.program.as_str())
                .bind(participant(&stream))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Reads the keys of `streams` the store holds into memory.
    async fn load(&self, streams: &[StreamKey]) -> Result<(), SealingError> {
        for chunk in streams.chunks(KEYS_PER_STATEMENT) {
            let pairs: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let pairs = pairs.join(", ");
            let sql = format!(
                "SELECT program, participant, wrapped FROM data_keys WHERE (program, participant) IN (VALUES {pairs}) \
                 UNION ALL \
                 SELECT program, participant, NULL FROM erased_data_keys WHERE (program, participant) IN (VALUES {pairs})"
            );
            // Only numbered placeholders are formatted into the text.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for stream in chunk {
                query = query.bind(stream.program.as_str()).bind(participant(stream));
            }
            let rows = query.fetch_all(&self.pool).await?;
            self.hold(&rows)?;
        }
        Ok(())
    }

    async fn load_all(&self) -> Result<(), SealingError> {
        let rows = sqlx::query(ALL_KEYS)
            .fetch_all(&self.pool)
            .await?;
        self.hold(&rows)
    }

    fn hold(&self, rows: &[AnyRow]) -> Result<(), SealingError> {
        let opened = self.open_rows(rows)?;
        let mut keys = self.keys.write().map_err(|_| SealingError::Poisoned)?;
        keys.extend(opened);
        Ok(())
    }

    /// The data keys of `(program, participant, wrapped)` rows, a NULL
    /// `wrapped` marking an erased one. A row naming no possible
    /// participant belongs to no event and is passed by.
    fn open_rows(&self, rows: &[AnyRow]) -> Result<Vec<(StreamKey, Held)>, SealingError> {
        let mut opened = Vec::with_capacity(rows.len());
        for row in rows {
            let (program, participant, wrapped): (String, String, Option<String>) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let (Ok(program), Ok(participant)) = (ProgramName::new(program), Pseudonym::new(participant)) else {
                tracing::warn!("the key store holds a row that names no participant; passed by");
                continue;
            };
            let stream = StreamKey {
                program,
                participant: Some(participant),
            };
            let Some(wrapped) = wrapped else {
                opened.push((stream, Held::Erased));
                continue;
            };
            let key = BASE64
                .decode(&wrapped)
                .ok()
                .and_then(|w| self.master.unwrap(&w, &context(&stream)))
                .and_then(|k| DataKey::try_from(k.as_slice()).ok());
            let held = match key {
                Some(key) => Held::Key(key),
                None => {
                    tracing::error!(participant = %stream, "a data key is damaged: that participant's events cannot be read");
                    Held::Damaged
                }
            };
            opened.push((stream, held));
        }
        Ok(opened)
    }
}

/// Checks that `master` opens the store's check value.
async fn check(conn: &mut sqlx::AnyConnection, master: &MasterKey) -> Result<(), SealingError> {
    let wrapped: String = sqlx::query_scalar("SELECT wrapped FROM data_keys_check WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    let opened = BASE64
        .decode(wrapped)
        .ok()
        .and_then(|wrapped| master.unwrap(&wrapped, CHECK_CONTEXT));
    if opened.as_deref() == Some(CHECK) {
        Ok(())
    } else {
        Err(SealingError::WrongMasterKey)
    }
}

fn participant(stream: &StreamKey) -> &str {
    stream.participant.as_ref().map(Pseudonym::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(participant: &str) -> StreamKey {
        StreamKey {
            program: ProgramName::new("p1").expect("programme"),
            participant: Some(Pseudonym::new(participant).expect("participant")),
        }
    }

    #[tokio::test]
    async fn two_processes_making_one_participants_key_agree_on_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display());
        let master = MasterKey::generate();
        let first = KeyStore::open(&url, master.clone()).await.expect("first");
        let second = KeyStore::open(&url, master.clone()).await.expect("second");
        let wanted: Vec<StreamKey> = (0..50).map(|i| stream(&format!("P{i}"))).collect();
        let (a, b) = tokio::join!(first.ensure(&wanted), second.ensure(&wanted));
        a.expect("first ensures");
        b.expect("second ensures");
        for s in &wanted {
            let key = first.held(s).expect("held");
            assert!(key.is_some(), "{s}");
            assert_eq!(second.held(s).expect("held"), key, "{s}");
        }
        // A third process reads the same keys; a programme stream has none.
        let third = KeyStore::open(&url, master).await.expect("third");
        assert_eq!(third.get(&wanted[7]).await.expect("get"), first.held(&wanted[7]).expect("held"));
        third.ensure(&[StreamKey::program(ProgramName::new("p1").expect("programme"))]).await.expect("ensure");
        assert_eq!(third.get(&stream("nobody")).await.expect("get"), None);
        assert!(matches!(
            KeyStore::open(&url, MasterKey::generate()).await,
            Err(SealingError::WrongMasterKey)
        ));
    }

    #[tokio::test]
    async fn a_rotated_master_key_opens_the_same_data_keys_and_the_old_one_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display());
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let running = KeyStore::open(&url, old.clone()).await.expect("open");
        let wanted = [stream("A"), stream("B")];
        running.ensure(&wanted).await.expect("ensure");
        assert_eq!(running.rewrap(&new).await.expect("rewrap"), 2);

        let reopened = KeyStore::open(&url, new).await.expect("the new key opens");
        for s in &wanted {
            assert_eq!(reopened.held(s).expect("held"), running.held(s).expect("held"), "{s}");
        }
        assert!(matches!(
            KeyStore::open(&url, old).await,
            Err(SealingError::WrongMasterKey)
        ));
        // A process still holding the old key makes no key it cannot wrap.
        assert!(matches!(
            running.ensure(&[stream("C")]).await,
            Err(SealingError::WrongMasterKey)
        ));
    }

    #[tokio::test]
    async fn an_erased_key_is_gone_for_every_process_and_never_made_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display());
        let master = MasterKey::generate();
        let first = KeyStore::open(&url, master.clone()).await.expect("first");
        let second = KeyStore::open(&url, master.clone()).await.expect("second");
        let (erased, kept) = (stream("A"), stream("B"));
        first.ensure(&[erased.clone(), kept.clone()]).await.expect("ensure");
        let wrapped: String = sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE participant = 'A'")
            .fetch_one(&first.pool)
            .await
            .expect("key row");

        first.erase(&erased).await.expect("erase");
        first.erase(&erased).await.expect("erasing twice is harmless");
        assert!(matches!(first.held(&erased), Err(SealingError::Erased(_))));
        assert!(first.held(&kept).expect("held").is_some());
        // Another process learns of the erasure when it asks for the key,
        // and makes none in its place.
        second.ensure(&[erased.clone()]).await.expect("ensure after erasure");
        let third = KeyStore::open(&url, master).await.expect("third");
        assert!(matches!(third.get(&erased).await, Err(SealingError::Erased(_))));
        third.ensure(&[erased.clone()]).await.expect("ensure");
        assert!(matches!(third.held(&erased), Err(SealingError::Erased(_))));
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE participant = 'A'")
            .fetch_one(&third.pool)
            .await
            .expect("count");
        assert_eq!(rows, 0);
        for store in [first, second, third] {
            store.pool.close().await;
        }
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("key store file");
            assert!(
                !bytes.windows(wrapped.len()).any(|w| w == wrapped.as_bytes()),
                "the erased key's row is still in {}",
                path.display()
            );
        }
    }
}
