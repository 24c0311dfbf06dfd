"""An optional syslog sink for audit events: RFC 5424 over TLS, TCP or UDP, the local syslog
line over a unix socket, or journald's native protocol.

An organisation that already gathers its workstations' logs in a syslog system (rsyslog,
syslog-ng, journald, a SIEM) can receive every audit event there as well. Only the standard
library is used (and ``cryptography`` for a pinned TLS key).

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

**Formats** (``audit.format``, :data:`MESSAGE_FORMATS`): ``rfc5424`` (the default) is the above.
``ocsf`` and ``ecs`` put the event's OCSF or ECS document (:mod:`vault.audit.formats`) in the
MSG instead, as JSON in printable ASCII (every other character escaped) and so without a BOM
(RFC 5424's MSG-ANY), for a receiver to parse as JSON as it stands; the STRUCTURED-DATA is then
``-`` (the document carries every field).

So nothing in an event can split a record or break the framing on any transport.

The transports (:class:`SyslogSink`):

* ``tls:HOST:PORT`` (default port 6514): RFC 5425, octet-counting framing over TLS 1.2+; the
  server's certificate checked against ``audit.tls_ca`` (or the system's CAs) and HOST, and
  its key against ``audit.tls_pin`` when set (:mod:`vault.audit.tls`).
* ``tcp:HOST:PORT``: octet-counting framing, ``LEN SP MSG`` (RFC 6587 §3.4.1).
* ``udp:HOST:PORT``: a datagram per message (fire and forget: UDP cannot report loss).
* ``unix:PATH`` (``unix:/dev/log``): the line a local client sends
  (:func:`vault.audit.local.format_local`, ``<PRI>Mmm dd hh:mm:ss vault[PID]: MSG``, the MSG
  being the JSON of the chosen format), which local receivers parse in their default
  configuration; a datagram per message, or, if the socket turns out to be a stream socket,
  the message followed by a NUL byte, as glibc's ``syslog(3)`` does.
* ``journal`` or ``journal:PATH`` (and ``unix:/run/systemd/journal/socket``): journald's native
  protocol (:func:`vault.audit.local.format_journal`): MESSAGE (the JSON of the chosen format),
  PRIORITY, SYSLOG_FACILITY, SYSLOG_IDENTIFIER, SYSLOG_PID and a ``VAULT_<FIELD>`` field per
  scalar field of the event (as in the SD element).

A name is resolved with getaddrinfo and every address it gives (IPv6 and IPv4) is tried in
order until one takes the message: for TCP and TLS until one accepts the connection, each
address getting an equal share of what is left of the timeout; for UDP until one is not
refused at once (a failed connect, or an ICMP error that arrives before the first send returns,
as it does on this machine; beyond that UDP cannot tell).

**Connections.** Every :meth:`SyslogSink.send` opens its own socket, sends and closes it;
:meth:`SyslogSink.send_many` sends a batch over one connection. A vault process is short-lived
and writes a few events, so a kept-open connection would save little, and it can die unnoticed
while idle (a restarted collector), which makes the next event vanish into a dead socket. A
fresh connection per event fails loudly instead. Each call is bounded by the sink's timeout as a
whole (name resolution, connect, TLS handshake and send together): it never blocks longer, and
every failure raises :class:`SyslogError`. Whether that is fatal is the caller's decision.
"""

from __future__ import annotations

import contextlib
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
from typing import TYPE_CHECKING, Any, Final, Literal, Self

from vault.audit.local import JOURNAL_SOCKET, format_journal, format_local, journal_field_name
from vault.util.text import UNSAFE_TABLE, escape_char, pattern

if TYPE_CHECKING:
    import ssl

    from vault.policy.config import Config

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TLS_PORT",
    "FACILITY_AUTHPRIV",
    "MESSAGE_FORMATS",
    "SD_FIELDS",
    "SD_ID",
    "SEVERITY_NOTICE",
    "SEVERITY_WARNING",
    "SyslogError",
    "SyslogSink",
    "ascii_json",
    "default_severity",
    "format_rfc5424",
    "frame_octet_counted",
    "parse_address",
    "sink_for",
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
DEFAULT_TLS_PORT: Final = 6514

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

Transport = Literal["tcp", "udp", "unix", "tls", "journal"]
_PROTOCOLS: Final = ("tcp", "udp", "unix", "tls", "journal")
_PATH_PROTOCOLS: Final = ("unix", "journal")
_KNOWN: Final = "tls, tcp, udp, unix or journal"

MessageFormat = Literal["rfc5424", "ocsf", "ecs"]
MESSAGE_FORMATS: Final = ("rfc5424", "ocsf", "ecs")
"""The values of ``audit.format``: what the MSG of a forwarded event holds."""

