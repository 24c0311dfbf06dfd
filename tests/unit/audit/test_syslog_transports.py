"""The syslog sink's newer transports and formats: RFC 5425 TLS to a real rsyslogd (gtls driver,
a CA made in the fixture), every resolved address tried, journald's native protocol, and the
OCSF/ECS documents as the MSG."""

from __future__ import annotations

import json
import os
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.rsyslog import Rsyslog
from tests.harness.testca import TestCA, make_ca
from vault.audit import forward
from vault.audit.forward import BOM, SyslogError, SyslogSink, parse_address
from vault.audit.local import JOURNAL_SOCKET, format_journal, journal_field_name

EVENT: dict[str, object] = {"seq": 3, "event": "used", "name": "gh", "outcome": "success"}


def unique() -> str:
    return uuid.uuid4().hex


def tls_of(daemon: Rsyslog) -> tuple[int, TestCA]:
    if daemon.tls_port is None or daemon.ca is None:
        pytest.skip("rsyslog's gtls driver is not installed (apt-get install rsyslog-gnutls)")
    return daemon.tls_port, daemon.ca


def closed_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tls:logs.example.com", ("tls", ("logs.example.com", 6514))),
        ("tls:127.0.0.1:10514", ("tls", ("127.0.0.1", 10514))),
        ("tls:[::1]:6514", ("tls", ("::1", 6514))),
        ("journal", ("journal", JOURNAL_SOCKET)),
        ("journal:", ("journal", JOURNAL_SOCKET)),
        ("journal:/tmp/j.sock", ("journal", "/tmp/j.sock")),
        (f"unix:{JOURNAL_SOCKET}", ("journal", JOURNAL_SOCKET)),
        ("unix:/run/systemd/journal/dev-log", ("unix", "/run/systemd/journal/dev-log")),
    ],
)
def test_parse_new_addresses(address: str, expected: object) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"message_format": "cef"}, "unknown syslog format"),
        ({"tls_pin": "sha256:00"}, "tls_pin must be"),
        ({"tls_pin": "md5:" + "0" * 64}, "tls_pin must be"),
    ],
)
def test_bad_sink_settings(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SyslogError, match=match):
        SyslogSink.from_config("tls:127.0.0.1:6514", **kwargs)


@pytest.mark.parametrize("address", ["tcp:127.0.0.1:514", "udp:127.0.0.1", "unix:/dev/log"])
def test_tls_settings_only_for_tls(address: str) -> None:
    with pytest.raises(SyslogError, match="apply only to a tls"):
        SyslogSink.from_config(address, tls_ca="/etc/ssl/certs/ca-certificates.crt")


# -- TLS against rsyslog's gtls driver ------------------------------------------------------------


def test_tls_with_the_ca_reaches_rsyslog(rsyslog: Rsyslog) -> None:
    port, ca = tls_of(rsyslog)
    marker = unique()
    sink = SyslogSink.from_config(f"tls:127.0.0.1:{port}", tls_ca=str(ca.ca_file))
    sink.send_many([{**EVENT, "fingerprint": marker, "seq": n} for n in range(3)])
    records = rsyslog.wait_for(marker, 3)
    assert [r.sd["vault@32473"]["seq"] for r in records] == ["0", "1", "2"]
    got = rsyslog.wait_for_received(marker, 3)
    assert {g.inputname for g in got} == {"tls"}


def test_tls_pin_of_the_server_key(rsyslog: Rsyslog) -> None:
    port, ca = tls_of(rsyslog)
    marker = unique()
    pin = f"sha256:{ca.spki_sha256.upper()}"
    sink = SyslogSink.from_config(f"tls:127.0.0.1:{port}", tls_ca=str(ca.ca_file), tls_pin=pin)
    sink.send({**EVENT, "fingerprint": marker})
    assert len(rsyslog.wait_for(marker, 1)) == 1


@pytest.mark.parametrize("pin_of", ["other key", "certificate not key"])
def test_tls_wrong_pin_sends_nothing(rsyslog: Rsyslog, tmp_path: Path, pin_of: str) -> None:
    port, ca = tls_of(rsyslog)
    marker = unique()
    pin = make_ca(tmp_path).spki_sha256 if pin_of == "other key" else ca.cert_sha256
    sink = SyslogSink.from_config(
        f"tls:127.0.0.1:{port}", tls_ca=str(ca.ca_file), tls_pin=f"sha256:{pin}"
    )
    with pytest.raises(SyslogError, match=r"does not match audit\.tls_pin") as caught:
        sink.send({**EVENT, "fingerprint": marker})
    assert "\n" not in str(caught.value)
    time.sleep(0.3)
    assert rsyslog.wait_for(marker, 1, timeout=0.2) == []


