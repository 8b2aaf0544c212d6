//! The read-model projector against real PostgreSQL and SQLite.

use std::collections::BTreeMap;

use utfall_projections::ReadModels;
use utfall_projections::read_models::Scope;
use utfall_projections::read_models::schema::TABLES;
use utfall_tests::wire::*;
use utfall_tests::{Store, fixture, fresh_database, sqlite_url};

async fn load_fixtures(store: &Store) -> std::sync::Arc<dyn utfall_events::EventLog> {
    let log = store.open().await;
    for name in ["optimist", "sja-meg"] {
        let events = std::fs::read(fixture(name)).expect("fixture");
        log.append(utfall_events::wire::parse_batch(&events).expect("fixture parses"))
            .await
            .expect("append fixture");
    }
    log
}

async fn dump_all(models: &ReadModels) -> BTreeMap<&'static str, Vec<Vec<String>>> {
    let mut tables = BTreeMap::new();
    for table in TABLES {
        tables.insert(table, models.dump(table).await.expect("dump"));
    }
    tables
}

#[tokio::test]
async fn fixtures_give_identical_read_models_in_postgresql_and_sqlite() {
    let store = Store::embedded();
    let log = load_fixtures(&store).await;
    let postgres = ReadModels::connect(&fresh_database().await)
        .await
        .expect("PostgreSQL read models");
    let dir = tempfile::tempdir().expect("temporary directory");
    let sqlite = ReadModels::connect(&sqlite_url(dir.path()))
        .await
        .expect("SQLite read models");
    assert_eq!(
        postgres
            .catch_up(log.as_ref(), 500)
            .await
            .expect("project into PostgreSQL"),
        1618
    );
    assert_eq!(
        sqlite.catch_up(log.as_ref(), 300).await.expect("project into SQLite"),
        1618
    );

    let (pg, lite) = (dump_all(&postgres).await, dump_all(&sqlite).await);
    for table in TABLES {
        // The published fixtures set no targets.
        assert!(table == "targets" || !pg[table].is_empty(), "{table} is empty");
        assert_eq!(pg[table], lite[table], "{table} differs between PostgreSQL and SQLite");
    }
    assert_eq!(pg["events"].len(), 1618);
    assert_eq!(pg["participants"].len(), 15 + 32);
}

#[tokio::test]
async fn optimist_status_distribution_matches_the_published_report() {
    let store = Store::embedded();
    let log = load_fixtures(&store).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let models = ReadModels::connect(&sqlite_url(dir.path())).await.expect("read models");
    models.catch_up(log.as_ref(), 1000).await.expect("project");
    // participants columns: program (0) … current_outcome_group (14).
    let mut groups = BTreeMap::new();
    for row in models
        .dump("participants")
        .await
        .expect("dump")
        .iter()
        .filter(|r| r[0] == "optimist")
    {
        *groups.entry(row[14].clone()).or_insert(0) += 1;
    }
    let expected: BTreeMap<String, i32> = [("job", 5), ("activity", 5), ("moved", 2), ("benefit", 1), ("none", 2)]
        .map(|(g, n)| (g.to_string(), n))
        .into();
    assert_eq!(groups, expected);
}

#[tokio::test]
async fn a_page_delivered_twice_is_applied_once() {
    let store = Store::embedded();
    let log = store.open().await;
    log.append(parse(&[
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        contact("p1", "A", "2021-01-05"),
    ]))
    .await
    .expect("append");
    let dir = tempfile::tempdir().expect("temporary directory");
    let models = ReadModels::connect(&sqlite_url(dir.path())).await.expect("read models");
    let page = log.read(0, 100).await.expect("read");
    models.apply(0, &page).await.expect("first delivery");
    models.apply(0, &page).await.expect("second delivery");
    models.apply(1, &page[1..]).await.expect("partial redelivery");
    assert_eq!(models.dump("contacts").await.expect("dump").len(), 1);
    assert_eq!(models.dump("events").await.expect("dump").len(), 3);
    assert_eq!(models.position().await.expect("position"), 3);
}

