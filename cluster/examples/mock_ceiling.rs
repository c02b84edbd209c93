//! Cluster mode's own ceiling, where the broker is not the bottleneck (docs/BENCHMARKS.md,
//! "Cluster mode's own ceiling"; scripts/bench-all.sh). An in-process librdkafka mock broker holds a
//! 3-partition topic of synthetic events (`rules::synth`, every rule family), 15,000 at a time
//! (the mock keeps 5 MiB per partition); each chunk is consumed by two consumer groups in
//! turns (which goes first alternates), each timed from the chunk's first message to its last:
//! - **bare**: a consumer that polls every message and touches its payload, nothing else;
//! - **jiancha**: the same consumer with cluster mode's per-message work of
//!   `cluster/src/pipeline.rs` — decode with the message's receipt time and `source` header,
//!   the partition's engine, the event row and dead letters it would store — and, every 10,000
//!   events, the batch's alert, fact, activity and window-status rows built as the writer gets
//!   them. The rows are then dropped: the sinks (ClickHouse, the alerts topic) are left out.
//!
//! Per core is events / CPU seconds of the whole process during the turn, so the mock broker's
//! work is in both figures (conservative for jiancha); the ratio is of those per-core rates.
//!
//! ```text
//! mock_ceiling [EVENTS=2000000] [OPEN_CASES=100000] [EVENTS_PER_DAY=3000000]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::writer::Batch;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rules::synth::{self, Workload};
use rules::{Engine, Policy, Reference};

/// The binary's allocator (src/main.rs), set as it sets it (`main`): glibc's malloc spends its
/// time consolidating free lists under the engine's pattern.
#[global_allocator]
static GLOBAL: heap::Mimalloc = heap::Mimalloc;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const TOPIC: &str = "events";
const PARTITIONS: i32 = 3;

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of proc(5) (utime, stime), in clock ticks of 1/100 s.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn center(line: &str) -> Option<&str> {
    let at = line.find(r#""center_id":""#)? + r#""center_id":""#.len();
    Some(&line[at..at + line[at..].find('"')?])
}

/// The producer, and how one line is sent (keyed by centre, with the HTTP path's `source`
/// header and `reported_at`, as the cluster benchmark's events).
fn producer(brokers: &str) -> Result<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

fn send(p: &BaseProducer, line: &str) {
    // Reported when they happened (window systems that report at once), so lateness is judged
    // as by replay, not against today's Kafka timestamps.
    let line = &synth::with_reported_at(line);
    let key = center(line).unwrap_or("");
    let mut record = Some(
        BaseRecord::<str, str>::to(TOPIC)
            .key(key)
            .payload(line)
            .headers(
                rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                    key: "source",
                    value: Some("http:bench"),
                }),
            ),
    );
    while let Some(r) = record.take() {
        if let Err((_, back)) = p.send(r) {
            p.poll(Duration::from_millis(5));
            record = Some(back);
        }
    }
}

fn consumer(brokers: &str, group: &str) -> Result<BaseConsumer> {
    // Cluster mode's consumer settings (cluster/src/lib.rs), less statistics and static
    // membership.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    c.subscribe(&[TOPIC])?;
    Ok(c)
}

/// Wall and CPU seconds of consuming, summed over chunks, each timed from its first message to
/// its last.
#[derive(Default, Clone, Copy)]
struct Spent {
    wall: f64,
    cpu: f64,
}

/// Consume `n` messages with `c`, calling `each` on every one; adds the time to `spent`.
fn take(
    c: &BaseConsumer,
    n: usize,
    spent: &mut Spent,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<()> {
    let mut seen = 0usize;
    let mut started: Option<(Instant, f64)> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < n {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if started.is_none() {
                    started = Some((Instant::now(), cpu_seconds()));
                }
                each(&m);
                seen += 1;
            }
            Some(Err(e)) => return Err(e.into()),
            None if Instant::now() > deadline => {
                return Err(format!("{seen} of {n} messages after 2 minutes").into())
            }
            None => {}
        }
    }
    if let Some((t, cpu)) = started {
        spent.wall += t.elapsed().as_secs_f64();
        spent.cpu += cpu_seconds() - cpu;
    }
    Ok(())
}

/// Cluster mode's per-message work and its batches (rows built, then dropped): the loop's own
/// functions (`cluster::apply_message`, `Batch::gather`, `Batch::store_rows`).
struct Jiancha {
    engines: Vec<Engine>,
    /// The loop's skew: `future_skew_minutes` of the policy, in seconds.
    skew_secs: i64,
    batch: Batch,
    fired: usize,
    dead_letters: usize,
    since_batch: usize,
    /// Wall time inside `on_message` (decode, engine, rows, batches): jiancha's own work.
    work: Duration,
    /// Of which building the batches' alert, fact, activity and window rows.
    sealing: Duration,
}

impl Jiancha {
    fn on_message(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) {
        let began = Instant::now();
        self.work_on(m);
        self.work += began.elapsed();
    }

