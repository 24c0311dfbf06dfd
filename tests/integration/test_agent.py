"""`vault agent`, end to end: the real executable, a real vault, the agent as its own process.

Each test starts its own agent (for its own vault) and stops it after, whatever happened."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, SecretService, VaultCLI, read_records

CANARY = "ghp_AGENTcanary0123456789abcdefghijklmnopq"
PASSPHRASE = "correct horse battery staple"


def _status(vault: VaultCLI) -> dict[str, object]:
    result = vault.run("agent", "status", "--json")
    assert result.returncode == 0, result
    status: dict[str, object] = json.loads(result.stdout)
    return status


@contextlib.contextmanager
def running_agent(vault: VaultCLI, *args: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """`vault agent start ARGS` (daemonised); yields its pid; kills it after."""
    result = vault.run("agent", "start", *args, env=env)
    assert result.returncode == 0, result
    pid = _status(vault)["pid"]
    assert isinstance(pid, int)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _import(vault: VaultCLI, name: str = "t1", token: str = CANARY) -> None:
    result = vault.run("import", name, "--provider", "github", input=token + "\n")
    assert result.returncode == 0, result


@pytest.fixture
def pvault(passphrase_vault: VaultCLI, tmp_path: Path) -> VaultCLI:
    """A passphrase vault with one token and a private runtime folder for the agent's socket."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    passphrase_vault.env["XDG_RUNTIME_DIR"] = str(run)
    _import(passphrase_vault)
    return passphrase_vault


def _no_passphrase(vault: VaultCLI) -> VaultCLI:
    """The same vault, with no way to the passphrase but the agent (and no terminal)."""
    env = dict(vault.env)
    env.pop("VAULT_PASSPHRASE_FILE")
    return VaultCLI(vault.home, env)


def _last_events(vault: VaultCLI, count: int) -> list[dict[str, object]]:
    lines = (vault.home / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[-count:]]


# --- the passphrase typed once ------------------------------------------------------------


