"""The ``agent:`` policy rule through the real `vault` executable: `vault policy check` refuses
every bad form naming file, line and key (exit 3), a bad rule in force denies every command,
and `vault policy show` (text and --json) gives the effective rule with the file:line of each
part, a user policy never loosening the system's. No keyring is needed: nothing here opens the
vault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VaultCLI
from vault.policy.rules import Policy, parse_policy

REPO = Path(__file__).resolve().parents[2]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
NO_KEYRING = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}


def _vault(base: Path) -> VaultCLI:
    return VaultCLI(base / "vh", dict(NO_KEYRING))


def _user_policy(vault: VaultCLI, text: str, name: str = "user.yaml") -> Path:
    folder = vault.home / "policies"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    vault.home.chmod(0o700)
    path = folder / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def _system_policy(base: Path, text: str, name: str = "org.yaml") -> Path:
    folder = base / "system-policies"
    folder.mkdir(exist_ok=True, mode=0o755)
    path = folder / name
    path.write_text(text)
    path.chmod(0o644)
    return path


# (policy text, line, what the message must say after "FILE:LINE: ")
BAD = {
    "not a mapping": ("version: 1\nagent: true\n", 2, "agent must be a mapping"),
    "unknown key": (
        "version: 1\nagent:\n  allowed: true\n  idle: 1h\n",
        4,
        "unknown key 'idle' in agent (known: allowed, max_unlocked)",
    ),
    "allowed not a bool": (
        "version: 1\nagent:\n  allowed: 'no'\n",
        3,
        "agent.allowed must be true or false",
    ),
    "max_unlocked zero": (
        "version: 1\nagent:\n  max_unlocked: 0m\n",
        3,
        "agent.max_unlocked: '0m' must be longer than zero",
    ),
    "max_unlocked negative": (
        "version: 1\nagent:\n  max_unlocked: -8h\n",
        3,
        "agent.max_unlocked: '-8h' is not a duration",
    ),
    "max_unlocked without unit": (
        "version: 1\nagent:\n  max_unlocked: 8\n",
        3,
        "agent.max_unlocked: 8 needs a unit",
    ),
    "max_unlocked bad unit": (
        "version: 1\nagent: {allowed: true, max_unlocked: 8y}\n",
        2,
        "agent.max_unlocked: '8y' is not a duration",
    ),
    "per provider": (
        "version: 1\nproviders:\n  github:\n    max_token_age: 1h\n    agent: {allowed: false}\n",
        5,
        "agent in provider 'github': the agent rule applies to the whole vault",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_policy_check_refuses_each_bad_form(case: str, tmp_path: Path) -> None:
    text, line, message = BAD[case]
    vault = _vault(tmp_path)
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    r = vault.run("policy", "check", str(path))
    assert r.returncode == 3, r
    assert r.stdout.startswith(f"FAIL  {path}:{line}: {message}"), r
    r = vault.run("policy", "check", str(path), "--json")
    assert r.returncode == 3, r
    [result] = json.loads(r.stdout)["files"]
    assert result["ok"] is False
    assert result["error"].startswith(f"{path}:{line}: {message}")


def test_policy_check_accepts_the_rule_and_counts_both_parts(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    path = tmp_path / "agent.yaml"
    path.write_text("version: 1\nagent: {allowed: true, max_unlocked: 8h}\n")
    r = vault.run("policy", "check", str(path), "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["files"] == [{"path": str(path), "ok": True, "rules": 2}]


def test_the_strict_example_caps_the_agent_at_a_working_day(tmp_path: Path) -> None:
    strict = REPO / "policies/strict.yaml"
    parsed = parse_policy(strict.read_text(), str(strict), system=True)
    assert Policy([parsed]).agent_denial() is None
    cap = Policy([parsed]).agent_max_unlocked()
    assert cap is not None
    assert cap[0] == 8 * 3600
    r = _vault(tmp_path).run("policy", "check", str(strict))
    assert r.returncode == 0, r


def test_a_bad_agent_rule_in_force_denies_every_command(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    path = _user_policy(vault, "version: 1\nagent:\n  allowed: true\n  max_unlocked: 0s\n")
    for args in (["list"], ["policy", "show"], ["token", "a"]):
        r = vault.run(*args)
        assert r.returncode == 3, (args, r)
        assert f"{path}:4: agent.max_unlocked: '0s' must be longer than zero" in r.stderr
        assert r.stdout == ""


def test_policy_show_without_an_agent_rule(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    r = vault.run("policy", "show", "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["effective"]["agent"] == {
        "allowed": {"value": True, "source": None},
        "max_unlocked": None,
    }
    _user_policy(vault, "version: 1\nmax_token_age: 1h\n")
    r = vault.run("policy", "show")
    assert r.returncode == 0, r
    assert "agent" not in r.stdout


def test_policy_show_a_user_cannot_loosen_the_system_agent_rule(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    system = _system_policy(tmp_path, "version: 1\nagent:\n  allowed: true\n  max_unlocked: 8h\n")
    user = _user_policy(vault, "version: 1\nagent: {allowed: true, max_unlocked: 30d}\n")
    env = {"VAULT_SYSTEM_POLICY_DIR": str(system.parent)}
    r = vault.run("policy", "show", "--json", env=env)
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["effective"]["agent"] == {
        "allowed": {"value": True, "source": f"{system}:3"},
        "max_unlocked": {"value": "8h", "seconds": 28800, "source": f"{system}:4"},
    }
    agent_rules = [e for e in doc["rules"] if e["rule"].startswith("agent.")]
    assert agent_rules == [
        {"rule": "agent.allowed", "value": True, "source": f"{system}:3", "system": True},
        {"rule": "agent.max_unlocked", "value": "8h", "source": f"{system}:4", "system": True},
        {"rule": "agent.allowed", "value": True, "source": f"{user}:2", "system": False},
        {"rule": "agent.max_unlocked", "value": "4w2d", "source": f"{user}:2", "system": False},
    ]
    # the agent rule is the whole vault's: a provider's view shows it too
    shown = json.loads(vault.run("policy", "show", "github", "--json", env=env).stdout)
    assert shown["effective"]["agent"] == doc["effective"]["agent"]
    text = vault.run("policy", "show", "--wide", env=env)  # paths not wrapped
    assert text.returncode == 0, text
    assert f"Effective agent.allowed: true (from {system}:3)\n" in text.stdout
    assert f"Effective agent.max_unlocked: 8h (from {system}:4)\n" in text.stdout
    assert f"{user}:2 (user)" in text.stdout
    # the user may tighten: false over true, 15m under 8h
    user.write_text("version: 1\nagent:\n  allowed: false\n  max_unlocked: 15m\n")
    doc = json.loads(vault.run("policy", "show", "--json", env=env).stdout)
    assert doc["effective"]["agent"] == {
        "allowed": {"value": False, "source": f"{user}:3"},
        "max_unlocked": {"value": "15m", "seconds": 900, "source": f"{user}:4"},
    }
    text = vault.run("policy", "show", "--wide", env=env)  # paths not wrapped
    assert f"Effective agent.allowed: false (from {user}:3)\n" in text.stdout
    assert f"Effective agent.max_unlocked: 15m (from {user}:4)\n" in text.stdout
    # a system false stays false whatever the user says
    system.write_text("version: 1\nagent: {allowed: false}\n")
    user.write_text("version: 1\nagent: {allowed: true}\n")
    doc = json.loads(vault.run("policy", "show", "--json", env=env).stdout)
    assert doc["effective"]["agent"] == {
        "allowed": {"value": False, "source": f"{system}:2"},
        "max_unlocked": None,
    }


def _agent_text(allowed: bool | None, cap: tuple[int, str] | None) -> str:
    lines = ["version: 1", "agent:"]
    if allowed is not None:
        lines.append(f"  allowed: {str(allowed).lower()}")
    if cap is not None:
        lines.append(f"  max_unlocked: {cap[0]}{cap[1]}")
    return "\n".join(lines) + "\n"


rule = st.tuples(
    st.none() | st.booleans(),
    st.none() | st.tuples(st.integers(1, 10**5), st.sampled_from(sorted(UNITS))),
)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(system_rule=rule, user_rule=rule)
def test_policy_show_effective_agent_rule_is_strictest_of_system_and_user(
    tmp_path_factory: pytest.TempPathFactory,
    system_rule: tuple[bool | None, tuple[int, str] | None],
    user_rule: tuple[bool | None, tuple[int, str] | None],
) -> None:
    """Any pair of system and user agent rules, as `vault policy show --json` reports them:
    forbidden when either says false (naming the first that does, the system's), else allowed
    (naming the first file that says so, if any); capped at the shorter max_unlocked (the
    system's on a tie)."""
    base = tmp_path_factory.mktemp("agent")
    vault = _vault(base)
    paths = [
        _system_policy(base, _agent_text(*system_rule)),
        _user_policy(vault, _agent_text(*user_rule)),
    ]
    r = vault.run("policy", "show", "--json", env={"VAULT_SYSTEM_POLICY_DIR": str(paths[0].parent)})
    assert r.returncode == 0, r
    agent = json.loads(r.stdout)["effective"]["agent"]
    said = [
        (a, p) for (a, _), p in zip((system_rule, user_rule), paths, strict=True) if a is not None
    ]
    assert agent["allowed"]["value"] is all(a for a, _ in said)
    falses = [p for a, p in said if a is False]
    expected_source = falses[0] if falses else (said[0][1] if said else None)
    assert agent["allowed"]["source"] == (
        None if expected_source is None else f"{expected_source}:3"
    )
    caps = [
        (c[0] * UNITS[c[1]], p, 3 if a is None else 4)
        for (a, c), p in zip((system_rule, user_rule), paths, strict=True)
        if c is not None
    ]
    if not caps:
        assert agent["max_unlocked"] is None
    else:
        seconds = min(c[0] for c in caps)
        _, path, line = next(c for c in caps if c[0] == seconds)
        assert agent["max_unlocked"]["seconds"] == seconds
        assert agent["max_unlocked"]["source"] == f"{path}:{line}"
