"""The ``agent:`` policy rule: may a background agent hold the vault's data key, and for how
long. Parsing (every bad form refused naming file, line and key), strictest-wins over several
files (any ``allowed: false``; the shortest ``max_unlocked``), a user policy never loosening the
system's, and ``providers:`` sections refusing it (the agent holds the key of the whole vault)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import EXIT_CONFIG, EXIT_POLICY, ConfigError, PolicyError
from vault.policy.rules import Denial, Policy, PolicyFile, Rule, parse_policy

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
FORBIDDEN = "a key agent may not hold this vault's key"
WHOLE_VAULT = (
    "the agent rule applies to the whole vault (an agent holds the key to every token), so it "
    "belongs at the top level of the policy"
)


def refusal(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "p.yaml", system=False)
    return info.value


def agent_file(path: str, *, system: bool, allowed: bool | None, cap: str | None) -> PolicyFile:
    lines = ["version: 1", "agent:"]
    if allowed is not None:
        lines.append(f"  allowed: {'true' if allowed else 'false'}")
    if cap is not None:
        lines.append(f"  max_unlocked: {cap}")
    return parse_policy("\n".join(lines) + "\n", path, system=system)


# --- parsing ------------------------------------------------------------------------------


def test_the_full_rule_parses_with_each_part_s_line() -> None:
    f = parse_policy(
        "version: 1\nagent:\n  allowed: true\n  max_unlocked: 8h\n", "/etc/p.yaml", system=True
    )
    assert f.agent_allowed == Rule("agent_allowed", True, "/etc/p.yaml:3")
    assert f.agent_max_unlocked == Rule("agent_max_unlocked", 8 * 3600, "/etc/p.yaml:4")
    assert f.rule_count() == 2


@pytest.mark.parametrize(
    ("text", "allowed", "cap"),
    [
        (
            "agent: {allowed: true, max_unlocked: 8h}",
            Rule("agent_allowed", True, "p.yaml:2"),
            Rule("agent_max_unlocked", 28800, "p.yaml:2"),
        ),
        ("agent: {allowed: false}", Rule("agent_allowed", False, "p.yaml:2"), None),
        ("agent:\n  max_unlocked: 1d12h", None, Rule("agent_max_unlocked", 129600, "p.yaml:3")),
        ("agent:\n  max_unlocked: ' 1h 30m '", None, Rule("agent_max_unlocked", 5400, "p.yaml:3")),
        ("agent: {}", None, None),
        ("agent:", None, None),  # empty, as `storage:` or `tokens:` with nothing under them
    ],
)
def test_good_forms(text: str, allowed: Rule | None, cap: Rule | None) -> None:
    f = parse_policy(f"version: 1\n{text}\n", "p.yaml", system=False)
    assert f.agent_allowed == allowed
    assert f.agent_max_unlocked == cap
    assert f.rule_count() == (allowed is not None) + (cap is not None)
    assert f.providers == {}


def test_an_absent_rule_is_no_rule() -> None:
    f = parse_policy("version: 1\nmax_token_age: 1h\n", "p.yaml", system=False)
    assert f.agent_allowed is None
    assert f.agent_max_unlocked is None
    assert Policy([f]).agent_denial() is None
    assert Policy([f]).agent_max_unlocked() is None
    assert Policy([]).agent_denial() is None
    assert Policy([]).agent_max_unlocked() is None


BAD: dict[str, tuple[str, str]] = {
    "a list": (
        "agent: []",
        "p.yaml:2: agent must be a mapping (e.g. {allowed: true, max_unlocked: 8h})",
    ),
    "a bool": (
        "agent: false",
        "p.yaml:2: agent must be a mapping (e.g. {allowed: true, max_unlocked: 8h})",
    ),
    "a duration": (
        "agent: 8h",
        "p.yaml:2: agent must be a mapping (e.g. {allowed: true, max_unlocked: 8h})",
    ),
    "unknown key": (
        "agent:\n  allowed: true\n  idle: 1h",
        "p.yaml:4: unknown key 'idle' in agent (known: allowed, max_unlocked)",
    ),
    "unknown key, one line": (
        "agent: {max_unlocked: 1h, max_idle: 1h}",
        "p.yaml:2: unknown key 'max_idle' in agent (known: allowed, max_unlocked)",
    ),
    "allowed a string": (
        "agent:\n  allowed: 'false'",
        "p.yaml:3: agent.allowed must be true or false",
    ),
    "allowed a number": ("agent:\n  allowed: 0", "p.yaml:3: agent.allowed must be true or false"),
    "allowed null": ("agent:\n  allowed:", "p.yaml:3: agent.allowed must be true or false"),
    "allowed a list": (
        "agent:\n  allowed: [false]",
        "p.yaml:3: agent.allowed must be true or false",
    ),
    "max_unlocked zero": (
        "agent:\n  max_unlocked: 0s",
        "p.yaml:3: agent.max_unlocked: '0s' must be longer than zero",
    ),
    "max_unlocked zero, two units": (
        "agent:\n  max_unlocked: 0h0m",
        "p.yaml:3: agent.max_unlocked: '0h0m' must be longer than zero",
    ),
    "max_unlocked negative": (
        "agent:\n  max_unlocked: -1h",
        "p.yaml:3: agent.max_unlocked: '-1h' is not a duration (use e.g. 90m, 8h, 1d12h)",
    ),
    "max_unlocked no unit": (
        "agent:\n  max_unlocked: 8",
        "p.yaml:3: agent.max_unlocked: 8 needs a unit (s, m, h, d or w), e.g. 8h",
    ),
    "max_unlocked bad unit": (
        "agent:\n  max_unlocked: 1y",
        "p.yaml:3: agent.max_unlocked: '1y' is not a duration (use e.g. 90m, 8h, 1d12h)",
    ),
    "max_unlocked a bool": (
        "agent:\n  max_unlocked: true",
        "p.yaml:3: agent.max_unlocked: a duration such as 90m, 8h or 30d, not True",
    ),
    "max_unlocked a float": (
        "agent:\n  max_unlocked: 1.5",
        "p.yaml:3: agent.max_unlocked: a duration such as 90m, 8h or 30d, not 1.5",
    ),
    "max_unlocked null": (
        "agent:\n  max_unlocked:",
        "p.yaml:3: agent.max_unlocked: a duration such as 90m, 8h or 30d, not None",
    ),
    "per provider": (
        "providers:\n  github:\n    agent: {allowed: false}",
        f"p.yaml:4: agent in provider 'github': {WHOLE_VAULT}",
    ),
    "per provider, issuer pattern": (
        "providers:\n  'https://idp.example.com/*':\n    max_token_age: 1h\n    agent:\n"
        "      max_unlocked: 1h",
        f"p.yaml:5: agent in provider 'https://idp.example.com/*': {WHOLE_VAULT}",
    ),
    "per provider, even empty": (
        "providers:\n  gitlab: {agent: {}}",
        f"p.yaml:3: agent in provider 'gitlab': {WHOLE_VAULT}",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_forms_are_refused_naming_file_line_and_key(case: str) -> None:
    text, message = BAD[case]
    err = refusal(f"version: 1\n{text}\n")
    assert str(err) == message
    assert err.exit_code == EXIT_CONFIG


def test_durations_parse_as_max_token_age_does() -> None:
    for text in ("90m", "8h", "1d12h", "2w", "1w1d1h1m1s", "000000000001s"):
        age = parse_policy(f"version: 1\nmax_token_age: {text}\n", "p", system=False)
        cap = parse_policy(f"version: 1\nagent: {{max_unlocked: {text}}}\n", "p", system=False)
        assert age.max_token_age is not None
        assert cap.agent_max_unlocked is not None
        assert cap.agent_max_unlocked.value == age.max_token_age.value


# --- the effective rule --------------------------------------------------------------------


def test_denial_names_the_rule_and_the_forbidding_file() -> None:
    p = Policy(
        [
            agent_file("/etc/vault/policies/05-base.yaml", system=True, allowed=True, cap=None),
            agent_file("/etc/vault/policies/10-org.yaml", system=True, allowed=False, cap=None),
            agent_file(
                "/home/u/.config/vault/policies/me.yaml", system=False, allowed=False, cap=None
            ),
        ]
    )
    denial = p.agent_denial()
    assert denial == Denial("agent.allowed", "/etc/vault/policies/10-org.yaml:3", FORBIDDEN)
    err = denial.error()
    assert isinstance(err, PolicyError)
    assert err.exit_code == EXIT_POLICY
    assert str(err) == (
        "refused by policy: a key agent may not hold this vault's key "
        "(rule agent.allowed, /etc/vault/policies/10-org.yaml:3)"
    )
    assert err.rule == "agent.allowed"
    assert err.source == "/etc/vault/policies/10-org.yaml:3"


def test_allowed_true_everywhere_or_nowhere_is_no_denial() -> None:
    p = Policy([agent_file(f"f{i}", system=i == 0, allowed=True, cap="1h") for i in range(3)])
    assert p.agent_denial() is None
    assert Policy([agent_file("f", system=True, allowed=None, cap="1h")]).agent_denial() is None


def test_max_unlocked_is_the_shortest_and_names_its_file() -> None:
    p = Policy(
        [
            agent_file("a.yaml", system=True, allowed=None, cap="8h"),
            agent_file("b.yaml", system=True, allowed=True, cap=None),
            agent_file("c.yaml", system=False, allowed=None, cap="90m"),
            agent_file("d.yaml", system=False, allowed=None, cap="2h"),
        ]
    )
    cap = p.agent_max_unlocked()
    assert cap == (5400.0, "c.yaml:3")
    assert cap is not None
    assert isinstance(cap[0], float)
    # a tie names the first file read (the system's come first)
    tie = Policy(
        [
            agent_file("sys.yaml", system=True, allowed=None, cap="1h"),
            agent_file("user.yaml", system=False, allowed=None, cap="60m"),
        ]
    )
    assert tie.agent_max_unlocked() == (3600.0, "sys.yaml:3")


def test_a_user_policy_cannot_loosen_the_system_s() -> None:
    system = agent_file("/etc/vault/policies/org.yaml", system=True, allowed=False, cap="8h")
    user = agent_file("/home/u/p/me.yaml", system=False, allowed=True, cap="30d")
    for files in ([system, user], [user, system]):
        p = Policy(files)
        assert p.agent_denial() == Denial(
            "agent.allowed", "/etc/vault/policies/org.yaml:3", FORBIDDEN
        )
        assert p.agent_max_unlocked() == (8 * 3600.0, "/etc/vault/policies/org.yaml:4")
    # and a user policy may tighten it
    allowing = agent_file("/etc/vault/policies/org.yaml", system=True, allowed=True, cap="8h")
    stricter = agent_file("/home/u/p/me.yaml", system=False, allowed=False, cap="15m")
    p = Policy([allowing, stricter])
    assert p.agent_denial() == Denial("agent.allowed", "/home/u/p/me.yaml:3", FORBIDDEN)
    assert p.agent_max_unlocked() == (900.0, "/home/u/p/me.yaml:4")


def test_per_provider_sections_never_reach_the_agent_rule() -> None:
    f = parse_policy(
        "version: 1\nproviders:\n  github: {max_token_age: 1h}\n", "p.yaml", system=True
    )
    assert Policy([f]).agent_denial() is None
    assert Policy([f]).agent_max_unlocked() is None


durations = st.tuples(st.integers(min_value=1, max_value=10**6), st.sampled_from(sorted(UNITS)))
files = st.lists(
    st.tuples(st.booleans(), st.none() | st.booleans(), st.none() | durations),
    max_size=6,
)


@given(files)
def test_strictest_wins_over_any_files(
    spec: list[tuple[bool, bool | None, tuple[int, str] | None]],
) -> None:
    """The effective rule over any files, system or user, in any order: forbidden if any file
    says ``allowed: false`` (naming the first), capped at the minimum ``max_unlocked`` (naming
    the first file with it), unrestricted where no file says anything."""
    parsed = [
        agent_file(
            f"f{i}.yaml",
            system=system,
            allowed=allowed,
            cap=None if cap is None else f"{cap[0]}{cap[1]}",
        )
        for i, (system, allowed, cap) in enumerate(spec)
    ]
    p = Policy(parsed)
    forbidding = [i for i, (_, allowed, _) in enumerate(spec) if allowed is False]
    if forbidding:
        i = forbidding[0]
        assert p.agent_denial() == Denial("agent.allowed", f"f{i}.yaml:3", FORBIDDEN)
    else:
        assert p.agent_denial() is None
    caps = [
        (cap[0] * UNITS[cap[1]], i, 3 if allowed is None else 4)
        for i, (_, allowed, cap) in enumerate(spec)
        if cap is not None
    ]
    if caps:
        seconds = min(c[0] for c in caps)
        first = next(c for c in caps if c[0] == seconds)
        assert p.agent_max_unlocked() == (float(seconds), f"f{first[1]}.yaml:{first[2]}")
    else:
        assert p.agent_max_unlocked() is None


@given(st.booleans(), st.booleans())
def test_any_false_over_two_files(first: bool, second: bool) -> None:
    p = Policy(
        [
            agent_file("sys.yaml", system=True, allowed=first, cap=None),
            agent_file("user.yaml", system=False, allowed=second, cap=None),
        ]
    )
    assert (p.agent_denial() is None) == (first and second)


@given(durations, durations)
def test_min_over_two_files(system: tuple[int, str], user: tuple[int, str]) -> None:
    p = Policy(
        [
            agent_file("sys.yaml", system=True, allowed=None, cap=f"{system[0]}{system[1]}"),
            agent_file("user.yaml", system=False, allowed=None, cap=f"{user[0]}{user[1]}"),
        ]
    )
    s, u = system[0] * UNITS[system[1]], user[0] * UNITS[user[1]]
    cap = p.agent_max_unlocked()
    assert cap is not None
    assert cap[0] == min(s, u)
    assert cap[1] == ("sys.yaml:3" if s <= u else "user.yaml:3")
