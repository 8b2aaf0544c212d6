//! `utfall project`: the projectors in a process of their own, or the read
//! models of some programmes (several such processes share the work), until
//! interrupted; and `utfall rebuild`.

use std::collections::BTreeSet;
use std::sync::Arc;

use utfall_projections::read_models::Scope;
use utfall_projections::{Lake, ProjectorStatus, follow};

use crate::cli::{ProjectArgs, RebuildArgs};
use crate::store::{lake_dir, open_lake_to_write, open_log, open_read_models};

pub async fn run(args: ProjectArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store).await?;
    let models = open_read_models(&args.store).await?;
    if !args.programs.is_empty() {
        let programs: BTreeSet<String> = args.programs.iter().map(ToString::to_string).collect();
        let named = programs.iter().cloned().collect::<Vec<_>>().join(",");
        let models = Arc::new(models.scoped(Scope::Programs(programs)));
        tracing::info!(read_models = models.position().await?, programs = %named, "projecting");
        let read_models = follow(log, models, Arc::new(ProjectorStatus::default()));
        return tokio::select! {
            () = read_models => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
    }
    let models = Arc::new(models);
    let lake = Arc::new(Arc::new(open_lake_to_write(&args.store)?));
    tracing::info!(
        read_models = models.position().await?,
        lake = lake.position()?,
        "projecting"
    );
    let read_models = follow(log.clone(), models, Arc::new(ProjectorStatus::default()));
    let lake = follow(log, lake, Arc::new(ProjectorStatus::default()));
    tokio::select! {
        () = read_models => Ok(()),
        () = lake => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Events folded per transaction during a rebuild.
const REBUILD_PAGE: usize = 5000;

pub async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store).await?;
    let started = std::time::Instant::now();
    let position = match args.projection.as_str() {
        "lake" => Lake::rebuild(&lake_dir(&args.store), log.as_ref(), REBUILD_PAGE).await?,
        _ => {
            open_read_models(&args.store)
                .await?
                .rebuild(log.as_ref(), REBUILD_PAGE)
                .await?
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rebuilt {} up to position {position} in {seconds:.1} s ({:.0} events/s)",
        args.projection,
        position as f64 / seconds.max(1e-9)
    );
    Ok(())
}
