//! The web dashboard in real headless Chromium: the OPTIMIST figures as
//! published, and a live update without reload. A screenshot is kept in
//! target/test-artefacts/dashboard.png.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use utfall_tests::browser::Browser;
use utfall_tests::wire::*;
use utfall_tests::{Server, Store, run_utfall};

const STATUS_ROWS: &str = "JSON.stringify([...document.querySelectorAll('#status-distribution tr')]
    .map(r => [...r.cells].slice(0, 2).map(c => c.textContent)))";

const OUTCOME_ROWS: &str = "JSON.stringify([...document.querySelectorAll('#outcomes tr')]
    .map(r => [...r.cells].map(c => c.textContent)))";

#[tokio::test]
async fn the_dashboard_shows_optimist_as_published_and_updates_live() {
    let store = Store::embedded();
    let server = Server::start_command("demo", &store.args());
    let mut browser = Browser::start().await;
    browser
        .open(&server.url(&format!("/?program=optimist#token={}", server.admin_token)))
        .await;
    browser
        .wait_for("document.querySelector('#lag').textContent.includes('lag 0')")
        .await;
    browser
        .wait_for("document.querySelector('#enrolled').textContent === '15'")
        .await;

    let rows: Vec<Vec<String>> =
        serde_json::from_str(browser.eval(STATUS_ROWS).await.as_str().unwrap_or("[]")).expect("rows as JSON");
    let shown: Vec<(&str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        shown,
        [
            ("Job", "5"),
            ("Activity", "5"),
            ("Benefit", "1"),
            ("Moved", "2"),
            ("No activity", "2")
        ]
    );
    assert_eq!(
        browser.eval("document.querySelector('#exited').textContent").await,
        Value::from("3")
    );
    assert_eq!(
        browser
            .eval("document.querySelector('#programme-title').textContent")
            .await,
        Value::from("OPTIMIST")
    );

    // Outcomes from the analytics lake, with intervals; measurement change.
    browser
        .wait_for("document.querySelector('#outcomes-as-of').textContent.includes('log position 1618')")
        .await;
    let outcomes = browser.eval(OUTCOME_ROWS).await;
    let outcomes: Vec<Vec<String>> = serde_json::from_str(outcomes.as_str().unwrap_or("[]")).expect("rows");
    assert_eq!(outcomes[0][..4], ["In a job", "5/15", "33.3 %", "15.2 % – 58.3 %"]);
    assert_eq!(outcomes[4][..3], ["Clarified at exit", "1/3", "33.3 %"]);
    let change = browser
        .eval("document.querySelector('#measurement-change').textContent")
        .await;
    assert_eq!(change, Value::from("coop_woncan=92.79 → 2.606 better, 2 same, 1 worse"));
    // A target set now shows against the actual share.
    let targets = serde_json::json!({"event_id": id(), "program": "optimist", "type": "targets_set",
        "occurred_on": "2022-01-01", "data": {"targets": [{"metric": "job_share", "op": ">=", "value": 0.2}]}});
    assert_eq!(server.post_events(&[targets]).await, StatusCode::CREATED);
    browser
        .wait_for("document.querySelector('#outcomes tr').textContent.includes('≥ 20.0 %metuncertain')")
        .await;
    // The programme's own indicator, with its target, beside the metrics.
    let indicator = serde_json::json!({"event_id": id(), "program": "optimist", "type": "indicator_defined",
        "occurred_on": "2022-01-01", "data": {"name": "measured_twice", "description": "Measured at least twice",
        "numerator": "(SELECT count(*) FROM measurement_scores m WHERE m.participant = participants.participant AND m.instrument = 'coop_wonca') >= 2"}});
    let targets = serde_json::json!({"event_id": id(), "program": "optimist", "type": "targets_set",
        "occurred_on": "2022-01-02", "data": {"targets": [{"metric": "measured_twice", "op": ">=", "value": 0.5}]}});
    assert_eq!(server.post_events(&[indicator, targets]).await, StatusCode::CREATED);
    browser
        .wait_for("[...document.querySelectorAll('#outcomes tr')].some((r) => r.textContent.startsWith('measured_twice — Measured at least twice9/1560.0 %') && r.textContent.endsWith('≥ 50.0 %metuncertain'))")
        .await;
    // OPTIMIST ended in 2022: the verdict rests on the share then, 9 of
    // 15, whose interval (35.7 % to 80.2 %) holds the target.
    let hover = browser
        .eval("[...document.querySelectorAll('#outcomes .verdict')].map((v) => v.title).pop()")
        .await;
    assert_eq!(hover, Value::from("now: 60.0 % (35.7 % – 80.2 %)"));
    // Over time: the quarterly employment rate, a point per quarter with
    // someone served, and each metric by year of enrolment (2020, 2021).
    let report: Value = server
        .get("/v1/programs/optimist/outcomes?quarterly=true")
        .await
        .json()
        .await
        .expect("JSON");
    let quarters = report["quarterly_employment"].as_array().map_or(0, |q| q.iter().filter(|q| q["served"] != 0).count());
    assert!(quarters >= 12, "2020Q1 to 2022Q4 at least: {report}");
    browser
        .wait_for("document.querySelectorAll('#over-time figure').length === 7")
        .await;
    let points = browser
        .eval("[...document.querySelectorAll('#over-time svg')].map((s) => s.querySelectorAll('circle').length)")
        .await;
    // clarified_share: one cohort has nobody exited, so nothing to show.
    assert_eq!(points, serde_json::json!([quarters, 2, 2, 2, 2, 1, 2]));
    let cohort_point = browser
        .eval("document.querySelectorAll('#over-time svg')[1].querySelector('circle title').textContent")
        .await;
    assert!(cohort_point.as_str().is_some_and(|t| t.starts_with("2020: ")), "{cohort_point}");
    let target_line = browser
        .eval("document.querySelectorAll('#over-time svg')[6].querySelectorAll('.target-line').length")
        .await;
    assert_eq!(target_line, Value::from(1), "measured_twice has a target");

    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts");
    std::fs::create_dir_all(&artefacts).expect("artefact directory");
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artefacts.join("dashboard.png"), png).expect("keep the screenshot");
    browser.eval("document.getElementById('over-time').scrollIntoView()").await;
    std::fs::write(artefacts.join("dashboard-over-time.png"), browser.screenshot().await).expect("keep the screenshot");

    // Compared with SJÅ MEG: each share less SJÅ MEG's, in points, with
    // Newcombe's interval, as the API gives it.
    let compared: Value = server
        .get("/v1/programs/optimist/outcomes?compare_with=sja-meg")
        .await
        .json()
        .await
        .expect("JSON");
    let d = &compared["compared"][0]["difference"];
    let points = |x: &Value| {
        let x = 100.0 * x.as_f64().unwrap_or(f64::NAN);
        format!("{}{x:.1}", if x > 0.0 { "+" } else { "" })
    };
    let expected = format!("{} pp ({} to {})", points(&d["value"]), points(&d["ci_low"]), points(&d["ci_high"]));
    browser
        .eval("const c = document.getElementById('compare-with'); c.value = 'sja-meg'; c.dispatchEvent(new Event('change'))")
        .await;
    browser.wait_for("document.querySelector('#outcomes tr .difference') !== null").await;
    let shown = browser.eval("document.querySelector('#outcomes tr .difference').textContent").await;
    assert_eq!(shown, Value::from(expected));
    let address = browser.eval("location.search").await;
    assert!(address.as_str().is_some_and(|a| a.contains("compare_with=sja-meg")), "{address}");

    // In Norwegian bokmål (`?lang=nb`): texts and labels, identifiers on hover.
    let mut norwegian = Browser::start().await;
    norwegian
        .open(&server.url(&format!("/?program=optimist&lang=nb#token={}", server.admin_token)))
        .await;
    norwegian
        .wait_for("document.querySelector('#outcomes tr') !== null && document.documentElement.lang === 'nb'")
        .await;
    let heading = norwegian.eval("document.querySelector('[data-label=\"ui.outcomes\"]').textContent").await;
    assert_eq!(heading, Value::from("Resultater mot mål"));
    let first = norwegian.eval("[...document.querySelector('#outcomes tr').cells].slice(0, 2).map((c) => c.textContent).join('|')").await;
    assert_eq!(first, Value::from("I jobb|5/15"));
    let hover = norwegian.eval("document.querySelector('#outcomes tr span').title").await;
    assert_eq!(hover, Value::from("job_share"), "the identifier stays at hand");
    norwegian
        .wait_for("[...document.querySelectorAll('#outcomes .verdict')].some((v) => v.textContent === 'usikkert')")
        .await;

    // A new participant appears without reloading the page.
    assert_eq!(
        server.post_events(&[enrolled("optimist", "P16", "2022-06-01")]).await,
        StatusCode::CREATED
    );
    browser
        .wait_for("document.querySelector('#enrolled').textContent === '16'")
        .await;
    browser
        .wait_for("document.querySelector('#active').textContent === '13'")
        .await;
}

