"""A minimal D-Bus client: just what vault.keys.secretservice needs, written from the D-Bus
specification (https://dbus.freedesktop.org/doc/dbus-specification.html).

It exists so that `vault token` imports no general D-Bus library (bench/NOTES.md, "Why the code
is written as it is"). What it does:

* connects to the session bus (``unix:path=`` or ``unix:abstract=`` addresses), authenticates
  with SASL EXTERNAL, and pipelines: the authentication, ``BEGIN`` and every call queued before
  the first wait go out in one write;
* marshals method calls (always little-endian) with any of the basic and container types;
* unmarshals any message of either byte order, checking it against the specification
  (alignment and zero padding, lengths, UTF-8, object paths, signatures, nesting), so that a
  malformed message is a :class:`DBusError`, never an IndexError or a RecursionError;
* matches replies to calls by serial, skipping signals and anything unasked for;
* ``flush`` sends what is queued without waiting, so the caller can work while the peer
  answers.

Errors: :class:`DBusError` (malformed, oversized or unsupported input, refused
authentication), :class:`ErrorReply` (the peer answered with an error), ``TimeoutError`` (no
answer in time) and ``OSError`` (the socket failed or was closed).
"""

from __future__ import annotations

import _socket  # the C socket type itself: nothing of socket.py is used here
import os
import struct
from time import monotonic

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time

if TYPE_CHECKING:
    from typing import Any

BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"

MAX_MESSAGE = 1 << 20  # bigger than anything the Secret Service sends us; the spec allows 128 MiB
MAX_ARRAY = 1 << 26  # the specification's limit
MAX_DEPTH = 64  # containers nested in containers, variants included (the spec's limit)
MAX_LINE = 512  # an authentication line

# Message types and header fields.
METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE = range(1, 9)
UNIX_FDS = 9
_FIELD_TYPES = {
    PATH: "o",
    INTERFACE: "s",
    MEMBER: "s",
    ERROR_NAME: "s",
    REPLY_SERIAL: "u",
    DESTINATION: "s",
    SENDER: "s",
    SIGNATURE: "g",
    UNIX_FDS: "u",
}
_HEADER = "yyyyuua(yv)"

# struct format and size of each fixed-size type; alignment of every type.
_FIXED = {
    "y": ("B", 1),
    "b": ("I", 4),
    "n": ("h", 2),
    "q": ("H", 2),
    "i": ("i", 4),
    "u": ("I", 4),
    "x": ("q", 8),
    "t": ("Q", 8),
    "d": ("d", 8),
    "h": ("I", 4),
}
_ALIGN = {
    **{code: size for code, (_, size) in _FIXED.items()},
    "s": 4,
    "o": 4,
    "g": 1,
    "v": 1,
    "a": 4,
    "(": 8,
    "{": 8,
}
_BASIC = frozenset("ybnqiuxtdhsog")
_PATH_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


class DBusError(Exception):
    """Malformed, oversized or unsupported D-Bus data, or the bus refused us."""


class AuthenticationRefused(DBusError):
    """The bus did not accept our SASL EXTERNAL authentication."""


class ErrorReply(Exception):
    """The peer answered a call with an error message."""

    def __init__(self, name: str, body: tuple[Any, ...]) -> None:
        text = body[0] if body and isinstance(body[0], str) else ""
        super().__init__(f"{name}: {text}" if text else name)
        self.name = name
        self.body = body


# --- signatures ------------------------------------------------------------------------------


