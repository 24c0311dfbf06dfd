"""The audit chain in process: the MAC of every record (against the standard library's HMAC),
sequence numbers, the high-water mark, torn records, rotation, and `verify` naming the first
edited, deleted, reordered or inserted record; the parallel check agreeing with the serial one."""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.audit import chain
from vault.audit.chain import GENESIS, AuditLog, Hwm, Tail, Verdict
from vault.errors import IntegrityError
from vault.secret import Secret

AUDIT_KEY = bytes(range(32))
KEY = chain.chain_key(AUDIT_KEY)


def ref_mac(key: bytes, prev: bytes, body: bytes) -> bytes:
    return hmac.new(key, prev + b"\n" + body, hashlib.sha256).hexdigest().encode()


@pytest.fixture(autouse=True)
def _private_files() -> Iterator[None]:
    """Files the tests write are 0600, as the log's readers require."""
    old = os.umask(0o077)
    yield
    os.umask(old)


@pytest.fixture(autouse=True)
def _fixed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain, "_os_user", lambda: "alice")
    monkeypatch.setattr(chain, "now_rfc3339", lambda: "2026-01-02T03:04:05.678Z")


def new_log(tmp_path: Path, **kw: Any) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "audit.jsonl", AUDIT_KEY, **kw)


def events(*kinds: str) -> list[dict[str, Any]]:
    return [chain.make_event(kind, name=f"n{i}") for i, kind in enumerate(kinds)]


def write(log: AuditLog, count: int, hwm: Hwm | None = None) -> Hwm:
    new, _ = log.append(events(*["used"] * count), hwm or Hwm())
    return new


# --- keys and MACs ---------------------------------------------------------------------


def test_keys_are_hmacs_of_the_audit_key() -> None:
    assert hmac.new(AUDIT_KEY, b"vault audit chain v1", hashlib.sha256).digest() == KEY
    fp_key = hmac.new(AUDIT_KEY, b"vault token fingerprint v1", hashlib.sha256).digest()
    expected = hmac.new(fp_key, b"ghp_token", hashlib.sha256).hexdigest()[:32]
    assert chain.fingerprint(AUDIT_KEY, Secret("ghp_token")) == "hmac-sha256:" + expected
    assert chain.fingerprint(b"other", Secret("ghp_token")) != "hmac-sha256:" + expected


@given(key=st.binary(max_size=150), prev=st.binary(max_size=80), body=st.binary(max_size=300))
def test_chain_mac_function_is_hmac_sha256(key: bytes, prev: bytes, body: bytes) -> None:
    assert chain.chain_mac_function(key)(prev, b"\n", body) == ref_mac(key, prev, body)


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128])
def test_chain_mac_function_key_sizes(size: int) -> None:
    key = bytes((i * 7) % 256 for i in range(size))
    mac = chain.chain_mac_function(key)
    assert mac(GENESIS, b"\n", b"x") == ref_mac(key, GENESIS, b"x")
    assert mac(b"p", b"\n", b"y") == ref_mac(key, b"p", b"y")  # the precomputed states are reused


def test_seal_line() -> None:
    body = b'{"v":1,"seq":1,"x":2}'
    line, mac = chain.seal_line(KEY, GENESIS, body)
    assert mac == ref_mac(KEY, GENESIS, b'{"v":1,"seq":1,"x":2')
    assert line == b'{"v":1,"seq":1,"x":2,"mac":"' + mac + b'"}\n'
    assert chain._mac_of(line[:-1]) == mac
    assert chain._seq_of(line[:-1]) == 1


def test_now_rfc3339(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0456)
    assert chain.now_rfc3339() == "2023-11-14T22:13:20.045Z"
    monkeypatch.setattr(time, "time", lambda: 1_700_000_061.9999)
    assert chain.now_rfc3339() == "2023-11-14T22:14:21.999Z"


# --- events ----------------------------------------------------------------------------


def test_make_event_fields_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    event = chain.make_event(
        "used",
        name="gh",
        provider="github",
        issuer="https://" + "i" * 600,
        scopes=("repo", "gist"),
        outcome="denied",
        reason="too\x1bold",
        rule="max_token_age",
        source="p.yaml:2",
        command="vault token gh",
        fingerprint="hmac-sha256:ab",
    )
    assert list(event.items()) == [
        ("event", "used"),
        ("name", "gh"),
        ("provider", "github"),
        ("issuer", ("https://" + "i" * 600)[:511] + "…"),
        ("scopes", ["repo", "gist"]),
        ("outcome", "denied"),
        ("reason", "tooold"),
        ("rule", "max_token_age"),
        ("source", "p.yaml:2"),
        ("command", "vault token gh"),
        ("user", "alice"),
        ("host", os.uname().nodename),
        ("pid", os.getpid()),
        ("fingerprint", "hmac-sha256:ab"),
    ]
    bare = chain.make_event("login")
    assert bare == {
        "event": "login",
        "name": None,
        "provider": None,
        "issuer": None,
        "scopes": None,
        "outcome": "success",
        "reason": None,
        "rule": None,
        "source": None,
        "command": None,
        "user": "alice",
        "host": os.uname().nodename,
        "pid": os.getpid(),
        "fingerprint": None,
    }


def test_free_text_is_bounded_and_scrubbed() -> None:
    assert chain._short(None) is None
    assert chain._short("") == ""
    assert chain._short(5) == "5"
    assert chain._short("token") == "token"
    assert chain._short("a\x07b") == "ab"
    long = chain._short("x" * 600)
    assert long == "x" * 511 + "…"
    masked = chain._short("error: ghp_" + "A" * 36)
    assert isinstance(masked, str)
    assert "ghp_" + "A" * 36 not in masked


