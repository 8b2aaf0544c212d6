//! Erasure end to end, both stores (the embedded one with SQLite read
//! models, JetStream with PostgreSQL's): OPTIMIST plus one participant with
//! distinctive data values is imported and served; an admin erases that
//! participant and one of OPTIMIST's through the API. Afterwards no file of
//! the deployment and no read-model table holds their data, the API and
//! SQL know nothing of them, nothing more is accepted for them, the
//! erasure is audited with its reason, and every outcome figure equals a
//! fresh import of the fixture without them — before and after the read
//! models and the lake are rebuilt from the log.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};
use utfall_tests::{Cli, Server, Store, client_with, fixture, for_both_stores, fresh_database, run_utfall, wire};

/// The added participant, whose data values occur nowhere else.
const ZEBRA: &str = "ZEBRA";
const ZEBRA_VALUES: [&str; 3] = ["zebra_referral_9431", "zebra_income_9431", "zebra_group_9431"];
/// The OPTIMIST participant erased beside them.
const OPTIMIST_ERASED: &str = "P03";

fn zebra_events() -> Vec<Value> {
    let event = |kind: &str, on: &str, data: Value| {
        json!({"event_id": wire::id(), "program": "optimist", "participant": ZEBRA, "type": kind,
               "occurred_on": on, "data": data})
    };
    vec![
        event(
            "participant_enrolled",
            "2021-03-01",
            json!({"birth_year": 1937, "gender": "female", "referral_source": ZEBRA_VALUES[0],
                   "income_source": ZEBRA_VALUES[1], "target_groups": [ZEBRA_VALUES[2]]}),
        ),
        event("status_changed", "2021-04-01", json!({"status": "employed", "hours_per_week": 37.5})),
        event("contact_recorded", "2021-04-02", json!({"kind": "home_visit", "minutes": 47})),
    ]
}

/// The OPTIMIST fixture's lines, without those of `left_out`.
fn optimist_lines(left_out: Option<&str>) -> String {
    let text = std::fs::read_to_string(fixture("optimist")).expect("fixture");
    let theirs = left_out.map(|p| format!("\"participant\":\"{p}\""));
    text.lines()
        .filter(|l| theirs.as_ref().is_none_or(|t| !l.contains(t.as_str())))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write events");
    path.display().to_string()
}

fn succeeded(out: std::process::Output) -> Vec<u8> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// `utfall outcomes` of OPTIMIST, without what names the moment asked.
fn figures(cli: &Cli, extra: &[&str]) -> Value {
    let mut args = vec!["--program", "optimist", "--format", "json"];
    args.extend_from_slice(extra);
    let mut report: Value = serde_json::from_slice(&succeeded(cli.run("outcomes", &args))).expect("JSON");
    for moment in ["as_of", "known_at", "log_position"] {
        report.as_object_mut().expect("report").remove(moment);
    }
    report
}

fn sql_count(cli: &Cli, extra: &[&str], query: &str) -> i64 {
    let mut args = vec![query, "--format", "json"];
    args.extend_from_slice(extra);
    let rows: Value = serde_json::from_slice(&succeeded(cli.run("sql", &args))).expect("JSON");
    rows[0]["n"].as_i64().unwrap_or_else(|| panic!("{query}: {rows}"))
}

/// Every file at or under `path` holding one of `needles`, with the needle.
fn files_holding(path: &Path, needles: &[&str]) -> Vec<String> {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).expect("folder");
        return entries
            .filter_map(Result::ok)
            .flat_map(|entry| files_holding(&entry.path(), needles))
            .collect();
    }
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    needles
        .iter()
        .filter(|needle| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|needle| format!("{needle} in {}", path.display()))
        .collect()
}

