"""An optional syslog sink for audit events: RFC 5424 messages over a unix socket, UDP or TCP.

An organisation that already gathers its workstations' logs in a syslog system (rsyslog,
syslog-ng, journald, a SIEM) can receive every audit event there as well. Only the standard
library is used.

The message (:func:`format_rfc5424`)::

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [vault@32473 seq="7" name="gh" ...] BOM{...}

* MSGID is the event's ``event`` field (``issued``, ``used``, ``denied`` ...), or ``-``.
* The structured data element :data:`SD_ID` carries the event's scalar fields, for the receiver
  to index. Unsafe characters in a value are shown as ``\\n``, ``\\xHH``, ``\\uXXXX`` or
  ``\\UXXXXXXXX`` there,
  so the SD is a readable summary; the exact event is the MSG.
* MSG is the whole event as compact JSON after the UTF-8 BOM (RFC 5424 §6.4). JSON escaping keeps
  every unsafe character of :data:`vault.util.text.UNSAFE_TABLE` out of it (controls, DEL, C1,
  U+2028/U+2029, bidirectional and invisible characters, lone surrogates).

So nothing in an event can split a record or break the framing on any transport.

The transports (:class:`SyslogSink`):

* ``unix:PATH`` (``unix:/dev/log``): a datagram per message; if the socket turns out to be a
  stream socket, the message followed by a NUL byte, as glibc's ``syslog(3)`` does.
* ``udp:HOST:PORT``: a datagram per message (fire and forget: UDP cannot report loss).
* ``tcp:HOST:PORT``: octet-counting framing, ``LEN SP MSG`` (RFC 6587 §3.4.1).

**Connections.** Every :meth:`SyslogSink.send` opens its own socket, sends and closes it;
:meth:`SyslogSink.send_many` sends a batch over one connection. A vault process is short-lived
and writes a few events, so a kept-open connection would save little, and it can die unnoticed
while idle (a restarted collector), which makes the next event vanish into a dead socket. A
fresh connection per event fails loudly instead. Each call is bounded by the sink's timeout as a
whole (name resolution, connect and send together): it never blocks longer, and every failure
raises :class:`SyslogError`. Whether that is fatal is the caller's decision.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Literal, Self

from vault.util.text import UNSAFE_TABLE, escape_char, pattern

__all__ = [
    "DEFAULT_TIMEOUT",
    "FACILITY_AUTHPRIV",
    "SD_FIELDS",
    "SD_ID",
    "SEVERITY_NOTICE",
    "SEVERITY_WARNING",
    "SyslogError",
    "SyslogSink",
    "default_severity",
    "format_rfc5424",
    "frame_octet_counted",
    "parse_address",
]

SD_ID: Final = "vault@32473"
"""The SD-ID of the structured data element. 32473 is IANA's example enterprise number (RFC
5612); an organisation with its own Private Enterprise Number would put that here."""

SD_FIELDS: Final = (
    "seq",
    "name",
    "provider",
    "issuer",
    "outcome",
    "reason",
    "rule",
    "user",
    "host",
    "pid",
    "fingerprint",
    "scopes",
)
"""Event fields put first, in this order, into the SD element; other scalar fields follow
sorted by name. ``event`` is the MSGID and is not repeated."""

FACILITY_AUTHPRIV: Final = 10
SEVERITY_WARNING: Final = 4
SEVERITY_NOTICE: Final = 5
DEFAULT_TIMEOUT: Final = 3.0
DEFAULT_PORT: Final = 514

BOM: Final = b"\xef\xbb\xbf"
NILVALUE: Final = "-"

# RFC 5424 §6: header field lengths.
_MAX_HOSTNAME = 255
_MAX_APP_NAME = 48
_MAX_PROCID = 128
_MAX_MSGID = 32
_MAX_SD_NAME = 32

_WARNING_OUTCOMES = frozenset({"denied", "failure"})

# Characters that must not appear raw in the message: vault.util.text's unsafe characters (C0,
# DEL, C1, the Unicode line and paragraph separators, bidi and invisible characters, lone
# surrogates, which have no UTF-8 form). In an SD PARAM-VALUE they are shown as escapes, in the
# MSG as JSON escapes (json.dumps(ensure_ascii=False) escapes only C0 itself).
_UNSAFE = pattern(*UNSAFE_TABLE)
_SD_ESCAPE = re.compile(r'["\\\]]')
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

Transport = Literal["tcp", "udp", "unix"]
_PROTOCOLS: Final = ("tcp", "udp", "unix")


class SyslogError(Exception):
    """The event could not be handed to the syslog receiver (or the sink is misconfigured)."""


def default_severity(event: Mapping[str, object]) -> int:
    """Warning (4) when the event's ``outcome`` is ``denied`` or ``failure``, else notice (5)."""
    return SEVERITY_WARNING if event.get("outcome") in _WARNING_OUTCOMES else SEVERITY_NOTICE


