//! The `[notify]` part of the configuration file: channels, routes, retry and limits.
//! Validated before anything is built ([`validate`]); every problem names its table and key so
//! `jiancha config check` can point at the line.

use std::collections::BTreeMap;

use confdoc::section;
use serde::{Deserialize, Serialize};

/// What a channel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// `POST` of the alert as JSON (`{"type":"jiancha.notification.v1", "text", "alert", …}`).
    Webhook,
    /// Alertmanager API v2: `POST {url}/api/v2/alerts`, following its client contract: each
    /// active alert is sent again every `resend_seconds` with `endsAt` ahead, and ended
    /// (retracted, resolved, dismissed) with `endsAt` at its end.
    Alertmanager,
    /// 企业微信 group robot (`qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`).
    Wecom,
    /// 钉钉 group robot (`oapi.dingtalk.com/robot/send?access_token=…`), optional 加签 secret.
    Dingtalk,
    /// An SMS gateway reached over HTTP with a body template, one request per phone number.
    Sms,
}

/// Markdown or plain text for the robot channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Markdown message (bold level, one line per fact).
    Markdown,
    /// Plain text (needed for @-mentions by mobile number).
    Text,
}

/// The lowest level a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinLevel {
    /// 预警 and above.
    Warning,
    /// 黄牌 and above.
    Yellow,
    /// 红牌 only.
    Red,
}

section! {
    /// Notifications: where alerts are pushed besides the dashboards. Each alert is matched
    /// against every `[[notify.routes]]`; it goes once to each channel of every route it
    /// matches. See docs/NOTIFICATIONS.md.
    pub struct NotifySettings {
        /// Send notifications from this process. In cluster mode, the processes with this on
        /// share the alerts topic in their own consumer group (`group`), so each alert is sent by
        /// exactly one of them; in embedded mode the single process sends.
        enabled: bool = false, env "JIANCHA_NOTIFY_ENABLED";
        /// Consumer group of the notifiers in cluster mode (empty: the `[kafka] group` with
        /// `.notify` appended).
        group: String = String::new(), env "JIANCHA_NOTIFY_GROUP";
        /// First retry after a failed delivery; each further retry waits twice as long.
        retry_first_seconds: u64 = 2, env "JIANCHA_NOTIFY_RETRY_FIRST_SECONDS";
        /// Longest wait between two retries.
        retry_max_seconds: u64 = 300, env "JIANCHA_NOTIFY_RETRY_MAX_SECONDS";
        /// A message still undelivered this long after it was queued is given up (logged as
        /// an error and recorded as `failed`).
        give_up_hours: u64 = 24, env "JIANCHA_NOTIFY_GIVE_UP_HOURS";
        /// Timeout of one HTTP request to a channel.
        timeout_seconds: u64 = 10, env "JIANCHA_NOTIFY_TIMEOUT_SECONDS";
        /// Alerts that fired (event time) longer ago than this are not sent, so a new notifier
        /// on an alerts topic with history, or a re-processing of old events, does not flood
        /// the groups. Embedded mode also offers again, at start, the stored alerts of this
        /// period that have no delivery record (what a crash interrupted).
        max_age_hours: u64 = 24, env "JIANCHA_NOTIFY_MAX_AGE_HOURS";
        /// Link to the dashboards put at the end of every message (empty: none).
        dashboard_url: String = String::new(), env "JIANCHA_NOTIFY_DASHBOARD_URL";
        /// The channels (`[[notify.channels]]`).
        channels: Vec<ChannelSettings> = Vec::new();
        /// The routes (`[[notify.routes]]`).
        routes: Vec<RouteSettings> = Vec::new();
    }
}

section! {
    /// One channel. Table `[[notify.channels]]`, one per channel.
    pub struct ChannelSettings {
        /// Name that routes refer to.
        name: String = String::new();
        /// `webhook`, `alertmanager`, `wecom`, `dingtalk` or `sms`.
        kind: ChannelKind = ChannelKind::Webhook;
        /// Endpoint (http or https). For `alertmanager` the base URL (`/api/v2/alerts` is
        /// appended); for `wecom` and `dingtalk` the robot's webhook address with its key or token.
        url: String = String::new();
        /// `markdown` or `text` (`wecom`, `dingtalk`).
        format: Format = Format::Markdown;
        /// 钉钉 加签 secret (`SEC…`): requests are signed with timestamp and HMAC-SHA256.
        secret: String = String::new();
        /// Mobile numbers to @-mention (`wecom`, `dingtalk`; with `format = "text"` for WeCom).
        mention_mobiles: Vec<String> = Vec::new();
        /// `sms`: the phone numbers; one request per number.
        phones: Vec<String> = Vec::new();
        /// `sms`: request body with placeholders `{phone}`, `{text}`, `{level}`, `{rule}`,
        /// `{alert_id}`; values are escaped for `content_type` (JSON string or form-encoded).
        body_template: String = String::new();
        /// `sms` and `webhook`: Content-Type of the request.
        content_type: String = "application/json".into();
        /// Extra request headers (e.g. `Authorization`).
        headers: BTreeMap<String, String> = BTreeMap::new();
        /// Storm limit: messages per minute the channel refills …
        rate_per_minute: u32 = 20;
        /// … and how many may go at once. Alerts beyond it are not sent one by one: a summary
        /// (how many, which levels) follows when the limit allows.
        burst: u32 = 10;
        /// `alertmanager`: the active alerts are sent again this often, each with `endsAt`
        /// four intervals ahead (as Prometheus does), so Alertmanager keeps them firing for as
        /// long as jiancha does and never applies its own `resolve_timeout`. Re-sends are not
        /// messages to people (Alertmanager groups them): the storm limit does not count them.
        resend_seconds: u64 = 60;
    }
}