async fn erase_through_the_api(server: &Server, token: &str, participant: &str, reason: &str) -> (StatusCode, Value) {
    let answer = client_with(token)
        .post(server.url(&format!("/v1/programs/optimist/participants/{participant}/erase")))
        .json(&json!({"reason": reason}))
        .send()
        .await
        .expect("POST erase");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn an_erased_participant_leaves_nothing_and_the_figures_follow(store: Store) {
    let database = match store {
        Store::Embedded(_) => None,
        Store::JetStream { .. } => Some(fresh_database().await),
    };
    let db_args: Vec<&str> = database.iter().flat_map(|url| ["--database", url.as_str()]).collect();
    let files = tempfile::tempdir().expect("temp dir");
    let cli = Cli::new(store);
    let imported = optimist_lines(None) + &wire::ndjson(&zebra_events());
    let mut import = vec![];
    let file = write(files.path(), "all.ndjson", &imported);
    import.push(file.as_str());
    import.extend(&db_args);
    succeeded(cli.run("import", &import));

    let mut server = cli.serve(&db_args);
    server.caught_up().await;
    let zebra_data_dir = cli.store.data_dir().to_path_buf();
    if database.is_none() {
        // The search finds the values where they are, so it can find them.
        let read_models = files_holding(&zebra_data_dir.join("read.db"), &ZEBRA_VALUES);
        assert!(!read_models.is_empty(), "the values are not in the read models before erasure");
    }
    let before: Value = server.get("/v1/programs/optimist/summary").await.json().await.expect("JSON");

    let mut token = vec!["token".to_string(), "create".into()];
    token.extend(cli.store.args());
    token.extend(db_args.iter().map(|a| a.to_string()));
    token.extend(["--name", "reg-1", "--role", "registrar", "--program", "optimist"].map(String::from));
    let registrar = String::from_utf8_lossy(&succeeded(run_utfall(&token, None))).trim().to_string();
    let (status, _) = erase_through_the_api(&server, &registrar, ZEBRA, "request").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a registrar may not erase");
    let admin = server.admin_token.clone();
    let (status, answer) = erase_through_the_api(&server, &admin, "NOBODY", "request").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = erase_through_the_api(&server, &admin, ZEBRA, "Free text!").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a reason is a code: {answer}");

    for participant in [ZEBRA, OPTIMIST_ERASED] {
        let (status, answer) = erase_through_the_api(&server, &admin, participant, "request").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["already_erased"], false, "{answer}");
        assert_eq!(answer["removed_from_read_models_and_lake"], true, "{answer}");
    }
    let (status, again) = erase_through_the_api(&server, &admin, ZEBRA, "request").await;
    assert_eq!((status, &again["already_erased"]), (StatusCode::OK, &json!(true)), "{again}");

    let later = wire::contact("optimist", ZEBRA, "2021-05-01");
    let refused = server
        .client()
        .post(server.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(wire::ndjson(&[later]))
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = refused.json().await.expect("JSON");
    assert_eq!(refused["invalid"][0]["field"], "participant", "{refused}");

    let after: Value = server.get("/v1/programs/optimist/summary").await.json().await.expect("JSON");
    assert_eq!(after["enrolled"].as_i64(), before["enrolled"].as_i64().map(|n| n - 2), "{after}");
    let listed: Value = server
        .get("/v1/programs/optimist/participants?per_page=500")
        .await
        .json()
        .await
        .expect("JSON");
    let names: Vec<&str> = listed["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["participant"].as_str())
        .collect();
    assert!(!names.contains(&ZEBRA) && !names.contains(&OPTIMIST_ERASED), "{names:?}");

    let audit: Value = server.get("/v1/audit?limit=1000").await.json().await.expect("JSON");
    let erasures: Vec<&Value> = audit
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"].as_str().is_some_and(|a| a.ends_with("/erase")) && r["outcome"] == "200")
        .collect();
    assert_eq!(erasures.len(), 3, "{erasures:?}");
    assert!(
        erasures.iter().all(|r| r["principal"] == "admin" && r["detail"] == "reason: request"),
        "{erasures:?}"
    );
    server.kill();

    // Nothing of theirs in any file of the deployment: the log's files,
    // the keys, the read models, the audit, and every file of the lake.
    let mut found = files_holding(&zebra_data_dir, &ZEBRA_VALUES);
    found.extend(files_holding(cli.lake_dir(), &ZEBRA_VALUES));
    found.extend(files_holding(cli.lake_dir(), &[ZEBRA]));
    if database.is_none() {
        found.extend(files_holding(&zebra_data_dir.join("read.db"), &[ZEBRA]));
    }
    assert!(found.is_empty(), "{found:?}");
    if let Some(url) = &database {
        let pool = sqlx::PgPool::connect(url).await.expect("read models");
        for table in utfall_projections::read_models::schema::TABLES {
            let query = format!(
                "SELECT COUNT(*) FROM {table} t WHERE t::text LIKE '%zebra%' OR t::text LIKE '%{ZEBRA}%' \
                 OR t::text LIKE '%\"{OPTIMIST_ERASED}\"%' OR t::text LIKE '%,{OPTIMIST_ERASED},%'"
            );
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query)).fetch_one(&pool).await.expect(table);
            assert_eq!(n, 0, "{table} holds rows of an erased participant");
        }
    }
    for payload in cli.store.raw_payloads().await.iter().map(|(_, p)| String::from_utf8_lossy(p).to_string()) {
        assert!(!ZEBRA_VALUES.iter().any(|v| payload.contains(v)), "{payload}");
    }

    // The figures are those of the fixture without the erased OPTIMIST
    // participant (ZEBRA was never in it), now and after rebuilding.
    let expected = {
        let fresh = Cli::new(Store::embedded());
        let file = write(files.path(), "without.ndjson", &optimist_lines(Some(OPTIMIST_ERASED)));
        succeeded(fresh.run("import", &[&file]));
        figures(&fresh, &[])
    };
    assert_eq!(figures(&cli, &db_args), expected);
    let erased = format!(
        "SELECT COUNT(*) AS n FROM {{table}} WHERE participant IN ('{ZEBRA}', '{OPTIMIST_ERASED}')"
    );
    for projection in ["read_models", "lake"] {
        let mut rebuild = vec!["--projection", projection];
        rebuild.extend(&db_args);
        succeeded(cli.run("rebuild", &rebuild));
    }
    assert_eq!(figures(&cli, &db_args), expected);
    for table in ["participants", "events", "status_spells", "contacts"] {
        assert_eq!(sql_count(&cli, &db_args, &erased.replace("{table}", table)), 0, "{table}");
    }
    assert!(files_holding(cli.lake_dir(), &[ZEBRA]).is_empty());
}

