//! The `jiancha` command: wiring only. Each subcommand parses its arguments, loads what it
//! needs through the library crates and reports errors in words an operator can act on.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod adapt;
mod config;
mod export;
mod frontdb;
mod local;
use config::Config;
use ingest::decode::DecodeOptions;
use ingest::reference_dir;
use rules::time::parse_rfc3339;
use rules::{Engine, Instant};
use store::Store as _;

/// mimalloc instead of the system allocator: the engine frees many small alert strings while it
/// grows large tables, a pattern on which glibc's malloc spends its time consolidating free
/// lists (measured in docs/BENCHMARKS.md). Asked as the crate `heap` asks it, with its one setting
/// we change (`heap::keep_freed_memory`).
#[global_allocator]
static GLOBAL: heap::Mimalloc = heap::Mimalloc;

/// jiancha (监察): electronic supervision of government service centres.
#[derive(Parser)]
#[command(name = "jiancha", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML, docs/CONFIG.md). Precedence: flag > environment > file > default.
    #[arg(long, global = true, value_name = "FILE", env = "JIANCHA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // In the order a newcomer needs them (`jiancha --help` lists them so): try it, replay a
    // file, check reference data, run one hall, simulate, manage users and configuration, then
    // cluster mode.
    /// One command, no external services: a simulated service hall supervised live at
    /// http://127.0.0.1:8080 (the login is printed). From a configuration file it takes
    /// `[notify]` (to see notifications arrive) and refuses any other section: the demo makes
    /// its own reference data, users and database.
    Demo(local::DemoArgs),
    /// Re-evaluate a file of events and print every alert as NDJSON (SPEC §8).
    ///
    /// Reads NDJSON events in file order; the engine clock is the largest occurred_at seen, and
    /// before each event every timer due at or before it fires. Invalid lines are reported on
    /// stderr with their line number and reason, and skipped.
    Replay {
        #[command(flatten)]
        refdata: ReferenceArgs,
        /// NDJSON file of events (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        events: PathBuf,
        /// After the last event, advance the clock to this RFC 3339 instant.
        #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
        until: Option<Instant>,
    },
    /// Validate a reference directory and report every problem with file, line and reason.
    Check(ReferenceArgs),
    /// Embedded mode (one county hall, one binary): events over HTTP (POST /api/v1/events),
    /// state and history in SQLite under --data, the dashboard API on --listen.
    ///
    /// An event is acknowledged once it is in the SQLite ingest log; the engine reads the log
    /// in order and checkpoints its state with the log position, so a crash or restart loses
    /// and repeats nothing.
    Serve(Box<local::ServeArgs>),
    /// Simulate a service hall or a city: reference data, events (NDJSON, HTTP or Kafka) with
    /// misconduct injected at known rates, and the ground truth of the alerts it must raise.
    Simulate(Box<local::SimulateArgs>),
    /// Map a source format's rows to events (SPEC §9 Offline): NDJSON rows in (one table row
    /// per line, "_table" naming its table), §3 events out on stdout in input order, dead
    /// letters on stderr with line number and reason. Pipe into `replay --events -`.
    Adapt {
        #[command(flatten)]
        refdata: ReferenceArgs,
        /// The format: sdjc, gdbs or gb39046 (docs/ADAPTERS.md).
        #[arg(long, value_name = "FORMAT", value_parser = ["sdjc", "gdbs", "gb39046"])]
        format: String,
        /// The source name events carry (else adapters/<format>.toml's `source`, else the
        /// format's name); sources.csv places a source's records.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// Rows (NDJSON), `-` for standard input.
        #[arg(value_name = "FILE", default_value = "-")]
        input: PathBuf,
    },
    /// Check a sample before connecting a feed: §3 events (--events FILE) or a format's rows
    /// (--format F FILE) against the schema, the code tables, the catalogue and the
    /// jurisdiction of the reference; a summary per reason with line numbers. Exit 1 when
    /// anything is wrong.
    Lint {
        #[command(flatten)]
        refdata: ReferenceArgs,
        /// A sample of jiancha.event.v1 events (NDJSON).
        #[arg(long, value_name = "FILE", conflicts_with = "format")]
        events: Option<PathBuf>,
        /// The format of the sample rows: sdjc, gdbs or gb39046.
        #[arg(long, value_name = "FORMAT", value_parser = ["sdjc", "gdbs", "gb39046"], requires = "input")]
        format: Option<String>,
        /// The sample rows (with --format).
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Upward export (SPEC §9 Outbound, 三级联网): stored alerts and their 督办 as the GB/T
    /// 39046 电子监察 dataset, NDJSON, from embedded mode's --data or cluster mode's ClickHouse.
    Export(Box<export::ExportArgs>),
    /// Manage dashboard users: add or change one, list them, mint a token.
    #[command(subcommand)]
    User(UserCommand),
    /// The configuration file: check it, or print its reference.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Cluster mode: consume events from Kafka, store alerts and history in ClickHouse.
    ///
    /// One engine per partition of the events topic (events are keyed by center_id). Offsets are
    /// committed only once the alerts and history derived from them are in ClickHouse and on the
    /// alerts topic, together with a checkpoint of the engine state, so the process can be
    /// stopped or killed at any moment. SIGINT/SIGTERM drain, commit and leave the group. Several
    /// processes with the same --group share the partitions.
    Cluster(Box<ClusterArgs>),
    /// Cluster mode's front-database pollers (the `[[frontdb]]` tables of the configuration):
    /// rows of a 前置库 mapped by their format's adapter and produced to the events topic; a
    /// source's position is stored in ClickHouse only after the brokers acknowledged its events
    /// (docs/ADAPTERS.md). Run one such process per deployment.
    Poll(Box<PollArgs>),
    /// Create or upgrade the ClickHouse schema (cluster mode), then check that a write reads back.
    Migrate(MigrateArgs),
    /// Cluster mode, dashboard API only: follow the alerts, window status and actions topics and
    /// serve leaders' and inspectors' dashboards (REST, WebSocket) without running engines.
    Api(Box<ApiOnlyArgs>),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file (with the environment applied): every problem as
    /// `FILE:LINE: reason`, exit 2 if there is one; otherwise print the effective settings.
    Check {
        /// Also open every file the configuration names (reference data, policy, users file,
        /// token secret) as the processes will: run it on the host that runs jiancha.
        #[arg(long)]
        files: bool,
    },
    /// Print the reference of every key (docs/CONFIG.md is this output).
    Doc,
}

