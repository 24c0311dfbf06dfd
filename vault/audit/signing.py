"""The vault's Ed25519 audit signing key: it signs the keyless chain's heads.

The private key is a 32-byte Ed25519 seed (RFC 8032), made with the vault and kept only inside
the encrypted vault (``vault.store.model.Meta.signing_key``, a :class:`vault.secret.Secret`
holding it in base64): never on disk in the clear, never in a log, a repr or an error. It
identifies the vault to auditors, so `vault rekey` (which rotates the data key) keeps it.

What is signed (:data:`DOMAIN` first, so a signature made here means nothing elsewhere) is the
signature record's own line up to its ``signature`` field: its seq, time, the head it signs
(``head_seq``, ``head_hash``), the key's fingerprint and its ``prev_sha256``. See
vault.audit.chain for the record and vault.audit.keyless for the check.

The public key is published as PEM (SubjectPublicKeyInfo) or as a fingerprint, computed as
OpenSSH does (``ssh-keygen -l``): ``SHA256:`` and the unpadded base64 of the SHA-256 of the
key's OpenSSH wire form (``string "ssh-ed25519", string key``).

``cryptography`` is imported only here, and only when a key is used: `vault token` signs at
most once an hour.
"""

from __future__ import annotations

import base64
import os

from vault.errors import UsageError
from vault.secret import Secret
from vault.util.mac import sha256

DOMAIN = b"vault audit chain head v1\n"
SEED_BYTES = 32


def new_seed() -> Secret:
    """A fresh private key (its seed, base64): 32 random bytes are a valid Ed25519 key."""
    return Secret(base64.b64encode(os.urandom(SEED_BYTES)).decode())


def _seed(key: Secret) -> bytes:
    raw = base64.b64decode(key.reveal(), validate=True)
    if len(raw) != SEED_BYTES:
        raise ValueError("an Ed25519 seed is 32 bytes")
    return raw


def fingerprint(public_raw: bytes) -> str:
    """``SHA256:<base64>`` of a raw 32-byte Ed25519 public key, as ``ssh-keygen -l`` shows it."""
    name = b"ssh-ed25519"
    blob = len(name).to_bytes(4, "big") + name + len(public_raw).to_bytes(4, "big") + public_raw
    return "SHA256:" + base64.b64encode(sha256(blob).digest()).decode().rstrip("=")


class Signer:
    """Signs chain heads with the vault's key. Its repr never shows the key."""

    __slots__ = ("_key", "fingerprint", "public_raw")

    def __init__(self, key: Secret) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._key = Ed25519PrivateKey.from_private_bytes(_seed(key))
        # public_bytes_raw, not public_bytes(Raw, Raw): serialization (and its ssh module)
        # is not imported to sign (bench/NOTES.md).
        self.public_raw = self._key.public_key().public_bytes_raw()
        self.fingerprint = fingerprint(self.public_raw)

    def sign(self, message: bytes) -> str:
        """The base64 signature of :data:`DOMAIN` + ``message``."""
        return base64.b64encode(self._key.sign(DOMAIN + message)).decode()

    def public_pem(self) -> str:
        return public_pem(self.public_raw)

    def public_openssh(self) -> str:
        """``ssh-ed25519 AAAA... vault-audit``: the form ``ssh-keygen -l -f`` fingerprints."""
        name = b"ssh-ed25519"
        blob = len(name).to_bytes(4, "big") + name + (32).to_bytes(4, "big") + self.public_raw
        return f"ssh-ed25519 {base64.b64encode(blob).decode()} vault-audit"

    def __repr__(self) -> str:
        return f"Signer(fingerprint={self.fingerprint!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Signer is not picklable")


def public_pem(public_raw: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PublicKey.from_public_bytes(public_raw)
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


class PublicKey:
    """A published public key (PEM), to check signatures with: all an auditor needs."""

    __slots__ = ("_key", "fingerprint", "raw")

    def __init__(self, raw: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self._key = Ed25519PublicKey.from_public_bytes(raw)
        self.raw = raw
        self.fingerprint = fingerprint(raw)

    @classmethod
    def from_pem(cls, data: bytes, *, source: str) -> PublicKey:
        """The key in ``data`` (PEM SubjectPublicKeyInfo, as `vault audit pubkey` prints it,
        or an OpenSSH ``ssh-ed25519 AAAA...`` line). Raises UsageError for anything else."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
            load_pem_public_key,
            load_ssh_public_key,
        )

        try:
            text = data.strip()
            key = (
                load_ssh_public_key(text) if text.startswith(b"ssh-") else load_pem_public_key(text)
            )
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise UsageError(
                f"{source} is not a public key (PEM or OpenSSH)",
                hint="`vault audit pubkey` prints the key in PEM",
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise UsageError(f"{source} is not an Ed25519 public key")
        return cls(key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def verifies(self, signature: str, message: bytes) -> bool:
        """Whether ``signature`` (base64) is this key's over :data:`DOMAIN` + ``message``."""
        from cryptography.exceptions import InvalidSignature

        try:
            raw = base64.b64decode(signature, validate=True)
            self._key.verify(raw, DOMAIN + message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"PublicKey(fingerprint={self.fingerprint!r})"