def _start_on_a_terminal(vault: VaultCLI, passphrase: str) -> tuple[int, str]:
    """`vault agent start` with a terminal as its controlling terminal, the passphrase typed."""
    env = _no_passphrase(vault).full_env()
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [VAULT_BIN, "agent", "start"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        preexec_fn=controlling_terminal,  # noqa: PLW1509 (the test needs a controlling tty)
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while b"passphrase" not in seen.lower() and time.monotonic() < deadline:
        seen += os.read(master, 1024)
    os.write(master, passphrase.encode() + b"\n")
    code = proc.wait(timeout=60)
    with contextlib.suppress(OSError):
        while chunk := os.read(master, 4096):
            seen += chunk
    os.close(master)
    return code, seen.decode(errors="replace")


def test_passphrase_typed_once_then_a_hundred_tokens_without_it(pvault: VaultCLI) -> None:
    code, screen = _start_on_a_terminal(pvault, PASSPHRASE)
    assert code == 0, screen
    assert PASSPHRASE not in screen
    bare = _no_passphrase(pvault)
    pid = _status(bare)["pid"]
    assert isinstance(pid, int)
    try:
        for _ in range(100):
            result = bare.run("token", "t1")
            assert (result.returncode, result.stdout) == (0, CANARY + "\n"), result
        # Other commands take the key from the agent too, and their records are as direct ones.
        listed = bare.run("list", "--json")
        assert listed.returncode == 0, listed
        assert [t["name"] for t in json.loads(listed.stdout)["tokens"]] == ["t1"]
        events = [json.loads(x) for x in (pvault.home / "audit.jsonl").read_text().splitlines()]
        used = [e for e in events if e["event"] == "used"]
        assert len(used) == 100
        assert all(e["agent"] == pid and e["pid"] != pid and e["command"] == "token" for e in used)
        kinds = [e["event"] for e in events]
        assert kinds.index("agent_started") < kinds.index("agent_unlocked") < kinds.index("used")
        assert bare.run("audit", "verify").returncode == 0
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_wrong_passphrase_starts_no_agent(pvault: VaultCLI) -> None:
    code, screen = _start_on_a_terminal(pvault, "not the passphrase")
    assert code == 6, screen
    assert _status(pvault)["running"] is False


def test_passphrase_file_read_once(pvault: VaultCLI, tmp_path: Path) -> None:
    with running_agent(pvault):
        Path(pvault.env["VAULT_PASSPHRASE_FILE"]).unlink()  # read once, at the start
        result = _no_passphrase(pvault).run("token", "t1")
        assert result.stdout == CANARY + "\n", result


# --- lock, unlock, stop, status -----------------------------------------------------------


def test_lock_then_token_fails_at_once_with_a_hint(pvault: VaultCLI) -> None:
    bare = _no_passphrase(pvault)
    with running_agent(pvault):
        assert bare.run("token", "t1").returncode == 0
        locked = bare.run("lock")
        assert locked.returncode == 0, locked
        started = time.monotonic()
        result = bare.run("token", "t1")
        assert time.monotonic() - started < 10
        assert result.returncode == 6, result
        assert result.stdout == ""
        assert "vault unlock" in result.stderr
        status = _status(bare)
        assert (status["running"], status["unlocked"], status["unlocked_until"]) == (
            True,
            False,
            None,
        )
        assert _last_events(pvault, 1)[0]["event"] == "agent_locked"
        # Unlocking asks for the passphrase once more (here from the file).
        again = pvault.run("unlock")
        assert again.returncode == 0, again
        assert bare.run("token", "t1").stdout == CANARY + "\n"


def test_status_json_shape(pvault: VaultCLI) -> None:
    assert _status(pvault) == {
        "version": 1,
        "running": False,
        "unlocked": False,
        "socket": _status(pvault)["socket"],
        "pid": None,
        "idle_deadline": None,
        "unlocked_until": None,
        "locked_memory": None,
    }
    with running_agent(pvault, "--idle", "30m", "--max-unlocked", "2h") as pid:
        status = _status(pvault)
        assert status["pid"] == pid
        assert status["running"] is True
        assert status["unlocked"] is True
        assert isinstance(status["locked_memory"], bool)
        for key in ("idle_deadline", "unlocked_until"):
            assert isinstance(status[key], str)
            assert str(status[key]).endswith("Z")
        now = time.time()
        idle = time.mktime(time.strptime(str(status["idle_deadline"]), "%Y-%m-%dT%H:%M:%SZ"))
        until = time.mktime(time.strptime(str(status["unlocked_until"]), "%Y-%m-%dT%H:%M:%SZ"))
        offset = time.mktime(time.gmtime(0))  # mktime reads struct_time as local time
        assert abs(idle - offset - now - 1800) < 60
        assert abs(until - offset - now - 7200) < 60


def test_stop_forgets_the_key_and_ends_the_process(pvault: VaultCLI) -> None:
    with running_agent(pvault) as pid:
        socket_path = Path(str(_status(pvault)["socket"]))
        result = pvault.run("agent", "stop")
        assert result.returncode == 0, result
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, 0)  # not our child: poll it instead
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the agent still runs after `vault agent stop`")
        assert not socket_path.exists()
        kinds = [e["event"] for e in _last_events(pvault, 2)]
        assert kinds[-1] == "agent_locked"


def test_a_second_start_finds_the_first(pvault: VaultCLI) -> None:
    with running_agent(pvault) as pid:
        again = pvault.run("agent", "start")
        assert again.returncode == 0, again
        assert "already runs" in again.stderr
        assert _status(pvault)["pid"] == pid


def test_socket_and_folder_are_private(pvault: VaultCLI) -> None:
    with running_agent(pvault):
        path = Path(str(_status(pvault)["socket"]))
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.lstat().st_mode) == 0o700
        log = pvault.home / "agent.log"
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert CANARY not in log.read_text()
        assert PASSPHRASE not in log.read_text()


def test_rekey_makes_the_agent_forget_the_old_key(pvault: VaultCLI) -> None:
    with running_agent(pvault):
        result = pvault.run("rekey")
        assert result.returncode == 0, result
        assert _status(pvault)["unlocked"] is False
        locks = [e for e in _last_events(pvault, 5) if e["event"] == "agent_locked"]
        assert locks
        assert "rekeyed" in str(locks[-1]["reason"])
        assert pvault.run("audit", "verify").returncode == 0
        assert pvault.run("token", "t1").stdout == CANARY + "\n"  # directly, with the new key


# --- a dead agent, a stale socket ---------------------------------------------------------


