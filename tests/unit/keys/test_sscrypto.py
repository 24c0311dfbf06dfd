"""vault.keys.sscrypto, the Secret Service's dh-ietf1024-sha256-aes128-cbc-pkcs7: the group,
AES-128-CBC against NIST SP 800-38A and cryptography's padding, HKDF against RFC 5869 and
cryptography's HKDF, the key exchange against secretstorage's implementation of the algorithm
(what the keyring package uses), the 128-byte padding of a short shared secret, and the checks
of the service's public value and of a ciphertext."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st
from secretstorage.dhcrypto import DH_PRIME_1024
from secretstorage.dhcrypto import Session as TheirSession

from vault.keys import sscrypto
from vault.keys.sscrypto import (
    PRIME,
    Session,
    SessionCryptoError,
    cbc_decrypt,
    cbc_encrypt,
    hkdf_sha256,
)

HYP = settings(max_examples=100, deadline=None)


@pytest.fixture(params=["libcrypto", "cryptography"], scope="module", autouse=True)
def cbc_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs on both ways to AES-CBC: the system's libcrypto and cryptography's."""
    sscrypto.load_cipher()
    saved = list(sscrypto._CHOICE)
    if request.param == "libcrypto" and saved[0] is None:
        pytest.skip("no libcrypto on this machine")
    if request.param == "cryptography":
        sscrypto._CHOICE[:] = [None]
    yield str(request.param)
    sscrypto._CHOICE[:] = saved