/// `jiancha api`.
#[derive(clap::Args)]
struct ApiOnlyArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    #[command(flatten)]
    api: ApiArgs,
    /// Serve the API, /metrics, /healthz and /readyz on this address ([api] listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// The deployment's policy.toml: its future skew for HTTP ingest and its `score_*` weights
    /// for the 绩效 table (defaults otherwise; [reference] policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The reference directory, for the names dashboards show (centres, departments, windows,
    /// staff, items); without it they show codes ([reference] dir).
    #[arg(long, value_name = "DIR")]
    reference: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user, or change an existing one; the password is read from standard input.
    Add {
        /// Users file (created if missing).
        #[arg(long, value_name = "FILE", env = "JIANCHA_USERS")]
        users: PathBuf,
        /// Login name.
        #[arg(long)]
        username: String,
        /// leader, inspector, auditor, admin, or publisher (a window system sending events).
        #[arg(long, value_parser = ["leader", "inspector", "auditor", "admin", "publisher"])]
        role: String,
        /// Jurisdiction: GB/T 2260 prefix (43 province, 4306 city, 430626 county).
        #[arg(long)]
        region: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List the users (no hashes).
    List {
        /// Users file.
        #[arg(long, value_name = "FILE", env = "JIANCHA_USERS")]
        users: PathBuf,
    },
    /// End every session of a user: their tokens stop working and their open dashboards are
    /// closed (within the users file's reload interval, 5 s, in every process reading it).
    Revoke {
        /// Users file.
        #[arg(long, value_name = "FILE", env = "JIANCHA_USERS")]
        users: PathBuf,
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// Print a token for a user (for big screens and integrations that cannot log in).
    Token {
        /// Users file.
        #[arg(long, value_name = "FILE", env = "JIANCHA_USERS")]
        users: PathBuf,
        /// File holding the token signing secret.
        #[arg(long, value_name = "FILE", env = "JIANCHA_TOKEN_SECRET_FILE")]
        token_secret_file: PathBuf,
        /// Login name.
        #[arg(long)]
        username: String,
        /// Validity.
        #[arg(long, value_name = "HOURS", default_value_t = 12)]
        ttl_hours: u32,
    },
}

/// Where the reference data is.
#[derive(clap::Args)]
struct ReferenceArgs {
    /// Reference data directory (items.csv, windows.csv, staff.csv, calendar/, policy.toml);
    /// [reference] dir.
    #[arg(long, value_name = "DIR")]
    reference: Option<PathBuf>,
    /// Policy file overriding DIR/policy.toml ([reference] policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

impl ReferenceArgs {
    /// Lay the flags over the configuration.
    fn apply(&self, cfg: &mut config::ReferenceSection) {
        set(&mut cfg.dir, self.reference.clone().map(Some));
        set(&mut cfg.policy, self.policy.clone().map(Some));
    }
}

/// Where jiancha's ClickHouse tables are.
#[derive(clap::Args)]
struct ClickHouseArgs {
    /// ClickHouse HTTP endpoint ([clickhouse] url).
    #[arg(long, value_name = "URL")]
    clickhouse_url: Option<String>,
    /// Database holding jiancha's tables ([clickhouse] database).
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
}

impl ClickHouseArgs {
    fn apply(&self, cfg: &mut config::ClickHouseSection) {
        set(&mut cfg.url, self.clickhouse_url.clone());
        set(&mut cfg.database, self.database.clone());
    }
}

/// `jiancha migrate`.
#[derive(clap::Args)]
struct MigrateArgs {
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    /// Create the tables ON CLUSTER this `remote_servers` cluster: Replicated…MergeTree
    /// `*_local` tables with Distributed tables in front ([clickhouse] cluster).
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// Print the statements instead of running them.
    #[arg(long)]
    print: bool,
}

/// A flag, when given, replaces the configured value.
fn set<T>(slot: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *slot = v;
    }
}

/// `jiancha poll`.
#[derive(clap::Args)]
struct PollArgs {
    #[command(flatten)]
    refdata: ReferenceArgs,
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Serve /metrics (Prometheus) on this address ([cluster] listen).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(clap::Args)]
struct ClusterArgs {
    #[command(flatten)]
    refdata: ReferenceArgs,
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Static group membership: a stable name per process (e.g. the pod name), so a restarted
    /// process takes its partitions back at once ([cluster] instance_id).
    #[arg(long, value_name = "NAME")]
    instance_id: Option<String>,
    /// Serve /metrics (Prometheus) and /healthz on this address, and the dashboard API when
    /// --users is given ([cluster] listen).
    #[arg(long, alias = "listen", value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Write a batch of output at this many rows ... ([cluster] batch_rows)
    #[arg(long, value_name = "ROWS")]
    batch_rows: Option<usize>,
    /// ... or when its oldest row is this old ([cluster] batch_milliseconds).
    #[arg(long, value_name = "MILLISECONDS")]
    batch_ms: Option<u64>,
    /// Checkpoint engine state and commit offsets this often ([cluster] checkpoint_seconds).
    #[arg(long, value_name = "SECONDS")]
    checkpoint_secs: Option<u64>,
    /// Time allowed to drain, checkpoint and commit on shutdown or partition revocation
    /// ([cluster] shutdown_seconds).
    #[arg(long, value_name = "SECONDS")]
    shutdown_secs: Option<u64>,
}

/// The engine clock (`cluster`, `serve`).
#[derive(clap::Args)]
struct EngineArgs {
    /// Engine clock: `wall` (event time, and the wall clock less --lateness once caught up, so
    /// deadlines pass at night) or `event` (event time only, as replay); [engine] clock.
    #[arg(long, value_name = "MODE", value_parser = ["wall", "event"])]
    clock: Option<String>,
    /// In wall-clock mode, how late an event may arrive before deadlines it could have
    /// cancelled fire ([engine] lateness_seconds).
    #[arg(long, value_name = "SECONDS")]
    lateness: Option<u64>,
}

impl EngineArgs {
    fn apply(&self, cfg: &mut config::EngineSection) {
        set(
            &mut cfg.clock,
            self.clock.as_deref().map(|c| match c {
                "event" => config::ClockSetting::Event,
                _ => config::ClockSetting::Wall,
            }),
        );
        set(&mut cfg.lateness_seconds, self.lateness);
    }
}

/// The Kafka side shared by the engines and the API.
#[derive(clap::Args)]
struct KafkaArgs {
    /// Kafka bootstrap servers ([kafka] brokers).
    #[arg(long, value_name = "HOST:PORT,...")]
    brokers: Option<String>,
    /// Consumer group shared by the processes of one deployment ([kafka] group).
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Events topic ([kafka] events_topic).
    #[arg(long, value_name = "TOPIC")]
    events_topic: Option<String>,
    /// Dead-letter topic ([kafka] dead_letter_topic).
    #[arg(long, value_name = "TOPIC")]
    dead_letter_topic: Option<String>,
    /// Alerts topic ([kafka] alerts_topic).
    #[arg(long, value_name = "TOPIC")]
    alerts_topic: Option<String>,
    /// Window status topic ([kafka] status_topic).
    #[arg(long, value_name = "TOPIC")]
    status_topic: Option<String>,
    /// Inspector actions topic ([kafka] actions_topic).
    #[arg(long, value_name = "TOPIC")]
    actions_topic: Option<String>,
    /// Extra librdkafka setting for both consumer and producer (repeatable), e.g.
    /// security.protocol=SASL_SSL; added to [kafka] options.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    kafka_options: Vec<(String, String)>,
}

impl KafkaArgs {
    fn apply(&self, cfg: &mut config::KafkaSection) {
        set(&mut cfg.brokers, self.brokers.clone());
        set(&mut cfg.group, self.group.clone());
        set(&mut cfg.events_topic, self.events_topic.clone());
        set(&mut cfg.dead_letter_topic, self.dead_letter_topic.clone());
        set(&mut cfg.alerts_topic, self.alerts_topic.clone());
        set(&mut cfg.status_topic, self.status_topic.clone());
        set(&mut cfg.actions_topic, self.actions_topic.clone());
        for (k, v) in &self.kafka_options {
            cfg.options.insert(k.clone(), v.clone());
        }
    }
}

/// The dashboard API (SPEC §1, §7): users, tokens, what it keeps in memory.
#[derive(clap::Args)]
struct ApiArgs {
    /// Users file (made with `jiancha user add`); serves the dashboard API when given
    /// ([api] users).
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// File holding the token signing secret, at least 32 bytes ([api] token_secret_file).
    #[arg(long, value_name = "FILE")]
    token_secret_file: Option<PathBuf>,
    /// How long a login token stays valid ([api] token_ttl_hours).
    #[arg(long, value_name = "HOURS")]
    token_ttl_hours: Option<u32>,
    /// Finished alerts of the last DAYS are kept for the live queue, active ones always
    /// ([api] keep_days).
    #[arg(long, value_name = "DAYS")]
    keep_days: Option<u32>,
}

impl ApiArgs {
    fn apply(&self, cfg: &mut config::ApiSection) {
        set(&mut cfg.users, self.users.clone().map(Some));
        set(
            &mut cfg.token_secret_file,
            self.token_secret_file.clone().map(Some),
        );
        set(&mut cfg.token_ttl_hours, self.token_ttl_hours);
        set(&mut cfg.keep_days, self.keep_days);
    }
}

/// The API settings, or `None` without a users file; refuses an unusable users file or secret.
fn api_settings(
    cfg: &config::ApiSection,
    security: &config::SecuritySection,
) -> Result<Option<cluster::api::ApiSettings>, String> {
    let Some(users_path) = &cfg.users else {
        return Ok(None);
    };
    let users = dashboard_api::auth::Users::load(users_path).map_err(|e| e.to_string())?;
    let secret = cfg.token_secret_file.as_ref().ok_or(
        "--users needs --token-secret-file ([api] token_secret_file, JIANCHA_TOKEN_SECRET_FILE): the key that signs login tokens",
    )?;
    let key = dashboard_api::auth::TokenKey::load(secret)?;
    Ok(Some(cluster::api::ApiSettings {
        users_path: users_path.clone(),
        users,
        key,
        config: dashboard_api::ApiConfig {
            token_ttl_secs: i64::from(cfg.token_ttl_hours.max(1)) * 3600,
            keep_finished: Duration::from_secs(u64::from(cfg.keep_days) * 86_400),
            limits: security.limits(),
            ..dashboard_api::ApiConfig::default()
        },
        keep_days: cfg.keep_days,
        directory: dashboard_api::Directory::default(),
    }))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected KEY=VALUE")),
    }
}

