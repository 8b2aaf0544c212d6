//! The `utfall` binary: configuration, commands and process wiring.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use utfall::cli::{Cli, Command};
use utfall::{access, analytics, demo, erasure, extract, http, import, keys, migrate, project, quarantine, synthetic};

/// Stack of every runtime thread. Planning and optimising a query recurse
/// over its tree; queries are held to a nesting depth
/// (`utfall_queries::nesting`) that fits in this with room to spare, even
/// in a debug build.
const THREAD_STACK: usize = 64 << 20;

fn main() -> anyhow::Result<()> {
    // Everything utfall writes (the log, read models, lake, extracts) holds
    // personal data: files are created readable by their owner only.
    // SAFETY: umask only sets this process's file-creation mask.
    unsafe { libc::umask(0o077) };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .build()?;
    // The command itself runs on a thread of the same stack size, not on
    // the main thread's smaller one.
    std::thread::Builder::new()
        .name("utfall".into())
        .stack_size(THREAD_STACK)
        .spawn(move || runtime.block_on(run(cli)))?
        .join()
        .map_err(|_| anyhow::anyhow!("the command panicked"))?
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => http::serve(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Project(args) => project::run(args).await,
        Command::Rebuild(args) => project::rebuild(args).await,
        Command::Import(args) => {
            let outcome = import::run(args).await?;
            if outcome.rejected > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Gen(args) => synthetic::run(args),
        Command::Outcomes(args) => analytics::outcomes(args).await,
        Command::Sql(args) => analytics::sql(args).await,
        Command::Extract(args) => extract::run(args).await,
        Command::Quarantine(args) => quarantine::run(args).await,
        Command::Token(args) => access::run(args).await,
        Command::Audit(args) => access::run_audit(args).await,
        Command::MigrateEncrypt(args) => migrate::run(args).await,
        Command::Keys(args) => keys::run(args).await,
        Command::Erase(args) => erasure::run(args).await,
        Command::Schema => {
            print!("{}", utfall_events::schema::event_schema_json());
            Ok(())
        }
    }
}
