"""Rendering for people (tables, times) and for programs (stable JSON)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any, TextIO

# Compiled on first use (re caches it): `vault token` imports this module but never cleans text.
_CONTROL = r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]"


def clean(text: object, limit: int = 512) -> str:
    """Text from outside (a server, a file) made safe to print: control characters, terminal
    escapes and bidi overrides removed, length bounded."""
    s = re.sub(_CONTROL, "", str(text))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


def parse_time(text: str) -> int:
    """RFC 3339 / ISO 8601 (a bare date means midnight UTC) to UNIX seconds."""
    from datetime import UTC, datetime

    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def human_duration(seconds: float) -> str:
    s = int(abs(seconds))
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m"
    if s < 86400:
        return f"{sign}{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{sign}{s // 86400}d{(s % 86400) // 3600:02d}h"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    stream.write("\n".join(lines) + "\n")


def dump_json(doc: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(doc, ensure_ascii=False, separators=(", ", ": ")) + "\n")
    stream.flush()