def test_tls_wrong_ca_sends_nothing(rsyslog: Rsyslog, tmp_path: Path) -> None:
    port, _ = tls_of(rsyslog)
    marker = unique()
    other = make_ca(tmp_path)
    sink = SyslogSink.from_config(f"tls:127.0.0.1:{port}", tls_ca=str(other.ca_file))
    with pytest.raises(SyslogError, match="TLS certificate refused: unable to get local issuer"):
        sink.send({**EVENT, "fingerprint": marker})
    time.sleep(0.3)
    assert rsyslog.wait_for(marker, 1, timeout=0.2) == []


def test_tls_system_cas_do_not_trust_the_test_ca(rsyslog: Rsyslog) -> None:
    port, _ = tls_of(rsyslog)
    with pytest.raises(SyslogError, match="TLS certificate refused"):
        SyslogSink.from_config(f"tls:127.0.0.1:{port}").send(EVENT)


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_tls_unusable_ca_file(tmp_path: Path, content: bytes | None) -> None:
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    sink = SyslogSink.from_config(f"tls:127.0.0.1:{closed_port()}", tls_ca=str(ca))
    with pytest.raises(SyslogError, match="cannot load tls_ca") as caught:
        sink.send(EVENT)
    assert "\n" not in str(caught.value)


def test_tls_ca_writable_by_others_is_refused(rsyslog: Rsyslog, tmp_path: Path) -> None:
    port, ca = tls_of(rsyslog)
    copy = tmp_path / "ca.pem"
    copy.write_bytes(ca.ca_file.read_bytes())
    copy.chmod(0o664)
    sink = SyslogSink.from_config(f"tls:127.0.0.1:{port}", tls_ca=str(copy))
    with pytest.raises(SyslogError, match="group or others may write it"):
        sink.send(EVENT)
    copy.chmod(0o644)
    marker = unique()
    SyslogSink.from_config(f"tls:127.0.0.1:{port}", tls_ca=str(copy)).send(
        {**EVENT, "fingerprint": marker}
    )
    assert len(rsyslog.wait_for(marker, 1)) == 1


@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_tls_to_a_plain_tcp_port_fails_cleanly(rsyslog: Rsyslog) -> None:
    """A TLS client on rsyslog's plain TCP input: the handshake fails (or times out), bounded."""
    _, ca = tls_of(rsyslog)
    sink = SyslogSink.from_config(
        f"tls:127.0.0.1:{rsyslog.tcp_port}", tls_ca=str(ca.ca_file), timeout=1.0
    )
    start = time.monotonic()
    with pytest.raises(SyslogError, match=r"TLS handshake failed|timed out after 1 s"):
        sink.send(EVENT)
    assert time.monotonic() - start < 3.0


# -- TLS against servers that misbehave on purpose (what rsyslog will not do on demand) ----------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Start a one-connection server on 127.0.0.1: ``mode`` ``silent`` (accepts, never
    speaks TLS) or ``wrong-name`` (a certificate of the test CA for other.example only)."""
    servers: list[socket.socket] = []
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def start(mode: str, ca: TestCA | None = None) -> int:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        server.settimeout(10)
        servers.append(server)

        def serve() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                if mode == "wrong-name":
                    assert ca is not None
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    context.load_cert_chain(ca.cert_file, ca.key_file)
                    try:
                        with context.wrap_socket(conn, server_side=True) as tls:
                            tls.recv(1)
                    except OSError:
                        return
                else:
                    stop.wait(10)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        port: int = server.getsockname()[1]
        return port

    yield start
    stop.set()
    for server in servers:
        server.close()
    for thread in threads:
        thread.join(10)


@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_tls_silent_server_times_out(tls_server: Callable[..., int], tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    port = tls_server("silent")
    sink = SyslogSink.from_config(f"tls:127.0.0.1:{port}", tls_ca=str(ca.ca_file), timeout=1.0)
    start = time.monotonic()
    with pytest.raises(SyslogError, match="timed out after 1 s"):
        sink.send(EVENT)
    assert time.monotonic() - start < 3.0


def test_tls_host_name_is_checked(tls_server: Callable[..., int], tmp_path: Path) -> None:
    ca = make_ca(tmp_path, names=["other.example"])
    port = tls_server("wrong-name", ca)
    sink = SyslogSink.from_config(f"tls:127.0.0.1:{port}", tls_ca=str(ca.ca_file))
    with pytest.raises(SyslogError, match="TLS certificate refused: IP address mismatch"):
        sink.send(EVENT)


# -- every resolved address -----------------------------------------------------------------------


@pytest.fixture
def two_addresses(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make ``name`` resolve to ::1 (where nothing listens) and then 127.0.0.1, in that order,
    as a dual-stack resolver gives them (this machine's /etc/hosts cannot be changed)."""

    def install(dead_port: int, live_port: int, name: str = "syslog.test") -> None:
        real = forward._getaddrinfo

        def fake(host: str, port: int, socktype: int, flags: int = 0) -> list[Any]:
            if host != name:
                return real(host, port, socktype, flags)
            if flags & socket.AI_NUMERICHOST:
                raise socket.gaierror(socket.EAI_NONAME, "not numeric")
            return [
                (socket.AF_INET6, socktype, 0, ("::1", dead_port, 0, 0)),
                (socket.AF_INET, socktype, 0, ("127.0.0.1", live_port)),
            ]

        monkeypatch.setattr(forward, "_getaddrinfo", fake)

    return install