def test_scopes_are_bounded_exactly() -> None:
    assert chain._bounded_scopes(None) is None
    assert chain._bounded_scopes([]) == []
    fits = ["abcd"] * 1024  # 1024 * (4 + 4) == 8192: exactly the bound
    assert chain._bounded_scopes(fits) == fits
    over = ["abcd"] * 1026
    assert chain._bounded_scopes(over) == ["abcd"] * 1024 + ["...(2 more not recorded)"]
    assert chain._bounded_scopes(("a" * 9000, "b")) == ["a" * 511 + "…", "b"]  # each cut first


def test_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(var, raising=False)
    import pwd

    chain._os_user.cache_clear()
    try:
        assert chain._os_user() == pwd.getpwuid(os.getuid()).pw_name
        chain._os_user.cache_clear()
        monkeypatch.setenv("USERNAME", "u4")
        assert chain._os_user() == "u4"
        chain._os_user.cache_clear()
        monkeypatch.setenv("LNAME", "u3")
        assert chain._os_user() == "u3"
        chain._os_user.cache_clear()
        monkeypatch.setenv("USER", "u2")
        assert chain._os_user() == "u2"
        chain._os_user.cache_clear()
        monkeypatch.setenv("LOGNAME", "")
        assert chain._os_user() == "u2"
        chain._os_user.cache_clear()
        monkeypatch.setenv("LOGNAME", "u1")
        assert chain._os_user() == "u1"
        chain._os_user.cache_clear()

        def no_user(uid: int) -> object:
            raise KeyError(uid)

        for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
            monkeypatch.delenv(var)
        monkeypatch.setattr(pwd, "getpwuid", no_user)
        assert chain._os_user() == str(os.getuid())
    finally:
        chain._os_user.cache_clear()


def test_body_is_compact_json_in_order() -> None:
    assert chain._body(3, "T", {"event": "x", "é": None}) == (
        b'{"v":1,"seq":3,"time":"T","event":"x","\\u00e9":null}'
    )


# --- parsing records and tails ---------------------------------------------------------


def test_seq_and_mac_of_refuse_other_lines() -> None:
    with pytest.raises(ValueError, match="not an audit record"):
        chain._seq_of(b'{"v":2,"seq":1,')
    with pytest.raises(ValueError, match="no mac"):
        chain._mac_of(b'{"v":1,"seq":1}')
    assert chain._seq_of(b'{"v":1,"seq":12345,"time":1}') == 12345
    assert chain._mac_of(b'x,"mac":"' + b"a" * 70) == b"a" * 64
    assert chain._mac_of(b',"mac":"1,"mac":"' + b"b" * 64) == b"b" * 64  # the last one


def tail_of(path: Path) -> Tail | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return chain.read_tail(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def test_read_tail(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 3)
    data = log.path.read_bytes()
    last = data.splitlines()[-1]
    assert tail_of(log.path) == Tail(3, hwm.mac.encode(), len(data), b"", chain.line_hash(last))
    with log.path.open("ab") as fh:
        fh.write(b'{"v":1,"seq":4,"ti')
    assert tail_of(log.path) == Tail(
        3, hwm.mac.encode(), len(data), b'{"v":1,"seq":4,"ti', chain.line_hash(last)
    )
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert tail_of(empty) is None
    partial = tmp_path / "partial"
    partial.write_bytes(b'{"v":1,"se')
    assert tail_of(partial) == Tail(0, GENESIS, 0, b'{"v":1,"se')
    one = tmp_path / "one"
    one.write_bytes(data.split(b"\n")[0] + b"\n")
    first = data.split(b"\n")[0]
    assert tail_of(one) == Tail(
        1, chain._mac_of(first), len(first) + 1, b"", chain.line_hash(first)
    )


def test_read_tail_refusals(tmp_path: Path) -> None:
    huge = tmp_path / "huge"
    huge.write_bytes(b"\n" + b"x" * chain.TAIL_WINDOW)
    with pytest.raises(IntegrityError) as info:
        tail_of(huge)
    assert str(info.value) == "the audit log's last record is too long to be one of ours"
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * (chain.TAIL_WINDOW - 1) + b"\n")
    with pytest.raises(IntegrityError) as info:
        tail_of(exact)
    assert str(info.value) == "the audit log's last record is malformed"
    assert info.value.hint == "run `vault audit verify` to find what was changed"
    for bad in (b"garbage\n", b'{"v":1,"seq":1}\n', b'{"v":1,"seq":x,"mac":"a"}\n'):
        f = tmp_path / "bad"
        f.write_bytes(b'{"v":1,"seq":1,"mac":"' + b"0" * 64 + b'"}\n' + bad)
        with pytest.raises(IntegrityError, match="last record is malformed"):
            tail_of(f)


def test_read_tail_reads_only_the_window(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 1)
    one = log.path.read_bytes()
    big = tmp_path / "big"
    big.write_bytes(b"y" * (2 * chain.TAIL_WINDOW) + b"\n" + one)
    assert tail_of(big) == Tail(
        1, hwm.mac.encode(), big.stat().st_size, b"", chain.line_hash(one[:-1])
    )


# --- the high-water mark ---------------------------------------------------------------


