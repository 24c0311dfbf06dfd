"""HMAC-SHA-256 (RFC 2104) for the few short messages one command MACs: its audit records,
the fingerprint of a token, the passphrase backend's key file.

On the interpreter's built-in SHA-256 rather than `hashlib`/`hmac`, which load OpenSSL's
libcrypto and read its configuration (~5 ms of a ~65 ms `vault token`). The built-in hash is
slower per byte (2.1 µs against 0.85 µs for a 400-byte record), which is nothing for a handful of
records; `vault audit verify`, which hashes millions, uses `hashlib` (see vault.audit.chain).
tests/test_hot_path.py checks these functions against the standard library's.
"""

from __future__ import annotations

from vault.secret import compare_digest  # constant time, without importing hmac

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time

if TYPE_CHECKING:
    from hashlib import sha256
else:
    try:
        from _sha256 import sha256  # CPython up to 3.11
    except ImportError:  # other versions and interpreters
        try:
            from _sha2 import sha256  # CPython 3.12+
        except ImportError:
            from hashlib import sha256

__all__ = ["compare_digest", "digest", "hexdigest"]

_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def digest(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA-256 of ``msg`` under ``key``, as ``hmac.digest(key, msg, "sha256")``."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(key.translate(_IPAD))
    inner.update(msg)
    outer = sha256(key.translate(_OPAD))
    outer.update(inner.digest())
    return outer.digest()


def hexdigest(key: bytes, msg: bytes) -> str:
    return digest(key, msg).hex()
