"""Rendering for people (tables that fit, relative times, colour) and for programs (JSON).

Human output: every table fits the width of the terminal it goes to (80 columns when it goes
elsewhere), times read relative to now ("in 7 min", "3 d ago"), and colour appears only where
:func:`color_enabled` says so. JSON output: stable documents, absolute RFC 3339 times."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any, TextIO

DEFAULT_WIDTH = 80  # the width of output that does not go to a terminal
MIN_WIDTH = 40  # narrower terminals get this width (and wrap themselves)
GAP = "  "  # between two columns
WRAP_BEFORE_DROP = 20  # a wrapped column's width that a droppable column gives way to

_WROTE: list[bool] = []  # not empty once dump_json wrote to stdout (vault.cli.main reads it)


# --- times -----------------------------------------------------------------------------------

_UNITS = (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def relative_time(ts: float, now: float) -> str:
    """``ts`` as a person reads it against ``now``: "in 7 min" (future), "3 d ago" (past),
    "now" (under a second either way). The amount is the whole number of the largest unit
    (y = 365 d, d, h, min, s) that fits in the distance, rounded down: 59 s is "59 s", 60 s
    "1 min", 23 h 59 min "23 h"."""
    delta = ts - now
    distance = abs(delta)
    if distance < 1:
        return "now"
    for unit, size in _UNITS:
        if distance >= size:
            amount = f"{int(distance // size)} {unit}"
            return f"in {amount}" if delta > 0 else f"{amount} ago"
    raise AssertionError("not reached: distance >= 1 matches the last unit")


def when(ts: float | None, now: float, *, absolute: bool = False, none: str = "-") -> str:
    """A time in a table or a line for a person: relative (:func:`relative_time`), or RFC 3339
    with ``absolute`` (the `--absolute` option); ``none`` where there is no time."""
    if ts is None:
        return none
    if absolute:
        from vault.util.text import rfc3339

        return rfc3339(ts) or none
    return relative_time(ts, now)


def human_duration(seconds: float) -> str:
    """A length of time, compact: "45s", "12m", "3h05m", "2d04h" (negative with a "-")."""
    s = int(abs(seconds))
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m"
    if s < 86400:
        return f"{sign}{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{sign}{s // 86400}d{(s % 86400) // 3600:02d}h"


# --- colour ----------------------------------------------------------------------------------

_SGR = {
    "code": "1",  # the user code on the login screen: bold
    "error": "1;31",  # the "error:" prefix: bold red
    "bad": "31",  # expired, denied, needs login: red
    "warn": "33",  # expiring, rejected, a warning: yellow
    "good": "32",  # valid: green
    "dim": "2",  # secondary text
    "header": "1",  # a table's header row
}
STYLES = frozenset(_SGR)


def _on(value: str | None) -> bool:
    return value is not None and value not in ("", "0")


def color_enabled(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether text written to ``stream`` (default stdout) gets colour and emphasis. In order:
    ``NO_COLOR`` set and not empty (no-color.org) turns it off, whatever else is set; then
    ``CLICOLOR_FORCE`` or ``FORCE_COLOR`` set to anything but "" or "0" turns it on; then it is
    on only when the stream is a terminal and ``TERM`` is set and not "dumb"."""
    environ = os.environ if env is None else env
    if environ.get("NO_COLOR"):
        return False
    if _on(environ.get("CLICOLOR_FORCE")) or _on(environ.get("FORCE_COLOR")):
        return True
    if environ.get("TERM", "dumb") in ("", "dumb"):
        return False
    out = sys.stdout if stream is None else stream
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError, OSError):  # closed, or not a real stream
        return False


def style(text: str, kind: str, stream: TextIO | None = None) -> str:
    """``text`` in the emphasis ``kind`` (one of STYLES: code, error, bad, warn, good, dim,
    header) when :func:`color_enabled` for ``stream`` (default stdout); else ``text`` as it
    is. Only SGR sequences are added, and only around the text (never inside it)."""
    if kind not in _SGR:
        raise ValueError(f"unknown style {kind!r}")
    if not text or not color_enabled(stream):
        return text
    return f"\x1b[{_SGR[kind]}m{text}\x1b[0m"


# --- width -----------------------------------------------------------------------------------


def output_width(stream: TextIO | None = None) -> int:
    """The columns a table written to ``stream`` (default stdout) may use: the terminal's
    width (shutil.get_terminal_size, which reads COLUMNS first) when it is a terminal, at
    least MIN_WIDTH; DEFAULT_WIDTH (80) when it is not."""
    out = sys.stdout if stream is None else stream
    try:
        tty = out.isatty()
    except (AttributeError, ValueError, OSError):
        tty = False
    if not tty:
        return DEFAULT_WIDTH
    import shutil

    return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def text_width(text: str) -> int:
    """The columns ``text`` takes on a terminal: East Asian wide and full-width characters
    take two, combining marks none, everything else one."""
    if text.isascii():
        return len(text)
    import unicodedata

    total = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def _char_width(ch: str) -> int:
    return text_width(ch)


