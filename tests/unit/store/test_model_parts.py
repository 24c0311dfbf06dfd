"""The parts of a token record that other parts read: the account it speaks for (what a person
is shown, its JSON), the AWS credentials kept with it (their JSON, what they are looked up by),
and the identity policy sees (the preset recorded at login, else the issuer's)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.store.test_model import record
from vault.login.providers import Identity
from vault.secret import Secret
from vault.store.model import (
    MAX_HELD,
    Account,
    AwsCredentials,
    LoginNeeded,
    Meta,
    TokenRecord,
    join_payload,
    with_meta,
)

MAYBE_TEXT = st.none() | st.text(max_size=20)


@given(subject=MAYBE_TEXT, display=MAYBE_TEXT)
def test_an_account_shows_its_display_name_else_its_subject(
    subject: str | None, display: str | None
) -> None:
    account = Account(subject=subject, display=display)
    assert account.shown() == (display or subject)
    doc = account.to_doc()
    assert doc == {
        **({} if subject is None else {"subject": subject}),
        **({} if display is None else {"display": display}),
    }
    assert Account.from_doc(doc) == account
    assert record(account=account).whom() == account.shown()


def test_a_token_without_an_account_shows_no_one() -> None:
    assert record().whom() is None
    assert record(account=Account()).whom() is None
    assert Account().to_doc() == {}
    assert Account.from_doc(None) is None
    with pytest.raises(TypeError, match="account: expected an object"):
        Account.from_doc(["subject"])


CREDS = AwsCredentials(
    role_arn="arn:aws:iam::123456789012:role/dev",
    session_name="alice",
    duration=3600,
    access_key_id="ASIAEXAMPLE",
    secret_access_key=Secret("sk-canary"),
    session_token=Secret("st-canary"),
    expiration=5000,
    obtained=1400,
)


def test_aws_credentials_round_trip_exactly() -> None:
    doc = CREDS.to_doc()
    assert doc == {
        "role_arn": "arn:aws:iam::123456789012:role/dev",
        "session_name": "alice",
        "duration": 3600,
        "access_key_id": "ASIAEXAMPLE",
        "secret_access_key": "sk-canary",
        "session_token": "st-canary",
        "expiration": 5000,
        "obtained": 1400,
    }
    back = AwsCredentials.from_doc(doc)
    assert back == CREDS
    assert back.secret_access_key.reveal() == "sk-canary"
    assert back.session_token.reveal() == "st-canary"
    for secret in ("sk-canary", "st-canary", "ASIAEXAMPLE"):
        assert secret not in repr(back)


@pytest.mark.parametrize(
    "broken",
    [
        ["not", "an", "object"],
        {**CREDS.to_doc(), "duration": "3600"},
        {**CREDS.to_doc(), "secret_access_key": 7},
        {k: v for k, v in CREDS.to_doc().items() if k != "session_token"},
    ],
)
def test_aws_credentials_refuse_a_wrong_document(broken: object) -> None:
    with pytest.raises((TypeError, KeyError, ValueError)):
        AwsCredentials.from_doc(broken)


def test_aws_credentials_are_found_by_role_session_and_duration_together() -> None:
    assert CREDS.matches("arn:aws:iam::123456789012:role/dev", "alice", 3600)
    assert not CREDS.matches("arn:aws:iam::123456789012:role/prod", "alice", 3600)
    assert not CREDS.matches("arn:aws:iam::123456789012:role/dev", "bob", 3600)
    assert not CREDS.matches("arn:aws:iam::123456789012:role/dev", "alice", 900)


@pytest.mark.parametrize(
    ("preset", "issuer", "expected"),
    [
        ("github", "https://github.com", "github"),
        ("oidc", "https://github.com", "oidc"),  # what was recorded at login wins
        (None, "https://github.com", "github"),  # an older record: the issuer's preset
        (None, "https://gitlab.com", "gitlab"),
        (None, "https://idp.example.test", "oidc"),
        ("no-such-preset", "https://idp.example.test", "oidc"),
    ],
)
def test_the_identity_is_the_recorded_preset_else_the_issuers(
    preset: str | None, issuer: str, expected: str
) -> None:
    extra = {} if preset is None else {"preset": preset}
    assert record(issuer=issuer, extra=extra).identity() == Identity(expected, issuer)


FULL_RECORD_JSON = (
    b'{"provider":"github","issuer":"https://github.com","client_id":"cid","token_type":"Bearer",'
    b'"access_token":"at-1","refresh_token":"rt-1","id_token":"it-1","scopes":["repo","gist"],'
    b'"issued_at":1000,"expires_at":5000,"last_refresh":2000,"source":"login",'
    b'"revoke_pending":true,"needs_login":{"cause":"invalid_grant","reason":"refused","at":1500},'
    b'"aws":[{"role_arn":"arn:aws:iam::123456789012:role/dev","session_name":"alice",'
    b'"duration":3600,"access_key_id":"ASIAEXAMPLE","secret_access_key":"sk-canary",'
    b'"session_token":"st-canary","expiration":5000,"obtained":1400}],'
    b'"account":{"subject":"sub-1","display":"al\\u00efce"}}'
)


def test_a_record_with_every_optional_part_is_exact_json_and_back() -> None:
    full = record(
        needs_login=LoginNeeded("invalid_grant", "refused", 1500),
        aws=(CREDS,),
        account=Account("sub-1", "al\u00efce"),
        revoke_pending=True,
    )
    assert full.to_json() == FULL_RECORD_JSON  # ASCII only: escapes, not UTF-8
    back = TokenRecord.from_json("gh", FULL_RECORD_JSON)
    assert back == full
    assert back.needs_login == LoginNeeded("invalid_grant", "refused", 1500)
    assert back.aws == (CREDS,)
    assert back.account == Account("sub-1", "al\u00efce")
    assert back.revoke_pending is True
    assert back.state() == "needs_login"
    plain = TokenRecord.from_json("gh", record().to_json())
    assert (plain.needs_login, plain.aws, plain.account, plain.revoke_pending) == (
        None,
        (),
        None,
        False,
    )


def test_the_meta_line_is_replaced_whole_and_in_ascii() -> None:
    first = Meta(audit_key=b"a" * 32, state_key=b"s" * 32, created=1)
    payload = join_payload(first, [("gh", record().to_json())])
    second = Meta(
        audit_key=b"a" * 32,
        state_key=b"s" * 32,
        created=1,
        audit={"note": "\u00e9"},
    )
    replaced = with_meta(payload, second)
    assert replaced == join_payload(second, [("gh", record().to_json())])
    assert replaced.isascii()
    assert b"\\u00e9" in second.to_json()


def _meta() -> Meta:
    return Meta(audit_key=b"a" * 32, state_key=b"s" * 32, created=1)


def test_a_held_token_keeps_its_earliest_issue_time() -> None:
    meta, token = _meta(), Secret("at-held")
    assert meta.first_held(token) is None
    meta.hold(token, 100, 900, now=0)
    meta.hold(token, 200, 950, now=0)  # later: the first issue time stays
    assert meta.first_held(token) == 100
    assert meta.held[meta.held_key(token)] == [100, 950]  # the expiry is the newest
    meta.hold(token, 100, 960, now=0)
    assert meta.first_held(token) == 100
    meta.hold(token, 40, 970, now=0)  # earlier: taken
    assert meta.first_held(token) == 40
    assert meta.first_held(Secret("at-other")) is None


def test_a_full_map_forgets_the_expired_then_the_soonest_to_expire() -> None:
    meta, now = _meta(), 10_000
    expired = [Secret(f"gone-{i}") for i in range(100)]
    for i, token in enumerate(expired):
        meta.hold(token, 1, now - 1 - i, now=now)
    live = [Secret(f"live-{i}") for i in range(MAX_HELD - 100)]
    for i, token in enumerate(live):
        meta.hold(token, 1, None if i % 10 == 0 else now + 1 + i, now=now)
    assert len(meta.held) == MAX_HELD  # full, nothing swept yet
    current = Secret("current")
    meta.hold(current, 1, now + 1, now=now)  # the soonest of all to expire, and kept
    kept = MAX_HELD * 3 // 4
    assert len(meta.held) == kept
    assert meta.first_held(current) == 1
    assert all(meta.first_held(t) is None for t in expired)
    never = [t for i, t in enumerate(live) if i % 10 == 0]
    assert all(meta.first_held(t) == 1 for t in never)  # never expiring: kept last
    dated = [(now + 1 + i, t) for i, t in enumerate(live) if i % 10 != 0]
    survivors = kept - 1 - len(never)
    for rank, (_, token) in enumerate(sorted(dated, key=lambda pair: pair[0])):
        assert (meta.first_held(token) is not None) is (rank >= len(dated) - survivors)
