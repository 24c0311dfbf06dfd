"""Driving tests/harness/crashhook/sitecustomize.py: the environment that makes a `vault` subprocess
count, crash at, or fail the calls that change its files and keyring entry (see the hook's
docstring for the variables)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

HOOK_DIR = Path(__file__).parent / "crashhook"


def hook_env(root: Path, **settings: str) -> dict[str, str]:
    """Environment for a `vault` subprocess with the hook on, counting calls inside ``root``.
    ``settings``: log=FILE (count mode), crash_at="KIND:N:PHASE", fault="KIND:N:ERRNO[:GLOB]"."""
    names = {
        "log": "VAULT_TEST_HOOK_LOG",
        "crash_at": "VAULT_TEST_CRASH_AT",
        "fault": "VAULT_TEST_FAULT",
    }
    inherited = os.environ.get("PYTHONPATH", "")
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in (str(HOOK_DIR), inherited) if p),
        "VAULT_TEST_HOOK_ROOT": str(root),
    }
    for key, value in settings.items():
        env[names[key]] = value
    return env


@dataclass(frozen=True)
class Call:
    """One counted call, as the hook logged it in count mode."""

    op: str
    n: int
    path: str

    def at(self, phase: str) -> str:
        return f"{self.op}:{self.n}:{phase}"


def read_trace(log: Path) -> list[Call]:
    if not log.exists():
        return []
    calls = []
    for line in log.read_text().splitlines():
        doc = json.loads(line)
        calls.append(Call(str(doc["op"]), int(doc["n"]), str(doc["path"])))
    return calls
