//! The extract scheduler over a simulated clock: 200 days from now, one
//! check a day, with a restart after a crash and a 30-day outage. Every
//! closed period (plus grace days) gets its extract once, on the first
//! check after it is due; none is skipped, none repeated.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use utfall::schedule::{Scheduler, load};
use utfall_tests::{Cli, Store, fixture};

/// First day of the quarter `back` quarters before the one holding `day`.
fn quarter_start(day: NaiveDate, back: u32) -> NaiveDate {
    let index = day.year() * 4 + day.month0() as i32 / 3 - back as i32;
    NaiveDate::from_ymd_opt(index.div_euclid(4), index.rem_euclid(4) as u32 * 3 + 1, 1).expect("date")
}

fn month_start(day: NaiveDate, back: u32) -> NaiveDate {
    let index = day.year() * 12 + day.month0() as i32 - back as i32;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1).expect("date")
}

/// (label, first day, last day) of each period from `first` on, up to `until`.
fn periods(
    first: NaiveDate,
    months: u32,
    until: NaiveDate,
    label: impl Fn(NaiveDate) -> String,
) -> Vec<(String, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = first;
    while start <= until {
        let next = start.checked_add_months(chrono::Months::new(months)).expect("date");
        out.push((label(start), next.pred_opt().expect("date")));
        start = next;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_closed_period_is_extracted_once_after_its_grace_days_across_restarts() {
    let cli = Cli::new(Store::embedded());
    for name in ["optimist", "sja-meg"] {
        cli.import(&fixture(name));
    }
    let analytics = cli.analytics();
    let out = tempfile::tempdir().expect("temporary directory");
    let start: DateTime<Utc> = Utc::now();
    let today = start.date_naive();
    let first_quarter = quarter_start(today, 2);
    let first_month = month_start(today, 1);
    let config = out.path().join("schedule.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[extract]]
program = "optimist"
period = "quarterly"
first_period = "{q}Q{qn}"
formats = ["csv"]
grace_days = 14
out = "funders"

[[extract]]
period = "yearly"
first_period = "{y}"
formats = ["csv", "html"]
grace_days = 30
out = "funders"

[[extract]]
program = "sja-meg"
period = "monthly"
first_period = "{m}"
formats = ["csv"]
min_cell = 3
grace_days = 5
out = "funders"
"#,
            q = first_quarter.year(),
            qn = first_quarter.month0() / 3 + 1,
            y = today.year() - 1,
            m = first_month.format("%Y-%m"),
        ),
    )
    .expect("schedule");

    // What must happen: each period's extract on the first check on or after
    // its last day + grace + 1, or at the restart if that fell in the outage.
    let days = 200;
    let (outage_from, outage_to) = (100, 130);
    let end = today + Days::new(days);
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut expect = |program: &str, periods: Vec<(String, NaiveDate)>, grace: u64| {
        for (label, last) in periods {
            let due = last + Days::new(grace + 1);
            if due > end {
                continue;
            }
            let mut day = due.signed_duration_since(today).num_days().max(0) as u64;
            if (outage_from..outage_to).contains(&day) {
                day = outage_to;
            }
            expected.insert(format!("{program}/{label}"), day);
        }
    };
    expect(
        "optimist",
        periods(first_quarter, 3, end, |d| {
            format!("{}Q{}", d.year(), d.month0() / 3 + 1)
        }),
        14,
    );
    let year = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).expect("date");
    for program in ["optimist", "sja-meg"] {
        expect(program, periods(year, 12, end, |d| d.year().to_string()), 30);
    }
    expect(
        "sja-meg",
        periods(first_month, 1, end, |d| d.format("%Y-%m").to_string()),
        5,
    );

    let funders = out.path().join("funders");
    let mut made: BTreeMap<String, u64> = BTreeMap::new();
    let mut scheduler = Scheduler::new(load(&config).expect("schedule loads"));
    for day in 0..days {
        if (outage_from..outage_to).contains(&day) {
            continue;
        }
        if day == outage_to {
            // The process was killed while writing: its hidden folder is left.
            let leftover = funders.join("optimist").join(".2099Q1.tmp-999999999");
            std::fs::create_dir_all(&leftover).expect("leftover");
            std::fs::write(leftover.join("metrics.csv"), "half").expect("leftover file");
            scheduler = Scheduler::new(load(&config).expect("schedule loads"));
            assert!(!leftover.exists(), "a restart tidies what a killed run left");
        }
        let now = start + chrono::Duration::days(day as i64);
        for folder in scheduler.tick(&analytics, now).await.expect("tick") {
            let key = folder
                .strip_prefix(&funders)
                .expect("under the output folder")
                .display()
                .to_string();
            assert!(made.insert(key.clone(), day).is_none(), "{key} made twice");
        }
    }
    assert_eq!(made, expected);
    assert!(made.len() >= 8, "the simulation covers several periods: {made:?}");

    // The files are real extracts, made as known at the check.
    let (key, _) = made
        .iter()
        .find(|(k, _)| k.starts_with("optimist/") && k.contains('Q'))
        .expect("a quarter");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(funders.join(key).join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["formats"], serde_json::json!(["csv"]));
    assert!(funders.join(key).join("metrics.csv").exists());
    let last_year = funders.join("sja-meg").join((today.year() - 1).to_string());
    assert!(
        last_year.join("report.html").exists(),
        "last year's extract for every programme"
    );
}

