"""Test-only fault injection for the real `vault` executable.

Never installed: tests/system/test_crash.py and tests/system/test_faults.py put this folder on
PYTHONPATH of
the `vault` subprocesses they start, so Python imports it at start-up (site.py imports
``sitecustomize``). Without ``VAULT_TEST_HOOK_ROOT`` in the environment it does nothing.

It wraps the calls that change what is on disk (``os.open`` creating or truncating a file,
``os.write``, ``os.fsync``, ``os.rename``, ``os.replace``, ``os.unlink``/``os.remove``,
``os.ftruncate``, ``os.mkdir``, ``os.fchmod``) and the two Secret Service calls that change the
keyring (D-Bus ``CreateItem`` and ``Delete``, recognised in what is sent on a Unix socket).
Only calls on paths inside ``VAULT_TEST_HOOK_ROOT`` count (every keyring change counts). The
Nth counted call of one kind is named ``KIND:N``.

Environment:

``VAULT_TEST_HOOK_ROOT``
    the folder whose files count (the test's ``VAULT_HOME``).
``VAULT_TEST_HOOK_LOG``
    count mode: append one JSON line per counted call (``{"op", "n", "path"}``) to this file.
``VAULT_TEST_CRASH_AT``
    ``KIND:N:PHASE``: at the Nth call of KIND, ``before`` (SIGKILL instead of the call),
    ``after`` (SIGKILL once it returned), ``torn`` (``write`` only: write the first half of the
    data, then SIGKILL), ``stop`` (SIGSTOP before the call; carry on with it after SIGCONT), or
    ``term``, ``int``, ``hup`` (send SIGTERM, SIGINT or SIGHUP to itself before the call, then
    carry on with it: the signal takes effect at once, unless the process holds it off).
``VAULT_TEST_FAULT``
    ``KIND:N:ERRNO[:GLOB]``: the Nth call of KIND (``*``: every one) inside the root whose file
    name matches the shell pattern GLOB fails with ``OSError(ERRNO)`` and is not made. For
    ``open`` this is any open for writing, also one that creates nothing (the audit log's).

A keyring call's "after" fires once the caller goes on (its next counted call, D-Bus message,
closed socket, or the process's exit): it sends, then waits for the answer, then goes on.
"""

from __future__ import annotations

import _socket
import atexit
import errno
import fnmatch
import json
import os
import signal
import socket  # before _socket.socket is replaced below: socket.socket keeps the C type
from collections.abc import Callable
from typing import Any

_ROOT = os.environ.get("VAULT_TEST_HOOK_ROOT", "")

_SIGNALS = {"term": signal.SIGTERM, "int": signal.SIGINT, "hup": signal.SIGHUP}

_KEYRING_CALLS = {
    # D-Bus strings are a little-endian uint32 length, the bytes and a NUL.
    "keyring-set": len(b"CreateItem").to_bytes(4, "little") + b"CreateItem\x00",
    "keyring-delete": len(b"Delete").to_bytes(4, "little") + b"Delete\x00",
}


