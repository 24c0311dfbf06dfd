"""vault.util.mac, the one HMAC-SHA-256 in vault, against the standard library's ``hmac``: on the
built-in SHA-256 and on ``hashlib``'s, for keys shorter than, as long as and longer than a block,
and for messages given in parts."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from vault.audit.chain import chain_mac_function, seal_line
from vault.util import mac

KEYS = st.binary(max_size=200)  # block size 64: short, exact and hashed-first keys
PARTS = st.lists(st.binary(max_size=300), max_size=5)


@given(key=KEYS, msg=st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_digest_is_hmac_sha256(key: bytes, msg: bytes) -> None:
    assert mac.digest(key, msg) == hmac.digest(key, msg, "sha256")
    assert mac.hexdigest(key, msg) == hmac.new(key, msg, hashlib.sha256).hexdigest()


@given(key=KEYS, parts=PARTS)
@settings(max_examples=200, deadline=None)
def test_keyed_is_hmac_sha256_of_the_parts_joined(key: bytes, parts: list[bytes]) -> None:
    expected = hmac.new(key, b"".join(parts), hashlib.sha256)
    for new in (mac.sha256, hashlib.sha256):
        assert mac.keyed(key, new)(*parts) == expected.digest()
        assert mac.keyed_hex(key, new)(*parts) == expected.hexdigest().encode()


def test_exact_block_and_long_keys() -> None:
    for size in (0, 1, 63, 64, 65, 128, 1000):
        key = bytes(i % 256 for i in range(size))
        assert mac.keyed(key)(b"m") == hmac.digest(key, b"m", "sha256"), size


def test_a_mac_function_can_be_called_again() -> None:
    once = mac.keyed(b"k")
    assert once(b"a") == once(b"a") == hmac.digest(b"k", b"a", "sha256")
    assert once(b"a", b"b") == hmac.digest(b"k", b"ab", "sha256")


@given(key=KEYS, prev=st.binary(max_size=64), body=st.binary(max_size=400))
@settings(max_examples=200, deadline=None)
def test_the_chain_mac_is_hmac_sha256(key: bytes, prev: bytes, body: bytes) -> None:
    expected = hmac.new(key, prev + b"\n" + body, hashlib.sha256).hexdigest().encode()
    assert chain_mac_function(key)(prev, b"\n", body) == expected


def test_verify_recomputes_what_seal_wrote() -> None:
    key = b"c" * 32
    line, sealed = seal_line(key, b"0" * 64, b'{"v":1,"seq":1}')
    body = line[: line.rfind(b',"mac":"')]
    assert chain_mac_function(key)(b"0" * 64, b"\n", body) == sealed


def test_compare_digest() -> None:
    assert mac.compare_digest(b"abc", b"abc")
    assert not mac.compare_digest(b"abc", b"abd")
    assert not mac.compare_digest(b"abc", b"abcd")


def test_importing_it_loads_neither_hashlib_nor_hmac() -> None:
    code = (
        "import sys\n"
        "from vault.util import mac\n"
        "mac.digest(b'k', b'm'); mac.keyed(b'k')(b'm')\n"
        "print(' '.join(m for m in ('hashlib', 'hmac', '_hashlib', 'typing') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
