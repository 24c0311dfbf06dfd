"""A token a server refused (git's `erase`): vault.tokens.reject.mark_rejected marks only the
token the vault holds (constant-time compare), for its own origin, under the lock, and audits
it without the secret; the next use_token refreshes it first whatever its expiry (and clears
the mark), or, without a refresh token, refuses it (exit 4, a new login named).

In process: the real store (real files, an in-memory key backend) and a scripted token endpoint
on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.unit.store.test_audit_mark import _store
from vault.errors import AuthError
from vault.policy.rules import Policy
from vault.secret import Secret
from vault.store.model import TokenRecord
from vault.store.vault import Store
from vault.tokens.reject import mark_rejected
from vault.tokens.use import _wants_refresh, use_token
from vault.util.record import replace

TOKEN = "at-0000-" + "a" * 20
COMMAND = "git-credential 127.0.0.1:9 (git)"


class Endpoint:
    def __init__(self) -> None:
        self.count = 0

    def token(self, form: dict[str, str]) -> Reply:
        self.count += 1
        return json_reply(
            {"access_token": f"at-{self.count:04d}-" + "b" * 20, "expires_in": 3600}
            | {"token_type": "Bearer", "refresh_token": f"rt-{self.count}-" + "r" * 20}
        )


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, FakeOAuth]]:
    e = Endpoint()
    with fake_oauth({"/token": e.token}) as fake:
        yield e, fake


def _put(
    store: Store, fake: FakeOAuth, *, refresh: bool = True, expires_in: int | None = 3600
) -> None:
    now = int(time.time())
    record = TokenRecord(
        "t", "local", fake.issuer, "cli", "Bearer", Secret(TOKEN),
        Secret("rt-" + "r" * 20) if refresh else None, None, ("openid",),
        now - 100, None if expires_in is None else now + expires_in, None,
        extra={"token_endpoint": f"{fake.issuer}/token"},
    )  # fmt: skip
    with store.edit() as ed:
        ed.put(record)


def _origin(fake: FakeOAuth) -> tuple[str, str, int]:
    return ("http", "127.0.0.1", fake.port)


def _events(store: Store) -> list[dict[str, object]]:
    path = store.paths.audit_file
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _get(store: Store) -> TokenRecord:
    snapshot = store.read()
    assert snapshot is not None
    record = snapshot.get("t")
    assert record is not None
    return record


def _use(store: Store) -> TokenRecord:
    return use_token(store, Policy([]), {}, "t", min_valid=60, command=COMMAND)


def test_the_token_held_is_marked_and_audited_then_refreshed_at_its_next_use(
    endpoint: tuple[Endpoint, FakeOAuth],
) -> None:
    e, fake = endpoint
    with _store() as (store, _):
        _put(store, fake)
        assert mark_rejected(store, "t", Secret(TOKEN), origin=_origin(fake), command=COMMAND)
        marked = _get(store)
        assert marked.rejected_at is not None
        assert abs(marked.rejected_at - time.time()) < 60
        events = _events(store)
        assert [(r["event"], r["name"], r["command"]) for r in events] == [
            ("rejected", "t", COMMAND)
        ]
        assert TOKEN not in store.paths.audit_file.read_text()
        # A second rejection (another git process) is audited; the first time is kept.
        assert mark_rejected(
            store, "t", Secret(TOKEN), origin=_origin(fake), command=COMMAND, clock=lambda: 1.0
        )
        assert _get(store).rejected_at == marked.rejected_at
        # An hour left, and still refreshed first; the refresh clears the mark.
        used = _use(store)
        assert e.count == 1
        assert used.access_token.reveal().startswith("at-0001")
        assert used.rejected_at is None
        assert _get(store).rejected_at is None
        assert _use(store).access_token.reveal().startswith("at-0001")
        assert e.count == 1
        kinds = [r["event"] for r in _events(store)]
        assert kinds == ["rejected", "rejected", "refreshed", "used", "used"]


@pytest.mark.parametrize(
    ("name", "presented", "where"),
    [
        ("t", TOKEN[:-1], "own"),  # shorter
        ("t", TOKEN + "a", "own"),  # longer
        ("t", TOKEN[:-1] + "b", "own"),  # one character off
        ("t", "", "own"),
        ("t", TOKEN, "other"),  # ours, but sent back for a host it never goes to
        ("nosuch", TOKEN, "own"),
    ],
)
def test_anything_but_the_token_held_for_its_own_origin_changes_nothing(
    endpoint: tuple[Endpoint, FakeOAuth], name: str, presented: str, where: str
) -> None:
    _, fake = endpoint
    origin = _origin(fake) if where == "own" else ("https", "github.com", 443)
    with _store() as (store, _):
        _put(store, fake)
        before = store.paths.vault_file.read_bytes()
        assert not mark_rejected(store, name, Secret(presented), origin=origin, command=COMMAND)
        assert _get(store).rejected_at is None
        assert _events(store) == []
        assert store.paths.vault_file.read_bytes() == before


@pytest.mark.parametrize("expires_in", [3600, None])
def test_a_rejected_token_without_refresh_token_is_refused_with_a_new_login_named(
    endpoint: tuple[Endpoint, FakeOAuth], expires_in: int | None
) -> None:
    e, fake = endpoint
    with _store() as (store, _):
        _put(store, fake, refresh=False, expires_in=expires_in)
        assert mark_rejected(store, "t", Secret(TOKEN), origin=_origin(fake), command=COMMAND)
        with pytest.raises(AuthError) as caught:
            _use(store)
        assert caught.value.code == "rejected"
        assert caught.value.exit_code == 4
        assert "was rejected" in caught.value.message
        assert caught.value.hint == "log in again: vault login local --name t"
        assert e.count == 0
        events = _events(store)
        assert [(r["event"], r["outcome"]) for r in events] == [
            ("rejected", "success"),
            ("used", "failure"),
        ]


NOW = 1_800_000_000


@given(
    expires_in=st.one_of(st.none(), st.integers(-10_000, 10**6)),
    refreshed_ago=st.one_of(st.none(), st.integers(0, 10_000)),
    min_valid=st.integers(0, 10_000),
    refresh=st.booleans(),
)
def test_a_rejected_mark_always_wants_a_refresh(
    expires_in: int | None, refreshed_ago: int | None, min_valid: int, refresh: bool
) -> None:
    """Whatever the expiry, however recently refreshed (a refresh clears the mark: one still
    there is about the token held now)."""
    record = TokenRecord(
        "t", "local", "https://idp.example", "cli", "Bearer", Secret(TOKEN),
        Secret("rt") if refresh else None, None, (), NOW - 20_000,
        None if expires_in is None else NOW + expires_in,
        None if refreshed_ago is None else NOW - refreshed_ago,
    )  # fmt: skip
    marked = replace(record, rejected_at=NOW - 1)
    assert _wants_refresh(marked, min_valid, NOW)
    assert _wants_refresh(marked, min_valid, NOW, "id_token")
    # And the mark is all that changed: without it, the old rule.
    assert replace(marked, rejected_at=None) == record
