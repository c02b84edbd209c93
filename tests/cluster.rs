//! Cluster mode end to end: the real `jiancha cluster` binary between a real Kafka-protocol
//! broker (tansu, `deploy/local/kafka.sh`) and a real ClickHouse (`deploy/local/clickhouse.sh`),
//! both started by `./scripts/test.sh`. Results are read back with SQL and compared with
//! `jiancha replay` over the same events: cluster mode must raise exactly the alerts the
//! reference command raises, whatever happens to the process or the store in between.
//!
//! Without the services these tests skip when run by hand, and fail when `CI` is set.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use rules::synth;
use serde_json::Value;

const PARTITIONS: i32 = 3;

#[path = "../notify/tests/support/receiver.rs"]
mod receiver;
mod support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn brokers() -> String {
    std::env::var("JIANCHA_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn clickhouse_url() -> String {
    std::env::var("JIANCHA_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// True when both services answer; otherwise skip (by hand) or fail (CI).
fn services_up(test: &str) -> bool {
    let kafka = brokers()
        .split(',')
        .next()
        .and_then(|a| a.parse().ok())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    let ch = curl(&format!("{}/ping", clickhouse_url()), None).is_some();
    if kafka && ch {
        return true;
    }
    let why = format!(
        "{test}: needs Kafka at {} ({kafka}) and ClickHouse at {} ({ch}); ./scripts/test.sh starts both",
        brokers(),
        clickhouse_url()
    );
    assert!(std::env::var_os("CI").is_none(), "CI: {why}");
    eprintln!("skipping {why}");
    false
}

fn curl(url: &str, body: Option<&str>) -> Option<String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sf", "--max-time", "30", url]);
    if let Some(body) = body {
        cmd.args(["--data-binary", body]);
    }
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run SQL on the ClickHouse at `url`; panics with the query on failure.
fn sql(url: &str, query: &str) -> String {
    curl(&format!("{url}/"), Some(query)).unwrap_or_else(|| panic!("query failed: {query}"))
}

/// A name unique to this test run.
fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}_{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn scratch(name: &str) -> String {
    std::env::temp_dir()
        .join(unique(name))
        .to_string_lossy()
        .into_owned()
}

/// `deploy/local/SCRIPT ACTION` with `env`: a service instance of the test's own.
fn own_service(script: &str, env: &[(&str, String)]) -> impl Fn(&str) {
    let script = root().join("deploy/local").join(script);
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |action: &str| {
        let status = Command::new(&script)
            .arg(action)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .status()
            .expect("service script");
        assert!(status.success(), "{} {action}", script.display());
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Topics of one test: events (3 partitions), alerts, dead letters.
struct Topics {
    events: String,
    alerts: String,
    dead: String,
    status: String,
    actions: String,
}

fn create_topics(brokers: &str, name: &str) -> Topics {
    let topics = Topics {
        events: unique(&format!("{name}.events")),
        alerts: unique(&format!("{name}.alerts")),
        dead: unique(&format!("{name}.dead")),
        status: unique(&format!("{name}.status")),
        actions: unique(&format!("{name}.actions")),
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let new = [
        NewTopic::new(&topics.events, PARTITIONS, TopicReplication::Fixed(1)),
        NewTopic::new(&topics.alerts, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&topics.dead, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&topics.status, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&topics.actions, 1, TopicReplication::Fixed(1)),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime
        .block_on(admin.create_topics(&new, &AdminOptions::new()))
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
    topics
}

/// A reference directory and an event file from the synthetic workload: three centres (C0,
/// C1, C2, one per partition), a month of events, every event with `reported_at` (so lateness
/// is judged the same by replay and by live ingest), invalid lines mixed in, and a closing
/// `queue.ticket_issued` per centre so every partition's clock ends where replay's does.
struct Dataset {
    dir: PathBuf,
    events: PathBuf,
    lines: Vec<String>,
    invalid: usize,
}

impl Dataset {
    /// The stream with corrections (see [`with_corrections`]).
    fn new(name: &str, events: usize) -> Dataset {
        let dir = std::env::temp_dir().join(unique(name));
        fs::create_dir_all(&dir).expect("dataset dir");
        let files = synth::reference_files();
        for (file, text) in [files.items, files.windows, files.staff]
            .into_iter()
            .flatten()
        {
            let base = file.rsplit('/').next().unwrap_or(&file).to_string();
            fs::write(dir.join(base), text).expect("reference file");
        }
        let (mut lines, now) = synth::corrected_stream(events);
        let bad = [
            "this is not JSON".to_string(),
            r#"{"event_id":"bad-region","kind":"queue.ticket_issued","occurred_at":"2026-03-10T09:00:00+08:00","center_id":"C0","region":"990000","ticket_no":"X1"}"#.to_string(),
            r#"{"event_id":"bad-kind","kind":"case.teleported","occurred_at":"2026-03-10T09:00:00+08:00","center_id":"C1","region":"430621"}"#.to_string(),
        ];
        let invalid = bad.len();
        for (i, b) in bad.into_iter().enumerate() {
            lines.insert((i + 1) * lines.len() / 4, b);
        }
        let end = rules::Instant(now.0 + 86_400);
        for c in 0..3 {
            lines.push(format!(
                r#"{{"event_id":"end-C{c}","kind":"queue.ticket_issued","occurred_at":"{end}","reported_at":"{end}","center_id":"C{c}","region":"43062{c}","window_id":"W00{c}","ticket_no":"END{c}"}}"#
            ));
        }
        let path = dir.join("events.ndjson");
        let mut f = fs::File::create(&path).expect("events file");
        for l in &lines {
            writeln!(f, "{l}").expect("write events");
        }
        Dataset {
            dir,
            events: path,
            lines,
            invalid,
        }
    }

    /// The final state of every alert according to `jiancha replay`: id → (rule, level,
    /// status, fired_at seconds).
    fn expected(&self) -> Alerts {
        let alerts = final_states(&self.replay());
        assert!(alerts.len() > 50, "the dataset raises alerts");
        alerts
    }

    /// `jiancha replay`'s output: its alerts as NDJSON.
    fn replay(&self) -> Vec<u8> {
        let out = Command::new(env!("CARGO_BIN_EXE_jiancha"))
            .args(["replay", "--reference"])
            .arg(&self.dir)
            .arg("--events")
            .arg(&self.events)
            .output()
            .expect("run replay");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

type Alerts = BTreeMap<String, (String, String, String, i64)>;

/// The final state of each alert in replay's NDJSON output (a retraction follows its firing).
fn final_states(ndjson: &[u8]) -> Alerts {
    String::from_utf8_lossy(ndjson)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("alert JSON");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let fired = rules::time::parse_rfc3339(&s("fired_at"))
                .expect("fired_at")
                .0;
            (s("alert_id"), (s("rule"), s("level"), s("status"), fired))
        })
        .collect()
}

/// The stored final state of every alert, read with `FINAL` as the dashboards read it.
fn stored(url: &str, db: &str) -> Alerts {
    let text = sql(
        url,
        &format!(
            "SELECT alert_id, rule, level, status, toUInt32(fired_at) FROM {db}.alerts FINAL FORMAT TabSeparated"
        ),
    );
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                (
                    f[1].to_string(),
                    f[2].to_string(),
                    f[3].to_string(),
                    f[4].parse().expect("seconds"),
                ),
            )
        })
        .collect()
}

fn center_key(line: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("center_id")?
        .as_str()
        .map(str::to_string)
}

/// Produce lines with librdkafka, keyed by `center_id` with the Java-compatible partitioner
/// (the one every Kafka client defaults to), so each centre's events stay in one partition.
fn produce(brokers: &str, topic: &str, lines: &[String]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for line in lines {
        let key = center_key(line);
        let mut record = BaseRecord::<str, str>::to(topic).payload(line.as_str());
        if let Some(k) = &key {
            record = record.key(k.as_str());
        }
        let mut record = Some(record);
        while let Some(r) = record.take() {
            if let Err((e, back)) = producer.send(r) {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "produce: {e}"
                );
                producer.poll(Duration::from_millis(50));
                record = Some(back);
            }
        }
    }
    // A loaded broker (tests run in parallel on two cores) may take longer than one flush
    // timeout; queued messages stay queued, so keep flushing.
    let mut tries = 0;
    while let Err(e) = producer.flush(Duration::from_secs(60)) {
        tries += 1;
        assert!(
            tries < 5,
            "flush: {e} ({} still queued)",
            producer.in_flight_count()
        );
    }
}

fn consumer(brokers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// (committed offset, log end offset) per partition of `topic`, asked through `watcher` (a
/// client of the group that never joins it).
fn progress(watcher: &BaseConsumer, topic: &str) -> rdkafka::error::KafkaResult<Vec<(i64, i64)>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let committed = watcher.committed_offsets(tpl, Duration::from_secs(10))?;
    (0..PARTITIONS)
        .map(|p| {
            let (_, high) = watcher.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            let done = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            };
            Ok((done, high))
        })
        .collect()
}

/// Every message of a single-partition topic: (key, payload, headers as name → value).
fn read_topic(brokers: &str, topic: &str) -> Vec<(String, String, BTreeMap<String, String>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.partition.eof", "true")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    c.assign(&tpl).expect("assign");
    // A broker loaded by the other tests can miss one metadata deadline; keep asking.
    let asked = Instant::now();
    let high = loop {
        match c.fetch_watermarks(topic, 0, Duration::from_secs(10)) {
            Ok((_, high)) => break high,
            Err(e) if asked.elapsed() < Duration::from_secs(90) => {
                eprintln!("watermarks of {topic}: {e}; asking again");
            }
            Err(e) => panic!("watermarks of {topic}: {e}"),
        }
    };
    let mut out = Vec::new();
    let start = Instant::now();
    while (out.len() as i64) < high && start.elapsed() < Duration::from_secs(60) {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let text =
                    |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
                let mut headers = BTreeMap::new();
                if let Some(h) = m.headers() {
                    for header in h.iter() {
                        headers.insert(header.key.to_string(), text(header.value));
                    }
                }
                out.push((text(m.key()), text(m.payload()), headers));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("reading {topic}: {e}"),
        }
    }
    out
}

/// A running `jiancha cluster`.
struct Jiancha {
    child: Child,
    metrics: String,
    log: PathBuf,
}

struct Setup {
    brokers: String,
    /// One client for every progress question (a new client per question, four times a
    /// second per test, loads the broker more than jiancha does).
    watcher: BaseConsumer,
    topics: Topics,
    group: String,
    db: String,
    ch: String,
}

impl Setup {
    fn new(name: &str) -> Setup {
        Setup::on(&brokers(), name)
    }

