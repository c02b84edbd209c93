#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, golden and end-to-end tests.
# Used by CI (.ci/run) and by hand. Starts what the tests need (ClickHouse, installed from
# Debian's packages if missing); tests that need a service fail rather than skip when CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== services"
deploy/local/clickhouse.sh start
export JIANCHA_CLICKHOUSE_URL=${JIANCHA_CLICKHOUSE_URL:-http://127.0.0.1:8123}

echo "== cargo test"
cargo test --workspace --locked
