"""`vault help [COMMAND [ACTION]]` and `vault completion SHELL`."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse

    from vault.cli.app import App


def cmd_help(app: App, ns: argparse.Namespace) -> int:
    """The help of the command ``ns.topic`` names, exactly as `vault TOPIC... --help` prints
    it, on stdout; an unknown command is a usage error with the closest one suggested."""
    from vault.cli.helptext import subcommands
    from vault.cli.mistakes import unknown_command
    from vault.cli.parser import build_parser

    chain = [build_parser()]
    for word in ns.topic:
        subs = subcommands(chain[-1])
        if word not in subs:
            if not subs:
                from vault.errors import UsageError

                raise UsageError(
                    f"`{chain[-1].prog}` has no action {word[:60]!r}",
                    hint=f"see `{chain[-1].prog} --help`",
                )
            raise unknown_command(chain, word)
        chain.append(subs[word])
    sys.stdout.write(chain[-1].format_help())
    return 0


def cmd_completion(app: App, ns: argparse.Namespace) -> int:
    """The completion script for ``ns.shell`` on stdout."""
    from vault.cli.completion import script
    from vault.cli.parser import build_parser

    sys.stdout.write(script(ns.shell, build_parser()))
    return 0
