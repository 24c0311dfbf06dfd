"""`vault setup-git [NAME]` with real git: it writes git's global configuration (through
GIT_CONFIG_GLOBAL, as a person's ~/.gitconfig), then real git clones and fetches from the
loopback git server (tests/harness/git_server.py) through the helper it configured, while every
other host's helpers stay as they were."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI
from tests.harness.git_server import GitServer, git_server
from tests.integration.test_git_credential import _ghe_config, _git_env, _import

TOKEN = "ghp_" + "SetupGit" * 4 + "abcd"
# A helper that answers every host with a wrong password: without the reset vault writes for
# its host, git would use it (it comes first) and the clone would fail.
WRONG = "!f() { echo username=wrong; echo password=wrong-password; }; f"
OTHER_HOST = "credential.https://example.com.helper"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with git_server(tmp_path / "srv") as srv:
        srv.repo("orgA", "app")
        srv.accept("orgA", TOKEN)
        yield srv


def _config(env: dict[str, str], *args: str) -> list[str]:
    r = subprocess.run(
        ["git", "config", "--global", *args], env=env, capture_output=True, text=True, check=False
    )
    return r.stdout.splitlines()


def _setup(tmp_path: Path) -> dict[str, str]:
    env = _git_env(tmp_path)
    config = Path(env["GIT_CONFIG_GLOBAL"])
    # The person's own configuration: a generic helper, and one for another host.
    config.write_text(
        config.read_text().replace("[credential]\n\thelper =\n", "")
        + f'[credential]\n\thelper = "{WRONG}"\n'
        + '[credential "https://example.com"]\n\thelper = cache --timeout 60\n'
    )
    return env


def test_setup_git_then_clone_and_fetch(vault: VaultCLI, server: GitServer, tmp_path: Path) -> None:
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN, "--expires-in", "3600")
    env = _setup(tmp_path)
    key = f"credential.{server.url}.helper"
    before = Path(env["GIT_CONFIG_GLOBAL"]).read_text()
    work = tmp_path / "clone"
    refused = subprocess.run(
        ["git", "clone", "-q", f"{server.url}/orgA/app.git", str(work)],
        env=vault.full_env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0  # the wrong helper answers first

    r = vault.run("setup-git", "--dry-run", env=env)
    assert r.returncode == 0, r
    helper = f"!{shlex.quote(VAULT_BIN)} credential-helper --name gh"
    assert r.stdout.splitlines() == [
        shlex.join(["git", "config", "--global", "--replace-all", key, ""]),
        shlex.join(["git", "config", "--global", "--add", key, helper]),
    ]
    assert Path(env["GIT_CONFIG_GLOBAL"]).read_text() == before  # a dry run changes nothing

    r = vault.run("setup-git", env=env)  # NAME: the only token
    assert r.returncode == 0, r
    assert f"git now asks vault for {server.url} (token 'gh')" in r.stderr
    assert _config(env, "--get-all", key) == ["", helper]
    once = Path(env["GIT_CONFIG_GLOBAL"]).read_text()
    assert vault.run("setup-git", "gh", env=env).returncode == 0
    assert Path(env["GIT_CONFIG_GLOBAL"]).read_text() == once  # idempotent
    assert _config(env, "--get-all", key) == ["", helper]
    # Nothing else changed: the generic helper and the other host's are as they were.
    assert _config(env, "--get-all", "credential.helper") == [WRONG]
    assert _config(env, "--get-all", OTHER_HOST) == ["cache --timeout 60"]
    assert once.startswith(before)

    clone = subprocess.run(
        ["git", "clone", "-q", f"{server.url}/orgA/app.git", str(work)],
        env=vault.full_env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert clone.returncode == 0, clone
    assert (work / "README").read_text() == "orgA/app\n"
    fetch = subprocess.run(
        ["git", "-C", str(work), "fetch", "-q"],
        env=vault.full_env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert fetch.returncode == 0, fetch
    assert server.passed
    assert set(server.passed) == {TOKEN}
    assert TOKEN not in once + clone.stderr + fetch.stderr


def test_setup_git_replaces_an_earlier_helper_for_its_host_only(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN)
    env = _setup(tmp_path)
    key = f"credential.{server.url}.helper"
    subprocess.run(["git", "config", "--global", "--add", key, "store"], env=env, check=True)
    subprocess.run(["git", "config", "--global", "--add", key, "cache"], env=env, check=True)
    assert vault.run("setup-git", "gh", env=env).returncode == 0
    helper = f"!{shlex.quote(VAULT_BIN)} credential-helper --name gh"
    assert _config(env, "--get-all", key) == ["", helper]
    assert _config(env, "--get-all", OTHER_HOST) == ["cache --timeout 60"]


def test_setup_git_for_github_names_github_com(vault: VaultCLI, tmp_path: Path) -> None:
    r = vault.run("import", "gh", "--provider", "github", input=TOKEN)
    assert r.returncode == 0, r
    env = _git_env(tmp_path)
    r = vault.run("setup-git", "--dry-run", env=env)
    assert r.returncode == 0, r
    assert "credential.https://github.com.helper" in r.stdout
    assert TOKEN not in r.stdout + r.stderr


def test_setup_git_errors(vault: VaultCLI, tmp_path: Path) -> None:
    env = _git_env(tmp_path)
    r = vault.run("setup-git", "nosuch", env=env)
    assert r.returncode == 4, r
    assert vault.run("import", "gh", "--provider", "github", input=TOKEN).returncode == 0
    r = vault.run("setup-git", env={**env, "PATH": str(tmp_path / "empty")})
    assert r.returncode == 3, r
    assert "git is not installed" in r.stderr
    Path(env["GIT_CONFIG_GLOBAL"]).write_text("[[[ not a git config\n")
    r = vault.run("setup-git", env=env)
    assert r.returncode == 3, r
    assert "git config failed (exit " in r.stderr
    assert "bad config" in r.stderr
    assert "Traceback" not in r.stderr
