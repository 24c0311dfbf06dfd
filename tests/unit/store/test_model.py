"""Token records and the payload in process: exact JSON, strict parsing (types, defaults,
refusals that never show a secret), expiry states at their boundaries, and the payload's lines."""

from __future__ import annotations

import base64
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import IntegrityError
from vault.secret import Secret
from vault.store.model import (
    EXPIRING_SOON,
    META_NAME,
    PAYLOAD_MAGIC,
    Meta,
    TokenRecord,
    find_record,
    join_payload,
    meta_of,
    split_payload,
)


def record(**kw: object) -> TokenRecord:
    fields: dict[str, object] = {
        "name": "gh",
        "provider": "github",
        "issuer": "https://github.com",
        "client_id": "cid",
        "token_type": "Bearer",
        "access_token": Secret("at-1"),
        "refresh_token": Secret("rt-1"),
        "id_token": Secret("it-1"),
        "scopes": ("repo", "gist"),
        "issued_at": 1000,
        "expires_at": 5000,
        "last_refresh": 2000,
    }
    fields.update(kw)
    return TokenRecord(**fields)  # type: ignore[arg-type]


FULL_JSON = (
    b'{"provider":"github","issuer":"https://github.com","client_id":"cid","token_type":"Bearer",'
    b'"access_token":"at-1","refresh_token":"rt-1","id_token":"it-1","scopes":["repo","gist"],'
    b'"issued_at":1000,"expires_at":5000,"last_refresh":2000,"source":"login",'
    b'"revoke_pending":false}'
)


def test_to_json_is_exact() -> None:
    assert record().to_json() == FULL_JSON
    bare = record(
        refresh_token=None,
        id_token=None,
        expires_at=None,
        last_refresh=None,
        source="import",
        revoke_pending=True,
        extra={"k": "é"},
    )
    assert bare.to_json() == (
        b'{"provider":"github","issuer":"https://github.com","client_id":"cid",'
        b'"token_type":"Bearer","access_token":"at-1","refresh_token":null,"id_token":null,'
        b'"scopes":["repo","gist"],"issued_at":1000,"expires_at":null,"last_refresh":null,'
        b'"source":"import","revoke_pending":true,"extra":{"k":"\\u00e9"}}'
    )


def test_from_json_round_trips_and_fills_defaults() -> None:
    assert TokenRecord.from_json("gh", FULL_JSON) == record()
    minimal = json.dumps(
        {
            "provider": "p",
            "issuer": "i",
            "client_id": "c",
            "token_type": "t",
            "access_token": "a",
            "scopes": [],
            "issued_at": 7,
        }
    ).encode()
    got = TokenRecord.from_json("n", minimal)
    assert got == TokenRecord(
        name="n",
        provider="p",
        issuer="i",
        client_id="c",
        token_type="t",
        access_token=Secret("a"),
        refresh_token=None,
        id_token=None,
        scopes=(),
        issued_at=7,
        expires_at=None,
        last_refresh=None,
        source="login",
        revoke_pending=False,
        extra={},
    )
    assert got.extra == {}
    doc = json.loads(minimal)
    doc.update(revoke_pending=1, extra=None, refresh_token=None, id_token=None)
    again = TokenRecord.from_json("n", json.dumps(doc).encode())
    assert again.revoke_pending is True
    assert again.extra == {}
    assert again.refresh_token is None


@pytest.mark.parametrize(
    "change",
    [
        {"provider": 1},
        {"issuer": None},
        {"client_id": []},
        {"token_type": 2},
        {"access_token": None},
        {"refresh_token": 5},
        {"id_token": 5},
        {"scopes": ["a", 1]},
        {"scopes": 3},
        {"issued_at": "1"},
        {"issued_at": True},
        {"issued_at": 1.5},
        {"expires_at": "5"},
        {"expires_at": False},
        {"last_refresh": "x"},
        {"source": 3},
        {"extra": [1]},
    ],
)
def test_from_json_refuses_wrong_types_without_showing_secrets(change: dict[str, object]) -> None:
    doc = json.loads(FULL_JSON)
    doc.update(change)
    with pytest.raises(IntegrityError) as info:
        TokenRecord.from_json("gh", json.dumps(doc).encode())
    assert str(info.value) == "stored record 'gh' is malformed"
    assert "at-1" not in repr(info.value.__cause__)


@pytest.mark.parametrize(
    "key", ["provider", "issuer", "client_id", "token_type", "access_token", "scopes", "issued_at"]
)
def test_from_json_refuses_a_missing_field(key: str) -> None:
    doc = json.loads(FULL_JSON)
    del doc[key]
    with pytest.raises(IntegrityError, match=r"^stored record 'gh' is malformed$"):
        TokenRecord.from_json("gh", json.dumps(doc).encode())


def test_from_json_refuses_what_is_not_json() -> None:
    for raw in (b"{", b"[]", b"null", b"[" * 100000):
        with pytest.raises(IntegrityError, match=r"^stored record 'x' is malformed$"):
            TokenRecord.from_json("x", raw)