def _libcrypto_installed() -> bool:
    ldconfig = subprocess.run(
        ["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=False, timeout=30
    )
    return any(name in ldconfig.stdout for name in sscrypto.LIBCRYPTO)


@pytest.mark.skipif(sys.platform != "linux", reason="the Secret Service is Linux's")
def test_libcrypto_is_the_way_where_it_is_installed(cbc_path: str) -> None:
    if cbc_path == "libcrypto":
        assert _libcrypto_installed()  # the fixture found it, so ldconfig knows it
    elif _libcrypto_installed():
        sscrypto._CHOICE.clear()
        assert sscrypto.native()  # the choice made afresh takes libcrypto


def test_libcrypto_refuses_lengths_it_would_read_past(cbc_path: str) -> None:
    lib = sscrypto._CHOICE[0]
    if lib is None:
        pytest.skip("the libcrypto path only")
    for key, iv, data in [
        (bytes(15), bytes(16), bytes(16)),
        (bytes(17), bytes(16), bytes(16)),
        (bytes(16), bytes(15), bytes(16)),
        (bytes(16), bytes(16), bytes(15)),
        (bytes(16), bytes(16), b""),
    ]:
        with pytest.raises(ValueError, match="16-byte key"):
            lib.cbc(key, iv, data, encrypt=False)


def test_a_libcrypto_call_that_fails_falls_back_to_cryptography(
    cbc_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = sscrypto._CHOICE[0]
    if lib is None:
        pytest.skip("the libcrypto path only")
    monkeypatch.setattr(lib, "_init", lambda *args: 0)
    ours = cbc_encrypt(SP800_KEY, SP800_IV, SP800_PLAIN)
    assert ours[:64] == SP800_CIPHER
    assert cbc_decrypt(SP800_KEY, SP800_IV, ours) == SP800_PLAIN


def test_the_group_is_rfc_2409s_second_oakley_group() -> None:
    # 2^1024 - 2^960 - 1 + 2^64 * (floor(2^894 pi) + 129093), as secretstorage has it too.
    assert PRIME == DH_PRIME_1024
    assert PRIME.bit_length() == 1024
    assert PRIME >> 960 == (1 << 64) - 1
    assert PRIME & ((1 << 64) - 1) == (1 << 64) - 1
    assert pow(2, PRIME - 1, PRIME) == 1  # a (probable) prime
    assert pow(2, (PRIME - 1) // 2, PRIME) == 1  # a safe prime's generator 2: order q
    assert sscrypto.GENERATOR == 2
    assert sscrypto.ALGORITHM == "dh-ietf1024-sha256-aes128-cbc-pkcs7"


# NIST SP 800-38A, F.2.1 (CBC-AES128.Encrypt): four blocks, no padding in the vector.
SP800_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
SP800_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
SP800_PLAIN = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
SP800_CIPHER = bytes.fromhex(
    "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"
)


def test_cbc_against_nist_sp_800_38a() -> None:
    ours = cbc_encrypt(SP800_KEY, SP800_IV, SP800_PLAIN)
    assert ours[:64] == SP800_CIPHER
    assert len(ours) == 80  # a whole block of padding after whole blocks
    assert cbc_decrypt(SP800_KEY, SP800_IV, ours) == SP800_PLAIN


def _their_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


@HYP
@given(
    key=st.binary(min_size=16, max_size=16),
    iv=st.binary(min_size=16, max_size=16),
    data=st.binary(max_size=300),
)
def test_cbc_pkcs7_matches_cryptographys_padding(key: bytes, iv: bytes, data: bytes) -> None:
    ours = cbc_encrypt(key, iv, data)
    assert ours == _their_cbc(key, iv, data)
    assert cbc_decrypt(key, iv, ours) == data


# RFC 5869, appendix A: test cases 1 to 3 (SHA-256).
RFC5869 = [
    (
        "0b" * 22,
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (
        bytes(range(0x00, 0x50)).hex(),
        bytes(range(0x60, 0xB0)).hex(),
        bytes(range(0xB0, 0x100)).hex(),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41"
        "c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    (
        "0b" * 22,
        "",
        "",
        42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), RFC5869)
def test_hkdf_against_rfc_5869(ikm: str, salt: str, info: str, length: int, okm: str) -> None:
    got = hkdf_sha256(
        bytes.fromhex(ikm), salt=bytes.fromhex(salt), info=bytes.fromhex(info), length=length
    )
    assert got.hex() == okm


@HYP
@given(ikm=st.binary(max_size=200), length=st.integers(1, 100))
def test_hkdf_without_salt_or_info_matches_cryptographys(ikm: bytes, length: int) -> None:
    theirs = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=b"").derive(ikm)
    assert hkdf_sha256(ikm, length=length) == theirs


def test_hkdf_refuses_impossible_lengths() -> None:
    for length in (0, 255 * 32 + 1):
        with pytest.raises(ValueError, match="8160"):
            hkdf_sha256(b"x", length=length)


def _exchange(ours: Session, theirs: TheirSession) -> None:
    theirs.set_server_public_key(int.from_bytes(ours.public, "big"))
    ours.accept(theirs.my_public_key.to_bytes(128, "big"))


def test_the_exchange_agrees_with_secretstorages() -> None:
    for _ in range(5):
        ours, theirs = Session(), TheirSession()
        _exchange(ours, theirs)
        assert ours.derive() == theirs.aes_key
        assert len(ours.derive()) == 16
        # and the secrets one encrypts the other decrypts
        iv, data = ours.encrypt(b"the vault key")
        assert theirs.aes_key is not None
        dec = Cipher(algorithms.AES(theirs.aes_key), modes.CBC(iv)).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(dec.update(data) + dec.finalize()) + unpadder.finalize()
        assert plain == b"the vault key"


@HYP
@given(private=st.integers(2, PRIME - 2), peer=st.integers(2, PRIME - 2))
def test_the_key_is_hkdf_of_the_padded_shared_secret(private: int, peer: int) -> None:
    ours = Session(private)
    assert ours.public == pow(2, private, PRIME).to_bytes(128, "big").lstrip(b"\0")
    ours.accept(peer.to_bytes(128, "big"))
    shared = pow(peer, private, PRIME).to_bytes(128, "big")
    theirs = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=b"").derive(shared)
    assert ours.derive() == theirs


def test_a_short_shared_secret_is_padded_to_128_bytes() -> None:
    """2^x with x < 1016 has a leading zero byte (and more): the secret is still hashed as the
    prime's 128 bytes, as libsecret and secretstorage hash it, not its minimal encoding."""
    ours = Session(100)
    ours.accept((2).to_bytes(1, "big"))  # shared secret 2^100: 13 bytes, 115 zeros in front
    shared = (1 << 100).to_bytes(128, "big")
    padded = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=b"").derive(shared)
    unpadded = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=b"").derive(
        (1 << 100).to_bytes(13, "big")
    )
    assert ours.derive() == padded != unpadded
    # secretstorage agrees, with its own private value in place of the service's
    theirs = TheirSession()
    theirs.my_private_key = 100
    theirs.set_server_public_key(2)
    assert theirs.aes_key == padded


