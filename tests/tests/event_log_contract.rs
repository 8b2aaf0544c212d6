//! The event-log contract. Every test here runs unchanged against both
//! stores: the embedded SQLite log and JetStream on a real NATS server.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use utfall_events::{AppendError, Appended, LogError, StoredEvent, StreamKey};
use utfall_events::{ProgramName, Pseudonym};
use utfall_tests::Store;
use utfall_tests::wire::*;

fn key(program: &str, participant: &str) -> StreamKey {
    StreamKey {
        program: ProgramName::new(program).expect("program"),
        participant: Some(Pseudonym::new(participant).expect("participant")),
    }
}

async fn appends_in_order_with_positions_and_versions(store: Store) {
    let log = store.open().await;
    let events = vec![
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        enrolled("p1", "B", "2021-01-05"),
        contact("p1", "A", "2021-01-11"),
        contact("p1", "B", "2021-01-12"),
        status_changed("p1", "A", "2021-02-01", "employed"),
    ];
    let appended = log.append(parse(&events)).await.expect("append");
    let mut positions: Vec<u64> = appended.iter().map(|a| a.position).collect();
    positions.sort_unstable();
    assert_eq!(positions, [1, 2, 3, 4, 5, 6]);
    let versions: Vec<u64> = appended.iter().map(|a| a.version).collect();
    assert_eq!(versions, [1, 1, 1, 2, 2, 3]);
    assert!(appended.iter().all(|a| !a.duplicate));

    // The log holds each stream's events in the batch's order (different
    // participants' may interleave), at the positions reported.
    let read = log.read(0, 100).await.expect("read");
    let at: Vec<(String, u64)> = read.iter().map(|e| (e.event.event_id.to_string(), e.position)).collect();
    let reported: Vec<(String, u64)> = appended.iter().map(|a| (a.event_id.to_string(), a.position)).collect();
    let mut sorted = reported.clone();
    sorted.sort_by_key(|(_, position)| *position);
    assert_eq!(at, sorted);
    let sent: Vec<String> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(reported.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), sent);
    assert_eq!(read[0].event.body.type_name(), "program_defined");
    assert_eq!(log.head().await.expect("head"), 6);

    let stream = log.read_stream(&key("p1", "A")).await.expect("stream");
    let in_stream: Vec<u64> = stream.iter().map(|e| e.position).collect();
    assert_eq!(in_stream, [appended[1].position, appended[3].position, appended[5].position]);
    assert!(in_stream.is_sorted());
}

async fn a_retried_batch_is_stored_once(store: Store) {
    let log = store.open().await;
    let events = vec![
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        contact("p1", "A", "2021-01-05"),
    ];
    let first = log.append(parse(&events)).await.expect("first append");
    let again = log.append(parse(&events)).await.expect("retry");
    assert!(again.iter().all(|a| a.duplicate));
    assert_eq!(
        first.iter().map(|a| (a.position, a.version)).collect::<Vec<_>>(),
        again.iter().map(|a| (a.position, a.version)).collect::<Vec<_>>()
    );
    assert_eq!(log.head().await.expect("head"), 3);

    // A retry of part of a batch, mixed with a new event.
    let mixed = vec![events[2].clone(), contact("p1", "A", "2021-01-06")];
    let appended = log.append(parse(&mixed)).await.expect("mixed");
    assert_eq!(appended.iter().map(|a| a.duplicate).collect::<Vec<_>>(), [true, false]);
    assert_eq!(log.head().await.expect("head"), 4);

    // The same id with other content is not a retry.
    let mut changed = events[2].clone();
    changed["data"]["minutes"] = 10.into();
    match log.append(parse(&[changed])).await {
        Err(AppendError::Invalid(problems)) => assert_eq!(problems[0].field, "event_id"),
        other => panic!("expected the reused id to be rejected, got {other:?}"),
    }
    assert_eq!(log.head().await.expect("head"), 4);
}

