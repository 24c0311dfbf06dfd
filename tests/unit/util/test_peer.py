"""The calling tool's name (vault.util.peer): shells skipped, a few levels at most, hostile
names and odd /proc entries read as "unknown", never an exception."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.util.peer import MAX_LEVELS, tool_above


def _proc(root: Path, chain: list[tuple[int, str, int]]) -> str:
    """A fake /proc: each (pid, comm, parent)."""
    for pid, comm, parent in chain:
        folder = root / str(pid)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "comm").write_bytes(comm.encode("utf-8", "surrogateescape") + b"\n")
        (folder / "stat").write_bytes(
            f"{pid} ({comm}) S {parent} 1 1 0".encode("utf-8", "surrogateescape")
        )
    return str(root)


def test_the_parent_is_named(tmp_path: Path) -> None:
    assert tool_above(10, _proc(tmp_path, [(10, "aws", 1)])) == "aws"


def test_shells_between_the_tool_and_vault_are_skipped(tmp_path: Path) -> None:
    proc = _proc(tmp_path, [(10, "sh", 11), (11, "bash", 12), (12, "kubectl", 1)])
    assert tool_above(10, proc) == "kubectl"


def test_more_shells_than_levels_are_unknown(tmp_path: Path) -> None:
    chain = [(10 + i, "sh", 11 + i) for i in range(MAX_LEVELS)] + [(10 + MAX_LEVELS, "aws", 1)]
    assert tool_above(10, _proc(tmp_path, chain)) == "unknown"


def test_a_parenthesised_name_with_spaces_does_not_confuse_the_parent(tmp_path: Path) -> None:
    proc = _proc(tmp_path, [(10, "zsh", 11), (11, "aws", 1)])
    (tmp_path / "10" / "stat").write_bytes(b"10 (zsh ) 9 9 (x) S 11 1 1 0")
    assert tool_above(10, proc) == "aws"


@pytest.mark.parametrize(
    "name", ["", "a b", "a\x1b[2J", "tool\u202e", "x/y", "a;rm", "é", "\udcff", "a" * 16]
)
def test_names_outside_the_plain_set_are_unknown(tmp_path: Path, name: str) -> None:
    assert tool_above(10, _proc(tmp_path, [(10, name, 1)])) == "unknown"


def test_missing_or_odd_entries_are_unknown(tmp_path: Path) -> None:
    assert tool_above(10, str(tmp_path)) == "unknown"  # no such process
    assert tool_above(1, str(tmp_path)) == "unknown"  # init started us
    assert tool_above(0, str(tmp_path)) == "unknown"
    proc = _proc(tmp_path, [(10, "sh", 11)])
    (tmp_path / "10" / "stat").write_bytes(b"garbage")
    assert tool_above(10, proc) == "unknown"


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_any_proc_contents_give_a_plain_name_or_unknown(comm: bytes, stat: bytes) -> None:
    import re
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "10"
        folder.mkdir()
        (folder / "comm").write_bytes(comm)
        (folder / "stat").write_bytes(stat)
        name = tool_above(10, tmp)
    assert name == "unknown" or re.fullmatch(r"[A-Za-z0-9._+-]{1,15}", name)


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
