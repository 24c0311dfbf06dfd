"""The vault file's bytes: a fixed header bound as associated data, then AES-256-GCM.

Layout (big-endian)::

    magic        8  b"VAULTENC"
    version      2  format version (1)
    kdf          1  1 = random key held in the OS keyring, 2 = Argon2id passphrase
    key_id       4  which keyring key (random); zero for the passphrase backend
    t_cost       4  Argon2id passes        (zero for the keyring backend)
    m_cost       4  Argon2id memory in KiB (zero for the keyring backend)
    parallelism  4  Argon2id lanes         (zero for the keyring backend)
    salt        16  Argon2id salt          (zero for the keyring backend)
    vault_id    16  random, fixed for the life of the vault
    generation   8  grows by one on every write; rollback is checked against a stored copy
    nonce       12  fresh and random on every write
    ciphertext  ..  AES-256-GCM(payload), 16-byte tag at the end; AAD = the 79 header bytes

Every header byte is authenticated, so a flipped bit, a swapped header or a truncated file fails
the tag check and is refused.
"""

from __future__ import annotations

import os
import struct

from vault.errors import IntegrityError
from vault.util.record import datarecord, replace

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"VAULTENC"
VERSION = 1
KDF_KEYRING = 1
KDF_ARGON2ID = 2
KDF_NAMES = {KDF_KEYRING: "keyring", KDF_ARGON2ID: "passphrase"}

_HEADER = struct.Struct(">8sHB4sIII16s16sQ12s")
HEADER_SIZE = _HEADER.size
TAG_SIZE = 16
MAX_FILE_SIZE = 512 * 1024 * 1024

# RFC 9106 "second recommended option" (low memory): t=3, m=64 MiB, p=4.
ARGON2_T = 3
ARGON2_M_KIB = 64 * 1024
ARGON2_P = 4
# OWASP Password Storage Cheat Sheet: the equal-strength minimum configurations for Argon2id.
OWASP_FLOOR = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
# Upper bounds, so that a hostile file cannot make us allocate or spin without end.
ARGON2_MAX_M_KIB = 4 * 1024 * 1024
ARGON2_MAX_T = 64
ARGON2_MAX_P = 64


@datarecord(frozen=True)
class Header:
    kdf: int
    key_id: bytes
    t_cost: int
    m_cost: int
    parallelism: int
    salt: bytes
    vault_id: bytes
    generation: int
    nonce: bytes
    version: int = VERSION

    @property
    def backend(self) -> str:
        return KDF_NAMES[self.kdf]

    def pack(self) -> bytes:
        return _HEADER.pack(
            MAGIC,
            self.version,
            self.kdf,
            self.key_id,
            self.t_cost,
            self.m_cost,
            self.parallelism,
            self.salt,
            self.vault_id,
            self.generation,
            self.nonce,
        )

    def next_write(self, generation: int) -> Header:
        """The header for the next write: a fresh nonce and the given generation."""
        return replace(self, generation=generation, nonce=os.urandom(12))


def argon2_params_acceptable(t_cost: int, m_cost: int, parallelism: int) -> bool:
    if not (1 <= parallelism <= ARGON2_MAX_P and t_cost <= ARGON2_MAX_T):
        return False
    if m_cost > ARGON2_MAX_M_KIB:
        return False
    return any(m_cost >= m and t_cost >= t for m, t in OWASP_FLOOR)


def parse_header(blob: bytes, *, path: str) -> Header:
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise IntegrityError(f"vault file {path} is truncated ({len(blob)} bytes)")
    fields = _HEADER.unpack_from(blob)
    magic, version, kdf, key_id, t, m, p, salt, vault_id, generation, nonce = fields
    if magic != MAGIC:
        raise IntegrityError(f"{path} is not a vault file (bad magic bytes)")
    if version != VERSION:
        raise IntegrityError(
            f"vault file {path} has format version {version}; this vault reads version {VERSION}",
            hint="upgrade vault" if version > VERSION else None,
        )
    if kdf == KDF_KEYRING:
        if (t, m, p) != (0, 0, 0) or salt != bytes(16):
            raise IntegrityError(f"vault file {path} has a malformed header")
    elif kdf == KDF_ARGON2ID:
        if not argon2_params_acceptable(t, m, p):
            raise IntegrityError(
                f"vault file {path} asks for Argon2id t={t} m={m} KiB p={p}, outside the "
                "accepted range (below OWASP's minimum or absurdly large)",
                hint="a file with weak key-derivation parameters was not written by vault",
            )
        if key_id != bytes(4):
            raise IntegrityError(f"vault file {path} has a malformed header")
    else:
        raise IntegrityError(f"vault file {path} names an unknown key backend ({kdf})")
    return Header(kdf, key_id, t, m, p, salt, vault_id, generation, nonce, version)


def aesgcm() -> type[AESGCM]:
    """cryptography's AESGCM class. ``cryptography.hazmat.primitives.ciphers.aead`` re-exports
    it from the compiled module, but importing it there first imports every cipher, mode and
    "decrepit" algorithm in the package; taken from the compiled module directly when it is
    where this version keeps it (tests/integration/test_hot_path.py checks it is the very same
    class), from the public module otherwise."""
    try:
        from cryptography.hazmat.bindings._rust import openssl

        cls: type[AESGCM] = openssl.aead.AESGCM
    except (ImportError, AttributeError):  # another layout: the documented import
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as cls
    return cls


def seal(header: Header, key: bytes, payload: bytes) -> bytes:
    aad = header.pack()
    return aad + aesgcm()(key).encrypt(header.nonce, payload, aad)


def open_sealed(header: Header, key: bytes, blob: bytes, *, path: str) -> bytes:
    aad = blob[:HEADER_SIZE]
    try:
        # A view, not a slice: no copy of a large vault before decrypting it.
        return aesgcm()(key).decrypt(header.nonce, memoryview(blob)[HEADER_SIZE:], aad)
    except Exception as exc:
        # Imported only now: cryptography.exceptions imports typing, which a successful
        # decryption never needs.
        from cryptography.exceptions import InvalidTag

        if not isinstance(exc, InvalidTag):
            raise
        raise IntegrityError(
            f"vault file {path} failed authentication: it was altered, damaged, or the key "
            "or passphrase is wrong",
            hint="the file was left as it is; restore a backup if it was damaged",
        ) from None
