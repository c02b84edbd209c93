#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, golden and end-to-end tests.
# Used by CI (.ci/run) and by hand. Needs only the Rust toolchain; later suites that need a
# broker, ClickHouse or a browser install and start them from here.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