def test_hwm() -> None:
    assert Hwm().dump(5) == {"seq": 0, "mac": "0" * 64, "at": 5}
    assert Hwm(3, "ab", 9).dump(7) == {"seq": 3, "mac": "ab", "at": 7}
    assert Hwm.load(None) == Hwm(0, "0" * 64, 0)
    assert Hwm.load({"seq": 3, "mac": "ab"}) == Hwm(3, "ab", 0)
    assert Hwm.load({"seq": 3, "mac": "ab", "at": 9}) == Hwm(3, "ab", 9)
    for bad in (
        {"mac": "ab"},
        {"seq": 1},
        {"seq": "1", "mac": "ab"},
        {"seq": 1, "mac": 2},
        {"seq": 1, "mac": "ab", "at": "x"},
        {"seq": 1, "mac": "ab", "at": None},
    ):
        with pytest.raises(IntegrityError) as info:
            Hwm.load(bad)
        assert str(info.value) == "the audit high-water mark kept with the key is malformed"


def test_reason() -> None:
    assert chain._reason(OSError(errno.ENOSPC, "No space left on device")) == "the disk is full"
    assert chain._reason(OSError(errno.EIO, "I/O error")) == "I/O error"
    assert chain._reason(PermissionError()) == "PermissionError"


# --- appending -------------------------------------------------------------------------


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_append_chains_records(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    assert log.append([], Hwm(7, "x")) == (Hwm(7, "x"), [])
    assert not log.path.exists()
    hwm, written = log.append(events("login", "used"), Hwm())
    assert log.path.stat().st_mode & 0o777 == 0o600
    assert log.path.parent.stat().st_mode & 0o777 == 0o700
    recs = lines(log.path)
    assert len(recs) == 2
    prev = GENESIS
    for seq, (line, record) in enumerate(zip(recs, written, strict=True), 1):
        idx = line.rfind(chain.MAC_MARK)
        assert line[idx + 8 : idx + 72] == ref_mac(KEY, prev, line[:idx])
        assert line.endswith(b'"}')
        prev = line[idx + 8 : idx + 72]
        doc = json.loads(line)
        assert doc["seq"] == seq
        assert doc["time"] == "2026-01-02T03:04:05.678Z"
        # As written, plus the line's own keyless hash (what a syslog collector keeps).
        assert {**doc, "sha256": chain.line_hash(line).decode()} == {**record, "mac": doc["mac"]}
        assert list(record)[:3] == ["v", "seq", "time"]
        assert list(record)[-2:] == ["prev_sha256", "sha256"]
    assert written[0]["event"] == "login"
    assert written[1]["event"] == "used"
    assert hwm == Hwm(2, prev.decode())
    hwm2, written2 = log.append(events("refresh"), hwm)
    assert [r["seq"] for r in written2] == [3]
    assert hwm2.seq == 3
    third = lines(log.path)[2]
    assert chain._mac_of(third) == ref_mac(KEY, prev, third[: third.rfind(chain.MAC_MARK)])
    assert chain.verify(log, hwm2, workers=1) == Verdict(True, 3, 1)


def test_append_refuses_a_log_that_does_not_end_at_the_hwm(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 3)
    size = log.path.stat().st_size
    with pytest.raises(IntegrityError) as info:
        log.append(events("used"), Hwm(4, hwm.mac))
    assert str(info.value) == (
        f"the audit log {log.path} ends at record 3 but record 4 was written: it was truncated "
        "or altered"
    )
    assert info.value.hint == (
        "run `vault audit verify`; `vault audit reset` sets the log aside and starts a new one"
    )
    with pytest.raises(IntegrityError, match="ends at record 3 but record 3 was written"):
        log.append(events("used"), Hwm(3, "f" * 64))
    assert log.path.stat().st_size == size  # nothing written
    # a high-water mark behind the log is fine (saved lazily)
    assert log.append(events("used"), Hwm(2, "whatever"))[0].seq == 4
    log.path.write_bytes(b"")
    with pytest.raises(IntegrityError) as info:
        log.append(events("used"), Hwm(4, "x"))
    assert str(info.value) == (
        f"the audit log {log.path} is empty or missing but 4 records were written; it was "
        "deleted or truncated"
    )
    assert info.value.hint == (
        "`vault audit verify` shows what is left; `vault audit reset` starts a new log after "
        "setting the damaged one aside"
    )
    log.path.unlink()
    with pytest.raises(IntegrityError, match="is empty or missing but 1 records were written"):
        log.append(events("used"), Hwm(1, "x"))
    assert log.append(events("used"), Hwm())[0].seq == 1


def test_append_sets_a_torn_record_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 2)
    with log.path.open("ab") as fh:
        fh.write(b'{"v":1,"seq":3,"tim')
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.5)
    hwm, written = log.append(events("used"), hwm)
    aside = log.path.with_name("audit.jsonl.torn-2-1700000000")
    assert aside.read_bytes() == b'{"v":1,"seq":3,"tim'
    assert aside.stat().st_mode & 0o777 == 0o600
    assert [r["event"] for r in written] == ["torn_record_set_aside", "used"]
    assert written[0]["outcome"] == "warning"
    assert written[0]["reason"] == (
        "19 bytes after record 2 moved to audit.jsonl.torn-2-1700000000"
    )
    assert log.warnings == [
        "the audit log ended with a torn record (19 bytes after record 2, from a crash); it was "
        f"set aside in {aside}"
    ]
    assert hwm.seq == 4
    assert chain.verify(log, hwm, workers=1) == Verdict(True, 4, 1)
    assert log.archives() == []


