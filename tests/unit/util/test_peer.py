"""The calling tool's name (vault.util.peer.calling_tool) as `vault aws` records it: the program
that started vault, past the shells between them."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_real_parent_through_a_shell() -> None:
    """A Python runs `sh -c` which runs a Python asking for its calling tool: the shell is
    skipped, and the name is the first Python's (its executable's base name)."""
    inner = "from vault.util.peer import calling_tool; print(calling_tool())"
    outer = (
        "import subprocess, sys; "
        f"subprocess.run(['sh', '-c', sys.executable + ' -c \"{inner}\"; true'], check=True)"
    )
    out = subprocess.run(
        [sys.executable, "-c", outer], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == os.path.basename(sys.executable)[:15]
