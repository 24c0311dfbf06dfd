"""The agent: one process holding one vault's data key, serving `vault` commands of its user.

What it holds is the data key alone, in locked memory where the system allows. Every request
reads the vault file again under the vault's lock, as a command without an agent does, so
commands served by the agent and commands run directly work side by side; the vault file, its
lock and the audit log stay the only record. A token leaves the agent in the answer to the
request that asked for it and is not kept.

Each connection is served on its own thread (at most `MAX_CLIENTS` at once; one more is told
the agent is busy), so a request that waits on a slow provider does not hold up another. The
key is dropped on `vault lock`, on `vault agent stop`, after `idle` seconds without a request,
after `max_unlocked` seconds unlocked (capped by policy), when policy stops allowing an agent,
and when the vault's key is no longer the one held (the vault was rekeyed). The agent then
keeps running, locked, until stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path

from vault.audit.chain import SERVED_PID, make_event
from vault.errors import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    IntegrityError,
    UsageError,
    VaultError,
)
from vault.fs.paths import ensure_private_dir, read_private_file
from vault.keys.agent import (
    MAX_REQUEST,
    PROTOCOL,
    ProtocolError,
    connect,
    frame,
    peer_uid,
    read_frame,
    unix_address,
)
from vault.keys.base import KeyBackend, KeyParams, Marks
from vault.secret import Secret
from vault.store import format as fmt
from vault.store.vault import Store, params_of
from vault.util.redact import scrub_text
from vault.util.text import check_name, clean, rfc3339

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from vault.fs.paths import Paths
    from vault.policy.config import Config
    from vault.policy.rules import Policy

DEFAULT_IDLE = 3600.0
DEFAULT_MAX_UNLOCKED = 8 * 3600.0
MAX_CLIENTS = 32
READ_TIMEOUT = 10.0  # a client that connects and says nothing is dropped after this
STOP_GRACE = 60.0  # on stop, requests under way get this long to finish their writes
LOG_LIMIT = 1024 * 1024


class Locked(IntegrityError):
    """The agent holds no key (never unlocked, locked, or the key it held went stale)."""

    code = "locked"

    @classmethod
    def now(cls) -> Locked:
        """The agent holds no key at all: `vault unlock` gives it one."""
        return cls("the agent of this vault is locked", hint="`vault unlock` unlocks it")


# --- the key in memory ---------------------------------------------------------------------


class HeldKey:
    """The data key, in a buffer locked into memory where mlock(2) allows, wiped when dropped."""

    __slots__ = ("_pin", "backend", "buffer", "locked_memory", "params", "vault_id")

    def __init__(self, key: bytes, *, backend: str, vault_id: bytes, params: KeyParams) -> None:
        self.buffer = bytearray(key)
        self.backend = backend
        self.vault_id = vault_id
        self.params = params
        self._pin: Any = None
        self.locked_memory = self._mlock()

    def _mlock(self) -> bool:
        try:
            import ctypes

            pin = (ctypes.c_char * len(self.buffer)).from_buffer(self.buffer)
            if _libc().mlock(ctypes.addressof(pin), len(self.buffer)) != 0:
                return False
        except (OSError, AttributeError, ImportError):
            return False
        self._pin = pin
        return True

    def key(self) -> bytes:
        return bytes(self.buffer)

    def matches(self, backend: str, vault_id: bytes, key_id: bytes, salt: bytes) -> bool:
        return (backend, vault_id, key_id, salt) == (
            self.backend,
            self.vault_id,
            self.params.key_id,
            self.params.salt,
        )

    def wipe(self) -> None:
        for i in range(len(self.buffer)):
            self.buffer[i] = 0
        if self._pin is not None:
            import ctypes

            _libc().munlock(ctypes.addressof(self._pin), len(self.buffer))
            self._pin = None


def _libc() -> Any:
    """The C library's mlock and munlock, with their real argument types (an address is wider
    than the C int ctypes would pass by default)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for name in ("mlock", "munlock"):
        function = getattr(libc, name)
        function.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        function.restype = ctypes.c_int
    return libc