    fn work_on(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) {
        let engine = &mut self.engines[m.partition() as usize];
        let _ = cluster::apply_message(engine, m, self.skew_secs, &mut self.batch);
        self.since_batch += 1;
        if self.since_batch == 10_000 {
            self.seal();
        }
    }

    /// The batch as the writer gets it, then dropped.
    fn seal(&mut self) {
        let began = Instant::now();
        self.since_batch = 0;
        for e in &mut self.engines {
            self.batch.gather(e);
        }
        // As the loop hands it to the writer, which builds its rows.
        let mut batch = self.batch.take();
        let rows = batch.store_rows();
        self.fired += rows.alerts.len();
        self.dead_letters += rows.dead.len();
        drop((rows, batch));
        self.sealing += began.elapsed();
    }
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<std::result::Result<_, _>>()?;
    // As `jiancha cluster` sets it.
    heap::keep_freed_memory();
    let events = args.first().copied().unwrap_or(2_000_000);
    let open = args.get(1).copied().unwrap_or(100_000);
    let per_day = args.get(2).copied().unwrap_or(3_000_000) as u64;
    // The mock broker keeps 5 MiB per partition: the stream goes through in chunks that fit.
    let chunk = 15_000;
    let mock = MockCluster::new(1)?;
    mock.create_topic(TOPIC, PARTITIONS, 1)?;
    let brokers = mock.bootstrap_servers();
    let reference = Arc::new(
        Reference::parse(&synth::reference_files()).map_err(|e| format!("reference: {e:?}"))?,
    );
    let mut ours = Jiancha {
        engines: (0..PARTITIONS)
            .map(|_| {
                let mut e = Engine::new(reference.clone(), Policy::default());
                e.collect_facts(true);
                e.collect_window_status(true);
                e
            })
            .collect(),
        skew_secs: i64::from(Policy::default().future_skew_minutes) * 60,
        batch: Batch::default(),
        fired: 0,
        dead_letters: 0,
        since_batch: 0,
        work: Duration::ZERO,
        sealing: Duration::ZERO,
    };
    let p = producer(&brokers)?;
    let bare_consumer = consumer(&brokers, "bare")?;
    let our_consumer = consumer(&brokers, "jiancha")?;
    let (mut bare, mut mine) = (Spent::default(), Spent::default());
    let mut bytes = 0usize;
    let mut workload = Workload::new(42, open, per_day);
    let mut lines = Vec::with_capacity(open + 16);
    workload.warm_up(open, |l| lines.push(l.to_string()));
    let mut buf = String::new();
    let mut produced = 0usize;
    let mut turn = 0usize;
    while produced < open + events {
        while lines.len() < chunk && produced + lines.len() < open + events {
            buf.clear();
            workload.next_line(&mut buf);
            lines.extend(buf.split('\n').map(str::to_string));
        }
        let now: Vec<String> = lines.drain(..chunk.min(lines.len())).collect();
        for l in &now {
            send(&p, l);
        }
        p.flush(Duration::from_secs(60))?;
        produced += now.len();
        // In turns, so neither always finds the caches warm.
        let mut bare_turn = |spent: &mut Spent| {
            take(&bare_consumer, now.len(), spent, |m| {
                bytes += m.payload().map_or(0, <[u8]>::len)
            })
        };
        if turn.is_multiple_of(2) {
            bare_turn(&mut bare)?;
            take(&our_consumer, now.len(), &mut mine, |m| ours.on_message(m))?;
        } else {
            take(&our_consumer, now.len(), &mut mine, |m| ours.on_message(m))?;
            bare_turn(&mut bare)?;
        }
        turn += 1;
    }
    ours.seal();
    let n = produced as f64;
    println!(
        "{produced} events ({open} acceptances first, then the steady mix at {per_day} events a day; {bytes} bytes) through {PARTITIONS} partitions of an in-process mock broker, in chunks of {chunk}; {} alerts, {} dead letters",
        ours.fired, ours.dead_letters
    );
    println!(
        "bare: {:.2} s, {:.2} CPU s: {:.0} events/s wall, {:.0} events/s per core",
        bare.wall,
        bare.cpu,
        n / bare.wall,
        n / bare.cpu
    );
    println!(
        "jiancha: {:.2} s, {:.2} CPU s: {:.0} events/s wall, {:.0} events/s per core",
        mine.wall,
        mine.cpu,
        n / mine.wall,
        n / mine.cpu
    );
    println!(
        "of which jiancha's own work (decode, engine, rows): {:.2} s = {:.2} µs per event ({:.2} µs of it building the batches' alert, fact, activity and window rows)",
        ours.work.as_secs_f64(),
        ours.work.as_secs_f64() * 1e6 / n,
        ours.sealing.as_secs_f64() * 1e6 / n
    );
    println!(
        "ratio: {:.0} % of the bare consumer per core ({:.0} % in wall time)",
        100.0 * bare.cpu / mine.cpu,
        100.0 * bare.wall / mine.wall
    );
    Ok(())
}
