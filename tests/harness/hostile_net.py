"""Raw-socket misbehaviour on 127.0.0.1 that http.server cannot produce: a server that trickles
its answer one byte at a time, and a proxy that records what it is sent and forwards nothing.

Both are bounded: every connection ends after ``limit`` seconds (or when the client goes),
and everything stops when the context manager exits."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def _read_request(conn: socket.socket, deadline: float) -> bytes:
    """The request head and its Content-Length body, or what arrived before ``deadline``."""
    data = b""
    while b"\r\n\r\n" not in data and time.monotonic() < deadline and len(data) < 1 << 20:
        conn.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = conn.recv(65536)
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    while len(body) < min(length, 1 << 20) and time.monotonic() < deadline:
        conn.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = conn.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        body += chunk
        data += chunk
    return data


@dataclass
class Listener:
    port: int = 0
    received: list[bytes] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def _serve(answer: object, limit: float) -> Iterator[Listener]:
    """Accept on 127.0.0.1; each connection is handed to ``answer(conn, listener, deadline)``."""
    listener = Listener()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.1)
    listener.port = sock.getsockname()[1]
    threads: list[threading.Thread] = []

    def one(conn: socket.socket) -> None:
        start = time.monotonic()
        try:
            answer(conn, listener, start + limit)  # type: ignore[operator]
        except OSError:
            pass
        finally:
            listener.durations.append(time.monotonic() - start)
            conn.close()

    def accept() -> None:
        while not listener.stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            thread = threading.Thread(target=one, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener
    finally:
        listener.stop.set()
        acceptor.join(5)
        for thread in threads:
            thread.join(limit + 5)
        sock.close()


def json_answer(body: bytes, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


@contextmanager
def trickling_server(
    answer: bytes, *, at_once: int = 0, every: float = 0.5, limit: float = 40.0
) -> Iterator[Listener]:
    """Reads each request, sends the first ``at_once`` bytes of ``answer``, then the rest one
    byte every ``every`` seconds: never slow enough for a per-read timeout, never done. A
    connection ends after ``limit`` seconds."""

    def trickle(conn: socket.socket, listener: Listener, deadline: float) -> None:
        listener.received.append(_read_request(conn, deadline))
        conn.sendall(answer[:at_once])
        answer_rest = answer[at_once:]
        for byte in answer_rest:
            if listener.stop.is_set() or time.monotonic() >= deadline:
                return
            conn.sendall(bytes([byte]))
            listener.stop.wait(every)

    with _serve(trickle, limit) as listener:
        yield listener


@contextmanager
def recording_proxy(*, limit: float = 5.0) -> Iterator[Listener]:
    """Records every byte a client sends it (a forward request or a CONNECT), answers 502 and
    forwards nothing: whatever a test finds in ``received`` is what a proxy would have seen."""

    def record(conn: socket.socket, listener: Listener, deadline: float) -> None:
        listener.received.append(_read_request(conn, min(deadline, time.monotonic() + 2)))
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    with _serve(record, limit) as listener:
        yield listener
