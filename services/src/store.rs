//! Opening the event log the command line asks for.

use std::sync::Arc;

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

/// A short description of the store, for logs and health checks.
pub fn describe(args: &StoreArgs) -> String {
    match &args.nats {
        Some(url) => format!("jetstream {} (stream {})", url, args.nats_stream),
        None => format!("embedded {}", args.data_dir.display()),
    }
}
