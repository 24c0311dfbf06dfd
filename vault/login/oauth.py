"""The OAuth 2.0 protocol core: discovery (RFC 8414 / OIDC), the device authorization grant
(RFC 8628), refresh (RFC 6749 §6) and revocation (RFC 7009).

Nothing here prints. Time and sleep are parameters, so the polling rules can be checked
without waiting. Everything a server sends is validated here, at the edge.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault.errors import AuthError, ConfigError, NetworkError
from vault.login.http import Response, check_url, host_of, origin, request
from vault.login.providers import Provider
from vault.secret import Secret
from vault.util.text import check_scopes, clean

if TYPE_CHECKING:
    import httpx

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5  # RFC 8628 §3.2
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5
MAX_BACKOFF = 60.0
MAX_TOKEN_CHARS = 32 * 1024
MAX_LIFETIME = 10 * 365 * 86400  # an access token said to live longer than this is absurd
MAX_DEVICE_LIFETIME = 86400
# Granted scopes are stored and written into every audit record about the token: a provider
# that "grants" half a megabyte of them must not be able to bloat (and so wedge) the audit log.
MAX_SCOPE_CHARS = 8192

TERMINAL_ERRORS = {
    "access_denied": "the login was denied",
    "expired_token": "the code expired before it was approved",
    "invalid_grant": "the provider refused the device code",
    "invalid_client": "the provider does not know this client_id (or it needs a secret)",
    "unauthorized_client": "this client may not use the device flow at the provider",
    "invalid_scope": "the provider refused the requested scopes",
    "unsupported_grant_type": "the provider does not support the device flow",
    "invalid_request": "the provider refused the request as malformed",
    # GitHub's own codes (sent with HTTP 200; vault.login.github)
    "incorrect_device_code": "the provider does not know the device code",
    "incorrect_client_credentials": "the provider refused the client_id or client secret",
    "device_flow_disabled": "the device flow is not enabled for this app (its settings)",
    "bad_refresh_token": "the provider refused the refresh token (expired, revoked or reused)",
}
# Refresh refusals that mean the refresh token is dead: log in again.
DEAD_REFRESH = ("invalid_grant", "bad_refresh_token")


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    device_authorization_endpoint: str | None
    token_endpoint: str
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    userinfo_endpoint: str | None = None


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: Secret
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


@dataclass(frozen=True)
class TokenSet:
    access_token: Secret
    token_type: str
    refresh_token: Secret | None
    id_token: Secret | None
    expires_in: int | None
    scopes: tuple[str, ...]
    scope_reported: bool


# --- discovery --------------------------------------------------------------------------


def _metadata_urls(issuer: str) -> list[str]:
    """OpenID Connect Discovery appends to the issuer; RFC 8414 inserts after the host."""
    parts = urllib.parse.urlsplit(issuer)
    path = parts.path.rstrip("/")
    oidc = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    rfc8414 = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", "")
    )
    return [oidc, rfc8414]


def discover(http: httpx.Client, provider: Provider) -> Endpoints:
    """The provider's endpoints, from its preset or config, else from its metadata."""
    issuer = check_url(provider.issuer, what=f"issuer of {provider.name}", error=ConfigError)
    if not provider.discovery:
        if not provider.token_endpoint:
            raise ConfigError(
                f"provider {provider.name!r} ({provider.source}) has no token_endpoint"
            )
        return Endpoints(
            issuer=issuer,
            device_authorization_endpoint=_endpoint(provider.device_authorization_endpoint),
            token_endpoint=_endpoint(provider.token_endpoint) or "",
            revocation_endpoint=_endpoint(provider.revocation_endpoint),
            userinfo_endpoint=_endpoint(provider.userinfo_endpoint),
        )
    doc: dict[str, Any] | None = None
    for url in _metadata_urls(issuer):
        resp = request(http, "GET", url, what="provider discovery")
        if resp.status == 404:
            continue
        if resp.status != 200:
            raise NetworkError(
                f"provider discovery: {host_of(url)} answered HTTP {resp.status}",
                code="discovery_failed",
            )
        doc = resp.json_object(what="provider discovery")
        break
    if doc is None:
        raise NetworkError(
            f"provider discovery: {host_of(issuer)} publishes no OpenID or RFC 8414 metadata",
            hint="set device_authorization_endpoint and token_endpoint for the provider "
            "in config.yaml",
            code="discovery_failed",
        )
    if doc.get("issuer") != issuer:
        raise NetworkError(
            f"provider discovery: the metadata's issuer {clean(doc.get('issuer'), 200)!r} is not "
            f"the configured issuer {issuer!r}; refusing (RFC 8414 §3.3)",
            code="issuer_mismatch",
        )

    def pick(key: str, override: str | None) -> str | None:
        if override:
            return _endpoint(override)
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise NetworkError(
                f"provider discovery: {key} is not a string", code="invalid_response"
            )
        return check_url(value, what=f"the provider's {key}")

    token = pick("token_endpoint", provider.token_endpoint)
    if token is None:
        raise NetworkError(
            "provider discovery: the metadata names no token_endpoint", code="invalid_response"
        )
    return Endpoints(
        issuer=issuer,
        device_authorization_endpoint=pick(
            "device_authorization_endpoint", provider.device_authorization_endpoint
        ),
        token_endpoint=token,
        revocation_endpoint=pick("revocation_endpoint", provider.revocation_endpoint),
        introspection_endpoint=pick("introspection_endpoint", None),
        userinfo_endpoint=pick("userinfo_endpoint", provider.userinfo_endpoint),
    )


