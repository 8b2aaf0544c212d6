//! Retention, both stores: a programme's rule makes each participant due
//! for erasure a set time after their exit (or after the programme's end,
//! never having exited). `utfall erase --due --dry-run --on DATE` lists
//! who is due on a simulated date; `utfall erase --due` erases those due
//! now; `utfall serve` erases them by itself; both are audited.

use serde_json::{Value, json};
use utfall_tests::{Cli, Store, for_both_stores, run_utfall, wire};

fn event(program: &str, participant: Option<&str>, kind: &str, on: &str, data: Value) -> Value {
    let mut e = json!({"event_id": wire::id(), "program": program, "type": kind, "occurred_on": on, "data": data});
    if let Some(p) = participant {
        e["participant"] = json!(p);
    }
    e
}

fn programme(program: &str, months_after_exit: u16) -> Vec<Value> {
    vec![
        event(
            program,
            None,
            "program_defined",
            "2020-01-01",
            json!({"name": "Test", "organisation": "Nav Test", "country": "NO", "starts_on": "2020-01-01",
                   "ends_on": "2022-12-31"}),
        ),
        event(program, None, "retention_set", "2020-01-01", json!({"months_after_exit": months_after_exit})),
    ]
}

fn participant(program: &str, who: &str, exit: Option<&str>) -> Vec<Value> {
    let mut events = vec![wire::enrolled(program, who, "2020-03-01")];
    if let Some(on) = exit {
        events.push(event(program, Some(who), "participant_exited", on, json!({"reason": "completed"})));
    }
    events
}

fn output(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Who `utfall erase --due --dry-run` lists as due on `on`.
fn due_on(cli: &Cli, on: &str) -> Vec<String> {
    output(cli.run("erase", &["--due", "--dry-run", "--on", on]))
        .lines()
        .filter(|l| l.contains("\tdue "))
        .map(|l| l.split('\t').take(2).collect::<Vec<_>>().join("/"))
        .collect()
}

fn enrolled(cli: &Cli, program: &str) -> i64 {
    let query = format!("SELECT COUNT(*) AS n FROM participants WHERE program = '{program}'");
    let rows: Value = serde_json::from_str(&output(cli.run("sql", &[&query, "--format", "json"]))).expect("JSON");
    rows[0]["n"].as_i64().expect("count")
}

async fn participants_are_erased_when_their_programmes_rule_says(store: Store) {
    let files = tempfile::tempdir().expect("temp dir");
    let cli = Cli::new(store);
    let mut events = programme("p1", 36);
    events.extend(participant("p1", "A", Some("2021-01-10")));
    events.extend(participant("p1", "B", Some("2022-06-01")));
    events.extend(participant("p1", "C", None));
    events.extend(programme("p2", 12));
    events.extend(participant("p2", "Q", Some("2020-06-01")));
    events.extend(programme("p3", 1200));
    events.extend(participant("p3", "K", Some("2020-06-01")));
    let file = files.path().join("events.ndjson");
    std::fs::write(&file, wire::ndjson(&events)).expect("write");
    output(cli.run("import", &[&file.display().to_string()]));

    // On a simulated clock: 36 months after each exit, C's counted from the
    // programme's end; Q's (12 months) long past; K's (100 years) never.
    assert_eq!(due_on(&cli, "2021-06-01"), ["p2/Q"]);
    assert_eq!(due_on(&cli, "2024-01-09"), ["p2/Q"]);
    assert_eq!(due_on(&cli, "2024-01-10"), ["p2/Q", "p1/A"]);
    assert_eq!(due_on(&cli, "2025-06-01"), ["p2/Q", "p1/A", "p1/B"]);
    assert_eq!(due_on(&cli, "2025-12-31"), ["p2/Q", "p1/A", "p1/B", "p1/C"]);
    assert_eq!(enrolled(&cli, "p1"), 3, "a dry run erases no one");

    // For real, today: one programme's by the command, the rest by the server.
    let said = output(cli.run("erase", &["--due", "--program", "p2"]));
    assert!(said.contains("erased 1 participant(s)"), "{said}");
    assert_eq!(enrolled(&cli, "p2"), 0);
    assert_eq!(enrolled(&cli, "p1"), 3);

    let server = cli.serve(&[]);
    let started = std::time::Instant::now();
    loop {
        let summary: Value = server.get("/v1/programs/p1/summary").await.json().await.expect("JSON");
        if summary["enrolled"] == 0 {
            break;
        }
        assert!(started.elapsed().as_secs() < 30, "the server erased no one due: {summary}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let kept: Value = server.get("/v1/programs/p3/summary").await.json().await.expect("JSON");
    assert_eq!(kept["enrolled"], 1, "K is not due for a hundred years");
    drop(server);
    assert!(due_on(&cli, "2026-01-01").is_empty());

    let mut audit = vec!["audit".to_string(), "--json".into()];
    audit.extend(cli.store.args());
    let records = output(run_utfall(&audit, None));
    let erasures: Vec<&str> = records
        .lines()
        .filter(|l| l.contains("\"action\":\"erase\"") && l.contains("reason: retention"))
        .collect();
    assert_eq!(erasures.len(), 4, "{records}");
    assert_eq!(
        erasures.iter().filter(|l| l.contains("\"principal\":\"utfall:retention\"")).count(),
        3,
        "{records}"
    );
}

for_both_stores!(participants_are_erased_when_their_programmes_rule_says);
