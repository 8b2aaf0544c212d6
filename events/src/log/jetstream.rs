//! The distributed store: one JetStream stream holds every event, one subject
//! per participant (`<prefix>.<program>.<participant>`) and one per programme
//! (`<prefix>.<program>._program`; a pseudonym cannot start with `_`).
//!
//! Each publish carries `Nats-Msg-Id = event_id` (retries within the duplicate
//! window are stored once) and the subject's expected last sequence, so a
//! concurrent writer on the same participant makes the publish fail instead of
//! slipping past the rules. On such a failure the batch is planned again: the
//! events already written are then recognised as duplicates.
//!
//! A batch's publishes are pipelined across participants (see
//! [`JetStreamLog::publish`]): each participant's events keep the batch's
//! order in the log, programme events stay where the batch put them, and
//! different participants' events between two programme events may
//! interleave.
//!
//! JetStream (as of server 2.9) has no multi-subject transaction. The whole
//! batch is validated before anything is published, so only a concurrent
//! writer on the same participant, racing between validation and publish,
//! can leave part of a batch written; re-sending the batch is then safe.
//!
//! Quarantined positions (see [`super::Quarantined`]) are kept in a stream
//! beside the log, `<stream>_QUARANTINE`, one subject per position
//! (`<prefix>-quarantine.<position>`); a reader consults it only when a
//! message cannot be decoded. An erased participant's events are passed by
//! without it.

use std::borrow::BorrowMut;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind, PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config, DirectGetErrorKind, StorageType, Stream};
use async_nats::jetstream::{self, Context};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use futures::stream::{BoxStream, FuturesUnordered};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{AppendError, Appended, EventLog, LogError, Quarantined, must_be_unreadable};
use crate::envelope::{NewEvent, RecordedEvent, StoredEvent, StreamKey};
use crate::rules::{KnownEvent, Planner, StateReader, Step, StreamState};
use crate::sealing::Sealing;
use crate::vocabulary::EventData;

/// Where the log lives on a NATS server. Two deployments can share a server
/// by using different stream names and subject prefixes.
#[derive(Clone, Debug)]
pub struct JetStreamConfig {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
    pub replicas: usize,
}

impl JetStreamConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: "UTFALL_EVENTS".into(),
            subject_prefix: "utfall.ev".into(),
            replicas: 1,
        }
    }
}

/// Retries of one event within this window are dropped by the server; later
/// retries are caught by the rules (the stream already holds the id).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How many times a batch is planned again after a concurrent write.
const REPLANS: usize = 5;
/// Streams whose state is kept between appends; beyond this the cache is
/// dropped and reloaded on demand.
const CACHED_STREAMS: usize = 50_000;

/// One stream's state as last read or written by this process.
#[derive(Clone, Default)]
struct Cached {
    state: StreamState,
    last_sequence: u64,
    events: HashMap<Uuid, KnownEvent>,
}

pub struct JetStreamLog {
    context: Context,
    stream: Stream,
    quarantine: Stream,
    /// `<prefix>-quarantine`: the quarantine stream's subjects.
    quarantine_subject: String,
    prefix: String,
    cache: Mutex<HashMap<StreamKey, Cached>>,
    sealing: Arc<Sealing>,
}

fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(e.to_string())
}

/// How long a starting server waits for a cluster that is still electing
/// its leaders (after the loss of a node) before it gives up.
const CLUSTER_SETTLING: Duration = Duration::from_secs(60);

