"""Watching what a running `vault` process does with its environment and the programs it starts.

/proc/PID/environ and /proc/PID/cmdline show only what a process was started with (the memory
the kernel filled at exec): a value a process puts into ``os.environ`` later never appears
there, yet every program it starts inherits it. So a test that looks for a token in /proc of a
`vault` process the test started checks only its own doing. Instead, the real entry point
(vault.cli.main:entry) runs here under a Python audit hook (PEP 578) that appends one JSON line
per event to a log file, for:

- ``os.putenv`` / ``os.unsetenv`` (``[event, key, value]``): every change to the process's own
  environment, ``os.environ[...] = ...`` included;
- ``os.exec``, ``os.posix_spawn``, ``subprocess.Popen``, ``os.system`` (``[event, program,
  argv, env]``): every program it starts, with the environment it is given (``None``: its own).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import VaultCLI

_WATCH = r"""
import json, os, sys
log = sys.argv.pop(1)

def text(value):
    return os.fsdecode(value) if isinstance(value, (str, bytes)) else value

def write(entry):
    line = json.dumps(entry, default=repr) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)

def hook(event, args):
    if event in ("os.putenv", "os.unsetenv"):
        write([event, *map(text, args)])
    elif event in ("os.exec", "os.posix_spawn"):
        path, argv, env = args
        env = None if env is None else {text(k): text(v) for k, v in env.items()}
        write([event, text(path), [text(a) for a in argv], env])
    elif event == "subprocess.Popen":
        executable, argv, _cwd, env = args
        env = None if env is None else {text(k): text(v) for k, v in dict(env).items()}
        argv = [argv] if isinstance(argv, (str, bytes)) else argv
        write([event, text(executable), [text(a) for a in argv], env])
    elif event == "os.system":
        write([event, text(args[0]), [], None])

sys.addaudithook(hook)
sys.argv[0] = "vault"
from vault.cli.main import entry
entry()
"""


def watched_argv(log: Path, *args: str) -> list[str]:
    """The command line of a watched `vault ARGS` (-P: the installed vault, never the source
    folder in the current directory)."""
    return [sys.executable, "-P", "-c", _WATCH, str(log), *args]


def run_watched(
    vault: VaultCLI, log: Path, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        watched_argv(log, *args),
        input=input or "",
        capture_output=True,
        text=True,
        env=vault.full_env(),
        cwd=log.parent,
        timeout=60,
        check=False,
        start_new_session=True,
    )


def popen_watched(vault: VaultCLI, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        watched_argv(log, *args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=vault.full_env(),
        cwd=log.parent,
        start_new_session=True,
    )


def events(log: Path) -> list[list[Any]]:
    """The watched processes' events, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]
