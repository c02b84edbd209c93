//! The `jiancha` command: wiring only. Each subcommand parses its arguments, loads what it
//! needs through the library crates and reports errors in words an operator can act on.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod local;
use ingest::decode::DecodeOptions;
use ingest::reference_dir;
use rules::time::parse_rfc3339;
use rules::{Engine, Instant};
use store::Store as _;

/// mimalloc instead of the system allocator: the engine frees many small alert strings while it
/// grows large tables, a pattern on which glibc's malloc spends its time consolidating free
/// lists (measured in docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// jiancha (监察): electronic supervision of government service centres.
#[derive(Parser)]
#[command(name = "jiancha", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Create or upgrade the ClickHouse schema (cluster mode), then check that a write reads back.
    Migrate(ClickHouseArgs),
    /// Cluster mode: consume events from Kafka, store alerts and history in ClickHouse.
    ///
    /// One engine per partition of the events topic (events are keyed by center_id). Offsets are
    /// committed only once the alerts and history derived from them are in ClickHouse and on the
    /// alerts topic, together with a checkpoint of the engine state, so the process can be
    /// stopped or killed at any moment. SIGINT/SIGTERM drain, commit and leave the group. Several
    /// processes with the same --group share the partitions.
    Cluster(Box<ClusterArgs>),
    /// Validate a reference directory and report every problem with file, line and reason.
    Check(ReferenceArgs),
    /// Cluster mode, dashboard API only: follow the alerts, window status and actions topics and
    /// serve leaders' and inspectors' dashboards (REST, WebSocket) without running engines.
    Api(Box<ApiOnlyArgs>),
    /// Manage dashboard users: add or change one, list them, mint a token.
    #[command(subcommand)]
    User(UserCommand),
    /// Embedded mode (one county hall, one binary): events over HTTP (POST /api/v1/events),
    /// state and history in SQLite under --data, the dashboard API on --listen.
    ///
    /// An event is acknowledged once it is in the SQLite ingest log; the engine reads the log
    /// in order and checkpoints its state with the log position, so a crash or restart loses
    /// and repeats nothing.
    Serve(Box<local::ServeArgs>),
    /// One command, no external services: a simulated service hall supervised live at
    /// http://127.0.0.1:8080 (the login is printed).
    Demo(local::DemoArgs),
    /// Simulate a service hall or a city: reference data, events (NDJSON, HTTP or Kafka) with
    /// misconduct injected at known rates, and the ground truth of the alerts it must raise.
    Simulate(Box<local::SimulateArgs>),
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
    /// Serve the API, /metrics, /healthz and /readyz on this address.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "JIANCHA_LISTEN"
    )]
    listen: std::net::SocketAddr,
    /// The deployment's policy.toml: its future skew for HTTP ingest and its `score_*` weights
    /// for the 绩效 table (defaults otherwise).
    #[arg(long, value_name = "FILE", env = "JIANCHA_POLICY")]
    policy: Option<PathBuf>,
    /// The reference directory, for the names dashboards show (centres, departments, windows,
    /// staff, items); without it they show codes.
    #[arg(long, value_name = "DIR", env = "JIANCHA_REFERENCE")]
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
    /// Reference data directory (items.csv, windows.csv, staff.csv, calendar/, policy.toml).
    #[arg(long, value_name = "DIR", env = "JIANCHA_REFERENCE")]
    reference: PathBuf,
    /// Policy file overriding DIR/policy.toml.
    #[arg(long, value_name = "FILE", env = "JIANCHA_POLICY")]
    policy: Option<PathBuf>,
}

/// Where jiancha's ClickHouse tables are.
#[derive(clap::Args)]
struct ClickHouseArgs {
    /// ClickHouse HTTP endpoint.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8123",
        env = "JIANCHA_CLICKHOUSE_URL"
    )]
    clickhouse_url: String,
    /// Database holding jiancha's tables (created and migrated at start-up by `cluster`).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "jiancha",
        env = "JIANCHA_DATABASE"
    )]
    database: String,
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
    /// process takes its partitions back at once instead of after the old session times out.
    #[arg(long, value_name = "NAME", env = "JIANCHA_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Serve /metrics (Prometheus) and /healthz on this address, and the dashboard API when
    /// --users is given.
    #[arg(
        long,
        alias = "listen",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464",
        env = "JIANCHA_METRICS_LISTEN"
    )]
    metrics_listen: std::net::SocketAddr,
    #[command(flatten)]
    api: ApiArgs,
    /// Engine clock: `wall` (event time, and the wall clock less --lateness once a partition is
    /// caught up, so deadlines pass at night) or `event` (event time only, as replay).
    #[arg(long, value_name = "MODE", default_value = "wall", value_parser = ["wall", "event"])]
    clock: String,
    /// In wall-clock mode, how late an event may arrive before deadlines it could have
    /// cancelled fire.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    lateness: u64,
    /// Write a batch of output at this many rows ...
    #[arg(long, value_name = "ROWS", default_value_t = 20_000)]
    batch_rows: usize,
    /// ... or when its oldest row is this old.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 500)]
    batch_ms: u64,
    /// Checkpoint engine state and commit offsets this often.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    checkpoint_secs: u64,
    /// Time allowed to drain, checkpoint and commit on shutdown or partition revocation.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    shutdown_secs: u64,
}

