//! Large generated histories for the benchmarks: `utfall gen` events
//! written into an analytics lake as the lake projector writes them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use utfall_events::envelope::{RecordedEvent, StoredEvent};
use utfall_events::wire::parse_batch;
use utfall_projections::Lake;

/// About this many events per generated participant.
const EVENTS_PER_PARTICIPANT: u64 = 46;

/// UTFALL_BENCH_EVENTS, else `default`.
pub fn bench_events(default: u64) -> u64 {
    crate::setting("UTFALL_BENCH_EVENTS", default)
}

/// A lake under `work` holding about UTFALL_BENCH_EVENTS (else `default`)
/// generated events; prints what it made and how long it took. Returns the
/// lake, its event count and the number of participants.
pub fn bench_lake(default: u64, work: &Path) -> (Lake, u64, u64) {
    let file = work.join("events.ndjson");
    let started = Instant::now();
    let participants = generate(bench_events(default), &file);
    println!(
        "utfall gen: {participants} participants in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let lake = Lake::open(&work.join("lake")).expect("lake");
    let started = Instant::now();
    let written = write_lake(&file, &lake);
    println!(
        "lake: {written} events in {} files, {:.1} s",
        lake.parts().expect("parts").len(),
        started.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&file).expect("remove the NDJSON");
    (lake, written, participants)
}

/// Writes about `events` generated events (seed 1) as NDJSON into `file`;
/// returns the number of participants.
pub fn generate(events: u64, file: &Path) -> u64 {
    let participants = (events / EVENTS_PER_PARTICIPANT).max(1);
    utfall::synthetic::run(utfall::cli::GenArgs {
        participants,
        seed: 1,
        out: Some(file.to_path_buf()),
    })
    .expect("utfall gen");
    participants
}

/// Writes the generated history into a lake as the projector would, in
/// log order with positions and versions, each event recorded at 16:00 UTC
/// on the day it happened; returns the event count.
fn write_lake(file: &Path, lake: &Lake) -> u64 {
    let text = std::fs::read(file).expect("generated events");
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut position = 0;
    for chunk in text
        .split_inclusive(|b| *b == b'\n')
        .collect::<Vec<_>>()
        .chunks(200_000)
    {
        let events = parse_batch(&chunk.concat()).expect("generated events parse");
        let after = position;
        let stored: Vec<StoredEvent> = events
            .into_iter()
            .map(|e| {
                position += 1;
                let version = versions.entry(format!("{:?}", e.stream())).or_default();
                *version += 1;
                StoredEvent {
                    position,
                    event: RecordedEvent {
                        event_id: e.event_id,
                        program: e.program,
                        participant: e.participant,
                        version: *version,
                        occurred_on: e.occurred_on,
                        recorded_at: e.occurred_on.0.and_hms_opt(16, 0, 0).unwrap_or_default().and_utc(),
                        recorded_by: e.recorded_by,
                        schema_version: 1,
                        body: e.body,
                    },
                }
            })
            .collect();
        lake.append(after, &stored).expect("lake append");
    }
    position
}
