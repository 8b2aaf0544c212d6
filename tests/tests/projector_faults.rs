//! A projector killed with SIGKILL at random moments of a catch-up, and
//! restarted, ends with read models equal to a clean rebuild.
//! `cargo bench -p utfall-tests --bench projector_faults` runs the same at
//! a million events.

use std::time::Duration;

use utfall_projections::ReadModels;
use utfall_projections::read_models::schema::TABLES;
use utfall_tests::{Store, fresh_database, project_with_kills, run_utfall, sqlite_url};

#[tokio::test]
async fn a_projector_killed_mid_catch_up_ends_equal_to_a_clean_rebuild() {
    let generated = run_utfall(
        &[
            "gen".into(),
            "--participants".into(),
            "400".into(),
            "--seed".into(),
            "9".into(),
        ],
        None,
    );
    assert!(generated.status.success());
    let store = Store::embedded();
    let log = store.open().await;
    let head = log
        .append(utfall_events::wire::parse_batch(&generated.stdout).expect("generated events parse"))
        .await
        .expect("append")
        .len() as u64;

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
