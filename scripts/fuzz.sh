#!/usr/bin/env bash
# Fuzz the cargo-fuzz targets in fuzz/ (all, or those named) for SECONDS each (default 30),
# starting from the committed corpus (fuzz/corpus/<target>/), and fail on any crash, failed
# check, timeout or out-of-memory. See docs/RELIABILITY.md, "Fuzzing".
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]
#
# Installs cargo-fuzz if missing. The machine has only the stable toolchain: cargo-fuzz passes
# nightly `-Z` flags, which RUSTC_BOOTSTRAP=1 lets stable cargo and rustc accept. Built with
# `--sanitizer none` (the fuzzed crates deny unsafe code; Rust's bounds and overflow checks
# turn memory errors into panics, and an uninstrumented build runs about twice as fast) and
# 16 codegen units (a build in about half the time). Builds go to fuzz/target, never to the
# main target directory. Inputs a run discovers go to fuzz/target/corpus/<target>/, so the
# committed corpus only changes when someone copies them over (`cargo fuzz cmin` first).
# A crash is saved under fuzz/artifacts/<target>/; the message says how to replay it.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
shift || true
cargo_fuzz_version=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    echo "== installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

export RUSTC_BOOTSTRAP=1
# The same dependency versions as the root workspace: its lock file, trimmed and completed by
# cargo for the fuzz crate (libfuzzer-sys and its few dependencies).
cp Cargo.lock fuzz/Cargo.lock
target_dir="$PWD/fuzz/target"
flags=(--sanitizer none --codegen-units 16 --target-dir "$target_dir")
targets=${*:-$(cargo fuzz list)}

start=$SECONDS
echo "== cargo fuzz build (${targets//$'\n'/, })"
cargo fuzz build "${flags[@]}"
echo "   built in $((SECONDS - start)) s"

total=0
for t in $targets; do
    work="$target_dir/corpus/$t"
    log="$target_dir/logs/$t.log"
    mkdir -p "$work" "$(dirname "$log")"
    echo "== fuzz $t for $secs s"
    # libFuzzer options: a run of SECONDS; an input taking over 10 s or memory over 1 GiB is
    # a failure; -print_final_stats for the execution count below.
    if ! cargo fuzz run "${flags[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "FAILED: fuzz target $t (full log: $log)."
        echo "Replay the saved input with:"
        echo "  RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $t fuzz/artifacts/$t/<file>"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    total=$((total + ${runs:-0}))
    echo "   ${runs:-?} executions, corpus $(find "$work" "fuzz/corpus/$t" -type f | wc -l) files"
done
echo "== fuzzing passed: $total executions in $((SECONDS - start)) s (build included)"