def ellipsis() -> str:
    """ "…" where stdout can encode it, else "~"."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "…".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "~"
    return "…"


def truncate(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns; when cut, its last column is an ellipsis, so
    a shortened value never passes for a whole one."""
    if text_width(text) <= width:
        return text
    if width <= 0:
        return ""
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + ellipsis()


def _split_long(word: str, width: int) -> list[str]:
    """A word wider than ``width`` cut into pieces of at most ``width`` columns."""
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for ch in word:
        w = _char_width(ch)
        if current and used + w > width:
            pieces.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += w
    if current:
        pieces.append("".join(current))
    return pieces


_BREAK_AFTER = " -._@+/:,"  # a line may end after one of these (a name or a path breaks there)


def wrap(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` columns, broken after a space or a "-", ".",
    "_", "@", "+", "/", ":" or ",", so that a name or a path breaks between its parts; a part
    wider than the column is broken where it must be. Every character but the spaces at a
    break is kept, and none is added: the lines of one cell read as one value."""
    width = max(1, width)
    if text_width(text) <= width:
        return [text]
    import re

    parts = [p for p in re.split(f"(?<=[{re.escape(_BREAK_AFTER)}])", text) if p]
    lines: list[str] = []
    current = ""
    for part in parts:
        if text_width((current + part).rstrip(" ")) <= width:
            current += part
            continue
        if current.strip(" "):
            lines.append(current.rstrip(" "))
        current = part.lstrip(" ")
        if text_width(current.rstrip(" ")) > width:
            pieces = _split_long(current.rstrip(" "), width)
            lines.extend(pieces[:-1])
            current = pieces[-1]
    if current.strip(" ") or not lines:
        lines.append(current.rstrip(" "))
    return lines


# --- tables ----------------------------------------------------------------------------------


class Column:
    """One column of a :func:`table`.

    ``fit``: how a cell wider than the column is shown: "wrap" (over several rows, nothing
    lost: names, which are never cut), "cut" (shortened, ending in an ellipsis) or "keep"
    (never narrowed: short fixed values such as times). ``least`` is the narrowest the column
    gets (its header's width at least). ``wide``: shown only in the wide view (`--wide`).
    ``drop``: when the table cannot fit even with every column at its least, the column with
    the highest ``drop`` is left out (then the next); 0: never left out. A "wrap" column
    counts as up to WRAP_BEFORE_DROP wide there: a column is left out before a name of
    that width is wrapped."""

    __slots__ = ("drop", "fit", "header", "least", "wide")

    def __init__(
        self, header: str, fit: str = "cut", *, least: int = 6, wide: bool = False, drop: int = 0
    ) -> None:
        if fit not in ("wrap", "cut", "keep"):
            raise ValueError(f"unknown fit {fit!r}")
        self.header = header
        self.fit = fit
        self.least = max(least, text_width(header))
        self.wide = wide
        self.drop = drop


class Styled:
    """A cell with an emphasis (a kind of :func:`style`), applied only when colour is on."""

    __slots__ = ("kind", "text")

    def __init__(self, text: str, kind: str | None) -> None:
        self.text = text
        self.kind = kind


Cell = str | Styled


def _widths(columns: Sequence[Column], texts: list[list[str]], width: int | None) -> list[int]:
    """Each column's width: as wide as its widest cell, then (when ``width`` is given and the
    table is wider) the widest narrowable column narrowed one column at a time until the
    table fits or every narrowable column is at its least."""
    widths = [text_width(c.header) for c in columns]
    for row in texts:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], text_width(cell))
    if width is None:
        return widths
    room = width - len(GAP) * (len(columns) - 1)
    for fit in ("cut", "wrap"):  # values cut (and marked) first; names wrapped only then
        while sum(widths) > room:
            slack = [
                (widths[i] - c.least, i)
                for i, c in enumerate(columns)
                if c.fit == fit and widths[i] > c.least
            ]
            if not slack:
                break
            _, i = max(slack)
            widths[i] -= 1
    return widths


def render_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    width: int | None = DEFAULT_WIDTH,
    wide: bool = False,
    color: bool = False,
) -> list[str]:
    """The table's lines (without newlines). ``wide``: every column (those marked wide too),
    each as wide as its widest cell, nothing cut or wrapped (``width`` is ignored). Otherwise
    only the columns not marked wide, fitted to ``width`` columns: every line is at most that
    wide unless the columns' least widths already exceed it. ``color``: emphasis (header
    bold, styled cells as they say) as SGR sequences, which take no columns."""
    shown = [i for i, c in enumerate(columns) if wide or not c.wide]
    if not wide and width is not None:
        shown = _droppable(columns, rows, shown, width)
    cols = [columns[i] for i in shown]
    texts = [[_text(row[i]) for i in shown] for row in rows]
    kinds = [[_kind(row[i]) for i in shown] for row in rows]
    widths = _widths(cols, texts, None if wide else width)

    def paint(text: str, kind: str | None) -> str:
        return f"\x1b[{_SGR[kind]}m{text}\x1b[0m" if color and kind and text else text

    def line(cells: list[tuple[str, str | None]]) -> str:
        parts = [
            paint(text, kind) + " " * (w - text_width(text))
            for (text, kind), w in zip(cells, widths, strict=True)
        ]
        return GAP.join(parts).rstrip()

    out = [line([(truncate(c.header, w), "header") for c, w in zip(cols, widths, strict=True)])]
    for row_texts, row_kinds in zip(texts, kinds, strict=True):
        stacks: list[list[str]] = []
        for text, col, w in zip(row_texts, cols, widths, strict=True):
            if col.fit == "wrap":
                stacks.append(wrap(text, w))
            elif col.fit == "cut":
                stacks.append([truncate(text, w)])
            else:
                stacks.append([text])
        for k in range(max(len(s) for s in stacks) if stacks else 0):
            out.append(
                line(
                    [
                        (s[k] if k < len(s) else "", kind)
                        for s, kind in zip(stacks, row_kinds, strict=True)
                    ]
                )
            )
    return out


def _droppable(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], shown: list[int], width: int
) -> list[int]:
    """``shown`` without the columns (highest ``drop`` first) that must go for the rest to
    fit ``width`` at their least widths."""
    shown = list(shown)

    def narrowest(i: int) -> int:
        c = columns[i]
        natural = max([text_width(c.header), *(text_width(_text(r[i])) for r in rows)])
        if c.fit == "keep":
            return natural
        if c.fit == "wrap":  # a name up to WRAP_BEFORE_DROP wide is not wrapped to keep a column
            return min(natural, max(c.least, WRAP_BEFORE_DROP))
        return min(natural, c.least)

    while True:
        need = sum(narrowest(i) for i in shown) + len(GAP) * (len(shown) - 1)
        candidates = [i for i in shown if columns[i].drop > 0]
        if need <= width or not candidates:
            return shown
        shown.remove(max(candidates, key=lambda i: columns[i].drop))


def _text(cell: Cell) -> str:
    return cell.text if isinstance(cell, Styled) else cell


def _kind(cell: Cell) -> str | None:
    return cell.kind if isinstance(cell, Styled) else None


def table(
    headers: Sequence[str] | Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    out: TextIO | None = None,
    *,
    wide: bool = False,
) -> None:
    """Write a table to ``out`` (default stdout), fitted to its width (:func:`output_width`),
    coloured where :func:`color_enabled`. Plain header strings make columns that are cut."""
    stream = out or sys.stdout
    columns = [h if isinstance(h, Column) else Column(h) for h in headers]
    lines = render_table(
        columns,
        rows,
        width=output_width(stream),
        wide=wide,
        color=color_enabled(stream),
    )
    stream.write("\n".join(lines) + "\n")


def fields(pairs: Sequence[tuple[str, str]], out: TextIO | None = None) -> None:
    """``key: value`` lines for one thing (`vault status`), the values aligned and wrapped
    to the output's width under their own column."""
    stream = out or sys.stdout
    width = output_width(stream)
    indent = max((text_width(k) for k, _ in pairs), default=0) + 2
    lines = []
    for key, value in pairs:
        label = f"{key}:".ljust(indent)
        chunks = wrap(value, max(10, width - indent))
        lines.append(label + chunks[0])
        lines.extend(" " * indent + chunk for chunk in chunks[1:])
    stream.write("".join(line.rstrip() + "\n" for line in lines))


# --- JSON ------------------------------------------------------------------------------------


def dump_json(doc: Any, out: TextIO | None = None) -> None:
    """One JSON document on one line of ``out`` (default stdout), flushed."""
    stream = out or sys.stdout
    stream.write(json.dumps(doc, ensure_ascii=False, separators=(", ", ": ")) + "\n")
    stream.flush()
    if stream is sys.stdout and not _WROTE:
        _WROTE.append(True)


def wrote_json() -> bool:
    """Whether :func:`dump_json` wrote to stdout in this process (a command that printed its
    document, or a stream of events, before it failed: vault.cli.main adds no error object)."""
    return bool(_WROTE)


def error_code(exc: BaseException) -> str:
    """The ``error`` of a JSON error object: the error's own ``code`` where it has one (an
    OAuth error, ``expired``, ``unknown_name``...), else the kind of failure its exit code
    names."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    from vault.errors import VaultError

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if not isinstance(exc, VaultError):
        return "internal"
    return {2: "usage", 3: "config", 4: "auth", 5: "policy", 6: "integrity", 7: "network"}.get(
        exc.exit_code, "internal"
    )
