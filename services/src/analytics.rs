//! `utfall outcomes` and `utfall sql`: the lake is brought up to the log's
//! head, then queried.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use utfall_projections::follow::catch_up;
use utfall_queries::{Analytics, Limits, Sections, render};

use crate::cli::{OutcomesArgs, SnapshotArgs, SqlArgs, StoreArgs};
use crate::store::{open_lake, open_log};

/// Events appended to the lake per file while catching up.
const CATCH_UP_PAGE: usize = 50_000;

/// How long to wait for another process (`utfall serve`) writing the lake
/// to bring it up to the log.
const WRITER_WAIT: Duration = Duration::from_secs(120);

/// The analytics engine over a lake that holds the whole log: brought up
/// to it here, or by the process that writes it (`utfall serve`).
pub async fn current(store: &StoreArgs, limits: Limits) -> anyhow::Result<Analytics> {
    let log = open_log(store).await?;
    let lake = Arc::new(open_lake(store)?);
    if lake.is_writer() {
        catch_up(log.as_ref(), &lake, CATCH_UP_PAGE)
            .await
            .context("cannot bring the analytics lake up to date")?;
    } else {
        let head = log.head().await?;
        let started = Instant::now();
        while lake.position()? < head {
            anyhow::ensure!(
                started.elapsed() < WRITER_WAIT,
                "the analytics lake is at position {} of {head}, and the process writing it (utfall serve?) did not catch up within {} s",
                lake.position()?,
                WRITER_WAIT.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(Analytics::new(lake.root(), limits))
}

async fn analytics(args: &SnapshotArgs) -> anyhow::Result<Analytics> {
    current(&args.store, args.limits.limits()).await
}

pub async fn outcomes(args: OutcomesArgs) -> anyhow::Result<()> {
    let engine = analytics(&args.snapshot).await?;
    let report = engine
        .outcomes_with(
            &args.snapshot.snapshot(),
            Some(&args.program),
            &Sections {
                horizon: args.horizon.horizon(),
                cohorts: args.cohorts.clone(),
                quarterly: args.quarterly,
                compare_with: args.compare_with.as_ref().map(ToString::to_string),
                on_track: args.on_track,
            },
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!(args.snapshot.snapshot().no_programme(&args.program)))?;
    let text = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&report)? + "\n",
        "csv" => render::outcomes_csv(&report),
        _ => render::outcomes_table(&report),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

pub async fn sql(args: SqlArgs) -> anyhow::Result<()> {
    let engine = analytics(&args.snapshot).await?;
    let answer = engine.sql(&args.snapshot.snapshot(), &args.query).await?;
    let bytes = match args.format.as_str() {
        "csv" => render::csv(&answer)?,
        "json" => {
            let mut json = render::json(&answer)?;
            json.push(b'\n');
            json
        }
        "parquet" => render::parquet(&answer)?,
        _ => (render::table(&answer)? + "\n").into_bytes(),
    };
    match &args.out {
        Some(path) => std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}
