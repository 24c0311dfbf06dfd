"""A refresh holds no vault lock while the provider answers (vault.tokens.lifecycle): other
changes to the vault go on meanwhile; a second refresher of the same name waits on the name's
lock and uses the first one's answer; a record deleted or replaced meanwhile never receives the
answer, which is revoked at the provider instead; and once the answer has arrived it is kept
even when VAULT_LOCK_TIMEOUT is 0 and the vault's lock is busy, or the key backend has stopped
answering.

In process: the real store (real files, an in-memory key backend), and a scripted provider on
127.0.0.1 whose token endpoint holds each refresh until the test lets it answer."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.unit.store.test_audit_mark import MemoryBackend, _store
from vault.audit.chain import make_event
from vault.errors import AuthError, KeyringUnavailable, NotFoundError
from vault.fs.durable import NameLock, locked
from vault.keys.base import KeyParams
from vault.policy.rules import Policy
from vault.secret import Secret
from vault.store.model import TokenRecord
from vault.store.vault import Store
from vault.tokens.use import refresh_record, use_token

NO_POLICY = Policy([])


class Gate:
    """A token endpoint that answers each refresh (a new token pair each time) only once the
    test opens the gate; ``arrived`` is set when a request is waiting at it."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.open = threading.Event()
        self.counter = itertools.count(1)
        self.fake: FakeOAuth | None = None

    def token(self, form: dict[str, str]) -> Reply:
        self.arrived.set()
        assert self.open.wait(30), "the test never let the refresh answer"
        n = next(self.counter)
        return json_reply(
            {
                "access_token": f"at-{n:05d}-" + "a" * 20,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": f"rt-{n:05d}-" + "r" * 20,
                "scope": "openid",
            }
        )

    def presented(self) -> list[str]:
        assert self.fake is not None
        return [
            form["refresh_token"]
            for path, form in self.fake.requests
            if path == "/token" and form.get("grant_type") == "refresh_token"
        ]

    def revoked(self) -> list[str]:
        assert self.fake is not None
        return [form.get("token", "") for path, form in self.fake.requests if path == "/revoke"]


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    with fake_oauth({"/token": g.token}) as fake:
        g.fake = fake
        yield g
        g.open.set()


@pytest.fixture
def store() -> Iterator[Store]:
    with _store() as (s, _):
        yield s


def _record(fake: FakeOAuth, name: str = "t", n: int = 0) -> TokenRecord:
    endpoints = {
        "token_endpoint": f"{fake.issuer}/token",
        "revocation_endpoint": f"{fake.issuer}/revoke",
    }
    return TokenRecord(
        name, "local", fake.issuer, "cli", "Bearer", Secret(f"at-{n:05d}-" + "o" * 20),
        Secret(f"rt-{n:05d}-" + "o" * 20), None, ("openid",), 1_700_000_000, 1_700_003_600, None,
        extra=endpoints,
    )  # fmt: skip


def _put(store: Store, record: TokenRecord, *, timeout: float | None = None) -> None:
    with store.edit(timeout=timeout) as ed:
        ed.put(record)
        ed.audit(make_event("issued", name=record.name))


def _process(store: Store) -> Store:
    """A store of its own on the same vault and key backend, as another command has."""
    other = Store(store.paths, backend="keyring")
    other._backends = dict(store._backends)
    return other


def _use(store: Store, name: str = "t") -> TokenRecord:
    return use_token(_process(store), NO_POLICY, {}, name, min_valid=10**9, command="token")


class Running:
    """``call`` on a thread of its own: its result, or what it raised."""

    def __init__(self, call: Callable[[], TokenRecord]) -> None:
        self.result: TokenRecord | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = call()
            except BaseException as exc:  # handed to the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> TokenRecord:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the refresh did not end"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _audit(store: Store) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.paths.audit_file.read_bytes().splitlines()]


def test_the_vault_is_free_while_the_provider_answers(store: Store, gate: Gate) -> None:
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    first = Running(lambda: _use(store))
    assert gate.arrived.wait(30)
    # The vault's lock is free: taken without waiting at all, for a write of another token.
    _put(store, _record(gate.fake, "other", 7), timeout=0)
    snapshot = store.read()
    assert snapshot is not None
    assert {r.name for r in snapshot.records()} == {"t", "other"}
    # The name's lock is not: a refresh of "t" is under way.
    probe = NameLock(store.paths.name_lock_file, "t")
    assert not probe.try_acquire()
    other = NameLock(store.paths.name_lock_file, "other")
    assert other.try_acquire()
    other.release()
    gate.open.set()
    record = first.join()
    assert record.access_token.reveal() == "at-00001-" + "a" * 20
    assert probe.try_acquire()  # let go once the answer is kept
    probe.release()
    stored = (store.read() or pytest.fail("no vault")).get("t")
    assert stored is not None
    assert stored.to_json() == record.to_json()
    events = [(e["event"], e["name"]) for e in _audit(store)]
    assert events[-3:] == [("issued", "other"), ("refreshed", "t"), ("used", "t")]


