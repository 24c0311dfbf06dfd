"""Audit records in the shapes SIEMs read: OCSF Authentication and the Elastic Common Schema.

:func:`to_ocsf` and :func:`to_ecs` turn one audit record (a parsed line of ``audit.jsonl``, or an
event as it is forwarded) into a JSON-compatible dict. Both are total: any mapping gives a
document, whatever its fields hold (the log is read unverified by `vault audit show`, and an
event kind this module does not know maps to the generic form below), and neither raises.

**OCSF** (schema :data:`OCSF_VERSION`): every record is an Authentication event (class_uid 3002,
category_uid 3, Identity & Access Management); ``type_uid`` = 300200 + ``activity_id``.

**ECS** (:data:`ECS_VERSION`): ``event.kind`` is ``event``; ``event.category``/``event.type``
follow the kind; ``event.action`` is the vault event kind.

=========================  ===================  =========================  =================
vault event                OCSF activity        ECS event.category         ECS event.type
=========================  ===================  =========================  =================
issued                     1 Logon              authentication, iam        start, creation
login_failed               1 Logon              authentication             start
used                       99 Other             authentication             info
refreshed                  99 Other             authentication, iam        info, change
revoked                    2 Logoff             authentication, iam        end, deletion
deleted, pruned            2 Logoff             iam                        deletion
denied                     99 Other             authentication             info
key_rotated                99 Other             configuration              change
log_rotated                99 Other             file                       change
log_reset                  99 Other             file                       creation
torn_record_set_aside      99 Other             file                       change
chain_signed               99 Other             file                       info
agent_started              99 Other             process                    start
agent_unlocked             1 Logon              authentication, session    start
agent_locked               2 Logoff             authentication, session    end
anything else              99 Other             (none)                     (none)
=========================  ===================  =========================  =================

For activity 99 the OCSF ``activity_name`` is the vault event kind itself (as the schema asks
for a source-specific value); otherwise it is the schema's caption.

Fields, record -> OCSF / ECS:

* ``time`` -> ``time`` (ms since the epoch) / ``@timestamp`` (RFC 3339, ms, ``Z``). A time that
  cannot be read gives 0 / ``1970-01-01T00:00:00.000Z``; the text is kept
  (``metadata.original_time`` / ``vault.time``).
* ``outcome`` -> ``status_id``/``status`` (success 1 Success; denied, failure 2 Failure; none
  0 Unknown; any other 99 with its text) / ``event.outcome`` (success, failure, unknown).
* ``reason`` -> ``status_detail`` / ``event.reason``; ``rule`` -> ``status_code`` /
  ``rule.name``.
* severity: 3 Medium for a denied or failed outcome and for ``log_reset`` and
  ``torn_record_set_aside``, else 1 Informational -> ``severity_id``/``severity`` /
  ``event.severity``; ``log.level`` is ``warning`` or ``notice`` as the syslog severity is.
* ``user`` -> ``user.name`` and ``actor.user.name`` / ``user.name``.
* ``host`` -> ``src_endpoint.hostname`` and ``device.hostname`` / ``host.name``.
* ``pid`` -> ``actor.process.pid`` / ``process.pid`` (the client's pid when an agent served it;
  the agent's own pid is ``agent``, kept as the rest are).
* ``provider`` -> ``service.name`` (``vault`` when there is none) / ``service.target.name``;
  ``issuer`` -> ``service.uid`` and, its host, ``dst_endpoint.hostname`` / ``vault.issuer``.
* a record with a provider or issuer (a token's record) -> ``auth_protocol_id`` 4 ``OpenID``
  when its scopes include ``openid``, else 6 ``OAUTH 2.0``.
* ``seq`` -> ``metadata.uid`` (as text) and ``metadata.sequence`` / ``event.sequence`` (a
  ``seq`` that is not a non-negative 64-bit integer is kept with the other fields instead).
* ``event`` -> ``metadata.event_code`` / ``event.action``.
* product: ``metadata.product`` {name ``vault``, vendor_name ``vault``, version},
  ``metadata.log_name`` ``audit`` / ``service.name`` ``vault``, ``service.version``,
  ``event.module`` ``vault``, ``event.dataset`` ``vault.audit``.
* every other field of the record (``name``, ``scopes``, ``fingerprint``, ``command``,
  ``source``, ``mac``, ``v``, ``agent``, and any field this module does not know) ->
  ``unmapped.<field>`` / ``vault.<field>``, under its own name; ``provider`` also goes to
  ``vault.provider``.
* ``message``: a one-line summary (``used gh (github): success``) in both.

Bounds: text is cut to :data:`MAX_TEXT` characters (ending in ``…``), lone surrogates become
U+FFFD, lists keep :data:`MAX_LIST` items, nested objects become compact JSON text, an integer
beyond 64 bits becomes a note of its size, and at most :data:`MAX_EXTRA` other fields are kept.
A document whose JSON would pass :data:`MAX_DOC` characters loses its other fields (the
``unmapped`` or ``vault`` object then holds only ``"truncated": true`` and the mapped ones).
A value of a type JSON does not know is written as ``<TypeName>``, never as its text, so
nothing reaches a document that a record did not already hold in the clear; records hold
fingerprints of tokens, never tokens.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from vault import __version__

__all__ = [
    "ECS_VERSION",
    "FORMATS",
    "MAX_DOC",
    "MAX_EXTRA",
    "MAX_LIST",
    "MAX_TEXT",
    "OCSF_VERSION",
    "to_ecs",
    "to_ocsf",
]

OCSF_VERSION: Final = "1.3.0"
ECS_VERSION: Final = "8.11.0"
FORMATS: Final = ("ocsf", "ecs")

MAX_TEXT: Final = 1024
MAX_LIST: Final = 100
MAX_EXTRA: Final = 32
MAX_DOC: Final = 32 * 1024
_MAX_KEY = 64
_INT64 = 1 << 63

_OCSF_CAPTIONS: Final = {1: "Logon", 2: "Logoff", 99: "Other"}

# kind -> (OCSF activity_id, ECS categories, ECS types)
_KINDS: Final[dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]]] = {
    "issued": (1, ("authentication", "iam"), ("start", "creation")),
    "login_failed": (1, ("authentication",), ("start",)),
    "used": (99, ("authentication",), ("info",)),
    "refreshed": (99, ("authentication", "iam"), ("info", "change")),
    "revoked": (2, ("authentication", "iam"), ("end", "deletion")),
    "deleted": (2, ("iam",), ("deletion",)),
    "pruned": (2, ("iam",), ("deletion",)),
    "denied": (99, ("authentication",), ("info",)),
    "rejected": (99, ("authentication",), ("info",)),
    "key_rotated": (99, ("configuration",), ("change",)),
    "log_rotated": (99, ("file",), ("change",)),
    "log_reset": (99, ("file",), ("creation",)),
    "torn_record_set_aside": (99, ("file",), ("change",)),
    "chain_signed": (99, ("file",), ("info",)),
    "agent_started": (99, ("process",), ("start",)),
    "agent_unlocked": (1, ("authentication", "session"), ("start",)),
    "agent_locked": (2, ("authentication", "session"), ("end",)),
}
_GENERIC: Final[tuple[int, tuple[str, ...], tuple[str, ...]]] = (99, (), ())

_FAILED = frozenset({"denied", "failure"})
_ALARMING_KINDS = frozenset({"log_reset", "torn_record_set_aside"})

# Fields that go to a schema attribute; everything else is kept under its own name.
_OCSF_MAPPED = frozenset(
    {
        "event",
        "time",
        "seq",
        "outcome",
        "reason",
        "rule",
        "user",
        "host",
        "pid",
        "provider",
        "issuer",
    }
)
_ECS_MAPPED = frozenset(
    {"event", "time", "seq", "outcome", "reason", "rule", "user", "host", "pid"}
)

_SURROGATE = re.compile("[\ud800-\udfff]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- bounded values ----------------------------------------------------------------------------


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    text = _SURROGATE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int(value: int) -> int | str:
    return value if -_INT64 <= value < _INT64 else f"<{value.bit_length()}-bit integer>"


def _compact(value: object) -> str:
    """Nested data as bounded compact JSON text; a value JSON cannot hold is named, not shown."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=_type_name)
    except (TypeError, ValueError, RecursionError):
        return f"<{type(value).__name__}>"
    return _cut(text)


