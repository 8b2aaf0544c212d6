//! `utfall outcomes` reproduces the fixtures' published figures exactly,
//! with either store, and answers as of a date and as known at a time.

use serde_json::{Value, json};
use utfall_tests::{Cli, Store, fixture, for_both_stores, wire};

/// `utfall outcomes --format json`, parsed.
trait Outcomes {
    fn outcomes(&self, program: &str, extra: &[&str]) -> Value;
}

impl Outcomes for Cli {
    fn outcomes(&self, program: &str, extra: &[&str]) -> Value {
        let mut args = vec!["--program", program, "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.run("outcomes", &args);
        assert!(
            out.status.success(),
            "outcomes failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("outcomes print JSON")
    }
}

fn round(x: &Value, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x.as_f64().unwrap_or(f64::NAN) * scale).round() / scale
}

/// Every figure of `expected` (the fixture's `expected.json`) is in `actual`.
fn assert_reproduces(expected: &Value, actual: &Value) {
    let program = &expected["program"];
    assert_eq!(actual["program"], *program);
    assert_eq!(actual["as_of"], expected["as_of"]);
    assert_eq!(actual["enrolled"], expected["enrolled"], "{program} enrolled");
    let distribution = actual["status_distribution"].as_object().expect("distribution");
    assert_eq!(
        distribution,
        expected["status_distribution"]
            .as_object()
            .expect("expected distribution"),
        "{program} status distribution"
    );
    for want in expected["metrics"].as_array().expect("metrics") {
        let got = actual["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["metric"] == want["metric"]))
            .unwrap_or_else(|| panic!("{program}: no {}", want["metric"]));
        for field in ["numerator", "denominator"] {
            assert_eq!(got[field], want[field], "{program} {} {field}", want["metric"]);
        }
        for field in ["value", "ci_low", "ci_high"] {
            assert_eq!(
                round(&got[field], 6),
                round(&want[field], 6),
                "{program} {} {field}",
                want["metric"]
            );
        }
    }
    for want in expected["measurement_change"].as_array().into_iter().flatten() {
        let got = actual["measurement_change"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["instrument"] == want["instrument"]))
            .unwrap_or_else(|| panic!("{program}: no change for {}", want["instrument"]));
        for field in ["paired", "improved", "unchanged", "worse"] {
            assert_eq!(got[field], want[field], "{program} {field}");
        }
        for field in ["mean_first", "mean_last", "lowest_composite", "highest_composite"] {
            assert_eq!(round(&got[field], 6), round(&want[field], 6), "{program} {field}");
        }
        // The report's own rounding: 2.8 -> 2.6.
        assert_eq!(round(&got["mean_first"], 1), round(&want["mean_first_rounded"], 1));
        assert_eq!(round(&got["mean_last"], 1), round(&want["mean_last_rounded"], 1));
    }
}

async fn fixtures_reproduce_published_figures(store: Store) {
    let setup = Cli::new(store);
    for name in ["optimist", "sja-meg"] {
        setup.import(&fixture(name));
    }
    for name in ["optimist", "sja-meg"] {
        let path = fixture(name).with_file_name("expected.json");
        let expected: Value = serde_json::from_slice(&std::fs::read(&path).expect("expected.json")).expect("JSON");
        let as_of = expected["as_of"].as_str().expect("as_of");
        let actual = setup.outcomes(expected["program"].as_str().expect("program"), &["--as-of", as_of]);
        assert_reproduces(&expected, &actual);
    }
}

/// OPTIMIST's events, parsed.
fn optimist_events() -> Vec<Value> {
    std::fs::read_to_string(fixture("optimist"))
        .expect("fixture")
        .lines()
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect()
}

fn metric(report: &Value, name: &str) -> (u64, u64) {
    let m = report["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["metric"] == name))
        .unwrap_or_else(|| panic!("no {name}"));
    (
        m["numerator"].as_u64().unwrap_or(0),
        m["denominator"].as_u64().unwrap_or(0),
    )
}

async fn late_records_and_retractions_leave_an_earlier_report_reproducible(store: Store) {
    let setup = Cli::new(store);
    setup.import(&fixture("optimist"));
    let events = optimist_events();
    let as_of = ["--as-of", "2022-12-31"];
    let before = setup.outcomes("optimist", &as_of);
    assert_eq!(metric(&before, "job_share"), (5, 15));
    assert_eq!(metric(&before, "education_share"), (0, 15));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let known_at = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));

    // Late records: every job status of one participant retracted; an
    // education status for one who never had a job and never exited.
    let job = ["employed", "apprenticeship", "wage_subsidy"];
    let is_job =
        |e: &&Value| e["type"] == "status_changed" && job.contains(&e["data"]["status"].as_str().unwrap_or(""));
    let with_job = events.iter().find(is_job).expect("a job")["participant"].clone();
    let exited: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "participant_exited")
        .map(|e| &e["participant"])
        .collect();
    let without_job = events
        .iter()
        .filter(|e| e["type"] == "participant_enrolled")
        .map(|e| &e["participant"])
        .find(|p| !exited.contains(p) && !events.iter().filter(is_job).any(|e| e["participant"] == **p))
        .expect("a participant without a job");
    let mut late: Vec<Value> = events
        .iter()
        .filter(is_job)
        .filter(|e| e["participant"] == with_job)
        .map(|e| wire::retracted("optimist", with_job.as_str().unwrap_or(""), "2023-01-15", e))
        .collect();
    late.push(
        json!({"event_id": wire::id(), "program": "optimist", "participant": without_job,
                     "type": "status_changed", "occurred_on": "2022-12-01", "data": {"status": "education"}}),
    );
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), wire::ndjson(&late)).expect("write late events");
    setup.import(file.path());

    let now = setup.outcomes("optimist", &as_of);
    assert_eq!(metric(&now, "job_share"), (4, 15), "the retraction counts now");
    assert_eq!(
        metric(&now, "education_share"),
        (1, 15),
        "the late education status counts now"
    );
    let then = setup.outcomes("optimist", &["--as-of", "2022-12-31", "--known-at", &known_at]);
    for field in [
        "metrics",
        "status_distribution",
        "measurement_change",
        "enrolled",
        "time_to_first_job",
    ] {
        assert_eq!(then[field], before[field], "{field} as known before the late records");
    }
    // As of an earlier date only what had happened by then counts.
    let early = setup.outcomes("optimist", &["--as-of", "2020-12-31"]);
    let enrolled_by_then = events
        .iter()
        .filter(|e| e["type"] == "participant_enrolled" && e["occurred_on"].as_str() <= Some("2020-12-31"))
        .count() as u64;
    assert_eq!(early["enrolled"].as_u64(), Some(enrolled_by_then));
    assert!(enrolled_by_then < 15);
}

for_both_stores!(
    fixtures_reproduce_published_figures,
    late_records_and_retractions_leave_an_earlier_report_reproducible
);

#[test]
fn an_unknown_programme_is_an_error() {
    let setup = Cli::new(Store::embedded());
    setup.import(&fixture("optimist"));
    let out = setup.run("outcomes", &["--program", "nowhere"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no programme named \"nowhere\""));
}
