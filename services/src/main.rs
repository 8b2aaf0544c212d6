//! The `utfall` binary: configuration, commands and process wiring.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use utfall::cli::{Cli, Command};
use utfall::{analytics, demo, extract, http, import, project, synthetic};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
        Command::Schema => {
            print!("{}", utfall_events::schema::event_schema_json());
            Ok(())
        }
    }
}
