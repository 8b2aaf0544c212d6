//! `utfall keys rotate`: a new master key for the deployment. Only the
//! wrapping of the participants' data keys changes (one transaction), not
//! the data keys nor the log, so rotation is quick at any size. The
//! default key file is replaced only once the data keys are re-wrapped;
//! an interrupted rotation is finished (or dropped) at the next start.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use utfall_events::sealing::MasterKey;

use crate::cli::StoreArgs;
use crate::store::{MASTER_KEY_ENV, MASTER_KEY_FILE, PENDING_MASTER_KEY_FILE, master_key, open_sealing};

#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Wrap every participant's data key with a new master key (stop every utfall process first).
    Rotate(RotateArgs),
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// File of the new master key: read when it exists, else made (mode 0600).
    /// Required when the current key comes from --master-key-file or UTFALL_MASTER_KEY;
    /// by default the data directory's `master.key` is replaced.
    #[arg(long)]
    pub to: Option<PathBuf>,
}

pub async fn run(args: KeysArgs) -> anyhow::Result<()> {
    let KeysCommand::Rotate(args) = args.command;
    let default = args.store.master_key_file.is_none() && std::env::var(MASTER_KEY_ENV).is_err();
    let to = match (&args.to, default) {
        (Some(to), _) => to.clone(),
        (None, true) => args.store.data_dir.join(PENDING_MASTER_KEY_FILE),
        (None, false) => anyhow::bail!(
            "the master key comes from --master-key-file or {MASTER_KEY_ENV}: name the new key's file with --to"
        ),
    };
    // Opening finishes an earlier rotation that stopped half-way.
    let sealing = open_sealing(&args.store).await?;
    let new = MasterKey::from_file_or_create(&to)?;
    anyhow::ensure!(
        master_key(&args.store)?.is_none_or(|current| current.to_hex() != new.to_hex()),
        "{} holds the current master key",
        to.display()
    );
    let rewrapped = sealing.keys().rewrap(&new).await?;
    let key_file = if default && args.to.is_none() {
        let file = args.store.data_dir.join(MASTER_KEY_FILE);
        std::fs::rename(&to, &file).with_context(|| format!("cannot put {} in place", to.display()))?;
        file
    } else {
        to
    };
    println!(
        "{rewrapped} data keys re-wrapped; the master key is now the one in {} (the old one opens nothing)",
        key_file.display()
    );
    Ok(())
}
