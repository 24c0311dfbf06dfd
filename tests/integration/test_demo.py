"""`make demo` (tests/demo.py), run as a person runs it: the URL shows before the line that
points at it, the login ends in a sentence (never raw JSON), and a remote session is told
about VAULT_DEMO_APPROVE=auto. It is one of README's two commands: it must keep working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.provider import approve
from tests.harness.tmux import TMUX, Terminal

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "tests.demo"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    for var in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "NO_COLOR"):
        env.pop(var, None)
    env.update(extra)
    return env


def test_the_demo_with_a_scripted_user() -> None:
    proc = subprocess.run(
        DEMO,
        cwd=ROOT,
        env=_env(VAULT_DEMO_APPROVE="auto"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    opened = next(i for i, line in enumerate(lines) if line.startswith("  1. Open   http://"))
    pointer = next(i for i, line in enumerate(lines) if "the URL above" in line)
    assert opened < pointer
    # the whole screen (down to its last line) before the demo's own line
    assert any(line.startswith("  The code expires in") for line in lines[opened:pointer])
    assert any(line.startswith("Logged in") for line in lines[pointer:]), proc.stderr
    assert not any(line.lstrip().startswith("{") for line in lines), proc.stderr
    assert "active=True" not in proc.stderr
    assert "{'active'" not in proc.stderr
    assert "The provider now says the old token is not active." in lines
    assert lines[-1] == "== demo finished"
    assert proc.stdout == ""


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_a_remote_session_is_told_about_auto_approval() -> None:
    env = _env(SSH_CONNECTION="192.0.2.10 50000 192.0.2.20 22")
    with Terminal(DEMO, env=env, width=80, height=24, cwd=str(ROOT)) as term:
        rows = term.wait_for("VAULT_DEMO_APPROVE=auto make demo", timeout=120)
        text = "\n".join(rows)
        assert "remote session" in text
        url = next(r for r in rows if r.startswith("  1. Open   ")).split()[-1]
        code = next(r for r in rows if r.startswith("  2. Enter  ")).split()[-1]
        screen = rows.index(next(r for r in rows if r.startswith("  1. Open   ")))
        pointer = rows.index(next(r for r in rows if "the URL above" in r))
        assert screen < pointer
        approve(url, code)  # the person, in a browser that can reach the provider
        term.wait_for("== demo finished", timeout=180)
        assert term.wait_exit(timeout=30) == 0
