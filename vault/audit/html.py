"""The audit report as one self-contained HTML page, for an auditor to read in a browser.

:func:`render_html` takes the report :func:`vault.audit.report.build_report` builds and renders
the template ``templates/report.html.j2`` (Jinja2, autoescaped: every string from the log is
escaped where it is written, attributes and text alike). The page loads nothing: its stylesheet
and its one script are inline, allowed by their SHA-256 in a Content-Security-Policy that
forbids everything else (no network, no other script, no form submission), so the file can be
mailed, archived and opened offline. It has:

* a banner saying whether the log's chain verified (green), failed (red) or was not checked
  (grey), in words as well as colour;
* filters (token, provider, user, event kind, first and last day) that work in the page: the
  script reads the counts embedded as JSON (``<script type="application/json">``, written with
  Jinja's ``tojson``: ``<``, ``>``, ``&``, ``'`` and every non-ASCII character escaped, so no
  string can end the element) and hides what does not match. They can be preset in the URL's
  fragment: ``report.html#user=bob&kind=used&from=2026-11-02``;
* events per day as an SVG bar chart (uses, refusals and failures, other events stacked);
* one row per token life, then the attempts that made no token, the vault's own events, the
  records per user, host and command, and the last :data:`MAX_EVENT_ROWS` records;
* a print stylesheet (the filters hidden, what they chose printed).

Every string from the report is treated as hostile: control characters are removed (line breaks
and separators become spaces), invisible ones (zero-width, bidirectional overrides, lone
surrogates: :data:`vault.util.text.INVISIBLE`) are shown as their code point so that no name can
pass for another, long strings are cut (:data:`MAX_TEXT`), and the template escapes the rest.
The page stays bounded: at most :data:`MAX_TABLE_ROWS` rows per table (the rest counted) and
:data:`MAX_CELLS` counts for the in-page filters (beyond that they are left out, and the page
says so). Jinja2 is imported only here, so no other command pays for it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from vault.util.text import CONTROLS, INVISIBLE, SEPARATORS, char_class, pattern

if TYPE_CHECKING:
    import jinja2

__all__ = ["MAX_CELLS", "MAX_EVENT_ROWS", "MAX_TABLE_ROWS", "MAX_TEXT", "render_html"]

MAX_TEXT: Final = 300
"""Characters kept of any one string from the report (names, reasons, commands, paths)."""
MAX_TABLE_ROWS: Final = 5_000
"""Rows of one table (lives, attempts, users...); the rest are counted, not listed."""
MAX_EVENT_ROWS: Final = 2_000
"""Records listed at the end of the page: the last ones chosen."""
MAX_CELLS: Final = 200_000
"""Counts (per day, kind, life or attempt, user) embedded for the in-page filters."""

_DASH: Final = "\u2014"
_CONTROLS = pattern(*CONTROLS)
_SPACES = re.compile(char_class((0x09, 0x0D), *SEPARATORS) + "+")
_INVISIBLE = pattern(*INVISIBLE)
_DAY = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)
_BAD: Final = frozenset({"denied", "failure"})


def clean(value: object) -> str:
    """``value`` as plain text (not yet escaped): controls stripped, invisible characters shown
    as their code point, cut short; None is a dash."""
    if value is None:
        return _DASH
    text = value if isinstance(value, str) else str(value)
    if not (text.isascii() and text.isprintable()):
        text = _CONTROLS.sub("", _SPACES.sub(" ", text))
        text = _INVISIBLE.sub(lambda m: f"\u27e8U+{ord(m.group()):04X}\u27e9", text)
    if len(text) > MAX_TEXT:
        text = f"{text[:MAX_TEXT]}\u2026 [{len(text) - MAX_TEXT:,} more characters]"
    return text


def show_time(value: object) -> str:
    """A time from the report for display: UTC, to the second, without "T" and "Z"."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return clean(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return clean(value)


def _day(value: object) -> str | None:
    return value[:10] if isinstance(value, str) and _DAY.match(value) else None


