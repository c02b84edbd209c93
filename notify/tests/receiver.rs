//! The notifier against a real local HTTP receiver (a std `TcpListener` speaking just enough
//! HTTP/1.1): the messages people would see, once each and in order, through an outage of the
//! receiver, a restart with the same ledger, and a storm.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::config::{
    ChannelKind, ChannelSettings, Format, MinLevel, NotifySettings, RouteSettings,
};
use notify::driver::{self, Input, Metrics};
use notify::{Ledger, MemoryLedger, Names, Notice};
use tokio::sync::mpsc;

#[path = "support/receiver.rs"]
mod support;
use support::{Got, Receiver};

fn channel(name: &str, kind: ChannelKind, url: String) -> ChannelSettings {
    ChannelSettings {
        name: name.into(),
        kind,
        url,
        rate_per_minute: 60,
        burst: 10,
        ..ChannelSettings::default()
    }
}

fn settings(addr: SocketAddr) -> NotifySettings {
    let base = format!("http://{addr}");
    NotifySettings {
        enabled: true,
        retry_first_seconds: 1,
        retry_max_seconds: 1,
        timeout_seconds: 2,
        // The alerts are from October 2026; this test is about delivery, not age.
        max_age_hours: 1_000_000,
        channels: vec![
            channel("hook", ChannelKind::Webhook, format!("{base}/hook")),
            channel("wx", ChannelKind::Wecom, format!("{base}/wecom?key=K")),
            ChannelSettings {
                format: Format::Text,
                secret: "SECtest".into(),
                mention_mobiles: vec!["13900000000".into()],
                ..channel(
                    "dd",
                    ChannelKind::Dingtalk,
                    format!("{base}/dingtalk?access_token=T"),
                )
            },
            ChannelSettings {
                phones: vec!["13800000000".into()],
                content_type: "application/x-www-form-urlencoded".into(),
                body_template: "mobile={phone}&content={text}".into(),
                ..channel("sms", ChannelKind::Sms, format!("{base}/sms"))
            },
            channel("am", ChannelKind::Alertmanager, format!("{base}/am/")),
        ],
        routes: vec![
            RouteSettings {
                channels: vec!["hook".into(), "wx".into(), "dd".into(), "am".into()],
                min_level: MinLevel::Yellow,
                regions: vec!["430626".into()],
                ..RouteSettings::default()
            },
            RouteSettings {
                channels: vec!["sms".into()],
                min_level: MinLevel::Red,
                ..RouteSettings::default()
            },
        ],
        ..NotifySettings::default()
    }
}

fn alert(id: &str, level: &str, case: &str) -> Notice {
    Notice::from_value(serde_json::json!({
        "alert_id": id, "rule": "case.overdue", "level": level, "status": "open",
        "fired_at": "2026-10-14T00:00:00+08:00", "center_id": "PJ", "region": "430626",
        "department": "ZJ", "window_id": "PJ-W02", "staff_id": "PJ0012", "case_id": case,
        "item_code": "I1", "message": "承诺时限已过", "evidence": {"deadline_date": "2026-10-13"}
    }))
    .expect("alert")
}

fn names() -> Names {
    let mut n = Names::default();
    n.centers.insert("PJ".into(), "平江县政务服务中心".into());
    n.departments.insert("ZJ".into(), "住建局".into());
    n.staff.insert("PJ0012".into(), "李明".into());
    n.items.insert("I1".into(), "建设工程规划许可".into());
    n
}

/// A running notifier: its input, its done tokens.
struct Notifier {
    input: mpsc::UnboundedSender<Input>,
    done: mpsc::UnboundedReceiver<u64>,
}

impl Notifier {
    fn start(settings: NotifySettings, ledger: Arc<dyn Ledger>) -> Notifier {
        let (input, inputs) = mpsc::unbounded_channel();
        let (done_tx, done) = mpsc::unbounded_channel();
        let metrics = Metrics::new(&prometheus::Registry::new());
        tokio::spawn(driver::run(
            settings,
            names(),
            ledger,
            inputs,
            done_tx,
            metrics,
        ));
        Notifier { input, done }
    }

    fn send(&self, notices: &[Notice]) {
        for (i, n) in notices.iter().enumerate() {
            self.input
                .send(Input::Alert {
                    notice: n.clone(),
                    token: i as u64,
                })
                .expect("notifier running");
        }
    }

    /// Wait for `n` done tokens (at most `secs`); the tokens in the order they came.
    async fn done(&mut self, n: usize, secs: u64) -> Vec<u64> {
        let mut tokens = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while tokens.len() < n {
            match tokio::time::timeout_at(deadline, self.done.recv()).await {
                Ok(Some(t)) => tokens.push(t),
                _ => break,
            }
        }
        tokens
    }
}

