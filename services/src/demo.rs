//! `utfall demo`: the embedded store loaded with the two real programmes
//! shipped as fixtures (OPTIMIST, SJÅ MEG DER JE ER), then the HTTP API and
//! (on 127.0.0.1:5433 when that port is free) the Postgres wire endpoint.
//! Loading is idempotent, so the demo can be started again and again.

use utfall_events::wire::parse_batch;

use crate::cli::ServeArgs;
use crate::http;
use crate::store::open_log;

const PROGRAMMES: [(&str, &str); 2] = [
    ("optimist", include_str!("../../tests/fixtures/optimist/events.ndjson")),
    ("sja-meg", include_str!("../../tests/fixtures/sja-meg/events.ndjson")),
];

/// The demo's SQL endpoint unless `--pg` names another.
const DEMO_PG: &str = "127.0.0.1:5433";

pub async fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    if args.pg.is_none() {
        let address: std::net::SocketAddr = DEMO_PG.parse()?;
        if std::net::TcpListener::bind(address).is_ok() {
            args.pg = Some(address);
        } else {
            println!("port {} is taken: no SQL endpoint (give --pg ADDRESS)", address.port());
        }
    }
    let log = open_log(&args.store).await?;
    for (name, events) in PROGRAMMES {
        let appended = log.append(parse_batch(events.as_bytes())?).await?;
        let new = appended.iter().filter(|a| !a.duplicate).count();
        println!("demo programme {name}: {} events ({new} new)", appended.len());
    }
    http::serve_log(log, args, true).await
}
