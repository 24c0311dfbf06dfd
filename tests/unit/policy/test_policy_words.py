"""A policy's refusals in the exact words and places a person reads (file:line of the key at
fault), and where the policy folders' trust is judged: each label names the folder it is about,
and the vault's own folder is held to its own rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.policy.test_rules import _paths
from vault.errors import ConfigError, IntegrityError, VaultError
from vault.fs.paths import Paths
from vault.login.providers import Identity
from vault.policy import rules

OIDC = Identity("oidc", "https://idp.example")


def _refusal(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        rules.parse_policy(text, "p.yaml", system=False)
    assert err.value.exit_code == 3
    return str(err.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "version: 1\nallowed_grants: [device_code, password]\n",
            "p.yaml:2: allowed_grants: 'password' is not a grant vault knows (one of "
            "authorization_code, device_code)",
        ),
        (
            "version: 1\nproviders:\n  corp: {max_token_age: 1h}\n",
            "p.yaml:3: providers: 'corp' is neither a preset (github, gitlab, google, microsoft, "
            "oidc) nor an issuer URL pattern: per-provider rules follow what a provider is, not "
            "the name a config.yaml gives it",
        ),
        (
            "version: 1\nproviders:\n  1: {max_token_age: 1h}\n",
            "p.yaml:3: keys must be strings, not 1",
        ),
        (
            "version: 1\nagent:\n  max_unlocked: 1h\n  allowed: maybe\n",
            "p.yaml:4: agent.allowed must be true or false",
        ),
    ],
)
def test_policy_refusals_read_exactly(text: str, words: str) -> None:
    assert _refusal(text) == words


def test_a_refused_grant_names_what_is_allowed() -> None:
    def denial(text: str, grant: str) -> str:
        policy = rules.Policy([rules.parse_policy(text, "p.yaml", system=False)])
        found = policy.grant_type_denial(OIDC, grant)
        assert found is not None
        return f"{found.rule} {found.source}: {found.message}"

    assert denial("version: 1\nallowed_grants: []\n", "device_code") == (
        "allowed_grants p.yaml:2: the device_code grant is not allowed (allowed: none)"
    )
    assert denial("version: 1\nallowed_grants: [authorization_code]\n", "device_code") == (
        "allowed_grants p.yaml:2: the device_code grant is not allowed (allowed: "
        "authorization_code)"
    )


def _load_refusal(paths: Paths) -> VaultError:
    with pytest.raises(VaultError) as err:
        rules.load(paths)
    return err.value


def test_each_untrusted_folder_is_named_for_what_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "DEFAULT_SYSTEM_DIR", tmp_path / "no-such-dir")
    opened = tmp_path / "open"
    (opened / "home" / "policies").mkdir(parents=True)
    opened.chmod(0o777)
    inside, elsewhere = opened / "home" / "policies", tmp_path / "none"
    tail = (
        "is writable by group or others (mode 0777) and not sticky; anyone who can write it "
        "could rename the folders below it away"
    )
    user = _load_refusal(_paths(tmp_path, elsewhere, policy_dir=inside, vault_dir=tmp_path / "v"))
    assert isinstance(user, ConfigError)
    assert str(user) == f"{opened}: this folder on the way to the policy folder {tail}"
    system = _load_refusal(
        _paths(tmp_path, inside, policy_dir=tmp_path / "ok" / "policies", vault_dir=tmp_path / "v")
    )
    assert isinstance(system, ConfigError)
    assert str(system) == f"{opened}: this folder on the way to the system policy folder {tail}"


def test_the_vault_folder_on_the_way_is_held_to_its_own_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "DEFAULT_SYSTEM_DIR", tmp_path / "no-such-dir")
    home = tmp_path / "vh"
    (home / "policies").mkdir(parents=True)
    home.chmod(0o770)
    for paths in (
        _paths(tmp_path, tmp_path / "none", policy_dir=home / "policies", vault_dir=home),
        _paths(
            tmp_path, home / "policies", policy_dir=tmp_path / "ok" / "policies", vault_dir=home
        ),
    ):
        refused = _load_refusal(paths)
        assert isinstance(refused, IntegrityError)
        assert refused.exit_code == 6
        assert str(refused) == f"refusing folder {home}: writable by group or others (mode 0770)"
