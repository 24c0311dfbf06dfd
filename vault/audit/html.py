"""The audit report as one self-contained HTML page, for an auditor to read in a browser.

:func:`render_html` takes the JSON-compatible report the audit module builds (see its docstring)
and returns a page with no external resources at all: inline CSS, inline SVG, no JavaScript, and
a Content-Security-Policy that forbids loading anything, so the file can be mailed, archived and
opened offline. The page has:

* a banner saying whether the audit log's hash chain verified (green), failed (red) or was not
  checked (grey), in words as well as colour;
* a summary table, one row per token;
* a legend, then for each token a timeline (uses binned per minute/hour/day/... as bars, other
  events as marks with distinct shapes, revocation as a black end bar) and a compact event list.

Everything taken from the report is treated as hostile: control characters are removed (line
breaks and separators become spaces), invisible ones (zero-width, bidirectional overrides, lone
surrogates: :data:`vault.util.text.INVISIBLE`) are shown as their code point so that no name can
pass for another, the rest is HTML-escaped, and long strings are cut.

The output stays bounded whatever the input: uses are binned by the finest calendar unit that
gives at most :data:`MAX_BINS` bars (minute, 10 minutes, hour, day, month, year, ...), other
events are one mark per kind and bin with a count, runs of consecutive uses are listed as one row,
each token lists at most :data:`MAX_ROWS_PER_TOKEN` rows (the first and last ones, with a row
counting what was left out between them), the whole page at most :data:`MAX_ROWS_TOTAL`, and
once the page reaches :data:`MAX_DETAIL_BYTES` the remaining tokens get their facts only (the
summary table always has every token).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import compress, groupby, islice, repeat
from operator import eq, itemgetter, le, not_
from typing import Any, Final

from vault.util.text import CONTROLS, INVISIBLE, SEPARATORS, char_class, pattern

__all__ = [
    "MAX_BINS",
    "MAX_DETAIL_BYTES",
    "MAX_ROWS_PER_TOKEN",
    "MAX_ROWS_TOTAL",
    "render_html",
]

MAX_ROWS_PER_TOKEN: Final = 200
"""Rows of one token's event list (a run of uses is one row); the rest is counted, not listed."""
MAX_ROWS_TOTAL: Final = 20_000
"""Rows of all event lists together; later tokens show only their timeline once it is spent."""
MAX_DETAIL_BYTES: Final = 32_000_000
"""Characters of page after which tokens get only their facts, no timeline or event list."""
MAX_BINS: Final = 120
"""Bars in one token's timeline: uses are counted per minute, hour, day, month, ... to fit."""
MAX_TEXT: Final = 300
"""Characters kept of any one string from the report (names, reasons, rules, paths)."""
MAX_ITEMS: Final = 20
"""Items kept of any one list from the report (fingerprints, scopes)."""

# --------------------------------------------------------------------------- text

# The unsafe characters of vault.util.text: controls and DEL are removed (whitespace ones, and
# the line and paragraph separators, become a space). The invisible ones are shown by their code
# point instead, so that "g", U+200B, "h" cannot pass for "gh" nor a bidi override make text read
# backwards: zero-width and format characters, bidirectional marks, embeddings, overrides and
# isolates, Unicode tags, and lone surrogates (json.loads lets them through; they cannot even be
# encoded).
_CONTROLS = pattern(*CONTROLS)
_SPACES = re.compile(char_class((0x09, 0x0D), *SEPARATORS) + "+")
_INVISIBLE = pattern(*INVISIBLE)
_DASH = "\u2014"
_DOT = " \u00b7 "


def _clean(value: object) -> str:
    """``value`` as plain text: controls stripped, invisible characters shown, cut short."""
    text = value if isinstance(value, str) else str(value)
    if not (text.isascii() and text.isprintable()):
        text = _CONTROLS.sub("", _SPACES.sub(" ", text))
        text = _INVISIBLE.sub(lambda m: f"\u27e8U+{ord(m.group()):04X}\u27e9", text)
    if len(text) > MAX_TEXT:
        text = f"{text[:MAX_TEXT]}\u2026 [{len(text) - MAX_TEXT:,} more characters]"
    return text


def _esc(value: object) -> str:
    """``value`` as HTML text or attribute value; None is a dash."""
    if value is None:
        return _DASH
    return html.escape(_clean(value), quote=True)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: object) -> str:
    number = _int(value)
    return _DASH if number is None else f"{number:,}"


def _str_list(value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [] if value is None else [_clean(value)]
    return [_clean(item) for item in value[:MAX_ITEMS]]


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


def _warn(text: str, count: int | None) -> str:
    """``text`` (already HTML) marked as a warning if ``count`` is not zero."""
    return f'<span class="warn">{text}</span>' if count else text


def _counted(value: object, word: str, plural: str | None = None) -> str:
    number = _int(value)
    return f"{_DASH} {plural or word + 's'}" if number is None else _plural(number, word, plural)


# --------------------------------------------------------------------------- time
#
# The audit module writes times as "YYYY-MM-DDTHH:MM:SSZ". Those are used as they are: they
# compare as strings in time order, and their prefixes name the minute, hour, day, month or year
# they fall in, so uses are binned by bisecting the sorted times at each prefix (or counting
# prefixes, if out of order), and only one time per bin is ever parsed. Any other ISO 8601 form
# is converted to that one first.

_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.ASCII)
_MAX_EPOCH: Final = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() + 1


