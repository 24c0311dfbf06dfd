"""A provider's answer, once it arrived, is never lost to a failure of the audit log, and its
audit record is never lost either: it waits, journaled inside the encrypted vault, until a
command can write the log, and is then written exactly once.

The store is driven in process (an in-memory key backend, the real files, the real log) through
any sequence of: kept changes (a refresh's answer) whose append succeeds, fails as a full disk
or a damaged log makes it fail, or is cut short by a crash before or after it; uses whose
append succeeds or fails; and at most one `audit reset`. After every step: the vault holds the
newest answer kept; the log verifies; every answer's record is in the log at most once, and all
of them once whenever the last append succeeded; what is neither is exactly what the vault
reports as pending."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.store.test_audit_mark import MemoryBackend, _record, _store
from vault.audit.chain import NOT_CARRIED_OUT, AuditLog, make_event, verify
from vault.errors import AuthError, IntegrityError
from vault.secret import Secret
from vault.store.model import TokenRecord
from vault.store.vault import Store
from vault.util.record import replace


class Crash(BaseException):
    """A process killed at this point: nothing after it runs (not even an except VaultError)."""


@contextmanager
def _faults(store: Store, *, append: str | None = None, write: int | None = None) -> Iterator[None]:
    """``append``: "fail" (IntegrityError, as a full disk or damaged log gives) or "crash"
    (before the log is touched) on the next append; ``write``: crash at the Nth vault write."""
    real_append = AuditLog.append
    real_write = store._write_vault
    writes = [0]

    def fake_append(self: AuditLog, events: list[dict[str, Any]], hwm: Any, **kwargs: Any) -> Any:
        if append == "fail":
            raise IntegrityError(
                f"cannot write the audit log {self.path}: the disk is full{NOT_CARRIED_OUT}"
            )
        if append == "crash":
            raise Crash
        return real_append(self, events, hwm, **kwargs)

    def fake_write(*args: Any, **kwargs: Any) -> None:
        writes[0] += 1
        if write == writes[0]:
            raise Crash
        real_write(*args, **kwargs)

    AuditLog.append = fake_append  # type: ignore[method-assign]
    store._write_vault = fake_write  # type: ignore[method-assign]
    try:
        yield
    finally:
        AuditLog.append = real_append  # type: ignore[method-assign]
        del store._write_vault


def _answer(n: int) -> TokenRecord:
    return replace(
        _record("a"),
        access_token=Secret(f"at-{n:04d}-" + "x" * 20),
        refresh_token=Secret(f"rt-{n:04d}-" + "y" * 20),
        last_refresh=1_700_000_000 + n,
    )


def _keep(store: Store, n: int) -> None:
    with store.edit() as ed:
        ed.expect_answer(4096)
        ed.keep(_answer(n), make_event("refreshed", name="a", reason=f"answer {n}"))


def _use(store: Store) -> None:
    with store.edit() as ed:
        ed.audit(make_event("used", name="a"))


def _records(store: Store) -> list[dict[str, Any]]:
    """Every record in every file of the log, including logs set aside by `audit reset`."""
    docs = []
    for path in sorted(store.paths.audit_file.parent.glob("audit.jsonl*")):
        for line in path.read_bytes().splitlines():
            try:
                docs.append(json.loads(line))
            except ValueError:
                continue  # a torn line
    return docs


def _answers_logged(store: Store) -> list[int]:
    found = []
    for doc in _records(store):
        reason = str(doc.get("reason") or "")
        if doc.get("event") == "refreshed" and "answer " in reason:
            found.append(int(reason.rsplit("answer ", 1)[1]))
    return found


STEPS = st.lists(
    st.sampled_from(
        [
            "keep",
            "keep, append fails",
            "keep, crash before the append",
            "keep, crash after the append",
            "keep, crash before the vault write",
            "use",
            "use, append fails",
            "reset",
        ]
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_a_kept_answer_survives_any_failure_and_is_audited_exactly_once(steps: list[str]) -> None:
    with _store() as (store, _):
        with store.edit() as ed:
            ed.put(_answer(0))
            ed.audit(make_event("issued", name="a"))
        newest = 0  # the newest answer the vault must hold
        kept: list[int] = []  # every answer written to the vault
        reset_done = False
        for n, step in enumerate(steps, 1):
            appended = True  # this step's append went through
            if step.startswith("keep"):
                fault = {
                    "keep": {},
                    "keep, append fails": {"append": "fail"},
                    "keep, crash before the append": {"append": "crash"},
                    "keep, crash after the append": {"write": 2},
                    "keep, crash before the vault write": {"write": 1},
                }[step]
                failure: IntegrityError | None = None
                try:
                    with _faults(store, **fault):  # type: ignore[arg-type]
                        _keep(store, n)
                except IntegrityError as exc:
                    failure = exc
                except Crash:
                    pass
                if failure is not None:
                    assert "the provider's answer was saved in the vault" in failure.message
                    assert "not carried out" not in failure.message
                if step != "keep, crash before the vault write":
                    newest = n
                    kept.append(n)
                appended = step in ("keep", "keep, crash after the append")
            elif step.startswith("use"):
                try:
                    with _faults(store, append="fail" if "fails" in step else None):
                        _use(store)
                except IntegrityError:
                    appended = False
            elif not reset_done:
                store.reset_audit("test")
                reset_done = True
            else:  # one reset only: the set-aside logs are named to the second
                _use(store)
            snapshot = store.read()
            assert snapshot is not None
            record = snapshot.get("a")
            assert record is not None
            assert record.to_json() == _answer(newest).to_json(), steps
            log = AuditLog(store.paths.audit_file, snapshot.meta.audit_key)
            verdict = verify(log, snapshot.hwm)
            assert verdict.ok, (steps, verdict)
            logged = _answers_logged(store)
            assert len(logged) == len(set(logged)), (steps, "an answer audited twice", logged)
            pending = [
                int(str(e["reason"]).rsplit("answer ", 1)[1]) for e in store.unlogged(snapshot.meta)
            ]
            assert sorted(logged + pending) == kept, (steps, logged, pending)
            if appended:
                assert pending == [], (steps, pending)
        if kept:
            _use(store)  # a command that can write the log writes every pending record
            snapshot = store.read()
            assert snapshot is not None
            assert store.unlogged(snapshot.meta) == []
            assert snapshot.meta.pending is None
            assert sorted(_answers_logged(store)) == kept


def test_a_record_written_late_says_so() -> None:
    with _store() as (store, _):
        with store.edit() as ed:
            ed.put(_answer(0))
            ed.audit(make_event("issued", name="a"))
        with pytest.raises(IntegrityError), _faults(store, append="fail"):
            _keep(store, 1)
        _use(store)
        late = [d for d in _records(store) if d.get("event") == "refreshed"]
        assert len(late) == 1
        assert str(late[0]["reason"]).startswith(
            "recorded late: the audit log could not be written at "
        )
        assert str(late[0]["reason"]).endswith("; answer 1")
        assert [d["event"] for d in _records(store)] == ["issued", "refreshed", "used"]


def _keep_then_refuse(store: Store) -> None:
    with store.edit() as ed:
        ed.keep(_answer(1), make_event("refreshed", name="a", reason="answer 1"))
        raise AuthError("refused")


def test_a_kept_change_is_written_when_the_block_then_raises() -> None:
    """An answer kept, then a refusal (the provider refused the grant and the mark says so):
    the change is written with its record, the error stands."""
    with _store() as (store, _):
        with store.edit() as ed:
            ed.put(_answer(0))
            ed.audit(make_event("issued", name="a"))
        with pytest.raises(AuthError):
            _keep_then_refuse(store)
        snapshot = store.read()
        assert snapshot is not None
        record = snapshot.get("a")
        assert record is not None
        assert record.access_token.reveal() == _answer(1).access_token.reveal()
        assert _answers_logged(store) == [1]


def test_no_room_for_the_answer_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """expect_answer reserves the room first; when it cannot (here: more than the file system
    could ever hold), nothing is left behind and the vault is as it was."""
    with _store() as (store, _):
        with store.edit() as ed:
            ed.put(_answer(0))
            ed.audit(make_event("issued", name="a"))
        before = store.paths.vault_file.read_bytes()
        with pytest.raises(IntegrityError, match="cannot reserve"), store.edit() as ed:
            ed.expect_answer(1 << 62)
        assert store.paths.vault_file.read_bytes() == before
        assert [p.name for p in store.paths.vault_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_two_vault_writes_for_a_kept_answer(tmp_path: Path) -> None:
    """The journal is gone from the vault once the log holds its records: the second write."""
    with _store() as (store, backend):
        with store.edit() as ed:
            ed.put(_answer(0))
            ed.audit(make_event("issued", name="a"))
        _keep(store, 1)
        snapshot = store.read()
        assert snapshot is not None
        assert snapshot.meta.pending is None
        assert snapshot.header.generation == 3
        assert isinstance(backend, MemoryBackend)
        assert backend.current.generation == 3
        assert (snapshot.meta.audit or {}).get("seq") == 2  # the mark inside moved at once
