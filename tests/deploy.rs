//! The deployment files (`deploy/`), checked without a container engine or a cluster: the
//! Compose file against the Compose specification's schema, the Kubernetes manifests rendered
//! by kustomize and validated against the Kubernetes schemas, the systemd unit by
//! `systemd-analyze verify`, every configuration file by `jiancha config check` (with the
//! environment each container sets), the topic script's topics and policies, and every metric
//! name in the Prometheus rules and the Grafana dashboard against the names the code defines.
//!
//! The external validators (kubectl, kubernetes-validate and check-jsonschema from PyPI,
//! systemd-analyze, PyYAML) are installed by `scripts/test.sh`; by hand a missing one skips its
//! check, with `CI` set it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Whether `tool` runs (see `support::have`).
fn have(tool: &str) -> bool {
    support::have(tool, "--help", "scripts/test.sh")
}

use support::run;

/// YAML documents as JSON values (PyYAML, which every Debian image used here has).
fn yaml(text: &str) -> Vec<Value> {
    let dir = scratch(&format!("yaml-{}", text.len()));
    let file = dir.join("in.yaml");
    fs::write(&file, text).expect("write yaml");
    let out = run(Command::new("python3").args([
        "-c",
        "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None], sys.stdout)",
    ]).arg(&file));
    assert!(
        out.status.success(),
        "YAML does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from PyYAML")
}