def test_a_second_refresher_waits_and_uses_the_first_answer(store: Store, gate: Gate) -> None:
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    first = Running(lambda: _use(store))
    assert gate.arrived.wait(30)
    second = Running(lambda: _use(store))
    second.thread.join(0.5)
    assert second.thread.is_alive(), "the second refresher did not wait for the first"
    gate.open.set()
    one, two = first.join(), second.join()
    assert one.access_token == two.access_token
    assert gate.presented() == ["rt-00000-" + "o" * 20]  # one request, the old token once
    events = [(e["event"], e["outcome"]) for e in _audit(store)]
    assert events[-3:] == [("refreshed", "success"), ("used", "success"), ("used", "success")]


def test_vault_refresh_after_another_spends_the_new_refresh_token(store: Store, gate: Gate) -> None:
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    first = Running(lambda: refresh_record(_process(store), NO_POLICY, {}, "t"))
    assert gate.arrived.wait(30)
    second = Running(lambda: refresh_record(_process(store), NO_POLICY, {}, "t"))
    gate.open.set()
    first.join()
    second.join()
    # `vault refresh` always refreshes: the second one presents what the first one got.
    assert gate.presented() == ["rt-00000-" + "o" * 20, "rt-00001-" + "r" * 20]


@pytest.mark.parametrize("meanwhile", ["deleted", "replaced"])
def test_an_answer_for_a_token_that_went_meanwhile_is_revoked(
    store: Store, gate: Gate, meanwhile: str
) -> None:
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    first = Running(lambda: _use(store))
    assert gate.arrived.wait(30)
    replacement = _record(gate.fake, "t", 9)
    with store.edit() as ed:  # as a login, an import or an older vault would, no name lock
        if meanwhile == "deleted":
            ed.delete("t")
        else:
            ed.put(replacement)
        ed.audit(make_event("issued", name="t"))
    gate.open.set()
    with pytest.raises(AuthError) as failed:
        first.join()
    error = failed.value
    assert error.exit_code == 4
    assert f"{meanwhile} while it was being refreshed" in error.message
    assert "the provider's answer was not kept, and was revoked at 127.0.0.1" in error.message
    if meanwhile == "deleted":
        assert isinstance(error, NotFoundError)
    else:
        assert error.code == "replaced"
    # The answer's grant is revoked (its new refresh token and access token), stored nowhere.
    assert gate.revoked() == ["rt-00001-" + "r" * 20, "at-00001-" + "a" * 20]
    stored = (store.read() or pytest.fail("no vault")).get("t")
    if meanwhile == "deleted":
        assert stored is None
    else:
        assert stored is not None
        assert stored.to_json() == replacement.to_json()
    last = _audit(store)[-1]
    assert (last["event"], last["name"], last["outcome"]) == ("refreshed", "t", "failure")
    assert f"the token was {meanwhile} while it was being refreshed" in last["reason"]


def test_the_answer_waits_for_a_busy_vault_even_with_no_lock_timeout(
    store: Store, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VAULT_LOCK_TIMEOUT=0 makes commands fail at once on a busy vault; a refresh whose
    answer has arrived waits for the lock all the same (KEEP_WAIT) rather than lose it."""
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    monkeypatch.setenv("VAULT_LOCK_TIMEOUT", "0")
    first = Running(lambda: _use(store))
    assert gate.arrived.wait(30)
    with locked(store.paths.lock_file, exclusive=True):
        gate.open.set()
        first.thread.join(0.5)
        assert first.thread.is_alive()  # waiting for the lock, answer in hand
    record = first.join()
    stored = (store.read() or pytest.fail("no vault")).get("t")
    assert stored is not None
    assert stored.access_token == record.access_token


class Flaky(MemoryBackend):
    """A keyring-like backend (its marks come with the key) that stops answering on demand."""

    marks_need_unlock = True

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.unlocks = 0

    def unlock(self, vault_id: bytes, params: KeyParams, *, where: str) -> bytes:
        self.unlocks += 1
        if self.failing:
            raise KeyringUnavailable("the keyring did not answer")
        return super().unlock(vault_id, params, where=where)


def test_the_answer_is_kept_when_the_key_backend_stops_answering(gate: Gate) -> None:
    assert gate.fake is not None
    with _store() as (store, _):
        backend = Flaky()
        store._backends["keyring"] = backend
        _put(store, _record(gate.fake))
        first = Running(lambda: _use(store))
        assert gate.arrived.wait(30)
        backend.failing = True  # e.g. the keyring locked itself while the provider answered
        gate.open.set()
        record = first.join()
        assert backend.unlocks >= 3  # the keep step asked (for fresh marks), and went on
        backend.failing = False
        stored = (store.read() or pytest.fail("no vault")).get("t")
        assert stored is not None
        assert stored.access_token == record.access_token
        assert [e["event"] for e in _audit(store)][-2:] == ["refreshed", "used"]


def test_the_keep_step_asks_no_backend_for_a_key_it_already_has(gate: Gate) -> None:
    """Where the marks do not come with the key (the passphrase backend, an agent), the key
    the vault was opened with before the request opens it again after: no Argon2id, no agent
    call, between the answer and the vault write."""
    assert gate.fake is not None
    with _store() as (store, backend):
        calls: list[int] = []
        real = backend.unlock

        def counted(vault_id: bytes, params: KeyParams, *, where: str) -> bytes:
            calls.append(1)
            return real(vault_id, params, where=where)

        backend.unlock = counted  # type: ignore[method-assign]
        _put(store, _record(gate.fake))
        first = Running(lambda: _use(store))
        assert gate.arrived.wait(30)
        before = len(calls)
        gate.open.set()
        first.join()
        assert len(calls) == before