def _type_name(value: object) -> str:
    return f"<{type(value).__name__}>"


def _scalar(value: object) -> Any:
    """A JSON scalar for ``value`` (None for None); anything nested as compact JSON text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, dict | list | tuple):
        return _compact(value)
    return _type_name(value)


def _value(value: object) -> Any:
    """As :func:`_scalar`, but a list keeps up to :data:`MAX_LIST` scalar items."""
    if isinstance(value, list | tuple):
        return [_scalar(item) for item in value[:MAX_LIST]]
    return _scalar(value)


def _text(value: object) -> str | None:
    """Text for a mapped string attribute: a string, or a number's JSON; else None."""
    if isinstance(value, str):
        return _cut(value) if value else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        scalar = _scalar(value)
        return str(scalar)
    return None


def _key(key: object) -> str:
    return _cut(str(key), _MAX_KEY) if isinstance(key, str) else _type_name(key)


def _extras(record: dict[Any, Any], mapped: frozenset[str], dots: bool) -> dict[str, Any]:
    """The record's other fields under their own (bounded) names; None values left out."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in mapped or value is None:
            continue
        if len(out) >= MAX_EXTRA:
            out["truncated"] = True
            break
        name = _key(key)
        if not dots:
            name = name.replace(".", "_")  # ECS readers expand dotted names into objects
        out.setdefault(name, _value(value))
    return out


# -- shared facts ------------------------------------------------------------------------------


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _millis(when: datetime | None) -> int:
    return 0 if when is None else (when - _EPOCH) // timedelta(milliseconds=1)


def _stamp(when: datetime | None) -> str:
    when = _EPOCH if when is None else when
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:"
        f"{when.second:02d}.{when.microsecond // 1000:03d}Z"
    )


def _kind(record: dict[Any, Any]) -> str:
    value = record.get("event")
    return _cut(value, 64) if isinstance(value, str) and value else "unknown"


def _seq(record: dict[Any, Any]) -> int | None:
    value = record.get("seq")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _INT64:
        return value
    return None


def _outcome(record: dict[Any, Any]) -> str | None:
    outcome = record.get("outcome")
    return outcome if isinstance(outcome, str) else None


def _failed(record: dict[Any, Any]) -> bool:
    return _outcome(record) in _FAILED


def _severity(record: dict[Any, Any], kind: str) -> int:
    return 3 if _failed(record) or kind in _ALARMING_KINDS else 1


def _scopes(record: dict[Any, Any]) -> list[Any]:
    scopes = record.get("scopes")
    return list(scopes) if isinstance(scopes, list | tuple) else []


def _is_token_record(record: dict[Any, Any]) -> bool:
    return _text(record.get("provider")) is not None or _text(record.get("issuer")) is not None


def _issuer_host(issuer: str | None) -> str | None:
    if not issuer:
        return None
    from urllib.parse import urlsplit

    try:
        host = urlsplit(issuer).hostname
    except ValueError:
        return None
    return _cut(host) if host else None


def _message(record: dict[Any, Any], kind: str) -> str:
    parts = [kind]
    name = _text(record.get("name"))
    if name:
        parts.append(name)
    provider = _text(record.get("provider"))
    if provider:
        parts.append(f"({provider})")
    text = " ".join(parts)
    outcome = _text(record.get("outcome"))
    if outcome:
        text += f": {outcome}"
    reason = _text(record.get("reason"))
    if reason:
        text += f" ({reason})"
    return _cut(text)


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if value is not None}


def _bounded(doc: dict[str, Any], extras_key: tuple[str, ...], mapped: dict[str, Any]) -> None:
    """Keep ``doc``'s JSON within :data:`MAX_DOC`: past it, the other fields go."""
    if len(json.dumps(doc, ensure_ascii=True, separators=(",", ":"))) <= MAX_DOC:
        return
    holder = doc
    for key in extras_key[:-1]:
        holder = holder[key]
    holder[extras_key[-1]] = {**mapped, "truncated": True}


