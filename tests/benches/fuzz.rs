//! The fuzz targets at volume: `UTFALL_FUZZ_INPUTS` inputs (default a
//! million) to each parser, a tenth of that to the in-process HTTP API and
//! a hundredth as SQL text (each plans a query); prints inputs, time and
//! failures per target, and fails if any input failed.

use utfall::http::pressure::Pressure;
use utfall_tests::fuzz::{self, Outcome};
use utfall_tests::in_process_app;

fn report(outcome: &Outcome) {
    println!(
        "{:<24} {:>9} inputs {:>8.1} s {:>10.0} inputs/s {:>4} failures",
        outcome.target,
        outcome.inputs,
        outcome.seconds,
        outcome.inputs as f64 / outcome.seconds.max(1e-9),
        outcome.failures.len()
    );
    for failure in outcome.failures.iter().take(5) {
        println!("  {failure}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let inputs: u64 = std::env::var("UTFALL_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    // A panic caught is reported once, in the table, not as a trace per input.
    std::panic::set_hook(Box::new(|_| {}));
    let mut outcomes = vec![
        fuzz::fuzz("event bytes", inputs, 11, fuzz::event_bytes, |b| fuzz::check_events(b)),
        fuzz::fuzz("event JSON", inputs, 12, fuzz::event_json, |t| fuzz::check_events(t.as_bytes())),
        fuzz::fuzz("period", inputs, 13, fuzz::period_text, |t| fuzz::check_period(t)),
        fuzz::fuzz("schedule", inputs, 14, fuzz::schedule_text, |t| fuzz::check_schedule(t)),
    ];
    let dir = tempfile::tempdir()?;
    let (app, token) = in_process_app(dir.path(), Pressure::new(64, 8)).await;
    outcomes.push(fuzz::fuzz_http(app, &token, inputs / 10, 15).await);
    let lake = utfall_projections::Lake::open(&dir.path().join("lake"))?;
    let analytics = utfall_queries::Analytics::new(lake.root(), utfall_queries::Limits::default());
    outcomes.push(fuzz::fuzz_sql(&analytics, inputs / 100, 16).await);
    for outcome in &outcomes {
        report(outcome);
    }
    let failed: usize = outcomes.iter().map(|o| o.failures.len()).sum();
    if failed > 0 {
        return Err(format!("{failed} inputs failed").into());
    }
    Ok(())
}
