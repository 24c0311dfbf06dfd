"""Messages for the local log receivers: the BSD syslog line of ``/dev/log`` and journald's
native protocol.

**/dev/log** (:func:`format_local`): what glibc's ``syslog(3)`` sends, and so what every local
receiver parses in its default configuration (rsyslog's imuxsock with its default special
parser, syslog-ng's ``unix-dgram``/``system()`` source, journald's ``/dev/log``)::

    <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG

The RFC 3164 line as a local client writes it: there is no HOSTNAME field, because a local
receiver takes the host from itself, and rsyslog's default imuxsock parser reads the word after
the time as the TAG (a HOSTNAME there becomes the program name). The time is local, the day
padded with a space (``Dec  1``), the month in English whatever the locale. TAG keeps only
PRINTUSASCII without ``[``, ``]`` and ``:`` (at most 32 characters; ``vault`` when nothing is
left). MSG is one line of printable ASCII (the callers give JSON with every other character
escaped).

**journald** (:func:`format_journal`): the native protocol of
``/run/systemd/journal/socket`` (systemd's ``sd_journal_send``): one datagram of fields, each
``NAME=value\\n``, or, for a value holding a newline, ``NAME\\n``, its length as a 64-bit
little-endian integer, the value and ``\\n``. Field names are made of ``A-Z``, ``0-9`` and
``_``, start with a letter and are at most 64 characters (journald drops others).
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterable
from typing import Final

__all__ = ["JOURNAL_SOCKET", "format_journal", "format_local", "journal_field_name"]

JOURNAL_SOCKET: Final = "/run/systemd/journal/socket"
"""journald's native socket; ``unix:`` this path speaks :func:`format_journal`."""

_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip
_MAX_TAG = 32
_MAX_FIELD_NAME = 64
_NOT_FIELD_CHAR = re.compile(r"[^A-Z0-9_]")


def _tag(app_name: str) -> str:
    kept = "".join(ch for ch in app_name if 33 <= ord(ch) <= 126 and ch not in "[]:")
    return kept[:_MAX_TAG] or "vault"


def format_local(
    message: bytes,
    *,
    priority: int,
    app_name: str = "vault",
    pid: int,
    now: float | None = None,
) -> bytes:
    """``<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`` in this machine's local time (``now``: UNIX
    seconds, default the current time). ``message`` must be one line: ValueError otherwise."""
    if b"\n" in message or b"\0" in message:
        raise ValueError("a local syslog message must be one line without NUL")
    if isinstance(priority, bool) or not 0 <= priority <= 191:
        raise ValueError(f"priority must be 0..191, not {priority!r}")
    local = time.localtime(time.time() if now is None else now)
    stamp = (
        f"{_MONTHS[local.tm_mon - 1]} {local.tm_mday:2d} "
        f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d}"
    )
    return f"<{priority}>{stamp} {_tag(app_name)}[{pid}]: ".encode() + message


def journal_field_name(name: str) -> str | None:
    """``name`` as a journal field name (upper case, other characters as ``_``), or None when
    nothing usable is left."""
    upper = _NOT_FIELD_CHAR.sub("_", name.upper()).lstrip("_0123456789")
    return upper[:_MAX_FIELD_NAME] or None


def format_journal(fields: Iterable[tuple[str, str | bytes]]) -> bytes:
    """One native-protocol datagram of ``fields`` (name, value) in order. A name that is not
    a valid field name raises ValueError (use :func:`journal_field_name`)."""
    out = bytearray()
    for name, value in fields:
        if journal_field_name(name) != name:
            raise ValueError(f"{name!r} is not a journal field name")
        data = value.encode("utf-8", "replace") if isinstance(value, str) else value
        if b"\n" in data:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)