section! {
    /// One route. Table `[[notify.routes]]`: which alerts go to which channels.
    pub struct RouteSettings {
        /// Channel names.
        channels: Vec<String> = Vec::new();
        /// Rules (`case.overdue`) or families (`case.*`, `hall.*`); empty: every rule.
        rules: Vec<String> = Vec::new();
        /// Lowest level: `warning`, `yellow` or `red`.
        min_level: MinLevel = MinLevel::Warning;
        /// GB/T 2260 prefixes (`43`, `4306`, `430626`); empty: every region.
        regions: Vec<String> = Vec::new();
        /// Also tell these channels when an alert they were told of is retracted.
        retractions: bool = false;
    }
}

/// A configuration problem: where (`table`, its index for arrays, `key`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// TOML table (`notify`, `notify.channels`, `notify.routes`).
    pub table: &'static str,
    /// Index among the table's occurrences.
    pub index: usize,
    /// Key, when one is at fault.
    pub key: Option<&'static str>,
    /// Reason.
    pub reason: String,
}

/// Check what serde cannot: names, URLs, references, templates, limits.
pub fn validate(s: &NotifySettings) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut problem = |table, index, key, reason: String| {
        out.push(Problem {
            table,
            index,
            key,
            reason,
        })
    };
    if s.retry_first_seconds == 0 || s.retry_max_seconds < s.retry_first_seconds {
        problem(
            "notify",
            0,
            Some("retry_max_seconds"),
            "retry_first_seconds must be at least 1 and retry_max_seconds at least as long".into(),
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, c) in s.channels.iter().enumerate() {
        let t = "notify.channels";
        if c.name.trim().is_empty() {
            problem(t, i, Some("name"), "a channel needs a name".into());
        } else if !names.insert(c.name.as_str()) {
            problem(
                t,
                i,
                Some("name"),
                format!("channel {:?} is defined twice", c.name),
            );
        }
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            problem(
                t,
                i,
                Some("url"),
                format!("url must start with http:// or https://, found {:?}", c.url),
            );
        }
        if c.rate_per_minute == 0 || c.burst == 0 {
            problem(
                t,
                i,
                Some("burst"),
                "rate_per_minute and burst must be at least 1".into(),
            );
        }
        if c.kind == ChannelKind::Sms {
            if c.phones.is_empty() {
                problem(t, i, Some("phones"), "an sms channel needs phones".into());
            }
            if !c.body_template.contains("{text}") {
                problem(
                    t,
                    i,
                    Some("body_template"),
                    "an sms body_template must contain {text}".into(),
                );
            }
        }
        if c.kind == ChannelKind::Alertmanager && c.resend_seconds == 0 {
            problem(
                t,
                i,
                Some("resend_seconds"),
                "resend_seconds must be at least 1: Alertmanager resolves alerts that are not sent again".into(),
            );
        }
        if !c.secret.is_empty() && c.kind != ChannelKind::Dingtalk {
            problem(
                t,
                i,
                Some("secret"),
                "secret (加签) only applies to dingtalk channels".into(),
            );
        }
    }
    for (i, r) in s.routes.iter().enumerate() {
        let t = "notify.routes";
        if r.channels.is_empty() {
            problem(t, i, Some("channels"), "a route needs channels".into());
        }
        for c in &r.channels {
            if !names.contains(c.as_str()) {
                problem(
                    t,
                    i,
                    Some("channels"),
                    format!("no channel named {c:?} (channels: {names:?})"),
                );
            }
        }
        for rule in &r.rules {
            let known = match rule.strip_suffix(".*") {
                Some(family) => rules::Rule::ALL
                    .iter()
                    .any(|r| r.as_str().starts_with(&format!("{family}."))),
                None => rules::Rule::parse(rule).is_some(),
            };
            if !known {
                problem(
                    t,
                    i,
                    Some("rules"),
                    format!("unknown rule {rule:?} (SPEC §6 names, or a family like \"case.*\")"),
                );
            }
        }
        for region in &r.regions {
            let ok =
                matches!(region.len(), 2 | 4 | 6) && region.bytes().all(|b| b.is_ascii_digit());
            if !ok {
                problem(
                    t,
                    i,
                    Some("regions"),
                    format!("region {region:?} is not a GB/T 2260 prefix of 2, 4 or 6 digits"),
                );
            }
        }
    }
    if s.enabled && s.routes.is_empty() {
        problem(
            "notify",
            0,
            Some("enabled"),
            "notifications are enabled but no [[notify.routes]] is configured".into(),
        );
    }
    out
}