class _Hook:
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.log_path = os.environ.get("VAULT_TEST_HOOK_LOG") or None
        self.counts: dict[str, int] = {}
        self.fault_counts: dict[str, int] = {}
        self.crash: tuple[str, int, str] | None = None
        spec = os.environ.get("VAULT_TEST_CRASH_AT", "")
        if spec:
            kind, n, phase = spec.split(":")
            if phase not in ("before", "after", "torn", "stop", *_SIGNALS):
                raise ValueError(f"VAULT_TEST_CRASH_AT: unknown phase {phase!r}")
            self.crash = (kind, int(n), phase)
        self.fault: tuple[str, int | None, int, str] | None = None
        spec = os.environ.get("VAULT_TEST_FAULT", "")
        if spec:
            kind, n, code, *glob = spec.split(":", 3)
            number = getattr(errno, code) if not code.isdigit() else int(code)
            self.fault = (kind, None if n == "*" else int(n), number, glob[0] if glob else "*")
        self.real_write = os.write
        self.real_open = os.open
        # A keyring call sent and (once the caller goes on) answered: "after" fires then.
        self.pending_after: tuple[str, int] | None = None

    # --- paths ---------------------------------------------------------------------------

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)

    @staticmethod
    def fd_path(fd: int) -> str:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").removesuffix(" (deleted)")
        except OSError:
            return ""

    def full_path(self, path: Any, dir_fd: int | None) -> str:
        if isinstance(path, int):
            return self.fd_path(path)
        text = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(text):
            text = os.path.join(self.fd_path(dir_fd), text)
        folder, name = os.path.split(os.path.abspath(text))
        return os.path.join(os.path.realpath(folder), name)

    # --- counting, crashing and failing --------------------------------------------------

    def point(self, kind: str, path: str, *, counted: bool = True) -> tuple[str, int] | None:
        """A call about to be made: fail it if asked to; count it (if it touches our files and
        changes something: ``counted``) and crash or stop before it if asked to. Returns the
        name it was counted under."""
        self.flush_after()
        if not (kind.startswith("keyring") or self._inside(path)):
            return None
        self._fail(kind, path)
        if not counted:
            return None
        n = self.counts.get(kind, 0) + 1
        self.counts[kind] = n
        if self.log_path:
            rel = os.path.relpath(path, self.root) if path else ""
            line = json.dumps({"op": kind, "n": n, "path": rel}) + "\n"
            fd = self.real_open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                self.real_write(fd, line.encode())
            finally:
                os.close(fd)
        if self.crash is not None and self.crash[:2] == (kind, n):
            if self.crash[2] == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.crash[2] == "stop":
                os.kill(os.getpid(), signal.SIGSTOP)
            elif self.crash[2] in _SIGNALS:
                os.kill(os.getpid(), _SIGNALS[self.crash[2]])
        return kind, n

    def _fail(self, kind: str, path: str) -> None:
        if self.fault is None or self.fault[0] != kind:
            return
        _, n, number, glob = self.fault
        if not fnmatch.fnmatchcase(os.path.basename(path), glob):
            return
        seen = self.fault_counts.get(kind, 0) + 1
        self.fault_counts[kind] = seen
        if n is None or n == seen:
            raise OSError(number, os.strerror(number), path)

    def done(self, named: tuple[str, int] | None) -> None:
        """The call ``named`` returned: crash now if asked to crash after it."""
        if named is not None and self.crash is not None and self.crash == (*named, "after"):
            os.kill(os.getpid(), signal.SIGKILL)

    def flush_after(self) -> None:
        """The keyring call sent last has returned (the caller went on to something else)."""
        named, self.pending_after = self.pending_after, None
        self.done(named)

    def torn(self, named: tuple[str, int] | None) -> bool:
        return named is not None and self.crash is not None and self.crash == (*named, "torn")