    /// On the broker at `brokers` (a test's own, when it restarts it).
    fn on(brokers: &str, name: &str) -> Setup {
        let group = unique(&format!("{name}-group"));
        Setup {
            watcher: consumer(brokers, &group),
            brokers: brokers.to_string(),
            topics: create_topics(brokers, name),
            group,
            db: unique(name),
            ch: clickhouse_url(),
        }
    }

    fn start(&self, data: &Dataset, extra: &[&str]) -> Jiancha {
        let port = free_port();
        let log = data.dir.join(format!("jiancha-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_jiancha"))
            .arg("cluster")
            .arg("--reference")
            .arg(&data.dir)
            .args(["--brokers", &self.brokers])
            .args(["--group", &self.group])
            .args(["--events-topic", &self.topics.events])
            .args(["--alerts-topic", &self.topics.alerts])
            .args(["--dead-letter-topic", &self.topics.dead])
            .args(["--status-topic", &self.topics.status])
            .args(["--actions-topic", &self.topics.actions])
            .args(["--clickhouse-url", &self.ch])
            .args(["--database", &self.db])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .args(
                [
                    ["--checkpoint-secs", "1"],
                    ["--batch-ms", "200"],
                    ["--clock", "event"],
                ]
                .into_iter()
                .filter(|[flag, _]| !extra.contains(flag))
                .flatten(),
            )
            .args(extra)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start jiancha cluster");
        Jiancha {
            child,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            log,
        }
    }
}

impl Setup {
    fn produce(&self, lines: &[String]) {
        produce(&self.brokers, &self.topics.events, lines);
    }