/// `utfall erase` killed (SIGKILL) at moments spread over its run: each
/// time, the next process to open the store finds the participant either
/// erased (key gone, nothing of theirs readable) or untouched, never in
/// between. Running the command again then erases them all, and the
/// projections drop them.
async fn an_erasure_killed_at_any_moment_is_all_or_nothing(store: Store) {
    const KILLS: [u64; 10] = [0, 10, 20, 30, 40, 50, 60, 80, 120, 250];
    let files = tempfile::tempdir().expect("temp dir");
    let cli = Cli::new(store);
    let mut events = vec![wire::program_defined("p1")];
    for i in 0..KILLS.len() {
        events.push(wire::enrolled("p1", &format!("K{i}"), "2021-01-04"));
        events.push(wire::contact("p1", &format!("K{i}"), "2021-01-05"));
    }
    let file = write(files.path(), "events.ndjson", &wire::ndjson(&events));
    succeeded(cli.run("import", &[&file]));
    succeeded(cli.run("sql", &["SELECT 1"]));

    let erase_args = |participant: &str| {
        let mut args = vec!["erase".to_string()];
        args.extend(cli.store.args());
        args.extend(["--lake".to_string(), cli.lake_dir().display().to_string()]);
        args.extend(["--program", "p1", "--participant", participant, "--reason", "request"].map(String::from));
        args
    };
    let mut erased_before_kill = 0;
    for (i, after_ms) in KILLS.iter().enumerate() {
        let participant = format!("K{i}");
        let mut child = std::process::Command::new(utfall_tests::utfall_bin())
            .args(erase_args(&participant))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start utfall erase");
        tokio::time::sleep(std::time::Duration::from_millis(*after_ms)).await;
        let _ = child.kill();
        let _ = child.wait();

        let log = cli.store.open().await;
        let key = utfall_events::StreamKey {
            program: utfall_events::ProgramName::new("p1").expect("programme"),
            participant: Some(utfall_events::Pseudonym::new(participant.as_str()).expect("participant")),
        };
        let state = log.stream_state(&key).await.expect("state");
        let readable = log.read_stream(&key).await.expect("stream").len();
        assert!(
            log.sealing().keys().pending_erasures().await.expect("pending").is_empty(),
            "an erasure was left half done"
        );
        if state.erased.is_some() {
            assert_eq!(readable, 1, "{participant}: erased, yet their events read");
            erased_before_kill += 1;
        } else {
            assert_eq!(readable, 2, "{participant}: not erased, yet their events are gone");
        }
    }
    println!("{erased_before_kill} of {} erasures were stored before their kill", KILLS.len());

    for i in 0..KILLS.len() {
        let said = String::from_utf8_lossy(&succeeded(run_utfall(&erase_args(&format!("K{i}")), None))).to_string();
        assert!(said.contains("erased p1/K") || said.contains("was already erased"), "{said}");
    }
    let participants = "SELECT COUNT(*) AS n FROM participants WHERE program = 'p1'";
    assert_eq!(sql_count(&cli, &[], participants), 0);
    let mut audit = vec!["audit".to_string(), "--json".into()];
    audit.extend(cli.store.args());
    let records = String::from_utf8_lossy(&succeeded(run_utfall(&audit, None))).to_string();
    let erasures = records
        .lines()
        .filter(|l| l.contains("\"action\":\"erase\"") && l.contains("\"outcome\":\"ok\""))
        .count();
    assert!(erasures >= KILLS.len(), "{records}");
    assert!(records.contains("reason: request") && records.contains("operator:"), "{records}");
}


