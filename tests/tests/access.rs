//! Access control end to end, on one deployment holding OPTIMIST (the
//! principals' own programme) and SJÅ MEG (another one): a role × route ×
//! (own, other) matrix over HTTP generated from one table, evaluators' ways
//! around their view over HTTP, psql and psycopg, and the audit log — 0
//! leaks of another programme's rows or of a stored participant id.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use utfall_queries::Evaluation;
use utfall_tests::wire::{contact, id, ndjson};
use utfall_tests::{Cli, Pg, Server, Store, client_with, fixture, free_port, fresh_database, run_utfall, wait_for};

const ROLES: [&str; 5] = ["admin", "registrar", "viewer", "evaluator", "funder"];
const OWN: &str = "optimist";
const OTHER: &str = "sja-meg";

/// The statuses each role gets (own programme, other programme), in
/// `ROLES` order.
type Statuses = [(u16, u16); 5];

/// Every route a principal can be refused on, and the status each role
/// gets.
const MATRIX: &[(&str, &str, Statuses)] = &[
    ("GET", "/v1/programs", [(200, 200); 5]),
    ("GET", "/v1/projections", [(200, 200); 5]),
    (
        "GET",
        "/v1/programs/{p}/summary",
        [(200, 200), (200, 404), (200, 404), (403, 404), (403, 404)],
    ),
    (
        "GET",
        "/v1/programs/{p}/outcomes",
        [(200, 200), (200, 404), (200, 404), (200, 404), (403, 404)],
    ),
    (
        "GET",
        "/v1/programs/{p}/participants",
        [(200, 200), (200, 404), (403, 404), (403, 404), (403, 404)],
    ),
    (
        "POST",
        "/v1/events",
        [(201, 201), (201, 403), (403, 403), (403, 403), (403, 403)],
    ),
    (
        "POST",
        "/v1/sql",
        [(200, 200), (403, 403), (403, 403), (200, 200), (403, 403)],
    ),
    (
        "GET",
        "/v1/extracts",
        [(200, 200), (403, 403), (403, 403), (403, 403), (200, 200)],
    ),
    (
        "GET",
        "/v1/extracts/{x}",
        [(200, 200), (403, 403), (403, 403), (403, 403), (200, 404)],
    ),
    (
        "GET",
        "/v1/audit",
        [(200, 200), (403, 403), (403, 403), (403, 403), (403, 403)],
    ),
];

/// Routes whose every answer is audited; others only their refusals.
const AUDITED: [&str; 5] = [
    "/v1/programs/{p}/participants",
    "/v1/events",
    "/v1/sql",
    "/v1/extracts/{x}",
    "/v1/audit",
];

struct Deployment {
    cli: Cli,
    _extracts: tempfile::TempDir,
    server: Server,
    pg: Pg,
    /// Role → (principal name, token).
    principals: HashMap<&'static str, (String, String)>,
    /// Programme → the path of one file of its extract.
    extract_files: HashMap<String, String>,
    /// Every participant id stored, of both programmes.
    stored_ids: Vec<String>,
    key: Vec<u8>,
}

