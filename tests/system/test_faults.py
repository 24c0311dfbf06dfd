"""Faults through the real executable: a full disk, a read-only folder, fsync failing, a lock
held by a dead or a stuck process, a keyring that hangs, is locked, or disappears mid-command.

Each ends in one clear line on stderr (no traceback) with a documented exit code, and loses
nothing: the vault opens afterwards with what it held, and the audit log verifies. Real faults
where the machine can make them (a small tmpfs, a read-only remount: we run as root; the tests
skip, saying why, where mount is refused), injected ones through
tests/harness/crashhook/sitecustomize.py
otherwise (`VAULT_TEST_FAULT`), and the same hook's `stop` to hold a command at an exact step
(`VAULT_TEST_CRASH_AT=KIND:N:stop`) while the test breaks something under it.

Already covered elsewhere, so not repeated here: a keyring that is gone or locked before a
command starts, a non-OS keyring (test_keyring_and_paths.py); a file-size limit and an
unwritable audit log (test_audit.py); concurrent writers (test_concurrency.py).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    Result,
    SecretService,
    VaultCLI,
    approved_login,
    configure_provider,
    temporary_secret_service,
)
from tests.harness.fault_hook import hook_env
from tests.harness.provider import start_idp

TOKEN_A = "ghp_" + "Fa1" * 10 + "faultA"
TOKEN_B = "ghp_" + "Fb2" * 10 + "faultB"


# --- helpers ---------------------------------------------------------------------------------


def _import(vault: VaultCLI, name: str, token: str, env: dict[str, str] | None = None) -> Result:
    return vault.run("import", name, "--provider", "github", input=token, env=env)


def _seed(vault: VaultCLI) -> None:
    r = _import(vault, "a", TOKEN_A)
    assert r.returncode == 0, r


def _clean_error(r: Result, code: int, *needles: str) -> str:
    """Exit ``code`` with one `vault: error:` line holding ``needles`` (hints and warnings
    may follow), no traceback, and nothing on stdout. Returns the error line."""
    assert r.returncode == code, r
    assert "Traceback" not in r.stderr, r
    assert r.stdout == "", r
    lines = r.stderr.splitlines()
    errors = [line for line in lines if line.startswith("vault: error: ")]
    assert len(errors) == 1, r
    assert all(
        line.startswith(("vault: error: ", "vault: hint: ", "vault: warning: ")) for line in lines
    ), r
    for needle in needles:
        assert needle in errors[0], (needle, r)
    return errors[0]


def _warned(r: Result, *needles: str) -> None:
    """A `vault: warning:` line on stderr holding ``needles``, and no traceback."""
    assert "Traceback" not in r.stderr, r
    warnings = [line for line in r.stderr.splitlines() if line.startswith("vault: warning: ")]
    assert any(all(n in line for n in needles) for line in warnings), (needles, r)


def _intact(vault: VaultCLI, tokens: dict[str, str], env: dict[str, str] | None = None) -> None:
    """The vault opens and holds exactly ``tokens``; the audit log verifies."""
    r = vault.run("list", "--json", env=env)
    assert r.returncode == 0, r
    assert {t["name"] for t in json.loads(r.stdout)["tokens"]} == set(tokens), r
    for name, token in tokens.items():
        r = vault.run("token", name, env=env)
        assert r.returncode == 0, r
        assert r.stdout == token + "\n", r
    r = vault.run("audit", "verify", env=env)
    assert r.returncode == 0, r
    assert "torn" not in r.stderr, r


def _temporaries(vault: VaultCLI) -> list[str]:
    return [p.name for p in vault.home.iterdir() if p.name.endswith(".tmp")]


def _wait_stopped(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until ``proc`` stopped itself (the hook's `stop`): waitpid(WUNTRACED) on a thread, so
    the wait is bounded."""
    status: list[int] = []

    def wait() -> None:
        status.append(os.waitpid(proc.pid, os.WUNTRACED)[1])

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(timeout)
    if waiter.is_alive():
        proc.kill()
        waiter.join(10)
        pytest.fail(f"the vault process did not reach its stop point within {timeout} s")
    if not os.WIFSTOPPED(status[0]):
        proc.returncode = os.waitstatus_to_exitcode(status[0])  # reaped by our waitpid
        proc.stdin = None
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the vault process ended before its stop point: {proc.returncode} {err!r}")


