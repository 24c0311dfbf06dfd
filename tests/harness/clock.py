"""Time passing without waiting for it: libfaketime (Debian `faketime`) shows one process a
clock moved by a fixed offset, so a test can run a command "two seconds later" at once."""

from __future__ import annotations

import glob

import pytest


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime is missing: apt-get install faketime (see .ci/run)")
    return found[0]


def at(offset: int) -> dict[str, str]:
    """The environment that shows a process the real clock moved by ``offset`` seconds."""
    return {"LD_PRELOAD": libfaketime(), "FAKETIME": f"{offset:+d}"}