#[tokio::test]
async fn retractions_undo_their_event_and_match_a_clean_rebuild() {
    let store = Store::embedded();
    let log = store.open().await;
    let wrong_status = status_changed("p1", "A", "2021-03-01", "employed");
    let wrong_contact = contact("p1", "A", "2021-02-01");
    let setup = vec![
        program_defined("p1"),
        enrolled("p1", "A", "2021-01-04"),
        status_changed("p1", "A", "2021-01-04", "no_activity"),
        wrong_contact.clone(),
        contact("p1", "A", "2021-02-08"),
        wrong_status.clone(),
        // Recorded late: happened between the two earlier statuses.
        status_changed("p1", "A", "2021-02-01", "activity"),
    ];
    log.append(parse(&setup)).await.expect("setup");
    let pg = ReadModels::connect(&fresh_database().await).await.expect("read models");
    pg.catch_up(log.as_ref(), 100).await.expect("project");
    let spells = pg.dump("status_spells").await.expect("dump");
    let mut spells: Vec<(&str, &str, &str)> = spells
        .iter()
        .map(|r| (r[4].as_str(), r[5].as_str(), r[2].as_str()))
        .collect();
    spells.sort();
    assert_eq!(
        spells,
        [
            ("2021-01-04", "2021-02-01", "no_activity"),
            ("2021-02-01", "2021-03-01", "activity"),
            ("2021-03-01", "NULL", "employed")
        ]
    );

    log.append(parse(&[
        retracted("p1", "A", "2021-03-05", &wrong_status),
        retracted("p1", "A", "2021-03-05", &wrong_contact),
    ]))
    .await
    .expect("retractions");
    pg.catch_up(log.as_ref(), 1)
        .await
        .expect("project retractions one at a time");
    let participant = &pg.dump("participants").await.expect("dump")[0];
    assert_eq!(
        (participant[13].as_str(), participant[14].as_str()),
        ("activity", "activity")
    );
    assert_eq!(participant[16], "NULL", "no first job once the job is retracted");
    assert_eq!(pg.dump("contacts").await.expect("dump").len(), 1);
    let retracted_flags: Vec<String> = pg
        .dump("events")
        .await
        .expect("dump")
        .iter()
        .map(|r| r[9].clone())
        .collect();
    assert_eq!(retracted_flags.iter().filter(|f| *f == "1").count(), 2);

    let rebuilt = ReadModels::connect(&fresh_database().await).await.expect("read models");
    rebuilt.catch_up(log.as_ref(), 1000).await.expect("rebuild");
    assert_eq!(
        dump_all(&pg).await,
        dump_all(&rebuilt).await,
        "incremental and rebuilt read models differ"
    );
}

#[tokio::test]
async fn a_generated_history_projects_alike_everywhere_and_page_by_page() {
    let store = Store::embedded();
    let log = store.open().await;
    let head = utfall_tests::append_generated(log.as_ref(), 200, 1).await;

    let incremental = ReadModels::connect(&fresh_database().await)
        .await
        .expect("PostgreSQL read models");
    assert_eq!(
        incremental
            .catch_up(log.as_ref(), 7)
            .await
            .expect("project in small pages"),
        head
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let rebuilt = ReadModels::connect(&sqlite_url(dir.path()))
        .await
        .expect("SQLite read models");
    assert_eq!(
        rebuilt.catch_up(log.as_ref(), 5000).await.expect("project in one go"),
        head
    );
    let (pg, lite) = (dump_all(&incremental).await, dump_all(&rebuilt).await);
    assert!(
        pg["events"].iter().any(|row| row[9] == "1"),
        "the generated history holds retractions"
    );
    assert_eq!(pg, lite);
}

async fn rebuild_matches_incremental(url: String) {
    let store = Store::embedded();
    let log = load_fixtures(&store).await;
    let models = ReadModels::connect(&url).await.expect("read models");
    models.catch_up(log.as_ref(), 50).await.expect("incremental");
    let incremental = dump_all(&models).await;
    assert_eq!(models.rebuild(log.as_ref(), 400).await.expect("rebuild"), 1618);
    assert_eq!(dump_all(&models).await, incremental, "the rebuilt read models differ");
    assert_eq!(models.position().await.expect("position"), 1618);

    // Folding goes on from the swapped-in checkpoint.
    log.append(parse(&[contact("optimist", "P01", "2022-01-10")]))
        .await
        .expect("append");
    let later = log.read(1618, 10).await.expect("read");
    models.apply(1618, &later).await.expect("next event");
    assert_eq!(models.position().await.expect("position"), 1619);
}

#[tokio::test]
async fn a_rebuild_in_postgresql_equals_the_incremental_read_models() {
    rebuild_matches_incremental(fresh_database().await).await;
}

#[tokio::test]
async fn a_rebuild_in_sqlite_equals_the_incremental_read_models() {
    let dir = tempfile::tempdir().expect("temporary directory");
    rebuild_matches_incremental(sqlite_url(dir.path())).await;
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.contains("rebuild"))
        .collect();
    assert!(leftovers.is_empty(), "scratch files left behind: {leftovers:?}");
}

