#!/usr/bin/env bash
# Local ClickHouse for tests and development, on 127.0.0.1:8123.
#   deploy/local/clickhouse.sh start   install if missing (Debian package), start, wait until ready
#   deploy/local/clickhouse.sh stop
# Idempotent: a server already answering is reused.
set -euo pipefail
url=${JIANCHA_CLICKHOUSE_URL:-http://127.0.0.1:8123}
log=${TMPDIR:-/tmp}/jiancha-clickhouse.log

ready() { curl -sf "$url/ping" >/dev/null 2>&1; }

case "${1:-start}" in
  start)
    if ready; then
      echo "clickhouse: already running at $url"
      exit 0
    fi
    if ! command -v clickhouse-server >/dev/null 2>&1; then
      echo "clickhouse: installing Debian's clickhouse-server"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
    fi
    nohup clickhouse-server --config-file=/etc/clickhouse-server/config.xml >"$log" 2>&1 &
    for _ in $(seq 1 60); do
      if ready; then
        echo "clickhouse: ready at $url ($(curl -s "$url/?query=SELECT%20version()"))"
        exit 0
      fi
      sleep 1
    done
    echo "clickhouse: did not become ready in 60 s; see $log" >&2
    exit 1
    ;;
  stop)
    pkill -f 'clickhouse-server --config-file' || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
