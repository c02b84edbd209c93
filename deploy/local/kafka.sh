#!/usr/bin/env bash
# Local Kafka-protocol broker for tests and development: tansu 0.6.0 on 127.0.0.1:9092, with the
# SQLite storage engine (records and committed offsets survive a broker restart; the memory
# engine loses data on mid-log fetches and is never used).
#   deploy/local/kafka.sh start                  install if missing, start, wait until ready
#   deploy/local/kafka.sh topic NAME PARTITIONS  create a topic (no auto-create on tansu)
#   deploy/local/kafka.sh stop
#   deploy/local/kafka.sh fresh                  stop, delete the data, start (what CI runs: every
#                                                test run leaves its topics, and tansu's SQLite slows
#                                                as they pile up)
# Idempotent: a broker already listening is reused. JIANCHA_KAFKA_PORT and JIANCHA_KAFKA_DIR
# choose the port and the data directory.
set -euo pipefail
port=${JIANCHA_KAFKA_PORT:-9092}
dir=${JIANCHA_KAFKA_DIR:-${TMPDIR:-/tmp}/jiancha-kafka-$port}
log=$dir/tansu.log
export PATH="$HOME/.cargo/bin:$PATH"

ready() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

install() {
  if command -v tansu >/dev/null 2>&1; then return; fi
  echo "kafka: installing tansu 0.6.0 from crates.io (20-30 minutes on 2 cores, once per machine)"
  cargo install tansu --version 0.6.0 --locked --no-default-features --features dynostore,libsql
}

case "${1:-start}" in
  fresh)
    "$0" stop
    if ready && command -v fuser >/dev/null 2>&1; then
      fuser -k -n tcp "$port" >/dev/null 2>&1 || true
      for _ in $(seq 1 60); do ready || break; sleep 0.5; done
    fi
    if ready; then
      echo "kafka: something else still listens on $port; not starting afresh" >&2
      exit 1
    fi
    rm -rf "$dir"
    exec "$0" start
    ;;
  start)
    if ready; then
      echo "kafka: already listening on 127.0.0.1:$port"
      exit 0
    fi
    install
    mkdir -p "$dir"
    nohup tansu broker --silent \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "sqlite:///$(realpath "$dir")/tansu.db" >"$log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 60); do
      if ready; then
        echo "kafka: tansu ready on 127.0.0.1:$port (data in $dir)"
        exit 0
      fi
      sleep 0.5
    done
    echo "kafka: tansu did not listen on $port in 30 s; see $log" >&2
    exit 1
    ;;
  topic)
    name=${2:?topic name}
    partitions=${3:-1}
    tansu topic create "$name" --broker "tcp://127.0.0.1:$port" --partitions "$partitions"
    ;;
  stop)
    if [[ -f $dir/pid ]]; then
      pid=$(cat "$dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      rm -f "$dir/pid"
    fi
    ;;
  *)
    echo "usage: $0 start|topic NAME PARTITIONS|stop" >&2
    exit 2
    ;;
esac
