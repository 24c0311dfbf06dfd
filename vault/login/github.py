"""GitHub as it behaves: the host of a GitHub Enterprise Server, the two kinds of user token
(OAuth App ``gho_``, GitHub App ``ghu_``/``ghr_``), the live scopes of a token, revocation with
the app's client secret, and GitHub's limit of ten tokens per user, app and scope set.

Nothing here prints or touches the vault: callers pass plain values and get plain values or a
typed error back. What GitHub sends is validated here, at the edge.
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.parse
from dataclasses import dataclass

from vault.errors import NetworkError
from vault.login.http import host_of, is_loopback_host, request
from vault.util.text import clean

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Iterable

    import httpx

    from vault.login.providers import Provider
    from vault.secret import Secret

DEFAULT_HOST = "github.com"
# GitHub revokes the oldest token once a user holds this many for one app and scope set.
TOKEN_LIMIT = 10
APP = "app"  # a GitHub App user token (ghu_, expiring, with a ghr_ refresh token)
OAUTH_APP = "oauth_app"  # an OAuth App token (gho_, no expiry, comma-separated scopes)

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HOST_CHARS = re.compile(r"[A-Za-z0-9.:\[\]-]+")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


@dataclass(frozen=True)
class Host:
    """A validated ``host[:port]``: its scheme (http only on loopback), the host (lower case,
    an IPv6 address without brackets) and the port (None for the scheme's default)."""

    scheme: str
    hostname: str
    port: int | None

    @property
    def netloc(self) -> str:
        shown = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return shown if self.port is None else f"{shown}:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def parse_host(text: object) -> Host:
    """``host`` of a ``preset: github`` provider: a DNS name (ASCII; an IDN in its xn-- form),
    an IPv4 address or an IPv6 address in brackets, optionally ``:PORT`` (1..65535, no leading
    zero). Nothing else: no scheme, path, query, userinfo, spaces or trailing dot. Raises
    ValueError saying what is wrong, never quoting the value (config.yaml's errors never show
    its text)."""
    if not isinstance(text, str) or not text:
        raise ValueError("it must be a host name, optionally with :PORT")
    if len(text) > 261:
        raise ValueError("it is too long for a host name")
    if "/" in text or "@" in text or "?" in text or "#" in text:
        raise ValueError("it must be a host name only: no scheme, path, query or user")
    if not _HOST_CHARS.fullmatch(text):
        raise ValueError(
            "it holds characters a host name cannot hold (spaces, controls, non-ASCII; "
            "write an international name in its xn-- form)"
        )
    port_text: str | None = None
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 address must be written [ADDRESS] or [ADDRESS]:PORT")
        try:
            hostname = ipaddress.IPv6Address(inside).compressed
        except ValueError:
            raise ValueError("the address in brackets is not an IPv6 address") from None
        port_text = rest[1:] if rest else None
    else:
        if text.count(":") > 1 or "[" in text or "]" in text:
            raise ValueError("an IPv6 address must be written in brackets: [ADDRESS]:PORT")
        hostname, colon, after = text.partition(":")
        port_text = after if colon else None
        hostname = _check_name(hostname.lower())
    port = None if port_text is None else _check_port(port_text)
    scheme = "http" if is_loopback_host(hostname) else "https"
    if port == (443 if scheme == "https" else 80):
        port = None
    return Host(scheme, hostname, port)


def _check_name(name: str) -> str:
    if not name:
        raise ValueError("the host name is empty")
    if all(ch.isdigit() or ch == "." for ch in name):
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise ValueError("it is not a valid IPv4 address") from None
    if len(name) > 253 or name.endswith("."):
        raise ValueError("it is not a valid host name (too long, or a trailing dot)")
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("it is not a valid host name (letters, digits and inner hyphens)")
    if labels[-1].isdigit():
        raise ValueError("it is not a valid host name (a numeric top-level label)")
    return name


def _check_port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError("the port must be a number from 1 to 65535")
    return int(text)


def endpoints_for(host: Host) -> dict[str, object]:
    """Provider fields for ``host``: github.com keeps its API at api.github.com; any other host
    is a GitHub Enterprise Server, its own issuer, with its API under /api/v3."""
    base = host.base
    github_com = host.hostname == DEFAULT_HOST and host.port is None
    return {
        "issuer": base,
        "device_authorization_endpoint": f"{base}/login/device/code",
        "token_endpoint": f"{base}/login/oauth/access_token",
        "api_base": "https://api.github.com" if github_com else f"{base}/api/v3",
        "endpoint_hosts": (host.netloc,) if host.scheme == "https" else (),
        "revoke_by_hand": f"{base}/settings/applications",
    }


def token_kind(access_token: Secret, refresh_token: Secret | None, expires_in: int | None) -> str:
    """APP for a GitHub App user token (``ghu_``, or one that expires with a refresh token),
    else OAUTH_APP. The kind decides how policy reads its scopes: an app's permissions are the
    app's, not scopes, and GitHub sends it ``scope: ""``."""
    if access_token.reveal().startswith("ghu_"):
        return APP
    if access_token.reveal().startswith("gho_"):
        return OAUTH_APP
    return APP if refresh_token is not None and expires_in is not None else OAUTH_APP


def settings_url(page: str, kind: object) -> str:
    """Where a person revokes the token by hand: ``page`` (the provider's revoke_by_hand, its
    OAuth apps page), or for a GitHub App token the authorized apps page beside it."""
    oauth_apps = "/settings/applications"
    if kind == APP and page.endswith(oauth_apps):
        return page[: -len(oauth_apps)] + "/settings/apps/authorizations"
    return page


# --- the ten-token limit ----------------------------------------------------------------


def same_grants(
    held: Iterable[tuple[str, str, Iterable[str]]],
    client_id: str,
    issuer: str,
    scopes: Iterable[str],
) -> int:
    """How many of ``held`` (client_id, issuer, scopes) are for this app, host and scope set:
    GitHub counts tokens per user, app and scope set (order and repetition do not matter)."""
    wanted = frozenset(scopes)
    return sum(
        1
        for cid, iss, sc in held
        if cid == client_id and iss.rstrip("/") == issuer.rstrip("/") and frozenset(sc) == wanted
    )


def limit_warning(count: int, host: str) -> str | None:
    """The warning for a login when the vault already holds ``count`` such tokens, or None."""
    if count < TOKEN_LIMIT:
        return None
    return (
        f"the vault already holds {count} tokens for this app and scope set at {host}; GitHub "
        f"keeps at most {TOKEN_LIMIT} per user, app and scope set, and revokes the oldest "
        "when another is issued"
    )


# --- live scopes (`vault status --verify`) ----------------------------------------------


@dataclass(frozen=True)
class Live:
    """What GitHub says of a token now. ``revoked``: it answered 401 (the token was revoked or
    has expired at GitHub). ``scopes``: X-OAuth-Scopes, None where GitHub sent none (a GitHub
    App token: its permissions are the app's)."""

    revoked: bool
    scopes: tuple[str, ...] | None
    status: int


def live_scopes(http: httpx.Client, api_base: str, token: Secret) -> Live:
    """``GET {api_base}/user`` with the token; its X-OAuth-Scopes header."""
    what = "scope check"
    url = api_base.rstrip("/") + "/user"
    resp = request(
        http,
        "GET",
        url,
        what=what,
        headers={
            "Authorization": f"Bearer {token.reveal()}",
            "Accept": "application/vnd.github+json",
        },
        limit=256 * 1024,
    )
    if resp.status == 401:
        return Live(True, None, 401)
    if resp.status != 200:
        raise NetworkError(f"{what}: {host_of(url)} answered HTTP {resp.status}", code="api")
    header = _header(resp.headers, "x-oauth-scopes")
    if header is None:
        return Live(False, None, 200)
    if len(header) > 8192:
        raise NetworkError(f"{what}: X-OAuth-Scopes is too long", code="invalid_response")
    scopes = tuple(dict.fromkeys(s.strip() for s in header.split(",") if s.strip()))
    if any(not all("!" <= ch <= "~" for ch in s) for s in scopes):
        raise NetworkError(f"{what}: X-OAuth-Scopes is malformed", code="invalid_response")
    return Live(False, scopes, 200)


def _header(headers: object, name: str) -> str | None:
    items = getattr(headers, "items", None)
    if items is None:
        return None
    for key, value in items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def drift(stored: Iterable[str], live: Iterable[str]) -> dict[str, list[str]]:
    """Scopes the token has that the vault does not know of, and the other way round."""
    held, now = set(stored), set(live)
    return {"added": sorted(now - held), "removed": sorted(held - now)}


# --- revocation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Revoked:
    """The outcome: ``revoked`` only when GitHub confirmed the token is dead."""

    revoked: bool
    detail: str


def revoke(
    http: httpx.Client,
    provider: Provider,
    *,
    api_base: str,
    client_id: str,
    access_token: Secret,
) -> Revoked:
    """``DELETE {api_base}/applications/{client_id}/token`` with Basic client_id:client_secret
    and ``{"access_token": ...}``: 204 is revoked. Any other answer is checked with the token
    itself (``GET /user``): a 401 then means it is already gone (404/422: revoked or expired
    before), a 200 that it still works, and nothing is reported revoked. Without a client
    secret nothing is sent: GitHub revokes an OAuth token only with the app's secret."""
    host = host_of(api_base)
    if provider.client_secret is None:
        return Revoked(
            False,
            f"GitHub revokes a token only with the app's client secret, and provider "
            f"{provider.name!r} has none configured (client_secret in config.yaml)",
        )
    what = "token revocation"
    url = f"{api_base.rstrip('/')}/applications/{urllib.parse.quote(client_id, safe='')}/token"
    resp = request(
        http,
        "DELETE",
        url,
        what=what,
        headers={"Content-Type": "application/json", "Accept": "application/vnd.github+json"},
        content=json.dumps({"access_token": access_token.reveal()}).encode(),
        auth=(client_id, provider.client_secret.reveal()),
        limit=64 * 1024,
    )
    if resp.status == 204:
        return Revoked(True, f"revoked at {host}")
    if resp.status >= 500:
        raise NetworkError(f"{what}: {host} answered HTTP {resp.status}", code="server_error")
    live = live_scopes(http, api_base, access_token)
    if live.revoked:
        return Revoked(True, f"already gone at {host} (HTTP {resp.status}; GitHub refuses it)")
    raise NetworkError(
        f"{what}: {host} answered HTTP {resp.status}{_message(resp.body)} and the token still "
        "works",
        code="not_revoked",
    )


def _message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    text = doc.get("message") if isinstance(doc, dict) else None
    return f" ({clean(text, 200)})" if isinstance(text, str) and text else ""