    /// (committed, end) per partition; a broker too busy to answer is asked again (≤ 60 s).
    fn progress(&self) -> Vec<(i64, i64)> {
        let asked = Instant::now();
        loop {
            match progress(&self.watcher, &self.topics.events) {
                Ok(p) => return p,
                Err(e) if asked.elapsed() < Duration::from_secs(60) => {
                    eprintln!("progress: {e}; asking again");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => panic!("committed and end offsets: {e}"),
            }
        }
    }

    /// Every partition committed up to its end. A broker too busy to answer is "not yet": the
    /// wait's own timeout decides.
    fn fully_committed(&self) -> bool {
        progress(&self.watcher, &self.topics.events)
            .is_ok_and(|p| p.iter().all(|(committed, end)| committed == end))
    }

    /// Waits until every partition is committed to its end; on timeout the panic names each
    /// partition's (committed, end) and the end of each process's log, so a CI failure says
    /// which process stopped and why.
    fn wait_committed(&self, timeout: Duration, processes: &[&Jiancha]) {
        let start = Instant::now();
        while !self.fully_committed() {
            if start.elapsed() >= timeout {
                let logs: Vec<String> = processes
                    .iter()
                    .map(|j| {
                        let log = j.log();
                        let tail: Vec<&str> = log.lines().rev().take(40).collect();
                        let tail: Vec<&str> = tail.into_iter().rev().collect();
                        format!(
                            "--- {} (last 40 lines)\n{}",
                            j.log.display(),
                            tail.join("\n")
                        )
                    })
                    .collect();
                panic!(
                    "timed out after {timeout:?}: every offset committed; (committed, end) per partition: {:?}\n{}",
                    progress(&self.watcher, &self.topics.events),
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn committed(&self) -> Vec<i64> {
        self.progress().iter().map(|p| p.0).collect()
    }
}

impl Jiancha {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status once it has drained.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        let status = self.child.wait().expect("wait");
        (status, self.log())
    }

    /// SIGKILL: a crash, nothing drained.
    fn crash(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// Resident memory of the process (Linux `VmRSS`), KiB.
    fn rss_kib(&self) -> u64 {
        fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// A metric's value summed over its series (`name{` or `name `).
    fn metric(&self, name: &str) -> f64 {
        let text = curl(&self.metrics, None).unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Jiancha {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_same_alerts(expected: &Alerts, got: &Alerts) {
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, _)| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, _)| !expected.contains_key(*k))
        .take(5)
        .collect();
    let differ: Vec<_> = expected
        .iter()
        .filter_map(|(k, v)| got.get(k).filter(|g| *g != v).map(|g| (k, v, g)))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "expected {} alerts, stored {}\nmissing: {missing:?}\nextra: {extra:?}\ndiffer (expected, stored): {differ:?}",
        expected.len(),
        got.len()
    );
}

#[test]
fn cluster_raises_what_replay_raises_and_sets_bad_messages_aside() {
    if !services_up("cluster_raises_what_replay_raises") {
        return;
    }
    let data = Dataset::new("basic", 12_000);
    let expected = data.expected();
    let setup = Setup::new("basic");
    setup.produce(&data.lines);
    let j = setup.start(&data, &[]);
    setup.wait_committed(Duration::from_secs(120), &[&j]);
    assert_same_alerts(&expected, &stored(&setup.ch, &setup.db));

    // Bad messages: in the dead-letter table and topic with their reasons; the stream went on.
    let reasons = sql(
        &setup.ch,
        &format!(
            "SELECT reason FROM {}.dead_letters FINAL ORDER BY reason FORMAT TabSeparated",
            setup.db
        ),
    );
    assert_eq!(
        reasons.lines().collect::<Vec<_>>(),
        vec!["bad_region", "not_json", "unknown_kind"],
        "dead letters"
    );
    let dead = read_topic(&setup.brokers, &setup.topics.dead);
    assert_eq!(dead.len(), data.invalid);
    assert!(dead
        .iter()
        .any(|(_, payload, h)| payload == "this is not JSON"
            && h.get("reason").map(String::as_str) == Some("not_json")
            && h.get("source").is_some_and(|s| s.starts_with("kafka:"))));

    // Alerts topic: every alert, keyed by its id, as SPEC §7 JSON.
    let published = read_topic(&setup.brokers, &setup.topics.alerts);
    let keys: std::collections::BTreeSet<&str> =
        published.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(
        expected.keys().all(|id| keys.contains(id.as_str())),
        "all alerts published"
    );
    let (key, payload, _) = &published[0];
    let v: serde_json::Value = serde_json::from_str(payload).expect("alert JSON");
    assert_eq!(v["alert_id"].as_str(), Some(key.as_str()));

    // Raw events and metrics.
    let valid = data.lines.len() - data.invalid;
    let events: usize = sql(
        &setup.ch,
        &format!("SELECT count() FROM {}.events FINAL", setup.db),
    )
    .trim()
    .parse()
    .expect("count");
    let kept = j.metric("jiancha_events_consumed_total")
        - j.metric("jiancha_duplicate_events_total")
        - j.metric("jiancha_events_refused_total");
    assert_eq!(
        events, kept as usize,
        "one raw row per event applied ({valid} valid)"
    );
    assert_eq!(j.metric("jiancha_events_consumed_total") as usize, valid);
    assert_eq!(
        j.metric("jiancha_decode_failures_total") as usize,
        data.invalid
    );
    assert!(j.metric("jiancha_alerts_total") as usize >= expected.len());
    assert!(j.metric("jiancha_store_batch_rows_count") >= 1.0);
    assert_eq!(j.metric("jiancha_partitions"), PARTITIONS as f64);
    wait_until(
        "lag reported for every partition, and zero",
        Duration::from_secs(30),
        || {
            let text = curl(&j.metrics, None).unwrap_or_default();
            let lags: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("jiancha_consumer_lag{"))
                .collect();
            lags.len() == PARTITIONS as usize && lags.iter().all(|l| l.ends_with(" 0"))
        },
    );
    assert!(j.metric("jiancha_checkpoint_bytes") > 0.0);

    let (status, log) = j.terminate();
    assert!(status.success(), "clean stop: {log}");
    assert!(log.contains("stopped cleanly"), "{log}");
}

#[test]
fn an_independent_client_produces_the_same_results() {
    if !services_up("an_independent_client_produces_the_same_results") {
        return;
    }
    let python = root().join("tests/kafka/produce.py");
    let data = Dataset::new("python", 4_000);
    let expected = data.expected();
    let setup = Setup::new("python");
    let out = Command::new("python3")
        .arg(&python)
        .arg(brokers())
        .arg(&setup.topics.events)
        .arg(&data.events)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "kafka-python producer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = setup.start(&data, &[]);
    setup.wait_committed(Duration::from_secs(120), &[&j]);
    assert_same_alerts(&expected, &stored(&setup.ch, &setup.db));
    drop(j);
}

#[test]
fn a_crash_mid_stream_loses_nothing_and_duplicates_nothing() {
    if !services_up("a_crash_mid_stream_loses_nothing_and_duplicates_nothing") {
        return;
    }
    let data = Dataset::new("crash", 16_000);
    let expected = data.expected();
    let setup = Setup::new("crash");
    let half = data.lines.len() / 2;
    setup.produce(&data.lines[..half]);
    // Static membership, as deployed: the restarted process rejoins as the same member.
    let node = ["--instance-id", "node-a"];
    let first = setup.start(&data, &node);
    wait_until("the first half committed", Duration::from_secs(120), || {
        setup.fully_committed()
    });
    let (status, log) = first.terminate();
    assert!(status.success(), "{log}");
    // The rest goes to a process that checkpoints only hourly: it processes and writes every
    // alert, commits nothing, and is killed.
    let crashing = setup.start(&data, &[node[0], node[1], "--checkpoint-secs", "3600"]);
    setup.produce(&data.lines[half..]);
    wait_until(
        "every alert written, before any commit",
        Duration::from_secs(120),
        || stored(&setup.ch, &setup.db) == expected,
    );
    crashing.crash();
    let before = setup.progress();
    assert!(
        before.iter().any(|(committed, end)| committed < end),
        "the crash left uncommitted work: {before:?}"
    );
    let second = setup.start(&data, &node);
    wait_until(
        "everything committed after the restart",
        Duration::from_secs(120),
        || setup.fully_committed(),
    );
    assert_same_alerts(&expected, &stored(&setup.ch, &setup.db));
    // Restored, not rebuilt: the second process started from checkpoints.
    assert!(
        second.log().contains("state restored at offset"),
        "{}",
        second.log()
    );
    // It re-read exactly the uncommitted second half, and its re-emitted alerts collapsed.
    assert_eq!(
        (second.metric("jiancha_events_consumed_total")
            + second.metric("jiancha_decode_failures_total")) as usize,
        data.lines.len() - half
    );
    let (status, log) = second.terminate();
    assert!(status.success(), "{log}");
}

/// Kafka Streams' kill -9 test, for jiancha: the stream arrives in slices while the one
/// process is killed with SIGKILL at random moments, at least 20 times, and restarted; in the
/// end ClickHouse holds exactly replay's alerts (each once, in its final state).
#[test]
fn killed_twenty_times_at_random_moments_it_loses_and_duplicates_nothing() {
    if !services_up("killed_twenty_times_at_random_moments_it_loses_and_duplicates_nothing") {
        return;
    }
    let data = Dataset::new("crashloop", 24_000);
    let expected = data.expected();
    let setup = Setup::new("crashloop");
    let node = ["--instance-id", "node-a"];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u64 | 1);
    println!("kill schedule seed {seed}");
    let mut state = seed;
    let mut random = |below: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % below
    };
    let slices = 21;
    let per = data.lines.len().div_ceil(slices);
    let (mut kills, mut interrupted) = (0, 0);
    for slice in data.lines.chunks(per).take(slices - 1) {
        setup.produce(slice);
        let victim = setup.start(&data, &node);
        // Killed while it works: once it holds its partitions, at a random moment.
        wait_until("partitions assigned", Duration::from_secs(90), || {
            victim.metric("jiancha_partitions") >= PARTITIONS as f64
        });
        std::thread::sleep(Duration::from_millis(random(2500)));
        let before = setup.progress();
        victim.crash();
        kills += 1;
        if before.iter().any(|(committed, end)| committed < end) {
            interrupted += 1;
        }
    }
    setup.produce(&data.lines[per * (slices - 1)..]);
    let last = setup.start(&data, &node);
    wait_until(
        "everything committed after the last restart",
        Duration::from_secs(180),
        || setup.fully_committed(),
    );
    println!("{kills} SIGKILLs, {interrupted} with uncommitted work");
    assert!(kills >= 20, "{kills} kills");
    assert!(
        interrupted >= 10,
        "only {interrupted} kills interrupted work"
    );
    assert_same_alerts(&expected, &stored(&setup.ch, &setup.db));
    let (status, log) = last.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn with_clickhouse_down_offsets_hold_and_nothing_is_lost() {
    if !services_up("with_clickhouse_down_offsets_hold_and_nothing_is_lost") {
        return;
    }
    // A ClickHouse of its own, so stopping it disturbs no other test.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let clickhouse = own_service(
        "clickhouse.sh",
        &[
            ("JIANCHA_CLICKHOUSE_URL", url.clone()),
            ("JIANCHA_CLICKHOUSE_DIR", scratch("clickhouse")),
        ],
    );
    clickhouse("start");
    let data = Dataset::new("outage", 10_000);
    let expected = data.expected();
    let mut setup = Setup::new("outage");
    setup.ch = url.clone();
    let half = data.lines.len() / 2;
    setup.produce(&data.lines[..half]);
    let j = setup.start(&data, &[]);
    wait_until("the first half committed", Duration::from_secs(120), || {
        setup.fully_committed()
    });
    let held = setup.committed();

    // A minute without ClickHouse while the second half arrives.
    clickhouse("stop");
    setup.produce(&data.lines[half..]);
    std::thread::sleep(Duration::from_secs(5));
    let rss_early = j.rss_kib();
    std::thread::sleep(Duration::from_secs(55));
    let rss_late = j.rss_kib();
    assert_eq!(
        setup.committed(),
        held,
        "no offset advances while ClickHouse is down"
    );
    assert!(j.metric("jiancha_store_write_failures_total") >= 1.0);
    // Memory is bounded: a minute of retries holds the same batches, it does not pile up.
    println!("RSS during the outage: {rss_early} KiB after 5 s, {rss_late} KiB after 60 s");
    assert!(
        rss_late < rss_early + 64 * 1024,
        "memory grew from {rss_early} to {rss_late} KiB while ClickHouse was down"
    );

    clickhouse("start");
    wait_until(
        "everything committed after the outage",
        Duration::from_secs(180),
        || setup.fully_committed(),
    );
    assert_same_alerts(&expected, &stored(&url, &setup.db));
    let (status, log) = j.terminate();
    assert!(status.success(), "{log}");
    clickhouse("stop");
}

#[test]
fn two_processes_share_the_partitions_and_agree_with_one() {
    if !services_up("two_processes_share_the_partitions_and_agree_with_one") {
        return;
    }
    let data = Dataset::new("scale", 12_000);
    let expected = data.expected();
    let setup = Setup::new("scale");
    let a = setup.start(&data, &[]);
    let b = setup.start(&data, &[]);
    wait_until(
        "both processes own partitions",
        Duration::from_secs(60),
        || {
            a.metric("jiancha_partitions") >= 1.0
                && b.metric("jiancha_partitions") >= 1.0
                && a.metric("jiancha_partitions") + b.metric("jiancha_partitions")
                    == PARTITIONS as f64
        },
    );
    setup.produce(&data.lines);
    wait_until("every offset committed", Duration::from_secs(120), || {
        setup.fully_committed()
    });
    assert_same_alerts(&expected, &stored(&setup.ch, &setup.db));
    let consumed =
        a.metric("jiancha_events_consumed_total") + b.metric("jiancha_events_consumed_total");
    assert_eq!(
        consumed as usize,
        data.lines.len() - data.invalid,
        "each event consumed once"
    );
    assert!(
        a.metric("jiancha_events_consumed_total") > 0.0
            && b.metric("jiancha_events_consumed_total") > 0.0
    );

    // One leaves: the other takes its partitions over from their checkpoints.
    let (status, log) = a.terminate();
    assert!(status.success(), "{log}");
    wait_until(
        "the survivor owns every partition",
        Duration::from_secs(60),
        || b.metric("jiancha_partitions") == PARTITIONS as f64,
    );
    // Its own partitions came back without a reload; the others from their checkpoints.
    wait_until(
        "the survivor has every partition's state",
        Duration::from_secs(60),
        || {
            let log = b.log();
            log.contains("state kept in memory") && log.contains("state restored at offset")
        },
    );
    drop(b);
}

#[test]
fn two_processes_notify_every_alert_line_exactly_once() {
    if !services_up("two_processes_notify_every_alert_line_exactly_once") {
        return;
    }
    let data = Dataset::new("notify", 4_000);
    let replay = Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args(["replay", "--reference"])
        .arg(&data.dir)
        .arg("--events")
        .arg(&data.events)
        .output()
        .expect("replay");
    // Every firing and every retraction, as (alert_id, status).
    let mut expected: Vec<(String, String)> = String::from_utf8_lossy(&replay.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("alert");
            (
                v["alert_id"].as_str().unwrap_or_default().to_string(),
                v["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    expected.sort();
    assert!(expected.len() > 50, "the dataset raises alerts");
    let listener = TcpListener::bind("127.0.0.1:0").expect("receiver");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let receiver = receiver::Receiver::start(listener);
    let config = data.dir.join("notify.toml");
    fs::write(
        &config,
        format!(
            "[notify]\nenabled = true\nmax_age_hours = 1000000\n\n\
             [[notify.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}\"\n\
             rate_per_minute = 1000000\nburst = 1000000\n\n\
             [[notify.routes]]\nchannels = [\"hook\"]\nretractions = true\n"
        ),
    )
    .expect("config");
    let setup = Setup::new("notify");
    let args = ["--config", config.to_str().unwrap_or_default()];
    let a = setup.start(&data, &args);
    let b = setup.start(&data, &args);
    setup.produce(&data.lines);
    let received = || -> Vec<(String, String)> {
        let mut got: Vec<(String, String)> = receiver
            .got()
            .iter()
            .map(|(_, body)| {
                let v: Value = serde_json::from_str(body).expect("webhook JSON");
                (
                    v["alert"]["alert_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    v["alert"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        got.sort();
        got
    };
    wait_until(
        "every alert line notified",
        Duration::from_secs(180),
        || received().len() >= expected.len(),
    );
    // Whatever is still in flight has a moment to show up as a duplicate.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        received(),
        expected,
        "each alert line once, by one of the two processes"
    );
    let sent = a.metric("jiancha_notifications_total") + b.metric("jiancha_notifications_total");
    assert_eq!(sent as usize, expected.len());
    let recorded = sql(
        &setup.ch,
        &format!("SELECT count(DISTINCT alert_id, status) FROM {}.notifications WHERE fate = 'sent' FORMAT TabSeparated", setup.db),
    );
    assert_eq!(
        recorded.trim().parse::<usize>().unwrap_or_default(),
        expected.len()
    );
}

/// The replicated ClickHouse of `deploy/local/clickhouse-cluster.sh` (ZooKeeper, clusters
/// `jiancha_test` of one server and `jiancha_test_2x2` of two shards of two replicas).
/// Whether 绩效 counts alerts of `rule`: cards of people, not ladder steps nor findings about
/// a feed (docs/RULES.md).
fn counted_in_perf(rule: &str) -> bool {
    rule != "discipline.ladder"
        && !rule.starts_with("source.")
        && rule != "data.corrected"
        && rule != "data.placeholder_staff"
}

fn replicated_clickhouse_url() -> Option<String> {
    let url = std::env::var("JIANCHA_CLICKHOUSE_CLUSTER_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8133".into());
    if curl(&format!("{url}/ping"), None).is_some() {
        return Some(url);
    }
    let why = format!(
        "needs the replicated ClickHouse at {url}: deploy/local/clickhouse-cluster.sh start"
    );
    assert!(std::env::var_os("CI").is_none(), "CI: {why}");
    eprintln!("skipping: {why}");
    None
}

/// What an auditor sees, the whole jurisdiction over every period: history (every page), the
/// CSV export and the 绩效 table by department (its cards and complaints, which replay's
/// alerts determine) are what `jiancha replay` raised; a case's timeline holds the case's
/// events.
fn assert_the_auditor_sees_what_replay_raised(base: &str, token: &str, data: &Dataset) {
    let replayed = data.replay();
    let expected = final_states(&replayed);
    let pages = paged(base, "/api/v1/history/alerts?limit=1000", token, "");
    assert_eq!(pages.len(), expected.len(), "history: each alert once");
    let history: Alerts = pages
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            let fired = rules::time::parse_rfc3339(&s("fired_at"))
                .expect("fired_at")
                .0;
            (s("alert_id"), (s("rule"), s("level"), s("status"), fired))
        })
        .collect();
    assert_same_alerts(&expected, &history);

    let csv = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "60"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{base}/api/v1/history/alerts.csv"))
        .output()
        .expect("curl");
    let csv = String::from_utf8(csv.stdout).expect("UTF-8");
    let mut records = csv.trim_start_matches('\u{feff}').split_terminator("\r\n");
    assert!(
        records
            .next()
            .is_some_and(|h| h.starts_with("告警编号,规则,级别,状态,触发时间,")),
        "{csv:.200}"
    );
    let records: Vec<&str> = records.collect();
    assert_eq!(records.len(), expected.len(), "CSV: each alert once");
    // The CSV is for people: rule, level and status in Chinese, times local to the minute.
    let in_csv_terms: Alerts = expected
        .iter()
        .map(|(id, (rule, level, status, fired))| {
            let rule = rules::Rule::parse(rule).map_or(rule.as_str(), |r| r.zh());
            let level = rules::Level::parse(level).map_or(level.as_str(), |l| l.zh());
            let status = match status.as_str() {
                "open" => "有效",
                "retracted" => "已撤销",
                "cleared" => "已自动解除",
                other => other,
            };
            let minute = fired - fired.rem_euclid(60);
            (
                id.clone(),
                (rule.into(), level.into(), status.into(), minute),
            )
        })
        .collect();
    let exported: Alerts = records
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.splitn(6, ',').collect();
            let local = f[4].replace(' ', "T") + ":00+08:00";
            let fired = rules::time::parse_rfc3339(&local).expect("fired_at").0;
            let s = |i: usize| f[i].to_string();
            (s(0), (s(1), s(2), s(3), fired))
        })
        .collect();
    assert_same_alerts(&in_csv_terms, &exported);

    // The cards per department: fired in the period, not retracted, counted in 绩效.
    let mut cards: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let departments: BTreeMap<String, String> = String::from_utf8_lossy(&replayed)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("alert JSON");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("alert_id"), s("department"))
        })
        .collect();
    for (id, (rule, level, status, _)) in &expected {
        if status == "retracted" || status == "cleared" || !counted_in_perf(rule) {
            continue;
        }
        let n = cards.entry(departments[id].clone()).or_default();
        let i = ["warning", "yellow", "red"]
            .iter()
            .position(|l| l == level)
            .expect("a level");
        n[i] += 1;
        n[3] += u64::from(rule == "complaint.filed");
    }
    let (st, perf) = http(
        "GET",
        &format!("{base}/api/v1/performance?by=department&from=2000-01-01&to=2099-12-31"),
        Some(token),
        None,
    );
    assert_eq!(st, 200, "{perf}");
    let got: BTreeMap<String, [u64; 4]> = perf["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap_or(0);
            let key = r["key"].as_str().unwrap_or_default().to_string();
            (
                key,
                [n("warnings"), n("yellows"), n("reds"), n("complaints")],
            )
        })
        .filter(|(_, n)| n.iter().any(|&x| x > 0))
        .collect();
    assert_eq!(got, cards, "绩效 cards per department");
    assert!(
        perf["total"]["counts"]["completed"].as_u64().unwrap_or(0) > 0
            && perf["total"]["counts"]["accepted"].as_u64().unwrap_or(0) > 0,
        "finished and accepted cases are counted: {}",
        perf["total"]
    );

