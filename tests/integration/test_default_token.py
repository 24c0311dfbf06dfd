"""The default token: `vault token`, `exec`, `api`, `logout` and `setup-git` without NAME use the
only token, or the one `vault switch NAME` chose; several and no default, a deleted default,
or a default file vault did not write are clear errors. Through the real `vault` executable,
in process and through the agent (whose `vault token` path must stay fast)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VaultCLI
from tests.harness.fake_oauth import fake_oauth, json_reply
from tests.integration.test_hot_path import HEAVY

A = "ghp_" + "DefaultA" * 4 + "abcd"
B = "ghp_" + "DefaultB" * 4 + "abcd"
PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


def _import(vault: VaultCLI, name: str, token: str, provider: str = "github") -> None:
    r = vault.run("import", name, "--provider", provider, "--scope", "repo", input=token)
    assert r.returncode == 0, r


def _used(vault: VaultCLI) -> list[dict[str, object]]:
    path = vault.home / "audit.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in events if e["event"] == "used"]


def test_the_only_token_is_the_default(vault: VaultCLI) -> None:
    _import(vault, "a", A)
    r = vault.run("token")
    assert (r.returncode, r.stdout) == (0, A + "\n"), r
    r = vault.run("exec", "--", sys.executable, "-c", PRINT_ENV)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["GH_TOKEN"] == A
    r = vault.run("switch")
    assert (r.returncode, r.stdout) == (0, "a (the only stored token)\n"), r
    assert json.loads(vault.run("switch", "--json").stdout)["source"] == "only"
    assert [u["name"] for u in _used(vault)] == ["a", "a"]
    r = vault.run("logout")
    assert r.returncode == 0, r
    assert "Deleted 'a' locally" in r.stderr
    assert json.loads(vault.run("list", "--json").stdout)["tokens"] == []
    r = vault.run("token")
    assert r.returncode == 4, r
    assert "the vault holds no tokens" in r.stderr


def test_several_tokens_and_no_default_is_an_error_listing_them(vault: VaultCLI) -> None:
    _import(vault, "a", A)
    _import(vault, "b", B)
    for args in (
        ["token"],
        ["exec", "--", "true"],
        ["api", "/user"],
        ["logout"],
        ["setup-git", "--dry-run"],
    ):
        r = vault.run(*args)
        assert r.returncode == 2, (args, r)
        assert "2 tokens are stored and none is the default: name one (a, b)" in r.stderr, r
        assert "vault switch NAME" in r.stderr
        assert A not in r.stderr + r.stdout
        assert B not in r.stderr + r.stdout
    assert not (vault.home / "audit.jsonl").exists() or _used(vault) == []
    assert len(json.loads(vault.run("list", "--json").stdout)["tokens"]) == 2
    r = vault.run("switch")
    assert r.returncode == 0, r
    assert r.stdout.startswith("none: 2 tokens are stored")
    # Many: the list is cut.
    for i in range(12):
        _import(vault, f"t{i:02}", f"tok-many-{i:02}-abcdefgh")
    r = vault.run("token")
    assert r.returncode == 2, r
    assert "14 tokens are stored" in r.stderr
    assert "and 4 more" in r.stderr


def test_switch_sets_shows_and_forgets_the_default(vault: VaultCLI) -> None:
    _import(vault, "a", A)
    _import(vault, "b", B)
    r = vault.run("switch", "b")
    assert r.returncode == 0, r
    assert "The default token is now 'b'." in r.stderr
    stored = vault.home / "default-name"
    assert stored.read_bytes() == b"b\n"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert vault.run("token").stdout == B + "\n"
    assert vault.run("token", "a").stdout == A + "\n"  # a NAME always wins
    assert vault.run("switch").stdout == "b (set with `vault switch`)\n"
    doc = json.loads(vault.run("switch", "--json").stdout)
    assert (doc["default"], doc["source"], doc["tokens"]) == ("b", "switch", ["a", "b"])
    r = vault.run("switch", "b")  # again: the same file
    assert r.returncode == 0
    assert stored.read_bytes() == b"b\n"
    r = vault.run("switch", "nosuch")
    assert r.returncode == 4, r
    assert "no token named 'nosuch'" in r.stderr
    assert stored.read_bytes() == b"b\n"  # unchanged
    for bad in (["switch", "bad name"], ["switch", "--unset", "a"]):
        r = vault.run(*bad)
        assert r.returncode == 2, r
        assert "Traceback" not in r.stderr
    r = vault.run("switch", "--unset")
    assert (r.returncode, r.stderr) == (0, "Forgot the default token.\n"), r
    assert not stored.exists()
    assert vault.run("switch", "--unset").stderr == "No default token was set.\n"
    assert vault.run("token").returncode == 2


def test_logging_out_the_default_forgets_it(vault: VaultCLI) -> None:
    _import(vault, "a", A)
    _import(vault, "b", B)
    _import(vault, "c", "ghp_" + "DefaultC" * 4 + "abcd")
    assert vault.run("switch", "a").returncode == 0
    r = vault.run("logout", "b")  # not the default: it stays
    assert r.returncode == 0
    assert "It was the default token" not in r.stderr
    assert vault.run("token").stdout == A + "\n"
    r = vault.run("logout")
    assert r.returncode == 0, r
    assert "Deleted 'a' locally" in r.stderr
    assert "It was the default token; none is set now" in r.stderr
    assert not (vault.home / "default-name").exists()
    assert vault.run("token").stdout.startswith("ghp_DefaultC")  # the only one left
    doc = json.loads(vault.run("logout", "--json").stdout)
    assert (doc["name"], doc["was_default"]) == ("c", False)


def test_a_default_that_is_no_longer_stored_is_an_error(vault: VaultCLI) -> None:
    """A default left naming a token that is gone (deleted by an older vault, by prune or a
    restored backup): never a silent fall back to another token, even the only one."""
    _import(vault, "a", A)
    (vault.home / "default-name").write_text("gone\n")
    (vault.home / "default-name").chmod(0o600)
    for args in (["token"], ["exec", "--", "true"], ["logout"]):
        r = vault.run(*args)
        assert r.returncode == 2, (args, r)
        assert "the default token 'gone' (set with `vault switch`) is no longer stored" in r.stderr
        assert "(stored: a)" in r.stderr
    assert vault.run("switch").stdout.startswith("none: the default token 'gone'")
    assert vault.run("switch", "a").returncode == 0
    assert vault.run("token").stdout == A + "\n"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: (p.write_text("a\n"), p.chmod(0o644)), "accessible by group or others"),
        (lambda p: (p.write_text("two words\n"), p.chmod(0o600)), "does not hold a token name"),
        (lambda p: (p.write_bytes(b"a\x1b[2J\n"), p.chmod(0o600)), "does not hold a token name"),
        (lambda p: (p.write_bytes(b"\xff\n"), p.chmod(0o600)), "does not hold a token name"),
        (lambda p: (p.write_text("a\n" * 200), p.chmod(0o600)), "over the limit"),
        (lambda p: p.symlink_to(p.parent / "elsewhere"), "symlink"),
        (lambda p: p.mkdir(), "not a regular file"),
    ],
    ids=["loose", "words", "escape", "binary", "huge", "symlink", "folder"],
)
def test_a_default_file_vault_did_not_write_is_refused(
    vault: VaultCLI, setup: object, expected: str
) -> None:
    _import(vault, "a", A)
    (vault.home / "elsewhere").write_text("a\n")
    assert callable(setup)
    setup(vault.home / "default-name")
    r = vault.run("token")
    assert r.returncode == 6, r
    assert expected in r.stderr, r
    assert "\x1b" not in r.stderr
    assert "Traceback" not in r.stderr
    assert A not in r.stdout
    assert vault.run("token", "a").stdout == A + "\n"  # a NAME needs no default


def test_api_without_name_uses_the_default(vault: VaultCLI) -> None:
    with fake_oauth() as fake:
        fake.routes["/api/user"] = lambda _: json_reply({"login": "octocat"})
        vault.home.mkdir(mode=0o700, exist_ok=True)
        (vault.home / "config.yaml").write_text(
            f"providers:\n  gh:\n    preset: github\n    issuer: {fake.issuer}\n"
            "    client_id: Iv1.x\n"
        )
        _import(vault, "a", A, provider="gh")
        r = vault.run("api", f"{fake.issuer}/api/user")
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {"login": "octocat"}
    assert _used(vault)[-1]["name"] == "a"


# --- through the agent: the fast path -------------------------------------------------------


@pytest.fixture
def pvault(passphrase_vault: VaultCLI, tmp_path: Path) -> VaultCLI:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    passphrase_vault.env["XDG_RUNTIME_DIR"] = str(run)
    return passphrase_vault


def _bare(vault: VaultCLI) -> VaultCLI:
    """The same vault with no way to its key but the agent."""
    env = dict(vault.env)
    env.pop("VAULT_PASSPHRASE_FILE")
    return VaultCLI(vault.home, env)


@contextlib.contextmanager
def _agent(vault: VaultCLI) -> Iterator[int]:
    r = vault.run("agent", "start")
    assert r.returncode == 0, r
    pid = json.loads(vault.run("agent", "status", "--json").stdout)["pid"]
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


_PROBE = (
    "import sys\n"
    "from vault.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _probe(vault: VaultCLI, *argv: str) -> tuple[int, str, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        env=vault.full_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )
    return proc.returncode, proc.stdout, set(proc.stderr.split())


def test_the_agent_serves_the_default_token_and_the_client_imports_next_to_nothing(
    pvault: VaultCLI,
) -> None:
    _import(pvault, "a", A)
    bare = _bare(pvault)
    with _agent(pvault) as pid:
        code, out, loaded = _probe(bare, "token")
        assert (code, out) == (0, A + "\n"), loaded
        assert "vault.keys.agent" in loaded
        top = ("json", "re", "typing", "pathlib", "cryptography", "argon2", "enum", "argparse")
        parts: tuple[str, ...] = ("vault.store", "vault.policy", "vault.tokens", "vault.audit")
        parts = (*parts, "vault.cli.app", "vault.cli.parser")
        heavy = sorted(m for m in loaded if m.split(".")[0] in top or m.startswith(parts))
        assert heavy == []
        _import(pvault, "b", B)
        r = bare.run("token")  # the agent's refusal, in the same words
        assert r.returncode == 2, r
        assert "2 tokens are stored and none is the default: name one (a, b)" in r.stderr
        assert pvault.run("switch", "b").returncode == 0
        assert bare.run("token").stdout == B + "\n"
        (pvault.home / "default-name").write_text("gone\n")
        r = bare.run("token")
        assert r.returncode == 2, r
        assert "the default token 'gone'" in r.stderr
    used = _used(pvault)
    assert [(u["name"], u.get("agent")) for u in used] == [("a", pid), ("b", pid)]


def test_in_process_the_default_token_imports_nothing_heavy(vault: VaultCLI) -> None:
    _import(vault, "a", A)
    code, out, loaded = _probe(vault, "token")
    assert (code, out) == (0, A + "\n")
    assert "vault.store.vault" in loaded  # the probe saw the command's modules
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert sorted(heavy) == []


# --- exec's variable: the provider's own ----------------------------------------------------


def test_exec_uses_the_providers_own_variable_or_asks_for_env(
    vault: VaultCLI, tmp_path: Path
) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        "providers:\n"
        "  ghe:\n    preset: github\n    issuer: https://ghe.example.com\n    client_id: x\n"
        "  corp:\n    issuer: https://idp.example.com\n    client_id: x\n"
    )
    tokens = {
        "gh": ("github", A),
        "gl": ("gitlab", "glpat-" + "ExecVar" * 3),
        "ghe": ("ghe", "ghp_" + "Enterprise" * 3 + "ab"),
        "corp": ("corp", "corp-" + "ExecVar" * 3),
        "goog": ("google", "ya29." + "ExecVar" * 3),
        "ms": ("microsoft", "eyJ0" + "ExecVar" * 3),
    }
    for name, (provider, token) in tokens.items():
        _import(vault, name, token, provider=provider)
    env_file = tmp_path / "e.env"
    env_file.write_text("PLAIN=1\n")
    expected = {"gh": "GH_TOKEN", "gl": "GITLAB_TOKEN", "ghe": "GH_ENTERPRISE_TOKEN"}
    for name, variable in expected.items():
        for extra in ([], ["--env-file", str(env_file)]):
            r = vault.run("exec", name, *extra, "--", sys.executable, "-c", PRINT_ENV)
            assert r.returncode == 0, r
            child = json.loads(r.stdout)
            assert child[variable] == tokens[name][1]
            assert "VAULT_TOKEN" not in child
    before = len(_used(vault))
    for name in ("corp", "goog", "ms"):
        for extra in ([], ["--env-file", str(env_file)]):
            r = vault.run("exec", name, *extra, "--", "true")
            assert r.returncode == 2, r
            assert "no conventional environment variable: name one with --env" in r.stderr
            assert f"vault exec {name} --env VAR -- CMD" in r.stderr
        r = vault.run("exec", name, "--env", "ID_TOKEN", "--", sys.executable, "-c", PRINT_ENV)
        assert json.loads(r.stdout)["ID_TOKEN"] == tokens[name][1]
    assert len(_used(vault)) == before + 3  # the refusals handed nothing out
