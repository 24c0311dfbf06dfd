"""Verifying the audit log with the vault's public key alone: what an auditor runs elsewhere.

Every record written since signing began carries ``prev_sha256``, the SHA-256 of the whole line
before it (vault.audit.chain.line_hash), so the log is a hash chain anyone can recompute; and
``chain_signed`` records carry an Ed25519 signature (vault.audit.signing) over their own line up
to the signature, which names the head they sign (``head_seq``, ``head_hash``, equal to the
record's own ``prev_sha256``). A record before a valid signature cannot be edited, removed,
inserted or reordered without breaking either a hash link or that signature: it is *anchored*.
A record after the last signature is not: anyone can rewrite it and recompute the hashes, and a
log truncated after the last signature cannot be told from one that ended there.

:func:`verify_signed` reads the files given, in order, a block at a time (a log of gigabytes in
bounded memory, in one linear pass), and never needs the vault, its key, a keyring or a config.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vault.audit.chain import (
    GENESIS,
    PREV_MARK,
    SIGNATURE_MARK,
    TAIL_WINDOW,
    _seq_of,
    line_hash,
)
from vault.audit.signing import PublicKey
from vault.errors import UsageError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

MAX_LINE = TAIL_WINDOW  # a longer line was never written by vault (AuditLog.append refuses)
_SIGNED_EVENT = b'"event":"chain_signed"'
_HEX = frozenset(b"0123456789abcdef")


@dataclass
class SignedVerdict:
    """What the keyless check found. ``anchored_seq``: the last record covered by a valid
    signature of the key (the signature record itself); ``unanchored``: the first and last seq
    after it, if any."""

    ok: bool
    key_fingerprint: str
    files: int = 0
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_sha256: str | None = None  # of the last complete record read
    chain_start: int | None = None  # the first record carrying prev_sha256
    signatures: int = 0
    anchored_seq: int | None = None
    anchored_time: str | None = None
    unanchored: tuple[int, int] | None = None
    problem: str | None = None
    bad_seq: int | None = None
    bad_file: str | None = None
    bad_line: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "key_fingerprint": self.key_fingerprint,
            "files": self.files,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_sha256": self.head_sha256,
            "chain_start": self.chain_start,
            "signatures": self.signatures,
            "anchored_seq": self.anchored_seq,
            "anchored_time": self.anchored_time,
            "unanchored": list(self.unanchored) if self.unanchored else None,
            "problem": self.problem,
            "bad_seq": self.bad_seq,
            "bad_file": self.bad_file,
            "bad_line": self.bad_line,
            "warnings": self.warnings,
        }


class _Bad(Exception):
    def __init__(self, problem: str, seq: int | None, where: tuple[str, int] | None) -> None:
        super().__init__(problem)
        self.problem, self.seq, self.where = problem, seq, where


def open_given(path: Path) -> int:
    """A log file named on the command line, opened to read: a regular file (never a FIFO
    or a device, which could block or never end), wherever it is and whoever owns it (an
    auditor's copy). Raises UsageError naming it otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{path} is not a regular file")
    return fd


def _lines(fd: int, ending: list[bytes], block: int = 1 << 22) -> Iterator[bytes]:
    """The complete lines of an open file, a block at a time; none longer than MAX_LINE (a
    hostile file without newlines is not read into memory). The bytes after the last newline
    are left in ``ending[0]``."""
    rest = b""
    with os.fdopen(fd, "rb", buffering=0) as fh:
        while data := fh.read(block):
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            yield from lines
            if len(rest) > MAX_LINE:
                ending[0] = rest
                raise _Bad("a line is too long to be an audit record", None, None)
    ending[0] = rest


def _prev_of(line: bytes) -> bytes | None:
    """The ``prev_sha256`` a line carries, or None. JSON escapes every quote inside a value,
    so the field's name appears unescaped only as a name."""
    idx = line.rfind(PREV_MARK)
    if idx < 0:
        return None
    value = line[idx + len(PREV_MARK) : idx + len(PREV_MARK) + 65]
    if len(value) != 65 or value[64:] != b'"' or not _HEX.issuperset(value[:64]):
        return None
    return value[:64]


class _Walker:
    """The state of one pass over the files: the hash link, the seq, the last anchor."""

    def __init__(self, key: PublicKey, verdict: SignedVerdict) -> None:
        self.key = key
        self.verdict = verdict
        self.prev_hash: bytes | None = None
        self.prev_seq: int | None = None
        self.prev_where: tuple[str, int] | None = None
        self.chain_seen = False  # a record with prev_sha256 was read (in this chain)
        self.unanchored_from: int | None = None  # the first record after the last signature

    def file(self, lines: Iterator[bytes], path: str) -> int:
        """Every line of one file, in order; returns how many were read. A record as nearly
        every one is (its hash link and its seq as expected, not a signature) is checked here
        inline, in one pass a gigabyte at a time; any other goes through :meth:`line`."""
        v = self.verdict
        mark, skip = PREV_MARK, len(PREV_MARK)
        new = hashlib.sha256  # OpenSSL's (SHA extensions where the CPU has them)
        number = 0
        for number, line in enumerate(lines, 1):
            prev = self.prev_hash
            if self.chain_seen and prev is not None and len(line) <= MAX_LINE:
                at = line.rfind(mark) + skip
                if (
                    at >= skip
                    and line[at : at + 64] == prev
                    and line[at + 64 : at + 65] == b'"'
                    and _SIGNED_EVENT not in line
                    and line.startswith(b'{"v":1,"seq":')
                ):
                    end = line.find(b",", 13)
                    digits = line[13:end]
                    if digits.isdigit() and int(digits) == (self.prev_seq or 0) + 1:
                        seq = int(digits)
                        self.prev_hash = new(line).hexdigest().encode()
                        self.prev_seq = seq
                        self.prev_where = (path, number)
                        v.records += 1
                        v.last_seq = seq
                        if self.unanchored_from is None:
                            self.unanchored_from = seq
                        continue
            self.line(line, (path, number))
        return number

    def line(self, line: bytes, where: tuple[str, int]) -> None:
        v = self.verdict
        if len(line) > MAX_LINE:
            raise _Bad(f"{_at(where)}: a line is too long to be an audit record", None, where)
        try:
            seq = _seq_of(line)
        except ValueError:
            raise _Bad(
                f"{_at(where)}: not an audit record (inserted or damaged)", None, where
            ) from None
        prev = _prev_of(line)
        if prev is None:
            if self.chain_seen:
                raise _Bad(
                    f"{_at(where)}: record {seq} carries no chain hash (prev_sha256): it was "
                    "altered or inserted",
                    seq,
                    where,
                )
        elif not self.chain_seen:
            self._start(seq, prev, where)
        elif prev == GENESIS and seq == 1:
            self._restart(where)
        else:
            self._link(seq, prev, where)
        signed = _SIGNED_EVENT in line and self._signature(line, seq, prev, where)
        if v.first_seq is None:
            v.first_seq = seq
        v.records += 1
        v.last_seq = seq
        self.prev_hash, self.prev_seq, self.prev_where = line_hash(line), seq, where
        if signed:
            self.unanchored_from = None
        elif self.unanchored_from is None:
            self.unanchored_from = seq

    def _start(self, seq: int, prev: bytes, where: tuple[str, int]) -> None:
        """The first record carrying prev_sha256: the keyless chain starts here."""
        self.chain_seen = True
        self.verdict.chain_start = seq
        if self.prev_hash is not None:  # after records written before the keyless chain
            self._link(seq, prev, where)
            self.verdict.warnings.append(
                f"records {self.verdict.first_seq}..{seq - 1} were written before the keyless "
                "chain existed: only `vault audit verify`, with the vault, checks them"
            )
        elif seq == 1 and prev != GENESIS:
            raise _Bad(
                f"{_at(where)}: record 1 does not start a chain (its prev_sha256 is not zero)",
                seq,
                where,
            )
        elif seq != 1:
            self.verdict.warnings.append(
                f"the first file given starts at record {seq}: records before it were not "
                "given and are not checked"
            )

    def _restart(self, where: tuple[str, int]) -> None:
        """Record 1 of a new chain (`vault audit reset`, or a new vault) after an old one."""
        v = self.verdict
        if self.unanchored_from is not None and v.last_seq is not None:
            v.warnings.append(
                f"{_records(self.unanchored_from, v.last_seq)} of the chain before {_at(where)} "
                "not anchored by a signature"
            )
        v.warnings.append(f"a new chain starts at {_at(where)} (audit reset, or a new vault)")
        self.unanchored_from = None
        self.prev_seq = 0

    def _link(self, seq: int, prev: bytes, where: tuple[str, int]) -> None:
        expected = (self.prev_seq or 0) + 1
        if prev != self.prev_hash:
            if seq > expected:
                what = f"follows record {expected - 1}: records {expected}..{seq - 1} were deleted"
            elif seq < expected:
                what = (
                    f"is out of order (expected record {expected}): records were reordered or "
                    "inserted"
                )
            else:
                assert self.prev_where is not None
                raise _Bad(
                    f"{_at(self.prev_where)}: record {seq - 1} was altered or replaced (record "
                    f"{seq}, next, does not carry its hash; or record {seq}'s prev_sha256 was "
                    "altered)",
                    seq - 1,
                    self.prev_where,
                )
            raise _Bad(f"{_at(where)}: record {seq} {what}", seq, where)
        if seq != expected:
            raise _Bad(
                f"{_at(where)}: record {seq} follows record {expected - 1}: its number was altered",
                seq,
                where,
            )

    def _signature(self, line: bytes, seq: int, prev: bytes | None, where: tuple[str, int]) -> bool:
        """Checks a record that says it is a signature; True (it anchors) or raises _Bad."""

        def bad(what: str) -> _Bad:
            return _Bad(f"{_at(where)}: the signature record {seq} {what}", seq, where)

        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):
            raise bad("is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("event") != "chain_signed":
            raise bad("is malformed")
        idx = line.rfind(SIGNATURE_MARK)
        after = line[idx + len(SIGNATURE_MARK) :]
        signature = doc.get("signature")
        if (
            idx < 0
            or prev is None
            or not isinstance(signature, str)
            or not _signed_to_the_end(after, signature)
        ):
            raise bad("is malformed (altered)")
        if doc.get("head_seq") != seq - 1 or doc.get("head_hash") != prev.decode():
            raise bad("does not sign the record before it (altered or moved)")
        fingerprint = doc.get("key_fingerprint")
        if fingerprint != self.key.fingerprint:
            raise bad(
                f"is signed by another key ({_short(fingerprint)}), not {self.key.fingerprint}"
            )
        if not self.key.verifies(signature, line[:idx]):
            raise bad("does not verify with the key: it was altered or forged")
        v = self.verdict
        v.signatures += 1
        v.anchored_seq = seq
        v.anchored_time = doc.get("time") if isinstance(doc.get("time"), str) else None
        return True


def _signed_to_the_end(after: bytes, signature: str) -> bool:
    """Whether all that follows the signature record's signed part is its signature and its
    MAC: ``SIG","mac":"<64 hex>"}``; nothing unsigned is let in after it."""
    head = signature.encode() + b'","mac":"'
    mac = after[len(head) : -2]
    return (
        after.startswith(head)
        and after.endswith(b'"}')
        and len(mac) == 64
        and (_HEX.issuperset(mac))
    )


def _short(value: object) -> str:
    from vault.util.text import clean

    return clean(value if isinstance(value, str) else repr(value), 80)


def _records(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}..{last} are"


def _at(where: tuple[str, int]) -> str:
    return f"{where[0]}:{where[1]}"


def verify_signed(paths: list[Path], key: PublicKey, *, given: bool = True) -> SignedVerdict:
    """Check the keyless chain and every signature of ``paths`` (oldest first) against
    ``key``. ``given``: files named by the auditor (opened by :func:`open_given`); else this
    vault's own files (vault.audit.chain.open_log_file's checks). The verdict fails (``ok``
    False, ``problem`` naming the first bad record) on a broken link, a record without its
    hash after the chain started, a signature that does not verify or is another key's, a
    partial record anywhere but at the very end, or when no record is anchored at all."""
    from vault.audit.chain import file_kind
    from vault.fs.paths import open_private_file

    verdict = SignedVerdict(ok=False, key_fingerprint=key.fingerprint, files=len(paths))
    walker = _Walker(key, verdict)
    try:
        for index, path in enumerate(paths):
            fd = open_given(path) if given else open_private_file(path, file_kind(path))
            ending = [b""]
            number = 0
            try:
                number = walker.file(_lines(fd, ending), str(path))
            except _Bad as bad:
                if bad.where is None:  # a line too long, at the one after the last read
                    read = walker.prev_where
                    bad.where = (str(path), read[1] + 1 if read and read[0] == str(path) else 1)
                    bad.problem = f"{_at(bad.where)}: {bad.problem}"
                raise
            if ending[0]:
                where = (str(path), number + 1)
                if index != len(paths) - 1:
                    raise _Bad(f"{_at(where)}: the file ends in a partial record", None, where)
                verdict.warnings.append(
                    f"{_at(where)}: a partial last record ({len(ending[0])} bytes, a crash "
                    "mid-write) is not counted"
                )
    except _Bad as bad:
        verdict.problem = bad.problem
        verdict.bad_seq = bad.seq
        verdict.bad_file, verdict.bad_line = bad.where if bad.where else (None, None)
        return verdict
    if walker.prev_hash is not None:
        verdict.head_sha256 = walker.prev_hash.decode()
    if walker.unanchored_from is not None and verdict.last_seq is not None:
        verdict.unanchored = (walker.unanchored_from, verdict.last_seq)
    if verdict.records == 0:
        verdict.problem = "the files hold no audit records"
        return verdict
    if verdict.chain_start is None:
        verdict.problem = (
            "no record carries a chain hash: the log was written before the keyless chain "
            "existed (only `vault audit verify`, with the vault, can check it)"
        )
        return verdict
    if verdict.signatures == 0:
        verdict.problem = (
            f"no record is signed by {key.fingerprint}: nothing shows this log is that "
            "vault's (`vault audit seal` signs the head now)"
        )
        return verdict
    if verdict.unanchored is not None:
        first, last = verdict.unanchored
        verdict.warnings.append(
            f"{_records(first, last)} after the last signature (record {verdict.anchored_seq}) "
            f"and not anchored: an edit or a truncation after record {verdict.anchored_seq} "
            "cannot be told from a log that ended there"
        )
    verdict.ok = True
    return verdict