class HeldBackend(KeyBackend):
    """The store's key backend inside the agent: the held key, with the marks kept where the
    vault's own backend keeps them (the keyring entry is read again for each request)."""

    def __init__(self, agent: Agent, real: KeyBackend) -> None:
        self.agent = agent
        self.real = real
        self.name = real.name
        self.marks_need_unlock = real.marks_need_unlock  # unlock reads the keyring's entry

    @property
    def label(self) -> str:
        return f"{self.real.label} (through the agent)"

    def probe(self) -> None:
        raise Locked("the agent holds the key of an existing vault only")

    def unlock(self, vault_id: bytes, params: KeyParams, *, where: str) -> bytes:
        held = self.agent.key_for(self.name, vault_id, params.key_id, params.salt)
        if self.name == "keyring":  # the marks are in the entry: read it now
            with self.agent.keyring_mutex:
                if self.real.unlock(vault_id, params, where=where) != held:
                    self.agent.lock("the keyring holds another key for the vault")
                    raise Locked("the vault's key changed; the agent forgot the old one")
        return held

    def marks(self, vault_id: bytes, state_key: bytes) -> Marks:
        with self.agent.keyring_mutex:
            return self.real.marks(vault_id, state_key)

    def new_key(
        self,
        vault_id: bytes,
        state_key: bytes,
        marks: Marks,
        *,
        confirm: bool,
        new_secret: bool = False,
    ) -> tuple[KeyParams, bytes]:
        raise Locked("a new key is never made through the agent")

    def save_marks(
        self, vault_id: bytes, params: KeyParams, key: bytes, marks: Marks, state_key: bytes
    ) -> str | None:
        with self.agent.keyring_mutex:
            return self.real.save_marks(vault_id, params, key, marks, state_key)

    def retire(self, vault_id: bytes) -> str | None:
        return "the agent never retires a key"


# --- the agent -----------------------------------------------------------------------------


