"""Where a helper whose stdout and stderr belong to another program writes for a person.

`vault aws` runs as the AWS SDKs' ``credential_process``: its stdout is the credentials, and
its stderr is captured by the SDK (and may end up in an exception message or a log). Anything
meant for a person (an error and its hint, a warning, a -v/--debug log line) goes to the
controlling terminal, /dev/tty, when the process has one, and nowhere otherwise: the exit code
says what happened. ``to_terminal_only`` makes that so for the whole process by putting the
terminal (or /dev/null) in place of file descriptor 2, so every writer of stderr, the error
reporter of vault.cli.main and the logging handler included, follows without knowing.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

HELPERS = frozenset({"aws"})  # the commands whose stderr is not a person's


def for_helper(argv: list[str]) -> bool:
    """Whether ``argv`` runs one of HELPERS: its first word that is not a global option (-v,
    --debug, --passphrase-file PATH) is one."""
    words = iter(argv)
    for word in words:
        if word == "--passphrase-file":
            next(words, None)
        elif not word.startswith("-"):
            return word in HELPERS
    return False


def to_terminal_only() -> bool:
    """Point file descriptor 2 at /dev/tty, or at /dev/null when there is no controlling
    terminal. True when a terminal was found. Never raises; where neither can be opened (or
    put in place), ``sys.stderr`` discards what is written to it instead."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC
    for path in ("/dev/tty", os.devnull):
        try:
            fd = os.open(path, flags)
        except OSError:
            continue
        if fd == 2:  # stderr was closed: the terminal (or /dev/null) now stands in its place
            return path == "/dev/tty"
        try:
            os.dup2(fd, 2)
        except OSError:
            continue
        finally:
            os.close(fd)
        return path == "/dev/tty"
    sys.stderr = _Discard()
    return False


class _Discard(io.TextIOBase):
    """A text stream that writes nowhere."""

    def write(self, text: str) -> int:
        return len(text)
