"""Tests of the local OAuth test provider (tests/harness/idp) and its Python harness.

These run the real provider (``node tests/harness/idp/server.mjs``) and talk to it with
httpx directly, as an RFC 8628 device-flow client would; nothing is mocked.
They need ``npm ci --prefix tests/harness/idp`` to have been run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import provider as idp_harness
from tests.harness.provider import IdP, approve, approve_complete, approve_in_browser, start_idp

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT_ID = idp_harness.PUBLIC_CLIENT_ID
SCOPE = "openid offline_access repo"

StartIdP = Callable[..., IdP]


@pytest.fixture
def idp_factory() -> Iterator[StartIdP]:
    """Start providers with any :func:`start_idp` options; all are stopped afterwards."""
    started: list[IdP] = []

    def factory(**kwargs: Any) -> IdP:
        idp = start_idp(**kwargs)
        started.append(idp)
        return idp

    try:
        yield factory
    finally:
        for idp in started:
            idp.stop()


@pytest.fixture
def idp(idp_factory: StartIdP) -> IdP:
    """A provider with the default options (interval 1)."""
    return idp_factory()


def device_authorization(idp: IdP, scope: str = SCOPE) -> dict[str, Any]:
    """POST the device authorization request for ``vault-cli``; return the JSON."""
    resp = httpx.post(idp.url("/device/auth"), data={"client_id": CLIENT_ID, "scope": scope})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def poll(idp: IdP, device_code: str) -> httpx.Response:
    """One device-code token request."""
    return httpx.post(
        idp.url("/token"),
        data={"client_id": CLIENT_ID, "grant_type": DEVICE_GRANT, "device_code": device_code},
    )


def poll_until_done(idp: IdP, device: dict[str, Any], limit: float = 30) -> httpx.Response:
    """Poll as a well-behaved client (interval, +5 s on slow_down) until not pending."""
    interval = float(device["interval"])
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        resp = poll(idp, device["device_code"])
        error = resp.json().get("error") if resp.status_code == 400 else None
        if error == "authorization_pending":
            time.sleep(interval)
        elif error == "slow_down":
            interval += 5
            time.sleep(interval)
        else:
            return resp
    raise AssertionError("device flow did not finish")


def refresh(idp: IdP, refresh_token: str) -> httpx.Response:
    """A refresh_token grant request for ``vault-cli``."""
    return httpx.post(
        idp.url("/token"),
        data={
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
    )


def login(idp: IdP, scope: str = SCOPE) -> dict[str, Any]:
    """Run a whole approved device flow; return the token response JSON."""
    device = device_authorization(idp, scope)
    approve(device["verification_uri"], device["user_code"])
    resp = poll(idp, device["device_code"])
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_discovery_issuer_is_exact(idp: IdP) -> None:
    assert idp.issuer == f"http://127.0.0.1:{idp.port}"
    meta = httpx.get(idp.url("/.well-known/openid-configuration")).json()
    assert meta["issuer"] == idp.issuer
    assert meta["device_authorization_endpoint"] == idp.url("/device/auth")
    assert meta["token_endpoint"] == idp.url("/token")
    assert meta["revocation_endpoint"] == idp.url("/token/revocation")
    assert meta["introspection_endpoint"] == idp.url("/token/introspection")
    assert DEVICE_GRANT in meta["grant_types_supported"]
    for scope in ("openid", "offline_access", "repo", "read:org", "admin:org"):
        assert scope in meta["scopes_supported"]


def test_full_device_flow(idp: IdP) -> None:
    device = device_authorization(idp)
    assert device["interval"] == 1
    assert device["verification_uri"] == idp.url("/device")
    assert device["user_code"] in device["verification_uri_complete"]
    pending = poll(idp, device["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    approve(device["verification_uri"], device["user_code"], username="alice")
    time.sleep(device["interval"])
    resp = poll(idp, device["device_code"])
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert tokens["access_token"]
    assert tokens["refresh_token"]
    assert tokens["token_type"] == "Bearer"
    assert "repo" in tokens["scope"].split()
    assert tokens["expires_in"] == 3600

    info = idp.introspect(tokens["access_token"])
    assert info["active"] is True
    assert info["sub"] == "alice"
    assert info["client_id"] == CLIENT_ID

    log = idp.polls()[device["user_code"]]
    assert [entry["result"] for entry in log] == ["authorization_pending", "ok"]

    # The device code is single use: replaying it fails (and revokes the grant).
    replay = poll(idp, device["device_code"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert idp.introspect(tokens["access_token"])["active"] is False


def test_approve_complete_uri_and_ttls(idp_factory: StartIdP) -> None:
    idp = idp_factory(access_ttl=120, refresh_ttl=300)
    device = device_authorization(idp, "openid offline_access read:org read:user")
    approve_complete(device["verification_uri_complete"], username="carol")
    tokens = poll_until_done(idp, device).json()
    assert tokens["expires_in"] == 120
    assert set(tokens["scope"].split()) == {"openid", "offline_access", "read:org", "read:user"}
    info = idp.introspect(tokens["refresh_token"])
    assert info["active"] is True
    assert info["sub"] == "carol"
    assert isinstance(info["exp"], int)
    assert isinstance(info["iat"], int)
    assert info["exp"] - info["iat"] == 300


def test_denied_approval_gives_access_denied(idp: IdP) -> None:
    device = device_authorization(idp)
    approve(device["verification_uri"], device["user_code"], deny=True)
    resp = poll(idp, device["device_code"])
    assert resp.status_code == 400
    assert resp.json()["error"] == "access_denied"


def test_expired_device_code_gives_expired_token(idp_factory: StartIdP) -> None:
    idp = idp_factory(device_code_ttl=2)
    device = device_authorization(idp)
    assert device["expires_in"] == 2
    time.sleep(3)
    resp = poll(idp, device["device_code"])
    assert resp.status_code == 400
    assert resp.json()["error"] == "expired_token"
    with pytest.raises(idp_harness.ApprovalError, match="incorrect"):
        approve(device["verification_uri"], device["user_code"])


def test_slow_down_first_poll_is_logged(idp_factory: StartIdP) -> None:
    idp = idp_factory(slow_down_first=1)
    device = device_authorization(idp)
    first = poll(idp, device["device_code"])
    assert first.status_code == 400
    assert first.json()["error"] == "slow_down"
    log = idp.polls()[device["user_code"]]
    assert len(log) == 1
    assert log[0]["result"] == "slow_down"
    assert log[0]["required_interval_ms"] == 6000
    assert isinstance(log[0]["t"], int)


def test_polling_faster_than_interval_gives_slow_down(idp: IdP) -> None:
    device = device_authorization(idp)
    assert poll(idp, device["device_code"]).json()["error"] == "authorization_pending"
    fast = poll(idp, device["device_code"])
    assert fast.status_code == 400
    assert fast.json()["error"] == "slow_down"
    # The required interval is now 1 + 5 s: waiting just 1 s is still too fast.
    time.sleep(1.1)
    assert poll(idp, device["device_code"]).json()["error"] == "slow_down"
    log = idp.polls()[device["user_code"]]
    assert [entry["result"] for entry in log] == [
        "authorization_pending",
        "slow_down",
        "slow_down",
    ]
    assert [entry["required_interval_ms"] for entry in log] == [1000, 6000, 11000]
    times = [entry["t"] for entry in log]
    assert all(isinstance(t, int) for t in times)


def test_refresh_rotates_and_old_token_is_rejected(idp: IdP) -> None:
    tokens = login(idp)
    first = refresh(idp, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["access_token"] != tokens["access_token"]
    assert "repo" in rotated["scope"].split()

    old = refresh(idp, tokens["refresh_token"])
    assert old.status_code == 400
    assert old.json()["error"] == "invalid_grant"
    # Reusing a rotated refresh token revokes the whole grant.
    assert idp.introspect(rotated["refresh_token"])["active"] is False


def test_refresh_without_rotation_keeps_the_token(idp_factory: StartIdP) -> None:
    idp = idp_factory(rotate_refresh=False)
    tokens = login(idp)
    first = refresh(idp, tokens["refresh_token"]).json()
    assert first["refresh_token"] == tokens["refresh_token"]
    second = refresh(idp, tokens["refresh_token"])
    assert second.status_code == 200, second.text


def test_revocation_then_introspection_is_inactive(idp: IdP) -> None:
    tokens = login(idp)
    assert idp.introspect(tokens["access_token"])["active"] is True
    assert idp.introspect(tokens["refresh_token"])["active"] is True
    # The public client revokes its own refresh token (RFC 7009).
    resp = httpx.post(
        idp.url("/token/revocation"),
        data={
            "client_id": CLIENT_ID,
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
        },
    )
    assert resp.status_code == 200, resp.text
    assert idp.introspect(tokens["refresh_token"]) == {"active": False}
    assert idp.introspect(tokens["access_token"]) == {"active": False}
    assert refresh(idp, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_introspector_revokes_access_token_kills_grant(idp: IdP) -> None:
    tokens = login(idp)
    idp.revoke(tokens["access_token"], "access_token")
    assert idp.introspect(tokens["access_token"])["active"] is False
    assert idp.introspect(tokens["refresh_token"])["active"] is False


def test_grant_extra_scope_is_added(idp_factory: StartIdP) -> None:
    idp = idp_factory(grant_extra_scope="admin:org")
    tokens = login(idp)
    assert set(tokens["scope"].split()) == {"openid", "offline_access", "repo", "admin:org"}
    refreshed = refresh(idp, tokens["refresh_token"]).json()
    assert "admin:org" in refreshed["scope"].split()
    info = idp.introspect(refreshed["access_token"])
    assert isinstance(info["scope"], str)
    assert "admin:org" in info["scope"].split()


def test_token_type_and_omit_scope_misbehaviours(idp_factory: StartIdP) -> None:
    idp = idp_factory(token_type="mac", omit_scope=True)
    tokens = login(idp)
    assert tokens["token_type"] == "mac"
    assert "scope" not in tokens


@pytest.mark.skipif(
    not idp_harness.chromium_available(),
    reason=f"{idp_harness.CHROMIUM} is absent (apt-get install -y chromium)",
)
def test_approve_in_browser(idp: IdP) -> None:
    device = device_authorization(idp)
    approve_in_browser(device["verification_uri_complete"], username="bob")
    resp = poll(idp, device["device_code"])
    assert resp.status_code == 200, resp.text
    assert idp.introspect(resp.json()["access_token"])["sub"] == "bob"


def test_approve_refuses_non_loopback_urls() -> None:
    with pytest.raises(ValueError):
        approve("http://example.com/device", "ABCD-EFGH")
    with pytest.raises(ValueError):
        approve_complete("http://127.0.0.1:1/device")


def test_stop_is_idempotent_and_exits_cleanly(idp_factory: StartIdP) -> None:
    idp = idp_factory()
    with idp:
        assert idp.proc.poll() is None
        assert "ready at" in idp.stderr_text()
    assert idp.proc.returncode == 0  # SIGTERM handled: clean exit, not killed
    idp.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(idp.url("/.well-known/openid-configuration"), timeout=2)


def test_start_failure_reports_server_stderr() -> None:
    with pytest.raises(idp_harness.IdPError, match="--port must be an integer"):
        start_idp(port=-1)


def test_missing_node_modules_says_npm_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(idp_harness, "NODE_MODULES", str(tmp_path / "node_modules"))
    with pytest.raises(idp_harness.IdPError, match=r"npm ci --prefix tests/harness/idp"):
        start_idp()


def test_command_line_serve_and_approve() -> None:
    harness = str(Path(idp_harness.__file__))
    serve = subprocess.Popen(
        [sys.executable, harness, "serve", "--interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert serve.stdout is not None
        issuer = serve.stdout.readline().strip()
        assert issuer.startswith("http://127.0.0.1:")
        resp = httpx.post(issuer + "/device/auth", data={"client_id": CLIENT_ID, "scope": SCOPE})
        device = resp.json()
        done = subprocess.run(
            [sys.executable, harness, "approve", device["verification_uri_complete"]],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "approved"
        token = httpx.post(
            issuer + "/token",
            data={
                "client_id": CLIENT_ID,
                "grant_type": DEVICE_GRANT,
                "device_code": device["device_code"],
            },
        )
        assert token.status_code == 200, token.text
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=10) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(issuer + "/.well-known/openid-configuration", timeout=2)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
        if serve.stdout is not None:
            serve.stdout.close()
        if serve.stderr is not None:
            serve.stderr.close()
