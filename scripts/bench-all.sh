#!/usr/bin/env bash
# Every benchmark of docs/BENCHMARKS.md with a target, in a fixed order, on a quiet machine; then
# one table: each figure, its target and ✔ or ✘. Run it when nothing else uses the cores (before
# each step it waits for the CPUs to be 90 % idle, prints how idle they were, and warns if not).
#   scripts/bench-all.sh                 # everything (about 15 minutes after the builds)
#   QUIET_WAIT=0 scripts/bench-all.sh      # do not wait for idle CPUs before each step
#   ONLY="engine ingest" scripts/bench-all.sh    # some steps: engine memory corrections adapters replay ingest latency cluster
# Targets: issue 23 ("Performance, round 2") and the earlier ones it keeps.
set -euo pipefail
cd "$(dirname "$0")/.."
ONLY=${ONLY:-engine memory corrections adapters replay ingest latency cluster}
target=${CARGO_TARGET_DIR:-target}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
table=$out/table
: >"$table"
load() { cut -d' ' -f1 /proc/loadavg; }
# Percent of the CPUs' time that was idle over the last second (/proc/stat).
idle() {
  local a b
  a=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f\n", 100 * (y[1] - x[1]) / (y[2] - x[2] + 1e-9) }'
}
step() {
  # Wait (at most QUIET_WAIT seconds, default 60) until the CPUs are at least 90 % idle: the
  # load average lags a minute behind, and something else running is what spoils a figure.
  local waited=0 quiet
  quiet=$(idle)
  while ((quiet < 90 && waited < ${QUIET_WAIT:-60})); do
    quiet=$(idle)
    waited=$((waited + 1))
  done
  echo "== $1 (load average $(load); CPUs ${quiet} % idle over the last second)"
  if ((quiet < 90)); then
    echo "   warning: the machine is not quiet; figures will be low" >&2
  fi
}
# row NAME TARGET-TEXT VALUE OP LIMIT UNIT: one line of the table (OP: ge or le).
row() {
  local mark=✘
  if [[ "$3" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v v="$3" -v l="$5" -v op="$4" \
    'BEGIN { exit !((op == "ge" && v >= l) || (op == "le" && v <= l)) }'; then mark=✔; fi
  printf '| %s | %s | %s %s | %s | %s |\n' "$1" "$2" "${3:-—}" "$6" "$mark" "$(load)" >>"$table"
}
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# Criterion's throughput line of one benchmark, in events/s (the estimate, not a bound).
thrpt() {
  awk -v name="$1" '
    $0 ~ name { found = 1 }
    found && /thrpt:/ {
      v = $4; u = $5
      m = (u ~ /^M/) ? 1e6 : (u ~ /^K/) ? 1e3 : (u ~ /^G/) ? 1e9 : 1
      printf "%.0f\n", v * m; exit
    }' "$2"
}

cargo build --release --quiet --bin jiancha
cargo build --release --quiet -p ingest --example synth_events
cargo build --release --quiet -p node --example alert_latency
cargo build --release --quiet -p cluster --example mock_ceiling

if want engine; then
  step "engine, 1,000,000 open cases (cargo bench -p ingest --bench engine)"
  cargo bench --quiet -p ingest --bench engine 2>/dev/null | tee "$out/engine"
  row "engine only, 1M open cases" "≥ 1,500,000 events/s" "$(thrpt engine_only "$out/engine")" ge 1500000 events/s
  row "decode + engine, 1M open cases" "≥ 500,000 events/s" "$(thrpt decode_and_engine "$out/engine")" ge 500000 events/s
fi
if want memory; then
  step "memory per open case (cargo bench -p ingest --bench memory)"
  cargo bench --quiet -p ingest --bench memory 2>/dev/null | tee "$out/memory"
  row "memory per open case" "≤ 230 bytes" "$(awk '/engine heap:/ { print $(NF-4) }' "$out/memory")" le 230 bytes
fi
if want corrections; then
  step "corrections with 1,000,000 open cases (profile_corrections, then cargo bench -p ingest --bench corrections)"
  cargo build --release --quiet -p ingest --example profile_corrections
  "$target/release/examples/profile_corrections" 2>&1 | tee "$out/corrections"
  row "a correction, 1M open cases (warm engine)" "≤ 20 µs" \
    "$(awk '/corrections in/ { print $7 }' "$out/corrections")" le 20 µs
fi
if want adapters; then
  step "adapters: mapping sdjc rows on one core (cargo bench -p adapters --bench mapping)"
  cargo bench --quiet -p adapters --bench mapping 2>&1 | tee "$out/adapters"
  row "adapters: rows mapped per CPU-second" "≥ 300,000 rows/s" \
    "$(sed -n 's/.*(\([0-9]*\) rows per CPU-second.*/\1/p' "$out/adapters" | head -1)" ge 300000 rows/s
fi
if want replay; then
  step "jiancha replay end to end (5,000,000 events, 120,000 open cases, a province's pace)"
  "$target/release/examples/synth_events" "$out/replay" 120000 5000000 350000 2>/dev/null
  start=$(date +%s.%N)
  "$target/release/jiancha" replay --reference "$out/replay" --events "$out/replay/events.ndjson" >"$out/alerts"
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  n=$(wc -l <"$out/replay/events.ndjson")
  rate=$(echo "$n / $secs" | bc)
  echo "replay: $n events in $secs s = $rate events/s, $(wc -l <"$out/alerts") alert lines"
  row "replay end to end (5M events)" "≥ 1,500,000 events/s" "$rate" ge 1500000 events/s
  rm -rf "$out/replay" "$out/alerts"
fi
if want ingest; then
  step "embedded durable ingest (scripts/bench-ingest.sh)"
  JIANCHA=$target/release/jiancha scripts/bench-ingest.sh | tee "$out/ingest"
  row "embedded durable ingest, 8 senders" "≥ 50,000 events/s" \
    "$(awk '/^background:/ { print $8 }' "$out/ingest" | head -1)" ge 50000 events/s
fi
if want latency; then
  step "embedded alert latency at 10,000 events/s, 5 runs (scripts/bench-latency.sh)"
  JIANCHA=$target/release/jiancha RUNS=5 scripts/bench-latency.sh embedded | tee "$out/latency"
  worst=$(awk '/^produce -> WebSocket/ { gsub(",", "", $13); if ($13 + 0 > w + 0) w = $13 } END { print w }' "$out/latency")
  row "embedded alert p99 at 10,000 events/s (worst of 5 runs)" "≤ 50 ms" "$worst" le 50 ms
fi
if want cluster; then
  step "cluster mode's own ceiling on an in-process mock broker (mock_ceiling)"
  "$target/release/examples/mock_ceiling" | tee "$out/cluster"
  row "cluster: jiancha consume+decode+engine per core" "≥ 500,000 events/s" \
    "$(awk '/^jiancha:/ { print $(NF-3) }' "$out/cluster")" ge 500000 "events/s per core"
  row "cluster: jiancha against the bare consumer" "≥ 80 %" \
    "$(awk '/^ratio:/ { print $2 }' "$out/cluster")" ge 80 %
fi
echo
echo "| figure | target | measured | | load |"
echo "|---|---|---|---|---|"
cat "$table"
