"""Serving AWS credentials from a stored token (vault.tokens.aws.serve): kept in the vault and
served from there, asked again when they near their end, capped and refused by policy's
max_token_age, refused without a usable ID token (and refreshed first for one), every serve and
every refusal audited, nothing kept from a failed request.

In process: the real store (real files, an in-memory key backend), the real policy parser, a
scripted STS (and token endpoint) on 127.0.0.1 that answers what each test needs."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.unit.store.test_audit_mark import _store
from vault.errors import AuthError, NetworkError, NotFoundError, PolicyError
from vault.policy.rules import Policy, parse_policy
from vault.secret import Secret
from vault.store.model import AwsCredentials, TokenRecord
from vault.store.vault import Store
from vault.tokens import aws, sts
from vault.util.jwt import expiry as jwt_expiry
from vault.util.record import replace
from vault.util.text import rfc3339

# A vault and a scripted STS and token server per test: `make test`, not `make test-fast`.
pytestmark = pytest.mark.slow

ROLE = "arn:aws:iam::123456789012:role/dev"
NO_POLICY = Policy([])


def jwt(claims: dict[str, object]) -> str:
    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class Sts:
    """A scripted STS: answers each AssumeRoleWithWebIdentity with a new set lasting the
    DurationSeconds asked (or with ``fail``), and a token endpoint that refreshes."""

    now: list[float]
    fake: FakeOAuth | None = None
    fail: Reply | None = None
    counter: int = 0
    new_id_token_exp: int | None = None  # what a refresh answers as the ID token's exp
    refreshes: int = 0
    asked: list[dict[str, str]] = field(default_factory=list)

    def sts(self, form: dict[str, str]) -> Reply:
        self.asked.append(form)
        if self.fail is not None:
            return self.fail
        self.counter += 1
        expires = rfc3339(self.now[0] + int(form["DurationSeconds"]))
        body = (
            f'<AssumeRoleWithWebIdentityResponse xmlns="{sts.NAMESPACE}">'
            "<AssumeRoleWithWebIdentityResult><Credentials>"
            f"<AccessKeyId>ASIA{self.counter:016d}</AccessKeyId>"
            f"<SecretAccessKey>secret-{self.counter}-canary</SecretAccessKey>"
            f"<SessionToken>session-{self.counter}</SessionToken>"
            f"<Expiration>{expires}</Expiration></Credentials>"
            "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
        )
        return 200, {"Content-Type": "text/xml"}, body.encode()

    def token(self, form: dict[str, str]) -> Reply:
        self.refreshes += 1
        doc: dict[str, object] = {
            "access_token": f"at-refreshed-{self.refreshes}-" + "a" * 20,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": f"rt-refreshed-{self.refreshes}-" + "r" * 20,
            "scope": "openid",
        }
        if self.new_id_token_exp is not None:
            doc["id_token"] = jwt({"sub": "alice", "exp": self.new_id_token_exp})
        return json_reply(doc)

    def exchanges(self) -> int:
        return len(self.asked)


@pytest.fixture
def fake() -> Iterator[Sts]:
    script = Sts(now=[float(int(time.time()))])
    with fake_oauth({"/sts": script.sts, "/token": script.token}) as server:
        script.fake = server
        yield script


def _record(fake: Sts, **changes: object) -> TokenRecord:
    assert fake.fake is not None
    now = int(fake.now[0])
    record = TokenRecord(
        "t", "local", fake.fake.issuer, "cli", "Bearer", Secret("at-0-" + "a" * 20),
        Secret("rt-0-" + "r" * 20),
        Secret(jwt({"sub": "alice", "preferred_username": "alice", "exp": now + 3600})),
        ("openid",), now - 60, now + 3600, None,
        extra={"token_endpoint": f"{fake.fake.issuer}/token"},
    )  # fmt: skip
    return replace(record, **changes)


def _put(store: Store, record: TokenRecord) -> None:
    with store.edit() as editor:
        editor.put(record)


def _asked(fake: Sts, **changes: object) -> aws.Asked:
    assert fake.fake is not None
    asked = aws.Asked(role_arn=ROLE, duration=3600, endpoint=f"{fake.fake.issuer}/sts", tool="aws")
    return dataclasses.replace(asked, **changes)  # type: ignore[arg-type]


def _serve(store: Store, fake: Sts, policy: Policy = NO_POLICY, **asked: object) -> aws.Served:
    return aws.serve(store, policy, {}, "t", _asked(fake, **asked), clock=lambda: fake.now[0])


def _events(store: Store) -> list[dict[str, object]]:
    if not store.paths.audit_file.exists():
        return []
    return [json.loads(line) for line in store.paths.audit_file.read_bytes().splitlines()]


def _uses(store: Store) -> list[tuple[object, ...]]:
    return [
        (e["event"], e["outcome"], e["command"])
        for e in _events(store)
        if e["event"] in ("used", "denied")
    ]


def _host(fake: Sts) -> str:
    assert fake.fake is not None
    return f"127.0.0.1:{fake.fake.port}"


def _policy(text: str) -> Policy:
    return Policy([parse_policy("version: 1\n" + text, "/policies/p.yaml", system=False)])


def test_a_set_is_kept_in_the_vault_and_served_from_there(fake: Sts) -> None:
    with _store() as (store, _):
        record = _record(fake)
        _put(store, record)
        first = _serve(store, fake)
        assert not first.cached
        assert first.credentials.secret_access_key.reveal() == "secret-1-canary"
        assert first.expiration == int(fake.now[0]) + 3600
        fake.now[0] += 600
        second = _serve(store, fake)
        assert second.cached
        assert second.credentials == first.credentials
        assert fake.exchanges() == 1  # the second came from the vault
        assert _uses(store) == [
            ("used", "success", f"aws sts {ROLE} via {_host(fake)} (aws)"),
            ("used", "success", f"aws sts {ROLE} cached via {_host(fake)} (aws)"),
        ]
        stored = (store.read() or pytest.fail("no vault")).get("t")
        assert stored is not None
        assert [c.access_key_id for c in stored.aws] == [first.credentials.access_key_id]
        asked = fake.asked[0]
        assert asked["RoleSessionName"] == "alice"  # from the ID token's preferred_username
        assert record.id_token is not None
        assert asked["WebIdentityToken"] == record.id_token.reveal()


def test_a_set_is_kept_per_role_session_name_and_duration(fake: Sts) -> None:
    with _store() as (store, _):
        _put(store, _record(fake))
        other_role = "arn:aws:iam::123456789012:role/other"
        for changes in (
            {},
            {"role_arn": other_role},
            {"session_name": "bob"},
            {"duration": 7200},
        ):
            assert not _serve(store, fake, **changes).cached
        for changes in ({}, {"role_arn": other_role}, {"session_name": "bob"}, {"duration": 7200}):
            assert _serve(store, fake, **changes).cached
        assert fake.exchanges() == 4


def test_a_set_near_its_end_is_replaced_by_a_new_exchange(fake: Sts) -> None:
    with _store() as (store, _):
        _put(store, _record(fake, expires_at=int(fake.now[0]) + 10**6))
        _serve(store, fake, duration=900)
        fake.now[0] += 900 - 300  # 300 s left: not more than min_valid
        fresh = _serve(store, fake, duration=900)
        assert not fresh.cached
        assert fake.exchanges() == 2
        fake.now[0] += 100
        assert _serve(store, fake, duration=900, min_valid=60).cached
        stored = (store.read() or pytest.fail("no vault")).get("t")
        assert stored is not None
        assert len(stored.aws) == 1  # the replaced set went


def test_max_token_age_caps_the_duration_asked_and_the_expiry_served(fake: Sts) -> None:
    policy = _policy("max_token_age: 1h\n")
    with _store() as (store, _):
        _put(store, _record(fake, issued_at=int(fake.now[0]) - 1200))  # 40 min left
        served = _serve(store, fake, policy)
        assert fake.asked[0]["DurationSeconds"] == "2400"
        assert served.expiration == int(fake.now[0]) + 2400
        # A stricter policy later: the kept set is served only until the new limit.
        stricter = _policy("max_token_age: 50m\n")
        again = _serve(store, fake, stricter)
        assert again.cached
        assert again.expiration == int(fake.now[0]) + 1800


def test_less_than_sts_minimum_left_is_refused_and_audited(fake: Sts) -> None:
    policy = _policy("max_token_age: 1h\n")
    with _store() as (store, _):
        _put(store, _record(fake, issued_at=int(fake.now[0]) - 3600 + 899))
        with pytest.raises(PolicyError) as refused:
            _serve(store, fake, policy)
        assert refused.value.exit_code == 5
        assert refused.value.rule == "max_token_age"
        assert "at least 15m" in refused.value.message
        assert fake.exchanges() == 0
        assert _uses(store) == [("denied", "denied", f"aws sts {ROLE} via {_host(fake)} (aws)")]


def test_a_kept_set_of_a_token_policy_no_longer_allows_is_never_served(fake: Sts) -> None:
    with _store() as (store, _):
        _put(store, _record(fake))
        _serve(store, fake)
        for policy in (_policy("max_token_age: 30s\n"), _policy("denied_scopes: [openid]\n")):
            with pytest.raises(PolicyError):
                _serve(store, fake, policy)
        assert fake.exchanges() == 1
        assert [u[:2] for u in _uses(store)] == [
            ("used", "success"),
            ("denied", "denied"),
            ("denied", "denied"),
        ]


def test_a_token_without_an_id_token_is_refused_with_what_to_do(fake: Sts) -> None:
    with _store() as (store, _):
        _put(store, _record(fake, id_token=None))
        with pytest.raises(AuthError) as refused:
            _serve(store, fake)
        assert refused.value.exit_code == 4
        assert refused.value.code == "no_id_token"
        assert "openid" in (refused.value.hint or "")
        assert fake.exchanges() == 0
        assert _uses(store) == [("used", "failure", f"aws sts {ROLE} via {_host(fake)} (aws)")]


def test_policy_is_named_before_the_missing_id_token(fake: Sts) -> None:
    with _store() as (store, _):
        _put(store, _record(fake, id_token=None))
        with pytest.raises(PolicyError):
            _serve(store, fake, _policy("denied_scopes: [openid]\n"))


def test_an_expiring_id_token_is_refreshed_first(fake: Sts) -> None:
    with _store() as (store, _):
        now = int(fake.now[0])
        expiring = jwt({"sub": "alice", "exp": now + 100})
        _put(store, _record(fake, id_token=Secret(expiring)))
        fake.new_id_token_exp = now + 3600
        served = _serve(store, fake)
        assert served.refreshed
        assert fake.refreshes == 1
        sent = fake.asked[0]["WebIdentityToken"]
        assert sent != expiring
        assert jwt_expiry(sent) == now + 3600


def test_a_refresh_that_gives_no_new_id_token_fails_before_sts(fake: Sts) -> None:
    with _store() as (store, _):
        now = int(fake.now[0])
        _put(store, _record(fake, id_token=Secret(jwt({"sub": "a", "exp": now - 5}))))
        fake.new_id_token_exp = None  # the refresh answer has no id_token: the old one stays
        with pytest.raises(AuthError) as refused:
            _serve(store, fake)
        assert refused.value.code == "expired"
        assert "did not renew it" in refused.value.message
        assert fake.refreshes == 1
        assert fake.exchanges() == 0
        assert _uses(store) == [("used", "failure", f"aws sts {ROLE} via {_host(fake)} (aws)")]


def test_an_expired_id_token_that_cannot_be_refreshed_is_refused(fake: Sts) -> None:
    with _store() as (store, _):
        now = int(fake.now[0])
        token = Secret(jwt({"sub": "a", "exp": now - 5}))
        _put(store, _record(fake, id_token=token, refresh_token=None))
        with pytest.raises(AuthError) as refused:
            _serve(store, fake)
        assert refused.value.code == "expired"
        assert "cannot be refreshed" in refused.value.message
        assert fake.exchanges() == 0
        assert _uses(store) == [("used", "failure", f"aws sts {ROLE} via {_host(fake)} (aws)")]


def test_a_refused_exchange_is_audited_and_nothing_is_kept(fake: Sts) -> None:
    body = (
        f'<ErrorResponse xmlns="{sts.NAMESPACE}"><Error><Code>InvalidIdentityToken</Code>'
        "<Message>no</Message></Error></ErrorResponse>"
    ).encode()
    with _store() as (store, _):
        _put(store, _record(fake))
        fake.fail = (400, {}, body)
        with pytest.raises(AuthError) as refused:
            _serve(store, fake)
        assert "InvalidIdentityToken" in refused.value.message
        fake.fail = (503, {}, b"<html>down</html>")
        with pytest.raises(NetworkError):
            _serve(store, fake)
        stored = (store.read() or pytest.fail("no vault")).get("t")
        assert stored is not None
        assert stored.aws == ()
        outcomes = [u[:2] for u in _uses(store)]
        assert outcomes == [("used", "success"), ("used", "failure")] * 2
        reasons = [e["reason"] for e in _events(store) if e.get("outcome") == "failure"]
        assert "InvalidIdentityToken" in str(reasons[0])


def test_an_unknown_name_is_audited_and_refused(fake: Sts) -> None:
    with _store() as (store, _):
        _put(store, _record(fake))
        with pytest.raises(NotFoundError):
            aws.serve(store, NO_POLICY, {}, "nope", _asked(fake))
        assert fake.exchanges() == 0


def test_a_set_is_not_kept_with_a_token_replaced_meanwhile(fake: Sts) -> None:
    """A new login under the name while STS answered: the set is not kept with the new one."""
    with _store() as (store, _):
        _put(store, _record(fake))
        original = fake.sts

        def sts_then_login(form: dict[str, str]) -> Reply:
            _put(store, _record(fake, issued_at=int(fake.now[0]), access_token=Secret("new")))
            return original(form)

        fake.sts = sts_then_login  # type: ignore[method-assign]
        assert fake.fake is not None
        fake.fake.routes["/sts"] = sts_then_login
        served = _serve(store, fake)
        assert not served.cached
        stored = (store.read() or pytest.fail("no vault")).get("t")
        assert stored is not None
        assert stored.access_token.reveal() == "new"
        assert stored.aws == ()


def test_at_most_a_few_sets_are_kept_per_token(fake: Sts) -> None:
    with _store() as (store, _):
        _put(store, _record(fake))
        for n in range(aws.MAX_KEPT + 3):
            _serve(store, fake, session_name=f"s{n:02d}")
        stored = (store.read() or pytest.fail("no vault")).get("t")
        assert stored is not None
        assert [c.session_name for c in stored.aws] == [
            f"s{n:02d}" for n in range(3, aws.MAX_KEPT + 3)
        ]


def test_kept_sets_survive_the_vault_format_and_stay_out_of_reprs(fake: Sts) -> None:
    creds = AwsCredentials(
        ROLE, "alice", 3600, "ASIAKEYID0000000000", Secret("secret-canary"),
        Secret("session-canary"), 1_800_000_000, 1_799_996_400,
    )  # fmt: skip
    record = _record(fake, aws=(creds,))
    again = TokenRecord.from_json("t", record.to_json())
    assert again.aws == (creds,)
    assert again.to_json() == record.to_json()
    for shown in (repr(record), repr(creds), str(record)):
        assert "secret-canary" not in shown
        assert "session-canary" not in shown
        assert "ASIAKEYID" not in shown


def test_a_record_written_before_the_field_existed_loads() -> None:
    old: dict[str, object] = {
        "provider": "github", "issuer": "https://github.com", "client_id": "", "token_type":
        "bearer", "access_token": "tok", "refresh_token": None, "id_token": None, "scopes": [],
        "issued_at": 1_700_000_000, "expires_at": None, "last_refresh": None,
        "source": "import", "revoke_pending": False,
    }  # fmt: skip
    record = TokenRecord.from_json("t", json.dumps(old).encode())
    assert record.aws == ()
    assert b'"aws"' not in record.to_json()  # and written back exactly as before


@pytest.mark.parametrize(
    "aws_field",
    ["x", 5, [5], [{}], [{"role_arn": ROLE}], {"a": 1}],
)
def test_a_malformed_kept_set_is_an_integrity_error(aws_field: object) -> None:
    from vault.errors import IntegrityError

    doc: dict[str, object] = {
        "provider": "p", "issuer": "https://i", "client_id": "", "token_type": "bearer",
        "access_token": "tok", "scopes": [], "issued_at": 1, "aws": aws_field,
    }  # fmt: skip
    with pytest.raises(IntegrityError):
        TokenRecord.from_json("t", json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("endpoint", "named"),
    [
        ("https://sts.us-east-1.amazonaws.com/", "aws sts R (aws)"),
        ("https://sts.amazonaws.com", "aws sts R (aws)"),
        ("https://sts.cn-north-1.amazonaws.com.cn/", "aws sts R (aws)"),
        ("https://sts.eu-west-1.amazonaws.com:443/", "aws sts R (aws)"),
        ("https://sts.us-east-1.amazonaws.com.evil.example/", "aws sts R via "
         "sts.us-east-1.amazonaws.com.evil.example (aws)"),
        ("https://STS.example:8443/x", "aws sts R via sts.example:8443 (aws)"),
        ("http://127.0.0.1:4566", "aws sts R via 127.0.0.1:4566 (aws)"),
    ],
)  # fmt: skip
def test_the_audit_names_an_endpoint_that_is_not_aws_own(endpoint: str, named: str) -> None:
    asked = aws.Asked(role_arn="R", duration=900, endpoint=endpoint, tool="aws")
    assert asked.command(cached=False) == named
    assert asked.command(cached=True) == named.replace("aws sts R", "aws sts R cached")
