#!/usr/bin/env python3
"""A current ClickHouse release behind the HTTP interface, for checking the store by hand.

Debian's clickhouse-server 18.16 is what the tests run on; production runs current releases.
PyPI's `chdb` embeds a current ClickHouse (26.x) in-process; this serves it on loopback with
as much of ClickHouse's HTTP interface as the `clickhouse` crate and the tests use (SQL in the
body or in `query=`, `default_format`, settings as URL parameters, RowBinary inserts, errors
as "Code: N. DB::Exception: …" with status 500), so the store's own tests run against it:

    python3 -m pip install chdb          # once; about 500 MB
    python3 scripts/current-clickhouse.py 8200 &
    JIANCHA_CLICKHOUSE_URL=http://127.0.0.1:8200 cargo test -p store --test clickhouse

One session, one statement at a time (chdb is not thread-safe); data in a temporary directory
removed on exit. Replicated tables and `ON CLUSTER` need servers and ZooKeeper: not here.
"""

import http.server
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import urllib.parse

import chdb
from chdb import session

INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+([\w.]+)\s*(\([^)]*\))?\s*FORMAT\s+(\w+)\s*$", re.I | re.S
)
HAS_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*;?\s*$", re.I)
# URL parameters that are not settings.
NOT_SETTINGS = {"query", "database", "default_format", "user", "password"}

lock = threading.Lock()
workdir = tempfile.mkdtemp(prefix="jiancha-chdb-")
sess = session.Session(os.path.join(workdir, "db"))


def run(sql, fmt):
    res = sess.query(sql, fmt)
    return res.bytes() if hasattr(res, "bytes") else bytes(res)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Format", "RowBinary")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/ping"):
            return self.reply(200, b"Ok.\n")
        self.handle_query(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not length and self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self.read_chunked()
        self.handle_query(body)

    def read_chunked(self):
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def handle_query(self, body):
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        settings = {k: v for k, v in params.items() if k not in NOT_SETTINGS}
        fmt = params.get("default_format", "TabSeparated")
        try:
            with lock:
                for name, value in settings.items():
                    run(f"SET {name} = '{value}'", "TabSeparated")
                if params.get("database"):
                    run(f"USE {params['database']}", "TabSeparated")
                out = self.execute(params.get("query"), body, fmt)
            self.reply(200, out)
        except Exception as e:  # chdb raises one type for every server exception
            text = str(e)
            if "Code:" not in text:
                text = f"Code: 1000. DB::Exception: {text}"
            self.reply(500, text.encode())

    def execute(self, query, body, fmt):
        if query and INSERT.match(query) and body:
            table, columns, data_format = INSERT.match(query).groups()
            structure = ", ".join(
                f"{name} {type_}"
                for name, type_ in (
                    line.split("\t")[:2]
                    for line in run(f"DESCRIBE TABLE {table}", "TabSeparated")
                    .decode()
                    .splitlines()
                )
                if not columns or name in columns
            )
            path = os.path.join(workdir, f"insert-{threading.get_ident()}.bin")
            with open(path, "wb") as f:
                f.write(body)
            target = f"{table} {columns or ''}"
            return run(
                f"INSERT INTO {target} SELECT * FROM file('{path}', {data_format}, '{structure}')",
                "TabSeparated",
            )
        sql = ((query or "") + "\n" + body.decode()).strip()
        if sql.upper().startswith(("SELECT", "WITH", "SHOW", "DESCRIBE", "EXISTS")):
            if not HAS_FORMAT.search(sql):
                return run(sql, fmt)
            return run(sql, "TabSeparated")  # the statement names its own format
        return run(sql, "TabSeparated")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8200
    version = run("SELECT version()", "TabSeparated").decode().strip()
    print(f"current-clickhouse: ClickHouse {version} (chdb {chdb.__version__}) at http://127.0.0.1:{port}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # kill: remove the data too
    try:
        server.serve_forever()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