#[test]
fn a_bad_schedule_names_the_entry_and_the_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (text, message) in [
        ("[[extract]]\nperiod = \"weekly\"\n", "unknown variant `weekly`"),
        (
            "[[extract]]\nperiod = \"monthly\"\nmin_cell = 0\n",
            "[[extract]] 1 (counting from 1): min_cell",
        ),
        (
            "[[extract]]\nperiod = \"yearly\"\n[[extract]]\nperiod = \"monthly\"\nfirst_period = \"2024Q1\"\n",
            "[[extract]] 2 (counting from 1): first_period",
        ),
        (
            "[[extract]]\nperiod = \"yearly\"\nprogram = \"Not A Name\"\n",
            "program",
        ),
        (
            "[[extract]]\nperiod = \"yearly\"\nformat = [\"csv\"]\n",
            "unknown field `format`",
        ),
        ("[[extract]]\nperiod = \"yearly\"\nformats = [\"pdf\"]\n", "pdf"),
        (
            "[[extract]]\nperiod = \"yearly\"\nhorizon = \"6 weeks\"\n",
            "[[extract]] 1 (counting from 1): horizon: \"6 weeks\" is not a horizon",
        ),
        (
            "[[extract]]\nperiod = \"yearly\"\nhorizon = \"6m\"\nhorizon_from = \"intake\"\n",
            "horizon_from: \"intake\" is not an anchor",
        ),
        (
            "[[extract]]\nperiod = \"yearly\"\ncensor = true\n",
            "need a `horizon`",
        ),
        (
            "[[extract]]\nperiod = \"yearly\"\nlang = \"sv\"\n",
            "[[extract]] 1 (counting from 1): lang: \"sv\" is not a language utfall speaks",
        ),
    ] {
        let path = dir.path().join("schedule.toml");
        std::fs::write(&path, text).expect("write");
        let error = load(&path).map(|_| ()).expect_err(text);
        assert!(format!("{error:#}").contains(message), "{text}: {error:#}");
    }
    let path = dir.path().join("schedule.toml");
    std::fs::write(&path, "[[extract]]\nperiod = \"yearly\"\nhorizon = \"1y\"\ncensor = true\nlang = \"da\"\n").expect("write");
    let entries = load(&path).expect("a schedule with a horizon");
    assert_eq!(
        entries[0].horizon,
        Some(utfall_queries::Horizon {
            months: 12,
            from: utfall_queries::Anchor::Exit,
            censor: true
        })
    );
    assert_eq!(entries[0].lang, Some(utfall_queries::language::Language::Da));
}
