//! Test harness for end-to-end tests: the real NATS server and PostgreSQL the
//! test command provides, the built `utfall` binary, and throwaway servers.
//! Nothing here skips: a missing service fails the test with a clear message.

pub mod browser;
pub mod fuzz;
pub mod generated;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use utfall_events::EventLog;

/// The NATS server (with JetStream) the test command provides.
pub fn nats_url() -> String {
    let url = std::env::var("UTFALL_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let addr = url.trim_start_matches("nats://");
    assert!(
        TcpStream::connect_timeout(&resolve(addr), Duration::from_secs(2)).is_ok(),
        "NATS is not reachable at {url}: run the tests with scripts/test, which starts one"
    );
    url
}

fn resolve(addr: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve {addr}"))
}

/// The PostgreSQL server the test command provides (an admin URL).
pub fn database_url() -> String {
    std::env::var("UTFALL_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A size or length a test or bench takes from the environment variable
/// `name`, else `default`.
pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A new, empty PostgreSQL database for one test; its URL.
pub async fn fresh_database() -> String {
    use sqlx::Connection;
    let admin = database_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {admin} (run the tests with scripts/test): {e}"));
    let name = unique("utfall_test_");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin);
    format!("{base}/{name}")
}

/// A new SQLite read-model database in `dir`; its URL.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("read.db").display())
}

/// A name no other test uses, for streams, subjects and databases.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The fixtures shipped with the project.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join("events.ndjson")
}

/// The `utfall` binary of this build.
pub fn utfall_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let bin = dir.join("utfall");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (scripts/test does)",
        bin.display()
    );
    bin
}

/// Which event log a test runs against; both must behave the same.
pub enum Store {
    Embedded(TempDir),
    JetStream {
        url: String,
        stream: String,
        prefix: String,
        /// The read models and the lake of this store's processes.
        dir: TempDir,
    },
}

/// The embedded store in `dir`, as the command line names it.
pub fn embedded_args(dir: &Path) -> utfall::cli::StoreArgs {
    utfall::cli::StoreArgs {
        data_dir: dir.to_path_buf(),
        nats: None,
        nats_stream: "UTFALL_EVENTS".into(),
        nats_subject_prefix: "utfall.ev".into(),
        nats_replicas: 1,
        database: None,
        lake: None,
        master_key_file: None,
        key_store: None,
    }
}

impl Store {
    pub fn embedded() -> Self {
        Store::Embedded(tempfile::tempdir().expect("temporary directory"))
    }

    /// A fresh stream on the shared NATS server.
    pub fn jetstream() -> Self {
        Self::jetstream_at(nats_url())
    }

    pub fn jetstream_at(url: String) -> Self {
        let stream = unique("T");
        let prefix = format!("test.{}", stream.to_lowercase());
        let dir = tempfile::tempdir().expect("temporary directory");
        Store::JetStream {
            url,
            stream,
            prefix,
            dir,
        }
    }

    /// The command-line flags that select this store.
    pub fn args(&self) -> Vec<String> {
        match self {
            Store::Embedded(dir) => vec!["--data-dir".into(), dir.path().display().to_string()],
            Store::JetStream {
                url,
                stream,
                prefix,
                dir,
            } => vec![
                "--data-dir".into(),
                dir.path().display().to_string(),
                "--nats".into(),
                url.clone(),
                "--nats-stream".into(),
                stream.clone(),
                "--nats-subject-prefix".into(),
                prefix.clone(),
            ],
        }
    }

    /// The store as the command line names it (its data directory holds
    /// the master key and the participants' data keys).
    pub fn store_args(&self) -> utfall::cli::StoreArgs {
        match self {
            Store::Embedded(dir) => embedded_args(dir.path()),
            Store::JetStream {
                url,
                stream,
                prefix,
                dir,
            } => utfall::cli::StoreArgs {
                nats: Some(url.clone()),
                nats_stream: stream.clone(),
                nats_subject_prefix: prefix.clone(),
                ..embedded_args(dir.path())
            },
        }
    }

