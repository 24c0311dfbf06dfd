"""Durable atomic writes and the inter-process locks.

A file is replaced by: a temporary file in the same folder (0600, O_EXCL), write, fsync, rename
over the old name, fsync the folder. A crash at any point leaves the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from vault.errors import IntegrityError

TMP_SUFFIX = ".tmp"


def _tmp_name(final: Path) -> str:
    return f".{final.name}.{os.getpid()}.{os.urandom(4).hex()}{TMP_SUFFIX}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Reserved:
    """A temporary file beside ``path`` with ``size`` bytes already allocated to it, for a
    replacement of ``path`` that must not fail for want of space once it starts: a refresh
    reserves the room for the provider's answer before it spends the refresh token (see
    vault.tokens.lifecycle). Consumed by :func:`atomic_write`, or removed by :meth:`discard`;
    one a crash leaves behind is a stale temporary (:func:`remove_stale_temporaries`)."""

    def __init__(self, path: Path, size: int, *, what: str) -> None:
        self.path = path
        self.size = size
        self.name: str | None = None
        folder = path.parent
        tmp = _tmp_name(path)
        try:
            fd = os.open(
                folder / tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
        except OSError as exc:
            raise IntegrityError(f"cannot write {what} in {folder}: {_reason(exc)}") from exc
        self.name = tmp
        try:
            os.fchmod(fd, 0o600)
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            self.discard()
            raise IntegrityError(
                f"cannot reserve {size // 1024} KiB for {what} in {folder}: {_reason(exc)}"
            ) from exc
        finally:
            os.close(fd)

    def take(self) -> str | None:
        """The temporary's name, once: the write that uses it owns it from then on."""
        name, self.name = self.name, None
        return name

    def discard(self) -> None:
        """Remove the temporary if nothing used it."""
        name = self.take()
        if name is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path.parent / name)


def _reason(exc: OSError) -> str:
    return "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)