class Agent:
    """The agent's state and its answer to each request; `serve` runs the socket.

    ``clock`` (monotonic seconds) drives the idle and unlocked deadlines, ``wall`` the times
    shown; both are injectable for tests."""

    def __init__(
        self,
        paths: Paths,
        socket_path: str,
        *,
        idle: float | None = DEFAULT_IDLE,
        max_unlocked: float = DEFAULT_MAX_UNLOCKED,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.paths = paths
        self.socket_path = socket_path
        self.idle = idle
        self.max_unlocked = max_unlocked
        self.cap: tuple[float, str] | None = None  # policy's agent.max_unlocked, last read
        self.clock = clock
        self.wall = wall
        self.held: HeldKey | None = None
        self.unlocked_at = 0.0
        self.last_request = clock()
        self.mutex = threading.RLock()
        self.keyring_mutex = threading.Lock()
        self.stopping = threading.Event()
        self.log_file = paths.audit_file.parent / "agent.log"
        self.foreground_log = False
        self._real: dict[str, KeyBackend] = {}
        self._announce: dict[str, Any] | None = None
        self._dropping = False

    # --- settings and backends -------------------------------------------------------

    def settings(self, *, unlocking: bool = False) -> tuple[Config, Policy]:
        """config.yaml and the policies, read again for each request (an edit applies at
        once). A policy that no longer allows an agent locks it: the request is answered as
        by a locked agent (the client goes on without it), an unlock is refused by policy."""
        from vault.policy import config as _config
        from vault.policy import rules as _rules

        config = _config.load(self.paths)
        policy = _rules.load(self.paths)
        denial = policy.agent_denial()
        if denial is not None:
            self.lock(f"policy no longer allows an agent ({denial.rule} in {denial.source})")
            if unlocking:
                raise denial.error()
            raise Locked(
                f"policy no longer allows an agent ({denial.rule} in {denial.source})",
                hint="the command goes on without the agent",
            )
        self.cap = policy.agent_max_unlocked()
        return config, policy

    def real_backend(self, name: str, passphrase: Secret | None = None) -> KeyBackend:
        backend = self._real.get(name)
        if backend is None or passphrase is not None:
            if name == "keyring":
                from vault.keys.keyring import KeyringBackend

                backend = KeyringBackend()
            elif name == "passphrase":
                from vault.keys.passphrase import PassphraseBackend, PassphraseSource

                source = PassphraseSource(interactive=False)
                if passphrase is not None:
                    source.give(passphrase)
                backend = PassphraseBackend(source, self.paths.key_file)
            else:
                raise IntegrityError(f"unknown key backend {name!r}")
            self._real[name] = backend
        return backend

    def store(self, config: Config) -> Store:
        backend, _ = config.backend()
        return Store(
            self.paths,
            backend=backend,
            backends={backend: HeldBackend(self, self.real_backend(backend))},
            audit_max_bytes=config.audit_max_bytes,
        )

    # --- the key ---------------------------------------------------------------------

    def key_for(self, backend: str, vault_id: bytes, key_id: bytes, salt: bytes) -> bytes:
        with self.mutex:
            if not self._dropping:  # the audit record of a lock is written with the key
                self.tick()
            held = self.held
            if held is None:
                raise Locked.now()
            if held.vault_id != vault_id:
                raise Locked("the agent holds the key of another vault")
            if not held.matches(backend, vault_id, key_id, salt):
                self.lock("the vault was rekeyed")
                raise Locked(
                    "the vault's key changed since the agent was unlocked; it forgot the old key",
                    hint="`vault unlock` unlocks it with the new key",
                )
            self.last_request = self.clock()
            return held.key()

    def unlock(self, passphrase: Secret | None = None) -> bool:
        """Take the key from the vault's backend (the keyring, or ``passphrase``), after
        checking it opens the vault. False if the agent was unlocked already."""
        with self.mutex:
            if self.held is not None:
                return False
            config, _ = self.settings(unlocking=True)
            configured, _ = config.backend()
            path = self.paths.vault_file
            blob = read_private_file(path, "vault file", limit=fmt.MAX_FILE_SIZE)
            if blob is None:
                raise Locked(
                    f"there is no vault at {path} yet: nothing to unlock",
                    hint="`vault login` creates it; then `vault unlock`",
                )
            header = fmt.parse_header(blob, path=str(path))
            if header.backend != configured:
                raise IntegrityError(
                    f"the vault at {path} uses the {header.backend} key backend, the "
                    f"configuration {configured}",
                    hint=f"set key_backend: {header.backend}, or `vault rekey`",
                )
            if header.backend == "passphrase" and passphrase is None:
                raise Locked(
                    "the agent needs the passphrase to unlock",
                    hint="`vault unlock` asks for it on the terminal, or reads --passphrase-file",
                )
            backend = self.real_backend(header.backend, passphrase)
            params = params_of(header)
            with self.keyring_mutex:
                key = backend.unlock(header.vault_id, params, where=str(path))
            fmt.open_sealed(header, key, blob, path=str(path))  # a wrong passphrase stops here
            self.held = HeldKey(
                key, backend=header.backend, vault_id=header.vault_id, params=params
            )
            self.unlocked_at = self.last_request = self.clock()
            until = self.deadlines()[1]
            if self._announce is not None:
                self.audit(self._announce, config)
                self._announce = None
            self.audit(
                make_event(
                    "agent_unlocked",
                    reason=f"key held until {rfc3339(until)}" if until else None,
                ),
                config,
            )
            self.note(f"unlocked ({header.backend} backend), until {rfc3339(until)}")
            return True

    def announce(self, event: dict[str, Any]) -> None:
        """Audit ``event`` (the agent's start) with the first key it holds: before that, the
        agent has no key to write the audit log with."""
        self._announce = event

    def lock(self, reason: str) -> bool:
        """Drop the key (audited first, while it can still be). False if none was held."""
        with self.mutex:
            held = self.held
            if held is None:
                return False
            self._dropping = True
            try:
                from vault.policy import config as _config

                self.audit(make_event("agent_locked", reason=reason), _config.load(self.paths))
            except VaultError as exc:
                self.note(f"the lock could not be audited: {exc.message}")
            finally:
                self._dropping = False
            self.held = None
            held.wipe()
            self.note(f"locked: {reason}")
            return True

    def max_unlocked_now(self) -> float:
        cap = self.cap
        return self.max_unlocked if cap is None else min(self.max_unlocked, cap[0])

    def deadlines(self) -> tuple[float | None, float | None]:
        """(idle deadline, unlocked-until), as wall-clock times; None where none applies."""
        with self.mutex:
            if self.held is None:
                return None, None
            now_mono, now_wall = self.clock(), self.wall()
            until = now_wall + (self.unlocked_at + self.max_unlocked_now() - now_mono)
            if self.idle is None:
                return None, until
            return now_wall + (self.last_request + self.idle - now_mono), until

    def tick(self) -> float:
        """Apply the deadlines now; seconds until the next one (1 s at most)."""
        with self.mutex:
            if self.held is None:
                return 1.0
            now = self.clock()
            left = self.unlocked_at + self.max_unlocked_now() - now
            if left <= 0:
                self.lock(f"unlocked for its maximum of {self.max_unlocked_now():g} s")
                return 1.0
            if self.idle is not None:
                idle_left = self.last_request + self.idle - now
                if idle_left <= 0:
                    self.lock(f"idle for {self.idle:g} s")
                    return 1.0
                left = min(left, idle_left)
            return max(0.01, min(1.0, left))

    # --- audit and log ---------------------------------------------------------------

    def audit(self, event: dict[str, Any], config: Config) -> list[str]:
        """Append ``event`` to the vault's audit log with the held key; the store's warnings."""
        store = self.store(config)
        store.record_event(event)
        self.forward(config, store)
        for warning in store.warnings:
            self.note(f"{event['event']}: {warning}")
        return store.warnings

    def forward(self, config: Config, store: Store) -> None:
        if not config.audit_syslog or not store.appended:
            return
        from vault.audit.forward import SyslogError, sink_for

        try:
            sink = sink_for(config)
            if sink is not None:
                with sink:
                    sink.send_many(store.appended)
        except SyslogError as exc:
            store.warnings.append(f"audit events not forwarded to syslog: {exc}")
        store.appended.clear()

    def note(self, message: str) -> None:
        """One line in the agent's log (never a secret: scrubbed as every error message is)."""
        line = f"{rfc3339(self.wall())} vault-agent[{os.getpid()}]: "
        line += scrub_text(clean(message, limit=500)) + "\n"
        if self.foreground_log:
            os.write(2, line.encode("utf-8", "replace"))
        with contextlib.suppress(OSError):
            _append_private(self.log_file, line.encode("utf-8", "replace"))

    # --- requests --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self.mutex:
            idle, until = self.deadlines()
            held = self.held
            return {
                "version": 1,
                "running": True,
                "unlocked": held is not None,
                "socket": self.socket_path,
                "pid": os.getpid(),
                "idle_deadline": rfc3339(idle) if idle is not None else None,
                "unlocked_until": rfc3339(until) if until is not None else None,
                "locked_memory": held.locked_memory if held is not None else None,
                "backend": held.backend if held is not None else None,
                "vault": str(self.paths.vault_file),
            }

    def handle(self, request: dict[str, Any], pid: int) -> dict[str, Any]:
        """The answer to one request from the process ``pid`` (checked to be of this uid)."""
        op = request.get("op")
        handler = _OPS.get(op) if isinstance(op, str) else None
        if handler is None:
            return error_answer(UsageError(f"unknown request {str(op)[:40]!r}"), "protocol")
        served = SERVED_PID.set(pid)
        try:
            return {"ok": True, **handler(self, request)}
        except VaultError as exc:
            return error_answer(exc)
        except Exception as exc:  # the agent keeps serving others; the type only (no message)
            self.note(f"internal error in {op!r}: {type(exc).__name__}")
            return {
                "ok": False,
                "error": {
                    "exit": EXIT_INTERNAL,
                    "code": "internal",
                    "message": f"the agent failed ({type(exc).__name__}); this is a bug",
                },
            }
        finally:
            SERVED_PID.reset(served)

    def op_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.status()

    def op_token(self, request: dict[str, Any]) -> dict[str, Any]:
        """`vault token` (protocol 1 as first published): the access token."""
        answer = self.op_hand_out({**request, "want": "access_token", "origin": None})
        return {"access_token": answer["token"], "warnings": answer["warnings"]}

    def op_hand_out(self, request: dict[str, Any]) -> dict[str, Any]:
        """A token handed out for a helper (vault.tokens.use.use_token with every option):
        ``want`` access_token or id_token, ``origin`` [scheme, host, port] it must be for, or
        null. The answer: the token, its expiry, and the provider it came from."""
        from vault.tokens.use import WANTS, handed, use_token

        # null: the default token (vault.tokens.default), chosen here with this vault's names
        name = None if request.get("name") is None else check_name(_text(request, "name"))
        min_valid = request.get("min_valid", 0)
        if isinstance(min_valid, bool) or not isinstance(min_valid, int) or min_valid < 0:
            raise UsageError("min_valid must be zero or more seconds")
        command = _text(request, "command", limit=200)
        to_terminal = request.get("to_terminal", False) is True
        want = request.get("want", "access_token")
        if want not in WANTS:
            raise UsageError(f"want must be one of {', '.join(WANTS)}")
        origin = _origin(request.get("origin"))
        if self.held is None:
            raise Locked.now()
        config, policy = self.settings()
        store = self.store(config)
        try:
            if name is None:
                from vault.tokens.default import resolve

                name = resolve(store, None)
            record = use_token(
                store,
                policy,
                config.providers,
                name,
                min_valid=min_valid,
                command=command,
                to_terminal=to_terminal,
                want=want,
                origin=origin,
            )
        finally:
            self.forward(config, store)
        token, expires_at = handed(record, want)
        return {
            "token": token.reveal(),
            "expires_at": expires_at,
            "provider": record.provider,
            "preset": record.extra.get("preset"),
            "warnings": store.warnings,
        }

    def op_hand_out_host(self, request: dict[str, Any]) -> dict[str, Any]:
        """The token config.yaml's ``kind`` section ("registries", "terraform") names for
        ``host`` (vault.tokens.hosts.use_for_host, looked up here in config.yaml as it is
        now): ``{"found": false}`` where it names none, else the token, its expiry, its
        provider, the host as configured and the user name to send with it."""
        from vault.tokens.hosts import KINDS, use_for_host
        from vault.tokens.use import handed

        kind = _text(request, "kind", limit=20)
        if kind not in KINDS:
            raise UsageError(f"kind must be one of {', '.join(KINDS)}")
        host = _text(request, "host", limit=1024)
        min_valid = request.get("min_valid", 0)
        if isinstance(min_valid, bool) or not isinstance(min_valid, int) or min_valid < 0:
            raise UsageError("min_valid must be zero or more seconds")
        command = _text(request, "command", limit=200)
        if self.held is None:
            raise Locked.now()
        config, policy = self.settings()
        store = self.store(config)
        try:
            found = use_for_host(
                store, policy, config, kind, host, min_valid=min_valid, command=command
            )
        finally:
            self.forward(config, store)
        if found is None:
            return {"found": False, "warnings": store.warnings}
        record, configured, entry = found
        token, expires_at = handed(record, "access_token")
        return {
            "found": True,
            "token": token.reveal(),
            "expires_at": expires_at,
            "provider": record.provider,
            "preset": record.extra.get("preset"),
            "host": configured,
            "username": entry.username,
            "warnings": store.warnings,
        }

    def op_names(self, request: dict[str, Any]) -> dict[str, Any]:
        """The stored tokens' names and nothing else (for shell completion): no token, no
        metadata; read as `vault list` reads the vault, nothing written or audited."""
        if self.held is None:
            raise Locked.now()
        config, _ = self.settings()
        from vault.store.model import split_payload

        snapshot = self.store(config).read()
        return {"names": sorted(split_payload(snapshot.payload)[1]) if snapshot else []}

    def op_key(self, request: dict[str, Any]) -> dict[str, Any]:
        backend = _text(request, "backend", limit=20)
        vault_id, key_id, salt = (_hex(request, f) for f in ("vault_id", "key_id", "salt"))
        if self.held is None:
            raise Locked.now()
        self.settings()
        return {"key": self.key_for(backend, vault_id, key_id, salt).hex()}

    def _held_for(self, vault_id: bytes) -> HeldKey:
        held = self.held
        if held is None or held.vault_id != vault_id:
            raise Locked("the agent holds no key for this vault")
        return held

    def op_marks(self, request: dict[str, Any]) -> dict[str, Any]:
        vault_id, state_key = _hex(request, "vault_id"), _hex(request, "state_key")
        held = self._held_for(vault_id)
        real = self.real_backend(held.backend)
        with self.keyring_mutex:
            if held.backend == "keyring":
                real.unlock(vault_id, held.params, where=str(self.paths.vault_file))
            marks = real.marks(vault_id, state_key)
        return {"generation": marks.generation, "audit": marks.audit}

    def op_save_marks(self, request: dict[str, Any]) -> dict[str, Any]:
        vault_id, state_key = _hex(request, "vault_id"), _hex(request, "state_key")
        key_id, salt = _hex(request, "key_id"), _hex(request, "salt")
        generation, audit = request.get("generation"), request.get("audit")
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise UsageError("generation must be a count")
        if audit is not None and not isinstance(audit, dict):
            raise UsageError("audit must be an object")
        held = self._held_for(vault_id)
        if not held.matches(held.backend, vault_id, key_id, salt):
            raise Locked("the marks are for another key than the agent holds")
        real = self.real_backend(held.backend)
        with self.keyring_mutex:
            warning = real.save_marks(
                vault_id, held.params, held.key(), Marks(generation, audit), state_key
            )
        return {"warning": warning}

    def op_lock(self, request: dict[str, Any]) -> dict[str, Any]:
        reason = request.get("reason")
        text = clean(reason, limit=200) if isinstance(reason, str) and reason else "vault lock"
        return {"was_unlocked": self.lock(text)}

    def op_unlock(self, request: dict[str, Any]) -> dict[str, Any]:
        given = request.get("passphrase")
        if given is not None and not isinstance(given, str):
            raise UsageError("passphrase must be a string")
        unlocked = self.unlock(Secret(given) if given else None)
        return {"already": not unlocked, **self.status()}

    def op_stop(self, request: dict[str, Any]) -> dict[str, Any]:
        self.stopping.set()
        self.lock("the agent was stopped")
        return {"stopped": True}

    # --- serving ---------------------------------------------------------------------

    def serve(self, listener: socket.socket) -> None:
        """Accept and serve connections until stopped (a request, SIGTERM, SIGINT)."""
        slots = threading.BoundedSemaphore(MAX_CLIENTS)
        workers: list[threading.Thread] = []
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stopping.set())
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        while not self.stopping.is_set():
            listener.settimeout(self.tick())
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self.stopping.is_set():
                    break
                self.note(f"accept failed: {exc.strerror}")
                time.sleep(0.05)
                continue
            if not slots.acquire(blocking=False):
                _refuse(conn, "busy", f"the agent is serving {MAX_CLIENTS} requests; retry")
                continue
            worker = threading.Thread(target=self._connection, args=(conn, slots), daemon=True)
            worker.start()
            workers = [w for w in workers if w.is_alive()] + [worker]
        deadline = time.monotonic() + STOP_GRACE
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self.lock("the agent was stopped")
        self.note("stopped")

    def _connection(self, conn: socket.socket, slots: threading.BoundedSemaphore) -> None:
        try:
            pid, uid = peer_uid(conn)
            if uid != os.geteuid():
                self.note(f"refused a client of uid {uid} (pid {pid})")
                _refuse(conn, "refused", "the agent serves its own user only")
                return
            conn.settimeout(READ_TIMEOUT)
            try:
                request = read_frame(conn, MAX_REQUEST)
            except ProtocolError as exc:
                self.note(f"a malformed request from pid {pid}: {exc}")
                _refuse(conn, "protocol", f"malformed request: {exc}")
                return
            answer = self.handle(request, pid)
            conn.settimeout(READ_TIMEOUT)
            conn.sendall(frame({"v": PROTOCOL, **answer}))
        except OSError:
            pass  # the client went away; nothing of its request is half done by that
        finally:
            conn.close()
            slots.release()


