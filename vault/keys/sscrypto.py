"""The Secret Service's ``dh-ietf1024-sha256-aes128-cbc-pkcs7`` session algorithm, for
vault.keys.secretservice: what libsecret and secretstorage use, so that a secret never crosses
the session bus in clear (Secret Service API, "Transfer of Secrets").

* Diffie-Hellman in the 1024-bit MODP group of RFC 2409, section 6.2 (generator 2): our public
  value goes as OpenSession's ``ay`` input, the service's comes back as its output and must lie
  in 1 < y < p - 1.
* The shared secret ``pow(y, x, p)``, big-endian and left-padded with zeros to the prime's 128
  bytes (as libsecret, gnome-keyring and secretstorage pad it), goes through HKDF-SHA-256
  (RFC 5869) with no salt and empty info; its 16 bytes are the AES-128 key.
* Each secret is AES-128-CBC with PKCS#7 padding under a fresh random 16-byte IV, which is the
  secret's ``parameters``.

AES-CBC is OpenSSL's, reached one of two ways. First the system's libcrypto (OpenSSL 3 or
1.1, the library Python's own ``_ssl`` and ``_hashlib`` are built on) through ``_ctypes``, the C
half of ``ctypes`` that `vault token` has loaded already (vault.cli.main); else cryptography's
compiled cipher, whose only entry point is the ``cryptography.hazmat.primitives.ciphers``
package (which imports ``typing``). Both give the same bytes (tests/unit/keys/test_sscrypto.py
checks each against NIST SP 800-38A and against the other); the padding is ours on either path,
so a refusal reads the same. :func:`load_cipher` makes the choice, and vault.keys.secretservice
calls it once its first write is on the bus, while the service computes its half of the
exchange. HMAC-SHA-256 is vault.util.mac's (no hashlib or hmac on the `vault token` path), the
exponentiation is ``pow``, the private exponent 256 bits from ``os.urandom`` (what ``secrets``
reads; ``secrets`` itself would import hmac and hashlib). bench/NOTES.md gives the measured
costs.

Side channels: Python's ``pow`` does not run in constant time. What the algorithm defends
against is the secret being readable on the bus (a monitor, a capture, a log of the traffic);
code running as the user can ask the Secret Service for the key directly anyway (SECURITY.md).
"""

from __future__ import annotations

import os

from vault.util.mac import digest as hmac_sha256

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

ALGORITHM = "dh-ietf1024-sha256-aes128-cbc-pkcs7"

# RFC 2409, 6.2: the Second Oakley Group, 2^1024 - 2^960 - 1 + 2^64 * (floor(2^894 pi) + 129093).
PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)
GENERATOR = 2
PRIME_BYTES = 128
# A 256-bit private exponent: a discrete logarithm with it costs ~2^128 (Pollard's kangaroo),
# more than the 1024-bit group itself offers (~2^80); NIST SP 800-56A asks for twice the group's
# strength. A full-length exponent costs four times as much in ``pow``.
PRIVATE_BITS = 256
BLOCK = 16
KEY_BYTES = 16


class SessionCryptoError(ValueError):
    """The service's public value or an encrypted secret is unusable (the message never holds
    any of the data)."""


