"""The command line: parse (by hand for `vault token`, argparse for the rest), then run one
handler, imported on demand."""

from __future__ import annotations

import sys
from types import SimpleNamespace

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any


def _parse_token(argv: list[str]) -> SimpleNamespace | None:
    """`vault token NAME [--min-valid N] [--passphrase-file PATH]` without argparse, which
    costs a script calling `vault token` ~15 ms to import and build. Anything else (help,
    logging flags, a mistake) returns None and goes through the full parser, so errors and
    help read the same either way."""
    if len(argv) < 2 or argv[0] != "token":
        return None
    values = {"name": None, "min_valid": "0"}
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
                if i == len(argv):
                    return None
                value = argv[i]
            values[key] = value
        i += 1
    min_valid = values["min_valid"] or ""
    if values["name"] is None or not min_valid.lstrip("-").isdigit() or not min_valid.isascii():
        return None
    values["min_valid"] = int(min_valid)  # type: ignore[assignment]
    return SimpleNamespace(command="token", handler="vault.cli.commands.store:cmd_token", **values)


def run(argv: list[str]) -> int:
    ns: Any = _parse_token(argv)
    if ns is None:
        from vault.cli.parser import parse

        ns = parse(argv)
    verbosity = getattr(ns, "verbose", 0) or 0
    debug = bool(getattr(ns, "debug", False))
    if verbosity or debug:
        # Only then: the structlog pipeline is not paid for by `vault token` in a script.
        from vault.util.log import configure, get_logger

        configure(verbosity, debug=debug)
        get_logger("vault").debug("command.start", command=ns.command)
    module_name, _, func_name = ns.handler.partition(":")
    __import__(module_name)  # not importlib.import_module: the importlib package imports warnings
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
