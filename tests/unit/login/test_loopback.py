"""vault.login.loopback: one request on /callback, 127.0.0.1 only, closed after the wait,
other paths answered 404 without ending it, a silent connection holding nothing up, a
deadline on an injectable clock, and pages that load and run nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from vault.errors import AuthError
from vault.login import loopback


def _in_thread(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _refused(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


@pytest.fixture
def listener() -> Iterator[loopback.Loopback]:
    with loopback.Loopback() as lb:
        yield lb


def test_binds_127_0_0_1_on_an_ephemeral_port(listener: loopback.Loopback) -> None:
    sock = listener._sock
    assert sock is not None
    host, port = sock.getsockname()
    assert host == "127.0.0.1"
    assert port == listener.port > 0
    assert listener.redirect_uri == f"http://127.0.0.1:{port}/callback"


def test_one_callback_then_closed_and_the_replay_refused(listener: loopback.Loopback) -> None:
    answers: list[httpx.Response] = []
    url = listener.redirect_uri + "?code=c&state=s"
    thread = _in_thread(lambda: answers.append(httpx.get(url, timeout=10)))
    with listener.wait(10) as callback:
        assert callback.query == "code=c&state=s"
        assert listener.closed
        assert _refused(listener.port)  # closed while the browser still waits for its page
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=5)  # the replay
        callback.respond(True, "stored <b>x</b>")
        callback.respond(False, "ignored: one answer only")
    thread.join(10)
    (resp,) = answers
    assert resp.status_code == 200
    assert "stored &lt;b&gt;x&lt;/b&gt;" in resp.text
    assert "<script" not in resp.text.lower()
    assert "http" not in resp.text  # nothing external to load
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'none'" in csp
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_other_paths_get_404_and_the_wait_goes_on(listener: loopback.Loopback) -> None:
    base = f"http://127.0.0.1:{listener.port}"
    seen: list[int] = []

    def browser() -> None:
        for path in ("/", "/callback/", "/callbackx?code=1", "/favicon.ico", "/%63allback"):
            seen.append(httpx.get(base + path, timeout=10).status_code)
        seen.append(httpx.post(base + "/callback?code=1", timeout=10).status_code)
        httpx.get(base + "/callback?code=real", timeout=10)

    thread = _in_thread(browser)
    with listener.wait(10) as callback:
        assert callback.query == "code=real"
        callback.respond(True, "ok")
    thread.join(10)
    assert seen == [404, 404, 404, 404, 404, 405]


def test_a_silent_connection_first_holds_nothing_up(listener: loopback.Loopback) -> None:
    silent = socket.create_connection(("127.0.0.1", listener.port))
    half = socket.create_connection(("127.0.0.1", listener.port))
    half.sendall(b"GET /callback?code=evil HTTP/1.1\r\nHost: x\r\n")  # never finished
    try:
        thread = _in_thread(lambda: httpx.get(listener.redirect_uri + "?code=real", timeout=10))
        with listener.wait(10) as callback:
            assert callback.query == "code=real"
            callback.respond(True, "ok")
        thread.join(10)
        assert silent.recv(10) == b""  # closed with the listener, unanswered
    finally:
        silent.close()
        half.close()


@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_a_flood_of_connections_drops_the_oldest(listener: loopback.Loopback) -> None:
    idle: list[socket.socket] = []

    def flood() -> None:
        for _ in range(loopback.MAX_CONNECTIONS * 3):
            idle.append(socket.create_connection(("127.0.0.1", listener.port), timeout=10))
        httpx.get(listener.redirect_uri + "?code=real", timeout=10)

    thread = _in_thread(flood)
    try:
        with listener.wait(20) as callback:
            assert callback.query == "code=real"
        thread.join(10)
        assert len(idle) == loopback.MAX_CONNECTIONS * 3
    finally:
        for s in idle:
            s.close()


def test_an_oversized_or_broken_request_is_refused(listener: loopback.Loopback) -> None:
    def raw(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", listener.port)) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return s.recv(100)

    answers: list[bytes] = []

    def browser() -> None:
        answers.append(raw(b"GET /callback?" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n"))
        answers.append(raw(b"\xff\xfe garbage\r\n\r\n"))
        answers.append(raw(b"GET /callback?\xff HTTP/1.1\r\n\r\n"))
        httpx.get(listener.redirect_uri + "?code=real", timeout=10)

    thread = _in_thread(browser)
    with listener.wait(10) as callback:
        assert callback.query == "code=real"
    thread.join(10)
    assert [a.split(b" ")[1] for a in answers] == [b"431", b"400", b"400"]


@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_the_deadline_on_an_injected_clock() -> None:
    now = [1000.0]

    def clock() -> float:
        now[0] += 40.0  # every look at the clock: 40 s later
        return now[0]

    ticks: list[float] = []
    with loopback.Loopback() as lb:
        with pytest.raises(AuthError) as err:
            lb.wait(100, clock=clock, on_wait=ticks.append)
        assert lb.closed
        assert _refused(lb.port)
    assert err.value.code == "timeout"
    assert err.value.exit_code == 4
    assert "did not come back within 100 s" in err.value.message
    assert ticks == [60.0, 20.0]


def test_a_callback_left_unanswered_gets_the_failure_page(listener: loopback.Loopback) -> None:
    answers: list[httpx.Response] = []
    thread = _in_thread(
        lambda: answers.append(httpx.get(listener.redirect_uri + "?x=1", timeout=10))
    )
    with pytest.raises(RuntimeError, match="boom"), listener.wait(10):
        raise RuntimeError("boom")
    thread.join(10)
    assert answers[0].status_code == 400
    assert "Login failed" in answers[0].text


def test_the_wait_is_bounded() -> None:
    assert loopback.check_wait(1) == 1
    assert loopback.check_wait(loopback.MAX_WAIT) == loopback.MAX_WAIT
    for bad in (0, -1, loopback.MAX_WAIT + 1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="at most"):
            loopback.check_wait(bad)


def test_a_closed_listener_cannot_wait_again(listener: loopback.Loopback) -> None:
    listener.close()
    with pytest.raises(RuntimeError, match="closed"):
        listener.wait(1)
