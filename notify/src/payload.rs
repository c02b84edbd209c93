//! What each kind of channel is sent, and what its answer means.
//!
//! Formats: the generic webhook gets the alert JSON with the text; Alertmanager's API v2 an array
//! of alerts (`labels`, `annotations`, `startsAt`, `endsAt`: ahead while active, at the end once
//! retracted or resolved; [`alertmanager_alert`]); WeCom's and
//! DingTalk's group robots their `msgtype` `markdown` or `text` body (DingTalk signed when the
//! channel has a 加签 secret); an SMS gateway the channel's template with escaped values.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::config::{ChannelKind, ChannelSettings, Format};
use crate::notice::Notice;
use crate::text::{level_title, rule_title, Message};

/// One HTTP request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Full URL.
    pub url: String,
    /// Content-Type.
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

/// What the message is for: one alert, or the storm summary.
pub enum Subject<'a> {
    /// One alert line.
    Alert(&'a Notice),
    /// The summary of what the limit held back (no single alert).
    Summary,
}

/// The request for `message` on channel `c` (for SMS, to `phone`). `now_ms` is the wall clock
/// (Unix milliseconds) for signatures and Alertmanager's `endsAt`.
pub fn request(
    c: &ChannelSettings,
    subject: &Subject<'_>,
    message: &Message,
    phone: Option<&str>,
    now_ms: i64,
) -> Request {
    let headers: Vec<(String, String)> = c
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let json_request = |url: String, body: serde_json::Value| Request {
        url,
        content_type: "application/json".into(),
        headers: headers.clone(),
        body: body.to_string(),
    };
    match c.kind {
        ChannelKind::Webhook => {
            let alert = match subject {
                Subject::Alert(n) => n.raw.clone(),
                Subject::Summary => serde_json::Value::Null,
            };
            let mut r = json_request(
                c.url.clone(),
                json!({
                    "type": "jiancha.notification.v1",
                    "kind": match subject { Subject::Alert(_) => "alert", Subject::Summary => "summary" },
                    "title": message.title,
                    "text": message.text(),
                    "alert": alert,
                }),
            );
            r.content_type.clone_from(&c.content_type);
            r
        }
        ChannelKind::Alertmanager => {
            let alerts = match subject {
                Subject::Alert(n) => {
                    let ends_at = if n.ends() {
                        n.end_secs()
                    } else {
                        now_ms.div_euclid(1000) + active_for_secs(c)
                    };
                    vec![alertmanager_alert(
                        n,
                        message.text(),
                        message.link.as_deref(),
                        ends_at,
                    )]
                }
                Subject::Summary => vec![json!({
                    "labels": {"alertname": "jiancha_notifications_suppressed", "severity": "warning"},
                    "annotations": {"summary": message.title, "description": message.text()},
                    "startsAt": rfc3339(now_ms),
                    "endsAt": rfc3339(now_ms + active_for_secs(c) * 1000),
                })],
            };
            alertmanager_request(c, alerts)
        }
        ChannelKind::Wecom => {
            let body = match c.format {
                Format::Markdown => {
                    json!({"msgtype": "markdown", "markdown": {"content": message.markdown()}})
                }
                Format::Text => json!({"msgtype": "text", "text": {
                    "content": message.text(),
                    "mentioned_mobile_list": c.mention_mobiles,
                }}),
            };
            json_request(c.url.clone(), body)
        }
        ChannelKind::Dingtalk => {
            let at = json!({"atMobiles": c.mention_mobiles, "isAtAll": false});
            let body = match c.format {
                Format::Markdown => {
                    // DingTalk shows an @ only when the number is also in the text.
                    let mut text = message.markdown();
                    for m in &c.mention_mobiles {
                        text.push_str(&format!(" @{m}"));
                    }
                    json!({"msgtype": "markdown", "markdown": {"title": message.title, "text": text}, "at": at})
                }
                Format::Text => {
                    json!({"msgtype": "text", "text": {"content": message.text()}, "at": at})
                }
            };
            let url = if c.secret.is_empty() {
                c.url.clone()
            } else {
                let sep = if c.url.contains('?') { '&' } else { '?' };
                format!(
                    "{}{sep}timestamp={now_ms}&sign={}",
                    c.url,
                    percent_encode(&dingtalk_sign(&c.secret, now_ms))
                )
            };
            json_request(url, body)
        }
        ChannelKind::Sms => {
            let form = c
                .content_type
                .starts_with("application/x-www-form-urlencoded");
            let escape = |s: &str| {
                if form {
                    percent_encode(s)
                } else {
                    json_escape(s)
                }
            };
            let (level, rule, alert_id) = match subject {
                Subject::Alert(n) => (
                    level_title(&n.level),
                    rule_title(&n.rule),
                    n.alert_id.as_str(),
                ),
                Subject::Summary => ("汇总", "", ""),
            };
            let body = c
                .body_template
                .replace("{phone}", &escape(phone.unwrap_or_default()))
                .replace("{level}", &escape(level))
                .replace("{rule}", &escape(rule))
                .replace("{alert_id}", &escape(alert_id))
                .replace("{text}", &escape(&message.text()));
            Request {
                url: c.url.clone(),
                content_type: c.content_type.clone(),
                headers,
                body,
            }
        }
    }
}

