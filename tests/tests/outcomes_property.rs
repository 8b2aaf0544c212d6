//! Property test: for random valid histories (status changes, COOP/WONCA and
//! self-rated measurements, psychiatric treatment, exits, retractions of any
//! kind of event), every outcome figure equals a naive fold written here,
//! independently of the SQL, as of random dates, and so do the share
//! metrics at a random horizon and the quarterly employment rate.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use utfall_projections::Lake;
use utfall_projections::follow::catch_up;
use utfall_queries::{Analytics, Anchor, Horizon, Limits, Outcomes, Sections, Snapshot};
use utfall_tests::{Store, wire};

const STATUSES: [(&str, &str); 10] = [
    ("employed", "job"),
    ("apprenticeship", "job"),
    ("wage_subsidy", "job"),
    ("education", "education"),
    ("activity", "activity"),
    ("sheltered_work", "activity"),
    ("work_assessment_allowance", "benefit"),
    ("disability_pension", "benefit"),
    ("moved", "moved"),
    ("no_activity", "none"),
];
const REASONS: [&str; 6] = ["completed", "moved", "dropped_out", "transferred", "deceased", "other"];
const ITEMS: [&str; 7] = [
    "physical_fitness",
    "feelings",
    "daily_activities",
    "social_activities",
    "change_in_health",
    "overall_health",
    "pain",
];

fn group(status: &str) -> &'static str {
    STATUSES.iter().find(|s| s.0 == status).map_or("", |s| s.1)
}

fn event(program: &str, participant: &str, on: NaiveDate, kind: &str, data: Value) -> Value {
    json!({"event_id": wire::id(), "program": program, "participant": participant, "type": kind,
           "occurred_on": on.to_string(), "data": data})
}

/// A random valid history of one participant, in the order it is logged.
fn history(rng: &mut ChaCha8Rng, program: &str, participant: &str) -> Vec<Value> {
    let start = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap_or_default();
    let mut on = start + Days::new(rng.random_range(0..300));
    let mut events = vec![event(program, participant, on, "participant_enrolled", json!({}))];
    for _ in 0..rng.random_range(0..12) {
        on = on + Days::new(rng.random_range(1..60));
        let e = match rng.random_range(0..10) {
            0..=4 => {
                let status = STATUSES.choose(rng).map_or("employed", |s| s.0);
                event(program, participant, on, "status_changed", json!({"status": status}))
            }
            5 => event(
                program,
                participant,
                on,
                "measurement_recorded",
                json!({"instrument": "self_rated_mental_health", "wave": rng.random_range(1..=3),
                       "scores": {"rating": rng.random_range(1..=5)}}),
            ),
            6..=7 => {
                let n = rng.random_range(1..=ITEMS.len());
                let scores: serde_json::Map<String, Value> = ITEMS
                    .choose_multiple(rng, n)
                    .map(|item| (item.to_string(), json!(rng.random_range(1..=5))))
                    .collect();
                event(
                    program,
                    participant,
                    on,
                    "measurement_recorded",
                    json!({"instrument": "coop_wonca", "scores": scores}),
                )
            }
            8 => event(
                program,
                participant,
                on,
                "psychiatric_treatment_started",
                json!({"setting": "outpatient"}),
            ),
            _ => {
                // Same-day status changes keep their log order.
                let status = STATUSES.choose(rng).map_or("employed", |s| s.0);
                on = on - Days::new(1);
                event(
                    program,
                    participant,
                    on + Days::new(1),
                    "status_changed",
                    json!({"status": status}),
                )
            }
        };
        events.push(e);
    }
    if rng.random_bool(0.4) {
        on = on + Days::new(rng.random_range(1..30));
        let reason = REASONS.choose(rng).copied().unwrap_or("completed");
        events.push(event(
            program,
            participant,
            on,
            "participant_exited",
            json!({"reason": reason}),
        ));
    }
    if rng.random_bool(0.3) {
        let target = events.choose(rng).cloned().unwrap_or(Value::Null);
        events.push(wire::retracted(program, participant, &on.to_string(), &target));
    }
    events
}

/// The naive fold: what each figure must be, from the events alone.
struct Expected {
    enrolled: u64,
    shares: BTreeMap<&'static str, (u64, u64)>,
    distribution: BTreeMap<String, u64>,
    paired: u64,
    improved: u64,
    unchanged: u64,
    worse: u64,
    mean_first: Option<f64>,
    /// Self-rated mental health per wave: (poor, measured).
    poor: BTreeMap<i64, (u64, u64)>,
    /// (days, had a job) per participant.
    times: Vec<(i64, bool)>,
}

