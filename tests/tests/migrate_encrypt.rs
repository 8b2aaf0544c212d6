//! `utfall migrate-encrypt` turns an embedded log written before sealing
//! existed into a new one whose files hold no participant's data in clear,
//! with the same figures; the old log is left as it was.

use std::path::Path;

use serde_json::Value;
use utfall_tests::{Cli, Store, fixture, run_utfall};

/// Values of the OPTIMIST fixture that only participants' data holds.
const PARTICIPANT_VALUES: [&str; 3] = ["social_assistance", "home_visit", "no_activity"];

fn holds(dir: &Path, value: &str) -> bool {
    std::fs::read_dir(dir).expect("data directory").any(|entry| {
        let path = entry.expect("entry").path();
        path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("events.db"))
            && std::fs::read(&path)
                .expect("read")
                .windows(value.len())
                .any(|w| w == value.as_bytes())
    })
}

/// OPTIMIST's outcome report, but for when it was asked (`known_at`).
fn outcomes(cli: &Cli) -> Value {
    let out = cli.run("outcomes", &["--program", "optimist", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut report: Value = serde_json::from_slice(&out.stdout).expect("outcomes print JSON");
    report.as_object_mut().and_then(|r| r.remove("known_at")).expect("known_at");
    report
}

/// `utfall migrate-encrypt --data-dir old --into new`.
fn migrate(old: &Path, new: &Path) -> std::process::Output {
    let args = ["migrate-encrypt", "--data-dir", &old.display().to_string(), "--into", &new.display().to_string()];
    run_utfall(&args.map(String::from), None)
}

/// Makes the store's log what utfall left before sealing: every payload in
/// clear, no data keys, no master key.
async fn unseal(store: &Store, dir: &Path) {
    let log = store.open().await;
    let events = log.read(0, 10_000).await.expect("read");
    drop(log);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("events.db").display()))
        .await
        .expect("events.db");
    for stored in &events {
        sqlx::query("UPDATE events SET payload = ? WHERE position = ?")
            .bind(serde_json::to_string(&stored.event).expect("JSON"))
            .bind(stored.position as i64)
            .execute(&pool)
            .await
            .expect("store in clear");
    }
    for table in ["data_keys", "data_keys_check"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(&pool)
            .await
            .expect("drop the key store");
    }
    sqlx::query("VACUUM").execute(&pool).await.expect("vacuum");
    std::fs::remove_file(dir.join("master.key")).expect("remove the master key");
}

#[tokio::test]
async fn an_old_log_in_clear_becomes_a_sealed_one_with_the_same_figures() {
    let old = Cli::new(Store::embedded());
    let imported = old.run("import", &[&fixture("optimist").display().to_string()]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let Store::Embedded(old_dir) = &old.store else {
        unreachable!("an embedded store")
    };
    let old_dir = old_dir.path().to_path_buf();
    unseal(&old.store, &old_dir).await;
    assert!(PARTICIPANT_VALUES.iter().all(|v| holds(&old_dir, v)));
    let before = outcomes(&old);

    let new = Cli::new(Store::embedded());
    let Store::Embedded(new_dir) = &new.store else {
        unreachable!("an embedded store")
    };
    let migrated = migrate(&old_dir, new_dir.path());
    let said = String::from_utf8_lossy(&migrated.stdout).to_string();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(said.starts_with("796 events") && said.contains("795 of them"), "{said}");

    for value in PARTICIPANT_VALUES {
        assert!(!holds(new_dir.path(), value), "{value} in clear in the new log");
        assert!(holds(&old_dir, value), "the old log was changed");
    }
    assert_eq!(outcomes(&new), before);

    // Into a folder that holds a log already: refused, nothing touched.
    let again = migrate(&old_dir, new_dir.path());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}
