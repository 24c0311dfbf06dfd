"""The error boundary of the credential-helper executables: hardened as `vault` is (core dumps
off, tracing refused), every error one line for a person, never a traceback or a secret, and
an exit code from vault.errors. Where the line goes is the protocol's to say (docker reads it
on the helper's stdout, Terraform on its stderr)."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

STDIN_LIMIT = 64 * 1024  # what a helper keeps of its stdin; the rest is read and dropped


def read_stdin(limit: int = STDIN_LIMIT) -> tuple[bytes, bool]:
    """Standard input to its end: its first ``limit`` bytes, and whether there was more
    (read too, and dropped: a writer never blocks on a helper that stopped reading)."""
    stream = sys.stdin.buffer
    kept = stream.read(limit)
    over = False
    while stream.read(STDIN_LIMIT):
        over = True
    return kept, over


def one_line(text: str) -> str:
    """``text`` as one line a terminal shows safely: controls stripped, anything shaped like a
    secret masked."""
    from vault.util.redact import scrub_text
    from vault.util.text import clean

    return scrub_text(clean(text.replace("\n", " "), limit=2000))


def run(body: Callable[[list[str]], int], argv: list[str], *, prog: str, errors: TextIO) -> int:
    """``body(argv)``'s exit code; a VaultError is written to ``errors`` as one line (its hint
    after it) and exits with its code, an unexpected error with its type's name only (its
    message could quote a token) and 1, an interrupt with 130."""
    from vault.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, VaultError

    try:
        return body(argv)
    except VaultError as exc:
        text = f"{prog}: error: {exc.message}"
        if exc.hint:
            text += f" (hint: {exc.hint})"
        _say(errors, one_line(text))
        return exc.exit_code
    except KeyboardInterrupt:
        _say(errors, f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INTERNAL
    except Exception as exc:
        _say(
            errors,
            f"{prog}: internal error ({type(exc).__name__}); this is a bug, please report it",
        )
        return EXIT_INTERNAL


def _say(stream: TextIO, line: str) -> None:
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def entry(body: Callable[[list[str]], int], *, prog: str, errors: str) -> None:
    """A console script: hardened as `vault` (vault.cli.main.entry), ``body`` run on argv
    through `run` (``errors``: "stdout" or "stderr"), and, once its output is flushed and no
    other thread has work left, ended with ``os._exit`` (no interpreter teardown: the calling
    tool starts it for every one of its commands)."""
    from vault.cli.main import EXIT_INTEGRITY, _no_core_no_tracing, _only_daemon_threads

    stream = sys.stdout if errors == "stdout" else sys.stderr
    if not _no_core_no_tracing():
        _say(stream, f"{prog}: error: cannot forbid core dumps and tracing of this process")
        sys.exit(EXIT_INTEGRITY)
    import gc

    gc.disable()
    code = run(body, sys.argv[1:], prog=prog, errors=stream)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if _only_daemon_threads():
        os._exit(code)
    sys.exit(code)
