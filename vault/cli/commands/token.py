"""`vault token [NAME]`: the access token on stdout (no NAME: the default token), for scripts
(the start-up path: this module imports only what handing out a token needs)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse

    from vault.cli.app import App


def served(ns: argparse.Namespace) -> int | None:
    """Through this vault's agent; None where no unlocked agent serves it."""
    if ns.min_valid < 0:
        return None  # refused by cmd_token, in its words
    from vault.keys.agent import fast_token

    token = fast_token(ns.name, ns.min_valid, to_terminal=sys.stdout.isatty())
    if token is None:
        return None
    sys.stdout.write(token + "\n")
    return 0


def cmd_token(app: App, ns: argparse.Namespace) -> int:
    from vault.errors import UsageError
    from vault.tokens.default import resolve

    if ns.min_valid < 0:
        raise UsageError("--min-valid must be zero or more seconds")
    name = resolve(app.store, ns.name)  # no NAME: the default token
    record = app.use_token(
        name, min_valid=ns.min_valid, command="token", to_terminal=sys.stdout.isatty()
    )
    sys.stdout.write(record.access_token.reveal() + "\n")
    return 0
