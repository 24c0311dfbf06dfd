"""`vault agent start|stop|status`, `vault agent --install`, `vault lock`, `vault unlock`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from vault.cli.app import App
from vault.cli.render import dump_json
from vault.errors import ConfigError, IntegrityError, UsageError, VaultError
from vault.keys.agent import call, remote_error, socket_path

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

    from vault.secret import Secret

READY_TIMEOUT = 180.0  # the agent derives the key (Argon2id) or asks the keyring first
SECRET_LIMIT = 64 * 1024


def cmd_agent(app: App, ns: argparse.Namespace) -> int:
    if ns.install:
        if ns.agent_command is not None:
            raise UsageError("--install is given on its own: `vault agent --install`")
        return _install(app)
    if ns.agent_command == "start":
        return _start(app, ns)
    if ns.agent_command == "stop":
        return _stop(app)
    if ns.agent_command == "status":
        return _status(app, ns)
    raise UsageError(
        "say what to do: vault agent start|stop|status, or vault agent --install",
        hint="see `vault agent --help`",
    )


def _path(app: App) -> str:
    return socket_path(str(app.paths.vault_file))


def _duration(text: str | None, flag: str, default: float, *, zero: bool) -> float | None:
    if text is None:
        return default
    if zero and text.strip() in ("0", "none", "never"):
        return None
    from vault.policy.rules import parse_duration

    try:
        return float(parse_duration(text, flag, "value"))
    except ConfigError as exc:
        raise UsageError(exc.message.replace(f"{flag}: value: ", f"{flag}: ")) from None


def _settings(app: App, ns: argparse.Namespace) -> tuple[float | None, float]:
    from vault.agent.server import DEFAULT_IDLE, DEFAULT_MAX_UNLOCKED

    if sys.platform != "linux":
        raise UsageError(
            "the agent runs on Linux only (it checks each client's uid with SO_PEERCRED)",
            hint="README.md says what other systems support",
        )
    idle = _duration(ns.idle, "--idle", DEFAULT_IDLE, zero=True)
    max_unlocked = _duration(ns.max_unlocked, "--max-unlocked", DEFAULT_MAX_UNLOCKED, zero=False)
    assert max_unlocked is not None
    denial = app.policy.agent_denial()
    if denial is not None:
        raise denial.error()
    cap = app.policy.agent_max_unlocked()
    if cap is not None and max_unlocked > cap[0]:
        from vault.policy.rules import format_duration

        if ns.max_unlocked is not None:
            app.say(
                f"vault: --max-unlocked capped at {format_duration(int(cap[0]))} by policy "
                f"(agent.max_unlocked in {cap[1]})"
            )
        max_unlocked = cap[0]
    app.store  # noqa: B018 (the storage rules of policy: refused here, before anything runs)
    return idle, max_unlocked


def _start(app: App, ns: argparse.Namespace) -> int:
    idle, max_unlocked = _settings(app, ns)
    if ns.foreground:
        return _serve(app, ns, idle, max_unlocked)
    path = _path(app)
    status = call({"op": "status"}, path=path)
    if status is not None:
        if status.get("unlocked"):
            app.say(f"vault: the agent already runs (pid {status.get('pid')}), unlocked")
            return 0
        app.say(f"vault: the agent already runs (pid {status.get('pid')}), locked: unlocking")
        return _unlock(app, path)
    return _spawn(app, idle, max_unlocked)


def _secret(app: App) -> Secret | None:
    """The passphrase, read here, where the terminal is (passphrase backend only)."""
    backend, _ = app.config.backend()
    if backend != "passphrase":
        return None
    if not os.path.lexists(app.paths.vault_file):
        raise IntegrityError(
            f"there is no vault at {app.paths.vault_file} yet: nothing for the agent to hold",
            hint="`vault login` creates it; then `vault agent start`",
        )
    return app.passphrase.get()


def _spawn(app: App, idle: float | None, max_unlocked: float) -> int:
    """Start `vault agent start --foreground` in its own session, hand it the passphrase on a
    pipe (never argv, never the environment), and wait until it says it serves or failed."""
    import select
    import subprocess

    secret = _secret(app)
    ready_r, ready_w = os.pipe()
    fds = [ready_w]
    secret_r = secret_w = -1
    if secret is not None:
        secret_r, secret_w = os.pipe()
        fds.append(secret_r)
    argv = [
        sys.executable,
        "-m",
        "vault",
        "agent",
        "start",
        "--foreground",
        "--ready-fd",
        str(ready_w),
        "--idle",
        "0" if idle is None else f"{int(idle)}s",
        "--max-unlocked",
        f"{int(max_unlocked)}s",
    ]
    if secret is not None:
        argv += ["--secret-fd", str(secret_r)]
    env = dict(os.environ)
    if env.get("VAULT_HOME"):  # the agent runs from /, where a relative VAULT_HOME means another
        env["VAULT_HOME"] = str(app.paths.vault_dir)
    try:
        proc = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
            argv,
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
            env=env,
        )
    finally:
        os.close(ready_w)
        if secret_r >= 0:
            os.close(secret_r)
    try:
        if secret is not None:
            os.write(secret_w, secret.reveal().encode("utf-8"))
            os.close(secret_w)
            secret_w = -1
        data = b""
        while len(data) < 65536:
            readable, _, _ = select.select([ready_r], [], [], READY_TIMEOUT)
            if not readable:
                proc.kill()
                raise IntegrityError(f"the agent did not start within {READY_TIMEOUT:g} s")
            chunk = os.read(ready_r, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(ready_r)
        if secret_w >= 0:
            os.close(secret_w)
    from vault.keys.agent import ProtocolError, loads

    try:
        answer = loads(data)
    except ProtocolError:
        try:
            code: int | str = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed: it said nothing in 10 s after closing its pipe"
        raise IntegrityError(
            f"the agent exited ({code}) before it was ready",
            hint=f"its log: {app.paths.audit_file.parent / 'agent.log'}",
        ) from None
    if answer.get("ok") is not True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        raise remote_error(answer.get("error"))
    _say_started(app, answer)
    return 0


def _say_started(app: App, status: dict[str, Any]) -> None:
    until = status.get("unlocked_until")
    state = f"unlocked until {until}" if status.get("unlocked") else "locked"
    app.say(
        f"vault: agent started (pid {status.get('pid')}), {state}; socket {status.get('socket')}"
    )
    if status.get("unlocked") and not status.get("locked_memory"):
        app.say("vault: note: the key could not be locked into memory (mlock refused)")


def _serve(app: App, ns: argparse.Namespace, idle: float | None, max_unlocked: float) -> int:
    from vault.agent.server import Agent, activated_socket, hold_agent_lock, listen
    from vault.audit.chain import make_event
    from vault.keys.agent import dumps

    path = _path(app)
    ready_fd: int | None = ns.ready_fd
    agent = Agent(app.paths, path, idle=idle, max_unlocked=max_unlocked)
    agent.foreground_log = ready_fd is None
    listener = activated_socket()
    activated = listener is not None

    def tell(message: dict[str, Any]) -> None:
        nonlocal ready_fd
        if ready_fd is not None:
            try:
                os.write(ready_fd, dumps(message))
            finally:
                os.close(ready_fd)
                ready_fd = None

    try:
        if listener is None:
            listener, lock_fd = listen(path)
        else:
            lock_fd = hold_agent_lock(path)
        st = os.stat(path)
    except VaultError as exc:
        tell(_failure(exc))
        raise
    try:
        passphrase = _read_secret(ns.secret_fd) if ns.secret_fd is not None else None
        backend, _ = app.config.backend()
        if passphrase is None and backend == "passphrase" and os.path.lexists(app.paths.vault_file):
            # On this terminal, or (started by systemd, or by `vault agent start`) only from a
            # passphrase file: a service has no one to ask.
            if activated or ready_fd is not None:
                app.passphrase.interactive = False
            if app.passphrase.file or app.passphrase.interactive:
                passphrase = app.passphrase.get()
        try:
            agent.announce(
                make_event(
                    "agent_started",
                    reason=f"idle {'never' if idle is None else f'{idle:g} s'}, "
                    f"at most {agent.max_unlocked_now():g} s unlocked",
                )
            )
            agent.unlock(passphrase)
        except VaultError as exc:
            if not activated:
                tell(_failure(exc))
                raise
            agent.note(f"started locked: {exc.message}")
        agent.note(f"serving {path}")
        tell({"v": 1, "ok": True, **agent.status()})
        if ready_fd is None and not activated:
            status = agent.status()
            app.say(
                f"vault: agent serving {path} (pid {status['pid']}), "
                + (f"unlocked until {status['unlocked_until']}" if status["unlocked"] else "locked")
            )
        agent.serve(listener)
    finally:
        if not activated:
            try:
                if os.stat(path).st_ino == st.st_ino:
                    os.unlink(path)
            except FileNotFoundError:
                pass
        listener.close()
        os.close(lock_fd)
    return 0


def _failure(exc: VaultError) -> dict[str, Any]:
    from vault.agent.server import error_answer

    return {"v": 1, **error_answer(exc)}


def _read_secret(fd: int) -> Secret:
    from vault.secret import Secret

    data = b""
    try:
        while len(data) <= SECRET_LIMIT:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > SECRET_LIMIT or not data:
        raise IntegrityError("the passphrase handed to the agent is empty or too long")
    return Secret(data.decode("utf-8"))


def _stop(app: App) -> int:
    answer = call({"op": "stop"}, path=_path(app))
    if answer is None:
        app.say("vault: no agent runs for this vault")
        return 0
    import time

    path = _path(app)
    for _ in range(200):  # bounded: ~10 s for requests under way to finish
        try:
            if call({"op": "status"}, path=path) is None:
                app.say("vault: the agent forgot the key and stopped")
                return 0
        except VaultError:  # it closed the connection while it went away
            pass
        time.sleep(0.05)
    raise IntegrityError("the agent was told to stop but still answers after 10 s")


def _status(app: App, ns: argparse.Namespace) -> int:
    path = _path(app)
    status = call({"op": "status"}, path=path)
    if status is None:
        status = {
            "version": 1,
            "running": False,
            "unlocked": False,
            "socket": path,
            "pid": None,
            "idle_deadline": None,
            "unlocked_until": None,
            "locked_memory": None,
        }
    else:
        status = {k: v for k, v in status.items() if k not in ("v", "ok")}
    if ns.json:
        dump_json(status)
        return 0
    if not status["running"]:
        app.say(f"vault: no agent runs for this vault (it would listen on {path})")
        return 0
    lines = [
        f"agent:          running, pid {status['pid']}",
        f"socket:         {status['socket']}",
        f"state:          {'unlocked' if status['unlocked'] else 'locked'}",
    ]
    if status["unlocked"]:
        lines += [
            f"unlocked until: {status['unlocked_until']}",
            f"idle deadline:  {status['idle_deadline'] or 'none'}",
            f"locked memory:  {'yes' if status['locked_memory'] else 'no (mlock refused)'}",
        ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def cmd_lock(app: App, ns: argparse.Namespace) -> int:
    answer = call({"op": "lock", "reason": "vault lock"}, path=_path(app))
    if answer is None:
        app.say("vault: no agent runs for this vault: no key is held")
    elif answer.get("was_unlocked"):
        app.say("vault: the agent forgot the key")
    else:
        app.say("vault: the agent was locked already")
    return 0


def cmd_unlock(app: App, ns: argparse.Namespace) -> int:
    return _unlock(app, _path(app))


def _unlock(app: App, path: str) -> int:
    status = call({"op": "status"}, path=path)
    if status is None:
        raise UsageError(
            "no agent runs for this vault: nothing to unlock",
            hint="`vault agent start` starts one and unlocks it",
        )
    if status.get("unlocked"):
        app.say("vault: the agent is unlocked already")
        return 0
    secret = _secret(app)
    request: dict[str, Any] = {"op": "unlock"}
    if secret is not None:
        request["passphrase"] = secret.reveal()
    answer = call(request, path=path)
    if answer is None:
        raise IntegrityError("the agent stopped before it could be unlocked")
    app.say(f"vault: the agent is unlocked until {answer.get('unlocked_until')}")
    return 0


def _install(app: App) -> int:
    """A systemd user socket and service for this vault's agent (socket activation: the first
    command that looks for the agent starts it); where there is no user manager, a line for a
    shell profile that starts it at login instead."""
    import shlex

    from vault.cli import schedule
    from vault.fs.durable import atomic_write
    from vault.fs.paths import ensure_private_dir

    path = _path(app)
    command = schedule.vault_command()
    if schedule.manager_environment() is None:
        vault = " ".join(shlex.quote(word) for word in command)
        sys.stdout.write(
            f"{vault} agent status --json 2>/dev/null | grep -q '\"running\": true' "
            f"|| {vault} agent start\n"
        )
        app.say(
            "No systemd user manager here: add the line above to your shell profile "
            "(~/.profile or ~/.bashrc) to start the agent at login."
        )
        return 0
    unit = "vault-agent-" + os.path.basename(path).removeprefix("agent-").removesuffix(".sock")
    where = schedule.systemd_quote(str(app.paths.vault_file))
    socket_unit = (
        f"[Unit]\nDescription=vault agent socket for {where}\n\n"
        f"[Socket]\nListenStream={schedule.systemd_quote(path)}\nSocketMode=0600\n"
        "DirectoryMode=0700\n\n[Install]\nWantedBy=sockets.target\n"
    )
    service_unit = (
        f"[Unit]\nDescription=vault agent for {where}\nRequires={unit}.socket\n\n"
        "[Service]\n"
        + schedule.service_lines(command, schedule.pinned_env(), "agent start --foreground")
    )
    folder = schedule.unit_dir()
    ensure_private_dir(folder)
    atomic_write(folder / f"{unit}.socket", socket_unit.encode(), what="systemd unit")
    atomic_write(folder / f"{unit}.service", service_unit.encode(), what="systemd unit")
    schedule.enable(f"{unit}.socket")
    app.say(f"Installed and started {folder / (unit + '.socket')}: the first use starts the agent.")
    return 0
