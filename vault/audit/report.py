"""The audit report: the lives of tokens, the attempts that made none, and the vault's own events,
gathered from the audit log, with the log's verdict.

:func:`build_report` is a function of plain values (the log, the high-water mark kept with the
key, the filters, the time) and returns the JSON-compatible report that `vault audit report`
renders as JSON, CSV, a table or HTML (:func:`vault.audit.html.render_html`).

**Lives, not names.** A token's life starts at its ``issued`` record and ends at its ``revoked``,
``deleted`` (a forced or local delete too) or ``pruned`` record, or when another ``issued`` record
puts a new token under its name (``replaced``). A name used again later is a second life, a row
of its own (``life`` counts them per name, from 1). A record that proves a stored token without
its issue being in the log (a successful use, refresh or end carrying a fingerprint, after a
``vault audit reset`` or with the oldest files gone) opens a life whose ``issued`` is null. An
end whose fingerprint belongs to an earlier life of the name (a revocation that finished after a
new login replaced the token) ends that earlier life.

**Attempts are never tokens.** A lookup of a name that holds no token (``used`` without a
fingerprint: "no such token"), a failed or interrupted login, a denial of a login or import, and
any other record of a name that has no life open are counted under ``attempts``, per name and
provider tried.

**Every record is shown somewhere.** Records without a name (key rotations, log rotations and
resets, torn records set aside, agent events, and any kind this module does not know) are
counted per kind under ``vault_events``. ``kinds`` counts every kind; ``users``, ``hosts`` and
``commands`` count the records per user, host and command (uses, denials, failures); ``days``
counts them per UTC day.

**Filters** (:class:`Filters`) choose records. Lives are always rebuilt from the whole log (a
life issued before ``--since`` keeps its real issue time), and their counts count the chosen
records only. A life is listed when one of its records is chosen, or, when only a time window,
a token or a provider is asked for, when it was alive in the window.

The report::

    {"generated_at": "2026-11-23T08:00:00Z",
     "log": {"path", "files", "events", "first", "last", "verified": true | false | null,
             "verify_message"},
     "filters": {"since", "until", "event", "token", "provider", "user", "host", "command"},
     "tokens": [LIFE, ...],              # sorted by name, then life
     "attempts": [ATTEMPT, ...],         # sorted by name, then provider
     "vault_events": [VAULT_EVENT, ...], # in EVENTS order, unknown kinds after, by name
     "users": [COUNT, ...], "hosts": [COUNT, ...], "commands": [COUNT, ...],
     "days": [{"day": "2026-11-23", "events", "uses", "denials", "failures"}, ...],
     "kinds": {"used": 12, ...}}
    LIFE = {"name", "life", "provider", "issuer", "fingerprints", "issued", "issued_by",
            "first", "ended", "end_reason", "uses", "last_use", "refreshes", "revoked", "pruned",
            "denials", "failures", "status", "users", "hosts", "events": [EVENT, ...]}
    ATTEMPT = {"name", "provider", "attempts", "failed_lookups", "failed_logins",
               "interrupted_logins", "denials", "other", "first", "last", "users",
               "events": [EVENT, ...]}
    VAULT_EVENT = {"event", "count", "first", "last", "outcomes": {"success": 3, ...},
                   "events": [EVENT, ...]}
    COUNT = {"user" | "host" | "command", "events", "uses", "denials", "failures", "attempts"}
    EVENT = {"time", "seq", "event", "outcome", "reason", "rule", "scopes", "command", "user",
             "host"}

``status`` is ``active`` or the ``end_reason`` (``revoked``, ``deleted``, ``pruned``,
``replaced``); ``ended`` is the end's time, ``revoked`` and ``pruned`` repeat it for those ends.
``first`` is the time of the life's first record (its issue, when that is in the log). Times are
as the records give them; lives follow the log's order (seq), not the clock's.

:func:`matching` gives the records that pass the filters, for `vault audit show`.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vault.audit.chain import AuditLog, Hwm, open_log_file, read_lines, verify

__all__ = [
    "ENDS",
    "EVENTS",
    "SUMMARY",
    "Filters",
    "build_report",
    "command_matches",
    "matching",
]

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
    "chain_signed",
)
"""The kinds of event an audit record can be (a log may hold others: they are shown too)."""

ENDS = ("revoked", "deleted", "pruned", "replaced")
"""How a life ends."""

SUMMARY = (
    "name",
    "life",
    "provider",
    "issuer",
    "issued",
    "issued_by",
    "ended",
    "end_reason",
    "uses",
    "last_use",
    "refreshes",
    "revoked",
    "pruned",
    "denials",
    "failures",
    "status",
    "users",
    "hosts",
)
"""A life's summary fields, in the order the report's JSON and CSV give them."""

_OWN_LOGIN = frozenset({"login", "import"})  # a denial of these is of an attempt to store one


def command_matches(wanted: str, command: object) -> bool:
    """Whether a record's ``command`` is ``wanted``, or starts with it and a space: ``exec``
    matches ``exec gh``, ``git-credential`` matches ``git-credential github.com``."""
    return isinstance(command, str) and (command == wanted or command.startswith(wanted + " "))


@dataclass(frozen=True)
class Filters:
    """Which records count; None matches any. ``since`` and ``until`` are UTC times as
    ``YYYY-MM-DDTHH:MM:SS`` (both ends included, compared with a record's time to the second);
    ``command`` matches as :func:`command_matches` says; the others are matched exactly."""

    since: str | None = None
    until: str | None = None
    event: str | None = None
    token: str | None = None
    provider: str | None = None
    user: str | None = None
    host: str | None = None
    command: str | None = None

    def admits(self, doc: dict[str, Any]) -> bool:
        """Whether the record ``doc`` passes every filter."""
        stamp = str(doc.get("time", ""))[:19]
        return (
            (self.since is None or stamp >= self.since)
            and (self.until is None or stamp <= self.until)
            and all(
                wanted is None or doc.get(key) == wanted
                for key, wanted in (
                    ("event", self.event),
                    ("name", self.token),
                    ("provider", self.provider),
                    ("user", self.user),
                    ("host", self.host),
                )
            )
            and (self.command is None or command_matches(self.command, doc.get("command")))
        )

    def needles(self) -> list[bytes]:
        """Byte strings every line that passes must contain, as vault writes its lines (a
        first sieve only: :meth:`admits` decides)."""
        found = []
        for key, wanted in (
            ("name", self.token),
            ("event", self.event),
            ("provider", self.provider),
            ("user", self.user),
            ("host", self.host),
        ):
            if wanted is not None:
                found.append(f'"{key}":'.encode() + json.dumps(wanted).encode() + b",")
        if self.command is not None:
            found.append(b'"command":' + json.dumps(self.command).encode()[:-1])
        return found

    def narrows_records(self) -> bool:
        """Whether a filter other than the time window, the token and the provider is set."""
        return any(v is not None for v in (self.event, self.user, self.host, self.command))

    def as_dict(self) -> dict[str, str | None]:
        return {
            "since": self.since,
            "until": self.until,
            "event": self.event,
            "token": self.token,
            "provider": self.provider,
            "user": self.user,
            "host": self.host,
            "command": self.command,
        }


def matching(files: list[Path], filters: Filters) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """The records of ``files`` (in order) that pass ``filters``, as (raw line with its
    newline, parsed record). Lines that are not JSON objects are skipped."""
    for raw, doc in _records(files, filters.needles()):
        if filters.admits(doc):
            yield raw + b"\n", doc


def _records(files: list[Path], needles: list[bytes]) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """The records of ``files`` whose line contains every needle, as (line, parsed)."""
    for path in files:
        lines = lines_with(path, needles[0]) if needles else read_lines(path, [b""])
        for raw in lines:
            if len(needles) > 1 and not all(n in raw for n in needles[1:]):
                continue
            try:
                doc = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if isinstance(doc, dict):  # valid JSON, but no record of ours otherwise
                yield raw, doc


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


# --- the model ---------------------------------------------------------------------------

_DAY = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)


def _event(doc: dict[str, Any]) -> dict[str, Any]:
    """A record as the report lists it."""
    rule = doc.get("rule")
    return {
        "time": doc.get("time"),
        "seq": doc.get("seq"),
        "event": doc.get("event"),
        "outcome": doc.get("outcome"),
        "reason": doc.get("reason"),
        "rule": f"{rule} ({doc.get('source')})" if rule else None,
        "scopes": doc.get("scopes"),
        "command": doc.get("command"),
        "user": doc.get("user"),
        "host": doc.get("host"),
    }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class _Life:
    name: str
    number: int
    doc: dict[str, Any]  # the first record
    fingerprints: list[str] = field(default_factory=list)
    ended: object = None
    end_reason: str | None = None
    chosen: list[dict[str, Any]] = field(default_factory=list)
    provider: object = field(init=False)
    issuer: object = field(init=False)
    issued: object = field(init=False)
    issued_by: object = field(init=False)
    first: object = field(init=False)

    def __post_init__(self) -> None:
        seen = self.doc.get("event") == "issued"
        self.provider = self.doc.get("provider")
        self.issuer = self.doc.get("issuer")
        self.issued = self.doc.get("time") if seen else None
        self.issued_by = (self.doc.get("command") or "login") if seen else None
        self.first = self.doc.get("time")

    def note(self, doc: dict[str, Any]) -> None:
        fp = _text(doc.get("fingerprint"))
        if fp and fp not in self.fingerprints:
            self.fingerprints.append(fp)
        self.provider = self.provider or doc.get("provider")
        self.issuer = self.issuer or doc.get("issuer")

    def end(self, doc: dict[str, Any], reason: str) -> None:
        self.ended = doc.get("time")
        self.end_reason = reason

    def summary(self) -> dict[str, Any]:
        uses = [e for e in self.chosen if e["event"] == "used" and e["outcome"] == "success"]
        outcomes = Counter(e["outcome"] for e in self.chosen)
        refreshes = sum(
            e["event"] == "refreshed" and e["outcome"] == "success" for e in self.chosen
        )
        return {
            "name": self.name,
            "life": self.number,
            "provider": self.provider,
            "issuer": self.issuer,
            "fingerprints": self.fingerprints,
            "issued": self.issued,
            "issued_by": self.issued_by,
            "first": self.first,
            "ended": self.ended,
            "end_reason": self.end_reason,
            "uses": len(uses),
            "last_use": uses[-1]["time"] if uses else None,
            "refreshes": refreshes,
            "revoked": self.ended if self.end_reason == "revoked" else None,
            "pruned": self.ended if self.end_reason == "pruned" else None,
            "denials": outcomes["denied"],
            "failures": outcomes["failure"],
            "status": self.end_reason or "active",
            "users": _distinct(e["user"] for e in self.chosen),
            "hosts": _distinct(e["host"] for e in self.chosen),
            "events": self.chosen,
        }


def _distinct(values: Iterator[object]) -> list[str]:
    return sorted({v for v in values if isinstance(v, str)})


def _attempt_kind(doc: dict[str, Any]) -> str:
    kind = doc.get("event")
    if kind == "used":
        return "failed_lookups"
    if kind == "login_failed":
        reason = str(doc.get("reason") or "")
        return "interrupted_logins" if reason.startswith("interrupted") else "failed_logins"
    if kind == "denied":
        return "denials"
    return "other"


_ATTEMPT_KINDS = ("failed_lookups", "failed_logins", "interrupted_logins", "denials", "other")


class _Tally:
    """Records counted per value of one field (user, host, command)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, value: object, doc: dict[str, Any], *, attempt: bool) -> None:
        if not isinstance(value, str):
            return
        row = self.rows.get(value)
        if row is None:
            row = self.rows[value] = {
                self.key: value,
                "events": 0,
                "uses": 0,
                "denials": 0,
                "failures": 0,
                "attempts": 0,
            }
        _bump(row, doc)
        row["attempts"] += attempt

    def listed(self) -> list[dict[str, Any]]:
        return [self.rows[k] for k in sorted(self.rows)]


