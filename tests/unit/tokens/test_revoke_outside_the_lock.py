"""Revocation (`vault logout`/`revoke`, `vault prune`) asks the provider with no vault lock held,
the name's lock held instead: other changes to the vault go on meanwhile, no refresh of the name
runs, and a token stored under the name meanwhile (a new login or import) is never deleted in
place of the one revoked.

In process: the real store (real files, an in-memory key backend), and a scripted provider on
127.0.0.1 whose revocation endpoint answers only when the test lets it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth
from tests.unit.store.test_audit_mark import _store
from tests.unit.tokens.test_refresh_outside_the_lock import _process, _put, _record
from vault.audit.chain import make_event
from vault.fs.durable import NameLock
from vault.policy.rules import Policy, parse_policy
from vault.store.vault import Store
from vault.tokens.lifecycle import revoke_and_delete
from vault.tokens.prune import run_plan


class RevokeGate:
    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.open = threading.Event()
        self.fake: FakeOAuth | None = None

    def revoke(self, form: dict[str, str]) -> Reply:
        self.arrived.set()
        assert self.open.wait(30), "the test never let the revocation answer"
        return 200, {}, b""

    def revoked(self) -> list[str]:
        assert self.fake is not None
        return [form.get("token", "") for path, form in self.fake.requests if path == "/revoke"]


@pytest.fixture
def gate() -> Iterator[RevokeGate]:
    g = RevokeGate()
    with fake_oauth({"/revoke": g.revoke}) as fake:
        g.fake = fake
        yield g
        g.open.set()


@pytest.fixture
def store() -> Iterator[Store]:
    with _store() as (s, _):
        yield s


class Running:
    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = call()
            except BaseException as exc:  # handed to the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def _audit(store: Store) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.paths.audit_file.read_bytes().splitlines()]


def _while_revoking(store: Store, gate: RevokeGate) -> None:
    """The provider has the revocation: the vault's lock is free, the name's is not."""
    assert gate.arrived.wait(30)
    assert gate.fake is not None
    _put(store, _record(gate.fake, "other", 7), timeout=0)
    probe = NameLock(store.paths.name_lock_file, "t")
    assert not probe.try_acquire()


def _logout(store: Store) -> Running:
    return Running(lambda: revoke_and_delete(_process(store), {}, "t", force=False))


def test_logout_asks_the_provider_outside_the_vault_lock(store: Store, gate: RevokeGate) -> None:
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    running = _logout(store)
    _while_revoking(store, gate)
    gate.open.set()
    result, deleted = running.join()
    assert result.revoked
    assert deleted
    assert gate.revoked() == ["rt-00000-" + "o" * 20]
    snapshot = store.read()
    assert snapshot is not None
    assert {r.name for r in snapshot.records()} == {"other"}
    last = _audit(store)[-1]
    assert (last["event"], last["name"], last["outcome"]) == ("revoked", "t", "success")


def test_logout_keeps_a_token_stored_under_the_name_meanwhile(
    store: Store, gate: RevokeGate
) -> None:
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    running = _logout(store)
    assert gate.arrived.wait(30)
    replacement = _record(gate.fake, "t", 9)
    _put(store, replacement, timeout=0)  # a login under the name, which takes no name lock
    gate.open.set()
    result, deleted = running.join()
    assert result.revoked
    assert not deleted
    assert gate.revoked() == ["rt-00000-" + "o" * 20]  # the token logout found
    stored = (store.read() or pytest.fail("no vault")).get("t")
    assert stored is not None
    assert stored.to_json() == replacement.to_json()
    last = _audit(store)[-1]
    assert (last["event"], last["name"], last["outcome"]) == ("revoked", "t", "success")
    assert "meanwhile (a new login or import) was kept" in last["reason"]


def _policy() -> Policy:
    return Policy([parse_policy("version: 1\ndenied_scopes: [openid]\n", "/p.yaml", system=False)])


def _prune(store: Store) -> Running:
    return Running(
        lambda: run_plan(
            _process(store),
            _policy(),
            {},
            backend="keyring",
            vault_dir=store.paths.vault_dir,
            dry_run=False,
        )
    )


def test_prune_asks_the_provider_outside_the_vault_lock(store: Store, gate: RevokeGate) -> None:
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    running = _prune(store)
    assert gate.arrived.wait(30)
    # The vault is free meanwhile (a write of a token prune has not planned for: no name lock).
    with store.edit(timeout=0) as ed:
        ed.audit(make_event("used", name="t"))
    assert not NameLock(store.paths.name_lock_file, "t").try_acquire()
    gate.open.set()
    actions, outcomes = running.join()
    assert [(a.name, a.reason) for a in actions] == [("t", "scope")]
    assert [(o.action.name, o.result, o.revocation) for o in outcomes] == [
        ("t", "revoked_and_deleted", "revoked")
    ]
    snapshot = store.read()
    assert snapshot is not None
    assert snapshot.records() == []
    last = _audit(store)[-1]
    assert (last["event"], last["name"], last["outcome"]) == ("pruned", "t", "success")


def test_prune_keeps_a_token_stored_under_the_name_meanwhile(
    store: Store, gate: RevokeGate
) -> None:
    assert gate.fake is not None
    _put(store, _record(gate.fake))
    running = _prune(store)
    assert gate.arrived.wait(30)
    replacement = _record(gate.fake, "t", 9)
    _put(store, replacement, timeout=0)
    gate.open.set()
    actions, outcomes = running.join()
    assert (actions, outcomes) == ([], [])  # the new token is left to the next run
    stored = (store.read() or pytest.fail("no vault")).get("t")
    assert stored is not None
    assert stored.to_json() == replacement.to_json()
    assert gate.revoked() == ["rt-00000-" + "o" * 20]
    last = _audit(store)[-1]
    assert (last["event"], last["name"], last["outcome"]) == ("revoked", "t", "success")
    assert "by prune; the name changed meanwhile" in last["reason"]