def test_agent_killed_mid_requests_leaves_the_vault_whole(pvault: VaultCLI) -> None:
    bare = _no_passphrase(pvault)
    for i in range(2, 6):
        _import(pvault, f"t{i}", CANARY[:-1] + str(i))
    with running_agent(pvault) as pid:
        socket_path = Path(str(_status(pvault)["socket"]))
        procs = [bare.popen("token", f"t{1 + i % 5}") for i in range(24)]
        time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        for proc in procs:
            proc.communicate(timeout=60)
            # Served before the kill, or failed cleanly (the direct path has no passphrase).
            assert proc.returncode in (0, 6)
    assert socket_path.exists()  # left behind by the killed agent
    assert pvault.run("audit", "verify").returncode == 0
    assert len(read_records(pvault)) == 5
    # The stale socket is no agent: a command works directly, and a new agent replaces it.
    assert pvault.run("token", "t1").stdout == CANARY + "\n"
    locked_out = bare.run("token", "t1")
    assert locked_out.returncode == 6
    assert "Traceback" not in locked_out.stderr
    with running_agent(pvault):
        assert bare.run("token", "t3").stdout == CANARY[:-1] + "3\n"


# --- who may talk to it --------------------------------------------------------------------


def _as_other_user(path: str, request: bytes) -> tuple[str, bytes]:
    """Connect to ``path`` as uid/gid 65534 from a forked child; what happened, as text."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            try:
                sock.connect(path)
                # The agent may refuse (answer and close) before the request is sent.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(request)
                data = sock.recv(65536)
                outcome = b"answer:" + data
            except OSError as exc:
                outcome = f"error:{type(exc).__name__}".encode()
            os.write(write_end, outcome)
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.waitpid(child, 0)
    kind, _, rest = data.partition(b":")
    return kind.decode(), rest


@pytest.mark.skipif(os.geteuid() != 0, reason="changing uid needs root")
def test_a_client_of_another_uid_is_refused(pvault: VaultCLI) -> None:
    import tempfile

    from vault.keys.agent import frame

    # A runtime folder another uid can reach the socket through, once it is opened up below
    # (the test's own folders are 0700 all the way up).
    runtime_dir = tempfile.mkdtemp(prefix="vault-run-", dir="/tmp")
    pvault.env["XDG_RUNTIME_DIR"] = runtime_dir
    try:
        _refused_by_uid(pvault, frame({"v": 1, "op": "token", "name": "t1", "command": "token"}))
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)


def _refused_by_uid(pvault: VaultCLI, request: bytes) -> None:
    with running_agent(pvault):
        path = str(_status(pvault)["socket"])
        # The folder alone keeps others out ...
        kind, _ = _as_other_user(path, request)
        assert kind == "error"
        # ... and with the folder and socket opened up on purpose, the agent itself refuses.
        folder = os.path.dirname(path)
        runtime = os.path.dirname(folder)
        modes = {p: stat.S_IMODE(os.lstat(p).st_mode) for p in (runtime, folder, path)}
        try:
            for p in (runtime, folder):
                os.chmod(p, 0o711)
            os.chmod(path, 0o666)
            kind, data = _as_other_user(path, request)
        finally:
            for p, mode in modes.items():
                os.chmod(p, mode)
        assert kind == "answer", data
        answer = json.loads(data[4:])
        assert answer["ok"] is False
        assert answer["error"]["code"] == "refused"
        assert CANARY.encode() not in data
        assert "refused a client of uid 65534" in (pvault.home / "agent.log").read_text()
        assert pvault.run("token", "t1").stdout == CANARY + "\n"  # still serving its own user


# --- the keyring backend, from a process with no D-Bus session ----------------------------


def test_keyring_agent_serves_a_process_without_dbus(
    vault: VaultCLI, secret_service: SecretService
) -> None:
    _import(vault)
    with running_agent(vault):
        cron_like = VaultCLI(
            vault.home,
            {
                "XDG_RUNTIME_DIR": vault.env["XDG_RUNTIME_DIR"],
                "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
            },
        )
        assert cron_like.run("token", "t1").stdout == CANARY + "\n"
        listed = cron_like.run("list", "--json")  # the key and the marks through the agent
        assert listed.returncode == 0, listed
        _import(cron_like, "t2")  # a write: the new generation saved in the keyring by the agent
        assert cron_like.run("token", "t2").returncode == 0
    direct = vault.run("list", "--json")  # and the vault opens directly, its marks in step
    assert direct.returncode == 0, direct
    assert sorted(t["name"] for t in json.loads(direct.stdout)["tokens"]) == ["t1", "t2"]


# --- many clients at once ------------------------------------------------------------------


def test_many_clients_at_once_each_served_and_audited(pvault: VaultCLI) -> None:
    bare = _no_passphrase(pvault)
    with running_agent(pvault) as pid:
        results: list[tuple[int, str]] = []
        lock = threading.Lock()

        def client() -> None:
            result = bare.run("token", "t1")
            with lock:
                results.append((result.returncode, result.stdout))

        threads = [threading.Thread(target=client) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert results == [(0, CANARY + "\n")] * 24
        used = [e for e in _last_events(pvault, 24) if e["event"] == "used"]
        assert len(used) == 24
        assert {e["agent"] for e in used} == {pid}
        assert pvault.run("audit", "verify").returncode == 0


# --- what the client does -------------------------------------------------------------------


def test_a_token_served_by_the_agent_imports_next_to_nothing(pvault: VaultCLI) -> None:
    """The client connects, asks and prints: none of the store, policy, crypto or JSON."""
    code = (
        "import sys\n"
        "sys.argv = ['vault', 'token', 't1']\n"
        "from vault.cli.main import main\n"
        "code = main(['token', 't1'])\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    bare = _no_passphrase(pvault)
    with running_agent(pvault):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=bare.full_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            start_new_session=True,
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == CANARY + "\n"
    loaded = set(proc.stderr.split())
    assert "vault.keys.agent" in loaded
    top = ("json", "re", "typing", "pathlib", "cryptography", "argon2", "enum")
    parts = ("vault.store", "vault.policy", "vault.tokens", "vault.audit", "vault.cli.app")
    heavy = sorted(m for m in loaded if m.split(".")[0] in top or m.startswith(parts))
    assert heavy == []


def test_a_runtime_folder_too_deep_for_a_socket_address(pvault: VaultCLI, tmp_path: Path) -> None:
    """sun_path holds 107 bytes: a deeper socket is bound and reached through its folder."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True, mode=0o700)
    pvault.env["XDG_RUNTIME_DIR"] = str(deep)
    with running_agent(pvault):
        path = str(_status(pvault)["socket"])
        assert len(path.encode()) > 107
        assert _no_passphrase(pvault).run("token", "t1").stdout == CANARY + "\n"


