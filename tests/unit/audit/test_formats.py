"""vault.audit.formats: every event kind as an OCSF Authentication event and an ECS document,
the mapping tables as documented, and hostile records (controls, huge values, odd types, a
Secret) giving valid, bounded JSON that holds no secret."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import __version__
from vault.audit.chain import make_event
from vault.audit.formats import (
    ECS_VERSION,
    MAX_DOC,
    MAX_LIST,
    MAX_TEXT,
    OCSF_VERSION,
    to_ecs,
    to_ocsf,
)
from vault.audit.report import EVENTS
from vault.secret import Secret

RECORD: dict[str, Any] = {
    "v": 1,
    "seq": 7,
    "time": "2026-11-23T08:00:00.123Z",
    "event": "used",
    "name": "gh",
    "provider": "github",
    "issuer": "https://github.com",
    "scopes": ["repo"],
    "outcome": "success",
    "reason": None,
    "rule": None,
    "source": None,
    "command": "token",
    "user": "alice",
    "host": "ws1",
    "pid": 4242,
    "fingerprint": "hmac-sha256:3ebe",
    "mac": "d915",
}

UNKNOWN_KINDS = ["head_signed", "", "x" * 500, "used\n\x1b[2J"]

# ECS 8.x: the allowed event.category values and, for each, its expected event.type values.
ECS_EXPECTED_TYPES = {
    "authentication": {"start", "end", "info"},
    "configuration": {"access", "change", "creation", "deletion", "info"},
    "file": {"access", "change", "creation", "deletion", "info"},
    "iam": {"admin", "change", "creation", "deletion", "group", "info", "user"},
    "process": {"access", "change", "end", "info", "start"},
    "session": {"start", "end", "info"},
}
OCSF_ACTIVITIES = {0, 1, 2, 3, 4, 5, 6, 7, 99}
OCSF_SEVERITIES = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High",
                   5: "Critical", 6: "Fatal", 99: "Other"}  # fmt: skip
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def record_of(kind: object, **fields: Any) -> dict[str, Any]:
    return {**RECORD, "event": kind, **fields}


def check_ocsf(doc: dict[str, Any]) -> None:
    """The attributes OCSF 1.x requires of an Authentication event, with their types."""
    assert doc["class_uid"] == 3002
    assert doc["class_name"] == "Authentication"
    assert doc["category_uid"] == 3
    assert doc["category_name"] == "Identity & Access Management"
    assert doc["activity_id"] in OCSF_ACTIVITIES
    assert isinstance(doc["activity_name"], str)
    assert doc["activity_name"]
    assert doc["type_uid"] == 300200 + doc["activity_id"]
    assert isinstance(doc["time"], int)
    assert OCSF_SEVERITIES[doc["severity_id"]] == doc["severity"]
    assert doc["status_id"] in (0, 1, 2, 99)
    assert isinstance(doc["status"], str)
    assert doc["metadata"]["version"] == OCSF_VERSION
    assert doc["metadata"]["product"] == {
        "name": "vault",
        "vendor_name": "vault",
        "version": __version__,
    }
    assert isinstance(doc["user"], dict)
    assert doc["user"]["type_id"] in (0, 1)
    assert "service" in doc or "dst_endpoint" in doc  # the class's at_least_one constraint
    if "auth_protocol_id" in doc:
        assert (doc["auth_protocol_id"], doc["auth_protocol"]) in {(4, "OpenID"), (6, "OAUTH 2.0")}


def check_ecs(doc: dict[str, Any]) -> None:
    assert STAMP.fullmatch(doc["@timestamp"])
    assert doc["ecs"] == {"version": ECS_VERSION}
    event = doc["event"]
    assert event["kind"] == "event"
    assert event["outcome"] in ("success", "failure", "unknown")
    assert isinstance(event["action"], str)
    assert event["module"] == "vault"
    assert event["dataset"] == "vault.audit"
    categories, types = event.get("category", []), event.get("type", [])
    assert bool(categories) == bool(types)
    for category in categories:
        assert category in ECS_EXPECTED_TYPES
    for kind in types:
        assert any(kind in ECS_EXPECTED_TYPES[c] for c in categories), (categories, kind)
    assert doc["service"]["name"] == "vault"
    assert doc["log"]["level"] in ("notice", "warning")


def strings(doc: object) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in (*strings(k), *strings(v))]
    if isinstance(doc, list):
        return [s for item in doc for s in strings(item)]
    return []


def dumped(doc: dict[str, Any]) -> str:
    return json.dumps(doc, allow_nan=False, ensure_ascii=True, separators=(",", ":"))


# -- every kind ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*EVENTS, *UNKNOWN_KINDS, None, 7, ["used"]])
def test_every_kind_has_a_valid_shape(kind: object) -> None:
    check_ocsf(to_ocsf(record_of(kind)))
    check_ecs(to_ecs(record_of(kind)))


@pytest.mark.parametrize("kind", EVENTS)
@pytest.mark.parametrize("outcome", ["success", "denied", "failure"])
def test_records_as_vault_writes_them(kind: str, outcome: str) -> None:
    """Records made by the one function that makes them, for every kind vault writes."""
    event = make_event(
        kind,
        name="gh",
        provider="github",
        issuer="https://github.com",
        scopes=["openid", "repo"],
        outcome=outcome,
        reason="why",
        rule="max_token_age",
        command="token",
        fingerprint="hmac-sha256:ab",
    )
    record = json.loads(json.dumps({"v": 1, "seq": 1, "time": "2026-11-23T08:00:00.000Z", **event}))
    ocsf, ecs = to_ocsf(record), to_ecs(record)
    check_ocsf(ocsf)
    check_ecs(ecs)
    assert ocsf["status_id"] == (1 if outcome == "success" else 2)
    assert ecs["event"]["outcome"] == ("success" if outcome == "success" else "failure")
    assert ocsf["auth_protocol"] == "OpenID"
    assert ocsf["user"]["name"] == record["user"]
    assert ecs["user"]["name"] == record["user"]
    assert ocsf["device"]["hostname"] == ecs["host"]["name"] == record["host"]
    assert ocsf["actor"]["process"]["pid"] == ecs["process"]["pid"] == record["pid"]


@pytest.mark.parametrize(
    ("kind", "activity", "categories", "types"),
    [
        ("issued", (1, "Logon"), ["authentication", "iam"], ["start", "creation"]),
        ("login_failed", (1, "Logon"), ["authentication"], ["start"]),
        ("used", (99, "used"), ["authentication"], ["info"]),
        ("refreshed", (99, "refreshed"), ["authentication", "iam"], ["info", "change"]),
        ("revoked", (2, "Logoff"), ["authentication", "iam"], ["end", "deletion"]),
        ("deleted", (2, "Logoff"), ["iam"], ["deletion"]),
        ("pruned", (2, "Logoff"), ["iam"], ["deletion"]),
        ("denied", (99, "denied"), ["authentication"], ["info"]),
        ("key_rotated", (99, "key_rotated"), ["configuration"], ["change"]),
        ("log_rotated", (99, "log_rotated"), ["file"], ["change"]),
        ("log_reset", (99, "log_reset"), ["file"], ["creation"]),
        ("torn_record_set_aside", (99, "torn_record_set_aside"), ["file"], ["change"]),
        ("chain_signed", (99, "chain_signed"), ["file"], ["info"]),
        ("agent_started", (99, "agent_started"), ["process"], ["start"]),
        ("agent_unlocked", (1, "Logon"), ["authentication", "session"], ["start"]),
        ("agent_locked", (2, "Logoff"), ["authentication", "session"], ["end"]),
        ("head_signed", (99, "head_signed"), None, None),
    ],
)
def test_mapping_table(
    kind: str, activity: tuple[int, str], categories: list[str] | None, types: list[str] | None
) -> None:
    ocsf, ecs = to_ocsf(record_of(kind)), to_ecs(record_of(kind))
    assert (ocsf["activity_id"], ocsf["activity_name"]) == activity
    caption = {1: "Logon", 2: "Logoff", 99: "Other"}[activity[0]]
    assert ocsf["type_name"] == f"Authentication: {caption}"
    assert ocsf["metadata"]["event_code"] == kind
    assert ecs["event"].get("category") == categories
    assert ecs["event"].get("type") == types
    assert ecs["event"]["action"] == kind


def test_every_written_kind_is_in_the_table() -> None:
    """A kind added to EVENTS without a row here would fall to the generic form unnoticed."""
    generic = to_ecs(record_of("no such kind"))["event"]
    for kind in EVENTS:
        assert "category" in to_ecs(record_of(kind))["event"], kind
    assert "category" not in generic


# -- fields -------------------------------------------------------------------------------------


def test_the_documented_field_mapping() -> None:
    ocsf = to_ocsf(RECORD)
    assert ocsf["time"] == 1795420800123
    assert ocsf["metadata"]["uid"] == "7"
    assert ocsf["metadata"]["sequence"] == 7
    assert ocsf["metadata"]["log_name"] == "audit"
    assert ocsf["user"] == {"name": "alice", "type_id": 1, "type": "User"}
    assert ocsf["actor"]["user"] == ocsf["user"]
    assert ocsf["src_endpoint"] == {"hostname": "ws1"}
    assert ocsf["service"] == {"name": "github", "uid": "https://github.com"}
    assert ocsf["dst_endpoint"] == {"hostname": "github.com"}
    assert (ocsf["auth_protocol_id"], ocsf["auth_protocol"]) == (6, "OAUTH 2.0")
    assert ocsf["message"] == "used gh (github): success"
    assert ocsf["unmapped"] == {
        "v": 1,
        "name": "gh",
        "scopes": ["repo"],
        "command": "token",
        "fingerprint": "hmac-sha256:3ebe",
        "mac": "d915",
    }
    ecs = to_ecs(RECORD)
    assert ecs["@timestamp"] == "2026-11-23T08:00:00.123Z"
    assert ecs["event"]["sequence"] == 7
    assert ecs["service"] == {"name": "vault", "version": __version__, "target": {"name": "github"}}
    assert ecs["host"] == {"name": "ws1", "hostname": "ws1"}
    assert ecs["vault"] == {
        "v": 1,
        "name": "gh",
        "provider": "github",
        "issuer": "https://github.com",
        "scopes": ["repo"],
        "command": "token",
        "fingerprint": "hmac-sha256:3ebe",
        "mac": "d915",
    }


def test_denial_reason_rule_and_severity() -> None:
    record = record_of("denied", outcome="denied", reason="too old", rule="max_token_age")
    ocsf, ecs = to_ocsf(record), to_ecs(record)
    assert (ocsf["status_id"], ocsf["status"]) == (2, "Failure")
    assert (ocsf["status_detail"], ocsf["status_code"]) == ("too old", "max_token_age")
    assert (ocsf["severity_id"], ocsf["severity"]) == (3, "Medium")
    assert ecs["event"]["reason"] == "too old"
    assert ecs["rule"] == {"name": "max_token_age"}
    assert ecs["log"]["level"] == "warning"
    assert ecs["event"]["severity"] == 3


@pytest.mark.parametrize(
    ("outcome", "status"), [(None, (0, "Unknown")), ("partial", (99, "partial"))]
)
def test_other_outcomes(outcome: str | None, status: tuple[int, str]) -> None:
    ocsf = to_ocsf(record_of("used", outcome=outcome))
    assert (ocsf["status_id"], ocsf["status"]) == status
    assert to_ecs(record_of("used", outcome=outcome))["event"]["outcome"] == "unknown"


def test_integrity_events_are_medium() -> None:
    for kind in ("log_reset", "torn_record_set_aside"):
        assert to_ocsf(record_of(kind))["severity_id"] == 3


def test_records_without_provider_or_user() -> None:
    record = {"v": 1, "seq": 1, "time": "2026-11-23T08:00:00Z", "event": "key_rotated"}
    ocsf, ecs = to_ocsf(record), to_ecs(record)
    check_ocsf(ocsf)
    check_ecs(ecs)
    assert "auth_protocol_id" not in ocsf
    assert ocsf["service"] == {"name": "vault"}
    assert ocsf["user"] == {"type_id": 0, "type": "Unknown"}
    assert "user" not in ecs
    assert "target" not in ecs["service"]


@pytest.mark.parametrize(
    ("stamp", "millis", "ecs_stamp"),
    [
        ("2026-11-23T08:00:00.123Z", 1795420800123, "2026-11-23T08:00:00.123Z"),
        ("2026-11-23T10:00:00.5+02:00", 1795420800500, "2026-11-23T08:00:00.500Z"),
        ("2026-11-23T08:00:00", 1795420800000, "2026-11-23T08:00:00.000Z"),
        ("1970-01-01T00:00:00Z", 0, "1970-01-01T00:00:00.000Z"),
        ("0001-01-01T00:00:00Z", -62135596800000, "0001-01-01T00:00:00.000Z"),
    ],
)
def test_times(stamp: str, millis: int, ecs_stamp: str) -> None:
    assert to_ocsf(record_of("used", time=stamp))["time"] == millis
    assert to_ecs(record_of("used", time=stamp))["@timestamp"] == ecs_stamp


@pytest.mark.parametrize("stamp", ["yesterday", "", 12, "9" * 100, "0001-01-01T00:00:00+01:00"])
def test_unreadable_time_is_kept_aside(stamp: object) -> None:
    ocsf, ecs = to_ocsf(record_of("used", time=stamp)), to_ecs(record_of("used", time=stamp))
    assert ocsf["time"] == 0
    assert ecs["@timestamp"] == "1970-01-01T00:00:00.000Z"
    assert "original_time" in ocsf["metadata"]
    assert "time" in ecs["vault"]


@pytest.mark.parametrize("seq", [-1, 1 << 70, "7", True, None])
def test_odd_sequence_numbers(seq: object) -> None:
    ocsf, ecs = to_ocsf(record_of("used", seq=seq)), to_ecs(record_of("used", seq=seq))
    assert "sequence" not in ocsf["metadata"]
    assert "sequence" not in ecs["event"]
    if seq is not None:
        assert "seq" in ocsf["unmapped"]
        assert "seq" in ecs["vault"]
    dumped(ocsf)
    dumped(ecs)


def test_openid_scope_means_oidc() -> None:
    ocsf = to_ocsf(record_of("issued", scopes=["openid", "email"]))
    assert (ocsf["auth_protocol_id"], ocsf["auth_protocol"]) == (4, "OpenID")


def test_issuer_host_of_a_bad_url() -> None:
    ocsf = to_ocsf(record_of("used", issuer="https://[::1"))
    assert "dst_endpoint" not in ocsf
    assert ocsf["service"]["uid"] == "https://[::1"


# -- hostile records ----------------------------------------------------------------------------

HOSTILE_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u202e", "\ufeff"]),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    ),
    max_size=50,
) | st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "\n", "\ud800"]), st.integers(0, 5000))

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=1 << 62, max_value=1 << 200),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(HOSTILE_TEXT, inner, max_size=5),
    max_leaves=20,
)
FIELD_NAMES = st.sampled_from(
    ["v", "seq", "time", "event", "name", "provider", "issuer", "scopes", "outcome", "reason",
     "rule", "source", "command", "user", "host", "pid", "fingerprint", "mac", "agent"]
) | HOSTILE_TEXT  # fmt: skip
RECORDS = st.dictionaries(FIELD_NAMES, VALUES, max_size=60) | st.builds(
    lambda n, value: {f"k{i}": value for i in range(n)},
    st.integers(0, 300),
    st.sampled_from(["é" * 4000, list(range(500)), "\x00" * 3000]),
)


def check_bounded(doc: dict[str, Any]) -> None:
    text = dumped(doc)
    assert len(text) <= MAX_DOC
    assert json.loads(text) == doc
    for item in strings(doc):
        assert len(item) <= MAX_TEXT
        assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in item)
    for value in _lists(doc):
        assert len(value) <= MAX_LIST


def _lists(doc: object) -> list[list[Any]]:
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in _lists(v)]
    if isinstance(doc, list):
        return [doc, *(x for item in doc for x in _lists(item))]
    return []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS)
def test_hostile_records_give_valid_bounded_json(record: dict[Any, Any]) -> None:
    for convert, check in ((to_ocsf, check_ocsf), (to_ecs, check_ecs)):
        doc = convert(record)
        check(doc)
        check_bounded(doc)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(FIELD_NAMES, VALUES, max_size=20), FIELD_NAMES)
def test_a_secret_anywhere_is_never_revealed(record: dict[Any, Any], where: str) -> None:
    canary = "canary-tok-9f3e1c"
    record = {
        **record,
        where: Secret(canary),
        "scopes": [Secret(canary)],
        "x": {"y": Secret(canary)},
    }
    for convert in (to_ocsf, to_ecs):
        text = dumped(convert(record))
        assert canary not in text


class Shouting:
    """An object whose text is a secret: it must never be asked for its text."""

    def __str__(self) -> str:
        raise AssertionError("str() called")

    __repr__ = __str__


def test_unknown_objects_are_named_not_shown() -> None:
    record = {**RECORD, "odd": Shouting(), "nested": [Shouting(), {"k": Shouting()}]}
    for convert in (to_ocsf, to_ecs):
        text = dumped(convert(record))
        assert "<Shouting>" in text


def test_many_extra_fields_are_cut_then_dropped() -> None:
    record = {**RECORD, **{f"extra{i}": "v" * 900 for i in range(100)}}
    ocsf = to_ocsf(record)
    check_bounded(ocsf)
    assert ocsf["unmapped"]["truncated"] is True
    ecs = to_ecs(record)
    check_bounded(ecs)
    assert ecs["vault"]["truncated"] is True
    assert ecs["vault"]["provider"] == "github"  # the mapped ones survive the cut


def test_long_text_is_cut_with_an_ellipsis() -> None:
    ocsf = to_ocsf(record_of("used", reason="r" * 5000))
    assert len(ocsf["status_detail"]) == MAX_TEXT
    assert ocsf["status_detail"].endswith("…")
