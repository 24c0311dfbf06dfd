"""vault.fs.paths.resolve reads every variable from the environment it is given, HOME included:
`vault doctor` works out which vault a scheduled job opens from the job's environment."""

from __future__ import annotations

from pathlib import Path

from vault.fs.paths import resolve


def test_resolve_reads_the_given_environment_only() -> None:
    paths = resolve({"HOME": "/job-home", "XDG_DATA_HOME": "/job-data", "XDG_STATE_HOME": "rel"})
    assert paths.vault_file == Path("/job-data/vault/vault.enc")
    assert paths.config_file == Path("/job-home/.config/vault/config.yaml")
    assert paths.audit_file == Path("/job-home/.local/state/vault/audit.jsonl")  # relative: ignored
    assert paths.system_policy_dir == Path("/etc/vault/policies")


def test_vault_home_wins_over_the_xdg_folders() -> None:
    paths = resolve({"HOME": "/h", "VAULT_HOME": "/v", "XDG_DATA_HOME": "/d"})
    assert paths.vault_file == Path("/v/vault.enc")
    assert paths.policy_dir == Path("/v/policies")
