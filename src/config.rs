//! The configuration file (`--config FILE`, or `JIANCHA_CONFIG`): one TOML file for `cluster`,
//! `api`, `serve`, `migrate`, `replay` and `check`, with environment overrides.
//!
//! Precedence, highest first: **command-line flag > environment variable > file > default**.
//! [`load`] applies the file and then the environment over the defaults; each command then lays
//! its flags over the result. Every section is declared with [`confdoc::section!`], so the
//! reference (`docs/CONFIG.md`, [`reference`]) comes from these structs and a test fails when the
//! committed copy differs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use confdoc::section;
use serde::{Deserialize, Serialize};

/// How the engine clock moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSetting {
    /// Event time, and the wall clock less the lateness once caught up (production).
    Wall,
    /// Event time only (re-processing history, tests).
    Event,
}

impl confdoc::FromEnv for ClockSetting {
    fn from_env(text: &str) -> Result<Self, String> {
        match text.trim() {
            "wall" => Ok(ClockSetting::Wall),
            "event" => Ok(ClockSetting::Event),
            other => Err(format!("expected wall or event, found {other:?}")),
        }
    }
}

section! {
    /// Reference data (SPEC §4): `replay`, `check`, `cluster` and `serve`.
    pub struct ReferenceSection {
        /// Reference data directory (items.csv, windows.csv, staff.csv, calendar/, policy.toml).
        dir: Option<PathBuf> = None, env "JIANCHA_REFERENCE";
        /// Policy file overriding `dir/policy.toml` (for `jiancha api`: its ingest skew and
        /// 绩效 weights).
        policy: Option<PathBuf> = None, env "JIANCHA_POLICY";
    }
}

section! {
    /// Kafka (cluster mode: `cluster`, `api`).
    pub struct KafkaSection {
        /// Bootstrap servers (`host:port,…`).
        brokers: String = "127.0.0.1:9092".into(), env "JIANCHA_KAFKA_BROKERS";
        /// Consumer group shared by the processes of one deployment (also keys the checkpoints).
        group: String = "jiancha".into(), env "JIANCHA_GROUP";
        /// Events in (SPEC §3, key `center_id`); HTTP ingest produces here too.
        events_topic: String = "jiancha.events".into(), env "JIANCHA_EVENTS_TOPIC";
        /// Invalid messages out (raw bytes; reason, field, message and source in headers).
        dead_letter_topic: String = "jiancha.dead-letter".into(), env "JIANCHA_DEAD_LETTER_TOPIC";
        /// Alerts out (key `alert_id`, value the SPEC §7 JSON); notifiers read it.
        alerts_topic: String = "jiancha.alerts".into(), env "JIANCHA_ALERTS_TOPIC";
        /// Live window status (key `window_id`).
        status_topic: String = "jiancha.window-status".into(), env "JIANCHA_STATUS_TOPIC";
        /// Inspector actions shared by API processes (key `alert_id`).
        actions_topic: String = "jiancha.alert-actions".into(), env "JIANCHA_ACTIONS_TOPIC";
        /// Extra librdkafka settings for consumers and producers (SASL, TLS, tuning), e.g.
        /// `{ "security.protocol" = "SASL_SSL" }`. `--kafka-option` flags are added on top.
        options: BTreeMap<String, String> = BTreeMap::new();
    }
}

section! {
    /// ClickHouse (cluster mode: `cluster`, `api`, `migrate`).
    pub struct ClickHouseSection {
        /// HTTP endpoint.
        url: String = "http://127.0.0.1:8123".into(), env "JIANCHA_CLICKHOUSE_URL";
        /// Database holding jiancha's tables (created and migrated at start-up).
        database: String = "jiancha".into(), env "JIANCHA_DATABASE";
        /// A cluster name from the servers' `remote_servers`: `migrate`, `cluster` and `api`
        /// then create and upgrade the tables `ON CLUSTER` as Replicated…MergeTree (`*_local`)
        /// with a Distributed table of the usual name in front (docs/DEPLOY.md; the servers need
        /// ZooKeeper and the `{shard}`/`{replica}` macros). Empty: plain tables on one server.
        cluster: String = String::new(), env "JIANCHA_CLICKHOUSE_CLUSTER";
    }
}