/// How far ahead of the wall clock an active alert's `endsAt` is put: four re-send intervals,
/// as Prometheus does, so that one or two lost re-sends never end an alert.
pub fn active_for_secs(c: &ChannelSettings) -> i64 {
    i64::try_from(c.resend_seconds.max(1).saturating_mul(4)).unwrap_or(i64::MAX / 2)
}

/// `POST {url}/api/v2/alerts` with `alerts` (Alertmanager's v2 form, see [`alertmanager_alert`]).
pub fn alertmanager_request(c: &ChannelSettings, alerts: Vec<serde_json::Value>) -> Request {
    Request {
        url: format!("{}/api/v2/alerts", c.url.trim_end_matches('/')),
        content_type: "application/json".into(),
        headers: c
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body: serde_json::Value::Array(alerts).to_string(),
    }
}

/// One alert as Alertmanager's API v2 takes it. Labels identify it (its `alert_id`) and carry
/// what receivers route and silence by: rule, level, severity, region, centre and, where the
/// alert has them, department, window, staff member, case, item and source. `startsAt` is the
/// alert's `fired_at`; `endsAt` is `ends_at` (Unix seconds) but never before `startsAt`, which
/// Alertmanager refuses (event time may run ahead of the wall clock by the allowed skew).
pub fn alertmanager_alert(
    n: &Notice,
    description: String,
    link: Option<&str>,
    ends_at: i64,
) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    let mut label = |k: &str, v: &str| {
        if !v.is_empty() {
            labels.insert(k.to_string(), json!(v));
        }
    };
    label(
        "alertname",
        &format!("jiancha_{}", n.rule.replace('.', "_")),
    );
    label("rule", &n.rule);
    label("level", &n.level);
    label(
        "severity",
        match n.level.as_str() {
            "red" => "critical",
            "yellow" => "warning",
            _ => "info",
        },
    );
    label("alert_id", &n.alert_id);
    label("region", &n.region);
    label("center_id", &n.center_id);
    for (k, v) in [
        ("department", &n.department),
        ("window_id", &n.window_id),
        ("staff_id", &n.staff_id),
        ("case_id", &n.case_id),
        ("item_code", &n.item_code),
    ] {
        label(k, v.as_deref().unwrap_or_default());
    }
    if let Some(source) = n.raw.get("source").and_then(|s| s.as_str()) {
        label("source", source);
    }
    let starts = starts_at_secs(n);
    let mut alert = json!({
        "labels": labels,
        "annotations": {
            "summary": format!("{}：{}", level_title(&n.level), rule_title(&n.rule)),
            "description": description,
        },
        "startsAt": n.fired_at,
        "endsAt": rfc3339(ends_at.max(starts).saturating_mul(1000)),
    });
    if let Some(link) = link {
        alert["generatorURL"] = json!(link);
    }
    alert
}

/// The alert's `fired_at` in Unix seconds (0 if unreadable: then any end is after it).
fn starts_at_secs(n: &Notice) -> i64 {
    rules::time::parse_rfc3339(&n.fired_at).map_or(0, |t| t.0)
}

/// Where a retracted alert ends: a retraction says the alert should never have fired (the later
/// event happened before it), so it ends where it started, or at the retracting event if that
/// is later. Event time, like `startsAt`: never before it, whatever the wall clock says.
pub fn retraction_end(n: &Notice) -> i64 {
    let by = n
        .evidence
        .get("retracted_by")
        .and_then(|r| r.get("occurred_at"))
        .and_then(|t| t.as_str())
        .and_then(|t| rules::time::parse_rfc3339(t).ok())
        .map_or(0, |t| t.0);
    by.max(starts_at_secs(n))
}

