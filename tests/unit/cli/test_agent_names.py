"""`vault.keys.agent.names` against agents that cannot give names: none runs, one answers
that it does not know the request (an agent older than the `names` op), one sends junk."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vault.keys.agent import MAX_REQUEST, PROTOCOL, frame, names, read_frame


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    folder = tmp_path / "agent"
    folder.mkdir(mode=0o700)
    return folder / "agent.sock"


def _serve(path: Path, answer: dict[str, object]) -> Iterator[None]:
    """A one-connection stand-in for an agent (an old or broken one: no real agent of this
    version answers so), on a private unix socket."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(1)

    def once() -> None:
        conn, _ = listener.accept()
        with conn:
            read_frame(conn, MAX_REQUEST)
            conn.sendall(frame({"v": PROTOCOL, **answer}))

    thread = threading.Thread(target=once, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(10)
        listener.close()


def test_no_agent_gives_none(socket_path: Path) -> None:
    assert names(path=str(socket_path)) is None


def test_an_agent_older_than_the_op_gives_none(socket_path: Path) -> None:
    old = {
        "ok": False,
        "error": {"exit": 2, "code": "protocol", "message": "unknown request 'names'"},
    }
    for _ in _serve(socket_path, old):
        assert names(path=str(socket_path)) is None


@pytest.mark.parametrize(
    "answer",
    [{"ok": True}, {"ok": True, "names": "alpha"}, {"ok": True, "names": [1, 2]}],
)
def test_an_answer_without_a_list_of_names_gives_none(
    socket_path: Path, answer: dict[str, object]
) -> None:
    for _ in _serve(socket_path, answer):
        assert names(path=str(socket_path)) is None


def test_an_agents_names_are_returned(socket_path: Path) -> None:
    for _ in _serve(socket_path, {"ok": True, "names": ["alpha", "beta"]}):
        assert names(path=str(socket_path)) == ["alpha", "beta"]