_OPS: dict[str, Callable[[Agent, dict[str, Any]], dict[str, Any]]] = {
    "status": Agent.op_status,
    "token": Agent.op_token,
    "hand_out": Agent.op_hand_out,
    "hand_out_host": Agent.op_hand_out_host,
    "names": Agent.op_names,
    "key": Agent.op_key,
    "marks": Agent.op_marks,
    "save_marks": Agent.op_save_marks,
    "lock": Agent.op_lock,
    "unlock": Agent.op_unlock,
    "stop": Agent.op_stop,
}


def error_answer(exc: VaultError, code: str | None = None) -> dict[str, Any]:
    """The answer that reports ``exc`` (vault.keys.agent.remote_error reads it back)."""
    return {
        "ok": False,
        "error": {
            "exit": exc.exit_code,
            "code": code or getattr(exc, "code", None) or "error",
            "message": exc.message,
            "hint": exc.hint,
        },
    }


def _refuse(conn: socket.socket, code: str, message: str) -> None:
    try:
        conn.settimeout(1.0)
        answer = error_answer(IntegrityError(message), code)
        if code == "protocol":
            answer["error"]["exit"] = EXIT_USAGE
        conn.sendall(frame({"v": PROTOCOL, **answer}))
    except OSError:
        pass
    finally:
        conn.close()


