"""The audit high-water mark cannot be rolled back apart from the vault.

The mark is kept with the key (the keyring entry, the passphrase backend's key file) and, each
time the vault is written, inside the encrypted vault too. Here the key backend is an in-memory
one that remembers every set of marks it was given, so a test can put back any of them alone
(what restoring an old `vault.key`, or an old keyring entry, does), cut the audit log to the
mark it holds, and check that `verify` still sees what was cut: the class of attack is the same
for every backend, and the defence is in the store, above them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.audit.chain import AuditLog, make_event, verify
from vault.errors import PolicyError
from vault.fs.paths import resolve
from vault.keys.base import KeyBackend, KeyParams, Marks
from vault.secret import Secret
from vault.store import format as fmt
from vault.store.model import TokenRecord
from vault.store.vault import Store


class MemoryBackend(KeyBackend):
    """A key backend in memory that keeps the history of the marks saved with it."""

    name = "keyring"

    def __init__(self) -> None:
        self.key = os.urandom(32)
        self.current = Marks(0)
        self.history: list[Marks] = []

    @property
    def label(self) -> str:
        return "memory"

    def probe(self) -> None:
        return None

    def unlock(self, vault_id: bytes, params: KeyParams, *, where: str) -> bytes:
        return self.key

    def marks(self, vault_id: bytes, state_key: bytes) -> Marks:
        return self.current

    def new_key(
        self,
        vault_id: bytes,
        state_key: bytes,
        marks: Marks,
        *,
        confirm: bool,
        new_secret: bool = False,
    ) -> tuple[KeyParams, bytes]:
        self._save(marks)
        return KeyParams(b"\x00\x00\x00\x01", bytes(16), 0, 0, 0), self.key

    def save_marks(
        self, vault_id: bytes, params: KeyParams, key: bytes, marks: Marks, state_key: bytes
    ) -> str | None:
        self._save(marks)
        return None

    def retire(self, vault_id: bytes) -> str | None:
        return None

    def _save(self, marks: Marks) -> None:
        self.current = marks
        self.history.append(marks)


@contextmanager
def _store() -> Iterator[tuple[Store, MemoryBackend]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "vh"
        store = Store(resolve({"VAULT_HOME": str(home)}), backend="keyring")
        backend = MemoryBackend()
        store._backends["keyring"] = backend
        yield store, backend


def _record(name: str) -> TokenRecord:
    return TokenRecord(
        name, "github", "https://github.com", "", "bearer", Secret("tok-" + name * 4), None, None,
        (), 1_700_000_000, None, None, "import",
    )  # fmt: skip


def _do(store: Store, op: str, n: int) -> None:
    if op == "issue":
        with store.edit() as ed:
            ed.put(_record(f"t{n}"))
            ed.audit(make_event("issued", name=f"t{n}"))
    elif op == "delete":
        with store.edit() as ed:
            names = [r.name for r in ed.records()]
            if names:
                ed.delete(names[0])
            ed.audit(make_event("deleted", name=names[0] if names else None))
    elif op == "use":
        with store.edit() as ed:
            ed.audit(make_event("used", name="a"))
    elif op == "refresh":  # a provider's answer: the vault first, then the log, then the vault
        with store.edit() as ed:
            ed.keep(_record(f"t{n}"), make_event("refreshed", name=f"t{n}"))
    else:  # a denial or a failure: the command fails, its record is still written
        try:
            with store.edit() as ed:
                ed.audit(make_event(op, name="a", outcome=op))
                raise PolicyError("refused")
        except PolicyError:
            pass


def _generation(store: Store) -> int:
    return fmt.parse_header(store.paths.vault_file.read_bytes(), path="v").generation


OPS = st.lists(
    st.sampled_from(["issue", "delete", "use", "refresh", "denied", "failure"]), max_size=8
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, data=st.data())
def test_marks_put_back_alone_never_hide_more_than_uses(
    ops: list[str], data: st.DataObject
) -> None:
    """Whatever happened, any older marks put back alone, with the log cut to them, leave
    `verify` failing unless every record cut is a successful use."""
    with _store() as (store, backend):
        _do(store, "issue", 0)
        for n, op in enumerate(ops, 1):
            _do(store, op, n)
        snapshot = store.read()
        assert snapshot is not None
        log = AuditLog(store.paths.audit_file, snapshot.meta.audit_key)
        assert verify(log, snapshot.hwm).ok
        lines = store.paths.audit_file.read_bytes().splitlines(keepends=True)
        old = data.draw(st.sampled_from(backend.history), label="marks put back")
        seq = int((old.audit or {}).get("seq", 0))
        backend.current = old
        store.paths.audit_file.write_bytes(b"".join(lines[:seq]))
        cut = lines[seq:]
        only_uses = all(b'"event":"used"' in ln and b'"outcome":"success"' in ln for ln in cut)
        rolled = store.read()
        assert rolled is not None
        verdict = verify(log, rolled.hwm)
        if not only_uses:
            assert not verdict.ok, (ops, seq, len(lines))
            assert "truncated" in (verdict.problem or "")


def test_a_use_does_not_write_the_vault() -> None:
    """`vault token` stays fast: a successful use appends its record, and the vault file is not
    rewritten for it."""
    with _store() as (store, _):
        _do(store, "issue", 0)
        before = _generation(store)
        for _ in range(5):
            _do(store, "use", 0)
        assert _generation(store) == before


def test_a_denial_writes_the_mark_into_the_vault() -> None:
    """A denial changes no record, but the vault is written with the new mark: a key file or a
    keyring entry put back alone cannot hide it."""
    with _store() as (store, _):
        _do(store, "issue", 0)
        before = _generation(store)
        _do(store, "denied", 1)
        assert _generation(store) == before + 1
        snapshot = store.read()
        assert snapshot is not None
        assert snapshot.hwm.seq == 2


def test_reset_then_old_marks_put_back() -> None:
    """After `audit reset` the new chain starts at 1 again; marks from before the reset put back
    do not make the new log look truncated, nor let it be cut."""
    with _store() as (store, backend):
        _do(store, "issue", 0)
        for n in range(3):
            _do(store, "denied", n)
        before_reset = backend.current
        store.reset_audit("test")
        snapshot = store.read()
        assert snapshot is not None
        log = AuditLog(store.paths.audit_file, snapshot.meta.audit_key)
        assert verify(log, snapshot.hwm).ok
        backend.current = before_reset
        rolled = store.read()
        assert rolled is not None
        assert verify(log, rolled.hwm).ok
        store.paths.audit_file.write_bytes(b"")
        assert not verify(log, rolled.hwm).ok


def test_marks_older_than_the_vault_are_saved_again_at_the_next_use() -> None:
    """Marks older than the vault (a crash between the vault write and the marks, or older ones
    put back): the next use saves current ones at once, not a minute later, so the generation
    kept with the key catches up and a rollback of the vault file is caught again."""
    with _store() as (store, backend):
        _do(store, "issue", 0)
        _do(store, "issue", 1)
        generation = _generation(store)
        backend.current = next(m for m in backend.history if m.generation < generation)
        _do(store, "use", 2)
        assert backend.current.generation == generation
        assert (backend.current.audit or {}).get("seq") == 3
