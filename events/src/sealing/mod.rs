//! Crypto-shredding: how events are stored so that a participant's data
//! can be erased from an append-only log. Each participant's events carry
//! their `type` and `data` sealed (XChaCha20-Poly1305) with that
//! participant's own data key; destroying the key leaves ciphertext no one
//! can open. What projections route by — event id, programme, participant
//! pseudonym, type, dates, version — stays in clear.
//!
//! Stored forms (the payload's `schema_version`):
//! * 1 — the event as recorded, in clear: programme events, erasures, and
//!   every event written before sealing existed (still read as they are).
//! * 2 — a participant's event with its `type` and `data` sealed in `sealed`.
//!
//! Either form reads back as the same [`RecordedEvent`] (of vocabulary
//! version [`SCHEMA_VERSION`]); the form is the log's business.
//!
//! Erasure: a `participant_erased` event (in clear: it carries no personal
//! data) is stored first, then the participant's key destroyed. Reading
//! the erasure destroys the key too, when a crash came between; reading
//! any other event of theirs then answers [`LogError::Erased`], which
//! every reader passes by.

mod cipher;
mod key_store;
mod master_key;

pub use key_store::KeyStore;
pub use master_key::MasterKey;

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::date::Date;
use crate::envelope::{NewEvent, RecordedEvent, StoredEvent, StreamKey};
use crate::log::LogError;
use crate::names::{ProgramName, Pseudonym};
use crate::vocabulary::{EventData, SCHEMA_VERSION};

/// The stored form of a sealed event.
const SEALED_FORM: u32 = 2;

/// Why keys could not be had, or an event not sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error("the master key must be 64 hexadecimal digits (256 bits)")]
    MasterKeyFormat,
    #[error("the master key file {0} does not hold 64 hexadecimal digits (256 bits)")]
    MasterKeyFileFormat(String),
    #[error("cannot use the master key file {path}")]
    MasterKeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the master key does not open this deployment's data keys: it is not the key they were made with \
         (check --master-key-file / UTFALL_MASTER_KEY)"
    )]
    WrongMasterKey,
    #[error("the data key of {0} is damaged: the master key does not open it")]
    DamagedKey(String),
    #[error("{0} was erased: their data key is destroyed")]
    Erased(String),
    #[error("key store")]
    Database(#[from] sqlx::Error),
    #[error("a message too long to seal")]
    TooLong,
    #[error("the key store's memory was poisoned by a panic")]
    Poisoned,
}

impl From<SealingError> for LogError {
    fn from(e: SealingError) -> Self {
        match e {
            SealingError::Database(e) => LogError::from(e),
            other => LogError::Unavailable(other.to_string()),
        }
    }
}

/// Seals events for the log and opens what the log holds.
pub struct Sealing {
    keys: KeyStore,
}

/// A participant's event as stored in form 2.
#[derive(Serialize, Deserialize)]
struct Sealed<'a> {
    schema_version: u32,
    event_id: Uuid,
    program: ProgramName,
    participant: Pseudonym,
    version: u64,
    occurred_on: Date,
    recorded_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recorded_by: Option<Pseudonym>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// Base64 of the nonce and the ciphertext of the event's `type` and `data`.
    #[serde(borrow)]
    sealed: Cow<'a, str>,
}

/// What a sealed body is bound to: its event and type, so that no sealed
/// body can be moved to another event or shown under another type.
fn binding(event_id: Uuid, kind: &str) -> Vec<u8> {
    let mut aad = event_id.as_bytes().to_vec();
    aad.extend_from_slice(kind.as_bytes());
    aad
}

impl Sealing {
    pub fn new(keys: KeyStore) -> Self {
        Self { keys }
    }

    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Destroys the data key of the participant `event` erases, if it is
    /// an erasure: called once it is stored, and again whenever it is read,
    /// so that an erasure cut short (a crash between storing the event and
    /// destroying the key) is finished by the next reader.
    pub async fn finish_erasure(&self, event: &RecordedEvent) -> Result<(), LogError> {
        if matches!(event.body, EventData::ParticipantErased(_)) && event.participant.is_some() {
            self.keys.erase(&event.stream()).await?;
        }
        Ok(())
    }

