"""Policy binds to what a token is, not to names a user chooses: per-provider rules follow the
preset and the issuer whatever the provider is called, re-pointing a provider's endpoints makes
them the issuer, scopes are single bounded scope-tokens from every source, and putting a token
back never makes it younger. Through the real `vault` executable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VaultCLI
from tests.harness.clock import at

HOUR = 3600
names = st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True)


def _config(vault: VaultCLI, text: str) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    path = vault.home / "config.yaml"
    path.write_text(text)
    path.chmod(0o600)


def _system_policy(tmp_path: Path, text: str) -> dict[str, str]:
    folder = tmp_path / "system-policies"
    folder.mkdir(exist_ok=True, mode=0o755)
    path = folder / "org.yaml"
    path.write_text(text)
    path.chmod(0o644)
    return {"VAULT_SYSTEM_POLICY_DIR": str(folder)}


ONE_HOUR_FOR_GITHUB = "version: 1\nproviders:\n  github:\n    max_token_age: 1h\n"


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=names)
def test_a_renamed_github_preset_keeps_the_administrators_github_rules(
    tmp_path_factory: pytest.TempPathFactory, secret_service: object, name: str
) -> None:
    """Whatever a user calls a provider built on the github preset (the README's `gh`
    included), the system policy's `providers: github:` rules apply to its tokens."""
    from tests.conftest import SecretService

    assert isinstance(secret_service, SecretService)
    tmp = tmp_path_factory.mktemp("renamed")
    vault = VaultCLI(tmp / "vh", dict(secret_service.env()))
    env = _system_policy(tmp, ONE_HOUR_FOR_GITHUB)
    _config(vault, f"providers:\n  {name}:\n    preset: github\n    client_id: Iv1.x\n")
    r = vault.run("import", "t", "--provider", name, input="tok-renamed-0001", env=env)
    assert r.returncode == 0, r
    r = vault.run("token", "t", env={**env, **at(2 * HOUR)})
    assert r.returncode == 5, r
    assert "max_token_age" in r.stderr
    assert "org.yaml:4" in r.stderr
    assert r.stdout == ""
    shown = json.loads(vault.run("policy", "show", name, "--json", env=env).stdout)
    assert shown["effective"]["max_token_age"]["seconds"] == HOUR
    assert shown["identity"] == {"preset": "github", "issuer": "https://github.com"}


def test_an_oidc_provider_declared_with_githubs_issuer_gets_the_github_rules(
    vault: VaultCLI, tmp_path: Path
) -> None:
    """Re-declaring GitHub as a generic issuer does not step outside the github section."""
    env = _system_policy(tmp_path, ONE_HOUR_FOR_GITHUB)
    _config(
        vault,
        "providers:\n  mine:\n    preset: oidc\n    issuer: https://github.com\n    client_id: x\n",
    )
    assert (
        vault.run("import", "t", "--provider", "mine", input="tok-oidc-000001", env=env).returncode
        == 0
    )
    r = vault.run("token", "t", env={**env, **at(2 * HOUR)})
    assert r.returncode == 5, r
    assert "org.yaml:4" in r.stderr


@pytest.mark.parametrize(
    "field",
    ["token_endpoint", "device_authorization_endpoint", "revocation_endpoint", "userinfo_endpoint"],
)
@pytest.mark.parametrize("target", ["https://evil.example", "https://github.com.evil.example:8443"])
def test_re_pointed_endpoints_change_the_issuer(
    vault: VaultCLI, tmp_path: Path, field: str, target: str
) -> None:
    """A github preset whose endpoint goes elsewhere is not GitHub: its tokens are stored under
    the issuer the endpoint belongs to, and an allowed_issuers rule for GitHub refuses them."""
    env = _system_policy(tmp_path, "version: 1\nallowed_issuers: ['https://github.com']\n")
    _config(
        vault,
        f"providers:\n  gh:\n    preset: github\n    client_id: x\n    {field}: {target}/x\n",
    )
    r = vault.run("import", "t", "--provider", "gh", input="tok-repoint-0001", env=env)
    assert r.returncode == 5, r
    assert f"issuer '{target}' is not allowed" in r.stderr
    # Without the rule, the token is stored, under the endpoint's issuer.
    r = vault.run("import", "t", "--provider", "gh", input="tok-repoint-0001")
    assert r.returncode == 0, r
    status = json.loads(vault.run("status", "t", "--json").stdout)
    assert status["issuer"] == target


