"""What a person meant: argparse's errors rewritten as one line and a hint that says what to
type (a close command or option, the `--` that `vault exec` needs, the help to read).

Contract: ``explain`` returns a UsageError for any argv argparse refused, never raises, and
only quotes words of argv that are already on the command line.
"""

from __future__ import annotations

import argparse
import difflib
import shlex

from vault.cli.helptext import subcommands
from vault.errors import UsageError
from vault.util.text import show_unsafe

MAX_QUOTED = 200  # a suggestion quoting argv is cut to this many characters


def closest(word: str, choices: list[str]) -> str | None:
    """The one choice closest to ``word`` (difflib's ratio at least 0.6), or None."""
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0 and not isinstance(action, argparse._SubParsersAction)


def locate(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[list[argparse.ArgumentParser], str | None]:
    """The chain of parsers argv reaches (the top one first) and the word that named no
    subcommand where one was expected (None if every word did)."""
    chain = [parser]
    i = 0
    while i < len(argv):
        word = argv[i]
        node = chain[-1]
        if word.startswith("-") and word != "-":
            action = _option(chain, word.partition("=")[0])
            if action is not None and _takes_value(action) and "=" not in word:
                i += 1
            i += 1
            continue
        subs = subcommands(node)
        if not subs:
            break
        if word not in subs:
            return chain, word
        chain.append(subs[word])
        i += 1
    return chain, None


def _option(chain: list[argparse.ArgumentParser], option: str) -> argparse.Action | None:
    for node in reversed(chain):
        found = node._option_string_actions.get(option)
        if found is not None:
            return found
    return None


def _options(node: argparse.ArgumentParser) -> list[str]:
    return [o for o in node._option_string_actions if o.startswith("--")]


def unknown_command(chain: list[argparse.ArgumentParser], word: str) -> UsageError:
    """`vault lgin`, `vault audit shwo`, `vault help nosuch`."""
    node = chain[-1]
    choices = list(subcommands(node))
    what = "command" if len(chain) == 1 else f"{node.prog.partition(' ')[2]} action"
    guess = closest(word, choices)
    message = f"unknown {what} {_quote(word)}"
    if guess is not None:
        message += f": did you mean {guess}?"
    hint = "see `vault help`" if len(chain) == 1 else f"see `{node.prog} --help`"
    return UsageError(message, hint=hint)


def _quote(word: str) -> str:
    return repr(word[:60])


def _shell_word(word: str) -> str:
    """``word`` shell-quoted, with every unsafe character (a newline, a terminal escape)
    shown as an escape so the message stays one printable line."""
    return show_unsafe(shlex.quote(word))


def explain(exc: UsageError, argv: list[str], parser: argparse.ArgumentParser) -> UsageError:
    """``exc`` (argparse's complaint about ``argv``, a command line before any ``--``) said
    for a person: the unknown command or option with the closest one, the missing `--` of
    `vault exec`, and the help of the command it was for."""
    try:
        return _explain(exc, argv, parser)
    except Exception:  # an explanation must never hide the error it explains
        return exc


def _explain(exc: UsageError, argv: list[str], parser: argparse.ArgumentParser) -> UsageError:
    chain, unknown = locate(parser, argv)
    node = chain[-1]
    if unknown is not None and "invalid choice" in exc.message:
        return unknown_command(chain, unknown)
    hint = f"see `{node.prog} --help`"
    if not exc.message.startswith("unrecognized arguments"):
        return UsageError(exc.message, hint=hint)
    _, extras = _parse_known(parser, argv)
    if not extras:
        return UsageError(exc.message, hint=hint)
    first = extras[0]
    if node.prog == "vault exec" and not first.startswith("-"):
        return _missing_separator(argv, extras)
    if first.startswith("-") and first != "-":
        option = first.partition("=")[0]
        message = f"unknown option {option[:60]} for `{node.prog}`"
        guess = closest(option, _options(node))
        if guess is not None:
            message += f": did you mean {guess}?"
        return UsageError(message, hint=hint)
    return UsageError(f"unexpected argument {_quote(first)} for `{node.prog}`", hint=hint)


def _parse_known(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[argparse.Namespace, list[str]]:
    return parser.parse_known_args(argv)


def _missing_separator(argv: list[str], extras: list[str]) -> UsageError:
    """`vault exec NAME ls -la`: the command after NAME, without the `--` before it."""
    start = argv.index("exec") + 1
    cut = next((i for i in range(start, len(argv)) if argv[i] == extras[0]), len(argv))
    before = " ".join(_shell_word(w) for w in argv[:cut])
    after = " ".join(_shell_word(w) for w in argv[cut:])
    fixed = f"vault {before} -- {after}"
    if len(fixed) > MAX_QUOTED:
        fixed = fixed[: MAX_QUOTED - 3] + "..."
    return UsageError(
        f"put -- before the command: {fixed}",
        hint="vault exec reads its own options up to `--`; everything after it is the command",
    )
