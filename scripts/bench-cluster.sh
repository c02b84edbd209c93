#!/usr/bin/env bash
# Cluster-mode benchmark on this machine (method and results: docs/BENCHMARKS.md).
#   N=30000 RATE=200 scripts/bench-cluster.sh
# 1. a synthetic stream of N events (N/10 open cases, every rule family; each with `reported_at`,
#    so lateness is judged as by replay, not against the Kafka timestamps of today) into a
#    3-partition topic;
# 2. the raw rdkafka consume rate of that topic from the same broker;
# 3. jiancha cluster (release) over the same topic: events/s from the first event consumed until
#    every derived row is in ClickHouse;
# 4. produce-to-alert latency at a steady rate, measured on the alerts topic (published only
#    after the alert row is durable in ClickHouse).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-30000}
RATE=${RATE:-200}
brokers=127.0.0.1:9092
ch=http://127.0.0.1:8123
deploy/local/clickhouse.sh start >/dev/null
deploy/local/kafka.sh start >/dev/null
cargo build --release --quiet --bin jiancha
cargo build --release --quiet -p ingest --example synth_events
cargo build --release --quiet -p cluster --example kafka_bench
bench=target/release/examples/kafka_bench
dir=$(mktemp -d)
target/release/examples/synth_events "$dir" "$((N / 10))" "$N" --reported >/dev/null
lines=$(wc -l <"$dir/events.ndjson")
tag=bench$(date +%s)
for t in "$tag.events:3" "$tag.alerts:1" "$tag.dead:1" "$tag.status:1"; do
  deploy/local/kafka.sh topic "${t%%:*}" "${t##*:}" >/dev/null
done
echo "== $lines events into $tag.events"
$bench produce $brokers "$tag.events" "$dir/events.ndjson"
echo "== raw consume"
$bench consume $brokers "$tag.events"
echo "== jiancha cluster"
port=19999
target/release/jiancha cluster --reference "$dir" --brokers $brokers \
  --events-topic "$tag.events" --alerts-topic "$tag.alerts" --dead-letter-topic "$tag.dead" \
  --status-topic "$tag.status" \
  --group "$tag" --database "$tag" --clickhouse-url $ch --clock event --instance-id "$tag-1" \
  --metrics-listen 127.0.0.1:$port 2>"$dir/jiancha.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
python3 - "$port" "$lines" "$ch" "$tag" "$pid" "$dir/jiancha.log" <<'PY'
import os, sys, time, urllib.request
port, lines, ch, db, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def metrics():
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for l in text.splitlines():
        if l.startswith("#") or " " not in l:
            continue
        name = l.split("{")[0].split(" ")[0]
        out[name] = out.get(name, 0) + float(l.rsplit(" ", 1)[1])
    return out
def rows():
    q = f"SELECT count() FROM {db}.events".encode()
    try:
        return int(urllib.request.urlopen(ch + "/", data=q, timeout=10).read())
    except Exception:
        return 0
def alive():
    try:
        os.kill(int(pid), 0)
        return True
    except OSError:
        return False
first = None
while True:
    if not alive():
        sys.exit(f"jiancha cluster exited early; its log: {sys.argv[6]}")
    m = metrics()
    seen = m.get("jiancha_events_consumed_total", 0) + m.get("jiancha_decode_failures_total", 0)
    if seen > 0 and first is None:
        first = time.time()
    if seen >= lines:
        break
    time.sleep(0.2)
want = m["jiancha_events_consumed_total"] - m.get("jiancha_duplicate_events_total", 0) - m.get("jiancha_events_refused_total", 0)
while rows() < want:
    if not alive():
        sys.exit(f"jiancha cluster exited early; its log: {sys.argv[6]}")
    time.sleep(0.1)
end = time.time()
hwm = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")][0].split()[1]
print(f"jiancha: {lines} events in {end-first:.1f} s = {lines/(end-first):.0f} events/s "
      f"(first event consumed -> every event row in ClickHouse); "
      f"{int(m.get('jiancha_alerts_total',0))} alert lines; peak RSS {int(hwm)//1024} MiB")
PY
echo "== latency at ${RATE}/s"
$bench latency $brokers "$tag.events" "$tag.alerts" "$RATE" 20
kill -TERM $pid
wait $pid || true
tail -1 "$dir/jiancha.log"
rm -rf "$dir"