def _endpoint(url: str | None) -> str | None:
    return None if url is None else check_url(url, what="endpoint in config", error=ConfigError)


# --- the device authorization request -------------------------------------------------


def _client_auth(client_id: str, client_secret: Secret | None) -> dict[str, str]:
    form = {"client_id": client_id}
    if client_secret is not None:
        form["client_secret"] = client_secret.reveal()
    return form


def _visible(value: object, *, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise NetworkError(f"{what} is missing or not a string", code="invalid_response")
    if len(value) > limit:
        raise NetworkError(f"{what} is over {limit} characters", code="invalid_response")
    if any(not ("!" <= ch <= "~") for ch in value):
        raise NetworkError(
            f"{what} holds characters a token cannot hold (spaces, controls or non-ASCII)",
            code="invalid_response",
        )
    return value


def _int_field(doc: dict[str, Any], key: str, *, what: str, low: int, high: int) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)  # some providers send numbers as strings ("²".isdigit() is true)
    if isinstance(value, bool) or not isinstance(value, int):
        raise NetworkError(f"{what}: {key} is not a number", code="invalid_response")
    if not low <= value <= high:
        raise NetworkError(
            f"{what}: {key}={value} is outside the sane range {low}..{high}",
            code="invalid_response",
        )
    return value


def allowed_verification_hosts(provider: Provider, endpoints: Endpoints) -> set[str]:
    """Where the person may be sent to enter the code, as (scheme://host:port) origins: the
    issuer's, the device authorization endpoint's, and the preset's verification hosts."""
    urls = [endpoints.issuer, endpoints.device_authorization_endpoint]
    urls += [f"https://{host}/" for host in provider.verification_hosts]
    found = {origin(url) for url in urls if url}
    return {f"{o[0]}://{o[1]}:{o[2]}" for o in found if o is not None}


def _host_allowed(url: str, allowed: set[str]) -> bool:
    """The exact origin (scheme, host, port; the host case-insensitively) is one allowed: no
    subdomains, suffixes, trailing dots, other ports or userinfo."""
    found = origin(url)
    return found is not None and f"{found[0]}://{found[1]}:{found[2]}" in allowed


