"""A GitHub emulator on 127.0.0.1 (plain http; vault is configured with ``preset: github`` and
``host: 127.0.0.1:PORT``), with GitHub's documented quirks for both kinds of user token:

- the device flow (POST /login/device/code, POST /login/oauth/access_token): errors are sent
  with HTTP 200 (``authorization_pending``, ``slow_down`` with the new ``interval``,
  ``expired_token``, ``access_denied``, ``incorrect_device_code``,
  ``incorrect_client_credentials``, ``device_flow_disabled``); a poll sooner than the interval
  answers ``slow_down`` and adds 5 s to it, as GitHub does; the answer is form-encoded unless
  the request says ``Accept: application/json``;
- an OAuth App: ``gho_`` tokens that never expire, scopes comma-separated in the answer;
- a GitHub App: ``ghu_`` tokens that expire (28800 s) with ``ghr_`` refresh tokens
  (15897600 s) that rotate on every refresh (the old pair is dead after it), ``scope: ""``,
  and ``bad_refresh_token`` (HTTP 200) for a refresh token used twice, revoked or unknown;
- GET /api/v3/user with ``X-OAuth-Scopes`` (OAuth App tokens; none for a GitHub App's);
  401 ``Bad credentials`` for a dead token;
- DELETE /api/v3/applications/{client_id}/token, Basic client_id:client_secret and
  ``{"access_token": ...}``: 204, or 404 for a token it does not know (deleting a GitHub App's
  access token ends its refresh token too: the emulator's reading of "revoke a single token");
- the person's page, /login/device: GET shows a form, POST ``user_code`` and ``authorize``
  (1 or 0) approves or denies, as a person does (:meth:`GitHub.approve` posts it).

Written from GitHub's docs: "Authorizing OAuth apps" (device flow, error codes), "Refreshing
user access tokens", "REST API endpoints for OAuth authorizations" (Delete an app token).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

ACCESS_TTL = 28800
REFRESH_TTL = 15897600
DEVICE_TTL = 900


@dataclass
class App:
    """A registered app: ``kind`` is "oauth_app" (gho_) or "app" (a GitHub App: ghu_/ghr_)."""

    client_id: str
    client_secret: str
    kind: str
    device_flow: bool = True


@dataclass
class Device:
    device_code: str
    user_code: str
    app: App
    scopes: tuple[str, ...]
    expires_at: float
    interval: int
    state: str = "pending"  # pending | approved | denied | used
    user: str = "octocat"
    last_poll: float | None = None


@dataclass
class Token:
    value: str
    app: App
    user: str
    scopes: tuple[str, ...]
    expires_at: float | None
    refresh: str | None = None
    alive: bool = True

    def live(self) -> bool:
        return self.alive and (self.expires_at is None or time.time() < self.expires_at)


@dataclass
class Seen:
    """One request as the emulator received it (a form or JSON body, the headers)."""

    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    body: dict[str, object] | None = None
    answer: str = ""  # the OAuth error answered, "token" for a token, or the HTTP status


@dataclass
class GitHub:
    port: int = 0
    apps: dict[str, App] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: dict[str, Token] = field(default_factory=dict)  # ghr_ -> its access token
    used_refresh: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    interval: int = 1
    auto_approve: bool = False  # approve at the first poll (as if the person were quick)
    slow_down_polls: set[int] = field(default_factory=set)  # answer slow_down at these polls
    extra_scopes: tuple[str, ...] = ()  # granted to an OAuth App beyond what was asked
    lock: threading.Lock = field(default_factory=threading.Lock)
    polls: int = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def add_app(self, kind: str, *, device_flow: bool = True) -> App:
        prefix = "Iv1." if kind == "app" else "Ov23li"
        app = App(prefix + secrets.token_hex(8), secrets.token_hex(20), kind, device_flow)
        self.apps[app.client_id] = app
        return app

    # --- what a test does to GitHub's state ---------------------------------------------

    def approve(self, user_code: str, *, deny: bool = False) -> int:
        """The person enters the code on /login/device and authorizes (or cancels)."""
        resp = httpx.post(
            f"{self.base}/login/device",
            data={"user_code": user_code, "authorize": "0" if deny else "1"},
        )
        return resp.status_code

    def kill(self, value: str) -> None:
        """The person revokes the token at GitHub (its settings page)."""
        with self.lock:
            token = self.tokens.get(value) or self.refresh_tokens.get(value)
            if token is not None:
                token.alive = False
                if token.refresh:
                    self.used_refresh.add(token.refresh)

    def set_scopes(self, value: str, scopes: tuple[str, ...]) -> None:
        """The authorization's scopes change at GitHub (a re-authorization, an admin)."""
        with self.lock:
            self.tokens[value].scopes = scopes

    def answers(self, path: str) -> list[str]:
        return [s.answer for s in self.seen if s.path == path]

    # --- the endpoints ------------------------------------------------------------------

    def device_code(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return 200, {"error": "incorrect_client_credentials"}
        if not app.device_flow:
            return 200, {"error": "device_flow_disabled"}
        code = secrets.token_hex(20)
        user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
        scopes = tuple(s for s in form.get("scope", "").replace(",", " ").split() if s)
        self.devices[code] = Device(
            code, user_code, app, scopes, time.time() + DEVICE_TTL, self.interval
        )
        return 200, {
            "device_code": code,
            "user_code": user_code,
            "verification_uri": f"{self.base}/login/device",
            "expires_in": DEVICE_TTL,
            "interval": self.interval,
        }

    def access_token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        app = self.apps.get(form.get("client_id", ""))
        if app is None or ("client_secret" in form and form["client_secret"] != app.client_secret):
            return 200, {"error": "incorrect_client_credentials"}
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self._poll(app, form.get("device_code", ""))
        if grant == "refresh_token":
            return self._refresh(app, form.get("refresh_token", ""))
        return 200, {"error": "unsupported_grant_type"}

    def _poll(self, app: App, code: str) -> tuple[int, dict[str, object]]:
        device = self.devices.get(code)
        if device is None or device.app is not app or device.state == "used":
            return 200, {"error": "incorrect_device_code"}
        now = time.time()
        if now >= device.expires_at:
            return 200, {"error": "expired_token"}
        self.polls += 1
        early = device.last_poll is not None and now - device.last_poll < device.interval - 0.1
        device.last_poll = now
        if early or self.polls in self.slow_down_polls:
            device.interval += 5
            return 200, {"error": "slow_down", "interval": device.interval}
        if device.state == "pending" and self.auto_approve:
            device.state = "approved"
        if device.state == "pending":
            return 200, {"error": "authorization_pending"}
        if device.state == "denied":
            return 200, {"error": "access_denied"}
        device.state = "used"
        return 200, self._issue(app, device.user, device.scopes)

    def _issue(self, app: App, user: str, scopes: tuple[str, ...]) -> dict[str, object]:
        if app.kind == "oauth_app":
            scopes = tuple(dict.fromkeys(scopes + self.extra_scopes))
            token = Token("gho_" + secrets.token_urlsafe(27), app, user, scopes, None)
            self.tokens[token.value] = token
            return {"access_token": token.value, "token_type": "bearer", "scope": ",".join(scopes)}
        refresh = "ghr_" + secrets.token_urlsafe(56)
        token = Token(
            "ghu_" + secrets.token_urlsafe(27), app, user, (), time.time() + ACCESS_TTL, refresh
        )
        self.tokens[token.value] = token
        self.refresh_tokens[refresh] = token
        return {
            "access_token": token.value,
            "expires_in": ACCESS_TTL,
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TTL,
            "scope": "",
            "token_type": "bearer",
        }

    def _refresh(self, app: App, refresh: str) -> tuple[int, dict[str, object]]:
        old = self.refresh_tokens.get(refresh)
        if old is None or old.app is not app or refresh in self.used_refresh:
            return 200, {
                "error": "bad_refresh_token",
                "error_description": "The refresh token passed is incorrect or expired.",
            }
        self.used_refresh.add(refresh)
        old.alive = False  # "that refresh token and the old user access token will no longer work"
        return 200, self._issue(app, old.user, old.scopes)

    def user(self, headers: dict[str, str]) -> tuple[int, dict[str, str], dict[str, object]]:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        token = self.tokens.get(value) if scheme.lower() in ("bearer", "token") else None
        if token is None or not token.live():
            return 401, {}, {"message": "Bad credentials"}
        extra = {} if token.app.kind == "app" else {"X-OAuth-Scopes": ", ".join(token.scopes)}
        return 200, extra, {"login": token.user, "id": 1}

    def delete_token(
        self, client_id: str, headers: dict[str, str], body: dict[str, object] | None
    ) -> int:
        app = self.apps.get(client_id)
        expected = (
            None
            if app is None
            else "Basic " + base64.b64encode(f"{client_id}:{app.client_secret}".encode()).decode()
        )
        if expected is None or headers.get("authorization") != expected:
            return 404  # GitHub hides an app from the wrong credentials
        value = (body or {}).get("access_token")
        token = self.tokens.get(value) if isinstance(value, str) else None
        if token is None or token.app is not app or not token.live():
            return 404
        token.alive = False
        if token.refresh:
            self.used_refresh.add(token.refresh)
        return 204


@contextmanager
def github_emulator(**settings: object) -> Iterator[GitHub]:
    """A running emulator on 127.0.0.1 (an ephemeral port); stopped on exit."""
    gh = GitHub(**settings)  # type: ignore[arg-type]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _reply(self, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
            wants_json = "application/json" in self.headers.get("Accept", "")
            if isinstance(doc, dict) and not wants_json and self.path.startswith("/login/"):
                payload = urllib.parse.urlencode(doc).encode()
                kind = "application/x-www-form-urlencoded; charset=utf-8"
            elif isinstance(doc, str):
                payload, kind = doc.encode(), "text/html; charset=utf-8"
            elif doc is None:
                payload, kind = b"", ""
            else:
                payload, kind = json.dumps(doc).encode(), "application/json; charset=utf-8"
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _serve(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            form: dict[str, str] = {}
            body: dict[str, object] | None = None
            if "json" in headers.get("content-type", ""):
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                body = parsed if isinstance(parsed, dict) else None
            else:
                form = dict(urllib.parse.parse_qsl(raw))
            seen = Seen(self.command, path, form, headers, body)
            with gh.lock:
                gh.seen.append(seen)
                self._route(seen)

        def _route(self, seen: Seen) -> None:
            path, method = seen.path, seen.method
            if method == "POST" and path == "/login/device/code":
                status, doc = gh.device_code(seen.form)
            elif method == "POST" and path == "/login/oauth/access_token":
                status, doc = gh.access_token(seen.form)
            elif path == "/login/device":
                self._person(seen)
                return
            elif method == "GET" and path == "/api/v3/user":
                status, extra, doc = gh.user(seen.headers)
                seen.answer = str(status)
                self._reply(status, doc, extra)
                return
            elif (
                method == "DELETE"
                and path.startswith("/api/v3/applications/")
                and path.endswith("/token")
            ):
                client_id = urllib.parse.unquote(path.split("/")[4])
                status = gh.delete_token(client_id, seen.headers, seen.body)
                seen.answer = str(status)
                self._reply(status, None if status == 204 else {"message": "Not Found"})
                return
            else:
                seen.answer = "404"
                self._reply(404, {"message": "Not Found"})
                return
            error = doc.get("error")
            seen.answer = str(error) if error else "token" if "access_token" in doc else "ok"
            self._reply(status, doc)

        def _person(self, seen: Seen) -> None:
            if seen.method == "GET":
                seen.answer = "page"
                self._reply(
                    200,
                    "<!doctype html><title>Device activation</title><form method=post>"
                    "<input name=user_code><button name=authorize value=1>Authorize</button>"
                    "</form>",
                )
                return
            code = seen.form.get("user_code", "")
            device = next((d for d in gh.devices.values() if d.user_code == code), None)
            if device is None or device.state != "pending":
                seen.answer = "unknown code"
                self._reply(404, "<!doctype html><title>Not found</title>")
                return
            device.state = "approved" if seen.form.get("authorize") == "1" else "denied"
            seen.answer = device.state
            self._reply(200, f"<!doctype html><title>{device.state}</title>")

        do_GET = _serve
        do_POST = _serve
        do_DELETE = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gh.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gh
    finally:
        server.shutdown()
        server.server_close()
