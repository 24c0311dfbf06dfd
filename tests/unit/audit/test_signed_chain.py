"""The keyless hash chain and the signed heads, in process: every record's ``prev_sha256``
against hashlib, every signature against cryptography's Ed25519 and the fingerprint against
ssh-keygen; when signatures are made (rotation, seal, the hourly one, on an injected clock);
and `verify_signed` failing on every class of tampering, reporting what a signature anchors
and what it cannot (records after the last one)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.audit import chain, signing
from vault.audit.chain import GENESIS, SIGN_INTERVAL, AuditLog, Hwm
from vault.audit.keyless import MAX_LINE, SignedVerdict, verify_signed
from vault.audit.signing import DOMAIN, PublicKey, Signer, new_seed
from vault.errors import IntegrityError, UsageError
from vault.secret import Secret
from vault.store.model import Meta

AUDIT_KEY = bytes(range(32))
SEED = Secret(base64.b64encode(bytes(range(100, 132))).decode())
OTHER_SEED = Secret(base64.b64encode(bytes(range(200, 232))).decode())


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _private_files() -> Iterator[None]:
    old = os.umask(0o077)
    yield
    os.umask(old)


def public(seed: Secret = SEED) -> PublicKey:
    return PublicKey(Signer(seed).public_raw)


def new_log(tmp_path: Path, clock: Clock | None = None, **kw: Any) -> AuditLog:
    kw.setdefault("signing_key", SEED)
    return AuditLog(tmp_path / "audit" / "audit.jsonl", AUDIT_KEY, clock=clock or Clock(), **kw)


def events(*kinds: str) -> list[dict[str, Any]]:
    return [chain.make_event(kind, name=f"n{i}") for i, kind in enumerate(kinds)]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def sealed_log(tmp_path: Path) -> tuple[AuditLog, Hwm]:
    """Records 1-3, a seal (4), records 5-6, a seal (7): two anchors, none after the last."""
    log = new_log(tmp_path)
    hwm, _ = log.append(events("issued", "used", "used"), Hwm())
    hwm, _ = log.append([], hwm, seal=True)
    hwm, _ = log.append(events("used", "revoked"), hwm)
    hwm, _ = log.append([], hwm, seal=True)
    return log, hwm


def check(log: AuditLog | list[Path], key: PublicKey | None = None) -> SignedVerdict:
    files = log.files() if isinstance(log, AuditLog) else log
    return verify_signed(files, key or public())


# --- the records -------------------------------------------------------------------------


def test_every_record_carries_the_hash_of_the_line_before(tmp_path: Path) -> None:
    log, _ = sealed_log(tmp_path)
    prev = GENESIS
    for line in lines(log.path):
        doc = json.loads(line)
        assert doc["prev_sha256"].encode() == prev
        # The field sits right before the signature or the MAC, inside what the MAC covers.
        assert list(doc)[-1] == "mac"
        assert list(doc)[-2] in ("prev_sha256", "signature")
        prev = hashlib.sha256(line).hexdigest().encode()


def test_a_signature_record_verifies_with_cryptography_alone(tmp_path: Path) -> None:
    log, _ = sealed_log(tmp_path)
    all_lines = lines(log.path)
    signed = [ln for ln in all_lines if b'"event":"chain_signed"' in ln]
    assert len(signed) == 2
    pub = Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132))).public_key()
    for line in signed:
        doc = json.loads(line)
        assert doc["head_seq"] == doc["seq"] - 1
        head = all_lines[doc["head_seq"] - 1]
        assert doc["head_hash"] == hashlib.sha256(head).hexdigest() == doc["prev_sha256"]
        message = line[: line.rindex(b',"signature":"')]
        pub.verify(base64.b64decode(doc["signature"]), DOMAIN + message)  # raises if not
        assert doc["key_fingerprint"] == public().fingerprint


def test_fingerprint_is_the_one_ssh_keygen_shows(tmp_path: Path) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.fail("ssh-keygen is missing: apt-get install openssh-client")
    signer = Signer(SEED)
    (tmp_path / "k.pub").write_text(signer.public_openssh() + "\n")
    shown = subprocess.run(
        [keygen, "-l", "-f", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True
    ).stdout
    assert shown.split()[1] == signer.fingerprint
    assert shown.split()[-1] == "(ED25519)"


def test_the_key_never_shows() -> None:
    signer = Signer(SEED)
    seed = base64.b64decode(SEED.reveal())
    assert SEED.reveal() not in repr(signer)
    assert seed.hex() not in repr(signer)
    with pytest.raises(TypeError):
        pickle.dumps(signer)
    meta = Meta.new()
    assert meta.signing_key is not None
    assert meta.signing_key.reveal() not in repr(meta)
    back = Meta.from_json(meta.to_json())
    assert back.signing_key == meta.signing_key
    assert Signer(new_seed()).fingerprint != Signer(new_seed()).fingerprint


def test_meta_refuses_a_signing_key_that_is_not_32_bytes() -> None:
    meta = json.loads(Meta.new().to_json())
    meta["signing_key"] = base64.b64encode(b"short").decode()
    with pytest.raises(IntegrityError, match="metadata is malformed"):
        Meta.from_json(json.dumps(meta).encode())
    del meta["signing_key"]  # a vault made before there were signing keys
    assert Meta.from_json(json.dumps(meta).encode()).signing_key is None


def test_hwm_keeps_when_it_was_signed() -> None:
    assert Hwm.load(Hwm(3, "m", 0, 17).dump(5)) == Hwm(3, "m", 5, 17)
    assert "signed" not in Hwm(3, "m").dump(5)  # as marks were before
    with pytest.raises(IntegrityError):
        Hwm.load({"seq": 1, "mac": "m", "at": 0, "signed": "soon"})


# --- when the head is signed -----------------------------------------------------------


def kinds(written: list[dict[str, Any]]) -> list[str]:
    return [r["event"] for r in written]


def test_signed_at_least_once_an_hour_when_records_are_written(tmp_path: Path) -> None:
    clock = Clock()
    log = new_log(tmp_path, clock)
    hwm, written = log.append(events("issued"), Hwm())
    assert kinds(written) == ["issued"]  # the first hour starts with the first record
    assert hwm.signed == int(clock.now)
    clock.now += SIGN_INTERVAL - 1
    hwm, written = log.append(events("used"), hwm)
    assert kinds(written) == ["used"]
    clock.now += 1
    hwm, written = log.append(events("used", "used"), hwm)
    assert kinds(written) == ["used", "used", "chain_signed"]  # the new records anchored
    assert written[-1]["head_seq"] == written[-2]["seq"]
    assert hwm.signed == int(clock.now)
    hwm, written = log.append(events("used"), hwm)
    assert kinds(written) == ["used"]
    clock.now -= 10  # the clock went back: sign rather than trust it
    hwm, written = log.append(events("used"), hwm)
    assert kinds(written) == ["used", "chain_signed"]
    assert check(log).ok


def test_seal_signs_now_even_with_nothing_new(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    hwm, _ = log.append(events("issued"), Hwm())
    hwm, written = log.append([], hwm, seal=True)
    assert kinds(written) == ["chain_signed"]
    hwm, again = log.append([], hwm, seal=True)
    assert again[0]["head_seq"] == written[0]["seq"]
    assert hwm.seq == 3


def test_without_a_signing_key_nothing_is_signed(tmp_path: Path) -> None:
    clock = Clock()
    log = new_log(tmp_path, clock, signing_key=None)
    hwm, _ = log.append(events("issued"), Hwm(signed=1))
    clock.now += 10 * SIGN_INTERVAL
    hwm, written = log.append(events("used"), hwm, seal=True)
    assert kinds(written) == ["used"]
    assert hwm.signed == 1  # carried, untouched
    assert log.append([], hwm, seal=True) == (hwm, [])


def test_every_rotated_file_ends_with_a_signature(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_bytes=1500)
    hwm = Hwm()
    for _ in range(12):
        hwm, _ = log.append(events("used"), hwm)
    archives = log.archives()
    assert len(archives) >= 2
    for archive in archives:
        last = json.loads(lines(archive)[-1])
        assert last["event"] == "chain_signed"
        assert archive.name.endswith(f".{last['seq']:012d}")  # named after its last record
    # The first record of each next file chains to the signature that closed the one before.
    for older, newer in zip(archives, [*archives[1:], log.path], strict=True):
        first = json.loads(lines(newer)[0])
        assert first["event"] == "log_rotated"
        assert first["prev_sha256"] == hashlib.sha256(lines(older)[-1]).hexdigest()
    verdict = check(log)
    assert verdict.ok
    assert verdict.signatures == len(archives)
    assert chain.verify(log, hwm, workers=1).ok  # the HMAC chain holds as before


# --- verifying ---------------------------------------------------------------------------


def test_an_intact_log_is_anchored_up_to_its_last_signature(tmp_path: Path) -> None:
    log, _ = sealed_log(tmp_path)
    v = check(log)
    assert (v.ok, v.records, v.chain_start, v.signatures, v.anchored_seq) == (True, 7, 1, 2, 7)
    assert v.unanchored is None
    assert v.warnings == []
    assert v.head_sha256 == hashlib.sha256(lines(log.path)[-1]).hexdigest()


def test_records_after_the_last_signature_are_reported_not_anchored(tmp_path: Path) -> None:
    log, hwm = sealed_log(tmp_path)
    log.append(events("used", "used"), hwm)
    v = check(log)
    assert v.ok
    assert v.anchored_seq == 7
    assert v.unanchored == (8, 9)
    assert v.warnings == [
        "records 8..9 are after the last signature (record 7) and not anchored: an edit or a "
        "truncation after record 7 cannot be told from a log that ended there"
    ]
    # Cut after the last signature: a shorter log, reported as anchored up to where it is.
    data = log.path.read_bytes()
    log.path.write_bytes(data[: data.index(b'{"v":1,"seq":9,')])
    v = check(log)
    assert v.ok
    assert v.unanchored == (8, 8)


def test_a_log_cut_before_its_last_signature_is_anchored_by_an_earlier_one(
    tmp_path: Path,
) -> None:
    # What the public key alone can say: the log ends earlier and its last anchor is record 4.
    # That it held more (record 7) only an independent copy of the heads (a syslog collector)
    # or the vault's high-water mark (`vault audit verify`) can show.
    log, _ = sealed_log(tmp_path)
    data = log.path.read_bytes()
    log.path.write_bytes(data[: data.index(b'{"v":1,"seq":6,')])
    v = check(log)
    assert v.ok
    assert v.anchored_seq == 4
    assert v.unanchored == (5, 5)


def test_nothing_signed_is_not_verified(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append(events("issued", "used"), Hwm())
    v = check(log)
    assert not v.ok
    assert v.problem is not None
    assert "no record is signed by SHA256:" in v.problem


def bad(log: AuditLog | list[Path], key: PublicKey | None = None) -> SignedVerdict:
    v = check(log, key)
    assert not v.ok
    return v


def test_edit_delete_swap_insert_each_names_the_record(tmp_path: Path) -> None:
    log, _ = sealed_log(tmp_path)
    original = lines(log.path)

    def put(new: list[bytes]) -> None:
        log.path.write_bytes(b"".join(ln + b"\n" for ln in new))

    edited = list(original)
    edited[1] = edited[1].replace(b'"name":"n1"', b'"name":"nX"')
    put(edited)
    v = bad(log)
    assert v.bad_seq == 2
    assert v.bad_line == 2
    assert v.problem == (
        f"{log.path}:2: record 2 was altered or replaced (record 3, next, does not carry its "
        "hash; or record 3's prev_sha256 was altered)"
    )

    put(original[:2] + original[3:])  # record 3 deleted
    v = bad(log)
    assert v.bad_seq == 4
    assert "records 3..3 were deleted" in str(v.problem)

    put([original[0], original[2], original[1], *original[3:]])  # 2 and 3 swapped
    v = bad(log)
    assert v.bad_seq == 3
    assert "records 2..2 were deleted" in str(v.problem)

    put([*original[:3], original[1], *original[3:]])  # a copy of record 2 inserted
    v = bad(log)
    assert v.bad_seq == 2
    assert "out of order (expected record 4)" in str(v.problem)

    put([*original[:2], b"garbage", *original[2:]])
    v = bad(log)
    assert v.bad_line == 3
    assert "not an audit record" in str(v.problem)

    stripped = list(original)  # the chain hash taken out of a record
    doc = json.loads(stripped[4])
    del doc["prev_sha256"]
    stripped[4] = json.dumps(doc, separators=(",", ":")).encode()
    put(stripped)
    assert "carries no chain hash" in str(bad(log).problem)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_changed_byte_before_the_last_anchor_fails(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    log, _ = sealed_log(tmp_path_factory.mktemp("log"))
    original = lines(log.path)
    index = data.draw(st.integers(0, len(original) - 1), label="record")
    line = original[index]
    at = data.draw(st.integers(0, len(line) - 1), label="byte")
    new = data.draw(st.integers(0x20, 0x7E).filter(lambda b: b != line[at]), label="new byte")
    changed = list(original)
    changed[index] = line[:at] + bytes([new]) + line[at + 1 :]
    log.path.write_bytes(b"".join(ln + b"\n" for ln in changed))
    v = check(log)
    mac_start = len(line) - 66  # the last line's MAC: not content, covered by no later record
    if index == len(original) - 1 and at >= mac_start:
        # Still a MAC (64 lowercase hex digits): not content, and the log verifies; anything
        # else there is refused as malformed.
        assert v.ok == (at < len(line) - 2 and new in b"0123456789abcdef")
    elif v.ok:
        # Only a change that made the last record something else than a signature can leave
        # the log verifying: then the edited record is never reported as anchored.
        assert index == len(original) - 1
        assert v.anchored_seq is not None
        assert v.anchored_seq < index + 1
    else:  # named: the changed line (1-based index + 1), or a neighbour its hash links
        assert v.bad_line in (index, index + 1, index + 2)


def test_signed_by_another_key_fails(tmp_path: Path) -> None:
    log, _ = sealed_log(tmp_path)
    v = bad(log, public(OTHER_SEED))
    assert v.bad_seq == 4
    assert "signed by another key" in str(v.problem)

    # A log rewritten (hashes recomputed) and signed again by someone else's key.
    forger = AuditLog(tmp_path / "forged" / "audit.jsonl", AUDIT_KEY, clock=Clock(),
                      signing_key=OTHER_SEED)  # fmt: skip
    hwm, _ = forger.append(events("issued", "used", "used"), Hwm())
    forger.append([], hwm, seal=True)
    v = bad(forger)
    assert "is signed by another key" in str(v.problem)
    # ... and claiming to be ours: the signature does not verify.
    forged = forger.path.read_bytes().replace(
        public(OTHER_SEED).fingerprint.encode(), public().fingerprint.encode()
    )
    forger.path.write_bytes(forged)
    assert "does not verify with the key" in str(bad(forger).problem)


def test_nothing_unsigned_is_let_in_after_the_signature(tmp_path: Path) -> None:
    log, _ = sealed_log(tmp_path)
    last = lines(log.path)[-1]
    at = last.rindex(b',"mac":"')
    sneaked = last[:at] + b',"event":"used"' + last[at:]
    log.path.write_bytes(b"".join(ln + b"\n" for ln in [*lines(log.path)[:-1], sneaked]))
    assert "malformed" in str(bad(log).problem)


def test_a_truncated_archive_fails_but_a_torn_last_line_is_a_warning(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_bytes=1500)
    hwm = Hwm()
    for _ in range(8):
        hwm, _ = log.append(events("used"), hwm)
    first = log.archives()[0]
    data = first.read_bytes()
    with log.path.open("ab") as fh:
        fh.write(b'{"v":1,"seq":99,"ti')  # a crash mid-write
    v = check(log)
    assert v.ok
    assert any("partial last record" in w for w in v.warnings)
    first.write_bytes(data[: len(data) // 2])  # an archive cut in the middle of a record
    v = bad(log)
    assert v.bad_file == str(first)
    assert "partial record" in str(v.problem)
    first.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 1])  # its last record gone
    v = bad(log)
    assert v.bad_file in (str(log.archives()[1]), str(log.path))


def test_a_chain_that_starts_after_older_records(tmp_path: Path) -> None:
    # A log begun before there was a keyless chain: the old records carry no prev_sha256.
    path = tmp_path / "audit" / "audit.jsonl"
    path.parent.mkdir(mode=0o700)
    key = chain.chain_key(AUDIT_KEY)
    mac, out = GENESIS, []
    for seq in (1, 2):
        line, mac = chain.seal_line(key, mac, chain._body(seq, "T", {"event": "used"}))
        out.append(line)
    path.write_bytes(b"".join(out))
    log = new_log(tmp_path)
    hwm = Hwm(2, mac.decode())
    hwm, _ = log.append(events("used"), hwm)
    hwm, _ = log.append([], hwm, seal=True)
    v = check(log)
    assert v.ok
    assert v.chain_start == 3
    assert v.anchored_seq == 4
    assert v.warnings[0].startswith("records 1..2 were written before the keyless chain")
    assert chain.verify(log, hwm, workers=1).ok
    # The old records are still covered by the HMAC chain only: the keyless check names that.
    edited = path.read_bytes().replace(b'"seq":2,"time":"T"', b'"seq":2,"time":"U"')
    path.write_bytes(edited)
    assert "record 2 was altered" in str(bad(log).problem)  # record 3 carries its hash


def test_a_new_chain_after_a_reset(tmp_path: Path) -> None:
    log, _ = sealed_log(tmp_path)
    old = log.path.with_name("audit.jsonl.reset-X")
    log.path.rename(old)
    hwm, _ = log.append(events("log_reset", "used"), Hwm())
    hwm, _ = log.append([], hwm, seal=True)
    v = check([old, log.path])
    assert v.ok
    assert v.signatures == 3
    assert v.anchored_seq == 3
    assert any("a new chain starts at" in w for w in v.warnings)


def test_files_given_are_read_whoever_owns_them_but_never_a_fifo(tmp_path: Path) -> None:
    log, _ = sealed_log(tmp_path)
    copy = tmp_path / "copy.jsonl"
    shutil.copy(log.path, copy)
    copy.chmod(0o644)  # an auditor's copy need not be private
    link = tmp_path / "link.jsonl"
    link.symlink_to(copy)
    assert check([link]).ok
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        check([fifo])
    with pytest.raises(UsageError, match="cannot read"):
        check([tmp_path / "missing"])


def test_a_line_without_end_is_not_read_into_memory(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as fh:
        for _ in range(16):
            fh.write(b"x" * (1 << 20))  # 16 MiB without a newline
    v = bad([huge])
    assert "too long to be an audit record" in str(v.problem)
    assert MAX_LINE < 1 << 20


def test_public_key_parsing(tmp_path: Path) -> None:
    signer = Signer(SEED)
    assert PublicKey.from_pem(signer.public_pem().encode(), source="k").raw == signer.public_raw
    assert PublicKey.from_pem(signer.public_openssh().encode(), source="k").raw == (
        signer.public_raw
    )
    rsa_like = Ed25519PublicKey.from_public_bytes(signer.public_raw).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    for junk in (
        b"",
        b"hello",
        rsa_like,
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ):
        with pytest.raises(UsageError, match="is not a public key"):
            PublicKey.from_pem(junk, source="k")
    assert signing.fingerprint(signer.public_raw) == signer.fingerprint


# --- forwarding ----------------------------------------------------------------------------


def test_forwarded_records_carry_the_chain_hashes(tmp_path: Path) -> None:
    """A syslog collector gets every record's prev_sha256 and its own sha256 (the head after
    it), in the structured data and in the JSON message, as the log has them."""
    from datetime import UTC, datetime

    from vault.audit.forward import format_rfc5424

    log = new_log(tmp_path)
    hwm, written = log.append(events("issued"), Hwm())
    _, sealed = log.append([], hwm, seal=True)
    on_disk = lines(log.path)
    for record, line in zip([*written, *sealed], on_disk, strict=True):
        message = format_rfc5424(record, now=datetime(2026, 1, 2, tzinfo=UTC), hostname="h")
        head, _, body = message.partition(b"\xef\xbb\xbf")
        own = hashlib.sha256(line).hexdigest()
        assert f'sha256="{own}"'.encode() in head
        assert f'prev_sha256="{json.loads(line)["prev_sha256"]}"'.encode() in head
        sent = json.loads(body)
        assert sent["sha256"] == own
        assert {k: v for k, v in sent.items() if k != "sha256"} == {
            k: v for k, v in json.loads(line).items() if k != "mac"
        }


def test_ocsf_and_ecs_documents_keep_the_chain_hashes(tmp_path: Path) -> None:
    """Forwarded as OCSF or ECS, a record keeps its hashes and a signature record its
    signature (unmapped.* / vault.*), so a SIEM holds the heads too."""
    from vault.audit.formats import to_ecs, to_ocsf

    log = new_log(tmp_path)
    hwm, written = log.append(events("issued"), Hwm())
    _, sealed = log.append([], hwm, seal=True)
    for record in [*written, *sealed]:
        ocsf, ecs = to_ocsf(record), to_ecs(record)
        for field in ("prev_sha256", "sha256"):
            assert ocsf["unmapped"][field] == record[field]
            assert ecs["vault"][field] == record[field]
    assert to_ocsf(sealed[0])["unmapped"]["signature"] == sealed[0]["signature"]
    assert to_ecs(sealed[0])["event"]["action"] == "chain_signed"
