"""`vault prune`: plans with the clock as an input, --dry-run equal to the real run, a provider
down (kept and marked, revoked next run), concurrency with login, no prompts, scheduling."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import (
    VAULT_BIN,
    VaultCLI,
    approved_login,
    configure_provider,
    finish_login,
    start_login,
    temporary_secret_service,
)
from tests.harness.clock import at
from tests.harness.provider import approve_complete, start_idp
from vault.policy.rules import Policy, parse_policy
from vault.secret import Secret
from vault.store.model import TokenRecord
from vault.tokens.prune import plan

NOW = 1_800_000_000


def _rec(name: str, **kw: object) -> TokenRecord:
    base: dict[str, object] = {
        "name": name,
        "provider": "github",
        "issuer": "https://github.com",
        "client_id": "c",
        "token_type": "Bearer",
        "access_token": Secret("at-" + name),
        "refresh_token": None,
        "id_token": None,
        "scopes": ("repo",),
        "issued_at": NOW - 60,
        "expires_at": None,
        "last_refresh": None,
        "source": "login",
        "extra": {"revocation_endpoint": "https://github.com/revoke"},
    }
    base.update(kw)
    return TokenRecord(**base)  # type: ignore[arg-type]


def _policy(text: str) -> Policy:
    return Policy([parse_policy(text, "/etc/vault/policies/p.yaml", system=True)])


def test_plan_covers_every_state() -> None:
    policy = _policy(
        "version: 1\nmax_token_age: 8h\nallowed_scopes: [repo, 'read:*']\n"
        "allowed_issuers: ['https://github.com']\n"
    )
    records = [
        _rec("fresh"),
        _rec("old", issued_at=NOW - 9 * 3600),
        _rec("old-imported", issued_at=NOW - 9 * 3600, source="import", extra={}),
        _rec("expired", expires_at=NOW - 1),
        _rec("expired-refreshable", expires_at=NOW - 1, refresh_token=Secret("rt")),
        _rec("bad-scope", scopes=("repo", "admin:org")),
        _rec("bad-issuer", issuer="https://evil.example"),
        _rec("pending", revoke_pending=True),
        _rec("no-expiry-ok", expires_at=None),
    ]
    actions = plan(records, policy, NOW, backend="keyring", vault_dir=Path("/v"))
    got = {a.name: (a.reason, a.revoke) for a in actions}
    assert got == {
        "old": ("max_token_age", True),
        "old-imported": ("max_token_age", False),
        "expired": ("expired", False),
        "bad-scope": ("scope", True),
        "bad-issuer": ("issuer", True),
        "pending": ("revoke_pending", True),
    }
    assert [a.name for a in actions] == sorted(got)
    old = next(a for a in actions if a.name == "old")
    assert old.source == "/etc/vault/policies/p.yaml:2"
    # The clock is an input: an hour earlier, "old" was still within its 8 hours.
    earlier = plan(records, policy, NOW - 3600 - 1, backend="keyring", vault_dir=Path("/v"))
    assert "old" not in {a.name for a in earlier}


def test_plan_storage_rule_removes_everything() -> None:
    policy = _policy("version: 1\nstorage:\n  key_backends: [passphrase]\n")
    actions = plan([_rec("a"), _rec("b")], policy, NOW, backend="keyring", vault_dir=Path("/v"))
    assert [(a.name, a.reason) for a in actions] == [("a", "storage"), ("b", "storage")]


def _policy_file(vault: VaultCLI, text: str) -> None:
    folder = vault.home / "policies"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "p.yaml").write_text(text)


def test_dry_run_equals_the_real_run(vault: VaultCLI) -> None:
    def imp(name: str, *args: str) -> None:
        r = vault.run("import", name, "--provider", "github", *args, input=f"tok-{name}-12345")
        assert r.returncode == 0, r

    imp("keep")
    imp("short", "--expires-in", "1")
    imp("admin", "--scope", "admin:org")
    imp("repo", "--scope", "repo")
    later = at(3)  # "short" has expired by then
    _policy_file(vault, "version: 1\ndenied_scopes: ['admin:*']\n")
    dry = vault.run("prune", "--dry-run", "--json", env=later)
    assert dry.returncode == 0, dry
    dry_doc = json.loads(dry.stdout)
    assert dry_doc["dry_run"] is True
    assert dry_doc["results"] == []
    assert vault.run("list", "--json").stdout.count('"name"') == 4  # nothing changed
    real = vault.run("prune", "--json", env=later)
    assert real.returncode == 0, real
    real_doc = json.loads(real.stdout)
    assert real_doc["plan"] == dry_doc["plan"]
    assert {a["name"]: a["reason"] for a in real_doc["plan"]} == {
        "admin": "scope",
        "short": "expired",
    }
    assert real_doc["counts"] == {"planned": 2, "deleted": 2, "revoked": 0, "pending": 0}
    names = [t["name"] for t in json.loads(vault.run("list", "--json").stdout)["tokens"]]
    assert names == ["keep", "repo"]
    pruned = vault.run("audit", "show", "--event", "pruned", "--json").stdout.splitlines()
    assert len(pruned) == 2
    # Idempotent.
    again = json.loads(vault.run("prune", "--json").stdout)
    assert again["counts"]["planned"] == 0


def _login(vault: VaultCLI, issuer: str) -> None:
    configure_provider(vault, issuer, ("openid", "offline_access"))
    code, _, err = approved_login(vault)
    assert code == 0, err


def test_provider_down_keeps_the_token_marked_and_retries(vault: VaultCLI) -> None:
    with start_idp() as idp:
        port = idp.port
        _login(vault, idp.issuer)
        access = vault.run("token", "local").stdout.strip()
    _policy_file(vault, "version: 1\nmax_token_age: 1s\n")
    later = at(3)
    r = vault.run("prune", "--json", env=later)
    assert r.returncode == 7, r
    doc = json.loads(r.stdout)
    assert doc["results"][0]["result"] == "kept_pending"
    listed = json.loads(vault.run("list", "--json", env=later).stdout)["tokens"]
    assert listed[0]["revoke_pending"] is True
    assert vault.run("token", "local", env=later).returncode in (4, 5)  # never handed out again
    with start_idp(port=port) as idp2:
        r = vault.run("prune", "--json", env=later)
        assert r.returncode == 0, r
        doc = json.loads(r.stdout)
        assert doc["results"][0]["result"] == "revoked_and_deleted"
        assert idp2.introspect(access)["active"] is False
    assert json.loads(vault.run("list", "--json").stdout)["tokens"] == []
    events = [
        json.loads(x)["outcome"]
        for x in vault.run("audit", "show", "--event", "pruned", "--json").stdout.splitlines()
    ]
    assert events == ["revoke_pending", "success"]


def test_prune_revokes_at_the_provider(vault: VaultCLI) -> None:
    with start_idp() as idp:
        _login(vault, idp.issuer)
        access = vault.run("token", "local").stdout.strip()
        _policy_file(vault, "version: 1\ndenied_scopes: [offline_access]\n")
        r = vault.run("prune")
        assert r.returncode == 0, r
        assert "revoked_and_deleted" in r.stdout
        assert idp.introspect(access)["active"] is False


def test_prune_concurrent_with_login_loses_nothing(vault: VaultCLI) -> None:
    for i in range(5):
        vault.run(
            "import",
            f"old{i}",
            "--provider",
            "github",
            "--expires-in",
            "1",
            input=f"tok-old-{i}-12345",
        )
    later = at(3)  # the old tokens have expired by then
    with start_idp() as idp:
        configure_provider(vault, idp.issuer, ("openid",))
        proc, event = start_login(vault, "local")
        results: list[int] = []

        def prune_many() -> None:
            for _ in range(4):
                results.append(vault.run("prune", "--json", env=later).returncode)

        pruner = threading.Thread(target=prune_many)
        pruner.start()
        approve_complete(str(event["verification_uri_complete"]))
        code, _, err = finish_login(proc)
        pruner.join(120)
        assert code == 0, err
    assert results == [0, 0, 0, 0]
    names = [t["name"] for t in json.loads(vault.run("list", "--json").stdout)["tokens"]]
    assert names == ["local"]
    assert vault.run("audit", "verify").returncode == 0


def test_unattended_never_prompts(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    assert v.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    start = time.monotonic()
    r = v.run("prune", env={"VAULT_PASSPHRASE_FILE": ""}, timeout=30)
    assert r.returncode == 6, r
    assert "never prompts" in r.stderr
    assert time.monotonic() - start < 20


def test_prune_names_the_vault_it_did_not_find(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    r = v.run("prune")
    assert r.returncode == 0, r
    assert f"vault: no vault at {v.vault_file}: nothing to prune" in r.stderr
    assert not v.home.exists()  # nothing created where no vault was
    r = v.run("prune", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["vault"] == str(v.vault_file)
    assert doc["plan"] == []
    assert doc["counts"]["planned"] == 0
    assert f"no vault at {v.vault_file}" in r.stderr


def test_unattended_keyring_unreachable_or_locked_exits_6(vault: VaultCLI, tmp_path: Path) -> None:
    """From cron: no D-Bus session, or a keyring locked (the screen locked, the session
    ended): exit 6 with the reason, never "nothing to prune"."""
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    r = vault.run("prune", env={"DBUS_SESSION_BUS_ADDRESS": ""}, timeout=30)
    assert r.returncode == 6, r
    assert "no D-Bus session" in r.stderr
    with temporary_secret_service(tmp_path / "ss") as service:
        v = VaultCLI(tmp_path / "vh2", dict(service.env()))
        assert v.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
        service.lock()
        r = v.run("prune", "--json", timeout=30)
        assert r.returncode == 6, r
        assert "locked" in r.stderr
        error = json.loads(r.stdout)  # --json: the error as one object, nothing else
        assert (error["event"], error["error"], error["exit"]) == ("error", "integrity", 6)
    assert "othing to prune" not in r.stderr


def test_storage_rule_prunes_what_other_commands_refuse(vault: VaultCLI) -> None:
    vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    _policy_file(vault, "version: 1\nstorage:\n  vault_dirs: ['/nowhere']\n")
    assert vault.run("token", "a").returncode == 5
    r = vault.run("prune", "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["plan"][0]["reason"] == "storage"


def test_schedule_prints_a_crontab_line_without_systemd(vault: VaultCLI) -> None:
    """Its format (tests/integration/test_prune_schedule.py runs it): umask, the pinned
    variables, this vault executable, output appended to the log in the state folder."""
    r = vault.run("prune", "--install-schedule", "--cron")
    assert r.returncode == 0, r
    line = r.stdout.strip()
    assert line.startswith(f"17 * * * * umask 077; VAULT_HOME={vault.home} ")
    assert f" {os.path.realpath(VAULT_BIN)} prune --json >> {vault.home}/prune.log 2>&1" in line
    assert "crontab -e" in r.stderr


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022])
def test_schedule_units_folders_are_private_under_any_umask(
    vault: VaultCLI, tmp_path: Path, umask: int
) -> None:
    """The systemd user folder vault creates for its units (and its missing parents) is 0700
    under any umask, and an existing one open to others is refused: whoever could replace the
    unit runs a command as you every hour. `systemctl` is a recording stand-in: no systemd
    user manager runs in the test machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 0\n')
    fake.chmod(0o755)
    config_home = tmp_path / "cfg"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(config_home)}

    def install() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VAULT_BIN, "prune", "--install-schedule"],
            env={**vault.full_env(), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=lambda: os.umask(umask),
        )

    proc = install()
    assert proc.returncode == 0, proc.stderr
    for folder in (config_home, config_home / "systemd", config_home / "systemd" / "user"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for unit in ("vault-prune.service", "vault-prune.timer"):
        assert stat.S_IMODE((config_home / "systemd" / "user" / unit).stat().st_mode) == 0o600
    assert "enable --now vault-prune.timer" in calls.read_text()
    # An existing folder others can write is refused, the units untouched.
    (config_home / "systemd" / "user").chmod(0o777)
    before = (config_home / "systemd" / "user" / "vault-prune.timer").read_bytes()
    again = install()
    assert again.returncode == 6, again.stderr
    assert "Traceback" not in again.stderr
    assert (config_home / "systemd" / "user" / "vault-prune.timer").read_bytes() == before
