#!/usr/bin/env bash
# Embedded durable ingest rate (method and results: docs/BENCHMARKS.md, "Embedded mode: durable
# ingest"). Every line of two weeks of the simulated 德阳-sized city (472,272 events) is POSTed as
# fast as the server acknowledges it, by SENDERS window systems at once, in NDJSON batches of
# BATCH lines, to a release `jiancha serve --clock event`; the rate is acknowledged (durable)
# events per second of sending. The engine consumes the log meanwhile, on the same two cores.
#   scripts/bench-ingest.sh                       # SENDERS=8 BATCH=500 RUNS=1
#   JIANCHA=path/to/other/jiancha RUNS=3 scripts/bench-ingest.sh   # compare a build
# It is scripts/bench-latency.sh with an unbounded background rate and one probe.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=100000000 DURATION=1 PROBES=1 SENDERS=${SENDERS:-8} BATCH=${BATCH:-500} RUNS=${RUNS:-1} \
  exec scripts/bench-latency.sh embedded
