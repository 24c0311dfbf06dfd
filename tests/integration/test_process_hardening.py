"""A running `vault` process dumps no core and cannot be read by another process of its user
(ptrace, /proc/PID/mem, /proc/PID/environ): the entry point sets RLIMIT_CORE to 0 and, on
Linux, PR_SET_DUMPABLE to 0 before anything else.

The process under test is a `vault login` waiting for a device code to be approved (a fake
provider answers authorization_pending for ever): a long-running command that has passed
start-up. When the tests run as root, both that process and the reader run with every
capability dropped (an empty bounding set across exec), so the reader is exactly "the same
user" and nothing else: root's CAP_SYS_PTRACE would read any process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI
from tests.harness.fake_oauth import FakeOAuth, Handler, fake_oauth, json_reply

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc and prctl are Linux's")

PR_CAPBSET_DROP = 24


def _as_plain_user() -> None:
    """preexec_fn: a core limit a core could be written under (the soft limit raised to the hard
    one, which needs no privilege), and, for root, no capabilities after exec."""
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    if os.geteuid() == 0:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        for cap in range(64):  # EINVAL past the last capability the kernel knows: ignored
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


@pytest.fixture
def waiting_login(passphrase_vault: VaultCLI) -> Iterator[subprocess.Popen[bytes]]:
    routes: dict[str, Handler] = {
        "/token": lambda _: json_reply({"error": "authorization_pending"}, 400)
    }
    with fake_oauth(routes) as fake:
        _configure(passphrase_vault, fake)
        proc = subprocess.Popen(
            [VAULT_BIN, "login", "fake", "--no-browser", "--json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=passphrase_vault.full_env(),
            start_new_session=True,
            preexec_fn=_as_plain_user,  # noqa: PLW1509 (no threads of ours run at this point)
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # the device code: start-up is over
            assert first, proc.communicate(timeout=30)
            yield proc
        finally:
            proc.kill()
            proc.communicate(timeout=30)


def _configure(vault: VaultCLI, fake: FakeOAuth) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  fake:\n    issuer: {fake.issuer}\n    client_id: cli\n"
        "    scopes: [openid]\n"
    )


def _read_as_same_user(path: str) -> subprocess.CompletedProcess[str]:
    # Opening is where the kernel decides (mem at offset 0 would then fail to read anyway).
    code = (
        "import sys\nwith open(sys.argv[1], 'rb') as fh:\n    'mem' in sys.argv[1] or fh.read(1)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, path],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=_as_plain_user,
    )


def test_a_running_vault_may_not_dump_core(waiting_login: subprocess.Popen[bytes]) -> None:
    limits = Path(f"/proc/{waiting_login.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max core file size"))
    soft, hard = line.split()[4:6]
    assert (soft, hard) == ("0", "0"), line


@pytest.mark.parametrize("name", ["environ", "mem", "cmdline_is_public"])
def test_the_same_user_cannot_read_a_running_vault(
    waiting_login: subprocess.Popen[bytes], name: str
) -> None:
    if name == "cmdline_is_public":
        # The control: the reader itself works (cmdline is world-readable even when the target
        # is not dumpable), so a refusal below is the kernel's, not a broken reader.
        r = _read_as_same_user(f"/proc/{waiting_login.pid}/cmdline")
        assert r.returncode == 0, r.stderr
        return
    r = _read_as_same_user(f"/proc/{waiting_login.pid}/{name}")
    assert r.returncode != 0, f"/proc/PID/{name} of a running vault was readable"
    assert "PermissionError" in r.stderr, r.stderr


def test_a_running_vault_is_not_dumpable(waiting_login: subprocess.Popen[bytes]) -> None:
    """The kernel shows a non-dumpable process's /proc files as root's (for a plain user this
    is the visible mark; as root every owner is root anyway, and the reads above decide)."""
    if os.geteuid() == 0:
        pytest.skip("as root, /proc/PID is root's either way; the read tests cover this")
    assert os.stat(f"/proc/{waiting_login.pid}/status").st_uid == 0