/// Each participant's events that had happened by `as_of` and are not
/// retracted.
fn by_participant(events: &[Value], as_of: NaiveDate) -> BTreeMap<&str, Vec<&Value>> {
    let retracted: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "event_retracted")
        .filter_map(|e| e["data"]["event_id"].as_str())
        .collect();
    let mut by_participant: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for e in events {
        let date: NaiveDate = e["occurred_on"].as_str().and_then(|d| d.parse().ok()).unwrap_or(as_of);
        if date <= as_of && !retracted.contains(e["event_id"].as_str().unwrap_or("")) && e["type"] != "event_retracted"
        {
            by_participant
                .entry(e["participant"].as_str().unwrap_or(""))
                .or_default()
                .push(e);
        }
    }
    by_participant
}

fn day(e: &Value) -> NaiveDate {
    e["occurred_on"].as_str().and_then(|d| d.parse().ok()).unwrap_or_default()
}

fn status(e: &Value) -> &str {
    e["data"]["status"].as_str().unwrap_or("")
}

/// The share metrics `months` after enrolment or exit, folded naively:
/// (not yet due, censored, each metric's numerator and denominator).
fn fold_at_horizon(
    events: &[Value],
    as_of: NaiveDate,
    months: u32,
    from_exit: bool,
    censor: bool,
) -> (u64, u64, BTreeMap<&'static str, (u64, u64)>) {
    let (mut not_yet_due, mut censored) = (0, 0);
    let mut shares: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    for events in by_participant(events, as_of).values() {
        let first = |kind: &str| events.iter().find(|e| e["type"] == kind).copied();
        let Some(enrolment) = first("participant_enrolled") else {
            continue;
        };
        let exit = first("participant_exited");
        let anchor = if from_exit { exit.map(day) } else { Some(day(enrolment)) };
        let Some(horizon) = anchor.and_then(|a| a.checked_add_months(chrono::Months::new(months))) else {
            continue;
        };
        if horizon > as_of {
            not_yet_due += 1;
            continue;
        }
        let reason = exit.map(|e| e["data"]["reason"].as_str().unwrap_or(""));
        let exited_by_then = exit.is_some_and(|e| day(e) <= horizon);
        if censor && exited_by_then && matches!(reason, Some("moved" | "deceased")) {
            censored += 1;
            continue;
        }
        // The last status dated on or before the horizon day, same-day
        // ones in log order.
        let mut statuses: Vec<&Value> = events.iter().filter(|e| e["type"] == "status_changed").copied().collect();
        statuses.sort_by_key(|e| day(e));
        let on_day = statuses.iter().rev().find(|e| day(e) <= horizon).map(|e| status(e));
        let treated = events
            .iter()
            .any(|e| e["type"] == "psychiatric_treatment_started" && day(e) <= horizon);
        let mut count = |metric: &'static str, yes: bool| {
            let entry = shares.entry(metric).or_default();
            entry.0 += u64::from(yes);
            entry.1 += 1;
        };
        count("job_share", on_day.is_some_and(|s| group(s) == "job"));
        count("education_share", on_day == Some("education"));
        count("never_psychiatric_treatment_share", !treated);
        count("retained_share", !(exited_by_then && reason == Some("dropped_out")));
        if exited_by_then {
            count(
                "clarified_share",
                matches!(reason, Some("completed" | "transferred"))
                    && on_day.is_some_and(|s| ["job", "education", "activity", "benefit"].contains(&group(s))),
            );
        }
    }
    (not_yet_due, censored, shares)
}

/// The calendar quarter of a day, as the report names it.
fn quarter(day: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}Q{}", day.year(), day.month0() / 3 + 1)
}

/// Every quarter from `from`'s to `to`'s.
fn quarters(from: NaiveDate, to: NaiveDate) -> BTreeSet<String> {
    from.iter_days().take_while(|d| *d <= to).map(quarter).collect()
}

/// Per quarter (served, employed), folded naively: a participant is served
/// from enrolment to exit (or the as-of date), and worked in a quarter when
/// a job status was in force on one of its days while they were served.
fn fold_quarterly(events: &[Value], as_of: NaiveDate) -> BTreeMap<String, (u64, u64)> {
    let mut rates: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for events in by_participant(events, as_of).values() {
        let first = |kind: &str| events.iter().find(|e| e["type"] == kind).copied();
        let Some(enrolment) = first("participant_enrolled") else {
            continue;
        };
        let (from, to) = (day(enrolment), first("participant_exited").map_or(as_of, day));
        for q in quarters(from, to) {
            rates.entry(q).or_default().0 += 1;
        }
        let mut statuses: Vec<&Value> = events.iter().filter(|e| e["type"] == "status_changed").copied().collect();
        statuses.sort_by_key(|e| day(e));
        let mut worked = BTreeSet::new();
        for d in from.iter_days().take_while(|d| *d <= to) {
            let in_force = statuses.iter().rev().find(|e| day(e) <= d).map(|e| status(e));
            if in_force.is_some_and(|s| group(s) == "job") {
                worked.insert(quarter(d));
            }
        }
        for q in worked {
            rates.entry(q).or_default().1 += 1;
        }
    }
    rates
}