# --- systemd ---------------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate missing"
)
def test_socket_activation_starts_the_agent_at_the_first_use(
    vault: VaultCLI, secret_service: SecretService
) -> None:
    """systemd's own socket-activation protocol (LISTEN_FDS, LISTEN_PID) from its test tool:
    the first `vault token` starts the agent, which unlocks itself from the keyring."""
    _import(vault)
    path = str(_status(vault)["socket"])
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    env = vault.full_env()
    passed = [
        f"--setenv={k}"
        for k in ("VAULT_HOME", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "HOME", "PATH")
    ]
    activator = subprocess.Popen(
        [
            "systemd-socket-activate",
            "--listen",
            path,
            *passed,
            VAULT_BIN,
            "agent",
            "start",
            "--foreground",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        for _ in range(200):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        cron_like = VaultCLI(
            vault.home,
            {"XDG_RUNTIME_DIR": env["XDG_RUNTIME_DIR"], "DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"},
        )
        assert cron_like.run("token", "t1").stdout == CANARY + "\n"
        status = _status(vault)
        assert status["running"] is True
        assert status["unlocked"] is True
        assert [e["event"] for e in _last_events(vault, 3)] == [
            "agent_started",
            "agent_unlocked",
            "used",
        ]
        assert vault.run("agent", "stop").returncode == 0
        activator.wait(timeout=30)
    finally:
        activator.kill()
        activator.communicate()


def test_install_without_a_user_manager_prints_the_profile_line(pvault: VaultCLI) -> None:
    result = pvault.run("agent", "--install", env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result
    assert "shell profile" in result.stderr
    line = result.stdout.strip()
    assert line.endswith("agent start")
    # The line does what it says: run twice, it starts one agent.
    for _ in range(2):
        done = subprocess.run(
            ["sh", "-c", line], env=pvault.full_env(), capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 0, done
    status = _status(pvault)
    try:
        assert status["running"] is True
    finally:
        if isinstance(status["pid"], int):
            os.kill(status["pid"], signal.SIGKILL)


def test_doctor_says_whether_an_agent_runs_and_holds_the_key(pvault: VaultCLI) -> None:
    def agent_check(vault: VaultCLI) -> dict[str, object]:
        result = vault.run("doctor", "--json")
        (check,) = [c for c in json.loads(result.stdout)["checks"] if c["check"] == "agent"]
        return dict(check)

    assert agent_check(pvault)["status"] == "ok"
    assert "none runs" in str(agent_check(pvault)["detail"])
    bare = _no_passphrase(pvault)
    with running_agent(pvault) as pid:
        check = agent_check(bare)
        assert check["status"] == "ok"
        assert f"pid {pid}, unlocked until" in str(check["detail"])
        assert bare.run("lock").returncode == 0
        check = agent_check(bare)
        assert check["status"] == "warn"
        assert "locked" in str(check["detail"])


def test_policy_forbids_the_agent(pvault: VaultCLI) -> None:
    policies = pvault.home / "policies"
    policies.mkdir(mode=0o700)
    rule = policies / "no-agent.yaml"
    rule.write_text("version: 1\nagent: {allowed: false}\n")
    refused = pvault.run("agent", "start")
    assert refused.returncode == 5, refused
    assert "agent.allowed" in refused.stderr
    assert _status(pvault)["running"] is False
    rule.unlink()
    bare = _no_passphrase(pvault)
    with running_agent(pvault, "--max-unlocked", "9h"):
        rule.write_text("version: 1\nagent: {allowed: false}\n")
        # The agent locks at its next request; the command goes on without it, as without one.
        result = bare.run("token", "t1")
        assert result.returncode == 6, result
        assert _status(pvault)["unlocked"] is False
        assert pvault.run("token", "t1").stdout == CANARY + "\n"
        assert pvault.run("unlock").returncode == 5


def test_policy_caps_max_unlocked_at_start(pvault: VaultCLI) -> None:
    policies = pvault.home / "policies"
    policies.mkdir(mode=0o700)
    (policies / "cap.yaml").write_text("version: 1\nagent: {max_unlocked: 1h}\n")
    with running_agent(pvault, "--max-unlocked", "9h") as _:
        status = _status(pvault)
        until = time.mktime(time.strptime(str(status["unlocked_until"]), "%Y-%m-%dT%H:%M:%SZ"))
        offset = time.mktime(time.gmtime(0))
        assert abs(until - offset - time.time() - 3600) < 60


# --- canaries --------------------------------------------------------------------------------


def test_canaries_through_every_agent_command(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    """A canary token and a canary passphrase through the agent's commands (with --debug): in no
    output but `vault token`'s own stdout, no file, no process's argv, not in the agent's log."""
    passphrase = "pass-Canary-" + "Zq9" * 8
    Path(passphrase_vault.env["VAULT_PASSPHRASE_FILE"]).write_text(passphrase + "\n")
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    passphrase_vault.env["XDG_RUNTIME_DIR"] = str(run)
    v = passphrase_vault
    _import(v)
    bare = _no_passphrase(v)
    d = "--debug"
    results = [v.run("agent", "start", d)]
    pid = _status(v)["pid"]
    assert isinstance(pid, int)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        results += [
            bare.run("token", "t1"),
            bare.run("token", "t1", d),
            bare.run("list", "--json", d),
            bare.run("status", "t1", "--json", d),
            bare.run("doctor", "--json", d),
            bare.run("agent", "status", "--json", d),
            bare.run("agent", "status", d),
            bare.run("lock", d),
            bare.run("token", "t1", d),  # locked: an error
            v.run("unlock", d),
            bare.run("audit", "show", "--json", d),
            bare.run("agent", "stop", d),
        ]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for secret in (CANARY, passphrase):
        assert secret.encode() not in cmdline
        for r in results:
            assert secret not in r.stderr, r
            assert secret not in r.stdout or r.stdout == CANARY + "\n", r
        for path in [*v.home.rglob("*"), *run.rglob("*")]:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    assert sum(r.stdout == CANARY + "\n" for r in results) == 2


def test_a_socket_folder_others_can_enter_is_not_used(pvault: VaultCLI) -> None:
    with running_agent(pvault):
        folder = Path(str(_status(pvault)["socket"])).parent
        folder.chmod(0o755)
        try:
            result = pvault.run("token", "t1")
            assert result.stdout == CANARY + "\n"  # directly, with the passphrase file
            assert f"not using the agent socket in {folder}" in result.stderr
            assert _no_passphrase(pvault).run("token", "t1").returncode == 6
        finally:
            folder.chmod(0o700)