/// DingTalk's 加签: Base64(HMAC-SHA256(secret, "{timestamp}\n{secret}")).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `application/x-www-form-urlencoded`/URL component encoding (UTF-8 bytes, unreserved kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inside of a JSON string (the template supplies the quotes).
fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// Unix milliseconds as RFC 3339 (China Standard Time, as every jiancha time).
fn rfc3339(ms: i64) -> String {
    rules::Instant(ms.div_euclid(1000)).to_string()
}

/// How a channel answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered.
    Delivered,
    /// Not now (network, timeout, 5xx, 408/429, a robot's rate-limit code): retry with backoff.
    Retry(String),
    /// Refused (other 4xx, a robot's error code): retrying would be refused again.
    Refused(String),
}

/// Classify an HTTP answer. The robots answer 200 with `errcode` in the body: 0 is success;
/// WeCom's 45009 and DingTalk's 130101 (sending too fast) are worth a retry, any other code is
/// a refusal (bad key, bad format).
pub fn classify(kind: ChannelKind, status: u16, body: &str) -> Outcome {
    match status {
        200..=299 => {
            if matches!(kind, ChannelKind::Wecom | ChannelKind::Dingtalk) {
                let code = serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("errcode").and_then(|c| c.as_i64()));
                match code {
                    Some(0) => Outcome::Delivered,
                    Some(45009) | Some(130101) => Outcome::Retry(format!("rate limited: {body}")),
                    Some(_) => Outcome::Refused(format!("robot error: {body}")),
                    None => Outcome::Refused(format!("unexpected answer: {body}")),
                }
            } else {
                Outcome::Delivered
            }
        }
        408 | 429 | 500..=599 => Outcome::Retry(format!("HTTP {status}: {}", snippet(body))),
        _ => Outcome::Refused(format!("HTTP {status}: {}", snippet(body))),
    }
}

fn snippet(body: &str) -> &str {
    let mut end = body.len().min(200);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dingtalk_signature_and_encodings() {
        // The signature of DingTalk's documentation procedure, recomputed independently:
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"SECabc",
        //   b"1700000000000\nSECabc",hashlib.sha256).digest()).decode())'
        assert_eq!(
            dingtalk_sign("SECabc", 1_700_000_000_000),
            "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM="
        );
        assert_eq!(percent_encode("a+b/c 红"), "a%2Bb%2Fc%20%E7%BA%A2");
        assert_eq!(json_escape("说\"明\"\n"), "说\\\"明\\\"\\n");
        assert_eq!(rfc3339(1_763_775_000_000), "2025-11-22T09:30:00+08:00");
    }

    #[test]
    fn robot_answers_are_classified() {
        assert_eq!(
            classify(ChannelKind::Wecom, 200, r#"{"errcode":0,"errmsg":"ok"}"#),
            Outcome::Delivered
        );
        assert!(matches!(
            classify(ChannelKind::Wecom, 200, r#"{"errcode":45009}"#),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(
                ChannelKind::Dingtalk,
                200,
                r#"{"errcode":310000,"errmsg":"sign not match"}"#
            ),
            Outcome::Refused(_)
        ));
        assert!(matches!(
            classify(ChannelKind::Webhook, 503, ""),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(ChannelKind::Sms, 400, "bad"),
            Outcome::Refused(_)
        ));
        assert_eq!(
            classify(ChannelKind::Alertmanager, 200, ""),
            Outcome::Delivered
        );
    }

    #[test]
    fn alertmanager_alerts_carry_routing_keys_and_never_end_before_they_start() {
        let n = Notice::from_value(json!({
            "alert_id": "x1", "rule": "case.overdue", "level": "yellow", "status": "open",
            "fired_at": "2026-10-14T00:00:00+08:00", "center_id": "PJ", "region": "430626",
            "department": "", "window_id": "W07", "staff_id": "S1", "case_id": "C-1",
            "source": "front-db"
        }))
        .expect("notice");
        // An end an hour before the start (event time ahead of the wall clock).
        let a = alertmanager_alert(&n, "text".into(), None, 1_791_932_400 - 86_400);
        assert_eq!(a["endsAt"], a["startsAt"]);
        assert_eq!(a["annotations"]["summary"], "黄牌：办件超时");
        let labels = &a["labels"];
        for (k, v) in [
            ("window_id", "W07"),
            ("staff_id", "S1"),
            ("case_id", "C-1"),
            ("source", "front-db"),
            ("severity", "warning"),
            ("alertname", "jiancha_case_overdue"),
        ] {
            assert_eq!(labels[k], v, "{k}");
        }
        assert!(
            labels.get("department").is_none(),
            "empty labels are left out"
        );
    }
}
