"""`vault token NAME`: the access token on stdout, for scripts (the start-up path: this module
imports only what handing out a token needs)."""

from __future__ import annotations

import sys

from vault.cli.app import App
from vault.errors import UsageError
from vault.util.text import check_name

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse


def cmd_token(app: App, ns: argparse.Namespace) -> int:
    name = check_name(ns.name)
    if ns.min_valid < 0:
        raise UsageError("--min-valid must be zero or more seconds")
    record = app.use_token(
        name, min_valid=ns.min_valid, command="token", to_terminal=sys.stdout.isatty()
    )
    sys.stdout.write(record.access_token.reveal() + "\n")
    return 0