def _iso(epoch: float) -> str:
    """Epoch seconds as "YYYY-MM-DDTHH:MM:SSZ" (isoformat: zero-padded even before year 1000)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()[:19] + "Z"


def _canonical(value: object) -> str | None:
    """``value`` as a "YYYY-MM-DDTHH:MM:SSZ" string, or None if it is not a time."""
    if not isinstance(value, str):
        return None
    if len(value) == 20 and value[19] == "Z" and value[10] == "T":
        return value  # the audit module's own form; checked when it is parsed
    if len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).isoformat()[:19] + "Z"
    except (OverflowError, ValueError):
        return None


def _epoch(canonical: str) -> float | None:
    if not _CANONICAL.fullmatch(canonical):
        return None
    try:
        return datetime.fromisoformat(canonical).timestamp()
    except (OverflowError, ValueError):
        return None


def _show_time(value: object, *, seconds: bool = True) -> str:
    """A time from the report for display (UTC, without the "T" and "Z"), escaped."""
    if value is None:
        return _DASH
    canonical = _canonical(value)
    if canonical is None or _epoch(canonical) is None:
        return _esc(value)
    return f"{canonical[:10]} {canonical[11:19] if seconds else canonical[11:16]}"


@dataclass(frozen=True)
class _Unit:
    """A bin of the timeline: the time span one canonical-time prefix names."""

    name: str
    prefix: int  # how many characters of a canonical time name the bin
    pad: str  # what completes the prefix to the bin's start
    seconds: int  # its length, 0 if it varies (months, years)
    tick: slice  # which part of a canonical time labels a tick


_UNITS: Final = (
    _Unit("minute", 16, ":00Z", 60, slice(5, 16)),
    _Unit("10 minutes", 15, "0:00Z", 600, slice(5, 16)),
    _Unit("hour", 13, ":00:00Z", 3600, slice(5, 16)),
    _Unit("day", 10, "T00:00:00Z", 86400, slice(0, 10)),
    _Unit("month", 7, "-01T00:00:00Z", 0, slice(0, 7)),
    _Unit("year", 4, "-01-01T00:00:00Z", 0, slice(0, 4)),
    _Unit("decade", 3, "0-01-01T00:00:00Z", 0, slice(0, 4)),
    _Unit("century", 2, "00-01-01T00:00:00Z", 0, slice(0, 4)),
)
_UNIT_OF_PREFIX: Final = {unit.prefix: unit for unit in _UNITS}


@lru_cache(maxsize=1 << 16)
def _span(prefix: str) -> tuple[float, float] | None:
    """The start and end (epoch seconds) of the bin a prefix names; None if it names none."""
    unit = _UNIT_OF_PREFIX[len(prefix)]
    start = _epoch(prefix + unit.pad)
    if start is None:
        return None
    if unit.seconds:
        return start, start + unit.seconds
    year = int(prefix.ljust(4, "0")[:4])
    month = 1
    if unit.name == "month":
        month = int(prefix[5:7]) + 1
        if month > 12:
            year, month = year + 1, 1
    else:
        year += {4: 1, 3: 10, 2: 100}[unit.prefix]
    if year > 9999:
        return start, _MAX_EPOCH
    return start, datetime(year, month, 1, tzinfo=UTC).timestamp()


def _unit_for(first: str, last: str) -> _Unit:
    """The finest unit that splits first..last (canonical, valid) into at most MAX_BINS bins."""
    for unit in _UNITS:
        if unit.seconds:
            lo, hi = _span(first[: unit.prefix]), _span(last[: unit.prefix])
            count = 0 if lo is None or hi is None else round((hi[0] - lo[0]) / unit.seconds) + 1
        else:
            year_from, year_to = int(first[:4]), int(last[:4])
            if unit.name == "month":
                count = (year_to - year_from) * 12 + int(last[5:7]) - int(first[5:7]) + 1
            else:
                size = {"year": 1, "decade": 10, "century": 100}[unit.name]
                count = year_to // size - year_from // size + 1
        if 0 < count <= MAX_BINS:
            return unit
    return _UNITS[-1]


# --------------------------------------------------------------------------- event kinds


@dataclass(frozen=True)
class _Kind:
    label: str
    colour: str
    meaning: str


_KINDS: Final = {
    "issued": _Kind("issued", "#1a7f37", "login or import: the token's life starts"),
    "used": _Kind("used", "#3567b0", "uses, counted per bar's time span (bar height = count)"),
    "refreshed": _Kind("refreshed", "#0b7285", "a new access token from the refresh token"),
    "rejected": _Kind("rejected", "#b35900", "refused by a server it was sent to (git)"),
    "denied": _Kind("denied", "#c62828", "refused by policy"),
    "login_failed": _Kind("login failed", "#d9480f", "a login or refresh that failed"),
    "key_rotated": _Kind("key rotated", "#7048a8", "the vault's key was rotated"),
    "revoked": _Kind("revoked", "#000000", "revoked at the provider: the end of its life"),
    "pruned": _Kind("pruned", "#000000", "removed as expired"),
    "deleted": _Kind("deleted", "#000000", "deleted from the vault"),
    "other": _Kind("other", "#6b6b6b", "any other event"),
}
_ENDS: Final = frozenset({"revoked", "pruned", "deleted"})
_BAD_OUTCOMES: Final = frozenset({"denied", "failure", "failed", "error"})
_STATUSES: Final = frozenset({"active", "revoked", "pruned", "deleted"})


def _kind(value: object) -> str:
    return value if isinstance(value, str) and value in _KINDS else "other"


def _end_bar(kind: str, x: float, top: float, bottom: float) -> str:
    """The black bar that ends a token's life: solid if revoked, dashed if pruned, dotted if
    deleted, with serifs at both ends."""
    dash = {"pruned": ' stroke-dasharray="5 3"', "deleted": ' stroke-dasharray="2 2"'}.get(kind, "")
    return (
        f'<path d="M{x:g} {top:g}V{bottom:g}" stroke="#000" stroke-width="3.5"{dash}/>'
        f'<path d="M{x - 5:g} {top:g}H{x + 5:g}M{x - 5:g} {bottom:g}H{x + 5:g}" '
        'stroke="#000" stroke-width="2"/>'
    )


def _shape(kind: str) -> str:
    """The SVG shape of an event kind, centred on the origin: shapes differ, not only colours."""
    colour = _KINDS[kind].colour
    return {
        "issued": f'<path d="M-5-6L6 0L-5 6Z" fill="{colour}"/>',
        "used": f'<rect x="-3" y="-6" width="6" height="12" fill="{colour}"/>',
        "refreshed": f'<circle r="5" fill="{colour}"/>',
        "denied": f'<path d="M-5-5L5 5M5-5L-5 5" stroke="{colour}" stroke-width="3"/>',
        "login_failed": (
            f'<rect x="-4.5" y="-4.5" width="9" height="9" fill="none" stroke="{colour}" '
            'stroke-width="2.5"/>'
        ),
        "key_rotated": f'<path d="M0-6L6 0L0 6L-6 0Z" fill="{colour}"/>',
        "rejected": (f'<path d="M-6-5H6L0 6Z" fill="none" stroke="{colour}" stroke-width="2.5"/>'),
        "other": f'<circle r="4" fill="none" stroke="{colour}" stroke-width="2"/>',
    }.get(kind) or _end_bar(kind, 0, -_END_HALF, _END_HALF)


_END_HALF: Final = 37  # half the height of the end bar in a timeline


def _sprites() -> str:
    """Each kind's shape, defined once and drawn with <use> (keeps the page small)."""
    shapes = "".join(f'<g id="k-{kind}">{_shape(kind)}</g>' for kind in _KINDS)
    return f'<svg class="sprites" aria-hidden="true" focusable="false"><defs>{shapes}</defs></svg>'


