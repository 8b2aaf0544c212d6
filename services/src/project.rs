//! `utfall project`: the projector on its own process (docker compose runs
//! it beside `utfall serve`), until interrupted.

use std::sync::Arc;

use utfall_projections::{ProjectorStatus, follow};

use crate::cli::ProjectArgs;
use crate::store::{open_log, open_read_models};

pub async fn run(args: ProjectArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store).await?;
    let models = Arc::new(open_read_models(&args.store).await?);
    tracing::info!(position = models.position().await?, "projecting");
    tokio::select! {
        () = follow(log, models, Arc::new(ProjectorStatus::default())) => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