/// The Kafka side shared by the engines and the API.
#[derive(clap::Args)]
struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        value_name = "HOST:PORT,...",
        default_value = "127.0.0.1:9092",
        env = "JIANCHA_KAFKA_BROKERS"
    )]
    brokers: String,
    /// Consumer group shared by the processes of one deployment (also keys the checkpoints).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "jiancha",
        env = "JIANCHA_GROUP"
    )]
    group: String,
    /// Events topic (HTTP ingest in the API produces here too).
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "jiancha.events",
        env = "JIANCHA_EVENTS_TOPIC"
    )]
    events_topic: String,
    /// Dead-letter topic (raw bytes; reason, field, message and source in headers).
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "jiancha.dead-letter",
        env = "JIANCHA_DEAD_LETTER_TOPIC"
    )]
    dead_letter_topic: String,
    /// Alerts topic (key alert_id, value the alert JSON).
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "jiancha.alerts",
        env = "JIANCHA_ALERTS_TOPIC"
    )]
    alerts_topic: String,
    /// Window status topic (key window_id, value the status JSON).
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "jiancha.window-status",
        env = "JIANCHA_STATUS_TOPIC"
    )]
    status_topic: String,
    /// Inspector actions topic (key alert_id), shared by the API processes.
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "jiancha.alert-actions",
        env = "JIANCHA_ACTIONS_TOPIC"
    )]
    actions_topic: String,
    /// Extra librdkafka setting for both consumer and producer (repeatable), e.g.
    /// security.protocol=SASL_SSL.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    kafka_options: Vec<(String, String)>,
}

/// The dashboard API (SPEC §1, §7): users, tokens, what it keeps in memory.
#[derive(clap::Args)]
struct ApiArgs {
    /// Users file (made with `jiancha user add`); serves the dashboard API when given.
    #[arg(long, value_name = "FILE", env = "JIANCHA_USERS")]
    users: Option<PathBuf>,
    /// File holding the token signing secret (at least 32 bytes).
    #[arg(long, value_name = "FILE", env = "JIANCHA_TOKEN_SECRET_FILE")]
    token_secret_file: Option<PathBuf>,
    /// How long a login token stays valid.
    #[arg(long, value_name = "HOURS", default_value_t = 12)]
    token_ttl_hours: u32,
    /// Finished alerts of the last DAYS are kept for the live queue (active ones always).
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    keep_days: u32,
}

impl ApiArgs {
    /// The API settings, or `None` without --users; refuses an unusable users file or secret.
    fn settings(&self) -> Result<Option<cluster::api::ApiSettings>, String> {
        let Some(users_path) = &self.users else {
            return Ok(None);
        };
        let users = dashboard_api::auth::Users::load(users_path).map_err(|e| e.to_string())?;
        let secret = self.token_secret_file.as_ref().ok_or(
            "--users needs --token-secret-file (or JIANCHA_TOKEN_SECRET_FILE): the key that signs login tokens",
        )?;
        let key = dashboard_api::auth::TokenKey::load(secret)?;
        Ok(Some(cluster::api::ApiSettings {
            users_path: users_path.clone(),
            users,
            key,
            config: dashboard_api::ApiConfig {
                token_ttl_secs: i64::from(self.token_ttl_hours.max(1)) * 3600,
                keep_finished: Duration::from_secs(u64::from(self.keep_days) * 86_400),
                ..dashboard_api::ApiConfig::default()
            },
            keep_days: self.keep_days,
            directory: dashboard_api::Directory::default(),
        }))
    }
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
    match Cli::parse().command {
        Command::Replay {
            refdata,
            events,
            until,
        } => replay(&refdata, events, until),
        Command::Check(refdata) => check(&refdata),
        Command::Cluster(args) => cluster(*args),
        Command::Migrate(ch) => migrate(&ch.clickhouse_url, &ch.database),
        Command::Api(args) => api(*args),
        Command::Serve(args) => local::serve(*args),
        Command::Demo(args) => local::demo(args),
        Command::Simulate(args) => local::simulate(*args),
        Command::User(cmd) => match user(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_UNUSABLE)
            }
        },
    }
}

