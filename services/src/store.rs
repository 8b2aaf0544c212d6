//! Opening the event log the command line asks for.

use std::sync::Arc;

use anyhow::Context;
use utfall_projections::{Lake, ReadModels};

use utfall_events::EventLog;
use utfall_events::log::embedded::{EmbeddedLog, FILE_NAME as EMBEDDED_FILE};
use utfall_events::log::jetstream::{JetStreamConfig, JetStreamLog};
use utfall_events::sealing::{KeyStore, MasterKey, Sealing, SealingError};

use crate::cli::StoreArgs;

/// The master key file created in the data directory when none is given.
pub const MASTER_KEY_FILE: &str = "master.key";
/// The master key itself, as 64 hexadecimal digits (instead of a file).
pub const MASTER_KEY_ENV: &str = "UTFALL_MASTER_KEY";

/// The master key the command line gives: `UTFALL_MASTER_KEY`, else
/// `--master-key-file`, else `master.key` in the data directory; none when
/// that file does not exist.
pub fn master_key(args: &StoreArgs) -> anyhow::Result<Option<MasterKey>> {
    if let Ok(hex) = std::env::var(MASTER_KEY_ENV) {
        return Ok(Some(
            MasterKey::from_hex(&hex).with_context(|| format!("{MASTER_KEY_ENV} is not a master key"))?,
        ));
    }
    let path = match &args.master_key_file {
        Some(path) => path.clone(),
        None if args.data_dir.join(MASTER_KEY_FILE).exists() => args.data_dir.join(MASTER_KEY_FILE),
        None => return Ok(None),
    };
    Ok(Some(MasterKey::from_file(&path)?))
}

/// The master key, or — for a deployment that has no data keys yet — a
/// new one in the data directory's `master.key` (readable by its owner
/// only). A missing key is never replaced by a new one once data keys
/// exist: the new one would open none of them.
async fn master_key_for(args: &StoreArgs, url: &str) -> anyhow::Result<MasterKey> {
    if let Some(key) = master_key(args)? {
        return Ok(key);
    }
    let path = args.data_dir.join(MASTER_KEY_FILE);
    anyhow::ensure!(
        !KeyStore::made(url).await?,
        "no master key: {} is missing, and this deployment's data keys were made with one; \
         give it with --master-key-file or {MASTER_KEY_ENV} (a new key would open none of them)",
        path.display()
    );
    Ok(MasterKey::from_file_or_create(&path)?)
}

/// Where `utfall keys rotate` writes the default master key's successor
/// until the data keys are re-wrapped with it.
pub const PENDING_MASTER_KEY_FILE: &str = "master.key.new";

/// Where the participants' data keys live: `--key-store`, else the data
/// directory's `events.db` (the embedded log's own file). Never the
/// read-model database, which may be dropped and rebuilt at any time.
fn key_store_url(args: &StoreArgs) -> anyhow::Result<String> {
    Ok(match &args.key_store {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
            format!("sqlite://{}?mode=rwc", args.data_dir.join(EMBEDDED_FILE).display())
        }
    })
}

/// The participants' data keys, opened by the master key.
pub async fn open_sealing(args: &StoreArgs) -> anyhow::Result<Arc<Sealing>> {
    let url = key_store_url(args)?;
    let keys = match finish_rotation(args, &url).await? {
        Some(keys) => keys,
        None => KeyStore::open(&url, master_key_for(args, &url).await?).await?,
    };
    Ok(Arc::new(Sealing::new(keys)))
}

/// A rotation of the default master key stopped between its steps: when
/// the data keys were re-wrapped, the new key takes the old one's place;
/// when not, the new key is dropped.
async fn finish_rotation(args: &StoreArgs, url: &str) -> anyhow::Result<Option<KeyStore>> {
    let pending = args.data_dir.join(PENDING_MASTER_KEY_FILE);
    if args.master_key_file.is_some() || std::env::var(MASTER_KEY_ENV).is_ok() || !pending.exists() {
        return Ok(None);
    }
    match KeyStore::open(url, MasterKey::from_file(&pending)?).await {
        Ok(keys) => {
            std::fs::rename(&pending, args.data_dir.join(MASTER_KEY_FILE))
                .with_context(|| format!("cannot put {} in place", pending.display()))?;
            Ok(Some(keys))
        }
        Err(SealingError::WrongMasterKey) => {
            std::fs::remove_file(&pending).with_context(|| format!("cannot remove {}", pending.display()))?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn open_log(args: &StoreArgs) -> anyhow::Result<Arc<dyn EventLog>> {
    let sealing = open_sealing(args).await?;
    let log: Arc<dyn EventLog> = match &args.nats {
        Some(url) => {
            let config = JetStreamConfig {
                url: url.clone(),
                stream: args.nats_stream.clone(),
                subject_prefix: args.nats_subject_prefix.clone(),
                replicas: args.nats_replicas,
            };
            Arc::new(JetStreamLog::connect(&config, sealing).await?)
        }
        None => Arc::new(EmbeddedLog::open(&args.data_dir, sealing).await?),
    };
    utfall_events::log::finish_erasures(log.as_ref()).await?;
    Ok(log)
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
