"""Run a private rsyslogd for the syslog sink's tests, and read back what it received.

:func:`start_rsyslog` writes a config into a folder of its own and starts
``rsyslogd -n -f CONFIG -i PIDFILE`` in the foreground, listening on 127.0.0.1 only, every
input with rsyslog's DEFAULT parsers and framing (nothing is switched off to let a message in
that a stock rsyslog would misread):

* ``imtcp`` on a free TCP port (octet-counted framing, as by default),
* ``imtcp`` with ``streamDriver.name="gtls"`` (RFC 5425 TLS, anonymous clients) on another,
  with a CA and server certificate made by :mod:`tests.harness.testca`, when the gtls driver
  (Debian's ``rsyslog-gnutls``) is installed (:func:`gtls_available`),
* ``imudp`` on a free UDP port,
* ``imuxsock`` on ``FOLDER/log.sock`` with its default special parser for local messages (the
  system socket ``/dev/log`` is left alone: ``SysSock.Use="off"``; rate limiting is off, which
  changes nothing that is parsed).

Every message is written twice: with ``RSYSLOG_SyslogProtocol23Format`` (the RFC 5424 fields as
rsyslog parsed them) to ``FOLDER/out.log``, and as one JSON object a line of the properties
rsyslog parsed (input, hostname, syslogtag, programname, procid, msgid, pri, facility,
severity, structured data, msg) to ``FOLDER/fields.jsonl`` (:class:`Received`).
``global(maxMessageSize="64k")`` is the one limit raised from its default (8k), for the test of a
large event over TCP. rsyslog's own messages go to ``internal.log`` and the harness's readiness
probes to ``probe.log``, so the outputs hold only what the tests sent. imklog is never loaded,
the system's rsyslog, its config and ``/dev/log`` are never touched, and the process is stopped
by its pid (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from tests.harness.testca import TestCA, make_ca

RSYSLOGD = "/usr/sbin/rsyslogd"
"""Debian's rsyslogd (package ``rsyslog``)."""

READY_TIMEOUT = 15.0
"""Seconds to wait for every input to deliver a probe to ``probe.log``."""

STOP_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL."""

START_ATTEMPTS = 3
"""Tries, each on fresh free ports, before :func:`start_rsyslog` gives up."""

PROBE_APP = "rsyslog-harness-probe"

_MAX_UNIX_PATH = 107  # sun_path is 108 bytes with the NUL


class RsyslogError(RuntimeError):
    """rsyslogd could not be started or did not become ready."""


class RsyslogConfigError(RsyslogError):
    """``rsyslogd -N1`` refused the generated config (never retried)."""


def gtls_available() -> bool:
    """Whether rsyslog's GnuTLS stream driver (Debian: ``rsyslog-gnutls``) is installed."""
    return any(
        glob.glob(pattern)
        for pattern in ("/usr/lib/*/rsyslog/lmnsd_gtls.so", "/usr/lib/rsyslog/lmnsd_gtls.so")
    )


def find_rsyslogd() -> str | None:
    """Return the rsyslogd executable, or None when rsyslog is not installed."""
    if os.access(RSYSLOGD, os.X_OK):
        return RSYSLOGD
    return shutil.which("rsyslogd")


def free_port(kind: socket.SocketKind) -> int:
    """A port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quote(value: str) -> str:
    """A RainerScript string literal."""
    if any(ch in value for ch in '"\\\n\r'):
        raise RsyslogError(f"cannot put {value!r} in an rsyslog config")
    return f'"{value}"'


FIELDS = (
    "inputname",
    "hostname",
    "syslogtag",
    "programname",
    "app-name",
    "procid",
    "msgid",
    "pri",
    "syslogfacility",
    "syslogseverity",
    "protocol-version",
    "structured-data",
    "msg",
)
"""The rsyslog properties ``fields.jsonl`` holds, each as a JSON string."""


def _fields_template() -> str:
    parts = [f'property(name="{name}" format="jsonf")' for name in FIELDS]
    return (
        'template(name="vault_fields" type="list") {\n    constant(value="{")\n    '
        + '\n    constant(value=",")\n    '.join(parts)
        + '\n    constant(value="}\\n")\n}\n'
    )


def write_config(
    base: Path, tcp_port: int, udp_port: int, tls_port: int | None = None, ca: TestCA | None = None
) -> Path:
    """Write ``base/rsyslog.conf`` and return its path (a TLS input when ``tls_port``/``ca``)."""
    out = _quote(str(base / "out.log"))
    fields = _quote(str(base / "fields.jsonl"))
    tls = ""
    if tls_port is not None and ca is not None:
        tls = f"""
