"""The vault's audit signing key in the store: made with a vault; for a vault made before
there were signing keys, made and written into the vault by the first command that writes,
and nothing signed with it until it is there; `seal` signs; the last signature's time kept
with the audit mark (inside the vault and with the key)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.store.test_audit_mark import MemoryBackend, _do, _generation, _store
from vault.audit.chain import Hwm
from vault.audit.signing import Signer
from vault.keys.base import Marks
from vault.store.model import meta_of, with_meta
from vault.store.vault import Store
from vault.util.record import replace


def _events(path: Path) -> list[str]:
    return [json.loads(line)["event"] for line in path.read_text().splitlines()]


def _as_made_before_signing_keys(store: Store, backend: MemoryBackend) -> None:
    """The vault rewritten without its signing key, as a vault of an earlier version is."""
    opened = store._open()
    assert opened is not None
    old = replace(meta_of(opened.payload), signing_key=None)
    header = opened.header.next_write(opened.header.generation + 1)
    store._write_vault(header, opened.key, with_meta(opened.payload, old))
    backend.current = Marks(header.generation, backend.current.audit)


def test_a_new_vault_has_a_key_and_seal_signs_with_it() -> None:
    with _store() as (store, backend):
        _do(store, "issue", 0)
        snapshot = store.read()
        assert snapshot is not None
        key = snapshot.meta.signing_key
        assert key is not None
        assert _events(store.paths.audit_file) == ["issued"]  # nothing signed at creation
        record = store.seal()
        assert record["event"] == "chain_signed"
        assert record["head_seq"] == 1
        assert record["key_fingerprint"] == Signer(key).fingerprint
        assert store.signing_key() == key  # unchanged, nothing written for it
        after = store.read()
        assert after is not None
        inside = Hwm.load(after.meta.audit)
        assert inside.seq == 2
        assert inside.signed > 0  # when it was signed, inside the vault ...
        assert backend.current.audit is not None
        assert Hwm.load(backend.current.audit).signed == inside.signed  # ... and with the key


def test_a_vault_made_before_signing_keys_gets_one_before_anything_is_signed() -> None:
    with _store() as (store, backend):
        _do(store, "issue", 0)
        _as_made_before_signing_keys(store, backend)
        snapshot = store.read()
        assert snapshot is not None
        assert snapshot.meta.signing_key is None
        before = _generation(store)
        _do(store, "use", 1)  # a use, which alone would not write the vault
        assert _generation(store) > before  # written: it holds the new key now
        made = store.read()
        assert made is not None
        assert made.meta.signing_key is not None
        assert _events(store.paths.audit_file) == ["issued", "used"]  # not signed yet
        assert store.seal()["key_fingerprint"] == Signer(made.meta.signing_key).fingerprint
        assert store.signing_key() == made.meta.signing_key


def test_pubkey_of_an_old_vault_makes_the_key_once() -> None:
    with _store() as (store, backend):
        _do(store, "issue", 0)
        _as_made_before_signing_keys(store, backend)
        first = store.signing_key()
        assert store.signing_key() == first
        assert _events(store.paths.audit_file) == ["issued"]