section! {
    /// The rule engine's clock (`cluster`, `serve`).
    pub struct EngineSection {
        /// `wall` (event time, and the wall clock less `lateness_seconds` once a partition or
        /// the log is caught up, so deadlines pass at night) or `event` (event time only).
        clock: ClockSetting = ClockSetting::Wall, env "JIANCHA_CLOCK";
        /// In wall-clock mode, how late an event may arrive before deadlines it could have
        /// cancelled fire.
        lateness_seconds: u64 = 300, env "JIANCHA_LATENESS_SECONDS";
    }
}

section! {
    /// Cluster-mode engine processes (`cluster`).
    pub struct ClusterSection {
        /// Static group membership: a stable name per process (the StatefulSet pod name), so a
        /// restarted process takes its partitions back at once.
        instance_id: Option<String> = None, env "JIANCHA_INSTANCE_ID";
        /// `/metrics` and `/healthz`, and the dashboard API when `[api] users` is set.
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 9464)), env "JIANCHA_METRICS_LISTEN";
        /// A batch of output is written at this many rows …
        batch_rows: usize = 20_000, env "JIANCHA_BATCH_ROWS";
        /// … or when its oldest row is this old.
        batch_milliseconds: u64 = 500, env "JIANCHA_BATCH_MILLISECONDS";
        /// Engine state is checkpointed, and offsets committed, this often.
        checkpoint_seconds: u64 = 60, env "JIANCHA_CHECKPOINT_SECONDS";
        /// Time allowed to drain, checkpoint and commit on shutdown or partition revocation.
        shutdown_seconds: u64 = 30, env "JIANCHA_SHUTDOWN_SECONDS";
    }
}

section! {
    /// The dashboard API (`api`, `serve`, and `cluster` when `users` is set).
    pub struct ApiSection {
        /// Address of `jiancha api` and `jiancha serve` (`jiancha cluster` uses `[cluster] listen`).
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)), env "JIANCHA_LISTEN";
        /// Users file (made with `jiancha user add`).
        users: Option<PathBuf> = None, env "JIANCHA_USERS";
        /// File holding the token signing secret (at least 32 bytes).
        token_secret_file: Option<PathBuf> = None, env "JIANCHA_TOKEN_SECRET_FILE";
        /// How long a login token stays valid.
        token_ttl_hours: u32 = 12, env "JIANCHA_TOKEN_TTL_HOURS";
        /// Finished alerts of the last this many days stay in the live queue (cluster mode).
        keep_days: u32 = 7, env "JIANCHA_KEEP_DAYS";
    }
}

section! {
    /// Limits against slow, idle and flooding clients of the dashboard API (`api`, `serve`,
    /// `cluster` with users); what each defends is in docs/SECURITY.md.
    pub struct SecuritySection {
        /// A request's head (line and headers) must arrive within this, counted from the
        /// opening of the connection or the end of the previous answer (so it also closes idle
        /// keep-alive connections and silent sockets).
        header_read_timeout_seconds: u64 = 10, env "JIANCHA_HEADER_READ_TIMEOUT_SECONDS";
        /// A request body that delivers nothing for this long, or an answer the client does
        /// not read for this long, ends the connection.
        idle_timeout_seconds: u64 = 60, env "JIANCHA_IDLE_TIMEOUT_SECONDS";
        /// Connections open at once, WebSockets included; beyond it a new one is answered 503.
        max_connections: usize = 16384, env "JIANCHA_MAX_CONNECTIONS";
        /// Connections that have not shown a valid token yet; beyond it the oldest idle one is
        /// closed to make room (probes and logins always get in).
        max_unauthenticated_connections: usize = 512, env "JIANCHA_MAX_UNAUTHENTICATED_CONNECTIONS";
        /// Live WebSockets one user may hold open (tabs, big screens); beyond it 429.
        max_live_per_user: usize = 16, env "JIANCHA_MAX_LIVE_PER_USER";
        /// Failed logins of one username within `login_window_minutes` that lock it.
        login_failures_per_user: u32 = 5, env "JIANCHA_LOGIN_FAILURES_PER_USER";
        /// Failed logins from one client address within `login_window_minutes` that lock it.
        login_failures_per_address: u32 = 30, env "JIANCHA_LOGIN_FAILURES_PER_ADDRESS";
        /// The window failed logins are counted in.
        login_window_minutes: u64 = 15, env "JIANCHA_LOGIN_WINDOW_MINUTES";
        /// How long a locked username or address is refused (429) without a password check.
        login_lockout_minutes: u64 = 15, env "JIANCHA_LOGIN_LOCKOUT_MINUTES";
        /// Take the client address of login limits from the last `X-Forwarded-For` entry:
        /// only behind a reverse proxy that sets it (otherwise clients could choose theirs).
        trust_forwarded_for: bool = false, env "JIANCHA_TRUST_FORWARDED_FOR";
    }
}