def _mark(kind: str, x: float, y: float) -> str:
    return f'<use href="#k-{kind}" x="{x:.1f}" y="{y:g}"/>'


# --------------------------------------------------------------------------- one token


@dataclass
class _Events:
    """One token's events, digested with list-at-a-time operations (a token may have thousands)."""

    events: Sequence[dict[str, Any]]
    times: list[str | None]  # each event's time as "YYYY-MM-DDTHH:MM:SSZ", or None
    rows: list[tuple[int, int]]  # (first, last) event index: one event, or a run of plain uses
    used_times: list[str]  # the times of the dated uses
    in_order: bool  # whether times (so used_times too) are all there and in order
    others: list[int]  # the indices of the events that are not uses
    first: str | None
    last: str | None


_PLAIN_OUTCOMES: Final = frozenset({None, "success"})


def _digest(raw: object) -> _Events:
    """Times, the compact rows and what the timeline needs, for one token's events.

    A token may have thousands of events and a report thousands of tokens, so every step runs
    over whole lists in C (map, compress, set, min) except one loop over runs of uses.
    """
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raw = ()
    events: Sequence[dict[str, Any]] = raw
    try:
        raw_times: list[Any] = list(map(dict.get, events, repeat("time")))
    except TypeError:  # not all dicts
        events = [
            event
            if type(event) is dict
            else dict(event)
            if isinstance(event, Mapping)
            else {"event": "(not an event)", "reason": _clean(event)}
            for event in events
        ]
        raw_times = list(map(dict.get, events, repeat("time")))
    count = len(events)
    try:  # the usual case: every time has the audit module's own form, checked all at once
        joined = "".join(raw_times)
        canonical = (
            len(joined) == 20 * count
            and not joined[19::20].strip("Z")
            and not joined[10::20].strip("T")
            and not joined[4::20].strip("-")
            and not joined[13::20].strip(":")
            and set(map(len, raw_times)) <= {20}
        )
    except TypeError:  # a time that is not a string
        canonical = False
    times: list[str | None] = raw_times if canonical else [_canonical(t) for t in raw_times]
    is_use = list(map(eq, map(dict.get, events, repeat("event")), repeat("used")))

    # A run of consecutive uses is one row, unless a use is not plain (a failed outcome, a
    # reason or a rule): those are rows of their own.
    uses = list(compress(events, is_use))
    try:
        plain_uses = (
            set(map(dict.get, uses, repeat("outcome"))) <= _PLAIN_OUTCOMES
            and not any(map(dict.get, uses, repeat("reason")))
            and not any(map(dict.get, uses, repeat("rule")))
        )
    except TypeError:  # an unhashable outcome
        plain_uses = False
    plain = (
        is_use
        if plain_uses
        else [
            is_used
            and (event.get("outcome") is None or event.get("outcome") == "success")
            and not event.get("reason")
            and not event.get("rule")
            for is_used, event in zip(is_use, events, strict=True)
        ]
    )
    rows: list[tuple[int, int]] = []
    index = 0
    for is_plain, group in groupby(plain):
        length = len(list(group))
        if is_plain and length > 1:
            rows.append((index, index + length - 1))
        else:
            singles = range(index, index + length)
            rows.extend(zip(singles, singles, strict=True))
        index += length

    in_order = canonical and all(map(le, raw_times, islice(raw_times, 1, None)))
    if in_order:
        first, last = (raw_times[0], raw_times[-1]) if raw_times else (None, None)
    else:
        dated = [t for t in times if t is not None]
        first, last = (min(dated), max(dated)) if dated else (None, None)
    if first is not None and (_epoch(first) is None or last is None or _epoch(last) is None):
        # Something shaped like a time that is not one: check each, one by one.
        times = [t if t is not None and _epoch(t) is not None else None for t in times]
        dated = [t for t in times if t is not None]
        first, last = (min(dated), max(dated)) if dated else (None, None)
        in_order = False
    used_times: list[Any] = list(compress(times, is_use))
    if not in_order and None in used_times:
        used_times = [t for t in used_times if t is not None]
    others = list(compress(range(count), map(not_, is_use)))
    return _Events(events, times, rows, used_times, in_order, others, first, last)


