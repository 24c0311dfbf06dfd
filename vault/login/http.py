"""HTTP for talking to identity providers: bounded, no redirects, https except on loopback.

Every response body is read with a size limit and parsed strictly at this edge; the rest of
the program sees typed values or a ``NetworkError``/``AuthError`` that names what was wrong.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault import __version__
from vault.errors import NetworkError, UsageError
from vault.util.text import clean

if TYPE_CHECKING:
    import httpx

MAX_BODY = 1024 * 1024
USER_AGENT = f"vault/{__version__}"


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, what: str, error: type[Exception] = NetworkError) -> str:
    """Accept https URLs, and http only to a loopback address (tests, the demo)."""
    if not isinstance(url, str) or len(url) > 2048:
        raise error(f"{what} is not a usable URL")
    try:
        parts = urllib.parse.urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # "https://[::1", or a netloc that NFKC-normalises to a delimiter
        raise error(f"{what} is not a usable URL: {clean(url, 200)!r}") from None
    # Controls, and C1, bidi and zero-width characters (what clean() strips): never in a URL
    # a person is shown or sent to.
    unprintable = any(ord(c) < 0x21 or ord(c) == 0x7F for c in url) or clean(url, 4096) != url
    if not hostname or unprintable:
        raise error(f"{what} is not a usable URL: {clean(url, 200)!r}")
    if parts.username or parts.password:
        raise error(f"{what} must not carry credentials: {clean(hostname, 200)}")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and is_loopback_host(hostname):
        return url
    raise error(
        f"{what} must use https (plain http is allowed only on loopback): {clean(url, 200)!r}"
    )


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the scheme's default port filled in; None if unusable."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("https", "http") or not host or parts.username or parts.password:
        return None
    return scheme, host.lower(), port if port is not None else (443 if scheme == "https" else 80)


def host_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.netloc.rpartition("@")[2]


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    url: str
    headers: Mapping[str, str]

    def json_object(self, *, what: str) -> dict[str, Any]:
        try:
            doc = json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deeply
            raise NetworkError(
                f"{what}: the provider answered HTTP {self.status} with a body that is not JSON",
                code="invalid_response",
            ) from None
        if not isinstance(doc, dict):
            raise NetworkError(
                f"{what}: the provider answered JSON that is not an object",
                code="invalid_response",
            )
        return doc

    def form_or_json(self, *, what: str) -> dict[str, Any]:
        """GitHub answers form-encoded bodies unless asked for JSON; accept both."""
        if "application/x-www-form-urlencoded" in self.content_type or (
            "json" not in self.content_type
            and self.body[:1] not in (b"{", b"[", b" ")
            and b"=" in self.body[:200]
        ):
            try:
                text = self.body.decode("ascii")
                pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True)
            except (UnicodeDecodeError, ValueError):
                raise NetworkError(
                    f"{what}: the provider's form-encoded answer is malformed",
                    code="invalid_response",
                ) from None
            return dict(pairs)
        return self.json_object(what=what)


class _Deadline:
    """The end of the request in flight on one client: every socket operation of that request
    (connect, TLS handshake, each write, each read) gets at most what is left until it."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.end = float("inf")

    def start(self, within: object) -> None:
        import time

        seconds = self.total
        if isinstance(within, (int, float)) and not isinstance(within, bool):
            seconds = min(seconds, max(0.0, float(within)))
        self.end = time.monotonic() + seconds

    def cap(self, timeout: float | None, expired: type[Exception]) -> float:
        import time

        left = self.end - time.monotonic()
        if left <= 0:
            raise expired("the request's total deadline passed")
        return left if timeout is None else min(timeout, left)


