//! Erasure in the log, both stores: the erased participant's events can
//! never be read again (by this process or any later one), nothing more is
//! accepted for them, other participants are untouched, and an erasure cut
//! short (stored, key not yet destroyed) is finished at the next start.

use utfall::erasure::{EraseError, erase};
use utfall_events::names::Code;
use utfall_events::{AppendError, EventData, EventLog, ProgramName, Pseudonym, StreamKey};
use utfall_tests::Store;
use utfall_tests::wire::*;

fn program() -> ProgramName {
    ProgramName::new("p1").expect("programme")
}

fn who(participant: &str) -> Pseudonym {
    Pseudonym::new(participant).expect("participant")
}

fn stream(participant: &str) -> StreamKey {
    StreamKey {
        program: program(),
        participant: Some(who(participant)),
    }
}

fn request() -> Code {
    Code::new("request").expect("code")
}

/// Who the readable events of the log belong to, in order ("" for the
/// programme's), with the erasures marked.
async fn readable(log: &dyn EventLog) -> Vec<String> {
    log.read(0, 1000)
        .await
        .expect("the log reads past erased participants")
        .iter()
        .map(|e| {
            let who = e.event.participant.as_ref().map(|p| p.to_string()).unwrap_or_default();
            match e.event.body {
                EventData::ParticipantErased(_) => format!("{who} erased"),
                _ => who,
            }
        })
        .collect()
}

async fn history(log: &dyn EventLog) -> Vec<serde_json::Value> {
    let events = vec![
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        enrolled("p1", "B", "2021-01-05"),
        status_changed("p1", "A", "2021-02-01", "employed"),
        contact("p1", "B", "2021-02-02"),
    ];
    log.append(parse(&events)).await.expect("append");
    events
}

async fn an_erased_participant_is_gone_and_refuses_more(store: Store) {
    let log = store.open().await;
    let events = history(log.as_ref()).await;
    let erased = erase(log.as_ref(), program(), who("A"), request()).await.expect("erase");
    assert!(!erased.already_erased);
    assert_eq!(erased.position, 6);

    assert_eq!(readable(log.as_ref()).await, ["", "B", "B", "A erased"]);
    assert_eq!(log.read_stream(&stream("B")).await.expect("B").len(), 2);
    let state = log.stream_state(&stream("A")).await.expect("state");
    assert_eq!((state.version, state.erased.is_some()), (3, true));
    // A process opened afterwards reads the same.
    assert_eq!(readable(store.open().await.as_ref()).await, ["", "B", "B", "A erased"]);

    // Nothing more for A: not a new event, not a retry of an old one.
    for event in [contact("p1", "A", "2021-03-01"), events[3].clone()] {
        match log.append(parse(&[event])).await {
            Err(AppendError::Invalid(problems)) => {
                assert_eq!(problems[0].field, "participant");
                assert!(problems[0].message.contains("A was erased on"), "{}", problems[0].message);
            }
            other => panic!("an event for an erased participant: {other:?}"),
        }
    }
    // Nor an enrolment under the same pseudonym.
    assert!(log.append(parse(&[enrolled("p1", "A", "2021-03-01")])).await.is_err());
    log.append(parse(&[contact("p1", "B", "2021-03-01")])).await.expect("B goes on");

    let again = erase(log.as_ref(), program(), who("A"), request()).await.expect("erase again");
    assert_eq!((again.already_erased, again.position), (true, 6));
    for (program, participant) in [("p1", "Z"), ("p2", "B")] {
        let unknown = erase(log.as_ref(), ProgramName::new(program).expect("p"), who(participant), request()).await;
        assert!(
            matches!(&unknown, Err(EraseError::Unknown { .. })),
            "{program}/{participant}: {unknown:?}"
        );
    }
    assert_eq!(readable(log.as_ref()).await, ["", "B", "B", "A erased", "B"]);
}

async fn an_erasure_cut_short_is_finished_at_the_next_start(store: Store) {
    let log = store.open().await;
    history(log.as_ref()).await;
    let keys = sqlx::SqlitePool::connect(&format!("sqlite://{}", store.data_dir().join("events.db").display()))
        .await
        .expect("key store");
    let a_key: (String, String, String, String) =
        sqlx::query_as("SELECT program, participant, wrapped, created_at FROM data_keys WHERE participant = 'A'")
            .fetch_one(&keys)
            .await
            .expect("A's key");
    erase(log.as_ref(), program(), who("A"), request()).await.expect("erase");
    drop(log);
    // Back to the moment between storing the erasure and destroying the
    // key, where a process may die: key row there, erasure marked begun.
    for statement in [
        "INSERT INTO data_keys (program, participant, wrapped, created_at) VALUES (?, ?, ?, ?)",
        "DELETE FROM erased_data_keys WHERE program = ? AND participant = ?",
        "INSERT INTO pending_erasures (program, participant, begun_at) VALUES (?, ?, '2026-01-01')",
    ] {
        let mut query = sqlx::query(statement).bind(&a_key.0).bind(&a_key.1);
        if statement.starts_with("INSERT INTO data_keys") {
            query = query.bind(&a_key.2).bind(&a_key.3);
        }
        query.execute(&keys).await.expect("restore");
    }

    // The next start finishes it before anything is read.
    let log = store.open().await;
    assert_eq!(readable(log.as_ref()).await, ["", "B", "B", "A erased"]);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE participant = 'A'")
        .fetch_one(&keys)
        .await
        .expect("count");
    assert_eq!(left, 0);

    // An erasure begun whose event was never stored did not happen.
    log.sealing().keys().begin_erasure(&stream("B")).await.expect("begin");
    drop(log);
    let log = store.open().await;
    assert_eq!(readable(log.as_ref()).await, ["", "B", "B", "A erased"]);
    assert!(log.sealing().keys().pending_erasures().await.expect("pending").is_empty());
}

utfall_tests::for_both_stores!(
    an_erased_participant_is_gone_and_refuses_more,
    an_erasure_cut_short_is_finished_at_the_next_start,
);