async fn a_stale_expected_version_conflicts_and_writes_nothing(store: Store) {
    let log = store.open().await;
    log.append(parse(&[program_defined("p1"), enrolled("p1", "A", "2021-01-04")]))
        .await
        .expect("setup");
    let mut stale = contact("p1", "A", "2021-01-05");
    stale["expected_version"] = 0.into();
    let other = contact("p1", "B", "2021-01-05");
    let mut fresh = contact("p1", "A", "2021-01-06");
    fresh["expected_version"] = 1.into();
    match log.append(parse(&[fresh.clone(), stale])).await {
        Err(AppendError::Conflict(conflicts)) => {
            assert_eq!(conflicts.len(), 1);
            assert_eq!(
                (
                    conflicts[0].index,
                    conflicts[0].expected_version,
                    conflicts[0].actual_version
                ),
                (1, 0, 2)
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(log.head().await.expect("head"), 2);
    drop(other);
    let appended = log.append(parse(&[fresh])).await.expect("matching expected_version");
    assert_eq!(appended[0].version, 2);
}

async fn two_writers_cannot_both_enrol_one_participant(store: Store) {
    // Two handles on the same log, as two processes would have.
    let first = store.open().await;
    let second = store.open().await;
    first.append(parse(&[program_defined("p1")])).await.expect("setup");
    // Prime the second writer's view of the stream before the first writes.
    second
        .append(parse(&[enrolled("p1", "Z", "2021-01-01")]))
        .await
        .expect("prime");
    assert_eq!(second.stream_state(&key("p1", "A")).await.expect("state").version, 0);
    let a = first.append(parse(&[enrolled("p1", "A", "2021-01-04")]));
    let b = second.append(parse(&[enrolled("p1", "A", "2021-01-05")]));
    let (a, b) = tokio::join!(a, b);
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "exactly one enrolment wins: {a:?} {b:?}"
    );
    let loser = if a.is_ok() { b } else { a };
    assert!(
        matches!(loser, Err(AppendError::Invalid(ref p)) if p[0].message.contains("already enrolled")),
        "{loser:?}"
    );
    assert_eq!(first.read_stream(&key("p1", "A")).await.expect("stream").len(), 1);
}

async fn a_batch_with_one_bad_event_writes_nothing(store: Store) {
    let log = store.open().await;
    log.append(parse(&[program_defined("p1")])).await.expect("setup");
    let batch = vec![
        enrolled("p1", "A", "2021-01-04"),
        contact("p1", "A", "2021-01-05"),
        status_changed("p1", "B", "2021-01-05", "employed"),
        contact("p1", "A", "2021-01-03"),
    ];
    match log.append(parse(&batch)).await {
        Err(AppendError::Invalid(problems)) => {
            let got: Vec<(usize, &str)> = problems.iter().map(|p| (p.index, p.field.as_str())).collect();
            assert_eq!(got, [(2, "participant"), (3, "occurred_on")]);
            assert_eq!(problems[0].event_id.as_deref(), batch[2]["event_id"].as_str());
            assert!(
                problems[1].message.contains("before A's enrolment on 2021-01-04"),
                "{}",
                problems[1].message
            );
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    assert_eq!(log.head().await.expect("head"), 1);
    assert!(log.read_stream(&key("p1", "A")).await.expect("stream").is_empty());
}

async fn stream_rules_hold(store: Store) {
    let log = store.open().await;
    let enrol_a = enrolled("p1", "A", "2021-01-04");
    let contact_b = contact("p1", "B", "2021-01-06");
    log.append(parse(&[
        program_defined("p1"),
        enrol_a.clone(),
        enrolled("p1", "B", "2021-01-05"),
        contact_b.clone(),
        exited("p1", "A", "2021-06-30"),
    ]))
    .await
    .expect("setup");

    let rejected = |events: Vec<serde_json::Value>, field: &'static str, words: &'static str| {
        let log = log.clone();
        async move {
            match log.append(parse(&events)).await {
                Err(AppendError::Invalid(p)) => {
                    assert_eq!(p[0].field, field, "{p:?}");
                    assert!(p[0].message.contains(words), "{:?} lacks {words:?}", p[0].message);
                }
                other => panic!("expected {field} to be rejected, got {other:?}"),
            }
        }
    };
    rejected(vec![contact("p1", "A", "2021-07-01")], "occurred_on", "after A's exit").await;
    rejected(vec![exited("p1", "A", "2021-06-30")], "type", "already exited").await;
    rejected(vec![enrolled("p1", "B", "2021-02-01")], "type", "already enrolled").await;
    rejected(
        vec![retracted("p1", "A", "2021-06-01", &contact_b)],
        "data.event_id",
        "same participant",
    )
    .await;
    // Neither refusal says whose event holds the id, and neither writes.
    let mut reused = contact("p1", "A", "2021-06-01");
    reused["event_id"] = contact_b["event_id"].clone();
    for events in [vec![reused], vec![retracted("p1", "A", "2021-06-01", &contact_b)]] {
        match log.append(parse(&events)).await {
            Err(AppendError::Invalid(p)) => assert!(!p[0].message.contains("/B"), "{:?} names B", p[0].message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(log.read_stream(&key("p1", "A")).await.expect("stream").len(), 2);
    rejected(
        vec![retracted("p1", "B", "2021-06-01", &contact("p1", "B", "2021-01-07"))],
        "data.event_id",
        "holds no event",
    )
    .await;
    rejected(vec![enrolled("p2", "A", "2021-01-04")], "program", "not defined").await;
    let head = log.head().await.expect("head");
    assert_eq!(head, 5);

    // An event dated on or before the exit day is a late record, not a breach.
    log.append(parse(&[contact("p1", "A", "2021-06-30")]))
        .await
        .expect("late record");
    // Retracting the enrolment lets the participant be enrolled again with the right date.
    let fix = vec![
        retracted("p1", "A", "2021-07-02", &enrol_a),
        enrolled("p1", "A", "2021-01-11"),
    ];
    log.append(parse(&fix)).await.expect("corrected enrolment");
    assert_eq!(log.stream_state(&key("p1", "A")).await.expect("state").version, 5);
}

async fn read_and_tail_from_a_position(store: Store) {
    let log = store.open().await;
    let setup = vec![
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        contact("p1", "A", "2021-01-05"),
    ];
    log.append(parse(&setup)).await.expect("setup");
    let after_one = log.read(1, 100).await.expect("read");
    assert_eq!(after_one.iter().map(|e| e.position).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(log.read(1, 1).await.expect("read one").len(), 1);
    assert!(log.read(3, 100).await.expect("read past the end").is_empty());

    let mut tail = log.tail(2).await.expect("tail");
    assert_eq!(next_event(&mut tail).await.position, 3);
    let later = contact("p1", "A", "2021-01-06");
    log.append(parse(std::slice::from_ref(&later)))
        .await
        .expect("append while tailing");
    let delivered = next_event(&mut tail).await;
    assert_eq!(
        (delivered.position, delivered.event.event_id.to_string()),
        (4, later["event_id"].as_str().unwrap_or_default().to_string())
    );
}

async fn everything_is_still_there_after_reopening(store: Store) {
    let events = vec![
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        contact("p1", "A", "2021-01-05"),
    ];
    let before = {
        let log = store.open().await;
        log.append(parse(&events)).await.expect("append");
        log.read(0, 100).await.expect("read")
    };
    let log = store.open().await;
    assert_eq!(log.read(0, 100).await.expect("read after reopen"), before);
    // The rules still know the stream after reopening.
    let again = log.append(parse(&events)).await.expect("retry after reopen");
    assert!(again.iter().all(|a| a.duplicate));
    assert!(matches!(
        log.append(parse(&[enrolled("p1", "A", "2021-02-01")])).await,
        Err(AppendError::Invalid(_))
    ));
}

/// A writer that retries an event another writer (process) has stored
/// since it last looked learns it is stored, and accepts what follows.
async fn a_retry_of_what_another_writer_stored_is_known(store: Store) {
    let first = store.open().await;
    let second = store.open().await;
    first.append(parse(&[program_defined("p1")])).await.expect("setup");
    // The first writer reads A's stream (empty) while refusing a contact.
    let early = first.append(parse(&[contact("p1", "A", "2021-01-05")])).await;
    assert!(matches!(early, Err(AppendError::Invalid(_))), "{early:?}");
    let enrolment = enrolled("p1", "A", "2021-01-04");
    let stored = second.append(parse(&[enrolment.clone()])).await.expect("second writer");
    let retried = first.append(parse(&[enrolment])).await.expect("retry by the first writer");
    assert_eq!(retried, stored.into_iter().map(|a| Appended { duplicate: true, ..a }).collect::<Vec<_>>());
    let next = first
        .append(parse(&[contact("p1", "A", "2021-01-05")]))
        .await
        .expect("the contact after the enrolment");
    assert_eq!((next[0].version, next[0].duplicate), (2, false));
    assert_eq!(first.read_stream(&key("p1", "A")).await.expect("stream").len(), 2);
}

async fn next_event(tail: &mut BoxStream<'static, Result<StoredEvent, LogError>>) -> StoredEvent {
    let item = tokio::time::timeout(Duration::from_secs(10), tail.next())
        .await
        .expect("tail delivers within 10 s");
    item.expect("tail does not end").expect("tail event")
}

utfall_tests::for_both_stores!(
    appends_in_order_with_positions_and_versions,
    a_retried_batch_is_stored_once,
    a_stale_expected_version_conflicts_and_writes_nothing,
    two_writers_cannot_both_enrol_one_participant,
    a_retry_of_what_another_writer_stored_is_known,
    a_batch_with_one_bad_event_writes_nothing,
    stream_rules_hold,
    read_and_tail_from_a_position,
    everything_is_still_there_after_reopening,
);
