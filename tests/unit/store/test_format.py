"""The vault file format, in process: every bit authenticated, weak parameters refused."""

from __future__ import annotations

import os
import pickle
import struct

import pytest

from vault.errors import IntegrityError
from vault.secret import Secret
from vault.store import format as fmt
from vault.store.model import Meta, TokenRecord, find_record, join_payload, split_payload


def _record(name: str, token: str = "tok-" + "a" * 20) -> TokenRecord:
    return TokenRecord(
        name=name,
        provider="github",
        issuer="https://github.com",
        client_id="cid",
        token_type="Bearer",
        access_token=Secret(token),
        refresh_token=Secret("r" * 30),
        id_token=None,
        scopes=("repo",),
        issued_at=1_700_000_000,
        expires_at=1_700_003_600,
        last_refresh=None,
    )


def _sealed(payload: bytes) -> tuple[bytes, bytes]:
    key = os.urandom(32)
    header = fmt.Header(
        fmt.KDF_KEYRING, os.urandom(4), 0, 0, 0, bytes(16), os.urandom(16), 7, os.urandom(12)
    )
    return fmt.seal(header, key, payload), key


def _open(blob: bytes, key: bytes) -> bytes:
    header = fmt.parse_header(blob, path="v")
    return fmt.open_sealed(header, key, blob, path="v")


def test_round_trip_and_lookup_without_parsing_others() -> None:
    meta = Meta.new()
    records = [(r.name, r.to_json()) for r in (_record("b"), _record("a"), _record("c.d@e"))]
    payload = join_payload(meta, records)
    blob, key = _sealed(payload)
    assert _open(blob, key) == payload
    raw = find_record(payload, "c.d@e")
    assert raw is not None
    assert TokenRecord.from_json("c.d@e", raw) == _record("c.d@e")
    assert find_record(payload, "c") is None  # a prefix of a name is not the name
    meta2, parsed = split_payload(payload)
    assert sorted(parsed) == ["a", "b", "c.d@e"]
    assert meta2.audit_key == meta.audit_key


# The header's fields in order (vault.store.format._HEADER, ">8sHB4sIII16s16sQ12s"), each with
# what a flipped bit in it is refused as, for a keyring-backend header: the fields that
# parse_header checks say what is wrong; the others (and the ciphertext and tag) are caught by
# the authentication of the whole file (the header is the AEAD's associated data).
_AUTH = "failed authentication"
_MALFORMED = "has a malformed header"
_HEADER_FIELDS = [
    ("8s", "not a vault file"),  # magic
    ("H", "has format version"),  # version
    ("B", "names an unknown key backend"),  # kdf
    ("4s", _AUTH),  # key id: any id is well-formed; the key it names is the caller's business
    ("I", _MALFORMED),  # t_cost: must be 0 for the keyring backend
    ("I", _MALFORMED),  # m_cost
    ("I", _MALFORMED),  # parallelism
    ("16s", _MALFORMED),  # salt: all zero for the keyring backend
    ("16s", _AUTH),  # vault id
    ("Q", _AUTH),  # generation
    ("12s", _AUTH),  # nonce
]


def _expected_refusal(index: int) -> str:
    offset = 0
    for code, message in _HEADER_FIELDS:
        offset += struct.calcsize(">" + code)
        if index < offset:
            return message
    assert offset == fmt.HEADER_SIZE  # the table above is the whole header
    return _AUTH  # ciphertext and tag


def test_every_flipped_bit_is_refused_for_what_it_damaged() -> None:
    payload = join_payload(Meta.new(), [("x", _record("x").to_json())])
    blob, key = _sealed(payload)
    assert _open(blob, key) == payload  # the refusals below are the flips' doing
    assert len(blob) > fmt.HEADER_SIZE + fmt.TAG_SIZE
    seen: set[str] = set()
    for index in range(len(blob)):
        expected = _expected_refusal(index)
        for bit in range(8):
            bad = bytearray(blob)
            bad[index] ^= 1 << bit
            with pytest.raises(IntegrityError) as caught:
                _open(bytes(bad), key)
            assert expected in caught.value.message, (index, bit, caught.value.message)
        seen.add(expected)
    assert seen == {message for _, message in _HEADER_FIELDS}


def test_every_truncation_is_refused() -> None:
    blob, key = _sealed(join_payload(Meta.new(), []))
    for length in range(len(blob)):
        with pytest.raises(IntegrityError):
            _open(blob[:length], key)


def test_swapped_header_is_refused() -> None:
    blob_a, key = _sealed(b"VREC1\nA")
    header_b = fmt.parse_header(blob_a, path="v").next_write(8)
    swapped = header_b.pack() + blob_a[fmt.HEADER_SIZE :]
    with pytest.raises(IntegrityError, match="failed authentication"):
        _open(swapped, key)


def test_unknown_version_and_magic() -> None:
    blob, key = _sealed(b"x")
    with pytest.raises(IntegrityError, match="format version 2"):
        _open(blob[:8] + b"\x00\x02" + blob[10:], key)
    with pytest.raises(IntegrityError, match="not a vault file"):
        _open(b"NOTVAULT" + blob[8:], key)


@pytest.mark.parametrize(
    ("t", "m", "p", "ok"),
    [
        (3, 65536, 4, True),  # RFC 9106 low-memory profile, our default
        (2, 19456, 1, True),  # OWASP minimum
        (1, 47104, 1, True),
        (1, 19456, 1, False),  # below every OWASP row
        (5, 7167, 1, False),
        (3, 65536, 0, False),
        (3, fmt.ARGON2_MAX_M_KIB + 1, 4, False),  # absurd: a hostile file must not OOM us
        (fmt.ARGON2_MAX_T + 1, 65536, 4, False),
    ],
)
def test_argon2_parameter_floor(t: int, m: int, p: int, ok: bool) -> None:
    assert fmt.argon2_params_acceptable(t, m, p) is ok


def test_secret_never_shows_itself() -> None:
    s = Secret("ghp_" + "x" * 36)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", "%s" % (s,)):  # noqa: UP031
        assert "ghp_" not in text
    assert "ghp_" not in repr(_record("n", "ghp_" + "y" * 36))
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert s.reveal().startswith("ghp_")
    assert s == Secret("ghp_" + "x" * 36)
    assert s != Secret("other")