def test_states_at_their_boundaries() -> None:
    r = record(expires_at=10_000)
    assert r.state(now=10_000 - EXPIRING_SOON - 1) == "valid"
    assert r.state(now=10_000 - EXPIRING_SOON - 0.5) == "valid"
    assert r.state(now=10_000 - EXPIRING_SOON) == "expiring"
    assert r.state(now=9_999.5) == "expiring"
    assert r.state(now=10_000) == "refreshable"
    assert r.state(now=10_000 + 10**6) == "refreshable"
    assert record(expires_at=10_000, refresh_token=None).state(now=10_000) == "expired"
    assert record(expires_at=None).state(now=10**12) == "valid"
    assert EXPIRING_SOON == 300


def test_state_defaults_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 4_800.0)
    assert record(expires_at=5_000).state() == "expiring"
    monkeypatch.setattr(time, "time", lambda: 4_600.0)
    assert record(expires_at=5_000).state() == "valid"
    assert record(expires_at=5_000).state(now=0) == "valid"
    assert record(expires_at=5_000).state(now=5_000) == "refreshable"


def test_with_tokens_keeps_identity_and_login_time() -> None:
    r = record(extra={"x": 1}, source="import")
    new = r.with_tokens(
        access_token=Secret("at-2"),
        refresh_token=Secret("rt-2"),
        id_token=Secret("it-2"),
        expires_at=9000,
        scopes=("repo",),
        refreshed_at=8000,
    )
    assert new == record(
        access_token=Secret("at-2"),
        refresh_token=Secret("rt-2"),
        id_token=Secret("it-2"),
        expires_at=9000,
        scopes=("repo",),
        last_refresh=8000,
        extra={"x": 1},
        source="import",
    )
    assert new.issued_at == 1000
    assert r.access_token == Secret("at-1")


# --- Meta ------------------------------------------------------------------------------


def test_meta_json() -> None:
    meta = Meta(audit_key=b"\x00" * 3, state_key=b"\xff" * 3, created=42)
    assert meta.to_json() == b'{"v":1,"audit_key":"AAAA","state_key":"////","created":42}'
    assert Meta.from_json(meta.to_json()) == meta


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"audit_key":"AAAA","state_key":"////"}',
        b'{"audit_key":"AAAA","created":1}',
        b'{"state_key":"AAAA","created":1}',
        b'{"audit_key":"A!AA","state_key":"////","created":1}',
        b'{"audit_key":"AA!AA","state_key":"////","created":1}',
        b'{"audit_key":"AAAA","state_key":"//!//","created":1}',
        b'{"audit_key":"AAAA","state_key":"//\\n//","created":1}',
        b'{"audit_key":"AAAA","state_key":"////","created":true}',
        b'{"audit_key":"AAAA","state_key":"////","created":"1"}',
        b'{"audit_key":5,"state_key":"////","created":1}',
        b"[1]",
    ],
)
def test_meta_refusals(raw: bytes) -> None:
    with pytest.raises(IntegrityError) as info:
        Meta.from_json(raw)
    assert str(info.value) == "vault metadata is malformed"


def test_meta_new(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1234.9)
    a, b = Meta.new(), Meta.new()
    assert len(a.audit_key) == len(a.state_key) == 32
    assert a.audit_key != a.state_key
    assert a.audit_key != b.audit_key
    assert a.created == 1234


# --- the payload -----------------------------------------------------------------------

META = Meta(audit_key=b"a" * 32, state_key=b"s" * 32, created=1)


def test_join_payload_is_sorted_and_exact() -> None:
    payload = join_payload(META, [("b", b"{2}"), ("a", b"{1}")])
    assert payload == (
        PAYLOAD_MAGIC + META_NAME + b"\t" + META.to_json() + b"\n" + b"a\t{1}\nb\t{2}\n"
    )
    assert PAYLOAD_MAGIC == b"VREC1\n"
    assert META_NAME == b"#meta"
    assert join_payload(META, []) == b"VREC1\n#meta\t" + META.to_json() + b"\n"


def test_find_record() -> None:
    payload = join_payload(META, [("a", b"{1}"), ("ab", b"{2}"), ("é", b"{3}")])
    assert find_record(payload, "a") == b"{1}"
    assert find_record(payload, "ab") == b"{2}"
    assert find_record(payload, "é") == b"{3}"
    assert find_record(payload, "b") is None
    assert find_record(payload, "#meta") == META.to_json()  # the magic ends in a newline
    with pytest.raises(IntegrityError) as info:
        find_record(payload[:-1], "é")
    assert str(info.value) == "vault payload is malformed"


def test_find_record_at_the_very_start_of_the_body() -> None:
    assert find_record(b"\nx\t{}\n", "x") == b"{}"
    with pytest.raises(IntegrityError, match=r"^vault payload is malformed$"):
        find_record(b"\nx\t{}", "x")


