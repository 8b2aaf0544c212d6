//! `utfall migrate-encrypt`: an embedded log written before sealing
//! existed (participants' data in clear) becomes a new one with every
//! participant's event sealed, in a new data directory; the old one is
//! left as it was, for the operator to remove once they trust the new one.
//! Each event keeps its position, version and recording time, so every
//! projection of the new log — and so every figure — is the old one's: the
//! command checks that every event reads back the same before it reports
//! success.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use sqlx::{Row, SqlitePool};
use utfall_events::StoredEvent;
use utfall_events::log::embedded::{EmbeddedLog, FILE_NAME};
use utfall_events::sealing::Sealing;

use crate::cli::StoreArgs;
use crate::store::{MASTER_KEY_ENV, MASTER_KEY_FILE, open_sealing};

#[derive(Args, Debug)]
pub struct MigrateEncryptArgs {
    /// The log to migrate (stop every utfall process using it first).
    #[command(flatten)]
    pub store: StoreArgs,
    /// The new data directory: made, or empty. Its read models and lake are
    /// built from the new log by the first `utfall serve` or `project`.
    #[arg(long)]
    pub into: PathBuf,
}

/// Events compared at once by the check.
const PAGE: i64 = 5000;

pub async fn run(args: MigrateEncryptArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.store.nats.is_none(),
        "migrate-encrypt rewrites an embedded log; a JetStream stream cannot be rewritten (it denies delete and purge)"
    );
    let old = args.store.data_dir.join(FILE_NAME);
    anyhow::ensure!(old.exists(), "no embedded log at {}", old.display());
    std::fs::create_dir_all(&args.into).with_context(|| format!("cannot create {}", args.into.display()))?;
    let new = args.into.join(FILE_NAME);
    anyhow::ensure!(
        !new.exists(),
        "{} exists already: migrate into a new data directory",
        new.display()
    );
    // The old deployment's master key opens the new one too, so that the
    // data keys of events already sealed still open. (A log with no key
    // gets a new one when the new deployment's key store is made.)
    let old_key = args.store.data_dir.join(MASTER_KEY_FILE);
    if args.store.master_key_file.is_none() && std::env::var(MASTER_KEY_ENV).is_err() && old_key.exists() {
        copy_private(&old_key, &args.into.join(MASTER_KEY_FILE))?;
    }
    let old_pool = SqlitePool::connect(&format!("sqlite://{}?mode=ro", old.display())).await?;
    // A consistent copy of the whole database (its access records too),
    // whatever the old log's write-ahead file still held.
    sqlx::query("VACUUM INTO ?")
        .bind(new.display().to_string())
        .execute(&old_pool)
        .await
        .with_context(|| format!("cannot copy {} to {}", old.display(), new.display()))?;

    let new_store = StoreArgs {
        data_dir: args.into.clone(),
        lake: None,
        database: None,
        ..args.store.clone()
    };
    let sealing = open_sealing(&new_store).await?;
    let log = EmbeddedLog::open(&args.into, sealing.clone()).await?;
    let sealed = log.seal_stored().await?;
    drop(log);

    let new_pool = SqlitePool::connect(&format!("sqlite://{}?mode=ro", new.display())).await?;
    let checked = same_events(&old_pool, &new_pool, &sealing).await?;
    println!(
        "{checked} events in {}, {sealed} of them participants' events now sealed; every event reads back as before",
        new.display()
    );
    println!(
        "next: start utfall with --data-dir {} (it builds the read models and the lake from the new log), then remove {}",
        args.into.display(),
        args.store.data_dir.display()
    );
    Ok(())
}

/// Copies a secret file, readable by its owner only.
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", to.display()))
}

/// Checks that both logs hold the same events at the same positions;
/// returns how many.
async fn same_events(old: &SqlitePool, new: &SqlitePool, sealing: &Sealing) -> anyhow::Result<u64> {
    let (mut after, mut checked) = (0_i64, 0_u64);
    loop {
        let (before, now) = (page(old, after, sealing).await?, page(new, after, sealing).await?);
        anyhow::ensure!(
            before.len() == now.len(),
            "the new log holds {} events after position {after}, the old one {}",
            now.len(),
            before.len()
        );
        let Some(last) = before.last().map(|(position, _)| *position) else {
            return Ok(checked);
        };
        for ((position, was), (_, is)) in before.iter().zip(&now) {
            let same = match (was, is) {
                (Some(was), Some(is)) => was == is,
                (None, None) => true,
                _ => false,
            };
            anyhow::ensure!(same, "the event at position {position} does not read back as before");
        }
        checked += before.len() as u64;
        after = last;
    }
}

/// A page of `(position, event)`, none for an unreadable event.
async fn page(pool: &SqlitePool, after: i64, sealing: &Sealing) -> anyhow::Result<Vec<(i64, Option<StoredEvent>)>> {
    let rows = sqlx::query("SELECT position, payload FROM events WHERE position > ? ORDER BY position LIMIT ?")
        .bind(after)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let position: i64 = row.get(0);
        let payload: String = row.get(1);
        let event = match sealing.open(position as u64, payload.as_bytes()).await {
            Ok(event) => Some(event),
            Err(utfall_events::LogError::Unreadable { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        events.push((position, event));
    }
    Ok(events)
}
