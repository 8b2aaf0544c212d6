//! Funder extracts: the fixtures' figures with small cells suppressed, an
//! attack that tries to work every suppressed cell back from what is
//! published, byte-identical reproduction after later events, and bad input.

use std::path::{Path, PathBuf};

use utfall_tests::browser::Browser;
use utfall_tests::{Cli, Server, Store, fixture, for_both_stores, run_utfall, wire};

/// The fixtures imported, and a folder for extracts.
struct Setup {
    cli: Cli,
    out: tempfile::TempDir,
}

impl Setup {
    fn new(store: Store) -> Self {
        let cli = Cli::new(store);
        for name in ["optimist", "sja-meg"] {
            cli.import(&fixture(name));
        }
        Self {
            cli,
            out: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn run(&self, command: &str, extra: &[&str]) -> std::process::Output {
        self.cli.run(command, extra)
    }

    fn extract(&self, program: &str, period: &str, extra: &[&str]) -> PathBuf {
        let out = self.out.path().display().to_string();
        let mut args = vec!["--program", program, "--period", period, "--out", &out];
        args.extend_from_slice(extra);
        let result = self.run("extract", &args);
        assert!(
            result.status.success(),
            "extract failed: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        self.out.path().join(program).join(period)
    }
}

/// A CSV file as rows of fields (the extracts quote nothing but text with commas).
impl Setup {
    /// `utfall extract --reproduce` of the extract in `dir` into a folder
    /// of its own; the folder and where the reproduction is.
    fn reproduce(&self, dir: &Path, program: &str, period: &str) -> (tempfile::TempDir, PathBuf) {
        let other = tempfile::tempdir().expect("temporary directory");
        let manifest = dir.join("manifest.json").display().to_string();
        let out = self.run(
            "extract",
            &["--reproduce", &manifest, "--out", &other.path().display().to_string()],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let again = other.path().join(program).join(period);
        (other, again)
    }
}

fn csv(dir: &Path, section: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join(format!("{section}.csv"))).expect("section CSV");
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn cell<'a>(rows: &'a [Vec<String>], key: &str, column: usize) -> &'a str {
    rows.iter()
        .find(|r| r[0] == key)
        .map_or("(missing)", |r| r[column].as_str())
}

/// The attacker: every published figure of the extract as a cell (None when
/// suppressed), and the sums that tie them, read from the CSV files alone.
/// Published cells (None when suppressed) and the sums tying them.
type Published = (Vec<Option<u64>>, Vec<(usize, Vec<usize>)>);

const BUILT_IN: [&str; 5] = [
    "job_share",
    "education_share",
    "never_psychiatric_treatment_share",
    "retained_share",
    "clarified_share",
];

fn published(dir: &Path) -> Published {
    let mut cells: Vec<Option<u64>> = Vec::new();
    let mut add = |v: &str| {
        cells.push(v.parse().ok());
        cells.len() - 1
    };
    let mut sums = Vec::new();
    let summary = csv(dir, "summary");
    let counts: Vec<usize> = summary.iter().map(|r| add(&r[1])).collect();
    let (enrolled, active, exited, exits) = (counts[0], counts[1], counts[2], counts[4]);
    sums.push((enrolled, vec![active, exited]));
    let groups: Vec<usize> = csv(dir, "status_distribution").iter().map(|r| add(&r[1])).collect();
    sums.push((enrolled, groups));
    let reasons: Vec<usize> = csv(dir, "exits_by_reason").iter().map(|r| add(&r[1])).collect();
    sums.push((exits, reasons));
    let metrics = csv(dir, "metrics");
    let job = add(cell(&metrics, "job_share", 1));
    let by_cohort = csv(dir, "metrics_by_cohort");
    for m in &metrics {
        let numerator = add(&m[1]);
        let denominator = add(&m[2]);
        // Each cohort's counts add up to the programme's.
        let cohorts: Vec<&Vec<String>> = by_cohort.iter().filter(|r| r[1] == m[0]).collect();
        let cohort_numerators = cohorts.iter().map(|r| add(&r[2])).collect();
        let cohort_denominators = cohorts.iter().map(|r| add(&r[3])).collect();
        sums.push((numerator, cohort_numerators));
        sums.push((denominator, cohort_denominators));
        // A programme's own indicator counts whom its condition names.
        if !BUILT_IN.contains(&m[0].as_str()) {
            continue;
        }
        let same = if m[0] == "clarified_share" { exited } else { enrolled };
        // The denominator is the enrolled (or exited) count again.
        sums.push((denominator, vec![same]));
        if m[0] == "job_share" {
            sums.push((numerator, vec![job]));
        }
    }
    // At a horizon: everyone past the anchor is due, not yet due or censored.
    if dir.join("metrics_at_horizon.csv").exists() {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("JSON");
        let population = if manifest["horizon"]["from"] == "exit" { exited } else { enrolled };
        let due = add(cell(&csv(dir, "metrics_at_horizon"), "job_share", 2));
        sums.push((population, vec![due, counts[5], counts[6]]));
    }
    for c in csv(dir, "measurement_change") {
        let paired = add(&c[1]);
        let parts = vec![add(&c[4]), add(&c[5]), add(&c[6])];
        sums.push((paired, parts));
    }
    for breakdown in ["by_gender", "by_age_band"] {
        let rows = csv(dir, breakdown);
        let enrolled_parts = rows.iter().map(|r| add(&r[1])).collect();
        let job_parts = rows.iter().map(|r| add(&r[2])).collect();
        sums.push((enrolled, enrolled_parts));
        sums.push((job, job_parts));
    }
    (cells, sums)
}

/// Solves for every suppressed cell over all non-negative integer
/// assignments consistent with the published sums (the library's
/// exhaustive search, fed only what the files publish).
fn assert_nothing_recoverable(dir: &Path) {
    let (cells, sums) = published(dir);
    assert!(cells.iter().any(Option::is_none), "something is suppressed");
    let found = utfall_queries::extract::disclosure::only_one_value(&cells, &sums);
    assert_eq!(
        found,
        None,
        "{}: a suppressed cell has one possible value",
        dir.display()
    );
}

async fn optimist_2022_shows_the_published_figures_and_hides_the_small_ones(store: Store) {
    let setup = Setup::new(store);
    let dir = setup.extract("optimist", "2022", &[]);
    let metrics = csv(&dir, "metrics");
    assert_eq!(
        metrics[0][..6],
        ["job_share", "5", "15", "0.333333", "0.151763", "0.582865"]
    );
    let distribution = csv(&dir, "status_distribution");
    assert_eq!(cell(&distribution, "job", 1), "5");
    assert_eq!(cell(&distribution, "activity", 1), "5");
    for small in ["moved", "benefit", "none"] {
        assert_eq!(cell(&distribution, small, 1), "suppressed", "{small}");
    }
    let change = csv(&dir, "measurement_change");
    assert_eq!(change[0][1..4], ["9", "2.793651", "2.603175"].map(String::from));
    assert_nothing_recoverable(&dir);

    // Parquet: typed, with the suppressed flag beside each number.
    let file = std::fs::File::open(dir.join("status_distribution.parquet")).expect("parquet");
    let batches: Vec<_> = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet reader")
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    let schema = batches[0].schema();
    assert_eq!(
        schema
            .field_with_name("participants")
            .map(|f| f.data_type().clone())
            .ok(),
        Some(arrow::datatypes::DataType::Int64)
    );
    let hidden = arrow::array::AsArray::as_boolean(batches[0].column_by_name("participants_suppressed").expect("flag"));
    assert_eq!(hidden.true_count(), 3);

    let verify = run_utfall(&["extract".into(), "--verify".into(), dir.display().to_string()], None);
    assert!(verify.status.success());
}

for_both_stores!(optimist_2022_shows_the_published_figures_and_hides_the_small_ones);

/// The extract in `dir` as read back by openpyxl (XLSX) and pandas (CSV,
/// Parquet): see extracts/read_back.py.
fn read_back(dir: &Path) -> serde_json::Value {
    utfall_tests::python_json("tests/extracts/read_back.py", dir)
}

/// The row of a read-back table whose first cell is `key`.
fn row<'a>(rows: &'a serde_json::Value, key: &str) -> &'a [serde_json::Value] {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|r| r[0] == key))
        .and_then(|r| r.as_array())
        .map_or(&[], Vec::as_slice)
}

