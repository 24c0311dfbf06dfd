"""What a person reads: every human-output command over a vault with a token in every state,
through the real `vault` executable. No Python word or repr, every line of a table within 80
columns off a terminal, no escape sequence off a terminal, and `list` and `status` agreeing
on each token's state. The terminal itself (80x24, colour) is tests/integration/
test_output_terminal.py."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import VaultCLI
from tests.integration.output_vault import STATES, TOKENS, populate

# What Python leaks when a value is printed instead of rendered.
PYTHON = re.compile(
    r"\b(True|False|None)\b"
    r"|[\[{(]'"  # a list, dict, set or tuple repr of strings
    r"|\{\""
    r"|': "
    r"|\b[A-Z][A-Za-z]+\((?:[a-z_]+=|')"  # a dataclass or object repr: Account(subject=...
    r"|<[a-z_.]+ object at 0x"
    r"|\bdatetime\.|\bb'|\\x[0-9a-f]{2}"
)


@pytest.fixture
def full(passphrase_vault: VaultCLI) -> VaultCLI:
    populate(passphrase_vault)
    # Records in the audit log of every outcome: uses, a refusal by policy, a failed lookup.
    assert passphrase_vault.run("token", "gh").returncode == 0
    assert passphrase_vault.run("token", "too-old").returncode == 5
    assert passphrase_vault.run("token", "nosuch").returncode == 4
    return passphrase_vault


def _human_commands() -> list[list[str]]:
    views = [[], ["--wide"], ["--absolute"], ["--wide", "--absolute"]]
    commands = [["list", *v] for v in views] + [["status", *v] for v in views]
    commands += [["status", name, *v] for name in TOKENS for v in ([], ["--absolute"])]
    commands += [["policy", "show"], ["policy", "show", "--wide"], ["policy", "show", "github"]]
    commands += [["policy", "check"]]
    commands += [["audit", "show", *v] for v in views]
    commands += [["audit", "report", *v] for v in views]
    return commands


def test_no_python_in_human_output_and_tables_fit(full: VaultCLI) -> None:
    for args in _human_commands():
        r = full.run(*args)
        assert r.returncode == 0, r
        assert r.stdout.strip(), r
        for line in (r.stdout + r.stderr).splitlines():
            assert not PYTHON.search(line), (args, line)
        assert "\x1b" not in r.stdout + r.stderr, args  # not a terminal: no escapes
        assert "tok-" not in r.stdout + r.stderr, args
        assert "rt-" not in r.stdout, args
        if "--wide" not in args and args[:2] != ["policy", "check"]:  # (a path a line)
            for line in r.stdout.splitlines():
                assert len(line) <= 80, (args, len(line), line)


def _states_in_table(text: str) -> dict[str, str]:
    """NAME -> STATE from a `list` table (names here are short: one row each)."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    rows = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[-1]
    return rows


def test_list_and_status_agree_on_every_state(full: VaultCLI) -> None:
    listed = _states_in_table(full.run("list").stdout)
    assert listed == STATES
    status = full.run("status").stdout
    assert _states_in_table(status[status.index("NAME") :]) == STATES
    for name, state in STATES.items():
        shown = full.run("status", name).stdout
        assert f"\nstate:       {state}\n" in shown, shown
    # the JSON keeps the token's own lifetime state and says what policy makes of it
    doc = {t["name"]: t for t in json.loads(full.run("list", "--json").stdout)["tokens"]}
    assert doc["too-old"]["policy_denial"]["rule"] == "max_token_age"
    assert doc["bad-scope"]["policy_denial"]["rule"] == "denied_scopes"
    assert doc["needs-login"]["state"] == "needs_login"


def test_accounts_and_relative_times(full: VaultCLI) -> None:
    listed = full.run("list").stdout
    # 80 columns: ISSUED is left out rather than a name wrapped (--wide has it)
    assert listed.splitlines()[0].split() == [
        "NAME",
        "ACCOUNT",
        "PROVIDER",
        "SCOPES",
        "EXPIRES",
        "STATE",
    ]
    assert re.search(r"^gh +octocat +github +repo read:org +in 7 h +valid$", listed, re.M)
    assert re.search(r"^gl-refreshable +Zoë Å\. +gitlab +api +3 d ago +refreshable$",
                     listed, re.M)  # fmt: skip
    assert re.search(r"^too-old +12345 +github +repo +never +denied:max_token_age$",
                     listed, re.M)  # fmt: skip
    wide_too_old = r"^too-old +12345 +github +repo +40 d ago +never +never +denied:max_token_age$"
    assert re.search(wide_too_old, full.run("list", "--wide").stdout, re.M)
    wide = full.run("list", "--wide").stdout
    assert re.search(r"^gh +octocat +github +repo read:org +2 h ago +in 7 h +never +valid$",
                     wide, re.M)  # fmt: skip
    # --absolute: RFC 3339 times; ISSUED is left out to fit (--wide --absolute has it)
    absolute = full.run("list", "--absolute").stdout
    assert absolute.splitlines()[0].split()[-2:] == ["EXPIRES", "STATE"]
    assert "ISSUED" not in absolute.splitlines()[0]
    assert re.search(r"^gh .* \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +valid$", absolute, re.M), absolute
    assert " ago" not in absolute
    assert " in " not in absolute
    assert "ISSUED" in full.run("list", "--absolute", "--wide").stdout
    one = full.run("status", "too-old").stdout
    assert "account:     12345\n" in one  # the subject where there is no display name
    assert "issued:      40 d ago (" in one
    assert "policy:      " in one
    assert "rule max_token_age" in " ".join(one.split())
    needs = full.run("status", "needs-login").stdout
    assert "needs login: the provider refused the refresh token (invalid_grant, 1 h ago" in needs
    rejected = full.run("status", "rejected").stdout
    assert "rejected:    10 min ago (" in rejected
    assert "refreshable: yes\n" in rejected


def test_names_and_values_at_their_limits_fit(passphrase_vault: VaultCLI) -> None:
    """A 128-character name (the longest a name may be), a long provider name and many long
    scopes: every line of list, status and audit show within 80 columns, the name whole
    (wrapped, never cut), the scopes cut with a mark; --wide has them all on one line."""
    vault = passphrase_vault
    name = "n" + "-abcdefghi" * 12 + "-xyzuvw"  # 128 characters
    assert len(name) == 128
    scopes = [f"scope:{'s' * 40}:{i}" for i in range(12)]
    args = [f"--scope={s}" for s in scopes]
    r = vault.run("import", name, "--provider", "github", *args, input="tok-limit-000000001")
    assert r.returncode == 0, r
    r = vault.run("import", "b", "--provider", "gitlab", input="tok-limit-000000002")
    assert r.returncode == 0, r
    for command in (["list"], ["status"], ["status", name], ["audit", "show"]):
        out = vault.run(*command).stdout
        assert all(len(line) <= 80 for line in out.splitlines()), (command, out)
    listed = vault.run("list").stdout.splitlines()
    assert listed[1].startswith("b ")  # "b" sorts first
    assert "".join(line.split(" ")[0] for line in listed[2:]) == name  # read down: whole
    assert any("…" in line for line in listed)  # the scopes, cut and marked
    wide = vault.run("list", "--wide").stdout.splitlines()
    assert wide[2].startswith(name + "  ")
    assert " ".join(scopes) in wide[2]
