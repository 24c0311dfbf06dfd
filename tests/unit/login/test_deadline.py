"""Every exchange with a provider has a total deadline (connect + send + every read), and
polling stops at the device code's expiry: a server that trickles its answer one byte at a
time, never slow enough for a per-read timeout, cannot hold vault (or its lock) past either."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness.hostile_net import json_answer, trickling_server
from vault.errors import NetworkError
from vault.login import http as _http
from vault.login import oauth as _oauth
from vault.login.providers import PRESETS
from vault.secret import Secret

TOKEN = json.dumps({"access_token": "at", "token_type": "Bearer"}).encode()

# Where the answer stalls: in the status line, in the headers, in the body.
ANSWERS = {
    "status line": json_answer(TOKEN),
    "headers": b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 200 + b"\r\n\r\n",
    "body": b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"{" + b" " * 4999,
}


@pytest.mark.parametrize("where", sorted(ANSWERS))
@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_a_request_ends_at_its_total_deadline(where: str) -> None:
    answer = ANSWERS[where]
    at_once = answer.index(b"\r\n\r\n") + 5 if where == "body" else 0  # head, then trickle
    with trickling_server(answer, at_once=at_once, every=0.2, limit=20) as server:
        start = time.monotonic()
        with _http.client(timeout=2.0) as http, pytest.raises(NetworkError) as exc:
            _http.request(http, "GET", f"{server.url}/x", what="t")
        elapsed = time.monotonic() - start
    assert "did not answer in time" in exc.value.message
    assert elapsed < 4.0, elapsed  # 2 s total; a per-read timeout alone would wait 20 s


@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_a_caller_can_shorten_the_deadline_but_not_lengthen_it() -> None:
    with trickling_server(ANSWERS["status line"], every=0.2, limit=20) as server:
        with _http.client(timeout=30.0) as http:
            start = time.monotonic()
            with pytest.raises(NetworkError):
                _http.request(http, "GET", f"{server.url}/x", what="t", within=1.0)
            assert time.monotonic() - start < 3.0
        with _http.client(timeout=1.0) as http:
            start = time.monotonic()
            with pytest.raises(NetworkError):
                _http.request(http, "GET", f"{server.url}/x", what="t", within=60.0)
            assert time.monotonic() - start < 3.0


@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_polling_ends_at_the_device_codes_expiry() -> None:
    """A token endpoint that trickles: the poll gives up when the code expires (3 s), not when
    the server lets go, and not after the client's 30 s per-request deadline either."""
    provider = PRESETS["oidc"].__class__(
        name="t", preset="oidc", issuer="http://127.0.0.1:1", client_id="cli"
    )
    with trickling_server(ANSWERS["status line"], every=0.2, limit=40) as server:
        endpoints = _oauth.Endpoints(
            issuer=server.url, device_authorization_endpoint=None, token_endpoint=f"{server.url}/t"
        )
        device = _oauth.DeviceAuthorization(
            device_code=Secret("dc"),
            user_code="U",
            verification_uri=f"{server.url}/d",
            verification_uri_complete=None,
            expires_in=3,
            interval=1,
        )
        start = time.monotonic()
        with _http.client() as http, pytest.raises(NetworkError) as exc:
            _oauth.poll(http, provider, endpoints, device, ("openid",))
        elapsed = time.monotonic() - start
    assert "until the code expired" in exc.value.message
    assert elapsed < 5.0, elapsed
