//! Ingest benchmark: import `utfall gen` events into the embedded store and
//! into JetStream, and post them to `utfall serve` over HTTP into JetStream,
//! beside a raw JetStream publish loop with messages of the same size on
//! the same server, all in one run. Prints a table, then what
//! sealing participants' data costs: every imported event encoded and
//! decoded in clear (the stored form before sealing) and sealed, side by
//! side; and the read models and the lake rebuilt from the embedded log
//! as imported (sealed) and from a copy with every event stored in clear.
//!
//!     cargo bench -p utfall --bench ingest
//!
//! The HTTP run is the release `utfall serve` with `--projectors lake`
//! (no read models: this measures the write path, with the lake's
//! projector beside it as in production), fed by `HTTP_CLIENTS`
//! connections posting batches of whole participants' histories.
//!
//! UTFALL_BENCH_EVENTS (default 1000000) sets the size; UTFALL_BENCH_NATS_URL
//! (default nats://127.0.0.1:4222) the server.

use std::collections::VecDeque;
use std::time::Instant;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use utfall::cli::{GenArgs, ImportArgs, StoreArgs};
use utfall::{import, synthetic};

/// `utfall gen` writes about this many events per participant.
const EVENTS_PER_PARTICIPANT: u64 = 46;

fn store_args(data_dir: std::path::PathBuf, nats: Option<(String, String)>) -> StoreArgs {
    let (url, stream) = nats.map(|(u, s)| (Some(u), s)).unwrap_or((None, "UNUSED".into()));
    StoreArgs {
        data_dir,
        nats: url,
        nats_subject_prefix: format!("bench.{}", stream.to_lowercase()),
        nats_stream: stream,
        nats_replicas: 1,
        database: None,
        lake: None,
        master_key_file: None,
        key_store: None,
    }
}

async fn timed_import(store: StoreArgs, file: &std::path::Path) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let outcome = import::run(ImportArgs {
        store,
        files: vec![file.to_path_buf()],
        batch_size: 5000,
    })
    .await?;
    anyhow::ensure!(outcome.rejected == 0, "generated events were rejected");
    Ok((outcome.stored, started.elapsed().as_secs_f64()))
}