def _printusascii(value: str, limit: int) -> str:
    """Keep only PRINTUSASCII (33..126), cut to ``limit``; ``-`` when nothing is left."""
    kept = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return kept or NILVALUE


def _msgid(event: Mapping[str, object]) -> str:
    value = event.get("event")
    if (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_MSGID
        and all(33 <= ord(ch) <= 126 for ch in value)
    ):
        return value
    return NILVALUE


def _timestamp(now: datetime) -> str:
    """RFC 3339 with microseconds and ``Z`` or ``+HH:MM`` (RFC 5424 §6.2.3)."""
    offset = now.utcoffset()
    if offset is None:
        raise ValueError("now must be an aware datetime (with a time zone)")
    if offset % timedelta(minutes=1):
        # RFC 5424 allows only whole minutes in TIME-NUMOFFSET.
        now, offset = now.astimezone(UTC), timedelta(0)
    stamp = (
        f"{now.year:04d}-{now.month:02d}-{now.day:02d}T"
        f"{now.hour:02d}:{now.minute:02d}:{now.second:02d}.{now.microsecond:06d}"
    )
    if not offset:
        return stamp + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{stamp}{sign}{hours:02d}:{mins:02d}"


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    return _SHORT_ESCAPES.get(ch) or escape_char(ch)


def _sd_value(value: object) -> str | None:
    """The text of a scalar field (scopes: words joined by spaces); None for anything else."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | str):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = repr(value)
    elif isinstance(value, list | tuple) and all(
        isinstance(item, str | int) and not isinstance(item, bool) for item in value
    ):
        text = " ".join(str(item) for item in value)
    else:
        return None
    text = _UNSAFE.sub(_escape_char, text)
    return _SD_ESCAPE.sub(lambda m: "\\" + m.group(), text)


def _sd_name(key: object) -> str:
    """A PARAM-NAME: PRINTUSASCII except ``=``, ``]``, ``"``; at most 32; "" if nothing is left."""
    return "".join(ch for ch in str(key) if 33 <= ord(ch) <= 126 and ch not in '=]"')[:_MAX_SD_NAME]


def _structured_data(event: Mapping[str, object]) -> str:
    order = [key for key in SD_FIELDS if key in event]
    order += sorted(
        (key for key in event if key not in SD_FIELDS and key != "event"),
        key=str,
    )
    params: list[str] = []
    seen: set[str] = set()
    for key in order:
        name = _sd_name(key)
        if not name or name in seen:
            continue
        text = _sd_value(event[key])
        if text is None:
            continue
        seen.add(name)
        params.append(f'{name}="{text}"')
    return "[" + " ".join([SD_ID, *params]) + "]"


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: JSON's escape is the UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _message_json(event: Mapping[str, object]) -> str:
    try:
        text = json.dumps(
            dict(event),
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
            default=str,
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"the event cannot be written as JSON: {exc}") from exc
    return _UNSAFE.sub(_json_escape, text)


def format_rfc5424(
    event: Mapping[str, object],
    *,
    app_name: str = "vault",
    hostname: str | None = None,
    procid: int | None = None,
    facility: int = FACILITY_AUTHPRIV,
    severity: int | None = None,
    now: datetime | None = None,
) -> bytes:
    """Return ``event`` as one RFC 5424 message (without transport framing).

    ``hostname`` defaults to :func:`socket.gethostname`, ``procid`` to this process's id, ``now``
    to the current time in UTC (an aware datetime is required), ``severity`` to
    :func:`default_severity`. Header fields keep only PRINTUSASCII and are cut to RFC 5424's
    lengths; one left empty becomes ``-``. Raises :class:`ValueError` for a facility outside
    0..23, a severity outside 0..7, a naive ``now``, or an event that is not JSON-serialisable.
    """
    if isinstance(facility, bool) or not 0 <= facility <= 23:
        raise ValueError(f"facility must be 0..23, not {facility!r}")
    if severity is None:
        severity = default_severity(event)
    if isinstance(severity, bool) or not 0 <= severity <= 7:
        raise ValueError(f"severity must be 0..7, not {severity!r}")
    stamp = _timestamp(datetime.now(UTC) if now is None else now)
    host = _printusascii(socket.gethostname() if hostname is None else hostname, _MAX_HOSTNAME)
    app = _printusascii(app_name, _MAX_APP_NAME)
    proc = _printusascii(str(os.getpid() if procid is None else procid), _MAX_PROCID)
    header = f"<{facility * 8 + severity}>1 {stamp} {host} {app} {proc} {_msgid(event)}"
    head = f"{header} {_structured_data(event)} ".encode()
    return head + BOM + _message_json(event).encode("utf-8")