def test_split_payload() -> None:
    payload = join_payload(META, [("b", b"{2}"), ("a", b"{1}")])
    meta, records = split_payload(payload)
    assert meta == META
    assert records == {"a": b"{1}", "b": b"{2}"}
    assert list(records) == ["a", "b"]
    meta, records = split_payload(payload + b"\n\n")
    assert records == {"a": b"{1}", "b": b"{2}"}
    assert split_payload(payload + b"c\t\n")[1]["c"] == b""
    assert split_payload(payload + b"d\ta\tb\n")[1]["d"] == b"a\tb"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"VREC2\n#meta\t{}\n", "vault payload is malformed (bad magic)"),
        (b"", "vault payload is malformed (bad magic)"),
        (b"VREC1\n", "vault payload is malformed (no metadata)"),
        (b"VREC1\na\t{}\n", "vault payload is malformed (no metadata)"),
        (b"VREC1\n#meta\n", "vault payload is malformed (a line has no name)"),
        (b"VREC1\n\xff\t{}\n", "vault payload is malformed (a name is not UTF-8)"),
        (b"VREC1\n#meta\t{}\n", "vault metadata is malformed"),
    ],
)
def test_split_payload_refusals(payload: bytes, message: str) -> None:
    with pytest.raises(IntegrityError) as info:
        split_payload(payload)
    assert str(info.value) == message


def test_split_payload_reports_bad_names_even_with_metadata() -> None:
    good = join_payload(META, [])
    with pytest.raises(IntegrityError) as info:
        split_payload(good + b"\xc3\t{}\n")
    assert str(info.value) == "vault payload is malformed (a name is not UTF-8)"
    with pytest.raises(IntegrityError) as info:
        split_payload(good + b"noname\n")
    assert str(info.value) == "vault payload is malformed (a line has no name)"


def test_meta_of() -> None:
    payload = join_payload(META, [("a", b"{1}")])
    assert meta_of(payload) == META
    for bad in (
        b"VREC2\n#meta\t{}\n",
        b"VREC1\n#metax{}\n",
        b"VREC1\na\t{}\n",
        b"",
        b"VREC1\n#meta",
    ):
        with pytest.raises(IntegrityError) as info:
            meta_of(bad)
        assert str(info.value) == "vault payload is malformed (no metadata)"
    with pytest.raises(IntegrityError, match=r"^vault metadata is malformed$"):
        meta_of(b"VREC1\n#meta\t" + META.to_json()[:-1] + b"\n")


@given(
    st.dictionaries(
        st.text(
            st.characters(blacklist_characters="\t\n", blacklist_categories=["Cs"]), min_size=1
        ),
        st.binary().filter(lambda b: b"\n" not in b),
        max_size=8,
    )
)
def test_payload_round_trip(records: dict[str, bytes]) -> None:
    payload = join_payload(META, records.items())
    meta, parsed = split_payload(payload)
    assert meta == META
    assert parsed == records
    for name, raw in records.items():
        assert find_record(payload, name) == raw
    assert meta_of(payload) == META


def test_base64_is_standard() -> None:
    meta = Meta(audit_key=b"\xfb\xff", state_key=b"", created=0)
    doc = json.loads(meta.to_json())
    assert doc == {
        "v": 1,
        "audit_key": base64.b64encode(b"\xfb\xff").decode(),
        "state_key": "",
        "created": 0,
    }


def test_empty_lines_are_skipped_anywhere() -> None:
    payload = join_payload(META, [("a", b"{1}"), ("b", b"{2}")])
    gappy = payload.replace(b"\na\t", b"\n\na\t").replace(b"\nb\t", b"\n\n\nb\t")
    assert split_payload(gappy)[1] == {"a": b"{1}", "b": b"{2}"}


def test_type_refusals_say_what_was_expected() -> None:
    doc = json.loads(FULL_JSON)
    for change, expected in (
        ({"issued_at": "1"}, "expected an integer"),
        ({"provider": 1}, "expected a string"),
    ):
        with pytest.raises(IntegrityError) as info:
            TokenRecord.from_json("gh", json.dumps({**doc, **change}).encode())
        assert str(info.value.__cause__) == expected


def test_the_rejected_mark_is_written_only_when_set_and_cleared_by_new_tokens() -> None:
    """Backward compatible both ways: a record without the key reads as unmarked, and an
    unmarked record is written exactly as before the field existed."""
    assert TokenRecord.from_json("gh", FULL_JSON).rejected_at is None
    assert record().to_json() == FULL_JSON
    marked = record(rejected_at=4000)
    assert marked.to_json() == FULL_JSON[:-1] + b',"rejected_at":4000}'
    assert TokenRecord.from_json("gh", marked.to_json()) == marked
    renewed = marked.with_tokens(
        access_token=Secret("at-2"),
        refresh_token=Secret("rt-2"),
        id_token=None,
        expires_at=9000,
        scopes=("repo",),
        refreshed_at=4500,
    )
    assert renewed.rejected_at is None
    doc = json.loads(FULL_JSON)
    for bad in ("4000", 4000.5, True, [1]):
        doc["rejected_at"] = bad
        with pytest.raises(IntegrityError):
            TokenRecord.from_json("gh", json.dumps(doc).encode())
