"""The credential helpers are hardened as `vault` is (vault.cli.helpers.boundary.entry): a
running helper dumps no core and its memory and environment cannot be read by another process
of its user. The helper under test waits on its stdin (docker's `get` and Terraform's `store`
read it to the end), past start-up."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI
from tests.integration.test_process_hardening import _as_plain_user, _read_as_same_user

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc and prctl are Linux's")

BIN = Path(VAULT_BIN).parent
WAITING = {
    "docker": [str(BIN / "docker-credential-vault"), "get"],
    "terraform": [str(BIN / "terraform-credentials-vault"), "store", "app.terraform.io"],
}


@pytest.fixture(params=sorted(WAITING))
def waiting_helper(request: pytest.FixtureRequest, vault: VaultCLI) -> Iterator[int]:
    proc = subprocess.Popen(
        WAITING[request.param],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=vault.full_env(),
        start_new_session=True,
        preexec_fn=_as_plain_user,  # noqa: PLW1509 (no threads of ours run at this point)
    )
    try:
        deadline = time.monotonic() + 30
        while _core_limit(proc.pid) != ("0", "0") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate(timeout=30)
            time.sleep(0.02)
        yield proc.pid
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def _core_limit(pid: int) -> tuple[str, str]:
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max core file size"))
    soft, hard = line.split()[4:6]
    return soft, hard


def test_a_running_helper_may_not_dump_core(waiting_helper: int) -> None:
    assert _core_limit(waiting_helper) == ("0", "0")


@pytest.mark.parametrize("name", ["environ", "mem"])
def test_the_same_user_cannot_read_a_running_helper(waiting_helper: int, name: str) -> None:
    control = _read_as_same_user(f"/proc/{waiting_helper}/cmdline")
    assert control.returncode == 0, control.stderr  # the reader works
    r = _read_as_same_user(f"/proc/{waiting_helper}/{name}")
    assert r.returncode != 0, f"/proc/PID/{name} of a running helper was readable"
    assert "PermissionError" in r.stderr, r.stderr
