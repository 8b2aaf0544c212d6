//! The Postgres wire endpoint (`utfall serve --pg`) with real clients: the
//! `psql` program (simple protocol) and Python's psycopg (extended
//! protocol, as R's RPostgres uses too).

use utfall_tests::{Pg, Server, Store, fixture, free_port, run_utfall, wait_for};

/// A server with both fixtures and its Postgres endpoint's port.
fn serve() -> (Store, Server, Pg) {
    let store = Store::embedded();
    let mut args = vec!["import".to_string()];
    args.extend(store.args());
    args.extend(["optimist", "sja-meg"].map(|n| fixture(n).display().to_string()));
    assert!(run_utfall(&args, None).status.success());
    // Bring the lake up to date before serving, so answers hold everything.
    let mut sql = vec!["sql".to_string()];
    sql.extend(store.args());
    sql.push("SELECT 1".into());
    assert!(run_utfall(&sql, None).status.success());
    let port = free_port();
    let mut extra = store.args();
    extra.extend(["--pg".to_string(), format!("127.0.0.1:{port}")]);
    let server = Server::start(&extra);
    wait_for(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the Postgres endpoint",
    );
    let pg = Pg::admin(&server, port);
    (store, server, pg)
}

fn psql(pg: &Pg, commands: &[&str]) -> std::process::Output {
    let program = std::env::var("UTFALL_TEST_PSQL").unwrap_or_else(|_| "psql".into());
    let mut cmd = pg.command(&program);
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {program} (set UTFALL_TEST_PSQL): {e}"))
}

#[test]
fn psql_queries_the_catalog_and_cannot_write() {
    let (_store, _server, pg) = serve();
    let out = psql(
        &pg,
        &["SELECT program, count(*) FROM participants GROUP BY program ORDER BY program"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text, "optimist|15\nsja-meg|32\n");

    let out = psql(
        &pg,
        &["SELECT count(*) FROM participants WHERE current_outcome_group = 'job' AND program = 'optimist'"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");

    for statement in [
        "CREATE TABLE x (a INT)",
        "INSERT INTO events SELECT * FROM events",
        "DROP VIEW participants",
    ] {
        let out = psql(&pg, &[statement]);
        assert!(!out.status.success(), "{statement} was allowed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("read-only"), "{statement}: {stderr}");
    }
    let out = psql(&pg, &["SELECT count(*) FROM participants"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "47", "nothing was changed");
}

/// psycopg, with a bound parameter (extended protocol) and typed values.
const PSYCOPG: &str = r#"
import datetime, json, sys
import psycopg
with psycopg.connect("") as conn:
    cur = conn.cursor()
    cur.execute("SELECT participant, enrolled_on, exited_on FROM participants WHERE program = %s ORDER BY participant",
                ("optimist",))
    rows = cur.fetchall()
    cur.execute("SELECT count(*) FROM status_spells WHERE program = %s AND outcome_group = %s", ("sja-meg", "job"))
    spells = cur.fetchone()[0]
    refused = ""
    try:
        cur.execute("DELETE FROM participants")
    except psycopg.Error as e:
        refused = str(e)
print(json.dumps({
    "rows": len(rows),
    "first": rows[0][0],
    "dates": all(isinstance(r[1], datetime.date) for r in rows),
    "spells": spells,
    "refused": refused,
}))
"#;

#[test]
fn psycopg_binds_parameters_and_gets_typed_values() {
    let (_store, _server, pg) = serve();
    let python = std::env::var("UTFALL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = pg
        .command(&python)
        .args(["-c", PSYCOPG])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set UTFALL_TEST_PYTHON to a Python with psycopg): {e}"));
    assert!(
        out.status.success(),
        "psycopg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    assert_eq!(result["rows"], 15);
    assert_eq!(result["first"], "P01");
    assert_eq!(result["dates"], true, "DATE columns arrive as dates");
    assert!(result["spells"].as_u64().is_some_and(|n| n >= 11), "{result}");
    assert!(
        result["refused"].as_str().is_some_and(|s| s.contains("read-only")),
        "{result}"
    );
}

/// A session sets its as-of date and known-at time, as HTTP's `as_of` and
/// `known_at`, over psql (simple protocol) and psycopg (extended); `\dt`
/// lists the catalog's tables.
const AS_OF_PSYCOPG: &str = r#"
import json, sys
import psycopg
with psycopg.connect("") as conn:
    conn.execute("SET utfall.as_of = '2020-12-31'")
    as_of = conn.execute("SELECT count(*) FROM participants WHERE program = %s", ("optimist",)).fetchone()[0]
    conn.execute("SET utfall.as_of = DEFAULT")
    now = conn.execute("SELECT count(*) FROM participants WHERE program = %s", ("optimist",)).fetchone()[0]
print(json.dumps({"as_of": as_of, "now": now}))
"#;

#[tokio::test]
async fn sessions_ask_as_of_a_date_and_as_known_at_a_time() {
    let (_store, server, pg) = serve();
    let count = "SELECT count(*) AS n FROM participants WHERE program = 'optimist'";
    let over_http = |query: &'static str| {
        let request = server
            .client()
            .post(server.url(&format!("/v1/sql?{query}")))
            .body(count);
        async move {
            let rows: serde_json::Value = request.send().await.expect("POST").json().await.expect("JSON");
            rows[0]["n"].to_string()
        }
    };
    let as_of = over_http("as_of=2020-12-31").await;
    let known_at = over_http("known_at=2000-01-01T00:00:00Z").await;
    assert_ne!(as_of, "15", "the date should leave some participants out");

    let out = psql(&pg, &["SET utfall.as_of = '2020-12-31'", "SHOW utfall.as_of", count]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("SET\n2020-12-31\n{as_of}\n")
    );
    let out = psql(&pg, &["SET utfall.known_at = '2000-01-01T00:00:00Z'", count]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("SET\n{known_at}\n"));
    let out = psql(&pg, &["SET utfall.as_of = 'last spring'"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("takes a date"));

    let python = std::env::var("UTFALL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = pg
        .command(&python)
        .args(["-c", AS_OF_PSYCOPG])
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["as_of"].to_string(), as_of);
    assert_eq!(result["now"], 15);

    // The catalog's tables are tables to SQL clients.
    let out = psql(&pg, &["\\dt"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    for table in ["participants", "status_spells", "measurement_scores", "events"] {
        assert!(
            listed.contains(&format!("|{table}|table|")),
            "\\dt lacks {table}: {listed}"
        );
    }
}
