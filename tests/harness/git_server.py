"""A git server on 127.0.0.1 for the credential helper's tests: bare repositories served by the
real `git http-backend` (CGI), behind a check of the credentials each request carries.

Each repository belongs to an account (its first path segment, e.g. ``orgA``): a request is
let through only with a credential the account accepts (Basic with any username and the token
as password, or Bearer with the token), else it is answered 401 with a Basic challenge, as git
servers do. Nothing is proxied or forwarded; the server listens on loopback only.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BACKEND = "/usr/lib/git-core/git-http-backend"


@dataclass
class Seen:
    """One request as the server saw it: never the secret itself, only whether it passed."""

    method: str
    path: str
    scheme: str | None  # "basic", "bearer", None (no Authorization header)
    username: str | None
    allowed: bool


@dataclass
class GitServer:
    root: Path
    port: int = 0
    # account -> whether it accepts a token (none: it accepts nothing)
    accounts: dict[str, Callable[[str], bool]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)  # the tokens let through, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def repo(self, account: str, name: str) -> Path:
        """A bare repository ACCOUNT/NAME.git with one commit on main (made by real git)."""
        path = self.root / account / f"{name}.git"
        path.parent.mkdir(parents=True, exist_ok=True)
        work = self.root / ".work" / account / name
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.root)}
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run([*git, "init", "-q", "-b", "main", str(work)], check=True, env=env)
        (work / "README").write_text(f"{account}/{name}\n")
        subprocess.run([*git, "-C", str(work), "add", "README"], check=True, env=env)
        subprocess.run([*git, "-C", str(work), "commit", "-qm", "first"], check=True, env=env)
        subprocess.run([*git, "clone", "-q", "--bare", str(work), str(path)], check=True, env=env)
        subprocess.run(
            ["git", "-C", str(path), "config", "http.receivepack", "true"], check=True, env=env
        )
        shutil.rmtree(work)
        return path

    def accept(self, account: str, *tokens: str) -> None:
        """From now on ``account`` accepts exactly ``tokens`` (none: nothing)."""
        with self.lock:
            self.accounts[account] = frozenset(tokens).__contains__

    def accept_all_but(self, account: str, *refused: str) -> None:
        """From now on ``account`` accepts any token but ``refused`` (as a server that knows
        the provider's new tokens, and has revoked these)."""
        with self.lock:
            self.accounts[account] = lambda token: token not in refused

    def check(self, path: str, authorization: str | None) -> tuple[Seen, bool]:
        account = path.lstrip("/").split("/", 1)[0]
        scheme = username = secret = None
        if authorization:
            kind, _, value = authorization.partition(" ")
            scheme = kind.lower()
            if scheme == "basic":
                try:
                    decoded = base64.b64decode(value, validate=True).decode()
                except ValueError:
                    decoded = ""
                username, _, secret = decoded.partition(":")
            elif scheme == "bearer":
                secret = value
        with self.lock:
            accepts = self.accounts.get(account)
            allowed = bool(secret) and accepts is not None and accepts(str(secret))
            if allowed:
                self.passed.append(str(secret))
        return Seen("", path, scheme, username, allowed), allowed


def _handler(server: GitServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            body = self._body() if self.command == "POST" else b""
            path, _, query = self.path.partition("?")
            seen, allowed = server.check(path, self.headers.get("Authorization"))
            seen.method = self.command
            with server.lock:
                server.seen.append(seen)
            if not allowed:
                message = b"authentication required\n"
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "HOME": str(server.root),
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": seen.username or "token",
                "REMOTE_ADDR": "127.0.0.1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
            }
            for header, var in (
                ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                ("Git-Protocol", "GIT_PROTOCOL"),
            ):
                if self.headers.get(header):
                    env[var] = self.headers[header]
            out = subprocess.run(
                [BACKEND], input=body, capture_output=True, env=env, timeout=60, check=False
            ).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = out.partition(b"\n\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").splitlines():
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers.append((key, value.strip()))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

    return Handler


@contextmanager
def git_server(root: Path) -> Iterator[GitServer]:
    server = GitServer(root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