    /// The data directory (of the embedded log, or beside JetStream's):
    /// it holds the master key and the participants' data keys.
    pub fn data_dir(&self) -> &Path {
        match self {
            Store::Embedded(dir) | Store::JetStream { dir, .. } => dir.path(),
        }
    }

    pub async fn open(&self) -> Arc<dyn EventLog> {
        utfall::store::open_log(&self.store_args()).await.expect("open the event log")
    }

    /// Writes `payload` into the participant's stream of `program` as the
    /// log's next message, past every check of utfall's (as a broken disk, a
    /// stray publisher or an older version of utfall would); returns its
    /// log position. `version` is the stream version the embedded store
    /// files it under (JetStream has none of its own).
    pub async fn plant(&self, program: &str, participant: &str, version: u64, event_id: &str, payload: &str) -> u64 {
        match self {
            Store::Embedded(dir) => {
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("events.db");
                let position: i64 = sqlx::query_scalar(
                    "INSERT INTO events (position, event_id, program, participant, version, payload) \
                     SELECT COALESCE(MAX(position), 0) + 1, ?, ?, ?, ?, ? FROM events RETURNING position",
                )
                .bind(event_id)
                .bind(program)
                .bind(participant)
                .bind(version as i64)
                .bind(payload)
                .fetch_one(&pool)
                .await
                .expect("plant");
                position as u64
            }
            Store::JetStream { url, prefix, .. } => {
                let client = async_nats::connect(url.as_str()).await.expect("nats");
                let ack = async_nats::jetstream::new(client)
                    .publish(format!("{prefix}.{program}.{participant}"), payload.to_string().into())
                    .await
                    .expect("publish")
                    .await
                    .expect("ack");
                ack.sequence
            }
        }
    }

    /// Every message of the log as stored, by position, read around utfall.
    pub async fn raw_payloads(&self) -> Vec<(u64, Vec<u8>)> {
        match self {
            Store::Embedded(dir) => {
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("events.db");
                let rows: Vec<(i64, Vec<u8>)> =
                    sqlx::query_as("SELECT position, CAST(payload AS BLOB) FROM events ORDER BY position")
                        .fetch_all(&pool)
                        .await
                        .expect("raw payloads");
                rows.into_iter().map(|(p, payload)| (p as u64, payload)).collect()
            }
            Store::JetStream { url, stream, .. } => {
                let client = async_nats::connect(url.as_str()).await.expect("nats");
                let stream = async_nats::jetstream::new(client)
                    .get_stream(stream)
                    .await
                    .expect("stream");
                let last = stream.get_info().await.expect("stream info").state.last_sequence;
                let mut payloads = Vec::new();
                for position in 1..=last {
                    let message = stream.direct_get(position).await.expect("message");
                    payloads.push((position, message.payload.to_vec()));
                }
                payloads
            }
        }
    }
}

/// Runs each named `async fn(Store)` once against the embedded store and
/// once against JetStream, as `embedded::name` and `jetstream::name`.
#[macro_export]
macro_rules! for_both_stores {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test] async fn $test() { super::$test($crate::Store::embedded()).await })*
        }
        mod jetstream {
            $(#[tokio::test] async fn $test() { super::$test($crate::Store::jetstream()).await })*
        }
    };
}

/// Appends a `utfall gen` history of `participants` to `log`; returns how
/// many events it holds.
pub async fn append_generated(log: &dyn EventLog, participants: u64, seed: u64) -> u64 {
    let args = [
        "gen".to_string(),
        "--participants".into(),
        participants.to_string(),
        "--seed".into(),
        seed.to_string(),
    ];
    let generated = run_utfall(&args, None);
    assert!(generated.status.success(), "utfall gen failed");
    let events = utfall_events::wire::parse_batch(&generated.stdout).expect("generated events parse");
    log.append(events).await.expect("generated events are valid").len() as u64
}

