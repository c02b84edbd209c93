#!/usr/bin/env bash
# ClickHouse instances that can run replicated DDL, on one machine: ZooKeeper
# (deploy/local/zookeeper.sh) and four servers on loopback, each with its own {shard}/{replica}
# macros, sharing two clusters in remote_servers:
#   jiancha_test      one shard, one replica: the first server alone;
#   jiancha_test_2x2  two shards of two replicas each: all four servers.
# `jiancha migrate --cluster NAME` creates Replicated tables with Distributed fronts exactly as
# on a real cluster. Four servers because macros are per server: a server is one replica of one
# shard, so two shards of two replicas take four.
#   deploy/local/clickhouse-cluster.sh start   (HTTP 127.0.0.1:8133, 8143, 8153, 8163; native +1)
#   deploy/local/clickhouse-cluster.sh stop
# Idempotent: servers already answering are reused (their cluster configuration is rewritten,
# which a running server reloads).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${JIANCHA_CLICKHOUSE_CLUSTER_PORT:-8133}
# HTTP port, shard, replica of each server; the native port is HTTP + 1, interserver HTTP + 2.
servers=("$base 01 r1" "$((base + 10)) 01 r2" "$((base + 20)) 02 r1" "$((base + 30)) 02 r2")

dir_of() { echo "${TMPDIR:-/tmp}/jiancha-clickhouse-cluster-$1"; }
ready() { curl -sf "http://127.0.0.1:$1/ping" >/dev/null 2>&1; }
# The server knows both clusters (after a configuration reload, if it was running before).
configured() {
  [[ $(curl -sf "http://127.0.0.1:$1/" --data-binary \
    "SELECT count() FROM system.clusters WHERE cluster LIKE 'jiancha_test%'" 2>/dev/null) == 5 ]]
}

replica() { echo "<replica><host>127.0.0.1</host><port>$(($1 + 1))</port></replica>"; }

# The configuration each server adds to Debian's: ZooKeeper, both clusters, its macros.
write_config() {
  local http=$1 shard=$2 name=$3 dir
  dir=$(dir_of "$http")
  mkdir -p "$dir/etc/config.d"
  cp /etc/clickhouse-server/config.xml /etc/clickhouse-server/users.xml "$dir/etc/"
  cat >"$dir/etc/config.d/jiancha-cluster.xml" <<XML
<yandex>
    <zookeeper><node><host>127.0.0.1</host><port>${JIANCHA_ZOOKEEPER_PORT:-2181}</port></node></zookeeper>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <remote_servers>
        <jiancha_test>
            <shard><internal_replication>true</internal_replication>$(replica "$base")</shard>
        </jiancha_test>
        <jiancha_test_2x2>
            <shard><internal_replication>true</internal_replication>$(replica "$base")$(replica $((base + 10)))</shard>
            <shard><internal_replication>true</internal_replication>$(replica $((base + 20)))$(replica $((base + 30)))</shard>
        </jiancha_test_2x2>
    </remote_servers>
    <macros><shard>$shard</shard><replica>$name</replica></macros>
</yandex>
XML
}

start_server() {
  local http=$1 dir
  dir=$(dir_of "$http")
  # A test instance: start empty. Replicated tables left by an earlier run would have to
  # reach their ZooKeeper metadata before the server answers, and a server that cannot do
  # that does not start at all.
  rm -rf "$dir/data" "$dir/tmp"
  nohup clickhouse-server --config-file="$dir/etc/config.xml" -- \
    "--http_port=$http" "--tcp_port=$((http + 1))" "--interserver_http_port=$((http + 2))" \
    "--path=$dir/data/" "--tmp_path=$dir/tmp/" "--user_files_path=$dir/user_files/" \
    "--format_schema_path=$dir/format_schemas/" \
    "--logger.log=$dir/server.log" "--logger.errorlog=$dir/error.log" >"$dir.out" 2>&1 &
  echo $! >"$dir.pid"
}

case "${1:-start}" in
  start)
    "$here/zookeeper.sh" start
    # Installs clickhouse-server if missing (and starts the shared instance, which is harmless).
    "$here/clickhouse.sh" start >/dev/null
    for s in "${servers[@]}"; do
      read -r http shard name <<<"$s"
      write_config "$http" "$shard" "$name"
      ready "$http" || start_server "$http"
    done
    for s in "${servers[@]}"; do
      read -r http _ <<<"$s"
      for i in $(seq 1 121); do
        ready "$http" && configured "$http" && break
        if ((i == 121)); then
          echo "clickhouse-cluster: 127.0.0.1:$http not ready in 60 s; see $(dir_of "$http")/error.log" >&2
          exit 1
        fi
        sleep 0.5
      done
    done
    echo "clickhouse-cluster: ready at http://127.0.0.1:$base (clusters jiancha_test, jiancha_test_2x2; ZooKeeper)"
    ;;
  stop)
    for s in "${servers[@]}"; do
      read -r http _ <<<"$s"
      pid=$(dir_of "$http").pid
      if [[ -f $pid ]]; then
        kill "$(cat "$pid")" 2>/dev/null || true
        rm -f "$pid"
      fi
    done
    "$here/zookeeper.sh" stop
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
