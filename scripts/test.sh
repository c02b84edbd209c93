#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, golden and end-to-end tests.
# Used by CI (.ci/run) and by hand. Starts what the tests need (ClickHouse from Debian's
# packages, and four more with ZooKeeper for the replicated layout, the tansu Kafka broker
# from crates.io, kafka-python from PyPI, Chromium and
# playwright-core for the browser tests, Prometheus and Alertmanager, PostgreSQL and MariaDB; each installed if missing); tests that need a service
# fail rather than skip when CI is set. Screenshots of the dashboards: target/web-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== services"
deploy/local/clickhouse.sh start
export JIANCHA_CLICKHOUSE_URL=${JIANCHA_CLICKHOUSE_URL:-http://127.0.0.1:8123}
# A CI run starts with an empty broker: the topics every run leaves behind pile up in tansu's
# SQLite and slow it until cluster tests time out (seen after a day of runs: 2.3 GB).
if [[ -n ${CI:-} ]]; then deploy/local/kafka.sh fresh; else deploy/local/kafka.sh start; fi
export JIANCHA_KAFKA_BROKERS=${JIANCHA_KAFKA_BROKERS:-127.0.0.1:9092}
# Four more ClickHouse servers with ZooKeeper (Debian's zookeeper), in a cluster of one server
# and one of two shards of two replicas, for `jiancha migrate --cluster`, the store's
# conformance suite and cluster mode on Replicated tables behind Distributed ones.
deploy/local/clickhouse-cluster.sh start
export JIANCHA_CLICKHOUSE_CLUSTER_URL=${JIANCHA_CLICKHOUSE_CLUSTER_URL:-http://127.0.0.1:8133}
# The independent Kafka client of the end-to-end tests (pure Python, from PyPI).
python3 -c "import kafka" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check kafka-python==3.0.12
# Offline validators of the deployment files (tests/deploy.rs): the Kubernetes schemas and the
# Compose specification's schema, both bundled in these PyPI packages (kubectl, systemd-analyze
# and PyYAML come with the machine image).
command -v kubernetes-validate >/dev/null && command -v check-jsonschema >/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 check-jsonschema==0.39.0
# The event schema's validator (tests/schema.rs): Python's jsonschema (check-jsonschema brings it).
python3 -c "import jsonschema" 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check jsonschema==4.26.0

# The dashboards' browser tests: Debian's Chromium, a CJK font, playwright-core from npm.
deploy/local/browser.sh

# Operations (tests/operations.rs): Debian's Prometheus and Alertmanager, for promtool on the
# shipped configuration and rules, and jiancha serve → Alertmanager → a webhook receiver.
deploy/local/prometheus.sh

# Front databases (tests/frontdb.rs, scripts/frontdb-demo.sh): Debian's PostgreSQL 15 and
# MariaDB. Each test starts servers of its own on loopback in temp directories with these
# scripts (it restarts them mid-run); here they are installed, and one of each is started and
# checked, so a broken installation fails before the tests.
deploy/local/postgres.sh start
deploy/local/mariadb.sh start

echo "== cargo test"
cargo test --workspace --locked --no-fail-fast

# Fuzzing (docs/RELIABILITY.md, "Fuzzing"): every cargo-fuzz target of fuzz/ for a short run
# from the committed corpus; a crash, failed check, timeout or OOM fails the suite. Its own
# build in fuzz/target (cargo-fuzz installed if missing), then JIANCHA_FUZZ_SECONDS per target.
echo "== fuzz"
scripts/fuzz.sh "${JIANCHA_FUZZ_SECONDS:-30}"
