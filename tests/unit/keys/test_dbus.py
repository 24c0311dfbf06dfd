"""vault.keys.dbus, the minimal D-Bus client: marshalling against the specification (and against
jeepney, an independent implementation the tests may use), unmarshalling of hostile bytes, and
a fake bus on a socket pair sending what a broken or hostile peer might.

The real behaviour against gnome-keyring is covered by test_keyring_and_paths.py,
test_faults.py, test_crash.py and the other tests that run the `vault` executable.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from secretstorage.dhcrypto import Session as TheirSession

from tests.harness.fake_secret_service import encrypt
from vault.errors import KeyringUnavailable
from vault.keys import dbus as _dbus
from vault.keys.dbus import (
    AuthenticationRefused,
    Connection,
    DBusError,
    ErrorReply,
    marshal,
    method_call,
    parse_message,
    split_signature,
    unmarshal,
)
from vault.keys.secretservice import Disconnected, Refused, SecretService

PROPS = settings(
    max_examples=300,
    deadline=timedelta(seconds=5),  # generous: 2 shared cores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEX_UID = str(os.getuid()).encode().hex().encode()
OK_LINE = b"OK 0123456789abcdef0123456789abcdef\r\n"


# --- marshalling: known bytes from the specification's rules ----------------------------------


@pytest.mark.parametrize(
    ("sig", "values", "expected"),
    [
        ("y", (7,), b"\x07"),
        ("b", (True,), b"\x01\0\0\0"),
        ("n", (-2,), b"\xfe\xff"),
        ("q", (0x1234,), b"\x34\x12"),
        ("i", (-1,), b"\xff\xff\xff\xff"),
        ("u", (1,), b"\x01\0\0\0"),
        ("x", (-1,), b"\xff" * 8),
        ("t", (2,), b"\x02" + b"\0" * 7),
        ("d", (1.0,), struct.pack("<d", 1.0)),
        ("h", (3,), b"\x03\0\0\0"),
        ("s", ("ab",), b"\x02\0\0\0ab\0"),
        ("s", ("é",), b"\x02\0\0\0\xc3\xa9\0"),
        ("o", ("/a/b",), b"\x04\0\0\0/a/b\0"),
        ("g", ("a{sv}",), b"\x05a{sv}\0"),
        ("v", (("y", 5),), b"\x01y\0\x05"),
        ("v", (("u", 5),), b"\x01u\0\0\x05\0\0\0"),  # the value aligned after the signature
        # alignment: each value at a multiple of its own alignment from the start
        ("yu", (1, 2), b"\x01\0\0\0\x02\0\0\0"),
        ("yt", (1, 2), b"\x01" + b"\0" * 7 + b"\x02" + b"\0" * 7),
        ("yq", (1, 2), b"\x01\0\x02\0"),
        ("yg", (1, "s"), b"\x01\x01s\0"),
        ("y(y)", (1, (2,)), b"\x01" + b"\0" * 7 + b"\x02"),
        # arrays: length in bytes, without the padding to the first element, which is there
        # even when the array is empty
        ("ay", (b"\x01\x02",), b"\x02\0\0\0\x01\x02"),
        ("ay", ([1, 2],), b"\x02\0\0\0\x01\x02"),
        ("at", ([],), b"\0" * 8),
        ("at", ([1],), b"\x08\0\0\0\0\0\0\0\x01" + b"\0" * 7),
        ("yat", (1, []), b"\x01\0\0\0\0\0\0\0"),
        ("au", ([1, 2],), b"\x08\0\0\0\x01\0\0\0\x02\0\0\0"),
        ("as", (["a", "bc"],), b"\x0f\0\0\0\x01\0\0\0a\0\0\0\x02\0\0\0bc\0"),
        ("a{ys}", ({1: "x"},), b"\x0a\0\0\0\0\0\0\0\x01\0\0\0\x01\0\0\0x\0"),
        ("a(yy)", ([(1, 2), (3, 4)],), b"\x0a\0\0\0\0\0\0\0\x01\x02" + b"\0" * 6 + b"\x03\x04"),
        ("a{sv}", ({},), b"\0" * 8),
        ("a{sv}", ({"k": ("b", False)},), b"\x10\0\0\0\0\0\0\0\x01\0\0\0k\0\x01b\0" + b"\0" * 7),
    ],
)
def test_marshal_known_bytes(sig: str, values: tuple[Any, ...], expected: bytes) -> None:
    assert marshal(sig, values) == expected
    decoded = unmarshal(sig, expected)
    if sig == "ay" and isinstance(values[0], list):
        assert decoded == (bytes(values[0]),)
    else:
        assert decoded == values


def test_marshal_aligns_from_the_end_of_a_buffer() -> None:
    buf = bytearray(b"\x01")
    marshal("u", (2,), buf)
    assert bytes(buf) == b"\x01\0\0\0\x02\0\0\0"
    assert unmarshal("u", b"\0\0\0\x02\0\0\0", offset=1) == (2,)


@pytest.mark.parametrize(
    ("sig", "values"),
    [
        ("y", (256,)),
        ("y", (-1,)),
        ("u", (-1,)),
        ("u", (1 << 32,)),
        ("n", (1 << 15,)),
        ("t", (1 << 64,)),
        ("b", (2,)),
        ("b", ("yes",)),
        ("y", (True,)),
        ("u", ("1",)),
        ("d", ("1.0",)),
        ("s", (b"bytes",)),
        ("s", ("nul\0inside",)),
        ("s", ("\udc80",)),  # a lone surrogate is no UTF-8
        ("o", ("relative",)),
        ("o", ("/trailing/",)),
        ("o", ("/a//b",)),
        ("o", ("/a-b",)),
        ("g", ("a",)),
        ("v", ("s",)),
        ("v", (("ss", ("a", "b")),)),
        ("v", (("z", 1),)),
        ("as", ("not a list",)),
        ("a{ss}", ([("a", "b")],)),
        ("(ss)", (("a",),)),
        ("(ss)", ("ab",)),
        ("ss", ("a",)),
    ],
)
def test_marshal_refuses_values_that_do_not_fit(sig: str, values: tuple[Any, ...]) -> None:
    with pytest.raises(DBusError):
        marshal(sig, values)


@pytest.mark.parametrize(
    "sig",
    [
        "a",
        "(",
        ")",
        "()",
        "(s",
        "s)",
        "{ss}",
        "a{vs}",
        "a{(s)s}",
        "a{s}",
        "a{sss}",
        "a{ss",
        "z",
        "a" * 33 + "y",
        "(" * 33 + "y" + ")" * 33,
        "y" * 256,
    ],
)
def test_invalid_signatures(sig: str) -> None:
    with pytest.raises(DBusError):
        split_signature(sig)


def test_split_signature() -> None:
    assert split_signature("") == []
    assert split_signature("a{sv}(oayays)b") == ["a{sv}", "(oayays)", "b"]
    assert split_signature("aa{s(yv)}ai") == ["aa{s(yv)}", "ai"]
    assert split_signature("a" * 32 + "y") == ["a" * 32 + "y"]


# --- messages ---------------------------------------------------------------------------------


def test_method_call_layout_and_jeepney_reads_it() -> None:
    from jeepney.low_level import HeaderFields, MessageType, Parser

    data = method_call(
        7,
        destination="org.freedesktop.secrets",
        path="/org/freedesktop/secrets",
        interface="org.freedesktop.Secret.Service",
        member="OpenSession",
        signature="sv",
        body=("plain", ("s", "")),
    )
    assert data[:4] == b"l\x01\x00\x01"
    body_len, serial, fields_len = struct.unpack_from("<III", data, 4)
    assert serial == 7
    body_at = 16 + fields_len + (-fields_len % 8)
    assert body_at % 8 == 0
    assert len(data) == body_at + body_len
    assert data[body_at:] == marshal("sv", ("plain", ("s", "")))
    (msg,) = Parser().feed(data)
    assert msg.header.message_type is MessageType.method_call
    assert msg.header.serial == 7
    assert msg.header.fields[HeaderFields.member] == "OpenSession"
    assert msg.header.fields[HeaderFields.destination] == "org.freedesktop.secrets"
    assert msg.header.fields[HeaderFields.signature] == "sv"
    assert msg.body == ("plain", ("s", ""))
    ours = parse_message(data)
    assert ours.type == _dbus.METHOD_CALL
    assert ours.serial == 7
    assert ours.fields[_dbus.PATH] == "/org/freedesktop/secrets"
    assert ours.body() == ("plain", ("s", ""))


def test_jeepney_messages_parse_both_byte_orders() -> None:
    from jeepney.low_level import Endianness, Header, HeaderFields, Message

    for order in (Endianness.little, Endianness.big):
        header = Header(
            order,
            2,
            0,
            1,
            -1,
            9,
            {HeaderFields.reply_serial: 3, HeaderFields.signature: "a{o(oayays)}"},
        )
        body = ({"/org/i/1": ("/s/1", b"", b"secret", "text/plain")},)
        ours = parse_message(Message(header, body).serialise())
        assert ours.type == _dbus.METHOD_RETURN
        assert ours.serial == 9
        assert ours.reply_serial == 3
        assert ours.body() == body


def _message(
    kind: int,
    serial: int,
    sig: str = "",
    body: tuple[Any, ...] = (),
    **fields: Any,
) -> bytes:
    """A message as a bus would send it (little-endian): header fields by name."""
    codes = {
        "reply_serial": (_dbus.REPLY_SERIAL, "u"),
        "error_name": (_dbus.ERROR_NAME, "s"),
        "path": (_dbus.PATH, "o"),
        "interface": (_dbus.INTERFACE, "s"),
        "member": (_dbus.MEMBER, "s"),
        "sender": (_dbus.SENDER, "s"),
    }
    payload = marshal(sig, body)
    header_fields = [(codes[k][0], (codes[k][1], v)) for k, v in fields.items()]
    if sig:
        header_fields.append((_dbus.SIGNATURE, ("g", sig)))
    buf = bytearray()
    marshal("yyyyuua(yv)", (ord("l"), kind, 0, 1, len(payload), serial, header_fields), buf)
    buf += bytes(-len(buf) % 8) + payload
    return bytes(buf)


def _reply(to: int, sig: str = "", body: tuple[Any, ...] = (), serial: int = 100) -> bytes:
    return _message(_dbus.METHOD_RETURN, serial + to, sig, body, reply_serial=to)


def _error(to: int, name: str, text: str = "no") -> bytes:
    return _message(_dbus.ERROR, 200 + to, "s", (text,), reply_serial=to, error_name=name)


def _signal() -> bytes:
    return _message(
        _dbus.SIGNAL,
        50,
        "s",
        (":1.1",),
        path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus",
        member="NameAcquired",
    )


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: b"X" + m[1:], "byte-order"),
        (lambda m: m[:3] + b"\x02" + m[4:], "protocol version"),
        (lambda m: m[:8] + b"\0\0\0\0" + m[12:], "serial 0"),
        (lambda m: m[:-1], "length"),
        (lambda m: m + b"\0", "length"),
        (lambda m: m[:4] + struct.pack("<I", 2_000_000) + m[8:], "at most"),
        (lambda m: m[:12] + struct.pack("<I", 0xFFFFFFF0) + m[16:], "at most"),
    ],
)
def test_malformed_headers(mutate: Any, match: str) -> None:
    good = _reply(1, "s", ("x",))
    assert parse_message(good).body() == ("x",)
    with pytest.raises(DBusError, match=match):
        parse_message(mutate(good))


def test_header_field_of_the_wrong_type() -> None:
    bad = _message(_dbus.METHOD_RETURN, 5, reply_serial=1, member="x")
    bad = bad.replace(b"\x03\x01s\0", b"\x03\x01g\0")  # MEMBER claimed as a signature
    with pytest.raises(DBusError):
        parse_message(bad)


def test_replies_need_their_header_fields() -> None:
    with pytest.raises(DBusError, match="reply serial"):
        parse_message(_message(_dbus.METHOD_RETURN, 5))
    with pytest.raises(DBusError, match="error name"):
        parse_message(_message(_dbus.ERROR, 5, reply_serial=1))


def test_non_zero_padding_and_bad_strings_are_refused() -> None:
    with pytest.raises(DBusError, match="padding"):
        unmarshal("yu", b"\x01\x01\0\0\x02\0\0\0")
    with pytest.raises(DBusError, match="NUL"):
        unmarshal("s", b"\x01\0\0\0ab")
    with pytest.raises(DBusError, match="NUL"):
        unmarshal("s", b"\x02\0\0\0a\0\0")
    with pytest.raises(DBusError, match="UTF-8"):
        unmarshal("s", b"\x01\0\0\0\xff\0")
    with pytest.raises(DBusError, match="object path"):
        unmarshal("o", b"\x01\0\0\0a\0")
    with pytest.raises(DBusError):
        unmarshal("g", b"\x01z\0")
    with pytest.raises(DBusError, match="boolean"):
        unmarshal("b", b"\x02\0\0\0")
    with pytest.raises(DBusError, match="truncated"):
        unmarshal("s", b"\xff\xff\xff\x7fab\0")
    with pytest.raises(DBusError, match="64 MiB"):
        unmarshal("ay", b"\xff\xff\xff\xff")
    with pytest.raises(DBusError, match="overrun"):  # a 3-byte array of 2-byte elements
        unmarshal("aq", b"\x03\0\0\0\x01\0\x02\0")
    with pytest.raises(DBusError, match="trailing"):
        unmarshal("y", b"\x01\x02")


def test_deeply_nested_variants_are_an_error_not_a_recursion_error() -> None:
    data = b"\x01v\0" * 200 + b"\x01y\0\x05"
    with pytest.raises(DBusError, match="deeply"):
        unmarshal("v", data)
    shallow = b"\x01v\0" * 10 + b"\x01y\0\x05"
    value: Any = unmarshal("v", shallow)[0]
    for _ in range(10):
        assert value[0] == "v"
        value = value[1]
    assert value == ("y", 5)


# --- properties -------------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=8)
_PATH = st.lists(st.from_regex(r"[A-Za-z0-9_]{1,6}", fullmatch=True), max_size=3).map(
    lambda parts: "/" + "/".join(parts)
)
_BASIC_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "y": st.integers(0, 255),
    "b": st.booleans(),
    "n": st.integers(-(1 << 15), (1 << 15) - 1),
    "q": st.integers(0, (1 << 16) - 1),
    "i": st.integers(-(1 << 31), (1 << 31) - 1),
    "u": st.integers(0, (1 << 32) - 1),
    "x": st.integers(-(1 << 63), (1 << 63) - 1),
    "t": st.integers(0, (1 << 64) - 1),
    "d": st.floats(allow_nan=False),
    "s": _TEXT,
    "o": _PATH,
    "g": st.sampled_from(["", "s", "a{sv}", "(oayays)", "aoao"]),
}
_KEYS = st.sampled_from(sorted(_BASIC_VALUES))
_SIGNATURES: st.SearchStrategy[str] = st.recursive(
    st.sampled_from([*sorted(_BASIC_VALUES), "v"]),
    lambda inner: st.one_of(
        inner.map(lambda t: "a" + t),
        st.tuples(_KEYS, inner).map(lambda kv: "a{" + kv[0] + kv[1] + "}"),
        st.lists(inner, min_size=1, max_size=3).map(lambda ts: "(" + "".join(ts) + ")"),
    ),
    max_leaves=6,
)


def _values(t: str, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of one complete type, as vault.keys.dbus represents them."""
    if t in _BASIC_VALUES:
        return _BASIC_VALUES[t]
    if t == "v":
        inner = _SIGNATURES if depth < 2 else st.sampled_from(sorted(_BASIC_VALUES))
        return inner.flatmap(lambda s: st.tuples(st.just(s), _values(s, depth + 1)))
    if t == "ay":
        return st.binary(max_size=8)
    if t.startswith("a{"):
        key_t, value_t = split_signature(t[2:-1])
        return st.dictionaries(_values(key_t), _values(value_t, depth), max_size=3)
    if t.startswith("a"):
        return st.lists(_values(t[1:], depth), max_size=3)
    return st.tuples(*(_values(f, depth) for f in split_signature(t[1:-1])))


