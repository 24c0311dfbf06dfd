"""What a refresh answer grants is checked against policy before the token leaves vault, as at
login: over every scope set the provider may answer with, a grant policy does not allow is never
handed out, is audited as a denial naming the rule, is revoked at the provider, and leaves the
token marked as needing a new login (so the next use asks nobody and hands out nothing); a grant
within policy is handed out and stored with what was granted.

In process: the real store (real files, an in-memory key backend), the real policy parser, and a
scripted provider on 127.0.0.1 that answers the refresh with the scopes drawn."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.unit.store.test_audit_mark import _store
from vault.audit.chain import AuditLog, verify
from vault.errors import AuthError, PolicyError
from vault.policy.rules import Policy, parse_policy
from vault.secret import Secret
from vault.store.model import TokenRecord
from vault.store.vault import Store
from vault.tokens.use import use_token

KNOWN = ["openid", "offline_access", "repo", "read:org", "read:user", "write:org", "admin:org"]
SCOPE = st.one_of(st.sampled_from(KNOWN), st.from_regex(r"[a-z][a-z:_.]{0,11}", fullmatch=True))
SCOPES = st.lists(SCOPE, max_size=6, unique=True)


class Provider:
    """A token endpoint that answers each refresh with ``granted`` and a new token pair."""

    def __init__(self) -> None:
        self.granted: list[str] = []
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.fake: FakeOAuth | None = None

    def token(self, form: dict[str, str]) -> Reply:
        with self.lock:
            n = next(self.counter)
        return json_reply(
            {
                "access_token": f"at-{n:05d}-" + "a" * 20,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": f"rt-{n:05d}-" + "r" * 20,
                "scope": " ".join(self.granted),
            }
        )

    def refreshes(self) -> int:
        assert self.fake is not None
        return sum(1 for _, form in self.fake.requests if form.get("grant_type") == "refresh_token")

    def revoked(self) -> list[str]:
        assert self.fake is not None
        return [form.get("token", "") for path, form in self.fake.requests if path == "/revoke"]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    p = Provider()
    with fake_oauth({"/token": p.token}) as fake:
        p.fake = fake
        yield p


def _policy(allowed: list[str], denied: list[str]) -> Policy:
    text = "version: 1\n"
    text += f"allowed_scopes: {json.dumps(allowed)}\n"
    if denied:
        text += f"denied_scopes: {json.dumps(denied)}\n"
    return Policy([parse_policy(text, "/policies/test.yaml", system=False)])


def _stored(store: Store, fake: FakeOAuth, scopes: list[str]) -> None:
    endpoints = {
        "token_endpoint": f"{fake.issuer}/token",
        "revocation_endpoint": f"{fake.issuer}/revoke",
    }
    record = TokenRecord(
        "t", "local", fake.issuer, "cli", "Bearer", Secret("at-00000-" + "a" * 20),
        Secret("rt-00000-" + "r" * 20), None, tuple(scopes), 1_700_000_000, 1_700_003_600, None,
        extra=endpoints,
    )  # fmt: skip
    with store.edit() as ed:
        ed.put(record)


def _use(store: Store, policy: Policy) -> TokenRecord:
    # min_valid beyond any lifetime: every use refreshes (unless refused first)
    return use_token(store, policy, {}, "t", min_valid=10**9, command="token")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(allowed=SCOPES, denied=SCOPES, granted=SCOPES, data=st.data())
def test_a_refresh_is_handed_out_only_with_scopes_policy_allows(
    provider: Provider,
    allowed: list[str],
    denied: list[str],
    granted: list[str],
    data: st.DataObject,
) -> None:
    assert provider.fake is not None
    # What was logged in with: within policy (else refresh would be refused before it is sent).
    held = data.draw(st.lists(st.sampled_from(allowed), unique=True) if allowed else st.just([]))
    held = [s for s in held if s not in denied]
    policy = _policy(allowed, denied)
    provider.granted = granted
    # The oracle, from the definitions: every scope granted is allowed, and none is denied.
    within = set(granted) <= set(allowed) and not set(granted) & set(denied)
    with _store() as (store, _):
        _stored(store, provider.fake, held)
        before = provider.refreshes()
        revoked_before = len(provider.revoked())
        if within:
            record = _use(store, policy)
            assert record.scopes == tuple(granted)
            assert record.access_token.reveal().startswith("at-")
            assert record.needs_login is None
            stored = (store.read() or pytest.fail("no vault")).get("t")
            assert stored is not None
            assert stored.to_json() == record.to_json()
            return
        with pytest.raises(PolicyError) as refused:
            _use(store, policy)
        assert provider.refreshes() == before + 1
        error = refused.value
        assert error.exit_code == 5
        offending = [s for s in granted if s not in allowed or s in denied]
        assert any(repr(s) in error.message for s in offending), (error.message, offending)
        assert error.rule in ("allowed_scopes", "denied_scopes")
        assert "granted it on refresh" in error.message
        assert "vault login local --name t" in error.message
        snapshot = store.read()
        assert snapshot is not None
        stored = snapshot.get("t")
        assert stored is not None
        # Not stored as usable: marked, its refresh token revoked at the provider and dropped.
        assert stored.needs_login is not None
        assert stored.needs_login.cause == "scope"
        assert stored.refresh_token is None
        assert not stored.revoke_pending
        revoked = provider.revoked()[revoked_before:]
        # The new refresh token (it ends the grant), then the new access token (which some
        # providers leave live): nothing of the over-granted answer lives on.
        assert len(revoked) == 2
        assert revoked[0].startswith("rt-")
        assert revoked[1].startswith("at-")
        # Audited as a denial naming the rule, with what was granted; the log verifies.
        log = AuditLog(store.paths.audit_file, snapshot.meta.audit_key)
        assert verify(log, snapshot.hwm).ok
        last = json.loads(store.paths.audit_file.read_bytes().splitlines()[-1])
        assert (last["event"], last["outcome"], last["rule"]) == ("denied", "denied", error.rule)
        assert last["scopes"] == granted
        assert str(last["source"]).startswith("/policies/test.yaml:")
        # The next use hands out nothing and asks nobody.
        with pytest.raises(AuthError) as again:
            _use(store, policy)
        assert again.value.code == "needs_login"
        assert provider.refreshes() == before + 1


def test_revocation_unreachable_keeps_the_refresh_token_for_prune(provider: Provider) -> None:
    """Where the revocation cannot be made, the refused grant's refresh token is kept, marked
    revoke_pending, so that `vault prune` retries; it is still never handed out."""
    assert provider.fake is not None
    provider.granted = ["admin:org"]
    policy = _policy(["openid"], [])
    with _store() as (store, _):
        _stored(store, provider.fake, ["openid"])
        route = provider.fake.routes["/revoke"]
        provider.fake.routes["/revoke"] = lambda _: (503, {}, b"down")
        try:
            with pytest.raises(PolicyError, match="not revoked yet"):
                _use(store, policy)
        finally:
            provider.fake.routes["/revoke"] = route
        stored = (store.read() or pytest.fail("no vault")).get("t")
        assert stored is not None
        assert stored.needs_login is not None
        assert stored.revoke_pending
        assert stored.refresh_token is not None
        with pytest.raises(AuthError, match="needs a new login"):
            _use(store, policy)
