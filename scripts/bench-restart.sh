#!/usr/bin/env bash
# Restart with 1,000,000 open cases (method and results: docs/BENCHMARKS.md).
#   scripts/bench-restart.sh embedded [RUNS]     jiancha serve: SQLite log and checkpoint
#   scripts/bench-restart.sh cluster [RUNS]      jiancha cluster: tansu + ClickHouse
# CASES (1000000) acceptances of `synth_events` go through the real ingest path (HTTP into the
# SQLite log, or a one-partition Kafka topic) into the real binary, which checkpoints them when
# stopped with SIGTERM. Then RUNS (3) times: start the binary again, send a few more events and
# time, from the moment the process is started, until the first of them has been consumed by
# the restored engine (the metric `jiancha_embedded_events_total` / `jiancha_events_consumed_total`,
# polled every 20 ms); stop it with SIGTERM (it checkpoints again) and repeat.
# Loading takes ~2 min (embedded) or ~8 min (cluster: tansu serves 2-3k messages/s here).
# STATIC=0 runs the cluster without static membership (no --instance-id).
# WORK=DIR keeps the data (default: a temporary directory, removed at the end);
# cluster mode uses JIANCHA_KAFKA_PORT / JIANCHA_CLICKHOUSE_URL like deploy/local/*.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?embedded or cluster}
runs=${2:-3}
CASES=${CASES:-1000000}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin jiancha
cargo build --release --quiet -p ingest --example synth_events
jiancha=$target/release/jiancha
work=${WORK:-$(mktemp -d)}
[[ -n ${WORK:-} ]] || trap 'rm -rf "$work"' EXIT # set WORK to keep the log
mkdir -p "$work"
# The acceptances, then steady-state events on the same cases: RUNS batches of 10 sent after
# each restart.
"$target/release/examples/synth_events" "$work/ref" "$CASES" $((runs * 10 + 100)) 2>/dev/null
head -n "$CASES" "$work/ref/events.ndjson" >"$work/load.ndjson"
tail -n +$((CASES + 1)) "$work/ref/events.ndjson" >"$work/more.ndjson"
rm "$work/ref/events.ndjson"

# python3 timer.py METRICS_URL TOKEN METRIC SEND LOG -- COMMAND...: start COMMAND (stderr to LOG),
# run SEND (if not empty) once its metrics answer, and print the seconds from the start until
# METRIC >= 1, and COMMAND's pid.
cat >"$work/timer.py" <<'PY'
import subprocess, sys, time, urllib.request
url, token, metric, send, log = sys.argv[1:6]
cmd = sys.argv[sys.argv.index("--") + 1:]
def value():
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        text = urllib.request.urlopen(req, timeout=2).read().decode()
    except OSError:
        return None
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(metric + " ") or l.startswith(metric + "{"))
start = time.monotonic()
proc = subprocess.Popen(cmd, stderr=open(log, "a"), stdout=subprocess.DEVNULL)
sent = not send
while True:
    v = value()
    if v is not None and not sent:
        subprocess.run(send, shell=True, check=True)
        sent = True
    if v is not None and v >= 1:
        break
    if proc.poll() is not None:
        sys.exit(f"the process stopped ({proc.returncode})")
    if time.monotonic() - start > 300:
        proc.terminate()
        sys.exit(f"nothing consumed in 300 s; see {log}")
    time.sleep(0.02)
print(f"{time.monotonic() - start:.2f} {proc.pid}")
PY

