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


def client(timeout: float = 30.0) -> httpx.Client:
    import sys

    import httpx

    hooks: dict[str, list[Any]] = {}
    if "vault.util.log" in sys.modules:  # -v/--debug configured logging: trace HTTP, redacted
        from vault.util.log import http_event_hooks

        hooks = http_event_hooks()
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        trust_env=True,
        event_hooks=hooks,
    )


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
) -> Response:
    """One request; the body is read up to ``limit`` bytes. Redirects are errors: a provider
    endpoint that redirects could send the next request (and its token) somewhere else."""
    import httpx

    check_url(url, what=what)
    try:
        with http.stream(method, url, data=data, headers=headers, auth=auth) as resp:
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


def parse_header_arg(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise UsageError(f"a header is NAME: VALUE, not {clean(text, 100)!r}")
    return name.strip(), value.strip()
