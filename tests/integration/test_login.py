"""`vault login` and what follows it, against the real local identity provider (oidc-provider),
with the real `vault` executable and a scripted person approving on the provider's own pages."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import (
    SecretService,
    VaultCLI,
    approved_login,
    configure_provider,
    finish_login,
    read_record,
    start_login,
)
from tests.harness.provider import (
    IdP,
    approve_complete,
    approve_in_browser,
    chromium_available,
    start_idp,
)

SCOPES = ["openid", "offline_access", "repo"]


def _configure(vault: VaultCLI, idp: IdP) -> None:
    configure_provider(vault, idp.issuer, tuple(SCOPES))


@pytest.fixture
def idp() -> Iterator[IdP]:
    with start_idp() as server:
        yield server


@pytest.fixture
def configured(vault: VaultCLI, idp: IdP) -> VaultCLI:
    _configure(vault, idp)
    return vault


def login(vault: VaultCLI, *args: str) -> dict[str, object]:
    code, events, err = approved_login(vault, *args)
    assert code == 0, err
    return events[-1]


def test_full_login(configured: VaultCLI, idp: IdP) -> None:
    proc, event = start_login(configured, "local")
    assert event["event"] == "device_code"
    assert set(event) == {
        "event",
        "verification_uri",
        "verification_uri_complete",
        "user_code",
        "expires_in",
        "interval",
    }
    assert str(event["verification_uri"]).startswith(idp.issuer)
    approve_complete(str(event["verification_uri_complete"]))
    code, events, err = finish_login(proc)
    assert code == 0, err
    assert events == [
        {
            "event": "success",
            "name": "local",
            "provider": "local",
            "scopes": SCOPES,
            "expires_at": events[0]["expires_at"],
            "account": {"subject": "alice", "display": None},  # the ID token's sub
        }
    ]
    assert str(event["user_code"]) in err  # the person is shown the code on stderr
    assert "Check that 127.0.0.1:" in err  # the trust line names the host
    token = configured.run("token", "local")
    assert token.returncode == 0, token
    assert idp.introspect(token.stdout.strip())["active"] is True
    st = json.loads(configured.run("status", "local", "--json").stdout)
    assert st["scopes"] == SCOPES
    assert st["refreshable"] is True
    assert st["issuer"] == idp.issuer
    assert st["source"] == "login"


def test_login_with_name_scopes_and_ad_hoc_issuer(vault: VaultCLI, idp: IdP) -> None:
    event = login(
        vault,
        "--issuer",
        idp.issuer,
        "--client-id",
        "vault-cli",
        "--name",
        "adhoc",
        "--scope",
        "openid",
        "--scope",
        "read:org",
    )
    assert event["name"] == "adhoc"
    assert event["scopes"] == ["openid", "read:org"]
    assert vault.run("token", "adhoc").returncode == 0


def test_denied_login_stores_nothing(configured: VaultCLI) -> None:
    proc, event = start_login(configured, "local")
    approve_complete(str(event["verification_uri_complete"]), deny=True)
    code, events, err = finish_login(proc)
    assert code == 4, err
    assert events[-1]["event"] == "error"
    assert events[-1]["error"] == "access_denied"
    assert "denied" in err
    assert configured.run("token", "local").returncode == 4


def test_expired_code(vault: VaultCLI) -> None:
    with start_idp(device_code_ttl=2) as idp:
        _configure(vault, idp)
        proc, event = start_login(vault, "local")
        assert event["expires_in"] == 2
        code, events, err = finish_login(proc)
    assert code == 4, err
    assert events[-1]["error"] == "expired_token"
    assert "expired" in err
    assert vault.run("token", "local").returncode == 4


def test_slow_down_is_obeyed(vault: VaultCLI) -> None:
    with start_idp(slow_down_first=1, interval=1) as idp:
        _configure(vault, idp)
        proc, event = start_login(vault, "local")
        # Let the slow_down happen, then approve.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            polls = idp.polls().get(str(event["user_code"]), [])
            if polls:
                break
            time.sleep(0.2)
        approve_complete(str(event["verification_uri_complete"]))
        code, _, err = finish_login(proc)
        polls = idp.polls()[str(event["user_code"])]
    assert code == 0, err
    results = [p["result"] for p in polls]
    assert results[0] == "slow_down"
    assert "slow_down" not in results[1:]  # after slowing down, never polled too early again
    times = [int(str(p["t"])) for p in polls]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # interval 1 s, +5 s after slow_down for this and every later poll (RFC 8628 §3.5).
    assert all(gap >= 6000 - 50 for gap in gaps), gaps


def test_refresh_rotates_and_saves_before_use(vault: VaultCLI) -> None:
    with start_idp(access_ttl=60) as idp:
        _configure(vault, idp)
        login(vault, "local")
        before = read_record(vault, "local")
        assert before is not None
        old_access = vault.run("token", "local").stdout.strip()
        # 60 s of life left is within --min-valid 120: refresh first.
        r = vault.run("token", "local", "--min-valid", "120")
        assert r.returncode == 0, r
        new_access = r.stdout.strip()
        after = read_record(vault, "local")
        assert after is not None
        assert new_access != old_access
        assert after["access_token"] == new_access
        assert after["refresh_token"] != before["refresh_token"]  # rotated, and saved
        assert after["issued_at"] == before["issued_at"]  # refresh never resets the age
        assert after["last_refresh"] is not None
        assert idp.introspect(str(after["refresh_token"]))["active"] is True
        assert idp.introspect(str(before["refresh_token"]))["active"] is False
        # `vault refresh` forces one.
        r = vault.run("refresh", "local", "--json")
        assert r.returncode == 0, r
        assert json.loads(r.stdout)["last_refresh"] is not None


def test_concurrent_token_calls_refresh_once(vault: VaultCLI) -> None:
    with start_idp(access_ttl=60) as idp:
        _configure(vault, idp)
        login(vault, "local")
        before = read_record(vault, "local")
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(lambda _: vault.run("token", "local", "--min-valid", "120"), range(4))
            )
        assert all(r.returncode == 0 for r in results), results
        # Had two processes each refreshed, rotation would have given them different tokens
        # (or one would have spent a used refresh token and failed with invalid_grant).
        assert len({r.stdout for r in results}) == 1
        after = read_record(vault, "local")
        assert after is not None
        assert before is not None
        assert after["refresh_token"] != before["refresh_token"]
        assert idp.introspect(str(after["refresh_token"]))["active"] is True


def test_revoked_grant_means_log_in_again(configured: VaultCLI, idp: IdP) -> None:
    login(configured, "local")
    record = read_record(configured, "local")
    assert record is not None
    idp.revoke(str(record["refresh_token"]), "refresh_token")
    r = configured.run("refresh", "local")
    assert r.returncode == 4, r
    assert "invalid_grant" in r.stderr
    assert "log in" in r.stderr.lower()


def test_revoke_confirmed_by_introspection(configured: VaultCLI, idp: IdP) -> None:
    login(configured, "local")
    access = configured.run("token", "local").stdout.strip()
    record = read_record(configured, "local")
    assert record is not None
    assert idp.introspect(access)["active"] is True
    r = configured.run("revoke", "local", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["revoked"] is True
    assert doc["deleted"] is True
    assert idp.introspect(access) == {"active": False}
    assert idp.introspect(str(record["refresh_token"])) == {"active": False}
    assert configured.run("token", "local").returncode == 4


def test_revoke_with_provider_down_keeps_the_token(configured: VaultCLI, idp: IdP) -> None:
    login(configured, "local")
    idp.stop()
    r = configured.run("revoke", "local")
    assert r.returncode == 7, r
    assert "token was kept" in r.stderr
    assert configured.run("status", "local").returncode == 0
    r = configured.run("revoke", "local", "--force")
    assert r.returncode == 0, r
    assert "NOT revoked" in r.stderr
    assert configured.run("status", "local").returncode == 4


def test_ctrl_c_while_polling_stores_nothing(configured: VaultCLI, idp: IdP) -> None:
    proc, event = start_login(configured, "local")
    deadline = time.monotonic() + 30
    while not idp.polls().get(str(event["user_code"])):  # polling has begun
        assert time.monotonic() < deadline, "vault login never polled"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    code, events, err = finish_login(proc)
    assert code == 130, err
    assert events[-1] == {
        "event": "error",
        "error": "interrupted",
        "message": "interrupted; nothing was stored",
        "hint": None,
        "exit": 130,
    }
    assert sum(e["event"] == "error" for e in events) == 1  # not again from vault.cli.main
    assert "Traceback" not in err
    assert configured.run("token", "local").returncode == 4


def test_missing_client_id_says_how_to_register(vault: VaultCLI) -> None:
    r = vault.run("login", "github", "--no-browser")
    assert r.returncode == 3, r
    assert "no client_id" in r.stderr
    assert "github.com/settings/developers" in r.stderr
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        "providers:\n  work:\n    issuer: https://idp.example\n"
    )
    r = vault.run("login", "work")
    assert r.returncode == 3, r
    assert "register an OAuth application" in r.stderr


def test_issuer_must_match_exactly(vault: VaultCLI, idp: IdP) -> None:
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  local:\n    issuer: {idp.issuer}/\n    client_id: vault-cli\n"
    )
    r = vault.run("login", "local")
    assert r.returncode == 7, r
    assert "is not the configured issuer" in r.stderr


@pytest.mark.skipif(not chromium_available(), reason="Debian's chromium is not installed")
def test_login_approved_in_headless_chromium(configured: VaultCLI, idp: IdP) -> None:
    proc, event = start_login(configured, "local")
    approve_in_browser(str(event["verification_uri_complete"]), username="bob")
    code, events, err = finish_login(proc)
    assert code == 0, err
    assert events[-1]["event"] == "success"
    access = configured.run("token", "local").stdout.strip()
    assert idp.introspect(access)["sub"] == "bob"


def test_login_fails_fast_when_the_vault_cannot_be_used(
    configured: VaultCLI, idp: IdP, tmp_path: Path, secret_service: SecretService
) -> None:
    r = configured.run(
        "login", "local", env={"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}, timeout=30
    )
    # No keyring: nothing can be stored, so the person is not asked to approve anything.
    assert r.returncode == 6, r
    assert "keyring is unavailable" in r.stderr
    assert "Enter" not in r.stderr
    assert idp.polls() == {}