#[test]
fn every_format_reads_back_in_a_funders_tools_with_the_published_figures() {
    let setup = Setup::new(Store::embedded());
    let optimist = read_back(&setup.extract("optimist", "2022", &[]));

    let sheets: Vec<&str> = optimist["xlsx"]
        .as_object()
        .map_or(vec![], |o| o.keys().map(String::as_str).collect());
    for sheet in [
        "summary",
        "metrics",
        "status_distribution",
        "measurement_change",
        "poor_by_wave",
        "exits_by_reason",
        "by_gender",
        "by_age_band",
        "methods",
    ] {
        assert!(sheets.contains(&sheet), "no sheet {sheet} in {sheets:?}");
        assert_eq!(optimist["frozen"][sheet], "A2", "{sheet}: header row frozen");
    }
    let metrics = &optimist["xlsx"]["metrics"];
    assert_eq!(
        metrics[0].as_array().map(|h| &h[..4]),
        Some(&["metric", "numerator", "denominator", "value"].map(serde_json::Value::from)[..])
    );
    let job = row(metrics, "job_share");
    assert_eq!(job[1].as_f64(), Some(5.0), "numbers are numbers: {job:?}");
    assert_eq!(job[2].as_f64(), Some(15.0));
    assert!(job[3].as_f64().is_some_and(|v| (v - 1.0 / 3.0).abs() < 1e-9), "{job:?}");
    assert_eq!(optimist["formats"]["metrics"][3], "0.0%", "shares are percentages");
    let distribution = &optimist["xlsx"]["status_distribution"];
    assert_eq!(row(distribution, "job")[1].as_f64(), Some(5.0));
    assert_eq!(row(distribution, "activity")[1].as_f64(), Some(5.0));
    for small in ["moved", "benefit", "none"] {
        assert_eq!(row(distribution, small)[1], "suppressed", "XLSX {small}");
        assert_eq!(
            row(&optimist["csv"]["status_distribution"], small)[1],
            "suppressed",
            "CSV {small}"
        );
        let parquet = row(&optimist["parquet"]["status_distribution"]["rows"], small);
        assert_eq!(
            (parquet[1].is_null(), &parquet[2]),
            (true, &serde_json::Value::Bool(true)),
            "Parquet {small}"
        );
    }
    assert_eq!(
        row(&optimist["csv"]["metrics"], "job_share")[1..4],
        ["5", "15", "0.333333"].map(serde_json::Value::from)
    );
    let parquet = &optimist["parquet"]["metrics"];
    assert_eq!(parquet["dtypes"]["numerator"], "int64[pyarrow]");
    assert_eq!(parquet["dtypes"]["value"], "double[pyarrow]");
    assert_eq!(row(&parquet["rows"], "job_share")[1], 5);
    let change = row(&optimist["xlsx"]["measurement_change"], "coop_wonca");
    assert!(
        change[2].as_f64().is_some_and(|v| (v - 2.793651).abs() < 1e-6),
        "{change:?}"
    );

    let sja_meg = read_back(&setup.extract("sja-meg", "2022", &["--min-cell", "3"]));
    let name = "SJÅ MEG DER JE ER (sja-meg)";
    assert_eq!(row(&sja_meg["xlsx"]["methods"], "programme")[1], name);
    assert_eq!(row(&sja_meg["csv"]["methods"], "programme")[1], name);
    assert_eq!(row(&sja_meg["parquet"]["methods"]["rows"], "programme")[1], name);
    let job = row(&sja_meg["xlsx"]["metrics"], "job_share");
    assert_eq!((job[1].as_f64(), job[2].as_f64()), (Some(11.0), Some(32.0)));
    // Parquet puts a `_suppressed` flag after each number: value is column 5.
    assert_eq!(row(&sja_meg["parquet"]["metrics"]["rows"], "clarified_share")[5], 1.0);
}

