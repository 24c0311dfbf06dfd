"""The OAuth 2.0 authorization code grant with PKCE (RFC 7636) for a native app with a
loopback redirect (RFC 8252): the request's secrets, the authorization URL, the checks on the
authorization response (``state``; ``iss``, RFC 9207), the code exchange, and the ID token's
``nonce``.

Pure protocol: no listener (vault.login.loopback), nothing printed. Every value the browser or
the provider sends is checked here, at the edge; every refusal is an :class:`AuthError`
(exit 4) or, for a malformed answer, a :class:`NetworkError` (exit 7).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vault.errors import AuthError, NetworkError
from vault.login import oauth
from vault.login.http import request
from vault.login.providers import Provider
from vault.secret import Secret
from vault.util import jwt
from vault.util.text import clean

if TYPE_CHECKING:
    import httpx

VERIFIER_BYTES = 48  # 64 characters of base64url: RFC 7636 §4.1 asks for 43..128
MIN_VERIFIER, MAX_VERIFIER = 43, 128
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
MAX_CODE_CHARS = 4096
MAX_RESPONSE_FIELDS = 32

# RFC 6749 §4.1.2.1: what an authorization error response means for the person.
AUTHORIZATION_ERRORS = {
    "access_denied": "the login was denied",
    "invalid_request": "the provider refused the authorization request as malformed",
    "unauthorized_client": "this client may not use the authorization code grant at the provider",
    "unsupported_response_type": "the provider does not support the authorization code grant",
    "invalid_scope": "the provider refused the requested scopes",
    "server_error": "the provider failed while authorizing",
    "temporarily_unavailable": "the provider is temporarily unavailable",
    "login_required": "the provider needs you to sign in",
    "consent_required": "the provider needs your consent",
    "interaction_required": "the provider needs you to interact with it",
}


def new_verifier() -> Secret:
    """A fresh code verifier from :mod:`secrets`: 64 unreserved characters (RFC 7636 §4.1)."""
    return Secret(secrets.token_urlsafe(VERIFIER_BYTES))


def check_verifier(verifier: str) -> str:
    """``verifier`` when RFC 7636 §4.1 allows it (43 to 128 unreserved characters)."""
    if not MIN_VERIFIER <= len(verifier) <= MAX_VERIFIER or not set(verifier) <= _UNRESERVED:
        raise ValueError("a PKCE code verifier is 43 to 128 unreserved characters")
    return verifier


def challenge(verifier: Secret) -> str:
    """The S256 code challenge: BASE64URL(SHA256(ASCII(verifier))), unpadded (RFC 7636 §4.2)."""
    digest = hashlib.sha256(check_verifier(verifier.reveal()).encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AuthRequest:
    """One authorization request: where the browser goes, and what its answer must match."""

    url: str
    redirect_uri: str
    state: Secret
    nonce: Secret
    verifier: Secret


def start(
    provider: Provider, endpoints: oauth.Endpoints, scopes: tuple[str, ...], redirect_uri: str
) -> AuthRequest:
    """A new authorization request with a fresh verifier, ``state`` and ``nonce``.

    ``prompt=consent`` goes with ``offline_access`` (OpenID Connect Core §11 requires it for
    a refresh token); the ``nonce`` is always sent (a plain OAuth server ignores it)."""
    if not endpoints.authorization_endpoint:
        raise NetworkError(
            f"provider {provider.name!r} has no authorization endpoint",
            hint="use the device flow (vault login --device), or set authorization_endpoint",
            code="unsupported",
        )
    assert provider.client_id is not None
    verifier, state, nonce = new_verifier(), secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    if scopes:
        params["scope"] = " ".join(scopes)
    if "offline_access" in scopes:
        params["prompt"] = "consent"
    return AuthRequest(
        url=add_query(endpoints.authorization_endpoint, params),
        redirect_uri=redirect_uri,
        state=Secret(state),
        nonce=Secret(nonce),
        verifier=verifier,
    )


def add_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` after the query it already has (RFC 6749 §3.1 keeps it)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))


def _same(given: str, expected: Secret) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.reveal().encode())


def parse_response(query: str, auth: AuthRequest, endpoints: oauth.Endpoints) -> Secret:
    """The authorization code from the redirect's query string, once it is known to answer
    ``auth``: ``state`` matches (constant time), ``iss`` is the issuer's where it is sent or
    the metadata promises it (RFC 9207), no ``error``, and a ``code`` that can be a code.
    Every parameter at most once (RFC 6749 §3.1)."""
    what = "authorization response"
    try:
        pairs = urllib.parse.parse_qsl(
            query,
            keep_blank_values=True,
            strict_parsing=bool(query),
            errors="strict",
            max_num_fields=MAX_RESPONSE_FIELDS,
        )
    except ValueError as exc:
        raise AuthError(
            f"{what}: the redirect's query cannot be read", code="invalid_response"
        ) from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise AuthError(f"{what}: {clean(key, 40)!r} is given twice", code="invalid_response")
        fields[key] = value
    state = fields.get("state")
    if state is None or not _same(state, auth.state):
        raise AuthError(
            f"{what}: the state does not match this login's; refusing (a forged or stale "
            "redirect) [state_mismatch]",
            code="state_mismatch",
        )
    iss = fields.get("iss")
    if iss is None and endpoints.iss_parameter_supported:
        raise AuthError(
            f"{what}: no iss although the provider's metadata promises one (RFC 9207); "
            "refusing [iss_mismatch]",
            code="iss_mismatch",
        )
    if iss is not None and iss != endpoints.issuer:
        raise AuthError(
            f"{what}: it comes from issuer {clean(iss, 200)!r}, not {endpoints.issuer!r}; "
            "refusing (a mix-up, RFC 9207) [iss_mismatch]",
            code="iss_mismatch",
        )
    error = fields.get("error")
    if error is not None:
        detail = fields.get("error_description")
        suffix = f" ({clean(detail, 200)})" if detail else ""
        known = AUTHORIZATION_ERRORS.get(error)
        if known is None:
            raise AuthError(
                f"{what}: the provider answered an error vault does not know: "
                f"{clean(error, 64)!r}{suffix}",
                code="unknown_error",
            )
        raise AuthError(f"{what}: {known} [{error}]{suffix}", code=error)
    code = fields.get("code")
    if not code:
        raise AuthError(f"{what}: the redirect carries no code", code="invalid_response")
    if len(code) > MAX_CODE_CHARS or any(not ("!" <= ch <= "~") for ch in code):
        raise AuthError(f"{what}: the code is not one a provider sends", code="invalid_response")
    return Secret(code)


def exchange(
    http: httpx.Client,
    provider: Provider,
    endpoints: oauth.Endpoints,
    auth: AuthRequest,
    code: Secret,
    *,
    requested: tuple[str, ...],
) -> oauth.TokenSet:
    """RFC 6749 §4.1.3 with the verifier (RFC 7636 §4.5). The caller checks the ID token's
    ``nonce`` (:func:`check_id_token`) before it keeps anything."""
    what = "token request"
    assert provider.client_id is not None
    form = {
        "grant_type": "authorization_code",
        "code": code.reveal(),
        "redirect_uri": auth.redirect_uri,
        "code_verifier": auth.verifier.reveal(),
        "client_id": provider.client_id,
    }
    if provider.client_secret is not None:
        form["client_secret"] = provider.client_secret.reveal()
    resp = request(http, "POST", endpoints.token_endpoint, what=what, data=form)
    if resp.status >= 500:
        raise NetworkError(f"{what}: the provider answered HTTP {resp.status}", code="server_error")
    doc = resp.form_or_json(what=what)
    if "error" in doc:
        err = oauth.oauth_error(doc, what=what)
        if isinstance(err, AuthError) and err.code == "invalid_grant":
            raise AuthError(
                f"{what}: the provider refused the authorization code (used, expired, or not "
                "issued for this verifier) [invalid_grant]",
                code="invalid_grant",
            )
        raise err
    if resp.status != 200:
        raise NetworkError(
            f"{what}: HTTP {resp.status} without an OAuth error", code="invalid_response"
        )
    return oauth.parse_token_response(doc, requested, provider=provider, what=what)


def check_id_token(id_token: Secret | None, nonce: Secret) -> None:
    """An ID token (straight from the token endpoint), when there is one, carries this
    request's ``nonce`` (OpenID Connect Core §3.1.3.7 step 11): else it answers another
    request, and is refused."""
    if id_token is None:
        return
    doc = jwt.claims(id_token.reveal())
    if doc is None:
        raise NetworkError("token request: the id_token is not a JWT", code="invalid_response")
    given = doc.get("nonce")
    if not isinstance(given, str) or not _same(given, nonce):
        raise AuthError(
            "token request: the ID token's nonce does not match this login's; refusing (a "
            "replayed or injected response) [nonce_mismatch]",
            code="nonce_mismatch",
        )
