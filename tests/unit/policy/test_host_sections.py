"""config.yaml's `registries` and `terraform` sections (vault.policy.hosts), read as strictly
as the rest of the file: every mistake is a ConfigError naming the file, the line and the
key; and the lookup the helpers make (vault.tokens.hosts.configured) is an exact match."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import ConfigError
from vault.fs.paths import resolve
from vault.policy.config import Config, load
from vault.policy.hosts import HostEntry
from vault.tokens.hosts import configured


def _load(text: str) -> Config:
    home = Path(tempfile.mkdtemp())
    home.chmod(0o700)
    (home / "config.yaml").write_text(text)
    (home / "config.yaml").chmod(0o600)
    return load(resolve({"VAULT_HOME": str(home)}))


def test_the_sections_as_documented() -> None:
    config = _load(
        "registries:\n"
        "  ghcr.io: {token: gh, username: octocat}\n"
        "  https://Registry.GitLab.com/: {token: gitlab}\n"
        "  https://index.docker.io/v1/: {token: hub, username: '<token>'}\n"
        "  127.0.0.1:5000: {token: local}\n"
        "terraform:\n"
        "  app.terraform.io: {token: tfc}\n"
        "  tfe.example.com:443: {token: tfe}\n"
    )
    assert config.registries == {
        "ghcr.io": HostEntry("gh", "octocat"),
        "registry.gitlab.com": HostEntry("gitlab", "oauth2"),
        "docker.io": HostEntry("hub", "<token>"),
        "127.0.0.1:5000": HostEntry("local", "oauth2"),
    }
    assert config.terraform == {
        "app.terraform.io": HostEntry("tfc"),
        "tfe.example.com": HostEntry("tfe"),
    }
    assert configured(config, "registries", "https://ghcr.io/v2/") == (
        "ghcr.io",
        HostEntry("gh", "octocat"),
    )
    assert configured(config, "terraform", "APP.terraform.io:443") == (
        "app.terraform.io",
        HostEntry("tfc"),
    )


def test_only_the_configured_host_itself() -> None:
    config = _load(
        "registries:\n  ghcr.io: {token: gh, username: me}\n  127.0.0.1:5000: {token: l}\n"
    )
    for asked in (
        "ghcr.io.evil.com",
        "evil.ghcr.io",
        "ghcr.io:443",
        "me@ghcr.io",
        "ghcr.io/other/path",
        "127.0.0.1",
        "127.0.0.1:5001",
        "localhost:5000",
    ):
        assert configured(config, "registries", asked) is None, asked
    assert configured(config, "terraform", "ghcr.io") is None  # another section
    with pytest.raises(ValueError, match="no such section"):
        configured(config, "kube", "ghcr.io")


def test_absent_or_empty_sections() -> None:
    assert _load("registries:\nterraform:\n").registries == {}
    assert _load("key_backend: keyring\n").terraform == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("registries: [ghcr.io]\n", ["config.yaml:1", "registries must be a mapping"]),
        ("registries:\n  ghcr.io: gh\n", ["config.yaml:2", "must be a mapping"]),
        ("registries:\n  ghcr.io: {token: gh, user: me}\n", ["config.yaml:2", "'user'"]),
        ("registries:\n  x.io: {username: me}\n", ["config.yaml:2", "token: missing"]),
        ("registries:\n  x.io: {token: 5}\n", ["config.yaml:2", "token must be"]),
        ("registries:\n  x.io: {token: 'a b'}\n", ["config.yaml:2", "token must be"]),
        ("registries:\n  x.io: {token: t, username: 'a:b'}\n", ["config.yaml:2", "username"]),
        ("registries:\n  x.io: {token: t, username: ''}\n", ["config.yaml:2", "username"]),
        ("registries:\n  x.io: {token: t, username: [a]}\n", ["config.yaml:2", "username"]),
        ("registries:\n  ghcr.io: {token: gh}\n", ["config.yaml:2", "GitHub login"]),
        ("registries:\n  u@x.io: {token: t}\n", ["config.yaml:2", "is not a host"]),
        ("registries:\n  x.io/org: {token: t}\n", ["config.yaml:2", "is not a host"]),
        ("registries:\n  5000: {token: t}\n", ["config.yaml:2", "keys must be strings"]),
        (
            "registries:\n  x.io: {token: a}\n  HTTPS://X.IO/: {token: b}\n",
            ["config.yaml:3", "already given as 'x.io'"],
        ),
        (
            "registries:\n  docker.io: {token: a}\n  https://index.docker.io/v1/: {token: b}\n",
            ["config.yaml:3", "docker.io"],
        ),
        (
            "terraform:\n  app.terraform.io: {token: t, username: me}\n",
            ["config.yaml:2", "'username'"],
        ),
        ("terraform:\n  https://app.terraform.io: {token: t}\n", ["config.yaml:2", "not a host"]),
        (
            "terraform:\n  x.io: {token: a}\n  x.io:443: {token: b}\n",
            ["config.yaml:3", "already given"],
        ),
        ("terraform: 3\n", ["config.yaml:1", "terraform must be a mapping"]),
        ("registry:\n  x.io: {token: a}\n", ["config.yaml:1", "unknown key 'registry'"]),
    ],
)
def test_mistakes_name_file_line_and_key(text: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(text)
    for word in words:
        assert word in caught.value.message


YAML_VALUES = st.sampled_from(
    [
        "gh",
        "'gh'",
        "5",
        "-1",
        "true",
        "null",
        "[]",
        "{}",
        "[gh]",
        "{a: b}",
        "'a:b'",
        "'<token>'",
        "!!binary aGk=",
        "'\\u0000'",
        '"\\x01"',
        "'" + "u" * 300 + "'",
        "~",
        "1e9",
        "'ok name'",
    ]
)


@settings(max_examples=200)
@given(
    st.sampled_from(["registries", "terraform"]),
    st.sampled_from(["ghcr.io", "x.io", "'x.io:5000'", "'[::1]:5'", "'a b'", "1", "'u@x'", "''"]),
    st.dictionaries(st.sampled_from(["token", "username", "other"]), YAML_VALUES, max_size=3),
)
def test_any_entry_loads_or_is_a_config_error(
    section: str, host: str, entry: dict[str, str]
) -> None:
    body = ", ".join(f"{k}: {v}" for k, v in entry.items())
    text = f"{section}:\n  {host}: {{{body}}}\n"
    message: str | None
    try:
        config = _load(text)
    except ConfigError as exc:
        message = exc.message
    else:
        message = None
    if message is not None:
        assert "config.yaml" in message
        assert "\n" not in message
        return
    for found in (*config.registries.values(), *config.terraform.values()):
        assert found.token
        assert found.token.isprintable()
        assert found.username is None or ":" not in found.username


def test_a_hostile_host_key_is_shown_without_its_controls() -> None:
    with pytest.raises(ConfigError) as caught:
        _load('registries:\n  "\\e]8;;https://evil/\\e\\\\x.io\\u202e": {token: t}\n')
    message = caught.value.message
    assert "is not a host" in message
    assert "\x1b" not in message
    assert "\u202e" not in message