def _complete_type(sig: str, i: int, arrays: int, structs: int) -> int:
    """The end of the single complete type starting at ``sig[i]``; DBusError if invalid."""
    if i >= len(sig):
        raise DBusError(f"incomplete signature {sig!r}")
    code = sig[i]
    if code in _BASIC or code == "v":
        return i + 1
    if code == "a":
        if arrays >= 32:
            raise DBusError("signature nests arrays too deeply")
        if sig[i + 1 : i + 2] == "{":
            if structs >= 32:
                raise DBusError("signature nests structs too deeply")
            if sig[i + 2 : i + 3] not in _BASIC:
                raise DBusError(f"dict key must be a basic type in {sig!r}")
            end = _complete_type(sig, i + 3, arrays + 1, structs + 1)
            if sig[end : end + 1] != "}":
                raise DBusError(f"dict entry must have one key and one value in {sig!r}")
            return end + 1
        return _complete_type(sig, i + 1, arrays + 1, structs)
    if code == "(":
        if structs >= 32:
            raise DBusError("signature nests structs too deeply")
        j = i + 1
        if sig[j : j + 1] == ")":
            raise DBusError(f"empty struct in {sig!r}")
        for _ in range(len(sig)):  # each complete type takes at least one character
            if j >= len(sig):
                break
            if sig[j] == ")":
                return j + 1
            j = _complete_type(sig, j, arrays, structs + 1)
        raise DBusError(f"unterminated struct in {sig!r}")
    raise DBusError(f"unknown type code {code!r} in signature {sig!r}")


def split_signature(sig: str) -> list[str]:
    """The complete types of a signature, in order (DBusError if it is not valid)."""
    if len(sig) > 255:
        raise DBusError("signature longer than 255 bytes")
    types = []
    i = 0
    for _ in range(len(sig)):
        if i >= len(sig):
            break
        end = _complete_type(sig, i, 0, 0)
        types.append(sig[i:end])
        i = end
    return types


def _single(sig: str) -> str:
    types = split_signature(sig)
    if len(types) != 1:
        raise DBusError(f"a variant needs one complete type, not {sig!r}")
    return sig


def _valid_path(path: str) -> bool:
    if path == "/":
        return True
    if not path.startswith("/") or path.endswith("/"):
        return False
    return all(part and _PATH_CHARS.issuperset(part.encode()) for part in path[1:].split("/"))


# --- marshalling -----------------------------------------------------------------------------


def _pad(buf: bytearray, align: int) -> None:
    buf += bytes(-len(buf) % align)


def _put(buf: bytearray, t: str, value: Any) -> None:
    code = t[0]
    _pad(buf, _ALIGN[code])
    if code in _FIXED:
        if code == "b":
            if value not in (True, False):  # 0 and 1 too
                raise DBusError(f"not a boolean: {value!r}")
            value = int(value)
        elif code == "d":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise DBusError(f"not a number: {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool):
            raise DBusError(f"not an integer for {code!r}: {value!r}")
        try:
            buf += struct.pack("<" + _FIXED[code][0], value)
        except (struct.error, OverflowError):
            raise DBusError(f"{value!r} out of range for {code!r}") from None
    elif code in "sog":
        if not isinstance(value, str):
            raise DBusError(f"not a string for {code!r}: {value!r}")
        if code == "o" and not _valid_path(value):
            raise DBusError(f"not an object path: {value!r}")
        if code == "g":
            split_signature(value)
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise DBusError("a D-Bus string must be UTF-8 (a lone surrogate?)") from None
        if b"\0" in data:
            raise DBusError("a D-Bus string cannot hold a NUL")
        if code == "g":
            buf.append(len(data))
        else:
            buf += struct.pack("<I", len(data))
        buf += data
        buf.append(0)
    elif code == "v":
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)):
            raise DBusError(f"a variant is (signature, value), not {value!r}")
        inner = _single(value[0])
        _put(buf, "g", inner)
        _put(buf, inner, value[1])
    elif code == "a":
        elem = t[1:]
        at = len(buf)
        buf += bytes(4)
        _pad(buf, _ALIGN[elem[0]])
        start = len(buf)
        if elem == "y" and isinstance(value, (bytes, bytearray, memoryview)):
            buf += value
        elif elem[0] == "{":
            if not isinstance(value, dict):
                raise DBusError(f"not a dict for {t!r}: {value!r}")
            key_t, value_t = split_signature(elem[1:-1])
            for key, item in value.items():
                _pad(buf, 8)
                _put(buf, key_t, key)
                _put(buf, value_t, item)
        else:
            if not isinstance(value, (list, tuple)):
                raise DBusError(f"not a list for {t!r}: {value!r}")
            for item in value:
                _put(buf, elem, item)
        length = len(buf) - start
        if length > MAX_ARRAY:
            raise DBusError("array longer than 64 MiB")
        struct.pack_into("<I", buf, at, length)
    elif code == "(":
        fields = split_signature(t[1:-1])
        if not isinstance(value, (tuple, list)) or len(value) != len(fields):
            raise DBusError(f"not a {len(fields)}-tuple for {t!r}: {value!r}")
        for field_t, item in zip(fields, value, strict=True):
            _put(buf, field_t, item)
    else:  # pragma: no cover - split_signature refused it
        raise DBusError(f"cannot marshal {t!r}")


