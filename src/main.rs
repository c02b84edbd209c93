//! The `jiancha` command: wiring only. Each subcommand parses its arguments, loads what it
//! needs through the library crates and reports errors in words an operator can act on.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ingest::decode::DecodeOptions;
use ingest::reference_dir;
use rules::time::parse_rfc3339;
use rules::{Engine, Instant};

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
    /// Events topic.
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "jiancha.events",
        env = "JIANCHA_EVENTS_TOPIC"
    )]
    events_topic: String,
    /// Alerts topic (key alert_id, value the alert JSON).
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "jiancha.alerts",
        env = "JIANCHA_ALERTS_TOPIC"
    )]
    alerts_topic: String,
    /// Dead-letter topic (raw bytes; reason, field, message and source in headers).
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "jiancha.dead-letter",
        env = "JIANCHA_DEAD_LETTER_TOPIC"
    )]
    dead_letter_topic: String,
    /// Static group membership: a stable name per process (e.g. the pod name), so a restarted
    /// process takes its partitions back at once instead of after the old session times out.
    #[arg(long, value_name = "NAME", env = "JIANCHA_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Extra librdkafka setting for both consumer and producer (repeatable), e.g.
    /// security.protocol=SASL_SSL.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    kafka_options: Vec<(String, String)>,
    /// Serve /metrics (Prometheus) and /healthz on this address.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:9464",
        env = "JIANCHA_METRICS_LISTEN"
    )]
    metrics_listen: std::net::SocketAddr,
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
    let mut cfg = cluster::ClusterConfig::new(&args.brokers, &args.clickhouse.clickhouse_url);
    cfg.group_id = args.group;
    cfg.events_topic = args.events_topic;
    cfg.alerts_topic = args.alerts_topic;
    cfg.dead_letter_topic = args.dead_letter_topic;
    cfg.instance_id = args.instance_id;
    cfg.kafka_options = args.kafka_options;
    cfg.database = args.clickhouse.database;
    cfg.listen = Some(args.metrics_listen);
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