def atomic_write(path: Path, data: bytes, *, what: str, reserved: Reserved | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see the module docstring), in
    the space ``reserved`` for it when given (the write then needs no more room on the disk
    than was reserved, and truncates the rest away)."""
    folder = path.parent
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        if reserved is not None:
            reserved.discard()
        raise IntegrityError(f"cannot open folder {folder}: {exc.strerror}") from exc
    given = reserved.take() if reserved is not None and reserved.path == path else None
    if reserved is not None and given is None:
        reserved.discard()
    tmp = given or _tmp_name(path)
    created = given is not None
    renamed = False
    try:
        if given is not None:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:
                # Removed meanwhile as a stale temporary (remove_stale_temporaries: a refresh
                # that waited long for the provider, then for the lock): a temporary of its own.
                given, created, tmp = None, False, _tmp_name(path)
        if given is None:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=dir_fd,
            )
            created = True
        try:
            if given is None:
                os.fchmod(fd, 0o600)
            _write_all(fd, data)
            if given is not None:
                os.ftruncate(fd, len(data))  # the reserved room it did not need
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        created = False
        renamed = True
        os.fsync(dir_fd)
    except OSError as exc:
        reason = _reason(exc)
        if renamed:
            # The new version already replaced the old one: saying "unchanged" would be false.
            raise IntegrityError(
                f"wrote {what} {path}, but could not flush its folder to disk: {reason}; the new "
                "version is in place but may not survive a crash of the machine",
                hint="check the disk and the kernel log (dmesg)",
            ) from exc
        raise IntegrityError(
            f"cannot write {what} {path}: {reason}; the previous version is unchanged"
        ) from exc
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
        os.close(dir_fd)


def remove_stale_temporaries(folder: Path, final_name: str, *, older_than: float = 60.0) -> int:
    """Delete temporaries a crashed writer left behind. Call only while holding the lock."""
    prefix = f".{final_name}."
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith(prefix) and entry.name.endswith(TMP_SUFFIX):
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime >= older_than:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
    return removed


def lock_timeout() -> float:
    raw = os.environ.get("VAULT_LOCK_TIMEOUT", "")
    try:
        value = float(raw) if raw else 30.0
    except ValueError:
        value = 30.0
    return max(0.0, value)


def _open_lock(lock_file: Path, *, exclusive: bool) -> int | None:
    """The lock file, opened for flock; None for a reader on a read-only file system where it
    does not exist (no vault process ever wrote there, and none can)."""
    try:
        return os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exclusive or exc.errno != errno.EROFS:
            raise IntegrityError(f"cannot open lock file {lock_file}: {exc.strerror}") from exc
    # Reads never write: on a read-only mount (a backup, an auditor's copy, a read-only bind
    # mount of the real folder) a shared flock on a read-only descriptor is just as good.
    try:
        return os.open(lock_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IntegrityError(f"cannot open lock file {lock_file}: {exc.strerror}") from exc


class Busy(IntegrityError):
    """A lock another vault process held for longer than the wait allowed (VAULT_LOCK_TIMEOUT)."""


def _wait_for(attempt: Callable[[], bool], limit: float, busy: Callable[[], Busy]) -> None:
    """Call ``attempt`` (a non-blocking try at a lock) until it succeeds; ``busy()`` is raised
    once ``limit`` seconds have passed without."""
    deadline = time.monotonic() + limit
    delay = 0.002
    while not attempt():
        if time.monotonic() >= deadline:
            raise busy()
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _flock(fd: int, op: int) -> bool:
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def locked(lock_file: Path, *, exclusive: bool, timeout: float | None = None) -> Iterator[None]:
    """Hold an flock on ``lock_file`` (created 0600). The kernel drops it when the holder dies,
    so a crashed process never leaves the vault locked."""
    limit = lock_timeout() if timeout is None else timeout
    fd = _open_lock(lock_file, exclusive=exclusive)
    if fd is None:
        yield
        return
    try:
        op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        _wait_for(
            lambda: _flock(fd, op),
            limit,
            lambda: Busy(
                f"the vault is busy: another vault process held {lock_file} "
                f"for more than {limit:g} s",
                hint="retry, or set VAULT_LOCK_TIMEOUT to wait longer",
            ),
        )
        yield
    finally:
        os.close(fd)


# Linux's open file description locks: a byte-range lock owned by the open file description,
# not the process, so that two threads of one process (each with its own open) exclude each
# other too. Elsewhere the whole file is flocked instead (every name then shares one lock).
_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)


def _ofd_lock(fd: int, offset: int) -> bool:
    """One byte at ``offset`` write-locked on ``fd`` (struct flock: l_type, l_whence, l_start,
    l_len, l_pid, which must be 0 for an OFD lock), or False if another holds it."""
    assert _OFD_SETLK is not None
    arg = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    try:
        fcntl.fcntl(fd, _OFD_SETLK, arg)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class NameLock:
    """An exclusive lock on one name (a token's) of the vault, between processes and between
    the threads of a process alike: an OFD lock on one byte of ``lock_file`` (created 0600 like
    the vault's lock), at an offset drawn from a hash of the name, so that different names
    never wait for each other and no file is made per name. Held from :meth:`acquire` (or a
    successful :meth:`try_acquire`) until :meth:`release`; the kernel drops it when the holder
    dies. Independent of the vault's own lock (``locked``), which it never implies."""

    def __init__(self, lock_file: Path, name: str) -> None:
        import hashlib  # not on the path of `vault token` without a refresh

        self.lock_file = lock_file
        self.name = name
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
        self.offset = int.from_bytes(digest[:8], "big") >> 2  # a positive off_t
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _attempt(self, fd: int) -> bool:
        if _OFD_SETLK is None:
            return _flock(fd, fcntl.LOCK_EX)
        return _ofd_lock(fd, self.offset)

    def try_acquire(self) -> bool:
        """Take the lock if no one holds it; never waits."""
        return self._take(None)

    def acquire(self, *, timeout: float | None = None) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (VAULT_LOCK_TIMEOUT by default)
        for whoever holds it; Busy after that."""
        self._take(lock_timeout() if timeout is None else timeout)

    def _take(self, limit: float | None) -> bool:
        if self._fd is not None:
            return True
        fd = _open_lock(self.lock_file, exclusive=True)
        assert fd is not None
        try:
            if not self.take_on(fd, limit):
                os.close(fd)
                return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def take_on(self, fd: int, limit: float | None) -> bool:
        """The lock on ``fd`` (the lock file, opened), waiting at most ``limit`` seconds (None:
        not at all); it is then held until ``fd`` is closed."""
        if limit is None:
            return self._attempt(fd)
        _wait_for(
            lambda: self._attempt(fd),
            limit,
            lambda: Busy(
                f"the token {self.name!r} is busy: another vault process held its lock "
                f"({self.lock_file}) for more than {limit:g} s",
                hint="it may be refreshing it against a slow provider; retry, or set "
                "VAULT_LOCK_TIMEOUT to wait longer",
            ),
        )
        return True

    def release(self) -> None:
        """Closing the descriptor drops the lock (it is the open file description's)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> NameLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class NameLocks:
    """The locks of many names at once (`vault prune`), each exactly as NameLock takes it, in
    name order, on one open file description of the lock file: one open and one close for all
    of them, instead of one each (10,000 of each cost a prune of 10,000 tokens about 3 s). All
    are dropped together when the block ends."""

    def __init__(self, lock_file: Path, names: Iterable[str]) -> None:
        self.lock_file = lock_file
        self.locks = [NameLock(lock_file, name) for name in sorted(set(names))]
        self._fd: int | None = None

    def __enter__(self) -> NameLocks:
        fd = _open_lock(self.lock_file, exclusive=True)
        assert fd is not None
        try:
            limit = lock_timeout()
            for lock in self.locks:
                lock.take_on(fd, limit)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