_TYPED = _SIGNATURES.flatmap(lambda t: st.tuples(st.just(t), _values(t)))


@PROPS
@given(typed=_TYPED, prefix=st.integers(0, 7))
def test_round_trip_of_random_values(typed: tuple[str, Any], prefix: int) -> None:
    """Any value of any type comes back as it went, at any offset (alignment)."""
    t, value = typed
    sig = "y" * prefix + t
    values = (*([1] * prefix), value)
    data = marshal(sig, values)
    assert unmarshal(sig, data) == values


@PROPS
@given(typed=_TYPED)
def test_marshalling_matches_jeepney(typed: tuple[str, Any]) -> None:
    """An independent implementation writes the same bytes and reads ours back."""
    from jeepney.low_level import Endianness, parse_signature

    t, value = typed
    jeepney_type = parse_signature(list("(y" + t + ")"))
    theirs = jeepney_type.serialise((1, value), 0, Endianness.little)
    assert marshal("y" + t, (1, value)) == theirs
    assert jeepney_type.parse_data(theirs, 0, Endianness.little)[0] == (1, value)


@PROPS
@given(sig=_SIGNATURES, data=st.binary(max_size=96))
def test_random_bytes_only_raise_our_error(sig: str, data: bytes) -> None:
    with contextlib.suppress(DBusError):
        unmarshal(sig, data)