impl Deployment {
    /// A deployment over `store`; beside JetStream, its principals, audit
    /// log and read models are in a PostgreSQL database of its own.
    async fn start(store: Store) -> Self {
        let database = match &store {
            Store::JetStream { .. } => vec!["--database".to_string(), fresh_database().await],
            Store::Embedded(_) => Vec::new(),
        };
        let cli = Cli::new(store);
        for name in [OWN, OTHER] {
            cli.import(&fixture(name));
        }
        // P01 withdraws consent to evaluation: no evaluator row may show them.
        let withdrawal = json!({
            "event_id": id(), "program": OWN, "participant": "P01", "type": "consent_recorded",
            "occurred_on": "2023-01-10", "recorded_by": "ac-1", "data": {"scope": "evaluation", "given": false}
        });
        let file = tempfile::NamedTempFile::new().expect("file");
        std::fs::write(file.path(), ndjson(&[withdrawal])).expect("write");
        cli.import(file.path());
        let extracts = tempfile::tempdir().expect("directory");
        let out = extracts.path().display().to_string();
        for program in [OWN, OTHER] {
            let made = cli.run("extract", &["--program", program, "--period", "2021", "--out", &out]);
            assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        }
        let port = free_port();
        let pg_address = format!("127.0.0.1:{port}");
        let mut serve = vec!["--pg", pg_address.as_str(), "--extracts", &out];
        serve.extend(database.iter().map(String::as_str));
        let server = cli.serve(&serve);
        wait_for(
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "the Postgres endpoint",
        );
        let pg = Pg::admin(&server, port);
        let mut principals = HashMap::from([("admin", ("admin".to_string(), server.admin_token.clone()))]);
        for role in &ROLES[1..] {
            let name = format!("{role}-1");
            let mut args = vec!["token".to_string(), "create".into()];
            args.extend(cli.store.args());
            args.extend(database.iter().cloned());
            args.extend(["--name", &name, "--role", role, "--program", OWN].map(String::from));
            let created = run_utfall(&args, None);
            assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
            let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
            principals.insert(*role, (name, token));
        }
        // The matrix reads the read models: they must hold the history first.
        server.caught_up().await;
        let listed: Value = server.get("/v1/extracts").await.json().await.expect("JSON");
        let extract_files = listed
            .as_array()
            .expect("a list")
            .iter()
            .map(|x| {
                let program = x["program"].as_str().expect("program").to_string();
                let file = format!(
                    "{}/{}",
                    x["id"].as_str().expect("id"),
                    x["files"][0].as_str().expect("file")
                );
                (program, file)
            })
            .collect();
        let stored_ids = ["optimist", "sja-meg"]
            .iter()
            .flat_map(|p| {
                let text = std::fs::read_to_string(fixture(p)).expect("fixture");
                text.lines()
                    .filter_map(|l| {
                        serde_json::from_str::<Value>(l).ok()?["participant"]
                            .as_str()
                            .map(String::from)
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let data_dir = match &cli.store {
            Store::Embedded(dir) | Store::JetStream { dir, .. } => dir.path().to_path_buf(),
        };
        let key = std::fs::read(data_dir.join("pseudonym.key")).expect("the pseudonym key");
        Self {
            cli,
            _extracts: extracts,
            server,
            pg,
            principals,
            extract_files,
            stored_ids,
            key,
        }
    }

    fn token(&self, role: &str) -> &str {
        &self.principals[role].1
    }

    /// Whether `text` holds a stored participant id as a value of its own.
    fn stored_id_in(&self, text: &str) -> Option<String> {
        self.stored_ids
            .iter()
            .find(|id| {
                text.contains(&format!("\"{id}\""))
                    || text
                        .lines()
                        .any(|l| l.split(['|', ',', '\t']).any(|f| f.trim() == id.as_str()))
            })
            .cloned()
    }

    /// Runs one matrix request; its status and body.
    async fn request(&self, role: &str, method: &str, path: &str, program: &str) -> (StatusCode, String) {
        let client = client_with(self.token(role));
        let path = path
            .replace("{p}", program)
            .replace("{x}", &self.extract_files[program]);
        let url = self.server.url(&path);
        let request = match (method, path.as_str()) {
            ("POST", "/v1/events") => client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(ndjson(&[contact(
                    program,
                    if program == OWN { "P02" } else { "R02" },
                    "2020-04-01",
                )])),
            ("POST", _) => client.post(url).body(format!(
                "SELECT program, participant FROM participants WHERE program = '{program}'"
            )),
            _ => client.get(url),
        };
        let response = request.send().await.expect("request");
        (response.status(), response.text().await.unwrap_or_default())
    }
}

async fn every_role_gets_what_it_may_and_nothing_of_another_programme(store: Store) {
    let d = Deployment::start(store).await;
    let log = d.cli.store.open().await;
    let head_before = log.head().await.expect("head");
    let mut expected: Vec<(String, String, String, Option<i64>)> = Vec::new();
    let mut requests = 0;
    for (method, path, statuses) in MATRIX {
        for (role, (own, other)) in ROLES.iter().zip(statuses) {
            for (program, expected_status) in [(OWN, own), (OTHER, other)] {
                let (status, body) = d.request(role, method, path, program).await;
                requests += 1;
                let case = format!("{role} {method} {path} for {program}");
                assert_eq!(status.as_u16(), *expected_status, "{case}: {body}");
                if *role != "admin" && status.is_success() {
                    assert!(!body.contains(OTHER), "{case} shows the other programme: {body}");
                }
                if *role != "admin" && *role != "registrar" {
                    assert_eq!(d.stored_id_in(&body), None, "{case} shows a stored participant id");
                }
                let refused = status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND;
                if AUDITED.contains(path) || refused {
                    // The rows the answer holds, as the record must count them.
                    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let rows = match (status.is_success(), *path) {
                        (false, _) | (_, "/v1/extracts/{x}") => None,
                        (_, "/v1/programs/{p}/participants") => {
                            answer["participants"].as_array().map(|a| a.len() as i64)
                        }
                        (_, "/v1/events") => Some(1),
                        _ => answer.as_array().map(|a| a.len() as i64),
                    };
                    let name = d.principals[role].0.clone();
                    expected.push((name, format!("{method} {path}"), status.as_str().to_string(), rows));
                }
            }
        }
    }
    assert!(requests >= 100, "{requests} requests");

    // Only the admin's and the registrar's own events were written.
    let written: Vec<String> = log
        .read(head_before, 100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.event.program.as_str().to_string())
        .collect();
    assert_eq!(written, [OWN, OTHER, OWN], "events stored by the matrix");

    // Exactly one audit record per audited request, with its principal,
    // outcome and row count (the read below is recorded after it answers).
    let records: Value = d.server.get("/v1/audit?limit=10000").await.json().await.expect("JSON");
    let mut found: Vec<(String, String, String, Option<i64>)> = records
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] != "token_create")
        .map(|r| {
            let action = r["action"]
                .as_str()
                .unwrap_or_default()
                .replace("{program}", "{p}")
                .replace("{id}/{file}", "{x}");
            (
                r["principal"].as_str().unwrap_or_default().to_string(),
                action,
                r["outcome"].as_str().unwrap_or_default().to_string(),
                r["rows"].as_i64(),
            )
        })
        .collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "audit records vs audited requests");
}

utfall_tests::for_both_stores!(every_role_gets_what_it_may_and_nothing_of_another_programme);

/// SQL an evaluator might write to see around their view: every answer
/// holds only their programme's rows, pseudonymised.
const AROUND: &[&str] = &[
    "SELECT * FROM events WHERE program = 'sja-meg'",
    "SELECT DISTINCT program FROM events",
    "SELECT program, participant FROM participants",
    "SELECT p.participant FROM participants p JOIN status_spells s ON s.participant = p.participant WHERE s.program = 'sja-meg'",
    "SELECT * FROM participants WHERE participant IN (SELECT participant FROM contacts WHERE program = 'sja-meg')",
    "SELECT participant FROM participants UNION SELECT participant FROM contacts",
    "WITH x AS (SELECT * FROM events) SELECT program, participant, data FROM x WHERE program = 'sja-meg'",
    "SELECT table_schema, table_name FROM information_schema.tables",
    "SELECT table_schema, table_name, column_name FROM information_schema.columns",
    "SELECT program, count(*) AS n FROM status_spells GROUP BY program",
    "SELECT participant, data FROM events",
    "SELECT * FROM horizons(6, 'exit')",
    "SELECT program, participant, status FROM horizons(12, 'enrolment') WHERE program = 'sja-meg'",
];

/// SQL that reaches for what an evaluator's session does not hold.
const REFUSED: &[&str] = &[
    "SELECT * FROM internal.lake_events",
    "SELECT * FROM datafusion.internal.known_events",
    "SELECT recorded_by FROM events",
    "SELECT pseudonym('P02')",
];

impl Deployment {
    /// An evaluator's answer must hold nothing of the other programme, no
    /// stored participant id and nothing of the internal schema.
    fn assert_clean(&self, what: &str, answer: &str) {
        assert!(!answer.contains(OTHER), "{what} shows the other programme: {answer}");
        let internal = answer.contains("\"internal\"")
            || answer.contains("internal.")
            || answer.lines().any(|l| l.split('|').any(|f| f == "internal"));
        assert!(!internal, "{what} shows the internal schema: {answer}");
        assert_eq!(self.stored_id_in(answer), None, "{what} shows a stored participant id");
    }

