//! Cluster mode's own ceiling, where the broker is not the bottleneck (docs/BENCHMARKS.md,
//! "Cluster mode's own ceiling"; scripts/bench-all.sh). An in-process librdkafka mock broker holds a
//! 3-partition topic of synthetic events (`rules::synth`, every rule family); then, in turns,
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
//! mock_ceiling [EVENTS=2000000] [OPEN_CASES=100000] [ROUNDS=2]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::decode::{decode, DecodeOptions, Receipt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rules::synth::{self, Workload};
use rules::{Engine, Outcome, Policy, Reference};
use store::rows::{AlertRow, CaseFactRow, DeadLetterRow, EventRow};

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

/// Fill the topic with `open` acceptances and then steady-state events up to `events` in all.
fn produce(brokers: &str, open: usize, events: usize) -> Result<usize> {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let send = |line: &str| {
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
    };
    let mut workload = Workload::new(42, open, 3_000_000);
    let mut n = 0;
    workload.warm_up(open, |l| {
        send(l);
        n += 1;
    });
    let mut buf = String::new();
    while n < events {
        buf.clear();
        workload.next_line(&mut buf);
        for l in buf.split('\n') {
            send(l);
            n += 1;
        }
    }
    p.flush(Duration::from_secs(120))?;
    Ok(n)
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

/// One turn: (wall seconds, CPU seconds, alerts) to consume `n` messages.
fn turn(
    brokers: &str,
    group: &str,
    n: usize,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
    mut every: impl FnMut(),
) -> Result<(f64, f64)> {
    let c = consumer(brokers, group)?;
    // The clock starts at the first message (not the group join).
    let mut seen = 0usize;
    let mut started = None;
    while seen < n {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if started.is_none() {
                    started = Some((Instant::now(), cpu_seconds()));
                }
                each(&m);
                seen += 1;
                if seen.is_multiple_of(10_000) {
                    every();
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    every();
    let (t, cpu) = started.ok_or("no message")?;
    Ok((t.elapsed().as_secs_f64(), cpu_seconds() - cpu))
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<std::result::Result<_, _>>()?;
    let events = args.first().copied().unwrap_or(2_000_000);
    let open = args.get(1).copied().unwrap_or(100_000);
    let rounds = args.get(2).copied().unwrap_or(2);
    let mock = MockCluster::new(1)?;
    mock.create_topic(TOPIC, PARTITIONS, 1)?;
    let brokers = mock.bootstrap_servers();
    let t = Instant::now();
    let n = produce(&brokers, open, events)?;
    println!(
        "produced {n} events ({open} acceptances first) into {PARTITIONS} partitions of the mock broker in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let reference = Arc::new(
        Reference::parse(&synth::reference_files()).map_err(|e| format!("reference: {e:?}"))?,
    );
    let policy = Policy::default();
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Bare: poll and touch.
        let mut bytes = 0usize;
        let (wall, cpu) = turn(
            &brokers,
            &format!("bare-{round}"),
            n,
            |m| bytes += m.payload().map_or(0, <[u8]>::len),
            || {},
        )?;
        println!(
            "round {round} bare: {n} events ({bytes} bytes) in {wall:.2} s, {cpu:.2} CPU s: {:.0} events/s, {:.0} per core",
            n as f64 / wall,
            n as f64 / cpu
        );
        bare.push((wall, cpu));

        // jiancha: one engine per partition, as cluster mode keeps them.
        let mut engines: Vec<Engine> = (0..PARTITIONS)
            .map(|_| {
                let mut e = Engine::new(reference.clone(), policy.clone());
                e.collect_facts(true);
                e.collect_window_status(true);
                e
            })
            .collect();
        let engines_cell = std::cell::RefCell::new(&mut engines);
        let mut alerts: Vec<rules::Alert> = Vec::new();
        let mut rows: Vec<EventRow> = Vec::new();
        let mut dead: Vec<DeadLetterRow> = Vec::new();
        let mut fired = 0usize;
        let (wall, cpu) = {
            let rows = std::cell::RefCell::new(&mut rows);
            let alerts = std::cell::RefCell::new(&mut alerts);
            let fired = std::cell::RefCell::new(&mut fired);
            turn(
                &brokers,
                &format!("jiancha-{round}"),
                n,
                |m| {
                    let payload = m.payload().unwrap_or_default();
                    let receipt = m
                        .timestamp()
                        .to_millis()
                        .map_or(0, |ms| ms.div_euclid(1000));
                    let source = m.headers().and_then(|h| {
                        h.iter()
                            .find(|h| h.key == "source")
                            .and_then(|h| std::str::from_utf8(h.value?).ok())
                    });
                    let opts = DecodeOptions {
                        receipt: Receipt::At(rules::Instant(receipt)),
                        default_source: source,
                        max_future_skew_secs: 600,
                    };
                    let mut engines = engines_cell.borrow_mut();
                    let engine = &mut engines[m.partition() as usize];
                    let dead_letter = |reason: &str, message: String| DeadLetterRow {
                        received_at: receipt.clamp(0, i64::from(u32::MAX)) as u32,
                        source: format!("kafka:{}/{}/{}", m.topic(), m.partition(), m.offset()),
                        reason: reason.to_string(),
                        field: String::new(),
                        message,
                        raw: String::from_utf8_lossy(payload).into_owned(),
                    };
                    match decode(payload, &opts) {
                        Err(e) => dead.push(dead_letter(e.code.as_str(), e.message)),
                        Ok(ev) => match engine.on_event(&ev, &mut alerts.borrow_mut()) {
                            Ok(Outcome::Duplicate) => {}
                            Ok(_) => rows.borrow_mut().push(EventRow::new(
                                &ev,
                                payload,
                                rules::Instant(receipt),
                            )),
                            Err(r) => dead.push(dead_letter(r.code(), r.to_string())),
                        },
                    }
                },
                || {
                    // The batch as the writer gets it, then dropped.
                    let mut alerts = alerts.borrow_mut();
                    let built: Vec<AlertRow> = alerts.iter().map(AlertRow::from).collect();
                    **fired.borrow_mut() += built.len();
                    alerts.clear();
                    rows.borrow_mut().clear();
                    for e in engines_cell.borrow_mut().iter_mut() {
                        let facts: Vec<CaseFactRow> =
                            e.drain_facts().iter().map(CaseFactRow::from).collect();
                        let activity: Vec<_> = e
                            .drain_activities()
                            .iter()
                            .map(node::glue::activity_row)
                            .collect();
                        let windows: Vec<_> = e
                            .drain_window_status()
                            .iter()
                            .map(node::glue::window_row)
                            .collect();
                        drop((facts, activity, windows));
                    }
                },
            )?
        };
        println!(
            "round {round} jiancha: {n} events ({fired} alerts, {} dead letters) in {wall:.2} s, {cpu:.2} CPU s: {:.0} events/s, {:.0} per core",
            dead.len(),
            n as f64 / wall,
            n as f64 / cpu
        );
        ours.push((wall, cpu));
    }
    // The best round of each (the VM's neighbours only ever slow a round down).
    let best = |v: &[(f64, f64)]| v.iter().map(|(_, c)| *c).fold(f64::INFINITY, f64::min);
    let best_wall = |v: &[(f64, f64)]| v.iter().map(|(w, _)| *w).fold(f64::INFINITY, f64::min);
    let (b, o) = (n as f64 / best(&bare), n as f64 / best(&ours));
    println!(
        "bare: {:.0} events/s wall, {b:.0} events/s per core",
        n as f64 / best_wall(&bare)
    );
    println!(
        "jiancha: {:.0} events/s wall, {o:.0} events/s per core",
        n as f64 / best_wall(&ours)
    );
    println!(
        "ratio: {:.0} % of the bare consumer per core ({:.0} % in wall time)",
        100.0 * o / b,
        100.0 * best_wall(&bare) / best_wall(&ours)
    );
    Ok(())
}
