"""The entry point's start-up hardening, in a child interpreter (it is irreversible)."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from vault.cli import main


@pytest.mark.skipif(sys.platform != "linux", reason="Linux's numbers and prctl")
def test_the_linux_constants_are_the_kernels() -> None:
    assert main.RLIMIT_CORE == resource.RLIMIT_CORE


@pytest.mark.skipif(sys.platform != "linux", reason="prctl is Linux's")
def test_no_core_no_tracing_takes_effect() -> None:
    code = (
        "import ctypes, resource\n"
        "from vault.cli.main import _no_core_no_tracing\n"
        "assert _no_core_no_tracing()\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE), ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split("\n")[0] == "(0, 0) 0"
