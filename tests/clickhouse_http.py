"""A ClickHouse HTTP endpoint backed by chDB, for tests that need a server that can go away and come back.

No ClickHouse server can be installed on these machines (Debian's is from 2018), so this serves the real
engine (chDB, ClickHouse 26.x) over the part of ClickHouse's HTTP interface that clickhouse-connect uses
with compression off: the statement in the body or in `?query=` (then the body is the insert's data),
`?database=`, `?param_<name>=` bound parameters, ClickHouse settings on the URL (applied to inserts, as the
sink's JSON insert needs them), errors as HTTP 500 with the exception text. Run it as
its own process (chDB allows one engine per process), kill it to take ClickHouse away, start it again on
the same folder to bring it back. With CLICKHOUSE_HTTP_PASSWORD in its environment it refuses requests that
do not bring that password (HTTP basic auth, as clickhouse-connect sends it), as ClickHouse does:

    python -m tests.clickhouse_http --path DIR --port PORT
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_INSERT = re.compile(rb"^\s*INSERT\s+INTO\b", re.IGNORECASE)
# an insert whose statement leads the body: the rows follow the first line break after FORMAT <name>
_INSERT_HEADER = re.compile(rb"^(\s*INSERT\s+INTO\b.*?\bFORMAT\s+\w+)[ \t]*\r?\n", re.IGNORECASE | re.DOTALL)
# ClickHouse's own settings ride on the URL too; these are the transport ones chDB has no use for
_TRANSPORT = {
    "query",
    "database",
    "query_id",
    "session_id",
    "session_timeout",
    "wait_end_of_query",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "compress",
    "decompress",
    "enable_http_compression",
    "default_format",
    "user",
    "password",
    "client_protocol_version",
}


class Engine:
    def __init__(self, path: str) -> None:
        import chdb

        self._conn = chdb.connect(path)
        self._lock = threading.Lock()  # one statement at a time on the engine
        self._spool = tempfile.mkdtemp(prefix="ch-http-")

    def run(
        self,
        sql: bytes,
        data: bytes | None,
        database: str,
        params: dict[str, str],
        settings: dict[str, str] | None = None,
    ) -> tuple[bytes, str]:
        match = _FORMAT.search(sql)
        fmt = match.group(1).decode() if match else "TabSeparated"
        statement = sql[: match.start()].decode() if match else sql.decode()
        with self._lock:
            if database:
                self._conn.query(f"USE `{database}`", "TabSeparated")
            if data is not None and _INSERT.match(sql):
                # the insert's rows arrive as the body; chDB reads them from a file
                spool = os.path.join(self._spool, "insert.bin")
                with open(spool, "wb") as f:
                    f.write(data)
                clause = (
                    " SETTINGS "
                    + ", ".join(f"{k} = '{v}'" if not v.isdigit() else f"{k} = {v}" for k, v in settings.items())
                    if settings
                    else ""
                )
                self._conn.query(f"{statement} FROM INFILE '{spool}'{clause} FORMAT {fmt}", "TabSeparated")
                return b"", fmt
            result = self._conn.query(statement, fmt, params=params or None)
            return result.bytes() if hasattr(result, "bytes") else bytes(result), fmt


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True).decode()
        for part in message.iter_parts()
    }


def make_handler(engine: Engine, password: str = ""):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the tests read their own logs
            pass

        def _handle(self) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            body = self._body()
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):  # large bound parameters come as form fields
                query.update(_form_fields(content_type, body))
                body = b""
            if url.path == "/ping":
                return self._reply(200, b"Ok.\n", "TabSeparated")
            if password and not self._authenticated():
                return self._reply(
                    401,
                    b"Code: 516. DB::Exception: default: Authentication failed: password is "
                    b"incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n",
                    "TabSeparated",
                    {"X-ClickHouse-Exception-Code": "516"},
                )
            header = _INSERT_HEADER.match(body)
            if "query" in query:
                sql, data = query["query"].encode(), body or None
            elif header:
                sql, data = header.group(1), body[header.end() :]
            else:
                sql, data = body, None
            params = {k[len("param_") :]: v for k, v in query.items() if k.startswith("param_")}
            settings = {
                k: v
                for k, v in query.items()
                if k not in _TRANSPORT
                and not k.startswith("param_")
                and re.fullmatch(r"\w+", k)
                and re.fullmatch(r"[\w.-]*", v)
            }
            try:
                out, fmt = engine.run(sql, data, query.get("database", ""), params, settings)
            except Exception as exc:  # the client shows ClickHouse's message; keep it whole
                return self._reply(
                    500,
                    f"Code: 1000. DB::Exception: {exc}\n".encode(),
                    "TabSeparated",
                    {"X-ClickHouse-Exception-Code": "1000"},
                )
            self._reply(200, out, fmt)

        def _authenticated(self) -> bool:
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if scheme != "Basic":
                return False
            _, _, given = base64.b64decode(token).decode().partition(":")
            return given == password

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()

        def _reply(self, status: int, body: bytes, fmt: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("X-ClickHouse-Format", fmt)
            self.send_header("X-ClickHouse-Timezone", "UTC")
            self.send_header("X-ClickHouse-Summary", '{"read_rows":"0","written_rows":"0"}')
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _handle

    return Handler


def start_clickhouse_http(path: Path, port: int, log_file: Path, password: str = "") -> subprocess.Popen:
    """This endpoint as its own process, returned once it answers /ping; with a password, only for those who bring
    it."""
    env = {**os.environ, "CLICKHOUSE_HTTP_PASSWORD": password}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.clickhouse_http", "--path", str(path), "--port", str(port)],
        stdout=open(log_file, "a"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parent.parent,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
            return proc
        except OSError:
            assert proc.poll() is None, log_file.read_text()
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the ClickHouse endpoint did not come up:\n" + log_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", required=True, help="the chDB data folder")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    password = os.environ.get("CLICKHOUSE_HTTP_PASSWORD", "")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Engine(args.path), password))
    print(f"clickhouse-http: serving {args.path} on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
