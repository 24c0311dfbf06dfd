"""The help walked from the parser: every command described with examples and listed in a
group, every option explained; and what a mistyped command line is told."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.cli.helptext import EXAMPLE_WIDTH, GROUPS, HELP, path_of, subcommands, walk
from vault.cli.main import main
from vault.cli.parser import build_parser, parse
from vault.errors import UsageError

PARSERS = walk(build_parser())[1:]


@pytest.mark.parametrize("parser", PARSERS, ids=path_of)
def test_every_command_has_a_description_and_an_example(parser: argparse.ArgumentParser) -> None:
    entry = HELP.get(path_of(parser))
    assert entry is not None, f"vault.cli.helptext.HELP has no entry for {path_of(parser)!r}"
    assert entry.summary
    assert entry.description.rstrip().endswith((".", ")"))
    assert entry.examples
    assert "Examples:\n  " in (parser.epilog or "")
    assert any("vault " in line for line in entry.examples)
    for line in entry.examples:
        assert len(line) <= EXAMPLE_WIDTH, line


@pytest.mark.parametrize("parser", PARSERS, ids=path_of)
def test_every_option_and_argument_has_help(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):  # its actions' own lines
            assert all(choice.help for choice in action._choices_actions)
            continue
        assert action.help, f"vault {path_of(parser)}: {action.option_strings or action.dest}"


def test_every_command_is_listed_in_a_group_once() -> None:
    grouped = [name for _, names in GROUPS for name in names]
    assert len(grouped) == len(set(grouped))
    missing = set(subcommands(build_parser())) - set(grouped)
    assert not missing, f"commands in no group of vault --help: {sorted(missing)}"


def test_aliases_say_so_and_are_the_same_command() -> None:
    subs = subcommands(build_parser())
    for name, entry in HELP.items():
        if entry.alias_of is None:
            continue
        assert f"same as `vault {entry.alias_of}`" in entry.description
        assert "same as" in entry.summary
        assert subs[name].get_default("handler") == subs[entry.alias_of].get_default("handler")
    assert HELP["revoke"].alias_of == "logout"


def test_the_command_list_is_in_the_order_a_person_meets_it() -> None:
    text = build_parser().format_help()
    at = [text.index(f"\n  {name} ") for name in ("login", "token", "list", "audit", "agent")]
    assert at == sorted(at)
    for title, _ in GROUPS:
        assert f"\n{title}:\n" in text


def _error(*argv: str) -> UsageError:
    with pytest.raises(UsageError) as caught:
        parse(list(argv))
    return caught.value


@pytest.mark.parametrize(
    ("argv", "message", "hint"),
    [
        (["lgin"], "unknown command 'lgin': did you mean login?", "see `vault help`"),
        (["lisst", "--json"], "unknown command 'lisst': did you mean list?", "see `vault help`"),
        (["zzzzzz"], "unknown command 'zzzzzz'", "see `vault help`"),
        (["audit", "shwo"], "unknown audit action 'shwo': did you mean show?", "audit --help"),
        (["agent", "strt"], "unknown agent action 'strt': did you mean start?", "agent --help"),
        (
            ["login", "--clinet-id", "x"],
            "unknown option --clinet-id for `vault login`: did you mean --client-id?",
            "see `vault login --help`",
        ),
        (
            ["list", "--jsn"],
            "unknown option --jsn for `vault list`: did you mean --json?",
            "see `vault list --help`",
        ),
        (
            ["list", "--jsn=1"],
            "unknown option --jsn for `vault list`: did you mean --json?",
            "see `vault list --help`",
        ),
        (["list", "extra"], "unexpected argument 'extra' for `vault list`", "vault list --help"),
        (["kube"], "the following arguments are required: NAME", "see `vault kube --help`"),
        (
            ["exec", "gh", "api", "/user"],
            "put -- before the command: vault exec gh -- api /user",
            "up to `--`",
        ),
        (
            ["exec", "NAME", "ls", "-la"],
            "put -- before the command: vault exec NAME -- ls -la",
            "up to `--`",
        ),
        (
            ["exec", "gh", "--evn", "X"],
            "unknown option --evn for `vault exec`: did you mean --env?",
            "see `vault exec --help`",
        ),
        # vault's own -v is the command's here: everything from the command on goes after --
        (
            ["exec", "gh", "curl", "-v", "a b"],
            "put -- before the command: vault exec gh -- curl -v 'a b'",
            "up to `--`",
        ),
    ],
)
def test_mistakes_are_explained(argv: list[str], message: str, hint: str) -> None:
    error = _error(*argv)
    assert error.message == message
    assert error.hint is not None
    assert hint in error.hint
    assert "\n" not in error.message


WORDS = st.sampled_from(
    [
        "exec",
        "login",
        "audit",
        "show",
        "agent",
        "start",
        "help",
        "-la",
        "--json",
        "--",
        "x",
        "--min-valid",
        "5",
        "-v",
        "--name",
        "=",
        "--jsn",
        "lgin",
        "",
        "-",
        "--scope=a",
        "token",
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=8))
def test_any_command_line_parses_or_is_one_usage_line(argv: list[str]) -> None:
    error: UsageError | None = None
    code: object = 0
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            parse(argv)
    except UsageError as exc:
        error = exc
    except SystemExit as exc:  # --help and --version only
        code = exc.code
    assert code == 0
    if error is not None:
        assert error.message
        assert "\n" not in error.message
        assert error.hint


def test_bare_vault_prints_the_short_help_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("usage: vault COMMAND")
    assert "vault help COMMAND" in out
    assert "  login " in out


def test_help_of_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "lgin"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err == "vault: error: unknown command 'lgin': did you mean login?\n"
        "vault: hint: see `vault help`\n"
    )
    assert main(["help", "audit", "show", "more"]) == 2


def test_help_command_is_the_commands_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "exec"]) == 0
    assert capsys.readouterr().out == subcommands(build_parser())["exec"].format_help()


def test_vault_token_imports_none_of_the_help(tmp_path: Path) -> None:
    """The fast path (vault.cli.run.FAST) stays fast: no parser, help, completion."""
    code = (
        "import sys; from vault.cli.main import main; main(['token', 'nosuch']); "
        "print(' '.join(sorted(sys.modules)))"
    )
    env = {**os.environ, "VAULT_HOME": str(tmp_path / "vh")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, check=False, timeout=60
    )
    loaded = set(proc.stdout.decode().split())
    assert "vault.cli.main" in loaded
    for module in (
        "argparse",
        "vault.cli.parser",
        "vault.cli.helptext",
        "vault.cli.mistakes",
        "vault.cli.completion",
        "difflib",
    ):
        assert module not in loaded