def v6_port_is_free(port: int, kind: socket.SocketKind) -> bool:
    try:
        with socket.socket(socket.AF_INET6, kind) as sock:
            sock.bind(("::1", port))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_every_address_is_tried(
    rsyslog: Rsyslog, two_addresses: Callable[..., None], transport: str
) -> None:
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    port = rsyslog.tcp_port if transport == "tcp" else rsyslog.udp_port
    if not v6_port_is_free(port, kind):
        pytest.skip("no IPv6 loopback here, or the port is taken on ::1")
    two_addresses(port, port)
    marker = unique()
    SyslogSink.from_config(f"{transport}:syslog.test:{port}").send_many(
        [{**EVENT, "fingerprint": marker, "seq": n} for n in range(3)]
    )
    records = rsyslog.wait_for(marker, 3)
    assert [r.sd["vault@32473"]["seq"] for r in records] == ["0", "1", "2"]


def test_every_address_is_tried_for_tls(
    rsyslog: Rsyslog, two_addresses: Callable[..., None]
) -> None:
    """The certificate names 127.0.0.1 and localhost: ``localhost`` resolving to ::1 first."""
    port, ca = tls_of(rsyslog)
    if not v6_port_is_free(port, socket.SOCK_STREAM):
        pytest.skip("no IPv6 loopback here, or the port is taken on ::1")
    two_addresses(port, port, name="localhost")
    marker = unique()
    sink = SyslogSink.from_config(f"tls:localhost:{port}", tls_ca=str(ca.ca_file))
    sink.send({**EVENT, "fingerprint": marker})
    assert len(rsyslog.wait_for(marker, 1)) == 1


def test_tls_name_not_in_the_certificate(
    rsyslog: Rsyslog, two_addresses: Callable[..., None]
) -> None:
    port, ca = tls_of(rsyslog)
    two_addresses(port, port, name="syslog.test")
    marker = unique()
    sink = SyslogSink.from_config(f"tls:syslog.test:{port}", tls_ca=str(ca.ca_file))
    with pytest.raises(SyslogError, match="TLS certificate refused: Hostname mismatch"):
        sink.send({**EVENT, "fingerprint": marker})
    time.sleep(0.3)
    assert rsyslog.wait_for(marker, 1, timeout=0.2) == []


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_all_addresses_refused(two_addresses: Callable[..., None], transport: str) -> None:
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    port = closed_port(kind)
    if not v6_port_is_free(port, kind):
        pytest.skip("no IPv6 loopback here, or the port is taken on ::1")
    two_addresses(port, port)
    with pytest.raises(SyslogError, match=rf"{transport}:syslog\.test:{port}: connection refused"):
        SyslogSink.from_config(f"{transport}:syslog.test:{port}", timeout=1).send(EVENT)


# -- OCSF and ECS as the MSG ----------------------------------------------------------------------


