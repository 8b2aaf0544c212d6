//! `utfall token`: principals and their API tokens, in the log's database
//! (events.db; PostgreSQL beside JetStream). A token is printed once and
//! kept only as a hash; revocation and expiry hold at the next lookup.

use chrono::{Duration, Utc};
use utfall::access::{Access, Grant, Role};
use utfall::cli::StoreArgs;
use utfall_events::ProgramName;
use utfall_tests::{Store, fresh_database, run_utfall};

/// The store's flags, with a read-model database for JetStream.
async fn flags(store: &Store) -> Vec<String> {
    let mut flags = store.args();
    if matches!(store, Store::JetStream { .. }) {
        flags.extend(["--database".to_string(), fresh_database().await]);
    }
    flags
}

fn store_args(flags: &[String]) -> StoreArgs {
    let value = |name: &str| flags.iter().position(|f| f == name).map(|i| flags[i + 1].clone());
    StoreArgs {
        data_dir: value("--data-dir").expect("a data directory").into(),
        nats: value("--nats"),
        nats_stream: value("--nats-stream").unwrap_or_else(|| "UTFALL_EVENTS".into()),
        nats_subject_prefix: value("--nats-subject-prefix").unwrap_or_else(|| "utfall.ev".into()),
        nats_replicas: 1,
        database: value("--database"),
        lake: None,
        master_key_file: None,
        key_store: None,
    }
}

fn token(flags: &[String], args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = vec!["token".into(), args[0].into()];
    all.extend(flags.iter().cloned());
    all.extend(args[1..].iter().map(|s| s.to_string()));
    run_utfall(&all, None)
}

async fn tokens_are_shown_once_kept_hashed_and_revocable(store: Store) {
    let flags = flags(&store).await;
    let created = token(
        &flags,
        &[
            "create",
            "--name",
            "ana",
            "--role",
            "evaluator",
            "--program",
            "optimist",
            "--expires",
            "90d",
        ],
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let secret = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert!(secret.starts_with("utfall_") && secret.len() == 71, "{secret}");
    assert!(
        token(&flags, &["create", "--name", "boss", "--role", "admin"])
            .status
            .success()
    );

    // Refused: a name again, a viewer without programmes, admin with one.
    for refused in [
        vec!["create", "--name", "ana", "--role", "viewer", "--program", "optimist"],
        vec!["create", "--name", "vic", "--role", "viewer"],
        vec!["create", "--name", "root", "--role", "admin", "--program", "optimist"],
        vec!["create", "--name", "evil/../x", "--role", "admin"],
        vec!["revoke", "nobody"],
    ] {
        assert!(!token(&flags, &refused).status.success(), "{refused:?} was accepted");
    }

    let listed = String::from_utf8_lossy(&token(&flags, &["list"]).stdout).to_string();
    assert!(
        listed.contains("ana\tevaluator:optimist\texpires 20") && listed.contains("boss\tadmin:*"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "the list shows a token");
    if let Store::Embedded(dir) = &store {
        let bytes = std::fs::read(dir.path().join("events.db")).expect("events.db");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "the token is stored as given"
        );
    }

    let principals = Access::open(&store_args(&flags)).await.expect("principal store").tokens;
    let ana = principals
        .authenticate(&secret)
        .await
        .expect("lookup")
        .expect("ana's token works");
    let optimist = ProgramName::new("optimist").expect("name");
    assert_eq!(ana.name, "ana");
    assert_eq!(
        ana.grants,
        [Grant {
            role: Role::Evaluator,
            program: Some(optimist.clone())
        }]
    );
    assert!(ana.holds(&[Role::Evaluator], "optimist") && !ana.holds(&[Role::Evaluator], "sja-meg"));
    assert!(!ana.holds(&[Role::Viewer], "optimist") && !ana.is_admin());

    // A second grant, then the principal holds both.
    assert!(
        token(&flags, &["grant", "ana", "--role", "viewer", "--program", "sja-meg"])
            .status
            .success()
    );
    let ana = principals.authenticate(&secret).await.expect("lookup").expect("ana");
    assert!(ana.holds(&[Role::Viewer], "sja-meg") && !ana.holds(&[Role::Viewer], "optimist"));
    assert_eq!(ana.programs(&[Role::Evaluator]), Some(vec![optimist]));
    assert!(principals.authenticate("utfall_0000").await.expect("lookup").is_none());
    assert!(
        principals
            .authenticate(&secret.replace("utfall_", ""))
            .await
            .expect("lookup")
            .is_none()
    );

    assert!(token(&flags, &["revoke", "ana"]).status.success());
    assert!(
        principals.authenticate(&secret).await.expect("lookup").is_none(),
        "a revoked token still works"
    );

    let expired = principals
        .create(
            "old",
            Role::Viewer,
            &[ProgramName::new("optimist").expect("name")],
            Some(Utc::now() - Duration::seconds(1)),
        )
        .await
        .expect("create");
    assert!(
        principals.authenticate(&expired).await.expect("lookup").is_none(),
        "an expired token works"
    );

    // Every change is in the audit log, which the database keeps append-only.
    let mut audit = vec!["audit".to_string()];
    audit.extend(flags.iter().cloned());
    audit.push("--json".into());
    let printed = run_utfall(&audit, None);
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let actions: Vec<String> = String::from_utf8_lossy(&printed.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON")["action"].to_string())
        .collect();
    assert_eq!(
        actions,
        ["\"token_create\"", "\"token_create\"", "\"grant\"", "\"token_revoke\""],
        "audit records of the changes"
    );
    let url = match &store {
        Store::Embedded(dir) => format!("sqlite://{}", dir.path().join("events.db").display()),
        Store::JetStream { .. } => store_args(&flags).database.expect("a database"),
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.expect("access database");
    for statement in [
        "DELETE FROM access_audit",
        "UPDATE access_audit SET principal = 'nobody'",
    ] {
        assert!(
            sqlx::query(statement).execute(&pool).await.is_err(),
            "{statement} changed the audit log"
        );
    }
}

utfall_tests::for_both_stores!(tokens_are_shown_once_kept_hashed_and_revocable);
