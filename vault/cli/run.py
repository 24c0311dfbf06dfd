"""The command line: parse (by hand for `vault token`, argparse for the rest), then run one
handler, imported on demand."""

from __future__ import annotations

import sys
from types import SimpleNamespace

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any


def _parse_token(argv: list[str]) -> SimpleNamespace | None:
    """`vault token NAME [--min-valid N] [--passphrase-file PATH]`, parsed without argparse.

    Contract: for every argv this returns either None or exactly the namespace the argparse
    parser (vault.cli.parser) returns for it. It accepts a strict subset of what argparse
    accepts: each word is checked against a grammar narrower than argparse's before it is used,
    and a word outside it returns None, so that help, other flags, abbreviations and every
    mistake go through the full parser and read the same either way. It never raises."""
    if len(argv) < 2 or argv[0] != "token":
        return None
    values: dict[str, object] = {"name": None, "min_valid": 0}
    options = {"--min-valid": "min_valid", "--passphrase-file": "passphrase_file"}
    i = 1
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            if values["name"] is not None:
                return None
            values["name"] = arg
        else:
            option, eq, value = arg.partition("=")
            key = options.get(option)
            if key is None:
                return None
            if not eq:
                i += 1
                if i == len(argv) or not _plain_value(argv[i]):
                    return None
                value = argv[i]
            if key == "min_valid":
                number = _int_or_none(value)
                if number is None:
                    return None
                values[key] = number
            else:
                if value == "--":  # argparse drops a bare "--" even as a value
                    return None
                values[key] = value
        i += 1
    if values["name"] is None:
        return None
    return SimpleNamespace(command="token", handler="vault.cli.commands.token:cmd_token", **values)


def _plain_int(text: str) -> bool:
    """An optional "-" and ASCII digits, the one spelling of an integer read here (argparse's
    ``type=int`` also takes "+5", " 5", "5_0" and other scripts' digits: those go to it)."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit()


def _int_or_none(text: str) -> int | None:
    """``int(text)`` for a plain integer; None for anything else, and where ``int`` itself
    refuses (more digits than the interpreter converts), as argparse then reports it."""
    if not _plain_int(text):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _plain_value(text: str) -> bool:
    """A word argparse takes as an option's separate value: one that does not start with "-",
    or a negative number in ASCII digits (argparse reads any other "-..." word as an option)."""
    return not text.startswith("-") or (len(text) > 1 and _plain_int(text))


def run(argv: list[str]) -> int:
    """Parse ``argv`` (`vault token` by hand, anything else with argparse), set up logging only
    if -v or --debug asks for it, import and run the one handler, then forward the audit
    events and print the store's warnings. Returns the handler's exit code; errors propagate
    to vault.cli.main. bench/NOTES.md says why the start-up path is written as it is."""
    ns: Any = _parse_token(argv)
    if ns is not None and ns.min_valid >= 0:
        from vault.keys.agent import fast_token

        # Served by this vault's agent where one runs unlocked: policy, refresh and audit
        # happen there; this process connects, asks and prints.
        token = fast_token(ns.name, ns.min_valid, to_terminal=sys.stdout.isatty())
        if token is not None:
            sys.stdout.write(token + "\n")
            return 0
    if ns is None:
        from vault.cli.parser import parse

        ns = parse(argv)
    verbosity = getattr(ns, "verbose", 0) or 0
    debug = bool(getattr(ns, "debug", False))
    if verbosity or debug:
        from vault.util.log import configure, get_logger

        configure(verbosity, debug=debug)
        get_logger("vault").debug("command.start", command=ns.command)
    module_name, _, func_name = ns.handler.partition(":")
    __import__(module_name)
    handler = getattr(sys.modules[module_name], func_name)
    from vault.cli.app import App

    app = App(ns)
    try:
        code: int = handler(app, ns)
    finally:
        app.forward_audit()
        for warning in app.store_warnings():
            sys.stderr.write(f"vault: warning: {warning}\n")
    return code
