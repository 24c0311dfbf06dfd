"""HMAC-SHA-256 (RFC 2104): the one implementation in vault.

:func:`keyed` pads a key once and returns a MAC function that starts every message from copies
of the two padded-key hash states, computed once. The SHA-256 constructor is a parameter: by
default the interpreter's built-in one, which loads neither `hashlib` nor `hmac` (nor OpenSSL);
a caller that hashes many messages can pass ``hashlib.sha256``. :func:`digest` and
:func:`hexdigest` are one-message shorthands on the built-in constructor. Every function equals
the standard library's ``hmac`` for any key and message (tests/unit/util/test_mac.py). See
bench/NOTES.md, "Why the code is written as it is".
"""

from __future__ import annotations

from vault.secret import compare_digest  # constant time, without importing hmac

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time

if TYPE_CHECKING:
    from collections.abc import Callable
    from hashlib import sha256
    from typing import Protocol, Self

    class Hash(Protocol):
        """What :func:`keyed` needs of a hash object (``hashlib``'s and the built-in's)."""

        def update(self, data: bytes, /) -> None: ...
        def digest(self) -> bytes: ...
        def hexdigest(self) -> str: ...
        def copy(self) -> Self: ...

    Sha256 = Callable[[bytes], Hash]
    """A SHA-256 constructor: ``new(data)`` is a hash object that has been fed ``data``."""
    Mac = Callable[..., bytes]
else:
    try:
        from _sha256 import sha256  # CPython up to 3.11
    except ImportError:  # other versions and interpreters
        try:
            from _sha2 import sha256  # CPython 3.12+
        except ImportError:
            from hashlib import sha256

__all__ = ["compare_digest", "digest", "hexdigest", "keyed", "keyed_hex", "sha256"]

_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _pad_states(key: bytes, new: Sha256) -> tuple[Hash, Hash]:
    """The inner and outer hash states after the padded key's block (RFC 2104, section 2)."""
    if len(key) > _BLOCK:
        key = new(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    return new(padded.translate(_IPAD)), new(padded.translate(_OPAD))


def keyed(key: bytes, new: Sha256 = sha256) -> Mac:
    """``mac(*parts)``: the 32-byte HMAC-SHA-256 under ``key`` of the parts joined, as
    ``hmac.digest(key, b"".join(parts), "sha256")``, hashed with the constructor ``new``."""
    return _keyed(key, new, hexed=False)


def keyed_hex(key: bytes, new: Sha256 = sha256) -> Mac:
    """As :func:`keyed`, but the MAC is its 64 lowercase hex digits as ASCII bytes."""
    return _keyed(key, new, hexed=True)


def _keyed(key: bytes, new: Sha256, *, hexed: bool) -> Mac:
    inner, outer = _pad_states(key, new)

    def mac(*parts: bytes) -> bytes:
        h = inner.copy()
        h.update(b"".join(parts))
        o = outer.copy()
        o.update(h.digest())
        return o.hexdigest().encode() if hexed else o.digest()

    return mac


def digest(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA-256 of ``msg`` under ``key``, as ``hmac.digest(key, msg, "sha256")``."""
    inner, outer = _pad_states(key, sha256)
    inner.update(msg)
    outer.update(inner.digest())
    return outer.digest()


def hexdigest(key: bytes, msg: bytes) -> str:
    """:func:`digest` as 64 lowercase hex digits."""
    return digest(key, msg).hex()
