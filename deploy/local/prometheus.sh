#!/usr/bin/env bash
# Prometheus and Alertmanager from Debian's packages (`prometheus`, `prometheus-alertmanager`:
# 2.42 and 0.25 on bookworm), for the operations tests (tests/operations.rs): `promtool` checks
# and unit-tests the shipped rules; the end-to-end test starts its own `prometheus-alertmanager`
# on a free loopback port with its own configuration and data directory, and stops it.
#   deploy/local/prometheus.sh           install if missing, print the versions
#   deploy/local/prometheus.sh start     also start an Alertmanager on 127.0.0.1:9093 (by hand;
#                                        JIANCHA_ALERTMANAGER_PORT, JIANCHA_ALERTMANAGER_CONFIG)
#   deploy/local/prometheus.sh stop      stop that Alertmanager
# The packages' services are not started: their own daemons are not what the tests use.
set -euo pipefail
port=${JIANCHA_ALERTMANAGER_PORT:-9093}
dir=${TMPDIR:-/tmp}/jiancha-alertmanager-$port
log=$dir/alertmanager.log

install() {
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  if [ ${#missing[@]} -eq 0 ]; then return; fi
  if [ "$(id -u)" != 0 ]; then
    echo "prometheus: ${missing[*]} missing and not root; install with apt-get" >&2
    exit 1
  fi
  echo "prometheus: installing Debian's ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ready() { curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; }

install
case "${1:-install}" in
  install)
    ;;
  start)
    if ready; then
      echo "alertmanager: already running on 127.0.0.1:$port"
      exit 0
    fi
    mkdir -p "$dir"
    config=${JIANCHA_ALERTMANAGER_CONFIG:-$dir/alertmanager.yml}
    if [ ! -f "$config" ]; then
      # A receiver that sends nothing: enough to look at what jiancha posts (amtool, the UI).
      printf 'route:\n  receiver: none\nreceivers:\n  - name: none\n' >"$config"
    fi
    nohup prometheus-alertmanager --config.file="$config" --storage.path="$dir/data" \
      --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >"$log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 60); do
      if ready; then
        echo "alertmanager: ready on 127.0.0.1:$port (log $log)"
        exit 0
      fi
      sleep 0.5
    done
    echo "alertmanager: not ready on $port in 30 s; see $log" >&2
    exit 1
    ;;
  stop)
    if [[ -f $dir/pid ]]; then
      kill "$(cat "$dir/pid")" 2>/dev/null || true
      rm -f "$dir/pid"
    fi
    exit 0
    ;;
  *)
    echo "usage: $0 [install|start|stop]" >&2
    exit 2
    ;;
esac
echo "prometheus: $(promtool --version 2>&1 | head -1); $(prometheus-alertmanager --version 2>&1 | head -1)"