@pytest.mark.parametrize("message_format", ["ocsf", "ecs"])
@pytest.mark.parametrize("transport", ["tcp", "udp", "tls"])
def test_documents_as_the_msg(rsyslog: Rsyslog, message_format: str, transport: str) -> None:
    marker = unique()
    address = {
        "tcp": f"tcp:127.0.0.1:{rsyslog.tcp_port}",
        "udp": f"udp:127.0.0.1:{rsyslog.udp_port}",
        "tls": f"tls:127.0.0.1:{tls_of(rsyslog)[0] if transport == 'tls' else 0}",
    }[transport]
    extra: dict[str, Any] = (
        {"tls_ca": str(tls_of(rsyslog)[1].ca_file)} if transport == "tls" else {}
    )
    sink = SyslogSink.from_config(address, message_format=message_format, **extra)
    event = {**EVENT, "fingerprint": marker, "reason": "é\n\x1b[31m"}
    message = sink.format(event)
    assert BOM not in message
    assert message.isascii()
    sink.send(event)
    (record,) = rsyslog.wait_for(marker, 1)
    assert record.msgid == "used"
    assert record.structured_data == "-"
    doc = json.loads(record.msg)
    if message_format == "ocsf":
        assert doc["class_uid"] == 3002
        assert doc["unmapped"]["fingerprint"] == marker
        assert doc["status_detail"] == "é\n\x1b[31m"
    else:
        assert doc["event"]["action"] == "used"
        assert doc["vault"]["fingerprint"] == marker
        assert doc["event"]["reason"] == "é\n\x1b[31m"


# -- journald's native protocol -------------------------------------------------------------------


def parse_journal(datagram: bytes) -> list[tuple[str, bytes]]:
    """Decode a native-protocol datagram as journald does (an independent reading)."""
    fields: list[tuple[str, bytes]] = []
    pos = 0
    while pos < len(datagram):
        end = datagram.index(b"\n", pos)
        line = datagram[pos:end]
        if b"=" in line:
            name, _, value = line.partition(b"=")
            fields.append((name.decode(), value))
            pos = end + 1
        else:
            (size,) = struct.unpack("<Q", datagram[end + 1 : end + 9])
            value = datagram[end + 9 : end + 9 + size]
            assert datagram[end + 9 + size : end + 10 + size] == b"\n"
            fields.append((line.decode(), value))
            pos = end + 10 + size
    return fields


def test_journal_encoding() -> None:
    data = format_journal([("MESSAGE", "one\ntwo"), ("PRIORITY", "5"), ("X_Y", b"a=b")])
    assert data == (b"MESSAGE\n" + struct.pack("<Q", 7) + b"one\ntwo\n" + b"PRIORITY=5\nX_Y=a=b\n")
    assert parse_journal(data) == [("MESSAGE", b"one\ntwo"), ("PRIORITY", b"5"), ("X_Y", b"a=b")]
    for bad in ("lower", "_TRUSTED", "1ST", "A-B", ""):
        with pytest.raises(ValueError, match="journal field name"):
            format_journal([(bad, "x")])


@pytest.mark.parametrize(
    ("name", "field"),
    [("VAULT_seq", "VAULT_SEQ"), ("VAULT_a.b-c", "VAULT_A_B_C"), ("_x", "X"), ("9", None)],
)
def test_journal_field_names(name: str, field: str | None) -> None:
    assert journal_field_name(name) == field


@pytest.mark.parametrize("message_format", ["rfc5424", "ocsf"])
def test_journal_datagrams(tmp_path: Path, message_format: str) -> None:
    """What journald would receive, read from a datagram socket bound where it would be."""
    path = tmp_path / "socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(5)
        sink = SyslogSink.from_config(f"journal:{path}", message_format=message_format)
        hostile = {
            **EVENT,
            "outcome": "denied",
            "reason": "line\nbreak",
            "name": "gh\x1b[2J",
            "weird key!": 1,
        }
        sink.send_many([hostile, EVENT])
        datagrams = [receiver.recv(1 << 16), receiver.recv(1 << 16)]
    first = dict(parse_journal(datagrams[0]))
    assert first["PRIORITY"] == b"4"
    assert first["SYSLOG_FACILITY"] == b"10"
    assert first["SYSLOG_IDENTIFIER"] == b"vault"
    assert first["SYSLOG_PID"] == str(os.getpid()).encode()
    assert first["VAULT_EVENT"] == b"used"
    assert first["VAULT_SEQ"] == b"3"
    assert first["VAULT_REASON"] == b"line\\nbreak"
    assert first["VAULT_NAME"] == b"gh\\x1b[2J"
    assert first["VAULT_WEIRD_KEY_"] == b"1"
    message = json.loads(first["MESSAGE"])
    if message_format == "rfc5424":
        assert message == hostile
    else:
        assert message["class_uid"] == 3002
    assert first["MESSAGE"].isascii()
    assert dict(parse_journal(datagrams[1]))["PRIORITY"] == b"5"


def test_journal_socket_missing(tmp_path: Path) -> None:
    sink = SyslogSink.from_config(f"journal:{tmp_path / 'socket'}")
    with pytest.raises(SyslogError, match="no such file"):
        sink.send(EVENT)
