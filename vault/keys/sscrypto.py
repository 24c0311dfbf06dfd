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

AES-CBC is cryptography's compiled cipher. The only way to it is the
``cryptography.hazmat.primitives.ciphers`` package (its compiled entry point imports that
package to look the AES and CBC classes up), which imports ``typing``: :func:`load_cipher`
imports it, and vault.keys.secretservice calls it once its first write is on the bus, while the
service computes its half of the exchange. HMAC-SHA-256 is vault.util.mac's (no hashlib or hmac
on the `vault token` path), the exponentiation is ``pow``, the private exponent 256 bits from
``os.urandom`` (what ``secrets`` reads; ``secrets`` itself would import hmac and hashlib).
bench/NOTES.md gives the measured costs.

Side channels: Python's ``pow`` does not run in constant time. What the algorithm defends
against is the secret being readable on the bus (a monitor, a capture, a log of the traffic);
code running as the user can ask the Secret Service for the key directly anyway (SECURITY.md).
"""

from __future__ import annotations

import os

from vault.util.mac import digest as hmac_sha256

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import Cipher
    from cryptography.hazmat.primitives.ciphers.modes import CBC

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


def load_cipher() -> None:
    """Import cryptography's cipher package now (see the module's docstring)."""
    import cryptography.hazmat.primitives.ciphers  # noqa: F401


def _cipher(key: bytes, iv: bytes) -> Cipher[CBC]:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.CBC(iv))


def cbc_encrypt(key: bytes, iv: bytes, plain: bytes) -> bytes:
    """AES-128-CBC of ``plain`` padded with PKCS#7 (always 1 to 16 bytes of padding)."""
    pad = BLOCK - len(plain) % BLOCK
    encryptor = _cipher(key, iv).encryptor()
    return bytes(encryptor.update(plain + bytes((pad,)) * pad) + encryptor.finalize())


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """The plaintext of AES-128-CBC ``data`` with PKCS#7 padding; SessionCryptoError if the IV,
    the length or the padding is wrong."""
    if len(iv) != BLOCK:
        raise SessionCryptoError(f"an IV of {len(iv)} bytes, not {BLOCK}")
    if not data or len(data) % BLOCK:
        raise SessionCryptoError(
            f"a ciphertext of {len(data)} bytes, not a positive multiple of {BLOCK}"
        )
    decryptor = _cipher(key, iv).decryptor()
    padded = bytes(decryptor.update(data) + decryptor.finalize())
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