def frame_octet_counted(message: bytes) -> bytes:
    """RFC 6587 §3.4.1 octet-counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)


def parse_address(address: str, protocol: str = "tcp") -> tuple[Transport, str | tuple[str, int]]:
    """Split ``unix:PATH``, ``udp:HOST:PORT``, ``tcp:HOST:PORT`` (``[v6]`` in brackets).

    Without a scheme, ``protocol`` names it; a bare absolute path is a unix socket. The port
    defaults to 514. Raises :class:`SyslogError` for anything else.
    """
    scheme, sep, rest = address.partition(":")
    if sep and scheme in _PROTOCOLS:
        kind, target = scheme, rest
    elif address.startswith("/"):
        kind, target = "unix", address
    elif protocol in _PROTOCOLS:
        kind, target = protocol, address
    else:
        raise SyslogError(f"unknown syslog protocol {protocol!r} (tcp, udp or unix)")
    if kind == "unix":
        if not target or "\0" in target:
            raise SyslogError(f"syslog address {address!r}: no socket path")
        return "unix", target
    if target.startswith("["):
        host, bracket, tail = target[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise SyslogError(f"syslog address {address!r}: bad [IPv6] host")
        port_text = tail[1:] if tail else ""
    elif target.count(":") > 1:
        raise SyslogError(f"syslog address {address!r}: put an IPv6 address in brackets")
    else:
        host, _, port_text = target.partition(":")
    if not host or any(ch.isspace() or not ch.isprintable() or ch in "/[]@" for ch in host):
        raise SyslogError(f"syslog address {address!r}: no valid host")
    if not port_text:
        port = DEFAULT_PORT
    elif port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise SyslogError(f"syslog address {address!r}: bad port {port_text!r}")
    return ("tcp" if kind == "tcp" else "udp"), (host, port)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return type(exc).__name__


_AddrInfo = tuple[int, int, int, Any]
"""(family, type, proto, sockaddr) from getaddrinfo."""


def _getaddrinfo(host: str, port: int, socktype: int, flags: int = 0) -> list[_AddrInfo]:
    infos = socket.getaddrinfo(host, port, type=socktype, flags=flags)
    return [(family, kind, proto, addr) for family, kind, proto, _, addr in infos]


def _resolve_name(host: str, port: int, socktype: int, deadline: _Deadline) -> list[_AddrInfo]:
    """getaddrinfo in a daemon thread, so a hanging resolver cannot outlast the timeout."""
    found: list[list[_AddrInfo]] = []
    failed: list[OSError] = []

    def work() -> None:
        try:
            found.append(_getaddrinfo(host, port, socktype))
        except OSError as exc:
            failed.append(exc)

    thread = threading.Thread(target=work, name="vault-syslog-resolve", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if failed:
        raise failed[0]
    if not found:
        raise TimeoutError
    return found[0]


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left


class SyslogSink:
    """Sends audit events to one syslog receiver; see the module docstring for the choices.

    Safe to share between threads: nothing but the detected unix socket type is kept.
    """

    def __init__(
        self,
        protocol: Transport,
        target: str | tuple[str, int],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        app_name: str = "vault",
        hostname: str | None = None,
        facility: int = FACILITY_AUTHPRIV,
    ) -> None:
        """Use :meth:`from_config` to build one from an address string.

        ``target`` is the socket path for ``unix`` and ``(host, port)`` for ``udp``/``tcp``.
        ``timeout`` (seconds, > 0) bounds each :meth:`send` / :meth:`send_many` as a whole.
        """
        if protocol not in _PROTOCOLS:
            raise SyslogError(f"unknown syslog protocol {protocol!r} (tcp, udp or unix)")
        if (protocol == "unix") != isinstance(target, str):
            wanted = "a socket path" if protocol == "unix" else "(host, port)"
            raise SyslogError(f"a {protocol} syslog target must be {wanted}")
        if isinstance(timeout, bool) or not (math.isfinite(timeout) and timeout > 0):
            raise SyslogError(
                f"syslog timeout must be a positive number of seconds, not {timeout!r}"
            )
        if isinstance(facility, bool) or not 0 <= facility <= 23:
            raise SyslogError(f"syslog facility must be 0..23, not {facility!r}")
        self.protocol: Transport = protocol
        self.target = target
        self.timeout = float(timeout)
        self.app_name = app_name
        self.hostname = socket.gethostname() if hostname is None else hostname
        self.facility = facility
        self._unix_type = socket.SOCK_DGRAM
        self._closed = False

    @classmethod
    def from_config(
        cls,
        address: str,
        protocol: str = "tcp",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        app_name: str = "vault",
        hostname: str | None = None,
        facility: int = FACILITY_AUTHPRIV,
    ) -> Self:
        """Build a sink from ``unix:/dev/log``, ``udp:HOST:PORT`` or ``tcp:HOST:PORT``.

        ``protocol`` applies only to an address without a scheme (see :func:`parse_address`).
        """
        kind, target = parse_address(address, protocol)
        return cls(
            kind,
            target,
            timeout=timeout,
            app_name=app_name,
            hostname=hostname,
            facility=facility,
        )

    @property
    def address(self) -> str:
        """The receiver as an address string, as :meth:`from_config` takes it."""
        if isinstance(self.target, str):
            return f"unix:{self.target}"
        host, port = self.target
        return f"{self.protocol}:{f'[{host}]' if ':' in host else host}:{port}"

    def format(self, event: Mapping[str, object]) -> bytes:
        """The RFC 5424 message :meth:`send` would send for ``event`` now."""
        return format_rfc5424(
            event,
            app_name=self.app_name,
            hostname=self.hostname,
            procid=os.getpid(),
            facility=self.facility,
        )

    def send(self, event: Mapping[str, object]) -> None:
        """Send one event; raise :class:`SyslogError` on any failure, within the timeout."""
        self.send_many((event,))

    def send_many(self, events: Iterable[Mapping[str, object]]) -> None:
        """Send events in order over one connection (TCP) or socket; one timeout for all."""
        if self._closed:
            raise SyslogError("the syslog sink is closed")
        try:
            messages = [self.format(event) for event in events]
        except ValueError as exc:
            raise SyslogError(f"cannot format the event for syslog: {exc}") from exc
        if not messages:
            return
        deadline = _Deadline(self.timeout)
        try:
            if self.protocol == "tcp":
                self._send_tcp(messages, deadline)
            elif self.protocol == "udp":
                self._send_udp(messages, deadline)
            else:
                self._send_unix(messages, deadline)
        except TimeoutError as exc:
            raise SyslogError(f"syslog {self.address}: timed out after {self.timeout:g} s") from exc
        except OSError as exc:
            raise SyslogError(f"syslog {self.address}: {_reason(exc)}") from exc

    def close(self) -> None:
        """Refuse further sends. No connection is kept between sends, so nothing else to do."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyslogSink({self.address!r}, timeout={self.timeout:g})"

    # -- transports ---------------------------------------------------------------------------

    def _resolve(self, socktype: int, deadline: _Deadline) -> list[_AddrInfo]:
        """getaddrinfo for the target; a name is resolved within the deadline."""
        assert isinstance(self.target, tuple)
        host, port = self.target
        try:
            infos = _getaddrinfo(host, port, socktype, socket.AI_NUMERICHOST)
        except socket.gaierror:
            infos = _resolve_name(host, port, socktype, deadline)
        if not infos:
            raise SyslogError(f"syslog {self.address}: the host has no address")
        return infos

    def _send_tcp(self, messages: list[bytes], deadline: _Deadline) -> None:
        payload = b"".join(frame_octet_counted(message) for message in messages)
        last: OSError | None = None
        for family, kind, proto, addr in self._resolve(socket.SOCK_STREAM, deadline):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(deadline.remaining())
                sock.connect(addr)
            except OSError as exc:
                sock.close()
                if isinstance(exc, TimeoutError):
                    raise
                last = exc
                continue
            with sock:
                sock.settimeout(deadline.remaining())
                sock.sendall(payload)
            return
        assert last is not None
        raise last

    def _send_udp(self, messages: list[bytes], deadline: _Deadline) -> None:
        family, kind, proto, addr = self._resolve(socket.SOCK_DGRAM, deadline)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(deadline.remaining())
            sock.connect(addr)
            for message in messages:
                sock.settimeout(deadline.remaining())
                sock.send(message)

    def _send_unix(self, messages: list[bytes], deadline: _Deadline) -> None:
        assert isinstance(self.target, str)
        if self._unix_type == socket.SOCK_DGRAM:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.settimeout(deadline.remaining())
                sock.connect(self.target)
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EPROTOTYPE:
                    raise
                # A stream socket (syslog-ng's unix-stream, for one): as glibc does.
                self._unix_type = socket.SOCK_STREAM
            else:
                with sock:
                    for message in messages:
                        sock.settimeout(deadline.remaining())
                        sock.send(message)
                return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(deadline.remaining())
            sock.connect(self.target)
            sock.settimeout(deadline.remaining())
            sock.sendall(b"".join(message + b"\0" for message in messages))