_MAX_JOURNAL_FIELDS = 64
_CLOSE_WAIT = 0.5
"""Seconds at most to wait for the TLS server's close_notify once the data is sent."""


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
    """:func:`_field_text` with ``"``, ``\\`` and ``]`` escaped for an SD PARAM-VALUE."""
    text = _field_text(value)
    return None if text is None else _SD_ESCAPE.sub(lambda m: "\\" + m.group(), text)


def _field_text(value: object) -> str | None:
    """The text of a scalar field (scopes: words joined by spaces), unsafe characters shown as
    escapes; None for anything else."""
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
    return _UNSAFE.sub(_escape_char, text)


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
    body: bytes | None = None,
) -> bytes:
    """Return ``event`` as one RFC 5424 message (without transport framing).

    ``body``, when given, is the MSG as it is (printable ASCII JSON: no BOM) and the
    STRUCTURED-DATA is ``-``; by default they are the SD element and BOM + the event's JSON.

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
    if body is not None:
        return f"{header} {NILVALUE} ".encode() + body
    head = f"{header} {_structured_data(event)} ".encode()
    return head + BOM + _message_json(event).encode("utf-8")


def ascii_json(doc: Mapping[str, object]) -> bytes:
    """Compact JSON in printable ASCII: every other character escaped (DEL too, which
    ``ensure_ascii`` leaves). Raises ValueError for what JSON cannot hold."""
    try:
        text = json.dumps(
            dict(doc), ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"the event cannot be written as JSON: {exc}") from exc
    return text.replace("\x7f", "\\u007f").encode("ascii")


def frame_octet_counted(message: bytes) -> bytes:
    """RFC 6587 §3.4.1 octet-counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)