# -- OCSF ----------------------------------------------------------------------------------------


def _status(record: dict[Any, Any]) -> tuple[int, str]:
    outcome = _outcome(record)
    if outcome == "success":
        return 1, "Success"
    if outcome in _FAILED:
        return 2, "Failure"
    text = _text(record.get("outcome"))
    if text is None:
        return 0, "Unknown"
    return 99, text


def to_ocsf(record: dict[Any, Any]) -> dict[str, Any]:
    """One record as an OCSF Authentication (3002) event; see the module docstring."""
    kind = _kind(record)
    activity_id, _, _ = _KINDS.get(kind, _GENERIC)
    activity = kind if activity_id == 99 else _OCSF_CAPTIONS[activity_id]
    when = _time(record.get("time"))
    status_id, status = _status(record)
    severity_id = _severity(record, kind)
    user_name = _text(record.get("user"))
    user: dict[str, Any] = (
        {"name": user_name, "type_id": 1, "type": "User"}
        if user_name
        else {"type_id": 0, "type": "Unknown"}
    )
    host = _text(record.get("host"))
    pid = record.get("pid")
    process: dict[str, Any] = {"name": "vault"}
    if isinstance(pid, int) and not isinstance(pid, bool) and -_INT64 <= pid < _INT64:
        process["pid"] = pid
    provider = _text(record.get("provider"))
    issuer = _text(record.get("issuer"))
    seq = _seq(record)
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {"name": "vault", "vendor_name": "vault", "version": __version__},
        "log_name": "audit",
        "event_code": kind,
    }
    if seq is not None:
        metadata["uid"] = str(seq)
        metadata["sequence"] = seq
    if when is None and record.get("time") is not None:
        metadata["original_time"] = _text(record.get("time")) or _type_name(record.get("time"))
    doc: dict[str, Any] = {
        "class_uid": 3002,
        "class_name": "Authentication",
        "category_uid": 3,
        "category_name": "Identity & Access Management",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": 300200 + activity_id,
        "type_name": f"Authentication: {_OCSF_CAPTIONS[activity_id]}",
        "time": _millis(when),
        "severity_id": severity_id,
        "severity": "Medium" if severity_id == 3 else "Informational",
        "status_id": status_id,
        "status": status,
        "status_detail": _text(record.get("reason")),
        "status_code": _text(record.get("rule")),
        "message": _message(record, kind),
        "metadata": metadata,
        "user": user,
        "actor": {"user": dict(user), "process": process, "app_name": "vault"},
        "service": _drop_none({"name": provider or "vault", "uid": issuer}),
    }
    if host:
        doc["src_endpoint"] = {"hostname": host}
        doc["device"] = {"hostname": host, "type_id": 0, "type": "Unknown"}
    issuer_host = _issuer_host(issuer)
    if issuer_host:
        doc["dst_endpoint"] = {"hostname": issuer_host}
    if _is_token_record(record):
        openid = "openid" in _scopes(record)
        doc["auth_protocol_id"] = 4 if openid else 6
        doc["auth_protocol"] = "OpenID" if openid else "OAUTH 2.0"
    doc = _drop_none(doc)
    unmapped = _extras(record, _OCSF_MAPPED, dots=True)
    if seq is None and record.get("seq") is not None:
        unmapped["seq"] = _scalar(record.get("seq"))
    if "pid" not in process and pid is not None:
        unmapped["pid"] = _scalar(pid)
    if unmapped:
        doc["unmapped"] = unmapped
        _bounded(doc, ("unmapped",), {})
    return doc


