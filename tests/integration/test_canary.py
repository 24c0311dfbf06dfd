"""Canary tokens of every format pushed through every command with --debug logging: absent
from stdout (except `vault token`'s own), stderr, the audit log, the vault file and argv."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import VaultCLI
from tests.harness.envwatch import events, popen_watched, run_watched
from tests.harness.fake_oauth import FakeOAuth, fake_oauth, json_reply

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJjYW5hcnkiLCJpYXQiOjE3MDAwMDAwMDB9."
    "c2lnbmF0dXJlLWNhbmFyeS1jYW5hcnktY2FuYXJ5"
)
CANARIES = {
    "ghp": "ghp_" + "Canary1234" * 3 + "abcdef",
    "gho": "gho_" + "Canary5678" * 3 + "abcdef",
    "ghu": "ghu_" + "CanaryABCD" * 3 + "abcdef",
    "ghs": "ghs_" + "CanaryEFGH" * 3 + "abcdef",
    "ghr": "ghr_" + "CanaryIJKL" * 3 + "abcdef",
    "github_pat": "github_pat_" + "11ABCDEFG0" + "CanaryPat_" * 8 + "xy",
    "jwt": JWT,
    "glpat": "glpat-" + "CanaryGitLab12345678",
}


def _outputs_clean(results: Sequence[object], secret: str, *, allowed_stdout: int = 0) -> None:
    seen_stdout = 0
    for r in results:
        stdout = getattr(r, "stdout", "")
        stderr = getattr(r, "stderr", "")
        assert secret not in stderr, r
        if secret in stdout:
            seen_stdout += 1
            assert stdout.strip() == secret, r  # only as `vault token`'s whole output
    assert seen_stdout == allowed_stdout


def _files_clean(vault: VaultCLI, secret: str) -> None:
    for path in vault.home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("kind", sorted(CANARIES))
def test_imported_canary_never_leaks(vault: VaultCLI, kind: str, tmp_path: Path) -> None:
    secret = CANARIES[kind]
    d = "--debug"
    results = [
        vault.run("import", "c", "--provider", "github", "--scope", "repo", d, input=secret),
        vault.run("import", "c", "--provider", "github", d, input=secret),  # duplicate: error
        vault.run("token", "c", d),
        vault.run("list", d),
        vault.run("list", "--json", d),
        vault.run("status", d),
        vault.run("status", "c", "--json", d),
        vault.run("refresh", "c", d),  # no refresh token: an error
        vault.run("doctor", "--json", d),
        vault.run("policy", "show", d),
        vault.run("audit", "show", "--json", d),
        vault.run("audit", "verify", d),
        vault.run("audit", "report", "--json", d),
        vault.run("audit", "report", "--csv", d),
        vault.run("audit", "report", "--html", str(tmp_path / "r.html"), d),
        vault.run("audit", "hash", d, input=secret),
        vault.run("rekey", d),
        vault.run("token", "c", d, "-v"),
        vault.run("logout", "c", d),
        vault.run("token", "c", d),  # gone: an error
    ]
    _outputs_clean(results, secret, allowed_stdout=2)
    _files_clean(vault, secret)
    assert secret not in (tmp_path / "r.html").read_text()


REFRESHED = CANARIES["ghu"]


def _canary_provider(fake: FakeOAuth, access: str, refresh: str) -> None:
    fake.routes["/token"] = lambda form: json_reply(
        fake.token_response(
            access_token=access if form.get("grant_type") != "refresh_token" else REFRESHED,
            refresh_token=refresh,
            id_token=JWT,
            scope="openid repo",
        )
    )


def test_login_refresh_revoke_with_canaries_and_debug_http(vault: VaultCLI, tmp_path: Path) -> None:
    access, refresh = CANARIES["gho"], CANARIES["ghr"]
    watch_log = tmp_path / "events.jsonl"
    with fake_oauth() as fake:
        _canary_provider(fake, access, refresh)
        fake.routes["/device_authorization"] = lambda _: json_reply(
            fake.device_response(device_code=CANARIES["ghs"], expires_in=30)
        )
        vault.home.mkdir(mode=0o700)
        (vault.home / "config.yaml").write_text(
            f"providers:\n  fake:\n    issuer: {fake.issuer}\n    client_id: cli\n"
            "    scopes: [openid, repo]\n"
        )
        proc = popen_watched(vault, watch_log, "login", "fake", "--no-browser", "--debug")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results: list[object] = [
            type("R", (), {"stdout": out.decode(), "stderr": err.decode()})(),
            # refresh, then print
            run_watched(vault, watch_log, "token", "fake", "--min-valid", "999999", "--debug"),
            run_watched(vault, watch_log, "refresh", "fake", "--debug"),
            run_watched(vault, watch_log, "status", "fake", "--json", "--debug"),
            run_watched(vault, watch_log, "revoke", "fake", "--debug"),
        ]
        forms = [form for _, form in fake.requests]
    assert "http.request" in err.decode()  # debug HTTP logging was on...
    assert [r.returncode for r in results[1:]] == [0, 0, 0, 0], results  # type: ignore[attr-defined]
    watched = json.dumps(events(watch_log))
    for secret in (access, refresh, JWT, CANARIES["ghs"], REFRESHED):
        assert secret not in watched  # never in vault's environment, nor given to a program
        _outputs_clean(results, secret, allowed_stdout=1 if secret == REFRESHED else 0)
        _files_clean(vault, secret)
    assert results[1].stdout == REFRESHED + "\n"  # type: ignore[attr-defined]
    # ...and the provider did receive the secrets it should (they went over the wire).
    assert any(f.get("refresh_token") == refresh for f in forms)
    assert any(f.get("device_code") == CANARIES["ghs"] for f in forms)


def test_error_messages_from_servers_are_scrubbed(vault: VaultCLI) -> None:
    secret = CANARIES["ghp"]
    with fake_oauth() as fake:
        fake.routes["/device_authorization"] = lambda _: json_reply(
            {"error": "invalid_client", "error_description": f"bad client, token was {secret}"},
            400,
        )
        vault.home.mkdir(mode=0o700)
        (vault.home / "config.yaml").write_text(
            f"providers:\n  fake:\n    issuer: {fake.issuer}\n    client_id: cli\n"
        )
        r = vault.run("login", "fake", "--debug", "--json")
    assert r.returncode == 4, r
    assert secret not in r.stderr
    assert secret not in r.stdout
    assert "invalid_client" in r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[-1]["error"] == "invalid_client"


# Run by `vault exec` in place of vault (the same process: tests/integration/test_use.py checks
# it): what the process was given, read from /proc.
_SHOW_PROC = (
    "import json, os; print(json.dumps({'pid': os.getpid(), 'environ': "
    "open('/proc/self/environ', 'rb').read().decode(), 'cmdline': "
    "open('/proc/self/cmdline', 'rb').read().decode()}))"
)


def test_the_token_never_enters_vaults_environment_or_argv(vault: VaultCLI, tmp_path: Path) -> None:
    """Not in /proc of a process the test started (that shows only what the test gave it):
    what each running `vault` does, watched from inside (tests/harness/envwatch.py), and what
    the program `vault exec` becomes was given."""
    secret = CANARIES["ghp"]
    log = tmp_path / "events.jsonl"
    ask = "protocol=https\nhost=github.com\n\n"
    results = [
        run_watched(vault, log, "import", "c", "--provider", "github", input=secret),
        run_watched(vault, log, "token", "c"),
        run_watched(vault, log, "token", "c", "--debug", "-v"),
        run_watched(vault, log, "status", "c", "--json"),
        run_watched(vault, log, "credential-helper", "get", "--name", "c", input=ask),
        run_watched(
            vault,
            log,
            "exec",
            "c",
            "--env",
            "GH_TOKEN",
            "--",
            sys.executable,
            "-c",
            _SHOW_PROC,
            "an-arg",
        ),
    ]
    assert [r.returncode for r in results] == [0] * len(results), results
    assert results[1].stdout == secret + "\n"
    assert f"password={secret}" in results[4].stdout.splitlines()
    proc = json.loads(results[5].stdout)
    carrying = [v.partition("=")[0] for v in proc["environ"].split("\0") if secret in v]
    assert carrying == ["GH_TOKEN"]  # only where it was asked for
    assert secret not in proc["cmdline"]
    assert proc["cmdline"].split("\0")[-2] == "an-arg"
    watched = events(log)
    execs = [e for e in watched if e[0] == "os.exec"]
    assert len(execs) == 1
    assert [k for k, v in execs[0][3].items() if secret in v] == ["GH_TOKEN"]
    assert all(secret not in arg for arg in execs[0][2])
    for event in watched:
        if event is not execs[0]:
            assert secret not in json.dumps(event), event
    assert secret not in " ".join(os.environ.values())
