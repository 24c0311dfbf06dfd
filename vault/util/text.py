"""Text from outside made safe to show, and times as RFC 3339."""

from __future__ import annotations

import re
import time

from vault.errors import UsageError

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


# Token and provider names: what a person may call them.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(
            f"invalid token name {name[:64]!r}",
            hint="a name is 1-128 characters: letters, digits and . _ @ + -, "
            "starting with a letter or digit",
        )
    return name