fn migrate(url: &str, database: &str) -> ExitCode {
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
        let applied = store.migrate().await?;
        store.self_test().await?;
        Ok::<_, store::StoreError>((version, applied))
    });
    match result {
        Ok((version, applied)) => {
            println!(
                "ok: ClickHouse {version} at {url}, database {database}: applied migrations {applied:?}; self-test read back its write"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: migrate {database} at {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(refdata: &ReferenceArgs) -> Option<reference_dir::Loaded> {
    match reference_dir::load(&refdata.reference, refdata.policy.as_deref()) {
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

fn replay(refdata: &ReferenceArgs, events: PathBuf, until: Option<Instant>) -> ExitCode {
    let Some(loaded) = load(refdata) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let input: Box<dyn io::BufRead> = if events.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        match File::open(&events) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 20, f)),
            Err(e) => {
                eprintln!("error: cannot open events file {}: {e}", events.display());
                return ExitCode::from(EXIT_UNUSABLE);
            }
        }
    };
    let opts = DecodeOptions::replay(&loaded.policy);
    let mut engine = Engine::new(Arc::new(loaded.reference), loaded.policy);
    let out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match ingest::replay::replay(&mut engine, input, until, &opts, out, io::stderr().lock()) {
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

fn cluster(args: ClusterArgs) -> ExitCode {
    cluster::logging::init();
    let Some(loaded) = load(&args.refdata) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let mut cfg = cluster_config(args.kafka, &args.clickhouse, args.metrics_listen);
    cfg.api = match args.api.settings() {
        Ok(api) => api.map(|mut a| {
            a.config.future_skew_secs = i64::from(loaded.policy.future_skew_minutes) * 60;
            a.config.policy = loaded.policy.clone();
            a.directory = dashboard_api::Directory::from_reference(&loaded.reference);
            a
        }),
        Err(e) => {
            eprintln!("error: dashboard API: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    cfg.instance_id = args.instance_id;
    cfg.clock = match args.clock.as_str() {
        "event" => cluster::ClockMode::Event,
        _ => cluster::ClockMode::Wall {
            lateness: Duration::from_secs(args.lateness),
        },
    };
    cfg.batch_rows = args.batch_rows.max(1);
    cfg.batch_age = Duration::from_millis(args.batch_ms);
    cfg.checkpoint_interval = Duration::from_secs(args.checkpoint_secs.max(1));
    cfg.shutdown_deadline = Duration::from_secs(args.shutdown_secs.max(1));
    match cluster::run(cfg, Arc::new(loaded.reference), loaded.policy) {
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

fn cluster_config(
    kafka: KafkaArgs,
    clickhouse: &ClickHouseArgs,
    listen: std::net::SocketAddr,
) -> cluster::ClusterConfig {
    let mut cfg = cluster::ClusterConfig::new(&kafka.brokers, &clickhouse.clickhouse_url);
    cfg.group_id = kafka.group;
    cfg.events_topic = kafka.events_topic;
    cfg.dead_letter_topic = kafka.dead_letter_topic;
    cfg.alerts_topic = kafka.alerts_topic;
    cfg.status_topic = kafka.status_topic;
    cfg.actions_topic = kafka.actions_topic;
    cfg.kafka_options = kafka.kafka_options;
    cfg.database = clickhouse.database.clone();
    cfg.listen = Some(listen);
    cfg
}

fn api(args: ApiOnlyArgs) -> ExitCode {
    cluster::logging::init();
    let policy = match &args.policy {
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
    let mut cfg = cluster_config(args.kafka, &args.clickhouse, args.listen);
    cfg.api = match args.api.settings() {
        Ok(Some(mut api)) => {
            api.config.future_skew_secs = i64::from(policy.future_skew_minutes) * 60;
            api.config.policy = policy;
            if let Some(dir) = &args.reference {
                match ingest::reference_dir::load(dir, None) {
                    Ok(loaded) => {
                        api.directory = dashboard_api::Directory::from_reference(&loaded.reference)
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

fn check(refdata: &ReferenceArgs) -> ExitCode {
    let Some(loaded) = load(refdata) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    for note in &loaded.notes {
        println!("note: {note}");
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
            users.upsert(User {
                username: username.clone(),
                name,
                role,
                region,
                password_hash,
            });
            // Write beside, then rename: a running API never reads a half-written file.
            let tmp = path.with_extension("toml.tmp");
            std::fs::write(&tmp, users.to_toml())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!(
                "ok: {username} ({}, {region_text}) in {}",
                role.as_str(),
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