def test_set_aside_failure_keeps_the_log_and_drops_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 1)
    with log.path.open("ab") as fh:
        fh.write(b"torn")
    before = log.path.read_bytes()
    real_write = os.write

    def short(fd: int, data: bytes) -> int:
        if data == b"torn":
            return 2
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", short)
    with pytest.raises(IntegrityError) as info:
        log.append(events("used"), hwm)
    assert str(info.value) == (
        f"cannot set aside the torn last record of the audit log {log.path}: the disk is full; "
        "the operation was not carried out"
    )
    assert log.path.read_bytes() == before
    assert [p.name for p in log.path.parent.iterdir()] == ["audit.jsonl"]
    monkeypatch.setattr(os, "write", real_write)
    real_ftruncate = os.ftruncate

    def no_truncate(fd: int, size: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(IntegrityError, match=r"torn last record .*: I/O error; the operation"):
        log.append(events("used"), hwm)
    monkeypatch.setattr(os, "ftruncate", real_ftruncate)
    kept = [p.name for p in log.path.parent.iterdir() if "torn" in p.name]
    assert len(kept) == 1  # the log was not cut: the copy is kept
    assert log.path.read_bytes() == before


def test_failed_write_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 2)
    before = log.path.read_bytes()
    real_write = os.write

    def half(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(IntegrityError) as info:
        log.append(events("used", "used"), hwm)
    assert str(info.value) == (
        f"cannot write the audit log {log.path}: the disk is full; the operation was not "
        "carried out"
    )
    assert log.path.read_bytes() == before

    def eio(fd: int, data: bytes) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", eio)
    with pytest.raises(IntegrityError, match=r": I/O error; the operation was not carried out"):
        log.append(events("used"), hwm)
    monkeypatch.setattr(os, "write", real_write)
    assert log.path.read_bytes() == before
    assert log.append(events("used"), hwm)[0].seq == 3


def test_open_failure(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.path.parent.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    log.path.symlink_to(target)
    with pytest.raises(IntegrityError, match="it is a symlink"):
        log.append(events("used"), Hwm())
    with pytest.raises(IntegrityError) as info:
        log._open()
    assert str(info.value) == (
        f"cannot open the audit log {log.path}: Too many levels of symbolic links; the "
        "operation was not carried out"
    )


def test_rotation(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_bytes=1)
    hwm = write(log, 2)
    assert log.archives() == []
    hwm, written = log.append(events("used"), hwm)
    archive = log.path.with_name("audit.jsonl.000000000002")
    assert log.archives() == [archive]
    assert len(lines(archive)) == 2
    assert [r["event"] for r in written] == ["log_rotated", "used"]
    assert written[0]["reason"] == "previous file ended at record 2"
    assert [r["seq"] for r in written] == [3, 4]
    assert hwm.seq == 4
    assert log.files() == [archive, log.path]
    assert chain.verify(log, hwm, workers=1) == Verdict(True, 4, 2)
    # a crash between the rename and the first write of the new file: the chain goes on
    # from the archive
    log.path.rename(log.path.with_name("audit.jsonl.000000000004"))
    hwm, written = log.append(events("used"), hwm)
    assert [r["seq"] for r in written] == [5]
    assert chain.verify(log, hwm, workers=1) == Verdict(True, 5, 3)
    # the current file removed after records were written to it: truncation
    log.path.unlink()
    with pytest.raises(IntegrityError) as info:
        log.append(events("used"), hwm)
    assert str(info.value) == (
        f"the audit log {log.path} ends at record 4 but record 5 was written: it was truncated "
        "or altered"
    )


def test_rotation_at_exactly_max_bytes(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    write(log, 1)
    size = log.path.stat().st_size
    exact = AuditLog(log.path, AUDIT_KEY, max_bytes=size)
    exact.append(events("used"), Hwm())
    assert len(exact.archives()) == 1
    above = AuditLog(tmp_path / "b" / "audit.jsonl", AUDIT_KEY)
    write(above, 1)
    above.max_bytes = above.path.stat().st_size + 1
    above.append(events("used"), Hwm())
    assert above.archives() == []


def test_rotation_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = new_log(tmp_path, max_bytes=1)
    hwm = write(log, 1)

    def no_rename(a: object, b: object) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "rename", no_rename)
    with pytest.raises(IntegrityError) as info:
        log.append(events("used"), hwm)
    assert str(info.value) == (
        f"cannot rotate the audit log {log.path} to audit.jsonl.000000000001: Permission "
        "denied; the operation was not carried out"
    )


def test_archives_sort_by_number_and_skip_others(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    assert log.archives() == []
    assert log.files() == []
    log.path.parent.mkdir()
    for name in (
        "audit.jsonl.10",
        "audit.jsonl.9",
        "audit.jsonl.torn-1-2",
        "audit.jsonl.",
        "audit.jsonl.5x",
        "other.jsonl.3",
        "audit.jsonl",
    ):
        (log.path.parent / name).write_bytes(b"")
    assert [p.name for p in log.archives()] == ["audit.jsonl.9", "audit.jsonl.10"]
    assert [p.name for p in log.files()] == ["audit.jsonl.9", "audit.jsonl.10", "audit.jsonl"]


def test_archive_tail_of_an_empty_archive(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.path.parent.mkdir()
    (log.path.parent / "audit.jsonl.000000000003").write_bytes(b"")
    assert log._archive_tail() == (0, GENESIS, GENESIS)
    with pytest.raises(IntegrityError, match="ends at record 0 but record 3 was written"):
        log.append(events("used"), Hwm(3, "x"))


# --- verification ----------------------------------------------------------------------


def rewrite(path: Path, recs: list[bytes]) -> None:
    path.write_bytes(b"".join(r + b"\n" for r in recs))


def test_verify_a_good_log(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    assert chain.verify(log, Hwm(), workers=1) == Verdict(True, 0, 0)
    hwm = write(log, 5)
    assert chain.verify(log, hwm, workers=1) == Verdict(True, 5, 1)
    behind = chain.verify(log, Hwm(3, "x"), workers=1)
    assert behind == Verdict(
        True,
        5,
        1,
        warnings=[
            "records 4..5 come after the high-water mark last saved with the key (uses within a "
            "minute of it, or a crash between the two writes)"
        ],
    )


def test_verify_names_an_edited_record(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 4)
    recs = lines(log.path)
    recs[2] = recs[2].replace(b'"name":"n', b'"name":"X')
    rewrite(log.path, recs)
    assert chain.verify(log, hwm, workers=1) == Verdict(
        False,
        2,
        1,
        f"{log.path}:3: record 3 was altered (its MAC does not match), or a record before it "
        "was replaced",
        bad_seq=3,
        bad_line=3,
        bad_file=str(log.path),
    )


def test_verify_names_deleted_reordered_and_inserted_records(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 5)
    recs = lines(log.path)
    rewrite(log.path, recs[:1] + recs[3:])
    assert chain.verify(log, hwm, workers=1) == Verdict(
        False,
        1,
        1,
        f"{log.path}:2: record 4 follows record 1: records 2..3 were deleted",
        bad_seq=4,
        bad_line=2,
        bad_file=str(log.path),
    )
    rewrite(log.path, [recs[0], recs[2], recs[1], *recs[3:]])
    assert chain.verify(log, hwm, workers=1).problem == (
        f"{log.path}:2: record 3 follows record 1: records 2..2 were deleted"
    )
    rewrite(log.path, [recs[0], recs[1], recs[0], *recs[2:]])
    assert chain.verify(log, hwm, workers=1) == Verdict(
        False,
        2,
        1,
        f"{log.path}:3: record 1 is out of order (expected record 3): records were reordered "
        "or inserted",
        bad_seq=1,
        bad_line=3,
        bad_file=str(log.path),
    )
    rewrite(log.path, [recs[0], b"hello", *recs[1:]])
    assert chain.verify(log, hwm, workers=1) == Verdict(
        False,
        1,
        1,
        f"{log.path}:2: record ? is not an audit record (inserted or damaged)",
        bad_seq=None,
        bad_line=2,
        bad_file=str(log.path),
    )
    # the MAC mark present but the line does not end as ours
    rewrite(log.path, [recs[0], recs[1] + b" ", *recs[2:]])
    assert chain.verify(log, hwm, workers=1).bad_line == 2
    rewrite(log.path, [recs[0], recs[1][:-3] + b'"}', *recs[2:]])
    assert chain.verify(log, hwm, workers=1).bad_line == 2
    rewrite(log.path, [recs[0], recs[1].replace(b',"mac":"', b',"mac" :"'), *recs[2:]])
    assert chain.verify(log, hwm, workers=1).bad_line == 2


def test_verify_detects_truncation_through_the_hwm(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 4)
    recs = lines(log.path)
    rewrite(log.path, recs[:2])
    assert chain.verify(log, hwm, workers=1) == Verdict(
        False,
        2,
        1,
        "the log ends at record 2 but record 4 was written (kept with the key): records after "
        "it were removed (truncated)",
        bad_seq=3,
    )
    rewrite(log.path, recs)
    assert chain.verify(log, Hwm(4, "f" * 64), workers=1) == Verdict(
        False, 4, 1, "record 4 is not the record that was written last", bad_seq=4
    )
    assert chain.verify(log, Hwm(0, "f" * 64), workers=1).ok


def test_verify_torn_lines(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_bytes=1)
    hwm = write(log, 2)
    with log.path.open("ab") as fh:
        fh.write(b'{"v":1')
    verdict = chain.verify(log, hwm, workers=1)
    assert verdict == Verdict(
        True,
        2,
        1,
        warnings=[
            "a torn last line (6 bytes) after record 2: left by a crash mid-write; the next write "
            "sets it aside"
        ],
    )
    log.path.write_bytes(log.path.read_bytes()[:-6])
    hwm = write(log, 1, hwm)  # rotates: the archive holds records 1..2
    archive = log.archives()[0]
    with archive.open("ab") as fh:
        fh.write(b'{"v":1')
    assert chain.verify(log, hwm, workers=1) == Verdict(
        False, 2, 2, f"{archive} ends in a partial record", bad_file=str(archive)
    )


def test_verify_across_files_keeps_the_chain(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_bytes=1)
    hwm = Hwm()
    for _ in range(4):
        hwm = write(log, 2, hwm)
    assert len(log.archives()) == 3
    assert chain.verify(log, hwm, workers=1) == Verdict(True, 4 * 2 + 3, 4)
    _first, second = log.archives()[:2]
    second.unlink()
    verdict = chain.verify(log, hwm, workers=1)
    assert not verdict.ok
    assert verdict.bad_file == str(log.archives()[1])
    assert verdict.bad_line == 1


def test_read_lines_in_small_blocks(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"ab\ncde\n\nf")
    ending = [b"?"]
    assert list(chain.read_lines(f, ending, block=2)) == [b"ab", b"cde", b""]
    assert ending == [b"f"]
    f.write_bytes(b"ab\n")
    assert list(chain.read_lines(f, ending)) == [b"ab"]
    assert ending == [b""]


# --- the parallel check ----------------------------------------------------------------


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(chain, "RANGE_BYTES", 700)


def test_parallel_walk_agrees_with_the_serial_walk(tmp_path: Path, small_ranges: None) -> None:
    log = new_log(tmp_path, max_bytes=1000)
    hwm = Hwm()
    for _ in range(6):
        hwm = write(log, 3, hwm)
    files = log.files()
    assert len(files) > 2
    serial = chain._walk(files, KEY)
    assert isinstance(serial, tuple)
    assert chain._walk_parallel(files, KEY, 2) == serial
    assert chain.verify(log, hwm, workers=2) == chain.verify(log, hwm, workers=1)
    assert chain.verify(log, hwm, workers=2).ok
    with log.path.open("ab") as fh:
        fh.write(b"torn")
    torn = chain._walk_parallel(files, KEY, 2)
    assert torn == chain._walk(files, KEY)
    assert torn is not None
    assert torn[2] == [(log.path, b"torn")]


def test_parallel_walk_fails_on_any_bad_record(tmp_path: Path, small_ranges: None) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 12)
    recs = lines(log.path)
    recs[9] = recs[9].replace(b'"name":"n', b'"name":"X')
    rewrite(log.path, recs)
    assert chain._walk_parallel(log.files(), KEY, 2) is None
    assert chain.verify(log, hwm, workers=2) == chain.verify(log, hwm, workers=1)
    assert chain.verify(log, hwm, workers=2).bad_line == 10
    rewrite(log.path, [*recs[:3], b"junk", *recs[3:]])
    assert chain._walk_parallel(log.files(), KEY, 2) is None


def test_check_range(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    write(log, 5)
    data = log.path.read_bytes()
    recs = lines(log.path)
    cut = len(recs[0]) + 1 + len(recs[1]) + 1
    assert chain._check_range(str(log.path), 0, len(data), GENESIS, KEY) == 5
    assert chain._check_range(str(log.path), 0, cut, GENESIS, KEY) == 2
    assert chain._check_range(str(log.path), cut, len(data), chain._mac_of(recs[1]), KEY) == 3
    assert chain._check_range(str(log.path), cut, len(data), GENESIS, KEY) is None
    assert chain._check_range(str(log.path), 0, cut - 1, GENESIS, KEY) is None  # a partial line
    assert chain._check_range(str(log.path), 0, len(data) + 10, GENESIS, KEY) is None  # shrank
    assert chain._check_range(str(log.path), 0, 0, GENESIS, KEY) == 0


def test_find_newline(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"a" * 70000 + b"\n" + b"b" * 10 + b"\n")
    fd = os.open(f, os.O_RDONLY)
    try:
        assert chain._find_newline(fd, 0, 70012) == 70000
        assert chain._find_newline(fd, 70001, 70012) == 70011
        assert chain._find_newline(fd, 70001, 70005) == 70004  # none before the limit
        assert chain._find_newline(fd, 5, 5) == 4
    finally:
        os.close(fd)


def test_parallel_walk_gives_up_on_odd_files(tmp_path: Path, small_ranges: None) -> None:
    odd = tmp_path / "odd"
    odd.write_bytes(b"x" * (chain.TAIL_WINDOW + 1))
    assert chain._walk_parallel([odd], KEY, 2) is None
    log = new_log(tmp_path / "l", max_bytes=1)
    hwm = write(log, 2)
    write(log, 1, hwm)
    archive = log.archives()[0]
    with archive.open("ab") as fh:
        fh.write(b"torn")
    assert chain._walk_parallel(log.files(), KEY, 2) is None
    assert chain._walk_parallel([], KEY, 2) == (0, GENESIS, [])


# --- the exact rules of a record's bytes -----------------------------------------------


def chain_lines(count: int, *, pad: int = 300, prev: bytes = GENESIS) -> list[bytes]:
    """Valid records made directly (fast), each ``pad`` bytes longer than the bare fields."""
    out = []
    for seq in range(1, count + 1):
        body = b'{"v":1,"seq":%d,"pad":"%s"' % (seq, b"p" * pad)
        prev = ref_mac(KEY, prev, body)
        out.append(body + chain.MAC_MARK + prev + chain.LINE_END)
    return out


def test_the_mac_covers_everything_before_the_last_mark(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.path.parent.mkdir()
    body = b'{"v":1,"seq":1,"x":"a","mac":"' + b"0" * 64 + b'"}'
    mac = ref_mac(KEY, GENESIS, body)
    first = body + chain.MAC_MARK + mac + chain.LINE_END
    # a line that starts with the mark: the MAC covers the empty prefix
    bare_mac = ref_mac(KEY, mac, b"")
    second = chain.MAC_MARK + bare_mac + chain.LINE_END
    rewrite(log.path, [first, second])
    assert chain._walk([log.path], KEY) == (2, bare_mac, [])
    assert chain._check_range(str(log.path), 0, log.path.stat().st_size, GENESIS, KEY) == 2
    assert chain._mac_of(second) == bare_mac


def test_exact_parse_errors() -> None:
    with pytest.raises(ValueError) as info:
        chain._seq_of(b"x")
    assert str(info.value) == "not an audit record"
    with pytest.raises(ValueError) as info:
        chain._mac_of(b"x")
    assert str(info.value) == "no mac"


def test_read_tail_newline_positions(tmp_path: Path) -> None:
    lead = tmp_path / "lead"
    lead.write_bytes(b"\nabc")
    with pytest.raises(IntegrityError, match="last record is malformed"):
        tail_of(lead)
    rec = chain_lines(1)[0]
    framed = tmp_path / "framed"
    framed.write_bytes(b"\n" + rec + b"\n")
    assert tail_of(framed) == Tail(1, chain._mac_of(rec), len(rec) + 2, b"", chain.line_hash(rec))


def test_find_newline_at_the_offset(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"ab\ncd\n")
    fd = os.open(f, os.O_RDONLY)
    try:
        assert chain._find_newline(fd, 2, 6) == 2
        assert chain._find_newline(fd, 0, 6) == 2
        assert chain._find_newline(fd, 3, 6) == 5
    finally:
        os.close(fd)


def test_check_range_longer_than_one_read(tmp_path: Path) -> None:
    recs = chain_lines(4 * 1024 * 1024 // 400 + 40, pad=330)
    f = tmp_path / "big"
    rewrite(f, recs)
    size = f.stat().st_size
    assert size > 1 << 22
    assert chain._check_range(str(f), 0, size, GENESIS, KEY) == len(recs)
    # a range that ends one byte into a record is refused, even past the first read
    with f.open("ab") as fh:
        fh.write(b"{")
    assert chain._check_range(str(f), 0, size + 1, GENESIS, KEY) is None


def test_parallel_walk_over_ranges_longer_than_its_peek(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain, "RANGE_BYTES", 70000)
    f = tmp_path / "audit.jsonl"
    rewrite(f, chain_lines(1000, pad=330))
    assert f.stat().st_size > chain.TAIL_WINDOW
    serial = chain._walk([f], KEY)
    assert serial == (1000, chain._mac_of(chain_lines(1000, pad=330)[-1]), [])
    assert chain._walk_parallel([f], KEY, 2) == serial


def test_parallel_walk_file_edges(tmp_path: Path) -> None:
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * chain.TAIL_WINDOW)
    assert chain._walk_parallel([exact], KEY, 2) == (
        0,
        GENESIS,
        [(exact, b"x" * chain.TAIL_WINDOW)],
    )
    assert chain._walk([exact], KEY) == (0, GENESIS, [(exact, b"x" * chain.TAIL_WINDOW)])
    edge = tmp_path / "edge"
    recs = chain_lines(3)
    torn = b"y" * (chain.TAIL_WINDOW - 1)
    edge.write_bytes(b"".join(r + b"\n" for r in recs) + torn)
    expected = (3, chain._mac_of(recs[-1]), [(edge, torn)])
    assert chain._walk([edge], KEY) == expected
    assert chain._walk_parallel([edge], KEY, 2) == expected


def test_parallel_walk_uses_the_workers_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import concurrent.futures

    asked: list[object] = []
    real = concurrent.futures.ProcessPoolExecutor

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            asked.append(kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Recording)
    f = tmp_path / "audit.jsonl"
    rewrite(f, chain_lines(3))
    assert chain._walk_parallel([f], KEY, 3) == chain._walk([f], KEY)
    assert asked == [3]


def test_verify_chooses_the_parallel_check_by_size_and_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 3)
    size = log.path.stat().st_size
    calls: list[tuple[str, object]] = []
    real_parallel, real_walk = chain._walk_parallel, chain._walk

    def parallel(files: list[Path], key: bytes, workers: int) -> object:
        calls.append(("parallel", workers))
        return real_parallel(files, key, workers)

    def walk(files: list[Path], key: bytes) -> object:
        calls.append(("walk", None))
        return real_walk(files, key)

    monkeypatch.setattr(chain, "_walk_parallel", parallel)
    monkeypatch.setattr(chain, "_walk", walk)
    monkeypatch.setattr(chain, "PARALLEL_MIN_BYTES", size)
    good = Verdict(True, 3, 1)
    assert chain.verify(log, hwm, workers=2) == good
    assert calls == [("parallel", 2)]
    calls.clear()
    assert chain.verify(log, hwm, workers=1) == good
    assert calls == [("walk", None)]
    calls.clear()
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert chain.verify(log, hwm) == good
    assert calls == [("parallel", 8)]
    calls.clear()
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert chain.verify(log, hwm) == good
    assert calls == [("parallel", 3)]
    calls.clear()
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert chain.verify(log, hwm) == good
    assert calls == [("walk", None)]
    calls.clear()
    monkeypatch.setattr(chain, "PARALLEL_MIN_BYTES", size + 1)
    assert chain.verify(log, hwm, workers=2) == good
    assert calls == [("walk", None)]
    calls.clear()
    # a failed fast check is walked again in order, to name the record
    recs = lines(log.path)
    recs[1] = recs[1].replace(b'"name":"n', b'"name":"X')
    rewrite(log.path, recs)
    monkeypatch.setattr(chain, "PARALLEL_MIN_BYTES", 1)
    assert chain.verify(log, hwm, workers=2).bad_line == 2
    assert calls == [("parallel", 2), ("walk", None)]


# --- appending: the remaining edges ----------------------------------------------------


def test_append_refuses_a_symlinked_log_by_name(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.path.parent.mkdir(mode=0o700)
    log.path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(IntegrityError) as info:
        log.append(events("used"), Hwm())
    assert str(info.value) == f"refusing audit log {log.path}: it is a symlink"


def test_rotation_crash_after_the_first_record(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 1)
    log.path.rename(log.path.with_name("audit.jsonl.000000000001"))
    hwm, written = log.append(events("used"), hwm)
    assert [r["seq"] for r in written] == [2]
    assert chain.verify(log, hwm, workers=1) == Verdict(True, 2, 2)


def test_no_rotation_of_a_log_without_records(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_bytes=0)
    hwm, written = log.append(events("used"), Hwm())
    assert [r["event"] for r in written] == ["used"]
    assert log.archives() == []
    hwm, written = log.append(events("used"), hwm)
    assert [r["event"] for r in written] == ["log_rotated", "used"]


def test_rotation_and_a_torn_record_together(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_bytes=1)
    hwm = write(log, 1)
    with log.path.open("ab") as fh:
        fh.write(b"torn")
    hwm, written = log.append(events("used"), hwm)
    assert [r["event"] for r in written] == ["log_rotated", "torn_record_set_aside", "used"]
    assert [r["seq"] for r in written] == [2, 3, 4]
    assert chain.verify(log, hwm, workers=1) == Verdict(True, 4, 2)


def test_rotation_failure_closes_only_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = new_log(tmp_path, max_bytes=1)
    hwm = write(log, 1)
    closed: list[int] = []
    real_close = os.close

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    def no_rename(a: object, b: object) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "close", close)
    monkeypatch.setattr(os, "rename", no_rename)
    with pytest.raises(IntegrityError, match="cannot rotate"):
        log.append(events("used"), hwm)
    assert len(closed) == 1
    assert closed[0] > 2


def test_short_writes_name_themselves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 1)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:1]))
    with pytest.raises(IntegrityError) as info:
        log.append(events("used"), hwm)
    cause = info.value.__cause__
    assert isinstance(cause, OSError)
    assert (cause.errno, cause.strerror) == (errno.ENOSPC, "short write")
    monkeypatch.setattr(os, "write", real_write)
    log.path.write_bytes(log.path.read_bytes()[:-1] + b"\n" + b"torn")
    monkeypatch.setattr(
        os, "write", lambda fd, data: real_write(fd, data[:1]) if data == b"torn" else 0
    )
    with pytest.raises(IntegrityError) as info:
        log.append(events("used"), hwm)
    cause = info.value.__cause__
    assert isinstance(cause, OSError)
    assert (cause.errno, cause.strerror) == (errno.ENOSPC, "short write")


def test_set_aside_never_follows_or_reuses_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 1)
    with log.path.open("ab") as fh:
        fh.write(b"torn")
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    log.path.with_name("audit.jsonl.torn-1-1700000000").symlink_to(target)
    with pytest.raises(IntegrityError, match="cannot set aside the torn last record"):
        log.append(events("used"), hwm)
    assert target.read_bytes() == b"keep"
    assert log.path.read_bytes().endswith(b"torn")


