//! The command line: every command and flag `utfall` takes.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "utfall",
    version,
    about = "Outcome tracking for social-inclusion and employment programmes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Load the two real demo programmes into the store, then run the HTTP API.
    Demo(ServeArgs),
    /// Run only the projectors: keep the read models and the lake current
    /// (or, with --programs, some programmes' read models).
    Project(ProjectArgs),
    /// Rebuild the read models from the whole log and swap them in at once.
    Rebuild(RebuildArgs),
    /// Validate event files (NDJSON or a JSON array; `-` for stdin) and append them to the log.
    /// Each file is all or nothing: it is checked whole first, and a file with a rejected
    /// event writes nothing. The other files are imported; the exit code is 1 if any was rejected.
    Import(ImportArgs),
    /// Write a realistic synthetic event history (NDJSON), deterministic for a seed.
    Gen(GenArgs),
    /// Print the JSON Schema of the event wire format.
    Schema,
    /// Print a programme's outcomes against its targets.
    Outcomes(OutcomesArgs),
    /// Run a read-only SQL query over the analytics catalog.
    Sql(SqlArgs),
    /// Write a funder extract of a programme for a period, with small cells suppressed;
    /// or reproduce or verify one.
    Extract(ExtractArgs),
    /// Set aside an unreadable event so that projectors and writers go on
    /// past it (the log itself is not changed); or list those set aside.
    Quarantine(QuarantineArgs),
    /// Create, grant, list and revoke the principals and their API tokens (roles per programme).
    Token(TokenArgs),
    /// Print the audit log: who read or wrote what, and when (admin's view, from the operator's files).
    Audit(AuditArgs),
    /// Copy an embedded log into a new data directory with every participant's data sealed
    /// (for logs written before sealing existed); checks every event reads back the same.
    MigrateEncrypt(crate::migrate::MigrateEncryptArgs),
    /// Manage the master key that opens the participants' data keys.
    Keys(crate::keys::KeysArgs),
    /// Erase a participant: destroy their data key, so the log's copy of their data can never be
    /// read again, and remove them from the read models and the lake. Audited; cannot be undone.
    Erase(crate::erasure::EraseArgs),
}

/// Which event log to use: the embedded store (default) or JetStream.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Folder of the embedded store (log in a local SQLite file).
    #[arg(long, env = "UTFALL_DATA_DIR", default_value = "utfall-data")]
    pub data_dir: PathBuf,
    /// NATS server URL (several, comma-separated, for a cluster): use JetStream as the log
    /// instead of the embedded store.
    #[arg(long, env = "UTFALL_NATS_URL")]
    pub nats: Option<String>,
    /// JetStream stream name (lets two deployments share one NATS server).
    #[arg(long, env = "UTFALL_NATS_STREAM", default_value = "UTFALL_EVENTS")]
    pub nats_stream: String,
    /// Subject prefix of the JetStream stream.
    #[arg(long, env = "UTFALL_NATS_SUBJECT_PREFIX", default_value = "utfall.ev")]
    pub nats_subject_prefix: String,
    /// JetStream replicas for the stream when it is created (1, 3 or 5).
    #[arg(long, env = "UTFALL_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,
    /// Read-model database (`postgres://…`); default: `read.db` (SQLite) in the data directory.
    #[arg(long, env = "UTFALL_DATABASE_URL")]
    pub database: Option<String>,
    /// Folder of the analytics lake (Parquet); default: `lake` in the data directory.
    #[arg(long, env = "UTFALL_LAKE_DIR")]
    pub lake: Option<PathBuf>,
    /// File holding the master key (64 hexadecimal digits) that opens the
    /// participants' data keys; default: `master.key` in the data directory,
    /// made when missing. `UTFALL_MASTER_KEY` may give the key itself.
    #[arg(long, env = "UTFALL_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Database of the participants' data keys (`postgres://…`, shared by every host of a
    /// JetStream deployment); default: `events.db` (SQLite) in the data directory. It belongs
    /// with the log: without it the log's participant data cannot be read.
    #[arg(long, env = "UTFALL_KEY_STORE_URL")]
    pub key_store: Option<String>,
}

#[derive(Args, Debug)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Which projection to rebuild: `read_models` (all relational read models) or `lake`.
    #[arg(long, default_value = "read_models", value_parser = ["read_models", "lake"])]
    pub projection: String,
}

#[derive(Args, Debug)]
pub struct ProjectArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Fold only these programmes into the read models (comma-separated), each with its own
    /// checkpoint, and leave the lake to `serve`: several such processes over disjoint sets
    /// share the read models' work (run `serve --projectors lake` beside them).
    #[arg(long, env = "UTFALL_PROJECT_PROGRAMS", value_delimiter = ',', value_parser = parse_programme)]
    pub programs: Vec<utfall_events::ProgramName>,
}

