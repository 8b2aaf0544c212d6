//! Programme-defined indicators, on both stores: defined, targeted and
//! counted by hand beside the built-in metrics (as of a date, as known at
//! a time, by cohort); counted over their own programme only; and bad
//! definitions refused naming the event, the field and the line, with
//! nothing written.

use serde_json::{Value, json};
use utfall_tests::{Cli, Store, for_both_stores, wire};

const PLAN_WITHIN_30_DAYS: &str = "EXISTS (SELECT 1 FROM services s\n\
    WHERE s.participant = participants.participant AND s.service = 'individual_plan'\n\
      AND s.from_on <= participants.enrolled_on + INTERVAL '30' DAY)";

fn event(program: &str, participant: Option<&str>, kind: &str, on: &str, data: Value) -> Value {
    let mut e = json!({"event_id": wire::id(), "program": program, "type": kind, "occurred_on": on, "data": data});
    if let Some(p) = participant {
        e["participant"] = json!(p);
    }
    e
}

fn indicator(program: &str, name: &str, numerator: &str, denominator: Option<&str>) -> Value {
    let mut data =
        json!({"name": name, "description": format!("{name}, as the programme counts it"), "numerator": numerator});
    if let Some(d) = denominator {
        data["denominator"] = json!(d);
    }
    event(program, None, "indicator_defined", "2024-06-01", data)
}

fn import(cli: &Cli, events: &[Value]) -> std::process::Output {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), wire::ndjson(events)).expect("write events");
    cli.run("import", &[&file.path().display().to_string()])
}

fn outcomes(cli: &Cli, extra: &[&str]) -> Value {
    let mut args = vec!["--program", "plans", "--format", "json"];
    args.extend_from_slice(extra);
    let out = cli.run("outcomes", &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn find<'a>(metrics: &'a Value, name: &str) -> Option<&'a Value> {
    metrics.as_array()?.iter().find(|m| m["metric"] == name)
}

fn counts(metrics: &Value, name: &str) -> Option<(u64, u64)> {
    let m = find(metrics, name)?;
    Some((m["numerator"].as_u64()?, m["denominator"].as_u64()?))
}

/// Programme `plans`, as of 2024-12-10, with "an individual plan within
/// 30 days of enrolment" among those enrolled at least 30 days:
/// - a (2023-01-10, plan 2023-01-20): yes; b (2023-02-01, plan 2023-04-01): no;
/// - c (2024-03-01, plan 2024-03-15): yes; e (2024-05-01, no plan): no;
/// - d (2024-11-20): enrolled less than 30 days, not counted.
///
/// Programme `other` has a participant with a plan, which `plans` never sees.
async fn an_indicator_is_defined_targeted_and_counted_by_hand(store: Store) {
    let cli = Cli::new(store);
    let defined = |p: &str| {
        event(
            p,
            None,
            "program_defined",
            "2023-01-01",
            json!({"name": p, "organisation": "Nav Test", "country": "NO", "starts_on": "2023-01-01"}),
        )
    };
    let enrol = |p: &str, who: &str, on: &str| event(p, Some(who), "participant_enrolled", on, json!({}));
    let plan = |p: &str, who: &str, on: &str| {
        event(
            p,
            Some(who),
            "service_started",
            on,
            json!({"service": "individual_plan"}),
        )
    };
    let history = vec![
        defined("plans"),
        defined("other"),
        enrol("plans", "a", "2023-01-10"),
        plan("plans", "a", "2023-01-20"),
        enrol("plans", "b", "2023-02-01"),
        plan("plans", "b", "2023-04-01"),
        enrol("plans", "c", "2024-03-01"),
        plan("plans", "c", "2024-03-15"),
        enrol("plans", "e", "2024-05-01"),
        enrol("plans", "d", "2024-11-20"),
        enrol("other", "x", "2023-01-10"),
        plan("other", "x", "2023-01-11"),
    ];
    let imported = import(&cli, &history);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let before_definition = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));

    let definitions = vec![
        indicator(
            "plans",
            "plan_within_30_days",
            PLAN_WITHIN_30_DAYS,
            Some("enrolled_on + INTERVAL '30' DAY <= as_of"),
        ),
        // Reads every programme's participants: it sees only its own.
        indicator(
            "plans",
            "others_seen",
            "EXISTS (SELECT 1 FROM participants o WHERE o.program = 'other')",
            None,
        ),
        event(
            "plans",
            None,
            "targets_set",
            "2024-06-01",
            json!({"targets": [{"metric": "plan_within_30_days", "op": ">=", "value": 0.6}, {"metric": "job_share", "op": ">=", "value": 0.2}]}),
        ),
    ];
    let imported = import(&cli, &definitions);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before_redefinition = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));

    let report = outcomes(&cli, &["--as-of", "2024-12-10", "--cohorts", "year"]);
    let metrics = &report["metrics"];
    assert_eq!(
        counts(metrics, "plan_within_30_days"),
        Some((2, 4)),
        "a and c of a, b, c, e"
    );
    let plan_metric = find(metrics, "plan_within_30_days").expect("the indicator");
    assert_eq!(
        plan_metric["description"],
        "plan_within_30_days, as the programme counts it"
    );
    assert_eq!(plan_metric["target"], json!({"op": ">=", "value": 0.6}));
    assert_eq!(plan_metric["met"], false, "0.5 is under 0.6");
    assert_eq!(
        counts(metrics, "others_seen"),
        Some((0, 5)),
        "another programme's rows are out of sight"
    );
    assert_eq!(
        counts(metrics, "job_share"),
        Some((0, 5)),
        "the built-in metrics stay as they were"
    );
    let cohorts = report["cohorts"].as_array().expect("cohorts");
    let by_cohort: Vec<(&str, Option<(u64, u64)>)> = cohorts
        .iter()
        .map(|c| {
            (
                c["cohort"].as_str().unwrap_or(""),
                counts(&c["metrics"], "plan_within_30_days"),
            )
        })
        .collect();
    assert_eq!(by_cohort, [("2023", Some((1, 2))), ("2024", Some((1, 2)))]);

    // As of a date before its definition: an indicator counts the past.
    let early = outcomes(&cli, &["--as-of", "2023-12-31"]);
    assert_eq!(
        counts(&early["metrics"], "plan_within_30_days"),
        Some((1, 2)),
        "a of a, b"
    );
    // As known before it was recorded: no such indicator.
    let unknown = outcomes(&cli, &["--as-of", "2024-12-10", "--known-at", &before_definition]);
    assert!(find(&unknown["metrics"], "plan_within_30_days").is_none());

    // A later definition replaces it; the earlier one is still known at.
    let within_90 = PLAN_WITHIN_30_DAYS.replace("'30'", "'90'");
    let redefined = import(
        &cli,
        &[indicator(
            "plans",
            "plan_within_30_days",
            &within_90,
            Some("enrolled_on + INTERVAL '30' DAY <= as_of"),
        )],
    );
    assert!(
        redefined.status.success(),
        "{}",
        String::from_utf8_lossy(&redefined.stderr)
    );
    let now = outcomes(&cli, &["--as-of", "2024-12-10"]);
    assert_eq!(
        counts(&now["metrics"], "plan_within_30_days"),
        Some((3, 4)),
        "b's plan came within 90 days"
    );
    let then = outcomes(&cli, &["--as-of", "2024-12-10", "--known-at", &before_redefinition]);
    assert_eq!(counts(&then["metrics"], "plan_within_30_days"), Some((2, 4)));

    // Evaluators find the definitions in the log.
    let sql = cli.run(
        "sql",
        &[
            "--format",
            "csv",
            "SELECT count(*) AS n FROM events WHERE type = 'indicator_defined'",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&sql.stdout), "n\n3\n");
}