def _install(hook: _Hook) -> None:
    real_open = os.open
    real_write = os.write
    real_fsync = os.fsync
    real_rename = os.rename
    real_replace = os.replace
    real_unlink = os.unlink
    real_remove = os.remove
    real_ftruncate = os.ftruncate
    real_mkdir = os.mkdir
    real_fchmod = os.fchmod

    def fd_of(fd: Any) -> int:
        return fd if isinstance(fd, int) else int(fd.fileno())

    def wrap_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        named = None
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC):
            # Any open for writing can be made to fail; one that creates or truncates a file
            # is also counted (it changes what is on disk).
            full = hook.full_path(path, dir_fd)
            changes = bool(flags & os.O_TRUNC) or (
                bool(flags & os.O_CREAT) and not os.path.lexists(full)
            )
            named = hook.point("open", full, counted=changes)
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        hook.done(named)
        return fd

    def wrap_write(fd: int, data: Any) -> int:
        named = hook.point("write", hook.fd_path(fd))
        if hook.torn(named):
            view = memoryview(data)
            real_write(fd, view[: max(1, len(view) // 2)])
            os.kill(os.getpid(), signal.SIGKILL)
        written = real_write(fd, data)
        hook.done(named)
        return written

    def wrap_fsync(fd: Any) -> None:
        named = hook.point("fsync", hook.fd_path(fd_of(fd)))
        real_fsync(fd)
        hook.done(named)

    def wrap_ftruncate(fd: int, length: int) -> None:
        named = hook.point("ftruncate", hook.fd_path(fd))
        real_ftruncate(fd, length)
        hook.done(named)

    def wrap_fchmod(fd: int, mode: int) -> None:
        named = hook.point("fchmod", hook.fd_path(fd))
        real_fchmod(fd, mode)
        hook.done(named)

    def two_paths(kind: str, real: Callable[..., None]) -> Callable[..., None]:
        def wrapper(
            src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None
        ) -> None:
            named = hook.point(kind, hook.full_path(src, src_dir_fd))
            real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
            hook.done(named)

        return wrapper

    def one_path(kind: str, real: Callable[..., None]) -> Callable[..., None]:
        def wrapper(path: Any, *, dir_fd: int | None = None) -> None:
            named = hook.point(kind, hook.full_path(path, dir_fd))
            real(path, dir_fd=dir_fd)
            hook.done(named)

        return wrapper

    def wrap_mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        full = hook.full_path(path, dir_fd)
        named = hook.point("mkdir", full, counted=not os.path.lexists(full))
        real_mkdir(path, mode, dir_fd=dir_fd)
        hook.done(named)

    os.open = wrap_open
    os.write = wrap_write
    os.fsync = wrap_fsync
    os.ftruncate = wrap_ftruncate
    os.fchmod = wrap_fchmod
    os.rename = two_paths("rename", real_rename)
    os.replace = two_paths("replace", real_replace)
    os.unlink = one_path("unlink", real_unlink)
    os.remove = one_path("unlink", real_remove)
    os.mkdir = wrap_mkdir

    # vault's D-Bus client uses the C socket type (_socket.socket) directly: the hook puts a
    # subclass in its place before vault is imported.
    def counted_send(sock: Any, data: Any, send: Any) -> None:
        named = None
        hook.flush_after()
        if sock.family == _socket.AF_UNIX:
            raw = bytes(data)
            for kind, marker in _KEYRING_CALLS.items():
                if marker in raw:
                    named = hook.point(kind, "")
        send()
        if named is not None:
            # The reply is read after this returns: "after" fires when the caller goes on to
            # its next counted call, its next D-Bus message, closes a socket, or exits.
            hook.pending_after = named

    real_socket = _socket.socket

    class HookedSocket(real_socket):  # type: ignore[misc, valid-type]
        def sendall(self, data: Any, *args: Any) -> None:
            counted_send(self, data, lambda: super(HookedSocket, self).sendall(data, *args))

        def close(self) -> None:
            super().close()
            hook.flush_after()

    _socket.socket = HookedSocket  # type: ignore[misc]

    # Anything else (httpx, syslog) uses socket.socket, whose base stays the C type.
    real_sendall = socket.socket.sendall
    real_close = socket.socket.close

    def wrap_sendall(self: socket.socket, data: Any, *args: Any) -> None:
        counted_send(self, data, lambda: real_sendall(self, data, *args))

    def wrap_close(self: socket.socket) -> None:
        real_close(self)
        hook.flush_after()

    setattr(socket.socket, "sendall", wrap_sendall)  # noqa: B010 - mypy: methods are read-only
    setattr(socket.socket, "close", wrap_close)  # noqa: B010

    # The end of the process is the last moment for a pending "after": vault ends with
    # os._exit (no atexit handlers) when nothing is left to finish, else with sys.exit.
    real_exit = os._exit

    def wrap_exit(code: int) -> None:
        hook.flush_after()
        real_exit(code)

    os._exit = wrap_exit  # type: ignore[assignment]
    atexit.register(hook.flush_after)


if _ROOT:
    _install(_Hook(_ROOT))