/// The projectors `serve` runs itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Projectors {
    /// The read models and the lake.
    All,
    /// The lake only: `utfall project --programs` processes keep the read models.
    Lake,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address of the HTTP API (port 0 picks a free port).
    #[arg(long, env = "UTFALL_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Address of the Postgres wire protocol endpoint for SQL clients (psql, R, Python); off when absent.
    #[arg(long, env = "UTFALL_PG")]
    pub pg: Option<SocketAddr>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The projectors this server runs: `all`, or `lake` when `utfall project --programs`
    /// processes keep the read models (the dashboard then follows their checkpoints).
    #[arg(long, env = "UTFALL_PROJECTORS", value_enum, default_value = "all")]
    pub projectors: Projectors,
    /// Extract schedule (TOML, see the README): extracts are made as periods close.
    #[arg(long, env = "UTFALL_SCHEDULE")]
    pub schedule: Option<PathBuf>,
    /// Folder of funder extracts served by GET /v1/extracts (besides the schedule's).
    #[arg(long, env = "UTFALL_EXTRACTS", default_value = "extracts")]
    pub extracts: PathBuf,
    /// SQL queries running at once, on each of HTTP and the Postgres wire endpoint; one more
    /// is answered at once (HTTP 503 with Retry-After, SQLSTATE 53000) rather than queued.
    #[arg(long, env = "UTFALL_MAX_QUERIES", default_value_t = 8)]
    pub max_queries: usize,
    /// Event batches being stored at once; one more is answered 503 with Retry-After.
    #[arg(long, env = "UTFALL_MAX_INGEST_BATCHES", default_value_t = 64)]
    pub max_ingest_batches: usize,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "UTFALL_MAX_BODY", default_value_t = 16 * 1024 * 1024)]
    pub max_body: usize,
    /// Host names the HTTP API answers to besides localhost and the address it
    /// is bound to (comma-separated); other `Host` headers are refused (DNS rebinding).
    #[arg(long, env = "UTFALL_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Most connections open at once, on each of HTTP and the Postgres wire endpoint.
    #[arg(long, env = "UTFALL_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (also the idle time
    /// allowed between requests on one connection).
    #[arg(long, env = "UTFALL_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, env = "UTFALL_BODY_TIMEOUT", default_value_t = 60)]
    pub body_timeout: u64,
    /// Key (32 bytes or more) of the pseudonyms evaluators see instead of
    /// participant ids; default: `pseudonym.key` in the data directory, made on first use.
    #[arg(long, env = "UTFALL_PSEUDONYM_KEY_FILE")]
    pub pseudonym_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// PEM certificate chain for TLS on HTTP and the Postgres wire endpoint.
    #[arg(long, env = "UTFALL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, `BEGIN PRIVATE KEY`) of the certificate.
    #[arg(long, env = "UTFALL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve without TLS on addresses other machines reach (behind a TLS
    /// proxy or on a private network); without it such addresses need TLS.
    #[arg(long, env = "UTFALL_INSECURE_LISTEN")]
    pub insecure_listen: bool,
}

/// An OpenID Connect provider whose bearer JWTs are accepted besides API tokens.
#[derive(Args, Debug, Clone)]
pub struct OidcArgs {
    /// The issuer (`iss`) JWTs must name; turns OIDC on.
    #[arg(long, env = "UTFALL_OIDC_ISSUER", requires_all = ["oidc_audience", "oidc_jwks"])]
    pub oidc_issuer: Option<String>,
    /// The audience (`aud`) JWTs must name: utfall's client id at the provider.
    #[arg(long, env = "UTFALL_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// The provider's signing keys: a JWKS file, or its https:// URL.
    #[arg(long, env = "UTFALL_OIDC_JWKS")]
    pub oidc_jwks: Option<String>,
    /// The claim naming the person (the principal is `oidc:<name>`).
    #[arg(long, env = "UTFALL_OIDC_NAME_CLAIM", default_value = "sub")]
    pub oidc_name_claim: String,
    /// The claim listing grants as `role:programme` strings (or `admin`).
    #[arg(long, env = "UTFALL_OIDC_GRANTS_CLAIM", default_value = "utfall_grants")]
    pub oidc_grants_claim: String,
}