def test_policy_sections_keyed_by_a_config_name_are_refused(
    vault: VaultCLI, tmp_path: Path
) -> None:
    """A section keyed by a name any config.yaml can choose would be escaped by renaming."""
    env = _system_policy(tmp_path, "version: 1\nproviders:\n  corp:\n    max_token_age: 1h\n")
    r = vault.run("list", env=env)
    assert r.returncode == 3, r
    assert "'corp' is neither a preset" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


def test_issuer_url_sections_follow_the_issuer(vault: VaultCLI, tmp_path: Path) -> None:
    env = _system_policy(
        tmp_path,
        "version: 1\nproviders:\n  'https://*.corp.example':\n    allowed_scopes: [read]\n",
    )
    _config(
        vault,
        "providers:\n  a:\n    issuer: https://idp.corp.example\n    client_id: x\n"
        "  b:\n    issuer: https://corp.example.evil.example\n    client_id: x\n",
    )
    r = vault.run(
        "import", "t", "--provider", "a", "--scope", "write", input="tok-url-0001", env=env
    )
    assert r.returncode == 5, r
    r = vault.run(
        "import", "t", "--provider", "b", "--scope", "write", input="tok-url-0001", env=env
    )
    assert r.returncode == 0, r


@pytest.mark.parametrize(
    "scope",
    ["repo admin:org", "repo\tadmin", 'a"b', "a\\b", "x" * 257, "caf\u00e9", "a\x7fb"],
)
def test_a_scope_argument_is_one_scope_token(vault: VaultCLI, scope: str) -> None:
    """One --scope value is one RFC 6749 scope-token: never checked as one and sent as two."""
    r = vault.run("import", "t", "--provider", "github", "--scope", scope, input="tok-scope-001")
    assert r.returncode == 2, r
    assert "--scope" in r.stderr
    assert "Traceback" not in r.stderr
    assert not vault.vault_file.exists() or "t" not in vault.run("list").stdout


def test_config_scopes_are_scope_tokens(vault: VaultCLI) -> None:
    _config(vault, "providers:\n  a:\n    issuer: https://idp.example\n    scopes: ['a\"b']\n")
    r = vault.run("list")
    assert r.returncode == 3, r
    assert "scopes" in r.stderr
    assert "config.yaml:4" in r.stderr


@pytest.mark.parametrize("how", ["after logout", "with --force", "under another name"])
def test_putting_a_token_back_keeps_its_issue_time(vault: VaultCLI, how: str) -> None:
    """max_token_age cannot be reset by importing the same token again, however it is put back."""
    _config(vault, "")
    policies = vault.home / "policies"
    policies.mkdir(mode=0o700)
    (policies / "p.yaml").write_text("version: 1\nmax_token_age: 1h\n")
    earlier = at(-2 * HOUR)
    token = "tok-put-back-0001"
    assert (
        vault.run("import", "t", "--provider", "github", input=token, env=earlier).returncode == 0
    )
    (policies / "p.yaml").write_text("version: 1\nmax_token_age: 8h\n")
    first = json.loads(vault.run("status", "t", "--json").stdout)["issued_at"]
    if how == "after logout":
        assert vault.run("logout", "t").returncode == 0
        again = vault.run("import", "t", "--provider", "github", input=token)
    elif how == "with --force":
        again = vault.run("import", "t", "--provider", "github", "--force", input=token)
    else:
        again = vault.run("import", "u", "--provider", "github", input=token)
    assert again.returncode == 0, again
    name = "u" if how == "under another name" else "t"
    assert json.loads(vault.run("status", name, "--json").stdout)["issued_at"] == first
    (policies / "p.yaml").write_text("version: 1\nmax_token_age: 1h\n")
    r = vault.run("token", name)
    assert r.returncode == 5, r
    assert r.stdout == ""
    # A different token is new, and young.
    other = vault.run("import", "w", "--provider", "github", input="tok-put-back-0002")
    assert other.returncode == 0
    assert vault.run("token", "w").returncode == 0


@pytest.mark.parametrize("scope", ["repo admin:org", "", "a\u202eb"])
def test_a_login_scope_argument_is_one_scope_token(vault: VaultCLI, scope: str) -> None:
    """Refused before anything is sent: no discovery, no device code (the issuer is a closed
    port, so any request would be a network error, exit 4, instead)."""
    _config(vault, "providers:\n  p:\n    issuer: http://127.0.0.1:9\n    client_id: x\n")
    r = vault.run("login", "p", "--scope", scope, "--no-browser")
    assert r.returncode == 2, r
    assert "--scope" in r.stderr
    assert "Traceback" not in r.stderr
