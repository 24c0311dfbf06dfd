"""One contract, every key backend: the same tests run against the keyring backend (on a real
gnome-keyring in a private D-Bus session) and the passphrase backend (a real key file). A new
backend is one more entry in ``BACKENDS`` below, and must pass all of them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SecretService
from tests.fuzz.targets import private_dir, write_private
from vault.errors import IntegrityError, KeyringUnavailable
from vault.keys.base import KeyBackend, KeyParams, Marks
from vault.keys.keyring import KeyringBackend, KeyringStore
from vault.keys.passphrase import PassphraseBackend, PassphraseSource

STATE_KEY = bytes(range(32))
OTHER_STATE_KEY = bytes(32)


def _keyring(tmp_path: Path) -> KeyBackend:
    return KeyringBackend(KeyringStore())


def _passphrase(tmp_path: Path) -> KeyBackend:
    folder = private_dir(tmp_path / "pp")
    secret = folder / "passphrase"
    write_private(secret, b"correct horse battery staple\n")
    return PassphraseBackend(PassphraseSource(str(secret)), folder / "vault.key")


BACKENDS: dict[str, Callable[[Path], KeyBackend]] = {
    "keyring": _keyring,
    "passphrase": _passphrase,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    secret_service: SecretService,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KeyBackend]:
    for var, value in secret_service.env().items():
        monkeypatch.setenv(var, value)
    made = BACKENDS[request.param](tmp_path)
    assert made.name == request.param
    yield made
    if isinstance(made, KeyringBackend):
        made.keyring.close()


def _fresh(backend: KeyBackend, marks: Marks | None = None) -> tuple[bytes, KeyParams, bytes]:
    vault_id = os.urandom(16)
    params, key = backend.new_key(vault_id, STATE_KEY, marks or Marks(0), confirm=True)
    return vault_id, params, key


def test_a_new_key_unlocks_again(backend: KeyBackend) -> None:
    vault_id, params, key = _fresh(backend)
    assert len(key) == 32
    assert len(params.key_id) == 4
    assert len(params.salt) == 16
    assert backend.unlock(vault_id, params, where="here") == key


def test_two_new_keys_differ(backend: KeyBackend) -> None:
    _, _, first = _fresh(backend)
    _, _, second = _fresh(backend)
    assert first != second


def test_the_marks_given_with_a_new_key_are_kept(backend: KeyBackend) -> None:
    mark = {"seq": 7, "mac": "ab" * 32, "at": 1_700_000_000}
    vault_id, params, _ = _fresh(backend, Marks(4, mark))
    backend.unlock(vault_id, params, where="here")
    got = backend.marks(vault_id, STATE_KEY)
    assert got.generation == 4
    assert got.audit == mark


def test_saved_marks_are_read_back(backend: KeyBackend) -> None:
    vault_id, params, key = _fresh(backend)
    mark = {"seq": 12, "mac": "cd" * 32, "at": 1_700_000_100}
    assert backend.save_marks(vault_id, params, key, Marks(9, mark), STATE_KEY) is None
    assert backend.unlock(vault_id, params, where="here") == key
    assert backend.marks(vault_id, STATE_KEY) == Marks(9, mark)


def test_a_rotated_key_leaves_the_old_one_usable_until_the_marks_move(
    backend: KeyBackend,
) -> None:
    vault_id, old_params, old_key = _fresh(backend)
    backend.unlock(vault_id, old_params, where="here")
    new_params, new_key = backend.new_key(vault_id, STATE_KEY, Marks(1), confirm=True)
    assert new_key != old_key
    # A crash here leaves the old file on disk: its key must still be found.
    assert backend.unlock(vault_id, old_params, where="here") == old_key
    assert backend.unlock(vault_id, new_params, where="here") == new_key


def test_marks_of_another_vault_or_state_key_are_refused(backend: KeyBackend) -> None:
    vault_id, params, key = _fresh(backend)
    backend.save_marks(vault_id, params, key, Marks(3), STATE_KEY)
    backend.unlock(vault_id, params, where="here")
    if isinstance(backend, PassphraseBackend):
        # The key file is authenticated with the state key from inside the vault.
        with pytest.raises(IntegrityError, match="failed authentication"):
            backend.marks(vault_id, OTHER_STATE_KEY)
        with pytest.raises(IntegrityError, match="belongs to another vault"):
            backend.marks(os.urandom(16), STATE_KEY)
    else:
        with pytest.raises(RuntimeError):
            backend.marks(os.urandom(16), STATE_KEY)  # never another vault's entry


def test_a_retired_vault_cannot_be_unlocked_by_its_marks(backend: KeyBackend) -> None:
    vault_id, params, _ = _fresh(backend)
    assert backend.retire(vault_id) is None
    if isinstance(backend, KeyringBackend):
        with pytest.raises(KeyringUnavailable, match="is not in the"):
            backend.unlock(vault_id, params, where="here")
    else:
        with pytest.raises(IntegrityError, match="is missing"):
            backend.marks(vault_id, STATE_KEY)


def test_an_unknown_vault_is_refused(backend: KeyBackend) -> None:
    params = KeyParams(os.urandom(4), os.urandom(16), 3, 65536, 4)
    vault_id = os.urandom(16)
    if isinstance(backend, KeyringBackend):
        with pytest.raises(KeyringUnavailable, match=vault_id.hex()):
            backend.unlock(vault_id, params, where="here")
    else:
        backend.unlock(vault_id, params, where="here")  # derivation cannot know
        with pytest.raises(IntegrityError, match="is missing"):
            backend.marks(vault_id, STATE_KEY)


def test_probe_changes_nothing(backend: KeyBackend, tmp_path: Path) -> None:
    before = sorted(p.name for p in tmp_path.rglob("*"))
    backend.probe()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_label_names_the_backend(backend: KeyBackend) -> None:
    assert backend.label in {"Secret Service", "passphrase"}