#[tokio::test]
async fn a_gap_in_positions_is_refused() {
    let store = Store::embedded();
    let log = load_fixtures(&store).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let models = ReadModels::connect(&sqlite_url(dir.path())).await.expect("read models");
    let page = log.read(10, 5).await.expect("read");
    assert!(matches!(
        models.apply(10, &page).await,
        Err(utfall_projections::ProjectionError::Gap {
            checkpoint: 0,
            next: 11
        })
    ));
    assert_eq!(models.position().await.expect("position"), 0);
}

#[tokio::test]
async fn the_rebuild_command_rebuilds_the_embedded_read_models() {
    let store = Store::embedded();
    load_fixtures(&store).await;
    let mut args = vec!["rebuild".to_string()];
    args.extend(store.args());
    let output = utfall_tests::run_utfall(&args, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("rebuilt read_models up to position 1618"), "{stdout}");
    let Store::Embedded(dir) = &store else {
        unreachable!("an embedded store")
    };
    let models = ReadModels::connect(&sqlite_url(dir.path())).await.expect("read models");
    assert_eq!(models.position().await.expect("position"), 1618);
    assert_eq!(models.dump("participants").await.expect("dump").len(), 47);
}

#[tokio::test]
async fn processes_starting_together_can_all_create_the_schema() {
    let url = fresh_database().await;
    let (a, b, c, d) = tokio::join!(
        ReadModels::connect(&url),
        ReadModels::connect(&url),
        ReadModels::connect(&url),
        ReadModels::connect(&url)
    );
    for models in [a, b, c, d] {
        assert_eq!(
            models
                .expect("connect while others create the schema")
                .position()
                .await
                .expect("position"),
            0
        );
    }
}

/// Going from one projector to one per programme and back: a programme's
/// own checkpoint starts where the every-programme projector stood, and
/// that projector leaves the programme alone from then on, so each event
/// is folded once; a rebuild hands every programme back.
async fn hand_over_folds_each_event_once(url: String) {
    let store = Store::embedded();
    let log = store.open().await;
    let history = |program: &str, person: &str, on: &str| {
        parse(&[enrolled(program, person, on), contact(program, person, on)])
    };
    log.append(parse(&[program_defined("hand-one"), program_defined("hand-two")]))
        .await
        .expect("programmes");
    log.append(history("hand-one", "p1", "2024-01-02")).await.expect("p1");
    log.append(history("hand-two", "p2", "2024-01-02")).await.expect("p2");
    let every = ReadModels::connect(&url).await.expect("read models");
    let before = every.catch_up(log.as_ref(), 2).await.expect("one projector");

    let one = ReadModels::connect(&url)
        .await
        .expect("read models")
        .scoped(Scope::Programs(["hand-one".to_string()].into()));
    assert_eq!(one.position().await.expect("position"), before, "hand-one starts where the projector stood");
    log.append(history("hand-one", "p3", "2024-02-01")).await.expect("p3");
    log.append(history("hand-two", "p4", "2024-02-01")).await.expect("p4");
    let head = one.catch_up(log.as_ref(), 2).await.expect("hand-one's projector");
    assert_eq!(every.catch_up(log.as_ref(), 2).await.expect("the rest"), head);
    let names: Vec<String> = every.checkpoints().await.expect("checkpoints").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["read_models", "read_models/hand-one"]);

    let dir = tempfile::tempdir().expect("temporary directory");
    let clean = ReadModels::connect(&sqlite_url(dir.path()))
        .await
        .expect("clean read models");
    clean.catch_up(log.as_ref(), 1000).await.expect("clean");
    assert_eq!(dump_all(&every).await, dump_all(&clean).await);

    every.rebuild(log.as_ref(), 1000).await.expect("rebuild");
    let names: Vec<String> = every.checkpoints().await.expect("checkpoints").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["read_models"], "a rebuild hands every programme back");
    assert_eq!(dump_all(&every).await, dump_all(&clean).await);
}

#[tokio::test]
async fn a_programme_handed_to_its_own_projector_is_folded_once_in_postgresql() {
    hand_over_folds_each_event_once(fresh_database().await).await;
}

#[tokio::test]
async fn a_programme_handed_to_its_own_projector_is_folded_once_in_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    hand_over_folds_each_event_once(sqlite_url(dir.path())).await;
}
