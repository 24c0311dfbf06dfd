"""vault(1): generated from the parser, complete, valid roff that groff reads without a
warning, and laid out in 80 columns by man."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vault.cli.helptext import EXIT_CODES, path_of, walk
from vault.cli.manpage import page, roff
from vault.cli.parser import build_parser


@pytest.fixture(scope="module")
def text() -> str:
    return page(build_parser())


def test_every_command_and_option_is_in_the_page(text: str) -> None:
    for parser in walk(build_parser())[1:]:
        assert f'.SS "vault {path_of(parser)}"' in text
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for option in action.option_strings:
                assert roff(option) in text, (path_of(parser), option)
    for section in (
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
    ):
        assert f"\n.SH {section}\n" in text
    for code, _ in EXIT_CODES:
        assert f".TP\n\\fB{code}\\fR\n" in text


def test_no_line_starts_as_a_control_line_by_accident(text: str) -> None:
    macros = {
        ".TH",
        ".SH",
        ".SS",
        ".TP",
        ".PP",
        ".RS",
        ".RE",
        ".nf",
        ".fi",
        ".B",
        ".I",
        ".br",
        ".ad",
    }
    for line in text.splitlines():
        if line.startswith((".", "'")):
            assert line.split(" ")[0] in macros, line


def test_roff_escapes_what_would_be_read_as_roff() -> None:
    assert roff(".rm x\n'x\\y - z") == "\\&.rm x\n\\&'x\\ey \\- z"


def test_the_page_is_deterministic() -> None:
    assert page(build_parser()) == page(build_parser())


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_groff_reads_it_without_warnings_and_it_fits_80_columns(text: str, tmp_path: Path) -> None:
    source = tmp_path / "vault.1"
    source.write_text(text)
    check = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(source)], capture_output=True, check=False
    )
    assert (check.returncode, check.stderr) == (0, b"")
    env = {**os.environ, "MANWIDTH": "80"}
    shown = subprocess.run(
        ["man", "-l", str(source)], capture_output=True, env=env, check=False, timeout=60
    )
    assert (shown.returncode, shown.stderr) == (0, b""), shown
    lines = re.sub(r".\x08", "", shown.stdout.decode()).splitlines()  # overstrikes: bold
    assert any("vault audit show" in line for line in lines)
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
