"""A scripted OAuth server on 127.0.0.1 for what no real provider produces on demand:
garbage bodies, wrong types, huge answers, redirects, 5xx storms, hostile strings."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Trickle:
    """An answer sent one byte every ``every`` seconds, for at most ``limit`` seconds."""

    reply: Reply
    every: float = 0.5
    limit: float = 60.0


Handler = Callable[[dict[str, str]], "Reply | Trickle"]


def json_reply(doc: object, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(doc).encode()


@dataclass
class FakeOAuth:
    port: int = 0
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metadata(self) -> dict[str, object]:
        return {
            "issuer": self.issuer,
            "device_authorization_endpoint": f"{self.issuer}/device_authorization",
            "token_endpoint": f"{self.issuer}/token",
            "revocation_endpoint": f"{self.issuer}/revoke",
        }

    def device_response(self, **changes: object) -> dict[str, object]:
        doc: dict[str, object] = {
            "device_code": "dc-" + "x" * 30,
            "user_code": "ABCD-EFGH",
            "verification_uri": f"{self.issuer}/device",
            "verification_uri_complete": f"{self.issuer}/device?user_code=ABCD-EFGH",
            "expires_in": 30,
            "interval": 1,
        }
        doc.update(changes)
        return {k: v for k, v in doc.items() if v is not None}

    def token_response(self, **changes: object) -> dict[str, object]:
        doc: dict[str, object] = {
            "access_token": "at-" + "y" * 30,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "rt-" + "z" * 30,
            "scope": "openid",
        }
        doc.update(changes)
        return {k: v for k, v in doc.items() if v is not None}

    def default_routes(self) -> None:
        self.routes.setdefault(
            "/.well-known/openid-configuration", lambda _: json_reply(self.metadata())
        )
        self.routes.setdefault(
            "/device_authorization", lambda _: json_reply(self.device_response())
        )
        self.routes.setdefault("/token", lambda _: json_reply(self.token_response()))
        self.routes.setdefault("/revoke", lambda _: (200, {}, b""))


@contextmanager
def fake_oauth(routes: dict[str, Handler] | None = None) -> Iterator[FakeOAuth]:
    fake = FakeOAuth(routes=dict(routes or {}))
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _serve(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            form = dict(urllib.parse.parse_qsl(body))
            fake.requests.append((path, form))
            route = fake.routes.get(path)
            reply = (404, {}, b"not found") if route is None else route(form)
            trickle = reply if isinstance(reply, Trickle) else None
            status, headers, payload = reply.reply if isinstance(reply, Trickle) else reply
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if trickle is None:
                self.wfile.write(payload)
                return
            self.wfile.flush()
            end = time.monotonic() + trickle.limit
            for byte in payload:
                if stopping.is_set() or time.monotonic() >= end:
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:  # the client gave up
                    return
                stopping.wait(trickle.every)

        do_GET = _serve
        do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    fake.default_routes()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
