//! The notification state machine, without I/O: routing, de-duplication, the storm limit, the
//! per-channel queues and the retry schedule. Time is passed in (milliseconds of a monotonic
//! clock, plus the wall clock for signatures), so tests run a day of retries in a loop.
//!
//! Per channel, messages leave in the order their alerts were submitted, one at a time: a
//! message that fails is retried (backoff doubling from `retry_first_seconds` to
//! `retry_max_seconds`) before the next one goes, so a receiver that was down gets everything,
//! in order, once it is back. A refusal (bad key, malformed template) is not retried. The storm
//! limit is a token bucket per channel taken when an alert is submitted: an alert that finds
//! the bucket empty is counted in the channel's held-back summary instead of being queued, and
//! the summary is queued as soon as a token is free again.
//!
//! Alertmanager channels follow Alertmanager's client contract, as Prometheus does: the channel
//! keeps the alerts it was told of that are still active (its *firing book*), sends them all
//! again every `resend_seconds` with `endsAt` four intervals ahead, and sends an alert once
//! more with `endsAt` at its end when it is retracted ([`Dispatcher::submit`]) or resolved or
//! dismissed by an inspector ([`Dispatcher::ended`]). Retractions always reach an Alertmanager
//! channel that was told of the alert, whatever its routes' `retractions` say: otherwise the
//! alert would stay firing there. Re-sends and ends are not messages to people (Alertmanager
//! groups and routes them), so the storm limit does not count them, and the ledger does not
//! record them (a repeat is harmless: Alertmanager merges alerts by their labels).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::config::{ChannelKind, ChannelSettings, MinLevel, NotifySettings, RouteSettings};
use crate::notice::Notice;
use crate::payload::{self, Outcome, Request, Subject};
use crate::text::{Message, Names, Suppressed};

/// What de-duplicates a delivery: the alert (its id includes the level, so an escalation
/// yellow → red is another alert), its status (a retraction is another message) and the
/// target (channel name; `name/phone` for SMS).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Alert id.
    pub alert_id: String,
    /// `open` or `retracted`.
    pub status: String,
    /// Channel name, or `channel/phone`.
    pub target: String,
}

/// How a delivery ended, as recorded in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The channel accepted it.
    Sent,
    /// Held back by the storm limit (counted in a summary message).
    Suppressed,
    /// Refused by the channel, or given up after `give_up_hours`.
    Failed,
}

impl Fate {
    /// As stored and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Sent => "sent",
            Fate::Suppressed => "suppressed",
            Fate::Failed => "failed",
        }
    }
}

/// A delivery record for the ledger: once written, the key is never sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What was delivered.
    pub key: Key,
    /// The alert's level.
    pub level: String,
    /// How it ended.
    pub fate: Fate,
    /// Why, for `failed`.
    pub detail: String,
}

/// A request to make now; report its outcome with [`Dispatcher::finished`].
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Channel index.
    pub channel: usize,
    /// Channel name (for logs).
    pub channel_name: String,
    /// Channel kind (for classifying the answer).
    pub kind: ChannelKind,
    /// The request.
    pub request: Request,
}

enum What {
    Alert(Arc<Notice>),
    Summary(Suppressed),
    /// Alertmanager: these alerts of the firing book, sent again (those still in it).
    Resend(Vec<String>),
    /// Alertmanager: this alert ended at this instant (Unix seconds).
    End(Arc<Notice>, i64),
}

/// Alerts per re-send request to Alertmanager.
const RESEND_CHUNK: usize = 500;

struct Item {
    key: Option<Key>,
    phone: Option<String>,
    what: What,
    token: Option<u64>,
    queued_at: u64,
}

/// Milli-tokens: the bucket counts in 1/60,000 of a message so that a refill of
/// `rate_per_minute` messages per minute is `rate_per_minute` units per millisecond.
const TOKEN: u64 = 60_000;

struct Bucket {
    level: u64,
    capacity: u64,
    per_ms: u64,
    last: u64,
}

impl Bucket {
    fn new(c: &ChannelSettings, now: u64) -> Bucket {
        let capacity = u64::from(c.burst.max(1)) * TOKEN;
        Bucket {
            level: capacity,
            capacity,
            per_ms: u64::from(c.rate_per_minute.max(1)),
            last: now,
        }
    }

    fn refill(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.last);
        self.level = (self.level + elapsed.saturating_mul(self.per_ms)).min(self.capacity);
        self.last = now;
    }

    fn take(&mut self, now: u64) -> bool {
        self.refill(now);
        if self.level >= TOKEN {
            self.level -= TOKEN;
            true
        } else {
            false
        }
    }

    fn ready_at(&self, now: u64) -> u64 {
        let level = (self.level + now.saturating_sub(self.last) * self.per_ms).min(self.capacity);
        if level >= TOKEN {
            now
        } else {
            now + (TOKEN - level).div_ceil(self.per_ms)
        }
    }
}