input(type="imtcp" address="127.0.0.1" port="{tls_port}" name="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      streamDriver.CAFile={_quote(str(ca.ca_file))}
      streamDriver.CertFile={_quote(str(ca.cert_file))}
      streamDriver.KeyFile={_quote(str(ca.key_file))})
"""
    config = f"""\
# A private rsyslog for the vault syslog tests: 127.0.0.1 only, no kernel log, no /dev/log,
# every parser and framing option at its default.
global(workDirectory={_quote(str(base))} maxMessageSize="64k")

module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}" name="tcp")
{tls}
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp_port}" name="udp")

module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket={_quote(str(base / "log.sock"))} ratelimit.interval="0")

{_fields_template()}
if $inputname == "rsyslogd" then {{
    action(type="omfile" file={_quote(str(base / "internal.log"))})
    stop
}}
if $programname == "{PROBE_APP}" then {{
    action(type="omfile" file={_quote(str(base / "probe.log"))} template="vault_fields")
    stop
}}
action(type="omfile" file={out} template="RSYSLOG_SyslogProtocol23Format")
action(type="omfile" file={fields} template="vault_fields")
"""
    path = base / "rsyslog.conf"
    path.write_text(config, encoding="utf-8")
    return path


# -- reading records back ------------------------------------------------------------------------

_HEADER = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<version>\d{1,2}) (?P<timestamp>\S+) (?P<hostname>\S+) "
    r"(?P<app_name>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
)
_SD_PARAM = re.compile(r' ([^= \]"]{1,32})="((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_UNESCAPE = re.compile(r'\\(["\\\]])')


@dataclass
class Record:
    """One line of ``out.log``: an RFC 5424 message as rsyslog parsed it."""

    line: str
    pri: int
    version: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str
    """The STRUCTURED-DATA field as rsyslog wrote it (escapes kept)."""
    sd: dict[str, dict[str, str]] = field(default_factory=dict)
    """SD-ID -> PARAM-NAME -> value, with RFC 5424 §6.3.3 escapes undone."""
    msg: str = ""


def parse_sd(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """Parse STRUCTURED-DATA at the start of ``text``; return it and the rest of ``text``."""
    if text.startswith("-"):
        return {}, text[1:]
    elements: dict[str, dict[str, str]] = {}
    pos = 0
    while pos < len(text) and text[pos] == "[":
        match = re.compile(r'[^= \]"]{1,32}').match(text, pos + 1)
        if match is None:
            raise ValueError(f"bad SD-ID at {pos} in {text!r}")
        params: dict[str, str] = {}
        pos = match.end()
        while (param := _SD_PARAM.match(text, pos)) is not None:
            params[param.group(1)] = _SD_UNESCAPE.sub(r"\1", param.group(2))
            pos = param.end()
        if pos >= len(text) or text[pos] != "]":
            raise ValueError(f"unterminated SD element at {pos} in {text!r}")
        elements[match.group()] = params
        pos += 1
    if not elements:
        raise ValueError(f"no structured data in {text!r}")
    return elements, text[pos:]


def parse_record(line: str) -> Record:
    """Parse one ``RSYSLOG_SyslogProtocol23Format`` line (without its newline)."""
    header = _HEADER.match(line)
    if header is None:
        raise ValueError(f"not an RFC 5424 line: {line!r}")
    rest = line[header.end() :]
    sd, after = parse_sd(rest)
    structured = rest[: len(rest) - len(after)]
    if after and not after.startswith(" "):
        raise ValueError(f"no space after the structured data in {line!r}")
    return Record(
        line=line,
        pri=int(header["pri"]),
        version=int(header["version"]),
        timestamp=header["timestamp"],
        hostname=header["hostname"],
        app_name=header["app_name"],
        procid=header["procid"],
        msgid=header["msgid"],
        structured_data=structured,
        sd=sd,
        msg=after[1:],
    )


def read_records(path: Path) -> list[Record]:
    """Every complete line of ``path`` (rsyslog output) that is an RFC 5424 line (one not UTF-8
    or not of that form is left out), as a :class:`Record`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # the last piece is "" or a line still being written
    records = []
    for line in lines:
        try:
            records.append(parse_record(line.decode("utf-8")))
        except ValueError:  # not ours: what a test sent to the wrong input (a TLS hello to TCP)
            continue
    return records


