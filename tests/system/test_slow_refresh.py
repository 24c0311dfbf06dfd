"""The promise: one slow request (a refresh against a slow provider) never delays another client.

Against the real local identity provider with its refresh answers held back REFRESH_DELAY_MS (the
grant is made, and logged, at once: the refresh token presented is spent while vault waits for
the answer). While a first `vault token a --min-valid BIG` (or `vault refresh a`) waits for that
answer, started only once the provider's log shows the grant:

* `vault token b`, a token that needs no refresh, `vault list` and `vault import c` (a write)
  all finish while the first refresher is still running: they exit before it does (ordering,
  not a threshold on wall time);
* a second `vault token a --min-valid BIG`, started meanwhile, waits for the first and then
  prints the very token the first one got, without a request of its own: the provider's log
  shows a's refresh token presented once, and nothing presented twice.

Directly, and through the agent (one process, one thread per request, the same use_token)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conftest import VaultCLI, approved_login, configure_provider, read_records
from tests.harness.provider import IdP, start_idp

REFRESH_DELAY_MS = 3000
IMPORTED = b"ghp_" + b"C" * 36 + b"\n"
BIG = "999999"  # --min-valid beyond the provider's 3600 s access tokens: a refresh is due


def _sha256(text: object) -> str:
    return hashlib.sha256(str(text).encode()).hexdigest()


def _refresh_grants(idp: IdP) -> list[dict[str, object]]:
    return [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]


def _wait_for_grant(idp: IdP, refresh_token: object, proc: subprocess.Popen[bytes]) -> None:
    """Until the provider has made the grant for ``refresh_token`` (its answer is then held
    back REFRESH_DELAY_MS): ``proc`` is waiting for the answer from then on."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(g["presented_sha256"] == _sha256(refresh_token) for g in _refresh_grants(idp)):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    pytest.fail("the refresh never reached the provider")


@contextlib.contextmanager
def _agent(vault: VaultCLI) -> Iterator[None]:
    started = vault.run("agent", "start", "--idle", "0")
    assert started.returncode == 0, started
    try:
        yield
    finally:
        vault.run("agent", "stop")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out.decode(), err.decode()


def _output(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """What an exited process (stdin closed, a few lines of output) said."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    code = proc.wait(timeout=60)
    with proc.stdout, proc.stderr:
        return code, proc.stdout.read().decode(), proc.stderr.read().decode()


@pytest.mark.parametrize("with_agent", [False, True], ids=["direct", "agent"])
@pytest.mark.parametrize("first", ["token", "refresh"])
def test_a_slow_refresh_delays_no_other_command(
    vault: VaultCLI, first: str, with_agent: bool
) -> None:
    with start_idp(refresh_delay_ms=REFRESH_DELAY_MS) as idp, contextlib.ExitStack() as stack:
        configure_provider(vault, idp.issuer)
        for name in ("a", "b"):
            code, _, err = approved_login(vault, "local", "--name", name)
            assert code == 0, err
        before = read_records(vault)
        if with_agent:
            stack.enter_context(_agent(vault))
        args = ("token", "a", "--min-valid", BIG) if first == "token" else ("refresh", "a")
        started = time.monotonic()
        refresher = vault.popen(*args)
        stack.callback(_kill, refresher)
        _wait_for_grant(idp, before["a"]["refresh_token"], refresher)
        second = vault.popen("token", "a", "--min-valid", BIG)
        stack.callback(_kill, second)
        # Everything else at once, while a's answer is held back: a use of another token, a
        # read, a write.
        others_started = time.monotonic()
        others = {
            "token b": vault.popen("token", "b"),
            "list": vault.popen("list", "--json"),
            "import c": vault.popen("import", "c", "--provider", "github"),
        }
        for proc in others.values():
            assert proc.stdin is not None
            if proc is others["import c"]:
                proc.stdin.write(IMPORTED)
            proc.stdin.close()
        took: dict[str, float] = {}
        while len(took) < len(others) and time.monotonic() < others_started + 60:
            for what, proc in others.items():
                if what not in took and proc.poll() is not None:
                    took[what] = time.monotonic() - others_started
            time.sleep(0.005)
        results = {what: _output(proc) for what, proc in others.items()}
        # They are all done, and both refreshers of a are still waiting.
        assert second.poll() is None, ("the second refresher did not wait", took)
        assert refresher.poll() is None, ("they waited for a's refresh", took)
        for what, (code, _, err) in results.items():
            assert code == 0, (what, err)
        assert results["token b"][1] == f"{before['b']['access_token']}\n"
        assert {"a", "b"} <= {t["name"] for t in json.loads(results["list"][1])["tokens"]}

        code, out, err = _finish(refresher)
        a_took = time.monotonic() - started
        assert code == 0, err
        code2, out2, err2 = _finish(second)
        assert code2 == 0, err2
        after = read_records(vault)
        new_access = after["a"]["access_token"]
        assert new_access != before["a"]["access_token"]
        if first == "token":
            assert out == f"{new_access}\n"
        assert out2 == f"{new_access}\n", "the second refresher did not use the first one's answer"
        assert after["b"]["access_token"] == before["b"]["access_token"]
        assert set(after) == {"a", "b", "c"}

        # The provider: a's refresh token presented once, and nothing presented twice.
        grants = _refresh_grants(idp)
        presented = Counter(str(g["presented_sha256"]) for g in grants)
        assert presented == {_sha256(before["a"]["refresh_token"]): 1}, grants
        assert [g["result"] for g in grants] == ["ok"]
        assert _sha256(after["a"]["refresh_token"]) == grants[0]["issued_refresh_sha256"]
        # The audit log: one refresh, two uses of a (with `vault token`), one of b.
        shown = vault.run("audit", "show", "--json")
        records = [json.loads(line) for line in shown.stdout.splitlines()]
        events = Counter((r["event"], r["name"], r["outcome"]) for r in records)
        assert events[("refreshed", "a", "success")] == 1
        assert events[("used", "a", "success")] == (2 if first == "token" else 1)
        assert events[("used", "b", "success")] == 1
        assert vault.run("audit", "verify").returncode == 0
        print(
            f"\nslow refresh ({first}, {'agent' if with_agent else 'direct'}): a's refresh "
            f"{a_took:.2f} s (answer held back {REFRESH_DELAY_MS / 1000:g} s); meanwhile "
            + ", ".join(f"{what} {t:.2f} s" for what, t in took.items())
        )
