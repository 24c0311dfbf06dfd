"""Who asked: the program that started this one, named for the audit log."""

from __future__ import annotations

import os

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "fish", "ksh", "busybox"})


def calling_tool() -> str:
    """The name of the program that started this one (kubectl, git, docker...), for the audit
    log: the parent's, or the first ancestor's that is not a shell (git runs `!vault ...`
    helpers through sh). "unknown" where /proc cannot tell. The name is the process's own word
    for itself (its comm): a label in the record, never a proof."""
    pid = _parent(None)
    for _ in range(4):
        if pid is None or pid <= 1:
            break
        comm = _comm(pid)
        if comm is None:
            break
        if comm not in SHELLS:
            return comm
        pid = _parent(pid)
    return "unknown"


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            raw = fh.read(64)
    except OSError:
        return None
    text = raw.decode("utf-8", "replace").strip()
    # A label for a record: printable ASCII words only (a comm is any 15 bytes its owner chose).
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.+") else "?" for c in text)
    return safe or None


def _parent(pid: int | None) -> int | None:
    if pid is None:
        return os.getppid()
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read(1024)
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses; the last ")" ends it.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None
