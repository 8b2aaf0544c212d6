//! Opening the event log the command line asks for.

use std::sync::Arc;

use anyhow::Context;
use utfall_projections::{Lake, ReadModels};

use utfall_events::log::embedded::EmbeddedLog;
use utfall_events::log::jetstream::{JetStreamConfig, JetStreamLog};
use utfall_events::{EventLog, LogError};

use crate::cli::StoreArgs;

pub async fn open_log(args: &StoreArgs) -> Result<Arc<dyn EventLog>, LogError> {
    Ok(match &args.nats {
        Some(url) => {
            let config = JetStreamConfig {
                url: url.clone(),
                stream: args.nats_stream.clone(),
                subject_prefix: args.nats_subject_prefix.clone(),
                replicas: args.nats_replicas,
            };
            Arc::new(JetStreamLog::connect(&config).await?)
        }
        None => Arc::new(EmbeddedLog::open(&args.data_dir).await?),
    })
}

/// The read models the command line asks for: `--database`, else SQLite in
/// the data directory.
pub async fn open_read_models(args: &StoreArgs) -> anyhow::Result<ReadModels> {
    let url = match &args.database {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
            format!("sqlite://{}?mode=rwc", args.data_dir.join("read.db").display())
        }
    };
    ReadModels::connect(&url)
        .await
        .with_context(|| format!("cannot open the read models at {url}"))
}

/// Where the analytics lake lives: `--lake`, else `lake` in the data directory.
pub fn lake_dir(args: &StoreArgs) -> std::path::PathBuf {
    args.lake.clone().unwrap_or_else(|| args.data_dir.join("lake"))
}

/// The analytics lake the command line asks for: `--lake`, else `lake` in
/// the data directory.
pub fn open_lake(args: &StoreArgs) -> anyhow::Result<Lake> {
    let dir = lake_dir(args);
    Lake::open(&dir).with_context(|| format!("cannot open the analytics lake at {}", dir.display()))
}

/// The analytics lake, for a process that keeps it up to date (`serve`,
/// `project`): refused when another process already does.
pub fn open_lake_to_write(args: &StoreArgs) -> anyhow::Result<Lake> {
    let lake = open_lake(args)?;
    anyhow::ensure!(
        lake.is_writer(),
        "another process (utfall serve or project) writes the analytics lake at {}; one writer per lake",
        lake.root().display()
    );
    Ok(lake)
}

/// A short description of the store, for logs and health checks.
pub fn describe(args: &StoreArgs) -> String {
    match &args.nats {
        Some(url) => format!("jetstream {} (stream {})", url, args.nats_stream),
        None => format!("embedded {}", args.data_dir.display()),
    }
}
