//! Produce-to-WebSocket alert latency under background load (scripts/bench-latency.sh,
//! docs/BENCHMARKS.md, "Produce-to-WebSocket alert latency"). Works against any process that
//! serves the dashboard API with ingest: `jiancha serve` (embedded) or `jiancha cluster --users`.
//!
//! ```text
//! alert_latency URL PUBLISHER:PASSWORD VIEWER:PASSWORD LOAD.ndjson [key=value …]
//!   rate=10000      background events per second, from LOAD.ndjson (each line sent once;
//!                   0: none, the probes alone)
//!   senders=4       background senders (window systems), each posting batches of
//!   batch=250       lines, as a window system would
//!   probes=20       complaint.filed probes per second, each POSTed on its own
//!   seconds=30      how long to send
//! ```
//! Each probe is a `complaint.filed` of category `integrity` (a red alert at once) at the event
//! time of the background line sent last, against a window and staff member taken from the
//! load. Its latency is the time from just before its POST starts until a WebSocket client of
//! this process (a viewer of the whole region, as a dashboard) receives the alert naming it.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Where a probe's complaint is filed: fields copied from a background line.
#[derive(Clone)]
struct Target {
    center: String,
    region: String,
    window: String,
    staff: String,
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn login(url: &str, who: &str) -> Result<String> {
    let (user, password) = who.split_once(':').ok_or("USER:PASSWORD expected")?;
    let mut resp = agent()
        .post(&format!("{url}/api/v1/auth/login"))
        .send_json(serde_json::json!({"username": user, "password": password}))?;
    let body: Value = resp.body_mut().read_json()?;
    Ok(field(&body, "token")
        .ok_or_else(|| format!("login as {user}: {body}"))?
        .to_string())
}

/// POST NDJSON; the status and whether every line was accepted.
fn post(agent: &ureq::Agent, url: &str, token: &str, body: &str) -> Result<(u16, String)> {
    let mut resp = agent
        .post(&format!("{url}/api/v1/events"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/x-ndjson")
        .send(body.as_bytes())?;
    let status = resp.status().as_u16();
    Ok((status, resp.body_mut().read_to_string()?))
}

/// Probe `i` of this run: a complaint of category `integrity` (a red alert at once).
fn probe(run: u32, i: u64, at: &str, t: &Target) -> String {
    let id = format!("LAT-{run}-{i}");
    format!(
        r#"{{"event_id":"{id}","kind":"complaint.filed","occurred_at":"{at}","reported_at":"{at}","center_id":"{}","region":"{}","window_id":"{}","staff_id":"{}","complaint_id":"{id}","category":"integrity"}}"#,
        t.center, t.region, t.window, t.staff
    )
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: alert_latency URL PUBLISHER:PASSWORD VIEWER:PASSWORD LOAD.ndjson [rate= senders= batch= probes= seconds=]".into());
    }
    let url = args[0].trim_end_matches('/').to_string();
    let mut opts: HashMap<&str, u64> = [
        ("rate", 10_000),
        ("senders", 4),
        ("batch", 250),
        ("probes", 20),
        ("seconds", 30),
    ]
    .into_iter()
    .collect();
    for kv in &args[4..] {
        let (k, v) = kv.split_once('=').ok_or("key=value expected")?;
        *opts
            .get_mut(k)
            .ok_or_else(|| format!("unknown option {k}"))? = v.parse()?;
    }
    let (rate, senders, batch, probes, seconds) = (
        opts["rate"],
        opts["senders"].max(1),
        opts["batch"].max(1) as usize,
        opts["probes"],
        opts["seconds"],
    );

    // The background: as many lines as the run needs, and the probes' targets.
    let mut lines = Vec::new();
    let mut targets = Vec::new();
    let wanted = (rate * seconds) as usize;
    for line in std::io::BufReader::new(std::fs::File::open(&args[3])?).lines() {
        let line = line?;
        if targets.len() < 50 {
            let v: Value = serde_json::from_str(&line)?;
            if let (Some(c), Some(r), Some(w), Some(s)) = (
                field(&v, "center_id"),
                field(&v, "region"),
                field(&v, "window_id"),
                field(&v, "staff_id"),
            ) {
                targets.push(Target {
                    center: c.into(),
                    region: r.into(),
                    window: w.into(),
                    staff: s.into(),
                });
            }
        }
        lines.push(line);
        if lines.len() >= wanted {
            break;
        }
    }
    if targets.is_empty() {
        return Err("no line of the load names a window and a staff member".into());
    }
    if lines.len() < wanted {
        eprintln!(
            "warning: the load has {} lines, {wanted} wanted: background ends early",
            lines.len()
        );
    }
    let lines = Arc::new(lines);

    let publisher = login(&url, &args[1])?;
    let viewer = login(&url, &args[2])?;

    // The dashboard: one WebSocket client, reading on its own thread.
    let host = url.trim_start_matches("http://");
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{host}/api/v1/live?access_token={viewer}"))?;
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        s.set_nodelay(true)?;
    }
    let run = std::process::id();
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let waits: Arc<Mutex<Vec<f64>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (sent, waits, done) = (sent.clone(), waits.clone(), done.clone());
        let tag = format!("\"LAT-{run}-");
        std::thread::spawn(move || -> Result<u64> {
            let mut messages = 0u64;
            while !done.load(Ordering::SeqCst) {
                let text = match ws.read() {
                    Ok(tungstenite::Message::Text(t)) => t,
                    Ok(_) => continue,
                    Err(tungstenite::Error::Io(e))
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        continue
                    }
                    Err(e) => return Err(e.into()),
                };
                let now = Instant::now();
                messages += 1;
                if text.contains("\"snapshot\"") && text.contains("\"lagged\"") {
                    eprintln!("warning: the WebSocket client lagged and was resynchronised");
                }
                // An alert naming a probe's complaint (the first one: the red card; the ladder
                // or repeated-complaint alerts that may follow it name it too).
                let mut at = 0;
                while let Some(i) = text[at..].find(&tag) {
                    let from = at + i + tag.len();
                    let digits: String = text[from..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    at = from + digits.len();
                    if let Ok(n) = digits.parse::<u64>() {
                        if let Some(t) = sent.lock().map_err(|_| "poisoned")?.remove(&n) {
                            waits
                                .lock()
                                .map_err(|_| "poisoned")?
                                .push(now.duration_since(t).as_secs_f64() * 1000.0);
                        }
                    }
                }
            }
            Ok(messages)
        })
    };