def hkdf_sha256(ikm: bytes, *, salt: bytes = b"", info: bytes = b"", length: int) -> bytes:
    """HKDF-SHA-256 (RFC 5869): extract with ``salt`` (none: 32 zero bytes), expand to
    ``length`` bytes with ``info``."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA-256 gives 1 to 8160 bytes")
    prk = hmac_sha256(salt or bytes(32), ikm)
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac_sha256(prk, block + info + bytes((counter,)))
        out += block
    return out[:length]


# libcrypto's names for the library, newest first; the ABI of the calls below is the same in both.
LIBCRYPTO = ("libcrypto.so.3", "libcrypto.so.1.1")


class _Native:
    """libcrypto's ``EVP_aes_128_cbc`` through ``_ctypes``, with OpenSSL's padding off (ours is
    applied around it). Every function has its argument types declared, so a pointer is never
    passed as a C int; a key or IV of another length is refused before a call (it would be read
    past its end)."""

    __slots__ = (
        "_aes",
        "_c",
        "_char",
        "_final",
        "_free",
        "_init",
        "_int",
        "_new",
        "_pad",
        "_update",
    )
    _c: Any
    _char: Any
    _int: Any
    _new: Any
    _free: Any
    _aes: Any
    _init: Any
    _pad: Any
    _update: Any
    _final: Any

    def __init__(self, c: Any, handle: int) -> None:
        self._c = c
        p = type("c_void_p", (c._SimpleCData,), {"_type_": "P"})
        i = self._int = type("c_int", (c._SimpleCData,), {"_type_": "i"})
        self._char = type("c_char", (c._SimpleCData,), {"_type_": "c"})
        lib = type("libcrypto", (), {"_handle": handle})

        def function(name: str, restype: Any, *argtypes: Any) -> Any:
            kind = type(name, (c.CFuncPtr,), {"_flags_": c.FUNCFLAG_CDECL, "_restype_": restype})
            f = kind((name, lib))
            f.argtypes = argtypes
            return f

        self._new = function("EVP_CIPHER_CTX_new", p)
        self._free = function("EVP_CIPHER_CTX_free", None, p)
        self._aes = function("EVP_aes_128_cbc", p)
        self._init = function("EVP_CipherInit_ex", i, p, p, p, p, p, i)
        self._pad = function("EVP_CIPHER_CTX_set_padding", i, p, i)
        self._update = function("EVP_CipherUpdate", i, p, p, p, p, i)
        self._final = function("EVP_CipherFinal_ex", i, p, p, p)

    def cbc(self, key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes | None:
        """AES-128-CBC of whole blocks without padding; None if libcrypto refused a call."""
        if len(key) != KEY_BYTES or len(iv) != BLOCK or not data or len(data) % BLOCK:
            raise ValueError("AES-128-CBC takes a 16-byte key and IV and whole blocks")
        ctx = self._new()
        if not ctx:
            return None
        out = (self._char * len(data))()
        written, tail = self._int(0), self._int(0)
        byref = self._c.byref
        try:
            done = (
                self._init(ctx, self._aes(), None, key, iv, 1 if encrypt else 0) == 1
                and self._pad(ctx, 0) == 1
                and self._update(ctx, out, byref(written), data, len(data)) == 1
                and written.value == len(data)
                and self._final(ctx, out, byref(tail)) == 1
                and tail.value == 0
            )
            result: bytes | None = out.raw if done else None
            out.raw = bytes(len(data))  # the plaintext is not left in this buffer
            return result
        finally:
            self._free(ctx)


_CHOICE: list[_Native | None] = []  # empty until load_cipher has chosen, once per process


def load_cipher() -> None:
    """Choose the way to AES-CBC now (see the module's docstring): libcrypto if it loads and
    has the calls, else import cryptography's cipher package."""
    if not _CHOICE:
        found = _load_native()
        if found is None:
            import cryptography.hazmat.primitives.ciphers  # noqa: F401
        _CHOICE.append(found)


def _native() -> _Native | None:
    load_cipher()
    return _CHOICE[0]


def _load_native() -> _Native | None:
    try:
        import _ctypes
    except ImportError:  # an interpreter built without libffi
        return None
    c: Any = _ctypes  # used as ctypes/__init__.py uses it
    for name in LIBCRYPTO:
        try:
            return _Native(c, c.dlopen(name, c.RTLD_LOCAL))
        except (OSError, AttributeError):  # not there, or not the calls we need
            continue
    return None


def native() -> bool:
    """Whether AES-CBC goes through the system's libcrypto in this process."""
    return _native() is not None


def _cryptography_cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return bytes(context.update(data) + context.finalize())


def _cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    lib = _native()
    if lib is not None:
        result = lib.cbc(key, iv, data, encrypt=encrypt)
        if result is not None:
            return result
    return _cryptography_cbc(key, iv, data, encrypt=encrypt)


def cbc_encrypt(key: bytes, iv: bytes, plain: bytes) -> bytes:
    """AES-128-CBC of ``plain`` padded with PKCS#7 (always 1 to 16 bytes of padding)."""
    pad = BLOCK - len(plain) % BLOCK
    return _cbc(key, iv, plain + bytes((pad,)) * pad, encrypt=True)


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """The plaintext of AES-128-CBC ``data`` with PKCS#7 padding; SessionCryptoError if the IV,
    the length or the padding is wrong."""
    if len(iv) != BLOCK:
        raise SessionCryptoError(f"an IV of {len(iv)} bytes, not {BLOCK}")
    if not data or len(data) % BLOCK:
        raise SessionCryptoError(
            f"a ciphertext of {len(data)} bytes, not a positive multiple of {BLOCK}"
        )
    padded = _cbc(key, iv, data, encrypt=False)
    pad = padded[-1]
    if not 1 <= pad <= BLOCK or padded[-pad:] != bytes((pad,)) * pad:
        raise SessionCryptoError("a ciphertext whose padding is wrong (not PKCS#7 under this key)")
    return padded[:-pad]


def _bytes_of(value: int) -> bytes:
    """Big-endian, as short as it goes (as libsecret and secretstorage send their values)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


class Session:
    """Our half of one session's key exchange, then its AES key.

    ``public`` goes in OpenSession; :meth:`accept` checks the service's value; :meth:`derive`
    computes the key (the costly part, run when it suits the caller); :meth:`encrypt` and
    :meth:`decrypt` derive it if that has not been done yet."""

    __slots__ = ("_key", "_peer", "_private", "public")

    def __init__(self, private: int | None = None) -> None:
        if private is None:  # 256 random bits, the top one set: never 0 or 1
            private = int.from_bytes(os.urandom(PRIVATE_BITS // 8), "big") | 1 << PRIVATE_BITS - 1
        elif not 1 < private < PRIME - 1:
            raise ValueError("a private exponent must lie in 1 < x < p - 1")
        self._private = private
        self._peer: int | None = None
        self._key: bytes | None = None
        self.public = _bytes_of(pow(GENERATOR, private, PRIME))

    def __repr__(self) -> str:
        return "Session(<key exchange>)"  # never the exponent or the key

    def accept(self, peer: bytes) -> None:
        """The service's public value, checked: 1 < y < p - 1 (0, 1 and p - 1 would give a
        shared secret anyone can guess)."""
        value = int.from_bytes(peer, "big")
        if not 1 < value < PRIME - 1:
            raise SessionCryptoError("a public value outside 1 < y < p - 1")
        self._peer, self._key = value, None

    def derive(self) -> bytes:
        """The session's AES-128 key (computed once)."""
        if self._key is None:
            if self._peer is None:
                raise SessionCryptoError("no public value from the service yet")
            shared = pow(self._peer, self._private, PRIME).to_bytes(PRIME_BYTES, "big")
            self._key = hkdf_sha256(shared, length=KEY_BYTES)
        return self._key

    def encrypt(self, plain: bytes) -> tuple[bytes, bytes]:
        """(IV, ciphertext) of ``plain`` under a fresh random IV."""
        iv = os.urandom(BLOCK)
        return iv, cbc_encrypt(self.derive(), iv, plain)

    def decrypt(self, iv: bytes, data: bytes) -> bytes:
        return cbc_decrypt(self.derive(), iv, data)
