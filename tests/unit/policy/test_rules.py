"""Policy evaluation in process: parsing (exact refusals), durations, globbing, per-provider
sections, strictest-wins over several files, and every denial's rule, source and message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import ConfigError, PolicyError
from vault.fs.paths import Paths
from vault.login.providers import Identity
from vault.policy import rules, safe_yaml
from vault.policy.rules import (
    CLOCK_STEP_TOLERANCE,
    Denial,
    Policy,
    PolicyFile,
    ProviderRules,
    Rule,
    format_duration,
    parse_duration,
    parse_policy,
)

NOT_A_PATTERN = rules.url_pattern_problem("x")
GH = Identity("github", "https://github.com")
GL = Identity("gitlab", "https://gitlab.com")
OTHER = Identity("oidc", "https://idp.example.com")
SCOPE_RULE = "(RFC 6749 characters; '*' as wildcard; at most 256 characters)"


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "p.yaml", system=False)
    return str(info.value)


def policy(*texts: str) -> Policy:
    return Policy([parse_policy(t, f"f{i}.yaml", system=i == 0) for i, t in enumerate(texts)])


KNOWN_TOP = (
    "agent, allowed_grants, allowed_issuers, allowed_scopes, denied_scopes, max_token_age, "
    "providers, storage, tokens, version"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "p.yaml: the policy is empty; write at least `version: 1`"),
        ("[1]", "p.yaml: a policy must be a mapping"),
        ("version: 1\nfoo: 1\n", f"p.yaml:2: unknown key 'foo' (known: {KNOWN_TOP})"),
        ("max_token_age: 1h\n", "p.yaml:1: version: missing (write version: 1)"),
        ("# a comment\nmax_token_age: 1h\n", "p.yaml:2: version: missing (write version: 1)"),
        ("version: 2\n", "p.yaml:1: version: 2 is not supported (this vault reads version 1)"),
        (
            "version: true\n",
            "p.yaml:1: version: True is not supported (this vault reads version 1)",
        ),
        ("version: '1'\n", "p.yaml:1: version: '1' is not supported (this vault reads version 1)"),
        ("version: 1\nstorage: []\n", "p.yaml:2: storage must be a mapping"),
        (
            "version: 1\nstorage:\n  x: 1\n",
            "p.yaml:3: unknown key 'x' in storage (known: key_backends, vault_dirs)",
        ),
        (
            "version: 1\nstorage:\n  key_backends: [keyring, gpg]\n",
            "p.yaml:3: key_backends: 'gpg' is not keyring or passphrase",
        ),
        (
            "version: 1\nstorage:\n  key_backends: keyring\n",
            "p.yaml:3: key_backends must be a list, not str",
        ),
        (
            "version: 1\nstorage:\n  vault_dirs: [1]\n",
            "p.yaml:3: vault_dirs: every entry must be a non-empty string",
        ),
        ("version: 1\ntokens: 1\n", "p.yaml:2: tokens must be a mapping"),
        (
            "version: 1\ntokens:\n  y: 1\n",
            "p.yaml:3: unknown key 'y' in tokens (known: print_to_terminal)",
        ),
        (
            "version: 1\ntokens:\n  print_to_terminal: 1\n",
            "p.yaml:3: print_to_terminal must be true or false",
        ),
        ("version: 1\nproviders: []\n", "p.yaml:2: providers must be a mapping"),
        (
            "version: 1\nproviders:\n  github: []\n",
            "p.yaml:3: providers: 'github' must be a mapping",
        ),
        (
            "version: 1\nproviders:\n  github:\n    storage: 1\n",
            "p.yaml:4: unknown key 'storage' in provider 'github' (known: allowed_grants, "
            "allowed_issuers, allowed_scopes, denied_scopes, max_token_age)",
        ),
        ("version: 1\nallowed_scopes: x\n", "p.yaml:2: allowed_scopes must be a list, not str"),
        (
            "version: 1\nallowed_scopes: ['']\n",
            "p.yaml:2: allowed_scopes: every entry must be a non-empty string",
        ),
        (
            "version: 1\nallowed_scopes: [a, 1]\n",
            "p.yaml:2: allowed_scopes: every entry must be a non-empty string",
        ),
        (
            "version: 1\ndenied_scopes: [ok, 'a b']\n",
            f"p.yaml:2: denied_scopes: 'a b' is not a scope {SCOPE_RULE}",
        ),
        (
            "version: 1\nallowed_scopes: ['a\"b']\n",
            "p.yaml:2: allowed_scopes: 'a\"b' is not a scope "
            "(RFC 6749 characters; '*' as wildcard; at most 256 characters)",
        ),
        (
            "version: 1\nallowed_issuers: ['https://a', ftp://x]\n",
            f"p.yaml:2: allowed_issuers: 'ftp://x' {NOT_A_PATTERN}",
        ),
        (
            "version: 1\nmax_token_age: 0s\n",
            "p.yaml:2: max_token_age: '0s' must be longer than zero",
        ),
        (
            "version: 1\nmax_token_age: 5\n",
            "p.yaml:2: max_token_age: 5 needs a unit (s, m, h, d or w), e.g. 5h",
        ),
        (
            "version: 1\nmax_token_age: 5x\n",
            "p.yaml:2: max_token_age: '5x' is not a duration (use e.g. 90m, 8h, 1d12h)",
        ),
        (
            "version: 1\nmax_token_age: true\n",
            "p.yaml:2: max_token_age: a duration such as 90m, 8h or 30d, not True",
        ),
        (
            "version: 1\nproviders:\n  github:\n    max_token_age: 1y\n",
            "p.yaml:4: max_token_age: '1y' is not a duration (use e.g. 90m, 8h, 1d12h)",
        ),
        (
            "version: 1\nproviders:\n  github:\n    allowed_issuers: [x]\n",
            f"p.yaml:4: allowed_issuers: 'x' {NOT_A_PATTERN}",
        ),
        (
            "version: 1\nproviders:\n  github:\n    denied_scopes: ['a b']\n",
            f"p.yaml:4: denied_scopes: 'a b' is not a scope {SCOPE_RULE}",
        ),
    ],
)
def test_exact_refusals(text: str, message: str) -> None:
    assert refusal(text) == message


def test_a_full_policy_parses_into_rules_with_sources() -> None:
    text = (
        "version: 1\n"
        "max_token_age: 8h\n"
        "allowed_scopes: [openid, 'read:*']\n"
        "denied_scopes: ['admin:*']\n"
        "allowed_issuers: ['https://github.com', 'http://127.0.0.1:*']\n"
        "storage:\n"
        "  key_backends: [keyring, passphrase]\n"
        "  vault_dirs: ['~/v']\n"
        "tokens:\n"
        "  print_to_terminal: false\n"
        "providers:\n"
        "  github:\n"
        "    max_token_age: 12h\n"
        "    allowed_scopes: [repo]\n"
        "    denied_scopes: [delete_repo]\n"
        "    allowed_issuers: ['https://github.com']\n"
        "  'https://idp.example.com/*': {}\n"
    )
    f = parse_policy(text, "/etc/p.yaml", system=True)
    assert f.path == "/etc/p.yaml"
    assert f.system is True
    assert f.max_token_age == Rule("max_token_age", 8 * 3600, "/etc/p.yaml:2")
    assert f.allowed_scopes == Rule("allowed_scopes", ("openid", "read:*"), "/etc/p.yaml:3")
    assert f.denied_scopes == Rule("denied_scopes", ("admin:*",), "/etc/p.yaml:4")
    assert f.allowed_issuers == Rule(
        "allowed_issuers", ("https://github.com", "http://127.0.0.1:*"), "/etc/p.yaml:5"
    )
    assert f.key_backends == Rule("key_backends", ("keyring", "passphrase"), "/etc/p.yaml:7")
    assert f.vault_dirs == Rule("vault_dirs", ("~/v",), "/etc/p.yaml:8")
    assert f.print_to_terminal == Rule("print_to_terminal", False, "/etc/p.yaml:10")
    assert f.providers == {
        "github": ProviderRules(
            max_token_age=Rule("max_token_age", 12 * 3600, "/etc/p.yaml:13"),
            allowed_scopes=Rule("allowed_scopes", ("repo",), "/etc/p.yaml:14"),
            denied_scopes=Rule("denied_scopes", ("delete_repo",), "/etc/p.yaml:15"),
            allowed_issuers=Rule("allowed_issuers", ("https://github.com",), "/etc/p.yaml:16"),
        ),
        "https://idp.example.com/*": ProviderRules(),
    }
    assert f.rule_count() == 7 + 4
    user = parse_policy("version: 1\n", "u.yaml", system=False)
    assert user == PolicyFile(path="u.yaml", system=False)
    assert user.rule_count() == 0
    assert (
        parse_policy(
            "version: 1\nproviders:\n  gitlab: {max_token_age: 1h}\n", "x", system=False
        ).rule_count()
        == 1
    )
    empty_sections = parse_policy("version: 1\nstorage: {}\ntokens: {}\n", "x", system=False)
    assert empty_sections.rule_count() == 0
    assert parse_policy(
        "version: 1\ntokens: {print_to_terminal: true}\n", "x", system=False
    ).print_to_terminal == Rule("print_to_terminal", True, "x:2")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1),
        ("90m", 5400),
        ("8h", 28800),
        ("1d12h", 129600),
        ("2w", 1209600),
        (" 1h 30m ", 5400),
        ("000000000001s", 1),
        ("1w1d1h1m1s", 694861),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "w", "k") == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "w: k: '' is not a duration (use e.g. 90m, 8h, 1d12h)"),
        ("h", "w: k: 'h' is not a duration (use e.g. 90m, 8h, 1d12h)"),
        ("1h x", "w: k: '1h x' is not a duration (use e.g. 90m, 8h, 1d12h)"),
        ("x1h", "w: k: 'x1h' is not a duration (use e.g. 90m, 8h, 1d12h)"),
        ("1H", "w: k: '1H' is not a duration (use e.g. 90m, 8h, 1d12h)"),
        ("1h-", "w: k: '1h-' is not a duration (use e.g. 90m, 8h, 1d12h)"),
        ("1234567890123s", "w: k: '1234567890123s' is not a duration (use e.g. 90m, 8h, 1d12h)"),
        ("0h0m", "w: k: '0h0m' must be longer than zero"),
        (7, "w: k: 7 needs a unit (s, m, h, d or w), e.g. 7h"),
        (False, "w: k: a duration such as 90m, 8h or 30d, not False"),
        (1.5, "w: k: a duration such as 90m, 8h or 30d, not 1.5"),
        (None, "w: k: a duration such as 90m, 8h or 30d, not None"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, "w", "k")
    assert str(info.value) == message


@given(st.integers(min_value=0, max_value=10**9))
def test_format_duration_round_trips(seconds: int) -> None:
    text = format_duration(seconds)
    if seconds == 0:
        assert text == "0s"
    else:
        assert parse_duration(text, "w", "k") == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (61, "1m1s"),
        (3600, "1h"),
        (86400, "1d"),
        (604800, "1w"),
        (694861, "1w1d1h1m1s"),
        (1209599, "1w6d23h59m59s"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("patterns", "item", "matches"),
    [
        (("read:*",), "read:org", True),
        (("read:*",), "read:", True),
        (("read:*",), "xread:org", False),
        (("read:*",), "write:org", False),
        (("repo",), "repo", True),
        (("repo",), "repo2", False),
        (("repo",), "repo\n", False),
        (("repo",), "a.repo", False),
        (("r.po",), "repo", False),  # "." is literal, not a regex wildcard
        (("a+",), "aa", False),
        (("*",), "", True),
        (("*:admin",), "org:admin", True),
        (("a", "b*"), "bee", True),
        (("a", "b*"), "c", False),
        (("https://idp.example.com/*",), "https://idp.example.com/t1", True),
        (("https://idp.example.com/*",), "https://idp.example.com.evil/t1", False),
        (("https://*.example.com",), "https://a.example.com", True),
    ],
)
def test_glob_matching(patterns: tuple[str, ...], item: str, matches: bool) -> None:
    assert Rule("k", patterns, "s").matches(item) is matches


def test_policy_error_carries_rule_and_source() -> None:
    err = Denial("denied_scopes", "f.yaml:3", "scope 'x' is denied").error()
    assert isinstance(err, PolicyError)
    assert str(err) == "refused by policy: scope 'x' is denied (rule denied_scopes, f.yaml:3)"
    assert err.rule == "denied_scopes"
    assert err.source == "f.yaml:3"


# --- the effective policy ----------------------------------------------------------------

NOW = 1_700_000_000


def test_max_token_age_is_the_shortest_over_files_and_provider_sections() -> None:
    p = policy(
        "version: 1\nmax_token_age: 8h\nproviders:\n  github: {max_token_age: 2h}\n",
        "version: 1\nmax_token_age: 4h\nproviders:\n  gitlab: {max_token_age: 1h}\n",
    )
    assert p.max_token_age(None) == Rule("max_token_age", 4 * 3600, "f1.yaml:2")
    assert p.max_token_age(GH) == Rule("max_token_age", 2 * 3600, "f0.yaml:4")
    assert p.max_token_age(GL) == Rule("max_token_age", 3600, "f1.yaml:4")
    assert p.max_token_age(OTHER) == Rule("max_token_age", 4 * 3600, "f1.yaml:2")
    assert policy("version: 1\n").max_token_age(GH) is None
    assert Policy([]).max_token_age(None) is None


def test_age_exactly_at_the_limit_is_allowed_and_a_fraction_over_is_not() -> None:
    p = policy("version: 1\nmax_token_age: 1h\n")
    assert p.age_denial(GH, NOW, NOW + 3600) is None
    assert p.age_denial(GH, NOW, NOW + 3600.0) is None
    over = p.age_denial(GH, NOW, NOW + 3600.5)
    assert over == Denial(
        "max_token_age",
        "f0.yaml:2",
        "the token is 1h old, over the maximum 1h since login",
    )
    assert p.age_denial(GH, NOW, NOW + 5432) == Denial(
        "max_token_age", "f0.yaml:2", "the token is 1h30m32s old, over the maximum 1h since login"
    )
    assert p.age_denial(GH, NOW, NOW) is None
    assert policy("version: 1\n").age_denial(GH, NOW, NOW + 10**9) is None


def test_clock_step_tolerance_boundary() -> None:
    p = policy("version: 1\nmax_token_age: 1h\n")
    assert CLOCK_STEP_TOLERANCE == 300
    assert p.age_denial(GH, NOW, NOW - 300) is None
    assert p.age_denial(GH, NOW, NOW - 300.0) is None
    assert p.age_denial(GH, NOW, NOW - 300.5) == Denial(
        "max_token_age",
        "f0.yaml:2",
        "the token was issued 5m after the present time: the clock moved backward, so its age "
        "is unknown",
    )
    assert p.age_denial(GH, NOW, NOW - 3723) == Denial(
        "max_token_age",
        "f0.yaml:2",
        "the token was issued 1h2m3s after the present time: the clock moved backward, so its "
        "age is unknown",
    )


def test_provider_age_section_applies_only_to_that_provider() -> None:
    p = policy("version: 1\nproviders:\n  github: {max_token_age: 10m}\n")
    assert p.age_denial(GL, NOW, NOW + 10**6) is None
    assert p.age_denial(GH, NOW, NOW + 600) is None
    assert p.age_denial(GH, NOW, NOW + 601) == Denial(
        "max_token_age", "f0.yaml:3", "the token is 10m1s old, over the maximum 10m since login"
    )


def test_scopes_deny_wins_and_allow_lists_intersect() -> None:
    p = policy(
        "version: 1\nallowed_scopes: [openid, 'read:*', repo]\ndenied_scopes: ['read:secret']\n",
        "version: 1\nallowed_scopes: [openid, 'read:*']\n",
    )
    assert p.scope_denial(None, ["openid", "read:org"]) is None
    assert p.scope_denial(None, []) is None
    assert p.scope_denial(None, ["openid", "read:secret"]) == Denial(
        "denied_scopes", "f0.yaml:3", "scope 'read:secret' is denied"
    )
    # allowed by the first file, not by the second: the intersection
    assert p.scope_denial(None, ["repo"]) == Denial(
        "allowed_scopes", "f1.yaml:2", "scope 'repo' is not in the allowed scopes"
    )
    assert p.scope_denial(None, ["admin"]) == Denial(
        "allowed_scopes", "f0.yaml:2", "scope 'admin' is not in the allowed scopes"
    )
    # the first scope refused is the one named
    assert p.scope_denial(None, ["openid", "admin", "repo"]) == Denial(
        "allowed_scopes", "f0.yaml:2", "scope 'admin' is not in the allowed scopes"
    )


def test_scope_deny_list_of_a_later_file_is_checked_too() -> None:
    p = policy("version: 1\n", "version: 1\ndenied_scopes: ['admin:*']\n")
    assert p.scope_denial(GH, ["admin:org"]) == Denial(
        "denied_scopes", "f1.yaml:2", "scope 'admin:org' is denied"
    )
    assert p.scope_denial(GH, ["read:org"]) is None


def test_per_provider_scope_sections_apply_to_their_provider_only() -> None:
    p = policy(
        "version: 1\nproviders:\n  github:\n    allowed_scopes: [repo]\n    denied_scopes: [x]\n"
        "  gitlab:\n    denied_scopes: [repo]\n"
    )
    assert p.scope_denial(GH, ["repo"]) is None
    assert p.scope_denial(GH, ["x"]) == Denial("denied_scopes", "f0.yaml:5", "scope 'x' is denied")
    assert p.scope_denial(GH, ["y"]) == Denial(
        "allowed_scopes", "f0.yaml:4", "scope 'y' is not in the allowed scopes"
    )
    assert p.scope_denial(GL, ["repo"]) == Denial(
        "denied_scopes", "f0.yaml:7", "scope 'repo' is denied"
    )
    assert p.scope_denial(OTHER, ["repo", "x", "y"]) is None
    assert p.scope_denial(None, ["x"]) is None


def test_issuers() -> None:
    p = policy(
        "version: 1\nallowed_issuers: ['https://github.com', 'https://idp.example.com/*']\n",
        "version: 1\nproviders:\n  github: {allowed_issuers: ['https://github.com']}\n",
    )
    assert p.issuer_denial(GH) is None
    assert p.issuer_denial(Identity("github", "https://github.com/")) is None  # trailing /
    assert p.issuer_denial(Identity("oidc", "https://idp.example.com/tenant")) is None
    assert p.issuer_denial(Identity("github", "https://idp.example.com/tenant")) == Denial(
        "allowed_issuers", "f1.yaml:3", "issuer 'https://idp.example.com/tenant' is not allowed"
    )
    assert p.issuer_denial(Identity("oidc", "https://github.com.evil.example")) == Denial(
        "allowed_issuers", "f0.yaml:2", "issuer 'https://github.com.evil.example' is not allowed"
    )
    assert p.issuer_denial(Identity("oidc", "https://evil")) == Denial(
        "allowed_issuers", "f0.yaml:2", "issuer 'https://evil' is not allowed"
    )
    # a pattern written with the slash matches the issuer as given
    q = policy("version: 1\nallowed_issuers: ['https://a.example/']\n")
    assert q.issuer_denial(Identity("oidc", "https://a.example/")) is None
    assert q.issuer_denial(Identity("oidc", "https://a.example")) is None  # trailing / or not
    assert policy("version: 1\n").issuer_denial(Identity("oidc", "https://any")) is None


def test_grant_and_token_denials_combine_in_order() -> None:
    p = policy(
        "version: 1\nmax_token_age: 1h\nallowed_scopes: [repo]\n"
        "allowed_issuers: ['https://github.com']\n"
    )
    good = GH
    assert p.grant_denial(good, ["repo"]) is None
    assert p.token_denial(good, ["repo"], NOW, NOW + 10) is None
    bad_issuer = p.grant_denial(Identity("github", "https://evil"), ["repo"])
    assert bad_issuer is not None
    assert bad_issuer.rule == "allowed_issuers"
    bad_scope = p.grant_denial(GH, ["admin"])
    assert bad_scope is not None
    assert bad_scope.rule == "allowed_scopes"
    both = p.grant_denial(Identity("github", "https://evil"), ["admin"])
    assert both is not None
    assert both.rule == "allowed_issuers"  # the issuer is checked first
    old = p.token_denial(Identity("github", "https://evil"), ["admin"], NOW, NOW + 7200)
    assert old is not None
    assert old.rule == "max_token_age"  # age first, then scopes, then issuer
    scope_then_issuer = p.token_denial(Identity("github", "https://evil"), ["admin"], NOW, NOW)
    assert scope_then_issuer is not None
    assert scope_then_issuer.rule == "allowed_scopes"
    issuer_only = p.token_denial(Identity("github", "https://evil"), ["repo"], NOW, NOW)
    assert issuer_only is not None
    assert issuer_only.rule == "allowed_issuers"


def test_storage_and_terminal_denials(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    other = tmp_path / "allowedX"
    other.mkdir()
    p = policy(f"version: 1\nstorage:\n  key_backends: [keyring]\n  vault_dirs: ['{allowed}']\n")
    assert p.storage_denial("keyring", allowed) is None
    assert p.storage_denial("keyring", allowed / "sub") is None
    assert p.storage_denial("passphrase", allowed) == Denial(
        "storage.key_backends",
        "f0.yaml:3",
        "the passphrase key backend is not allowed (allowed: keyring)",
    )
    assert p.storage_denial("keyring", other) == Denial(
        "storage.vault_dirs",
        "f0.yaml:4",
        f"the vault folder {other} is not an allowed place (allowed: {allowed})",
    )
    assert p.storage_denial("keyring", tmp_path) is not None
    assert policy("version: 1\n").storage_denial("passphrase", other) is None
    two = policy(
        "version: 1\nstorage:\n  key_backends: [keyring, passphrase]\n",
        f"version: 1\nstorage:\n  vault_dirs: ['{other}', '{allowed}']\n",
    )
    assert two.storage_denial("passphrase", allowed / "sub") is None
    assert two.storage_denial("passphrase", tmp_path) == Denial(
        "storage.vault_dirs",
        "f1.yaml:3",
        f"the vault folder {tmp_path} is not an allowed place (allowed: {other}, {allowed})",
    )
    assert policy("version: 1\ntokens: {print_to_terminal: true}\n").terminal_denial() is None
    assert policy("version: 1\n").terminal_denial() is None
    no = policy("version: 1\n", "version: 1\ntokens:\n  print_to_terminal: false\n")
    assert no.terminal_denial() == Denial(
        "tokens.print_to_terminal",
        "f1.yaml:3",
        "printing a token to an interactive terminal is not allowed; pipe it, or use `vault exec`",
    )


def test_vault_dirs_expand_home_and_variables_and_follow_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VDIR", str(real))
    assert rules._inside_any(real, ["~/real"])
    assert rules._inside_any(link, ["$VDIR"])
    assert rules._inside_any(real / "x", [str(link)])
    assert not rules._inside_any(tmp_path, ["~/real"])
    assert not rules._inside_any(tmp_path / "realx", ["~/real"])
    assert not rules._inside_any(real, [])
    assert rules._inside_any(real, ["/nonexistent-a", "~/real"])


# --- loading from folders ------------------------------------------------------------------


def _paths(
    tmp_path: Path,
    system_dir: Path,
    *,
    policy_dir: Path | None = None,
    vault_dir: Path | None = None,
) -> Paths:
    """Paths under ``tmp_path``: the user's policies in ``policies/`` and the vault beside them,
    unless ``policy_dir`` or ``vault_dir`` says otherwise."""
    vault_dir = tmp_path if vault_dir is None else vault_dir
    return Paths(
        config_file=tmp_path / "config.yaml",
        policy_dir=tmp_path / "policies" if policy_dir is None else policy_dir,
        system_policy_dir=system_dir,
        vault_file=vault_dir / "vault.enc",
        key_file=vault_dir / "vault.key",
        lock_file=vault_dir / "vault.lock",
        audit_file=vault_dir / "audit.jsonl",
    )


def test_load_reads_system_then_user_policies_in_name_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "system"
    system.mkdir()
    (system / "b.yaml").write_text("version: 1\nmax_token_age: 2h\n")
    (system / "a.yml").write_text("version: 1\nmax_token_age: 3h\n")
    (system / "c.txt").write_text("not a policy")
    user = tmp_path / "policies"
    user.mkdir()
    (user / "u.yaml").write_text("version: 1\nmax_token_age: 1h\n")
    monkeypatch.setattr(rules, "DEFAULT_SYSTEM_DIR", tmp_path / "no-such-dir")
    loaded = rules.load(_paths(tmp_path, system))
    assert [(Path(f.path).name, f.system) for f in loaded.files] == [
        ("a.yml", True),
        ("b.yaml", True),
        ("u.yaml", False),
    ]
    assert loaded.max_token_age(None) == Rule("max_token_age", 3600, f"{user / 'u.yaml'}:2")
    # the default system folder is read even when the variable names another one
    monkeypatch.setattr(rules, "DEFAULT_SYSTEM_DIR", system)
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.yaml").write_text("version: 1\n")
    both = rules.load(_paths(tmp_path, other))
    assert [Path(f.path).name for f in both.files] == ["a.yml", "b.yaml", "o.yaml", "u.yaml"]
    same = rules.load(_paths(tmp_path, system))
    assert [Path(f.path).name for f in same.files] == ["a.yml", "b.yaml", "u.yaml"]
    assert rules.load(_paths(tmp_path / "none", tmp_path / "none2")).files == [
        f for f in rules.load(_paths(tmp_path / "none", system)).files if f.system
    ]


def test_load_refuses_an_untrusted_system_folder_or_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "DEFAULT_SYSTEM_DIR", tmp_path / "no-such-dir")
    system = tmp_path / "system"
    system.mkdir()
    system.chmod(0o777)
    with pytest.raises(ConfigError) as info:
        rules.load(_paths(tmp_path, system))
    assert str(info.value) == (
        f"{system}: the policy is writable by group or others (mode 0777); it cannot be trusted"
    )
    system.chmod(0o755)
    policy_file = system / "p.yaml"
    policy_file.write_text("version: 1\n")
    policy_file.chmod(0o666)
    with pytest.raises(ConfigError) as info:
        rules.load(_paths(tmp_path, system))
    assert str(info.value) == (
        f"{policy_file}: the policy is writable by group or others (mode 0666); it cannot be "
        "trusted"
    )
    policy_file.chmod(0o644)
    (system / "dir.yaml").mkdir()
    with pytest.raises(ConfigError) as info:
        rules.load(_paths(tmp_path, system))
    assert str(info.value) == f"{system / 'dir.yaml'}: the policy is not a regular file"


def test_read_policy_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "gone.yaml"
    with pytest.raises(ConfigError) as info:
        rules.read_policy(missing, system=False)
    assert str(info.value) == f"{missing}: cannot read the policy: No such file or directory"
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n" + "#" * rules.MAX_POLICY_BYTES)
    with pytest.raises(ConfigError) as info:
        rules.read_policy(big, system=False)
    assert str(info.value) == (
        f"{big}: policy is {big.stat().st_size} bytes, over the 65536-byte limit"
    )
    exact = tmp_path / "exact.yaml"
    exact.write_text("version: 1\n" + "#" * (rules.MAX_POLICY_BYTES - 11))
    assert exact.stat().st_size == rules.MAX_POLICY_BYTES
    assert rules.read_policy(exact, system=True) == PolicyFile(path=str(exact), system=True)
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nmax_token_age: 1h\n")
    assert rules.read_policy(good, system=False).max_token_age == Rule(
        "max_token_age", 3600, f"{good}:2"
    )
    from vault.fs import paths as fs_paths

    monkeypatch.setattr(fs_paths, "read_config_text", lambda *a, **k: None)
    with pytest.raises(ConfigError) as info:
        rules.read_policy(good, system=False)
    assert str(info.value) == f"{good}: the policy disappeared while being read"


def test_policy_folder_that_cannot_be_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Path) -> object:
        raise PermissionError(13, "Permission denied")

    assert rules._policy_paths(tmp_path / "missing") == []
    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(ConfigError) as info:
        rules._policy_paths(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot list policies: Permission denied"


def test_owner_rule_names_root_for_system_policies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("version: 1\n")
    if os.geteuid() == 0:
        os.chown(f, 12345, -1)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    uid = os.stat(f).st_uid
    with pytest.raises(ConfigError) as info:
        rules.read_policy(f, system=True)
    assert str(info.value) == (
        f"{f}: the policy is owned by uid {uid}; system policies must be owned by root"
    )
    with pytest.raises(ConfigError) as info:
        rules.read_policy(f, system=False)
    assert str(info.value) == f"{f}: the policy is owned by uid {uid}; it must be yours"


def test_lines_name_the_key_not_the_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal("max_token_age: 1h\nversion: 2\n") == (
        "p.yaml:2: version: 2 is not supported (this vault reads version 1)"
    )
    assert refusal("version: 1\ntokens: {\n  print_to_terminal: 1}\n") == (
        "p.yaml:3: print_to_terminal must be true or false"
    )
    assert refusal("version: 1\nproviders: {\n  github: 1}\n") == (
        "p.yaml:3: providers: 'github' must be a mapping"
    )
    assert refusal("version: 1\nallowed_scopes: [\n").startswith("p.yaml:3: not valid YAML: ")
    # a mapping that does not know its lines (the loader always gives one that does)
    monkeypatch.setattr(safe_yaml, "load", lambda text, path: {"max_token_age": "1h"})
    assert refusal("ignored") == "p.yaml:1: version: missing (write version: 1)"


def test_only_scope_lists_are_checked_as_scopes() -> None:
    f = parse_policy("version: 1\nstorage:\n  vault_dirs: ['/home/a b/vault']\n", "x", system=False)
    assert f.vault_dirs == Rule("vault_dirs", ("/home/a b/vault",), "x:3")


def test_issuer_trailing_slash_only_is_ignored() -> None:
    p = policy("version: 1\nallowed_issuers: ['https://a.example']\n")
    assert p.issuer_denial(Identity("oidc", "https://a.example//")) is None
    assert p.issuer_denial(Identity("oidc", "https://a.exampleX")) == Denial(
        "allowed_issuers", "f0.yaml:2", "issuer 'https://a.exampleX' is not allowed"
    )


def test_storage_denial_lists_every_allowed_backend() -> None:
    p = policy("version: 1\nstorage:\n  key_backends: [keyring, keyring]\n")
    denial = p.storage_denial("passphrase", Path("/"))
    assert denial is not None
    assert denial.message == (
        "the passphrase key backend is not allowed (allowed: keyring, keyring)"
    )


def test_grant_and_token_denials_apply_the_provider_section() -> None:
    p = policy(
        "version: 1\nproviders:\n  github:\n    max_token_age: 1h\n    allowed_scopes: [repo]\n"
        "    allowed_issuers: ['https://github.com']\n"
    )
    issuer = p.grant_denial(Identity("github", "https://evil"), ["repo"])
    assert issuer == Denial("allowed_issuers", "f0.yaml:6", "issuer 'https://evil' is not allowed")
    scope = p.grant_denial(GH, ["admin"])
    assert scope == Denial(
        "allowed_scopes", "f0.yaml:5", "scope 'admin' is not in the allowed scopes"
    )
    assert p.token_denial(GH, ["repo"], NOW, NOW + 3601) == Denial(
        "max_token_age", "f0.yaml:4", "the token is 1h1s old, over the maximum 1h since login"
    )
    assert p.token_denial(GH, ["admin"], NOW, NOW) == scope
    assert p.token_denial(Identity("github", "https://evil"), ["repo"], NOW, NOW) == issuer
    assert p.token_denial(Identity("gitlab", "https://evil"), ["admin"], NOW, NOW + 10**6) is None


def test_system_folder_owned_by_someone_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "DEFAULT_SYSTEM_DIR", tmp_path / "no-such-dir")
    system = tmp_path / "system"
    system.mkdir()
    if os.geteuid() == 0:
        os.chown(system, 12345, -1)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    uid = os.stat(system).st_uid
    with pytest.raises(ConfigError) as info:
        rules.load(_paths(tmp_path, system))
    assert str(info.value) == (
        f"{system}: the policy is owned by uid {uid}; system policies must be owned by root"
    )
