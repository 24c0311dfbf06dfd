"""Every command's `--help`, as the real executable prints it at 80 columns, against the files
in tests/golden/help/ (one per command: `audit-show.txt` for `vault audit show --help`).

The commands are walked from the parser, so a new command needs its golden file. After a
deliberate change to the help, regenerate the files and review the diff:

    make golden   # = VAULT_GOLDEN_UPDATE=1 pytest tests/integration/test_help_golden.py
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN
from vault.cli.helptext import path_of, walk
from vault.cli.parser import build_parser

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "help"
UPDATE = os.environ.get("VAULT_GOLDEN_UPDATE") == "1"
PATHS = [path_of(p) for p in walk(build_parser())]


def _file(path: str) -> Path:
    return GOLDEN / f"{path.replace(' ', '-') or 'vault'}.txt"


def _help(path: str, tmp_path: Path, *, columns: str = "80") -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "VAULT_HOME": str(tmp_path / "vh"),
        "COLUMNS": columns,
        "LC_ALL": "C.UTF-8",
    }
    proc = subprocess.run(
        [VAULT_BIN, *path.split(), "--help"], capture_output=True, env=env, timeout=60, check=False
    )
    assert proc.returncode == 0, proc
    assert proc.stderr == b"", proc
    return proc.stdout.decode()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p or "vault")
def test_help_matches_its_golden_file_in_80_columns(path: str, tmp_path: Path) -> None:
    text = _help(path, tmp_path)
    for line in text.splitlines():
        assert len(line) <= 80, f"vault {path} --help: {line!r}"
    # A wide terminal gets the same text: help is laid out for 80 columns at most.
    assert _help(path, tmp_path, columns="200") == text
    golden = _file(path)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"no {golden.name}: run `make golden` and review it"
    assert text == golden.read_text(), f"`vault {path} --help` changed: `make golden`, review"


def test_every_golden_file_is_a_command() -> None:
    known = {_file(p).name for p in PATHS}
    stale = sorted(f.name for f in GOLDEN.glob("*.txt") if f.name not in known)
    assert not stale, f"golden files of no command: {stale}"


def test_help_and_bare_vault_and_help_command_agree(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "VAULT_HOME": str(tmp_path), "COLUMNS": "80"}

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([VAULT_BIN, *args], capture_output=True, env=env, check=False)

    assert run("help").stdout == run("--help").stdout
    assert run("help", "audit", "show").stdout == run("audit", "show", "--help").stdout
    bare = run()
    assert bare.returncode == 0
    assert bare.stderr == b""
    assert b"vault help COMMAND" in bare.stdout
    assert b"login" in bare.stdout
    assert all(len(line) <= 80 for line in bare.stdout.decode().splitlines())