async fn raw_publish(url: &str, count: u64, size: usize) -> anyhow::Result<f64> {
    let client = async_nats::connect(url).await?;
    let context = jetstream::new(client);
    let name = format!("BENCHRAW{}", std::process::id());
    context
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.>", name.to_lowercase())],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let payload = Bytes::from(vec![b'x'; size]);
    let subjects = (count / EVENTS_PER_PARTICIPANT).max(1);
    let started = Instant::now();
    let mut in_flight = VecDeque::new();
    for i in 0..count {
        let subject = format!("{}.p.{}", name.to_lowercase(), i % subjects);
        in_flight.push_back(context.publish(subject, payload.clone()).await?);
        if in_flight.len() >= 1000
            && let Some(ack) = in_flight.pop_front()
        {
            ack.await?;
        }
    }
    for ack in in_flight {
        ack.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    context.delete_stream(&name).await?;
    Ok(seconds)
}

/// Connections posting at once, and events per batch (whole participants).
const HTTP_CLIENTS: usize = 16;
const HTTP_BATCH: usize = 1000;

/// The file's events as HTTP batches: the programme events first, alone
/// (every later batch needs them), then whole participants' histories in
/// their order, so no two batches hold the same participant and they can
/// be posted in any order.
fn batches(file: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(file)?;
    let mut programme = String::new();
    let mut order: Vec<String> = Vec::new();
    let mut histories: std::collections::HashMap<String, Vec<&str>> = std::collections::HashMap::new();
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        match event["participant"].as_str() {
            None => programme.push_str(&format!("{line}\n")),
            Some(participant) => histories
                .entry(participant.to_string())
                .or_insert_with(|| {
                    order.push(participant.to_string());
                    Vec::new()
                })
                .push(line),
        }
    }
    let mut batches = vec![programme];
    let mut batch: Vec<&str> = Vec::new();
    for participant in &order {
        batch.extend(&histories[participant]);
        if batch.len() >= HTTP_BATCH {
            batches.push(batch.join("\n") + "\n");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        batches.push(batch.join("\n") + "\n");
    }
    Ok(batches)
}

/// Posts the batches to a fresh `utfall serve` over JetStream; returns the
/// events acknowledged, the seconds, and how many posts were answered busy.
async fn http_ingest(url: &str, stream: &str, file: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<(u64, f64, u64)> {
    use std::io::BufRead;
    use std::sync::atomic::{AtomicU64, Ordering};

    let batches = batches(file)?;
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_utfall"))
        .args(["serve", "--http", "127.0.0.1:0", "--projectors", "lake", "--nats", url, "--nats-stream", stream])
        .args(["--nats-subject-prefix", &format!("bench.{}", stream.to_lowercase())])
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = server.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let address = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("utfall listening on ").map(String::from))
        .ok_or_else(|| anyhow::anyhow!("utfall serve did not start"))?;
    let token = utfall::access::secrets::read_admin_token(dir).ok_or_else(|| anyhow::anyhow!("no admin token"))?;
    let client = reqwest::Client::new();
    let busy = std::sync::Arc::new(AtomicU64::new(0));
    let post = {
        let (client, busy) = (client.clone(), busy.clone());
        let endpoint = format!("{address}/v1/events");
        move |body: String| {
            let (client, busy, endpoint, token) = (client.clone(), busy.clone(), endpoint.clone(), token.clone());
            async move {
                loop {
                    let answer = client
                        .post(&endpoint)
                        .bearer_auth(&token)
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await?;
                    match answer.status() {
                        reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                            busy.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                        status if status.is_success() => return anyhow::Ok(()),
                        status => anyhow::bail!("a batch was answered {status}: {}", answer.text().await?),
                    }
                }
            }
        }
    };
    let mut rest = batches.into_iter();
    let started = Instant::now();
    post(rest.next().unwrap_or_default()).await?;
    let queue = std::sync::Arc::new(std::sync::Mutex::new(rest));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..HTTP_CLIENTS {
        let (queue, post) = (queue.clone(), post.clone());
        clients.spawn(async move {
            loop {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("a client panicked"))?.next();
                match next {
                    Some(batch) => post(batch).await?,
                    None => return anyhow::Ok(()),
                }
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    let context = jetstream::new(async_nats::connect(url).await?);
    let stored = context.get_stream(stream).await?.info().await?.state.messages;
    context.delete_stream(stream).await?;
    Ok((stored, seconds, busy.load(Ordering::Relaxed)))
}

/// Microseconds per event, and seconds to read the log back.
struct SealingCosts {
    encode_clear: f64,
    encode_sealed: f64,
    decode_clear: f64,
    decode_sealed: f64,
    read_all: f64,
    /// Seconds to rebuild (read models, lake) from the log in clear, then sealed.
    rebuilds: [(f64, f64); 2],
}

async fn sealing_costs(store: StoreArgs) -> anyhow::Result<SealingCosts> {
    let log = utfall::store::open_log(&store).await?;
    let sealing = utfall::store::open_sealing(&store).await?;
    let started = Instant::now();
    let mut events = Vec::new();
    loop {
        let after = events.last().map(|e: &utfall_events::StoredEvent| e.position).unwrap_or(0);
        let page = log.read(after, 5000).await?;
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }
    let read_all = started.elapsed().as_secs_f64();
    let per_event = |started: Instant| started.elapsed().as_secs_f64() * 1e6 / events.len().max(1) as f64;

    let started = Instant::now();
    let clear = events
        .iter()
        .map(|e| serde_json::to_string(&e.event))
        .collect::<Result<Vec<_>, _>>()?;
    let encode_clear = per_event(started);
    let started = Instant::now();
    let sealed = events
        .iter()
        .map(|e| sealing.seal(&e.event))
        .collect::<Result<Vec<_>, _>>()?;
    let encode_sealed = per_event(started);
    let started = Instant::now();
    for payload in &clear {
        serde_json::from_str::<utfall_events::RecordedEvent>(payload)?;
    }
    let decode_clear = per_event(started);
    let started = Instant::now();
    for (event, payload) in events.iter().zip(&sealed) {
        sealing.open(event.position, payload.as_bytes()).await?;
    }
    let decode_sealed = per_event(started);

    // The same log with every event stored in clear, as before sealing.
    let clear_dir = store.data_dir.with_file_name("embedded-in-clear");
    std::fs::create_dir_all(&clear_dir)?;
    let file = |dir: &std::path::Path| format!("sqlite://{}", dir.join("events.db").display());
    let pool = sqlx::SqlitePool::connect(&file(&store.data_dir)).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(clear_dir.join("events.db").display().to_string())
        .execute(&pool)
        .await?;
    let pool = sqlx::SqlitePool::connect(&file(&clear_dir)).await?;
    let mut tx = pool.begin().await?;
    for (event, payload) in events.iter().zip(&clear) {
        sqlx::query("UPDATE events SET payload = ? WHERE position = ?")
            .bind(payload)
            .bind(event.position as i64)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let in_clear = StoreArgs {
        data_dir: clear_dir,
        master_key_file: Some(store.data_dir.join(utfall::store::MASTER_KEY_FILE)),
        ..store.clone()
    };
    let mut rebuilds = [(0.0, 0.0); 2];
    for (i, args) in [&in_clear, &store].into_iter().enumerate() {
        let log = utfall::store::open_log(args).await?;
        let models = utfall_projections::ReadModels::connect(&format!(
            "sqlite://{}?mode=rwc",
            args.data_dir.join("read.db").display()
        ))
        .await?;
        let started = Instant::now();
        models.rebuild(log.as_ref(), 5000).await?;
        let read_models = started.elapsed().as_secs_f64();
        let started = Instant::now();
        utfall_projections::Lake::rebuild(&args.data_dir.join("lake"), log.as_ref(), 50_000).await?;
        rebuilds[i] = (read_models, started.elapsed().as_secs_f64());
    }
    Ok(SealingCosts {
        encode_clear,
        encode_sealed,
        decode_clear,
        decode_sealed,
        read_all,
        rebuilds,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: u64 = std::env::var("UTFALL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let url = std::env::var("UTFALL_BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("gen.ndjson");

    let started = Instant::now();
    synthetic::run(GenArgs {
        participants: events / EVENTS_PER_PARTICIPANT,
        seed: 1,
        out: Some(file.clone()),
    })?;
    let generated = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&file)?.len();
    let lines = std::fs::read(&file)?.iter().filter(|b| **b == b'\n').count() as u64;
    let size = (bytes / lines.max(1)) as usize;
    eprintln!("generated {lines} events ({size} bytes on average) in {generated:.1} s");

    let (embedded, embedded_s) = timed_import(store_args(dir.path().join("embedded"), None), &file).await?;
    let stream = format!("BENCH{}", std::process::id());
    let (jetstream, jetstream_s) = timed_import(
        store_args(dir.path().join("unused"), Some((url.clone(), stream.clone()))),
        &file,
    )
    .await?;
    let http_stream = format!("BENCHHTTP{}", std::process::id());
    let (over_http, http_s, busy) = http_ingest(&url, &http_stream, &file, &dir.path().join("http")).await?;
    anyhow::ensure!(over_http == lines, "{over_http} of {lines} events posted over HTTP are in the stream");
    let raw_s = raw_publish(&url, lines, size).await?;
    let sealing = sealing_costs(store_args(dir.path().join("embedded"), None)).await?;
    let client = async_nats::connect(&url).await?;
    jetstream::new(client).delete_stream(&stream).await?;

    println!();
    println!("ingest of {lines} `utfall gen` events ({size} B each on average), NATS at {url}");
    println!("{:<44} {:>10} {:>12} {:>10}", "what", "seconds", "events/s", "vs raw");
    let raw_rate = lines as f64 / raw_s;
    for (what, n, s) in [
        ("utfall import, embedded (SQLite)", embedded, embedded_s),
        ("utfall import, JetStream", jetstream, jetstream_s),
        ("POST /v1/events, JetStream (utfall serve)", over_http, http_s),
        ("raw JetStream publish, same sizes (async-nats)", lines, raw_s),
    ] {
        let rate = n as f64 / s;
        println!("{what:<44} {s:>10.1} {rate:>12.0} {:>9.2}x", rate / raw_rate);
    }
    println!("(HTTP: {HTTP_CLIENTS} clients, batches of about {HTTP_BATCH} events, {busy} posts answered busy and retried)");
    println!();
    println!("{:<44} {:>10} {:>12}", "per event, the same events", "in clear", "sealed");
    println!(
        "{:<44} {:>8.2}µs {:>10.2}µs",
        "encode (form 1: JSON; form 2: JSON + seal)", sealing.encode_clear, sealing.encode_sealed
    );
    println!(
        "{:<44} {:>8.2}µs {:>10.2}µs",
        "decode (form 1: JSON; form 2: open + JSON)", sealing.decode_clear, sealing.decode_sealed
    );
    let import_us = embedded_s * 1e6 / embedded as f64;
    println!(
        "sealing adds {:.2} µs to each event's import ({:.1} % of the embedded import's {import_us:.1} µs) and {:.2} µs to each event read; reading the whole embedded log back: {:.1} s",
        sealing.encode_sealed - sealing.encode_clear,
        100.0 * (sealing.encode_sealed - sealing.encode_clear) / import_us,
        sealing.decode_sealed - sealing.decode_clear,
        sealing.read_all
    );
    let [(models_clear, lake_clear), (models_sealed, lake_sealed)] = sealing.rebuilds;
    let rate = |s: f64| embedded as f64 / s;
    println!();
    println!("{:<44} {:>10} {:>12} {:>10}", "rebuild from the embedded log", "in clear", "sealed", "sealed/clear");
    for (what, clear, sealed) in [
        ("read models (SQLite), events/s", models_clear, models_sealed),
        ("lake, events/s", lake_clear, lake_sealed),
    ] {
        println!("{what:<44} {:>10.0} {:>12.0} {:>9.2}x", rate(clear), rate(sealed), rate(sealed) / rate(clear));
    }
    Ok(())
}
