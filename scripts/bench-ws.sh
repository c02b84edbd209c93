#!/usr/bin/env bash
# The WebSocket fan-out benchmark of docs/BENCHMARKS.md ("Dashboard API: 10,000 WebSocket
# clients"): RUNS runs (default 3) of 10,000 clients and of 1,000 clients, 20 alerts each, then
# one run of 1,000 clients whose snapshots carry 200 open alerts (memory per idle connection
# with a realistic snapshot). Each line is one run; the load average before it says how busy
# the machine was.
#
#   scripts/bench-ws.sh [RUNS]
#
# The clients and the server are two processes, each with one socket per connection, so each
# needs a little over 10,000 file descriptors: the soft limit is raised to the hard one, and
# the script stops if even that is too low (raise it in /etc/security/limits.conf or the unit).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
need=10100
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    echo "bench-ws: the hard limit on open files is $hard; 10,000 clients need $need" >&2
    exit 1
fi
ulimit -n "$hard"

cargo build --release -p dashboard-api --example ws_fanout
bin=${CARGO_TARGET_DIR:-target}/release/examples/ws_fanout

run() {
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin" "$@"
}
for clients in 10000 1000; do
    for _ in $(seq "$runs"); do
        run "$clients" 20
    done
done
run 1000 20 200
