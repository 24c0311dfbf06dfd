"""The command line: parse (by hand for `vault token`, argparse for the rest), then run one
handler, imported on demand."""

from __future__ import annotations

import sys
from types import SimpleNamespace

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any


class Grammar:
    """A command the hand parser reads: its positional words (each a name, or one of fixed
    choices; the last ``optional`` of them may be left out, as argparse's ``nargs="?"``), its
    options that take a value (an integer or any word), its flags, what an
    absent option is, and the handler and the `served` function (agent first) it runs."""

    __slots__ = (
        "defaults",
        "flags",
        "handler",
        "ints",
        "optional",
        "positionals",
        "required",
        "served",
        "values",
    )

    def __init__(
        self,
        handler: str,
        served: str | None,
        positionals: tuple[tuple[str, tuple[str, ...] | None], ...],
        *,
        values: tuple[tuple[str, str], ...] = (),
        ints: tuple[tuple[str, str], ...] = (),
        flags: tuple[tuple[str, str], ...] = (),
        defaults: tuple[tuple[str, object], ...] = (),
        required: tuple[str, ...] = (),
        optional: int = 0,
    ) -> None:
        self.handler = handler
        self.served = served
        self.positionals = positionals
        self.values = dict(values)
        self.ints = dict(ints)
        self.flags = dict(flags)
        self.defaults = dict(defaults)
        self.required = required
        self.optional = optional  # how many of the last positionals may be left out (None)


_PASSPHRASE = ("--passphrase-file", "passphrase_file")

# The commands a calling tool starts for every one of its own commands. Each entry must read
# exactly as vault.cli.parser defines the command (tests/unit/cli/test_fast_parser.py checks
# every entry against argparse).
FAST: dict[str, Grammar] = {
    "token": Grammar(
        "vault.cli.commands.token:cmd_token",
        "vault.cli.commands.token:served",
        (("name", None),),
        values=(_PASSPHRASE,),
        ints=(("--min-valid", "min_valid"),),
        defaults=(("min_valid", 0),),
        optional=1,  # `vault token` alone: the default token (the agent chooses it)
    ),
    "kube": Grammar(
        "vault.cli.commands.kube:cmd_kube",
        "vault.cli.commands.kube:served",
        (("name", None),),
        values=(_PASSPHRASE,),
        ints=(("--min-valid", "min_valid"),),
        flags=(("--id-token", "id_token"),),
        defaults=(
            ("min_valid", 60),
            ("setup_name", None),
            ("cluster", None),
            ("user", None),
            ("write", False),
            ("kubeconfig", None),
        ),
    ),
    "credential-helper": Grammar(
        "vault.cli.commands.git:cmd_credential_helper",
        "vault.cli.commands.git:served",
        (("operation", None),),
        values=(("--name", "name"), _PASSPHRASE),
        required=("name",),
    ),
}


def _parse_fast(argv: list[str]) -> SimpleNamespace | None:
    """`vault token [NAME] [--min-valid N] [--passphrase-file PATH]` and the other FAST
    commands, parsed without argparse.

    Contract: for every argv this returns either None or exactly the namespace the argparse
    parser (vault.cli.parser) returns for it. It accepts a strict subset of what argparse
    accepts: each word is checked against a grammar narrower than argparse's before it is used,
    and a word outside it returns None, so that help, other flags, abbreviations and every
    mistake go through the full parser and read the same either way. It never raises."""
    grammar = FAST.get(argv[0]) if argv else None
    if grammar is None:
        return None
    values: dict[str, object] = {key: None for key, _ in grammar.positionals}
    values.update({key: None for key in grammar.values.values()})
    values.update({key: None for key in grammar.ints.values()})
    values.update({key: False for key in grammar.flags.values()})
    values.update(grammar.defaults)
    values.pop("passphrase_file", None)  # argparse leaves it out unless given (SUPPRESS)
    seen: set[str] = set()
    place = 0
    i = 1
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            if place == len(grammar.positionals):
                return None
            word, choices = grammar.positionals[place]
            if choices is not None and arg not in choices:
                return None
            values[word] = arg
            place += 1
        else:
            option, eq, value = arg.partition("=")
            if option in grammar.flags and not eq:
                values[grammar.flags[option]] = True
                i += 1
                continue
            key: str | None = grammar.values.get(option) or grammar.ints.get(option)
            if key is None:
                return None
            if not eq:
                i += 1
                if i == len(argv) or not _plain_value(argv[i]):
                    return None
                value = argv[i]
            if option in grammar.ints:
                number = _int_or_none(value)
                if number is None:
                    return None
                values[key] = number
            else:
                if value == "--":  # argparse drops a bare "--" even as a value
                    return None
                values[key] = value
            seen.add(key)
        i += 1
    if place < len(grammar.positionals) - grammar.optional:
        return None
    if any(key not in seen for key in grammar.required):
        return None
    return SimpleNamespace(command=argv[0], handler=grammar.handler, **values)


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


def _function(where: str) -> Any:
    """The function ``MODULE:NAME``, its module imported now."""
    module_name, _, func_name = where.partition(":")
    __import__(module_name)
    return getattr(sys.modules[module_name], func_name)


def run(argv: list[str]) -> int:
    """Parse ``argv`` (`vault token` by hand, anything else with argparse), set up logging only
    if -v or --debug asks for it, import and run the one handler, then forward the audit
    events and print the store's warnings. Returns the handler's exit code; errors propagate
    to vault.cli.main. bench/NOTES.md says why the start-up path is written as it is."""
    ns: Any = _parse_fast(argv)
    if ns is not None:
        # Served by this vault's agent where one runs unlocked: policy, refresh and audit
        # happen there; this process connects, asks and prints (None: no agent serves it).
        served = FAST[ns.command].served
        if served is not None:
            code: int | None = _function(served)(ns)
            if code is not None:
                return code
    if ns is None:
        from vault.cli.parser import parse

        ns = parse(argv)
    verbosity = getattr(ns, "verbose", 0) or 0
    debug = bool(getattr(ns, "debug", False))
    if verbosity or debug:
        from vault.util.log import configure, get_logger

        configure(verbosity, debug=debug)
        get_logger("vault").debug("command.start", command=ns.command)
    handler = _function(ns.handler)
    from vault.cli.app import App

    app = App(ns)
    try:
        code = handler(app, ns)
    finally:
        app.forward_audit()
        for warning in app.store_warnings():
            sys.stderr.write(f"vault: warning: {warning}\n")
    return code
