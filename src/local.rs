//! `jiancha serve` (embedded mode), `jiancha demo` and `jiancha simulate`: wiring only.

use std::io::{self, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use node::embedded::{Clock, EmbeddedConfig};
use rules::{Day, Policy, Reference};
use sim::{Pacer, Profile, Rates, Simulator, World};

use crate::config::{ClockSetting, Config};
use crate::{load, set, ReferenceArgs, EXIT_UNUSABLE};

/// `jiancha serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    refdata: ReferenceArgs,
    /// Data directory; the SQLite database `jiancha.db` is made here ([embedded] data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Serve the API, event ingest, /metrics, /healthz and /readyz here ([api] listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    api: crate::ApiArgs,
    #[command(flatten)]
    engine: crate::EngineArgs,
}

/// `jiancha demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Data directory (reference data, users, secret and database are made here).
    #[arg(long, value_name = "DIR", default_value = "jiancha-demo")]
    data: PathBuf,
    /// Dashboard address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// `hall` (a county hall) or `city` (seven centres, about 6,000 cases a day).
    #[arg(long, default_value = "hall", value_parser = ["hall", "city"])]
    profile: String,
    /// The simulation starts this many days ago and runs at --speed until it reaches the
    /// present, then in real time.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    days_back: u32,
    /// Simulated seconds per wall second while catching up (600: a working day in about a
    /// minute; nights and weekends are skipped in at most 2 seconds).
    #[arg(long, default_value_t = 600.0)]
    speed: f64,
    /// Random seed (the same seed gives the same hall and the same day).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// `jiancha simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// `hall` (a county hall: 20 departments, 40 windows) or `city` (德阳-sized: seven
    /// centres, 377 windows, about 6,000 cases a working day).
    #[arg(long, default_value = "hall", value_parser = ["hall", "city"])]
    profile: String,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First simulated day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    start: Day,
    /// Calendar days to simulate (only working days have visitors).
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Write the simulated reference directory here (items, windows, staff).
    #[arg(long, value_name = "DIR")]
    reference_out: PathBuf,
    /// Write the ground truth (the alerts the injected misconduct must raise) here, NDJSON.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,
    /// Where events go: `ndjson` (--out, default standard output), `http` (--url, --token)
    /// or `kafka` (--brokers, --topic; key = center_id).
    #[arg(long, default_value = "ndjson", value_parser = ["ndjson", "http", "kafka"])]
    to: String,
    /// NDJSON output file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// With `--to ndjson`: write the events as rows of this source format (`sdjc`, `gdbs`,
    /// `gb39046`; SPEC §9) for `jiancha adapt`, instead of jiancha events. Events no table of
    /// the format carries (windows, staff, queues, …) are left out and counted.
    #[arg(long, value_name = "FORMAT", value_parser = ["sdjc", "gdbs", "gb39046"])]
    format: Option<String>,
    /// jiancha's base URL for `--to http`, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Publisher token for `--to http` (`jiancha user token`).
    #[arg(long, value_name = "TOKEN", env = "JIANCHA_TOKEN")]
    token: Option<String>,
    /// Kafka bootstrap servers for `--to kafka`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Events topic for `--to kafka`.
    #[arg(long, default_value = "jiancha.events")]
    topic: String,
    /// Pace: simulated seconds per wall second (absent: as fast as possible). With a pace,
    /// events are never sent before their time (a receiver refuses the future).
    #[arg(long)]
    speed: Option<f64>,
    /// Multiply every misconduct rate by this.
    #[arg(long, default_value_t = 1.0)]
    misconduct: f64,
}

fn parse_day(s: &str) -> Result<Day, String> {
    Day::parse(s).ok_or_else(|| format!("{s:?}: expected a date YYYY-MM-DD"))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("jiancha")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

pub fn fail(what: &str, e: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("error: {what}: {e}");
    ExitCode::from(code)
}

/// Run an embedded process until SIGINT/SIGTERM, then checkpoint and stop.
fn run_embedded(cfg: EmbeddedConfig, then: impl FnOnce(&node::embedded::Embedded)) -> ExitCode {
    run_embedded_with(cfg, None, then)
}

/// Block until SIGINT or SIGTERM.
pub fn wait_for_stop(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    });
}