def marshal(sig: str, values: tuple[Any, ...] | list[Any], buf: bytearray | None = None) -> bytes:
    """``values`` (one per complete type of ``sig``) marshalled little-endian, aligned as if
    at the start of a message (or at the end of ``buf``, which is extended)."""
    types = split_signature(sig)
    if not isinstance(values, (tuple, list)) or len(values) != len(types):
        raise DBusError(f"{sig!r} needs {len(types)} values")
    out = bytearray() if buf is None else buf
    for t, value in zip(types, values, strict=True):
        _put(out, t, value)
    return bytes(out)


# --- unmarshalling ---------------------------------------------------------------------------


class _Reader:
    """Reads values from ``data[pos:end]``; alignment is relative to ``data[0]``."""

    __slots__ = ("data", "end", "order", "pos")

    def __init__(self, data: bytes, pos: int, end: int, order: str) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.order = order

    def take(self, n: int) -> int:
        """Advance by ``n`` bytes; returns where they start."""
        at = self.pos
        if n < 0 or at + n > self.end:
            raise DBusError("message truncated")
        self.pos = at + n
        return at

    def align(self, n: int) -> None:
        at = self.take(-self.pos % n)
        if any(self.data[at : self.pos]):
            raise DBusError("non-zero padding")

    def get(self, t: str, depth: int) -> Any:
        code = t[0]
        self.align(_ALIGN[code])
        fixed = _FIXED.get(code)
        if fixed is not None:
            at = self.take(fixed[1])
            (value,) = struct.unpack_from(self.order + fixed[0], self.data, at)
            if code == "b":
                if value > 1:
                    raise DBusError(f"boolean value {value}")
                return bool(value)
            return value
        if code in "sog":
            if code == "g":
                size = self.data[self.take(1)]
            else:
                (size,) = struct.unpack_from(self.order + "I", self.data, self.take(4))
            at = self.take(size + 1)
            raw = self.data[at : at + size]
            if self.data[at + size] != 0 or b"\0" in raw:
                raise DBusError("string not NUL-terminated or holding a NUL")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DBusError("string is not UTF-8") from None
            if code == "o" and not _valid_path(text):
                raise DBusError(f"invalid object path {text!r}")
            if code == "g":
                split_signature(text)
            return text
        if depth >= MAX_DEPTH:
            raise DBusError("values nested too deeply")
        if code == "v":
            inner = _single(self.get("g", depth))
            return (inner, self.get(inner, depth + 1))
        if code == "a":
            (size,) = struct.unpack_from(self.order + "I", self.data, self.take(4))
            if size > MAX_ARRAY:
                raise DBusError("array longer than 64 MiB")
            elem = t[1:]
            self.align(_ALIGN[elem[0]])
            start = self.take(size)
            end, self.pos = self.pos, start
            if elem == "y":
                self.pos = end
                return bytes(self.data[start:end])
            if elem[0] == "{":
                key_t, value_t = split_signature(elem[1:-1])
                entries = {}
                for _ in range(size):  # every entry takes at least one byte
                    if self.pos >= end:
                        break
                    self.align(8)
                    key = self.get(key_t, depth + 1)
                    entries[key] = self.get(value_t, depth + 1)
                result: Any = entries
            else:
                items = []
                for _ in range(size):  # every element takes at least one byte
                    if self.pos >= end:
                        break
                    items.append(self.get(elem, depth + 1))
                result = items
            if self.pos != end:
                raise DBusError("array elements overrun its length")
            return result
        if code == "(":
            return tuple(self.get(field_t, depth + 1) for field_t in split_signature(t[1:-1]))
        raise DBusError(f"cannot unmarshal {t!r}")  # pragma: no cover - split_signature refused it


