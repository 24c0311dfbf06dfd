"""Run and drive the local OAuth 2.0 / OIDC test provider (``tests/harness/idp``).

The provider is a small Node program (``tests/harness/idp/server.mjs``) on the npm
package ``oidc-provider``; see ``tests/harness/idp/README.md``. This module starts it,
stops it, and plays the person who approves a device-flow login:

* :func:`start_idp` starts a provider on a free 127.0.0.1 port and returns an
  :class:`IdP` (a context manager) once it is ready.
* :func:`approve` / :func:`approve_complete` approve (or deny) a login with
  plain HTTP: verification page, user code form, dev login page, consent.
* :func:`approve_in_browser` does the same in a real headless Chromium.
* :func:`authorize` plays the person in a web login (authorization code grant): the
  provider's login and consent pages over plain HTTP, then the redirect delivered to the
  CLI's loopback listener (each end can be tampered with, for attack tests);
  :func:`authorize_in_browser` does it in headless Chromium, which follows the redirect itself.

Command line (used by ``make demo``)::

    python tests/harness/provider.py serve [--interval 1 ...]
    python tests/harness/provider.py approve VERIFICATION_URI_COMPLETE [--username U]

Only the standard library and httpx are used.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import TracebackType
from typing import IO, Self

import httpx

IDP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "idp")
"""Directory holding ``server.mjs``, ``approve-browser.mjs`` and ``package.json``."""

SERVER_SCRIPT = os.path.join(IDP_DIR, "server.mjs")
BROWSER_SCRIPT = os.path.join(IDP_DIR, "approve-browser.mjs")
AUTHORIZE_SCRIPT = os.path.join(IDP_DIR, "authorize-browser.mjs")
NODE_MODULES = os.path.join(IDP_DIR, "node_modules")
CHROMIUM = "/usr/bin/chromium"
"""The Chromium that :func:`approve_in_browser` drives (Debian's ``chromium``)."""

PUBLIC_CLIENT_ID = "vault-cli"
"""The provider's public client (device_code and refresh_token grants)."""

INTROSPECTOR_ID = "introspector"
INTROSPECTOR_SECRET = "introspector-secret"
"""The confidential client that may introspect and revoke any token."""

READY_TIMEOUT = 20.0
"""Seconds to wait for the provider's ready line."""

STOP_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when stopping the provider."""


class IdPError(RuntimeError):
    """The provider could not be started, or a helper could not do its job."""


class ApprovalError(IdPError):
    """:func:`approve` met a page it did not expect, or an error page."""


def _require_node_modules() -> None:
    """Raise :class:`IdPError` when ``tests/harness/idp/node_modules`` is missing."""
    if not os.path.isdir(os.path.join(NODE_MODULES, "oidc-provider")):
        raise IdPError(
            f"{NODE_MODULES} is missing (or has no oidc-provider): "
            "run `npm ci --prefix tests/harness/idp` from the repository root first"
        )


def _node() -> str:
    """Return the path of the ``node`` executable, or raise :class:`IdPError`."""
    node = shutil.which("node")
    if node is None:
        raise IdPError("`node` is not on PATH; the test provider needs Node.js 20 or later")
    return node


def _kill_group(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL it after ``grace`` s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class IdP:
    """A running test provider; stop it with :meth:`stop` or use it as a context manager.

    Attributes:
        issuer: the issuer identifier, ``http://127.0.0.1:PORT`` (no trailing slash).
        port: the TCP port it listens on (127.0.0.1 only).
        proc: the ``node server.mjs`` process (leader of its own process group).
    """

    issuer: str
    port: int
    proc: subprocess.Popen[bytes]

    def __init__(
        self, issuer: str, port: int, proc: subprocess.Popen[bytes], stderr_file: IO[bytes]
    ) -> None:
        """Wrap an already-started provider process (use :func:`start_idp`)."""
        self.issuer = issuer
        self.port = port
        self.proc = proc
        self._stderr_file = stderr_file

    def url(self, path: str) -> str:
        """Return the absolute URL of ``path`` (which starts with ``/``) on this provider."""
        return self.issuer + path

    def polls(self) -> dict[str, list[dict[str, object]]]:
        """Return the poll log from ``GET /_test/polls``.

        Keys are user codes as displayed (``XXXX-XXXX``) for device codes this
        provider issued, else the SHA-256 hex of the device_code. Each entry has
        ``t`` (server time, ms), ``result`` (``slow_down``,
        ``authorization_pending``, ``ok``, ``access_denied``, ...), ``status``
        (HTTP status), ``since_previous_ms`` and ``required_interval_ms``.
        """
        resp = httpx.get(self.url("/_test/polls"), timeout=10)
        resp.raise_for_status()
        data: dict[str, list[dict[str, object]]] = resp.json()
        return data

    def grants(self) -> dict[str, list[dict[str, object]]]:
        """Return the grant and revocation log from ``GET /_test/grants``.

        ``grants`` lists, in order, every ``refresh_token`` grant and every
        successful ``device_code`` grant: ``t`` (server time when the request
        arrived, ms), ``grant_type``, ``status``, ``result`` (``ok`` or the
        OAuth error), ``error_detail`` (oidc-provider's reason for an error,
        e.g. ``refresh token already used``), ``presented_sha256`` (the refresh
        token presented), ``issued_refresh_sha256`` and ``issued_access_sha256``.
        ``revocations`` lists every revocation request: ``t``, ``client_id``,
        ``status``, ``token_sha256``, ``token_type_hint`` and ``found`` (the
        kind of token it found, or None). Tokens appear only as SHA-256 hex.
        """
        resp = httpx.get(self.url("/_test/grants"), timeout=10)
        resp.raise_for_status()
        data: dict[str, list[dict[str, object]]] = resp.json()
        return data

    def requests(self) -> list[dict[str, object]]:
        """Every request the provider received (``/_test/*`` aside), in order: ``t``,
        ``method``, ``path`` (no query string), from ``GET /_test/requests``."""
        resp = httpx.get(self.url("/_test/requests"), timeout=10)
        resp.raise_for_status()
        data: list[dict[str, object]] = resp.json()["requests"]
        return data

    def introspect(self, token: str) -> dict[str, object]:
        """Introspect ``token`` (RFC 7662) as the confidential client ``introspector``."""
        resp = httpx.post(
            self.url("/token/introspection"),
            data={"token": token},
            auth=(INTROSPECTOR_ID, INTROSPECTOR_SECRET),
            timeout=10,
        )
        resp.raise_for_status()
        data: dict[str, object] = resp.json()
        return data

    def revoke(self, token: str, token_type_hint: str | None = None) -> None:
        """Revoke ``token`` (RFC 7009) as ``introspector``; this destroys its whole grant."""
        form = {"token": token}
        if token_type_hint is not None:
            form["token_type_hint"] = token_type_hint
        resp = httpx.post(
            self.url("/token/revocation"),
            data=form,
            auth=(INTROSPECTOR_ID, INTROSPECTOR_SECRET),
            timeout=10,
        )
        resp.raise_for_status()

    def stderr_text(self) -> str:
        """Return what the provider has written to stderr so far."""
        self._stderr_file.flush()
        with open(self._stderr_file.name, "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def stop(self) -> None:
        """Stop the provider: SIGTERM to its process group, SIGKILL after 5 s. Idempotent."""
        _kill_group(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if not self._stderr_file.closed:
            self._stderr_file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._stderr_file.name)

    def __enter__(self) -> Self:
        """Return self; the provider is already running."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the provider."""
        self.stop()

    def __repr__(self) -> str:
        """Show the issuer and process id."""
        return f"IdP(issuer={self.issuer!r}, pid={self.proc.pid})"


def _server_args(
    *,
    access_ttl: int,
    refresh_ttl: int,
    device_code_ttl: int,
    interval: int,
    slow_down_first: int,
    rotate_refresh: bool,
    grant_extra_scope: str | None,
    token_type: str | None,
    omit_scope: bool,
    port: int = 0,
    store_size: int = 1000,
    grant_extra_scope_on_refresh: str | None = None,
    refresh_delay_ms: int = 0,
) -> list[str]:
    """Translate keyword options into ``server.mjs`` command-line flags."""
    # --flag=value, so that a value starting with "-" is not taken for a flag.
    args = [
        f"--port={port}",
        f"--access-ttl={access_ttl}",
        f"--refresh-ttl={refresh_ttl}",
        f"--device-code-ttl={device_code_ttl}",
        f"--interval={interval}",
        f"--slow-down-first={slow_down_first}",
    ]
    if not rotate_refresh:
        args.append("--no-rotate-refresh")
    if grant_extra_scope is not None:
        args.append(f"--grant-extra-scope={grant_extra_scope}")
    if grant_extra_scope_on_refresh is not None:
        args.append(f"--grant-extra-scope-on-refresh={grant_extra_scope_on_refresh}")
    if token_type is not None:
        args.append(f"--token-type={token_type}")
    if omit_scope:
        args.append("--omit-scope")
    if store_size != 1000:
        args.append(f"--store-size={store_size}")
    if refresh_delay_ms:
        args.append(f"--refresh-delay-ms={refresh_delay_ms}")
    return args


def _read_ready_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes | None:
    """Read one line from ``proc.stdout`` within ``timeout`` s; None on timeout or EOF."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            buf += chunk
    return buf.split(b"\n", 1)[0]


def start_idp(
    *,
    access_ttl: int = 3600,
    refresh_ttl: int = 86400,
    device_code_ttl: int = 600,
    interval: int = 1,
    slow_down_first: int = 0,
    rotate_refresh: bool = True,
    grant_extra_scope: str | None = None,
    token_type: str | None = None,
    omit_scope: bool = False,
    port: int = 0,
    store_size: int = 1000,
    grant_extra_scope_on_refresh: str | None = None,
    refresh_delay_ms: int = 0,
) -> IdP:
    """Start ``node tests/harness/idp/server.mjs`` and return the running :class:`IdP`.

    Args:
        access_ttl: access token lifetime, seconds.
        refresh_ttl: refresh token lifetime, seconds.
        device_code_ttl: device code lifetime, seconds.
        interval: the ``interval`` the device authorization response carries.
        slow_down_first: answer ``slow_down`` to the first N polls of each device code.
        rotate_refresh: rotate refresh tokens on use (the old one becomes invalid).
        grant_extra_scope: a scope the server adds to every token response's ``scope``.
        grant_extra_scope_on_refresh: a scope it adds to refresh answers only (a login is
            granted what was asked; the refresh then over-grants).
        token_type: a value the server puts in ``token_type`` instead of ``Bearer``.
        omit_scope: the server removes ``scope`` from token responses.
        port: the port to listen on; 0 picks a free one.
        store_size: entries the provider's in-memory store keeps (oidc-provider's
            default, 1000, is about a hundred logins; a load test needs more).
        refresh_delay_ms: a slow provider: each refresh_token grant is made (the refresh
            token presented is spent, and the grant logged) at once, and answered this many
            milliseconds later.

    Raises:
        IdPError: ``tests/harness/idp/node_modules`` is missing, ``node`` is missing, or
            the provider did not print its ready line within 20 s (the message
            carries its stderr).
    """
    _require_node_modules()
    cmd = [
        _node(),
        SERVER_SCRIPT,
        *_server_args(
            access_ttl=access_ttl,
            refresh_ttl=refresh_ttl,
            device_code_ttl=device_code_ttl,
            interval=interval,
            slow_down_first=slow_down_first,
            rotate_refresh=rotate_refresh,
            grant_extra_scope=grant_extra_scope,
            token_type=token_type,
            omit_scope=omit_scope,
            port=port,
            store_size=store_size,
            grant_extra_scope_on_refresh=grant_extra_scope_on_refresh,
            refresh_delay_ms=refresh_delay_ms,
        ),
    ]
    # Kept open for the provider's lifetime and closed by IdP.stop().
    stderr_file = tempfile.NamedTemporaryFile(  # noqa: SIM115
        prefix="vault-idp-", suffix=".stderr", delete=False
    )
    proc = subprocess.Popen(
        cmd,
        cwd=IDP_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        start_new_session=True,
    )
    idp: IdP | None = None
    try:
        line = _read_ready_line(proc, READY_TIMEOUT)
        if line is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)  # EOF on stdout: let it finish exiting
            status = proc.poll()
            what = (
                f"exited with status {status} before it was ready"
                if status is not None
                else f"did not come up within {READY_TIMEOUT:g} s"
            )
            raise IdPError(
                f"the test provider ({' '.join(cmd)}) {what}; its stderr:\n"
                + _read_file(stderr_file.name)
            )
        try:
            ready = json.loads(line)
            issuer = str(ready["issuer"])
            bound = int(ready["port"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IdPError(f"unexpected ready line from the test provider: {line!r}") from exc
        idp = IdP(issuer, bound, proc, stderr_file)
        return idp
    finally:
        if idp is None:
            _kill_group(proc)
            if proc.stdout is not None:
                proc.stdout.close()
            stderr_file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stderr_file.name)


def _read_file(path: str) -> str:
    """Return a file's text, or an empty string when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------- approve (plain HTTP)


@dataclass
class _Form:
    """One HTML form: its attributes and its successful controls."""

    attrs: dict[str, str]
    fields: list[tuple[str, str]] = field(default_factory=list)
    """(name, value) of inputs, in document order (hidden, text, password ...)."""
    inputs: list[dict[str, str]] = field(default_factory=list)
    """Attributes of every input in the form."""

    @property
    def id(self) -> str:
        """The form's ``id`` attribute, or ``""``."""
        return self.attrs.get("id", "")

    def value(self, name: str) -> str | None:
        """Value of the first control named ``name``, or None."""
        for key, val in self.fields:
            if key == name:
                return val
        return None

    def has(self, name: str) -> bool:
        """Whether the form has a control named ``name``."""
        return any(inp.get("name") == name for inp in self.inputs)


@dataclass
class _Page:
    """What :func:`approve` needs to know about an HTML page."""

    url: httpx.URL
    status: int
    title: str = ""
    headings: list[str] = field(default_factory=list)
    forms: list[_Form] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    """(href, text) of every ``<a>``."""
    errors: list[str] = field(default_factory=list)
    """Text of ``<p class="red">`` messages (oidc-provider's user-code page errors)."""
    text: str = ""
    stopped: bool = False
    """A redirect to the ``stop_at`` URL of :class:`_Browser` (``url``), not followed."""

    def form_with(self, name: str, value: str | None = None) -> _Form | None:
        """First form with a control ``name`` (whose value is ``value``, if given)."""
        for form in self.forms:
            for inp in form.inputs:
                if inp.get("name") == name and (value is None or inp.get("value") == value):
                    return form
        return None


class _PageParser(HTMLParser):
    """Collects forms, inputs, links, headings, the title and error paragraphs."""

    def __init__(self, page: _Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self._form: _Form | None = None
        self._capture: str | None = None  # "title", "h1", "a", "red"
        self._buf: list[str] = []
        self._href = ""
        self._text: list[str] = []
        self._skip = 0  # inside <style> or <script>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "form":
            self._form = _Form(attrs=a)
            self.page.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._form.inputs.append(a)
            kind = a.get("type", "text").lower()
            name = a.get("name")
            if name and kind not in ("submit", "button", "image", "reset", "file"):
                if kind in ("checkbox", "radio") and "checked" not in a:
                    return
                self._form.fields.append((name, a.get("value", "")))
        elif tag in ("title", "h1"):
            self._start_capture(tag)
        elif tag == "a":
            self._href = a.get("href", "")
            self._start_capture("a")
        elif tag == "p" and "red" in a.get("class", "").split():
            self._start_capture("red")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip = max(0, self._skip - 1)
        elif tag == "form":
            self._form = None
        elif self._capture is not None and (
            tag == self._capture or (self._capture == "red" and tag == "p")
        ):
            text = " ".join("".join(self._buf).split())
            if self._capture == "title":
                self.page.title = text
            elif self._capture == "h1":
                self.page.headings.append(text)
            elif self._capture == "a":
                self.page.links.append((self._href, text))
            else:
                self.page.errors.append(text)
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._capture is not None:
            self._buf.append(data)
        self._text.append(data)

    def _start_capture(self, what: str) -> None:
        self._capture = what
        self._buf = []

    def close(self) -> None:
        super().close()
        self.page.text = " ".join(" ".join(self._text).split())


def _parse_page(resp: httpx.Response) -> _Page:
    """Parse an HTML response into a :class:`_Page`."""
    page = _Page(url=resp.url, status=resp.status_code)
    parser = _PageParser(page)
    parser.feed(resp.text)
    parser.close()
    return page


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Browser:
    """An httpx client with cookies that only ever talks to one loopback origin."""

    def __init__(self, start_url: str, deadline: float, stop_at: str | None = None) -> None:
        self.stop_at = None if stop_at is None else httpx.URL(stop_at)
        url = httpx.URL(start_url)
        if url.scheme not in ("http", "https") or not _is_loopback(url.host):
            raise ValueError(f"refusing to approve on a non-loopback URL: {start_url}")
        self.origin = (url.scheme, url.host, url.port)
        self.deadline = deadline
        self.client = httpx.Client(
            follow_redirects=False, headers={"User-Agent": "vault-test-approver"}
        )

    def close(self) -> None:
        """Close the underlying client."""
        self.client.close()

    def _check(self, url: httpx.URL) -> None:
        if (url.scheme, url.host, url.port) != self.origin:
            raise ApprovalError(f"refusing to follow a redirect off the provider's origin: {url}")

    def _timeout(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ApprovalError("timed out approving the device login")
        return remaining

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        data: Sequence[tuple[str, str]] | None = None,
    ) -> _Page:
        """Send a request and follow same-origin redirects (at most 20); return the final page."""
        target = httpx.URL(url)
        for _ in range(20):
            stop = self.stop_at
            if stop is not None and (target.scheme, target.host, target.port, target.path) == (
                stop.scheme,
                stop.host,
                stop.port,
                stop.path,
            ):
                return _Page(url=target, status=0, stopped=True)
            self._check(target)
            if data is not None and method == "POST":
                body = urllib.parse.urlencode(list(data))
                resp = self.client.request(
                    method,
                    target,
                    content=body.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=self._timeout(),
                )
            else:
                resp = self.client.request(method, target, timeout=self._timeout())
            if resp.is_redirect:
                location = resp.headers.get("location", "")
                target = resp.url.join(location)
                method, data = "GET", None
                continue
            return _parse_page(resp)
        raise ApprovalError(f"too many redirects from {url}")

    def submit(self, page: _Page, form: _Form, overrides: dict[str, str] | None = None) -> _Page:
        """Submit ``form`` from ``page`` with its fields, replacing those in ``overrides``."""
        overrides = dict(overrides or {})
        fields: list[tuple[str, str]] = []
        for name, val in form.fields:
            if name in overrides:
                fields.append((name, overrides.pop(name)))
            else:
                fields.append((name, val))
        fields.extend(overrides.items())
        action = page.url.join(form.attrs.get("action", "") or str(page.url))
        method = form.attrs.get("method", "get").upper()
        if method == "POST":
            return self.request("POST", action, fields)
        return self.request("GET", action.copy_merge_params(dict(fields)))


def _describe(page: _Page) -> str:
    """A short description of a page for error messages."""
    return f"{page.status} {page.url} title={page.title!r} text={page.text[:300]!r}"


def approve(
    verification_uri: str,
    user_code: str | None = None,
    *,
    username: str = "alice",
    deny: bool = False,
    timeout: float = 10,
) -> None:
    """Act as the person who approves (or denies) a device-flow login, over plain HTTP.

    Opens ``verification_uri``, enters ``user_code`` in the user code form
    (with its xsrf field), confirms the device, signs in on the dev login page
    as ``username`` (any password) and confirms the consent page. With
    ``deny=True`` it presses "Cancel" on the consent page instead, so the
    client's next poll gets ``access_denied``.

    ``verification_uri`` may be ``verification_uri_complete`` (it already
    carries ``?user_code=``); then ``user_code`` may be omitted.

    Raises:
        ValueError: the URL is not on a loopback host, or no user code is known.
        ApprovalError: an unexpected or error page, a redirect off the
            provider's origin, or the ``timeout`` (seconds, whole flow) ran out.
    """
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(verification_uri).query))
    if user_code is None and "user_code" not in query:
        raise ValueError("no user_code given and none in the verification URI")

    browser = _Browser(verification_uri, time.monotonic() + timeout)
    try:
        page = browser.request("GET", verification_uri)
        for _ in range(30):
            if page.status >= 400 and not page.forms:
                raise ApprovalError(f"error page: {_describe(page)}")
            if any("Sign-in Success" in h for h in page.headings):
                if deny:
                    raise ApprovalError("the login succeeded although deny=True")
                return
            if page.errors:
                message = "; ".join(page.errors)
                if deny and "interrupted" in message:
                    return  # oidc-provider's page after an aborted interaction
                raise ApprovalError(f"verification page reports: {message} ({_describe(page)})")

            code_form = next((f for f in page.forms if f.id == "op.deviceInputForm"), None)
            confirm_form = next((f for f in page.forms if f.id == "op.deviceConfirmForm"), None)
            login_form = page.form_with("prompt", "login")
            consent_form = page.form_with("prompt", "consent")

            if code_form is not None:
                code = user_code if user_code is not None else query["user_code"]
                page = browser.submit(page, code_form, {"user_code": code})
            elif confirm_form is not None:
                page = browser.submit(page, confirm_form)
            elif login_form is not None:
                page = browser.submit(
                    page, login_form, {"login": username, "password": "any-password"}
                )
            elif consent_form is not None:
                if deny:
                    abort = next(
                        (href for href, _ in page.links if href.rstrip("/").endswith("/abort")),
                        None,
                    )
                    if abort is None:
                        raise ApprovalError(f"no Cancel link on consent page: {_describe(page)}")
                    page = browser.request("GET", page.url.join(abort))
                else:
                    page = browser.submit(page, consent_form)
            elif len(page.forms) == 1 and all(
                inp.get("type", "").lower() == "hidden" for inp in page.forms[0].inputs
            ):
                # The self-submitting form_post page ("Submitting Callback").
                page = browser.submit(page, page.forms[0])
            else:
                raise ApprovalError(f"unexpected page: {_describe(page)}")
        raise ApprovalError("too many pages without reaching the end of the login")
    except httpx.HTTPError as exc:
        raise ApprovalError(f"HTTP error while approving: {exc}") from exc
    finally:
        browser.close()


def approve_complete(
    verification_uri_complete: str,
    *,
    username: str = "alice",
    deny: bool = False,
    timeout: float = 10,
) -> None:
    """:func:`approve` given ``verification_uri_complete`` (the user code is in the URL)."""
    approve(verification_uri_complete, None, username=username, deny=deny, timeout=timeout)


# --------------------------------------------------------------------------- web login (HTTP)


@dataclass
class CallbackResult:
    """What the CLI's loopback listener answered the redirect :func:`authorize` delivered."""

    callback_url: str
    """The redirect as the provider sent it (before ``tamper_callback``)."""
    delivered_url: str
    """The URL requested from the listener."""
    status: int
    text: str
    headers: dict[str, str]


def _query_param(url: str, name: str) -> str | None:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(name)
    return values[0] if values else None


def authorize(
    authorization_url: str,
    *,
    username: str = "alice",
    deny: bool = False,
    tamper_request: Callable[[str], str] | None = None,
    tamper_callback: Callable[[str], str] | None = None,
    deliver: bool = True,
    timeout: float = 20,
) -> CallbackResult:
    """Act as the person in a web login (authorization code grant), over plain HTTP.

    Opens ``authorization_url`` (after ``tamper_request``, if given, rewrote it: a hostile
    page changing what is asked), signs in on the provider's dev login page as ``username``,
    confirms the consent page (or presses Cancel with ``deny=True``) and follows the
    provider's redirect to the URL's ``redirect_uri`` (the CLI's loopback listener) after
    ``tamper_callback``, if given, rewrote it (an attacker in the browser's path). With
    ``deliver=False`` the redirect is returned without being requested.

    Raises:
        ValueError: the URL is not on a loopback host, or names no redirect_uri.
        ApprovalError: an unexpected or error page, a redirect off the provider's origin
            other than to the redirect_uri, or the ``timeout`` (seconds) ran out.
    """
    url = tamper_request(authorization_url) if tamper_request else authorization_url
    redirect_uri = _query_param(url, "redirect_uri")
    if redirect_uri is None or not _is_loopback(httpx.URL(redirect_uri).host):
        raise ValueError(f"no loopback redirect_uri in {url}")
    browser = _Browser(url, time.monotonic() + timeout, stop_at=redirect_uri)
    try:
        page = browser.request("GET", url)
        for _ in range(20):
            if page.stopped:
                break
            if page.status >= 400 and not page.forms:
                raise ApprovalError(f"error page: {_describe(page)}")
            login_form = page.form_with("prompt", "login")
            consent_form = page.form_with("prompt", "consent")
            if login_form is not None:
                page = browser.submit(
                    page, login_form, {"login": username, "password": "any-password"}
                )
            elif consent_form is not None:
                if deny:
                    abort = next(
                        (href for href, _ in page.links if href.rstrip("/").endswith("/abort")),
                        None,
                    )
                    if abort is None:
                        raise ApprovalError(f"no Cancel link on consent page: {_describe(page)}")
                    page = browser.request("GET", page.url.join(abort))
                else:
                    page = browser.submit(page, consent_form)
            else:
                raise ApprovalError(f"unexpected page: {_describe(page)}")
        else:
            raise ApprovalError("too many pages without reaching the redirect")
    except httpx.HTTPError as exc:
        raise ApprovalError(f"HTTP error while authorizing: {exc}") from exc
    finally:
        browser.close()
    callback = str(page.url)
    target = tamper_callback(callback) if tamper_callback else callback
    if not deliver:
        return CallbackResult(callback, target, 0, "", {})
    resp = deliver_callback(target)
    return CallbackResult(callback, target, resp.status_code, resp.text, dict(resp.headers))


def deliver_callback(url: str, timeout: float = 20) -> httpx.Response:
    """GET ``url`` (a loopback callback) as a browser would, without following redirects."""
    if not _is_loopback(httpx.URL(url).host):
        raise ValueError(f"refusing to deliver a callback off this machine: {url}")
    return httpx.get(url, timeout=timeout, follow_redirects=False)


def authorize_in_browser(
    authorization_url: str, *, username: str = "alice", timeout: float = 60
) -> str:
    """A web login in a real headless Chromium: ``node authorize-browser.mjs URL USERNAME``
    signs in, consents, lets Chromium follow the redirect to the CLI's loopback listener and
    returns the text of the page the listener answered.

    Raises:
        ValueError: the URL or its redirect_uri is not on a loopback host.
        IdPError: node_modules or Chromium is missing, or the script failed or timed out.
    """
    redirect_uri = _query_param(authorization_url, "redirect_uri")
    if not _is_loopback(httpx.URL(authorization_url).host) or redirect_uri is None:
        raise ValueError(f"refusing to authorize on a non-loopback URL: {authorization_url}")
    if not _is_loopback(httpx.URL(redirect_uri).host):
        raise ValueError(f"refusing a non-loopback redirect_uri: {redirect_uri}")
    return _run_browser_script(AUTHORIZE_SCRIPT, [authorization_url, username], timeout)


# --------------------------------------------------------------------------- approve (browser)


def chromium_available() -> bool:
    """Whether the Chromium that :func:`approve_in_browser` needs is installed."""
    return os.access(CHROMIUM, os.X_OK)


def approve_in_browser(
    verification_uri_complete: str, *, username: str = "alice", timeout: float = 60
) -> None:
    """Approve a device-flow login in a real headless Chromium.

    Runs ``node tests/harness/idp/approve-browser.mjs URL USERNAME`` (playwright-core
    driving ``/usr/bin/chromium`` with a fresh temporary profile). The script
    confirms the device, signs in as ``username`` and confirms the consent page.

    Raises:
        ValueError: the URL is not on a loopback host.
        IdPError: node_modules or Chromium is missing, the script failed
            (its stderr is in the message) or ran longer than ``timeout`` s.
    """
    if not _is_loopback(httpx.URL(verification_uri_complete).host):
        raise ValueError(f"refusing to approve on a non-loopback URL: {verification_uri_complete}")
    _require_node_modules()
    if not os.path.isdir(os.path.join(NODE_MODULES, "playwright-core")):
        raise IdPError("playwright-core is missing: run `npm ci --prefix tests/harness/idp`")
    if not chromium_available():
        raise IdPError(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    env = dict(os.environ)
    env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    env["APPROVE_TIMEOUT_MS"] = str(int(max(timeout - 5, 5) * 1000))
    proc = subprocess.Popen(
        [_node(), BROWSER_SCRIPT, verification_uri_complete, username],
        cwd=IDP_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc, grace=2)
        out, err = proc.communicate()
        raise IdPError(
            f"approve-browser.mjs did not finish within {timeout:g} s; stderr:\n"
            + err.decode("utf-8", "replace")
        ) from None
    if proc.returncode != 0:
        raise IdPError(
            f"approve-browser.mjs failed with status {proc.returncode}; stderr:\n"
            + err.decode("utf-8", "replace")
            + out.decode("utf-8", "replace")
        )


def _run_browser_script(script: str, args: list[str], timeout: float) -> str:
    """Run a playwright-core script of tests/harness/idp under node; its stdout."""
    _require_node_modules()
    if not os.path.isdir(os.path.join(NODE_MODULES, "playwright-core")):
        raise IdPError("playwright-core is missing: run `npm ci --prefix tests/harness/idp`")
    if not chromium_available():
        raise IdPError(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    env = dict(os.environ)
    env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    env["APPROVE_TIMEOUT_MS"] = str(int(max(timeout - 5, 5) * 1000))
    name = os.path.basename(script)
    proc = subprocess.Popen(
        [_node(), script, *args],
        cwd=IDP_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc, grace=2)
        out, err = proc.communicate()
        raise IdPError(
            f"{name} did not finish within {timeout:g} s; stderr:\n"
            + err.decode("utf-8", "replace")
        ) from None
    if proc.returncode != 0:
        raise IdPError(
            f"{name} failed with status {proc.returncode}; stderr:\n"
            + err.decode("utf-8", "replace")
            + out.decode("utf-8", "replace")
        )
    return out.decode("utf-8", "replace")


# --------------------------------------------------------------------------- command line


def _main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: ``serve`` a provider, or ``approve`` a login."""
    parser = argparse.ArgumentParser(
        prog="idp_harness.py", description="Run or drive vault's local OAuth test provider."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the provider and wait for Ctrl-C")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument("--access-ttl", type=int, default=3600)
    serve.add_argument("--refresh-ttl", type=int, default=86400)
    serve.add_argument("--device-code-ttl", type=int, default=600)
    serve.add_argument("--interval", type=int, default=1)
    serve.add_argument("--slow-down-first", type=int, default=0)
    serve.add_argument("--no-rotate-refresh", action="store_true")
    serve.add_argument("--grant-extra-scope", default=None)
    serve.add_argument("--token-type", default=None)
    serve.add_argument("--omit-scope", action="store_true")
    serve.add_argument("--store-size", type=int, default=1000)

    appr = sub.add_parser("approve", help="approve a device login over plain HTTP")
    appr.add_argument("url", help="verification_uri_complete")
    appr.add_argument("--username", default="alice")
    appr.add_argument("--deny", action="store_true", help="deny instead of approving")
    appr.add_argument("--browser", action="store_true", help="use headless Chromium")
    appr.add_argument("--timeout", type=float, default=None)

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.browser:
            approve_in_browser(args.url, username=args.username, timeout=args.timeout or 60)
        else:
            approve_complete(
                args.url, username=args.username, deny=args.deny, timeout=args.timeout or 10
            )
    except (IdPError, ValueError) as exc:
        print(f"idp_harness: {exc}", file=sys.stderr)
        return 1
    print("denied" if args.deny else "approved", flush=True)
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Run a provider until SIGINT/SIGTERM; print its issuer on stdout."""
    idp = start_idp(
        access_ttl=args.access_ttl,
        refresh_ttl=args.refresh_ttl,
        device_code_ttl=args.device_code_ttl,
        interval=args.interval,
        slow_down_first=args.slow_down_first,
        rotate_refresh=not args.no_rotate_refresh,
        grant_extra_scope=args.grant_extra_scope,
        token_type=args.token_type,
        omit_scope=args.omit_scope,
        port=args.port,
        store_size=args.store_size,
    )
    stop = False

    def _on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    previous = signal.signal(signal.SIGTERM, _on_term)
    with idp:
        print(idp.issuer, flush=True)
        print(f"test provider running at {idp.issuer} (Ctrl-C to stop)", file=sys.stderr)
        try:
            while not stop and idp.proc.poll() is None:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        if idp.proc.poll() not in (None, 0):
            print(
                f"provider exited with {idp.proc.returncode}:\n{idp.stderr_text()}",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