def _text(request: dict[str, Any], field: str, *, limit: int = 256) -> str:
    value = request.get(field)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise UsageError(f"{field} must be a string of 1 to {limit} characters")
    return value


def _origin(value: object) -> tuple[str, str, int] | None:
    """A request's ``origin``: null, or [scheme, host, port] as vault.login.http.origin
    gives them."""
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) == 3
        and value[0] in ("https", "http")
        and isinstance(value[1], str)
        and 0 < len(value[1]) <= 255
        and isinstance(value[2], int)
        and not isinstance(value[2], bool)
        and 0 < value[2] < 65536
    ):
        return value[0], value[1], value[2]
    raise UsageError("origin must be null or [scheme, host, port]")


def _hex(request: dict[str, Any], field: str) -> bytes:
    value = request.get(field)
    if not isinstance(value, str) or len(value) > 256:
        raise UsageError(f"{field} must be hexadecimal")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise UsageError(f"{field} must be hexadecimal") from None


def _append_private(path: Path, data: bytes) -> None:
    """Append to a 0600 file of ours, set aside once it passes `LOG_LIMIT`."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return
        if st.st_size > LOG_LIMIT:
            os.replace(path, path.with_name(path.name + ".1"))
        os.write(fd, data)
    finally:
        os.close(fd)


# --- the socket ----------------------------------------------------------------------------


def listen(path: str) -> tuple[socket.socket, int]:
    """The agent's listening socket at ``path`` (0600, in a 0700 folder), and the fd of the
    lock held for the agent's life: one agent per vault. A socket left by a dead agent is
    replaced; a live one is an error."""
    folder = Path(path).parent
    ensure_private_dir(folder)
    lock_fd = hold_agent_lock(path)
    if os.path.lexists(path):
        # The lock is ours, so no agent serves this socket: it was left behind.
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address, folder_fd = unix_address(path)
    old_umask = os.umask(0o177)
    try:
        listener.bind(address)
    finally:
        os.umask(old_umask)
        if folder_fd is not None:
            os.close(folder_fd)
    os.chmod(path, 0o600)
    listener.listen(64)
    return listener, lock_fd


def hold_agent_lock(path: str) -> int:
    """Hold, for the agent's life, the lock beside the socket ``path``: one agent per vault."""
    import fcntl

    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(
            "an agent already runs for this vault",
            hint="`vault agent status` shows it; `vault agent stop` stops it",
        ) from None
    return fd


def activated_socket() -> socket.socket | None:
    """The listening socket systemd passed (socket activation), if it passed one to us."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        return None
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)
    sock = socket.socket(fileno=3)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise UsageError("the socket passed by systemd is not a unix stream socket")
    os.set_inheritable(3, False)
    return sock


def running(path: str) -> bool:
    """An agent answers at ``path``."""
    sock = connect(path)
    if sock is None:
        return False
    sock.close()
    return True