def unmarshal(sig: str, data: bytes, *, order: str = "<", offset: int = 0) -> tuple[Any, ...]:
    """The values ``data`` holds for ``sig`` (all of it, aligned as if it began at ``offset``
    of a message); DBusError if it does not hold exactly that."""
    types = split_signature(sig)
    reader = _Reader(bytes(offset) + bytes(data), offset, offset + len(data), order)
    values = tuple(reader.get(t, 0) for t in types)
    if reader.pos != reader.end:
        raise DBusError("trailing bytes after the values")
    return values


# --- messages --------------------------------------------------------------------------------


class Message:
    """One received message; ``body`` is decoded on demand."""

    __slots__ = ("_body_at", "_data", "_order", "fields", "serial", "type")

    def __init__(
        self, kind: int, serial: int, fields: dict[int, Any], *, data: bytes, body_at: int
    ) -> None:
        self.type = kind
        self.serial = serial
        self.fields = fields
        self._data = data
        self._body_at = body_at
        self._order = "<" if data[:1] == b"l" else ">"

    @property
    def reply_serial(self) -> int | None:
        value = self.fields.get(REPLY_SERIAL)
        return value if isinstance(value, int) else None

    @property
    def signature(self) -> str:
        return str(self.fields.get(SIGNATURE, ""))

    def body(self) -> tuple[Any, ...]:
        reader = _Reader(self._data, self._body_at, len(self._data), self._order)
        values = tuple(reader.get(t, 0) for t in split_signature(self.signature))
        if reader.pos != reader.end:
            raise DBusError("message body longer than its signature")
        return values


def message_length(head: bytes) -> int:
    """The whole length of the message whose first 16 bytes are ``head``."""
    if head[:1] == b"l":
        order = "<"
    elif head[:1] == b"B":
        order = ">"
    else:
        raise DBusError(f"bad byte-order mark {head[:1]!r}")
    if head[3] != 1:
        raise DBusError(f"unsupported protocol version {head[3]}")
    body_len, _serial, fields_len = struct.unpack_from(order + "III", head, 4)
    total = 16 + fields_len + (-fields_len % 8) + body_len
    if total > MAX_MESSAGE:
        raise DBusError(f"message of {total} bytes (at most {MAX_MESSAGE})")
    return int(total)


def parse_message(data: bytes) -> Message:
    """A whole message (``message_length(data)`` bytes) checked and parsed."""
    total = message_length(data[:16])
    if len(data) != total:
        raise DBusError("message length does not match its header")
    order = "<" if data[:1] == b"l" else ">"
    reader = _Reader(data, 0, total, order)
    _o, kind, _flags, _v, body_len, serial, raw_fields = (
        reader.get(t, 0) for t in split_signature(_HEADER)
    )
    if serial == 0:
        raise DBusError("message serial 0")
    fields: dict[int, Any] = {}
    for code, (sig, value) in raw_fields:
        expected = _FIELD_TYPES.get(code)
        if expected is None:
            continue  # unknown header fields are ignored
        if sig != expected:
            raise DBusError(f"header field {code} of type {sig!r}")
        fields[code] = value
    reader.align(8)
    if reader.pos + body_len != total:
        raise DBusError("message body length does not match its header")
    if kind in (METHOD_RETURN, ERROR) and REPLY_SERIAL not in fields:
        raise DBusError("reply without a reply serial")
    if kind == ERROR and ERROR_NAME not in fields:
        raise DBusError("error without an error name")
    if body_len and SIGNATURE not in fields:
        raise DBusError("message body without a signature")
    return Message(kind, serial, fields, data=data, body_at=reader.pos)


