"""The agent in this process, on a real vault: its deadlines driven by an injected clock, policy
read at each request, and its request protocol fuzzed through a real socket."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.agent.server import _OPS, Agent, listen
from vault.errors import EXIT_POLICY, PolicyError
from vault.fs import paths as _paths
from vault.keys.agent import MAX_REQUEST, ProtocolError, frame, loads, read_frame
from vault.secret import Secret

# An agent serving a socket per test, over a passphrase vault made (Argon2id) per test: `make
# test`, not `make test-fast`.
pytestmark = pytest.mark.slow

VAULT_BIN = str(Path(sys.executable).parent / "vault")
PASSPHRASE = "correct horse battery staple"
TOKEN = "ghp_UNITagent0123456789abcdefghijklmnopqrs"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A passphrase vault holding one token, this process's environment pointing at it."""
    home = tmp_path / "vh"
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE + "\n")
    pw.chmod(0o600)
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = {
        "VAULT_HOME": str(home),
        "VAULT_KEY_BACKEND": "passphrase",
        "XDG_RUNTIME_DIR": str(run),
        "VAULT_SYSTEM_POLICY_DIR": str(tmp_path / "no-system-policies"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("VAULT_PASSPHRASE_FILE", raising=False)
    subprocess.run(
        [VAULT_BIN, "import", "t1", "--provider", "github"],
        input=TOKEN.encode() + b"\n",
        env={**os.environ, "VAULT_PASSPHRASE_FILE": str(pw)},
        check=True,
        capture_output=True,
        start_new_session=True,
    )
    return home


def _agent(home: Path, clock: Clock, **kwargs: float | None) -> Agent:
    agent = Agent(_paths.resolve(), str(home / "unused.sock"), clock=clock, **kwargs)  # type: ignore[arg-type]
    assert agent.unlock(Secret(PASSPHRASE))
    return agent


def _events(home: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (home / "audit.jsonl").read_text().splitlines()]


def _use(agent: Agent) -> str:
    answer = agent.handle({"op": "token", "name": "t1", "command": "token"}, os.getpid())
    assert answer["ok"] is True, answer
    return str(answer["access_token"])


# --- deadlines -----------------------------------------------------------------------------


def test_idle_timeout_counts_from_the_last_request(home: Path) -> None:
    clock = Clock()
    agent = _agent(home, clock, idle=60, max_unlocked=3600)
    for _ in range(5):  # used every 59 s: never idle for 60
        clock.now += 59
        agent.tick()
        assert _use(agent) == TOKEN
    clock.now += 59.9
    agent.tick()
    assert agent.held is not None
    clock.now += 0.2
    agent.tick()
    assert agent.held is None
    last = _events(home)[-1]
    assert (last["event"], last["reason"]) == ("agent_locked", "idle for 60 s")
    answer = agent.handle({"op": "token", "name": "t1", "command": "token"}, os.getpid())
    assert answer["ok"] is False
    assert answer["error"]["code"] == "locked"


def test_status_does_not_keep_the_agent_awake(home: Path) -> None:
    clock = Clock()
    agent = _agent(home, clock, idle=60, max_unlocked=3600)
    for _ in range(3):
        clock.now += 30
        assert agent.handle({"op": "status"}, os.getpid())["ok"] is True
    agent.tick()
    assert agent.held is None


def test_maximum_unlocked_time_holds_however_busy(home: Path) -> None:
    clock = Clock()
    agent = _agent(home, clock, idle=None, max_unlocked=300)
    status = agent.status()
    assert status["idle_deadline"] is None
    while clock.now < 1000 + 299:
        assert _use(agent) == TOKEN
        clock.now += 10
    clock.now = 1000 + 300
    agent.tick()
    assert agent.held is None
    assert str(_events(home)[-1]["reason"]).startswith("unlocked for its maximum of 300 s")


def test_policy_caps_the_unlocked_time_from_the_next_request(home: Path) -> None:
    clock = Clock()
    agent = _agent(home, clock, idle=None, max_unlocked=8 * 3600)
    policies = home / "policies"
    policies.mkdir(mode=0o700)
    (policies / "cap.yaml").write_text("version: 1\nagent: {max_unlocked: 2m}\n")
    clock.now += 60
    assert _use(agent) == TOKEN  # the request reads the policy: the cap applies from now
    assert agent.max_unlocked_now() == 120
    clock.now += 61
    agent.tick()
    assert agent.held is None


def test_a_policy_forbidding_the_agent_locks_it_at_the_next_request(home: Path) -> None:
    agent = _agent(home, Clock())
    policies = home / "policies"
    policies.mkdir(mode=0o700)
    (policies / "no.yaml").write_text("version: 1\nagent: {allowed: false}\n")
    answer = agent.handle({"op": "token", "name": "t1", "command": "token"}, os.getpid())
    assert answer["ok"] is False
    assert answer["error"]["code"] == "locked"  # the client goes on without the agent
    assert "agent.allowed" in answer["error"]["message"]
    assert agent.held is None
    assert "agent.allowed" in str(_events(home)[-1]["reason"])
    with pytest.raises(PolicyError) as refused:
        agent.unlock(Secret(PASSPHRASE))
    assert refused.value.exit_code == EXIT_POLICY


def test_the_key_buffer_is_wiped_when_dropped(home: Path) -> None:
    agent = _agent(home, Clock())
    held = agent.held
    assert held is not None
    assert any(held.buffer)
    agent.lock("test")
    assert held.buffer == bytearray(len(held.buffer))


# --- the protocol, fuzzed through a real socket --------------------------------------------


@pytest.fixture
def served(home: Path, tmp_path: Path) -> Iterator[tuple[Agent, str]]:
    path = str(tmp_path / "run" / "vault" / "a.sock")
    agent = Agent(_paths.resolve(), path)
    assert agent.unlock(Secret(PASSPHRASE))
    listener, lock_fd = listen(path)
    thread = threading.Thread(target=agent.serve, args=(listener,), daemon=True)
    thread.start()
    yield agent, path
    agent.stopping.set()
    thread.join(10)
    listener.close()
    os.close(lock_fd)


def _exchange(path: str, data: bytes) -> dict[str, Any] | None:
    """Send raw ``data``, end the write side, read the answer (None: closed without one)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the agent closed first (an oversized length, say)
            pass
        try:
            return read_frame(sock, 1024 * 1024)
        except (ProtocolError, OSError):
            return None


def _still_serves(path: str) -> None:
    answer = _exchange(path, frame({"v": 1, "op": "status"}))
    assert answer is not None
    assert answer["ok"] is True


DOCUMENTED_EXITS = {2, 3, 4, 5, 6, 7}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_garbage_gets_an_error_or_a_close_never_a_crash(
    served: tuple[Agent, str], data: bytes
) -> None:
    _, path = served
    answer = _exchange(path, data)
    if answer is not None:
        assert answer["ok"] is False
    _still_serves(path)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    op=st.sampled_from(
        ["status", "token", "hand_out", "key", "marks", "save_marks", "lock", "unlock", "x"]
    ),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "min_valid",
                "command",
                "to_terminal",
                "backend",
                "vault_id",
                "key_id",
                "salt",
                "state_key",
                "generation",
                "audit",
                "reason",
                "passphrase",
                "want",
                "origin",
                "v",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_well_framed_nonsense_gets_a_documented_error(
    served: tuple[Agent, str], op: str, fields: dict[str, object]
) -> None:
    agent, path = served
    if op in ("lock", "unlock"):
        fields.pop("passphrase", None)
    message = {"v": 1, **fields, "op": op}
    answer = _exchange(path, frame(message))
    assert answer is not None
    if answer["ok"] is False:
        error = answer["error"]
        assert isinstance(error, dict)
        assert error["exit"] in DOCUMENTED_EXITS, error  # exit 1 would be an agent bug
    if agent.held is None:  # a fuzzed lock: unlock again for the next example
        agent.unlock(Secret(PASSPHRASE))
    _still_serves(path)


def test_oversized_and_slow_messages(served: tuple[Agent, str]) -> None:
    _, path = served
    for data in (struct.pack(">I", MAX_REQUEST + 1) + b"{}", struct.pack(">I", 100) + b'{"v":1'):
        answer = _exchange(path, data)
        assert answer is not None
        assert answer["ok"] is False
        assert answer["error"]["code"] == "protocol"
    deep = b"[" * 5000 + b"]" * 5000
    answer = _exchange(path, struct.pack(">I", len(deep)) + deep)
    assert answer is not None
    assert answer["ok"] is False
    _still_serves(path)


def test_codec_roundtrip_and_refusals() -> None:
    message = {"v": 1, "s": "é\u2028\x00", "n": [1, 2.5, None, True], "d": {"k": "v"}}
    from vault.keys.agent import dumps

    assert loads(dumps(message)) == message
    for bad in (b"", b"[]", b'{"a":1} x', b"\xff", b'{"a":NaN}', b"{'a':1}"):
        with pytest.raises(ProtocolError):
            loads(bad)


# --- op hand_out: what the helpers ask for ---------------------------------------------------


def test_hand_out_answers_the_token_its_expiry_and_provider(home: Path) -> None:
    agent = _agent(home, Clock())
    answer = agent.handle(
        {"op": "hand_out", "name": "t1", "command": "kube kubectl", "want": "access_token"},
        os.getpid(),
    )
    assert answer["ok"] is True, answer
    assert (answer["token"], answer["expires_at"]) == (TOKEN, None)
    assert (answer["provider"], answer["preset"]) == ("github", "github")
    assert _events(home)[-1]["command"] == "kube kubectl"
    # An imported token has no ID token: refused and audited, with the documented exit.
    answer = agent.handle({"op": "hand_out", "name": "t1", "command": "x", "want": "id_token"}, 1)
    assert answer["ok"] is False
    assert (answer["error"]["exit"], answer["error"]["code"]) == (4, "no_id_token")
    # Another origin than the provider's: refused before anything is audited.
    before = len(_events(home))
    for origin in (["https", "gitlab.com", 443], ["http", "github.com", 443]):
        answer = agent.handle(
            {"op": "hand_out", "name": "t1", "command": "git", "origin": origin}, os.getpid()
        )
        assert answer["ok"] is False
        assert answer["error"]["code"] == "elsewhere"
    assert len(_events(home)) == before
    answer = agent.handle(
        {"op": "hand_out", "name": "t1", "command": "git", "origin": ["https", "github.com", 443]},
        os.getpid(),
    )
    assert answer["ok"] is True
    for bad in ({"want": "refresh_token"}, {"origin": ["ftp", "x", 1]}, {"origin": "github.com"}):
        answer = agent.handle({"op": "hand_out", "name": "t1", "command": "x", **bad}, 1)
        assert answer["ok"] is False
        assert answer["error"]["exit"] == 2, bad


def test_a_client_falls_back_where_the_agent_does_not_know_hand_out(
    home: Path, tmp_path: Path
) -> None:
    """An agent started before an upgrade answers "unknown request": the client then does the
    work itself (None), it does not fail."""
    from vault.keys import agent as client

    path = str(tmp_path / "run" / "vault" / "old.sock")
    old = Agent(_paths.resolve(), path)
    assert old.unlock(Secret(PASSPHRASE))
    listener, lock_fd = listen(path)
    saved = _OPS.pop("hand_out")
    thread = threading.Thread(target=old.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        original = client.socket_path
        client.socket_path = lambda *_: path
        try:
            assert client.hand_out("t1", 0, command="kube x") is None
            assert client.fast_token("t1", 0, to_terminal=False) is None
        finally:
            client.socket_path = original
    finally:
        _OPS["hand_out"] = saved
        old.stopping.set()
        thread.join(10)
        listener.close()
        os.close(lock_fd)


def test_codec_refuses_malformed_json_where_the_json_package_was_never_imported() -> None:
    """The C scanner's syntax errors need json.decoder in sys.modules: without it (the agent's
    client and `vault kube` import no json package) they must still be ProtocolError."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from vault.keys.agent import ProtocolError, loads\n"
        "assert 'json' not in sys.modules\n"
        "for bad in (b'{not json', b'{', b'{\"a\":1', b'{\"a\" 1}', b'[1,]'):\n"
        "    try:\n"
        "        loads(bad)\n"
        "    except ProtocolError:\n"
        "        continue\n"
        "    raise SystemExit(f'accepted {bad!r}')\n"
        "assert 'json' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
