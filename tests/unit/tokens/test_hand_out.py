"""use_token's options for the helpers: ``want="id_token"`` (the ID token's own expiry decides
the refresh; a record without one, or an ID token a refresh did not renew, is refused and
audited) and ``origin`` (a token asked for another provider's origin is refused before anything
is checked or audited).

In process: the real store (real files, an in-memory key backend) and a scripted token endpoint
on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest

from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.unit.store.test_audit_mark import _store
from vault.errors import AuthError
from vault.policy.rules import Policy
from vault.secret import Secret
from vault.store.model import TokenRecord
from vault.store.vault import Store
from vault.tokens.use import ElsewhereError, handed, use_token


def _jwt(exp: int) -> str:
    def part(doc: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': 'alice', 'exp': exp})}.sig"


class Endpoint:
    def __init__(self) -> None:
        self.id_token_lifetime: int | None = 600  # None: the refresh answer has no ID token
        self.count = 0

    def token(self, form: dict[str, str]) -> Reply:
        self.count += 1
        doc: dict[str, object] = {
            "access_token": f"at-{self.count:04d}-" + "a" * 20,
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        if self.id_token_lifetime is not None:
            doc["id_token"] = _jwt(int(time.time()) + self.id_token_lifetime)
        return json_reply(doc)


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, FakeOAuth]]:
    e = Endpoint()
    with fake_oauth({"/token": e.token}) as fake:
        yield e, fake


def _put(store: Store, fake: FakeOAuth, *, id_token: str | None, expires_in: int = 3600) -> None:
    now = int(time.time())
    record = TokenRecord(
        "t", "local", fake.issuer, "cli", "Bearer", Secret("at-0000-" + "a" * 20),
        Secret("rt-" + "r" * 20), None if id_token is None else Secret(id_token), ("openid",),
        now - 100, now + expires_in, None, extra={"token_endpoint": f"{fake.issuer}/token"},
    )  # fmt: skip
    with store.edit() as ed:
        ed.put(record)


def _events(store: Store) -> list[dict[str, object]]:
    path = store.paths.audit_file
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _use(store: Store, **options: object) -> TokenRecord:
    return use_token(store, Policy([]), {}, "t", command="kube kubectl", **options)  # type: ignore[arg-type]


def test_a_fresh_id_token_is_handed_out_with_its_own_expiry(
    endpoint: tuple[Endpoint, FakeOAuth],
) -> None:
    e, fake = endpoint
    exp = int(time.time()) + 900
    with _store() as (store, _):
        _put(store, fake, id_token=_jwt(exp))
        record = _use(store, min_valid=60, want="id_token")
        token, expires = handed(record, "id_token")
        assert (token.reveal(), expires) == (_jwt(exp), exp)
        assert e.count == 0
        assert [(r["event"], r["outcome"]) for r in _events(store)] == [("used", "success")]


def test_an_id_token_expiring_before_the_access_token_is_refreshed(
    endpoint: tuple[Endpoint, FakeOAuth],
) -> None:
    e, fake = endpoint
    with _store() as (store, _):
        _put(store, fake, id_token=_jwt(int(time.time()) + 30))  # access token: 1 h left
        assert _use(store, min_valid=0).access_token.reveal().startswith("at-0000")  # no refresh
        record = _use(store, min_valid=60, want="id_token")
        assert e.count == 1
        _, expires = handed(record, "id_token")
        assert expires is not None
        assert expires > time.time() + 500
        assert [r["event"] for r in _events(store)] == ["used", "refreshed", "used"]


def test_an_id_token_the_refresh_did_not_renew_is_refused_and_the_refresh_kept(
    endpoint: tuple[Endpoint, FakeOAuth],
) -> None:
    e, fake = endpoint
    e.id_token_lifetime = None
    with _store() as (store, _):
        _put(store, fake, id_token=_jwt(int(time.time()) - 5))
        with pytest.raises(AuthError, match="did not renew"):
            _use(store, min_valid=60, want="id_token")
        events = _events(store)
        assert [(r["event"], r["outcome"]) for r in events] == [
            ("refreshed", "success"),
            ("used", "failure"),
        ]
        # The refreshed access token was kept: the next access-token use needs no refresh.
        assert _use(store, min_valid=60).access_token.reveal().startswith("at-0001")
        assert e.count == 1


def test_a_token_without_id_token_is_refused_and_audited(
    endpoint: tuple[Endpoint, FakeOAuth],
) -> None:
    _, fake = endpoint
    with _store() as (store, _):
        _put(store, fake, id_token=None)
        with pytest.raises(AuthError, match="no ID token") as caught:
            _use(store, min_valid=60, want="id_token")
        assert caught.value.code == "no_id_token"
        assert [(r["event"], r["outcome"]) for r in _events(store)] == [("used", "failure")]


def test_another_origin_is_refused_before_anything_is_audited(
    endpoint: tuple[Endpoint, FakeOAuth],
) -> None:
    _, fake = endpoint
    with _store() as (store, _):
        _put(store, fake, id_token=None)
        for origin in (("https", "127.0.0.1", fake.port), ("http", "127.0.0.1", fake.port + 1)):
            with pytest.raises(ElsewhereError):
                _use(store, min_valid=60, origin=origin)
        assert _events(store) == []
        _use(store, min_valid=60, origin=("http", "127.0.0.1", fake.port))
        assert [r["event"] for r in _events(store)] == ["used"]
