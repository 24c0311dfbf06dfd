"""``vault://NAME`` references, and the two formats that carry them: env files (`vault exec
--env-file`) and templates (`vault inject`). Parsing only: nothing here opens the vault.

A reference is ``vault://NAME`` (the access token) or ``vault://NAME#access_token`` (the same)
or ``vault://NAME#id_token`` (the OpenID Connect ID token), NAME a token name as
:func:`vault.util.text.check_name` accepts it. The scheme is lower case; nothing may follow.

Env file, one assignment a line (``\\n`` ends a line; one ``\\r`` before it is dropped, and so
is a UTF-8 byte order mark at the very start of the file)::

    # a comment: a line whose first non-blank character is '#'
    PLAIN=some value
    export PGPASSWORD=vault://db
    QUOTED="a \\"b\\"\\n"
    SINGLE='taken as written'  # a comment may follow a quoted value

An unquoted value is the rest of the line, trailing blanks dropped, taken as written. Inside
double quotes the escapes are ``\\\\ \\" \\n \\r \\t``, nothing else; inside single quotes there are
none. KEY is ``[A-Za-z_][A-Za-z0-9_]*`` written directly before ``=`` (an optional ``export``
and blanks before it). A quoted value ends at its closing quote on the same line; after it only
blanks, or blanks and a ``#`` comment. There is no variable expansion: ``$`` is a character like
any other. Refused, each a UsageError naming FILE:LINE (and KEY, in parentheses: never written
``KEY: ...``, which the redaction of error messages would take for a secret) and never quoting
a value: a NUL or a lone ``\\r`` anywhere, text that is not UTF-8, a line that is not blank, a
comment or ``KEY=VALUE``; a blank right after ``=`` (quote a value that starts with one); ``#``
after a blank in an unquoted value (an inline comment or not? quote it); an unterminated quote
or an unknown escape; a KEY set twice in one file; and ``vault://`` (in any case) anywhere in a
value that is not, as a whole, one valid reference (quoted or not: the quotes are not part of
the value).

Template: every ``{{ vault://REF }}`` (blanks optional inside the braces) is a placeholder; any
``{{`` followed by blanks and ``vault://`` (in any case) that is not one is an error naming its
line. Every other byte, ``{{ other }}`` included, is kept as it is: templates are bytes, not
text, and need not be UTF-8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vault.errors import UsageError
from vault.util.text import check_name

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Mapping

SCHEME = "vault://"
ACCESS_TOKEN = "access_token"
ID_TOKEN = "id_token"
FIELDS = (ACCESS_TOKEN, ID_TOKEN)

MAX_ENV_FILE = 1 << 20  # bytes: an env file is read whole, up to this
MAX_TEMPLATE = 1 << 20  # bytes: a template likewise
MAX_OUTPUT = 8 << 20  # bytes: what a filled template may grow to

ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RefError(ValueError):
    """Why a text is not a reference; the message never quotes the text."""


@dataclass(frozen=True)
class Ref:
    """One token field named by a reference."""

    name: str
    field: str = ACCESS_TOKEN

    def __str__(self) -> str:
        return SCHEME + self.name + ("" if self.field == ACCESS_TOKEN else f"#{self.field}")


def parse_ref(text: str) -> Ref:
    """The reference ``text`` is, as a whole; RefError (saying why, not quoting it) otherwise."""
    if not text.startswith(SCHEME):
        if text[: len(SCHEME)].lower() == SCHEME:
            raise RefError("the scheme is written in lower case: vault://")
        raise RefError("not a vault:// reference")
    name, hashed, field = text[len(SCHEME) :].partition("#")
    try:
        check_name(name)
    except UsageError:
        raise RefError(
            "not a valid token name after vault:// (1-128 letters, digits and . _ @ + -, "
            "starting with a letter or digit)"
        ) from None
    if hashed and field not in FIELDS:
        raise RefError("after '#' comes access_token or id_token")
    return Ref(name, field if hashed else ACCESS_TOKEN)


def _has_scheme(text: str) -> bool:
    return SCHEME in text.lower()


# --- env files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvEntry:
    """One ``KEY=VALUE`` line: ``ref`` when the value is a reference (``value`` is then "")."""

    key: str
    value: str
    ref: Ref | None
    line: int


_BLANKS = " \t"
_EXPORT = re.compile(r"export[ \t]+")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


def parse_env_file(data: bytes, source: str) -> list[EnvEntry]:
    """The assignments of an env file (the grammar in the module docstring), in file order.
    ``source`` names the file in errors (FILE:LINE)."""
    if len(data) > MAX_ENV_FILE:
        raise UsageError(f"{source}: over the {MAX_ENV_FILE // 1024} KiB limit for an env file")
    if data.startswith(b"\xef\xbb\xbf"):  # the byte order mark some editors write
        data = data[3:]
    entries: list[EnvEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        where = f"{source}:{number}"
        entry = _env_line(raw, where, number)
        if entry is None:
            continue
        if entry.key in seen:
            raise UsageError(f"{where}: {entry.key} is already set on line {seen[entry.key]}")
        seen[entry.key] = number
        entries.append(entry)
    return entries


def _env_line(raw: bytes, where: str, number: int) -> EnvEntry | None:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if b"\0" in raw:
        raise UsageError(f"{where}: a NUL byte (an environment value cannot hold one)")
    if b"\r" in raw:
        raise UsageError(f"{where}: a carriage return inside the line")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 (column {exc.start + 1})") from None
    text = line.lstrip(_BLANKS)
    if not text or text.startswith("#"):
        return None
    export = _EXPORT.match(text)  # "export=1" sets a variable named export
    if export:
        text = text[export.end() :]
    key, eq, rest = text.partition("=")
    if not eq or not ENV_KEY.fullmatch(key):
        raise UsageError(
            f"{where}: expected KEY=VALUE (KEY: letters, digits and _, not starting with a digit,"
            " directly before '=')"
        )
    value = _env_value(rest, f"{where} ({key})")
    if not _has_scheme(value):
        return EnvEntry(key, value, None, number)
    try:
        ref = parse_ref(value)
    except RefError as exc:
        if value[: len(SCHEME)].lower() == SCHEME:
            raise UsageError(f"{where} ({key}): {exc}") from None
        raise UsageError(
            f"{where} ({key}): vault:// must be the whole value (one reference), not part of it"
        ) from None
    return EnvEntry(key, "", ref, number)


def _env_value(rest: str, where: str) -> str:
    """The value after ``=``, unquoted."""
    if not rest:
        return ""
    first = rest[0]
    if first in _BLANKS:
        raise UsageError(f"{where}: a blank after '=': quote a value that starts with one")
    if first == "'":
        end = rest.find("'", 1)
        if end < 0:
            raise UsageError(f"{where}: the single quote is not closed on this line")
        _after_quote(rest[end + 1 :], where)
        return rest[1:end]
    if first == '"':
        out: list[str] = []
        i = 1
        while i < len(rest):
            ch = rest[i]
            if ch == '"':
                _after_quote(rest[i + 1 :], where)
                return "".join(out)
            if ch == "\\":
                nxt = rest[i + 1 : i + 2]
                if nxt not in _ESCAPES:
                    raise UsageError(
                        f"{where}: an unknown escape at column {i + 1} of the value "
                        '(inside double quotes: \\\\ \\" \\n \\r \\t)'
                    )
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            out.append(ch)
            i += 1
        raise UsageError(f"{where}: the double quote is not closed on this line")
    value = rest.rstrip(_BLANKS)
    if re.search(r"[ \t]#", value):
        raise UsageError(
            f"{where}: '#' after a blank in an unquoted value: quote the value "
            "(a comment goes on a line of its own, or after a quoted value)"
        )
    return value


def _after_quote(tail: str, where: str) -> None:
    stripped = tail.lstrip(_BLANKS)
    if stripped and not (stripped.startswith("#") and stripped != tail):
        raise UsageError(f"{where}: text after the closing quote")


# --- templates --------------------------------------------------------------------------------

_OPENING = re.compile(rb"\{\{[ \t]*vault://", re.IGNORECASE)
_PLACEHOLDER = re.compile(rb"\{\{[ \t]*([^ \t{}\r\n]*)[ \t]*\}\}")


@dataclass(frozen=True)
class Placeholder:
    ref: Ref
    line: int


Segment = bytes | Placeholder


def parse_template(data: bytes, source: str) -> list[Segment]:
    """The template as literal bytes and placeholders, in order (joining the bytes of the
    literal segments gives back every byte that is not a placeholder). ``source`` names it in
    errors (SOURCE:LINE)."""
    if len(data) > MAX_TEMPLATE:
        raise UsageError(f"{source}: over the {MAX_TEMPLATE // 1024} KiB limit for a template")
    segments: list[Segment] = []
    done = 0
    for opening in _OPENING.finditer(data):
        start = opening.start()
        if start < done:
            continue
        line = data.count(b"\n", 0, start) + 1
        where = f"{source}:{line}"
        match = _PLACEHOLDER.match(data, start)
        if match is None:
            raise UsageError(
                f"{where}: a {{{{ vault:// placeholder not closed by }}}} on the same line, "
                "or with a blank or brace inside the reference"
            )
        try:
            ref = parse_ref(match.group(1).decode("ascii"))
        except (UnicodeDecodeError, RefError) as exc:
            why = exc if isinstance(exc, RefError) else "not a valid token name after vault://"
            raise UsageError(f"{where}: {why}") from None
        if start > done:
            segments.append(data[done:start])
        segments.append(Placeholder(ref, line))
        done = match.end()
    if done < len(data):
        segments.append(data[done:])
    return segments


def render_template(segments: list[Segment], values: Mapping[Ref, bytes], source: str) -> bytes:
    """The template with every placeholder replaced by ``values[ref]``, as it is (no quoting
    for the output's format); UsageError past MAX_OUTPUT bytes."""
    out = bytearray()
    for segment in segments:
        out += values[segment.ref] if isinstance(segment, Placeholder) else segment
        if len(out) > MAX_OUTPUT:
            raise UsageError(
                f"{source}: the filled template would be over the {MAX_OUTPUT >> 20} MiB limit"
            )
    return bytes(out)
