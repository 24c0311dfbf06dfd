"""A real terminal for screen tests: a private tmux server, one window of a fixed size.

    with Terminal(["vault", "list"], env=env, width=80, height=24) as term:
        screen = term.wait_for("NAME")      # the visible screen, as lines, once NAME shows
        term.send("Enter")                   # tmux key names, or literal text with literal=True

The server runs on its own socket in a temporary directory (never the user's tmux), with
its own configuration (no status bar); a finished command's screen stays until exit, when
the server is killed. Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

TMUX = shutil.which("tmux")


class Terminal:
    """One command in a ``width`` x ``height`` tmux window."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        width: int = 80,
        height: int = 24,
        cwd: str | None = None,
    ) -> None:
        if TMUX is None:
            raise RuntimeError("tmux is not installed")
        self.argv = list(argv)
        self.env = dict(env)
        self.width = width
        self.height = height
        self.cwd = cwd
        self._dir = tempfile.mkdtemp(prefix="vault-tmux-")
        self.socket = os.path.join(self._dir, "sock")
        self._status = os.path.join(self._dir, "status")
        self._conf = os.path.join(self._dir, "tmux.conf")
        with open(self._conf, "w") as conf:
            conf.write("set -g status off\n")

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert TMUX is not None
        return subprocess.run(
            [TMUX, "-S", self.socket, "-f", self._conf, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
            env={**self.env, "TMUX": ""},
        )

    def __enter__(self) -> Terminal:
        env_args: list[str] = []
        for key, value in self.env.items():
            env_args += ["-e", f"{key}={value}"]
        # The command starts only once the pane is there (tmux wait-for): a command that
        # ended before tmux had read its first output would leave an empty screen.
        # The pane then stays (sleep) and the status goes to a file: a dead pane's redraw
        # can lose rows of what the command printed.
        gate = (
            f'{TMUX} -S {self.socket} wait-for vault-go; "$@"; echo $? > {self._status}.tmp; '
            f"mv {self._status}.tmp {self._status}; exec sleep 3600"
        )
        self._tmux(
            "new-session",
            "-d",
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            *(["-c", self.cwd] if self.cwd else []),
            *env_args,
            "--",
            "/bin/sh",
            "-c",
            gate,
            "sh",
            *self.argv,
        )
        self._tmux("wait-for", "-S", "vault-go")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tmux("kill-server", check=False)
        shutil.rmtree(self._dir, ignore_errors=True)

    def screen(self) -> list[str]:
        """The visible screen, one string per row, trailing blanks removed."""
        out = self._tmux("capture-pane", "-p").stdout
        rows = out.split("\n")[: self.height]
        return [row.rstrip() for row in rows]

    def raw(self) -> str:
        """The visible screen with its escape sequences (colour, emphasis)."""
        return self._tmux("capture-pane", "-p", "-e").stdout

    def send(self, *keys: str, literal: bool = False) -> None:
        self._tmux("send-keys", *(["-l"] if literal else []), *keys)

    def wait_for(self, text: str, *, timeout: float = 30.0) -> list[str]:
        """The screen once ``text`` appears on it; AssertionError with the screen if it does not."""
        deadline = time.monotonic() + timeout
        rows = self.screen()
        while time.monotonic() < deadline:
            rows = self.screen()
            if any(text in row for row in rows):
                return rows
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n" + "\n".join(rows))

    def exited(self) -> int | None:
        """The command's exit status once it has ended, else None."""
        try:
            with open(self._status) as f:
                return int(f.read())
        except FileNotFoundError:
            return None

    def wait_exit(self, *, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.exited()
            if status is not None:
                return status
            time.sleep(0.1)
        raise AssertionError(
            "the command did not end; the screen was:\n" + "\n".join(self.screen())
        )