fn fold(events: &[Value], as_of: NaiveDate) -> Expected {
    let by_participant = by_participant(events, as_of);
    let mut x = Expected {
        enrolled: 0,
        shares: BTreeMap::new(),
        distribution: BTreeMap::new(),
        paired: 0,
        improved: 0,
        unchanged: 0,
        worse: 0,
        mean_first: None,
        poor: BTreeMap::new(),
        times: Vec::new(),
    };
    let (mut job, mut education, mut never, mut retained, mut exited, mut clarified) = (0, 0, 0, 0, 0, 0);
    let mut firsts = Vec::new();
    for events in by_participant.values() {
        if !events.iter().any(|e| e["type"] == "participant_enrolled") {
            continue;
        }
        x.enrolled += 1;
        let of = |kind: &str| {
            events
                .iter()
                .filter(move |e| e["type"] == kind)
                .copied()
                .collect::<Vec<_>>()
        };
        let mut statuses = of("status_changed");
        statuses.sort_by_key(|e| e["occurred_on"].as_str().unwrap_or("").to_string());
        job += statuses.iter().any(|e| group(status(e)) == "job") as u64;
        education += statuses.iter().any(|e| status(e) == "education") as u64;
        never += of("psychiatric_treatment_started").is_empty() as u64;
        let exit = of("participant_exited")
            .first()
            .map(|e| e["data"]["reason"].as_str().unwrap_or("").to_string());
        retained += (exit.as_deref() != Some("dropped_out")) as u64;
        let last = statuses.last().map(|e| group(status(e)));
        if let Some(reason) = &exit {
            exited += 1;
            clarified += (["completed", "transferred"].contains(&reason.as_str())
                && last.is_some_and(|g| ["job", "education", "activity", "benefit"].contains(&g)))
                as u64;
        }
        *x.distribution.entry(last.unwrap_or("unknown").to_string()).or_default() += 1;
        let enrolled_on = of("participant_enrolled").first().map(|e| day(e)).unwrap_or(as_of);
        let first_job = statuses.iter().find(|e| group(status(e)) == "job").map(|e| day(e));
        let end = first_job
            .or(of("participant_exited").first().map(|e| day(e)))
            .unwrap_or(as_of);
        x.times.push(((end - enrolled_on).num_days(), first_job.is_some()));
        for m in of("measurement_recorded") {
            if m["data"]["instrument"] == "self_rated_mental_health" {
                let entry = x.poor.entry(m["data"]["wave"].as_i64().unwrap_or(0)).or_default();
                entry.0 += (m["data"]["scores"]["rating"].as_i64().unwrap_or(0) >= 4) as u64;
                entry.1 += 1;
            }
        }
        let mut measured: Vec<&Value> = of("measurement_recorded")
            .into_iter()
            .filter(|m| m["data"]["instrument"] == "coop_wonca")
            .collect();
        measured.sort_by_key(|e| e["occurred_on"].as_str().unwrap_or("").to_string());
        let composite = |e: &Value| {
            let scores = e["data"]["scores"].as_object().cloned().unwrap_or_default();
            scores.values().filter_map(Value::as_f64).sum::<f64>() / scores.len() as f64
        };
        if let (true, Some(first), Some(last)) = (measured.len() >= 2, measured.first(), measured.last()) {
            let (a, b) = (composite(first), composite(last));
            x.paired += 1;
            firsts.push(a);
            if (b - a).abs() <= 1e-9 {
                x.unchanged += 1;
            } else if b < a {
                x.improved += 1;
            } else {
                x.worse += 1;
            }
        }
    }
    x.mean_first = (!firsts.is_empty()).then(|| firsts.iter().sum::<f64>() / firsts.len() as f64);
    x.shares = BTreeMap::from([
        ("job_share", (job, x.enrolled)),
        ("education_share", (education, x.enrolled)),
        ("never_psychiatric_treatment_share", (never, x.enrolled)),
        ("retained_share", (retained, x.enrolled)),
        ("clarified_share", (clarified, exited)),
    ]);
    x
}

/// Kaplan–Meier written out plainly: at each distinct day, survival is
/// multiplied by (1 - events / at risk).
fn kaplan_meier(times: &[(i64, bool)]) -> Vec<(i64, u64, u64, f64)> {
    let days: BTreeSet<i64> = times.iter().map(|t| t.0).collect();
    let mut survival = 1.0;
    days.into_iter()
        .map(|day| {
            let at_risk = times.iter().filter(|t| t.0 >= day).count() as u64;
            let events = times.iter().filter(|t| t.0 == day && t.1).count() as u64;
            survival *= 1.0 - events as f64 / at_risk as f64;
            (day, at_risk, events, survival)
        })
        .collect()
}