def _deadline_backend(deadline: _Deadline) -> Any:
    """An httpcore network backend whose every operation is capped by ``deadline``."""
    import httpcore

    write_step = 64 * 1024  # a long write is re-capped every 64 KiB

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner: httpcore.NetworkStream) -> None:
            self.inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self.inner.read(max_bytes, deadline.cap(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            for at in range(0, len(buffer), write_step):
                piece = buffer[at : at + write_step]
                self.inner.write(piece, deadline.cap(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self.inner.close()

        def start_tls(
            self,
            ssl_context: Any,
            server_hostname: str | None = None,
            timeout: float | None = None,
        ) -> httpcore.NetworkStream:
            capped = deadline.cap(timeout, httpcore.ConnectTimeout)
            return Stream(self.inner.start_tls(ssl_context, server_hostname, capped))

        def get_extra_info(self, info: str) -> Any:
            return self.inner.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self) -> None:
            self.inner = httpcore.SyncBackend()

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.NetworkStream:
            capped = deadline.cap(timeout, httpcore.ConnectTimeout)
            return Stream(self.inner.connect_tcp(host, port, capped, local_address, socket_options))

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> httpcore.NetworkStream:
            raise httpcore.ConnectError("vault does not talk over unix sockets")

        def sleep(self, seconds: float) -> None:
            self.inner.sleep(seconds)

    return Backend()


def https_proxy() -> str | None:
    """The proxy for https requests: HTTPS_PROXY, else ALL_PROXY (lower case first, as curl
    and urllib read them). HTTP_PROXY is never used: plain http goes only to loopback, and
    loopback never goes through a proxy."""
    import urllib.request

    env = urllib.request.getproxies_environment()
    return env.get("https") or env.get("all") or None


def _bypasses_proxy(host: str) -> bool:
    import urllib.request

    # NO_PROXY/no_proxy, read as urllib reads it (the function is public, not in typeshed).
    no_proxy = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return is_loopback_host(host) or bool(no_proxy(host))


def client(timeout: float = 30.0) -> httpx.Client:
    """A client for talking to providers. ``timeout`` is the TOTAL time one request may take,
    from connecting to the last byte of the answer (not a per-read timeout a server can
    renew forever by trickling). Proxies: never for loopback, and only for https (where the
    proxy sees a CONNECT to host:port and an encrypted tunnel, never a token)."""
    import sys

    import httpx

    hooks: dict[str, list[Any]] = {}
    if "vault.util.log" in sys.modules:  # -v/--debug configured logging: trace HTTP, redacted
        from vault.util.log import http_event_hooks

        hooks = http_event_hooks()
    deadline = _Deadline(timeout)
    direct = _transport(deadline, None)
    proxy_url = https_proxy()
    proxied: list[httpx.HTTPTransport] = []  # made when first needed: a proxy setting vault
    # cannot use fails the https request that would use it, never a loopback one

    class Route(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            deadline.start(request.extensions.get("vault_within"))
            via = direct
            if (
                proxy_url is not None
                and request.url.scheme == "https"
                and not _bypasses_proxy(request.url.host)
            ):
                if not proxied:
                    proxied.append(_transport(deadline, proxy_url))
                via = proxied[0]
            return via.handle_request(request)

        def close(self) -> None:
            direct.close()
            for transport in proxied:
                transport.close()

    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        trust_env=False,  # proxies are chosen above; SSL_CERT_FILE/DIR are read below
        transport=Route(),
        event_hooks=hooks,
    )


def _transport(deadline: _Deadline, proxy: str | None) -> httpx.HTTPTransport:
    import httpx

    if proxy is not None:
        scheme = urllib.parse.urlsplit(proxy).scheme.lower()
        if scheme not in ("http", "https"):
            raise NetworkError(
                f"the https proxy {clean(proxy, 100)!r} is not an http(s):// proxy; vault "
                "supports only those (unset HTTPS_PROXY/ALL_PROXY or point it at one)",
                code="proxy",
            )
    try:
        transport = httpx.HTTPTransport(trust_env=True, proxy=proxy)
    except (ValueError, httpx.InvalidURL):
        raise NetworkError(
            f"the https proxy setting {clean(proxy or '', 100)!r} is not a usable URL",
            code="proxy",
        ) from None
    # httpx builds the httpcore pool without a way to pass a network backend; connections are
    # made lazily from this attribute, so every socket of this transport is deadline-capped.
    pool = transport._pool
    assert hasattr(pool, "_network_backend"), "httpcore changed: no _network_backend"
    pool._network_backend = _deadline_backend(deadline)
    return transport


def request(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    limit: int = MAX_BODY,
    content: bytes | None = None,
    within: float | None = None,
) -> Response:
    """One request; the body is read up to ``limit`` bytes. Redirects are errors: a provider
    endpoint that redirects could send the next request (and its token) somewhere else.
    ``within`` shortens the client's total deadline for this request (never lengthens it).
    ``content``: a raw body (with its Content-Type in ``headers``), instead of ``data``."""
    import httpx

    check_url(url, what=what)
    if within is not None and within <= 0:
        raise NetworkError(f"{what}: no time left to ask {host_of(url)}")
    extensions = {} if within is None else {"vault_within": within}
    try:
        with http.stream(
            method,
            url,
            data=data,
            content=content,
            headers=headers,
            auth=auth,
            extensions=extensions,
        ) as resp:
            chunks = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise NetworkError(
                        f"{what}: the provider's answer is over {limit // 1024} KiB; refused",
                        code="invalid_response",
                    )
                chunks.append(chunk)
            body = b"".join(chunks)
            status = resp.status_code
            content_type = resp.headers.get("content-type", "").lower()
            response_headers = dict(resp.headers)
    except httpx.TimeoutException:
        raise NetworkError(f"{what}: {host_of(url)} did not answer in time") from None
    except httpx.TransportError as exc:
        raise NetworkError(
            f"{what}: cannot reach {host_of(url)} ({type(exc).__name__})", code="unreachable"
        ) from None
    if 300 <= status < 400:
        location = clean(response_headers.get("location", "?"), 200)
        raise NetworkError(
            f"{what}: the provider redirected to {location!r}; vault does not follow redirects "
            "from OAuth endpoints",
            code="redirect",
        )
    return Response(status, content_type, body, url, response_headers)


# Headers `vault api -H` refuses: the ones that decide where a request goes (Host and the
# forwarding family an origin or a gateway routes on), who it speaks for (Authorization, which
# vault sets itself, Cookie), what a proxy does with it (Proxy-*), and how it is framed (a
# smuggled length or encoding). Compared case-insensitively, after stripping whitespace.
REFUSED_HEADERS = frozenset(
    {
        "host",
        "forwarded",
        "x-real-ip",
        "x-host",
        "x-original-url",
        "x-rewrite-url",
        "x-client-ip",
        "true-client-ip",
        "authorization",
        "cookie",
        "connection",
        "content-length",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "keep-alive",
    }
)
REFUSED_HEADER_PREFIXES = ("x-forwarded-", "proxy-")
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_header_arg(text: str) -> tuple[str, str]:
    """``NAME: VALUE`` from the command line, for a request that carries a token: a header
    that could re-route the request or speak for someone else is a usage error."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise UsageError(f"a header is NAME: VALUE, not {clean(text, 100)!r}")
    if any(ch not in _TCHAR for ch in name):
        raise UsageError(f"{clean(name, 100)!r} is not a header name (RFC 9110 token)")
    if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in value):
        raise UsageError(f"the value of the {name} header holds control characters")
    lower = name.lower()
    if lower in REFUSED_HEADERS or lower.startswith(REFUSED_HEADER_PREFIXES):
        raise UsageError(
            f"vault api does not send a {name} header: it could send the request, or the "
            "token, somewhere other than the provider's hosts",
            hint="vault sets Host and Authorization itself; use --allow-host for another host",
        )
    return name, value