def request_device_code(
    http: httpx.Client,
    provider: Provider,
    endpoints: Endpoints,
    scopes: tuple[str, ...],
) -> DeviceAuthorization:
    what = "device authorization request"  # not "...authorization:", which reads as a header
    if not endpoints.device_authorization_endpoint:
        raise NetworkError(
            f"provider {provider.name!r} offers no device authorization endpoint",
            hint="the provider must support RFC 8628 (the device flow) for `vault login`",
            code="unsupported",
        )
    assert provider.client_id is not None
    form = _client_auth(provider.client_id, provider.client_secret)
    if scopes:
        form["scope"] = " ".join(scopes)
    resp = request(http, "POST", endpoints.device_authorization_endpoint, what=what, data=form)
    doc = _doc_or_error(resp, what=what)
    device_code = _visible(doc.get("device_code"), what=f"{what}: device_code", limit=4096)
    user_code = doc.get("user_code")
    if not isinstance(user_code, str) or not clean(user_code).strip() or len(user_code) > 64:
        raise NetworkError(f"{what}: user_code is missing or malformed", code="invalid_response")
    allowed = allowed_verification_hosts(provider, endpoints)
    uri = doc.get("verification_uri", doc.get("verification_url"))  # Google says _url
    if not isinstance(uri, str):
        raise NetworkError(f"{what}: verification_uri is missing", code="invalid_response")
    uri = check_url(uri, what=f"{what}: verification_uri")
    if not _host_allowed(uri, allowed):
        raise NetworkError(
            f"{what}: verification_uri points to {clean(host_of(uri), 100)!r}, not to the "
            f"provider ({', '.join(sorted(allowed))}); refusing to send you there",
            code="foreign_host",
        )
    complete = doc.get("verification_uri_complete")
    if complete is not None:
        if not isinstance(complete, str):
            raise NetworkError(
                f"{what}: verification_uri_complete is not a string", code="invalid_response"
            )
        complete = check_url(complete, what=f"{what}: verification_uri_complete")
        if host_of(complete).lower() != host_of(uri).lower():
            raise NetworkError(
                f"{what}: verification_uri_complete is on another host than verification_uri",
                code="foreign_host",
            )
    expires_in = _int_field(doc, "expires_in", what=what, low=1, high=MAX_DEVICE_LIFETIME)
    if expires_in is None:
        raise NetworkError(f"{what}: expires_in is missing", code="invalid_response")
    interval = _int_field(doc, "interval", what=what, low=1, high=600)
    return DeviceAuthorization(
        device_code=Secret(device_code),
        user_code=clean(user_code, 64).strip(),
        verification_uri=uri,
        verification_uri_complete=complete,
        expires_in=expires_in,
        interval=DEFAULT_INTERVAL if interval is None else interval,
    )


def _doc_or_error(resp: Response, *, what: str) -> dict[str, Any]:
    """A successful JSON answer, or the OAuth error it carries as an exception."""
    if resp.status >= 500:
        raise NetworkError(f"{what}: the provider answered HTTP {resp.status}", code="server_error")
    doc = resp.form_or_json(what=what)
    if "error" in doc:
        raise oauth_error(doc, what=what)
    if resp.status != 200:
        raise NetworkError(
            f"{what}: the provider answered HTTP {resp.status} without an OAuth error",
            code="invalid_response",
        )
    return doc


def oauth_error(doc: dict[str, Any], *, what: str) -> Exception:
    code = doc.get("error")
    text = clean(code, 64) if isinstance(code, str) else "?"
    detail = doc.get("error_description")
    suffix = f" ({clean(detail, 200)})" if isinstance(detail, str) and detail else ""
    if isinstance(code, str) and code in TERMINAL_ERRORS:  # the code as sent, not as cleaned
        return AuthError(f"{what}: {TERMINAL_ERRORS[code]} [{code}]{suffix}", code=code)
    return NetworkError(
        f"{what}: the provider answered an error vault does not know: {text!r}{suffix}",
        code="unknown_error",
    )


# --- polling (RFC 8628 §3.4, §3.5) ---------------------------------------------------------


@dataclass
class PollState:
    interval: float
    deadline: float
    polls: int = 0
    failures: int = 0