def _held_at(
    vault: VaultCLI, point: str, *args: str, stdin: bytes = b""
) -> subprocess.Popen[bytes]:
    """`vault ARGS` started and stopped (SIGSTOP, by the hook) at ``point``."""
    proc = vault.popen(*args, env=hook_env(vault.home, crash_at=point))
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    _wait_stopped(proc)
    return proc


def _finish(proc: subprocess.Popen[bytes], args: list[str]) -> Result:
    proc.stdin = None  # written and closed by _held_at
    out, err = proc.communicate(timeout=60)
    return Result(args, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted in tmp_path (needs root, or CAP_SYS_ADMIN)."""
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("mount/umount not found: cannot make a small or read-only file system")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        done = subprocess.run([umount, str(mnt)], capture_output=True, check=False, timeout=30)
        if done.returncode != 0:
            subprocess.run([umount, "-l", str(mnt)], capture_output=True, check=False, timeout=30)


def _remount(mnt: Path, mode: str) -> None:
    mount = shutil.which("mount")
    assert mount is not None
    subprocess.run(
        [mount, "-o", f"remount,{mode}", str(mnt)], check=True, capture_output=True, timeout=30
    )


def _fill(folder: Path) -> Path:
    """Fill the file system holding ``folder``: returns the file that took the space."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    chunk = b"\0" * 4096
    try:
        for _ in range(shutil.disk_usage(folder).total // len(chunk) + 16):
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return filler
        pytest.fail(f"{folder} never filled up")
    finally:
        os.close(fd)


# --- disk full ---------------------------------------------------------------------------------


def test_disk_full_on_a_real_small_tmpfs(tmpfs: Path, secret_service: SecretService) -> None:
    vault = VaultCLI(tmpfs / "vh", secret_service.env())
    _seed(vault)
    before = vault.vault_file.read_bytes()
    filler = _fill(tmpfs)
    r = _import(vault, "b", TOKEN_B)
    # The audit record may still fit in the log's last page; the new vault file cannot.
    _clean_error(r, 6, "the disk is full")
    assert vault.vault_file.read_bytes() == before
    assert _temporaries(vault) == []
    # Reading needs no space: the vault still opens, with what it held, the log verifies.
    r = vault.run("list", "--json")
    assert r.returncode == 0, r
    assert [t["name"] for t in json.loads(r.stdout)["tokens"]] == ["a"]
    assert vault.run("audit", "verify").returncode == 0
    filler.unlink()
    _intact(vault, {"a": TOKEN_A})
    assert _import(vault, "b", TOKEN_B).returncode == 0
    _intact(vault, {"a": TOKEN_A, "b": TOKEN_B})


def test_disk_full_refresh_spends_nothing(tmpfs: Path, secret_service: SecretService) -> None:
    """A refresh on a full disk: the room for the provider's answer is reserved before the
    request, so a disk without it refuses the refresh (exit 6) before the refresh token is spent
    (the real provider, which rotates and revokes a grant on replay, saw no request), and the
    token works as soon as there is room again."""
    vault = VaultCLI(tmpfs / "vh", secret_service.env())
    with start_idp() as idp:
        configure_provider(vault, idp.issuer)
        code, _, err = approved_login(vault)
        assert code == 0, err
        before = vault.vault_file.read_bytes()
        filler = _fill(tmpfs)
        r = vault.run("token", "local", "--min-valid", "999999")
        _clean_error(r, 6, "cannot refresh 'local'", "the disk is full", "was not spent")
        assert [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"] == []
        assert vault.vault_file.read_bytes() == before
        assert _temporaries(vault) == []
        filler.unlink()
        r = vault.run("refresh", "local")
        assert r.returncode == 0, r
        grants = [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]
        assert [g["result"] for g in grants] == ["ok"]
        assert vault.run("audit", "verify").returncode == 0


def test_disk_full_before_the_first_write(tmpfs: Path, secret_service: SecretService) -> None:
    vault = VaultCLI(tmpfs / "vh", secret_service.env())
    filler = _fill(tmpfs)
    r = _import(vault, "a", TOKEN_A)
    _clean_error(r, 6, "the disk is full")
    assert not vault.vault_file.exists()
    filler.unlink()
    assert _import(vault, "a", TOKEN_A).returncode == 0
    _intact(vault, {"a": TOKEN_A})


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("write:*:ENOSPC:audit.jsonl", "cannot write the audit log"),
        ("write:*:ENOSPC:.vault.enc.*.tmp", "cannot write vault file"),
    ],
    ids=["audit log", "vault file"],
)
def test_disk_full_injected(vault: VaultCLI, fault: str, message: str) -> None:
    _seed(vault)
    log = (vault.home / "audit.jsonl").read_bytes()
    r = _import(vault, "b", TOKEN_B, env=hook_env(vault.home, fault=fault))
    _clean_error(r, 6, message, "the disk is full")
    assert _temporaries(vault) == []
    if "audit" in fault:  # no partial record left behind
        assert (vault.home / "audit.jsonl").read_bytes() == log
    _intact(vault, {"a": TOKEN_A})


def test_disk_full_on_the_key_file(passphrase_vault: VaultCLI) -> None:
    """The key file is written after the vault (it must never name a generation the vault does
    not have). When it cannot be, the change is already stored: the command must say so
    (a warning, exit 0, as with a keyring that cannot record the generation), not fail."""
    vault = passphrase_vault
    _seed(vault)
    r = _import(vault, "b", TOKEN_B, env=hook_env(vault.home, fault="write:*:ENOSPC:.vault.key.*"))
    assert "Traceback" not in r.stderr
    stored = _import(vault, "b", TOKEN_B).returncode == 2  # "already stored"
    # The exit code must tell the truth about what happened.
    assert (r.returncode == 0) == stored, (r, stored)
    assert r.returncode == 0, r
    _warned(r, "key file")
    _intact(vault, {"a": TOKEN_A, "b": TOKEN_B})


# --- read-only folder --------------------------------------------------------------------------


def test_read_only_mount(tmpfs: Path, secret_service: SecretService) -> None:
    vault = VaultCLI(tmpfs / "vh", secret_service.env())
    _seed(vault)
    _remount(tmpfs, "ro")
    try:
        for args, stdin in (
            (("token", "a"), None),
            (("import", "b", "--provider", "github"), TOKEN_B),
        ):
            r = vault.run(*args, input=stdin)
            _clean_error(r, 6, "Read-only file system")
        # Reads never write: the vault and its log can still be read and checked.
        r = vault.run("list", "--json")
        assert r.returncode == 0, r
        assert [t["name"] for t in json.loads(r.stdout)["tokens"]] == ["a"]
        r = vault.run("audit", "verify")
        assert r.returncode == 0, r
    finally:
        _remount(tmpfs, "rw")
    _intact(vault, {"a": TOKEN_A})


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("open:*:EROFS:.vault.enc.*.tmp", "the previous version is unchanged"),
        ("open:*:EROFS:audit.jsonl", "cannot open the audit log"),
    ],
    ids=["vault file", "audit log"],
)
def test_read_only_injected(vault: VaultCLI, fault: str, message: str) -> None:
    _seed(vault)
    r = _import(vault, "b", TOKEN_B, env=hook_env(vault.home, fault=fault))
    _clean_error(r, 6, "Read-only file system", message)
    assert _temporaries(vault) == []
    _intact(vault, {"a": TOKEN_A})