/// The front-database pollers an embedded process runs beside its engine.
struct Pollers<'a> {
    sections: &'a [crate::frontdb::FrontDbSection],
    dir: PathBuf,
    reference: Arc<Reference>,
    skew: i64,
}

fn run_embedded_with(
    cfg: EmbeddedConfig,
    pollers: Option<Pollers<'_>>,
    then: impl FnOnce(&node::embedded::Embedded),
) -> ExitCode {
    // Rows and alerts are made on the engine's thread and freed on the writer's, as in
    // `cluster` (docs/EMBEDDED.md, "Memory").
    heap::keep_freed_memory();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail("serve", e, 1),
    };
    let node = match rt.block_on(node::embedded::start(cfg)) {
        Ok(n) => n,
        Err(e) => return fail("embedded mode", e, EXIT_UNUSABLE),
    };
    // Pollers append to the ingest log in the same transaction as their positions, after the
    // engine has started reading it.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads = match pollers {
        None => Vec::new(),
        Some(p) => match crate::frontdb::start(
            p.sections,
            &p.dir,
            p.reference,
            node.registry(),
            stop.clone(),
            || crate::frontdb::EmbeddedHandover {
                store: node.store.clone(),
                rt: rt.handle().clone(),
                skew: p.skew,
            },
        ) {
            Ok(t) => t,
            Err(problems) => {
                for p in problems {
                    eprintln!("error: {p}");
                }
                node.shutdown();
                return ExitCode::from(EXIT_UNUSABLE);
            }
        },
    };
    then(&node);
    wait_for_stop(&rt);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    eprintln!("stopping: storing the engine state");
    node.shutdown();
    ExitCode::SUCCESS
}

/// `jiancha serve`.
pub fn serve(args: ServeArgs, mut file: Config) -> ExitCode {
    cluster::logging::init();
    args.refdata.apply(&mut file.reference);
    args.api.apply(&mut file.api);
    args.engine.apply(&mut file.engine);
    set(&mut file.embedded.data, args.data);
    set(&mut file.api.listen, args.listen);
    let Some(loaded) = load(&file.reference) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let (Some(sources), Some(formats)) = (
        crate::sources(&file.reference),
        crate::formats(&file.reference),
    ) else {
        return ExitCode::from(EXIT_UNUSABLE);
    };
    let (Some(users_path), Some(secret)) = (&file.api.users, &file.api.token_secret_file) else {
        return fail(
            "serve",
            "needs a users file and a token secret (--users/--token-secret-file, [api] users/token_secret_file)",
            EXIT_UNUSABLE,
        );
    };
    let users = match Users::load(users_path) {
        Ok(u) => u,
        Err(e) => return fail("users", e, EXIT_UNUSABLE),
    };
    let key = match TokenKey::load(secret) {
        Ok(k) => k,
        Err(e) => return fail("token secret", e, EXIT_UNUSABLE),
    };
    let reference = Arc::new(loaded.reference);
    let pollers = Pollers {
        sections: &file.frontdb,
        dir: file.reference.dir.clone().unwrap_or_default(),
        reference: reference.clone(),
        skew: i64::from(loaded.policy.future_skew_minutes) * 60,
    };
    let mut cfg = EmbeddedConfig::new(
        file.embedded.data.clone(),
        reference,
        loaded.policy,
        file.api.listen,
        users_path.clone(),
        users,
        key,
    );
    cfg.sources = sources;
    cfg.formats = formats;
    cfg.api.token_ttl_secs = i64::from(file.api.token_ttl_hours.max(1)) * 3600;
    cfg.api.limits = file.security.limits();
    cfg.clock = match file.engine.clock {
        ClockSetting::Event => Clock::Event,
        ClockSetting::Wall => Clock::Wall {
            lateness: Duration::from_secs(file.engine.lateness_seconds),
        },
    };
    cfg.notify = file.notify.enabled.then(|| file.notify.clone());
    run_embedded_with(cfg, Some(pollers), |n| {
        eprintln!("jiancha serve: http://{}", n.addr)
    })
}