def poll(
    http: httpx.Client,
    provider: Provider,
    endpoints: Endpoints,
    device: DeviceAuthorization,
    requested: tuple[str, ...],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[float], None] | None = None,
) -> TokenSet:
    """Poll the token endpoint until the person approves, denies, or the code expires.

    Waits ``interval`` before every poll; on ``slow_down`` adds 5 s to this and every later
    interval; backs off exponentially when the provider cannot be reached or answers 5xx;
    stops locally when ``expires_in`` has passed, also in the middle of a slow answer."""
    what = "token request"
    assert provider.client_id is not None
    state = PollState(float(device.interval), clock() + device.expires_in)
    form = {
        "grant_type": DEVICE_GRANT,
        "device_code": device.device_code.reveal(),
        **_client_auth(provider.client_id, provider.client_secret),
    }
    last_failure: NetworkError | None = None
    while True:
        wait = state.interval
        if state.failures:  # exponential backoff, never below the interval
            wait = min(wait * 2 ** min(state.failures, 6), max(MAX_BACKOFF, wait))
        if clock() + wait > state.deadline:
            raise _expired(what, last_failure)
        _wait(wait, clock, sleep, on_wait, state.deadline)
        if clock() >= state.deadline:
            raise _expired(what, last_failure)
        state.polls += 1  # pragma: no mutate (equivalent: nothing reads the count)
        try:
            # The code's expiry is a hard deadline: no poll outlives it, however slowly the
            # token endpoint answers.
            resp = request(
                http,
                "POST",
                endpoints.token_endpoint,
                what=what,
                data=form,
                within=state.deadline - clock(),
            )
        except NetworkError as exc:
            if exc.code in ("unreachable", "network"):
                state.failures += 1
                last_failure = exc
                continue
            raise
        if resp.status >= 500 or resp.status == 429:
            state.failures += 1
            last_failure = NetworkError(f"{what}: HTTP {resp.status}", code="server_error")
            continue
        state.failures = 0
        last_failure = None
        doc = resp.form_or_json(what=what)
        error = doc.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            server_interval = _int_field(doc, "interval", what=what, low=1, high=600)
            state.interval = max(state.interval + SLOW_DOWN_STEP, float(server_interval or 0))
            continue
        if error is not None:
            raise oauth_error(doc, what=what)
        if resp.status != 200:
            raise NetworkError(
                f"{what}: HTTP {resp.status} without an OAuth error", code="invalid_response"
            )
        return parse_token_response(doc, requested, provider=provider, what=what)


def _expired(what: str, last_failure: NetworkError | None) -> Exception:
    if last_failure is not None:
        return NetworkError(
            f"{what}: the provider kept failing until the code expired ({last_failure.message})",
            code=last_failure.code,
        )
    return AuthError(
        f"{what}: {TERMINAL_ERRORS['expired_token']} [expired_token]", code="expired_token"
    )


def _wait(
    seconds: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    on_wait: Callable[[float], None] | None,
    deadline: float,
) -> None:
    end = clock() + seconds
    while True:
        now = clock()
        if now >= end:
            return
        if on_wait is not None:
            on_wait(deadline - now)
        sleep(min(1.0, end - now))


# --- token responses --------------------------------------------------------------------


def split_scopes(text: str, *, provider: Provider) -> tuple[str, ...]:
    """RFC 6749 §3.3: scope-tokens separated by spaces (%x20 only: a tab or any other
    character is part of a token, and refused with it). GitHub separates with commas."""
    text = text.replace(",", " ") if provider.preset == "github" else text
    return tuple(dict.fromkeys(part for part in text.split(" ") if part))


