//! The fuzz targets of `utfall_tests::fuzz`, a few thousand inputs each
//! (the bench runs a million): no input panics, none is answered 5xx other
//! than 503, and a period prints back as it parses. Inputs that once
//! failed are kept below as cases of their own.

use utfall::http::pressure::Pressure;
use utfall_tests::fuzz::{self, Outcome};
use utfall_tests::in_process_app;

fn assert_clean(outcome: Outcome) {
    println!(
        "{}: {} inputs in {:.1} s, {} failures",
        outcome.target,
        outcome.inputs,
        outcome.seconds,
        outcome.failures.len()
    );
    assert!(outcome.failures.is_empty(), "{}: {:#?}", outcome.target, outcome.failures);
}

#[test]
fn parsers_answer_every_input() {
    assert_clean(fuzz::fuzz("event bytes", 20_000, 1, fuzz::event_bytes, |b| fuzz::check_events(b)));
    assert_clean(fuzz::fuzz("event JSON", 5_000, 2, fuzz::event_json, |t| fuzz::check_events(t.as_bytes())));
    assert_clean(fuzz::fuzz("period", 20_000, 3, fuzz::period_text, |t| fuzz::check_period(t)));
    assert_clean(fuzz::fuzz("schedule", 5_000, 4, fuzz::schedule_text, |t| fuzz::check_schedule(t)));
}

#[tokio::test]
async fn the_api_and_the_sql_engine_answer_every_input() {
    let dir = tempfile::tempdir().expect("directory");
    let (app, token) = in_process_app(dir.path(), Pressure::new(64, 8)).await;
    assert_clean(fuzz::fuzz_http(app, &token, 2_000, 5).await);
    let lake = utfall_projections::Lake::open(&dir.path().join("lake")).expect("lake");
    let analytics = utfall_queries::Analytics::new(lake.root(), utfall_queries::Limits::default());
    assert_clean(fuzz::fuzz_sql(&analytics, 300, 6).await);
}