fn yaml_file(path: &str) -> Vec<Value> {
    yaml(&fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// `jiancha config check --config FILE` with `env`: must be accepted.
fn config_check(file: &Path, env: &[(String, String)]) -> String {
    let out = run(Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args(["config", "check", "--config"])
        .arg(file)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v))));
    assert!(
        out.status.success(),
        "{} refused: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A setting of a TOML file (`table.key`), as text.
fn toml_value(text: &str, table: &str, key: &str) -> String {
    let doc: toml::Table = toml::from_str(text).expect("TOML");
    doc.get(table)
        .and_then(|t| t.get(key))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_default()
}

fn port_of(addr: &str) -> String {
    addr.rsplit(':').next().unwrap_or_default().to_string()
}

#[test]
fn compose_follows_the_spec_and_each_jiancha_container_accepts_its_configuration() {
    let compose = root().join("deploy/compose/compose.yaml");
    if have("check-jsonschema") {
        let out = run(Command::new("check-jsonschema")
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(&compose));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let doc = &yaml_file("deploy/compose/compose.yaml")[0];
    let services = doc["services"].as_object().expect("services");
    for name in [
        "kafka",
        "kafka-topics",
        "clickhouse",
        "migrate",
        "ingest-1",
        "ingest-2",
        "api",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(name), "service {name}");
    }
    // Kafka in KRaft mode: the broker is its own controller, no ZooKeeper anywhere.
    assert_eq!(
        doc["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"],
        "broker,controller"
    );
    assert!(services.values().all(|s| !s["image"]
        .as_str()
        .unwrap_or_default()
        .contains("zookeeper")));

    let config_file = root().join("deploy/compose/jiancha.toml");
    let config_text = fs::read_to_string(&config_file).expect("compose jiancha.toml");
    let mut instance_ids = BTreeSet::new();
    for (name, s) in services {
        // Bind mounts the repository provides exist (token.secret and users/ are the operator's).
        for v in s["volumes"].as_array().into_iter().flatten() {
            let v = v.as_str().unwrap_or_default();
            if v.starts_with('.') && v.ends_with(":ro") {
                let source = v.split(':').next().unwrap_or_default();
                assert!(
                    compose.parent().expect("dir").join(source).exists(),
                    "{name}: {source}"
                );
            }
        }
        if s["image"] != "jiancha:latest" {
            continue;
        }
        // Each jiancha container: its command, the configuration file mounted where
        // JIANCHA_CONFIG says, accepted with the container's environment.
        let env = s["environment"].as_object().expect("environment");
        assert_eq!(env["JIANCHA_CONFIG"], "/etc/jiancha/jiancha.toml", "{name}");
        assert!(s["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .any(|v| v == "./jiancha.toml:/etc/jiancha/jiancha.toml:ro"));
        let vars: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| *k != "JIANCHA_CONFIG")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let checked = config_check(&config_file, &vars);
        assert!(checked.contains("kafka kafka:9092"), "{checked}");
        let command = s["command"][0].as_str().unwrap_or_default();
        assert!(
            ["migrate", "cluster", "api"].contains(&command),
            "{name}: {command}"
        );
        if command == "cluster" {
            // Engines only: without a users file /healthz means "every partition has its state".
            assert_eq!(env["JIANCHA_USERS"], "", "{name}");
            assert!(
                instance_ids.insert(
                    env["JIANCHA_INSTANCE_ID"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                ),
                "{name}: instance id reused"
            );
        }
    }
    assert_eq!(instance_ids.len(), 2);

    // Prometheus scrapes every ingest container on [cluster] listen and the API on [api] listen.
    let prom = &yaml_file("deploy/prometheus/prometheus.yml")[0];
    let targets: BTreeMap<String, Vec<String>> = prom["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .map(|c| {
            let t = c["static_configs"][0]["targets"]
                .as_array()
                .expect("targets");
            (
                c["job_name"].as_str().unwrap_or_default().to_string(),
                t.iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect(),
            )
        })
        .collect();
    let ingest_port = port_of(&toml_value(&config_text, "cluster", "listen"));
    let api_port = port_of(&toml_value(&config_text, "api", "listen"));
    assert_eq!(
        targets["jiancha-ingest"],
        [
            format!("ingest-1:{ingest_port}"),
            format!("ingest-2:{ingest_port}")
        ]
    );
    assert_eq!(targets["jiancha-api"], [format!("api:{api_port}")]);
    assert!(services["api"]["ports"][0]
        .as_str()
        .unwrap_or_default()
        .ends_with(&format!(":{api_port}")));
}

#[test]
fn kubernetes_manifests_render_validate_and_agree_with_their_configuration() {
    if !have("kubectl") {
        return;
    }
    let out = run(Command::new("kubectl")
        .args(["kustomize"])
        .arg(root().join("deploy")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8_lossy(&out.stdout).into_owned();
    if have("kubernetes-validate") {
        let dir = scratch("k8s");
        let file = dir.join("rendered.yaml");
        fs::write(&file, &rendered).expect("write");
        let v = run(Command::new("kubernetes-validate")
            .args(["--strict", "--quiet"])
            .arg(&file));
        assert!(
            v.status.success(),
            "{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }
    let docs = yaml(&rendered);
    let find = |kind: &str, name: &str| -> &Value {
        docs.iter()
            .find(|d| {
                d["kind"] == kind
                    && d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with(name)
            })
            .unwrap_or_else(|| panic!("{kind} {name}"))
    };
    // The configuration every pod mounts is accepted, as the ingest pods see it.
    let toml_text = find("ConfigMap", "jiancha-config")["data"]["jiancha.toml"]
        .as_str()
        .expect("jiancha.toml")
        .to_string();
    let dir = scratch("k8s-config");
    let file = dir.join("jiancha.toml");
    fs::write(&file, &toml_text).expect("write");
    let checked = config_check(
        &file,
        &[
            ("JIANCHA_INSTANCE_ID".into(), "jiancha-ingest-0".into()),
            ("JIANCHA_USERS".into(), String::new()),
        ],
    );
    assert!(checked.starts_with("ok: "), "{checked}");

    let ingest = find("StatefulSet", "jiancha-ingest");
    let pod = &ingest["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["args"],
        serde_json::json!(["cluster", "--config", "/etc/jiancha/jiancha.toml"])
    );
    assert_eq!(c["env"][0]["name"], "JIANCHA_INSTANCE_ID");
    assert_eq!(
        c["env"][1],
        serde_json::json!({"name": "JIANCHA_USERS", "value": ""})
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let metrics_port = port_of(&toml_value(&toml_text, "cluster", "listen"));
    assert_eq!(c["ports"][0]["containerPort"].to_string(), metrics_port);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        ingest["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"],
        metrics_port.as_str()
    );
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    let shutdown: u64 = toml_value(&toml_text, "cluster", "shutdown_seconds")
        .parse()
        .expect("shutdown_seconds");
    assert!(
        grace > shutdown,
        "the pod must outlive the drain ({grace} s vs {shutdown} s)"
    );
    // Ingest scales with the events topic's partitions: never more processes than partitions.
    let topics_job = find("Job", "jiancha-topics");
    let partitions: u64 = topics_job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "EVENTS_PARTITIONS")
        .and_then(|e| e["value"].as_str()?.parse().ok())
        .expect("EVENTS_PARTITIONS");
    assert!(ingest["spec"]["replicas"].as_u64().expect("replicas") <= partitions);
    let topics_cm = find("ConfigMap", "jiancha-topics");
    assert_eq!(
        topics_cm["data"]["topics.sh"].as_str(),
        Some(
            fs::read_to_string(root().join("deploy/kafka/topics.sh"))
                .expect("topics.sh")
                .as_str()
        )
    );

    let api = find("Deployment", "jiancha-api");
    let c = &api["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][0], "api");
    assert_eq!(
        c["ports"][0]["containerPort"].to_string(),
        port_of(&toml_value(&toml_text, "api", "listen"))
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        find("HorizontalPodAutoscaler", "jiancha-api")["spec"]["scaleTargetRef"]["name"],
        "jiancha-api"
    );
    assert_eq!(
        find("Job", "jiancha-migrate")["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "migrate"
    );
    // The manifests' ClickHouse is a cluster: migrate creates the replicated layout.
    assert_eq!(toml_value(&toml_text, "clickhouse", "cluster"), "jiancha");
}

/// Every `jiancha_…` metric name the code defines (string literals in the crates' sources).
fn defined_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack: Vec<PathBuf> = [
        "src",
        "cluster/src",
        "node/src",
        "dashboard-api/src",
        "notify/src",
        "store/src",
        "frontdb/src",
    ]
    .iter()
    .map(|d| root().join(d))
    .collect();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(
                fs::read_dir(&p)
                    .expect("dir")
                    .filter_map(|e| e.ok().map(|e| e.path())),
            );
        } else if p.extension().is_some_and(|e| e == "rs") {
            names.extend(metric_names(
                &fs::read_to_string(&p).unwrap_or_default(),
                "\"jiancha_",
            ));
        }
    }
    names
}

/// The `jiancha_…` names after each occurrence of `prefix` (which ends with `jiancha_`).
fn metric_names(text: &str, prefix: &str) -> Vec<String> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            let start = i + prefix.len() - "jiancha_".len();
            text[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

/// A query's metric names, histogram series mapped to their metric.
fn used_metrics(expr: &str) -> Vec<String> {
    metric_names(expr, "jiancha_")
        .into_iter()
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .map(str::to_string)
                .unwrap_or(n)
        })
        .collect()
}

#[test]
fn prometheus_rules_and_the_grafana_dashboard_use_only_metrics_the_code_exports() {
    let defined = defined_metrics();
    assert!(
        defined.contains("jiancha_consumer_lag") && defined.contains("jiancha_notifications_total")
    );
    let mut exprs: Vec<(String, String)> = Vec::new();
    let rules = &yaml_file("deploy/prometheus/alerts.yml")[0];
    for r in rules["groups"][0]["rules"].as_array().expect("rules") {
        exprs.push((
            r["alert"].as_str().unwrap_or_default().into(),
            r["expr"].as_str().unwrap_or_default().into(),
        ));
    }
    let dash: Value = serde_json::from_str(
        &fs::read_to_string(root().join("deploy/grafana/dashboards/jiancha.json"))
            .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let datasource =
        &yaml_file("deploy/grafana/provisioning/datasources/prometheus.yml")[0]["datasources"][0];
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 12);
    for p in panels {
        assert_eq!(p["datasource"]["uid"], datasource["uid"], "{}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            exprs.push((
                p["title"].as_str().unwrap_or_default().into(),
                t["expr"].as_str().unwrap_or_default().into(),
            ));
        }
    }
    let mut unknown = Vec::new();
    for (what, expr) in &exprs {
        let used = used_metrics(expr);
        // `up` is Prometheus's own series about the scrape (JianchaDown).
        let scrape_only = expr.starts_with("up{job=~\"jiancha");
        assert!(
            !used.is_empty() || scrape_only,
            "{what}: no jiancha metric in {expr}"
        );
        unknown.extend(
            used.into_iter()
                .filter(|m| !defined.contains(m))
                .map(|m| format!("{what}: {m}")),
        );
    }
    assert!(unknown.is_empty(), "metrics no code exports: {unknown:#?}");
    for f in [
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/prometheus-k8s.yml",
    ] {
        for c in yaml_file(f)[0]["scrape_configs"]
            .as_array()
            .expect("scrape_configs")
        {
            assert!(c["job_name"].is_string(), "{f}");
        }
    }
}

#[test]
fn the_systemd_unit_verifies_and_its_configuration_is_accepted() {
    let unit = fs::read_to_string(root().join("deploy/systemd/jiancha.service")).expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/jiancha serve --config /etc/jiancha/jiancha.toml")
    );
    config_check(&root().join("deploy/systemd/jiancha.toml"), &[]);
    if !have("systemd-analyze") {
        return;
    }
    // Verified as installed, but with this build's binary and a user that exists here.
    let dir = scratch("systemd");
    let copy = dir.join("jiancha.service");
    fs::write(
        &copy,
        unit.replace("/usr/local/bin/jiancha", env!("CARGO_BIN_EXE_jiancha"))
            .replace("User=jiancha", "User=root")
            .replace("Group=jiancha", "Group=root"),
    )
    .expect("write unit");
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn the_topic_script_creates_every_configured_topic_with_its_retention_and_compaction() {
    let dir = scratch("topics");
    let log = dir.join("calls");
    let fake = dir.join("kafka-topics.sh");
    fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
    )
    .expect("fake");
    let chmod = run(Command::new("chmod").arg("+x").arg(&fake));
    assert!(chmod.status.success());
    let out = run(Command::new("bash")
        .arg(root().join("deploy/kafka/topics.sh"))
        .env("KAFKA_TOPICS", &fake)
        .env("BOOTSTRAP", "kafka-0:9092")
        .env("REPLICATION_FACTOR", "3")
        .env("EVENTS_PARTITIONS", "24"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = fs::read_to_string(&log).expect("calls");
    let by_topic: BTreeMap<String, String> = calls
        .lines()
        .map(|l| {
            let topic = l
                .split("--topic ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .unwrap_or_default();
            (topic.to_string(), l.to_string())
        })
        .collect();
    // The topics are the configuration's defaults.
    let reference = fs::read_to_string(root().join("docs/CONFIG.md")).expect("CONFIG.md");
    let configured: BTreeSet<String> = reference
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains("_topic` | string |"))
        .filter_map(|l| l.split('`').nth(3).map(|d| d.trim_matches('"').to_string()))
        .collect();
    assert_eq!(
        by_topic.keys().cloned().collect::<BTreeSet<_>>(),
        configured
    );
    for line in by_topic.values() {
        assert!(
            line.contains("--bootstrap-server kafka-0:9092 --create --if-not-exists"),
            "{line}"
        );
        assert!(
            line.contains("--replication-factor 3 --config min.insync.replicas=2"),
            "{line}"
        );
    }
    let t = |name: &str| by_topic[name].as_str();
    assert!(
        t("jiancha.events").contains("--partitions 24 ")
            && t("jiancha.events").contains("cleanup.policy=delete")
    );
    assert!(t("jiancha.alerts").contains("cleanup.policy=compact,delete"));
    assert!(t("jiancha.window-status").contains("cleanup.policy=compact "));
    // The actions topic is an audit trail: compaction would keep one action per alert.
    assert!(
        t("jiancha.alert-actions").contains("cleanup.policy=delete")
            && !t("jiancha.alert-actions").contains("compact")
    );
}
