"""The whole path to the policy folders and to config.yaml is checked (exit 3 naming the
folder): a folder on the way that others can write lets them rename the policy away."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_writable_parent_of_the_system_policy_folder_is_refused(
    passphrase_vault: VaultCLI, tmp_path: Path, mode: int
) -> None:
    parent = tmp_path / "etc" / "vault"
    system = parent / "policies"
    system.mkdir(parents=True)
    (system / "p.yaml").write_text("version: 1\nmax_token_age: 1h\n")
    env = {"VAULT_SYSTEM_POLICY_DIR": str(system)}
    assert passphrase_vault.run("list", env=env).returncode == 0
    parent.chmod(mode)
    try:
        r = passphrase_vault.run("list", env=env)
        assert r.returncode == 3, r
        assert str(parent) in r.stderr, r
        # Renamed away: still refused, not "no policy".
        system.rename(parent / "policies.old")
        r = passphrase_vault.run("list", env=env)
        assert r.returncode == 3, r
        assert str(parent) in r.stderr, r
    finally:
        parent.chmod(0o755)


@pytest.mark.parametrize("what", ["policies/p.yaml", "config.yaml"])
def test_a_writable_parent_of_the_user_config_folder_is_refused(
    passphrase_vault: VaultCLI, tmp_path: Path, what: str
) -> None:
    """The XDG layout, where the policies and config.yaml live apart from the vault."""
    config_home = tmp_path / "config"
    (config_home / "vault" / "policies").mkdir(parents=True)
    (config_home / "vault" / what).write_text("version: 1\n" if "policies" in what else "")
    env = passphrase_vault.full_env()
    del env["VAULT_HOME"]
    env |= {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(config_home),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    argv = [VAULT_BIN, "list"]
    ok = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok
    config_home.chmod(0o777)
    try:
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 3, r
        assert f"{config_home}:" in r.stderr, r
    finally:
        config_home.chmod(0o700)


def test_a_sticky_world_writable_parent_is_accepted(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    system = shared / "policies"
    system.mkdir(parents=True)
    (system / "p.yaml").write_text("version: 1\n")
    shared.chmod(0o1777)
    try:
        r = passphrase_vault.run("list", env={"VAULT_SYSTEM_POLICY_DIR": str(system)})
        assert r.returncode == 0, r
    finally:
        shared.chmod(0o755)