def _bump(row: dict[str, Any], doc: dict[str, Any]) -> None:
    outcome = doc.get("outcome")
    row["events"] += 1
    row["uses"] += doc.get("event") == "used" and outcome == "success"
    row["denials"] += outcome == "denied"
    row["failures"] += outcome == "failure"


class _Model:
    """The report's state, one record at a time in the log's order."""

    def __init__(self, filters: Filters) -> None:
        self.filters = filters
        self.lives: dict[str, list[_Life]] = {}
        self.open: dict[str, _Life] = {}
        self.attempts: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.vault: dict[str, dict[str, Any]] = {}
        self.tallies = (_Tally("user"), _Tally("host"), _Tally("command"))
        self.days: dict[str, dict[str, Any]] = {}
        self.kinds: Counter[str] = Counter()
        self.total = 0
        self.first: object = None
        self.last: object = None

    def add(self, doc: dict[str, Any]) -> None:
        chosen = self.filters.admits(doc)
        name = doc.get("name")
        owner = self._place(name, doc) if isinstance(name, str) else None
        if not chosen:
            return
        self.total += 1
        when = doc.get("time")
        self.first = self.first if self.first is not None else when
        self.last = when
        kind = doc.get("event")
        self.kinds[str(kind)] += 1
        event = _event(doc)
        if isinstance(owner, _Life):
            owner.chosen.append(event)
        elif owner is not None:
            self._attempt(owner, doc, event)
        else:
            self._vault_event(doc, event)
        for tally, key in zip(self.tallies, ("user", "host", "command"), strict=True):
            tally.add(doc.get(key), doc, attempt=owner is not None and not isinstance(owner, _Life))
        if isinstance(when, str) and _DAY.match(when):
            day = self.days.get(when[:10])
            if day is None:
                day = self.days[when[:10]] = {
                    "day": when[:10], "events": 0, "uses": 0, "denials": 0, "failures": 0,
                }  # fmt: skip
            _bump(day, doc)

    def _place(self, name: str, doc: dict[str, Any]) -> _Life | tuple[str, str | None]:
        """The life a record of ``name`` belongs to (opened, ended as it says), or the key of
        the attempt it is."""
        kind = doc.get("event")
        outcome = doc.get("outcome")
        fp = _text(doc.get("fingerprint"))
        current = self.open.get(name)
        attempt = (name, _text(doc.get("provider")))
        if kind == "issued" and outcome == "success":
            if current is not None:
                current.end(doc, "replaced")
            life = _Life(name, len(self.lives.get(name, ())) + 1, doc)
            self.lives.setdefault(name, []).append(life)
            self.open[name] = life
            life.note(doc)
            return life
        if kind == "login_failed" or (kind == "denied" and doc.get("command") in _OWN_LOGIN):
            return attempt
        if kind == "used" and fp is None and outcome != "success":
            return attempt  # a lookup: "no such token"
        ends = (
            (kind == "revoked" and outcome == "success")
            or kind == "deleted"
            or (kind == "pruned" and outcome == "success")
        )
        if fp is not None and (current is None or fp not in current.fingerprints):
            earlier = next(
                (life for life in reversed(self.lives.get(name, ())) if fp in life.fingerprints),
                None,
            )
            if earlier is not None:  # about it after a new token took the name: its revocation
                if ends:
                    earlier.end(doc, str(kind))
                return earlier
        if current is None:
            if fp is None:
                return attempt
            current = _Life(name, len(self.lives.get(name, ())) + 1, doc)  # issue not in the log
            self.lives.setdefault(name, []).append(current)
            self.open[name] = current
        current.note(doc)
        if ends:
            current.end(doc, str(kind))
            del self.open[name]
        return current

    def _attempt(self, key: tuple[str, str | None], doc: dict[str, Any], event: Any) -> None:
        row = self.attempts.get(key)
        if row is None:
            row = self.attempts[key] = {
                "name": key[0],
                "provider": key[1],
                "attempts": 0,
                **dict.fromkeys(_ATTEMPT_KINDS, 0),
                "first": doc.get("time"),
                "last": None,
                "users": [],
                "events": [],
            }
        row["attempts"] += 1
        row[_attempt_kind(doc)] += 1
        row["last"] = doc.get("time")
        user = doc.get("user")
        if isinstance(user, str) and user not in row["users"]:
            row["users"].append(user)
        row["events"].append(event)

    def _vault_event(self, doc: dict[str, Any], event: dict[str, Any]) -> None:
        kind = str(doc.get("event"))
        row = self.vault.get(kind)
        if row is None:
            row = self.vault[kind] = {
                "event": kind,
                "count": 0,
                "first": doc.get("time"),
                "last": None,
                "outcomes": {},
                "events": [],
            }
        row["count"] += 1
        row["last"] = doc.get("time")
        outcome = str(doc.get("outcome"))
        row["outcomes"][outcome] = row["outcomes"].get(outcome, 0) + 1
        row["events"].append(event)

    def shown(self, life: _Life) -> bool:
        if life.chosen:
            return True
        f = self.filters
        if f.narrows_records() or (f.token is not None and life.name != f.token):
            return False
        if f.provider is not None and life.provider != f.provider:
            return False
        start = str(life.first or "")[:19]
        end = None if life.ended is None else str(life.ended)[:19]
        return (f.until is None or start <= f.until) and (
            f.since is None or end is None or end >= f.since
        )

    def tokens(self) -> list[dict[str, Any]]:
        return [
            life.summary()
            for name in sorted(self.lives)
            for life in self.lives[name]
            if self.shown(life)
        ]

    def vault_events(self) -> list[dict[str, Any]]:
        order = {kind: i for i, kind in enumerate(EVENTS)}
        return sorted(self.vault.values(), key=lambda r: (order.get(r["event"], 99), r["event"]))


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
    filters = filters or Filters()
    model = _Model(filters)
    files = log.files()
    # A name's lives depend on its records only: a token filter may skip every other line.
    sieve = Filters(token=filters.token).needles()
    for _, doc in _records(files, sieve):
        model.add(doc)
    verified, message = _verdict(log, mark, unverified)
    users, hosts, commands = (tally.listed() for tally in model.tallies)
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "log": {
            "path": str(log.path),
            "files": len(files),
            "events": model.total,
            "first": model.first,
            "last": model.last,
            "verified": verified,
            "verify_message": message,
        },
        "filters": filters.as_dict(),
        "tokens": model.tokens(),
        "attempts": [model.attempts[k] for k in sorted(model.attempts, key=_attempt_order)],
        "vault_events": model.vault_events(),
        "users": users,
        "hosts": hosts,
        "commands": commands,
        "days": [model.days[d] for d in sorted(model.days)],
        "kinds": dict(sorted(model.kinds.items())),
    }


def _attempt_order(key: tuple[str, str | None]) -> tuple[str, str]:
    return key[0], key[1] or ""