impl OidcArgs {
    pub fn config(&self) -> Option<crate::access::oidc::OidcConfig> {
        Some(crate::access::oidc::OidcConfig {
            issuer: self.oidc_issuer.clone()?,
            audience: self.oidc_audience.clone()?,
            jwks: self.oidc_jwks.clone()?,
            name_claim: self.oidc_name_claim.clone(),
            grants_claim: self.oidc_grants_claim.clone(),
        })
    }
}

impl ServeArgs {
    pub fn pseudonym_key_path(&self) -> PathBuf {
        self.pseudonym_key_file
            .clone()
            .unwrap_or_else(|| self.store.data_dir.join(crate::access::secrets::PSEUDONYM_KEY_FILE))
    }

    pub fn request_limits(&self) -> crate::http::RequestLimits {
        crate::http::RequestLimits {
            max_body: self.max_body,
            body_timeout: std::time::Duration::from_secs(self.body_timeout),
            allowed_hosts: crate::http::AllowedHosts::new(self.http.ip(), &self.allowed_hosts),
        }
    }
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Event files; `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Events per append (one transaction in the embedded store; larger
    /// batches write fewer index pages per event).
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Number of participants (spread over several programmes).
    #[arg(long, default_value_t = 1000)]
    pub participants: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output file; standard output when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Limits on analytics queries.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Memory one query may hold for sorts, joins and aggregations, in MiB.
    #[arg(long, env = "UTFALL_QUERY_MEMORY_MB", default_value_t = 2048)]
    pub query_memory_mb: usize,
    /// Longest a query may run, in seconds, sending its answer included.
    #[arg(long, env = "UTFALL_QUERY_TIMEOUT", default_value_t = 300)]
    pub query_timeout: u64,
    /// Most rows one SQL answer may hold; a larger answer is refused.
    #[arg(long, env = "UTFALL_MAX_RESULT_ROWS", default_value_t = 1_000_000)]
    pub max_result_rows: usize,
    /// Most MiB one SQL answer may hold (in memory); a larger answer is refused.
    #[arg(long, env = "UTFALL_MAX_RESULT_MB", default_value_t = 256)]
    pub max_result_mb: usize,
}

impl LimitArgs {
    pub fn limits(&self) -> utfall_queries::Limits {
        utfall_queries::Limits {
            memory_bytes: self.query_memory_mb << 20,
            timeout: std::time::Duration::from_secs(self.query_timeout),
            max_rows: self.max_result_rows,
            max_bytes: self.max_result_mb << 20,
        }
    }
}

/// What an analytics command sees: the store, the as-of date and the
/// known-at time.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Count only what had happened by this date (YYYY-MM-DD); default: everything.
    #[arg(long)]
    pub as_of: Option<chrono::NaiveDate>,
    /// Count only what had been recorded by this time (RFC 3339); default: now.
    #[arg(long)]
    pub known_at: Option<chrono::DateTime<chrono::Utc>>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl SnapshotArgs {
    pub fn snapshot(&self) -> utfall_queries::Snapshot {
        utfall_queries::Snapshot::new(self.as_of, self.known_at)
    }
}

#[derive(Args, Debug)]
pub struct OutcomesArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// The programme.
    #[arg(long)]
    pub program: String,
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    pub format: String,
    #[command(flatten)]
    pub horizon: HorizonArgs,
    /// The share metrics also per enrolment cohort: `year`, `quarter` or
    /// the dates cohorts start (`2021-01-01,2022-07-01`).
    #[arg(long)]
    pub cohorts: Option<utfall_queries::Cohorts>,
    /// Add the quarterly employment rate (served in each calendar quarter,
    /// worked in it).
    #[arg(long)]
    pub quarterly: bool,
    /// Add, per target, its course so far and whether the programme is on
    /// track to meet it by its end date.
    #[arg(long)]
    pub on_track: bool,
    /// Set each share metric beside this programme's, with the difference
    /// and its 95 % interval.
    #[arg(long, value_parser = parse_programme)]
    pub compare_with: Option<utfall_events::ProgramName>,
}

/// The share metrics also at a horizon: the status some months after
/// each participant's enrolment or exit.
#[derive(Args, Debug, Clone, Copy)]
pub struct HorizonArgs {
    /// Months after the anchor (`6m`, `6` or `2y`).
    #[arg(long)]
    pub horizon: Option<utfall_queries::horizon::Months>,
    /// What the horizon is counted from.
    #[arg(long, default_value = "exit", requires = "horizon")]
    pub from: utfall_queries::Anchor,
    /// Leave out those who moved away or died before their horizon day,
    /// rather than count them as not reaching the outcome.
    #[arg(long, requires = "horizon")]
    pub censor: bool,
}

impl HorizonArgs {
    pub fn horizon(&self) -> Option<utfall_queries::Horizon> {
        self.horizon.map(|months| utfall_queries::Horizon {
            months: months.0,
            from: self.from,
            censor: self.censor,
        })
    }
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// The query (DataFusion SQL over DESIGN's catalog).
    pub query: String,
    #[arg(long, default_value = "table", value_parser = ["table", "csv", "json", "parquet"])]
    pub format: String,
    /// Write the answer to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The programme.
    #[arg(long, required_unless_present_any = ["reproduce", "verify"])]
    pub program: Option<String>,
    /// 2022Q4, 2022, 2022-06 or 2022-01-01..2022-06-30; the extract is as of its last day.
    #[arg(long, required_unless_present_any = ["reproduce", "verify"])]
    pub period: Option<utfall_queries::extract::Period>,
    /// Count only what had been recorded by this time (RFC 3339); default: now.
    #[arg(long)]
    pub known_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Counts from 1 to this are suppressed.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub min_cell: u64,
    /// Formats, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "xlsx,csv,parquet,html")]
    pub format: Vec<utfall_queries::extract::Format>,
    #[command(flatten)]
    pub horizon: HorizonArgs,
    /// Set each share beside this programme's, with the difference and
    /// its 95 % interval (its counts under the same disclosure control).
    #[arg(long, value_parser = parse_programme)]
    pub compare_with: Option<utfall_events::ProgramName>,
    /// The language of the XLSX and HTML files (`nb`, `da` or `en`): their
    /// sheet names, headers, labels and texts. Without it they name things
    /// by identifier; CSV and Parquet always do.
    #[arg(long)]
    pub lang: Option<utfall_queries::language::Language>,
    /// Extracts go to <out>/<program>/<period>/ (revisions to <period>-revision-N/).
    #[arg(long, default_value = "extracts")]
    pub out: PathBuf,
    /// When the period has been delivered: write a new revision beside the
    /// latest one if any figure has changed (same threshold and formats).
    #[arg(long)]
    pub revise: bool,
    /// Regenerate the extract described by this manifest.json (into --out).
    #[arg(long, conflicts_with_all = ["program", "period", "verify", "revise"])]
    pub reproduce: Option<PathBuf>,
    /// Check the files of this extract folder against its manifest.json.
    #[arg(long, conflicts_with_all = ["program", "period"])]
    pub verify: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Args, Debug)]
pub struct QuarantineArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Log position of the unreadable event (`/healthz` names it).
    #[arg(long, required_unless_present = "list", requires = "reason")]
    pub position: Option<u64>,
    /// Why, for the record (e.g. a ticket number and what was found).
    #[arg(long)]
    pub reason: Option<String>,
    /// List the quarantined positions instead.
    #[arg(long, conflicts_with_all = ["position", "reason"])]
    pub list: bool,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Create a principal; its token is printed once and stored only as a hash.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// The principal's name (as the audit log will show it).
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: crate::access::Role,
        /// A programme the role applies to (repeat for several; none for admin).
        #[arg(long = "program", value_parser = parse_programme)]
        programs: Vec<utfall_events::ProgramName>,
        /// Lifetime, e.g. `90d` or `12h`; no expiry when absent.
        #[arg(long, value_parser = parse_lifetime)]
        expires: Option<chrono::Duration>,
    },
    /// Give an existing principal another role over programmes.
    Grant {
        #[command(flatten)]
        store: StoreArgs,
        /// The principal's name.
        name: String,
        #[arg(long, value_enum)]
        role: crate::access::Role,
        /// A programme the role applies to (repeat for several; none for admin).
        #[arg(long = "program", value_parser = parse_programme)]
        programs: Vec<utfall_events::ProgramName>,
    },
    /// List principals (never their tokens).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a principal's token at once.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// The principal's name.
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only records from this time on (RFC 3339).
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this principal's records.
    #[arg(long)]
    pub principal: Option<String>,
    /// Most records to print.
    #[arg(long, default_value_t = 10_000)]
    pub limit: u32,
    /// One JSON object per line instead of tab-separated columns.
    #[arg(long)]
    pub json: bool,
}

fn parse_programme(text: &str) -> Result<utfall_events::ProgramName, String> {
    utfall_events::ProgramName::new(text)
}

fn parse_lifetime(text: &str) -> Result<chrono::Duration, String> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: give a number of days or hours, e.g. 90d or 12h"))?;
    match unit {
        "d" if n > 0 => Ok(chrono::Duration::days(n)),
        "h" if n > 0 => Ok(chrono::Duration::hours(n)),
        _ => Err(format!(
            "{text:?}: give a positive number of days or hours, e.g. 90d or 12h"
        )),
    }
}
