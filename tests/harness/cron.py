"""Running a crontab line as cron runs it, without a cron daemon: the schedule fields cut off,
cron's own rule for ``%`` applied (written here from cronie's do_command.c, the same in Vixie
cron and Debian's cron, independently of vault's code), then ``/bin/sh -c`` in the bare
environment cron gives a job (``env -i HOME=... PATH=/usr/bin:/bin``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def command_of(line: str) -> str:
    """The command part of a crontab line: after five schedule fields, or one ``@word``."""
    fields = re.split(r"[ \t]+", line.strip(" \t"), maxsplit=1 if line.startswith("@") else 5)
    assert len(fields) == (2 if line.startswith("@") else 6), line
    return fields[-1]


def percent(command: str) -> tuple[str, str]:
    """cron's ``%`` rule: the command ends at the first ``%`` not preceded by a backslash (what
    follows is the job's stdin, each further ``%`` a newline); ``\\%`` becomes ``%``; a
    backslash before any other character stays, and that character is not looked at again."""
    out = ""
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            out = out[:-1] + "%" if ch == "%" else out + ch
            escaped = False
        elif ch == "\\":
            out += ch
            escaped = True
        elif ch == "%":
            return out, command[i + 1 :].replace("%", "\n")
        else:
            out += ch
    return out, ""


def bare_env(home: Path) -> list[str]:
    return ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin"]


def run_line(line: str, home: Path, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a crontab line's command as cron would, from ``home`` (cron starts jobs there)."""
    command, stdin = percent(command_of(line))
    return subprocess.run(
        [*bare_env(home), "/bin/sh", "-c", command],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=home,
        timeout=timeout,
        check=False,
        start_new_session=True,  # no controlling terminal, as under cron
    )