# --- fsync failing -----------------------------------------------------------------------------


def test_fsync_failing_on_the_audit_log(vault: VaultCLI) -> None:
    _seed(vault)
    log = (vault.home / "audit.jsonl").read_bytes()
    r = vault.run("token", "a", env=hook_env(vault.home, fault="fsync:*:EIO:audit.jsonl"))
    _clean_error(r, 6, "cannot write the audit log", "Input/output error", "not carried out")
    assert (vault.home / "audit.jsonl").read_bytes() == log  # cut back: no unsynced record
    _intact(vault, {"a": TOKEN_A})


def test_fsync_failing_on_the_vault_file(vault: VaultCLI) -> None:
    _seed(vault)
    before = vault.vault_file.read_bytes()
    r = _import(vault, "b", TOKEN_B, env=hook_env(vault.home, fault="fsync:*:EIO:.vault.enc.*"))
    _clean_error(r, 6, "Input/output error", "the previous version is unchanged")
    assert vault.vault_file.read_bytes() == before
    assert _temporaries(vault) == []
    _intact(vault, {"a": TOKEN_A})


def test_fsync_failing_on_the_folder(vault: VaultCLI) -> None:
    """The folder's fsync comes after the rename: the new version is in place already, and the
    message must say so (it said "the previous version is unchanged": fixed in _fs.py)."""
    _seed(vault)
    folder = vault.home.name
    r = _import(vault, "b", TOKEN_B, env=hook_env(vault.home, fault=f"fsync:*:EIO:{folder}"))
    line = _clean_error(r, 6, "Input/output error", "the new version is in place")
    assert "unchanged" not in line
    _intact(vault, {"a": TOKEN_A, "b": TOKEN_B})