/// Gets or creates a stream, waiting while the cluster settles: a server
/// started just after a node came back should not exit on a timeout that
/// a few seconds would have cured. Other refusals are reported at once.
async fn stream_once_settled(context: &Context, config: Config) -> Result<Stream, LogError> {
    let started = Instant::now();
    loop {
        match context.get_or_create_stream(config.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(e) if settling(&e) && started.elapsed() < CLUSTER_SETTLING => {
                tracing::warn!(stream = %config.name, error = %e, "JetStream is not ready yet; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(unavailable(e)),
        }
    }
}

/// Whether a stream request failed because the cluster is between leaders.
fn settling(e: &CreateStreamError) -> bool {
    match e.kind() {
        CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable => true,
        CreateStreamErrorKind::JetStream(e) => {
            e.code() == 503
                || [ErrorCode::CLUSTER_NOT_AVAILABLE, ErrorCode::CLUSTER_NOT_LEADER, ErrorCode::CLUSTER_NOT_ACTIVE]
                    .contains(&e.error_code())
        }
        _ => false,
    }
}

impl JetStreamLog {
    /// Connects and creates the stream if it does not exist. `config.url`
    /// may list several servers of a cluster, separated by commas: the
    /// client starts from any that answers (and learns the others from it).
    pub async fn connect(config: &JetStreamConfig, sealing: Arc<Sealing>) -> Result<Self, LogError> {
        let servers: Vec<&str> = config.url.split(',').map(str::trim).collect();
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(servers)
            .await
            .map_err(|e| LogError::Unavailable(format!("cannot reach NATS at {}: {e}", config.url)))?;
        let context = jetstream::new(client);
        // Both streams are append-only on disk, readable message by message.
        let durable = |name: String, subject: String| Config {
            name,
            subjects: vec![subject],
            storage: StorageType::File,
            num_replicas: config.replicas,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            ..Default::default()
        };
        let stream = stream_once_settled(
            &context,
            Config {
                duplicate_window: DUPLICATE_WINDOW,
                ..durable(config.stream.clone(), format!("{}.>", config.subject_prefix))
            },
        )
        .await?;
        let quarantine_subject = format!("{}-quarantine", config.subject_prefix);
        let quarantine = stream_once_settled(
            &context,
            durable(format!("{}_QUARANTINE", config.stream), format!("{quarantine_subject}.*")),
        )
        .await?;
        Ok(Self {
            context,
            stream,
            quarantine,
            quarantine_subject,
            prefix: config.subject_prefix.clone(),
            cache: Mutex::new(HashMap::new()),
            sealing,
        })
    }

    fn subject(&self, key: &StreamKey) -> String {
        match &key.participant {
            Some(p) => format!("{}.{}.{}", self.prefix, key.program, p),
            None => format!("{}.{}._program", self.prefix, key.program),
        }
    }

    /// Reads a stream's events from the server.
    async fn load(&self, key: &StreamKey) -> Result<(Cached, Vec<StoredEvent>), LogError> {
        let subject = self.subject(key);
        let last = match self.stream.direct_get_last_for_subject(subject.clone()).await {
            Ok(message) => message.sequence,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok((Cached::default(), Vec::new())),
            Err(e) => return Err(unavailable(e)),
        };
        let events = self.ordered_until(subject, 0, last).await?;
        let mut cached = Cached {
            last_sequence: last,
            ..Cached::default()
        };
        for stored in &events {
            let e = &stored.event;
            cached.state.apply(e.event_id, e.occurred_on, &e.body);
            cached
                .events
                .insert(e.event_id, KnownEvent::of(key.clone(), e.occurred_on, &e.body));
        }
        // An erased participant's events are passed by; their last event
        // (the erasure) still tells the stream's version.
        if let Some(last) = events.last() {
            cached.state.version = last.event.version;
        }
        Ok((cached, events))
    }

    /// Every message on `filter_subject` (empty: all subjects) after
    /// position `after`, then each new one as it arrives: its position and
    /// its event, none when the position is quarantined.
    async fn positions(
        &self,
        filter_subject: String,
        after: u64,
    ) -> Result<BoxStream<'static, Result<(u64, Option<StoredEvent>), LogError>>, LogError> {
        let consumer = self
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject,
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        let (quarantine, subject) = (self.quarantine.clone(), self.quarantine_subject.clone());
        let sealing = self.sealing.clone();
        Ok(Box::pin(messages.then(move |message| {
            let (quarantine, subject, sealing) = (quarantine.clone(), subject.clone(), sealing.clone());
            async move {
                let message = message.map_err(unavailable)?;
                let position = message.info().map_err(unavailable)?.stream_sequence;
                match sealing.open(position, &message.payload).await {
                    Ok(event) => Ok((position, Some(event))),
                    Err(LogError::Erased { .. }) => Ok((position, None)),
                    Err(e) => match quarantine
                        .direct_get_last_for_subject(format!("{subject}.{position}"))
                        .await
                    {
                        Ok(_) => Ok((position, None)),
                        Err(missing) if missing.kind() == DirectGetErrorKind::NotFound => Err(e),
                        Err(other) => Err(unavailable(other)),
                    },
                }
            }
        })))
    }

    /// The readable events on `filter_subject` after position `after`, then
    /// each new one as it arrives.
    async fn ordered(
        &self,
        filter_subject: String,
        after: u64,
    ) -> Result<BoxStream<'static, Result<StoredEvent, LogError>>, LogError> {
        let positions = self.positions(filter_subject, after).await?;
        Ok(Box::pin(positions.filter_map(|item| async move {
            item.map(|(_, event)| event).transpose()
        })))
    }

    /// Like [`Self::ordered`], but stops at position `until`, which must hold
    /// a message matching the filter.
    async fn ordered_until(
        &self,
        filter_subject: String,
        after: u64,
        until: u64,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let mut events = Vec::new();
        if until <= after {
            return Ok(events);
        }
        let mut positions = self.positions(filter_subject, after).await?;
        while let Some(item) = positions.next().await {
            let (position, event) = item?;
            events.extend(event);
            if position >= until {
                break;
            }
        }
        Ok(events)
    }

    async fn last_sequence(&self) -> Result<u64, LogError> {
        let info = self.stream.get_info().await.map_err(unavailable)?;
        Ok(info.state.last_sequence)
    }

    /// One attempt at writing a planned batch. `Ok(None)` means a concurrent
    /// writer got in first: the caller plans again.
    ///
    /// Publishes are pipelined across participants: each participant's
    /// events go one after another (each needs the sequence its predecessor
    /// was stored at), while up to [`IN_FLIGHT`] of different participants
    /// await their acknowledgements together. A programme's event is a
    /// barrier: everything before it in the batch is stored first, and
    /// everything after it later, so the log keeps the batch's order where
    /// it can matter. The results are in the batch's order.
    async fn publish(
        &self,
        cache: &mut HashMap<StreamKey, Cached>,
        steps: Vec<Step>,
    ) -> Result<Option<Vec<Appended>>, AppendError> {
        let mut appended: Vec<Option<Appended>> = vec![None; steps.len()];
        let mut phase = Vec::new();
        let mut phases = Vec::new();
        for (index, step) in steps.into_iter().enumerate() {
            match step {
                Step::Duplicate { event_id, stream } => {
                    let (position, version) = self.locate(cache, &stream, event_id).await?;
                    appended[index] = Some(Appended {
                        event_id,
                        position,
                        version,
                        duplicate: true,
                    });
                }
                Step::Append(event) if event.participant.is_none() => {
                    phases.push(std::mem::take(&mut phase));
                    phases.push(vec![(index, event)]);
                }
                Step::Append(event) => phase.push((index, event)),
            }
        }
        phases.push(phase);
        for phase in phases.into_iter().filter(|p| !p.is_empty()) {
            if !self.publish_phase(cache, phase, &mut appended).await? {
                return Ok(None);
            }
        }
        let appended: Option<Vec<Appended>> = appended.into_iter().collect();
        appended
            .map(Some)
            .ok_or_else(|| LogError::Unavailable("an event of the batch went unacknowledged".into()).into())
    }

    /// Publishes `events` (no barrier among them), each participant's in
    /// order, and records each acknowledgement in `appended` and the cache;
    /// false if a subject had moved on (a concurrent writer, or an earlier
    /// attempt's publish that reached the server late): the caller plans
    /// again. After any failure the acknowledgements in flight are still
    /// awaited, and a subject whose outcome is unknown leaves the cache, so
    /// the cache never believes less or more than the server holds.
    async fn publish_phase(
        &self,
        cache: &mut HashMap<StreamKey, Cached>,
        events: Vec<(usize, RecordedEvent)>,
        appended: &mut [Option<Appended>],
    ) -> Result<bool, AppendError> {
        let mut lanes: HashMap<StreamKey, VecDeque<(usize, RecordedEvent)>> = HashMap::new();
        let mut ready = VecDeque::new();
        for (index, event) in events {
            let key = event.stream();
            lanes
                .entry(key.clone())
                .or_insert_with(|| {
                    ready.push_back(key);
                    VecDeque::new()
                })
                .push_back((index, event));
        }
        let mut acks = FuturesUnordered::new();
        let (mut all_written, mut failed) = (true, None::<AppendError>);
        loop {
            while failed.is_none()
                && acks.len() < IN_FLIGHT
                && let Some(key) = ready.pop_front()
            {
                let Some((index, event)) = lanes.get_mut(&key).and_then(VecDeque::pop_front) else {
                    continue;
                };
                match self.send(cache, &key, &event).await {
                    Ok(ack) => acks.push(async move { (index, key, event, ack.await) }),
                    Err(e) => {
                        cache.remove(&key);
                        failed = Some(e);
                    }
                }
            }
            let Some((index, key, event, ack)) = acks.next().await else {
                break;
            };
            let ack = match ack {
                Ok(ack) => ack,
                Err(e) => {
                    cache.remove(&key);
                    lanes.remove(&key);
                    if e.kind() == PublishErrorKind::WrongLastSequence {
                        all_written = false;
                    } else {
                        failed.get_or_insert(unavailable(e).into());
                    }
                    continue;
                }
            };
            if ack.duplicate {
                // Stored already, though the plan took it for new: by an
                // earlier attempt whose publish reached the server late.
                // The cache missed it, so plan again from the server.
                cache.remove(&key);
                lanes.remove(&key);
                if let Err(e) = self.same_event_at(ack.sequence, index, &key, &event).await {
                    failed.get_or_insert(e);
                }
                all_written = false;
                continue;
            }
            let cached = cache.entry(key.clone()).or_default();
            cached.state.apply(event.event_id, event.occurred_on, &event.body);
            cached.last_sequence = ack.sequence;
            if matches!(event.body, EventData::ParticipantErased(_)) {
                // Nothing of an erased participant is kept, not even their
                // events' fingerprints.
                cached.events.clear();
            }
            cached
                .events
                .insert(event.event_id, KnownEvent::of(key.clone(), event.occurred_on, &event.body));
            if let Err(e) = self.sealing.finish_erasure(&event).await {
                failed.get_or_insert(e.into());
            }
            appended[index] = Some(Appended {
                event_id: event.event_id,
                position: ack.sequence,
                version: event.version,
                duplicate: false,
            });
            if lanes.get(&key).is_some_and(|lane| !lane.is_empty()) {
                ready.push_back(key);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(all_written),
        }
    }

    /// Sends `event` on its subject, expecting the sequence the cache holds
    /// for it; returns the acknowledgement to await.
    async fn send(
        &self,
        cache: &HashMap<StreamKey, Cached>,
        key: &StreamKey,
        event: &RecordedEvent,
    ) -> Result<PublishAckFuture, AppendError> {
        let expected = cache.get(key).map_or(0, |c| c.last_sequence);
        let message = PublishMessage::build()
            .payload(Bytes::from(self.sealing.seal(event)?))
            .message_id(event.event_id.to_string())
            .expected_last_subject_sequence(expected);
        Ok(self
            .context
            .send_publish(self.subject(key), message)
            .await
            .map_err(unavailable)?)
    }

    /// The server dropped a publish as a duplicate of the message at
    /// `position` (same `Nats-Msg-Id`). That is a retry of this very event
    /// unless the id was used for another event, perhaps of another
    /// participant, within the duplicate window: then this event was not
    /// stored, and it is refused rather than reported as stored.
    async fn same_event_at(
        &self,
        position: u64,
        index: usize,
        key: &StreamKey,
        event: &RecordedEvent,
    ) -> Result<(), AppendError> {
        let stored = self.stream.direct_get(position).await.map_err(unavailable)?;
        let stored = self.sealing.open(position, &stored.payload).await?.event;
        let mine = KnownEvent::of(key.clone(), event.occurred_on, &event.body);
        if stored.event_id == event.event_id
            && KnownEvent::of(stored.stream(), stored.occurred_on, &stored.body) == mine
        {
            return Ok(());
        }
        Err(AppendError::Invalid(vec![crate::invalid::Invalid::new(
            index,
            None,
            Some(event.event_id.to_string()),
            "event_id",
            "already used for a different event; a correction needs a new event_id",
        )]))
    }

    /// Position and version of an event already in `key`'s stream.
    async fn locate(
        &self,
        cache: &mut HashMap<StreamKey, Cached>,
        key: &StreamKey,
        id: Uuid,
    ) -> Result<(u64, u64), LogError> {
        let (_, events) = self.load(key).await?;
        events
            .iter()
            .find(|e| e.event.event_id == id)
            .map(|e| (e.position, e.event.version))
            .ok_or_else(|| {
                cache.remove(key);
                LogError::Unavailable(format!("event {id} vanished from {key}"))
            })
    }
}

/// Publishes awaiting their acknowledgements at once, across participants.
const IN_FLIGHT: usize = 1024;

/// Streams loaded at once when a batch is prefetched.
const PARALLEL_LOADS: usize = 32;

/// Reads stream state through a cache: the process-wide one during an
/// append, a private one for a check outside an append.
struct CacheReader<'a, M> {
    log: &'a JetStreamLog,
    cache: M,
}