def _bin_counts(times: list[str], prefix: int, in_order: bool) -> list[tuple[str, int]]:
    """How many of ``times`` fall in each bin, as (prefix, count) in time order."""
    if not in_order:
        return sorted(Counter(map(itemgetter(slice(0, prefix)), times)).items())
    # Sorted canonical times: each bin is one slice, found by bisection; after a prefix
    # come only digits, "-", ":", "T" and "Z", all below "~".
    counts: list[tuple[str, int]] = []
    index, total = 0, len(times)
    while index < total:
        bin_prefix = times[index][:prefix]
        end = bisect_left(times, bin_prefix + "~", index)
        end = max(end, index + 1)
        counts.append((bin_prefix, end - index))
        index = end
    return counts


def _boundaries(unit: _Unit, first: str, start: float, end: float) -> list[float]:
    """The starts of the bins from ``first``'s to the end (at most 2 * MAX_BINS of them)."""
    if unit.seconds:
        bins = min(round((end - start) / unit.seconds), 2 * MAX_BINS)
        return [start + i * unit.seconds for i in range(bins)]
    out: list[float] = []
    year, month = int(first[:4]), int(first[5:7])
    step = {7: 0, 4: 1, 3: 10, 2: 100}[unit.prefix]
    year -= year % (step or 1)
    while len(out) < 2 * MAX_BINS and year <= 9999:
        span = _span(f"{year:04d}-{month:02d}"[: unit.prefix])
        if span is None or span[0] >= end:
            break
        out.append(span[0])
        if step:
            year += step
        else:
            year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    return out