fn parse_instant(s: &str) -> Result<Instant, String> {
    parse_rfc3339(s).map_err(|e| format!("{s:?}: {e}"))
}

/// Exit code for unusable reference data or arguments.
const EXIT_UNUSABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Config(ConfigCommand::Doc)) {
        print!("{}", config::reference());
        return ExitCode::SUCCESS;
    }
    // Commands without settings in the file do not read it.
    let uses_config = !matches!(cli.command, Command::User(_) | Command::Simulate(_));
    let mut cfg = if uses_config {
        match config::load(cli.config.as_deref(), &config::process_env) {
            Ok(cfg) => cfg,
            Err(problems) => {
                for p in &problems {
                    eprintln!("error: {p}");
                }
                eprintln!("error: configuration refused ({} problems)", problems.len());
                return ExitCode::from(EXIT_UNUSABLE);
            }
        }
    } else {
        Config::default()
    };
    match cli.command {
        Command::Replay {
            refdata,
            events,
            until,
        } => {
            refdata.apply(&mut cfg.reference);
            replay(&cfg.reference, events, until)
        }
        Command::Check(refdata) => {
            refdata.apply(&mut cfg.reference);
            check(&cfg.reference)
        }
        Command::Adapt {
            refdata,
            format,
            source,
            input,
        } => {
            refdata.apply(&mut cfg.reference);
            let (Some(loaded), Some(dir), Some(format)) = (
                load(&cfg.reference),
                cfg.reference.dir.as_deref(),
                adapters::Format::parse(&format),
            ) else {
                return ExitCode::from(EXIT_UNUSABLE);
            };
            adapt::adapt(dir, &loaded, format, source.as_deref(), &input)
        }
        Command::Lint {
            refdata,
            events,
            format,
            input,
        } => {
            refdata.apply(&mut cfg.reference);
            let (Some(loaded), Some(dir)) = (load(&cfg.reference), cfg.reference.dir.as_deref())
            else {
                return ExitCode::from(EXIT_UNUSABLE);
            };
            let format = format
                .as_deref()
                .and_then(adapters::Format::parse)
                .zip(input);
            adapt::lint(dir, loaded, adapt::LintArgs { events, format })
        }
        Command::Export(args) => export::export(*args, cfg),
        Command::Cluster(args) => cluster(*args, cfg),
        Command::Poll(args) => poll(*args, cfg),
        Command::Migrate(args) => {
            args.clickhouse.apply(&mut cfg.clickhouse);
            set(&mut cfg.clickhouse.cluster, args.cluster);
            migrate(&cfg.clickhouse, args.print)
        }
        Command::Api(args) => api(*args, cfg),
        Command::Serve(args) => local::serve(*args, cfg),
        Command::Demo(args) => local::demo(args, cfg),
        Command::Simulate(args) => local::simulate(*args),
        Command::Config(ConfigCommand::Check { files }) => {
            config_check(cli.config.as_deref(), &cfg, files)
        }
        Command::Config(ConfigCommand::Doc) => ExitCode::SUCCESS,
        Command::User(cmd) => match user(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_UNUSABLE)
            }
        },
    }
}

