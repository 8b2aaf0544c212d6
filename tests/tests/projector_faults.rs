//! A projector killed with SIGKILL at random moments of a catch-up, and
//! restarted, ends with read models equal to a clean rebuild; so do
//! projectors that share the programmes out, one of them killed midway.
//! `cargo bench -p utfall-tests --bench projector_faults` runs the same at
//! a million events.

use std::collections::BTreeSet;
use std::time::Duration;

use utfall_projections::ReadModels;
use utfall_projections::read_models::Scope;
use utfall_projections::read_models::schema::TABLES;
use utfall_tests::{Cli, Store, append_generated, fresh_database, project_with_kills, sqlite_url, wire};

#[tokio::test]
async fn a_projector_killed_mid_catch_up_ends_equal_to_a_clean_rebuild() {
    let store = Store::embedded();
    let log = store.open().await;
    let head = append_generated(log.as_ref(), 400, 9).await;

    let positions = project_with_kills(&store, None, 4, Duration::from_millis(1000), head).await;
    assert!(
        positions.iter().any(|p| *p < head),
        "no kill came before the catch-up ended: {positions:?}"
    );

    let Store::Embedded(dir) = &store else {
        unreachable!("an embedded store")
    };
    let survived = ReadModels::connect(&sqlite_url(dir.path())).await.expect("read models");
    let clean = ReadModels::connect(&fresh_database().await)
        .await
        .expect("clean read models");
    assert_eq!(clean.catch_up(log.as_ref(), 5000).await.expect("clean rebuild"), head);
    for table in TABLES {
        let (a, b) = (
            survived.dump(table).await.expect("dump"),
            clean.dump(table).await.expect("dump"),
        );
        assert_eq!(a.len(), b.len(), "{table}: row counts differ");
        assert!(a == b, "{table} differs from a clean rebuild");
    }
}

#[tokio::test]
async fn a_postgresql_restart_mid_catch_up_loses_and_doubles_nothing() {
    let store = Store::embedded();
    let log = store.open().await;
    let head = append_generated(log.as_ref(), 400, 11).await;

    let postgres = utfall_tests::ThrowawayPostgres::start();
    let url = postgres.url();
    let mut args = vec!["project".to_string()];
    args.extend(store.args());
    args.extend(["--database".to_string(), url.clone()]);
    let mut projector = Stopped(
        std::process::Command::new(utfall_tests::utfall_bin())
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start utfall project"),
    );
    // Restart once the catch-up is under way.
    let before = wait_for_position(&url, &Scope::All, &mut projector.0, |p| p > 0)
        .await
        .position()
        .await
        .expect("position");
    postgres.restart();
    let survived = wait_for_position(&url, &Scope::All, &mut projector.0, |p| p == head).await;
    drop(projector);
    assert!(before < head, "the restart came after the catch-up ended");

    let dir = tempfile::tempdir().expect("temporary directory");
    let clean = ReadModels::connect(&sqlite_url(dir.path()))
        .await
        .expect("clean read models");
    clean.catch_up(log.as_ref(), 5000).await.expect("clean rebuild");
    for table in TABLES {
        assert!(
            survived.dump(table).await.expect("dump") == clean.dump(table).await.expect("dump"),
            "{table} differs"
        );
    }
}

