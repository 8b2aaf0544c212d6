//! The web dashboard in real headless Chromium: the OPTIMIST figures as
//! published, and a live update without reload. A screenshot is kept in
//! target/test-artefacts/dashboard.png.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use utfall_tests::browser::Browser;
use utfall_tests::wire::*;
use utfall_tests::{Server, Store};

const STATUS_ROWS: &str = "JSON.stringify([...document.querySelectorAll('#status-distribution tr')]
    .map(r => [...r.cells].slice(0, 2).map(c => c.textContent)))";

#[tokio::test]
async fn the_dashboard_shows_optimist_as_published_and_updates_live() {
    let store = Store::embedded();
    let server = Server::start_command("demo", &store.args());
    let mut browser = Browser::start().await;
    browser.open(&server.url("/?program=optimist")).await;
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
            ("job", "5"),
            ("activity", "5"),
            ("benefit", "1"),
            ("moved", "2"),
            ("none", "2")
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

    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts");
    std::fs::create_dir_all(&artefacts).expect("artefact directory");
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artefacts.join("dashboard.png"), png).expect("keep the screenshot");

    // A new participant appears without reloading the page.
    let response = reqwest::Client::new()
        .post(server.url("/v1/events"))
        .body(ndjson(&[enrolled("optimist", "P16", "2022-06-01")]))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::CREATED);
    browser
        .wait_for("document.querySelector('#enrolled').textContent === '16'")
        .await;
    browser
        .wait_for("document.querySelector('#active').textContent === '13'")
        .await;
}