#[test]
fn sja_meg_2022_keeps_its_letters_and_nothing_can_be_worked_back() {
    let setup = Setup::new(Store::embedded());
    let dir = setup.extract("sja-meg", "2022", &["--min-cell", "3"]);
    let metrics = csv(&dir, "metrics");
    assert_eq!(cell(&metrics, "job_share", 1), "11");
    assert_eq!(cell(&metrics, "job_share", 2), "32");
    assert_eq!(cell(&metrics, "clarified_share", 3), "1.000000");
    let methods = std::fs::read_to_string(dir.join("methods.csv")).expect("methods");
    assert!(methods.contains("SJÅ MEG DER JE ER (sja-meg)"), "{methods}");
    assert!(methods.contains("counts from 1 to 3 are suppressed"));
    assert!(methods.contains("quarterly_employment"), "{methods}");
    // Everyone active at the year's end was served in its last quarter.
    let quarterly = csv(&dir, "quarterly_employment");
    let active = cell(&csv(&dir, "summary"), "active at the as-of date", 1).parse::<u64>().ok();
    let last_served = quarterly.last().filter(|q| q[0] == "2022Q4").and_then(|q| q[1].parse::<u64>().ok());
    assert!(active.is_some() && last_served >= active, "{quarterly:?}");
    // By year of enrolment: each cohort's enrolled add up to the 32.
    let by_cohort = csv(&dir, "metrics_by_cohort");
    let enrolled: Vec<(&str, &str)> = by_cohort
        .iter()
        .filter(|r| r[1] == "job_share")
        .map(|r| (r[0].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(enrolled, [("2019", "15"), ("2020", "17")]);
    assert_eq!(cell(&by_cohort, "2020", 1), "job_share");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("html");
    assert!(html.contains("SJÅ MEG DER JE ER: outcome report 2022"));
    assert_nothing_recoverable(&dir);
}

/// A programme's own indicators are in the metrics beside the built-in
/// ones, under the same disclosure control, and Methods defines them.
#[test]
fn an_extract_carries_the_programmes_indicators_with_small_cells_hidden() {
    let setup = Setup::new(Store::embedded());
    let indicator = |name: &str, numerator: &str, denominator: Option<&str>| {
        let mut data = serde_json::json!({"name": name, "description": format!("{name} (test)"), "numerator": numerator});
        if let Some(d) = denominator {
            data["denominator"] = d.into();
        }
        serde_json::json!({"event_id": wire::id(), "program": "optimist", "type": "indicator_defined",
            "occurred_on": "2022-01-01", "data": data})
    };
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    let definitions = [
        indicator(
            "measured_twice",
            "(SELECT count(*) FROM measurement_scores m WHERE m.participant = participants.participant AND m.instrument = 'coop_wonca') >= 2",
            None,
        ),
        indicator("completed_exits", "exit_reason = 'completed'", Some("exited_on IS NOT NULL")),
        serde_json::json!({"event_id": wire::id(), "program": "optimist", "type": "targets_set", "occurred_on": "2022-01-02",
            "data": {"targets": [{"metric": "measured_twice", "op": ">=", "value": 0.5}, {"metric": "completed_exits", "op": ">=", "value": 0.5}]}}),
    ];
    std::fs::write(file.path(), wire::ndjson(&definitions)).expect("write");
    setup.cli.import(file.path());
    let dir = setup.extract("optimist", "2022", &[]);
    let metrics = csv(&dir, "metrics");
    assert_eq!(metrics[..5].iter().map(|m| m[0].as_str()).collect::<Vec<_>>(), BUILT_IN);
    assert_eq!(metrics[5][..4], ["completed_exits", "suppressed", "suppressed", "suppressed"], "3 exits");
    assert_eq!(metrics[6][..4], ["measured_twice", "9", "15", "0.600000"]);
    let methods = std::fs::read_to_string(dir.join("methods.csv")).expect("methods");
    assert!(methods.contains("measured_twice (test) (the programme's own indicator)"), "{methods}");
    assert!(methods.contains("denominator: participants where exited_on IS NOT NULL"), "{methods}");
    // On track: OPTIMIST ended on the as-of date, so the verdict rests on
    // the share then; one resting on hidden cells is hidden with them.
    let tracks = csv(&dir, "on_track");
    let verdicts: Vec<(&str, &str, &str)> = tracks.iter().map(|r| (r[0].as_str(), r[4].as_str(), r[8].as_str())).collect();
    assert_eq!(verdicts, [("completed_exits", "current", "suppressed"), ("measured_twice", "current", "uncertain")]);
    assert_nothing_recoverable(&dir);
}

#[test]
fn a_reproduction_after_later_events_is_byte_identical_and_a_tampered_extract_fails_verification() {
    let setup = Setup::new(Store::embedded());
    let dir = setup.extract("optimist", "2022", &[]);
    // Later: a late-recorded status for 2022 and a retraction.
    let events = std::fs::read_to_string(fixture("optimist")).expect("fixture");
    let exit: serde_json::Value = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("line"))
        .find(|e| e["type"] == "participant_exited")
        .expect("an exit");
    let participant = exit["participant"].as_str().unwrap_or_default().to_string();
    let late = [wire::retracted("optimist", &participant, "2023-01-10", &exit)];
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), wire::ndjson(&late)).expect("write");
    setup.cli.import(file.path());

    let (_other, again) = setup.reproduce(&dir, "optimist", "2022");
    for entry in std::fs::read_dir(&dir).expect("extract folder") {
        let name = entry.expect("entry").file_name();
        assert_eq!(
            std::fs::read(dir.join(&name)).expect("delivered"),
            std::fs::read(again.join(&name)).expect("reproduced"),
            "{name:?} differs"
        );
    }

    std::fs::write(dir.join("metrics.csv"), "metric\njob_share,15\n").expect("tamper");
    let verify = run_utfall(&["extract".into(), "--verify".into(), dir.display().to_string()], None);
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stderr).contains("metrics.csv (changed)"));
}