impl SecuritySection {
    /// The API's limits.
    pub fn limits(&self) -> dashboard_api::Limits {
        let secs = std::time::Duration::from_secs;
        dashboard_api::Limits {
            header_read_timeout: secs(self.header_read_timeout_seconds.max(1)),
            idle_timeout: secs(self.idle_timeout_seconds.max(1)),
            max_connections: self.max_connections.max(1),
            max_unauthenticated: self.max_unauthenticated_connections.max(1),
            max_live_per_user: self.max_live_per_user.max(1),
            login_failures_per_user: self.login_failures_per_user.max(1),
            login_failures_per_address: self.login_failures_per_address.max(1),
            login_window: secs(self.login_window_minutes.max(1) * 60),
            login_lockout: secs(self.login_lockout_minutes * 60),
            trust_forwarded_for: self.trust_forwarded_for,
        }
    }
}

section! {
    /// Embedded mode (`serve`).
    pub struct EmbeddedSection {
        /// Data directory (the SQLite database `jiancha.db` is made here).
        data: PathBuf = PathBuf::from("jiancha-data"), env "JIANCHA_DATA";
    }
}

section! {
    /// One Kafka topic carrying a source table's rows (cluster mode, `cluster`). Table
    /// `[[change_topics]]`, one per topic; docs/ADAPTERS.md, "Change topics".
    pub struct ChangeTopicSection {
        /// The topic.
        topic: String = String::new();
        /// `jdbc` (Kafka Connect JDBC source: each message is a row) or `debezium` (change
        /// events: create, update and delete), with or without the JSON converter's schema.
        envelope: String = String::new();
        /// The format of the rows: `sdjc`, `gdbs` or `gb39046`.
        format: String = String::new();
        /// The table the rows belong to (one of the format's). Needed for `jdbc`; for
        /// `debezium` empty means each message's `source.table`.
        table: String = String::new();
        /// The source name the events carry (else `adapters/<format>.toml`'s, else the format).
        source: String = String::new();
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[reference]`
    pub reference: ReferenceSection,
    /// `[kafka]`
    pub kafka: KafkaSection,
    /// `[clickhouse]`
    pub clickhouse: ClickHouseSection,
    /// `[engine]`
    pub engine: EngineSection,
    /// `[cluster]`
    pub cluster: ClusterSection,
    /// `[api]`
    pub api: ApiSection,
    /// `[security]`
    pub security: SecuritySection,
    /// `[embedded]`
    pub embedded: EmbeddedSection,
    /// `[notify]`
    pub notify: notify::config::NotifySettings,
    /// `[[change_topics]]`
    pub change_topics: Vec<ChangeTopicSection>,
    /// `[[frontdb]]`
    pub frontdb: Vec<crate::frontdb::FrontDbSection>,
}

/// Read `path` (if any) over the defaults, then the environment over that, then check it.
/// Every problem is one line: `FILE:LINE: reason`, or `VARIABLE: reason` for the environment.
pub fn load(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<String>> {
    let (mut config, text, name) = match path {
        None => (Config::default(), String::new(), String::new()),
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| vec![format!("{name}: cannot read the configuration file: {e}")])?;
            let config: Config = toml::from_str(&text).map_err(|e| {
                let line = e
                    .span()
                    .map(|s| confdoc::line_of_offset(&text, s.start))
                    .unwrap_or(1);
                vec![format!("{name}:{line}: {}", e.message().trim_end())]
            })?;
            (config, text, name)
        }
    };
    let mut errors = Vec::new();
    errors.extend(confdoc::apply_env(&mut config.reference, env));
    errors.extend(confdoc::apply_env(&mut config.kafka, env));
    errors.extend(confdoc::apply_env(&mut config.clickhouse, env));
    errors.extend(confdoc::apply_env(&mut config.engine, env));
    errors.extend(confdoc::apply_env(&mut config.cluster, env));
    errors.extend(confdoc::apply_env(&mut config.api, env));
    errors.extend(confdoc::apply_env(&mut config.security, env));
    errors.extend(confdoc::apply_env(&mut config.embedded, env));
    errors.extend(confdoc::apply_env(&mut config.notify, env));
    for p in notify::config::validate(&config.notify) {
        let at = confdoc::locate(&text, p.table, p.index, p.key);
        let place = match (p.table, p.key) {
            ("notify", Some(key)) => format!("[notify] {key}"),
            (table, Some(key)) => format!("[[{table}]] #{} {key}", p.index + 1),
            (table, None) => format!("[[{table}]] #{}", p.index + 1),
        };
        errors.push(match (name.is_empty(), at) {
            (false, Some(line)) => format!("{name}:{line}: {place}: {}", p.reason),
            (false, None) => format!("{name}: {place}: {}", p.reason),
            (true, _) => format!("{place}: {}", p.reason),
        });
    }
    for (i, t) in config.change_topics.iter().enumerate() {
        for (key, reason) in change_topic_problems(t, &config.change_topics[..i]) {
            let place = format!("[[change_topics]] #{} {key}", i + 1);
            errors.push(
                match (
                    name.is_empty(),
                    confdoc::locate(&text, "change_topics", i, Some(key)),
                ) {
                    (false, Some(line)) => format!("{name}:{line}: {place}: {reason}"),
                    (false, None) => format!("{name}: {place}: {reason}"),
                    (true, _) => format!("{place}: {reason}"),
                },
            );
        }
    }
    for (index, key, reason) in crate::frontdb::validate(&config.frontdb) {
        let place = format!("[[frontdb]] #{} {key}", index + 1);
        errors.push(match confdoc::locate(&text, "frontdb", index, Some(key)) {
            Some(line) if !name.is_empty() => format!("{name}:{line}: {place}: {reason}"),
            _ if !name.is_empty() => format!("{name}: {place}: {reason}"),
            _ => format!("{place}: {reason}"),
        });
    }
    let ch = &config.clickhouse;
    let plain_name =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plain_name(&ch.database) {
        errors.push(located(
            &name,
            &text,
            "clickhouse",
            "database",
            "a database name is letters, digits and _",
        ));
    }
    if !ch.cluster.is_empty() && !plain_name(&ch.cluster) {
        errors.push(located(
            &name,
            &text,
            "clickhouse",
            "cluster",
            "a cluster name is letters, digits and _",
        ));
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// What is wrong with one `[[change_topics]]` entry: (key, reason).
fn change_topic_problems(
    t: &ChangeTopicSection,
    earlier: &[ChangeTopicSection],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if t.topic.trim().is_empty() {
        out.push(("topic", "a change topic needs its topic".to_string()));
    } else if earlier.iter().any(|e| e.topic == t.topic) {
        out.push(("topic", format!("{:?} is configured twice", t.topic)));
    }
    let envelope = adapters::envelope::Envelope::parse(&t.envelope);
    if envelope.is_none() {
        out.push((
            "envelope",
            format!("expected \"jdbc\" or \"debezium\", found {:?}", t.envelope),
        ));
    }
    match adapters::Format::parse(&t.format) {
        None => out.push((
            "format",
            format!("expected sdjc, gdbs or gb39046, found {:?}", t.format),
        )),
        Some(f)
            if !t.table.is_empty()
                && !f.tables().iter().any(|x| x.eq_ignore_ascii_case(&t.table)) =>
        {
            out.push((
                "table",
                format!(
                    "{:?} is not a {} table; expected one of {}",
                    t.table,
                    f.as_str(),
                    f.tables().join(", ")
                ),
            ))
        }
        Some(_) => {}
    }
    if envelope == Some(adapters::envelope::Envelope::Jdbc) && t.table.is_empty() {
        out.push((
            "table",
            "a jdbc topic's messages do not name their table: set table".to_string(),
        ));
    }
    out
}

impl ChangeTopicSection {
    /// The checked entry (after [`load`]) as cluster mode takes it.
    pub fn to_change_topic(&self) -> Option<cluster::change_topics::ChangeTopic> {
        Some(cluster::change_topics::ChangeTopic {
            topic: self.topic.clone(),
            envelope: adapters::envelope::Envelope::parse(&self.envelope)?,
            format: adapters::Format::parse(&self.format)?,
            table: (!self.table.is_empty()).then(|| self.table.clone()),
            source: (!self.source.is_empty()).then(|| self.source.clone()),
        })
    }
}

fn located(name: &str, text: &str, table: &str, key: &str, reason: &str) -> String {
    match confdoc::locate(text, table, 0, Some(key)) {
        Some(line) if !name.is_empty() => format!("{name}:{line}: [{table}] {key}: {reason}"),
        _ => format!("[{table}] {key}: {reason}"),
    }
}

/// The process environment.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// The reference document (`docs/CONFIG.md`), generated from the sections above.
pub fn reference() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated by `jiancha config doc` from the structs in src/config.rs and\n\
         notify/src/config.rs; tests/cli.rs fails when this file is out of date. -->\n\n\
         One TOML file, given with `--config FILE` (or `JIANCHA_CONFIG=FILE`), serves `cluster`,\n\
         `api`, `serve`, `migrate`, `replay` and `check`; each command reads the sections it needs.\n\
         Every scalar key can be overridden by the environment variable named beside it.\n\
         Precedence, highest first: **command-line flag > environment variable > file > default**.\n\
         Unknown keys are refused. `jiancha config check --config FILE` reports every problem as\n\
         `FILE:LINE: reason` and exits 2; with `--files` it also opens the reference data, users\n\
         file and token secret the file names. An annotated example is `deploy/jiancha.toml`.\n\n",
    );
    out.push_str(&confdoc::render::<ReferenceSection>("[reference]"));
    out.push_str(&confdoc::render::<KafkaSection>("[kafka]"));
    out.push_str(&confdoc::render::<ClickHouseSection>("[clickhouse]"));
    out.push_str(&confdoc::render::<EngineSection>("[engine]"));
    out.push_str(&confdoc::render::<ClusterSection>("[cluster]"));
    out.push_str(&confdoc::render::<ApiSection>("[api]"));
    out.push_str(&confdoc::render::<SecuritySection>("[security]"));
    out.push_str(&confdoc::render::<EmbeddedSection>("[embedded]"));
    out.push_str(&confdoc::render::<notify::config::NotifySettings>(
        "[notify]",
    ));
    out.push_str(&confdoc::render::<notify::config::ChannelSettings>(
        "[[notify.channels]]",
    ));
    out.push_str(&confdoc::render::<notify::config::RouteSettings>(
        "[[notify.routes]]",
    ));
    out.push_str(&confdoc::render::<ChangeTopicSection>("[[change_topics]]"));
    out.push_str(&confdoc::render::<crate::frontdb::FrontDbSection>(
        "[[frontdb]]",
    ));
    out.trim_end().to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jiancha-config-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write test config");
        path
    }

    #[test]
    fn file_then_environment_over_defaults() {
        let path = write(
            "a.toml",
            "[kafka]\nbrokers = \"k1:9092\"\ngroup = \"city\"\n[cluster]\nbatch_rows = 5\n",
        );
        let env = |k: &str| (k == "JIANCHA_KAFKA_BROKERS").then(|| "k2:9092".to_string());
        let cfg = load(Some(&path), &env).expect("valid");
        assert_eq!(cfg.kafka.brokers, "k2:9092", "environment beats file");
        assert_eq!(cfg.kafka.group, "city", "file beats default");
        assert_eq!(cfg.cluster.batch_rows, 5);
        assert_eq!(cfg.kafka.events_topic, "jiancha.events", "default");
    }

    #[test]
    fn problems_name_file_line_and_reason() {
        let path = write("b.toml", "[kafka]\nbrokers = \"k\"\nbroker = \"typo\"\n");
        let errors = load(Some(&path), &|_| None).expect_err("typo refused");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(&format!("{}:3: unknown field `broker`", path.display())),
            "{errors:?}"
        );
        let path = write(
            "c.toml",
            "[notify]\nenabled = true\n\n[[notify.channels]]\nname = \"wx\"\nkind = \"wecom\"\nurl = \"ftp://x\"\n\n[[notify.routes]]\nchannels = [\"wx\", \"sms\"]\n",
        );
        let errors = load(Some(&path), &|_| None).expect_err("refused");
        let p = path.display();
        assert_eq!(
            errors,
            [
                format!("{p}:7: [[notify.channels]] #1 url: url must start with http:// or https://, found \"ftp://x\""),
                format!("{p}:10: [[notify.routes]] #1 channels: no channel named \"sms\" (channels: {{\"wx\"}})"),
            ]
        );
        let path = write(
            "d.toml",
            "[[change_topics]]\ntopic = \"qzk.proc\"\nenvelope = \"debezium\"\nformat = \"sdjc\"\n\n[[change_topics]]\ntopic = \"qzk.done\"\nenvelope = \"connect\"\nformat = \"sdjc\"\ntable = \"EA_JC_DONE\"\n",
        );
        let errors = load(Some(&path), &|_| None).expect_err("refused");
        let p = path.display();
        assert_eq!(
            errors,
            [
                format!("{p}:8: [[change_topics]] #2 envelope: expected \"jdbc\" or \"debezium\", found \"connect\""),
                format!("{p}:10: [[change_topics]] #2 table: \"EA_JC_DONE\" is not a sdjc table; expected one of PRE_APASINFO, EA_JC_STEP_BASICINFO, EA_JC_STEP_PROC, EA_JC_STEP_SPECIALNODE, EA_JC_STEP_DONE, EA_JC_FEEINFO, EA_JC_SERVEVAL"),
            ]
        );
        let errors = load(None, &|k| {
            (k == "JIANCHA_BATCH_ROWS").then(|| "lots".into())
        })
        .expect_err("bad env");
        assert_eq!(
            errors,
            ["JIANCHA_BATCH_ROWS: expected a non-negative integer, found \"lots\""]
        );
    }

    #[test]
    fn front_database_sources_are_checked_with_their_lines() {
        let path = write(
            "frontdb.toml",
            "[[frontdb]]\nname = \"sdjc:a\"\nurl = \"postgresql://u@h/db\"\n\n\
             [[frontdb]]\nname = \"sdjc:a\"\nformat = \"sdjcx\"\nurl = \"oracle://h/db\"\n\
             tables = [\"EA_JC_STEP_DONE; DROP TABLE x\"]\n",
        );
        let errors = load(Some(&path), &|_| None).expect_err("refused");
        let p = path.display();
        assert_eq!(
            errors,
            [
                format!("{p}:6: [[frontdb]] #2 name: source \"sdjc:a\" is configured twice"),
                format!("{p}:7: [[frontdb]] #2 format: expected sdjc, gdbs or gb39046, found \"sdjcx\""),
                format!("{p}:8: [[frontdb]] #2 url: expected postgresql://… or mysql://…"),
                format!("{p}:9: [[frontdb]] #2 tables: \"EA_JC_STEP_DONE; DROP TABLE x\" is not a plain SQL name (letters, digits, _ and $)"),
            ]
        );
        let path = write(
            "frontdb-ok.toml",
            "[[frontdb]]\nname = \"sdjc:a\"\nurl = \"mysql://root@127.0.0.1/qzk\"\nmode = \"flag\"\n",
        );
        let cfg = load(Some(&path), &|_| None).expect("valid");
        let s = crate::frontdb::settings(&cfg.frontdb[0]);
        assert_eq!(s.tables.len(), 7, "every sdjc table by default");
        assert!(matches!(s.mode, frontdb::Mode::Flag { ref column, .. } if column == "SIGNSTATE"));
    }
}