def _rows(value: object) -> list[Mapping[str, Any]]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [row for row in value if isinstance(row, Mapping)]
    return []


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _Index:
    """Distinct display strings, numbered in order of first sight (for the embedded data)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._at: dict[str, int] = {}

    def __call__(self, value: object) -> int:
        text = clean(value)
        at = self._at.get(text)
        if at is None:
            at = self._at[text] = len(self.items)
            self.items.append(text)
        return at


def _chart(days: list[str], totals: dict[str, list[int]]) -> dict[str, Any]:
    """The bar chart's geometry: one bar per day with events, placed on a calendar axis."""
    width, height, left, top = 1180, 160, 44, 10
    if not days:
        return {"bars": [], "width": width, "height": height + 40, "max": 0}
    first = datetime.fromisoformat(days[0]).toordinal()
    span = datetime.fromisoformat(days[-1]).toordinal() - first + 1
    step = (width - left - 10) / span
    peak = max(sum(totals[d]) for d in days) or 1
    bars = []
    for index, day in enumerate(days):
        x = left + (datetime.fromisoformat(day).toordinal() - first) * step
        counts = totals[day]
        y = float(top + height)
        segments = []
        for css, count in zip(("s-use", "s-bad", "s-other"), counts, strict=True):
            h = count / peak * height
            y -= h
            segments.append({"css": css, "y": round(y, 2), "h": round(h, 2)})
        bars.append(
            {
                "index": index,
                "day": day,
                "x": round(x + step * 0.1, 2),
                "w": round(max(step * 0.8, 1.0), 2),
                "segments": segments,
                "counts": counts,
            }
        )
    return {
        "bars": bars,
        "width": width,
        "height": height + 40,
        "left": left,
        "top": top,
        "plot": height,
        "max": peak,
        "first": days[0],
        "last": days[-1],
    }