struct Channel {
    settings: ChannelSettings,
    bucket: Bucket,
    queue: VecDeque<Item>,
    held: Suppressed,
    failures: u32,
    retry_at: u64,
    busy: bool,
    /// Alertmanager: the active alerts this channel was told of, by id.
    firing: BTreeMap<String, Arc<Notice>>,
    /// Alertmanager: when the firing book is next sent again.
    next_resend: u64,
    /// Alertmanager: a re-send is waiting in the queue (never two at once).
    resend_queued: bool,
}

impl Channel {
    fn is_alertmanager(&self) -> bool {
        self.settings.kind == ChannelKind::Alertmanager
    }

    fn resend_ms(&self) -> u64 {
        self.settings.resend_seconds.max(1).saturating_mul(1000)
    }
}

/// Counters the driver turns into metrics: (channel, event) → count.
pub type Tally = HashMap<(String, &'static str), u64>;

/// The state machine. See the module documentation.
pub struct Dispatcher {
    settings: NotifySettings,
    names: Names,
    channels: Vec<Channel>,
    index: HashMap<String, usize>,
    open: HashMap<u64, u32>,
    done: Vec<u64>,
    records: Vec<Record>,
    recent: HashMap<Key, u64>,
    tally: Tally,
}

const HOUR_MS: u64 = 3_600_000;

impl Dispatcher {
    /// A dispatcher for validated settings ([`crate::config::validate`]).
    pub fn new(settings: NotifySettings, names: Names, now: u64) -> Dispatcher {
        let channels: Vec<Channel> = settings
            .channels
            .iter()
            .map(|c| Channel {
                settings: c.clone(),
                bucket: Bucket::new(c, now),
                queue: VecDeque::new(),
                held: Suppressed::default(),
                failures: 0,
                retry_at: 0,
                busy: false,
                firing: BTreeMap::new(),
                next_resend: now + c.resend_seconds.max(1).saturating_mul(1000),
                resend_queued: false,
            })
            .collect();
        let index = channels
            .iter()
            .enumerate()
            .map(|(i, c)| (c.settings.name.clone(), i))
            .collect();
        Dispatcher {
            settings,
            names,
            channels,
            index,
            open: HashMap::new(),
            done: Vec::new(),
            records: Vec::new(),
            recent: HashMap::new(),
            tally: Tally::new(),
        }
    }

    /// Every delivery `n` is routed to (before de-duplication).
    pub fn targets(&self, n: &Notice) -> Vec<Key> {
        let mut names: Vec<&str> = Vec::new();
        for route in &self.settings.routes {
            // An Alertmanager channel hears of the retraction of any alert it was told of.
            let as_opened = matches(route, n, true);
            let routed = matches(route, n, false);
            for c in &route.channels {
                let alertmanager = self
                    .index
                    .get(c)
                    .is_some_and(|&i| self.channels[i].is_alertmanager());
                if (routed || (alertmanager && as_opened)) && !names.contains(&c.as_str()) {
                    names.push(c);
                }
            }
        }
        let mut keys = Vec::new();
        for name in names {
            let Some(&i) = self.index.get(name) else {
                continue;
            };
            let c = &self.channels[i].settings;
            let key = |target: String| Key {
                alert_id: n.alert_id.clone(),
                status: n.ledger_status(),
                target,
            };
            if c.kind == ChannelKind::Sms {
                keys.extend(c.phones.iter().map(|p| key(format!("{name}/{p}"))));
            } else {
                keys.push(key(name.to_string()));
            }
        }
        keys
    }

    /// Route `n` and queue (or hold back) a message per target not in `already` (the ledger)
    /// and not already handled by this process. `token` is reported by [`Self::drain`] once
    /// every message of `n` has ended (sent, held back, refused or given up). An alert that
    /// fired more than `max_age_hours` before `wall_ms` (Unix milliseconds) is not sent.
    pub fn submit(
        &mut self,
        n: Notice,
        already: &HashSet<Key>,
        token: u64,
        now: u64,
        wall_ms: i64,
    ) {
        let max_age_ms =
            i64::try_from(self.settings.max_age_hours.saturating_mul(HOUR_MS)).unwrap_or(i64::MAX);
        let stale = rules::time::parse_rfc3339(&n.fired_at)
            .is_ok_and(|t| wall_ms.saturating_sub(t.0.saturating_mul(1000)) > max_age_ms);
        if stale {
            *self.tally.entry((String::new(), "stale")).or_default() += 1;
            self.done.push(token);
            return;
        }
        let keys = self.targets(&n);
        let notice = Arc::new(n);
        self.update_books(&keys, &notice);
        let mut queued = 0u32;
        let mut held_by: Vec<usize> = Vec::new();
        for key in keys {
            if already.contains(&key) || self.recent.contains_key(&key) {
                continue;
            }
            let (name, phone) = match key.target.split_once('/') {
                Some((name, phone)) => (name.to_string(), Some(phone.to_string())),
                None => (key.target.clone(), None),
            };
            let Some(&i) = self.index.get(&name) else {
                continue;
            };
            self.recent.insert(key.clone(), now);
            let c = &mut self.channels[i];
            queue_summary(c, now);
            // An Alertmanager channel must hear of a retraction, storm or not (an alert held
            // back is in its firing book and goes with the next re-send anyway).
            let must = c.is_alertmanager() && notice.ends();
            if must || c.bucket.take(now) {
                c.queue.push_back(Item {
                    key: Some(key),
                    phone,
                    what: What::Alert(notice.clone()),
                    token: Some(token),
                    queued_at: now,
                });
                queued += 1;
            } else {
                // Counted once per alert in the summary, whatever the number of phones.
                if !held_by.contains(&i) {
                    held_by.push(i);
                    c.held.add(&notice);
                }
                *self.tally.entry((name, "suppressed")).or_default() += 1;
                self.records.push(Record {
                    key,
                    level: notice.level.clone(),
                    fate: Fate::Suppressed,
                    detail: String::new(),
                });
            }
        }
        if queued == 0 {
            self.done.push(token);
        } else {
            self.open.insert(token, queued);
        }
        // Forget what the ledger now answers for; keeps the set to two days of alerts.
        if self.recent.len() > 100_000 {
            self.recent
                .retain(|_, at| now.saturating_sub(*at) < 48 * HOUR_MS);
        }
    }

    /// Keep the firing books of the Alertmanager channels `keys` name up to date with `n`:
    /// an open alert is active, a retraction ends it (its delivery says so).
    fn update_books(&mut self, keys: &[Key], n: &Arc<Notice>) {
        let mut slim: Option<Arc<Notice>> = None;
        for key in keys {
            let Some(&i) = self.index.get(&key.target) else {
                continue; // an SMS target, never Alertmanager
            };
            let c = &mut self.channels[i];
            if !c.is_alertmanager() {
                continue;
            }
            if n.ends() {
                c.firing.remove(&n.alert_id);
            } else {
                let kept = slim.get_or_insert_with(|| Arc::new(n.slim()));
                c.firing.insert(n.alert_id.clone(), kept.clone());
            }
        }
    }

    /// `n` is active (the state at start-up, or a process's live alerts): the Alertmanager
    /// channels it is routed to keep it in their firing book and send it with their next
    /// re-send. Nothing is delivered now (the alert itself went, or goes, through
    /// [`Self::submit`]).
    pub fn firing(&mut self, n: Notice) {
        if n.ends() {
            return;
        }
        let keys = self.targets(&n);
        self.update_books(&keys, &Arc::new(n));
    }

    /// The alert `alert_id` is no longer active (resolved or dismissed by an inspector, or
    /// retracted) since `at` (Unix seconds): every Alertmanager channel that has it firing
    /// sends it once more with `endsAt` = `at` (never before its start), and forgets it.
    pub fn ended(&mut self, alert_id: &str, at: i64, now: u64) {
        for c in &mut self.channels {
            if let Some(n) = c.firing.remove(alert_id) {
                c.queue.push_back(Item {
                    key: None,
                    phone: None,
                    what: What::End(n, at),
                    token: None,
                    queued_at: now,
                });
            }
        }
    }

    /// Alerts in the Alertmanager channels' firing books (each alert once per channel).
    pub fn firing_count(&self) -> usize {
        self.channels.iter().map(|c| c.firing.len()).sum()
    }

    /// The requests to make now (at most one per channel at a time). `wall_ms` is the wall
    /// clock in Unix milliseconds (signatures, Alertmanager times).
    pub fn due(&mut self, now: u64, wall_ms: i64) -> Vec<Attempt> {
        let give_up = self.settings.give_up_hours.saturating_mul(HOUR_MS);
        let mut attempts = Vec::new();
        for i in 0..self.channels.len() {
            let c = &mut self.channels[i];
            if c.busy {
                continue;
            }
            queue_summary(c, now);
            queue_resend(c, now);
            if c.retry_at > now {
                continue;
            }
            loop {
                let c = &mut self.channels[i];
                match c.queue.front() {
                    Some(head) if now.saturating_sub(head.queued_at) >= give_up => {}
                    _ => break,
                }
                let detail = format!(
                    "given up after {} hours of failed attempts",
                    self.settings.give_up_hours
                );
                log::error!(
                    "notification channel {}: {detail}; message dropped",
                    c.settings.name
                );
                let item = c.queue.pop_front();
                c.failures = 0;
                if let Some(item) = item {
                    self.end(i, item, Fate::Failed, detail);
                }
            }
            let c = &mut self.channels[i];
            let Some(head) = c.queue.front() else {
                continue;
            };
            let url = &self.settings.dashboard_url;
            let request = match &head.what {
                What::Alert(n) => payload::request(
                    &c.settings,
                    &Subject::Alert(n),
                    &Message::of(n, &self.names, url),
                    head.phone.as_deref(),
                    wall_ms,
                ),
                What::Summary(s) => payload::request(
                    &c.settings,
                    &Subject::Summary,
                    &s.message(url),
                    head.phone.as_deref(),
                    wall_ms,
                ),
                What::Resend(ids) => {
                    let ends_at = wall_ms.div_euclid(1000) + payload::active_for_secs(&c.settings);
                    let alerts = ids
                        .iter()
                        .filter_map(|id| c.firing.get(id))
                        .map(|n| am_alert(n, &self.names, url, ends_at))
                        .collect();
                    payload::alertmanager_request(&c.settings, alerts)
                }
                What::End(n, at) => payload::alertmanager_request(
                    &c.settings,
                    vec![am_alert(n, &self.names, url, *at)],
                ),
            };
            c.busy = true;
            attempts.push(Attempt {
                channel: i,
                channel_name: c.settings.name.clone(),
                kind: c.settings.kind,
                request,
            });
        }
        attempts
    }

    /// The outcome of the attempt on `channel`.
    pub fn finished(&mut self, channel: usize, outcome: Outcome, now: u64) {
        let Some(c) = self.channels.get_mut(channel) else {
            return;
        };
        c.busy = false;
        let name = c.settings.name.clone();
        match outcome {
            Outcome::Delivered => {
                c.failures = 0;
                c.retry_at = 0;
                if let Some(item) = c.queue.pop_front() {
                    self.end(channel, item, Fate::Sent, String::new());
                }
            }
            Outcome::Retry(why) => {
                c.failures += 1;
                let first = self.settings.retry_first_seconds.max(1) * 1000;
                let max = self.settings.retry_max_seconds.max(1) * 1000;
                let wait = first
                    .saturating_mul(1u64 << (c.failures - 1).min(30))
                    .min(max);
                c.retry_at = now + wait;
                if c.failures == 1 {
                    log::warn!(
                        "notification channel {name}: {why}; retrying with backoff ({} queued)",
                        c.queue.len()
                    );
                }
                *self.tally.entry((name, "retried")).or_default() += 1;
            }
            Outcome::Refused(why) => {
                c.failures = 0;
                c.retry_at = 0;
                log::error!("notification channel {name} refused a message: {why}; not retried");
                if let Some(item) = c.queue.pop_front() {
                    self.end(channel, item, Fate::Failed, why);
                }
            }
        }
    }

    fn end(&mut self, channel: usize, item: Item, fate: Fate, detail: String) {
        let c = &mut self.channels[channel];
        let name = c.settings.name.clone();
        let outcome = match (&item.what, fate) {
            (What::Resend(_), Fate::Sent) => {
                c.resend_queued = false;
                "resent"
            }
            (What::Resend(_), _) => {
                c.resend_queued = false;
                fate.as_str()
            }
            _ => fate.as_str(),
        };
        *self.tally.entry((name, outcome)).or_default() += 1;
        if let (Some(key), What::Alert(n)) = (item.key, &item.what) {
            self.records.push(Record {
                key,
                level: n.level.clone(),
                fate,
                detail,
            });
        }
        if let Some(token) = item.token {
            if let Some(left) = self.open.get_mut(&token) {
                *left -= 1;
                if *left == 0 {
                    self.open.remove(&token);
                    self.done.push(token);
                }
            }
        }
    }

    /// When [`Self::due`] next has something to do (`None`: only a new alert or an outcome
    /// can change anything).
    pub fn next_wakeup(&self, now: u64) -> Option<u64> {
        self.channels
            .iter()
            .filter(|c| !c.busy)
            .filter_map(|c| {
                let queued = c.queue.front().map(|_| c.retry_at.max(now));
                let summary = (!c.held.is_empty()).then(|| c.bucket.ready_at(now));
                let resend = (!c.firing.is_empty() && !c.resend_queued).then_some(c.next_resend);
                [queued, summary, resend].into_iter().flatten().min()
            })
            .min()
    }

    /// Ledger records to write, then the tokens whose messages have all ended. Write the
    /// records before acting on the tokens (committing an offset): a restart must find them.
    pub fn drain(&mut self) -> (Vec<Record>, Vec<u64>) {
        (
            std::mem::take(&mut self.records),
            std::mem::take(&mut self.done),
        )
    }

    /// Counters since the last call: (channel, one of [`OUTCOMES`]) → n.
    pub fn take_tally(&mut self) -> Tally {
        std::mem::take(&mut self.tally)
    }

    /// Messages waiting in the queues.
    pub fn queued(&self) -> usize {
        self.channels.iter().map(|c| c.queue.len()).sum()
    }
}

/// Queue the held-back summary if the bucket has a token for it (an SMS channel: to each phone).
fn queue_summary(c: &mut Channel, now: u64) {
    if c.held.is_empty() || !c.bucket.take(now) {
        return;
    }
    let held = std::mem::take(&mut c.held);
    let phones: Vec<Option<String>> = if c.settings.kind == ChannelKind::Sms {
        c.settings.phones.iter().cloned().map(Some).collect()
    } else {
        vec![None]
    };
    for phone in phones {
        c.queue.push_back(Item {
            key: None,
            phone,
            what: What::Summary(held.clone()),
            token: None,
            queued_at: now,
        });
    }
}

/// Every outcome a channel counts: messages `sent`, `failed` (refused or given up),
/// `suppressed` by the storm limit, `retried` attempts, and Alertmanager re-sends (`resent`).
pub const OUTCOMES: [&str; 5] = ["sent", "failed", "suppressed", "retried", "resent"];

/// Queue the Alertmanager channel's firing book for re-sending, when it is time.
fn queue_resend(c: &mut Channel, now: u64) {
    if !c.is_alertmanager() || c.resend_queued || now < c.next_resend {
        return;
    }
    c.next_resend = now + c.resend_ms();
    if c.firing.is_empty() {
        return;
    }
    let ids: Vec<String> = c.firing.keys().cloned().collect();
    for chunk in ids.chunks(RESEND_CHUNK) {
        c.queue.push_back(Item {
            key: None,
            phone: None,
            what: What::Resend(chunk.to_vec()),
            token: None,
            queued_at: now,
        });
    }
    c.resend_queued = true;
}

/// `n` in Alertmanager's form, with its message as the description, ending at `ends_at`.
fn am_alert(n: &Notice, names: &Names, dashboard_url: &str, ends_at: i64) -> serde_json::Value {
    let message = Message::of(n, names, dashboard_url);
    payload::alertmanager_alert(n, message.text(), message.link.as_deref(), ends_at)
}

/// Does `route` take `n`? With `as_opened`, a retraction is matched as its alert was.
fn matches(route: &RouteSettings, n: &Notice, as_opened: bool) -> bool {
    if n.is_retraction() && !route.retractions && !as_opened {
        return false;
    }
    let min = match route.min_level {
        MinLevel::Warning => 0,
        MinLevel::Yellow => 1,
        MinLevel::Red => 2,
    };
    if n.level_rank() < min {
        return false;
    }
    let rule_ok = route.rules.is_empty()
        || route.rules.iter().any(|r| match r.strip_suffix('*') {
            Some(prefix) => n.rule.starts_with(prefix),
            None => *r == n.rule,
        });
    let region_ok = route.regions.is_empty()
        || route
            .regions
            .iter()
            .any(|p| n.region.starts_with(p.as_str()));
    rule_ok && region_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, RouteSettings};

    fn notice(id: &str, rule: &str, level: &str, region: &str) -> Notice {
        Notice::from_value(serde_json::json!({
            "alert_id": id, "rule": rule, "level": level, "status": "open",
            "fired_at": "2026-10-14T00:00:00+08:00", "center_id": "PJ", "region": region,
            "case_id": format!("C-{id}"), "message": "m"
        }))
        .expect("notice")
    }

    fn settings(burst: u32, rate: u32) -> NotifySettings {
        NotifySettings {
            enabled: true,
            retry_first_seconds: 2,
            retry_max_seconds: 60,
            channels: vec![
                ChannelSettings {
                    name: "wx".into(),
                    kind: ChannelKind::Wecom,
                    url: "http://wx/".into(),
                    format: Format::Text,
                    burst,
                    rate_per_minute: rate,
                    ..ChannelSettings::default()
                },
                ChannelSettings {
                    name: "sms".into(),
                    kind: ChannelKind::Sms,
                    url: "http://sms/".into(),
                    phones: vec!["1".into(), "2".into()],
                    body_template: "{phone}:{text}".into(),
                    ..ChannelSettings::default()
                },
            ],
            routes: vec![
                RouteSettings {
                    channels: vec!["wx".into()],
                    rules: vec!["case.*".into()],
                    min_level: MinLevel::Yellow,
                    regions: vec!["4306".into()],
                    retractions: false,
                },
                RouteSettings {
                    channels: vec!["sms".into(), "wx".into()],
                    min_level: MinLevel::Red,
                    ..RouteSettings::default()
                },
            ],
            ..NotifySettings::default()
        }
    }

    /// Deliver whatever is due until nothing is, answering with `answer`; the bodies sent.
    fn pump(d: &mut Dispatcher, now: u64, answer: impl Fn(&Attempt) -> Outcome) -> Vec<String> {
        let mut sent = Vec::new();
        loop {
            let attempts = d.due(now, 0);
            if attempts.is_empty() {
                return sent;
            }
            for a in attempts {
                let outcome = answer(&a);
                if outcome == Outcome::Delivered {
                    sent.push(a.request.body.clone());
                }
                d.finished(a.channel, outcome, now);
            }
        }
    }

    #[test]
    fn routes_by_rule_level_and_region_and_each_target_once() {
        let d = Dispatcher::new(settings(10, 10), Names::default(), 0);
        let targets =
            |n: &Notice| -> Vec<String> { d.targets(n).into_iter().map(|k| k.target).collect() };
        assert_eq!(
            targets(&notice("a", "case.overdue", "yellow", "430626")),
            ["wx"]
        );
        assert!(targets(&notice("b", "case.overdue", "warning", "430626")).is_empty());
        assert!(targets(&notice("c", "hall.back_office", "yellow", "430626")).is_empty());
        assert!(targets(&notice("d", "case.overdue", "yellow", "440300")).is_empty());
        // Red: both routes; wx once, and one SMS per phone.
        assert_eq!(
            targets(&notice("e", "case.overdue", "red", "430626")),
            ["wx", "sms/1", "sms/2"]
        );
        let mut retracted = notice("a", "case.overdue", "yellow", "430626");
        retracted.status = "retracted".into();
        assert!(targets(&retracted).is_empty(), "no route takes retractions");
    }

    #[test]
    fn a_storm_is_cut_to_the_burst_and_one_summary_when_the_bucket_refills() {
        let mut d = Dispatcher::new(settings(3, 6), Names::default(), 0);
        for i in 0..10 {
            d.submit(
                notice(&format!("a{i}"), "case.overdue", "yellow", "430626"),
                &HashSet::new(),
                i,
                0,
                0,
            );
        }
        let sent = pump(&mut d, 0, |_| Outcome::Delivered);
        assert_eq!(sent.len(), 3);
        let (records, done) = d.drain();
        assert_eq!(done.len(), 10, "held-back alerts are finished too");
        assert_eq!(
            records
                .iter()
                .filter(|r| r.fate == Fate::Suppressed)
                .count(),
            7
        );
        // 6 a minute: the next token in 10 s; the summary goes then, not before.
        assert_eq!(d.next_wakeup(0), Some(10_000));
        assert!(pump(&mut d, 9_999, |_| Outcome::Delivered).is_empty());
        let sent = pump(&mut d, 10_000, |_| Outcome::Delivered);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].contains("另有 7 条告警未逐条推送"), "{}", sent[0]);
        assert!(sent[0].contains("黄牌 7 条"), "{}", sent[0]);
        assert_eq!(d.next_wakeup(10_000), None);
    }

    #[test]
    fn an_sms_storm_summary_counts_alerts_not_phones_and_reaches_every_phone() {
        let mut d = Dispatcher::new(settings(10, 60), Names::default(), 0);
        // Red: wx and both phones. The SMS bucket (10) takes 5 alerts × 2 phones.
        for i in 0..8 {
            d.submit(
                notice(&format!("r{i}"), "case.overdue", "red", "430626"),
                &HashSet::new(),
                i,
                0,
                0,
            );
        }
        let sms = |a: &Attempt| a.channel_name == "sms";
        let mut bodies = Vec::new();
        let mut now = 0;
        for _ in 0..40 {
            for a in d.due(now, 0) {
                if sms(&a) {
                    bodies.push(a.request.body.clone());
                }
                d.finished(a.channel, Outcome::Delivered, now);
            }
            now += 1_000;
        }
        assert_eq!(bodies.len(), 5 * 2 + 2, "{bodies:#?}");
        let summaries: Vec<&String> = bodies.iter().filter(|b| b.contains("另有")).collect();
        assert_eq!(summaries.len(), 2);
        assert!(summaries[0].starts_with("1:") && summaries[1].starts_with("2:"));
        assert!(
            summaries[0].contains("另有 3 条告警未逐条推送"),
            "{}",
            summaries[0]
        );
    }

    #[test]
    fn a_receiver_that_is_down_gets_everything_in_order_with_backoff() {
        let mut d = Dispatcher::new(settings(10, 60), Names::default(), 0);
        for i in 0..3 {
            d.submit(
                notice(&format!("a{i}"), "case.overdue", "yellow", "430626"),
                &HashSet::new(),
                i,
                0,
                0,
            );
        }
        let down = |_: &Attempt| Outcome::Retry("connection refused".into());
        // Attempts at 0, 2 s, 6 s, 14 s: doubling from 2 s.
        let mut tries = Vec::new();
        let mut now = 0;
        while now < 20_000 {
            let attempts = d.due(now, 0);
            for a in &attempts {
                tries.push(now);
                d.finished(a.channel, down(a), now);
            }
            now = d.next_wakeup(now).unwrap_or(u64::MAX).max(now + 1);
        }
        assert_eq!(tries, [0, 2_000, 6_000, 14_000]);
        assert_eq!(
            d.drain(),
            (vec![], vec![]),
            "nothing ends while it is retried"
        );
        let sent = pump(&mut d, 30_000, |_| Outcome::Delivered);
        let order: Vec<bool> = (0..3)
            .map(|i| sent[i].contains(&format!("C-a{i}")))
            .collect();
        assert_eq!(order, [true, true, true]);
        let (records, done) = d.drain();
        assert_eq!(done, [0, 1, 2]);
        assert!(records.iter().all(|r| r.fate == Fate::Sent));
    }

    #[test]
    fn duplicates_and_ledger_entries_are_not_sent_again_but_escalations_are() {
        let mut d = Dispatcher::new(settings(10, 60), Names::default(), 0);
        let yellow = notice("y1", "case.overdue", "yellow", "430626");
        d.submit(yellow.clone(), &HashSet::new(), 1, 0, 0);
        d.submit(yellow.clone(), &HashSet::new(), 2, 0, 0);
        let already: HashSet<Key> = d
            .targets(&notice("y0", "case.overdue", "yellow", "430626"))
            .into_iter()
            .collect();
        d.submit(
            notice("y0", "case.overdue", "yellow", "430626"),
            &already,
            3,
            0,
            0,
        );
        // The red card of the same case is another alert id.
        d.submit(
            notice("r1", "case.overdue", "red", "430626"),
            &HashSet::new(),
            4,
            0,
            0,
        );
        let sent = pump(&mut d, 0, |_| Outcome::Delivered);
        assert_eq!(
            sent.len(),
            4,
            "yellow once, red to wx and two phones: {sent:?}"
        );
        let (_, mut done) = d.drain();
        done.sort();
        assert_eq!(done, [1, 2, 3, 4]);
    }

    #[test]
    fn alerts_older_than_the_max_age_are_not_sent() {
        let mut d = Dispatcher::new(settings(10, 60), Names::default(), 0);
        let fired = rules::time::parse_rfc3339("2026-10-14T00:00:00+08:00")
            .expect("time")
            .0
            * 1000;
        let n = || notice("a", "case.overdue", "yellow", "430626");
        d.submit(n(), &HashSet::new(), 1, 0, fired + 25 * HOUR_MS as i64);
        assert!(d.due(0, 0).is_empty());
        d.submit(n(), &HashSet::new(), 2, 0, fired + 23 * HOUR_MS as i64);
        assert_eq!(d.due(0, 0).len(), 1);
        assert_eq!(d.drain().1, [1]);
    }

    #[test]
    fn refusals_are_not_retried_and_stale_messages_are_given_up() {
        let mut s = settings(10, 60);
        s.give_up_hours = 1;
        let mut d = Dispatcher::new(s, Names::default(), 0);
        d.submit(
            notice("a", "case.overdue", "yellow", "430626"),
            &HashSet::new(),
            1,
            0,
            0,
        );
        let sent = pump(&mut d, 0, |_| Outcome::Refused("errcode 93000".into()));
        assert!(sent.is_empty());
        let (records, done) = d.drain();
        assert_eq!((records[0].fate, done), (Fate::Failed, vec![1]));
        d.submit(
            notice("b", "case.overdue", "yellow", "430626"),
            &HashSet::new(),
            2,
            0,
            0,
        );
        let mut now = 0;
        while now <= 2 * HOUR_MS {
            for a in d.due(now, 0) {
                d.finished(a.channel, Outcome::Retry("down".into()), now);
            }
            now = d.next_wakeup(now).unwrap_or(u64::MAX).max(now + 1);
        }
        let (records, done) = d.drain();
        assert_eq!((records[0].fate, done), (Fate::Failed, vec![2]));
        assert!(records[0].detail.contains("given up"));
    }

    /// SPEC §7 v1.1: a warning cleared (its case finished in time) is a resolved message: one
    /// line to every channel that took the warning (WeCom here), whatever `retractions` says,
    /// and Alertmanager ends it at `cleared_at`.
    #[test]
    fn a_cleared_warning_is_a_resolved_line_and_ends_at_alertmanager() {
        let mut both = settings(10, 10);
        both.routes[0].min_level = MinLevel::Warning;
        both.channels.push(alertmanager(10).channels.remove(0));
        both.routes[0].channels.push("am".into());
        let mut d = Dispatcher::new(both, Names::default(), 0);
        let wall = 1_791_950_000_000;
        let warning = notice("w", "case.overdue", "warning", "430626");
        d.submit(warning.clone(), &HashSet::new(), 1, 0, wall);
        let sent = pump(&mut d, 0, |_| Outcome::Delivered);
        assert_eq!(sent.len(), 2, "WeCom and Alertmanager: {sent:?}");
        assert_eq!(d.firing_count(), 1);
        let mut cleared = warning;
        cleared.status = "cleared".into();
        cleared.raw = serde_json::json!({"cleared_at": "2026-10-14T11:30:00+08:00"});
        d.submit(cleared, &HashSet::new(), 2, 1_000, wall);
        let sent = pump(&mut d, 1_000, |_| Outcome::Delivered);
        assert_eq!(sent.len(), 2, "{sent:?}");
        let wecom = sent.iter().find(|b| b.contains("msgtype")).expect("WeCom");
        assert!(
            wecom.contains("【解除】预警") && wecom.contains("2026-10-14 11:30"),
            "{wecom}"
        );
        let am = sent
            .iter()
            .find(|b| b.contains("endsAt"))
            .expect("Alertmanager");
        assert!(
            am.contains(r#""endsAt":"2026-10-14T11:30:00+08:00""#),
            "{am}"
        );
        assert_eq!(d.firing_count(), 0, "no longer re-sent");
    }

    fn alertmanager(burst: u32) -> NotifySettings {
        NotifySettings {
            enabled: true,
            channels: vec![ChannelSettings {
                name: "am".into(),
                kind: ChannelKind::Alertmanager,
                url: "http://am:9093".into(),
                resend_seconds: 60,
                burst,
                rate_per_minute: 1,
                ..ChannelSettings::default()
            }],
            // Routes never ask for retractions: Alertmanager gets them anyway.
            routes: vec![RouteSettings {
                channels: vec!["am".into()],
                ..RouteSettings::default()
            }],
            ..NotifySettings::default()
        }
    }

    /// The alerts posted to Alertmanager now: (alert_id, endsAt) per alert, per request.
    fn posted(d: &mut Dispatcher, now: u64, wall_ms: i64) -> Vec<Vec<(String, String)>> {
        let mut out = Vec::new();
        loop {
            let attempts = d.due(now, wall_ms);
            if attempts.is_empty() {
                return out;
            }
            for a in attempts {
                assert!(a.request.url.ends_with("/api/v2/alerts"));
                let body: serde_json::Value =
                    serde_json::from_str(&a.request.body).expect("JSON array");
                out.push(
                    body.as_array()
                        .expect("array")
                        .iter()
                        .map(|x| {
                            (
                                x["labels"]["alert_id"].as_str().unwrap_or("").to_string(),
                                x["endsAt"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect(),
                );
                d.finished(a.channel, Outcome::Delivered, now);
            }
        }
    }

    #[test]
    fn alertmanager_hears_active_alerts_again_and_their_end() {
        // Wall clock 2026-10-14T08:00:00+08:00; the alerts fired at midnight.
        let wall = 1_791_936_000_000;
        let at = |ms: i64| rfc(ms);
        let mut d = Dispatcher::new(alertmanager(1), Names::default(), 0);
        d.submit(
            notice("a", "case.overdue", "yellow", "430626"),
            &HashSet::new(),
            1,
            0,
            wall,
        );
        // The burst is one: the second is held back from people, not from Alertmanager.
        d.submit(
            notice("b", "case.overdue", "red", "430626"),
            &HashSet::new(),
            2,
            0,
            wall,
        );
        let ahead = at(wall + 240_000);
        assert_eq!(posted(&mut d, 0, wall), [vec![("a".into(), ahead.clone())]]);
        assert_eq!(
            d.next_wakeup(0),
            Some(60_000),
            "the summary waits; the re-send is due"
        );
        assert!(posted(&mut d, 59_999, wall).is_empty());
        // A minute on, both again, four minutes ahead of the new time (and the summary).
        let wall = wall + 60_000;
        let sent = posted(&mut d, 60_000, wall);
        let ahead = at(wall + 240_000);
        assert!(
            sent.contains(&vec![
                ("a".into(), ahead.clone()),
                ("b".into(), ahead.clone())
            ]),
            "{sent:?}"
        );

        // A retraction reaches Alertmanager though no route asks for retractions, ending
        // where the alert started (the late event happened before it).
        let mut retracted = notice("a", "case.overdue", "yellow", "430626");
        retracted.status = "retracted".into();
        retracted.evidence =
            serde_json::json!({"retracted_by": {"occurred_at": "2026-10-13T09:00:00+08:00"}});
        d.submit(retracted, &HashSet::new(), 3, 61_000, wall);
        assert_eq!(
            posted(&mut d, 61_000, wall),
            [vec![("a".into(), "2026-10-14T00:00:00+08:00".to_string())]]
        );
        // An inspector resolves b: its end at the resolution.
        d.ended("b", 1_791_939_600, 62_000);
        d.ended("b", 1_791_939_600, 62_000);
        assert_eq!(
            posted(&mut d, 62_000, wall),
            [vec![("b".into(), "2026-10-14T09:00:00+08:00".to_string())]],
            "ended once"
        );
        assert_eq!(d.firing_count(), 0);
        assert!(
            posted(&mut d, 200_000, wall).is_empty(),
            "nothing left to re-send"
        );

        // After a restart, the active alerts are known again without being delivered again.
        let mut d = Dispatcher::new(alertmanager(10), Names::default(), 0);
        d.firing(notice("c", "case.overdue", "yellow", "430626"));
        assert!(posted(&mut d, 0, wall).is_empty());
        assert_eq!(
            posted(&mut d, 60_000, wall),
            [vec![("c".into(), at(wall + 240_000))]]
        );
        let (records, _) = d.drain();
        assert!(records.is_empty(), "re-sends are not ledger records");
        let tally = d.take_tally();
        assert_eq!(tally.get(&("am".to_string(), "resent")), Some(&1));
    }

    fn rfc(ms: i64) -> String {
        rules::Instant(ms / 1000).to_string()
    }
}