/// utfall's measurement change metric over pairs derived from
/// `measurement_scores` by window functions instead of the pairs the lake
/// projector keeps: the same figures, from the catalog alone, in SQL that
/// DuckDB and PostgreSQL run too.
pub fn measurement_change_over_scores() -> String {
    let pairs = include_str!("measurement_pairs_windows.sql");
    utfall_queries::metrics::MEASUREMENT_CHANGE
        .replace("FROM internal.measurement_pairs m", &format!("FROM ({pairs}) m"))
}

/// The evaluators' two benchmark queries, by name.
pub const EVALUATOR_QUERIES: [(&str, &str); 2] = [
    ("evaluator: status by quarter", include_str!("evaluator/status_by_quarter.sql")),
    (
        "evaluator: COOP/WONCA by consultant",
        include_str!("evaluator/coop_wonca_by_consultant.sql"),
    ),
];

/// The peak resident memory of process `pid` ("self" for this one), in
/// MiB (0 where /proc cannot tell).
pub fn peak_rss_mib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Starts process `pid`'s peak resident memory afresh (Linux: writing 5 to
/// clear_refs), so the next reading is the peak of what follows.
pub fn reset_peak_rss(pid: &str) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// A store plus an analytics lake folder of the test's own, driven through
/// the `utfall` binary.
pub struct Cli {
    pub store: Store,
    lake: TempDir,
}

impl Cli {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            lake: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// The folder of the analytics lake.
    pub fn lake_dir(&self) -> &Path {
        self.lake.path()
    }

