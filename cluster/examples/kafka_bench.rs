//! Load and measurement tools for the cluster-mode benchmark (scripts/bench-cluster.sh,
//! docs/BENCHMARKS.md):
//!
//! ```text
//! kafka_bench produce BROKERS TOPIC FILE          NDJSON lines keyed by center_id
//! kafka_bench consume BROKERS TOPIC               raw rdkafka consume rate up to the log end
//! kafka_bench latency BROKERS EVENTS ALERTS RATE SECONDS
//!     complaint.filed events (each raises a red alert at once) at RATE/s; the time from
//!     producing one to receiving its alert on the alerts topic, which jiancha publishes only
//!     after the alert row is durable in ClickHouse
//! ```

use std::collections::HashMap;
use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn producer(brokers: &str) -> Result<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .create()?)
}

fn send(p: &BaseProducer, topic: &str, key: Option<&str>, payload: &str) {
    let mut record = BaseRecord::<str, str>::to(topic).payload(payload);
    if let Some(k) = key {
        record = record.key(k);
    }
    let mut record = Some(record);
    while let Some(r) = record.take() {
        if let Err((_, back)) = p.send(r) {
            p.poll(Duration::from_millis(10));
            record = Some(back);
        }
    }
}

fn center(line: &str) -> Option<&str> {
    let at = line.find(r#""center_id":""#)? + r#""center_id":""#.len();
    let end = line[at..].find('"')?;
    Some(&line[at..at + end])
}

fn produce(brokers: &str, topic: &str, file: &str) -> Result<()> {
    let p = producer(brokers)?;
    let started = Instant::now();
    let mut n = 0u64;
    for line in std::io::BufReader::new(std::fs::File::open(file)?).lines() {
        let line = line?;
        send(&p, topic, center(&line), &line);
        n += 1;
    }
    p.flush(Duration::from_secs(300))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "produced {n} messages in {secs:.1} s ({:.0}/s)",
        n as f64 / secs
    );
    Ok(())
}

fn consume(brokers: &str, topic: &str) -> Result<()> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("raw-{}", std::process::id()))
        .set("enable.auto.commit", "false");
    // Extra settings to try (KAFKA_BENCH_OPTS="key=value,key=value").
    for kv in std::env::var("KAFKA_BENCH_OPTS")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((k, v)) = kv.split_once('=') {
            config.set(k, v);
        }
    }
    let c: BaseConsumer = config.create()?;
    let metadata = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    let mut total = 0i64;
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        total += c.fetch_watermarks(topic, p, Duration::from_secs(10))?.1;
    }
    c.assign(&tpl)?;
    eprintln!("consuming {total} messages from {partitions} partitions");
    let mut n = 0i64;
    let mut bytes = 0usize;
    let mut started = None;
    while n < total {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
            started.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!(
        "raw consume: {n} messages ({:.0} MB) in {secs:.1} s = {:.0} messages/s",
        bytes as f64 / 1e6,
        n as f64 / secs
    );
    Ok(())
}

fn latency(brokers: &str, events: &str, alerts: &str, rate: u64, seconds: u64) -> Result<()> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("latency-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let (_, high) = c.fetch_watermarks(alerts, 0, Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(alerts, 0, Offset::Offset(high))?;
    c.assign(&tpl)?;
    let p = producer(brokers)?;
    let run = format!("{}", std::process::id());
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut waits: Vec<f64> = Vec::new();
    let started = Instant::now();
    let total = rate * seconds;
    let mut i = 0u64;
    while (waits.len() as u64) < total && started.elapsed() < Duration::from_secs(seconds + 60) {
        let due = Duration::from_secs_f64(i as f64 / rate as f64);
        if i < total && started.elapsed() >= due {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
            let id = format!("LAT-{run}-{i}");
            let line = format!(
                r#"{{"event_id":"{id}","kind":"complaint.filed","occurred_at":"{}","reported_at":"{}","center_id":"C1","region":"430621","window_id":"W001","staff_id":"S0001","complaint_id":"{id}","category":"integrity"}}"#,
                rules::Instant(now),
                rules::Instant(now)
            );
            send(&p, events, Some("C1"), &line);
            p.poll(Duration::ZERO);
            sent.insert(id, Instant::now());
            i += 1;
            continue;
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(1)) {
            let payload = String::from_utf8_lossy(m.payload().unwrap_or_default());
            if let Some(at) = payload.find(r#""complaint_id":"LAT-"#) {
                let rest = &payload[at + r#""complaint_id":""#.len()..];
                let id = &rest[..rest.find('"').unwrap_or(0)];
                if let Some(t) = sent.remove(id) {
                    waits.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
    }
    waits.sort_by(f64::total_cmp);
    let q = |f: f64| waits[((waits.len() as f64 - 1.0) * f) as usize];
    if waits.is_empty() {
        return Err("no alert came back".into());
    }
    println!(
        "latency over {} alerts at {rate}/s: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} not seen)",
        waits.len(),
        q(0.5),
        q(0.99),
        q(1.0),
        sent.len()
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match a(0) {
        "produce" => produce(a(1), a(2), a(3)),
        "consume" => consume(a(1), a(2)),
        "latency" => latency(a(1), a(2), a(3), a(4).parse()?, a(5).parse()?),
        _ => Err("usage: kafka_bench produce|consume|latency … (see the source)".into()),
    }
}
