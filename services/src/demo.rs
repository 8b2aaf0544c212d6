//! `utfall demo`: the embedded store loaded with the two real programmes
//! shipped as fixtures (OPTIMIST, SJÅ MEG DER JE ER), then the HTTP API.
//! Loading is idempotent, so the demo can be started again and again.

use utfall_events::wire::parse_batch;

use crate::cli::ServeArgs;
use crate::http;
use crate::store::open_log;

const PROGRAMMES: [(&str, &str); 2] = [
    ("optimist", include_str!("../../tests/fixtures/optimist/events.ndjson")),
    ("sja-meg", include_str!("../../tests/fixtures/sja-meg/events.ndjson")),
];

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store).await?;
    for (name, events) in PROGRAMMES {
        let appended = log.append(parse_batch(events.as_bytes())?).await?;
        let new = appended.iter().filter(|a| !a.duplicate).count();
        println!("demo programme {name}: {} events ({new} new)", appended.len());
    }
    http::serve_log(log, args, true).await
}
