"""The vault header in process: its exact bytes, every refusal of a malformed or hostile header
(exact messages and hints), the Argon2id bounds at their edges, and AEAD authentication."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import IntegrityError
from vault.store import format as fmt

KEY_ID = b"\x01\x02\x03\x04"
VAULT_ID = bytes(range(16))
NONCE = bytes(range(100, 112))
SALT = bytes(range(50, 66))


def keyring_header(**kw: object) -> fmt.Header:
    fields: dict[str, object] = {
        "kdf": fmt.KDF_KEYRING,
        "key_id": KEY_ID,
        "t_cost": 0,
        "m_cost": 0,
        "parallelism": 0,
        "salt": bytes(16),
        "vault_id": VAULT_ID,
        "generation": 7,
        "nonce": NONCE,
    }
    fields.update(kw)
    return fmt.Header(**fields)  # type: ignore[arg-type]


def argon_header(**kw: object) -> fmt.Header:
    fields: dict[str, object] = {
        "kdf": fmt.KDF_ARGON2ID,
        "key_id": bytes(4),
        "t_cost": 3,
        "m_cost": 65536,
        "parallelism": 4,
        "salt": SALT,
    }
    fields.update(kw)
    return keyring_header(**fields)


def raw_header(  # noqa: PLR0917 -- a header is eight fields
    magic: bytes = b"VAULTENC",
    version: int = 1,
    kdf: int = 1,
    key_id: bytes = KEY_ID,
    t: int = 0,
    m: int = 0,
    p: int = 0,
    salt: bytes = bytes(16),
) -> bytes:
    return struct.pack(
        ">8sHB4sIII16s16sQ12s", magic, version, kdf, key_id, t, m, p, salt, VAULT_ID, 7, NONCE
    ) + bytes(16)


def refusal(blob: bytes) -> IntegrityError:
    with pytest.raises(IntegrityError) as info:
        fmt.parse_header(blob, path="/v/vault.enc")
    return info.value


def test_header_bytes_are_exact() -> None:
    assert fmt.HEADER_SIZE == 79
    assert fmt.TAG_SIZE == 16
    packed = argon_header().pack()
    assert packed == (
        b"VAULTENC"
        + b"\x00\x01"
        + b"\x02"
        + bytes(4)
        + (3).to_bytes(4, "big")
        + (65536).to_bytes(4, "big")
        + (4).to_bytes(4, "big")
        + SALT
        + VAULT_ID
        + (7).to_bytes(8, "big")
        + NONCE
    )
    assert keyring_header(version=9).pack()[8:10] == b"\x00\x09"


def test_parse_header_round_trips() -> None:
    for header in (
        keyring_header(),
        argon_header(),
        argon_header(t_cost=1, m_cost=47104, parallelism=1),
    ):
        blob = header.pack() + bytes(16)
        assert fmt.parse_header(blob, path="v") == header
    assert keyring_header().backend == "keyring"
    assert argon_header().backend == "passphrase"


def test_next_write_changes_only_generation_and_nonce() -> None:
    header = argon_header()
    nxt = header.next_write(8)
    assert nxt.generation == 8
    assert len(nxt.nonce) == 12
    assert nxt.nonce != header.nonce
    assert nxt.nonce != header.next_write(8).nonce
    assert {k: v for k, v in vars(nxt).items() if k not in ("generation", "nonce")} == {
        k: v for k, v in vars(header).items() if k not in ("generation", "nonce")
    }


def test_truncated() -> None:
    blob = keyring_header().pack() + bytes(16)
    assert fmt.parse_header(blob, path="v").generation == 7  # exactly header + tag is enough
    err = refusal(blob[:-1])
    assert str(err) == "vault file /v/vault.enc is truncated (94 bytes)"
    assert str(refusal(b"")) == "vault file /v/vault.enc is truncated (0 bytes)"


def test_magic_and_version() -> None:
    assert str(refusal(raw_header(magic=b"VAULTENX"))) == (
        "/v/vault.enc is not a vault file (bad magic bytes)"
    )
    newer = refusal(raw_header(version=2))
    assert str(newer) == (
        "vault file /v/vault.enc has format version 2; this vault reads version 1"
    )
    assert newer.hint == "upgrade vault"
    older = refusal(raw_header(version=0))
    assert str(older) == (
        "vault file /v/vault.enc has format version 0; this vault reads version 1"
    )
    assert older.hint is None


@pytest.mark.parametrize(
    "blob",
    [
        raw_header(t=1),
        raw_header(m=1),
        raw_header(p=1),
        raw_header(salt=b"\x00" * 15 + b"\x01"),
        raw_header(kdf=2, key_id=b"\x00\x00\x00\x01", t=3, m=65536, p=4, salt=SALT),
    ],
)
def test_malformed_headers(blob: bytes) -> None:
    err = refusal(blob)
    assert str(err) == "vault file /v/vault.enc has a malformed header"
    assert err.hint is None


def test_weak_or_absurd_argon2_parameters() -> None:
    err = refusal(raw_header(kdf=2, key_id=bytes(4), t=1, m=19456, p=1, salt=SALT))
    assert str(err) == (
        "vault file /v/vault.enc asks for Argon2id t=1 m=19456 KiB p=1, outside the accepted "
        "range (below OWASP's minimum or absurdly large)"
    )
    assert err.hint == "a file with weak key-derivation parameters was not written by vault"


def test_unknown_backend() -> None:
    for kdf in (0, 3, 255):
        assert str(refusal(raw_header(kdf=kdf))) == (
            f"vault file /v/vault.enc names an unknown key backend ({kdf})"
        )


@pytest.mark.parametrize(
    ("t", "m", "p", "ok"),
    [
        (1, 47104, 1, True),
        (1, 47103, 1, False),
        (2, 19456, 1, True),
        (2, 19455, 1, False),
        (3, 12288, 1, True),
        (3, 12287, 1, False),
        (4, 9216, 1, True),
        (4, 9215, 1, False),
        (5, 7168, 1, True),
        (5, 7167, 1, False),
        (64, 7168, 1, True),
        (65, 7168, 1, False),
        (0, 10**6, 1, False),
        (3, 65536, 64, True),
        (3, 65536, 65, False),
        (3, 65536, 1, True),
        (3, 65536, 0, False),
        (3, 4 * 1024 * 1024, 4, True),
        (3, 4 * 1024 * 1024 + 1, 4, False),
    ],
)
def test_argon2_bounds_at_their_edges(t: int, m: int, p: int, ok: bool) -> None:
    assert fmt.argon2_params_acceptable(t, m, p) is ok


def test_argon2_defaults_are_acceptable() -> None:
    assert (fmt.ARGON2_T, fmt.ARGON2_M_KIB, fmt.ARGON2_P) == (3, 65536, 4)
    assert fmt.argon2_params_acceptable(fmt.ARGON2_T, fmt.ARGON2_M_KIB, fmt.ARGON2_P)
    assert (fmt.ARGON2_MAX_T, fmt.ARGON2_MAX_M_KIB, fmt.ARGON2_MAX_P) == (64, 4194304, 64)


# --- AEAD ------------------------------------------------------------------------------


def test_aesgcm_is_the_public_class() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assert fmt.aesgcm() is AESGCM


def test_seal_and_open() -> None:
    key = os.urandom(32)
    header = keyring_header()
    blob = fmt.seal(header, key, b"payload")
    assert blob[: fmt.HEADER_SIZE] == header.pack()
    assert len(blob) == fmt.HEADER_SIZE + len(b"payload") + fmt.TAG_SIZE
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assert AESGCM(key).decrypt(NONCE, blob[fmt.HEADER_SIZE :], header.pack()) == b"payload"
    assert fmt.open_sealed(header, key, blob, path="v") == b"payload"


def test_wrong_key_or_altered_bytes_fail_authentication() -> None:
    key = os.urandom(32)
    header = keyring_header()
    blob = fmt.seal(header, key, b"payload")
    for bad_key, bad_blob in (
        (os.urandom(32), blob),
        (key, blob[:-1] + bytes([blob[-1] ^ 1])),
        (key, blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]),
    ):
        with pytest.raises(IntegrityError) as info:
            fmt.open_sealed(header, bad_key, bad_blob, path="/v/vault.enc")
        assert str(info.value) == (
            "vault file /v/vault.enc failed authentication: it was altered, damaged, or the key "
            "or passphrase is wrong"
        )
        assert info.value.hint == "the file was left as it is; restore a backup if it was damaged"
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
    # the nonce comes from the parsed header: another nonce cannot open it
    with pytest.raises(IntegrityError, match="failed authentication"):
        fmt.open_sealed(keyring_header(nonce=bytes(12)), key, blob, path="v")


def test_other_errors_are_not_reported_as_tampering() -> None:
    header = keyring_header()
    with pytest.raises(ValueError, match="AESGCM key must be 128, 192, or 256 bits"):
        fmt.open_sealed(header, b"short", fmt.seal(header, os.urandom(32), b"x"), path="v")


@given(st.binary(max_size=200))
def test_seal_open_round_trip(payload: bytes) -> None:
    key = bytes(32)
    header = argon_header()
    blob = fmt.seal(header, key, payload)
    parsed = fmt.parse_header(blob, path="v")
    assert parsed == header
    assert fmt.open_sealed(parsed, key, blob, path="v") == payload
