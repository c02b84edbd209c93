#!/usr/bin/env bash
# Local PostgreSQL 15 (Debian's package) as a front database (前置库) for tests, the benchmark and
# the front-database demo: a cluster of its own in a temp directory, on loopback, trust auth.
#   deploy/local/postgres.sh install   install postgresql-15 if missing
#   deploy/local/postgres.sh start     install if missing, initdb once, start, wait until ready
#   deploy/local/postgres.sh stop
# JIANCHA_PG_PORT (default 55432) and JIANCHA_PG_DIR choose the port and the data directory;
# connect with postgresql://postgres@127.0.0.1:$JIANCHA_PG_PORT/postgres. The server runs as the
# postgres user (initdb refuses root), so the directory is made theirs.
set -euo pipefail
port=${JIANCHA_PG_PORT:-55432}
dir=${JIANCHA_PG_DIR:-${TMPDIR:-/tmp}/jiancha-postgres-$port}
bin=/usr/lib/postgresql/15/bin

as_postgres() { if [[ $(id -un) == postgres ]]; then "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi; }
ready() { as_postgres "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; }

install() {
  if [[ -x $bin/initdb ]]; then return; fi
  echo "postgres: installing Debian's postgresql-15"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
}

case "${1:-start}" in
  install) install ;;
  start)
    install
    if ready; then
      echo "postgres: already running on 127.0.0.1:$port"
      exit 0
    fi
    if [[ ! -f $dir/PG_VERSION ]]; then
      mkdir -p "$dir"
      chown postgres "$dir"
      chmod 700 "$dir"
      as_postgres "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
    fi
    as_postgres "$bin/pg_ctl" -D "$dir" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on" \
      -l "$dir/log" -w -t 60 start >/dev/null
    for _ in $(seq 1 120); do
      if ready; then
        echo "postgres: ready on 127.0.0.1:$port ($dir)"
        exit 0
      fi
      sleep 0.5
    done
    echo "postgres: did not become ready in 60 s; see $dir/log" >&2
    exit 1
    ;;
  stop)
    if [[ -f $dir/postmaster.pid ]]; then
      as_postgres "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
    fi
    ;;
  *)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