    fn pseudonyms(&self, ids: &[&str]) -> Vec<String> {
        let evaluation = Evaluation::new(Vec::new(), &self.key);
        let mut pseudonyms: Vec<String> = ids.iter().map(|id| evaluation.pseudonym(id)).collect();
        pseudonyms.sort();
        pseudonyms
    }

    fn psql(&self, pg: &Pg, sql: &str) -> (bool, String, String) {
        let program = std::env::var("UTFALL_TEST_PSQL").unwrap_or_else(|_| "psql".into());
        let out = pg
            .command(&program)
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

/// psycopg as an evaluator, signing in with SCRAM only (libpq refuses to
/// send the token itself): a bound parameter for each programme, then the
/// same connection after its token was revoked (argv: the revoke command).
const PSYCOPG: &str = r#"
import json, subprocess, sys
import psycopg
out = {}
with psycopg.connect("require_auth=scram-sha-256", autocommit=True) as conn:
    q = "SELECT participant FROM participants WHERE program = %s ORDER BY participant"
    out["own"] = [r[0] for r in conn.execute(q, ("optimist",)).fetchall()]
    out["other"] = [r[0] for r in conn.execute(q, ("sja-meg",)).fetchall()]
    subprocess.run(sys.argv[1:], check=True, capture_output=True)
    try:
        conn.execute("SELECT count(*) FROM participants").fetchall()
        out["after_revoke"] = "answered"
    except psycopg.Error as e:
        out["after_revoke"] = str(e)
print(json.dumps(out))
"#;

#[tokio::test]
async fn evaluators_see_their_programme_pseudonymised_on_every_way_in() {
    let d = Deployment::start(Store::embedded()).await;
    let evaluator = client_with(d.token("evaluator"));
    let sql = |text: &str| {
        let request = evaluator.post(d.server.url("/v1/sql")).body(text.to_string());
        async move {
            let response = request.send().await.expect("POST /v1/sql");
            (response.status(), response.text().await.unwrap_or_default())
        }
    };

    // Pseudonyms: every consenting OPTIMIST participant, stable, never P01.
    let consenting: Vec<String> = (2..=15).map(|n| format!("P{n:02}")).collect();
    let consenting: Vec<&str> = consenting.iter().map(String::as_str).collect();
    let (status, body) = sql("SELECT participant FROM participants ORDER BY participant").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown: Vec<String> = serde_json::from_str::<Value>(&body)
        .expect("JSON")
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["participant"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(shown, d.pseudonyms(&consenting));
    assert_eq!(
        sql("SELECT participant FROM participants ORDER BY participant").await.1,
        body
    );
    let withdrawn = d.pseudonyms(&["P01"]).remove(0);
    let (_, events) = sql("SELECT participant FROM events").await;
    assert!(
        !events.contains(&withdrawn),
        "a participant who withdrew consent is shown"
    );
    assert!(events.contains(&shown[0]));

    for text in AROUND {
        let (status, answer) = sql(text).await;
        assert_eq!(status, StatusCode::OK, "{text}: {answer}");
        d.assert_clean(&format!("HTTP {text}"), &answer);
    }
    for text in REFUSED {
        let (status, answer) = sql(text).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}: {answer}");
    }

    // The same over psql.
    let (name, token) = d.principals["evaluator"].clone();
    let pg = d.pg.as_user(&name, &token);
    let (ok, out, err) = d.psql(&pg, "SELECT participant FROM participants ORDER BY participant");
    assert!(ok, "{err}");
    assert_eq!(out.lines().map(String::from).collect::<Vec<_>>(), shown);
    for text in AROUND
        .iter()
        .chain(&["SELECT relname FROM pg_catalog.pg_class", "\\dt"])
    {
        let (ok, out, err) = d.psql(&pg, text);
        assert!(ok, "psql {text}: {err}");
        d.assert_clean(&format!("psql {text}"), &out);
    }
    for text in REFUSED {
        let (ok, out, _) = d.psql(&pg, text);
        assert!(!ok, "psql {text} answered: {out}");
    }

    // Who may not use SQL, and wrong or revoked tokens, are refused.
    for role in ["registrar", "viewer", "funder"] {
        let (name, token) = d.principals[role].clone();
        let (ok, _, err) = d.psql(&d.pg.as_user(&name, &token), "SELECT 1");
        assert!(!ok && err.contains("may not query"), "{role}: {err}");
    }
    let (ok, _, err) = d.psql(&pg.as_user(&name, "utfall_0123"), "SELECT 1");
    assert!(
        !ok && err.contains("Password authentication failed"),
        "a wrong token: {err}"
    );
    let (ok, _, _) = d.psql(&pg.as_user("admin", &token), "SELECT 1");
    assert!(!ok, "another principal's token signed in");
    // Guessing in parallel: every attempt fails and is audited.
    let guesses: Vec<_> = (0..40)
        .map(|n| {
            let pg = pg.as_user(&name, &format!("utfall_{n:064x}"));
            std::thread::spawn(move || {
                let program = std::env::var("UTFALL_TEST_PSQL").unwrap_or_else(|_| "psql".into());
                pg.command(&program)
                    .args(["-X", "-c", "SELECT 1"])
                    .output()
                    .expect("psql")
                    .status
                    .success()
            })
        })
        .collect();
    let signed_in = guesses
        .into_iter()
        .map(|g| g.join().unwrap_or(true))
        .filter(|ok| *ok)
        .count();
    assert_eq!(signed_in, 0, "a guessed token signed in");

    // psycopg: bound parameters, then a token revoked under an open connection.
    let python = std::env::var("UTFALL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut revoke = vec![
        utfall_tests::utfall_bin().display().to_string(),
        "token".into(),
        "revoke".into(),
    ];
    revoke.extend(d.cli.store.args());
    revoke.push(name.clone());
    let out = pg
        .command(&python)
        .args(["-c", PSYCOPG])
        .args(&revoke)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["own"], json!(shown));
    assert_eq!(result["other"], json!([]));
    assert!(
        result["after_revoke"].as_str().is_some_and(|e| e.contains("revoked")),
        "{result}"
    );
    let (status, _) = sql("SELECT 1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked token works over HTTP");

    // The audit log holds the psql query with its rows, and the failed sign-ins.
    let records: Value = d.server.get("/v1/audit?limit=10000").await.json().await.expect("JSON");
    let records = records.as_array().expect("records");
    assert!(
        records.iter().any(|r| r["principal"] == name.as_str()
            && r["action"] == "sql"
            && r["detail"] == "SELECT participant FROM participants ORDER BY participant"
            && r["rows"] == 14),
        "no audit record of the psql query"
    );
    assert!(records.iter().filter(|r| r["action"] == "sign_in_failed").count() >= 42);
    let text = serde_json::to_string(records).expect("JSON");
    for (_, token) in d.principals.values() {
        assert!(!text.contains(token.as_str()), "a token is in the audit log");
    }
}

/// Tokens, passwords and the pseudonym key never reach the server's log
/// (at debug level), its metrics or an error answer.
#[tokio::test]
async fn secrets_stay_out_of_logs_metrics_and_errors() {
    let store = Store::embedded();
    let log_file = tempfile::NamedTempFile::new().expect("log file");
    let port = free_port();
    let mut child = std::process::Command::new(utfall_tests::utfall_bin())
        .args(["serve", "--http", "127.0.0.1:0", "--pg", &format!("127.0.0.1:{port}")])
        .args(store.args())
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(log_file.reopen().expect("log file"))
        .spawn()
        .expect("utfall serve");
    let stdout = child.stdout.take().expect("stdout");
    let base = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("utfall listening on ").map(String::from))
        .expect("the server started");
    wait_for(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the Postgres endpoint",
    );
    let Store::Embedded(dir) = &store else {
        unreachable!("an embedded store")
    };
    let admin = std::fs::read_to_string(dir.path().join("admin.token")).expect("admin token");
    let admin = admin.trim();
    let forged = format!("utfall_{}", "ab".repeat(32));

