//! A projector killed with SIGKILL at random moments of a catch-up, and
//! restarted, ends with read models equal to a clean rebuild.
//! `cargo bench -p utfall-tests --bench projector_faults` runs the same at
//! a million events.

use std::time::Duration;

use utfall_projections::ReadModels;
use utfall_projections::read_models::schema::TABLES;
use utfall_tests::{Store, append_generated, fresh_database, project_with_kills, sqlite_url};

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
    let before = wait_for_position(&url, &mut projector.0, |p| p > 0)
        .await
        .position()
        .await
        .expect("position");
    postgres.restart();
    let survived = wait_for_position(&url, &mut projector.0, |p| p == head).await;
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

/// A child process stopped when dropped, so that a failing test leaves
/// no projector behind.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls the read models until their position satisfies `reached`, failing
/// if the projector process ends or after two minutes.
async fn wait_for_position(
    url: &str,
    projector: &mut std::process::Child,
    reached: impl Fn(u64) -> bool,
) -> ReadModels {
    let started = std::time::Instant::now();
    loop {
        assert!(matches!(projector.try_wait(), Ok(None)), "utfall project exited");
        if let Ok(models) = ReadModels::connect(url).await
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