    // The event time the probes use: that of the background line sent last.
    let clock = Arc::new(Mutex::new(String::new()));
    let occurred = |line: &str| -> Option<String> {
        let at = line.find(r#""occurred_at":""#)? + r#""occurred_at":""#.len();
        Some(line[at..at + line[at..].find('"')?].to_string())
    };
    if let Some(t) = lines.first().and_then(|l| occurred(l)) {
        *clock.lock().map_err(|_| "poisoned")? = t;
    }

    // Warm-up: one probe, untimed, whose alert must arrive before the clock starts (a cluster
    // process may serve the API seconds before the broker gives its engines their partitions).
    let warm = u64::MAX;
    let t = &targets[0];
    let at = clock.lock().map_err(|_| "poisoned")?.clone();
    let line = probe(run, warm, &at, t);
    sent.lock()
        .map_err(|_| "poisoned")?
        .insert(warm, Instant::now());
    post(&agent(), &url, &publisher, &line)?;
    let until = Instant::now() + Duration::from_secs(120);
    while sent.lock().map_err(|_| "poisoned")?.contains_key(&warm) {
        if Instant::now() > until {
            return Err("the warm-up probe's alert did not arrive within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waits.lock().map_err(|_| "poisoned")?.clear();

    let started = Instant::now();
    let background_sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    // No background at all with rate=0 (the probes alone: the floor).
    for s in (0..senders as usize).filter(|_| rate > 0) {
        let (lines, clock, url, token) =
            (lines.clone(), clock.clone(), url.clone(), publisher.clone());
        let (background_sent, refused) = (background_sent.clone(), refused.clone());
        // Sender s posts batches s, s + senders, …, each at its time on the common schedule.
        handles.push(std::thread::spawn(move || -> Result<()> {
            let agent = agent();
            let mut k = s;
            while k * batch < lines.len() {
                let due = Duration::from_secs_f64((k * batch) as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                let chunk = &lines[k * batch..((k + 1) * batch).min(lines.len())];
                let (status, answer) = post(&agent, &url, &token, &chunk.join("\n"))?;
                match serde_json::from_str::<Value>(&answer)
                    .ok()
                    .and_then(|v| v.get("rejected").and_then(Value::as_u64))
                {
                    Some(n) => {
                        refused.fetch_add(n, Ordering::Relaxed);
                    }
                    None => eprintln!("background batch: {status} {answer}"),
                }
                background_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Some(t) = chunk.last().and_then(|l| occurred(l)) {
                    let mut c = clock.lock().map_err(|_| "poisoned")?;
                    if t > *c {
                        *c = t;
                    }
                }
                k += senders as usize;
            }
            Ok(())
        }));
    }

    // The probes, one POST each, on this thread.
    let agent = agent();
    let mut posts = Vec::new();
    let total = probes * seconds;
    for i in 0..total {
        let due = Duration::from_secs_f64(i as f64 / probes as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let t = &targets[i as usize % targets.len()];
        let at = clock.lock().map_err(|_| "poisoned")?.clone();
        let line = probe(run, i, &at, t);
        let begun = Instant::now();
        sent.lock().map_err(|_| "poisoned")?.insert(i, begun);
        let (status, answer) = post(&agent, &url, &publisher, &line)?;
        posts.push(begun.elapsed().as_secs_f64() * 1000.0);
        if status != 200 {
            eprintln!("probe {i}: {status} {answer}");
        }
    }
    for h in handles {
        h.join().map_err(|_| "sender panicked")??;
    }
    let sending = started.elapsed().as_secs_f64();
    // Wait for the last alerts (at most 30 s).
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until && !sent.lock().map_err(|_| "poisoned")?.is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    done.store(true, Ordering::SeqCst);
    let messages = reader.join().map_err(|_| "reader panicked")??;

    let mut waits = waits.lock().map_err(|_| "poisoned")?.clone();
    let missing = sent.lock().map_err(|_| "poisoned")?.len();
    waits.sort_by(f64::total_cmp);
    posts.sort_by(f64::total_cmp);
    if waits.is_empty() {
        return Err("no probe's alert arrived".into());
    }
    let bg = background_sent.load(Ordering::Relaxed);
    println!(
        "background: {bg} events in {sending:.1} s = {:.0} events/s ({} batches of {batch} by {senders} senders; {} lines rejected)",
        bg as f64 / sending,
        bg.div_ceil(batch as u64),
        refused.load(Ordering::Relaxed)
    );
    println!(
        "probe POST answered: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        quantile(&posts, 0.5),
        quantile(&posts, 0.99),
        quantile(&posts, 1.0)
    );
    println!(
        "produce -> WebSocket over {} probes at {probes}/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({missing} not seen; {messages} WebSocket messages)",
        waits.len(),
        quantile(&waits, 0.5),
        quantile(&waits, 0.99),
        quantile(&waits, 1.0)
    );
    Ok(())
}
