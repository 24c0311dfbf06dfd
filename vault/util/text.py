"""Text from outside made safe to show, and times as RFC 3339."""

from __future__ import annotations

import functools
import re
import time

from vault.errors import UsageError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# --- the one table of unsafe characters -------------------------------------------------------
#
# Text from outside (a server, a file, an audit record) must not reach a terminal, a log line, a
# syslog record or a page with any of these characters raw. Each group is a tuple of inclusive
# code point ranges; the regular expression classes below are built from them, and every
# consumer (clean() here, vault.util.log, vault.audit.forward, vault.audit.html) uses those
# classes, so tests/unit/util/test_text.py can check each one against every character here.

CONTROLS = ((0x00, 0x1F), (0x7F, 0x9F))
"""C0 controls, DEL and C1 controls: terminal escapes, line breaks, NUL."""

SEPARATORS = ((0x2028, 0x2029),)
"""The Unicode line and paragraph separators: line breaks to many readers."""

INVISIBLE = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, non-joiner, joiner; left-to-right, right-to-left marks
    (0x202A, 0x202E),  # bidirectional embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidirectional isolates, deprecated
    (0x3164, 0x3164),  # Hangul filler
    (0xD800, 0xDFFF),  # lone surrogates (JSON lets them through; they have no UTF-8 form)
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space (byte order mark)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFFB),  # unassigned specials, interlinear annotation
    (0xE0000, 0xE0FFF),  # tags and variation selectors supplement
)
"""Characters that show as nothing (or change how the text around them reads): "g", U+200B, "h"
can pass for "gh", a bidirectional override makes text read backwards."""

UNSAFE_TABLE = CONTROLS + SEPARATORS + INVISIBLE
"""Every character no output of vault may contain raw."""


def escape_char(ch: str) -> str:
    """One character as a Python-style escape: ``\\xHH``, ``\\uHHHH`` or ``\\UHHHHHHHH``."""
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def char_class(*ranges: tuple[int, int], keep: str = "") -> str:
    """A regular expression class (``[...]``, ASCII-only escapes) of the code points in
    ``ranges`` except the characters of ``keep``: ``char_class(*UNSAFE_TABLE)`` matches any
    unsafe character, ``char_class(*UNSAFE_TABLE, keep="\\t\\n")`` any but tab and newline
    (for text whose lines are kept, as tracebacks)."""
    kept = sorted(ord(ch) for ch in keep)
    parts = []
    for first, last in ranges:
        start = first
        for code in kept:
            if start <= code <= last:
                if start < code:
                    parts.append((start, code - 1))
                start = code + 1
        if start <= last:
            parts.append((start, last))
    esc = [(escape_char(chr(a)), escape_char(chr(b))) for a, b in parts]
    return "[" + "".join(a if a == b else f"{a}-{b}" for a, b in esc) + "]"


@functools.cache
def pattern(*ranges: tuple[int, int], keep: str = "") -> re.Pattern[str]:
    """:func:`char_class` compiled, once per set of arguments, on first use (`vault token`
    imports this module but never cleans text)."""
    return re.compile(char_class(*ranges, keep=keep))


def clean(text: object, limit: int = 512) -> str:
    """Text from outside (a server, a file) made safe to print: every character of
    :data:`UNSAFE_TABLE` removed (controls, terminal escapes, line separators, invisible and
    bidirectional characters), then cut to ``limit`` characters (the last one an ellipsis)."""
    s = pattern(*UNSAFE_TABLE).sub("", str(text))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def show_unsafe(text: str, *, keep: str = "") -> str:
    """``text`` with every character of :data:`UNSAFE_TABLE` but ``keep`` written as its
    :func:`escape_char` escape instead of removed: one printable line that still says what
    was there (a newline, a terminal escape)."""
    return pattern(*UNSAFE_TABLE, keep=keep).sub(lambda m: escape_char(m.group()), text)


def escape_unsafe(text: str) -> str:
    """``text`` with every character of :data:`UNSAFE_TABLE` written as a JSON ``\\uXXXX``
    escape (a surrogate pair beyond the BMP) instead of removed: for JSON shown on a terminal,
    where dropping a character would change the data and printing it would let it act."""

    def escaped(match: re.Match[str]) -> str:
        out = []
        for ch in match.group():
            code = ord(ch)
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        return "".join(out)

    return pattern(*UNSAFE_TABLE, keep="\n").sub(escaped, text)


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


# --- scopes ------------------------------------------------------------------------------

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). Bounded, whatever the source
# (argv, config, a policy, a provider's answer): checked before any pattern sees a scope.
_SCOPE_CHARS = frozenset(chr(c) for c in (0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)))
MAX_SCOPE_LENGTH = 256
MAX_SCOPES = 100


def scope_problem(scope: object) -> str | None:
    """Why ``scope`` is not one RFC 6749 scope-token within vault's bounds; None if it is."""
    if not isinstance(scope, str) or not scope:
        return "a scope must be a non-empty string"
    if len(scope) > MAX_SCOPE_LENGTH:
        return f"a scope is at most {MAX_SCOPE_LENGTH} characters"
    if not _SCOPE_CHARS.issuperset(scope):
        return "one scope-token (RFC 6749 §3.3) has no spaces, quotes, backslashes or controls"
    return None


def check_scopes(
    scopes: Iterable[object], what: str, error: Callable[[str], Exception]
) -> tuple[str, ...]:
    """``scopes`` as a tuple if every one is a single, bounded scope-token; else ``error``.

    Nothing of a refused scope is echoed beyond a bounded, cleaned prefix."""
    out: list[str] = []
    for scope in scopes:
        problem = scope_problem(scope)
        if problem:
            shown = clean(scope, 60) if isinstance(scope, str) else type(scope).__name__
            raise error(f"{what}: {shown!r} is refused: {problem}")
        assert isinstance(scope, str)
        out.append(scope)
        if len(out) > MAX_SCOPES:
            raise error(f"{what}: more than {MAX_SCOPES} scopes")
    return tuple(out)
