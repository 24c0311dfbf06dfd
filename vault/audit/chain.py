"""The tamper-evident audit log.

One JSON object per line, appended under the vault's exclusive lock and fsynced before the
command reports success. Field order is fixed and the MAC is the last field::

    {"v":1,"seq":7,"time":"...","event":"used",...,"fingerprint":"hmac-sha256:...",
     "prev_sha256":"<64 hex>","mac":"<64 hex>"}

Two chains run through the log. ``prev_sha256`` is the keyless one: the SHA-256 of the whole
line before (:func:`line_hash`; 64 zeros for record 1), which anyone can check; the vault's
Ed25519 key signs its head in ``chain_signed`` records (:meth:`AuditLog.append`, and
vault.audit.keyless for the check with the public key alone). Records written before it existed
have no ``prev_sha256``. The MAC is the keyed one:

``mac = HMAC-SHA256(chain_key, previous_mac + "\\n" + line[: line.rfind(',"mac":"')])``, so the
verifier hashes the bytes as they are on disk and never re-serialises JSON. The chain starts at 64
zeros and continues across rotated files (the first record of a new file says where the previous
one ended). The last (seq, mac) written is kept with the vault key (the keyring entry, or the
passphrase backend's key file), so a log truncated after its last record is detected too; and
inside the encrypted vault whenever it is written (every event but a successful use writes it),
so that mark cannot be rolled back by putting back an older key file or keyring entry alone.

The keys: ``chain_key`` and ``fingerprint_key`` are derived from the vault's audit key, which lives
only inside the encrypted vault. A token's fingerprint is a keyed HMAC of the token: an auditor
holding the vault can check whether a given token appears (``vault audit hash``), the log alone
discloses nothing.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

from vault.errors import IntegrityError
from vault.fs.paths import check_private_file, ensure_private_dir, open_private_file
from vault.secret import Secret
from vault.util import mac as _hmac
from vault.util.record import datarecord, field

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from vault.audit.signing import Signer

GENESIS = b"0" * 64
MAC_MARK = b',"mac":"'
PREV_MARK = b',"prev_sha256":"'
SIGNATURE_MARK = b',"signature":"'
SIGN_INTERVAL = 3600  # seconds: an append this long after the last signature signs the head
LINE_END = b'"}'
MAX_FIELD = 512
TAIL_WINDOW = 256 * 1024
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def chain_key(audit_key: bytes) -> bytes:
    return _hmac.digest(audit_key, b"vault audit chain v1")


def chain_mac_function(key: bytes) -> Callable[..., bytes]:
    """``mac(prev, b"\\n", body)``: a record's MAC, the hex HMAC-SHA256 of ``prev + b"\\n" +
    body`` under the chain key (as :func:`seal_line` computes it, as ASCII bytes), for checking
    many records under one key: :func:`vault.util.mac.keyed_hex` on ``hashlib``'s SHA-256."""
    import hashlib  # not on the `vault token` path: only verification imports it

    return _hmac.keyed_hex(key, hashlib.sha256)


@functools.lru_cache(maxsize=4)
def _fingerprint_key(audit_key: bytes) -> bytes:
    return _hmac.digest(audit_key, b"vault token fingerprint v1")


def fingerprint(audit_key: bytes, token: Secret) -> str:
    key = _fingerprint_key(audit_key)
    return "hmac-sha256:" + _hmac.hexdigest(key, token.reveal().encode())[:32]


def now_rfc3339() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


# Values vault itself writes into free-text fields: nothing in them to mask, so `vault token`
# need not import (and compile) the redaction patterns to say "token".
_OWN_WORDS = frozenset(
    ("token", "import", "login", "imported", "device flow login", "refresh", "logout", "prune")
)


MAX_SCOPES_CHARS = 8192  # as vault.login.oauth bounds a server's answer; well inside TAIL_WINDOW


def _bounded_scopes(scopes: tuple[str, ...] | list[str] | None) -> list[str] | None:
    """The scopes for a record, bounded and sanitised: a record longer than the tail window
    would make the log unreadable to the next append (every command refused until `vault
    audit reset`). The bound counts the characters as written (``\\uXXXX`` escapes and all)."""
    if scopes is None:
        return None
    kept: list[str] = []
    used = 0
    for i, scope in enumerate(scopes):
        value = _field(scope)
        assert value is not None
        used += (len(value) if value.isascii() else len(json.dumps(value))) + 4
        if used > MAX_SCOPES_CHARS:
            kept.append(f"...({len(scopes) - i} more not recorded)")
            break
        kept.append(value)
    return kept


