"""allowed_grants: which OAuth grants `vault login` may use, strictest wins, per provider."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import ConfigError
from vault.login.providers import Identity
from vault.policy.rules import GRANTS, Policy, parse_policy

OIDC = Identity("oidc", "https://idp.example.test")
GITHUB = Identity("github", "https://github.com")


def policy(*texts: str) -> Policy:
    return Policy([parse_policy(t, f"f{i}.yaml", system=i == 0) for i, t in enumerate(texts)])


def test_no_rule_allows_both() -> None:
    assert policy("version: 1\n").allowed_grants(OIDC) == GRANTS
    assert policy().grant_type_denial(OIDC, "device_code") is None


def test_a_rule_names_itself_when_it_refuses() -> None:
    p = policy("version: 1\nallowed_grants: [authorization_code]\n")
    assert p.allowed_grants(OIDC) == ("authorization_code",)
    denial = p.grant_type_denial(OIDC, "device_code")
    assert denial is not None
    assert (denial.rule, denial.source) == ("allowed_grants", "f0.yaml:2")
    assert "device_code grant is not allowed (allowed: authorization_code)" in denial.message
    assert denial.error().exit_code == 5


def test_strictest_wins_a_user_policy_cannot_widen() -> None:
    p = policy(
        "version: 1\nallowed_grants: [device_code]\n",
        "version: 1\nallowed_grants: [authorization_code, device_code]\n",
    )
    assert p.allowed_grants(OIDC) == ("device_code",)
    denial = p.grant_type_denial(OIDC, "authorization_code")
    assert denial is not None
    assert denial.source == "f0.yaml:2"  # the system's file, not the user's
    both = policy(
        "version: 1\nallowed_grants: [device_code]\n",
        "version: 1\nallowed_grants: [authorization_code]\n",
    )
    assert both.allowed_grants(OIDC) == ()


def test_per_provider_rules_follow_what_a_provider_is() -> None:
    p = policy(
        "version: 1\nproviders:\n  github:\n    allowed_grants: [device_code]\n"
        "  'https://idp.example.test':\n    allowed_grants: [authorization_code]\n"
    )
    assert p.allowed_grants(GITHUB) == ("device_code",)
    assert p.allowed_grants(OIDC) == ("authorization_code",)
    assert p.allowed_grants(Identity("oidc", "https://other.test")) == GRANTS
    denial = p.grant_type_denial(GITHUB, "authorization_code")
    assert denial is not None
    assert denial.source == "f0.yaml:4"


def test_an_empty_list_allows_nothing() -> None:
    p = policy("version: 1\nallowed_grants: []\n")
    assert p.allowed_grants(OIDC) == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nallowed_grants: [password]\n", "'password' is not a grant vault knows"),
        ("version: 1\nallowed_grants: device_code\n", "allowed_grants must be a list"),
        ("version: 1\nallowed_grants: [Device_Code]\n", "'Device_Code' is not a grant"),
        (
            "version: 1\nproviders:\n  github:\n    allowed_grants: [implicit]\n",
            "f.yaml:4: allowed_grants: 'implicit' is not a grant",
        ),
    ],
)
def test_bad_rules_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_policy(text, "f.yaml", system=False)


@given(
    st.lists(st.lists(st.sampled_from(GRANTS), unique=True), max_size=4),
    st.sampled_from(GRANTS),
)
def test_allowed_is_the_intersection(rules: list[list[str]], grant: str) -> None:
    texts = [f"version: 1\nallowed_grants: [{', '.join(r)}]\n" for r in rules]
    p = policy(*texts)
    expected = all(grant in r for r in rules)
    assert (p.grant_type_denial(OIDC, grant) is None) == expected
    assert (grant in p.allowed_grants(OIDC)) == expected
