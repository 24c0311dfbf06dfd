"""vault.keys.secretservice against a fake Secret Service (tests/harness/fake_secret_service.py):
the session is encrypted (the algorithm and our public value in OpenSession, every secret in
both directions AES-CBC under the agreed key, checked by secretstorage's half of the exchange
and cryptography's cipher), never "plain", not even when the service refuses; unusable public
values and ciphertexts are refused; and a prompt (KeePassXC's confirmation) is a failure,
never taken as done."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from secretstorage.dhcrypto import DH_PRIME_1024 as PRIME

from tests.harness.fake_secret_service import (
    ALGORITHM,
    PROMPT,
    SESSION_PATH,
    FakeSecretService,
    decrypt,
    encrypt,
)
from vault.errors import KeyringUnavailable
from vault.keys.dbus import parse_message
from vault.keys.keyring import KeyringBackend, KeyringStore
from vault.keys.secretservice import Refused, SecretService

ATTRS = {"service": "vault", "username": "0a0b"}
SECRET = '{"v":1,"keys":{"0a0b0c0d":"S2V5IG1hdGVyaWFsIHRoYXQgbXVzdCBub3QgbGVhaw=="}}'
FUZZ = settings(
    max_examples=30,
    deadline=timedelta(seconds=10),  # generous: 2 shared cores
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSecretService]:
    with FakeSecretService(tmp_path / "bus") as service:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.bus_address)
        monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
        monkeypatch.setenv("VAULT_KEYRING_TIMEOUT", "5")
        yield service


@contextlib.contextmanager
def _fresh_service(tmp_path: Path) -> Iterator[FakeSecretService]:
    """A new fake service for one hypothesis example (the function's fixtures are shared)."""
    with (
        FakeSecretService(tmp_path / f"bus-{os.urandom(4).hex()}") as service,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setenv("DBUS_SESSION_BUS_ADDRESS", service.bus_address)
        yield service


def _members_of(write: bytes) -> list[str]:
    """The members of the D-Bus messages in a connection's first write (after BEGIN)."""
    from vault.keys import dbus

    data = write.split(b"BEGIN\r\n", 1)[1]
    members = []
    while data:
        size = dbus.message_length(data[:16])
        members.append(str(parse_message(data[:size]).fields[dbus.MEMBER]))
        data = data[size:]
    return members


# --- the encrypted session -------------------------------------------------------------------


def test_open_session_asks_for_dh_with_a_public_value_in_the_first_write(
    fake: FakeSecretService,
) -> None:
    fake.add(ATTRS, SECRET.encode())
    with SecretService(5) as ss:
        assert ss.get(ATTRS) == SECRET
    [(algorithm, (sig, public))] = fake.bodies("OpenSession")
    assert (algorithm, sig) == (ALGORITHM, "ay")
    assert 1 < int.from_bytes(public, "big") < PRIME - 1
    assert len(public) <= 128
    # Still two round trips: the exchange rides in the first write with the first search.
    assert _members_of(fake.first_writes[0]) == ["Hello", "OpenSession", "SearchItems"]
    assert fake.members() == ["Hello", "OpenSession", "SearchItems", "GetSecrets"]


def test_each_connection_has_its_own_exchange(fake: FakeSecretService) -> None:
    fake.add(ATTRS, SECRET.encode())
    for _ in range(2):
        with SecretService(5) as ss:
            assert ss.get(ATTRS) == SECRET
    first, second = fake.bodies("OpenSession")
    assert first[1][1] != second[1][1]
    assert fake.keys[0] != fake.keys[1]


@FUZZ
@given(secret=st.text(min_size=1, max_size=600).filter(lambda s: "\0" not in s))
def test_any_secret_round_trips_encrypted(tmp_path: Path, secret: str) -> None:
    """What the client stores the service decrypts to the very text; what the service sends
    back encrypted the client reads; the text is in neither direction's bytes."""
    with _fresh_service(tmp_path) as service:
        with SecretService(5) as ss:
            ss.set(ATTRS, "label", secret)
        with SecretService(5) as ss:
            assert ss.get(ATTRS) == secret
        [item] = service.items.values()
        assert item.secret == secret.encode()
        [(_props, (session, iv, value, ctype), replace)] = service.bodies("CreateItem")
        assert (session, len(iv), ctype, replace) == (SESSION_PATH, 16, "text/plain", True)
        assert len(value) % 16 == 0
        assert len(value) > len(secret.encode())  # PKCS#7 always pads
        assert decrypt(service.keys[0], iv, value) == secret.encode()
        if len(secret.encode()) >= 4:
            assert secret.encode() not in bytes(service.received)


def test_create_item_sends_ciphertext_under_a_fresh_iv(fake: FakeSecretService) -> None:
    with SecretService(5) as ss:
        ss.set(ATTRS, "label", SECRET)
        ss.set(ATTRS, "label", SECRET)
    (_, first, _), (_, second, _) = fake.bodies("CreateItem")
    assert first[1] != second[1]  # a new IV for every secret
    assert first[2] != second[2]
    assert SECRET.encode() not in bytes(fake.received)
    assert b"S2V5IG1hdGVyaWFs" not in bytes(fake.received)


@pytest.mark.parametrize(
    "refusal", ["org.freedesktop.DBus.Error.NotSupported", "org.freedesktop.DBus.Error.Failed"]
)
def test_a_refused_algorithm_is_an_error_never_a_plain_session(
    fake: FakeSecretService, refusal: str
) -> None:
    fake.overrides["OpenSession"] = refusal
    fake.allow_plain = True  # it would accept plain: the client must not ask
    with SecretService(5) as ss:
        with pytest.raises(Refused, match="never sends its key in clear") as caught:
            ss.set(ATTRS, "label", SECRET)
        assert ALGORITHM in str(caught.value)
        assert caught.value.exit_code == 6
        assert "\n" not in str(caught.value)
        with pytest.raises(Refused, match="never sends its key in clear"):
            ss.get(ATTRS)  # the session stays refused
    assert [body[0] for body in fake.bodies("OpenSession")] == [ALGORITHM]
    assert "CreateItem" not in fake.members()
    assert b"plain" not in bytes(fake.received)
    assert SECRET.encode() not in bytes(fake.received)


@pytest.mark.parametrize(
    "output",
    [
        ("s", ""),  # what a plain session answers
        ("ay", b""),
        ("ay", b"\x00"),
        ("ay", b"\x01"),
        ("ay", (PRIME - 1).to_bytes(128, "big")),
        ("ay", PRIME.to_bytes(128, "big")),
        ("ay", (PRIME + 1).to_bytes(129, "big")),
        ("ay", b"\xff" * 200),
    ],
    ids=["plain", "empty", "0", "1", "p-1", "p", "p+1", "huge"],
)
def test_an_unusable_public_value_is_refused(
    fake: FakeSecretService, output: tuple[str, Any]
) -> None:
    fake.overrides["OpenSession"] = ("vo", (output, SESSION_PATH))
    with SecretService(5) as ss:
        with pytest.raises(KeyringUnavailable, match="unusable answer to OpenSession") as caught:
            ss.set(ATTRS, "label", SECRET)
        assert caught.value.exit_code == 6
        with pytest.raises(KeyringUnavailable, match="unusable answer to OpenSession"):
            ss.get(ATTRS)
    assert "CreateItem" not in fake.members()
    assert "GetSecrets" not in fake.members()


def _answer_secret(fake: FakeSecretService, iv: bytes, value: bytes) -> None:
    item = fake.add(ATTRS, b"unused")
    fake.overrides["GetSecrets"] = (
        "a{o(oayays)}",
        ({item: (SESSION_PATH, iv, value, "text/plain")},),
    )


@pytest.mark.parametrize(
    ("iv", "value"),
    [
        (bytes(16), b""),
        (bytes(16), b"x" * 15),
        (bytes(16), b"x" * 33),
        (b"", bytes(16)),
        (b"short", bytes(16)),
        (bytes(17), bytes(32)),
    ],
)
def test_a_malformed_iv_or_ciphertext_is_refused(
    fake: FakeSecretService, iv: bytes, value: bytes
) -> None:
    _answer_secret(fake, iv, value)
    with SecretService(5) as ss, pytest.raises(KeyringUnavailable, match="does not decrypt"):
        ss.get(ATTRS)


def _raw_encrypt(key: bytes, iv: bytes, padded: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


@FUZZ
@given(
    body=st.binary(max_size=80),
    tail=st.one_of(
        st.just(b"\x00"),  # a pad length of 0
        st.integers(17, 255).map(lambda n: bytes((n,))),  # longer than a block
        st.integers(2, 16).map(lambda n: bytes((n - 1,)) + bytes((n,))),  # inconsistent bytes
    ),
)
def test_a_ciphertext_with_bad_padding_is_refused(tmp_path: Path, body: bytes, tail: bytes) -> None:
    """A ciphertext that decrypts, under the session's own key, to something that is not
    PKCS#7-padded is refused, whatever the data before the padding."""
    plain = body + tail
    plain = bytes(-len(plain) % 16) + plain  # whole blocks, the bad tail last
    with _fresh_service(tmp_path) as service:

        def answer(args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
            iv = os.urandom(16)
            value = _raw_encrypt(service.keys[-1], iv, plain)
            return "a{o(oayays)}", ({args[0][0]: (SESSION_PATH, iv, value, "t")},)

        service.add(ATTRS, b"unused")
        service.overrides["GetSecrets"] = answer
        with (
            SecretService(5) as ss,
            pytest.raises(KeyringUnavailable, match="does not decrypt") as caught,
        ):
            ss.get(ATTRS)
    assert "padding" in str(caught.value)
    assert plain.hex() not in str(caught.value)


def test_a_ciphertext_under_another_key_is_refused(fake: FakeSecretService) -> None:
    iv, value = encrypt(b"k" * 16, SECRET.encode())
    _answer_secret(fake, iv, value)
    with SecretService(5) as ss, pytest.raises(KeyringUnavailable, match="does not decrypt"):
        ss.get(ATTRS)


# --- prompts ---------------------------------------------------------------------------------


def test_a_prompted_delete_is_a_failure_and_the_item_stays(fake: FakeSecretService) -> None:
    """KeePassXC answers Item.Delete with a prompt when it wants a confirmation: nothing is
    deleted until someone answers it. vault never answers: it dismisses it and fails."""
    fake.allow_plain = True  # only the prompt decides (today's plain client gets this far)
    item = fake.add(ATTRS, SECRET.encode())
    other = fake.add({"service": "vault", "username": "other"}, b"x")
    fake.prompt_delete = True
    with SecretService(5) as ss, pytest.raises(KeyringUnavailable, match="prompt") as caught:
        ss.delete(ATTRS)
    assert "not deleted" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 6
    assert item in fake.items
    assert (PROMPT, "Dismiss", ()) in fake.calls
    assert "Prompt" not in fake.members()  # never shown to anyone
    fake.prompt_delete = False  # no confirmation asked: the item goes, and only it
    with SecretService(5) as ss:
        ss.delete(ATTRS)
    assert list(fake.items) == [other]


def test_a_delete_in_a_locked_collection_is_a_failure(fake: FakeSecretService) -> None:
    fake.allow_plain = True
    item = fake.add(ATTRS, SECRET.encode())
    fake.locked = True
    with SecretService(5) as ss, pytest.raises(KeyringUnavailable, match="locked"):
        ss.delete(ATTRS)
    assert item in fake.items
    assert "Delete" not in fake.members()


def test_a_prompted_create_item_is_a_failure(fake: FakeSecretService) -> None:
    fake.allow_plain = True
    fake.prompt_create = True
    with SecretService(5) as ss, pytest.raises(KeyringUnavailable, match="not stored"):
        ss.set(ATTRS, "label", SECRET)
    assert fake.items == {}
    assert (PROMPT, "Dismiss", ()) in fake.calls


def test_retire_says_the_old_entry_remains_after_a_prompt(fake: FakeSecretService) -> None:
    vault_id = bytes(range(16))
    fake.allow_plain = True
    fake.add({"service": "vault", "username": vault_id.hex()}, SECRET.encode())
    fake.prompt_delete = True
    backend = KeyringBackend(KeyringStore())
    try:
        left = backend.retire(vault_id)
    finally:
        backend.keyring.close()
    assert left is not None
    assert "could not be deleted" in left
    assert "prompt" in left
    assert len(fake.items) == 1
    fake.prompt_delete = False
    backend = KeyringBackend(KeyringStore())
    try:
        assert backend.retire(vault_id) is None
    finally:
        backend.keyring.close()
    assert fake.items == {}