def _field(value: object) -> str | None:
    """Any text field of a record, whatever its source (a server, the command line, an
    environment variable such as USER, the host name): at most MAX_FIELD characters, none of
    vault.util.text's unsafe ones. Plain short ASCII (nearly every value) is kept as it is
    without compiling the table's pattern (`vault token` never does)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) <= MAX_FIELD and text.isascii() and text.isprintable():
        return text
    from vault.util.text import clean

    return clean(text, MAX_FIELD)


def _short(value: object) -> object:
    """Free text bound for the log: bounded, controls stripped, secret-shaped words masked
    (a reason can quote a server's error_description)."""
    if value is None or value == "" or value in _OWN_WORDS:
        return value
    return _scrubbed(value if isinstance(value, str) else str(value))


@functools.lru_cache(maxsize=1024)
def _scrubbed(value: str) -> str:
    # Cached: a prune of thousands of tokens gives most of them the same few reasons.
    from vault.util.redact import scrub_text
    from vault.util.text import clean

    # Cleaned again after masking: a mask is never longer than what it hides, but the bound
    # is this function's promise, not redact's.
    return clean(scrub_text(clean(value, MAX_FIELD)), MAX_FIELD)


@functools.cache
def _os_user() -> str:
    """The login name, as getpass.getuser() finds it, without importing getpass."""
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())


def _host() -> str:
    return os.uname().nodename


# The process an agent serves (vault.agent): its events name the client's pid, and the agent's.
SERVED_PID: ContextVar[int | None] = ContextVar("served_pid", default=None)


def make_event(
    kind: str,
    *,
    name: str | None = None,
    provider: str | None = None,
    issuer: str | None = None,
    scopes: tuple[str, ...] | list[str] | None = None,
    outcome: str = "success",
    reason: str | None = None,
    rule: str | None = None,
    source: str | None = None,
    command: str | None = None,
    fingerprint: str | None = None,
    grant: str | None = None,
) -> dict[str, Any]:
    """The fields of one audit event, in the order they are written (seq, time, mac added).
    ``grant`` (login events: ``authorization_code`` or ``device_code``) only when given."""
    client = SERVED_PID.get()
    # Every field bounded and sanitised here, whatever its source: one value too long for
    # the tail window would wedge the log (every later append refused until `audit reset`).
    return {
        "event": _field(kind),
        "name": _field(name),
        "provider": _field(provider),
        "issuer": _field(issuer),
        "scopes": _bounded_scopes(scopes),
        "outcome": _field(outcome),
        "reason": _short(reason),
        "rule": _field(rule),
        "source": _short(source),
        "command": _short(command),
        "user": _field(_os_user()),
        "host": _field(_host()),
        "pid": os.getpid() if client is None else client,
        "fingerprint": _field(fingerprint),
        **({} if grant is None else {"grant": _field(grant)}),
        **({} if client is None else {"agent": os.getpid()}),
    }


def _body(seq: int, when: str, event: dict[str, Any], prev: bytes | None = None) -> bytes:
    """A record's JSON before its MAC; ``prev`` (the SHA-256 of the line before, hex) is its
    last field, ``prev_sha256``, the keyless chain (vault.audit.keyless)."""
    doc = {"v": 1, "seq": seq, "time": when, **event}
    if prev is not None:
        doc["prev_sha256"] = prev.decode()
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()


def line_hash(line: bytes) -> bytes:
    """The keyless chain's hash of a record: the hex SHA-256 of its line (without the newline),
    as the next record's ``prev_sha256`` carries it."""
    return _hmac.sha256(line).hexdigest().encode()


def seal_line(key: bytes, prev_mac: bytes, body: bytes) -> tuple[bytes, bytes]:
    """The full line (with newline) and its MAC, for a body that ends with ``}``."""
    assert body.endswith(b"}")
    mac = _hmac.hexdigest(key, prev_mac + b"\n" + body[:-1]).encode()
    return body[:-1] + MAC_MARK + mac + LINE_END + b"\n", mac


@datarecord
class Tail:
    seq: int
    mac: bytes
    end: int  # offset just after the last complete line
    torn: bytes  # bytes after the last newline (a crash mid-write)
    hash: bytes = GENESIS  # line_hash of the last complete line