/// Random bytes from the operating system, as hex.
fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The demo's users, secret and password (made once, kept in the data directory).
fn demo_accounts(data: &Path, region: &str) -> io::Result<(Users, TokenKey, String)> {
    let login = data.join("demo-login.txt");
    let password = match std::fs::read_to_string(&login) {
        Ok(p) if p.trim().len() >= 8 => p.trim().to_string(),
        _ => {
            let p = random_hex(6)?;
            std::fs::write(&login, format!("{p}\n"))?;
            p
        }
    };
    let secret = data.join("token.secret");
    if !secret.exists() {
        std::fs::write(&secret, random_hex(32)?)?;
    }
    let key = TokenKey::load(&secret).map_err(io::Error::other)?;
    let hash = hash_password(&password).map_err(io::Error::other)?;
    let mut users = Users::default();
    // The operator is province-wide: `/metrics` counts every county (docs/SECURITY.md).
    let province = region.get(..2).unwrap_or(region);
    for (name, role, title, region) in [
        ("demo-leader", Role::Leader, "县长办公室", region),
        ("demo-inspector", Role::Inspector, "效能监察室", region),
        ("demo-auditor", Role::Auditor, "绩效办", region),
        ("demo-publisher", Role::Publisher, "窗口系统", region),
        ("demo-admin", Role::Admin, "运维", province),
    ] {
        users.upsert(User {
            username: name.into(),
            name: title.into(),
            role,
            region: Region::try_from(region.to_string()).map_err(io::Error::other)?,
            password_hash: hash.clone(),
            token_epoch: 0,
        });
    }
    std::fs::write(data.join("users.toml"), users.to_toml())?;
    Ok((users, key, password))
}

/// The sections of `file` that `jiancha demo` would ignore, set to anything but their defaults.
fn ignored_by_demo(file: &Config) -> Vec<&'static str> {
    let d = Config::default();
    [
        ("[reference]", file.reference == d.reference),
        ("[kafka]", file.kafka == d.kafka),
        ("[clickhouse]", file.clickhouse == d.clickhouse),
        ("[engine]", file.engine == d.engine),
        ("[cluster]", file.cluster == d.cluster),
        ("[api]", file.api == d.api),
        ("[embedded]", file.embedded == d.embedded),
    ]
    .into_iter()
    .filter(|(_, default)| !default)
    .map(|(name, _)| name)
    .collect()
}

