"""Using tokens without seeing them: `vault exec`, `vault api` (the git credential helper:
test_git_credential.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import VAULT_BIN, VaultCLI, approved_login, configure_provider
from tests.harness.provider import start_idp

TOKEN = "ghp_" + "ExecCanary" * 3 + "abcdef"
PRINT_ENV_ARGV = (
    "import json, os, sys; print(json.dumps({'argv': sys.argv, 'env': dict(os.environ)}))"
)


def _import(vault: VaultCLI, *args: str) -> None:
    r = vault.run("import", "gh", "--provider", "github", "--scope", "repo", *args, input=TOKEN)
    assert r.returncode == 0, r


def test_exec_puts_the_token_in_the_environment_only(vault: VaultCLI) -> None:
    _import(vault)
    r = vault.run("exec", "gh", "--", sys.executable, "-c", PRINT_ENV_ARGV, "an-arg")
    assert r.returncode == 0, r
    child = json.loads(r.stdout)
    assert child["env"]["GH_TOKEN"] == TOKEN  # GitHub's own variable (gh reads it)
    assert "VAULT_TOKEN" not in child["env"]  # HashiCorp Vault's: never set by default
    assert all(TOKEN not in arg for arg in child["argv"])
    assert child["argv"][1:] == ["an-arg"]
    r = vault.run("exec", "gh", "--env", "MY_TOKEN", "--", sys.executable, "-c", PRINT_ENV_ARGV)
    child = json.loads(r.stdout)
    assert child["env"]["MY_TOKEN"] == TOKEN
    assert "GH_TOKEN" not in child["env"]
    used = [
        json.loads(x)
        for x in vault.run("audit", "show", "--event", "used", "--json").stdout.splitlines()
    ]
    assert [u["command"] for u in used] == [f"exec {os.path.basename(sys.executable)}"] * 2


def test_exec_passes_the_exit_code_through(vault: VaultCLI) -> None:
    _import(vault)
    assert vault.run("exec", "gh", "--", "sh", "-c", "exit 42").returncode == 42
    r = vault.run("exec", "gh", "--", "no-such-command-here")
    assert r.returncode == 127
    assert "command not found" in r.stderr
    for bad in (["exec", "gh"], ["exec", "gh", "--env", "1BAD", "--", "true"]):
        assert vault.run(*bad).returncode == 2


def test_exec_obeys_policy(vault: VaultCLI) -> None:
    _import(vault)
    folder = vault.home / "policies"
    folder.mkdir(mode=0o700)
    (folder / "p.yaml").write_text("version: 1\nallowed_scopes: ['read:*']\n")
    r = vault.run("exec", "gh", "--", "sh", "-c", "echo RAN")
    assert r.returncode == 5, r
    assert "RAN" not in r.stdout  # the command never ran


def test_exec_signal_and_stdin_reach_the_child(vault: VaultCLI) -> None:
    _import(vault)
    proc = subprocess.Popen(
        [VAULT_BIN, "exec", "gh", "--", "sh", "-c", "read line; echo got:$line"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=vault.full_env(),
    )
    out, _ = proc.communicate(b"hello\n", timeout=30)
    assert out == b"got:hello\n"
    proc = subprocess.Popen([VAULT_BIN, "exec", "gh", "--", "sleep", "30"], env=vault.full_env())
    # vault became the child: its process now runs `sleep` (same pid, sleep's executable and
    # argv), and nothing of vault is left to stand between the signal and the command.
    sleep = os.path.realpath(str(shutil.which("sleep")))
    deadline = time.monotonic() + 20
    while os.path.realpath(f"/proc/{proc.pid}/exe") != sleep and time.monotonic() < deadline:
        assert proc.poll() is None
        time.sleep(0.05)
    assert os.path.realpath(f"/proc/{proc.pid}/exe") == sleep
    assert Path(f"/proc/{proc.pid}/cmdline").read_bytes() == b"sleep\x0030\x00"
    assert _children(proc.pid) == []
    proc.terminate()
    assert proc.wait(10) == -15  # the signal reached the command itself


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_exec_replaces_vault_with_the_command(vault: VaultCLI) -> None:
    _import(vault)
    show = "import json, os; print(json.dumps([os.getpid(), os.getppid()]))"
    proc = subprocess.Popen(
        [VAULT_BIN, "exec", "gh", "--", sys.executable, "-c", show],
        stdout=subprocess.PIPE,
        env=vault.full_env(),
    )
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    # The command has vault's pid, and its parent is the one that started vault (this test).
    assert json.loads(out) == [proc.pid, os.getpid()]


def test_api_against_the_providers_userinfo(vault: VaultCLI) -> None:
    with start_idp() as idp:
        configure_provider(vault, idp.issuer, ("openid", "profile", "offline_access"))
        code, _, err = approved_login(vault, username="carol")
        assert code == 0, err
        r = vault.run("api", "local", f"{idp.issuer}/me")
        assert r.returncode == 0, r
        assert json.loads(r.stdout)["sub"] == "carol"
        # The token goes only to the provider's hosts unless asked explicitly.
        r = vault.run("api", "local", "http://127.0.0.2:9/steal")
        assert r.returncode == 2, r
        assert "refusing to send" in r.stderr
        r = vault.run("api", "local", "http://127.0.0.2:9/x", "--allow-host", "127.0.0.2:9")
        assert r.returncode == 7, r  # allowed, but nothing listens there
        r = vault.run("api", "local", f"{idp.issuer}/me", "-H", "Authorization: Bearer x")
        assert r.returncode == 2
        r = vault.run("api", "local", f"{idp.issuer}/no-such-endpoint")
        assert r.returncode == 7
        assert "HTTP 404" in r.stderr
    used = [
        json.loads(u)
        for u in vault.run("audit", "show", "--event", "used", "--json").stdout.splitlines()
    ]
    assert used[0]["command"] == f"api GET {idp.issuer.split('//')[1]}/me"


REROUTING_HEADERS = [
    "Host: evil.example",
    "host:127.0.0.2",
    "  HOST  : evil.example",
    "Host\t: evil.example",
    "Forwarded: for=1.2.3.4;host=evil.example",
    "X-Forwarded-Host: evil.example",
    "x-forwarded-for: 10.0.0.1",
    "X-Real-IP: 10.0.0.1",
    "authorization: Bearer other",
    "Proxy-Authorization: Basic eDp5",
    "Cookie: session=other",
]


def test_api_refuses_headers_that_reroute_the_request(vault: VaultCLI) -> None:
    from tests.harness.fake_oauth import fake_oauth

    _import(vault)
    with fake_oauth() as fake:
        url, allow = f"{fake.issuer}/revoke", f"127.0.0.1:{fake.port}"
        assert vault.run("api", "gh", url, "--allow-host", allow).returncode == 0
        for header in REROUTING_HEADERS:
            r = vault.run("api", "gh", url, "--allow-host", allow, "-H", header)
            assert r.returncode == 2, (header, r)
            assert "Traceback" not in r.stderr
        assert len(fake.requests) == 1  # only the call without a header reached the server


def test_a_refresh_before_exec_leaves_no_signal_held_in_the_command(vault: VaultCLI) -> None:
    """A refresh holds SIGINT/SIGTERM/SIGHUP/SIGQUIT off until its answer is written; the
    command `vault exec` then runs must start with none of them blocked (a blocked mask is
    inherited across exec), or it could never be interrupted."""
    with start_idp() as idp:
        configure_provider(vault, idp.issuer)
        code, _, err = approved_login(vault)
        assert code == 0, err
        show = "print([l for l in open('/proc/self/status') if l.startswith('SigBlk')][0])"
        r = vault.run(
            "exec", "local", "--env", "T", "--min-valid", "999999", "--", sys.executable, "-c", show
        )
        assert r.returncode == 0, r
        assert r.stdout.split() == ["SigBlk:", "0" * 16], r
        refreshes = [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]
        assert [g["result"] for g in refreshes] == ["ok"]  # it did refresh first