def _seq_of(line: bytes) -> int:
    # Lines start {"v":1,"seq":N, — written by us in this order.
    prefix = b'{"v":1,"seq":'
    if not line.startswith(prefix):
        raise ValueError("not an audit record")
    end = line.index(b",", len(prefix))
    return int(line[len(prefix) : end])


def _mac_of(line: bytes) -> bytes:
    idx = line.rfind(MAC_MARK)
    if idx < 0:
        raise ValueError("no mac")
    return line[idx + len(MAC_MARK) : idx + len(MAC_MARK) + 64]


def read_tail(fd: int, size: int) -> Tail | None:
    """The last complete record of an open log (and any torn bytes after it)."""
    if size == 0:
        return None
    start = max(0, size - TAIL_WINDOW)
    data = os.pread(fd, size - start, start)
    last_nl = data.rfind(b"\n")
    torn = data[last_nl + 1 :] if last_nl >= 0 else data
    if last_nl < 0:
        if start == 0:
            return Tail(0, GENESIS, 0, torn)
        raise IntegrityError("the audit log's last record is too long to be one of ours")
    prev_nl = data.rfind(b"\n", 0, last_nl)
    line = data[prev_nl + 1 : last_nl]
    try:
        return Tail(_seq_of(line), _mac_of(line), start + last_nl + 1, torn, line_hash(line))
    except ValueError:
        raise IntegrityError(
            "the audit log's last record is malformed",
            hint="run `vault audit verify` to find what was changed",
        ) from None


@datarecord
class Hwm:
    """The high-water mark kept with the key: the last record written."""

    seq: int = 0
    mac: str = GENESIS.decode()
    at: int = 0  # when it was saved (UNIX seconds), to space out saves after uses
    # When the chain head was last signed (UNIX seconds; 0: not yet), so that deciding whether
    # an append must sign costs nothing (AuditLog.append).
    signed: int = 0

    def dump(self, at: int) -> dict[str, Any]:
        doc: dict[str, Any] = {"seq": self.seq, "mac": self.mac, "at": at}
        if self.signed:
            doc["signed"] = self.signed
        return doc

    @classmethod
    def load(cls, doc: object) -> Hwm:
        if not isinstance(doc, dict):
            return cls()
        seq, mac, at = doc.get("seq"), doc.get("mac"), doc.get("at", 0)
        signed = doc.get("signed", 0)
        if (
            not isinstance(seq, int)
            or not isinstance(mac, str)
            or not isinstance(at, int)
            or not isinstance(signed, int)
        ):
            raise IntegrityError("the audit high-water mark kept with the key is malformed")
        return cls(seq, mac, at, signed)


def _reason(exc: OSError) -> str:
    return "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or type(exc).__name__


# How every failure to write the log ends its message: nothing the command meant to do was done.
# (A change that had to be kept whatever the log does, a provider's answer, says otherwise: see
# vault.store.vault.Store.edit.)
NOT_CARRIED_OUT = "; the operation was not carried out"


