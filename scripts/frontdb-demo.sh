#!/usr/bin/env bash
# The optional third path of the README: jiancha serve polling a front database (前置库).
# Starts a local PostgreSQL 15 (deploy/local/postgres.sh: Debian's package, its own directory,
# loopback), creates the Shandong-style sdjc tables, fills them with a simulated county hall's
# rows (jiancha simulate --format sdjc: a week up to today), and runs jiancha serve with a
# [[frontdb]] source polling them by MAKETIME watermark. Ctrl-C stops jiancha; the database keeps
# running (deploy/local/postgres.sh stop) and its rows stay, so a second run resumes.
#   scripts/frontdb-demo.sh            # data in ./jiancha-frontdb, PostgreSQL on 127.0.0.1:55432
# JIANCHA_PG_PORT, JIANCHA_FRONTDB_DIR and JIANCHA (the binary, default: cargo run --release)
# change the defaults. Add rows while it runs (psql … -c "INSERT INTO ea_jc_step_done …") and
# watch them arrive on the 数据源 page.
set -euo pipefail
cd "$(dirname "$0")/.."
export JIANCHA_PG_PORT=${JIANCHA_PG_PORT:-55432}
dir=$(realpath -m "${JIANCHA_FRONTDB_DIR:-jiancha-frontdb}")
mkdir -p "$dir"
if [[ -n ${JIANCHA:-} ]]; then jiancha=("$JIANCHA"); else
  cargo build --release --quiet --bin jiancha
  jiancha=(target/release/jiancha)
fi
psql=(/usr/lib/postgresql/15/bin/psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$JIANCHA_PG_PORT" -U postgres)

deploy/local/postgres.sh start
if ! "${psql[@]}" -At -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'qzk'" | grep -q 1; then
  echo "frontdb-demo: filling database qzk with a simulated week of sdjc rows"
  "${psql[@]}" -d postgres -c "CREATE DATABASE qzk ENCODING 'UTF8' TEMPLATE template0"
  # Write times are China time, as a Chinese 前置库 stamps them: the settle delay compares them
  # with the database's own clock, so the database keeps China time too.
  "${psql[@]}" -d postgres -c "ALTER DATABASE qzk SET timezone TO 'Asia/Shanghai'"
  start=$(date -d '7 days ago' +%F)
  "${jiancha[@]}" simulate --start "$start" --days 7 --format sdjc --reference-out "$dir/ref" \
    >"$dir/rows.ndjson" 2>"$dir/simulate.log"
  # The 前置库 tables as sites declare them: MAKETIME a timestamp, DATAVER a number, the rest
  # text, SIGNSTATE and CD_OPERATION; primary key PROJID, ORGBUSNO, DATAVER (+ SN). Rows are
  # written in MAKETIME order, as SYSDATE would have stamped them.
  python3 - "$dir/rows.ndjson" >"$dir/qzk.sql" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows.sort(key=lambda r: r["MAKETIME"])
cols = {}
for r in rows:
    cs = cols.setdefault(r["_table"], [])
    cs.extend(k for k in r if k != "_table" and k not in cs)
def ty(c):
    return {"MAKETIME": "TIMESTAMP NOT NULL", "DATAVER": "INTEGER NOT NULL"}.get(
        c, "VARCHAR(64) NOT NULL" if c in ("PROJID", "ORGBUSNO", "SN") else "VARCHAR(200)")
for t, cs in cols.items():
    key = ["PROJID", "ORGBUSNO", "DATAVER"] + (["SN"] if "SN" in cs else [])
    defs = [f"{c} {ty(c)}" for c in cs] + ["CD_OPERATION VARCHAR(1)", "SIGNSTATE INTEGER DEFAULT 0",
                                           f"PRIMARY KEY ({', '.join(key)})"]
    print(f"CREATE TABLE {t} ({', '.join(defs)});")
q = lambda v: str(v) if isinstance(v, (int, float)) else "'" + str(v).replace("'", "''") + "'"
print("BEGIN;")
for r in rows:
    ks = [k for k in r if k != "_table"]
    print(f"INSERT INTO {r['_table']} ({', '.join(ks)}) VALUES ({', '.join(q(r[k]) for k in ks)});")
print("COMMIT;")
PY
  "${psql[@]}" -d qzk -f "$dir/qzk.sql"
  echo "frontdb-demo: $(wc -l <"$dir/rows.ndjson") rows in qzk"
fi

# A login for the dashboards (admin of the simulated county), made once.
if [[ ! -f $dir/users.toml ]]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/token.secret"
  password=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$password" >"$dir/login.txt"
  region=$(awk -F, 'NR == 2 { print $3 }' "$dir/ref/windows.csv" 2>/dev/null | cut -c1-6)
  echo "$password" | "${jiancha[@]}" user add --users "$dir/users.toml" --username frontdb-admin \
    --role admin --region "${region:-43}" --name 运维 >/dev/null
fi
cat >"$dir/jiancha.toml" <<TOML
[reference]
dir = "$dir/ref"
[api]
users = "$dir/users.toml"
token_secret_file = "$dir/token.secret"
listen = "${JIANCHA_LISTEN:-127.0.0.1:8080}"
[embedded]
data = "$dir/data"

[[frontdb]]
name = "sdjc:demo"
format = "sdjc"
url = "postgresql://postgres@127.0.0.1:$JIANCHA_PG_PORT/qzk"
tables = ["PRE_APASINFO", "EA_JC_STEP_BASICINFO", "EA_JC_STEP_PROC", "EA_JC_STEP_DONE", "EA_JC_FEEINFO", "EA_JC_SERVEVAL"]
TOML
echo "frontdb-demo: http://${JIANCHA_LISTEN:-127.0.0.1:8080} — log in as frontdb-admin / $(cat "$dir/login.txt")"
exec "${jiancha[@]}" serve --config "$dir/jiancha.toml"