stop() { kill -TERM "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.2; done; }

case $mode in
embedded)
  data=$work/data
  head -c 48 /dev/urandom | base64 >"$work/secret"
  for u in pub:publisher adm:admin; do
    echo 'bench-password-1234' | "$jiancha" user add --users "$work/users.toml" \
      --username "${u%%:*}" --role "${u##*:}" --region 43 >/dev/null
  done
  token() { "$jiancha" user token --users "$work/users.toml" --token-secret-file "$work/secret" --username "$1" --ttl-hours 24; }
  pub=$(token pub)
  adm=$(token adm)
  port=${PORT:-18080}
  url=http://127.0.0.1:$port
  serve=("$jiancha" serve --reference "$work/ref" --data "$data" --users "$work/users.toml"
    --token-secret-file "$work/secret" --listen "127.0.0.1:$port" --clock event)
  post() { curl -sf -o /dev/null -H "Authorization: Bearer $pub" --data-binary "@$1" "$url/api/v1/events"; }
  echo "== loading $CASES cases through POST /api/v1/events"
  "${serve[@]}" 2>>"$work/jiancha.log" >/dev/null &
  pid=$!
  until curl -sf -o /dev/null "$url/readyz"; do sleep 0.2; done
  split -l 2000 "$work/load.ndjson" "$work/part-"
  for f in "$work"/part-*; do post "$f"; done
  rm "$work"/part-*
  until [[ $(curl -s -H "Authorization: Bearer $adm" "$url/metrics" | awk '/^jiancha_consumer_lag{partition="0"} /{print $2}') == 0 ]] &&
    [[ $(curl -s -H "Authorization: Bearer $adm" "$url/metrics" | awk '/^jiancha_embedded_applied_seq /{print $2}') == "$CASES" ]]; do
    sleep 1
  done
  stop $pid
  echo "== $runs restarts (seconds from start until the first new event is applied)"
  for i in $(seq 1 "$runs"); do
    sed -n "$((i * 10 - 9)),$((i * 10))p" "$work/more.ndjson" >"$work/batch"
    read -r secs pid < <(python3 "$work/timer.py" "$url/metrics" "$adm" jiancha_embedded_events_total \
      "curl -sf -o /dev/null -H 'Authorization: Bearer $pub' --data-binary @$work/batch $url/api/v1/events" \
      "$work/jiancha.log" -- "${serve[@]}")
    t0=$(date +%s.%N)
    until curl -sf -o /dev/null "$url/readyz"; do sleep 0.5; done
    echo "run $i: first new event applied $secs s after the start; dashboards loaded $(printf %.1f "$(echo "$(date +%s.%N) - $t0" | bc)") s later"
    stop "$pid" # after the load: SIGTERM before it ends would stop the process without a checkpoint
  done
  grep -E "restored|consuming from|API loaded" "$work/jiancha.log" | tail -$((3 * runs))
  ;;
cluster)
  export PATH="$HOME/.cargo/bin:$PATH"
  kport=${JIANCHA_KAFKA_PORT:-9092}
  ch=${JIANCHA_CLICKHOUSE_URL:-http://127.0.0.1:8123}
  brokers=127.0.0.1:$kport
  deploy/local/clickhouse.sh start >/dev/null
  deploy/local/kafka.sh start >/dev/null
  cargo build --release --quiet -p cluster --example kafka_bench
  bench=$target/release/examples/kafka_bench
  tag=restart$(date +%s)
  for t in events alerts dead status; do deploy/local/kafka.sh topic "$tag.$t" 1 >/dev/null; done
  port=${PORT:-19464}
  cluster=("$jiancha" cluster --reference "$work/ref" --brokers "$brokers" --events-topic "$tag.events"
    --alerts-topic "$tag.alerts" --dead-letter-topic "$tag.dead" --status-topic "$tag.status"
    --group "$tag" --database "$tag" --clickhouse-url "$ch" --clock event
    --metrics-listen "127.0.0.1:$port" --shutdown-secs 120)
  [[ ${STATIC:-1} == 0 ]] || cluster+=(--instance-id "$tag-1")
  metric() { curl -s "127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m {s += $2} END {print s + 0}'; }
  echo "== loading $CASES cases through $tag.events (one partition)"
  $bench produce "$brokers" "$tag.events" "$work/load.ndjson"
  "${cluster[@]}" 2>>"$work/jiancha.log" &
  pid=$!
  until [[ $(metric jiancha_events_consumed_total) -ge $CASES ]]; do sleep 5; done
  stop $pid
  # tansu 0.6 mishandles a static member that comes back while its old session (45 s) lives:
  # it may answer SyncGroup with "rebalance in progress" for ever (see BENCHMARKS).
  sleep 50
  echo "== $runs restarts (seconds from start until the first new event is consumed)"
  for i in $(seq 1 "$runs"); do
    sed -n "$((i * 10 - 9)),$((i * 10))p" "$work/more.ndjson" >"$work/batch"
    $bench produce "$brokers" "$tag.events" "$work/batch" >/dev/null
    read -r secs pid < <(python3 "$work/timer.py" "http://127.0.0.1:$port/metrics" "" \
      jiancha_events_consumed_total "" "$work/jiancha.log" -- "${cluster[@]}")
    echo "run $i: first new event consumed $secs s after the start"
    sleep 2
    stop "$pid"
    sleep 50
  done
  grep -E "assigned|restored|consuming from" "$work/jiancha.log" | tail -$((3 * runs))
  ;;
*)
  echo "usage: $0 embedded|cluster [RUNS]" >&2
  exit 2
  ;;
esac
