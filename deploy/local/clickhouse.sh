#!/usr/bin/env bash
# Local ClickHouse for tests and development (Debian's clickhouse-server, 18.16 here).
#   deploy/local/clickhouse.sh start   install if missing, start, wait until ready
#   deploy/local/clickhouse.sh stop
# Idempotent: a server already answering is reused. JIANCHA_CLICKHOUSE_URL chooses the HTTP
# endpoint (default http://127.0.0.1:8123, the package's own configuration and data). Any other
# port gets a separate instance with its data under JIANCHA_CLICKHOUSE_DIR (tests stop and start
# such an instance to simulate an outage without disturbing the shared one).
set -euo pipefail
url=${JIANCHA_CLICKHOUSE_URL:-http://127.0.0.1:8123}
port=${url##*:}
port=${port%%/*}
dir=${JIANCHA_CLICKHOUSE_DIR:-${TMPDIR:-/tmp}/jiancha-clickhouse-$port}
log=${TMPDIR:-/tmp}/jiancha-clickhouse-$port.log

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
    args=(--config-file=/etc/clickhouse-server/config.xml)
    if [[ $port != 8123 ]]; then
      mkdir -p "$dir"
      args+=(-- "--http_port=$port" "--tcp_port=$((port + 1))" "--interserver_http_port=$((port + 2))"
        "--path=$dir/data/" "--tmp_path=$dir/tmp/" "--user_files_path=$dir/user_files/"
        "--format_schema_path=$dir/format_schemas/"
        "--logger.log=$dir/server.log" "--logger.errorlog=$dir/error.log")
    fi
    nohup clickhouse-server "${args[@]}" >"$log" 2>&1 &
    echo $! >"$dir.pid"
    for _ in $(seq 1 120); do
      if ready; then
        echo "clickhouse: ready at $url ($(curl -s "$url/?query=SELECT%20version()"))"
        exit 0
      fi
      sleep 0.5
    done
    echo "clickhouse: did not become ready in 60 s; see $log" >&2
    exit 1
    ;;
  stop)
    if [[ -f $dir.pid ]]; then
      pid=$(cat "$dir.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      rm -f "$dir.pid"
    elif [[ $port == 8123 ]]; then
      pkill -f 'clickhouse-server --config-file=/etc/clickhouse-server/config.xml$' || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
