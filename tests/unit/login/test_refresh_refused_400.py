"""A refresh answered HTTP 400 with no OAuth error in the body (empty, HTML, JSON that is not an
object, an object or form without ``error``): the refresh token no longer works, told apart
from a 400 that names an error (judged by the error, as before) and from 5xx (a failure of the
provider: NetworkError, the token untouched). In process, against a scripted transport; the
same classes through the real executable are in tests/integration/test_lifecycle_grants.py."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.login.test_oauth_checks import OIDC, TOKEN_URL, Server
from vault.errors import AuthError, NetworkError
from vault.login import oauth as _oauth
from vault.secret import Secret

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/html",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/problem+json",
    ]
)


def _not_an_oauth_error(body: bytes) -> bool:
    """Whether ``body`` carries no ``error`` member, read as JSON or as a form."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return b"error" not in body
    return not (isinstance(doc, dict) and "error" in doc)


JSON_NOT_AN_OBJECT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
).map(lambda v: json.dumps(v).encode())
OBJECT_WITHOUT_ERROR = st.dictionaries(
    st.text(max_size=12).filter(lambda k: k != "error"), st.text(max_size=12), max_size=4
).map(lambda d: json.dumps(d).encode())
BODIES = st.one_of(
    st.just(b""),
    st.sampled_from([b" ", b"\n", b"\r\n\r\n", b"Bad Request", b"<html><h1>400</h1></html>"]),
    JSON_NOT_AN_OBJECT,
    OBJECT_WITHOUT_ERROR,
    st.binary(max_size=300),
).filter(_not_an_oauth_error)


def _refresh(status: int, body: bytes, content_type: str | None) -> BaseException:
    headers = {"Content-Type": content_type} if content_type else {}
    server = Server({TOKEN_URL: httpx.Response(status, content=body, headers=headers)})
    with server.client() as http, pytest.raises((AuthError, NetworkError)) as info:
        _oauth.refresh(http, OIDC, TOKEN_URL, Secret("rt-canary-123"), ("openid",))
    return info.value


@settings(max_examples=300, deadline=None)
@given(BODIES, CONTENT_TYPES)
def test_a_400_without_an_oauth_error_is_a_dead_refresh_token(
    body: bytes, content_type: str | None
) -> None:
    exc = _refresh(400, body, content_type)
    assert isinstance(exc, AuthError), exc
    assert exc.code == "invalid_grant"
    assert exc.message.startswith("token refresh: the provider refused its refresh token (HTTP 400")
    assert exc.message.endswith("[invalid_grant]")
    assert "\n" not in exc.message
    assert "rt-canary-123" not in exc.message
    empty = not body.strip()
    assert ("an empty body" in exc.message) is empty


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([500, 502, 503, 504, 599]), BODIES, CONTENT_TYPES)
def test_5xx_is_a_failure_of_the_provider_whatever_the_body(
    status: int, body: bytes, content_type: str | None
) -> None:
    exc = _refresh(status, body, content_type)
    assert isinstance(exc, NetworkError), exc
    assert exc.code == "server_error"


@pytest.mark.parametrize(
    ("body", "content_type", "kind", "code"),
    [
        (b'{"error": "invalid_grant"}', "application/json", AuthError, "invalid_grant"),
        (b"error=invalid_grant", "application/x-www-form-urlencoded", AuthError, "invalid_grant"),
        (b'{"error": "invalid_client"}', "application/json", AuthError, "invalid_client"),
        (b'{"error": "invalid_scope"}', "application/json", AuthError, "invalid_scope"),
        (
            b'{"error": "temporarily_unavailable"}',
            "application/json",
            NetworkError,
            "unknown_error",
        ),
        (b'{"error": 42}', "application/json", NetworkError, "unknown_error"),
    ],
)
def test_a_400_that_names_an_error_is_judged_by_it(
    body: bytes, content_type: str, kind: type[Exception], code: str
) -> None:
    exc = _refresh(400, body, content_type)
    assert type(exc) is kind
    assert getattr(exc, "code", None) == code
    assert "HTTP 400" not in str(exc)


@pytest.mark.parametrize("status", [401, 403, 404, 429])
def test_other_4xx_without_an_error_are_not_taken_for_a_dead_token(status: int) -> None:
    exc = _refresh(status, b"", None)
    assert isinstance(exc, NetworkError), exc


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        (b"", None, "an empty body"),
        (b" \r\n", "text/plain", "an empty body"),
        (b"<html>400</html>", "text/html", "no OAuth error in its body"),
        (b'{"note": "x"}', "application/json", "no OAuth error in its body"),
        (b"note=x", "application/x-www-form-urlencoded", "no OAuth error in its body"),
    ],
)
def test_a_dead_refresh_token_reads_exactly(
    body: bytes, content_type: str | None, said: str
) -> None:
    exc = _refresh(400, body, content_type)
    assert isinstance(exc, AuthError), exc
    assert exc.message == (
        f"token refresh: the provider refused its refresh token (HTTP 400 with {said}: taken as "
        "expired or revoked) [invalid_grant]"
    )
