//! Participants' data in the log is sealed with their own key: what the
//! store holds on disk (read around utfall) shows none of it, while every
//! reader gets the events back as sent; events stored in clear by earlier
//! versions still read; a wrong master key or a damaged sealed payload is
//! refused with a clear error; a new master key re-wraps every data key,
//! even when a rotation was cut short. Both stores.

use serde_json::{Value, json};
use utfall_events::{LogError, ProgramName, Pseudonym, StreamKey};
use utfall_events::sealing::{KeyStore, MasterKey};
use utfall_tests::{Store, run_utfall};
use utfall_tests::wire::*;

/// An enrolment whose data values are easy to search for.
fn distinctive_enrolment(participant: &str) -> Value {
    json!({"event_id": id(), "program": "p1", "participant": participant, "type": "participant_enrolled",
           "occurred_on": "2021-01-04",
           "data": {"gender": "female", "birth_year": 1937, "consultant": "consultant-zebra"}})
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn participant_data_is_stored_sealed_and_reads_back(store: Store) {
    let log = store.open().await;
    let events = vec![
        program_defined("p1"),
        distinctive_enrolment("A"),
        status_changed("p1", "A", "2021-02-01", "employed"),
    ];
    log.append(parse(&events)).await.expect("append");

    let raw = store.raw_payloads().await;
    assert_eq!(raw.len(), 3);
    // The programme's own event carries no one's data: it stays in clear.
    assert!(contains(&raw[0].1, "\"data\""), "{}", String::from_utf8_lossy(&raw[0].1));
    for (position, payload) in &raw[1..] {
        let text = String::from_utf8_lossy(payload);
        assert!(contains(payload, "\"sealed\"") && !contains(payload, "\"data\""), "{position}: {text}");
        for value in ["1937", "consultant-zebra", "female", "employed"] {
            assert!(!contains(payload, value), "{value} in clear at {position}: {text}");
        }
        // What projections route by stays readable.
        assert!(contains(payload, "\"participant\":\"A\""), "{text}");
    }

    let read = log.read(0, 10).await.expect("read");
    let sent = parse(&events);
    assert_eq!(read.len(), 3);
    for (stored, sent) in read.iter().zip(&sent) {
        assert_eq!((stored.event.event_id, &stored.event.body), (sent.event_id, &sent.body));
    }
    // Retries are still recognised through the seal.
    let again = log.append(parse(&events)).await.expect("retry");
    assert!(again.iter().all(|a| a.duplicate));
}

async fn events_stored_in_clear_before_sealing_still_read(store: Store) {
    let log = store.open().await;
    log.append(parse(&[program_defined("p1"), distinctive_enrolment("A")]))
        .await
        .expect("append");
    // Participant Z's events as utfall stored them before sealing existed.
    let old = [
        ("participant_enrolled", json!({"gender": "male", "birth_year": 1950})),
        ("status_changed", json!({"status": "employed"})),
    ];
    for (version, (kind, data)) in old.iter().enumerate() {
        let event_id = id();
        let payload = json!({"event_id": event_id, "program": "p1", "participant": "Z",
            "version": version + 1, "occurred_on": "2021-03-01", "recorded_at": "2021-03-01T12:00:00Z",
            "schema_version": 1, "type": kind, "data": data});
        store.plant("p1", "Z", version as u64 + 1, &event_id, &payload.to_string()).await;
    }
    let read = log.read(0, 10).await.expect("a mixed log reads");
    let kinds: Vec<(&str, &str)> = read
        .iter()
        .map(|e| {
            let who = e.event.participant.as_ref().map(|p| p.as_str()).unwrap_or("");
            (who, e.event.body.type_name())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("", "program_defined"),
            ("A", "participant_enrolled"),
            ("Z", "participant_enrolled"),
            ("Z", "status_changed")
        ]
    );
}

async fn a_wrong_master_key_is_refused_before_anything_is_served(store: Store) {
    store.open().await;
    let mut args = store.store_args();
    let other = args.data_dir.join("other.key");
    std::fs::write(&other, MasterKey::generate().to_hex()).expect("write another key");
    args.master_key_file = Some(other);
    let refused = match utfall::store::open_log(&args).await {
        Ok(_) => panic!("a log opened with the wrong master key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(refused.contains("master key does not open"), "{refused}");
}

async fn a_missing_master_key_is_refused_not_replaced(store: Store) {
    let log = store.open().await;
    log.append(parse(&[program_defined("p1"), distinctive_enrolment("A")]))
        .await
        .expect("append");
    let key = store.store_args().data_dir.join("master.key");
    std::fs::remove_file(&key).expect("lose the master key");
    let refused = match utfall::store::open_log(&store.store_args()).await {
        Ok(_) => panic!("a log opened without its master key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(refused.contains("no master key") && refused.contains("master.key is missing"), "{refused}");
    assert!(!key.exists(), "a new master key was made over the lost one");
}

async fn a_damaged_sealed_payload_is_unreadable_and_named(store: Store) {
    let log = store.open().await;
    log.append(parse(&[program_defined("p1"), distinctive_enrolment("A")]))
        .await
        .expect("append");
    let raw = store.raw_payloads().await;
    let mut sealed: Value = serde_json::from_slice(&raw[1].1).expect("a JSON payload");
    // Another event's id on a copy of A's sealed data: the seal is bound to
    // its event, so the copy does not open.
    let moved_id = id();
    sealed["event_id"] = json!(moved_id);
    let position = store.plant("p1", "A", 99, &moved_id, &sealed.to_string()).await;
    match log.read(2, 10).await {
        Err(LogError::Unreadable { position: at, reason }) => {
            assert_eq!(at, position);
            assert!(reason.contains(&moved_id) && reason.contains("does not open"), "{reason}");
        }
        other => panic!("a moved seal was read: {other:?}"),
    }
}

async fn a_rotated_master_key_reads_everything_and_the_old_one_nothing(store: Store) {
    let log = store.open().await;
    log.append(parse(&[program_defined("p1"), distinctive_enrolment("A")]))
        .await
        .expect("append");
    let before = log.read(0, 10).await.expect("read");
    let args = store.store_args();
    let old = args.data_dir.join("old.key");
    std::fs::copy(args.data_dir.join("master.key"), &old).expect("keep the old key");

    let mut rotate = vec!["keys".to_string(), "rotate".into()];
    rotate.extend(store.args());
    let out = run_utfall(&rotate, None);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.starts_with("1 data keys re-wrapped"), "{said}");

    let log = store.open().await;
    assert_eq!(log.read(0, 10).await.expect("read after rotation"), before);
    log.append(parse(&[distinctive_enrolment("B")]))
        .await
        .expect("a new participant after rotation");
    let mut with_old = store.store_args();
    with_old.master_key_file = Some(old);
    match utfall::store::open_log(&with_old).await {
        Ok(_) => panic!("the old master key still opens the log"),
        Err(e) => assert!(format!("{e:#}").contains("master key does not open"), "{e:#}"),
    }
}

async fn an_interrupted_rotation_is_finished_or_dropped_at_the_next_start(store: Store) {
    let log = store.open().await;
    log.append(parse(&[program_defined("p1"), distinctive_enrolment("A")]))
        .await
        .expect("append");
    let before = log.read(0, 10).await.expect("read");
    let dir = store.store_args().data_dir;
    let (current, pending) = (dir.join("master.key"), dir.join("master.key.new"));

    // Stopped before the data keys were re-wrapped: the new key is dropped.
    std::fs::write(&pending, MasterKey::generate().to_hex()).expect("a pending key");
    assert_eq!(store.open().await.read(0, 10).await.expect("read"), before);
    assert!(!pending.exists());

    // Stopped after, before the new key took the old one's place: finished.
    let url = format!("sqlite://{}", dir.join("events.db").display());
    let new = MasterKey::generate();
    let keys = KeyStore::open(&url, MasterKey::from_file(&current).expect("current key"))
        .await
        .expect("key store");
    keys.rewrap(&new).await.expect("rewrap");
    std::fs::write(&pending, new.to_hex()).expect("the pending key");
    assert_eq!(store.open().await.read(0, 10).await.expect("read"), before);
    assert!(!pending.exists());
    assert_eq!(MasterKey::from_file(&current).expect("key").to_hex(), new.to_hex());
}

async fn a_damaged_key_row_makes_only_its_participants_events_unreadable(store: Store) {
    let log = store.open().await;
    let sent = parse(&[program_defined("p1"), distinctive_enrolment("A"), distinctive_enrolment("B")]);
    let a = sent[1].event_id;
    log.append(sent).await.expect("append");
    let dir = store.store_args().data_dir;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("events.db").display()))
        .await
        .expect("key store");
    sqlx::query("UPDATE data_keys SET wrapped = 'AAAA' WHERE participant = 'A'")
        .execute(&pool)
        .await
        .expect("damage A's key");

    let log = store.open().await;
    let b = StreamKey {
        program: ProgramName::new("p1").expect("programme"),
        participant: Some(Pseudonym::new("B").expect("participant")),
    };
    assert_eq!(log.read_stream(&b).await.expect("B's events still read").len(), 1);
    match log.read(0, 10).await {
        Err(LogError::Unreadable { position, reason }) => {
            assert_eq!(position, 2);
            assert!(reason.contains(&a.to_string()) && reason.contains("damaged"), "{reason}");
        }
        other => panic!("an event under a damaged key was read: {other:?}"),
    }
    assert!(
        log.append(parse(&[contact("p1", "A", "2021-02-01")])).await.is_err(),
        "an event was sealed under a damaged key"
    );
}

utfall_tests::for_both_stores!(
    a_missing_master_key_is_refused_not_replaced,
    a_damaged_key_row_makes_only_its_participants_events_unreadable,
    a_rotated_master_key_reads_everything_and_the_old_one_nothing,
    an_interrupted_rotation_is_finished_or_dropped_at_the_next_start,
    participant_data_is_stored_sealed_and_reads_back,
    events_stored_in_clear_before_sealing_still_read,
    a_wrong_master_key_is_refused_before_anything_is_served,
    a_damaged_sealed_payload_is_unreadable_and_named,
);