def late(event: dict[str, Any], journaled_at: int) -> dict[str, Any]:
    """``event``, kept in the vault because the log could not be written when it happened
    (journaled at ``journaled_at``, UNIX seconds), as it is appended now: its reason says so and
    when it happened; every other field is as it was then (its user, host and pid too)."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(journaled_at))
    return noted(event, f"recorded late: the audit log could not be written at {when}")


def noted(event: dict[str, Any], note: str, *, outcome: str | None = None) -> dict[str, Any]:
    """``event`` with ``note`` put before its reason (bounded and cleaned as every reason is),
    and its outcome replaced when ``outcome`` is given."""
    reason = event.get("reason")
    changed = {**event, "reason": _short(f"{note}; {reason}" if reason else note)}
    if outcome is not None:
        changed["outcome"] = _field(outcome)
    return changed


class AuditLog:
    """The log file at ``path`` and its rotated archives, chained under ``audit_key``.

    With ``signing_key`` (the vault's Ed25519 key, vault.audit.signing) it also signs the
    chain's head: with a ``chain_signed`` record at every rotation (the last record of the file
    that is closed), when :meth:`append` is asked to ``seal``, and at the first append an hour
    (SIGN_INTERVAL) or more after the last signature. ``clock``: UNIX seconds now."""

    def __init__(
        self,
        path: Path,
        audit_key: bytes,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        signing_key: Secret | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.audit_key = audit_key
        self.max_bytes = max_bytes
        self.signing_key = signing_key
        self.clock = clock
        self.warnings: list[str] = []
        self._signer: Signer | None = None

    def archives(self) -> list[Path]:
        prefix = self.path.name + "."
        found = []
        try:
            for entry in os.scandir(self.path.parent):
                suffix = entry.name[len(prefix) :]
                if entry.name.startswith(prefix) and suffix.isdigit():
                    found.append(Path(entry.path))
        except FileNotFoundError:
            return []
        return sorted(found, key=lambda p: int(p.name[len(prefix) :]))

    def append(
        self, events: list[dict[str, Any]], hwm: Hwm, *, seal: bool = False
    ) -> tuple[Hwm, list[dict[str, Any]]]:
        """Append ``events`` (call only under the vault's exclusive lock); returns the new
        high-water mark and the records written (each with ``sha256``, its line's hash, added:
        what a syslog collector keeps of the chain). Raises IntegrityError, and writes
        nothing, if the log does not end where the high-water mark says it should.
        ``seal``: sign the head after them (events may then be empty)."""
        if not events and not (seal and self.signing_key is not None):
            return hwm, []
        ensure_private_dir(self.path.parent)
        check_private_file(self.path, "audit log")
        key = chain_key(self.audit_key)
        fd = self._open()
        try:
            size = os.fstat(fd).st_size
            tail = read_tail(fd, size)
            pending: list[dict[str, Any]] = []
            if tail is not None and tail.torn:
                pending.append(self._set_aside(fd, tail))
                size = tail.end
            head = (tail.seq, tail.mac, tail.hash) if tail else (0, GENESIS, GENESIS)
            if head[0] == 0 and hwm.seq > 0 and not self.archives():
                raise IntegrityError(
                    f"the audit log {self.path} is empty or missing but {hwm.seq} records were "
                    "written; it was deleted or truncated",
                    hint="`vault audit verify` shows what is left; `vault audit reset` starts a "
                    "new log after setting the damaged one aside",
                )
            if head[0] == 0 and hwm.seq > 0:
                head = self._archive_tail()
            last_seq, last_mac, _ = head
            if last_seq < hwm.seq or (last_seq == hwm.seq and last_mac.decode() != hwm.mac):
                raise IntegrityError(
                    f"the audit log {self.path} ends at record {last_seq} but record {hwm.seq} "
                    "was written: it was truncated or altered",
                    hint="run `vault audit verify`; `vault audit reset` sets the log aside and "
                    "starts a new one",
                )
            now = self.clock()
            when = now_rfc3339()
            signed = hwm.signed
            written_records: list[dict[str, Any]] = []
            if size >= self.max_bytes and last_seq > 0:
                if self.signing_key is not None:
                    # The file's head is signed before it is closed: every archive ends anchored.
                    line, head, record = self._signature(key, head, when)
                    self._write(fd, line, size)
                    written_records.append(record)
                    signed = int(now)
                os.close(fd)
                fd = -1
                self._rotate(head[0])
                fd = self._open()
                size = 0
                pending.insert(
                    0,
                    make_event("log_rotated", reason=f"previous file ended at record {head[0]}"),
                )
            chunks = []
            for event in [*pending, *events]:
                seq = head[0] + 1
                line, mac = seal_line(key, head[1], _body(seq, when, event, head[2]))
                chunks.append(line)
                record = {"v": 1, "seq": seq, "time": when, **event}
                record["prev_sha256"] = head[2].decode()
                head = (seq, mac, line_hash(line[:-1]))
                record["sha256"] = head[2].decode()
                written_records.append(record)
            if self.signing_key is not None:
                if seal or (signed and not 0 <= now - signed < SIGN_INTERVAL):
                    line, head, record = self._signature(key, head, when)
                    chunks.append(line)
                    written_records.append(record)
                    signed = int(now)
                elif not signed:
                    signed = int(now)  # the first hour starts with the first record written
            self._write(fd, b"".join(chunks), size)
            return Hwm(head[0], head[1].decode(), signed=signed), written_records
        finally:
            if fd >= 0:
                os.close(fd)

    def _write(self, fd: int, data: bytes, size: int) -> None:
        """``data`` appended and fsynced; on failure the file is cut back to ``size``."""
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            # Leave no partial record behind: cut the file back to where it was.
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                pass
            raise IntegrityError(
                f"cannot write the audit log {self.path}: {_reason(exc)}{NOT_CARRIED_OUT}"
            ) from exc

    def signer(self) -> Signer:
        """The vault's signer (vault.audit.signing), made when first needed."""
        if self._signer is None:
            assert self.signing_key is not None
            from vault.audit.signing import Signer

            self._signer = Signer(self.signing_key)
        return self._signer

    def _signature(
        self, key: bytes, head: tuple[int, bytes, bytes], when: str
    ) -> tuple[bytes, tuple[int, bytes, bytes], dict[str, Any]]:
        """The ``chain_signed`` record that signs ``head`` (seq, MAC, line hash): its line, the
        new head, and the record as written (with ``sha256``)."""
        signer = self.signer()
        seq = head[0] + 1
        event = {
            **make_event("chain_signed"),
            "head_seq": head[0],
            "head_hash": head[2].decode(),
            "key_fingerprint": signer.fingerprint,
        }
        unsigned = _body(seq, when, event, head[2])
        signature = signer.sign(unsigned[:-1])
        body = unsigned[:-1] + SIGNATURE_MARK + signature.encode() + b'"}'
        line, mac = seal_line(key, head[1], body)
        digest = line_hash(line[:-1])
        record = {
            "v": 1,
            "seq": seq,
            "time": when,
            **event,
            "prev_sha256": head[2].decode(),
            "signature": signature,
            "sha256": digest.decode(),
        }
        return line, (seq, mac, digest), record

    def end(self) -> tuple[int, str]:
        """The (seq, MAC) of the last complete record in the log (its rotated archives too, for a
        log that was just rotated), read without writing anything: (0, GENESIS) for none. Raises
        IntegrityError when the log cannot be read or its last record is not one of ours."""
        fd = open_private_file(self.path, "audit log") if os.path.lexists(self.path) else -1
        try:
            tail = read_tail(fd, os.fstat(fd).st_size) if fd >= 0 else None
        finally:
            if fd >= 0:
                os.close(fd)
        if tail is not None and tail.seq > 0:
            return tail.seq, tail.mac.decode()
        if not self.archives():
            return 0, GENESIS.decode()
        seq, mac, _ = self._archive_tail()
        return seq, mac.decode()

    def _open(self) -> int:
        try:
            return os.open(
                self.path,
                os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
        except OSError as exc:
            raise IntegrityError(
                f"cannot open the audit log {self.path}: {exc.strerror}{NOT_CARRIED_OUT}"
            ) from exc

    def _set_aside(self, fd: int, tail: Tail) -> dict[str, Any]:
        aside = self.path.with_name(f"{self.path.name}.torn-{tail.seq}-{int(time.time())}")
        created = cut = False
        try:
            fd2 = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            created = True
            try:
                if os.write(fd2, tail.torn) != len(tail.torn):
                    raise OSError(errno.ENOSPC, "short write")
                os.fsync(fd2)
            finally:
                os.close(fd2)
            cut = True
            os.ftruncate(fd, tail.end)
            os.fsync(fd)
        except OSError as exc:
            if created and not cut:  # the torn bytes are still in the log: drop the copy
                with contextlib.suppress(OSError):
                    os.unlink(aside)
            raise IntegrityError(
                f"cannot set aside the torn last record of the audit log {self.path}: "
                f"{_reason(exc)}{NOT_CARRIED_OUT}"
            ) from exc
        self.warnings.append(
            f"the audit log ended with a torn record ({len(tail.torn)} bytes after record "
            f"{tail.seq}, from a crash); it was set aside in {aside}"
        )
        return make_event(
            "torn_record_set_aside",
            outcome="warning",
            reason=f"{len(tail.torn)} bytes after record {tail.seq} moved to {aside.name}",
        )

    def _rotate(self, last_seq: int) -> None:
        target = self.path.with_name(f"{self.path.name}.{last_seq:012d}")
        try:
            os.rename(self.path, target)
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise IntegrityError(
                f"cannot rotate the audit log {self.path} to {target.name}: "
                f"{_reason(exc)}{NOT_CARRIED_OUT}"
            ) from exc

    def _archive_tail(self) -> tuple[int, bytes, bytes]:
        """(seq, MAC, line hash) of the last record of the newest archive."""
        archives = self.archives()
        fd = open_private_file(archives[-1], file_kind(archives[-1]))
        try:
            tail = read_tail(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        if tail is None:
            return 0, GENESIS, GENESIS
        return tail.seq, tail.mac, tail.hash

    def files(self, *, checked: bool = True) -> list[Path]:
        """The archives, oldest first, then the log. ``checked`` (to read them): each one is
        refused, as the log is, unless it is a private regular file of yours (a FIFO would
        block a read forever, a symlink could point anywhere). Unchecked, for renaming."""
        found = [*self.archives(), *([self.path] if os.path.lexists(self.path) else [])]
        if checked:
            for path in found:
                check_private_file(path, file_kind(path))
        return found


def file_kind(path: Path) -> str:
    """What a file of the log is called in messages: "audit log" or "audit log archive"."""
    return "audit log archive" if path.name.rpartition(".")[2].isdigit() else "audit log"


def open_log_file(path: Path) -> BinaryIO:
    """A file of the log (the log, an archive) opened for reading after the checks of
    vault.fs.paths.open_private_file: never a FIFO, never through a symlink."""
    return os.fdopen(open_private_file(path, file_kind(path)), "rb", buffering=0)


# --- verification ------------------------------------------------------------------------


@datarecord
class Verdict:
    ok: bool
    records: int
    files: int
    problem: str | None = None
    bad_seq: int | None = None
    bad_line: int | None = None
    bad_file: str | None = None
    warnings: list[str] = field(default_factory=list)


def verify(log: AuditLog, hwm: Hwm, *, workers: int | None = None) -> Verdict:
    """Walk the chain over every file. Names the first bad record: edited, deleted, inserted,
    reordered, truncated after the last record (through the high-water mark).

    A large log is first checked in parallel (every record's MAC only depends on the record
    before it, which is in the file); only a log that fails that check is walked again in
    order, to name the first bad record."""
    key = chain_key(log.audit_key)
    files = log.files()
    count = workers if workers is not None else min(os.cpu_count() or 1, 8)
    total = sum(os.path.getsize(path) for path in files)
    in_parallel = count > 1 and total >= PARALLEL_MIN_BYTES
    checked = _walk_parallel(files, key, count) if in_parallel else None
    walked = checked if checked is not None else _walk(files, key)
    if isinstance(walked, Verdict):
        return walked
    records, prev, torn_at = walked
    warnings: list[str] = []
    for path, torn in torn_at:
        if path != log.path:
            return Verdict(
                False, records, len(files), f"{path} ends in a partial record", bad_file=str(path)
            )
        warnings.append(
            f"a torn last line ({len(torn)} bytes) after record {records}: left by "
            "a crash mid-write; the next write sets it aside"
        )
    last = records
    if last < hwm.seq:
        return Verdict(
            False,
            records,
            len(files),
            f"the log ends at record {last} but record {hwm.seq} was written (kept with the "
            "key): records after it were removed (truncated)",
            bad_seq=last + 1,
        )
    if last == hwm.seq and hwm.seq and prev.decode() != hwm.mac:
        return Verdict(
            False,
            records,
            len(files),
            f"record {last} is not the record that was written last",
            bad_seq=last,
        )
    if last > hwm.seq:
        warnings.append(
            f"records {hwm.seq + 1}..{last} come after the high-water mark last saved with the "
            "key (uses within a minute of it, or a crash between the two writes)"
        )
    return Verdict(True, records, len(files), warnings=warnings)


# (records, MAC of the last record, files that end in a torn line) or the first bad record.
_Walked = tuple[int, bytes, list[tuple[Path, bytes]]]

PARALLEL_MIN_BYTES = 32 << 20  # a smaller log is walked in one process (bench/NOTES.md)
RANGE_BYTES = 16 << 20


def _walk(files: list[Path], key: bytes) -> _Walked | Verdict:
    mac_of = chain_mac_function(key)
    prev = GENESIS
    records = 0
    torn_at: list[tuple[Path, bytes]] = []
    for path in files:
        ending = [b""]  # b"" when the file ends with a newline
        for number, line in enumerate(read_lines(path, ending), 1):
            idx = line.rfind(MAC_MARK)
            mac = line[idx + 8 : idx + 72]
            if idx < 0 or line[idx + 72 :] != LINE_END or mac_of(prev, b"\n", line[:idx]) != mac:
                return _bad(
                    path=path,
                    number=number,
                    line=line,
                    expected=records + 1,
                    records=records,
                    files=len(files),
                    warnings=[],
                )
            prev = mac
            records += 1
        if ending[0]:
            torn_at.append((path, ending[0]))
            if path != files[-1]:
                break  # an archive ends mid-record: reported as such
    return records, prev, torn_at


def _check_range(path: str, start: int, end: int, prev: bytes, key: bytes) -> int | None:
    """In a worker: the number of records in ``[start, end)`` of ``path`` (whole lines) if each
    one's MAC holds given the one before it (``prev`` for the first), else None."""
    mac_of = chain_mac_function(key)
    records = 0
    with open_log_file(Path(path)) as fh:
        fh.seek(start)
        remaining = end - start
        rest = b""
        while remaining > 0:
            data = fh.read(min(remaining, 1 << 22))
            if not data:
                return None  # the file shrank under us
            remaining -= len(data)
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            for line in lines:
                idx = line.rfind(MAC_MARK)
                mac = line[idx + 8 : idx + 72]
                if idx < 0 or line[idx + 72 :] != LINE_END:
                    return None
                if mac_of(prev, b"\n", line[:idx]) != mac:
                    return None
                prev = mac
                records += 1
    return None if rest else records


def _walk_parallel(files: list[Path], key: bytes, workers: int) -> _Walked | None:
    """The whole log checked by ``workers`` processes over ranges of whole lines; None when
    any record fails (the caller then walks in order to name it) or the files look odd."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    tasks: list[tuple[str, int, int, bytes, bytes]] = []
    torn_at: list[tuple[Path, bytes]] = []
    prev = GENESIS
    for path in files:
        with open_log_file(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            tail = os.pread(fh.fileno(), min(size, TAIL_WINDOW), size - min(size, TAIL_WINDOW))
            last_nl = tail.rfind(b"\n")
            if last_nl < 0 and size > TAIL_WINDOW:
                return None
            end_of_lines = size - len(tail) + last_nl + 1
            if end_of_lines < size:
                torn_at.append((path, tail[last_nl + 1 :]))
                if path != files[-1]:
                    return None
            start = 0
            while start < end_of_lines:
                cut = min(start + RANGE_BYTES, end_of_lines)
                if cut < end_of_lines:
                    nl = _find_newline(fh.fileno(), cut, end_of_lines)
                    cut = nl + 1
                tasks.append((str(path), start, cut, prev, key))
                # The next range starts after this one's last record: its MAC is the next prev.
                head = os.pread(fh.fileno(), min(cut, 1 << 16), cut - min(cut, 1 << 16))
                line = head[head.rfind(b"\n", 0, len(head) - 1) + 1 : -1]
                try:
                    prev = _mac_of(line)
                except ValueError:
                    return None
                start = cut
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        counts = list(pool.map(_check_range, *zip(*tasks, strict=True))) if tasks else []
    if any(c is None for c in counts):
        return None
    return sum(c for c in counts if c is not None), prev, torn_at


def _find_newline(fd: int, offset: int, limit: int) -> int:
    while offset < limit:
        chunk = os.pread(fd, min(1 << 16, limit - offset), offset)
        at = chunk.find(b"\n")
        if at >= 0:
            return offset + at
        offset += len(chunk)
    return limit - 1


def read_lines(path: Path, ending: list[bytes], block: int = 1 << 22) -> Iterator[bytes]:
    """The complete lines of a file, read a block at a time (a log of years is not read into
    memory whole); what follows the last newline is left in ``ending[0]``."""
    rest = b""
    with open_log_file(path) as fh:
        while data := fh.read(block):
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            yield from lines
    ending[0] = rest


def _bad(
    *,
    path: Path,
    number: int,
    line: bytes,
    expected: int,
    records: int,
    files: int,
    warnings: list[str],
) -> Verdict:
    try:
        seq: int | None = _seq_of(line)
    except ValueError:
        seq = None
    if seq is None:
        what = "is not an audit record (inserted or damaged)"
    elif seq == expected:
        what = "was altered (its MAC does not match), or a record before it was replaced"
    elif seq > expected:
        what = f"follows record {expected - 1}: records {expected}..{seq - 1} were deleted"
    else:
        what = f"is out of order (expected record {expected}): records were reordered or inserted"
    return Verdict(
        False,
        records,
        files,
        f"{path}:{number}: record {seq if seq is not None else '?'} {what}",
        bad_seq=seq,
        bad_line=number,
        bad_file=str(path),
        warnings=warnings,
    )
