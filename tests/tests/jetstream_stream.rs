//! How the JetStream log sets up its stream on the NATS server.

use async_nats::jetstream;
use async_nats::jetstream::stream::StorageType;
use futures::StreamExt;
use utfall_tests::wire::*;
use utfall_tests::{Store, nats_url};

#[tokio::test]
async fn the_stream_is_durable_append_only_and_deduplicating() {
    let store = Store::jetstream();
    let log = store.open().await;
    log.append(parse(&[program_defined("p1"), enrolled("p1", "A", "2021-01-04")]))
        .await
        .expect("append");
    let Store::JetStream { stream, prefix, .. } = &store else {
        unreachable!("a JetStream store")
    };

    let context = jetstream::new(async_nats::connect(nats_url()).await.expect("connect"));
    let mut handle = context.get_stream(stream).await.expect("stream exists");
    let info = handle.info().await.expect("stream info");
    let config = &info.config;
    assert_eq!(config.subjects, [format!("{prefix}.>")]);
    assert_eq!(config.storage, StorageType::File);
    assert!(
        config.deny_delete && config.deny_purge,
        "events cannot be deleted or purged"
    );
    assert!(
        config.duplicate_window.as_secs() >= 600,
        "retries are deduplicated for at least 10 minutes"
    );
    assert_eq!(info.state.messages, 2);
    assert!(handle.delete_message(1).await.is_err(), "deleting an event is refused");
    assert!(handle.purge().await.is_err(), "purging the log is refused");

    let subjects: Vec<String> = handle
        .info_with_subjects(format!("{prefix}.>"))
        .await
        .expect("subjects")
        .map(|s| s.map(|(subject, _)| subject).unwrap_or_default())
        .collect::<Vec<_>>()
        .await;
    let mut subjects = subjects;
    subjects.sort();
    assert_eq!(subjects, [format!("{prefix}.p1.A"), format!("{prefix}.p1._program")]);
}

#[tokio::test]
async fn two_deployments_share_one_server_without_seeing_each_other() {
    let first = Store::jetstream();
    let second = Store::jetstream();
    first
        .open()
        .await
        .append(parse(&[program_defined("p1")]))
        .await
        .expect("append to the first");
    let second = second.open().await;
    assert_eq!(second.head().await.expect("head"), 0);
    second
        .append(parse(&[program_defined("p1")]))
        .await
        .expect("the same programme in the second");
    assert_eq!(first.open().await.head().await.expect("head"), 1);
}