fn check(report: &Outcomes, x: &Expected, case: &str) {
    let steps: Vec<(i64, u64, u64, f64)> = report
        .time_to_first_job
        .iter()
        .map(|s| (s.day, s.at_risk, s.events, s.survival))
        .collect();
    let expected = kaplan_meier(&x.times);
    assert_eq!(steps.len(), expected.len(), "{case}: Kaplan-Meier steps");
    for (got, want) in steps.iter().zip(&expected) {
        assert_eq!((got.0, got.2), (want.0, want.2), "{case}: Kaplan-Meier day and events");
        assert_eq!(got.1, want.1, "{case}: at risk on day {}", got.0);
        assert!((got.3 - want.3).abs() < 1e-9, "{case}: survival on day {}", got.0);
    }
    let poor: BTreeMap<i64, (u64, u64)> = report
        .poor_by_wave
        .iter()
        .map(|p| (p.wave, (p.poor, p.measured)))
        .collect();
    assert_eq!(poor, x.poor, "{case}: poor per wave");
    assert_eq!(report.enrolled, x.enrolled, "{case}: enrolled");
    for m in &report.metrics {
        assert_eq!(
            (m.numerator, m.denominator),
            x.shares[m.metric.as_str()],
            "{case}: {}",
            m.metric
        );
    }
    assert_eq!(report.status_distribution, x.distribution, "{case}: distribution");
    let change = report.measurement_change.iter().find(|c| c.instrument == "coop_wonca");
    assert_eq!(change.map_or(0, |c| c.paired), x.paired, "{case}: paired");
    assert_eq!(change.map_or(0, |c| c.improved), x.improved, "{case}: improved");
    assert_eq!(change.map_or(0, |c| c.unchanged), x.unchanged, "{case}: unchanged");
    assert_eq!(change.map_or(0, |c| c.worse), x.worse, "{case}: worse");
    let mean = change.and_then(|c| c.mean_first);
    assert!(
        mean.zip(x.mean_first)
            .map_or(mean.is_none() && x.mean_first.is_none(), |(a, b)| (a - b).abs() < 1e-9),
        "{case}: mean first {mean:?} vs {:?}",
        x.mean_first
    );
}

#[tokio::test]
async fn every_metric_equals_a_naive_fold_of_random_histories() {
    let store = Store::embedded();
    let log = store.open().await;
    let lake_dir = tempfile::tempdir().expect("temporary directory");
    let lake = Arc::new(Lake::open(lake_dir.path()).expect("lake"));
    let analytics = Analytics::new(lake.root(), Limits::default());
    for seed in 0..10u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let program = format!("prop-{seed}");
        let mut events = vec![wire::program_defined(&program)];
        for p in 0..rng.random_range(1..25) {
            events.extend(history(&mut rng, &program, &format!("P{p}")));
        }
        log.append(wire::parse(&events)).await.expect("a valid history");
        catch_up(log.as_ref(), &lake, 1000).await.expect("lake");
        for _ in 0..2 {
            let as_of = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap_or_default() + Days::new(rng.random_range(0..900));
            let horizon = Horizon {
                months: rng.random_range(1..=18),
                from: if rng.random_bool(0.5) { Anchor::Exit } else { Anchor::Enrolment },
                censor: rng.random_bool(0.5),
            };
            let reports = analytics
                .outcomes_with(
                    &Snapshot::new(Some(as_of), None),
                    Some(&program),
                    &Sections {
                        horizon: Some(horizon),
                        quarterly: true,
                        ..Sections::default()
                    },
                )
                .await
                .expect("outcomes");
            let case = format!("seed {seed} as of {as_of}");
            check(&reports[0], &fold(&events, as_of), &case);
            let at = reports[0].horizon.as_ref().expect("the report at the horizon");
            let (not_yet_due, censored, shares) =
                fold_at_horizon(&events, as_of, horizon.months, horizon.from == Anchor::Exit, horizon.censor);
            let case = format!("{case}, {horizon}, censor {}", horizon.censor);
            assert_eq!((at.not_yet_due, at.censored), (not_yet_due, censored), "{case}: left out");
            for m in &at.metrics {
                let want = shares.get(m.metric.as_str()).copied().unwrap_or((0, 0));
                assert_eq!((m.numerator, m.denominator), want, "{case}: {}", m.metric);
            }
            let quarterly: BTreeMap<String, (u64, u64)> = reports[0]
                .quarterly_employment
                .iter()
                .flatten()
                .map(|q| (q.quarter.clone(), (q.served, q.employed)))
                .collect();
            assert_eq!(quarterly, fold_quarterly(&events, as_of), "{case}: quarterly employment");
        }
    }
}