/// `jiancha config check`: the file parsed and validated (problems were reported by `main`);
/// show what is in force.
fn config_check(path: Option<&std::path::Path>, cfg: &Config, files: bool) -> ExitCode {
    if files {
        let mut problems = 0;
        if cfg.reference.dir.is_some() && load(&cfg.reference).is_none() {
            problems += 1;
        }
        if let Some(users) = &cfg.api.users {
            if let Err(e) = dashboard_api::auth::Users::load(users) {
                eprintln!("error: [api] users: {e}");
                problems += 1;
            }
        }
        if let Some(secret) = &cfg.api.token_secret_file {
            if let Err(e) = dashboard_api::auth::TokenKey::load(secret) {
                eprintln!("error: [api] token_secret_file: {e}");
                problems += 1;
            }
        }
        if problems > 0 {
            eprintln!("error: configuration refused: files it names are unusable");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    }
    let n = &cfg.notify;
    println!(
        "ok: {}: kafka {} (group {}), clickhouse {} database {}; notifications {} ({} channels, {} routes)",
        path.map(|p| p.display().to_string())
            .unwrap_or_else(|| "no file, defaults and environment".into()),
        cfg.kafka.brokers,
        cfg.kafka.group,
        cfg.clickhouse.url,
        cfg.clickhouse.database,
        if n.enabled { "on" } else { "off" },
        n.channels.len(),
        n.routes.len()
    );
    ExitCode::SUCCESS
}

fn migrate(ch: &config::ClickHouseSection, print: bool) -> ExitCode {
    let (url, database) = (&ch.url, &ch.database);
    let cluster = (!ch.cluster.is_empty()).then_some(ch.cluster.as_str());
    if print {
        match store::schema::cluster_statements(database, cluster) {
            Ok(statements) => {
                for s in statements {
                    println!("{s};\n");
                }
                return ExitCode::SUCCESS;
            }
            Err(e) => return fail_unusable("migrate", e),
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let store = store::clickhouse::ClickHouseStore::new(url, database)?;
        let version = store.server_version().await?;
        let applied = match cluster {
            None => store.migrate().await?,
            Some(name) => store.migrate_cluster(name).await?,
        };
        store.self_test().await?;
        Ok::<_, store::StoreError>((version, applied))
    });
    match result {
        Ok((version, applied)) => {
            println!(
                "ok: ClickHouse {version} at {url}, database {database}{}: applied migrations {applied:?}; self-test read back its write",
                cluster.map(|c| format!(" on cluster {c}")).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: migrate {database} at {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fail_unusable(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {what}: {e}");
    ExitCode::from(EXIT_UNUSABLE)
}

fn load(refdata: &config::ReferenceSection) -> Option<reference_dir::Loaded> {
    let Some(dir) = &refdata.dir else {
        eprintln!(
            "error: no reference data: give --reference DIR, JIANCHA_REFERENCE or [reference] dir in --config"
        );
        return None;
    };
    match reference_dir::load(dir, refdata.policy.as_deref()) {
        Ok(loaded) => Some(loaded),
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("error: reference data refused ({} problems)", errors.len());
            None
        }
    }
}

/// The format endpoints' code tables and `sources.csv`; `None` (after printing the problems)
/// when they are malformed.
fn formats(refdata: &config::ReferenceSection) -> Option<dashboard_api::formats::FormatSettings> {
    adapt::format_settings(refdata.dir.as_deref())
        .map_err(|problems| {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "error: adapter configuration refused ({} problems)",
                problems.len()
            );
        })
        .ok()
}

/// `sources.csv` of the reference directory for the dashboards; `None` (after printing the
/// problems) when it is malformed: refused at start-up like the other reference files.
fn sources(refdata: &config::ReferenceSection) -> Option<Vec<dashboard_api::SourceEntry>> {
    let Some(dir) = &refdata.dir else {
        return Some(Vec::new());
    };
    match adapt::source_entries(dir) {
        Ok(sources) => Some(sources),
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "error: reference data refused ({} problems)",
                problems.len()
            );
            None
        }
    }
}

fn replay(refdata: &config::ReferenceSection, events: PathBuf, until: Option<Instant>) -> ExitCode {
    let Some(loaded) = load(refdata) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    // Read on a thread of its own (`ingest::replay`): stdin itself, not a lock of it.
    let input: Box<dyn io::BufRead + Send> = if events.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(1 << 20, io::stdin()))
    } else {
        match File::open(&events) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 20, f)),
            Err(e) => {
                eprintln!("error: cannot open events file {}: {e}", events.display());
                return ExitCode::from(EXIT_UNUSABLE);
            }
        }
    };
    heap::keep_freed_memory();
    let opts = DecodeOptions::replay(&loaded.policy);
    let mut engine = Engine::new(Arc::new(loaded.reference), loaded.policy);
    let out = BufWriter::with_capacity(1 << 16, io::stdout());
    match ingest::replay::replay(&mut engine, input, until, opts, out, io::stderr().lock()) {
        Ok(s) => {
            eprintln!(
                "replay: {} lines, {} events applied, {} invalid, {} refused, {} duplicates, {} alert lines",
                s.lines, s.applied, s.invalid, s.rejected, s.duplicates, s.alerts
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: replay failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cluster(args: ClusterArgs, mut file: Config) -> ExitCode {
    cluster::logging::init();
    heap::keep_freed_memory();
    args.refdata.apply(&mut file.reference);
    args.clickhouse.apply(&mut file.clickhouse);
    args.kafka.apply(&mut file.kafka);
    args.api.apply(&mut file.api);
    args.engine.apply(&mut file.engine);
    let c = &mut file.cluster;
    set(&mut c.instance_id, args.instance_id.map(Some));
    set(&mut c.listen, args.metrics_listen);
    set(&mut c.batch_rows, args.batch_rows);
    set(&mut c.batch_milliseconds, args.batch_ms);
    set(&mut c.checkpoint_seconds, args.checkpoint_secs);
    set(&mut c.shutdown_seconds, args.shutdown_secs);

    let Some(loaded) = load(&file.reference) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let reference = Arc::new(loaded.reference);
    let Some(sources) = sources(&file.reference) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let Some(formats) = formats(&file.reference) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let mut cfg = cluster_config(&file, file.cluster.listen);
    cfg.api = match api_settings(&file.api, &file.security) {
        Ok(api) => api.map(|mut a| {
            a.config.future_skew_secs = i64::from(loaded.policy.future_skew_minutes) * 60;
            a.config.policy = loaded.policy.clone();
            a.directory = dashboard_api::Directory::from_reference(&reference)
                .with_sources(sources)
                .with_formats(formats.clone());
            a
        }),
        Err(e) => {
            eprintln!("error: dashboard API: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    cfg.formats = formats;
    let c = &file.cluster;
    cfg.instance_id = c.instance_id.clone();
    cfg.clock = match file.engine.clock {
        config::ClockSetting::Event => cluster::ClockMode::Event,
        config::ClockSetting::Wall => cluster::ClockMode::Wall {
            lateness: Duration::from_secs(file.engine.lateness_seconds),
        },
    };
    cfg.batch_rows = c.batch_rows.max(1);
    cfg.batch_age = Duration::from_millis(c.batch_milliseconds);
    cfg.checkpoint_interval = Duration::from_secs(c.checkpoint_seconds.max(1));
    cfg.shutdown_deadline = Duration::from_secs(c.shutdown_seconds.max(1));
    cfg.notify = file.notify.enabled.then(|| file.notify.clone());
    match cluster::run(cfg, reference, loaded.policy) {
        Ok(()) => {
            eprintln!("cluster: stopped cleanly (drained, checkpointed, committed)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `jiancha poll`: the `[[frontdb]]` sources into the events topic.
fn poll(args: PollArgs, mut file: Config) -> ExitCode {
    cluster::logging::init();
    args.refdata.apply(&mut file.reference);
    args.clickhouse.apply(&mut file.clickhouse);
    args.kafka.apply(&mut file.kafka);
    set(&mut file.cluster.listen, args.metrics_listen);
    if file.frontdb.is_empty() {
        return local::fail(
            "poll",
            "no [[frontdb]] source in the configuration",
            EXIT_UNUSABLE,
        );
    }
    let Some(loaded) = load(&file.reference) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let cfg = cluster_config(&file, file.cluster.listen);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return local::fail("poll", e, 1),
    };
    let store = match store::clickhouse::ClickHouseStore::new(&cfg.clickhouse_url, &cfg.database) {
        Ok(s) => s,
        Err(e) => return local::fail("ClickHouse", e, EXIT_UNUSABLE),
    };
    if let Err(e) = rt.block_on(store.migrate()) {
        return local::fail("ClickHouse", e, EXIT_UNUSABLE);
    }
    let mut producer = rdkafka::ClientConfig::new();
    producer
        .set("bootstrap.servers", &cfg.brokers)
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    for (k, v) in &cfg.kafka_options {
        producer.set(k, v);
    }
    let producer: rdkafka::producer::FutureProducer = match producer.create() {
        Ok(p) => p,
        Err(e) => return local::fail("Kafka", e, EXIT_UNUSABLE),
    };
    let registry = prometheus::Registry::new();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dir = file.reference.dir.clone().unwrap_or_default();
    let threads = match frontdb::start(
        &file.frontdb,
        &dir,
        Arc::new(loaded.reference),
        &registry,
        stop.clone(),
        || frontdb::ClusterHandover {
            producer: producer.clone(),
            topic: cfg.events_topic.clone(),
            store: store.clone(),
            rt: rt.handle().clone(),
            slot: 0,
        },
    ) {
        Ok(t) => t,
        Err(problems) => {
            for p in problems {
                eprintln!("error: {p}");
            }
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    if let Err(e) = frontdb::serve_metrics(file.cluster.listen, registry) {
        return local::fail("poll", e, EXIT_UNUSABLE);
    }
    eprintln!(
        "jiancha poll: {} source(s) into {}; /metrics on {}",
        threads.len(),
        cfg.events_topic,
        file.cluster.listen
    );
    local::wait_for_stop(&rt);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    ExitCode::SUCCESS
}

fn cluster_config(file: &Config, listen: std::net::SocketAddr) -> cluster::ClusterConfig {
    let kafka = &file.kafka;
    let mut cfg = cluster::ClusterConfig::new(&kafka.brokers, &file.clickhouse.url);
    cfg.group_id = kafka.group.clone();
    cfg.events_topic = kafka.events_topic.clone();
    cfg.dead_letter_topic = kafka.dead_letter_topic.clone();
    cfg.alerts_topic = kafka.alerts_topic.clone();
    cfg.status_topic = kafka.status_topic.clone();
    cfg.actions_topic = kafka.actions_topic.clone();
    cfg.kafka_options = kafka
        .options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    cfg.database = file.clickhouse.database.clone();
    cfg.clickhouse_cluster =
        (!file.clickhouse.cluster.is_empty()).then(|| file.clickhouse.cluster.clone());
    cfg.listen = Some(listen);
    cfg.change_topics = file
        .change_topics
        .iter()
        .filter_map(config::ChangeTopicSection::to_change_topic)
        .collect();
    cfg
}

fn api(args: ApiOnlyArgs, mut file: Config) -> ExitCode {
    cluster::logging::init();
    args.kafka.apply(&mut file.kafka);
    args.clickhouse.apply(&mut file.clickhouse);
    args.api.apply(&mut file.api);
    set(&mut file.api.listen, args.listen);
    set(&mut file.reference.policy, args.policy.map(Some));
    set(&mut file.reference.dir, args.reference.map(Some));
    let policy = match &file.reference.policy {
        None => rules::Policy::default(),
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|text| {
                    rules::Policy::parse(&path.display().to_string(), &text)
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_UNUSABLE);
                }
            }
        }
    };
    let mut cfg = cluster_config(&file, file.api.listen);
    cfg.api = match api_settings(&file.api, &file.security) {
        Ok(Some(mut api)) => {
            api.config.future_skew_secs = i64::from(policy.future_skew_minutes) * 60;
            api.config.policy = policy;
            if let Some(dir) = &file.reference.dir {
                match ingest::reference_dir::load(dir, None) {
                    Ok(loaded) => {
                        let (Some(sources), Some(formats)) =
                            (sources(&file.reference), formats(&file.reference))
                        else {
                            return ExitCode::from(EXIT_UNUSABLE);
                        };
                        api.directory =
                            dashboard_api::Directory::from_reference(&Arc::new(loaded.reference))
                                .with_sources(sources)
                                .with_formats(formats)
                    }
                    Err(errors) => {
                        for e in errors {
                            eprintln!("error: {e}");
                        }
                        return ExitCode::from(EXIT_UNUSABLE);
                    }
                }
            }
            Some(api)
        }
        Ok(None) => {
            eprintln!("error: api: --users is required (make one with `jiancha user add`)");
            return ExitCode::from(EXIT_UNUSABLE);
        }
        Err(e) => {
            eprintln!("error: dashboard API: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    match cluster::run_api(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: api: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(refdata: &config::ReferenceSection) -> ExitCode {
    // Every problem of the directory at once: the adapters' files and sources.csv are checked
    // even when the §4 files are refused.
    let (problems, adapter_notes) = refdata.dir.as_deref().map(adapt::check).unwrap_or_default();
    for p in &problems {
        eprintln!("error: {p}");
    }
    let Some(loaded) = load(refdata) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    for note in loaded.notes.iter().chain(&adapter_notes) {
        println!("note: {note}");
    }
    if !problems.is_empty() {
        eprintln!(
            "error: adapter configuration refused ({} problems)",
            problems.len()
        );
        return ExitCode::from(EXIT_UNUSABLE);
    }
    let r = &loaded.reference;
    println!(
        "ok: {} items, {} windows, {} staff; calendar years without official data in 2020-2030: {:?}",
        r.items().len(),
        r.windows.len(),
        r.staff.len(),
        r.calendar.provisional_years(
            rules::Day::from_ymd(2020, 1, 1).unwrap_or_default(),
            rules::Day::from_ymd(2030, 12, 31).unwrap_or_default()
        )
    );
    ExitCode::SUCCESS
}

fn user(cmd: UserCommand) -> Result<(), String> {
    use dashboard_api::auth::{Region, Role, TokenKey, User, Users};
    let load = |path: &PathBuf| Users::load(path).map_err(|e| e.to_string());
    match cmd {
        UserCommand::Add {
            users: path,
            username,
            role,
            region,
            name,
        } => {
            let mut users = if path.exists() {
                load(&path)?
            } else {
                Users::default()
            };
            dashboard_api::auth::check_username(&username)?;
            dashboard_api::auth::check_display_name(&name)?;
            let role = Role::parse(&role).ok_or("unknown role")?;
            let region = Region::try_from(region)?;
            let region_text = region.as_str().to_string();
            let mut password = String::new();
            io::stdin()
                .read_line(&mut password)
                .map_err(|e| format!("reading the password from standard input: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 8 {
                return Err("the password (standard input) must have at least 8 characters".into());
            }
            let password_hash = dashboard_api::auth::hash_password(password)?;
            // A new password revokes the user's tokens by itself (they carry a fingerprint of
            // the hash); the epoch is kept.
            let token_epoch = users.get(&username).map_or(0, |u| u.token_epoch);
            users.upsert(User {
                username: username.clone(),
                name,
                role,
                region,
                password_hash,
                token_epoch,
            });
            users
                .save(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!(
                "ok: {username} ({}, {region_text}) in {}",
                role.as_str(),
                path.display()
            );
            Ok(())
        }
        UserCommand::Revoke {
            users: path,
            username,
        } => {
            let mut users = load(&path)?;
            if !users.revoke(&username) {
                return Err(format!("no user {username:?} in {}", path.display()));
            }
            users
                .save(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!(
                "ok: every session of {username} revoked in {}; running APIs apply it within 5 s",
                path.display()
            );
            Ok(())
        }
        UserCommand::List { users: path } => {
            for u in load(&path)?.iter() {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.username,
                    u.role.as_str(),
                    u.region.as_str(),
                    u.name
                );
            }
            Ok(())
        }
        UserCommand::Token {
            users: path,
            token_secret_file,
            username,
            ttl_hours,
        } => {
            let users = load(&path)?;
            let user = users
                .get(&username)
                .ok_or_else(|| format!("no user {username:?} in {}", path.display()))?;
            let key = TokenKey::load(&token_secret_file)?;
            let (token, _) = key.issue(
                user,
                dashboard_api::wall_now().0,
                i64::from(ttl_hours.max(1)) * 3600,
            );
            println!("{token}");
            Ok(())
        }
    }
}
