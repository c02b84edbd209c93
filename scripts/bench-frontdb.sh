#!/usr/bin/env bash
# Benchmark: front database → durable events (docs/BENCHMARKS.md, "Front database").
# A local PostgreSQL 15 (deploy/local/postgres.sh, its own directory) holds a simulated city's
# sdjc rows (jiancha simulate --profile city --format sdjc, DAYS calendar days); jiancha serve
# (release build) polls them by watermark into its SQLite ingest log, the engine running beside
# it. Measured: rows made durable per second, from the first row in the log to the last (and
# from the start of the process), by watching the log's row count.
#   scripts/bench-frontdb.sh [DAYS]     (default 14: about 220,000 rows)
# BATCH (rows per statement, default 5000) and JIANCHA_PG_PORT (default 55434) change the setup.
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-14}
batch=${BATCH:-5000}
export JIANCHA_PG_PORT=${JIANCHA_PG_PORT:-55434}
export JIANCHA_PG_DIR=${JIANCHA_PG_DIR:-${TMPDIR:-/tmp}/jiancha-bench-frontdb-pg}
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; deploy/local/postgres.sh stop; rm -rf "$work" "$JIANCHA_PG_DIR"' EXIT
cargo build --release --quiet --bin jiancha
jiancha=target/release/jiancha
psql=(/usr/lib/postgresql/15/bin/psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$JIANCHA_PG_PORT" -U postgres)

deploy/local/postgres.sh start
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench ENCODING 'UTF8' TEMPLATE template0"
"$jiancha" simulate --profile city --start 2026-03-02 --days "$days" --format sdjc \
  --reference-out "$work/ref" >"$work/rows.ndjson" 2>/dev/null
# Tables as scripts/frontdb-demo.sh makes them; rows loaded with COPY in MAKETIME order.
python3 - "$work/rows.ndjson" "$work" <<'PY'
import json, sys, csv, os
rows = [json.loads(l) for l in open(sys.argv[1])]
rows.sort(key=lambda r: r["MAKETIME"])
cols = {}
for r in rows:
    cs = cols.setdefault(r["_table"], [])
    cs.extend(k for k in r if k != "_table" and k not in cs)
def ty(c):
    return {"MAKETIME": "TIMESTAMP NOT NULL", "DATAVER": "INTEGER NOT NULL"}.get(
        c, "VARCHAR(64) NOT NULL" if c in ("PROJID", "ORGBUSNO", "SN") else "VARCHAR(200)")
with open(os.path.join(sys.argv[2], "ddl.sql"), "w") as ddl:
    for t, cs in cols.items():
        key = ["PROJID", "ORGBUSNO", "DATAVER"] + (["SN"] if "SN" in cs else [])
        defs = [f"{c} {ty(c)}" for c in cs] + ["CD_OPERATION VARCHAR(1)", "SIGNSTATE INTEGER DEFAULT 0",
                                               f"PRIMARY KEY ({', '.join(key)})"]
        ddl.write(f"CREATE TABLE {t} ({', '.join(defs)});\n")
        ddl.write(f"CREATE INDEX ON {t} (MAKETIME);\n")
        with open(os.path.join(sys.argv[2], t + ".csv"), "w", newline="") as f:
            w = csv.writer(f)
            for r in rows:
                if r["_table"] == t:
                    w.writerow([("" if r.get(c) is None else r.get(c)) for c in cs])
        with open(os.path.join(sys.argv[2], "copy.sql"), "a") as copy:
            copy.write(f"\\copy {t} ({', '.join(cs)}) FROM '{sys.argv[2]}/{t}.csv' WITH (FORMAT csv)\n")
print(len(rows))
PY
"${psql[@]}" -d bench -f "$work/ddl.sql"
"${psql[@]}" -d bench -f "$work/copy.sql"
rows=$(wc -l <"$work/rows.ndjson")

echo "0123456789abcdef0123456789abcdef-bench" >"$work/secret"
echo "bench-password" | "$jiancha" user add --users "$work/users.toml" --username ops --role admin --region 51 >/dev/null
cat >"$work/jiancha.toml" <<TOML
[reference]
dir = "$work/ref"
[api]
users = "$work/users.toml"
token_secret_file = "$work/secret"
listen = "127.0.0.1:0"
[engine]
clock = "event"
[embedded]
data = "$work/data"
[[frontdb]]
name = "sdjc:bench"
url = "postgresql://postgres@127.0.0.1:$JIANCHA_PG_PORT/bench"
tables = ["PRE_APASINFO", "EA_JC_STEP_BASICINFO", "EA_JC_STEP_PROC", "EA_JC_STEP_DONE", "EA_JC_FEEINFO", "EA_JC_SERVEVAL"]
batch_rows = $batch
settle_seconds = 0
interval_milliseconds = 100
TOML
echo "== $rows rows in PostgreSQL; load average $(cut -d' ' -f1 /proc/loadavg)"
started=$(date +%s.%N)
"$jiancha" serve --config "$work/jiancha.toml" 2>"$work/serve.log" &
pid=$!
python3 - "$work/data/jiancha.db" "$rows" "$started" <<'PY'
import sqlite3, sys, time, os
path, want, started = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
while not os.path.exists(path):
    time.sleep(0.05)
first = None
while True:
    try:
        c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        n = c.execute("SELECT (SELECT COUNT(*) FROM ingest_log) + (SELECT COUNT(*) FROM dead_letters WHERE source LIKE 'frontdb:%')").fetchone()[0]
        c.close()
    except sqlite3.Error:
        n = 0
    now = time.time()
    if n and first is None:
        first = (now, n)
    if n >= want:
        break
    if now - started > 900:
        sys.exit(f"only {n} of {want} rows after 15 minutes")
    time.sleep(0.05)
steady = (n - first[1]) / max(now - first[0], 1e-9)
print(f"rows durable: {n} in {now - started:.1f} s from start ({n / (now - started):,.0f} rows/s), "
      f"{now - first[0]:.1f} s from the first ({steady:,.0f} rows/s)")
PY
echo "== load average $(cut -d' ' -f1 /proc/loadavg)"
