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

/// An event of programme `horizon`.
fn horizon_event(participant: &str, kind: &str, on: &str, data: Value) -> Value {
    json!({"event_id": wire::id(), "program": "horizon", "participant": participant, "type": kind,
           "occurred_on": on, "data": data})
}

fn share_at_horizon(report: &Value, name: &str) -> (u64, u64) {
    metric(&report["horizon"], name)
}

/// A small history counted by hand, as of 2024-12-31, at horizons (the
/// status in force on each one's day), per quarter and per cohort:
/// - a: job from 2023-03-01, exits 2023-06-30 (6 months after: 2023-12-30, job);
/// - b: activity, exits 2024-01-15; a job from 2024-01-10 recorded late;
/// - c: exits 2024-09-30, so 6 months after exit is not yet due;
/// - d: no activity, exits `moved` on 2023-08-31 (horizon 2024-02-29, the
///   month's last day): censored only when asked, and only after exit;
/// - e: enrolled 2024-08-01, not exited: not yet due 6 months after enrolment.
#[test]
fn horizons_quarterly_rates_and_cohorts_of_a_small_history_counted_by_hand() {
    let setup = Cli::new(Store::embedded());
    let exit = |p: &str, on: &str, reason: &str| horizon_event(p, "participant_exited", on, json!({"reason": reason}));
    let status = |p: &str, on: &str, s: &str| horizon_event(p, "status_changed", on, json!({"status": s}));
    let enrol = |p: &str, on: &str| horizon_event(p, "participant_enrolled", on, json!({}));
    let mut history = vec![json!({"event_id": wire::id(), "program": "horizon", "type": "program_defined",
        "occurred_on": "2023-01-01", "data": {"name": "Horizon", "organisation": "Nav Test", "country": "NO", "starts_on": "2023-01-01"}})];
    history.extend([
        enrol("a", "2023-01-10"),
        status("a", "2023-03-01", "employed"),
        exit("a", "2023-06-30", "completed"),
        enrol("b", "2023-02-01"),
        status("b", "2023-02-10", "activity"),
        exit("b", "2024-01-15", "completed"),
        enrol("c", "2023-03-01"),
        status("c", "2023-03-05", "no_activity"),
        exit("c", "2024-09-30", "completed"),
        enrol("d", "2023-01-05"),
        status("d", "2023-01-20", "no_activity"),
        exit("d", "2023-08-31", "moved"),
        enrol("e", "2024-08-01"),
    ]);
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), wire::ndjson(&history)).expect("write history");
    setup.import(file.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let known_at = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(file.path(), wire::ndjson(&[status("b", "2024-01-10", "employed")])).expect("write");
    setup.import(file.path());

    let at = |extra: &[&str]| {
        let mut args = vec!["--as-of", "2024-12-31"];
        args.extend_from_slice(extra);
        setup.outcomes("horizon", &args)
    };
    let after_exit = at(&["--horizon", "6m", "--from", "exit", "--quarterly"]);
    assert_eq!(after_exit["horizon"]["not_yet_due"], 1, "c");
    assert_eq!(after_exit["horizon"]["censored"], 0);
    assert_eq!(after_exit["horizon"]["censored_exits"], json!([]));
    assert_eq!(share_at_horizon(&after_exit, "job_share"), (2, 3), "a and b of a, b, d");
    assert_eq!(share_at_horizon(&after_exit, "clarified_share"), (2, 3));
    assert_eq!(share_at_horizon(&after_exit, "retained_share"), (3, 3));
    assert_eq!(share_at_horizon(&after_exit, "education_share"), (0, 3));
    assert_eq!(metric(&after_exit, "job_share"), (2, 5), "the report's own metrics stay as they were");

    let before_late = at(&["--horizon", "6m", "--from", "exit", "--known-at", &known_at, "--quarterly"]);
    assert_eq!(share_at_horizon(&before_late, "job_share"), (1, 3), "b's job was not yet recorded");

    // The IPS quarterly rate: served in the quarter / worked in it while served.
    let quarterly = |report: &Value| -> Vec<(String, u64, u64, bool)> {
        report["quarterly_employment"]
            .as_array()
            .expect("quarterly employment")
            .iter()
            .map(|q| {
                let n = |f: &str| q[f].as_u64().unwrap_or(u64::MAX);
                (q["quarter"].as_str().unwrap_or("").to_string(), n("employed"), n("served"), q["partial"] == true)
            })
            .collect()
    };
    let expected = |b_worked_2024q1: u64| -> Vec<(String, u64, u64, bool)> {
        [("2023Q1", 1, 4), ("2023Q2", 1, 4), ("2023Q3", 0, 3), ("2023Q4", 0, 2), ("2024Q1", b_worked_2024q1, 2),
         ("2024Q2", 0, 1), ("2024Q3", 0, 2), ("2024Q4", 0, 1)]
            .into_iter()
            .map(|(q, k, n)| (q.to_string(), k, n, false))
            .collect()
    };
    assert_eq!(quarterly(&after_exit), expected(1));
    assert_eq!(quarterly(&before_late), expected(0), "b's job in 2024Q1 as known before it was recorded");
    // Enrolment cohorts, each share beside the first cohort's (Newcombe).
    let by_year = at(&["--cohorts", "year"]);
    let cohorts = by_year["cohorts"].as_array().expect("cohorts");
    let names: Vec<(&str, u64)> = cohorts
        .iter()
        .map(|c| (c["cohort"].as_str().unwrap_or(""), c["enrolled"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(names, [("2023", 4), ("2024", 1)]);
    let job = |cohort: &Value| cohort["metrics"].as_array().and_then(|m| m.iter().find(|m| m["metric"] == "job_share")).cloned().expect("job_share");
    assert_eq!((job(&cohorts[0])["numerator"].as_u64(), job(&cohorts[0])["denominator"].as_u64()), (Some(2), Some(4)));
    assert!(job(&cohorts[0]).get("difference").is_none(), "the first cohort is the reference");
    let difference = &job(&cohorts[1])["difference"];
    let (low, high) = utfall_queries::statistics::newcombe(0, 1, 2, 4).map(|(_, l, h)| (l, h)).expect("interval");
    assert_eq!(difference["from"], "2023");
    assert_eq!(difference["value"].as_f64(), Some(-0.5));
    assert_eq!((difference["ci_low"].as_f64(), difference["ci_high"].as_f64()), (Some(low), Some(high)));
    // Cohorts at a horizon: 2023's a, b and d are due (c is not yet), and
    // a and b were in a job 6 months after exit; 2024's e has not exited.
    let cohorts_at_horizon = at(&["--cohorts", "year", "--horizon", "6m", "--from", "exit"]);
    let at_horizon: Vec<(Option<u64>, (u64, u64))> = cohorts_at_horizon["cohorts"]
        .as_array()
        .expect("cohorts")
        .iter()
        .map(|c| (c["horizon"]["not_yet_due"].as_u64(), metric(&c["horizon"], "job_share")))
        .collect();
    assert_eq!(at_horizon, [(Some(1), (2, 3)), (Some(0), (0, 0))]);
    let split = at(&["--cohorts", "2023-02-01"]);
    let split: Vec<(&str, u64)> = split["cohorts"]
        .as_array()
        .expect("cohorts")
        .iter()
        .map(|c| (c["cohort"].as_str().unwrap_or(""), c["enrolled"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(split, [("before 2023-02-01", 2), ("from 2023-02-01", 3)]);

    let mid_quarter = setup.outcomes("horizon", &["--as-of", "2024-11-15", "--quarterly"]);
    assert!(by_year.get("quarterly_employment").is_none(), "only when asked for");
    assert_eq!(quarterly(&mid_quarter).last(), Some(&("2024Q4".to_string(), 0, 1, true)));

    let censored = at(&["--horizon", "6", "--from", "exit", "--censor"]);
    assert_eq!(censored["horizon"]["censored"], 1, "d");
    assert_eq!(censored["horizon"]["censored_exits"], json!(["moved", "deceased"]));
    assert_eq!(share_at_horizon(&censored, "job_share"), (2, 2));

    let after_enrolment = at(&["--horizon", "6m", "--from", "enrolment", "--censor"]);
    assert_eq!(after_enrolment["horizon"]["not_yet_due"], 1, "e");
    assert_eq!(after_enrolment["horizon"]["censored"], 0, "d moved after the horizon");
    assert_eq!(share_at_horizon(&after_enrolment, "job_share"), (1, 4), "only a had a job 6 months in");

    let table = setup.run("outcomes", &["--program", "horizon", "--as-of", "2024-12-31", "--horizon", "6m"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("6 months after exit: 1 not yet due"), "{table}");

    let sql = setup.run(
        "sql",
        &[
            "--as-of",
            "2024-12-31",
            "--format",
            "csv",
            "SELECT participant, horizon_on, due, outcome_group FROM horizons(6, 'exit') ORDER BY participant",
        ],
    );
    assert!(sql.status.success(), "{}", String::from_utf8_lossy(&sql.stderr));
    assert_eq!(
        String::from_utf8_lossy(&sql.stdout),
        "participant,horizon_on,due,outcome_group\n\
         a,2023-12-30,true,job\n\
         b,2024-07-15,true,job\n\
         c,2025-03-30,false,none\n\
         d,2024-02-29,true,none\n"
    );
    let bad = setup.run("outcomes", &["--program", "horizon", "--horizon", "6w"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a horizon"));
}

/// `--compare-with` sets each share metric beside another programme's,
/// with this one's less the other's and Newcombe's interval.
#[test]
fn a_programme_is_compared_with_another() {
    let setup = Cli::new(Store::embedded());
    setup.import(&fixture("optimist"));
    setup.import(&fixture("sja-meg"));
    let as_of = ["--as-of", "2022-12-31"];
    let (optimist, sja_meg) = (setup.outcomes("optimist", &as_of), setup.outcomes("sja-meg", &as_of));
    let compared = setup.outcomes("optimist", &["--as-of", "2022-12-31", "--compare-with", "sja-meg"]);
    assert_eq!(compared["program"], "optimist");
    assert_eq!(compared["metrics"], optimist["metrics"], "the programme's own figures stay");
    let rows = compared["compared"].as_array().expect("compared");
    assert_eq!(rows.len(), 5);
    for row in rows {
        let name = row["metric"].as_str().unwrap_or("");
        let (k1, n1) = metric(&optimist, name);
        let (k2, n2) = metric(&sja_meg, name);
        assert_eq!((row["other"]["numerator"].as_u64(), row["other"]["denominator"].as_u64()), (Some(k2), Some(n2)), "{name}");
        let expected = utfall_queries::statistics::newcombe(k1, n1, k2, n2);
        let got = (
            row["difference"]["value"].as_f64(),
            row["difference"]["ci_low"].as_f64(),
            row["difference"]["ci_high"].as_f64(),
        );
        assert_eq!(expected.map(|(d, l, h)| (Some(d), Some(l), Some(h))), (row.get("difference").is_some()).then_some(got), "{name}");
    }
    assert_eq!(rows[0]["difference"]["from"], "sja-meg");
    let unknown = setup.run("outcomes", &["--program", "optimist", "--compare-with", "nowhere"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no programme named \"nowhere\""));
}

/// `--on-track` on a small history counted by hand (the unit tests of
/// `on_track` check the projection's arithmetic): programme `track` runs
/// through 2024; as of 1 July, of four enrolled on 1 January one found a
/// job on 1 April, one on 1 July, one left on 1 April without one and one
/// is still looking; a fifth, enrolled on 1 April, is still looking.
#[test]
fn on_track_verdicts_of_a_small_history_counted_by_hand() {
    let setup = Cli::new(Store::embedded());
    let event = |participant: Option<&str>, kind: &str, on: &str, data: Value| {
        let mut e = json!({"event_id": wire::id(), "program": "track", "type": kind, "occurred_on": on, "data": data});
        if let Some(p) = participant {
            e["participant"] = json!(p);
        }
        e
    };
    let enrol = |p: &str, on: &str| event(Some(p), "participant_enrolled", on, json!({}));
    let job = |p: &str, on: &str| event(Some(p), "status_changed", on, json!({"status": "employed"}));
    let targets = json!({"targets": [
        {"metric": "job_share", "op": "<=", "value": 0.95},
        {"metric": "education_share", "op": ">=", "value": 0.6},
        {"metric": "retained_share", "op": ">=", "value": 0.9}]});
    let history = vec![
        event(None, "program_defined", "2024-01-01",
              json!({"name": "Track", "organisation": "Nav Test", "country": "NO", "starts_on": "2024-01-01", "ends_on": "2024-12-31"})),
        event(None, "targets_set", "2024-01-01", targets),
        enrol("a", "2024-01-01"),
        job("a", "2024-04-01"),
        enrol("b", "2024-01-01"),
        job("b", "2024-07-01"),
        enrol("c", "2024-01-01"),
        event(Some("c"), "participant_exited", "2024-04-01", json!({"reason": "completed"})),
        enrol("d", "2024-01-01"),
        enrol("e", "2024-04-01"),
    ];
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), wire::ndjson(&history)).expect("write history");
    setup.import(file.path());

    let report = setup.outcomes("track", &["--as-of", "2024-07-01", "--on-track"]);
    let tracks = report["on_track"].as_array().expect("on_track");
    let verdicts: Vec<(&str, &str, &str, Option<f64>)> = tracks
        .iter()
        .map(|t| {
            let expected = &t["expected"];
            (t["metric"].as_str().unwrap_or(""), expected["basis"].as_str().unwrap_or(""), t["verdict"].as_str().unwrap_or(""), expected["value"].as_f64())
        })
        .collect();
    // Jobs: 2 had one, c left without; d adds nothing (the curve is flat
    // after day 182), e adds 1 − S(274)/S(91) = 1/2: 2.5 of 5. Nobody had
    // education, nobody dropped out.
    assert_eq!(
        verdicts,
        [
            ("job_share", "projected", "on_track", Some(0.5)),
            ("education_share", "projected", "off_track", Some(0.0)),
            ("retained_share", "projected", "uncertain", Some(1.0)),
        ]
    );
    let job_track = &tracks[0];
    assert_eq!(job_track["ends_on"], "2024-12-31");
    let survival: Vec<f64> = job_track["kaplan_meier"].as_array().expect("curve").iter().filter_map(|s| s["survival"].as_f64()).collect();
    assert_eq!(survival, [0.8, 0.4]);
    let quarters: Vec<(String, u64, u64)> = job_track["over_time"]
        .as_array()
        .expect("over time")
        .iter()
        .map(|p| (p["quarter"].as_str().unwrap_or("").to_string(), p["numerator"].as_u64().unwrap_or(99), p["denominator"].as_u64().unwrap_or(99)))
        .collect();
    assert_eq!(quarters, [("2024Q1".to_string(), 0, 4), ("2024Q2".to_string(), 1, 5), ("2024Q3".to_string(), 2, 5)]);
    assert_eq!(metric(&report, "job_share"), (2, 5), "the last point is the report's own figure");

    // Once the end has passed, the verdict rests on the share then.
    let after = setup.outcomes("track", &["--on-track"]);
    let job_after = &after["on_track"][0];
    assert_eq!(job_after["expected"]["basis"], "current");
    assert_eq!(job_after["expected"]["ci_low"], after["metrics"][0]["ci_low"]);
    let plain = setup.outcomes("track", &["--as-of", "2024-07-01"]);
    assert!(plain.get("on_track").is_none(), "only when asked for");
}