def test_set_aside_cleanup_failure_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 1)
    with log.path.open("ab") as fh:
        fh.write(b"torn")
    real_write = os.write
    monkeypatch.setattr(
        os, "write", lambda fd, data: 1 if data == b"torn" else real_write(fd, data)
    )

    def no_unlink(path: object) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "unlink", no_unlink)
    with pytest.raises(IntegrityError, match="the disk is full"):
        log.append(events("used"), hwm)


def test_archive_tail_does_not_follow_symlinks(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm = write(log, 1)
    real = tmp_path / "real-archive"
    log.path.rename(real)
    log.path.with_name("audit.jsonl.000000000001").symlink_to(real)
    # refused (today as the OSError of the open: ELOOP), and nothing written
    with pytest.raises((OSError, IntegrityError)):
        log.append(events("used"), hwm)
    assert log.path.read_bytes() == b""


def test_check_range_of_one_read_and_one_byte(tmp_path: Path) -> None:
    target = (1 << 22) + 1  # the range's last newline is the one byte after the first read
    first = b'{"v":1,"seq":1,"pad":"'
    rest = chain_lines(11000, pad=330, prev=b"?")  # MACs fixed below; only sizes here
    total = len(first) + 8 + 64 + 2 + 1
    count = 0
    while total + len(rest[count]) + 1 <= target - 400:
        total += len(rest[count]) + 1
        count += 1
    body = first + b"p" * (target - total)
    mac = ref_mac(KEY, GENESIS, body)
    recs = [body + chain.MAC_MARK + mac + chain.LINE_END, *chain_lines(count, pad=330, prev=mac)]
    f = tmp_path / "f"
    rewrite(f, recs)
    assert f.stat().st_size == target
    assert chain._check_range(str(f), 0, target, GENESIS, KEY) == count + 1


def test_end_is_the_last_complete_record_here_or_in_the_archives(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_bytes=1)
    assert log.end() == (0, chain.GENESIS.decode())  # no log at all
    first = write(log, 1)
    lines = log.path.read_bytes().splitlines()
    assert len(lines) == 1
    one = (1, json.loads(lines[0])["mac"])
    assert log.end() == one  # a single record: seq 1 is the end, not "none"
    write(log, 1, first)  # the log is rotated before this one is written
    assert len(log.archives()) == 1
    current = json.loads(log.path.read_bytes().splitlines()[-1])
    assert log.end() == (current["seq"], current["mac"])
    archived = json.loads(log.archives()[-1].read_bytes().splitlines()[-1])
    assert archived["seq"] < current["seq"]
    log.path.unlink()  # just rotated, nothing written since
    assert log.end() == (archived["seq"], archived["mac"])
    log.path.write_bytes(b"")
    log.path.chmod(0o600)
    assert log.end() == (archived["seq"], archived["mac"])