    // A case's timeline: its events, oldest first, each once.
    let case = expected
        .keys()
        .find_map(|id| {
            let line = String::from_utf8_lossy(&replayed)
                .lines()
                .find(|l| l.contains(id.as_str()))
                .map(str::to_string)?;
            let v: Value = serde_json::from_str(&line).ok()?;
            v["case_id"].as_str().map(str::to_string)
        })
        .expect("an alert about a case");
    let events = data
        .lines
        .iter()
        .filter(|l| l.contains(&format!(r#""case_id":"{case}""#)))
        .count();
    let (st, timeline) = http(
        "GET",
        &format!("{base}/api/v1/cases/{case}/timeline"),
        Some(token),
        None,
    );
    assert_eq!(st, 200, "{timeline}");
    assert_eq!(
        timeline["events"].as_array().map(Vec::len),
        Some(events),
        "{timeline}"
    );
}

#[test]
fn cluster_mode_on_replicated_tables_behind_distributed_tables_raises_what_replay_raises() {
    if !services_up("cluster_mode_on_replicated_tables") {
        return;
    }
    let Some(ch) = replicated_clickhouse_url() else {
        return;
    };
    let data = Dataset::new("replicated", 3_000);
    let expected = data.expected();
    let mut setup = Setup::new("replicated");
    setup.ch = ch;
    // `jiancha migrate --cluster`: every table Replicated, with a Distributed front, on two
    // shards of two replicas each.
    let cluster = "jiancha_test_2x2";
    let out = Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args([
            "migrate",
            "--clickhouse-url",
            &setup.ch,
            "--database",
            &setup.db,
        ])
        .args(["--cluster", cluster])
        .output()
        .expect("migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("applied migrations [1, 2, 3, 5, 6, 7, 10]"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let engines = sql(
        &setup.ch,
        &format!(
            "SELECT name, engine FROM system.tables WHERE database = '{}' AND name IN ('alerts', 'alerts_local', 'checkpoints_local') ORDER BY name FORMAT TabSeparated",
            setup.db
        ),
    );
    assert_eq!(
        engines,
        "alerts\tDistributed\nalerts_local\tReplicatedReplacingMergeTree\ncheckpoints_local\tReplicatedReplacingMergeTree\n"
    );
    let config = data.dir.join("replicated.toml");
    fs::write(&config, format!("[clickhouse]\ncluster = \"{cluster}\"\n")).expect("config");
    let (api_flags, tokens) = api_users(&data, &[("auditor", "auditor", "43")]);
    let mut flags = vec!["--config", config.to_str().unwrap_or_default()];
    flags.extend(api_flags.iter().map(String::as_str));
    let a = setup.start(&data, &flags);
    setup.produce(&data.lines[..data.lines.len() / 2]);
    // A crash mid-stream: the next process restores the checkpoint read through the
    // Distributed table.
    std::thread::sleep(Duration::from_secs(3));
    a.crash();
    let b = setup.start(&data, &flags);
    setup.produce(&data.lines[data.lines.len() / 2..]);
    setup.wait_committed(Duration::from_secs(180), &[&b]);
    assert_same_alerts(&expected, &stored(&setup.ch, &setup.db));
    let base = b.metrics.trim_end_matches("/metrics").to_string();
    wait_until("the API is ready", Duration::from_secs(60), || {
        http("GET", &format!("{base}/readyz"), None, None).0 == 200
    });
    assert_the_auditor_sees_what_replay_raised(&base, &tokens[0], &data);
    drop(b);
    curl(
        &format!("{}/", setup.ch),
        Some(&format!(
            "DROP DATABASE IF EXISTS {} ON CLUSTER {cluster}",
            setup.db
        )),
    );
}

#[test]
fn in_wall_clock_mode_deadlines_pass_without_new_events() {
    if !services_up("in_wall_clock_mode_deadlines_pass_without_new_events") {
        return;
    }
    // Accepted cases, then silence: their deadlines pass by the wall clock alone.
    let data = Dataset::new("wall", 600);
    let setup = Setup::new("wall");
    let quiet: Vec<String> = data
        .lines
        .iter()
        .filter(|l| l.contains(r#""kind":"case.accepted""#))
        .take(50)
        .cloned()
        .collect();
    setup.produce(&quiet);
    let path = data.dir.join("quiet.ndjson");
    fs::write(&path, quiet.join("\n") + "\n").expect("write");
    let _j = setup.start(&data, &["--clock", "wall", "--lateness", "0"]);
    wait_until("overdue alerts stored", Duration::from_secs(120), || {
        let q = format!(
            "SELECT count() FROM {}.alerts WHERE rule = 'case.overdue' AND level = 'red'",
            setup.db
        );
        curl(&format!("{}/", setup.ch), Some(&q)).is_some_and(|n| n.trim() != "0")
    });
    // The same as replay advanced to now (comparing alerts due more than a day ago).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let until = rules::Instant(now).to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args(["replay", "--reference"])
        .arg(&data.dir)
        .arg("--events")
        .arg(&path)
        .args(["--until", &until])
        .output()
        .expect("replay");
    let expected: Alerts = final_states(&out.stdout)
        .into_iter()
        .filter(|(_, v)| v.3 < now - 86_400)
        .collect();
    assert!(!expected.is_empty());
    wait_until(
        "all of replay's alerts stored",
        Duration::from_secs(60),
        || {
            let got = stored(&setup.ch, &setup.db);
            expected.keys().all(|k| got.contains_key(k))
        },
    );
    let got: BTreeMap<_, _> = stored(&setup.ch, &setup.db)
        .into_iter()
        .filter(|(_, v)| v.3 < now - 86_400)
        .collect();
    assert_same_alerts(&expected, &got);
}

#[test]
fn a_missing_topic_is_refused_at_start_up() {
    if !services_up("a_missing_topic_is_refused_at_start_up") {
        return;
    }
    let data = Dataset::new("missing", 100);
    let mut setup = Setup::new("missing");
    setup.topics.alerts = unique("no-such-alerts-topic");
    let mut j = setup.start(&data, &[]);
    let status = j.child.wait().expect("wait");
    let log = j.log();
    assert!(!status.success());
    assert!(
        log.contains(&format!("topic \"{}\" does not exist", setup.topics.alerts)),
        "{log}"
    );
}

#[test]
fn a_store_that_refuses_writes_stops_the_process_without_committing() {
    if !services_up("a_store_that_refuses_writes_stops_the_process_without_committing") {
        return;
    }
    let data = Dataset::new("refused", 2_000);
    let setup = Setup::new("refused");
    let half = data.lines.len() / 2;
    setup.produce(&data.lines[..half]);
    let mut j = setup.start(&data, &[]);
    wait_until("the first half committed", Duration::from_secs(120), || {
        setup.fully_committed()
    });
    let held: Vec<i64> = setup.committed();
    // An operator error the server will refuse every time: retrying cannot help, skipping
    // would lose the events' history.
    sql(&setup.ch, &format!("DROP TABLE {}.events", setup.db));
    setup.produce(&data.lines[half..]);
    let status = j.child.wait().expect("jiancha exits");
    let log = j.log();
    assert!(!status.success(), "{log}");
    assert!(log.contains("store refused"), "{log}");
    let now: Vec<i64> = setup.committed();
    assert_eq!(now, held, "nothing committed past the refusal");
}

#[test]
fn a_broker_restart_mid_stream_loses_nothing() {
    if !services_up("a_broker_restart_mid_stream_loses_nothing") {
        return;
    }
    // A broker of its own (tansu, SQLite storage), so restarting it disturbs no other test.
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let kafka = own_service(
        "kafka.sh",
        &[
            ("JIANCHA_KAFKA_PORT", port.to_string()),
            ("JIANCHA_KAFKA_DIR", scratch("kafka")),
        ],
    );
    kafka("start");
    let data = Dataset::new("broker", 8_000);
    let expected = data.expected();
    let setup = Setup::on(&brokers, "broker");
    let half = data.lines.len() / 2;
    setup.produce(&data.lines[..half]);
    let j = setup.start(&data, &["--instance-id", "node-b"]);
    wait_until("the first half committed", Duration::from_secs(120), || {
        setup.fully_committed()
    });
    kafka("stop");
    std::thread::sleep(Duration::from_secs(3));
    kafka("start");
    setup.produce(&data.lines[half..]);
    wait_until(
        "everything committed after the broker came back",
        Duration::from_secs(180),
        || setup.fully_committed(),
    );
    assert_same_alerts(&expected, &stored(&setup.ch, &setup.db));
    let (status, log) = j.terminate();
    assert!(status.success(), "{log}");
    kafka("stop");
}

/// A users file with `users` (name, role, region) and a token secret, in the dataset's
/// directory: the flags that give a process the dashboard API, and each user's token.
fn api_users(data: &Dataset, users: &[(&str, &str, &str)]) -> (Vec<String>, Vec<String>) {
    let file = data.dir.join("users.toml");
    let secret = data.dir.join("secret");
    fs::write(&secret, "0123456789abcdef0123456789abcdef-test-only").expect("secret");
    for (name, role, region) in users {
        support::add_user(&file, name, role, region, &[], "s3cret-pass");
    }
    let tokens = users
        .iter()
        .map(|(name, _, _)| support::token(&file, &secret, name))
        .collect();
    let path = |p: &PathBuf| p.to_str().expect("path").to_string();
    let flags = vec![
        "--users".to_string(),
        path(&file),
        "--token-secret-file".to_string(),
        path(&secret),
    ];
    (flags, tokens)
}

/// (HTTP status, JSON body) of a request with an optional bearer token and JSON body.
fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--max-time",
        "30",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        url,
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// Every alert of the API's list at `base` for `token` (all pages).
fn api_alerts(base: &str, token: &str, query: &str) -> Vec<Value> {
    paged(base, "/api/v1/alerts?limit=500", token, query)
}

/// Every item of a paged listing.
fn paged(base: &str, path: &str, token: &str, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let (st, page) = http(
            "GET",
            &format!("{base}{path}{query}{cursor}"),
            Some(token),
            None,
        );
        assert_eq!(st, 200, "{page}");
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return items,
        }
    }
}

#[test]
fn the_dashboard_api_serves_cluster_alerts_and_window_status_to_every_api_process() {
    if !services_up("the_dashboard_api_serves_cluster_alerts") {
        return;
    }
    let data = Dataset::new("api", 4_000);
    let expected = data.expected();
    let setup = Setup::new("api");
    // Users made with the CLI: a county inspector (C0 is 430620) and a city leader.
    let (api_flags, tokens) = api_users(
        &data,
        &[
            ("c0-inspector", "inspector", "430620"),
            ("city-leader", "leader", "4306"),
            ("c0-window-system", "publisher", "430620"),
        ],
    );
    let listed = support::jiancha_user(&["list", "--users", &api_flags[1]], "");
    assert!(
        listed.contains("c0-inspector\tinspector\t430620"),
        "{listed}"
    );
    let [inspector, leader, publisher] = [&tokens[0], &tokens[1], &tokens[2]].map(String::clone);
    let api_flags: Vec<&str> = api_flags.iter().map(String::as_str).collect();
    let j = setup.start(&data, &api_flags);
    let base = j.metrics.trim_end_matches("/metrics").to_string();
    wait_until("the API is ready", Duration::from_secs(60), || {
        http("GET", &format!("{base}/readyz"), None, None).0 == 200
    });
    setup.produce(&data.lines);
    wait_until("every offset committed", Duration::from_secs(120), || {
        setup.fully_committed()
    });
    let open_expected = expected.values().filter(|v| v.2 == "open").count();
    wait_until(
        "every open alert reached the API",
        Duration::from_secs(60),
        || api_alerts(&base, &leader, "&status=open").len() == open_expected,
    );
    // The auditor's history reads the same alerts back from ClickHouse, and the 绩效 table
    // counts their cards.
    let history = paged(
        &base,
        "/api/v1/history/alerts?limit=1000",
        &leader,
        "&status=open",
    );
    assert_eq!(history.len(), open_expected, "history of every open alert");
    let (st, perf) = http(
        "GET",
        &format!("{base}/api/v1/performance?by=department&from=2026-01-01&to=2026-12-31"),
        Some(&leader),
        None,
    );
    assert_eq!(st, 200, "{perf}");
    let cards: u64 = ["warnings", "yellows", "reds"]
        .iter()
        .map(|k| perf["total"]["counts"][k].as_u64().unwrap_or(0))
        .sum();
    let not_ladder = history
        .iter()
        .filter(|a| counted_in_perf(a["rule"].as_str().unwrap_or_default()))
        .count();
    assert_eq!(cards as usize, not_ladder, "{}", perf["total"]);
    // Jurisdiction: the county inspector sees only 430620.
    let county = api_alerts(&base, &inspector, "&status=open");
    assert!(!county.is_empty() && county.len() < open_expected);
    assert!(county.iter().all(|a| a["region"] == "430620"));
    // Window status flows engine → ClickHouse and status topic → API.
    let (st, windows) = http(
        "GET",
        &format!("{base}/api/v1/windows"),
        Some(&leader),
        None,
    );
    assert_eq!(st, 200);
    let windows = windows["items"].as_array().cloned().unwrap_or_default();
    assert!(!windows.is_empty(), "window statuses arrived");
    let stored_windows = sql(
        &setup.ch,
        &format!(
            "SELECT count() FROM {}.window_status FINAL FORMAT TabSeparated",
            setup.db
        ),
    );
    assert_eq!(stored_windows.trim(), windows.len().to_string());

    // An inspector acts; the trail is in ClickHouse.
    let target = county
        .iter()
        .find(|a| a["case_id"].is_string())
        .expect("a case alert in C0");
    let id = target["alert_id"].as_str().expect("id").to_string();
    let actions_url = format!("{base}/api/v1/alerts/{id}/actions");
    let (st, r) = http(
        "POST",
        &actions_url,
        Some(&inspector),
        Some(r#"{"action":"acknowledge","note":"已签收"}"#),
    );
    assert_eq!(st, 200, "{r}");
    let (st, r) = http(
        "POST",
        &actions_url,
        Some(&leader),
        Some(r#"{"action":"resolve","note":"x"}"#),
    );
    assert_eq!((st, r["error"].as_str()), (403, Some("forbidden")));
    let trail = sql(
        &setup.ch,
        &format!(
            "SELECT actor, action FROM {}.alert_actions FORMAT TabSeparated",
            setup.db
        ),
    );
    assert_eq!(trail.trim(), "c0-inspector\tacknowledge");
    let (_, detail) = http(
        "GET",
        &format!("{base}/api/v1/alerts/{id}"),
        Some(&inspector),
        None,
    );
    assert!(
        detail["timeline"].as_array().is_some_and(|t| !t.is_empty()),
        "the case timeline comes from the stored events: {detail}"
    );

    // A second, API-only process loads the same state from ClickHouse, then follows the topics:
    // it shows the acknowledgement, and the first process's next action arrives live.
    let port = free_port();
    let api_log = data.dir.join("api.log");
    let mut second = Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .arg("api")
        .args(["--brokers", &setup.brokers])
        .args(["--alerts-topic", &setup.topics.alerts])
        .args(["--status-topic", &setup.topics.status])
        .args(["--actions-topic", &setup.topics.actions])
        .args(["--clickhouse-url", &setup.ch, "--database", &setup.db])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(api_flags)
        .stderr(fs::File::create(&api_log).expect("log"))
        .spawn()
        .expect("jiancha api");
    let base2 = format!("http://127.0.0.1:{port}");
    wait_until(
        "the API-only process is ready",
        Duration::from_secs(60),
        || http("GET", &format!("{base2}/readyz"), None, None).0 == 200,
    );
    let (_, d2) = http(
        "GET",
        &format!("{base2}/api/v1/alerts/{id}"),
        Some(&inspector),
        None,
    );
    assert_eq!(d2["alert"]["status"], "acknowledged", "{d2}");
    assert_eq!(
        api_alerts(&base2, &leader, "&status=open").len() + 1,
        open_expected,
        "every other open alert is there"
    );
    let deadline = rules::Instant(now_secs() + 86_400).to_string();
    let (st, r) = http(
        "POST",
        &actions_url,
        Some(&inspector),
        Some(&format!(
            r#"{{"action":"supervise","note":"限期说明","reply_deadline":"{deadline}"}}"#
        )),
    );
    assert_eq!(st, 200, "{r}");
    wait_until(
        "the other process shows the 督办",
        Duration::from_secs(30),
        || {
            let (_, d) = http(
                "GET",
                &format!("{base2}/api/v1/alerts/{id}"),
                Some(&inspector),
                None,
            );
            d["alert"]["status"] == "supervising"
        },
    );

    // A new event: its alert reaches a dashboard on the API-only process over WebSocket.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let url = format!("ws://127.0.0.1:{port}/api/v1/live?access_token={leader}&level=warning");
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(256 << 20))
            .max_frame_size(Some(256 << 20));
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .expect("WebSocket");
        let snapshot = read_live(&mut ws).await;
        assert_eq!(snapshot["type"], "snapshot");
        let complaint = format!(
            r#"{{"event_id":"live-complaint","kind":"complaint.filed","occurred_at":"{t}","reported_at":"{t}","center_id":"C0","region":"430620","window_id":"W000","complaint_id":"LIVE-1","category":"attitude"}}"#,
            t = rules::Instant(now_secs()).to_string()
        );
        // Sent the way a window system sends it: HTTP ingest, which in cluster mode produces
        // to the events topic and answers once the brokers have it.
        let (st, answer) = http(
            "POST",
            &format!("{base}/api/v1/events"),
            Some(&publisher),
            Some(&complaint),
        );
        assert_eq!(st, 200, "{answer}");
        // The event moves C0's clock from March to today: a burst of window day changes comes
        // with it, which may overrun the change buffer. Either way the client ends up with the
        // alert: as a change, or in a "lagged" snapshot.
        let is_live = |a: &Value| a["rule"] == "complaint.filed" && a["subject"]["complaint_id"] == "LIVE-1";
        loop {
            let m = read_live(&mut ws).await;
            let got = match m["type"].as_str() {
                Some("alert") => is_live(&m["alert"]),
                Some("snapshot") => {
                    assert_eq!(m["reason"], "lagged", "{m}");
                    m["alerts"].as_array().is_some_and(|a| a.iter().any(is_live))
                }
                _ => false,
            };
            if got {
                break;
            }
        }
    });
    // A line that is not a valid event is refused with its reason and kept as a dead letter.
    let (st, answer) = http(
        "POST",
        &format!("{base}/api/v1/events"),
        Some(&publisher),
        Some(
            r#"{"event_id":"bad-1","kind":"case.accepted","occurred_at":"2026-03-02T09:00:00+08:00","center_id":"C0","region":"430620"}"#,
        ),
    );
    assert_eq!(st, 422, "{answer}");
    assert_eq!(answer["results"][0]["reason"], "missing_field");
    let dead = sql(
        &setup.ch,
        &format!(
            "SELECT reason, source FROM {}.dead_letters WHERE source LIKE 'http:%' FORMAT TabSeparated",
            setup.db
        ),
    );
    // The source names the line, and a suffix makes it unique (dead letters never overwrite
    // each other).
    assert!(
        dead.trim()
            .starts_with("missing_field\thttp:c0-window-system:1#"),
        "{dead}"
    );
    let _ = second.kill();
    let _ = second.wait();
    drop(j);
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

type LiveSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message of the live feed that is not a heartbeat.
async fn read_live(ws: &mut LiveSocket) -> Value {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("JSON");
            if v["type"] != "heartbeat" {
                return v;
            }
        }
    }
}

#[test]
fn the_simulator_publishes_to_kafka_what_it_writes_to_a_file() {
    if !services_up("the_simulator_publishes_to_kafka") {
        return;
    }
    let brokers = brokers();
    let topics = create_topics(&brokers, "sim");
    let dir = PathBuf::from(scratch("sim"));
    let simulate = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_jiancha"))
            .args(["simulate", "--profile", "hall", "--seed", "2"])
            .args(["--start", "2026-11-02", "--days", "1"])
            .args(["--reference-out", dir.join("ref").to_str().expect("path")])
            .args(extra)
            .output()
            .expect("jiancha simulate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let file = dir.join("events.ndjson");
    simulate(&["--out", file.to_str().expect("path")]);
    // A single-partition topic, so the order can be compared too.
    simulate(&[
        "--to",
        "kafka",
        "--brokers",
        &brokers,
        "--topic",
        &topics.actions,
    ]);
    let lines: Vec<String> = fs::read_to_string(&file)
        .expect("events")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        lines.len() > 1000,
        "a working day of a hall: {}",
        lines.len()
    );
    let got = read_topic(&brokers, &topics.actions);
    let payloads: Vec<&String> = got.iter().map(|m| &m.1).collect();
    assert_eq!(payloads, lines.iter().collect::<Vec<_>>());
    assert!(got.iter().all(|m| m.0 == "PJ-ZWFW"), "keyed by center_id");
}

/// A reference directory for the source-format tests: 平江 (430626) serves department BDC
/// with item P5; 李明 (PJ-S01) is its clerk.
fn format_reference(name: &str) -> Dataset {
    let dir = std::env::temp_dir().join(unique(name));
    fs::create_dir_all(&dir).expect("reference dir");
    fs::write(
        dir.join("items.csv"),
        "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n\
         P5,不动产转移登记,BDC,promised,20,working,5,working,,,,true,hall,8050,accept\n",
    )
    .expect("items");
    fs::write(
        dir.join("windows.csv"),
        "window_id,center_id,region,department,in_hall\nPJ-W01,PJ,430626,BDC,true\n",
    )
    .expect("windows");
    fs::write(
        dir.join("staff.csv"),
        "staff_id,name,department,window_id,in_hall,center_id\nPJ-S01,李明,BDC,PJ-W01,true,\n",
    )
    .expect("staff");
    Dataset {
        events: dir.join("events.ndjson"),
        dir,
        lines: Vec::new(),
        invalid: 0,
    }
}

/// Every message of every partition of `topic` (payloads): waiting up to 90 s for `n`, then
/// two more seconds for any that should not be there.
fn read_all(brokers: &str, topic: &str, partitions: i32, n: usize) -> Vec<Value> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let start = Instant::now();
    let mut quiet: Option<Instant> = None;
    while start.elapsed() < Duration::from_secs(90)
        && quiet.is_none_or(|q| q.elapsed() < Duration::from_secs(2))
    {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(serde_json::from_slice(m.payload().unwrap_or_default()).expect("event JSON"));
        }
        if out.len() >= n && quiet.is_none() {
            quiet = Some(Instant::now());
        }
    }
    out
}