/// `jiancha demo`: the embedded mode fed by the simulator over its own HTTP ingest.
pub fn demo(args: DemoArgs, file: Config) -> ExitCode {
    cluster::logging::init();
    let ignored = ignored_by_demo(&file);
    if !ignored.is_empty() {
        return fail(
            "demo",
            format!(
                "the configuration sets {}, which the demo would ignore: it makes its own \
                 reference data, users, database and clock (--data, --listen) and takes only \
                 [notify] from the file. Remove those sections for the demo, or run `jiancha \
                 serve` with this file",
                ignored.join(", ")
            ),
            EXIT_UNUSABLE,
        );
    }
    let profile = Profile::named(&args.profile).unwrap_or_else(Profile::hall);
    let region = if profile.centres.len() > 1 {
        "5106"
    } else {
        profile.centres[0].region.as_str()
    }
    .to_string();
    let world = World::new(&profile, args.seed);
    let reference_dir = args.data.join("reference");
    let prepared = std::fs::create_dir_all(&args.data)
        .and_then(|()| world.write_reference(&reference_dir))
        .and_then(|()| demo_accounts(&args.data, &region));
    let (users, key, password) = match prepared {
        Ok(x) => x,
        Err(e) => return fail(&format!("preparing {}", args.data.display()), e, 1),
    };
    let reference = match Reference::parse(&world.reference_files()) {
        Ok(r) => Arc::new(r),
        Err(e) => return fail("simulated reference data", format!("{e:?}"), 1),
    };
    let publisher = users
        .get("demo-publisher")
        .map(|u| key.issue(u, dashboard_api::wall_now().0, 400 * 86_400).0)
        .unwrap_or_default();
    let mut cfg = EmbeddedConfig::new(
        args.data.join("data"),
        reference,
        Policy::default(),
        args.listen,
        args.data.join("users.toml"),
        users,
        key,
    );
    cfg.clock = Clock::Event;
    cfg.notify = file.notify.enabled.then(|| file.notify.clone());
    cfg.sources = crate::adapt::source_entries(&reference_dir).unwrap_or_default();
    cfg.formats = crate::adapt::format_settings(Some(&reference_dir)).unwrap_or_default();
    // The simulated period is fixed at the first run (event ids are numbered from its start),
    // and a restart resumes after the last event the ingest acknowledged.
    let plan = args.data.join("demo-simulation.txt");
    let today = dashboard_api::wall_now().day();
    let start = std::fs::read_to_string(&plan)
        .ok()
        .and_then(|s| Day::parse(s.trim()))
        .unwrap_or(Day(today.0.saturating_sub(args.days_back)));
    let progress = args.data.join("demo-progress.txt");
    let resume_after = std::fs::read_to_string(&progress)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    if let Err(e) = std::fs::write(&plan, format!("{start}\n")) {
        return fail(&plan.display().to_string(), e, 1);
    }
    let (seed, speed) = (args.seed, args.speed);
    run_embedded(cfg, move |node| {
        let url = format!("http://{}", node.addr);
        println!(
            "\njiancha demo: {} supervised live at {url}\n  log in as demo-leader, demo-inspector or demo-auditor (demo-admin: /metrics), password {password}\n  simulation from {start} at {speed}× until the present, then in real time; data in {}\n  API guide: docs/API.md (OpenAPI at {url}/api/v1/openapi.json); Ctrl-C stops\n",
            profile
                .centres
                .iter()
                .map(|c| c.center_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            args.data.display()
        );
        // Events at the last acknowledged second are sent again (a batch may have ended
        // inside it); repeats are recognised by event_id.
        let mut console = CatchUp::default();
        let sim = Simulator::new(world, Rates::default(), seed, start, 400)
            .skip_while(move |(t, _)| t.0 < resume_after)
            .inspect(move |(t, _)| console.saw(*t, dashboard_api::wall_now()));
        let pacer = Pacer::new(Some(speed), Duration::from_secs(2), true);
        let record = move |t: rules::Instant| {
            if let Err(e) = std::fs::write(&progress, format!("{}\n", t.0)) {
                log::warn!("{}: {e}", progress.display());
            }
        };
        std::thread::spawn(move || {
            if let Err(e) = send_http(sim, pacer, &url, &publisher, record) {
                log::error!("demo simulator stopped: {e}");
            }
        });
    })
}

/// What the demo's console says while the simulation catches up with the present: each
/// simulated day as it begins (with how far behind it still is), then "已追上实时" once.
#[derive(Default)]
struct CatchUp {
    day: Option<Day>,
    caught_up: bool,
    events: u64,
}

impl CatchUp {
    fn saw(&mut self, t: rules::Instant, now: rules::Instant) {
        self.events += 1;
        if self.caught_up {
            return;
        }
        if t.0 >= now.0 - 60 {
            self.caught_up = true;
            // The console may be gone (a closed pipe): never let that stop the simulator.
            let _ = writeln!(
                io::stdout().lock(),
                "jiancha demo: 已追上实时（{} 条事件），此后按真实时间运行",
                self.events
            );
            return;
        }
        if self.day != Some(t.day()) {
            self.day = Some(t.day());
            let behind = now.0 - t.0;
            let _ = writeln!(
                io::stdout().lock(),
                "jiancha demo: 追赶中 · 模拟到 {} · 距现在还差 {} 天 {} 小时 · 已发送 {} 条事件",
                t.day(),
                behind / 86_400,
                behind % 86_400 / 3600,
                self.events
            );
        }
    }
}

/// Send events to jiancha's HTTP ingest in batches, paced; a refused batch is retried.
fn send_http(
    events: impl Iterator<Item = (rules::Instant, String)>,
    mut pacer: Pacer,
    base: &str,
    token: &str,
    mut acknowledged: impl FnMut(rules::Instant),
) -> Result<u64, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let url = format!("{}/api/v1/events", base.trim_end_matches('/'));
    let auth = format!("Bearer {token}");
    let mut sent = 0u64;
    let mut batch: Vec<String> = Vec::new();
    let mut last = rules::Instant(i64::MIN);
    let mut flush = |batch: &mut Vec<String>,
                     sent: &mut u64,
                     last: rules::Instant|
     -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        let body = batch.join("\n");
        let mut pause = Duration::from_millis(200);
        loop {
            match agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/x-ndjson")
                .send(body.as_bytes())
            {
                Ok(resp) if resp.status().as_u16() < 500 => {
                    let status = resp.status().as_u16();
                    if status == 401 || status == 403 {
                        return Err(format!("{url}: {status}: check the publisher token"));
                    }
                    if status == 422 {
                        log::warn!("{url}: some simulated events were refused (see dead letters)");
                    }
                    *sent += batch.len() as u64;
                    batch.clear();
                    acknowledged(last);
                    return Ok(());
                }
                Ok(resp) => log::warn!("{url}: {}; retrying", resp.status()),
                Err(e) => log::warn!("{url}: {e}; retrying"),
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    };
    for (t, line) in events {
        let delay = pacer.delay(t);
        if !delay.is_zero() || batch.len() >= 2000 {
            flush(&mut batch, &mut sent, last)?;
            std::thread::sleep(delay);
        }
        pacer.passed(t);
        batch.push(line);
        last = t;
    }
    flush(&mut batch, &mut sent, last)?;
    Ok(sent)
}

/// `"center_id":"…"` of a simulated line (the Kafka key).
fn center_of(line: &str) -> &str {
    line.split_once(r#""center_id":""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(c, _)| c)
}

fn send_kafka(
    events: impl Iterator<Item = (rules::Instant, String)>,
    mut pacer: Pacer,
    brokers: &str,
    topic: &str,
) -> Result<u64, String> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("compression.type", "lz4")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()
        .map_err(|e| format!("Kafka producer for {brokers}: {e}"))?;
    let mut sent = 0u64;
    for (t, line) in events {
        std::thread::sleep(pacer.delay(t));
        pacer.passed(t);
        let mut record = BaseRecord::to(topic).key(center_of(&line)).payload(&line);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    record = back;
                    if !matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ) {
                        return Err(format!("producing to {topic}: {e}"));
                    }
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
        producer.poll(Duration::ZERO);
        sent += 1;
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| format!("flushing to {topic}: {e}"))?;
    Ok(sent)
}