    /// Runs `utfall <command>` with the store and lake flags, then `extra`.
    pub fn run(&self, command: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec![command.to_string()];
        args.extend(self.store.args());
        args.extend(["--lake".to_string(), self.lake.path().display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        run_utfall(&args, None)
    }

    /// `utfall serve` over this store and lake, with `extra` flags.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut args = self.store.args();
        args.extend(["--lake".to_string(), self.lake.path().display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Server::start(&args)
    }

    /// The analytics engine over this lake, caught up with the store.
    pub fn analytics(&self) -> utfall_queries::Analytics {
        let out = self.run("sql", &["SELECT 1"]);
        assert!(
            out.status.success(),
            "catch-up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let limits = utfall_queries::Limits {
            memory_bytes: 1 << 30,
            timeout: std::time::Duration::from_secs(120),
            ..utfall_queries::Limits::default()
        };
        utfall_queries::Analytics::new(self.lake.path(), limits)
    }

    /// Imports an event file; it must be accepted.
    pub fn import(&self, file: &Path) {
        let out = self.run("import", &[&file.display().to_string()]);
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs a Python script of the tests (`script`, relative to the tests
/// crate) on `arg` with UTFALL_TEST_PYTHON (scripts/test's, with openpyxl,
/// pandas and pyarrow), and returns the JSON it prints.
pub fn python_json(script: &str, arg: &Path) -> serde_json::Value {
    let python = std::env::var("UTFALL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .arg(arg)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (set UTFALL_TEST_PYTHON to a Python with openpyxl, pandas, pyarrow): {e}")
        });
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} prints JSON: {e}"))
}

/// Runs `utfall` with arguments, optionally feeding standard input.
pub fn run_utfall(args: &[String], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(utfall_bin())
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start utfall");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("utfall output")
}

/// A running `utfall serve` on a free port; killed when dropped. Its
/// requests sign in with the admin token the server wrote on first start.
pub struct Server {
    child: Child,
    pub base: String,
    /// The token in `<data-dir>/admin.token`.
    pub admin_token: String,
}

impl Server {
    /// Kills the server without warning (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn start(extra: &[String]) -> Self {
        Self::start_command("serve", extra)
    }

    /// Sends SIGTERM (as `docker stop` and systemd do) and waits, at most
    /// 20 s, for the server to exit; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "kill -TERM failed");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `utfall <command>` for a command that ends up serving HTTP.
    pub fn start_command(command: &str, extra: &[String]) -> Self {
        let mut args = vec![command.to_string(), "--http".into(), "127.0.0.1:0".into()];
        // The demo takes port 5433 for SQL when it looks free: two demos
        // started at once (tests run in parallel) would race for it.
        if command == "demo" && !extra.iter().any(|a| a == "--pg") {
            args.extend(["--pg".into(), "127.0.0.1:0".into()]);
        }
        args.extend_from_slice(extra);
        let mut child = Command::new(utfall_bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start utfall serve");
        let stdout = child.stdout.take().expect("server stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = lines
            .find_map(|line| line.ok()?.strip_prefix("utfall listening on ").map(str::to_string))
            .unwrap_or_else(|| panic!("utfall {} did not start", args.join(" ")));
        let data_dir = args
            .iter()
            .position(|a| a == "--data-dir")
            .map_or("utfall-data".into(), |i| PathBuf::from(&args[i + 1]));
        let admin_token = std::fs::read_to_string(data_dir.join("admin.token"))
            .expect("the server wrote its admin token")
            .trim()
            .to_string();
        Server {
            child,
            base,
            admin_token,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client that signs in as the admin.
    pub fn client(&self) -> reqwest::Client {
        client_with(&self.admin_token)
    }

    /// `GET path` as the admin.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client().get(self.url(path)).send().await.expect("GET")
    }

    /// Waits (at most 30 s) until every projection has folded the whole log
    /// (`/v1/projections` shows no lag), so what the log held when the
    /// server started is in the read models and the lake.
    pub async fn caught_up(&self) {
        self.caught_up_within(std::time::Duration::from_secs(30)).await;
    }

    /// [`Server::caught_up`], waiting at most `limit`.
    pub async fn caught_up_within(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        loop {
            let standings: serde_json::Value = self.get("/v1/projections").await.json().await.expect("JSON");
            let done = standings
                .as_array()
                .is_some_and(|all| !all.is_empty() && all.iter().all(|p| p["lag"] == 0));
            if done {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "the projections did not catch up: {standings}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Posts `events` to `POST /v1/events` as NDJSON; the answer's status.
    pub async fn post_events(&self, events: &[serde_json::Value]) -> reqwest::StatusCode {
        self.client()
            .post(self.url("/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(wire::ndjson(events))
            .send()
            .await
            .expect("POST /v1/events")
            .status()
    }
}

/// A server's Postgres wire endpoint and who signs in to it.
#[derive(Clone, Debug)]
pub struct Pg {
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl Pg {
    /// The admin of `server` on its endpoint at `port`.
    pub fn admin(server: &Server, port: u16) -> Self {
        Self {
            port,
            user: "admin".into(),
            password: server.admin_token.clone(),
        }
    }

    /// The same endpoint, signing in as someone else.
    pub fn as_user(&self, user: &str, password: &str) -> Self {
        Self {
            port: self.port,
            user: user.into(),
            password: password.into(),
        }
    }

    /// `program` (psql, a Python with psycopg) with libpq's environment
    /// set to sign in here.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGPASSWORD", &self.password)
            .env("PGDATABASE", "utfall");
        command
    }
}

/// A client that sends `token` as its bearer credential.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A NATS server of our own, for tests that stop it. Uses the binary named by
/// `UTFALL_TEST_NATS_SERVER`, else `nats-server` on PATH.
pub struct ThrowawayNats {
    child: Option<Child>,
    port: u16,
    pub url: String,
    dir: TempDir,
    /// Flags beyond port and storage (a cluster node's name and routes).
    flags: Vec<String>,
}

impl ThrowawayNats {
    pub fn start() -> Self {
        Self::start_with(free_port(), Vec::new())
    }

    fn start_with(port: u16, flags: Vec<String>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut nats = ThrowawayNats {
            child: None,
            port,
            url: format!("nats://127.0.0.1:{port}"),
            dir,
            flags,
        };
        nats.restart();
        nats
    }

    /// `nodes` servers routed into one JetStream cluster on loopback ports.
    pub fn cluster(nodes: usize) -> Vec<Self> {
        let routes: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let all_routes = routes
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        (0..nodes)
            .map(|i| {
                let flags = [
                    "--name".to_string(),
                    format!("node-{i}"),
                    "--cluster_name".into(),
                    "utfall-test".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{}", routes[i]),
                    "--routes".into(),
                    all_routes.clone(),
                ];
                Self::start_with(free_port(), flags.to_vec())
            })
            .collect()
    }

    /// Starts the server (again) on the same port and storage directory.
    pub fn restart(&mut self) {
        self.stop();
        let bin = std::env::var("UTFALL_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.path())
            .args(&self.flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (set UTFALL_TEST_NATS_SERVER or use scripts/test): {e}"));
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().expect("address");
        wait_for(|| TcpStream::connect(addr).is_ok(), "throwaway NATS to listen");
    }

    /// Kills the server without warning.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ThrowawayNats {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls until `ready` holds, failing after 10 s.
pub fn wait_for(mut ready: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builders for events as clients send them (JSON), so tests go through the
/// real parser.
pub mod wire {
    use serde_json::{Value, json};
    use utfall_events::NewEvent;
    use utfall_events::wire::parse_batch;

    pub fn id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    pub fn program_defined(program: &str) -> Value {
        json!({"event_id": id(), "program": program, "type": "program_defined", "occurred_on": "2020-01-01",
               "data": {"name": "Test programme", "organisation": "Nav Test", "country": "NO", "starts_on": "2020-01-01"}})
    }

    pub fn enrolled(program: &str, participant: &str, on: &str) -> Value {
        json!({"event_id": id(), "program": program, "participant": participant, "type": "participant_enrolled",
               "occurred_on": on, "data": {"gender": "female", "birth_year": 1990}})
    }

    pub fn contact(program: &str, participant: &str, on: &str) -> Value {
        json!({"event_id": id(), "program": program, "participant": participant, "type": "contact_recorded",
               "occurred_on": on, "data": {"kind": "conversation", "minutes": 45}})
    }

    pub fn status_changed(program: &str, participant: &str, on: &str, status: &str) -> Value {
        json!({"event_id": id(), "program": program, "participant": participant, "type": "status_changed",
               "occurred_on": on, "data": {"status": status}})
    }

    pub fn exited(program: &str, participant: &str, on: &str) -> Value {
        json!({"event_id": id(), "program": program, "participant": participant, "type": "participant_exited",
               "occurred_on": on, "data": {"reason": "completed"}})
    }

    pub fn retracted(program: &str, participant: &str, on: &str, target: &Value) -> Value {
        json!({"event_id": id(), "program": program, "participant": participant, "type": "event_retracted",
               "occurred_on": on, "data": {"event_id": target["event_id"], "reason": "entered_in_error"}})
    }

    /// NDJSON text of the events.
    pub fn ndjson(events: &[Value]) -> String {
        events.iter().map(|e| format!("{e}\n")).collect()
    }

    /// Parses through the wire parser; the events must be valid on their own.
    pub fn parse(events: &[Value]) -> Vec<NewEvent> {
        parse_batch(ndjson(events).as_bytes()).expect("test events are well-formed")
    }
}

/// Kills `utfall project` at pseudo-random moments while it catches up,
/// restarting it each time, then lets it finish; returns, once the read
/// models at `database` (or the embedded store's) reach `head`, the
/// positions they stood at after each kill. Each run lasts a pseudo-random
/// time up to `longest_run` before its kill.
pub async fn project_with_kills(
    store: &Store,
    database: Option<&str>,
    kills: usize,
    longest_run: Duration,
    head: u64,
) -> Vec<u64> {
    let mut args = vec!["project".to_string()];
    args.extend(store.args());
    if let Some(url) = database {
        args.extend(["--database".to_string(), url.to_string()]);
    }
    let start = || {
        Command::new(utfall_bin())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start utfall project")
    };
    // xorshift: reproducible kill moments without another dependency.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let longest = longest_run.as_millis().max(200) as u64;
    let mut next_pause = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Duration::from_millis(100 + state % (longest - 100))
    };
    let url = match (database, store) {
        (Some(url), _) => url.to_string(),
        (None, Store::Embedded(dir)) => sqlite_url(dir.path()),
        (None, Store::JetStream { .. }) => panic!("a JetStream store needs a read-model database"),
    };
    let mut positions = Vec::new();
    for _ in 0..kills {
        let mut child = start();
        tokio::time::sleep(next_pause()).await;
        child.kill().expect("SIGKILL the projector");
        child.wait().expect("reap the projector");
        let models = utfall_projections::ReadModels::connect(&url)
            .await
            .expect("read models after a kill");
        positions.push(models.position().await.expect("position after a kill"));
    }
    let mut child = start();
    let started = Instant::now();
    loop {
        if let Ok(models) = utfall_projections::ReadModels::connect(&url).await
            && models.position().await.ok() == Some(head)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the projector never caught up to {head}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    positions
}

/// A PostgreSQL cluster of our own, for tests that restart it: `initdb` into
/// a temporary directory (as the `postgres` user when run as root, since
/// PostgreSQL refuses root), on a free port.
pub struct ThrowawayPostgres {
    bindir: PathBuf,
    dir: TempDir,
    pub port: u16,
}

impl ThrowawayPostgres {
    pub fn start() -> Self {
        let bindir = postgres_bindir();
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data directory");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "cannot hand the cluster directory to the postgres user"
            );
        }
        let postgres = ThrowawayPostgres {
            bindir,
            dir,
            port: free_port(),
        };
        let status = postgres
            .as_postgres("initdb")
            .args(["-U", "postgres", "--auth=trust", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        postgres.pg_ctl("start");
        postgres
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (as a crash would) and starts it again.
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    fn as_postgres(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let status = self
            .as_postgres("pg_ctl")
            .args(["-D"])
            .arg(&data)
            .args(["-m", "immediate", "-w", "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &options, action])
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {action} failed");
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-D"])
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The folder of PostgreSQL's server programs: `UTFALL_TEST_PG_BINDIR`, else
/// where `initdb` on PATH lives, else the newest /usr/lib/postgresql/*/bin.
fn postgres_bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("UTFALL_TEST_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("initdb"))
        .find(|p| p.exists())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(dir) = on_path {
        return dir;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL server programs (initdb) found: run the tests with scripts/test")
}

/// The HTTP API in-process (`http::app()`, driven with `oneshot`) over an
/// embedded store in `dir`, with its first admin's token. It answers the
/// host `utfall.nav.example` beside the loopback names.
pub async fn in_process_app(dir: &Path, pressure: utfall::http::pressure::Pressure) -> (axum::Router, String) {
    use utfall::access::{Access, secrets};
    use utfall::http::{AllowedHosts, AppState, RequestLimits, app};
    use utfall_projections::{Lake, ProjectorStatus, ReadModels};
    use utfall_queries::{Analytics, Limits};

    let access = Access::connect(&format!("sqlite://{}?mode=rwc", dir.join("events.db").display()))
        .await
        .expect("access database");
    secrets::first_admin(&access.tokens, dir).await.expect("first admin");
    let token = secrets::read_admin_token(dir).expect("admin token");
    let lake = Arc::new(Lake::open(&dir.join("lake")).expect("lake"));
    let state = AppState {
        log: utfall::store::open_log(&embedded_args(dir)).await.expect("log"),
        store: "embedded (test)".into(),
        models: Arc::new(ReadModels::connect(&sqlite_url(dir)).await.expect("read models")),
        projector: Arc::new(ProjectorStatus::default()),
        analytics: Analytics::new(lake.root(), Limits::default()),
        lake,
        lake_projector: Arc::new(ProjectorStatus::default()),
        extracts: Arc::new(Vec::new()),
        started: Instant::now(),
        access,
        pseudonym_key: Arc::from(&[7u8; 32][..]),
        pressure,
        summaries: Arc::default(),
    };
    let limits = RequestLimits {
        max_body: 1 << 20,
        body_timeout: Duration::from_secs(5),
        allowed_hosts: AllowedHosts::new("0.0.0.0".parse().expect("ip"), &["utfall.nav.example".into()]),
    };
    (app(state, limits), token)
}