fn bodies(got: &[Got], path_prefix: &str) -> Vec<String> {
    got.iter()
        .filter(|(p, _)| p.starts_with(path_prefix))
        .map(|(_, b)| b.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_back_gets_every_message_once_in_order_and_a_restart_sends_nothing_again(
) {
    // Find a free port, then leave it closed: the receiver is down.
    let addr = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let ledger = Arc::new(MemoryLedger::default());
    let mut notifier = Notifier::start(settings(addr), ledger.clone());
    let alerts = [
        alert("y1", "yellow", "PJ2026-0928-002"),
        alert("y2", "yellow", "PJ2026-0929-001"),
        alert("r1", "red", "PJ2026-0928-002"),
        alert("w1", "warning", "PJ2026-0930-004"),
    ];
    let down_since = Instant::now();
    notifier.send(&alerts);
    // Nothing can be delivered while it is down: only the warning, which no route takes, ends.
    assert_eq!(
        notifier.done(2, 2).await,
        [3],
        "only the unrouted warning ends while down"
    );
    let receiver = Receiver::start(TcpListener::bind(addr).expect("rebind the same port"));
    let down_for = down_since.elapsed();
    let mut tokens = notifier.done(3, 20).await;
    tokens.sort();
    assert_eq!(
        tokens,
        [0, 1, 2],
        "every alert ends once the receiver is back"
    );
    let got = receiver.got();

    // The WeCom group: the two yellow cards and the red card, in order, each once.
    let wecom = bodies(&got, "/wecom?key=K");
    let contents: Vec<String> = wecom
        .iter()
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(b).expect("json");
            assert_eq!(v["msgtype"], "markdown");
            v["markdown"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(contents.len(), 3, "{contents:#?}");
    assert_eq!(
        contents[0],
        "**【黄牌】办件超时**\n\n> 单位：平江县政务服务中心（PJ） · 住建局（ZJ） · 窗口 PJ-W02\n\
         > 办件：PJ2026-0928-002（建设工程规划许可）\n> 人员：李明（PJ0012）\n> 期限：2026-10-13\n\
         > 时间：2026-10-14 00:00\n> 说明：承诺时限已过\n> 编号：y1"
    );
    assert!(contents[1].contains("PJ2026-0929-001") && contents[1].starts_with("**【黄牌】"));
    assert!(contents[2].starts_with("**【红牌】办件超时**") && contents[2].contains("编号：r1"));

    // DingTalk: text with the @-mention, signed with a fresh timestamp.
    let dd: Vec<&Got> = got
        .iter()
        .filter(|(p, _)| p.starts_with("/dingtalk"))
        .collect();
    assert_eq!(dd.len(), 3);
    assert!(dd[0].0.contains("access_token=T&timestamp=") && dd[0].0.contains("&sign="));
    let v: serde_json::Value = serde_json::from_str(&dd[0].1).expect("json");
    assert_eq!(v["msgtype"], "text");
    assert!(v["text"]["content"]
        .as_str()
        .unwrap_or_default()
        .starts_with("【黄牌】办件超时\n单位：平江县政务服务中心"));
    assert_eq!(v["at"]["atMobiles"][0], "13900000000");

    // The generic webhook forwards the alert itself.
    let hook = bodies(&got, "/hook");
    let ids: Vec<String> = hook
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).expect("json")["alert"]["alert_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["y1", "y2", "r1"]);

    // Alertmanager v2: one alert per POST at /api/v2/alerts with labels.
    let am: Vec<&Got> = got.iter().filter(|(p, _)| p.starts_with("/am")).collect();
    assert_eq!(am.len(), 3);
    assert_eq!(am[2].0, "/am/api/v2/alerts");
    let v: serde_json::Value = serde_json::from_str(&am[2].1).expect("json");
    assert_eq!(v[0]["labels"]["alertname"], "jiancha_case_overdue");
    assert_eq!(v[0]["labels"]["severity"], "critical");
    assert_eq!(v[0]["startsAt"], "2026-10-14T00:00:00+08:00");

    // SMS: only the red card, form-encoded from the template.
    let sms = bodies(&got, "/sms");
    assert_eq!(sms.len(), 1);
    assert!(
        sms[0].starts_with("mobile=13800000000&content=%E3%80%90%E7%BA%A2%E7%89%8C%E3%80%91"),
        "{}",
        sms[0]
    );
    // The warning matched no route: nothing anywhere mentions it.
    assert!(got.iter().all(|(_, b)| !b.contains("PJ2026-0930-004")));
    assert_eq!(got.len(), 3 * 4 + 1);
    assert!(down_for >= Duration::from_secs(2));

    // A restart (new notifier, same ledger) offered the same alerts again sends nothing.
    drop(notifier);
    let mut again = Notifier::start(settings(addr), ledger.clone());
    again.send(&alerts);
    let mut tokens = again.done(4, 5).await;
    tokens.sort();
    assert_eq!(tokens, [0, 1, 2, 3]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.got().len(), got.len(), "nothing sent twice");
    assert_eq!(ledger.records().len(), 13);
    let keys: HashSet<_> = ledger.records().into_iter().map(|r| r.key).collect();
    assert_eq!(keys.len(), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_is_cut_to_the_burst_then_one_summary() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = Receiver::start(listener);
    let mut s = settings(addr);
    // One channel, 3 at once, then one a second.
    s.channels = vec![ChannelSettings {
        burst: 3,
        rate_per_minute: 60,
        ..channel(
            "wx",
            ChannelKind::Wecom,
            format!("http://{addr}/wecom?key=K"),
        )
    }];
    s.routes = vec![RouteSettings {
        channels: vec!["wx".into()],
        ..RouteSettings::default()
    }];
    let mut notifier = Notifier::start(s, Arc::new(MemoryLedger::default()));
    let storm: Vec<Notice> = (0..10)
        .map(|i| {
            alert(
                &format!("s{i}"),
                if i == 9 { "red" } else { "yellow" },
                &format!("C{i}"),
            )
        })
        .collect();
    notifier.send(&storm);
    assert_eq!(notifier.done(10, 10).await.len(), 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.got().len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let contents: Vec<String> = bodies(&receiver.got(), "/wecom")
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).expect("json")["markdown"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(contents.len(), 4, "{contents:#?}");
    for (i, c) in contents[..3].iter().enumerate() {
        assert!(c.contains(&format!("编号：s{i}")), "{c}");
    }
    assert_eq!(
        contents[3],
        "**【汇总】另有 7 条告警未逐条推送**\n\n> 明细：红牌 1 条，黄牌 6 条\n\
         > 原因：告警过于密集，已按频率限制合并\n> 处理：请登录电子监察系统查看完整告警队列"
    );
}