def _view(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the template shows, from a report whose every part may be missing or malformed."""
    raw_log, raw_filters = report.get("log"), report.get("filters")
    log: Mapping[str, Any] = raw_log if isinstance(raw_log, Mapping) else {}
    filters: Mapping[str, Any] = raw_filters if isinstance(raw_filters, Mapping) else {}
    lives = _rows(report.get("tokens"))
    attempts = _rows(report.get("attempts"))
    vault = _rows(report.get("vault_events"))
    names, providers, users, kinds, day_index = _Index(), _Index(), _Index(), _Index(), _Index()
    cells: dict[tuple[int, int, int, int | None, int], int] = {}
    totals: dict[str, list[int]] = {}
    listed: list[tuple[Any, dict[str, Any]]] = []

    def take(
        owner: int | None, name: object, provider: object, where: str, event: Mapping[str, Any]
    ) -> None:
        kind, outcome, day = event.get("event"), event.get("outcome"), _day(event.get("time"))
        bad = isinstance(outcome, str) and outcome in _BAD
        segment = 1 if bad else 0 if kind == "used" and outcome == "success" else 2
        u, k = users(event.get("user")), kinds(kind)
        row = {
            "event": event,
            "name": name,
            "provider": provider,
            "where": where,
            "n": names(name) if where != "vault" else -1,
            "p": providers(provider) if where != "vault" else -1,
            "u": u,
            "k": k,
            "d": day,
            "bad": bad,
        }
        listed.append((event.get("seq"), row))
        if day is not None:
            key = (day_index(day), k, segment, owner, u)
            cells[key] = cells.get(key, 0) + 1
            totals.setdefault(day, [0, 0, 0])[segment] += 1

    life_rows: list[dict[str, Any]] = []
    for i, life in enumerate(lives):
        events = _rows(life.get("events"))
        for event in events:
            take(
                i, life.get("name"), life.get("provider"), f"life {clean(life.get('life'))}", event
            )
        life_rows.append({"row": life, "n": names(life.get("name")), "events": len(events)})
    attempt_rows: list[dict[str, Any]] = []
    for j, attempt in enumerate(attempts):
        events = _rows(attempt.get("events"))
        for event in events:
            take(-1 - j, attempt.get("name"), attempt.get("provider"), "attempt", event)
        attempt_rows.append(
            {"row": attempt, "n": names(attempt.get("name")), "events": len(events)}
        )
    vault_rows: list[dict[str, Any]] = []
    for row in vault:
        for event in _rows(row.get("events")):
            take(None, None, None, "vault", event)
        vault_rows.append({"row": row, "k": kinds(row.get("event"))})
    listed.sort(key=lambda item: (0, item[0]) if isinstance(item[0], int) else (1, 0))
    days = sorted(totals)
    data: dict[str, Any] = {
        "names": names.items,
        "providers": providers.items,
        "users": users.items,
        "kinds": kinds.items,
        "days": day_index.items,
        "chart_days": days,
        "lives": [[r["n"], providers(r["row"].get("provider"))] for r in life_rows],
        "attempts": [[r["n"], providers(r["row"].get("provider"))] for r in attempt_rows],
        "vault": [r["k"] for r in vault_rows],
        "cells": [[*key, count] for key, count in cells.items()],
    }
    filterable = len(cells) <= MAX_CELLS
    if not filterable:
        data["cells"] = []
    statuses: dict[str, int] = {}
    for life in lives:
        status = clean(life.get("status"))
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "log": log,
        "generated_at": report.get("generated_at"),
        "verified": log.get("verified"),
        "lives": life_rows[:MAX_TABLE_ROWS],
        "lives_total": len(life_rows),
        "attempts": attempt_rows[:MAX_TABLE_ROWS],
        "attempts_total": len(attempt_rows),
        "vault": vault_rows[:MAX_TABLE_ROWS],
        "tallies": [
            (key, title, _rows(report.get(key))[:MAX_TABLE_ROWS])
            for key, title in (("users", "user"), ("hosts", "host"), ("commands", "command"))
        ],
        "statuses": sorted(statuses.items()),
        "uses": sum(_int(life.get("uses")) for life in lives),
        "denials": sum(_int(life.get("denials")) for life in lives),
        "failures": sum(_int(life.get("failures")) for life in lives),
        "attempt_count": sum(_int(a.get("attempts")) for a in attempts),
        "events": [row for _, row in listed[-MAX_EVENT_ROWS:]],
        "events_total": len(listed),
        "chart": _chart(days, totals),
        "data": data,
        "filterable": filterable,
        "filters": {k: v for k, v in filters.items() if v is not None},
        "options": {
            "token": sorted(set(names.items)),
            "provider": sorted(set(providers.items)),
            "user": sorted(set(users.items)),
            "kind": sorted(set(kinds.items)),
        },
        "max_table_rows": MAX_TABLE_ROWS,
        "max_event_rows": MAX_EVENT_ROWS,
    }


def _asset(name: str) -> str:
    return resources.files("vault.audit").joinpath("templates", name).read_text("utf-8")


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def _environment() -> tuple[jinja2.Environment, str, str, str]:
    """The template environment (autoescaped), the stylesheet, the script and the CSP."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vault.audit", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["t"] = clean
    env.filters["when"] = show_time
    env.filters["num"] = lambda v: (
        f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else _DASH
    )
    css, script = _asset("report.css"), _asset("report.js")
    csp = (
        f"default-src 'none'; style-src {_hash(css)}; script-src {_hash(script)}; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    return env, css, script, csp


def render_html(report: Mapping[str, Any], *, title: str = "vault audit report") -> str:
    """The audit ``report`` (vault.audit.report's shape; any part may be missing or of the
    wrong type: it is shown as a dash or as escaped text, never trusted) as a self-contained
    HTML page."""
    import markupsafe

    env, css, script, csp = _environment()
    return env.get_template("report.html.j2").render(
        title=clean(title),
        csp=csp,
        # The package's own files, as they are: the CSP above allows exactly these bytes.
        css=markupsafe.Markup(css),  # noqa: S704
        script=markupsafe.Markup(script),  # noqa: S704
        **_view(report),
    )