@dataclass(frozen=True)
class Received:
    """One line of ``fields.jsonl``: the properties rsyslog parsed from one message."""

    inputname: str
    hostname: str
    syslogtag: str
    programname: str
    app_name: str
    procid: str
    msgid: str
    pri: int
    facility: int
    severity: int
    protocol_version: str
    structured_data: str
    msg: str

    @classmethod
    def from_line(cls, line: bytes) -> Received:
        doc: dict[str, Any] = json.loads(line)
        return cls(
            inputname=doc["inputname"],
            hostname=doc["hostname"],
            syslogtag=doc["syslogtag"],
            programname=doc["programname"],
            app_name=doc["app-name"],
            procid=doc["procid"],
            msgid=doc["msgid"],
            pri=int(doc["pri"]),
            facility=int(doc["syslogfacility"]),
            severity=int(doc["syslogseverity"]),
            protocol_version=doc["protocol-version"],
            structured_data=doc["structured-data"],
            msg=doc["msg"],
        )


def read_received(path: Path) -> list[Received]:
    """Every complete line of ``path`` (``fields.jsonl`` or ``probe.log``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [Received.from_line(line) for line in data.split(b"\n")[:-1]]


# -- the running daemon --------------------------------------------------------------------------


@dataclass
class Rsyslog:
    """A running private rsyslogd. Stop it with :meth:`stop` or use it as a context manager."""

    base: Path
    tcp_port: int
    udp_port: int
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]
    tls_port: int | None = None
    ca: TestCA | None = None
    """The CA that signed the TLS input's certificate (None without a TLS input)."""

    @property
    def unix_socket(self) -> Path:
        return self.base / "log.sock"

    @property
    def out_log(self) -> Path:
        return self.base / "out.log"

    @property
    def pidfile(self) -> Path:
        return self.base / "rsyslogd.pid"

    @property
    def fields_log(self) -> Path:
        return self.base / "fields.jsonl"

    def records(self) -> list[Record]:
        """Everything in ``out.log`` so far."""
        return read_records(self.out_log)

    def received(self) -> list[Received]:
        """Everything in ``fields.jsonl`` so far."""
        return read_received(self.fields_log)

    def wait_for_received(self, marker: str, count: int, timeout: float = 10.0) -> list[Received]:
        """As :meth:`wait_for`, on ``fields.jsonl``: messages whose ``msg`` holds ``marker``."""
        deadline = time.monotonic() + timeout
        found: list[Received] = []
        while time.monotonic() < deadline:
            found = [got for got in self.received() if marker in got.msg]
            if len(found) >= count:
                break
            self.check_alive()
            time.sleep(0.05)
        return found

    def wait_for(self, marker: str, count: int, timeout: float = 10.0) -> list[Record]:
        """Poll ``out.log`` until ``count`` records contain ``marker``; return those records.

        After ``timeout`` seconds, returns what is there (fewer than ``count``).
        """
        deadline = time.monotonic() + timeout
        found: list[Record] = []
        while time.monotonic() < deadline:
            found = [record for record in self.records() if marker in record.line]
            if len(found) >= count:
                break
            self.check_alive()
            time.sleep(0.05)
        return found

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RsyslogError(f"rsyslogd exited with {self.proc.returncode}: {self.stderr_text()}")

    def stderr_text(self) -> str:
        self.stderr.flush()
        return (self.base / "rsyslogd.stderr").read_text("utf-8", "replace")

    def stop(self) -> None:
        """SIGTERM the pid, SIGKILL after :data:`STOP_GRACE` seconds. Idempotent."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_GRACE)
        if not self.stderr.closed:
            self.stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _probe_message(marker: str, local: bool = False) -> bytes:
    if local:  # what a local client sends to /dev/log (glibc's syslog(3))
        return f"<14>{time.strftime('%b %e %H:%M:%S')} {PROBE_APP}: {marker}".encode()
    return f"<14>1 - - {PROBE_APP} - - - {marker}".encode()


def _send_probe(daemon: Rsyslog, kind: str, marker: str) -> None:
    message = _probe_message(marker, local=kind == "unix")
    if kind == "tcp":
        with socket.create_connection(("127.0.0.1", daemon.tcp_port), 0.5) as conn:
            conn.sendall(b"%d %s" % (len(message), message))
    elif kind == "tls":
        assert daemon.ca is not None
        assert daemon.tls_port is not None
        context = ssl.create_default_context(cafile=str(daemon.ca.ca_file))
        with (
            socket.create_connection(("127.0.0.1", daemon.tls_port), 0.5) as conn,
            context.wrap_socket(conn, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"%d %s" % (len(message), message))
            with contextlib.suppress(OSError):
                tls.unwrap()
    elif kind == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(message, ("127.0.0.1", daemon.udp_port))
    else:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix:
            unix.sendto(message, str(daemon.unix_socket))


def _wait_ready(daemon: Rsyslog, deadline: float) -> bool:
    """Send a probe through each input until every one shows up in ``probe.log``."""
    probe_log = daemon.base / "probe.log"
    kinds = ["tcp", "udp", "unix"] + (["tls"] if daemon.tls_port is not None else [])
    wanted = {kind: f"probe-{daemon.tcp_port}-{kind}" for kind in kinds}
    seen: set[str] = set()
    while time.monotonic() < deadline:
        daemon.check_alive()
        for kind in sorted(set(kinds) - seen):
            with contextlib.suppress(OSError):
                _send_probe(daemon, kind, wanted[kind])
        time.sleep(0.2)
        messages = {got.msg.strip() for got in read_received(probe_log)}
        seen = {kind for kind, marker in wanted.items() if marker in messages}
        if seen == set(kinds):
            return True
    return False


def check_config(executable: str, config: Path) -> None:
    """Run ``rsyslogd -N1`` on ``config``: an unknown parameter is otherwise only a warning."""
    try:
        result = subprocess.run(
            [executable, "-N1", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RsyslogConfigError(f"rsyslogd -N1 -f {config} did not finish") from exc
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    if result.returncode != 0 or "error" in output.lower():
        raise RsyslogConfigError(f"rsyslogd refused {config}: {output.strip()}")


def _start_once(executable: str, base: Path, deadline: float, ca: TestCA | None) -> Rsyslog:
    tcp_port = free_port(socket.SOCK_STREAM)
    udp_port = free_port(socket.SOCK_DGRAM)
    tls_port = free_port(socket.SOCK_STREAM) if ca is not None else None
    for name in ("out.log", "fields.jsonl", "probe.log", "internal.log", "rsyslogd.pid"):
        with contextlib.suppress(FileNotFoundError):
            (base / name).unlink()
    with contextlib.suppress(FileNotFoundError):
        (base / "log.sock").unlink()
    config = write_config(base, tcp_port, udp_port, tls_port, ca)
    check_config(executable, config)
    stderr = (base / "rsyslogd.stderr").open("wb")
    proc = subprocess.Popen(
        [executable, "-n", "-f", str(config), "-i", str(base / "rsyslogd.pid")],
        stdin=subprocess.DEVNULL,
        stdout=stderr,
        stderr=stderr,
        cwd=base,
        start_new_session=True,
    )
    daemon = Rsyslog(
        base=base,
        tcp_port=tcp_port,
        udp_port=udp_port,
        proc=proc,
        stderr=stderr,
        tls_port=tls_port,
        ca=ca,
    )
    try:
        if _wait_ready(daemon, deadline):
            return daemon
    except BaseException:
        daemon.stop()
        raise
    daemon.stop()
    raise RsyslogError(
        f"rsyslogd (tcp {tcp_port}, udp {udp_port}) was not ready in time: "
        f"{daemon.stderr_text().strip() or 'no output'}"
    )


def start_rsyslog(
    base: Path, *, attempts: int = START_ATTEMPTS, tls: bool | None = None
) -> Rsyslog:
    """Start a private rsyslogd in ``base`` (an empty folder) and return it once ready.

    ``tls``: with a TLS input (a CA made in ``base/ca``); by default when
    :func:`gtls_available`. Ports are found free by binding to port 0; when another process
    takes one first, the probes do not arrive and the start is retried on new ports, at most
    ``attempts`` times.
    """
    executable = find_rsyslogd()
    if executable is None:
        raise RsyslogError("rsyslogd is not installed (apt-get install rsyslog)")
    if len(os.fsencode(base / "log.sock")) > _MAX_UNIX_PATH:
        raise RsyslogError(f"{base} is too long a path for a unix socket inside it")
    if tls is None:
        tls = gtls_available()
    ca = make_ca(base / "ca") if tls else None
    errors: list[str] = []
    for _ in range(attempts):
        try:
            return _start_once(executable, base, time.monotonic() + READY_TIMEOUT, ca)
        except RsyslogConfigError:
            raise
        except RsyslogError as exc:
            errors.append(str(exc))
    raise RsyslogError("; ".join(errors))
