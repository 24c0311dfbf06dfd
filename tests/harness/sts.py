"""AWS STS on 127.0.0.1 for the `vault aws` tests: moto's server mode (the real `moto_server`
program, from the dev lock) and, in front of it, a small recording server that counts what is
asked (by Action) and forwards it, or answers what no real STS produces on demand (garbage,
oversized answers, XML bombs, scripted errors)."""

from __future__ import annotations

import contextlib
import http.client
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Reply = tuple[int, dict[str, str], bytes]


def moto_server_path() -> str | None:
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else shutil.which("moto_server")


@dataclass
class Moto:
    url: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextlib.contextmanager
def start_moto(base: Path) -> Iterator[Moto]:
    """``moto_server`` on 127.0.0.1, a port of its choosing; stopped (by pid) at the end."""
    program = moto_server_path()
    if program is None:
        raise RuntimeError("moto_server is missing: make install (moto[server] is in the dev lock)")
    log = base / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [program, "-H", "127.0.0.1", "-p", "0"],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    moto = Moto("", proc)
    try:
        deadline = time.monotonic() + 60
        while not moto.url:
            found = re.search(rb"Running on (http://127\.0\.0\.1:[0-9]+)", log.read_bytes())
            if found:
                moto.url = found.group(1).decode()
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}")
            else:
                time.sleep(0.05)
        yield moto
    finally:
        moto.stop()


@dataclass
class Front:
    """The recording server: ``requests`` holds each request's form; ``reply``, when set,
    is answered instead of forwarding to ``upstream``."""

    upstream: str
    port: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    reply: Reply | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def actions(self, action: str = "AssumeRoleWithWebIdentity") -> list[dict[str, str]]:
        return [form for form in self.requests if form.get("Action") == action]


@contextlib.contextmanager
def front(upstream: str) -> Iterator[Front]:
    state = Front(upstream)
    target = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append(dict(urllib.parse.parse_qsl(body.decode(errors="replace"))))
            if state.reply is not None:
                status, headers, payload = state.reply
            else:
                status, headers, payload = self._forward(body)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _forward(self, body: bytes) -> Reply:
            conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
            skip = {"host", "content-length", "connection"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            conn.close()
            kept = {"Content-Type": resp.getheader("Content-Type", "text/xml")}
            return resp.status, kept, payload

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