# -- ECS -----------------------------------------------------------------------------------------


def _ecs_outcome(record: dict[Any, Any]) -> str:
    outcome = _outcome(record)
    if outcome == "success":
        return "success"
    if outcome in _FAILED:
        return "failure"
    return "unknown"


def to_ecs(record: dict[Any, Any]) -> dict[str, Any]:
    """One record as an Elastic Common Schema document; see the module docstring."""
    kind = _kind(record)
    _, categories, types = _KINDS.get(kind, _GENERIC)
    when = _time(record.get("time"))
    seq = _seq(record)
    event: dict[str, Any] = {
        "kind": "event",
        "action": kind,
        "outcome": _ecs_outcome(record),
        "reason": _text(record.get("reason")),
        "severity": _severity(record, kind),
        "sequence": seq,
        "module": "vault",
        "dataset": "vault.audit",
        "provider": "vault",
    }
    if categories:
        event["category"] = list(categories)
        event["type"] = list(types)
    service: dict[str, Any] = {"name": "vault", "version": __version__}
    provider = _text(record.get("provider"))
    if provider:
        service["target"] = {"name": provider}
    doc: dict[str, Any] = {
        "@timestamp": _stamp(when),
        "ecs": {"version": ECS_VERSION},
        "message": _message(record, kind),
        "event": _drop_none(event),
        "log": {"level": "warning" if _failed(record) else "notice", "logger": "vault.audit"},
        "service": service,
    }
    user = _text(record.get("user"))
    if user:
        doc["user"] = {"name": user}
    host = _text(record.get("host"))
    if host:
        doc["host"] = {"name": host, "hostname": host}
    pid = record.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and -_INT64 <= pid < _INT64:
        doc["process"] = {"pid": pid}
        pid = None
    rule = _text(record.get("rule"))
    if rule:
        doc["rule"] = {"name": rule}
    extras = _extras(record, _ECS_MAPPED, dots=False)
    if when is None and record.get("time") is not None:
        extras["time"] = _scalar(record.get("time"))
    if seq is None and record.get("seq") is not None:
        extras["seq"] = _scalar(record.get("seq"))
    if pid is not None:
        extras["pid"] = _scalar(pid)
    if extras:
        doc["vault"] = extras
        kept: dict[str, Any] = {k: extras[k] for k in ("provider", "issuer") if k in extras}
        _bounded(doc, ("vault",), kept)
    return doc
