"""Policies: parsing every kind of bad file, strictest-wins combination, enforcement at every
point (login against the real provider, use, storage, terminal), and edits taking effect."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI, approved_login, configure_provider
from tests.harness.clock import at
from tests.harness.provider import start_idp
from vault.errors import ConfigError
from vault.policy.rules import parse_policy

REPO = Path(__file__).resolve().parents[2]


def _user_policy(vault: VaultCLI, text: str, name: str = "user.yaml") -> Path:
    folder = vault.home / "policies"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    vault.home.chmod(0o700)
    path = folder / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def _system_policy(tmp_path: Path, text: str, name: str = "org.yaml") -> Path:
    folder = tmp_path / "system-policies"
    folder.mkdir(exist_ok=True, mode=0o755)
    path = folder / name
    path.write_text(text)
    path.chmod(0o644)
    return path


BAD = {
    "unknown top key": ("version: 1\nmax_age: 8h\n", ":2: unknown key 'max_age'"),
    "unknown storage key": (
        "version: 1\nstorage:\n  backends: [keyring]\n",
        ":3: unknown key 'backends' in storage",
    ),
    "unknown provider key": (
        "version: 1\nproviders:\n  github:\n    scopes: [repo]\n",
        ":4: unknown key 'scopes' in provider 'github'",
    ),
    "unknown tokens key": ("version: 1\ntokens:\n  show: true\n", ":3: unknown key 'show'"),
    "duration without unit": (
        "version: 1\nmax_token_age: 8\n",
        ":2: max_token_age: 8 needs a unit",
    ),
    "duration bad unit": ("version: 1\nmax_token_age: 8x\n", ":2: max_token_age: '8x' is not"),
    "duration zero": ("version: 1\nmax_token_age: 0h\n", ":2: max_token_age: '0h' must be longer"),
    "duration negative": ("version: 1\nmax_token_age: -1h\n", ":2: max_token_age: '-1h' is not"),
    "duration bool": ("version: 1\nmax_token_age: true\n", ":2: max_token_age: a duration"),
    "duration in provider": (
        "version: 1\nproviders:\n  github:\n    max_token_age: soon\n",
        ":4: max_token_age: 'soon'",
    ),
    "scopes not list": ("version: 1\nallowed_scopes: repo\n", ":2: allowed_scopes must be a list"),
    "scope with space": (
        "version: 1\nallowed_scopes: ['a b']\n",
        ":2: allowed_scopes: 'a b' is not",
    ),
    "scope with quote": ("version: 1\ndenied_scopes: ['a\"b']\n", ":2: denied_scopes:"),
    "scope not string": ("version: 1\nallowed_scopes: [1]\n", ":2: allowed_scopes: every entry"),
    "backend unknown": (
        "version: 1\nstorage:\n  key_backends: [plaintext]\n",
        ":3: key_backends: 'plaintext'",
    ),
    "issuer not url": ("version: 1\nallowed_issuers: [github]\n", ":2: allowed_issuers: 'github'"),
    "terminal not bool": (
        "version: 1\ntokens:\n  print_to_terminal: 'no'\n",
        ":3: print_to_terminal must be true",
    ),
    "no version": ("max_token_age: 8h\n", ":1: version: missing"),
    "version 2": ("version: 2\n", ":1: version: 2 is not supported"),
    "empty": ("", "the policy is empty"),
    "not a mapping": ("- 1\n- 2\n", "a policy must be a mapping"),
    "custom tag": ("version: 1\nmax_token_age: !!python/name:os.system 8h\n", "tag"),
    "alias bomb": (
        "version: 1\na: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
        "anchors and aliases",
    ),
    "duplicate key": ("version: 1\nmax_token_age: 8h\nmax_token_age: 9h\n", ":3: duplicate key"),
    "not yaml": ("version: 1\nallowed_scopes: [\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_policy_is_an_error_naming_file_line_and_key(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "/p/policy.yaml", system=False)
    assert expected in info.value.message
    assert info.value.message.startswith("/p/policy.yaml")


def test_bad_policy_through_the_cli_denies_everything(vault: VaultCLI) -> None:
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    path = _user_policy(vault, "version: 1\nmax_token_age: forever\n")
    for args in (["token", "a"], ["list"], ["import", "b", "--provider", "github"]):
        r = vault.run(*args, input="tok-bbbbbbbb")
        assert r.returncode == 3, (args, r)
        assert f"{path}:2: max_token_age: 'forever'" in r.stderr
        assert r.stdout == ""
    r = vault.run("policy", "check", str(path))
    assert r.returncode == 3
    assert "FAIL" in r.stdout


def test_huge_policy_refused(vault: VaultCLI) -> None:
    _user_policy(vault, "version: 1\n" + "# padding\n" * 20000)
    r = vault.run("list")
    assert r.returncode == 3, r
    assert "over the 65536-byte limit" in r.stderr


def test_loose_or_foreign_policy_files_deny(vault: VaultCLI, tmp_path: Path) -> None:
    system = _system_policy(tmp_path, "version: 1\nmax_token_age: 8h\n")
    env = {"VAULT_SYSTEM_POLICY_DIR": str(system.parent)}
    assert vault.run("list", env=env).returncode == 0
    system.chmod(0o666)
    r = vault.run("list", env=env)
    assert r.returncode == 3, r
    assert "writable by group or others" in r.stderr
    system.chmod(0o644)
    system.parent.chmod(0o777)
    r = vault.run("list", env=env)
    assert r.returncode == 3, r
    system.parent.chmod(0o755)


def test_shipped_policies_load(vault: VaultCLI) -> None:
    files = sorted(str(p) for p in (REPO / "policies").glob("*.yaml"))
    assert len(files) >= 3
    r = vault.run("policy", "check", *files, "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    assert all(f["rules"] >= 4 for f in doc["files"])
    strict = parse_policy((REPO / "policies/strict.yaml").read_text(), "strict", system=True)
    assert strict.max_token_age is not None
    assert strict.max_token_age.value == 8 * 3600
    assert strict.print_to_terminal is not None
    assert strict.print_to_terminal.value is False
    ci = parse_policy((REPO / "policies/ci.yaml").read_text(), "ci", system=True)
    assert ci.key_backends is not None
    assert ci.key_backends.value == ("passphrase",)
    dev = parse_policy(
        (REPO / "policies/developer-workstation.yaml").read_text(), "dev", system=True
    )
    assert dev.max_token_age is not None
    assert dev.max_token_age.value == 7 * 86400


def test_strictest_wins_across_system_and_user(vault: VaultCLI, tmp_path: Path) -> None:
    system = _system_policy(
        tmp_path,
        "version: 1\nmax_token_age: 8h\nallowed_scopes: [repo, 'read:*']\n"
        "providers:\n  github:\n    max_token_age: 12h\n",
    )
    user = _user_policy(
        vault,
        "version: 1\nmax_token_age: 30d\nallowed_scopes: ['read:*', admin]\n"
        "denied_scopes: ['read:secrets']\n",
    )
    env = {"VAULT_SYSTEM_POLICY_DIR": str(system.parent)}
    r = vault.run("policy", "show", "github", "--json", env=env)
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    # The user's 30d and the provider's 12h cannot loosen the system's 8h.
    assert doc["effective"]["max_token_age"] == {
        "value": "8h",
        "seconds": 28800,
        "source": f"{system}:2",
    }
    sources = {(e["rule"], e["source"]) for e in doc["rules"]}
    assert ("allowed_scopes", f"{system}:3") in sources
    assert ("allowed_scopes", f"{user}:3") in sources
    assert ("denied_scopes", f"{user}:4") in sources
    assert ("providers.github.max_token_age", f"{system}:6") in sources
    text = vault.run("policy", "show", "--wide", env=env)  # --wide: paths not wrapped
    assert text.returncode == 0
    assert f"{system}:2 (system)" in text.stdout
    # repo: allowed by the system, not by the user -> refused; read:org allowed by both.
    r = vault.run(
        "import", "a", "--provider", "github", "--scope", "repo", env=env, input="tok-aaaaaaaa"
    )
    assert r.returncode == 5, r
    assert f"scope 'repo' is not in the allowed scopes (rule allowed_scopes, {user}:3)" in r.stderr
    # admin: the user allows it, the system does not -> refused, naming the system file.
    r = vault.run(
        "import", "a", "--provider", "github", "--scope", "admin", env=env, input="tok-aaaaaaaa"
    )
    assert r.returncode == 5, r
    assert f"{system}:3" in r.stderr
    r = vault.run(
        "import",
        "a",
        "--provider",
        "github",
        "--scope",
        "read:secrets",
        env=env,
        input="tok-aaaaaaaa",
    )
    assert r.returncode == 5, r
    assert "denied_scopes" in r.stderr
    r = vault.run(
        "import", "a", "--provider", "github", "--scope", "read:org", env=env, input="tok-aaaaaaaa"
    )
    assert r.returncode == 0, r


def test_max_token_age_on_use_and_edits_take_effect(vault: VaultCLI) -> None:
    path = _user_policy(vault, "version: 1\nmax_token_age: 1h\n")
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    assert vault.run("token", "a").stdout == "tok-aaaaaaaa\n"
    later = at(3)  # three seconds on
    path.write_text("version: 1\nmax_token_age: 2s\n")  # stricter: the next command obeys
    r = vault.run("token", "a", env=later)
    assert r.returncode == 5, r
    assert r.stdout == ""
    assert f"over the maximum 2s since login (rule max_token_age, {path}:2)" in r.stderr
    listed = json.loads(vault.run("list", "--json", env=later).stdout)["tokens"][0]
    assert listed["policy_denial"]["rule"] == "max_token_age"
    assert "denied:max_token_age" in vault.run("list", env=later).stdout


def test_storage_rules(vault: VaultCLI) -> None:
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    path = _user_policy(vault, "version: 1\nstorage:\n  key_backends: [passphrase]\n")
    r = vault.run("token", "a")
    assert r.returncode == 5, r
    assert "the keyring key backend is not allowed (allowed: passphrase) " in r.stderr
    assert f"{path}:3" in r.stderr
    r = vault.run("doctor", "--json")
    assert r.returncode == 5, r
    checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["storage policy"]["status"] == "fail"
    path.write_text("version: 1\nstorage:\n  vault_dirs: ['/somewhere/else']\n")
    r = vault.run("list")
    assert r.returncode == 5, r
    assert "is not an allowed place" in r.stderr
    path.write_text(f"version: 1\nstorage:\n  vault_dirs: ['{vault.home}']\n")
    assert vault.run("token", "a").returncode == 0


def test_print_to_terminal(vault: VaultCLI) -> None:
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    _user_policy(vault, "version: 1\ntokens:\n  print_to_terminal: false\n")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [VAULT_BIN, "token", "a"],
            stdout=slave,
            stderr=subprocess.PIPE,
            env=vault.full_env(),
            timeout=30,
            check=False,
        )
        os.close(slave)
        slave = -1
        assert proc.returncode == 5, proc.stderr
        assert b"tokens.print_to_terminal" in proc.stderr
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    piped = vault.run("token", "a")  # a pipe is fine
    assert piped.stdout == "tok-aaaaaaaa\n"


def _configure_idp(vault: VaultCLI, issuer: str, scopes: str) -> None:
    configure_provider(vault, issuer, tuple(s.strip() for s in scopes.split(",")))


def test_login_scopes_refused_before_the_device_code(vault: VaultCLI) -> None:
    with start_idp() as idp:
        _configure_idp(vault, idp.issuer, "openid, offline_access, repo")
        path = _user_policy(vault, "version: 1\nallowed_scopes: [openid, offline_access]\n")
        r = vault.run("login", "local", "--json")
        assert r.returncode == 5, r
        assert (
            f"scope 'repo' is not in the allowed scopes (rule allowed_scopes, {path}:2)" in r.stderr
        )
        events = [json.loads(line) for line in r.stdout.splitlines()]
        assert [e["event"] for e in events] == ["error"]  # no device code was ever requested
        assert idp.polls() == {}
        path.write_text("version: 1\nallowed_issuers: ['https://other.example']\n")
        r = vault.run("login", "local")
        assert r.returncode == 5, r
        assert "allowed_issuers" in r.stderr


def test_granted_scopes_beyond_policy_are_revoked_and_not_stored(vault: VaultCLI) -> None:
    with start_idp(grant_extra_scope="admin:org") as idp:
        _configure_idp(vault, idp.issuer, "openid, offline_access, repo")
        _user_policy(vault, "version: 1\ndenied_scopes: ['admin:*']\n")
        code, _, err = approved_login(vault)
    assert code == 5, err
    assert "scope 'admin:org' is denied" in err
    assert "revoked and nothing was stored" in err
    assert vault.run("token", "local").returncode == 4


@pytest.mark.parametrize(
    "policy",
    [
        "version: 1\ndenied_scopes: ['admin:*']\n",
        "version: 1\nallowed_scopes: [openid, offline_access, repo]\n",
    ],
    ids=["denied", "not allowed"],
)
@pytest.mark.parametrize("command", ["token", "refresh"])
def test_scopes_granted_on_refresh_beyond_policy_are_never_handed_out(
    vault: VaultCLI, policy: str, command: str
) -> None:
    """The real provider grants only what was asked at login, then adds admin:org to a refresh
    answer. The token is not printed (not even once), the refusal names the rule and is
    audited as a denial, the grant is revoked at the provider, and the token needs a new login:
    the next use hands out nothing and asks the provider nothing."""
    with start_idp(grant_extra_scope_on_refresh="admin:org") as idp:
        _configure_idp(vault, idp.issuer, "openid, offline_access, repo")
        path = _user_policy(vault, policy)
        code, _, err = approved_login(vault)
        assert code == 0, err
        old_access = vault.run("token", "local").stdout.strip()
        args = (
            ("token", "local", "--min-valid", "999999")
            if command == "token"
            else ("refresh", "local")
        )
        r = vault.run(*args)
        assert r.returncode == 5, r
        assert r.stdout == "", r  # the over-granted token never left vault
        assert "Traceback" not in r.stderr
        errors = [line for line in r.stderr.splitlines() if line.startswith("vault: error: ")]
        assert len(errors) == 1, r
        assert "scope 'admin:org'" in errors[0]
        assert str(path) in errors[0]
        assert "granted it on refresh" in errors[0]
        assert "vault login local --name local" in errors[0]
        grants = idp.grants()
        refreshes = [g for g in grants["grants"] if g["grant_type"] == "refresh_token"]
        assert [g["result"] for g in refreshes] == ["ok"]
        # Revoked at once: the new refresh token, which ends the whole grant.
        revoked = [v["token_sha256"] for v in grants["revocations"] if v["found"] == "RefreshToken"]
        assert revoked == [refreshes[0]["issued_refresh_sha256"]]
        assert idp.introspect(old_access) == {"active": False}
        # Never handed out again, and the provider is not asked again.
        r = vault.run("token", "local")
        assert r.returncode == 4, r
        assert "needs a new login" in r.stderr
        assert r.stdout == ""
        assert len([g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]) == 1
        status = json.loads(vault.run("status", "local", "--json").stdout)
        assert status["state"] == "needs_login"
        assert status["needs_login"]["cause"] == "scope"
        assert "admin:org" in status["scopes"]
        assert status["policy_denial"] is not None
        shown = vault.run("audit", "show", "--event", "denied", "--json").stdout.splitlines()
        denials = [json.loads(line) for line in shown]
        assert [(d["outcome"], d["command"]) for d in denials] == [("denied", "refresh")]
        assert "admin:org" in denials[0]["scopes"]
        assert denials[0]["rule"] in ("denied_scopes", "allowed_scopes")
        assert denials[0]["source"].startswith(str(path))
        assert vault.run("audit", "verify").returncode == 0
        # prune deletes it: dead, and against policy
        r = vault.run("prune", "--json")
        assert r.returncode == 0, r
        assert json.loads(vault.run("list", "--json").stdout)["tokens"] == []


def test_refresh_never_resets_the_age(vault: VaultCLI) -> None:
    with start_idp(access_ttl=3600) as idp:
        _configure_idp(vault, idp.issuer, "openid, offline_access")
        _user_policy(vault, "version: 1\nmax_token_age: 4s\n")
        code, _, err = approved_login(vault)
        assert code == 0, err
        assert vault.run("refresh", "local").returncode == 0
        later = at(5)  # five seconds on
        # Over age: refreshing is refused too (no refresh token spent on a token nobody may
        # use), and the refreshes before did not reset the age.
        r = vault.run("refresh", "local", env=later)
        assert r.returncode == 5, r
        assert "max_token_age" in r.stderr
        r = vault.run("token", "local", env=later)
        assert r.returncode == 5, r
        assert "max_token_age" in r.stderr