@PROPS
@given(
    data=st.binary(max_size=200), head=st.sampled_from([b"", b"l\x02\x00\x01", b"B\x03\x00\x01"])
)
def test_random_messages_only_raise_our_error(data: bytes, head: bytes) -> None:
    raw = head + data
    try:
        total = _dbus.message_length(raw[:16]) if len(raw) >= 16 else None
        if total is not None and total == len(raw):
            parse_message(raw).body()
    except DBusError:
        pass


@PROPS
@given(
    typed=_TYPED,
    flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_corrupted_messages_only_raise_our_error(
    typed: tuple[str, Any], flips: list[tuple[int, int]]
) -> None:
    t, value = typed
    data = bytearray(_reply(1, t, (value,)))
    for at, byte in flips:
        data[at % len(data)] = byte
    try:
        total = _dbus.message_length(bytes(data[:16]))
        if total == len(data):
            parse_message(bytes(data)).body()
    except DBusError:
        pass


# --- addresses --------------------------------------------------------------------------------


def test_addresses() -> None:
    addr = _dbus.session_bus_addresses
    assert addr("unix:path=/run/user/1/bus") == ["/run/user/1/bus"]
    assert addr("unix:path=/tmp/a%2cb%20c,guid=0123") == ["/tmp/a,b c"]
    assert addr("unix:guid=1,abstract=/tmp/dbus-X") == [b"\0/tmp/dbus-X"]
    assert addr("tcp:host=localhost,port=1;unix:path=/b;unix:path=/c") == ["/b", "/c"]
    for bad in ("", "tcp:host=localhost,port=1", "unix:tmpdir=/tmp", "nonsense", "unix:path"):
        with pytest.raises(DBusError):
            addr(bad)
    with pytest.raises(DBusError, match="escape"):
        addr("unix:path=/tmp/%zz")
    with pytest.raises(DBusError, match="escape"):
        addr("unix:path=/tmp/%2")


def test_address_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(DBusError, match="not set"):
        _dbus.session_bus_addresses()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/x/bus,guid=ab")
    assert _dbus.session_bus_addresses() == ["/x/bus"]


# --- a fake bus on a socket pair --------------------------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[Connection, socket.socket]]:
    ours, bus = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    bus.settimeout(5)
    conn = Connection(ours)
    try:
        yield conn, bus
    finally:
        conn.close()
        bus.close()


def _call(conn: Connection, member: str = "M", sig: str = "", body: tuple[Any, ...] = ()) -> int:
    return conn.call(
        "org.example", "/org/example", "org.example.I", member, signature=sig, body=body
    )


def _received(bus: socket.socket) -> bytes:
    bus.settimeout(0.5)
    data = b""
    for _ in range(100):
        try:
            chunk = bus.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_pipelined_authentication_and_calls(pair: tuple[Connection, socket.socket]) -> None:
    from jeepney.low_level import HeaderFields, Parser

    conn, bus = pair
    first = _call(conn, "First", "s", ("a",))
    second = _call(conn, "Second")
    assert (first, second) == (2, 3)  # 1 is Hello
    bus.sendall(OK_LINE + _reply(1, "s", (":1.7",)) + _signal() + _reply(2, "s", ("one",)))
    bus.sendall(_reply(3))
    assert conn.reply(first, 2) == ("one",)
    assert conn.unique_name == ":1.7"
    assert conn.reply(second, 2) == ()
    sent = _received(bus)
    preamble = b"\0AUTH EXTERNAL " + HEX_UID + b"\r\nBEGIN\r\n"
    assert sent.startswith(preamble)
    messages = Parser().feed(sent[len(preamble) :])
    assert [m.header.fields[HeaderFields.member] for m in messages] == ["Hello", "First", "Second"]
    assert [m.header.serial for m in messages] == [1, 2, 3]
    assert messages[0].header.fields[HeaderFields.destination] == "org.freedesktop.DBus"


def test_replies_out_of_order_and_unasked_are_matched_by_serial(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, bus = pair
    a, b = _call(conn, "A"), _call(conn, "B")
    stray = _reply(99, "s", ("nobody asked",))
    bus.sendall(OK_LINE + _reply(1, "s", (":1.1",)) + stray + _reply(b, "s", ("b",)))
    bus.sendall(_signal() + _reply(a, "s", ("a",)))
    assert conn.reply(a, 2) == ("a",)
    assert conn.reply(b, 2) == ("b",)


def test_an_answer_that_never_comes_times_out(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(OK_LINE + _reply(1, "s", (":1.1",)) + _reply(call + 1, "s", ("wrong",)))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        conn.reply(call, 0.3)
    assert 0.25 < time.monotonic() - started < 3


@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_a_stream_of_signals_does_not_extend_the_timeout(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(OK_LINE + _reply(1, "s", (":1.1",)))
    done = threading.Event()

    def flood() -> None:
        for _ in range(100_000):  # until the client gave up (or 5 s at most)
            if done.is_set() or time.monotonic() - started > 5:
                return
            try:
                bus.sendall(_signal() * 10)
            except OSError:
                return

    started = time.monotonic()
    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    try:
        with pytest.raises(TimeoutError):
            conn.reply(call, 0.3)
        assert time.monotonic() - started < 3
    finally:
        done.set()
        sender.join(10)


def test_error_reply(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(OK_LINE + _reply(1, "s", (":1.1",)))
    bus.sendall(_error(call, "org.freedesktop.DBus.Error.ServiceUnknown", "no such name"))
    with pytest.raises(ErrorReply) as caught:
        conn.reply(call, 2)
    assert caught.value.name == "org.freedesktop.DBus.Error.ServiceUnknown"
    assert caught.value.body == ("no such name",)
    assert "no such name" in str(caught.value)


def test_an_error_to_hello_is_an_error_reply(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(OK_LINE + _error(1, "org.freedesktop.DBus.Error.AccessDenied"))
    with pytest.raises(ErrorReply, match="AccessDenied"):
        conn.reply(call, 2)


def test_unexpected_signature(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(OK_LINE + _reply(1, "s", (":1.1",)) + _reply(call, "u", (5,)))
    with pytest.raises(DBusError, match="not 'ao'"):
        conn.reply(call, 2, "ao")


def test_an_unexpected_signature_to_hello(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(OK_LINE + _reply(1, "u", (1,)))
    with pytest.raises(DBusError):
        conn.reply(call, 2)


@pytest.mark.parametrize(
    "line",
    [b"REJECTED EXTERNAL\r\n", b"ERROR\r\n", b"OK\r\n", b"DATA\r\n", b"OK a b\r\n"],
)
def test_authentication_refused(pair: tuple[Connection, socket.socket], line: bytes) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(line)
    with pytest.raises(AuthenticationRefused):
        conn.reply(call, 2)


def test_an_endless_authentication_line(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(b"OK " + b"a" * 4096)
    with pytest.raises(DBusError, match="too long"):
        conn.reply(call, 2)


def test_garbage_after_authentication(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(OK_LINE + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(DBusError):
        conn.reply(call, 2)


def test_a_huge_length_is_refused_before_reading_it(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, bus = pair
    call = _call(conn)
    huge = bytearray(_reply(1, "s", (":1.1",)))
    struct.pack_into("<I", huge, 4, 100 << 20)
    bus.sendall(OK_LINE + bytes(huge[:16]))  # the rest never comes: it must not wait for it
    started = time.monotonic()
    with pytest.raises(DBusError, match="at most"):
        conn.reply(call, 5)
    assert time.monotonic() - started < 2


def test_closed_mid_message(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    whole = _reply(1, "s", (":1.1",))
    bus.sendall(OK_LINE + whole[: len(whole) // 2])
    bus.shutdown(socket.SHUT_RDWR)
    with pytest.raises(OSError):
        conn.reply(call, 2)


def test_closed_before_authentication(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.close()
    with pytest.raises(OSError):
        conn.reply(call, 2)


def test_a_reply_split_into_single_bytes(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    data = OK_LINE + _reply(1, "s", (":1.1",)) + _reply(call, "as", (["x", "y"],))

    def trickle() -> None:
        for i in range(len(data)):  # one byte per write; the reader must put them together
            bus.sendall(data[i : i + 1])
            time.sleep(0.001)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        assert conn.reply(call, 10, "as") == (["x", "y"],)
    finally:
        sender.join(10)


def test_flush_sends_what_is_queued_without_waiting(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, bus = pair
    call = _call(conn, "Early")
    conn.flush(2)
    sent = _received(bus)
    assert b"AUTH EXTERNAL" in sent
    assert b"Early" in sent
    bus.sendall(OK_LINE + _reply(1, "s", (":1.1",)) + _reply(call, "s", ("done",)))
    assert conn.reply(call, 2, "s") == ("done",)


def test_a_failed_flush_is_raised_by_the_next_reply(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.close()
    conn.flush(2)  # EPIPE, kept for the caller's next wait
    with pytest.raises(OSError):
        conn.reply(call, 2)


def test_waiting_for_something_never_sent(pair: tuple[Connection, socket.socket]) -> None:
    conn, bus = pair
    call = _call(conn)
    bus.sendall(OK_LINE + _reply(1, "s", (":1.1",)) + _reply(call))
    assert conn.reply(call, 1) == ()
    for serial in (call, 12345):  # answered already; never asked
        with pytest.raises(DBusError, match="waiting"):
            conn.reply(serial, 1)


def test_abstract_socket_address(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"vault-test-{os.getpid()}-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(b"\0" + name.encode())
    server.listen(1)
    try:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:abstract={name},guid=00")
        conn = Connection.session(2)
        peer, _ = server.accept()
        try:
            call = _call(conn)
            peer.sendall(OK_LINE + _reply(1, "s", (":1.1",)) + _reply(call, "s", ("hi",)))
            assert conn.reply(call, 2, "s") == ("hi",)
        finally:
            conn.close()
            peer.close()
    finally:
        server.close()


# --- SecretService over a fake bus: the same errors and messages as before ---------------------


@pytest.fixture
def fake_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A listening socket standing in for the session bus."""
    path = tmp_path / "bus"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(5)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={path},guid=0123")
    try:
        yield server
    finally:
        server.close()


def _serve(server: socket.socket, *replies: bytes) -> socket.socket:
    peer, _ = server.accept()
    peer.sendall(OK_LINE + _reply(1, "s", (":1.1",)) + b"".join(replies))
    return peer


# Serials: 1 Hello, 2 OpenSession, 3 the alias-path SearchItems, 4 GetSecrets.
SESSION_PATH = "/org/freedesktop/secrets/session/s1"
ATTRS = {"service": "vault", "username": "u"}
Script = Callable[[TheirSession], bytes]  # a reply made with the fake service's session half


def SESSION(half: TheirSession) -> bytes:  # a reply, capitalised as the constants beside it
    public = half.my_public_key.to_bytes(128, "big")
    return _reply(2, "vo", (("ay", public), SESSION_PATH))


def _secrets(to: int, secrets: dict[str, bytes]) -> Script:
    """The answer to GetSecrets, each secret encrypted as the service would."""

    def make(half: TheirSession) -> bytes:
        assert half.aes_key is not None
        value = {
            p: (SESSION_PATH, *encrypt(half.aes_key, v), "text/plain") for p, v in secrets.items()
        }
        return _reply(to, "a{o(oayays)}", (value,))

    return make


def _play(server: socket.socket, ss: SecretService, *replies: bytes | Script) -> socket.socket:
    """The fake service's answers, all sent at once: its half of the exchange (secretstorage's)
    agreed with the public value the client queued in OpenSession."""
    half = TheirSession()
    half.set_server_public_key(int.from_bytes(ss._crypto.public, "big"))
    return _serve(server, *(r if isinstance(r, bytes) else r(half) for r in replies))


def test_secret_service_get_the_fast_way(fake_bus: socket.socket) -> None:
    with SecretService(2) as ss:
        found = _reply(3, "ao", (["/org/freedesktop/secrets/collection/login/2"],))
        peer = _play(fake_bus, ss, SESSION, found, _secrets(4, {"/c/2": b"the key"}))
        try:
            assert ss.get(ATTRS) == "the key"
            assert ss.session == "/org/freedesktop/secrets/session/s1"
        finally:
            peer.close()


def test_secret_service_missing_item_the_long_way(fake_bus: socket.socket) -> None:
    with SecretService(2) as ss:
        peer = _play(
            fake_bus,
            ss,
            SESSION,
            _reply(3, "ao", ([],)),
            _reply(4, "o", ("/org/freedesktop/secrets/collection/login",)),
            _reply(5, "aoao", ([], ["/org/freedesktop/secrets/collection/login/9"])),
        )
        try:
            with pytest.raises(KeyringUnavailable, match="locked"):
                ss.get(ATTRS)
        finally:
            peer.close()


@pytest.mark.parametrize(
    ("replies", "error", "message"),
    [
        (
            [_error(2, "org.freedesktop.DBus.Error.ServiceUnknown")],
            KeyringUnavailable,
            "no Secret Service on the session bus",
        ),
        ([_error(2, "org.freedesktop.DBus.Error.NoReply")], KeyringUnavailable, "unavailable"),
        (
            [_error(2, "org.freedesktop.Secret.Error.NotSupported")],
            Refused,
            "refused OpenSession",
        ),
        ([_reply(2, "s", ("no",))], KeyringUnavailable, "unusable answer to OpenSession"),
        ([b"\0" * 64], KeyringUnavailable, "unusable answer to OpenSession"),
        ([], KeyringUnavailable, r"did not answer within 0.3 s \(OpenSession\)"),
        (
            [SESSION, _reply(3, "ao", ([],)), _reply(4, "o", ("/",))],
            KeyringUnavailable,
            "no default collection",
        ),
        (
            [SESSION, _reply(3, "ao", (["/c/1"],)), _secrets(4, {"/c/1": b"\xff"})],
            KeyringUnavailable,
            "not UTF-8",
        ),
    ],
)
def test_secret_service_errors(
    fake_bus: socket.socket, replies: list[bytes | Script], error: type[Exception], message: str
) -> None:
    with SecretService(0.3) as ss:
        peer = _play(fake_bus, ss, *replies)
        try:
            with pytest.raises(error, match=message):
                ss.get(ATTRS)
            if SESSION not in replies:
                with pytest.raises(error, match=message):  # the session stays unusable
                    ss.get(ATTRS)
        finally:
            peer.close()


def test_secret_service_closed_is_disconnected(fake_bus: socket.socket) -> None:
    with SecretService(2) as ss:
        peer, _ = fake_bus.accept()
        peer.sendall(OK_LINE)
        peer.close()
        with pytest.raises(Disconnected, match="connection to the OS keyring was lost"):
            ss.get(ATTRS)


def test_secret_service_authentication_refused(fake_bus: socket.socket) -> None:
    with SecretService(2) as ss:
        peer, _ = fake_bus.accept()
        peer.sendall(b"REJECTED EXTERNAL\r\n")
        try:
            with pytest.raises(KeyringUnavailable, match="no D-Bus session"):
                ss.get(ATTRS)
        finally:
            peer.close()


@pytest.mark.parametrize(
    ("address", "detail"),
    [
        (None, "not set"),
        ("tcp:host=localhost,port=1", "no unix:path"),
        ("unix:path=/nonexistent/bus", "FileNotFoundError"),
    ],
)
def test_secret_service_without_a_bus(
    monkeypatch: pytest.MonkeyPatch, address: str | None, detail: str
) -> None:
    if address is None:
        monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    with pytest.raises(KeyringUnavailable, match="keyring is unavailable") as caught:
        SecretService(1)
    assert detail in str(caught.value)
    assert caught.value.hint is not None
    assert "key_backend: passphrase" in caught.value.hint


def test_the_keyring_client_imports_no_library() -> None:
    """`vault token` pays for what vault.keys.secretservice imports: no jeepney, no typing."""
    import subprocess
    import sys

    code = "import sys, vault.keys.secretservice; print('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(proc.stdout.split())
    assert "vault.keys.dbus" in loaded
    for heavy in ("jeepney", "typing", "threading", "secretstorage", "keyring"):
        assert heavy not in loaded
