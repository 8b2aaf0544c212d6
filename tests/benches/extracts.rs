//! Funder extracts at national scale, release build:
//!
//!     cargo bench -p utfall-tests --bench extracts
//!
//! With UTFALL_BENCH_EVENTS (default 10 000 000) `utfall gen` events in a
//! lake, prints how long the scheduler takes to make the quarterly extract
//! (2025Q4, all four formats) of every programme — the work `utfall serve
//! --schedule` does when a quarter closes — and, for comparison, one
//! programme's outcome report alone.

use std::time::Instant;

use utfall::schedule::{Scheduler, load};
use utfall_queries::{Analytics, Limits, Snapshot};
use utfall_tests::generated::bench_lake;

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().expect("work directory");
    let (lake, ..) = bench_lake(10_000_000, work.path());

    let limits = Limits {
        memory_bytes: 8 << 30,
        timeout: std::time::Duration::from_secs(3600),
        ..Limits::default()
    };
    let analytics = Analytics::new(lake.root(), limits);
    let schedule = work.path().join("schedule.toml");
    std::fs::write(
        &schedule,
        "[[extract]]\nperiod = \"quarterly\"\nfirst_period = \"2025Q4\"\ngrace_days = 14\nout = \"extracts\"\n",
    )
    .expect("schedule");
    let scheduler = Scheduler::new(load(&schedule).expect("schedule loads"));

    // The check right after 2025Q4's grace days: only that quarter is due.
    let now = "2026-01-16T06:00:00Z".parse().expect("time");
    let started = Instant::now();
    let made = scheduler.tick(&analytics, now).await.expect("tick");
    let all = started.elapsed().as_secs_f64();
    assert!(!made.is_empty(), "the scheduler made the extracts");
    let files: usize = made
        .iter()
        .map(|f| std::fs::read_dir(f).map(|d| d.count()).unwrap_or(0))
        .sum();
    println!(
        "quarterly extract (2025Q4, xlsx+csv+parquet+html) of every programme: {} programmes, {files} files, {all:.1} s ({:.1} s each)",
        made.len(),
        all / made.len() as f64
    );

    let program = made[0]
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let as_of = Snapshot::new("2025-12-31".parse().ok(), Some(now));
    let started = Instant::now();
    analytics.outcomes(&as_of, Some(&program)).await.expect("outcomes");
    println!(
        "for comparison, the outcome report of {program} alone: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