/// Produce `(key, value)` records (a `None` value is a tombstone) to one partition.
fn produce_values(brokers: &str, topic: &str, records: &[(&str, Option<String>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for (key, value) in records {
        let mut r = BaseRecord::<str, str>::to(topic).key(key).partition(0);
        if let Some(v) = value {
            r = r.payload(v.as_str());
        }
        producer.send(r).map_err(|(e, _)| e).expect("produce");
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

/// Source tables on Kafka, as Kafka Connect's JDBC source and Debezium write them (with and
/// without the JSON converter's schema envelope), and the formats' HTTP endpoints in cluster
/// mode: every record reaches the events topic as the adapter's events — a create as an
/// event, an update with a higher `DATAVER` as a correction (`supersedes`), a delete as an
/// `event.withdrawn` — epoch times and decimals read as the database wrote them, a bad row a
/// dead letter naming its topic and offset, and the source offsets committed once handed over.
#[test]
fn change_topics_and_format_endpoints_feed_the_events_topic() {
    if !services_up("change_topics_and_format_endpoints_feed_the_events_topic") {
        return;
    }
    let setup = Setup::new("changes");
    let data = format_reference("changes-ref");
    let src = |t: &str| unique(&format!("qzk.{t}"));
    let (basic, proc_, done, fee) = (src("basic"), src("proc"), src("done"), src("fee"));
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &setup.brokers)
        .create()
        .expect("admin");
    let new: Vec<NewTopic> = [&basic, &proc_, &done, &fee]
        .iter()
        .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for r in rt
        .block_on(admin.create_topics(&new, &AdminOptions::new()))
        .expect("create")
    {
        r.expect("source topic");
    }
    let config = data.dir.join("jiancha.toml");
    fs::write(
        &config,
        format!(
            "[[change_topics]]\ntopic = \"{basic}\"\nenvelope = \"jdbc\"\nformat = \"sdjc\"\ntable = \"EA_JC_STEP_BASICINFO\"\n\n\
             [[change_topics]]\ntopic = \"{proc_}\"\nenvelope = \"debezium\"\nformat = \"sdjc\"\n\n\
             [[change_topics]]\ntopic = \"{done}\"\nenvelope = \"debezium\"\nformat = \"sdjc\"\ntable = \"EA_JC_STEP_DONE\"\n\n\
             [[change_topics]]\ntopic = \"{fee}\"\nenvelope = \"jdbc\"\nformat = \"sdjc\"\ntable = \"EA_JC_FEEINFO\"\nsource = \"sdjc:pj-qzk\"\n"
        ),
    )
    .expect("config");
    let (mut flags, tokens) = api_users(&data, &[("pj-system", "publisher", "430626")]);
    flags.extend([
        "--config".to_string(),
        config.to_string_lossy().into_owned(),
    ]);
    let extra: Vec<&str> = flags.iter().map(String::as_str).collect();
    let j = setup.start(&data, &extra);
    let base = j.metrics.trim_end_matches("/metrics").to_string();
    wait_until("the API answers", Duration::from_secs(60), || {
        curl(&format!("{base}/readyz"), None).is_some()
    });

    // JDBC source with the schema envelope: times as Connect Timestamps (ms, the 前置库's
    // wall clock read as UTC).
    let ms = |t: &str| {
        let at = rules::time::parse_rfc3339(&format!("{t}+00:00")).expect("time");
        at.0 * 1000
    };
    let jdbc_basic = serde_json::json!({
        "schema": {"type":"struct","name":"EA_JC_STEP_BASICINFO","fields":[
            {"field":"PROJID","type":"string"},{"field":"ORGBUSNO","type":"string"},
            {"field":"DATAVER","type":"int32"},{"field":"ITEMNO","type":"string"},
            {"field":"ACCEPTDEPTID","type":"string"},{"field":"APPROVALTYPE","type":"string"},
            {"field":"PROMISETIMELIMIT","type":"int32"},{"field":"PROMISETIMEUNIT","type":"string"},
            {"field":"SUBMIT","type":"string"},{"field":"TRANSACTOR","type":"string"},
            {"field":"OCCURTIME","type":"int64","name":"org.apache.kafka.connect.data.Timestamp"},
            {"field":"MAKETIME","type":"int64","name":"org.apache.kafka.connect.data.Timestamp"}]},
        "payload": {"PROJID":"K2","ORGBUSNO":"R2","DATAVER":1,"ITEMNO":"P5","ACCEPTDEPTID":"BDC",
            "APPROVALTYPE":"2","PROMISETIMELIMIT":5,"PROMISETIMEUNIT":"1","SUBMIT":"0","TRANSACTOR":"李明",
            "OCCURTIME": ms("2026-11-02T09:00:00"),"MAKETIME": ms("2026-11-02T09:05:00")}});
    produce_values(
        &setup.brokers,
        &basic,
        &[("K2", Some(jdbc_basic.to_string()))],
    );

    // Debezium with the schema envelope: create, update (DATAVER 2: a correction), delete,
    // and the tombstone Kafka Connect writes after a delete.
    let step = |ver: i64, result: &str| {
        serde_json::json!({"PROJID":"K2","ORGBUSNO":"R2","DATAVER":ver,"SN":1,"NODENAME":"审核",
            "NODEPROCER":"PJ-S01","PROCUNIT":"BDC","NODESTATE":"02","NODERESULT":result,
            "NODESTARTTIME": ms("2026-11-03T09:00:00") * 1000,"NODEENDTIME": ms("2026-11-03T10:00:00") * 1000})
    };
    let micro = serde_json::json!([
        {"field":"NODESTARTTIME","type":"int64","name":"io.debezium.time.MicroTimestamp"},
        {"field":"NODEENDTIME","type":"int64","name":"io.debezium.time.MicroTimestamp"}]);
    let schema = serde_json::json!({"type":"struct","fields":[
        {"field":"before","type":"struct","optional":true,"fields":micro},
        {"field":"after","type":"struct","optional":true,"fields":micro},
        {"field":"source","type":"struct","fields":[]},{"field":"op","type":"string"}]});
    let change = |op: &str, before: Value, after: Value| {
        serde_json::json!({"schema": schema, "payload": {"before": before, "after": after, "op": op,
            "source": {"connector":"oracle","db":"QZK","schema":"DHQZK","table":"EA_JC_STEP_PROC"},"ts_ms": 1}})
        .to_string()
    };
    produce_values(
        &setup.brokers,
        &proc_,
        &[
            ("K2", Some(change("c", Value::Null, step(1, "1")))),
            ("K2", Some(change("u", step(1, "1"), step(2, "7")))),
            ("K2", Some(change("d", step(2, "7"), Value::Null))),
            ("K2", None),
        ],
    );

    // Debezium without the schema envelope (schemas.enable=false): a snapshot read of a 办结
    // row whose time is a bare µs number, and a row with a code outside its table.
    let done_row = |result: &str| {
        serde_json::json!({"before": null, "op": "r", "source": {"table":"EA_JC_STEP_DONE"},
            "after": {"PROJID":"K2","ORGBUSNO":"R2","DATAVER":1,"DONERESULT":result,"ACCEPTDEPTID":"BDC",
                "OCCURTIME": ms("2026-11-05T16:00:00") * 1000}})
        .to_string()
    };
    produce_values(
        &setup.brokers,
        &done,
        &[("K2", Some(done_row("0"))), ("K3", Some(done_row("42")))],
    );

    // JDBC source without the schema: a fee row as a plain object.
    let fee_row = serde_json::json!({"PROJID":"K2","ORGBUSNO":"R2","SN":1,"ITEMNO":"P5","FEEORGID":"BDC",
        "BILLNUM":"PJ-0001","PAYPERSON":"张三","FEETOTAL":"80.50","STATE":"1","PAYTIME":"2026-11-05 15:00:00"});
    produce_values(&setup.brokers, &fee, &[("K2", Some(fee_row.to_string()))]);

    // The formats' endpoints in cluster mode: an sdjc receiveBasicInfo and a GBK <ExInfo>.
    let post = |path: &str, headers: &[&str], body: Vec<u8>| {
        let file = data.dir.join(unique("body"));
        fs::write(&file, body).expect("body file");
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "--max-time",
            "30",
            "-w",
            "\n%{http_code}",
            &format!("{base}{path}"),
        ]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        cmd.arg("--data-binary").arg(format!("@{}", file.display()));
        let text = String::from_utf8_lossy(&cmd.output().expect("curl").stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse::<u16>().unwrap_or(0), body.to_string())
    };
    let token = format!("token: {}", tokens[0]);
    let (st, reply) = post(
        "/api/v1/ingest/sdjc/receiveBasicInfo",
        &[&token, "Content-Type: application/json"],
        br#"{"projid":"K1","orgbusno":"R1","dataver":1,"itemno":"P5","acceptdeptid":"BDC","approvaltype":"2","promisetimelimit":5,"promisetimeunit":"1","submit":"0","occurtime":"2026-11-02 10:00:00"}"#.to_vec(),
    );
    assert_eq!(st, 200, "{reply}");
    assert!(reply.contains(r#""code":"200""#), "{reply}");
    let (gbk, _, _) = encoding_rs::GBK.encode(
        "<?xml version=\"1.0\" encoding=\"GBK\"?><ExInfo><standardInfo process=\"EX_GDBS_SPCL\">\
         <Field FieldName=\"SBLSH\">44K9</Field><Field FieldName=\"SXBM\">P5</Field>\
         <Field FieldName=\"SPBMZZJDMD\">BDC</Field><Field FieldName=\"SPHJDM\">2</Field>\
         <Field FieldName=\"SPHJZTDM\">1</Field><Field FieldName=\"SPRXM\">李明</Field>\
         <Field FieldName=\"SPSJ\">2026-11-03 11:00:00</Field></standardInfo></ExInfo>",
    );
    let (st, reply) = post("/api/v1/ingest/gdbs/exinfo", &[&token], gbk.into_owned());
    assert_eq!(st, 200, "{reply}");
    assert!(reply.contains("<STATUS>200</STATUS>"), "{reply}");
    // A mislabelled body in cluster mode: the format's error reply, nothing produced.
    let (st, reply) = post(
        "/api/v1/ingest/gdbs/exinfo",
        &[&token],
        "<?xml version=\"1.0\" encoding=\"GBK\"?><ExInfo><standardInfo process=\"EX_GDBS_SPCL\"><Field FieldName=\"SPRXM\">李明</Field></standardInfo></ExInfo>".into(),
    );
    assert_eq!(st, 400, "{reply}");
    assert!(
        reply.contains("<CODE>mislabelled_encoding</CODE>"),
        "{reply}"
    );

    let want = 8;
    let got = read_all(&setup.brokers, &setup.topics.events, PARTITIONS, want);
    let mut summary: Vec<(String, String, String)> = got
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("event_id"), s("kind"), s("occurred_at"))
        })
        .collect();
    summary.sort();
    let row = |id: &str, kind: &str, at: &str| (id.to_string(), kind.to_string(), at.to_string());
    assert_eq!(
        summary,
        [
            row(
                "gdbs:SPCL:44K9:20261103T110000:v1",
                "case.stage",
                "2026-11-03T11:00:00+08:00"
            ),
            row(
                "sdjc:EA_JC_FEEINFO:K2:R2:1:v1",
                "fee.charged",
                "2026-11-05T15:00:00+08:00"
            ),
            row(
                "sdjc:EA_JC_STEP_BASICINFO:K1:R1:v1",
                "case.accepted",
                "2026-11-02T10:00:00+08:00"
            ),
            row(
                "sdjc:EA_JC_STEP_BASICINFO:K2:R2:v1",
                "case.accepted",
                "2026-11-02T09:00:00+08:00"
            ),
            row(
                "sdjc:EA_JC_STEP_DONE:K2:R2:v1",
                "case.completed",
                "2026-11-05T16:00:00+08:00"
            ),
            row(
                "sdjc:EA_JC_STEP_PROC:K2:R2:1:v1",
                "case.stage",
                "2026-11-03T10:00:00+08:00"
            ),
            row(
                "sdjc:EA_JC_STEP_PROC:K2:R2:1:v2",
                "case.stage",
                "2026-11-03T10:00:00+08:00"
            ),
            row(
                "sdjc:EA_JC_STEP_PROC:K2:R2:1:v2:withdrawn",
                "event.withdrawn",
                "2026-11-03T10:00:00+08:00"
            ),
        ],
        "{got:#?}"
    );
    let by_id = |id: &str| {
        got.iter()
            .find(|e| e["event_id"] == id)
            .unwrap_or_else(|| panic!("{id} in {got:#?}"))
    };
    let accepted = by_id("sdjc:EA_JC_STEP_BASICINFO:K2:R2:v1");
    assert_eq!(accepted["reported_at"], "2026-11-02T09:05:00+08:00");
    assert_eq!(
        (
            accepted["staff_id"].as_str(),
            accepted["center_id"].as_str()
        ),
        (Some("PJ-S01"), Some("PJ"))
    );
    let v2 = by_id("sdjc:EA_JC_STEP_PROC:K2:R2:1:v2");
    assert_eq!(
        (v2["supersedes"].as_str(), v2["result"].as_str()),
        (Some("sdjc:EA_JC_STEP_PROC:K2:R2:1:v1"), Some("return"))
    );
    assert_eq!(
        by_id("sdjc:EA_JC_STEP_PROC:K2:R2:1:v2:withdrawn")["withdraws"],
        "sdjc:EA_JC_STEP_PROC:K2:R2:1:v2"
    );
    let fee_ev = by_id("sdjc:EA_JC_FEEINFO:K2:R2:1:v1");
    assert_eq!(
        (fee_ev["amount_fen"].as_u64(), fee_ev["source"].as_str()),
        (Some(8050), Some("sdjc:pj-qzk"))
    );
    assert_eq!(
        by_id("gdbs:SPCL:44K9:20261103T110000:v1")["staff_id"],
        "PJ-S01",
        "GBK 李明 resolved"
    );

    // The bad row: a dead letter naming its topic, partition and offset (offset 1 of `done`).
    // (Until the engine applies corrections, it dead-letters the correction of the applied
    // step as `correction_unsupported`: that is the engine's, not this transport's.)
    wait_until("the dead letter is stored", Duration::from_secs(60), || {
        sql(
            &setup.ch,
            &format!(
                "SELECT count() FROM {}.dead_letters WHERE source LIKE 'kafka:{done}:%' FORMAT TabSeparated",
                setup.db
            ),
        )
        .trim()
            == "1"
    });
    let dead = sql(
        &setup.ch,
        &format!(
            "SELECT reason, source FROM {}.dead_letters WHERE source LIKE 'kafka:{done}:%' FORMAT TabSeparated",
            setup.db
        ),
    );
    assert!(
        dead.trim()
            .starts_with(&format!("unmapped_code\tkafka:{done}:0:1")),
        "{dead}"
    );
    // Every source offset committed once handed over.
    let watcher = consumer(&setup.brokers, &format!("{}.changes", setup.group));
    wait_until(
        "the change topics are committed",
        Duration::from_secs(60),
        || {
            [(&basic, 1), (&proc_, 4), (&done, 2), (&fee, 1)]
                .iter()
                .all(|(t, end)| {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(t, 0);
                    watcher
                        .committed_offsets(tpl, Duration::from_secs(10))
                        .ok()
                        .and_then(|c| c.find_partition(t, 0).map(|e| e.offset()))
                        == Some(Offset::Offset(*end))
                })
        },
    );
    let (status, log) = j.terminate();
    assert!(status.success(), "{log}");

    // A change topic that does not exist stops the start-up with its name, as the events
    // topic does.
    let missing = unique("qzk.missing");
    fs::write(
        &config,
        format!("[[change_topics]]\ntopic = \"{missing}\"\nenvelope = \"debezium\"\nformat = \"sdjc\"\n"),
    )
    .expect("config");
    let mut j = setup.start(&data, &["--config", config.to_str().expect("path")]);
    let status = j.child.wait().expect("wait");
    let log = j.log();
    assert!(!status.success() && log.contains(&missing), "{log}");
}

/// A change topic's rows through a SIGKILL in the middle of their hand-over: after a restart
/// every row's event is on the events topic (re-read messages may repeat there; their ids are
/// the same) and stored once, and the source offsets reach the end.
#[test]
fn a_crash_while_change_topics_are_handed_over_loses_nothing() {
    if !services_up("a_crash_while_change_topics_are_handed_over_loses_nothing") {
        return;
    }
    let setup = Setup::new("changecrash");
    let data = format_reference("changecrash-ref");
    let topic = unique("qzk.apas");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &setup.brokers)
        .create()
        .expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for r in rt
        .block_on(admin.create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .expect("create")
    {
        r.expect("source topic");
    }
    let config = data.dir.join("jiancha.toml");
    fs::write(
        &config,
        format!("[[change_topics]]\ntopic = \"{topic}\"\nenvelope = \"jdbc\"\nformat = \"sdjc\"\ntable = \"PRE_APASINFO\"\n"),
    )
    .expect("config");
    // Rows are produced in rounds of 3,000, a process started and killed as soon as the
    // round's first events are on the events topic, until a kill lands before the round is
    // fully handed over (on a fast broker one round may finish first): a crash mid-stream.
    const ROUND: usize = 3_000;
    const ROUNDS: usize = 3;
    let row = |i: usize| {
        serde_json::json!({"PROJID": format!("A{i:05}"), "ORGBUSNO": "R", "DATAVER": 1,
            "ITEMNO": "P5", "DEPTID": "BDC", "APPLYFROM": "窗口",
            "RECEIVETIME": format!("2026-11-02 {:02}:{:02}:{:02}", 8 + i / 3600, (i / 60) % 60, i % 60)})
        .to_string()
    };
    // Static membership, as deployed: the restarted process rejoins both groups at once.
    let flags = [
        "--config",
        config.to_str().expect("path"),
        "--instance-id",
        "node-a",
    ];
    // Messages on the events topic; a broker too busy to answer is asked again (≤ 60 s).
    let handed_over = || {
        let asked = Instant::now();
        loop {
            let ends: rdkafka::error::KafkaResult<Vec<i64>> = (0..PARTITIONS)
                .map(|p| {
                    setup
                        .watcher
                        .fetch_watermarks(&setup.topics.events, p, Duration::from_secs(10))
                        .map(|(_, high)| high)
                })
                .collect();
            match ends {
                Ok(ends) => return ends.iter().sum::<i64>(),
                Err(e) if asked.elapsed() < Duration::from_secs(60) => {
                    eprintln!("watermarks: {e}; asking again");
                }
                Err(e) => panic!("watermarks of the events topic: {e}"),
            }
        }
    };
    let began = Instant::now();
    let mut rows = 0;
    let mut crashed_mid_stream = None;
    for _ in 0..ROUNDS {
        let before = handed_over();
        let keys: Vec<String> = (rows..rows + ROUND).map(|i| format!("A{i:05}")).collect();
        let records: Vec<(&str, Option<String>)> = keys
            .iter()
            .zip(rows..)
            .map(|(k, i)| (k.as_str(), Some(row(i))))
            .collect();
        produce_values(&setup.brokers, &topic, &records);
        rows += ROUND;
        let j = setup.start(&data, &flags);
        let waiting = Instant::now();
        while handed_over() == before {
            assert!(
                waiting.elapsed() < Duration::from_secs(90),
                "no hand-over started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        j.crash();
        let at_crash = handed_over();
        if (at_crash as usize) < rows {
            crashed_mid_stream = Some(at_crash);
            break;
        }
    }
    let Some(at_crash) = crashed_mid_stream else {
        panic!("in {ROUNDS} rounds every kill came after the whole round was handed over");
    };
    let j = setup.start(&data, &flags);
    let watcher = consumer(&setup.brokers, &format!("{}.changes", setup.group));
    wait_until(
        "the change topic is committed to its end",
        Duration::from_secs(180),
        || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&topic, 0);
            watcher
                .committed_offsets(tpl, Duration::from_secs(10))
                .ok()
                .and_then(|c| c.find_partition(&topic, 0).map(|e| e.offset()))
                == Some(Offset::Offset(rows as i64))
        },
    );
    eprintln!("committed after {:?}", began.elapsed());
    let produced = handed_over() as usize;
    let got = read_all(
        &setup.brokers,
        &setup.topics.events,
        PARTITIONS,
        produced.max(rows),
    );
    let ids: std::collections::BTreeSet<String> = got
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or_default().to_string())
        .collect();
    let want: std::collections::BTreeSet<String> = (0..rows)
        .map(|i| format!("sdjc:PRE_APASINFO:A{i:05}:R:v1"))
        .collect();
    let missing: Vec<&String> = want.difference(&ids).take(5).collect();
    assert!(
        missing.is_empty() && ids.len() == rows,
        "{} of {rows} rows' events read back ({} messages of {produced}); missing e.g. {missing:?}",
        ids.len(),
        got.len()
    );
    eprintln!(
        "crash at {at_crash} of {rows} handed over; {} messages on the events topic after the restart ({} re-sent)",
        got.len(),
        got.len() - rows
    );
    wait_until(
        "the engine stored every event once",
        Duration::from_secs(180),
        || {
            sql(
            &setup.ch,
            &format!(
                "SELECT count() FROM {}.events FINAL WHERE event_id LIKE 'sdjc:PRE_APASINFO:%' FORMAT TabSeparated",
                setup.db
            ),
        )
        .trim()
            == rows.to_string()
        },
    );
    eprintln!(
        "stored after {:?}; log {}",
        began.elapsed(),
        j.log.display()
    );
    let (status, log) = j.terminate();
    assert!(status.success(), "{log}");
}
