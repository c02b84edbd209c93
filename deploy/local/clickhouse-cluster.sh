#!/usr/bin/env bash
# A ClickHouse instance that can run replicated DDL: ZooKeeper (deploy/local/zookeeper.sh), a
# one-shard one-replica cluster `jiancha_test` in remote_servers, and the {shard}/{replica}
# macros, so `jiancha migrate --cluster jiancha_test` creates Replicated tables with a
# Distributed front exactly as on a real cluster, on one machine.
#   deploy/local/clickhouse-cluster.sh start   (HTTP 127.0.0.1:8133, native 8134)
#   deploy/local/clickhouse-cluster.sh stop
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
http=${JIANCHA_CLICKHOUSE_CLUSTER_PORT:-8133}
dir=${TMPDIR:-/tmp}/jiancha-clickhouse-cluster-$http
url=http://127.0.0.1:$http

ready() { curl -sf "$url/ping" >/dev/null 2>&1; }

case "${1:-start}" in
  start)
    if ready; then
      echo "clickhouse-cluster: already running at $url"
      exit 0
    fi
    "$here/zookeeper.sh" start
    # Installs clickhouse-server if missing (and starts the shared instance, which is harmless).
    "$here/clickhouse.sh" start >/dev/null
    # A test instance: start empty. Replicated tables left by an earlier run would have to
    # reach their ZooKeeper metadata before the server answers, and a server that cannot do
    # that does not start at all.
    rm -rf "$dir/data" "$dir/tmp"
    mkdir -p "$dir/etc/config.d"
    cp /etc/clickhouse-server/config.xml /etc/clickhouse-server/users.xml "$dir/etc/"
    cat >"$dir/etc/config.d/jiancha-cluster.xml" <<XML
<yandex>
    <zookeeper><node><host>127.0.0.1</host><port>${JIANCHA_ZOOKEEPER_PORT:-2181}</port></node></zookeeper>
    <remote_servers>
        <jiancha_test><shard><replica><host>127.0.0.1</host><port>$((http + 1))</port></replica></shard></jiancha_test>
    </remote_servers>
    <macros><shard>01</shard><replica>r1</replica></macros>
</yandex>
XML
    nohup clickhouse-server --config-file="$dir/etc/config.xml" -- \
      "--http_port=$http" "--tcp_port=$((http + 1))" "--interserver_http_port=$((http + 2))" \
      "--path=$dir/data/" "--tmp_path=$dir/tmp/" "--user_files_path=$dir/user_files/" \
      "--format_schema_path=$dir/format_schemas/" \
      "--logger.log=$dir/server.log" "--logger.errorlog=$dir/error.log" >"$dir.out" 2>&1 &
    echo $! >"$dir.pid"
    for _ in $(seq 1 120); do
      if ready; then
        echo "clickhouse-cluster: ready at $url (cluster jiancha_test, ZooKeeper)"
        exit 0
      fi
      sleep 0.5
    done
    echo "clickhouse-cluster: did not become ready in 60 s; see $dir/error.log" >&2
    exit 1
    ;;
  stop)
    if [[ -f $dir.pid ]]; then
      kill "$(cat "$dir.pid")" 2>/dev/null || true
      rm -f "$dir.pid"
    fi
    "$here/zookeeper.sh" stop
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