/// Three `utfall project --programs` processes over disjoint programme
/// sets, one SIGKILLed midway through its catch-up and restarted, then
/// events of a programme that arrives late: the read models end exactly as
/// one projector makes them, and `serve --projectors lake` shows each
/// programme's projector with its lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projectors_sharing_out_the_programmes_make_the_tables_one_makes() {
    let store = Store::jetstream();
    let log = store.open().await;
    append_generated(log.as_ref(), 600, 13).await;
    let url = fresh_database().await;
    let sets = [
        "gen-ringsaker,gen-naestved",
        "gen-trysil,gen-aarhus",
        "gen-notodden,gen-tromso,late-arrival",
    ];
    let scope = |set: &str| Scope::Programs(set.split(',').map(str::to_string).collect::<BTreeSet<_>>());
    let start = |set: &str| {
        let mut args = vec!["project".to_string()];
        args.extend(store.args());
        args.extend(["--database".into(), url.clone(), "--programs".into(), set.into()]);
        Stopped(
            std::process::Command::new(utfall_tests::utfall_bin())
                .args(&args)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start utfall project --programs"),
        )
    };
    let mut projectors: Vec<Stopped> = sets.iter().map(|set| start(set)).collect();

    let head = log.head().await.expect("head");
    let killed = wait_for_position(&url, &scope(sets[1]), &mut projectors[1].0, |p| p > 0).await;
    projectors[1].0.kill().expect("SIGKILL a projector");
    let _ = projectors[1].0.wait();
    let killed_at = killed.position().await.expect("position");
    assert!(killed_at < head, "the kill came after that projector's catch-up ended");
    projectors[1] = start(sets[1]);

    // A programme that none had seen, in the third process's set.
    let late = [
        wire::program_defined("late-arrival"),
        wire::enrolled("late-arrival", "late-1", "2024-01-10"),
        wire::contact("late-arrival", "late-1", "2024-01-12"),
        wire::status_changed("late-arrival", "late-1", "2024-02-01", "employed"),
    ];
    log.append(wire::parse(&late)).await.expect("late events");
    let head = log.head().await.expect("head");
    let mut shared = None;
    for (set, projector) in sets.iter().zip(projectors.iter_mut()) {
        shared = Some(wait_for_position(&url, &scope(set), &mut projector.0, |p| p == head).await);
    }
    let shared = shared.expect("three projectors");

    let one = ReadModels::connect(&fresh_database().await).await.expect("one projector's read models");
    assert_eq!(one.catch_up(log.as_ref(), 5000).await.expect("one projector"), head);
    for table in TABLES {
        let (a, b) = (shared.dump(table).await.expect("dump"), one.dump(table).await.expect("dump"));
        assert!(!b.is_empty(), "{table} is empty: the comparison would prove nothing");
        assert_eq!(a.len(), b.len(), "{table}: row counts differ");
        assert!(a == b, "{table} differs from one projector's");
    }

    let server = Cli::new(store).serve(&["--database", &url, "--projectors", "lake"]);
    server.caught_up().await;
    let standings: serde_json::Value = server.get("/v1/projections").await.json().await.expect("JSON");
    let names: BTreeSet<&str> = standings
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    let expected: BTreeSet<String> = sets
        .iter()
        .flat_map(|set| set.split(','))
        .map(|p| format!("read_models/{p}"))
        .chain(["lake".to_string()])
        .collect();
    assert_eq!(names, expected.iter().map(String::as_str).collect(), "{standings}");
    let health: serde_json::Value = server.get("/healthz").await.json().await.expect("JSON");
    assert_eq!(health["components"]["read_models"]["position"], head, "{health}");

    // One projector stops: the other programmes' figures still move on.
    let enrolled = || async {
        let summary: serde_json::Value = server.get("/v1/programs/late-arrival/summary").await.json().await.expect("JSON");
        summary["enrolled"].as_u64()
    };
    assert_eq!(enrolled().await, Some(1));
    projectors[1].0.kill().expect("SIGKILL a projector");
    let _ = projectors[1].0.wait();
    log.append(wire::parse(&[wire::enrolled("late-arrival", "late-2", "2024-03-01")]))
        .await
        .expect("a late enrolment");
    let started = std::time::Instant::now();
    while enrolled().await != Some(2) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "late-arrival's summary did not move on while another programme's projector was down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child process stopped when dropped, so that a failing test leaves
/// no projector behind.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls the read models until the position of `scope` satisfies
/// `reached`, failing if the projector process ends or after two minutes.
async fn wait_for_position(
    url: &str,
    scope: &Scope,
    projector: &mut std::process::Child,
    reached: impl Fn(u64) -> bool,
) -> ReadModels {
    let started = std::time::Instant::now();
    loop {
        assert!(matches!(projector.try_wait(), Ok(None)), "utfall project exited");
        if let Ok(models) = ReadModels::connect(url).await.map(|m| m.scoped(scope.clone()))
            && models.position().await.is_ok_and(&reached)
        {
            return models;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the projector never got there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
