"""`--json` errors: every command that takes --json prints, when it fails, one JSON object on
stdout (`{"event": "error", "error", "message", "hint", "exit"}`) besides the line on stderr,
or its own document (or event stream) that says it failed; never nothing. Found from the
parser itself, so a command added later is covered."""

from __future__ import annotations

import argparse
import json

from tests.conftest import GH_CANARY, VaultCLI
from vault.cli.parser import build_parser

# Commands whose JSON is a document (or a stream) that itself says what failed.
OWN_DOCUMENT = {("audit", "verify"), ("policy", "check"), ("doctor",), ("login",)}
# Positionals a command needs to get as far as running.
ARGS: dict[tuple[str, ...], list[str]] = {
    ("logout",): ["nope"],
    ("revoke",): ["nope"],
    ("refresh",): ["nope"],
}


def json_commands() -> list[tuple[str, ...]]:
    """Every command path (`audit show`, `agent status`...) whose parser has --json."""
    found: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        if any("--json" in a.option_strings for a in parser._actions):
            found.append(path)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return found


def _objects(stdout: str) -> list[dict[str, object]]:
    docs = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert all(isinstance(d, dict) for d in docs), stdout
    return docs


def _the_error(r: object, stdout: str, rc: int) -> dict[str, object]:
    docs = _objects(stdout)
    assert len(docs) == 1, r
    (doc,) = docs
    assert set(doc) == {"event", "error", "message", "hint", "exit"}, r
    assert doc["event"] == "error"
    assert doc["exit"] == rc
    assert isinstance(doc["error"], str)
    assert doc["error"]
    assert isinstance(doc["message"], str)
    return doc


def test_the_commands_with_json_are_found() -> None:
    found = set(json_commands())
    assert {("list",), ("status",), ("revoke",), ("refresh",), ("login",)} <= found
    assert {("audit", "show"), ("audit", "report"), ("agent", "status")} <= found
    assert len(found) >= 17


def test_a_refused_command_line_is_a_json_error(vault: VaultCLI) -> None:
    for path in json_commands():
        r = vault.run(*path, "--json", "--no-such-option")
        assert r.returncode == 2, r
        doc = _the_error(r, r.stdout, 2)
        assert doc["error"] == "usage"
        assert str(doc["message"]) in r.stderr  # the same words as the line for a person
        assert r.stderr.startswith("vault: error: "), r


def test_every_command_that_fails_says_so_in_json(vault: VaultCLI) -> None:
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    (vault.home / "config.yaml").write_text("providers: [\n")  # broken: exit 3 where read
    for path in json_commands():
        r = vault.run(*path, *ARGS.get(path, []), "--json")
        if r.returncode == 0:
            assert _objects(r.stdout), r  # its document
            continue
        assert r.stdout.strip(), r  # never nothing
        docs = _objects(r.stdout)
        errors = [d for d in docs if d.get("event") == "error"]
        assert len(errors) <= 1, r
        if path in OWN_DOCUMENT:
            continue
        doc = _the_error(r, r.stdout, r.returncode)
        assert str(doc["message"]) in r.stderr, r


def test_revoke_and_refresh_failures(vault: VaultCLI) -> None:
    for command in ("revoke", "refresh", "logout", "status"):
        r = vault.run(command, "nope", "--json")
        assert r.returncode == 4, r
        doc = _the_error(r, r.stdout, 4)
        assert doc["error"] == "unknown_name"
        assert doc["message"] == "no token named 'nope' in the vault"
        assert "vault list" in str(doc["hint"])
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    r = vault.run("refresh", "a", "--json")  # imported: no refresh token
    assert r.returncode == 4, r
    assert _the_error(r, r.stdout, 4)["error"] == "expired"


def test_json_errors_are_scrubbed_as_stderr_is(vault: VaultCLI) -> None:
    r = vault.run("status", GH_CANARY, "--json")  # a name shaped like a GitHub token
    assert r.returncode == 4, r
    assert GH_CANARY not in r.stdout
    assert GH_CANARY not in r.stderr
    _the_error(r, r.stdout, 4)


def test_no_json_error_without_json(vault: VaultCLI) -> None:
    r = vault.run("revoke", "nope")
    assert r.returncode == 4, r
    assert r.stdout == ""
    # a --json after `--` is the command's own word, not vault's
    r = vault.run("exec", "nope", "--", "echo", "--json")
    assert r.returncode == 4, r
    assert r.stdout == ""