def method_call(
    serial: int,
    *,
    destination: str | None,
    path: str,
    interface: str | None,
    member: str,
    signature: str = "",
    body: tuple[Any, ...] = (),
    flags: int = 0,
) -> bytes:
    """A METHOD_CALL message, little-endian."""
    payload = marshal(signature, body) if signature else b""
    if not signature and body:
        raise DBusError("a body needs a signature")
    fields: list[tuple[int, tuple[str, Any]]] = [(PATH, ("o", path))]
    if interface:
        fields.append((INTERFACE, ("s", interface)))
    fields.append((MEMBER, ("s", member)))
    if destination:
        fields.append((DESTINATION, ("s", destination)))
    if signature:
        fields.append((SIGNATURE, ("g", signature)))
    buf = bytearray()
    marshal(_HEADER, (ord("l"), METHOD_CALL, flags, 1, len(payload), serial, fields), buf)
    _pad(buf, 8)
    buf += payload
    if len(buf) > MAX_MESSAGE:
        raise DBusError("message too large")
    return bytes(buf)


# --- the connection --------------------------------------------------------------------------


def session_bus_addresses(address: str | None = None) -> list[str | bytes]:
    """The socket addresses to try, in order, for a D-Bus address string (default: the
    session bus's, from DBUS_SESSION_BUS_ADDRESS). Abstract names are bytes with a leading NUL.
    DBusError if there is none this client can use."""
    if address is None:
        address = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
    if not address:
        raise DBusError("DBUS_SESSION_BUS_ADDRESS is not set")
    found: list[str | bytes] = []
    for entry in address.split(";"):
        transport, colon, rest = entry.partition(":")
        if not colon or transport != "unix":
            continue
        keys: dict[str, bytes] = {}
        for pair in rest.split(","):
            key, eq, value = pair.partition("=")
            if eq:
                keys[key] = _unescape(value)
        if "path" in keys:
            found.append(os.fsdecode(keys["path"]))
        elif "abstract" in keys:
            found.append(b"\0" + keys["abstract"])
    if not found:
        raise DBusError("no unix:path= or unix:abstract= address in DBUS_SESSION_BUS_ADDRESS")
    return found


def _unescape(value: str) -> bytes:
    """A D-Bus address value with its %XX escapes decoded."""
    raw = value.encode("utf-8", "surrogateescape")
    if b"%" not in raw:
        return raw
    out = bytearray()
    parts = raw.split(b"%")
    out += parts[0]
    for part in parts[1:]:
        try:
            out.append(int(part[:2], 16))
        except ValueError:
            raise DBusError("bad %-escape in the D-Bus address") from None
        if len(part) < 2:
            raise DBusError("bad %-escape in the D-Bus address")
        out += part[2:]
    return bytes(out)