/// `jiancha simulate`.
pub fn simulate(args: SimulateArgs) -> ExitCode {
    let profile = Profile::named(&args.profile).unwrap_or_else(Profile::hall);
    let world = World::new(&profile, args.seed);
    if let Err(e) = world.write_reference(&args.reference_out) {
        return fail(&args.reference_out.display().to_string(), e, 1);
    }
    let r = Rates::default();
    let f = |v: u64| ((v as f64) * args.misconduct.max(0.0)).round() as u64;
    let rates = Rates {
        overdue: f(r.overdue),
        back_office: f(r.back_office),
        missing_stages: f(r.missing_stages),
        outside_hall: f(r.outside_hall),
        fee_irregular: f(r.fee_irregular),
        fee_without_case: f(r.fee_without_case),
        batch_entry: f(r.batch_entry),
        long_wait: f(r.long_wait),
        complaint: f(r.complaint),
        bad_rating: f(r.bad_rating),
        empty_window: f(r.empty_window),
        // The bridge's 挂起 is a special procedure of a kind outside 行政许可法 §45 ("other"),
        // which not every format carries (sdjc's special nodes do not): left to the demo and
        // the detection tests, so that every format carries the same hall.
        retroactive_pause: 0,
        fabricated_stages: f(r.fabricated_stages),
        placeholder_staff: f(r.placeholder_staff),
        deadline_mismatch: f(r.deadline_mismatch),
        // A re-reported row is a higher data version of the same row, which the formats'
        // emitter does not write (each event is a row of its own): left to the demo and the
        // detection tests, so that every format carries the same hall.
        corrected_acceptance: 0,
        // A front database's rows name no feed of their own (the adapter names the source):
        // the department reported only after completion, whose 办结 rows come before anything
        // placing their case, is left out, so that every format carries the same hall (the
        // demo and the detection tests have it).
        after_completion_feed: false,
        // Its backdated 挂起 too: the showcase is the demo's.
        showcase: false,
        ..r
    };
    let mut sim = Simulator::new(world, rates, args.seed, args.start, args.days);
    let end = sim.end();
    let pacer = Pacer::new(args.speed, Duration::from_secs(2), args.speed.is_some());
    let result = match args.to.as_str() {
        "http" => match (&args.url, &args.token) {
            (Some(url), Some(token)) => send_http(sim.by_ref(), pacer, url, token, |_| {}),
            _ => Err("--to http needs --url and --token (a publisher's token)".into()),
        },
        "kafka" => send_kafka(sim.by_ref(), pacer, &args.brokers, &args.topic),
        _ => match args.format.as_deref().and_then(adapters::Format::parse) {
            Some(format) => {
                let names = staff_names(&args.reference_out.join("staff.csv"));
                let mut left_out = 0u64;
                let mut emitter = adapters::emit::Emitter::new(format);
                let rows = sim.by_ref().flat_map(|(t, line)| {
                    let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    let rows = emitter.rows(&event, &|id| names.get(id).cloned());
                    left_out += u64::from(rows.is_empty());
                    rows.into_iter()
                        .map(move |r| (t, r.to_string()))
                        .collect::<Vec<_>>()
                });
                let written = write_ndjson(rows, pacer, args.out.as_deref());
                eprintln!(
                    "simulate: {left_out} events that no {} table carries were left out",
                    format.as_str()
                );
                written
            }
            None => write_ndjson(sim.by_ref(), pacer, args.out.as_deref()),
        },
    };
    let sent = match result {
        Ok(n) => n,
        Err(e) => return fail("simulate", e, 1),
    };
    let truth = sim.truth();
    if let Some(path) = &args.truth {
        if let Err(e) = std::fs::write(path, sim::truth_lines(&truth)) {
            return fail(&path.display().to_string(), e, 1);
        }
    }
    eprintln!(
        "simulate: {sent} events, {} expected alerts; replay with --until {end}",
        truth.len()
    );
    ExitCode::SUCCESS
}

/// staff_id → name from a simulated reference's staff.csv (the formats that name approvers).
fn staff_names(path: &Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

fn write_ndjson(
    events: impl Iterator<Item = (rules::Instant, String)>,
    mut pacer: Pacer,
    out: Option<&Path>,
) -> Result<u64, String> {
    let sink: Box<dyn Write> = match out {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Box::new(io::stdout().lock()),
    };
    let mut w = BufWriter::with_capacity(1 << 16, sink);
    let mut n = 0;
    for (t, line) in events {
        let delay = pacer.delay(t);
        if !delay.is_zero() {
            w.flush().map_err(|e| e.to_string())?;
            std::thread::sleep(delay);
        }
        pacer.passed(t);
        writeln!(w, "{line}").map_err(|e| e.to_string())?;
        n += 1;
    }
    w.flush().map_err(|e| e.to_string())?;
    Ok(n)
}
