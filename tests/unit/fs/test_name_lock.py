"""vault.fs.durable.NameLock: one name's lock, between processes and between the threads of one
process alike (the agent serves each request on a thread), never between different names, not
the vault's lock, dropped by the kernel when its holder dies, bounded like the vault's lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vault.errors import IntegrityError
from vault.fs.durable import Busy, NameLock, locked

_HOLD = """
import sys
from pathlib import Path
from vault.fs.durable import NameLock
lock = NameLock(Path(sys.argv[1]), sys.argv[2])
lock.acquire(timeout=10)
print("locked", flush=True)
sys.stdin.read()
"""


def _holder(lock_file: Path, name: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(lock_file), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"locked\n"
    return proc


def test_between_threads_of_one_process(tmp_path: Path) -> None:
    lock_file = tmp_path / "vault.names.lock"
    first = NameLock(lock_file, "a")
    first.acquire()
    took: list[float] = []

    def second() -> None:
        started = time.monotonic()
        with NameLock(lock_file, "a"):
            took.append(time.monotonic() - started)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive(), "the same name was locked twice in one process"
    assert not NameLock(lock_file, "a").try_acquire()
    other = NameLock(lock_file, "b")  # another name is never held up
    assert other.try_acquire()
    other.release()
    first.release()
    thread.join(10)
    assert not thread.is_alive()
    assert len(took) == 1
    assert took[0] >= 0.3


def test_between_processes_and_dropped_when_the_holder_dies(tmp_path: Path) -> None:
    lock_file = tmp_path / "vault.names.lock"
    holder = _holder(lock_file, "a")
    try:
        assert not NameLock(lock_file, "a").try_acquire()
        with NameLock(lock_file, "b"):
            pass
        # Not the vault's lock, nor does the vault's lock touch it.
        with locked(tmp_path / "vault.lock", exclusive=True, timeout=0):
            pass
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    lock = NameLock(lock_file, "a")
    lock.acquire(timeout=10)
    lock.release()


def test_the_wait_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock_file = tmp_path / "vault.names.lock"
    with NameLock(lock_file, "tok"):
        waiter = NameLock(lock_file, "tok")
        started = time.monotonic()
        with pytest.raises(Busy) as busy:
            waiter.acquire(timeout=0.2)
        assert time.monotonic() - started >= 0.2
        assert "the token 'tok' is busy" in busy.value.message
        assert "VAULT_LOCK_TIMEOUT" in (busy.value.hint or "")
        assert isinstance(busy.value, IntegrityError)  # exit 6, as a busy vault
        monkeypatch.setenv("VAULT_LOCK_TIMEOUT", "0")
        with pytest.raises(Busy):
            waiter.acquire()
        assert not waiter.held


def test_the_file_is_private_and_never_followed(tmp_path: Path) -> None:
    lock_file = tmp_path / "vault.names.lock"
    with NameLock(lock_file, "a"):
        assert stat.S_IMODE(os.stat(lock_file).st_mode) == 0o600
    lock_file.unlink()
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    lock_file.symlink_to(target)
    with pytest.raises(IntegrityError, match="cannot open lock file"):
        NameLock(lock_file, "a").acquire()


def test_released_twice_and_taken_again(tmp_path: Path) -> None:
    lock = NameLock(tmp_path / "vault.names.lock", "a")
    assert lock.try_acquire()
    assert lock.try_acquire()  # already held: no second descriptor
    lock.release()
    lock.release()
    assert not lock.held
    assert lock.try_acquire()
    lock.release()


def test_many_names_on_one_descriptor_each_hold_as_their_own_lock(tmp_path: Path) -> None:
    """NameLocks (vault prune): every name it holds is refused to anyone else, a name it does
    not hold is free, all of them are free again after the block, and a name held elsewhere
    makes it wait and then report that name busy."""
    from vault.fs.durable import NameLocks

    lock_file = tmp_path / "names.lock"
    names = [f"t{i:04d}" for i in range(200)]
    with NameLocks(lock_file, reversed(names)):
        for name in names[::17]:
            assert not NameLock(lock_file, name).try_acquire(), name
        other = NameLock(lock_file, "not-in-the-plan")
        assert other.try_acquire()
        other.release()
    for name in names[::17]:
        lock = NameLock(lock_file, name)
        assert lock.try_acquire(), name
        lock.release()
    holder = _holder(lock_file, "t0100")
    try:
        os.environ["VAULT_LOCK_TIMEOUT"] = "0.2"
        with pytest.raises(Busy, match="t0100"), NameLocks(lock_file, names):
            pass
        first = NameLock(lock_file, "t0000")
        assert first.try_acquire()  # what it had taken before giving up was let go
        first.release()
    finally:
        os.environ.pop("VAULT_LOCK_TIMEOUT", None)
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
