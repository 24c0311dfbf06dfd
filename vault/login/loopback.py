"""The loopback redirect of a native app (RFC 8252 §7.3): a one-shot HTTP listener on
127.0.0.1, on a port the system picks, for ``http://127.0.0.1:PORT/callback``.

Contract:

* It listens on 127.0.0.1 only, never on another address.
* It accepts exactly ONE request for ``GET /callback`` (exact path, query free), then closes
  the listening socket at once: a second request (a replay) finds nothing there.
* Any other path or method is answered 404 / 405 and does not end the wait; a connection that
  sends nothing, or sends slowly, does not hold up the others (one thread, a selector).
* The wait has a deadline (``seconds``, on an injectable clock); past it, nothing was received.
* The browser's connection stays open until the caller answers it (:meth:`Callback.respond`),
  so the page can say what really happened. Pages are plain HTML with no external resource and
  no script, under a Content-Security-Policy that forbids everything.
"""

from __future__ import annotations

import contextlib
import html
import selectors
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from vault.errors import AuthError

HOST = "127.0.0.1"
CALLBACK_PATH = "/callback"
MAX_HEAD = 8192  # a request line and headers; a redirect with a code fits many times over
MAX_CONNECTIONS = 16  # more at once (a flood): the oldest is dropped
DEFAULT_WAIT = 300.0
MAX_WAIT = 1800.0
SEND_TIMEOUT = 5.0
CSP = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "img-src 'none'; script-src 'none'; style-src 'none'"
)


def _response(status: str, body: str) -> bytes:
    data = body.encode("utf-8")
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n"
        f"Content-Security-Policy: {CSP}\r\n"
        "Cache-Control: no-store\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "X-Frame-Options: DENY\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + data


def page(title: str, text: str) -> str:
    """A whole HTML page, ``title`` and ``text`` escaped; nothing it could load or run."""
    t, x = html.escape(title), html.escape(text)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{t}</title></head><body><h1>{t}</h1><p>{x}</p></body></html>\n"
    )


_NOT_FOUND = _response("404 Not Found", page("Not found", "Nothing here."))
_NOT_ALLOWED = _response("405 Method Not Allowed", page("Not allowed", "Nothing here."))
_TOO_LARGE = _response("431 Request Header Fields Too Large", page("Too large", "Refused."))
_BAD = _response("400 Bad Request", page("Bad request", "Refused."))


class Callback:
    """The one request received on /callback: its query string, and the browser waiting."""

    def __init__(self, conn: socket.socket, query: str) -> None:
        self.query = query
        self._conn: socket.socket | None = conn

    def respond(self, ok: bool, text: str) -> None:
        """Answer the browser once (later calls do nothing) and close its connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        title = "Logged in" if ok else "Login failed"
        status = "200 OK" if ok else "400 Bad Request"
        with contextlib.suppress(OSError):
            conn.settimeout(SEND_TIMEOUT)
            conn.sendall(_response(status, page(title, text)))
        with contextlib.suppress(OSError):
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.respond(False, "vault could not finish the login; see your terminal.")

    def __repr__(self) -> str:
        return "Callback(query=<hidden>)"


class Loopback:
    """The listener; a context manager that always closes it."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.bind((HOST, 0))
            self._sock.listen(MAX_CONNECTIONS)
            self._sock.setblocking(False)
            self.port: int = self._sock.getsockname()[1]
        except OSError:
            self.close()
            raise

    @property
    def redirect_uri(self) -> str:
        return f"http://{HOST}:{self.port}{CALLBACK_PATH}"

    @property
    def closed(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[float], None] | None = None,
    ) -> Callback:
        """The one ``GET /callback`` request, received within ``seconds``; the listener is
        closed when this returns or raises (AuthError ``timeout`` past the deadline)."""
        if self._sock is None:
            raise RuntimeError("the loopback listener is closed")
        deadline = clock() + seconds
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ, None)
        conns: dict[socket.socket, bytearray] = {}
        try:
            while True:
                remaining = deadline - clock()
                if remaining <= 0:
                    raise AuthError(
                        f"the browser did not come back within {seconds:g} s; nothing was "
                        "stored [timeout]",
                        code="timeout",
                    )
                if on_wait is not None:
                    on_wait(remaining)
                for key, _ in sel.select(min(1.0, remaining)):
                    if key.data is None:
                        self._accept(sel, conns)
                        continue
                    conn: socket.socket = key.fileobj  # type: ignore[assignment]
                    found = self._read(conn, conns[conn])
                    if found is None:
                        continue
                    sel.unregister(conn)
                    del conns[conn]
                    if isinstance(found, bytes):
                        _send_and_close(conn, found)
                        continue
                    conn.setblocking(True)
                    return Callback(conn, found)
        finally:
            sel.close()
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.close()
            self.close()

    def _accept(self, sel: selectors.BaseSelector, conns: dict[socket.socket, bytearray]) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            if len(conns) >= MAX_CONNECTIONS:
                oldest = next(iter(conns))
                sel.unregister(oldest)
                del conns[oldest]
                with contextlib.suppress(OSError):
                    oldest.close()
            conns[conn] = bytearray()
            sel.register(conn, selectors.EVENT_READ, "conn")

    @staticmethod
    def _read(conn: socket.socket, buf: bytearray) -> bytes | str | None:
        """None: not a whole request head yet. bytes: the answer for a request that does not
        end the wait (sent, then the connection closed). str: the /callback query."""
        try:
            chunk = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            chunk = b""
        if not chunk:
            return b""  # the peer went away: nothing to send
        buf += chunk
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return _TOO_LARGE if len(buf) > MAX_HEAD else None
        if end > MAX_HEAD:
            return _TOO_LARGE
        line = bytes(buf[: buf.find(b"\r\n")])
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return _BAD
        method, target = parts[0], parts[1]
        try:
            text = target.decode("ascii")
        except UnicodeDecodeError:
            return _BAD
        path, _, query = text.partition("?")
        if path != CALLBACK_PATH:
            return _NOT_FOUND
        if method != b"GET":
            return _NOT_ALLOWED
        return query


def _send_and_close(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        if data:
            conn.setblocking(True)
            conn.settimeout(SEND_TIMEOUT)
            conn.sendall(data)
    with contextlib.suppress(OSError):
        conn.close()


def check_wait(seconds: float) -> float:
    """``seconds`` when it is a usable deadline (more than 0, at most :data:`MAX_WAIT`)."""
    if not 0 < seconds <= MAX_WAIT:
        raise ValueError(f"the wait must be more than 0 and at most {MAX_WAIT:g} seconds")
    return seconds
