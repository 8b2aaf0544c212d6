//! `utfall import` and `utfall gen` as a user runs them.

use serde_json::Value;
use utfall_tests::wire::*;
use utfall_tests::{Store, fixture, run_utfall};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn import(store: &Store, files: &[String], stdin: Option<&[u8]>) -> std::process::Output {
    let mut args = vec!["import".to_string()];
    args.extend(store.args());
    args.extend_from_slice(files);
    run_utfall(&args, stdin)
}

async fn fixtures_import_once(store: Store) {
    let files = vec![
        fixture("optimist").display().to_string(),
        fixture("sja-meg").display().to_string(),
    ];
    let first = import(&store, &files, None);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("imported: 1618 stored, 0 duplicate(s) skipped, 0 rejected"),
        "{}",
        stdout(&first)
    );
    let again = import(&store, &files, None);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("imported: 0 stored, 1618 duplicate(s) skipped, 0 rejected"),
        "{}",
        stdout(&again)
    );
    assert_eq!(store.open().await.head().await.expect("head"), 1618);
}

async fn a_file_with_a_bad_event_is_refused_whole(store: Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let setup = dir.path().join("setup.ndjson");
    std::fs::write(
        &setup,
        ndjson(&[program_defined("p1"), enrolled("p1", "A", "2021-01-04")]),
    )
    .expect("write");
    assert!(import(&store, &[setup.display().to_string()], None).status.success());

    // Valid lines around one that breaks a stream rule, far into the file.
    let mut events: Vec<Value> = (0..2500).map(|_| contact("p1", "A", "2021-02-01")).collect();
    let bad = contact("p1", "A", "2020-12-31");
    events.insert(2100, bad.clone());
    let file = dir.path().join("bad.ndjson");
    std::fs::write(&file, ndjson(&events)).expect("write");
    let output = import(&store, &[file.display().to_string()], None);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let id = bad["event_id"].as_str().unwrap_or_default();
    assert!(
        err.contains(&format!(
            "rejected event 2100 [{id}]: occurred_on: 2020-12-31 is before A's enrolment"
        )),
        "{err}"
    );
    assert!(
        stdout(&output).contains("1 event(s) rejected; nothing of this file was written"),
        "{}",
        stdout(&output)
    );
    assert_eq!(store.open().await.head().await.expect("head"), 2);

    // Files around a rejected one are imported, each whole.
    let before = dir.path().join("before.ndjson");
    let after = dir.path().join("after.ndjson");
    std::fs::write(&before, ndjson(&[contact("p1", "A", "2021-03-01")])).expect("write");
    std::fs::write(&after, ndjson(&[contact("p1", "A", "2021-03-02")])).expect("write");
    let files = [&before, &file, &after].map(|f| f.display().to_string());
    let output = import(&store, &files, None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("imported: 2 stored, 0 duplicate(s) skipped, 1 rejected"),
        "{}",
        stdout(&output)
    );
    assert_eq!(store.open().await.head().await.expect("head"), 4);
}

async fn standard_input_and_json_arrays_are_read(store: Store) {
    let events = vec![program_defined("p1"), enrolled("p1", "A", "2021-01-04")];
    let output = import(
        &store,
        &["-".to_string()],
        Some(Value::Array(events).to_string().as_bytes()),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("stdin: 2 stored"), "{}", stdout(&output));

    let output = import(
        &store,
        &["-".to_string()],
        Some(b"{\"program\": \"p1\", \"participant\""),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("line 1"), "{}", stderr(&output));
    let output = import(&store, &["-".to_string()], Some(b"\n\n"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("empty"), "{}", stderr(&output));
    assert_eq!(store.open().await.head().await.expect("head"), 2);
}

utfall_tests::for_both_stores!(
    fixtures_import_once,
    a_file_with_a_bad_event_is_refused_whole,
    standard_input_and_json_arrays_are_read
);

#[tokio::test]
async fn generated_histories_are_deterministic_and_valid() {
    let generate = |seed: &str| {
        run_utfall(
            &[
                "gen".into(),
                "--participants".into(),
                "300".into(),
                "--seed".into(),
                seed.into(),
            ],
            None,
        )
    };
    let a = generate("5");
    let b = generate("5");
    let c = generate("6");
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout, "same seed, same history");
    assert_ne!(a.stdout, c.stdout, "another seed, another history");

    let text = stdout(&a);
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("NDJSON")).collect();
    let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("participant_enrolled"), 300);
    assert_eq!(count("program_defined"), 3);
    assert!(
        count("contact_recorded") > 300 * 10,
        "contacts: {}",
        count("contact_recorded")
    );
    for kind in [
        "targets_set",
        "measurement_recorded",
        "status_changed",
        "psychiatric_treatment_started",
        "participant_exited",
        "service_started",
    ] {
        assert!(count(kind) > 0, "no {kind}");
    }

    let store = Store::embedded();
    let output = import(&store, &["-".to_string()], Some(&a.stdout));
    assert!(
        output.status.success(),
        "generated events must validate: {}",
        stderr(&output)
    );
    assert_eq!(store.open().await.head().await.expect("head"), events.len() as u64);
}