def _timeline(digest: _Events, name: str) -> str:
    """An inline SVG: uses as bars per bin, other events as marks, the end as a black bar."""
    if digest.first is None or digest.last is None:
        return '<p class="none">No dated events for this token in the log.</p>'
    unit = _unit_for(digest.first, digest.last)
    first_bin, last_bin = _span(digest.first[: unit.prefix]), _span(digest.last[: unit.prefix])
    first, last = _epoch(digest.first), _epoch(digest.last)
    if first_bin is None or last_bin is None or first is None or last is None:
        return '<p class="none">No dated events for this token in the log.</p>'
    start, end = first_bin[0], last_bin[1]
    left, right, width = 92.0, 988.0, 896.0
    scale = width / (end - start)

    def x_of(epoch: float) -> float:
        return left + (epoch - start) * scale

    events, times = digest.events, digest.times
    uses = _bin_counts(digest.used_times, unit.prefix, digest.in_order)
    tallest = max((count for _prefix, count in uses), default=0)
    marks: dict[tuple[str, str], list[int]] = {}  # (kind, bin) -> [count, first event's index]
    for index in digest.others:
        when = times[index]
        if when is not None:
            key = (_kind(events[index].get("event")), when[: unit.prefix])
            if key in marks:
                marks[key][0] += 1
            else:
                marks[key] = [1, index]

    start_label, end_label = _iso(start), _iso(min(end, _MAX_EPOCH - 1))
    start_label = f"{start_label[:10]} {start_label[11:16]}"
    end_label = f"{end_label[:10]} {end_label[11:16]}"
    out = [
        f'<svg class="timeline" viewBox="0 0 1000 100" role="img" '
        f'aria-label="Timeline of token {_esc(name)}, {start_label} to {end_label} UTC">'
        f'<rect x="{left:.0f}" y="6" width="{width:.0f}" height="34" class="lane"/>'
        f'<rect x="{left:.0f}" y="46" width="{width:.0f}" height="30" class="lane"/>'
        '<text x="4" y="27">uses</text><text x="4" y="65">events</text>'
        f'<text x="{left:.0f}" y="92">{start_label}</text>'
        f'<text x="{right:.0f}" y="92" text-anchor="end">{end_label} UTC</text>'
    ]
    # Bin boundaries as ticks: up to six, clear of the labels at the ends.
    boundaries = _boundaries(unit, digest.first, start, end)
    step = max(1, math.ceil(len(boundaries) / 6))
    for boundary in boundaries[step::step]:
        at = x_of(boundary)
        if at - left < 140 or right - at < 165:
            continue
        out.append(
            f'<path d="M{at:.1f} 6V76" class="grid"/>'
            f'<text x="{at:.1f}" y="92" text-anchor="middle">'
            f"{_iso(boundary)[unit.tick].replace('T', ' ')}</text>"
        )
    # The token's life, from its first event to its last.
    out.append(
        f'<path d="M{x_of(first):.1f} 61H{max(x_of(last), x_of(first) + 1):.1f}" class="life"/>'
    )
    # Uses: one bar per bin, its height by count, all in one path to keep the page small.
    if tallest:
        bars = []
        busiest = ""
        for prefix, count in uses:
            span = _span(prefix)
            if span is None:
                continue
            x0, x1 = x_of(span[0]), x_of(span[1])
            bars.append(
                f"M{x0 + 0.5:.1f} 40v{-max(2.0, 32.0 * count / tallest):.1f}"
                f"h{max(1.0, x1 - x0 - 1):.1f}V40z"
            )
            if count == tallest and not busiest:
                busiest = _show_time(_iso(span[0]), seconds=False)
        out.append(
            f'<path d="{"".join(bars)}" fill="{_KINDS["used"].colour}"><title>'
            f"{_plural(len(digest.used_times), 'use')}, counted per {unit.name}; the most, "
            f"{_plural(tallest, 'use')}, in the {unit.name} from {busiest} UTC</title></path>"
        )
    # Other events: one mark per kind and bin, at the first one's time, with a count if several.
    for (kind, _bin), (count, index) in sorted(marks.items(), key=lambda item: item[1][1]):
        epoch = _epoch(times[index] or "")
        if epoch is None:  # shaped like a time, but not one: it is in the list, not drawn
            continue
        at = x_of(epoch)
        label = _KINDS[kind].label if kind != "other" else _esc(events[index].get("event"))
        title = f"{_show_time(times[index])}: {label}"
        if count > 1:
            title += f", and {count - 1:,} more in this {unit.name}"
        if kind in _ENDS:
            anchor, dx = ("end", -7) if at > left + 80 else ("start", 7)
            out.append(
                f"<g><title>{title}</title>{_mark(kind, at, 41)}"
                f'<text x="{at + dx:.1f}" y="16" text-anchor="{anchor}" class="halo">'
                f"{_KINDS[kind].label}</text></g>"
            )
            continue
        y = 61 if kind in ("issued", "refreshed", "key_rotated") else 70
        extra = (
            f'<text x="{at + 7:.1f}" y="{y - 5}" class="halo small">\u00d7{count:,}</text>'
            if count > 1
            else ""
        )
        out.append(f"<g><title>{title}</title>{_mark(kind, at, y)}{extra}</g>")
    out.append("</svg>")
    caption = (
        f"Bars: uses per {unit.name}, the tallest {_plural(tallest, 'use')}."
        if tallest
        else "No uses."
    )
    return (
        f'<figure class="tl">{"".join(out)}<figcaption>{caption} Times in UTC.</figcaption>'
        "</figure>"
    )


def _details(event: Mapping[str, Any]) -> str:
    parts = []
    for key in ("reason", "rule", "command"):
        value = event.get(key)
        if value not in (None, ""):
            parts.append(f'<span class="k">{key}</span> {_esc(value)}')
    scopes = _str_list(event.get("scopes"))
    if scopes:
        parts.append(f'<span class="k">scopes</span> {html.escape(" ".join(scopes))}')
    return "<br>".join(parts)


def _row(digest: _Events, first: int, last: int) -> str:
    events, times = digest.events, digest.times
    event = events[first]
    seq = _num(event.get("seq"))
    if first != last:
        count = last - first + 1
        since, until = _show_time(times[first]), _show_time(times[last])
        return (
            f'<tr class="run ev-used"><td>{since} \u2013<br>{until}</td>'
            f"<td>{seq}\u2013{_num(events[last].get('seq'))}</td>"
            f'<td><span class="ev">used \u00d7{count:,}</span></td><td>success</td>'
            f"<td>{count:,} uses between {since} and {until}</td></tr>"
        )
    raw_kind = event.get("event")
    kind = _kind(raw_kind)
    outcome = event.get("outcome")
    bad_outcome = isinstance(outcome, str) and outcome in _BAD_OUTCOMES
    bad = " bad" if kind in ("denied", "login_failed", "rejected") or bad_outcome else ""
    when = _show_time(times[first]) if times[first] else _esc(event.get("time"))
    return (
        f'<tr class="ev-{kind}{bad}"><td>{when}</td><td>{seq}</td>'
        f'<td><span class="ev">{_esc(raw_kind)}</span></td><td>{_esc(outcome)}</td>'
        f"<td>{_details(event)}</td></tr>"
    )


