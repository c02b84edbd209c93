#!/usr/bin/env bash
# Local ZooKeeper for the replicated ClickHouse test (Debian's zookeeper package, standalone).
#   deploy/local/zookeeper.sh start   install if missing, start on 127.0.0.1:2181, wait for imok
#   deploy/local/zookeeper.sh stop
# Idempotent: a server already answering is reused. Data under ${TMPDIR:-/tmp}/jiancha-zookeeper.
set -euo pipefail
dir=${TMPDIR:-/tmp}/jiancha-zookeeper
port=${JIANCHA_ZOOKEEPER_PORT:-2181}

ready() { [[ $(echo ruok | timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat >&3; cat <&3" 2>/dev/null) == imok ]]; }

case "${1:-start}" in
  start)
    if ready; then
      echo "zookeeper: already running on 127.0.0.1:$port"
      exit 0
    fi
    if [[ ! -x /usr/share/zookeeper/bin/zkServer.sh ]]; then
      echo "zookeeper: installing Debian's zookeeper"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq zookeeper >/dev/null
    fi
    mkdir -p "$dir/data" "$dir/log"
    cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
CFG
    ZOO_LOG_DIR=$dir/log /usr/share/zookeeper/bin/zkServer.sh start "$dir/zoo.cfg" >"$dir/start.log" 2>&1
    for _ in $(seq 1 60); do
      if ready; then
        echo "zookeeper: ready on 127.0.0.1:$port"
        exit 0
      fi
      sleep 0.5
    done
    echo "zookeeper: did not become ready in 30 s; see $dir/log" >&2
    exit 1
    ;;
  stop)
    if [[ -f $dir/zoo.cfg ]]; then
      ZOO_LOG_DIR=$dir/log /usr/share/zookeeper/bin/zkServer.sh stop "$dir/zoo.cfg" >/dev/null 2>&1 || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