/// Each bad definition is refused with the event, the field and (where
/// it lies in the SQL) the line; nothing of the file is written.
async fn bad_indicators_are_refused_naming_the_field_and_line(store: Store) {
    let cli = Cli::new(store);
    let imported = import(&cli, &[wire::program_defined("p1")]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            indicator("p1", "drops", "TRUE; DELETE FROM participants", None),
            "data.numerator",
            "line 1, column 5: expected the end of the condition",
        ),
        (
            indicator(
                "p1",
                "plans",
                "EXISTS (SELECT 1\n FROM plans p WHERE p.participant = participants.participant)",
                None,
            ),
            "data.numerator",
            "line 2, column 7: \"plans\" is not one of the catalog's tables",
        ),
        (
            indicator("p1", "internal", "EXISTS (SELECT 1 FROM internal.snapshot)", None),
            "data.numerator",
            "is not one of the catalog's tables",
        ),
        (
            indicator(
                "p1",
                "two_rows",
                "(SELECT s.status FROM status_spells s WHERE s.participant = participants.participant) = 'employed'",
                None,
            ),
            "data.numerator",
            "Correlated scalar subquery must be aggregated to return at most one row",
        ),
        (
            indicator("p1", "typo", "TRUE", Some("gender = 'female'\n  AND birth_yeer > 1990")),
            "data.denominator",
            "line 2, column 7: No field named birth_yeer",
        ),
        (
            indicator("p1", "not_a_condition", "birth_year + 1", None),
            "data.numerator",
            "non-boolean predicate",
        ),
        (
            indicator("p1", "job_share", "TRUE", None),
            "data.name",
            "is a built-in metric",
        ),
        (
            event(
                "p1",
                None,
                "targets_set",
                "2024-06-01",
                json!({"targets": [{"metric": "never_defined", "op": ">=", "value": 0.5}]}),
            ),
            "data.targets[0].metric",
            "programme p1 has no indicator \"never_defined\"",
        ),
        (
            indicator("nowhere", "x", "TRUE", None),
            "program",
            "programme nowhere is not defined",
        ),
    ];
    for (bad, field, message) in cases {
        let out = import(&cli, &[bad.clone()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} was accepted");
        let expected = format!("[{}]: {field}: ", bad["event_id"].as_str().unwrap_or_default());
        assert!(
            stderr.contains(&expected) && stderr.contains(message),
            "{bad}:\n{stderr}"
        );
    }
    let sql = cli.run("sql", &["--format", "csv", "SELECT count(*) AS n FROM events"]);
    assert_eq!(
        String::from_utf8_lossy(&sql.stdout),
        "n\n1\n",
        "nothing but the programme was written"
    );
}

for_both_stores!(
    an_indicator_is_defined_targeted_and_counted_by_hand,
    bad_indicators_are_refused_naming_the_field_and_line,
);
