#!/usr/bin/env bash
# Local MariaDB (Debian's mariadb-server) as a front database (前置库) for tests: a server of
# its own in a temp directory, on loopback, root without a password.
#   deploy/local/mariadb.sh install   install mariadb-server if missing
#   deploy/local/mariadb.sh start     install if missing, initialise once, start, wait until ready
#   deploy/local/mariadb.sh stop
# JIANCHA_MARIADB_PORT (default 53306) and JIANCHA_MARIADB_DIR choose the port and the data
# directory; connect with mysql://root@127.0.0.1:$JIANCHA_MARIADB_PORT/mysql.
set -euo pipefail
port=${JIANCHA_MARIADB_PORT:-53306}
dir=${JIANCHA_MARIADB_DIR:-${TMPDIR:-/tmp}/jiancha-mariadb-$port}

ready() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$port" -u root status >/dev/null 2>&1; }

install() {
  if command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1; then return; fi
  echo "mariadb: installing Debian's mariadb-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
}

case "${1:-start}" in
  install) install ;;
  start)
    install
    if ready; then
      echo "mariadb: already running on 127.0.0.1:$port"
      exit 0
    fi
    if [[ ! -d $dir/mysql ]]; then
      # One initialisation at a time on this machine, and a second try on a clean directory:
      # two at once (the tests start servers in parallel) once failed in CI with
      # "ERROR: 1051 Unknown table 'mysql.tmp_db'" from the bootstrap.
      for attempt in 1 2; do
        rm -rf "$dir"
        mkdir -p "$dir"
        if flock "${TMPDIR:-/tmp}/jiancha-mariadb-install.lock" \
          mariadb-install-db --user=root --datadir="$dir" \
          --auth-root-authentication-method=normal >"$dir.install.log" 2>&1; then
          break
        fi
        echo "mariadb: initialising $dir failed (attempt $attempt); see $dir.install.log" >&2
        [[ $attempt == 2 ]] && exit 1
      done
    fi
    nohup mariadbd --no-defaults --user=root --datadir="$dir" --socket="$dir/sock" --port="$port" \
      --bind-address=127.0.0.1 --pid-file="$dir/pid" --log-error="$dir/log" >/dev/null 2>&1 &
    for _ in $(seq 1 120); do
      if ready; then
        echo "mariadb: ready on 127.0.0.1:$port ($dir)"
        exit 0
      fi
      sleep 0.5
    done
    echo "mariadb: did not become ready in 60 s; see $dir/log" >&2
    exit 1
    ;;
  stop)
    if [[ -f $dir/pid ]]; then
      pid=$(cat "$dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 120); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
    fi
    ;;
  *)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