impl<M: BorrowMut<HashMap<StreamKey, Cached>> + Send> CacheReader<'_, M> {
    fn remember(&mut self, key: StreamKey, cached: Cached) {
        let cache = self.cache.borrow_mut();
        if cache.len() >= CACHED_STREAMS {
            cache.clear();
        }
        cache.insert(key, cached);
    }

    async fn entry(&mut self, key: &StreamKey) -> Result<&Cached, LogError> {
        if !self.cache.borrow().contains_key(key) {
            let (cached, _) = self.log.load(key).await?;
            self.remember(key.clone(), cached);
        }
        self.cache
            .borrow()
            .get(key)
            .ok_or_else(|| LogError::Unavailable("stream cache lost an entry".into()))
    }
}

#[async_trait]
impl<M: BorrowMut<HashMap<StreamKey, Cached>> + Send> StateReader for CacheReader<'_, M> {
    async fn prefetch(&mut self, batch: &[NewEvent]) -> Result<(), LogError> {
        let mut keys: Vec<StreamKey> = batch.iter().map(NewEvent::stream).collect();
        keys.extend(batch.iter().map(|e| StreamKey::program(e.program.clone())));
        keys.sort();
        keys.dedup();
        keys.retain(|k| !self.cache.borrow().contains_key(k));
        let log = self.log;
        let loaded: Vec<_> = futures::stream::iter(keys)
            .map(|key| async move { log.load(&key).await.map(|(cached, _)| (key, cached)) })
            .buffer_unordered(PARALLEL_LOADS)
            .collect()
            .await;
        for result in loaded {
            let (key, cached) = result?;
            self.remember(key, cached);
        }
        Ok(())
    }

    async fn stream_state(&mut self, key: &StreamKey) -> Result<StreamState, LogError> {
        Ok(self.entry(key).await?.state.clone())
    }

    async fn known_event(&mut self, key: &StreamKey, id: Uuid) -> Result<Option<KnownEvent>, LogError> {
        Ok(self.entry(key).await?.events.get(&id).cloned())
    }
}