#[test]
fn a_late_record_gives_a_revision_beside_the_original_listing_what_changed() {
    let setup = Setup::new(Store::embedded());
    let original = setup.extract("optimist", "2022", &[]);
    let out = setup.out.path().display().to_string();
    let revise = || {
        setup.run(
            "extract",
            &["--program", "optimist", "--period", "2022", "--out", &out, "--revise"],
        )
    };
    let unchanged = revise();
    assert!(
        unchanged.status.success(),
        "{}",
        String::from_utf8_lossy(&unchanged.stderr)
    );
    assert!(String::from_utf8_lossy(&unchanged.stdout).contains("no figure of optimist 2022 has changed"));

    // Recorded now: P06 found a job in December 2022.
    let late = [wire::status_changed("optimist", "P06", "2022-12-15", "employed")];
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), wire::ndjson(&late)).expect("write");
    setup.cli.import(file.path());
    let again = setup.run("extract", &["--program", "optimist", "--period", "2022", "--out", &out]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("`--revise` writes a revision beside it"));
    let revised = revise();
    assert!(revised.status.success(), "{}", String::from_utf8_lossy(&revised.stderr));

    let revision = setup.out.path().join("optimist").join("2022-revision-2");
    let changes = csv(&revision, "changes");
    let change = |section: &str, row: &str, column: &str| {
        changes
            .iter()
            .find(|c| c[..3] == [section, row, column])
            .map(|c| (c[3].as_str(), c[4].as_str()))
    };
    assert_eq!(
        change("metrics", "job_share", "numerator"),
        Some(("5", "6")),
        "{changes:?}"
    );
    assert_eq!(
        change("status_distribution", "activity", "participants"),
        Some(("5", "suppressed"))
    );
    assert_eq!(
        change("status_distribution", "moved", "participants"),
        None,
        "unchanged figures are not listed"
    );
    assert_eq!(cell(&csv(&revision, "metrics"), "job_share", 1), "6");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(revision.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["revision"], 2);
    assert_eq!(manifest["replaces"]["revision"], 1);

    // The original is untouched; both reproduce byte for byte.
    assert_eq!(cell(&csv(&original, "metrics"), "job_share", 1), "5");
    for dir in [&original, &revision] {
        let verify = run_utfall(&["extract".into(), "--verify".into(), dir.display().to_string()], None);
        assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
        let other = tempfile::tempdir().expect("temporary directory");
        let manifest = dir.join("manifest.json").display().to_string();
        let out = setup.run(
            "extract",
            &["--reproduce", &manifest, "--out", &other.path().display().to_string()],
        );
        assert!(
            out.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!setup.out.path().join("optimist").join("2022-revision-3").exists());
    let unchanged = revise();
    assert!(String::from_utf8_lossy(&unchanged.stdout).contains("has changed; no revision written"));
}

