"""`vault list` and `vault status` on a real 80x24 terminal (tmux): the exact layout, no line
the terminal had to wrap, colour on a terminal, none with NO_COLOR or TERM=dumb."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import VAULT_BIN, VaultCLI
from tests.harness.tmux import Terminal
from tests.integration.output_vault import populate

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

LIST = [
    "NAME            ACCOUNT  PROVIDER  SCOPES         EXPIRES   STATE",
    "bad-scope       -        gitlab    api admin:all  in 1 d    denied:denied_scopes",
    "gh              octocat  github    repo read:org  in 7 h    valid",
    "gh-expiring     -        github    repo           in 4 min  expiring",
    "gl-expired      -        gitlab    read_user      1 h ago   expired",
    "gl-refreshable  Zoë Å.   gitlab    api            3 d ago   refreshable",
    "needs-login     -        github    repo           1 h ago   needs_login",
    "rejected        -        github    repo           in 5 h    rejected",
    "too-old         12345    github    repo           never     denied:max_token_age",
]


@pytest.fixture
def full(passphrase_vault: VaultCLI) -> VaultCLI:
    populate(passphrase_vault)
    return passphrase_vault


def _env(vault: VaultCLI, **extra: str) -> dict[str, str]:
    env = vault.full_env({"TERM": "xterm-256color", "LANG": "C.UTF-8", **extra})
    for name in ("NO_COLOR", "CLICOLOR_FORCE", "FORCE_COLOR", "COLUMNS", "LINES"):
        if name not in extra:
            env.pop(name, None)
    return env


def _on_terminal(vault: VaultCLI, *args: str, **env: str) -> tuple[list[str], str, int]:
    # Through env(1): tmux sets TERM for the pane itself, whatever -e said.
    argv = ["env", *(f"{k}={v}" for k, v in env.items()), VAULT_BIN, *args]
    with Terminal(argv, env=_env(vault, **env), width=80, height=24) as term:
        code = term.wait_exit(timeout=120)
        return term.screen(), term.raw(), code


def _content(rows: list[str]) -> list[str]:
    while rows and not rows[-1]:
        rows = rows[:-1]
    return rows


def test_list_at_80x24_exact_layout(full: VaultCLI) -> None:
    screen, raw, code = _on_terminal(full, "list", NO_COLOR="1")
    assert code == 0
    assert _content(screen) == LIST
    assert "\x1b" not in raw


def test_status_at_80x24_reads_as_off_a_terminal(full: VaultCLI) -> None:
    """No line was wrapped by the terminal: the screen is what the command printed at 80
    columns, line for line; the tokens' rows are list's rows."""
    screen, _, code = _on_terminal(full, "status", "--absolute", NO_COLOR="1")
    assert code == 0
    assert _content(screen) == full.run("status", "--absolute").stdout.splitlines()
    printed = full.run("status").stdout.splitlines()
    assert printed[0].startswith("vault:      ")
    head = printed[: printed.index("")]
    assert [line.split(":")[0] for line in head if not line.startswith(" ")] == [
        "vault",
        "backend",
        "created",
        "generation",
        "vault id",
        "tokens",
    ]
    assert printed[printed.index("") + 1 :] == LIST
    one, _, code = _on_terminal(full, "status", "gh", "--absolute", NO_COLOR="1")
    assert code == 0
    assert _content(one) == full.run("status", "gh", "--absolute").stdout.splitlines()
    assert one[1] == "account:     octocat"


def test_colour_on_a_terminal(full: VaultCLI) -> None:
    screen, raw, code = _on_terminal(full, "list")
    assert code == 0
    assert _content(screen) == LIST  # colour takes no columns
    assert "\x1b[" in raw
    expired = next(line for line in raw.splitlines() if "gl-expired" in line)
    assert "\x1b[31mexpired" in expired  # red
    valid = next(line for line in raw.splitlines() if "octocat" in line)
    assert "\x1b[32mvalid" in valid  # green
    _, raw, code = _on_terminal(full, "status", "nope")
    assert code == 4
    assert "error:" in raw
    assert raw.index("\x1b[") < raw.index("error:")


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_colour_when_asked_or_on_a_dumb_terminal(full: VaultCLI, env: dict[str, str]) -> None:
    for args in (["list"], ["status"], ["status", "too-old"], ["status", "nope"]):
        _, raw, _ = _on_terminal(full, *args, **env)
        assert "\x1b" not in raw, (args, env)


def test_forced_colour_off_a_terminal(full: VaultCLI) -> None:
    r = full.run("list", env={"FORCE_COLOR": "1"})
    assert "\x1b[31mexpired\x1b[0m" in r.stdout
    r = full.run("list", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b" not in r.stdout
    r = full.run("list", env={"CLICOLOR_FORCE": "1", "TERM": "dumb"})
    assert "\x1b[" in r.stdout