def _gap_row(digest: _Events, gap: Sequence[tuple[int, int]]) -> str:
    counts: Counter[str] = Counter()
    for first, last in gap:
        if first != last:
            counts["used"] += last - first + 1
        else:
            counts[_kind(digest.events[first].get("event"))] += 1
    first, last = gap[0][0], gap[-1][1]
    dated = [t for t in digest.times[first : last + 1] if t is not None]
    span = f" from {_show_time(dated[0])} to {_show_time(dated[-1])}" if dated else ""
    seqs = [_int(digest.events[i].get("seq")) for i in (first, last)]
    seq = (
        f", seq {seqs[0]:,}\u2013{seqs[1]:,}" if seqs[0] is not None and seqs[1] is not None else ""
    )
    what = ", ".join(
        f"{n:,} {_KINDS[kind].label}" for kind, n in sorted(counts.items(), key=lambda c: -c[1])
    )
    return (
        f'<tr class="gap"><td colspan="5">\u2026 {_plural(last - first + 1, "event")} not '
        f"listed{span}{seq}: {what}. The timeline above includes them; the audit log has them "
        "all.</td></tr>"
    )


def _event_list(digest: _Events, cap: int) -> tuple[str, int]:
    """The compact event list, at most ``cap`` rows (plus one counting the rest), and its rows."""
    rows = digest.rows
    total = len(digest.events)
    if not rows:
        return "", 0
    summary = f"Events: {_plural(total, 'event')}"
    if cap <= 0:
        return (
            f'<p class="none">{summary}. Not listed: this page already lists '
            f"{MAX_ROWS_TOTAL:,} rows, its limit. The timeline above includes them; the audit "
            "log has them all.</p>",
            0,
        )
    if len(rows) <= cap:
        shown, gap, tail = rows, [], []
        summary += f" in {_plural(len(rows), 'row')}" if len(rows) != total else ""
    else:
        head_n = (cap + 1) // 2
        shown, gap, tail = (
            rows[:head_n],
            rows[head_n : len(rows) - cap // 2],
            rows[len(rows) - cap // 2 :],
        )
        summary += f"; the first {head_n:,} and last {cap // 2:,} of {len(rows):,} rows listed"
    body = [_row(digest, a, b) for a, b in shown]
    if gap:
        body.append(_gap_row(digest, gap))
        body.extend(_row(digest, a, b) for a, b in tail)
    return (
        f"<details open><summary>{summary}</summary>"
        '<table class="events"><thead><tr><th scope="col">Time (UTC)</th><th scope="col">Seq</th>'
        '<th scope="col">Event</th><th scope="col">Outcome</th><th scope="col">Details</th>'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table></details>",
        len(shown) + len(tail),
    )


def _status(token: Mapping[str, Any]) -> str:
    status = token.get("status")
    css = status if isinstance(status, str) and status in _STATUSES else "other"
    return f'<span class="badge st-{css}">{_esc(status)}</span>'


def _ended(token: Mapping[str, Any]) -> str:
    parts = [
        f"{word} {_show_time(token.get(word), seconds=False)}"
        for word in ("revoked", "pruned")
        if token.get(word) not in (None, "")
    ]
    return "<br>".join(parts) or _DASH


def _issued(token: Mapping[str, Any], separator: str = " ") -> str:
    issued = token.get("issued")
    text = _show_time(issued, seconds=False) if issued is not None else _DASH
    by = token.get("issued_by")
    return f"{text}{separator}<small>({_esc(by)})</small>" if by not in (None, "") else text


def _count_cell(value: object, *, warn: bool = False) -> str:
    number = _int(value)
    css = ' class="num warn"' if warn and number else ' class="num"'
    return f"<td{css}>{_num(value)}</td>"


def _summary_row(index: int, token: Mapping[str, Any]) -> str:
    return (
        f'<tr><th scope="row"><a href="#t{index}">{_esc(token.get("name"))}</a></th>'
        f'<td>{_esc(token.get("provider"))}</td><td class="t">{_issued(token, "<br>")}</td>'
        f"{_count_cell(token.get('uses'))}"
        f'<td class="t">{_show_time(token.get("last_use"), seconds=False)}</td>'
        f'{_count_cell(token.get("refreshes"))}<td class="t">{_ended(token)}</td>'
        f"{_count_cell(token.get('denials'), warn=True)}"
        f"{_count_cell(token.get('failures'), warn=True)}<td>{_status(token)}</td></tr>"
    )


def _token_section(
    index: int, token: Mapping[str, Any], cap: int, *, detail: bool = True
) -> tuple[str, int]:
    """One token's heading, facts, timeline and event list (at most ``cap`` rows), and how
    many rows it listed; only the heading and facts unless ``detail``."""
    name = token.get("name")
    facts = [f"provider {_esc(token.get('provider'))}"]
    if token.get("issuer") not in (None, ""):
        facts.append(f"issuer {_esc(token.get('issuer'))}")
    facts.append(f"issued {_issued(token)}")
    facts.append(f"{_counted(token.get('uses'), 'use')}, last {_show_time(token.get('last_use'))}")
    facts.append(_counted(token.get("refreshes"), "refresh", "refreshes"))
    denials, failures = token.get("denials"), token.get("failures")
    facts.append(
        f"{_warn(_counted(denials, 'denial'), _int(denials))}, "
        f"{_warn(_counted(failures, 'failure'), _int(failures))}"
    )
    for word in ("revoked", "pruned"):
        if token.get(word) not in (None, ""):
            facts.append(f"<strong>{word} {_show_time(token.get(word))}</strong>")
    prints = _str_list(token.get("fingerprints"))
    fingerprints = (
        '<p class="fp">fingerprint '
        + ", ".join(f"<code>{html.escape(p)}</code>" for p in prints)
        + "</p>"
        if prints
        else ""
    )
    head = (
        f'<section class="token" id="t{index}"><h3><span class="name">{_esc(name)}</span> '
        f'{_status(token)}</h3><p class="facts">{_DOT.join(facts)}</p>{fingerprints}'
    )
    if not detail:
        events = token.get("events")
        count = len(events) if isinstance(events, Sequence) and not isinstance(events, str) else 0
        return (
            f'{head}<p class="none">{_plural(count, "event")}: timeline and list left out, as '
            f"this page reached its size limit ({MAX_DETAIL_BYTES:,} characters) before this "
            "token. The audit log has them all.</p></section>",
            0,
        )
    digest = _digest(token.get("events"))
    listing, used = _event_list(digest, cap)
    timeline = _timeline(digest, _clean(name) if name is not None else "")
    return f"{head}{timeline}{listing}</section>", used


# --------------------------------------------------------------------------- the page


def _banner(log: Mapping[str, Any]) -> str:
    verified = log.get("verified")
    message = log.get("verify_message")
    detail = f": {_esc(message)}" if message not in (None, "") else ""
    if verified is True:
        return (
            '<div class="banner ok" role="status"><span class="icon">\u2714</span> '
            f"<strong>Audit log verified</strong>{detail}</div>"
        )
    if verified is False:
        return (
            '<div class="banner bad" role="alert"><span class="icon">\u2716</span> '
            f"<strong>Audit log verification FAILED</strong>{detail}. The log may have been "
            "altered: do not trust this report's contents.</div>"
        )
    return (
        '<div class="banner unknown" role="status"><span class="icon">?</span> '
        f"<strong>Audit log not verified</strong>{detail}. Its integrity was not checked.</div>"
    )


def _legend() -> str:
    items = []
    for kind, info in _KINDS.items():
        items.append(
            '<li><svg viewBox="-10 -10 20 20" width="20" height="20" aria-hidden="true">'
            f"{_end_bar(kind, 0, -8, 8) if kind in _ENDS else _mark(kind, 0, 0)}</svg>"
            f"<b>{info.label}</b> {info.meaning}</li>"
        )
    return (
        '<section class="legend"><h2>Legend</h2><ul>'
        + "".join(items)
        + "</ul><p>A mark with \u00d7N stands for N events of that kind in one bar's time "
        "span; hover over a mark or bar for its time and count. Rows shaded red are denials "
        "and failures. Consecutive uses are listed as one row.</p></section>"
    )


_CSS = """
:root{color-scheme:light;--ink:#1b1f24;--muted:#5c6670;--line:#d0d7de}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:#fff;margin:0 auto;padding:16px 24px 40px;max-width:1240px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
h3{font-size:16px;margin:0 0 4px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.meta,.facts,.fp,figcaption,.none{color:var(--muted);margin:2px 0}
.facts strong{color:var(--ink)}code{font:12px ui-monospace,"DejaVu Sans Mono",monospace;
overflow-wrap:anywhere}
.banner{margin:12px 0;padding:10px 14px;border:2px solid;border-left-width:10px;font-size:15px}
.banner .icon{font-weight:bold;display:inline-block;width:1.3em;text-align:center}
.banner.ok{background:#e8f5ec;border-color:#1a7f37;color:#0f5323}
.banner.bad{background:#fdecec;border-color:#c62828;color:#8e1515}
.banner.unknown{background:#f2f3f5;border-color:#6b6b6b;border-style:dashed;color:#333}
.totals{margin:6px 0;font-size:15px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#f3f5f8;border-bottom:2px solid var(--line);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{color:#b01c1c;font-weight:700}
.summary th[scope=row]{font-weight:600;overflow-wrap:anywhere;min-width:8em}
.summary td.t{white-space:nowrap}
.summary a{color:inherit}
.badge{font-size:12px;font-weight:600;padding:0 7px;border-radius:9px;border:1.5px solid;
white-space:nowrap}
.st-active{color:#0f5323;border-color:#1a7f37;background:#e8f5ec}
.st-revoked{color:#fff;border-color:#000;background:#000}
.st-pruned{color:#000;border-color:#000;border-style:dashed;background:#eee}
.st-deleted{color:#000;border-color:#000;border-style:dotted;background:#eee}
.st-other{color:#333;border-color:#888}
.legend ul{list-style:none;padding:0;margin:0;display:grid;
grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:2px 16px}
.legend li{display:flex;gap:6px;align-items:center}.legend p{color:var(--muted);margin:6px 0}
.legend svg{flex:none}
.token{border-top:3px solid var(--line);margin-top:22px;padding-top:10px}
.token .name{overflow-wrap:anywhere}
figure.tl{margin:8px 0}
.sprites{position:absolute;width:0;height:0;overflow:hidden}
svg.timeline{width:100%;height:auto;display:block}
svg.timeline text{font:11px system-ui,"DejaVu Sans",sans-serif;fill:#333}
svg.timeline .small{font-size:10px}
svg.timeline .halo{paint-order:stroke;stroke:#fff;stroke-width:3px;font-weight:600}
svg.timeline .lane{fill:#f4f6f9}svg.timeline .grid{stroke:#d6dbe1;stroke-width:1}
svg.timeline .life{stroke:#8a939c;stroke-width:3}
details>summary{cursor:pointer;color:var(--muted);margin:4px 0}
table.events{font-size:13px}
table.events td:first-child{white-space:nowrap;font-variant-numeric:tabular-nums}
table.events td:nth-child(2){text-align:right;font-variant-numeric:tabular-nums}
table.events td:last-child{overflow-wrap:anywhere}
.events .ev{font-weight:600}
.events tr.bad{background:#fdecec}.events tr.bad .ev::before{content:"\\2716  ";color:#c62828}
.events tr.ev-issued .ev::before{content:"\\25B6  ";color:#1a7f37}
.events tr.ev-refreshed .ev::before{content:"\\25CF  ";color:#0b7285}
.events tr.ev-key_rotated .ev::before{content:"\\25C6  ";color:#7048a8}
.events tr.ev-revoked,.events tr.ev-pruned,.events tr.ev-deleted{background:#eceff2;
font-weight:600}
.events tr.ev-revoked .ev::before,.events tr.ev-pruned .ev::before,
.events tr.ev-deleted .ev::before{content:"\\258C  "}
.events tr.run{color:var(--muted)}.events tr.run td:last-child{font-style:italic}
.events tr.gap td{background:#fff8e1;font-style:italic;text-align:center}
.k{color:var(--muted);font-size:12px}
@media print{
@page{size:landscape;margin:10mm}
body{max-width:none;padding:0;font-size:9.5pt}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
a{color:inherit;text-decoration:none}
thead{display:table-header-group}
tr,figure.tl,.banner,.legend li{break-inside:avoid}
h2,h3,.token>.facts{break-after:avoid}
.token{break-inside:auto}
details>summary{list-style:none;cursor:auto}
.banner{border-width:2px 2px 2px 10px}
}
"""


# Nothing may be loaded or run; only the stylesheet above, by its hash, may apply.
_CSP: Final = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'"
)


def render_html(report: Mapping[str, Any], *, title: str = "vault audit report") -> str:
    """The audit ``report`` as a self-contained HTML page (no external resource, no script).

    ``report`` is the audit module's JSON-compatible report: ``generated_at``, ``log`` (``path``,
    ``events``, ``first``, ``last``, ``verified`` True/False/None, ``verify_message``) and
    ``tokens``, each with ``name``, ``provider``, ``issuer``, ``fingerprints``, ``issued``,
    ``issued_by``, ``uses``, ``last_use``, ``refreshes``, ``revoked``, ``pruned``, ``denials``,
    ``failures``, ``status`` and ``events`` (chronological; each ``time``, ``seq``, ``event``,
    ``outcome``, ``reason``, ``rule``, ``scopes``, ``command``). Any field may be missing or of
    the wrong type: it is shown as a dash, or as escaped text, never trusted.
    """
    log_raw = report.get("log")
    log: Mapping[str, Any] = log_raw if isinstance(log_raw, Mapping) else {}
    tokens_raw = report.get("tokens")
    tokens: list[Mapping[str, Any]] = [
        t
        for t in (
            tokens_raw
            if isinstance(tokens_raw, Sequence) and not isinstance(tokens_raw, str)
            else ()
        )
        if isinstance(t, Mapping)
    ]

    statuses: Counter[str] = Counter(_clean(t.get("status") or "unknown") for t in tokens)
    uses = sum(_int(t.get("uses")) or 0 for t in tokens)
    denials = sum(_int(t.get("denials")) or 0 for t in tokens)
    failures = sum(_int(t.get("failures")) or 0 for t in tokens)
    by_status = ", ".join(f"{n:,} {html.escape(s)}" for s, n in statuses.most_common())

    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_esc(title)}</h1>",
        f'<p class="meta">Generated {_show_time(report.get("generated_at"))} UTC \u00b7 '
        f"log <code>{_esc(log.get('path'))}</code> \u00b7 "
        f"{_num(log.get('events'))} events from {_show_time(log.get('first'))} to "
        f"{_show_time(log.get('last'))} UTC</p></header>",
        _banner(log),
        '<section class="summary"><h2>Summary</h2>',
    ]
    if not tokens:
        parts.append('<p class="totals">No tokens in this report.</p></section>')
    else:
        parts.append(
            f'<p class="totals"><strong>{_plural(len(tokens), "token")}</strong> '
            f"({by_status}) \u00b7 {_plural(uses, 'use')} \u00b7 "
            f"{_warn(_plural(denials, 'denial'), denials)} \u00b7 "
            f"{_warn(_plural(failures, 'failure'), failures)}</p>"
            '<table class="summary"><thead><tr><th scope="col">Token</th>'
            '<th scope="col">Provider</th><th scope="col">Issued</th><th scope="col">Uses</th>'
            '<th scope="col">Last use</th><th scope="col">Refreshes</th>'
            '<th scope="col">Revoked / pruned</th><th scope="col">Denials</th>'
            '<th scope="col">Failures</th><th scope="col">Status</th></tr></thead><tbody>'
        )
        parts.extend(_summary_row(i, t) for i, t in enumerate(tokens))
        parts.append("</tbody></table></section>")
        parts.append(_sprites())
        parts.append(_legend())
        parts.append("<h2>Tokens</h2>")
        rows_left, size = MAX_ROWS_TOTAL, sum(map(len, parts))
        for index, token in enumerate(tokens):
            detail = size < MAX_DETAIL_BYTES
            section, used = _token_section(
                index, token, min(MAX_ROWS_PER_TOKEN, rows_left), detail=detail
            )
            rows_left -= used
            size += len(section)
            parts.append(section)
    parts.append("</body></html>\n")
    return "".join(parts)