/// GET /v1/extracts.
async fn extracts_listed(server: &Server) -> serde_json::Value {
    server.get("/v1/extracts").await.json().await.expect("JSON")
}

#[tokio::test]
async fn extracts_are_listed_and_downloaded_over_http() {
    let setup = Setup::new(Store::embedded());
    let dir = setup.extract("optimist", "2022", &[]);
    setup.extract("sja-meg", "2022Q4", &["--format", "csv"]);
    std::fs::write(dir.join("notes.txt"), "not part of the extract").expect("stray file");
    // A manifest edited to name files outside its folder.
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    let entry = manifest["files"][0].clone();
    for outside in ["../../sja-meg/2022Q4/metrics.csv", "/etc/passwd"] {
        let mut forged = entry.clone();
        forged["file"] = outside.into();
        manifest["files"].as_array_mut().expect("files").push(forged);
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("edit manifest");
    let server = setup
        .cli
        .serve(&["--extracts", &setup.out.path().display().to_string()]);
    let http = server.client();

    let listed = extracts_listed(&server).await;
    let ids: Vec<&str> = listed
        .as_array()
        .map_or(vec![], |l| l.iter().filter_map(|e| e["id"].as_str()).collect());
    assert_eq!(ids, ["optimist.2022", "sja-meg.2022Q4"]);
    let optimist = &listed[0];
    assert_eq!(
        (&optimist["program"], &optimist["period"], &optimist["revision"]),
        (&"optimist".into(), &"2022".into(), &1.into())
    );
    let files: Vec<&str> = optimist["files"]
        .as_array()
        .map_or(vec![], |f| f.iter().filter_map(|f| f.as_str()).collect());
    for file in [
        "report.xlsx",
        "metrics.csv",
        "metrics.parquet",
        "report.html",
        "manifest.json",
    ] {
        assert!(files.contains(&file), "{file} listed: {files:?}");
    }
    assert!(!files.contains(&"notes.txt"));
    assert!(files.iter().all(|f| !f.contains('/')), "{files:?}");
    assert!(
        optimist["created"]
            .as_str()
            .is_some_and(|c| chrono::DateTime::parse_from_rfc3339(c).is_ok())
    );

    let response = http
        .get(server.url("/v1/extracts/optimist.2022/report.xlsx"))
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let bytes = response.bytes().await.expect("body");
    assert_eq!(
        bytes.as_ref(),
        std::fs::read(dir.join("report.xlsx")).expect("file").as_slice()
    );

    for path in [
        "/v1/extracts/optimist.2022/notes.txt",
        "/v1/extracts/optimist.2022/..%2F..%2Fsja-meg%2F2022Q4%2Fmetrics.csv",
        "/v1/extracts/optimist.2022/%2Fetc%2Fpasswd",
        "/v1/extracts/optimist.2021/metrics.csv",
        "/v1/extracts/nowhere.2022/metrics.csv",
    ] {
        let status = http.get(server.url(path)).send().await.expect("request").status();
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn utfall_serve_makes_the_scheduled_extracts_and_lists_them() {
    let setup = Setup::new(Store::embedded());
    let schedule = setup.out.path().join("extracts.toml");
    std::fs::write(
        &schedule,
        "[[extract]]\nprogram = \"optimist\"\nperiod = \"yearly\"\nfirst_period = \"2022\"\nformats = [\"csv\", \"xlsx\"]\nout = \"scheduled\"\n",
    )
    .expect("schedule");
    let server = setup.cli.serve(&["--schedule", &schedule.display().to_string()]);
    let mut listed = serde_json::Value::Null;
    for _ in 0..120 {
        listed = extracts_listed(&server).await;
        if listed
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e["id"] == "optimist.2022"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let made = listed
        .as_array()
        .and_then(|l| l.iter().find(|e| e["id"] == "optimist.2022"))
        .unwrap_or_else(|| panic!("no scheduled extract of 2022 listed: {listed}"));
    assert_eq!(made["revision"], 1);
    let dir = setup.out.path().join("scheduled").join("optimist").join("2022");
    assert_eq!(cell(&csv(&dir, "metrics"), "job_share", 1), "5");
    assert!(dir.join("report.xlsx").exists());
    let verify = run_utfall(&["extract".into(), "--verify".into(), dir.display().to_string()], None);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

#[test]
fn bad_requests_are_refused_and_leave_nothing_behind() {
    let setup = Setup::new(Store::embedded());
    let out = setup.out.path().display().to_string();
    for (args, message) in [
        (
            vec!["--program", "nowhere", "--period", "2022"],
            "no programme named \"nowhere\"",
        ),
        (vec!["--program", "optimist", "--period", "2099Q1"], "has not ended"),
        (
            vec!["--program", "optimist", "--period", "2019"],
            "ends before programme optimist started",
        ),
        (vec!["--program", "optimist", "--period", "2022Q5"], "no such quarter"),
        (
            vec!["--program", "optimist", "--period", "2022", "--min-cell", "0"],
            "--min-cell",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--out", &out]);
        let result = setup.run("extract", &all);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    setup.extract("optimist", "2022Q4", &[]);
    let again = setup.run(
        "extract",
        &["--program", "optimist", "--period", "2022Q4", "--out", &out],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));

    let locked = setup.out.path().join("locked");
    std::fs::create_dir_all(&locked).expect("dir");
    let mut permissions = std::fs::metadata(&locked).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&locked, permissions).expect("read-only");
    let result = setup.run(
        "extract",
        &[
            "--program",
            "optimist",
            "--period",
            "2022Q3",
            "--out",
            &locked.display().to_string(),
        ],
    );
    // Root may write anyway; what must hold is: success, or a clear error and no leftovers.
    if !result.status.success() {
        assert!(String::from_utf8_lossy(&result.stderr).contains("cannot"));
        assert!(std::fs::read_dir(&locked).map(|d| d.count()).unwrap_or(0) == 0);
    }
    let entries: Vec<_> = std::fs::read_dir(setup.out.path().join("optimist"))
        .expect("out")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        entries,
        vec![std::ffi::OsString::from("2022Q4")],
        "no temporary folder left"
    );
}

#[tokio::test]
async fn the_html_report_shows_the_figures_in_chromium() {
    let setup = Setup::new(Store::embedded());
    let dir = setup.extract("optimist", "2022", &["--format", "html"]);
    let mut browser = Browser::start().await;
    browser
        .open(&format!("file://{}", dir.join("report.html").display()))
        .await;
    browser.wait_for("document.querySelectorAll('svg').length === 2").await;
    let text = browser.eval("document.body.innerText").await;
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains("OPTIMIST: outcome report 2022"), "{text}");
    assert!(text.contains("job_share\t5\t15\t0.333333"), "{text}");
    let suppressed = browser.eval("document.querySelectorAll('td.s').length").await;
    assert!(suppressed.as_u64().is_some_and(|n| n >= 3));
    let png = browser.screenshot().await;
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts");
    std::fs::create_dir_all(&artefacts).expect("artefacts");
    std::fs::write(artefacts.join("extract.png"), png).expect("screenshot");
}

/// `--compare-with`: each share beside another programme's, its counts
/// under the same disclosure control; the manifest keeps the comparison.
#[test]
fn an_extract_sets_each_share_beside_another_programmes_and_reproduces() {
    let setup = Setup::new(Store::embedded());
    let dir = setup.extract("optimist", "2022", &["--compare-with", "sja-meg", "--min-cell", "3"]);
    let compared = csv(&dir, "compared");
    let job = compared.iter().find(|r| r[0] == "job_share").expect("job_share");
    assert_eq!(job[1..4], ["sja-meg", "11", "32"]);
    let (d, low, high) = utfall_queries::statistics::newcombe(5, 15, 11, 32).expect("interval");
    assert_eq!(job[5..8], [format!("{d:.6}"), format!("{low:.6}"), format!("{high:.6}")]);
    let methods = std::fs::read_to_string(dir.join("methods.csv")).expect("methods");
    assert!(methods.contains("each share beside programme sja-meg's"), "{methods}");
    assert_nothing_recoverable(&dir);
    let (_other, again) = setup.reproduce(&dir, "optimist", "2022");
    assert_eq!(
        std::fs::read(dir.join("compared.csv")).expect("delivered"),
        std::fs::read(again.join("compared.csv")).expect("reproduced")
    );
    let unknown = setup.run(
        "extract",
        &["--program", "optimist", "--period", "2022", "--compare-with", "nowhere", "--out", "/tmp/never"],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nowhere"));
}

/// `--lang nb`: the workbook and the page in Norwegian bokmål (sheet
/// names, headers, labels, texts), CSV and Parquet still by identifier,
/// and the manifest keeps the language, so a reproduction is the same.
#[test]
fn an_extract_in_norwegian_names_its_sheets_headers_and_labels_and_reproduces() {
    let setup = Setup::new(Store::embedded());
    let dir = setup.extract("optimist", "2022", &["--lang", "nb", "--horizon", "6m", "--from", "exit"]);
    let back = read_back(&dir);
    let sheets: Vec<&str> = back["xlsx"].as_object().expect("sheets").keys().map(String::as_str).collect();
    for sheet in ["Deltakere", "Resultater", "Etter innskrivingsår", "Status", "Metode"] {
        assert!(sheets.contains(&sheet), "{sheet} in {sheets:?}");
    }
    let results = back["xlsx"]["Resultater"].as_array().expect("rows");
    let cells = |row: usize, n: usize| results[row].as_array().map(|r| r[..n].to_vec()).unwrap_or_default();
    assert_eq!(cells(0, 4), ["Mål", "Teller", "Nevner", "Andel"]);
    assert_eq!(cells(1, 3), [serde_json::json!("I jobb"), serde_json::json!(5), serde_json::json!(15)]);
    let status = back["xlsx"]["Status"].to_string();
    assert!(status.contains("Jobb") && status.contains("skjult"), "{status}");
    // The Methods text too, in every format: it is prose, not an identifier.
    let methods = &back["xlsx"]["Metode"];
    let described = |item: &str| row(methods, item).get(1).and_then(|d| d.as_str()).unwrap_or_default().to_string();
    assert!(described("I jobb").starts_with("job_share: deltakere som har hatt en status"), "{methods}");
    assert!(described("Skjerming av små tall").starts_with("antall fra 1 til 4 er skjult"), "{methods}");
    assert!(described("Horisont").starts_with("6 måneder etter avslutning: statusen som telles"), "{methods}");
    assert!(described("I jobb, ved horisonten").starts_with("job_share ved en horisont: deltakere"), "{methods}");
    let methods_csv = std::fs::read_to_string(dir.join("methods.csv")).expect("methods");
    assert!(methods_csv.contains(&format!("job_share,\"{}\"", described("I jobb"))), "{methods_csv}");
    // CSV keeps identifiers for evaluators' code.
    assert_eq!(csv(&dir, "metrics")[0][..3], ["job_share", "5", "15"]);
    let header = std::fs::read_to_string(dir.join("metrics.csv")).expect("csv");
    assert!(header.starts_with("metric,numerator,denominator"), "{header}");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("html");
    assert!(html.contains("<html lang=\"nb\">") && html.contains("OPTIMIST: resultatrapport 2022"), "{html}");
    assert!(html.contains("<td>I jobb</td>") && html.contains("<th>Teller</th>"), "{html}");
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"lang\": \"nb\""), "{manifest}");
    let (_other, again) = setup.reproduce(&dir, "optimist", "2022");
    for name in ["report.xlsx", "report.html", "metrics.csv", "manifest.json"] {
        assert_eq!(
            std::fs::read(dir.join(name)).expect("delivered"),
            std::fs::read(again.join(name)).expect("reproduced"),
            "{name}"
        );
    }
}

/// The share metrics at a horizon go into an extract as a section of their
/// own, under the same disclosure control, with who was not yet due or
/// censored in the summary and the definition in the methods; the
/// manifest keeps the horizon, so a reproduction gives the same files.
#[test]
fn an_extract_at_a_horizon_counts_everyone_once_and_reproduces() {
    let setup = Setup::new(Store::embedded());
    let dir = setup.extract(
        "sja-meg",
        "2022",
        &["--min-cell", "3", "--horizon", "6m", "--from", "enrolment", "--censor"],
    );
    let at_horizon = csv(&dir, "metrics_at_horizon");
    assert_eq!(at_horizon.len(), 5, "{at_horizon:?}");
    let summary = csv(&dir, "summary");
    let count = |key: &str| cell(&summary, key, 1).parse::<u64>().ok();
    let due = cell(&at_horizon, "job_share", 2).parse::<u64>().ok();
    let shown = [due, count("not yet due at the horizon"), count("censored at the horizon")];
    if let [Some(due), Some(not_yet_due), Some(censored)] = shown {
        assert_eq!(Some(due + not_yet_due + censored), count("enrolled by the as-of date"));
    }
    assert!(due.is_some_and(|d| d > 3), "the due count is shown: {at_horizon:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("JSON");
    assert_eq!(manifest["horizon"], serde_json::json!({"months": 6, "from": "enrolment", "censor": true}));
    let methods = std::fs::read_to_string(dir.join("methods.csv")).expect("methods");
    assert!(methods.contains("6 months after enrolment: the status counted"), "{methods}");
    assert!(methods.contains("job_share at the horizon"), "{methods}");
    assert_nothing_recoverable(&dir);

    let (_other, again) = setup.reproduce(&dir, "sja-meg", "2022");
    for name in ["metrics_at_horizon.csv", "summary.csv", "methods.csv"] {
        assert_eq!(
            std::fs::read(dir.join(name)).expect("delivered"),
            std::fs::read(again.join(name)).expect("reproduced"),
            "{name} differs"
        );
    }
}