    /// Makes sure every participant of `batch` has a data key, before any
    /// of their events is sealed.
    pub async fn prepare(&self, batch: &[NewEvent]) -> Result<(), LogError> {
        let streams: Vec<StreamKey> = batch.iter().map(NewEvent::stream).collect();
        Ok(self.keys.ensure(&streams).await?)
    }

    /// The payload to store for `event`: sealed when it is a participant's
    /// (their key must have been prepared), in clear when a programme's or
    /// an erasure.
    pub fn seal(&self, event: &RecordedEvent) -> Result<String, LogError> {
        let unavailable = |e: serde_json::Error| LogError::Unavailable(e.to_string());
        // An erasure carries no personal data, and must stay readable once
        // the key is gone.
        let (Some(participant), false) = (&event.participant, matches!(event.body, EventData::ParticipantErased(_)))
        else {
            return serde_json::to_string(event).map_err(unavailable);
        };
        let stream = event.stream();
        let key = self
            .keys
            .held(&stream)?
            .ok_or_else(|| LogError::Unavailable(format!("no data key was prepared for {stream}")))?;
        let kind = event.body.type_name();
        let body = serde_json::to_vec(&event.body).map_err(unavailable)?;
        let sealed = cipher::seal(&key, &body, &binding(event.event_id, kind))?;
        serde_json::to_string(&Sealed {
            schema_version: SEALED_FORM,
            event_id: event.event_id,
            program: event.program.clone(),
            participant: participant.clone(),
            version: event.version,
            occurred_on: event.occurred_on,
            recorded_at: event.recorded_at,
            recorded_by: event.recorded_by.clone(),
            kind: Cow::Borrowed(kind),
            sealed: Cow::Owned(BASE64.encode(sealed)),
        })
        .map_err(unavailable)
    }

    /// The event stored at `position` as `payload`, in either form.
    pub async fn open(&self, position: u64, payload: &[u8]) -> Result<StoredEvent, LogError> {
        let unreadable = |reason: String| LogError::Unreadable { position, reason };
        let Ok(sealed) = serde_json::from_slice::<Sealed>(payload) else {
            let stored = decode_plain(position, payload)?;
            self.finish_erasure(&stored.event).await?;
            return Ok(stored);
        };
        if sealed.schema_version != SEALED_FORM {
            return Err(unreadable(format!(
                "schema version {} is not supported",
                sealed.schema_version
            )));
        }
        let stream = StreamKey {
            program: sealed.program,
            participant: Some(sealed.participant),
        };
        let key = match self.keys.get(&stream).await {
            Ok(Some(key)) => key,
            Err(SealingError::Erased(_)) => return Err(LogError::Erased { position }),
            Ok(None) => return Err(unreadable(format!("the key store holds no data key for {stream}"))),
            Err(e @ SealingError::DamagedKey(_)) => {
                return Err(unreadable(format!("event {}: {e}", sealed.event_id)));
            }
            Err(e) => return Err(e.into()),
        };
        let mut bytes = BASE64.decode(sealed.sealed.as_bytes()).unwrap_or_default();
        let body = cipher::open_in_place(&key, &mut bytes, &binding(sealed.event_id, &sealed.kind))
            .ok_or_else(|| unreadable(format!("the sealed data of event {} does not open", sealed.event_id)))?;
        let body: EventData = serde_json::from_slice(body).map_err(|e| unreadable(e.to_string()))?;
        Ok(StoredEvent {
            position,
            event: RecordedEvent {
                event_id: sealed.event_id,
                program: stream.program,
                participant: stream.participant,
                version: sealed.version,
                occurred_on: sealed.occurred_on,
                recorded_at: sealed.recorded_at,
                recorded_by: sealed.recorded_by,
                schema_version: SCHEMA_VERSION,
                body,
            },
        })
    }
}

/// An event stored in clear (form 1).
fn decode_plain(position: u64, payload: &[u8]) -> Result<StoredEvent, LogError> {
    let event: RecordedEvent = serde_json::from_slice(payload).map_err(|e| LogError::Unreadable {
        position,
        reason: e.to_string(),
    })?;
    if event.schema_version != SCHEMA_VERSION {
        return Err(LogError::Unreadable {
            position,
            reason: format!("schema version {} is not supported", event.schema_version),
        });
    }
    Ok(StoredEvent { position, event })
}