class Connection:
    """One authenticated connection to a message bus.

    ``call`` only queues a message; ``reply`` sends whatever is queued (one write) and waits
    for the answer to one call. Replies are matched by serial: answers to other calls still
    awaited are kept, anything else (signals, answers nobody waits for) is skipped."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self._serial = 0
        self._out = bytearray()
        self._in = bytearray()
        self._authenticated = False
        self._awaited: set[int] = set()
        self._kept: dict[int, Message] = {}
        self._broken: OSError | None = None  # a flush failed: the next reply raises it
        self.unique_name = ""
        uid = str(os.getuid()).encode().hex()
        self._out += b"\0AUTH EXTERNAL " + uid.encode() + b"\r\nBEGIN\r\n"
        self._hello = self.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello")

    @classmethod
    def session(cls, timeout: float, address: str | None = None) -> Connection:
        """Connected to the session bus (authentication and Hello queued, not yet sent)."""
        last: OSError | None = None
        for target in session_bus_addresses(address):
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(target)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return cls(sock)
        assert last is not None
        raise last

    def close(self) -> None:
        self.sock.close()

    def call(
        self,
        destination: str | None,
        path: str,
        interface: str | None,
        member: str,
        *,
        signature: str = "",
        body: tuple[Any, ...] = (),
    ) -> int:
        """Queue a method call; returns its serial, for ``reply``."""
        self._serial = self._serial % 0xFFFFFFFF + 1
        self._out += method_call(
            self._serial,
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body,
        )
        self._awaited.add(self._serial)
        return self._serial

    def flush(self, timeout: float) -> None:
        """Send what is queued now, without waiting for an answer; if that fails, the next
        ``reply`` raises the error."""
        if self._out and self._broken is None:
            data, self._out = bytes(self._out), bytearray()
            try:
                self.sock.settimeout(timeout)
                self.sock.sendall(data)
            except OSError as exc:
                self._broken = exc

    def reply(self, serial: int, timeout: float, expect: str | None = None) -> tuple[Any, ...]:
        """The body of the answer to call ``serial``: ErrorReply if it is an error, DBusError
        if its signature is not ``expect`` (when given)."""
        deadline = monotonic() + timeout
        if self._hello in self._awaited:
            (name,) = self._answer(self._hello, deadline, "s")
            self.unique_name = name
        return self._answer(serial, deadline, expect)

    def _answer(self, serial: int, deadline: float, expect: str | None) -> tuple[Any, ...]:
        message = self._wait(serial, deadline)
        if message.type == ERROR:
            try:
                body = message.body()
            except DBusError:
                body = ()
            raise ErrorReply(str(message.fields[ERROR_NAME]), body)
        if expect is not None and message.signature != expect:
            raise DBusError(f"an answer of type {message.signature!r}, not {expect!r}")
        return message.body()

    def _wait(self, serial: int, deadline: float) -> Message:
        if serial not in self._awaited and serial not in self._kept:
            raise DBusError(f"no call {serial} is waiting for an answer")
        if self._broken is not None:
            raise self._broken
        if self._out:
            self._timeout(deadline)
            data, self._out = bytes(self._out), bytearray()
            self.sock.sendall(data)
        for _ in range(1 << 20):  # ends with the answer, a timeout or an error long before
            kept = self._kept.pop(serial, None)
            if kept is not None:
                return kept
            message = self._next(deadline)
            answers = message.reply_serial
            if message.type not in (METHOD_RETURN, ERROR) or answers not in self._awaited:
                continue  # a signal, a call to us, an answer to nothing we wait for
            self._awaited.discard(answers)
            if answers == serial:
                return message
            self._kept[answers] = message
        raise DBusError("too many messages without the answer")  # pragma: no cover

    def _timeout(self, deadline: float) -> None:
        left = deadline - monotonic()
        if left <= 0:
            raise TimeoutError("no answer in time")
        self.sock.settimeout(left)

    def _fill(self, need: int, deadline: float) -> None:
        """At least ``need`` bytes in the input buffer."""
        for _ in range(need + 1):  # every read brings at least one byte
            if len(self._in) >= need:
                return
            self._timeout(deadline)
            chunk = self.sock.recv(max(65536, need - len(self._in)))
            if not chunk:
                raise ConnectionResetError("the bus closed the connection")
            self._in += chunk

    def _next(self, deadline: float) -> Message:
        if not self._authenticated:
            self._authenticate(deadline)
        self._fill(16, deadline)
        total = message_length(bytes(self._in[:16]))
        self._fill(total, deadline)
        data = bytes(self._in[:total])
        del self._in[:total]
        return parse_message(data)

    def _authenticate(self, deadline: float) -> None:
        for _ in range(MAX_LINE):
            end = self._in.find(b"\r\n")
            if end >= 0:
                break
            if len(self._in) >= MAX_LINE:
                raise DBusError("authentication line too long")
            self._fill(len(self._in) + 1, deadline)
        else:  # pragma: no cover - the line limit ends the loop first
            raise DBusError("authentication line too long")
        line = bytes(self._in[:end])
        del self._in[: end + 2]
        words = line.split()
        if len(words) != 2 or words[0] != b"OK":
            raise AuthenticationRefused(f"the bus refused authentication ({line[:80]!r})")
        self._authenticated = True