@pytest.mark.parametrize(
    "fault", ["fsync:*:EIO:vh", "rename:*:EROFS:audit.jsonl"], ids=["folder fsync", "rename"]
)
def test_audit_rotation_failing(vault: VaultCLI, fault: str) -> None:
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text("audit:\n  max_bytes: 4096\n")
    _seed(vault)
    log = vault.home / "audit.jsonl"
    for _ in range(40):
        if log.stat().st_size >= 4096:
            break
        assert vault.run("token", "a").returncode == 0
    r = vault.run("token", "a", env=hook_env(vault.home, fault=fault))
    _clean_error(r, 6, "audit log")
    _intact(vault, {"a": TOKEN_A})


def test_disk_full_setting_a_torn_record_aside(vault: VaultCLI) -> None:
    _seed(vault)
    with open(vault.home / "audit.jsonl", "ab") as fh:
        fh.write(b'{"v":1,"seq":2,"time":"2026-')  # a crash mid-write
    fault = "write:*:ENOSPC:audit.jsonl.torn-*"
    r = vault.run("token", "a", env=hook_env(vault.home, fault=fault))
    _clean_error(r, 6, "the disk is full")
    _intact(vault, {"a": TOKEN_A})


# --- locks -------------------------------------------------------------------------------------

_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_lock_of_a_killed_holder_is_free(vault: VaultCLI) -> None:
    """A process that took the vault's lock and was SIGKILLed does not leave it held."""
    _seed(vault)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(vault.home / "vault.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"locked\n"
    holder.kill()
    holder.communicate(timeout=30)
    env = {"VAULT_LOCK_TIMEOUT": "10"}
    r = _import(vault, "b", TOKEN_B, env=env)
    assert r.returncode == 0, r
    _intact(vault, {"a": TOKEN_A, "b": TOKEN_B}, env=env)


def test_lock_held_by_a_stuck_vault_process_then_killed(vault: VaultCLI) -> None:
    """A `vault import` stuck (SIGSTOPped) inside its write holds the lock: others give up
    with the documented error within VAULT_LOCK_TIMEOUT; once it is killed they go on, and
    its half-done import left nothing."""
    _seed(vault)
    stuck = _held_at(
        vault, "write:1:stop", "import", "b", "--provider", "github", stdin=TOKEN_B.encode()
    )
    try:
        for args in (("token", "a"), ("list",)):
            started = time.monotonic()
            r = vault.run(*args, env={"VAULT_LOCK_TIMEOUT": "1"})
            elapsed = time.monotonic() - started
            _clean_error(r, 6, "the vault is busy", "more than 1 s")
            assert "VAULT_LOCK_TIMEOUT" in r.stderr
            assert 1.0 <= elapsed < 20, elapsed
    finally:
        stuck.kill()
        _finish(stuck, ["import", "b"])
    assert stuck.returncode == -signal.SIGKILL
    _intact(vault, {"a": TOKEN_A}, env={"VAULT_LOCK_TIMEOUT": "10"})


# --- keyring -----------------------------------------------------------------------------------


def test_hung_keyring_ends_within_the_timeout(tmp_path: Path) -> None:
    with temporary_secret_service(tmp_path / "ss") as service:
        vault = VaultCLI(tmp_path / "vh", {**service.env(), "VAULT_KEYRING_TIMEOUT": "2"})
        _seed(vault)
        assert service.daemon is not None
        service.daemon.send_signal(signal.SIGSTOP)
        try:
            for args, stdin in (
                (("token", "a"), None),
                (("import", "b", "--provider", "github"), TOKEN_B),
            ):
                started = time.monotonic()
                r = vault.run(*args, input=stdin, timeout=60)
                elapsed = time.monotonic() - started
                _clean_error(r, 6, "did not answer within 2 s")
                assert 2.0 <= elapsed < 20, elapsed
        finally:
            service.daemon.send_signal(signal.SIGCONT)
        _intact(vault, {"a": TOKEN_A})


def test_keyring_hangs_mid_command(tmp_path: Path) -> None:
    """The keyring stops answering after the vault was written, when the new generation is
    to be recorded: the command ends within the timeout, the change kept, with a warning."""
    with temporary_secret_service(tmp_path / "ss") as service:
        vault = VaultCLI(tmp_path / "vh", {**service.env(), "VAULT_KEYRING_TIMEOUT": "2"})
        _seed(vault)
        proc = _held_at(
            vault, "rename:1:stop", "import", "b", "--provider", "github", stdin=TOKEN_B.encode()
        )
        assert service.daemon is not None
        service.daemon.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            os.kill(proc.pid, signal.SIGCONT)
            r = _finish(proc, ["import", "b"])
            elapsed = time.monotonic() - started
        finally:
            service.daemon.send_signal(signal.SIGCONT)
        assert r.returncode == 0, r
        _warned(r, "could not record its generation", "did not answer within 2 s")
        assert elapsed < 20, elapsed
        _intact(vault, {"a": TOKEN_A, "b": TOKEN_B})


def test_keyring_locked_mid_rekey(tmp_path: Path) -> None:
    """Locked (a screen lock) while `vault rekey` stores the new key: exit 6, nothing changed;
    once unlocked (a new login session), the vault opens with its old key."""
    base = tmp_path / "ss"
    with temporary_secret_service(base) as service:
        vault = VaultCLI(tmp_path / "vh", {**service.env(), "VAULT_KEYRING_TIMEOUT": "5"})
        _seed(vault)
        before = vault.vault_file.read_bytes()
        proc = _held_at(vault, "keyring-set:1:stop", "rekey")
        service.lock()
        os.kill(proc.pid, signal.SIGCONT)
        r = _finish(proc, ["rekey"])
        _clean_error(r, 6, "keyring")
        assert vault.vault_file.read_bytes() == before
    with temporary_secret_service(base) as service:
        vault.env.update(service.env())
        _intact(vault, {"a": TOKEN_A})


@pytest.mark.parametrize(
    ("point", "args", "tokens"),
    [
        ("keyring-set:1:stop", ("rekey",), {"a": TOKEN_A}),
        ("rename:1:stop", ("import", "b", "--provider", "github"), {"a": TOKEN_A, "b": TOKEN_B}),
    ],
    ids=["rekey storing the new key", "import after the vault write"],
)
def test_keyring_disappears_mid_command(
    tmp_path: Path, point: str, args: tuple[str, ...], tokens: dict[str, str]
) -> None:
    """The whole session (bus and keyring daemon) ends while a command is held at ``point``.
    Storing a new key fails the command (exit 6, nothing changed); recording the generation
    after the vault was written is a warning (the change is kept). Either way, back in a new
    session with the same keyring, the vault opens with exactly one of the two states."""
    base = tmp_path / "ss"
    with temporary_secret_service(base) as service:
        vault = VaultCLI(tmp_path / "vh", {**service.env(), "VAULT_KEYRING_TIMEOUT": "5"})
        _seed(vault)
        before = vault.vault_file.read_bytes()
        proc = _held_at(vault, point, *args, stdin=TOKEN_B.encode())
        service.stop()
        os.kill(proc.pid, signal.SIGCONT)
        r = _finish(proc, list(args))
    if args[0] == "rekey":
        _clean_error(r, 6, "keyring")
        assert vault.vault_file.read_bytes() == before
    else:
        assert r.returncode == 0, r
        _warned(r, "could not record its generation")
    with temporary_secret_service(base) as service:
        vault.env.update(service.env())
        _intact(vault, tokens)