/// Creates a principal with `role` over OPTIMIST; returns its token.
fn token(store: &Store, name: &str, role: &str) -> String {
    let mut args = vec!["token".to_string(), "create".into()];
    args.extend(store.args());
    args.extend(["--name", name, "--role", role, "--program", "optimist"].map(String::from));
    let created = run_utfall(&args, None);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    String::from_utf8_lossy(&created.stdout).trim().to_string()
}

#[tokio::test]
async fn viewers_and_registrars_sign_in_and_see_what_their_role_allows() {
    let store = Store::embedded();
    let server = Server::start_command("demo", &store.args());
    let viewer = token(&store, "vera", "viewer");
    let registrar = token(&store, "rolf", "registrar");
    let mut browser = Browser::start().await;

    // Without a token the page asks for one and shows no figures.
    browser.open(&server.url("/?program=optimist")).await;
    browser.wait_for("!document.querySelector('#sign-in').hidden").await;
    assert_eq!(
        browser.eval("document.querySelector('#enrolled').textContent").await,
        Value::from("–")
    );

    // A viewer signs in through the form: aggregates of OPTIMIST only, no participant list.
    browser
        .eval(&format!(
            "document.querySelector('#token').value = '{viewer}'; \
             document.querySelector('#sign-in').requestSubmit(); true"
        ))
        .await;
    browser
        .wait_for("document.querySelector('#enrolled').textContent === '15'")
        .await;
    browser
        .wait_for("document.querySelector('#outcomes-as-of').textContent.includes('log position')")
        .await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('#programmes button').length")
            .await,
        Value::from(1),
        "a viewer of OPTIMIST is shown another programme"
    );
    assert_eq!(
        browser
            .eval("document.querySelector('#participants-card').hidden")
            .await,
        Value::from(true)
    );
    assert_eq!(
        browser
            .eval("document.querySelector('#participants').rows.length")
            .await,
        Value::from(0)
    );
    assert_eq!(
        browser.eval("document.querySelector('#sign-in').hidden").await,
        Value::from(true)
    );

    // A registrar, from a link holding the token: the participant list too.
    browser.eval("sessionStorage.clear(); true").await;
    browser
        .open(&server.url(&format!("/?program=optimist#token={registrar}")))
        .await;
    browser
        .wait_for("!document.querySelector('#participants-card').hidden")
        .await;
    browser
        .wait_for("document.querySelector('#participants').rows.length === 15")
        .await;
    assert_eq!(
        browser.eval("location.hash").await,
        Value::from(""),
        "the token stays in the address bar"
    );
    let first = browser
        .eval("document.querySelector('#participants').rows[0].cells[0].textContent")
        .await;
    assert_eq!(first, Value::from("P01"));
}