/// A delivered extract whose figures counted an erased participant stays
/// as delivered (its hashes still verify); reproducing it reports which
/// figures can no longer be computed, and why, instead of failing.
async fn a_delivered_extract_says_what_an_erasure_made_irreproducible(store: Store) {
    let files = tempfile::tempdir().expect("temp dir");
    let out = tempfile::tempdir().expect("extracts");
    let cli = Cli::new(store);
    let file = write(files.path(), "optimist.ndjson", &optimist_lines(None));
    succeeded(cli.run("import", &[&file]));
    let out_dir = out.path().display().to_string();
    succeeded(cli.run(
        "extract",
        &["--program", "optimist", "--period", "2022", "--out", &out_dir, "--format", "csv"],
    ));
    let delivered = out.path().join("optimist").join("2022");
    let manifest = delivered.join("manifest.json").display().to_string();
    let again = tempfile::tempdir().expect("reproduction");
    let again_dir = again.path().display().to_string();
    let before = String::from_utf8_lossy(&succeeded(cli.run("extract", &["--reproduce", &manifest, "--out", &again_dir])))
        .to_string();
    assert!(before.contains("identical"), "{before}");

    succeeded(cli.run(
        "erase",
        &["--program", "optimist", "--participant", OPTIMIST_ERASED, "--reason", "retention"],
    ));
    let after_dir = tempfile::tempdir().expect("reproduction after erasure");
    let after = String::from_utf8_lossy(&succeeded(cli.run(
        "extract",
        &["--reproduce", &manifest, "--out", &after_dir.path().display().to_string()],
    )))
    .to_string();
    assert!(
        after.contains("cannot be reproduced: 1 participant(s) of optimist were erased"),
        "{after}"
    );
    assert!(after.contains("delivered ") && after.contains("now "), "no figure named: {after}");
    let verify = run_utfall(&["extract".into(), "--verify".into(), delivered.display().to_string()], None);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

for_both_stores!(
    an_erased_participant_leaves_nothing_and_the_figures_follow,
    an_erasure_killed_at_any_moment_is_all_or_nothing,
    a_delivered_extract_says_what_an_erasure_made_irreproducible,
);