#[async_trait]
impl EventLog for JetStreamLog {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        // A key is stored before any event sealed with it is published.
        self.sealing.prepare(&batch).await?;
        let mut cache = self.cache.lock().await;
        for _ in 0..REPLANS {
            let mut planner = Planner::default();
            let mut reader = CacheReader {
                log: self,
                cache: &mut *cache,
            };
            let steps = planner.plan(&mut reader, batch.clone(), 0, Utc::now()).await?;
            if let Some(appended) = self.publish(&mut cache, steps).await? {
                return Ok(appended);
            }
        }
        Err(LogError::Unavailable("too many concurrent writes to the same participants; retry".into()).into())
    }

    async fn read(&self, after: u64, max: usize) -> Result<Vec<StoredEvent>, LogError> {
        let last = self.last_sequence().await?;
        let mut after = after;
        loop {
            if after >= last || max == 0 {
                return Ok(Vec::new());
            }
            let until = last.min(after.saturating_add(max as u64));
            let events = self.ordered_until(String::new(), after, until).await?;
            if !events.is_empty() {
                return Ok(events);
            }
            // Every message of the page was quarantined.
            after = until;
        }
    }

    async fn tail(&self, after: u64) -> Result<BoxStream<'static, Result<StoredEvent, LogError>>, LogError> {
        self.ordered(String::new(), after).await
    }

    async fn read_stream(&self, key: &StreamKey) -> Result<Vec<StoredEvent>, LogError> {
        Ok(self.load(key).await?.1)
    }

    async fn head(&self) -> Result<u64, LogError> {
        self.last_sequence().await
    }

    async fn quarantine(&self, position: u64, reason: &str) -> Result<Quarantined, LogError> {
        let payload = match self.stream.direct_get(position).await {
            Ok(message) => Some(message.payload),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => None,
            Err(e) => return Err(unavailable(e)),
        };
        let entry = must_be_unreadable(&self.sealing, position, payload.as_deref(), reason).await?;
        let record = serde_json::to_vec(&entry).map_err(unavailable)?;
        self.context
            .publish(format!("{}.{position}", self.quarantine_subject), Bytes::from(record))
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(entry)
    }

    fn sealing(&self) -> &Sealing {
        &self.sealing
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>, LogError> {
        let last = self
            .quarantine
            .clone()
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence;
        let mut entries: Vec<Quarantined> = Vec::new();
        for sequence in 1..=last {
            let record = match self.quarantine.direct_get(sequence).await {
                Ok(message) => message.payload,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => continue,
                Err(e) => return Err(unavailable(e)),
            };
            let entry: Quarantined = serde_json::from_slice(&record).map_err(unavailable)?;
            // A position quarantined twice is listed once, as first recorded.
            if entries.iter().all(|e| e.position != entry.position) {
                entries.push(entry);
            }
        }
        entries.sort_by_key(|e| e.position);
        Ok(entries)
    }

    async fn state_reader(&self) -> Result<Box<dyn StateReader + '_>, LogError> {
        Ok(Box::new(CacheReader {
            log: self,
            cache: HashMap::new(),
        }))
    }
}
