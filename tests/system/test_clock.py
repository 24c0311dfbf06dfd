"""The clock moved forward and backward between commands, with libfaketime (Debian `faketime`)
preloaded into the `vault` process only: expiry, refresh, prune and max_token_age follow the clock
as README says, a clock moved backward crashes nothing and leaves an audit log that verifies.

The identity provider, the keyring daemon and this test keep the real clock. libfaketime moves
the monotonic clock by the same offset (constant within a process, so timeouts are unaffected):
with FAKETIME_DONT_FAKE_MONOTONIC=1, libfaketime 0.9.10 makes Python's time.sleep fail with
EINVAL (its clock_nanosleep wrapper shifts the absolute monotonic deadline), which `vault login`
would report as an internal error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VaultCLI, configure_provider, finish_login
from tests.harness.clock import at
from tests.harness.provider import IdP, approve_complete, start_idp

HOUR = 3600
DAY = 24 * HOUR


def _child_time(cmd: list[str], env: dict[str, str] | None = None) -> float:
    out = subprocess.run(
        [*cmd, sys.executable, "-c", "import time; print(time.time())"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=30,
    )
    return float(out.stdout)


def test_faketime_moves_the_clock_of_the_vault_process(vault: VaultCLI) -> None:
    """The tool works here, both ways, so that no test below passes for want of a moved clock."""
    now = time.time()
    assert abs(_child_time(["faketime", "-f", "+2h"]) - now - 2 * HOUR) < 30
    env = {**vault.full_env(), **at(-DAY)}
    assert abs(_child_time([], env) - now + DAY) < 30
    r = vault.run("import", "t", "--provider", "github", input="tok-faketime-0001")
    assert r.returncode == 0, r
    ahead = _tokens(vault, at(3 * HOUR))["t"]
    assert 3 * HOUR <= ahead["age_seconds"] < 3 * HOUR + 60


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp() -> Iterator[IdP]:
    with start_idp() as server:  # access tokens for an hour, rotating refresh tokens
        yield server


# Helpers fail with pytest.fail, not assert, so a broken step reads as such and never as the
# final check of a test failing.


def _ok(vault: VaultCLI, *args: str, env: dict[str, str] | None = None) -> str:
    r = vault.run(*args, env=env)
    if r.returncode != 0 or "Traceback" in r.stderr:
        pytest.fail(f"vault {' '.join(args)} failed: {r}")
    return r.stdout


def _tokens(vault: VaultCLI, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    doc = json.loads(_ok(vault, "list", "--json", env=env))
    return {t["name"]: t for t in doc["tokens"]}


def _audit(vault: VaultCLI, *filters: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in _ok(vault, "audit", "show", "--json", *filters).splitlines()]


def _login(
    vault: VaultCLI, idp: IdP, name: str, env: dict[str, str] | None = None
) -> dict[str, object]:
    configure_provider(vault, idp.issuer, ("openid", "offline_access"))
    proc = vault.popen("login", "local", "--name", name, "--json", env=env)
    assert proc.stdout is not None
    event = json.loads(proc.stdout.readline())
    approve_complete(str(event["verification_uri_complete"]))
    code, events, err = finish_login(proc)
    if code != 0:
        pytest.fail(f"login {name} failed ({code}): {err}")
    return events[-1]


def _policy(vault: VaultCLI, max_age: str) -> str:
    folder = vault.home / "policies"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    vault.home.chmod(0o700)
    path = folder / "age.yaml"
    path.write_text(f"version: 1\nmax_token_age: {max_age}\n")
    return f"{path}:2"


def _prune(vault: VaultCLI, env: dict[str, str], *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_ok(vault, "prune", "--json", *args, env=env))
    return doc


# --- the clock moved forward -----------------------------------------------------------------


def test_forward_expires_and_prunes_a_token_without_refresh_token(vault: VaultCLI) -> None:
    r = vault.run("import", "short", "--provider", "github", "--expires-in", "3600", input="tok-s1")
    assert r.returncode == 0, r
    assert vault.run("import", "keep", "--provider", "github", input="tok-k1").returncode == 0

    # Under five minutes left: "expiring"; past the expiry: "expired", not refreshable.
    assert _tokens(vault, at(HOUR - 120))["short"]["state"] == "expiring"
    later = _tokens(vault, at(2 * HOUR))
    assert later["short"]["state"] == "expired"
    assert later["short"]["expires_in"] < -HOUR + 60
    assert later["short"]["refreshable"] is False
    assert later["keep"]["state"] == "valid"  # no expiry: the clock cannot expire it

    refused = vault.run("token", "short", env=at(2 * HOUR))
    assert refused.returncode == 4, refused
    assert "no refresh token" in refused.stderr
    # The clock is an input, nothing was changed: on the real clock the token is still good.
    assert _ok(vault, "token", "short") == "tok-s1\n"
    assert _prune(vault, {}, "--dry-run")["plan"] == []

    dry = _prune(vault, at(2 * HOUR), "--dry-run")
    assert [(a["name"], a["reason"], a["revoke"]) for a in dry["plan"]] == [
        ("short", "expired", False)
    ]
    real = _prune(vault, at(2 * HOUR))
    assert real["plan"] == dry["plan"]
    assert real["results"] == [
        {
            "name": "short",
            "result": "deleted",
            "revocation": "not_attempted",
            "message": real["plan"][0]["detail"],
        }
    ]
    assert list(_tokens(vault)) == ["keep"]
    pruned = _audit(vault, "--event", "pruned")
    assert [(p["name"], p["outcome"]) for p in pruned] == [("short", "success")]
    assert vault.run("audit", "verify").returncode == 0


def test_forward_refreshes_a_login_token_when_asked_for_it(vault: VaultCLI, idp: IdP) -> None:
    _login(vault, idp, "fwd")
    first = _ok(vault, "token", "fwd").strip()
    ahead = at(2 * HOUR)
    assert _tokens(vault, ahead)["fwd"]["state"] == "refreshable"
    # Expired but refreshable is not prune's business (no policy here).
    assert _prune(vault, ahead, "--dry-run")["plan"] == []

    second = _ok(vault, "token", "fwd", env=ahead).strip()
    assert second != first
    assert idp.introspect(second)["active"] is True
    records = _audit(vault, "--token", "fwd")
    assert [(r["event"], r["outcome"]) for r in records[-2:]] == [
        ("refreshed", "success"),
        ("used", "success"),
    ]
    # Written on the moved clock.
    stamps = [r["time"] for r in records[-2:]]
    assert all(
        s > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + HOUR)) for s in stamps
    )
    status = json.loads(_ok(vault, "status", "fwd", "--json", env=ahead))
    assert status["state"] == "valid"
    assert status["last_refresh"] is not None
    assert vault.run("audit", "verify").returncode == 0


def test_max_token_age_follows_the_clock_and_refresh_never_resets_it(
    vault: VaultCLI, idp: IdP
) -> None:
    source = _policy(vault, "1h")
    _login(vault, idp, "aged")
    assert vault.run("token", "aged").returncode == 0
    # A refresh 50 minutes in does not make the token younger.
    _ok(vault, "refresh", "aged", env=at(50 * 60))
    last = _ok(vault, "token", "aged", env=at(59 * 60)).strip()
    assert idp.introspect(last)["active"] is True

    over = at(HOUR + 60)
    refused = vault.run("token", "aged", env=over)
    assert refused.returncode == 5, refused
    assert "max_token_age" in refused.stderr
    assert source in refused.stderr
    denial = _tokens(vault, over)["aged"]["policy_denial"]
    assert denial is not None
    assert (denial["rule"], denial["source"]) == ("max_token_age", source)
    denied = _audit(vault, "--event", "denied", "--token", "aged")
    assert [(d["rule"], d["source"]) for d in denied] == [("max_token_age", source)]

    doc = _prune(vault, over)
    assert [(a["name"], a["reason"], a["revoke"], a["source"]) for a in doc["plan"]] == [
        ("aged", "max_token_age", True, source)
    ]
    assert [(r["result"], r["revocation"]) for r in doc["results"]] == [
        ("revoked_and_deleted", "revoked")
    ]
    assert idp.introspect(last)["active"] is False  # revoked at the provider, grant and all
    # Gone for good: moving the clock back afterwards revives nothing.
    for offset in (0, -DAY):
        gone = vault.run("token", "aged", env=at(offset))
        assert gone.returncode == 4, gone
        assert "no token named" in gone.stderr
    assert vault.run("audit", "verify").returncode == 0


# --- the clock moved backward ----------------------------------------------------------------


def test_backward_breaks_nothing_and_the_audit_log_still_verifies(
    vault: VaultCLI, idp: IdP, tmp_path: Path
) -> None:
    _login(vault, idp, "back")
    r = vault.run("import", "imp", "--provider", "github", "--expires-in", "86400", input="tok-i1")
    assert r.returncode == 0, r
    html = tmp_path / "report.html"
    steps: list[tuple[int, tuple[str, ...]]] = [
        (-DAY, ("token", "back")),
        (0, ("token", "back")),
        (-365 * DAY, ("list", "--json")),
        (-DAY, ("refresh", "back")),
        (-2 * DAY, ("token", "back", "--min-valid", "60")),
        (HOUR, ("token", "imp")),
        (-2 * HOUR, ("token", "imp")),
        (-DAY, ("status", "back", "--json")),
        (-DAY, ("prune", "--json")),
        (-DAY, ("audit", "report", "--json")),
        (-DAY, ("audit", "report", "--html", str(html))),
        (-DAY, ("audit", "verify")),
        (0, ("audit", "verify")),
    ]
    for offset, args in steps:
        r = vault.run(*args, env=at(offset))
        assert r.returncode == 0, (offset, r)
        assert "Traceback" not in r.stderr, r
    assert html.stat().st_size > 0

    # Nothing was pruned or lost; a token from the "future" is shown as brand new, not negative.
    listed = _tokens(vault, at(-365 * DAY))
    assert set(listed) == {"back", "imp"}
    assert all(t["age_seconds"] >= 0 for t in listed.values())
    records = _audit(vault)
    stamps = [r["time"] for r in records]
    assert stamps != sorted(stamps), "the log's times never went backward: the test moved nothing"
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    verdict = json.loads(_ok(vault, "audit", "verify", "--json"))
    assert verdict["ok"] is True
    assert verdict["records"] == len(records)
    report = json.loads(_ok(vault, "audit", "report", "--json"))
    assert report["log"]["verified"] is True


def test_backward_after_login_cannot_stretch_max_token_age(vault: VaultCLI, idp: IdP) -> None:
    _policy(vault, "1h")
    ahead = at(2 * HOUR)
    _login(vault, idp, "ahead", env=ahead)  # the clock is two hours ahead at login
    # Then it is set right (moved back two hours), and read again 59 minutes after the login's
    # clock: if both are allowed the token is usable for 2 h 59 min under a 1 h policy.
    now = vault.run("token", "ahead")
    later = vault.run("token", "ahead", env=at(2 * HOUR + 59 * 60))
    if later.returncode != 0:  # 59 minutes after login on the login's own clock: allowed
        pytest.fail(f"refused within max_token_age on the login's own clock: {later}")
    assert now.returncode == 5, (
        "usable both 2 h before and 59 min after its login time under `max_token_age: 1h`",
        now,
    )


def _wait_inactive(idp: IdP, token: str, timeout: float) -> None:
    """Until the provider says ``token`` is no longer active (it expired)."""
    deadline = time.monotonic() + timeout
    while idp.introspect(token)["active"] is True:
        if time.monotonic() > deadline:
            pytest.fail("the access token did not expire at the provider")
        time.sleep(0.2)  # polling the provider's own answer, the real signal


def test_backward_after_refresh_does_not_hand_out_an_expired_token(vault: VaultCLI) -> None:
    with start_idp(access_ttl=2) as short:
        _login(vault, short, "skew")
        ahead = at(HOUR)
        _ok(vault, "refresh", "skew", env=ahead)  # on a clock an hour ahead
        dead = _ok(vault, "token", "skew", env=ahead).strip()
        _wait_inactive(short, dead, 15)
        handed = _ok(vault, "token", "skew").strip()  # the clock set right again
        assert short.introspect(handed)["active"] is True, "vault printed an expired token"


def test_a_use_refused_because_the_clock_passed_expiry_is_audited(vault: VaultCLI) -> None:
    r = vault.run("import", "short", "--provider", "github", "--expires-in", "60", input="tok-s2")
    assert r.returncode == 0, r
    refused = vault.run("token", "short", env=at(HOUR))
    if refused.returncode != 4 or "no refresh token" not in refused.stderr:
        pytest.fail(f"expected the expired token to be refused: {refused}")
    last = _audit(vault, "--token", "short")[-1]
    assert (last["event"], last["outcome"], last["command"]) == ("used", "failure", "token")