def parse_address(address: str, protocol: str = "tcp") -> tuple[Transport, str | tuple[str, int]]:
    """Split ``tls:HOST:PORT``, ``tcp:HOST:PORT``, ``udp:HOST:PORT`` (``[v6]`` in brackets),
    ``unix:PATH``, ``journal`` or ``journal:PATH``.

    Without a scheme, ``protocol`` names it; a bare absolute path is a unix socket. The port
    defaults to 514 (6514 for tls); ``journal`` to :data:`JOURNAL_SOCKET`, and
    ``unix:`` that path means ``journal`` too. Raises :class:`SyslogError` for anything else.
    """
    scheme, sep, rest = address.partition(":")
    if scheme == "journal" and not sep:
        return "journal", JOURNAL_SOCKET
    if sep and scheme in _PROTOCOLS:
        kind, target = scheme, rest
    elif address.startswith("/"):
        kind, target = "unix", address
    elif protocol in _PROTOCOLS:
        kind, target = protocol, address
    else:
        raise SyslogError(f"unknown syslog protocol {protocol!r} ({_KNOWN})")
    if kind in _PATH_PROTOCOLS:
        if kind == "journal" and not target:
            target = JOURNAL_SOCKET
        if not target or "\0" in target:
            raise SyslogError(f"syslog address {address!r}: no socket path")
        if kind == "journal" or target == JOURNAL_SOCKET:
            return "journal", target
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
        port = DEFAULT_TLS_PORT if kind == "tls" else DEFAULT_PORT
    elif port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise SyslogError(f"syslog address {address!r}: bad port {port_text!r}")
    return ("tls" if kind == "tls" else "tcp" if kind == "tcp" else "udp"), (host, port)


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

    Safe to share between threads: nothing but the detected unix socket type and the TLS
    context is kept.
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
        message_format: str = "rfc5424",
        tls_ca: str | None = None,
        tls_pin: str | None = None,
    ) -> None:
        """Use :meth:`from_config` to build one from an address string.

        ``target`` is the socket path for ``unix`` and ``journal``, ``(host, port)`` for the
        others. ``timeout`` (seconds, > 0) bounds each :meth:`send` / :meth:`send_many` as a
        whole. ``message_format`` is one of :data:`MESSAGE_FORMATS`; ``tls_ca`` (a PEM file)
        and ``tls_pin`` (``sha256:<64 hex>``) apply to ``tls`` only.
        """
        if protocol not in _PROTOCOLS:
            raise SyslogError(f"unknown syslog protocol {protocol!r} ({_KNOWN})")
        if (protocol in _PATH_PROTOCOLS) != isinstance(target, str):
            wanted = "a socket path" if protocol in _PATH_PROTOCOLS else "(host, port)"
            raise SyslogError(f"a {protocol} syslog target must be {wanted}")
        if isinstance(timeout, bool) or not (math.isfinite(timeout) and timeout > 0):
            raise SyslogError(
                f"syslog timeout must be a positive number of seconds, not {timeout!r}"
            )
        if isinstance(facility, bool) or not 0 <= facility <= 23:
            raise SyslogError(f"syslog facility must be 0..23, not {facility!r}")
        if message_format not in MESSAGE_FORMATS:
            raise SyslogError(
                f"unknown syslog format {message_format!r} ({', '.join(MESSAGE_FORMATS)})"
            )
        if protocol != "tls" and (tls_ca is not None or tls_pin is not None):
            raise SyslogError("tls_ca and tls_pin apply only to a tls: syslog address")
        self._pin: bytes | None = None
        if tls_pin is not None:
            from vault.audit.tls import TlsSettingsError, parse_pin

            try:
                self._pin = parse_pin(tls_pin)
            except TlsSettingsError as exc:
                raise SyslogError(str(exc)) from None
        self.protocol: Transport = protocol
        self.target = target
        self.timeout = float(timeout)
        self.app_name = app_name
        self.hostname = socket.gethostname() if hostname is None else hostname
        self.facility = facility
        self.message_format = message_format
        self.tls_ca = tls_ca
        self._context: ssl.SSLContext | None = None
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
        message_format: str = "rfc5424",
        tls_ca: str | None = None,
        tls_pin: str | None = None,
    ) -> Self:
        """Build a sink from an address (``tls:HOST:PORT``, ``tcp:HOST:PORT``,
        ``udp:HOST:PORT``, ``unix:/dev/log``, ``journal``).

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
            message_format=message_format,
            tls_ca=tls_ca,
            tls_pin=tls_pin,
        )

    @property
    def address(self) -> str:
        """The receiver as an address string, as :meth:`from_config` takes it."""
        if isinstance(self.target, str):
            return f"{self.protocol}:{self.target}"
        host, port = self.target
        return f"{self.protocol}:{f'[{host}]' if ':' in host else host}:{port}"

    def body(self, event: Mapping[str, object]) -> bytes:
        """The event as the JSON of this sink's format, in printable ASCII (the MSG of the
        local line and of journald's MESSAGE; of RFC 5424 for ``ocsf`` and ``ecs``)."""
        if self.message_format == "ocsf":
            from vault.audit.formats import to_ocsf

            return ascii_json(to_ocsf(dict(event)))
        if self.message_format == "ecs":
            from vault.audit.formats import to_ecs

            return ascii_json(to_ecs(dict(event)))
        return ascii_json(event)

    def format(self, event: Mapping[str, object]) -> bytes:
        """The message :meth:`send` would send for ``event`` now (before transport framing):
        RFC 5424 for tls, tcp and udp, the local line for unix, a journal datagram for
        journal. Raises ValueError for an event JSON cannot hold."""
        pid = os.getpid()
        if self.protocol == "unix":
            priority = self.facility * 8 + default_severity(event)
            return format_local(
                self.body(event), priority=priority, app_name=self.app_name, pid=pid
            )
        if self.protocol == "journal":
            return format_journal(self._journal_fields(event, pid))
        return format_rfc5424(
            event,
            app_name=self.app_name,
            hostname=self.hostname,
            procid=pid,
            facility=self.facility,
            body=None if self.message_format == "rfc5424" else self.body(event),
        )

    def _journal_fields(
        self, event: Mapping[str, object], pid: int
    ) -> list[tuple[str, str | bytes]]:
        fields: list[tuple[str, str | bytes]] = [
            ("MESSAGE", self.body(event)),
            ("PRIORITY", str(default_severity(event))),
            ("SYSLOG_FACILITY", str(self.facility)),
            ("SYSLOG_IDENTIFIER", _printusascii(self.app_name, _MAX_APP_NAME)),
            ("SYSLOG_PID", str(pid)),
        ]
        seen = {name for name, _ in fields}
        order = [key for key in ("event", *SD_FIELDS) if key in event]
        order += sorted((key for key in event if key not in order), key=str)
        for key in order:
            if len(fields) >= _MAX_JOURNAL_FIELDS:
                break
            name = journal_field_name(f"VAULT_{key}")
            text = _field_text(event[key])
            if name is None or name in seen or text is None:
                continue
            seen.add(name)
            fields.append((name, text))
        return fields

    def send(self, event: Mapping[str, object]) -> None:
        """Send one event; raise :class:`SyslogError` on any failure, within the timeout."""
        self.send_many((event,))

    def send_many(self, events: Iterable[Mapping[str, object]]) -> None:
        """Send events in order over one connection (TCP, TLS) or socket; one timeout for all."""
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
            elif self.protocol == "tls":
                self._send_tls(messages, deadline)
            elif self.protocol == "udp":
                self._send_udp(messages, deadline)
            elif self.protocol == "journal":
                self._send_journal(messages, deadline)
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

    def _connect(self, deadline: _Deadline) -> socket.socket:
        """A TCP connection to the first address that accepts one, each address given an
        equal share of the time left; the last address's error when none does."""
        infos = self._resolve(socket.SOCK_STREAM, deadline)
        last: OSError | None = None
        for index, (family, kind, proto, addr) in enumerate(infos):
            share = deadline.remaining() / (len(infos) - index)
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as exc:  # no IPv6 on this machine, for one
                last = exc
                continue
            try:
                sock.settimeout(share)
                sock.connect(addr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return sock
        assert last is not None
        raise last

    def _send_tcp(self, messages: list[bytes], deadline: _Deadline) -> None:
        payload = b"".join(frame_octet_counted(message) for message in messages)
        with self._connect(deadline) as sock:
            sock.settimeout(deadline.remaining())
            sock.sendall(payload)

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            from vault.audit.tls import TlsSettingsError, client_context

            try:
                self._context = client_context(self.tls_ca)
            except TlsSettingsError as exc:
                raise SyslogError(f"syslog {self.address}: {exc}") from None
        return self._context

    def _send_tls(self, messages: list[bytes], deadline: _Deadline) -> None:
        """RFC 5425: octet-counted messages over TLS, after the certificate, the host name and
        the pin (if any) were checked; a close_notify after the data (briefly awaited)."""
        import ssl

        context = self._tls_context()
        assert isinstance(self.target, tuple)
        payload = b"".join(frame_octet_counted(message) for message in messages)
        sock = self._connect(deadline)
        try:
            # Without it the close_notify after the data waits for the data's delayed ACK
            # (Nagle): 40 ms on every forward.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(deadline.remaining())
            # The handshake runs under one deadline for the whole of it (CPython's _ssl).
            tls = context.wrap_socket(sock, server_hostname=self.target[0])
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            detail = _one_line(exc.verify_message or exc.reason or "not trusted")
            raise SyslogError(f"syslog {self.address}: TLS certificate refused: {detail}") from None
        except ssl.SSLError as exc:
            sock.close()
            detail = _one_line(exc.reason or exc.strerror or type(exc).__name__)
            raise SyslogError(f"syslog {self.address}: TLS handshake failed: {detail}") from None
        except BaseException:
            sock.close()
            raise
        with tls:
            if self._pin is not None:
                from vault.audit.tls import check_pin

                if not check_pin(tls.getpeercert(binary_form=True), self._pin):
                    raise SyslogError(
                        f"syslog {self.address}: the server's key does not match audit.tls_pin"
                    )
            tls.settimeout(deadline.remaining())
            tls.sendall(payload)
            # close_notify, and read what the server still sends (a TLS 1.3 session ticket):
            # closing with unread data would reset the connection under the data just sent.
            with contextlib.suppress(OSError, ValueError):
                tls.settimeout(min(deadline.remaining(), _CLOSE_WAIT))
                tls.unwrap()

    def _send_udp(self, messages: list[bytes], deadline: _Deadline) -> None:
        """The first address not refused at once takes the messages (see the module doc)."""
        last: OSError | None = None
        for family, kind, proto, addr in self._resolve(socket.SOCK_DGRAM, deadline):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as exc:
                last = exc
                continue
            with sock:
                try:
                    sock.settimeout(deadline.remaining())
                    sock.connect(addr)
                    sock.send(messages[0])
                    # An ICMP port unreachable that came back already (as it does at once on
                    # this machine) is pending on the socket: that address refused.
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        raise OSError(error, os.strerror(error))
                except TimeoutError:
                    raise
                except OSError as exc:
                    last = exc
                    continue
                for message in messages[1:]:
                    sock.settimeout(deadline.remaining())
                    sock.send(message)
                return
        assert last is not None
        raise last

    def _send_journal(self, messages: list[bytes], deadline: _Deadline) -> None:
        assert isinstance(self.target, str)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(deadline.remaining())
            sock.connect(self.target)
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


def _one_line(text: object) -> str:
    """An error detail on one bounded line."""
    return " ".join(str(text).split())[:200]


def sink_for(config: Config) -> SyslogSink | None:
    """The sink ``config``'s ``audit:`` section asks for, or None when it names no syslog.
    Raises :class:`SyslogError` for a sink that cannot be made (a bad address)."""
    if not config.audit_syslog:
        return None
    return SyslogSink.from_config(
        config.audit_syslog,
        message_format=config.audit_format,
        tls_ca=config.audit_tls_ca,
        tls_pin=config.audit_tls_pin,
    )
