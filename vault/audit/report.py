"""The audit report: per-token facts gathered from the audit log, and the log's verdict.

:func:`build_report` is a function of plain values (the log, the high-water mark kept with the
key, the filters, the time) and returns the JSON-compatible report that the `vault audit report`
command renders as JSON, CSV, a table or HTML (:func:`vault.audit.html.render_html`)::

    {"generated_at": "2026-11-23T08:00:00Z",
     "log": {"path", "events", "first", "last", "verified": true | false | null, "verify_message"},
     "tokens": [{"name", "provider", "issuer", "fingerprints", "issued", "issued_by", "uses",
                 "last_use", "refreshes", "revoked", "pruned", "denials", "failures", "status",
                 "events": [{"time", "seq", "event", "outcome", "reason", "rule", "scopes",
                             "command"}, ...]}, ...]}   # sorted by name

:func:`matching` gives the records that pass the filters, for the report and `vault audit show`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault.audit.chain import AuditLog, Hwm, open_log_file, read_lines, verify

__all__ = ["EVENTS", "SUMMARY", "Filters", "build_report", "matching"]

EVENTS = (
    "issued",
    "used",
    "refreshed",
    "rejected",
    "revoked",
    "deleted",
    "pruned",
    "denied",
    "login_failed",
    "key_rotated",
    "log_rotated",
    "log_reset",
    "torn_record_set_aside",
    "agent_started",
    "agent_unlocked",
    "agent_locked",
)
"""The kinds of event an audit record can be."""

SUMMARY = (
    "name",
    "provider",
    "issuer",
    "issued",
    "issued_by",
    "uses",
    "last_use",
    "refreshes",
    "revoked",
    "pruned",
    "denials",
    "failures",
    "status",
)
"""A token's summary fields, in the order the report's table, JSON and CSV give them."""


@dataclass(frozen=True)
class Filters:
    """Which records count; None matches any. ``since`` and ``until`` are UTC times as
    ``YYYY-MM-DDTHH:MM:SS`` (both ends included, compared with a record's time to the second);
    the others are matched exactly."""

    since: str | None = None
    until: str | None = None
    event: str | None = None
    token: str | None = None
    provider: str | None = None


def matching(files: list[Path], filters: Filters) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """The records of ``files`` (in order) that pass ``filters``, as (raw line with its
    newline, parsed record). Lines that are not JSON objects are skipped."""
    needles = []
    if filters.token:
        needles.append(b'"name":' + json.dumps(filters.token).encode() + b",")
    if filters.event:
        needles.append(b'"event":' + json.dumps(filters.event).encode() + b",")
    if filters.provider:
        needles.append(b'"provider":' + json.dumps(filters.provider).encode() + b",")
    since, until = filters.since, filters.until
    for path in files:
        lines = lines_with(path, needles[0]) if needles else read_lines(path, [b""])
        for raw in lines:
            if len(needles) > 1 and not all(n in raw for n in needles[1:]):
                continue
            try:
                doc = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if not isinstance(doc, dict):
                continue  # valid JSON, but no record of ours
            stamp = str(doc.get("time", ""))[:19]
            if since and stamp < since:
                continue
            if until and stamp > until:
                continue
            yield raw + b"\n", doc


def lines_with(path: Path, needle: bytes, block: int = 1 << 22) -> Iterator[bytes]:
    """The complete lines of a file that contain ``needle`` (without their newline), in order;
    a torn last line is left out. Whole blocks are searched, not line after line."""
    rest = b""
    with open_log_file(path) as fh:
        while data := fh.read(block):
            data = rest + data
            end_of_lines = data.rfind(b"\n") + 1  # the torn or unread part stays for later
            at = data.find(needle, 0, end_of_lines)
            while at >= 0:
                start = data.rfind(b"\n", 0, at) + 1
                end = data.find(b"\n", at)
                yield data[start:end]
                at = data.find(needle, end + 1, end_of_lines)
            rest = data[end_of_lines:]


def _new_token(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "provider": doc.get("provider"),
        "issuer": doc.get("issuer"),
        "fingerprints": [],
        "issued": None,
        "issued_by": None,
        "uses": 0,
        "last_use": None,
        "refreshes": 0,
        "revoked": None,
        "pruned": None,
        "denials": 0,
        "failures": 0,
        "status": "active",
        "events": [],
    }


def _count(t: dict[str, Any], doc: dict[str, Any]) -> None:
    """One record of token ``t`` added to its facts."""
    when = doc.get("time")
    kind = doc.get("event")
    outcome = doc.get("outcome")
    fp = doc.get("fingerprint")
    if fp and fp not in t["fingerprints"]:
        t["fingerprints"].append(fp)
    if kind == "issued" and outcome == "success":
        t["issued"] = when
        t["issued_by"] = doc.get("command") or "login"
        t["status"] = "active"
        t["provider"] = doc.get("provider") or t["provider"]
        t["issuer"] = doc.get("issuer") or t["issuer"]
    elif kind == "used" and outcome == "success":
        t["uses"] += 1
        t["last_use"] = when
    elif kind == "refreshed" and outcome == "success":
        t["refreshes"] += 1
    elif kind == "revoked" and outcome == "success":
        t["revoked"] = when
        t["status"] = "revoked"
    elif kind == "deleted":
        t["status"] = "deleted"
    elif kind == "pruned":
        t["pruned"] = when
        t["status"] = "pruned"
    if outcome == "denied":
        t["denials"] += 1
    elif outcome == "failure":
        t["failures"] += 1
    t["events"].append(
        {
            "time": when,
            "seq": doc.get("seq"),
            "event": kind,
            "outcome": outcome,
            "reason": doc.get("reason"),
            "rule": (f"{doc.get('rule')} ({doc.get('source')})" if doc.get("rule") else None),
            "scopes": doc.get("scopes"),
            "command": doc.get("command"),
        }
    )


def _verdict(log: AuditLog, mark: Hwm | None, unverified: str) -> tuple[bool | None, str]:
    if mark is None:
        return None, unverified
    verdict = verify(log, mark)
    if verdict.ok:
        return True, f"intact: {verdict.records} records"
    return False, f"TAMPERED: {verdict.problem}"


def build_report(
    log: AuditLog,
    mark: Hwm | None,
    *,
    now: float,
    filters: Filters | None = None,
    unverified: str = "not verified",
) -> dict[str, Any]:
    """The report (see the module docstring) on the records of ``log``'s files that pass
    ``filters``, generated at ``now`` (UNIX seconds).

    With ``mark`` (the high-water mark kept with the key), the whole log's chain is verified
    under ``log.audit_key``; without it the log is reported as not verified, ``unverified``
    saying why."""
    tokens: dict[str, dict[str, Any]] = {}
    total = 0
    first = last = None
    for _, doc in matching(log.files(), filters or Filters()):
        total += 1
        when = doc.get("time")
        first = first or when
        last = when
        name = doc.get("name")
        if isinstance(name, str):
            token = tokens.get(name)
            if token is None:
                token = tokens[name] = _new_token(name, doc)
            _count(token, doc)
    verified, message = _verdict(log, mark, unverified)
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "log": {
            "path": str(log.path),
            "events": total,
            "first": first,
            "last": last,
            "verified": verified,
            "verify_message": message,
        },
        "tokens": sorted(tokens.values(), key=lambda t: t["name"]),
    }