    let mut answers = String::new();
    for (token, path) in [
        (admin, "/v1/programs"),
        (admin, "/v1/programs/nope/summary"),
        (forged.as_str(), "/v1/programs"),
    ] {
        let response = client_with(token)
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("GET");
        answers += &response.text().await.unwrap_or_default();
    }
    answers += &reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    let psql = std::env::var("UTFALL_TEST_PSQL").unwrap_or_else(|_| "psql".into());
    let pg = Pg {
        port,
        user: "admin".into(),
        password: admin.to_string(),
    };
    for password in [admin, forged.as_str()] {
        let out = pg
            .as_user("admin", password)
            .command(&psql)
            .args(["-X", "-c", "SELECT 1"])
            .output()
            .expect("psql");
        answers += &String::from_utf8_lossy(&out.stderr);
    }
    let _ = child.kill();
    let _ = child.wait();

    let logged = std::fs::read_to_string(log_file.path()).expect("log");
    assert!(logged.len() > 1000, "the log holds little: {logged}");
    let key: String = std::fs::read(dir.path().join("pseudonym.key"))
        .expect("key")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for (what, secret) in [
        ("the admin token", admin),
        ("a forged token", &forged),
        ("the pseudonym key", &key),
    ] {
        assert!(!logged.contains(secret), "{what} is in the log");
        assert!(!answers.contains(secret), "{what} is in an answer");
        assert!(!logged.contains(&secret[7..30]), "part of {what} is in the log");
    }
}
