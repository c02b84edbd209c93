#!/usr/bin/env bash
# Produce-to-WebSocket alert latency under background load (method and results:
# docs/BENCHMARKS.md, "Produce-to-WebSocket alert latency").
#   scripts/bench-latency.sh embedded            # jiancha serve, 10,000 events/s background
#   RATE=1500 scripts/bench-latency.sh cluster   # jiancha cluster --users (tansu + ClickHouse)
# Environment: RATE (background events/s), PROBES (probes/s), DURATION (s), SENDERS, BATCH (lines per
# background POST), RUNS (repeat the measurement, a fresh server each time), ARGS (extra flags
# for jiancha cluster, e.g. ARGS="--batch-ms 100"), KEEP_LOG (copy the server's log to
# KEEP_LOG.<run>, its /metrics at the end to KEEP_LOG.<run>.metrics), JIANCHA (a jiancha binary to measure instead of building this tree's),
# DRAIN (seconds to let the engine and writer finish before the server's figures are read; 0).
# Per run it prints the server's peak RSS, CPU time, minor page faults and bytes written
# (/proc/PID/io wchar), and in embedded mode the database file's size after stopping.
# The background is two weeks of the simulated 德阳-sized city (jiancha simulate --profile city:
# 472,272 events, every kind), sent in NDJSON batches by SENDERS window systems on a fixed
# schedule; the probes are complaint.filed events (a red alert each) POSTed on their own; the
# bench process also holds a dashboard's WebSocket and times each probe from the start of its
# POST to its alert's arrival (node/examples/alert_latency.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-embedded}
RATE=${RATE:-10000}
PROBES=${PROBES:-20}
DURATION=${DURATION:-30}
SENDERS=${SENDERS:-4}
BATCH=${BATCH:-250}
RUNS=${RUNS:-1}
ARGS=${ARGS:-}
target=${CARGO_TARGET_DIR:-target}
if [ -z "${JIANCHA:-}" ]; then
  cargo build --release --quiet --bin jiancha
fi
cargo build --release --quiet -p node --example alert_latency
bin=${JIANCHA:-$target/release/jiancha}
bench=$target/release/examples/alert_latency
dir=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill $pid 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
$bin simulate --profile city --seed 9 --start 2026-10-12 --days 14 \
  --reference-out "$dir/ref" --out "$dir/events.ndjson"
echo "== background: $(wc -l <"$dir/events.ndjson") simulated events available"
head -c 48 /dev/urandom | base64 >"$dir/secret"
for u in publisher:publisher viewer:inspector; do
  echo 'bench-password-1' | $bin user add --users "$dir/users.toml" \
    --username "${u%%:*}" --role "${u##*:}" --region 5106 >/dev/null
done
# A free port (other servers may run on this machine).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

ready() {
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server not ready; its log:" >&2
  tail -20 "$dir/server.log" >&2
  return 1
}

start_server() {
  case $MODE in
  embedded)
    rm -rf "$dir/data"
    $bin serve --reference "$dir/ref" --data "$dir/data" --users "$dir/users.toml" \
      --token-secret-file "$dir/secret" --listen 127.0.0.1:$port --clock event \
      2>"$dir/server.log" &
    ;;
  cluster)
    deploy/local/clickhouse.sh start >/dev/null
    deploy/local/kafka.sh start >/dev/null
    tag=lat$(date +%s)
    for t in events:3 alerts:1 dead:1 status:1 actions:1; do
      deploy/local/kafka.sh topic "$tag.${t%%:*}" "${t##*:}" >/dev/null
    done
    # shellcheck disable=SC2086
    $bin cluster --reference "$dir/ref" --brokers 127.0.0.1:9092 \
      --events-topic "$tag.events" --alerts-topic "$tag.alerts" --dead-letter-topic "$tag.dead" \
      --status-topic "$tag.status" --actions-topic "$tag.actions" --group "$tag" \
      --database "$tag" --clickhouse-url http://127.0.0.1:8123 --clock event \
      --instance-id "$tag-1" --metrics-listen 127.0.0.1:$port --users "$dir/users.toml" \
      --token-secret-file "$dir/secret" $ARGS 2>"$dir/server.log" &
    ;;
  *)
    echo "mode: embedded or cluster" >&2
    exit 2
    ;;
  esac
  pid=$!
  ready
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -20 "$dir/server.log" >&2
    exit 1
  fi
}

for run in $(seq 1 "$RUNS"); do
  echo "== $MODE run $run: background $RATE events/s, $PROBES probes/s, ${DURATION} s"
  start_server
  $bench "http://127.0.0.1:$port" publisher:bench-password-1 viewer:bench-password-1 \
    "$dir/events.ndjson" rate="$RATE" probes="$PROBES" seconds="$DURATION" \
    senders="$SENDERS" batch="$BATCH"
  if [ -n "${KEEP_LOG:-}" ]; then curl -s "http://127.0.0.1:$port/metrics" >"$KEEP_LOG.$run.metrics"; fi
  sleep "${DRAIN:-0}"
  hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
  # CPU seconds the server used (user + system), for CPU per event on a machine shared with
  # other work, where the rate alone says more about the neighbours; and what it wrote.
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat")
  faults=$(awk '{print $10}' "/proc/$pid/stat")
  wrote=$(awk '/^wchar/ {print int($2 / 1048576)}' "/proc/$pid/io")
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
  db=
  if [ "$MODE" = embedded ]; then db=", database $(du -m "$dir/data/jiancha.db" | cut -f1) MB"; fi
  echo "server peak RSS ${hwm} MiB, CPU ${cpu} s, ${faults} minor faults, wrote ${wrote} MiB$db"
  if [ -n "${KEEP_LOG:-}" ]; then cp "$dir/server.log" "$KEEP_LOG.$run"; fi
done
