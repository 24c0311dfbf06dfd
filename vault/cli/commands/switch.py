"""`vault switch [NAME] [--unset]`: choose the default token, show it, or forget it
(vault.tokens.default says where it is kept and how a command without NAME chooses)."""

from __future__ import annotations

from vault.cli.app import App
from vault.cli.render import dump_json
from vault.errors import NotFoundError, UsageError, VaultError
from vault.tokens.default import (
    choose,
    clear_default,
    listed,
    read_default,
    stored_names,
    write_default,
)
from vault.util.text import check_name

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse


def cmd_switch(app: App, ns: argparse.Namespace) -> int:
    if ns.unset:
        if ns.name is not None:
            raise UsageError("--unset forgets the default; give no NAME with it")
        removed = clear_default(app.paths)
        if app.json:
            dump_json({"default": None, "unset": removed})
        else:
            app.say("Forgot the default token." if removed else "No default token was set.")
        return 0
    if ns.name is None:
        return _show(app)
    name = check_name(ns.name)
    names = stored_names(app.store)
    if name not in names:
        raise NotFoundError.for_name(name)
    write_default(app.paths, name)
    if app.json:
        dump_json({"default": name, "source": "switch"})
    else:
        app.say(f"The default token is now {name!r}.")
    return 0


def _show(app: App) -> int:
    """The token a command without NAME uses now, and why; exit 0 even where none would be
    chosen (that is an answer, not a failure)."""
    chosen: str | None = None
    problem: str | None = None
    names = stored_names(app.store)
    try:
        chosen = choose(app.paths, names)
    except VaultError as exc:
        problem = exc.message
    source = None if chosen is None else ("switch" if read_default(app.paths) else "only")
    if app.json:
        dump_json({"default": chosen, "source": source, "problem": problem, "tokens": names})
        return 0
    if chosen is not None and source == "switch":
        print(f"{chosen} (set with `vault switch`)")
    elif chosen is not None:
        print(f"{chosen} (the only stored token)")
    elif names:
        print(f"none: {problem}")
    else:
        print("none: the vault holds no tokens")
    if chosen is None and names and read_default(app.paths) is None:
        print(f"stored: {listed(names)}; `vault switch NAME` chooses one")
    return 0