def parse_token_response(
    doc: dict[str, Any], requested: tuple[str, ...], *, provider: Provider, what: str
) -> TokenSet:
    access = _visible(doc.get("access_token"), what=f"{what}: access_token", limit=MAX_TOKEN_CHARS)
    token_type = doc.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = clean(token_type, 40) if isinstance(token_type, str) else type(token_type).__name__
        raise NetworkError(
            f"{what}: token_type {shown!r} is not one vault understands (Bearer)",
            code="unsupported_token_type",
        )
    refresh = doc.get("refresh_token")
    id_token = doc.get("id_token")
    expires_in = _int_field(doc, "expires_in", what=what, low=1, high=MAX_LIFETIME)
    scope = doc.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise NetworkError(f"{what}: scope is not a string", code="invalid_response")
    if scope is not None and len(scope) > MAX_SCOPE_CHARS:
        raise NetworkError(
            f"{what}: scope is over {MAX_SCOPE_CHARS} characters", code="invalid_response"
        )
    granted = split_scopes(scope, provider=provider) if scope is not None else requested
    check_scopes(granted, f"{what}: scope", lambda m: NetworkError(m, code="invalid_response"))
    return TokenSet(
        access_token=Secret(access),
        token_type="Bearer",
        refresh_token=None
        if refresh is None
        else Secret(_visible(refresh, what=f"{what}: refresh_token", limit=MAX_TOKEN_CHARS)),
        id_token=None
        if id_token is None
        else Secret(_visible(id_token, what=f"{what}: id_token", limit=MAX_TOKEN_CHARS * 2)),
        expires_in=expires_in,
        scopes=granted,
        scope_reported=scope is not None,
    )


# --- refresh and revocation -------------------------------------------------------------


def refresh(
    http: httpx.Client,
    provider: Provider,
    token_endpoint: str,
    refresh_token: Secret,
    scopes: tuple[str, ...],
) -> TokenSet:
    """RFC 6749 §6. ``invalid_grant`` means the person must log in again (AuthError)."""
    what = "token refresh"
    assert provider.client_id is not None
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token.reveal(),
        **_client_auth(provider.client_id, provider.client_secret),
    }
    resp = request(http, "POST", token_endpoint, what=what, data=form)
    if resp.status >= 500:
        raise NetworkError(f"{what}: the provider answered HTTP {resp.status}", code="server_error")
    doc = resp.form_or_json(what=what)
    if "error" in doc:
        err = oauth_error(doc, what=what)
        if isinstance(err, AuthError) and err.code in DEAD_REFRESH:
            raise AuthError(
                f"{what}: the provider refused the refresh token (expired or revoked) [{err.code}]",
                code="invalid_grant",
            )
        raise err
    if resp.status != 200:
        raise NetworkError(
            f"{what}: HTTP {resp.status} without an OAuth error", code="invalid_response"
        )
    return parse_token_response(doc, scopes, provider=provider, what=what)


def revoke(
    http: httpx.Client,
    provider: Provider,
    revocation_endpoint: str,
    token: Secret,
    hint: str,
) -> None:
    """RFC 7009: 200 means revoked (or already invalid)."""
    what = "token revocation"
    assert provider.client_id is not None
    form = {
        "token": token.reveal(),
        "token_type_hint": hint,
        **_client_auth(provider.client_id, provider.client_secret),
    }
    resp = request(http, "POST", revocation_endpoint, what=what, data=form)
    if resp.status == 200:
        return
    if resp.status >= 500:
        raise NetworkError(f"{what}: the provider answered HTTP {resp.status}", code="server_error")
    try:
        doc = resp.form_or_json(what=what)
    except NetworkError:
        doc = {}
    if "error" in doc:
        raise oauth_error(doc, what=what)
    if resp.status in (401, 403) and provider.client_secret is None:
        # Glewlwyd (2.7.5) revokes only for confidential clients: a public client's request is
        # refused with an empty 401, no OAuth error. Not a revocation: the person revokes on
        # the provider's own pages.
        raise NetworkError(
            f"{what}: the provider refused to revoke for the public client "
            f"{clean(provider.client_id, 100)!r} (HTTP {resp.status}; it may revoke only for "
            "confidential clients); revoke the grant on the provider's own pages: "
            f"{clean(provider.revoke_by_hand or provider.issuer, 300)}",
            code="revocation_refused",
        )
    raise NetworkError(f"{what}: the provider answered HTTP {resp.status}", code="invalid_response")