def test_private_exponents_are_random_256_bit() -> None:
    sessions = [Session() for _ in range(20)]
    assert len({s.public for s in sessions}) == 20
    for s in sessions:
        assert s._private.bit_length() == sscrypto.PRIVATE_BITS
        assert s.public == pow(2, s._private, PRIME).to_bytes(128, "big").lstrip(b"\0")
        assert repr(s) == "Session(<key exchange>)"
        assert str(s._private) not in repr(s)


@pytest.mark.parametrize(
    "value",
    [0, 1, PRIME - 1, PRIME, PRIME + 1, 1 << 1024, 1 << 2000],
    ids=["0", "1", "p-1", "p", "p+1", "2^1024", "2^2000"],
)
def test_unusable_public_values_are_refused(value: int) -> None:
    ours = Session()
    with pytest.raises(SessionCryptoError, match="outside"):
        ours.accept(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))
    with pytest.raises(SessionCryptoError, match="no public value"):
        ours.derive()


def test_the_extremes_of_the_range_are_accepted() -> None:
    for value in (2, PRIME - 2):
        Session().accept(value.to_bytes(128, "big"))
    with pytest.raises(SessionCryptoError):
        Session().accept(b"")  # no value: 0
    with pytest.raises(SessionCryptoError):
        Session().accept(bytes(200) + b"\x01")  # leading zeros do not hide a 1


def test_private_exponents_out_of_range_are_refused() -> None:
    for value in (0, 1, PRIME - 1):
        with pytest.raises(ValueError, match="private"):
            Session(value)


KEY = bytes(range(16))


@HYP
@given(iv=st.binary(max_size=40).filter(lambda b: len(b) != 16), data=st.binary(max_size=64))
def test_an_iv_that_is_not_16_bytes_is_refused(iv: bytes, data: bytes) -> None:
    with pytest.raises(SessionCryptoError, match="IV"):
        cbc_decrypt(KEY, iv, data)


@HYP
@given(data=st.binary(max_size=100).filter(lambda b: len(b) % 16 != 0 or not b))
def test_a_ciphertext_that_is_not_whole_blocks_is_refused(data: bytes) -> None:
    with pytest.raises(SessionCryptoError, match="multiple of 16"):
        cbc_decrypt(KEY, bytes(16), data)


def _raw(iv: bytes, padded: bytes) -> bytes:
    enc = Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


@HYP
@given(
    blocks=st.binary(min_size=16, max_size=96).map(lambda b: b[: len(b) - len(b) % 16]),
    pad=st.integers(0, 255),
    damage=st.integers(0, 15),
)
def test_wrong_padding_is_refused(blocks: bytes, pad: int, damage: int) -> None:
    """The plaintext's last block made to end in anything but PKCS#7 padding: a pad length of
    0 or above 16, or a correct length with one of its bytes changed."""
    last = bytearray(blocks[-16:])
    if 1 <= pad <= 16:
        last[16 - pad :] = bytes((pad,)) * pad
        at = 16 - pad + damage % pad
        if pad == 1:  # one byte of padding can only be wrong by its value
            last[15] = 0
        else:
            last[at if at != 15 else 14] ^= 0x80
    else:
        last[15] = pad
    padded = blocks[:-16] + bytes(last)
    iv = os.urandom(16)
    with pytest.raises(SessionCryptoError, match="padding") as caught:
        cbc_decrypt(KEY, iv, _raw(iv, padded))
    assert padded.hex() not in str(caught.value)


def test_errors_never_show_the_data() -> None:
    secret = b"S3CR3T-VALUE-0123456789"
    data = cbc_encrypt(KEY, bytes(16), secret)
    bad_padding = _raw(bytes(16), secret[:16])  # ends in "2": no PKCS#7 padding
    for iv, value in ((b"x", data), (bytes(16), data[:-1]), (bytes(16), bad_padding)):
        with pytest.raises(SessionCryptoError) as caught:
            cbc_decrypt(KEY, iv, value)
        text = str(caught.value)
        assert "S3CR3T" not in text
        assert value.hex()[:16] not in text
