"""The agent's client side: where its socket is, the request protocol, and the key backend that
asks the agent first.

The protocol (version 1): each message is a 4-byte big-endian length, then that many bytes of
one JSON object (UTF-8) with ``"v": 1``. A connection carries one request and its answer.
Requests are at most `MAX_REQUEST` bytes, answers at most `MAX_ANSWER`; an answer is
``{"v": 1, "ok": true, ...}`` or ``{"v": 1, "ok": false, "error": {"exit": N, "message": ...,
"hint": ..., "code": ...}}``. JSON goes through the interpreter's C codec (``_json``) directly:
`vault token` served by the agent imports next to nothing (the `json` package costs more to
import than the whole request takes).

Both ends check who is at the other: the agent refuses a peer of another uid (``SO_PEERCRED``),
and the client refuses an agent that is not of its own uid, or whose folder is not private.
"""

from __future__ import annotations

import _json
import os
import sys

from vault.errors import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_INTEGRITY,
    EXIT_INTERNAL,
    EXIT_NETWORK,
    EXIT_POLICY,
    EXIT_USAGE,
    IntegrityError,
    VaultError,
)
from vault.keys.base import KeyBackend, KeyParams, Marks

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import _socket as _socket_type
    from collections.abc import Mapping
    from typing import Any

PROTOCOL = 1
MAX_REQUEST = 64 * 1024
MAX_ANSWER = 1024 * 1024
CONNECT_TIMEOUT = 2.0  # an agent that does not accept within this is treated as absent
ANSWER_TIMEOUT = 300.0  # a request may refresh against a slow provider (its own deadlines apply)
SO_PEERCRED = 17  # Linux; _socket.SO_PEERCRED where the module has it
SUN_PATH_MAX = 107  # sockaddr_un.sun_path, less its NUL


class ProtocolError(ValueError):
    """A message that is not a version-1 message of this protocol."""


# --- the codec -----------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not a JSON value")


def _no_default(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not sent to the agent")


class _Decoding:
    """What ``_json.make_scanner`` reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constant)
    memo: dict[str, str] = {}  # noqa: RUF012 (the scanner's own memo table, cleared per call)


_scan = _json.make_scanner(_Decoding())  # type: ignore[arg-type]
_encode = _json.make_encoder(
    None, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, False
)


def dumps(message: dict[str, Any]) -> bytes:
    """``message`` as compact ASCII JSON."""
    return "".join(_encode(message, 0)).encode("ascii")


def loads(data: bytes) -> dict[str, Any]:
    """One JSON object, or ProtocolError: not UTF-8, not JSON, trailing bytes, too deep."""
    try:
        text = data.decode("utf-8")
        value, end = _scan(text, 0)
    except (UnicodeDecodeError, StopIteration, ValueError, RecursionError, SystemError) as exc:
        # SystemError: the C scanner reports a syntax error as json.decoder.JSONDecodeError,
        # which it looks up in sys.modules only; where the json package was never imported
        # (this codec's whole point) it returns NULL without an exception, and CPython raises
        # SystemError for that.
        raise ProtocolError("the message is not one JSON object") from exc
    finally:
        _Decoding.memo.clear()
    if not isinstance(value, dict) or text[end:].strip(" \t\r\n"):
        raise ProtocolError("the message is not one JSON object")
    return value


def frame(message: dict[str, Any]) -> bytes:
    body = dumps(message)
    return len(body).to_bytes(4, "big") + body


def read_frame(sock: _socket_type.socket, limit: int) -> dict[str, Any]:
    """One message from ``sock``; ProtocolError for a short, oversized or malformed one."""
    head = _read_exactly(sock, 4)
    size = int.from_bytes(head, "big")
    if size > limit:
        raise ProtocolError(f"a message of {size} bytes is over the limit of {limit}")
    message = loads(_read_exactly(sock, size))
    if message.get("v") != PROTOCOL:
        raise ProtocolError(f"protocol version {message.get('v')!r} is not {PROTOCOL}")
    return message


def _read_exactly(sock: _socket_type.socket, size: int) -> bytes:
    chunks = []
    left = size
    while left:
        chunk = sock.recv(min(left, 65536))
        if not chunk:
            raise ProtocolError("the connection closed in the middle of a message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- where the agent is --------------------------------------------------------------------


def runtime_dir(env: Mapping[str, str]) -> str:
    """The folder the agent's socket folder is made in: ``$XDG_RUNTIME_DIR`` (absolute), else
    ``/run/user/UID`` where it exists (cron's bare environment has no XDG_RUNTIME_DIR, but
    the same folder), else ``$TMPDIR`` or /tmp, where the socket folder is ``vault-UID``."""
    value = env.get("XDG_RUNTIME_DIR", "")
    if value and os.path.isabs(value):
        return value
    run = f"/run/user/{os.getuid()}"
    if os.path.isdir(run):
        return run
    return ""


def socket_folder(env: Mapping[str, str]) -> str:
    runtime = runtime_dir(env)
    if runtime:
        return os.path.join(runtime, "vault")
    tmp = env.get("TMPDIR", "")
    # A folder of our own, 0700, checked before use (folder_problem): as ssh-agent's in /tmp.
    top = tmp if os.path.isabs(tmp) else "/tmp"  # noqa: S108
    return os.path.join(top, f"vault-{os.getuid()}")


def socket_path(vault_file: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The socket of the agent of ``vault_file`` (default: the vault this environment names):
    one agent per vault file, named by a hash of the file's real path, so every spelling of
    the place finds it."""
    from vault.util.mac import sha256

    environ = os.environ if env is None else env
    if vault_file is None:
        from vault.fs.where import vault_file as named

        vault_file = named(environ)
    real = os.path.realpath(vault_file)
    digest = sha256(os.fsencode(real)).hexdigest()[:20]
    return os.path.join(socket_folder(environ), f"agent-{digest}.sock")


def folder_problem(folder: str) -> str | None:
    """Why ``folder`` may not hold an agent socket (None if it may): it must be a real folder
    of this uid that nobody else can enter."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return exc.strerror or "unreadable"
    if (st.st_mode & 0o170000) != 0o040000:
        return "not a folder"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}"
    if st.st_mode & 0o077:
        return f"mode {st.st_mode & 0o777:04o}, not 0700"
    return None


def unix_address(path: str) -> tuple[str, int | None]:
    """The address to bind or connect to for ``path``: itself, or, where it is longer than a
    unix socket address may be (a deep XDG_RUNTIME_DIR), the same file reached through the
    folder opened here (``/proc/self/fd/N/NAME``), and that folder's fd, to close after."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        return path, None
    folder, name = os.path.split(path)
    fd = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{name}", fd


def peer_uid(sock: _socket_type.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a connected unix socket."""
    import _socket

    option = getattr(_socket, "SO_PEERCRED", SO_PEERCRED)
    raw = sock.getsockopt(_socket.SOL_SOCKET, option, 12)
    pid = int.from_bytes(raw[0:4], sys.byteorder, signed=True)
    uid = int.from_bytes(raw[4:8], sys.byteorder)
    return pid, uid


def connect(path: str, *, timeout: float = CONNECT_TIMEOUT) -> _socket_type.socket | None:
    """A connection to the agent at ``path``, or None where none runs (no socket, a stale one).
    A socket in a folder that is not yours and private is not used (another user could have
    put it there: the command goes on without an agent, and says so); an agent of another uid
    is an integrity failure: something is impersonating it."""
    if sys.platform != "linux" or not os.path.exists(path):
        return None
    folder = os.path.dirname(path)
    problem = folder_problem(folder)
    if problem is not None:
        sys.stderr.write(
            f"vault: warning: not using the agent socket in {folder} ({problem}); "
            "remove the folder and start the agent again\n"
        )
        return None
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    address, folder_fd = unix_address(path)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
    except (FileNotFoundError, ConnectionRefusedError, TimeoutError):
        sock.close()
        return None
    except OSError:
        sock.close()
        raise
    finally:
        if folder_fd is not None:
            os.close(folder_fd)
    _, uid = peer_uid(sock)
    if uid != os.geteuid():
        sock.close()
        raise IntegrityError(
            f"refusing the agent at {path}: it runs as uid {uid}, not as you",
            hint="remove the socket; only an agent of your own uid is trusted",
        )
    return sock


def call(
    request: dict[str, Any], *, path: str | None = None, timeout: float = ANSWER_TIMEOUT
) -> dict[str, Any] | None:
    """Send ``request`` to this vault's agent; its answer (``ok`` true), or None when no agent
    runs. An error answer is raised as the VaultError it describes."""
    where = socket_path() if path is None else path
    sock = connect(where)
    if sock is None:
        return None
    try:
        sock.settimeout(timeout)
        sock.sendall(frame({"v": PROTOCOL, **request}))
        answer = read_frame(sock, MAX_ANSWER)
    except (ProtocolError, OSError) as exc:
        raise IntegrityError(
            f"the agent at {where} did not answer properly ({exc})",
            hint="`vault agent stop`, then start it again; commands work without it",
        ) from None
    finally:
        sock.close()
    if answer.get("ok") is True:
        return answer
    raise remote_error(answer.get("error"))


class AgentError(VaultError):
    """An error the agent reported, with the exit code it would have had in this process."""

    def __init__(self, message: str, *, hint: str | None, exit_code: int, code: str) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
        self.code = code


_EXITS = {EXIT_USAGE, EXIT_CONFIG, EXIT_AUTH, EXIT_POLICY, EXIT_INTEGRITY, EXIT_NETWORK}


def remote_error(error: object) -> AgentError:
    if not isinstance(error, dict):
        return AgentError(
            "the agent sent an error without a description",
            hint=None,
            exit_code=EXIT_INTEGRITY,
            code="protocol",
        )
    exit_code = error.get("exit")
    message, hint, code = error.get("message"), error.get("hint"), error.get("code")
    return AgentError(
        str(message)[:2000] if message else "the agent refused the request",
        hint=str(hint)[:2000] if hint else None,
        exit_code=exit_code if exit_code in _EXITS else EXIT_INTERNAL,
        code=str(code) if code else "error",
    )


def fast_token(name: str | None, min_valid: int, *, to_terminal: bool) -> str | None:
    """`vault token` through the agent: the access token, or None where no unlocked agent
    runs for this vault (the caller then does what it does without one). ``name`` None: the
    default token, which the agent chooses (vault.tokens.default)."""
    answer = hand_out(name, min_valid, command="token", to_terminal=to_terminal)
    return None if answer is None else answer["token"]


def hand_out(
    name: str | None,
    min_valid: int,
    *,
    command: str,
    to_terminal: bool = False,
    want: str = "access_token",
    origin: tuple[str, str, int] | None = None,
) -> dict[str, Any] | None:
    """A token through this vault's agent (op ``hand_out``: vault.tokens.use.use_token in the
    agent): ``{"token", "expires_at", "provider", "preset"}``, or None where no unlocked agent
    runs (or one too old to know the request): the caller then does it itself. The agent's
    warnings are printed on stderr; its refusals are raised (AgentError)."""
    try:
        answer = call(
            {
                "op": "hand_out",
                "name": name,
                "min_valid": min_valid,
                "command": command,
                "to_terminal": to_terminal,
                "want": want,
                "origin": None if origin is None else list(origin),
            }
        )
    except AgentError as exc:
        if exc.code in ("locked", "protocol"):
            return None
        raise
    return _handed(answer, found=True)


def _handed(answer: dict[str, Any] | None, *, found: bool) -> dict[str, Any] | None:
    """A hand-out answer checked (a token, an expiry or null, a user name or null), its
    warnings printed on stderr; None where no agent served it. ``found`` false: the answer may
    also be ``{"found": false}`` (no token for that host)."""
    if answer is None:
        return None
    for warning in answer.get("warnings") or ():
        sys.stderr.write(f"vault: warning: {warning}\n")
    if not found and answer.get("found") is False:
        return answer
    token, expires_at = answer.get("token"), answer.get("expires_at")
    username = answer.get("username")
    if (
        (not found and answer.get("found") is not True)
        or not isinstance(token, str)
        or not (username is None or isinstance(username, str))
        or not (
            expires_at is None or (isinstance(expires_at, int) and not isinstance(expires_at, bool))
        )
    ):
        raise IntegrityError("the agent answered without a token")
    return answer


def hand_out_host(kind: str, host: str, min_valid: int, *, command: str) -> dict[str, Any] | None:
    """The token config.yaml's ``kind`` section names for ``host``, through this vault's agent
    (op ``hand_out_host``: vault.tokens.hosts.use_for_host in the agent): ``{"found": false}``
    where the section names no such host, else ``{"found": true, "token", "expires_at",
    "provider", "preset", "host", "username"}``; None where no unlocked agent runs (or one too
    old to know the request). Warnings are printed on stderr; refusals raised (AgentError)."""
    try:
        answer = call(
            {
                "op": "hand_out_host",
                "kind": kind,
                "host": host,
                "min_valid": min_valid,
                "command": command,
            }
        )
    except AgentError as exc:
        if exc.code in ("locked", "protocol"):
            return None
        raise
    return _handed(answer, found=False)


def names(*, path: str | None = None, timeout: float = CONNECT_TIMEOUT) -> list[str] | None:
    """The stored tokens' names through this vault's agent (op ``names``), for completion;
    None where no unlocked agent answers (none runs, it is locked, refuses, or is too old to
    know the request). Never raises for the agent's sake."""
    try:
        answer = call({"op": "names"}, path=path, timeout=timeout)
    except VaultError:
        return None
    found = None if answer is None else answer.get("names")
    if not isinstance(found, list) or not all(isinstance(n, str) for n in found):
        return None
    return found


# --- the key backend that asks the agent first --------------------------------------------


class AgentBackend(KeyBackend):
    """``backend`` with the agent in front: the key (and, with it, the marks) from the agent of
    this vault while one runs unlocked, else from ``backend`` as without an agent. New keys and
    retiring are always ``backend``'s own."""

    def __init__(self, backend: KeyBackend, path: str) -> None:
        self.backend = backend
        self.name = backend.name
        self.path = path
        self.served = False  # the key came from the agent: the marks go through it too

    @property
    def label(self) -> str:
        return self.backend.label

    @property
    def marks_need_unlock(self) -> bool:  # type: ignore[override]
        # The agent reads the marks afresh for each request (op_marks); the backend here only
        # when it gave the key itself.
        return not self.served and self.backend.marks_need_unlock

    def probe(self) -> None:
        self.backend.probe()

    def unlock(self, vault_id: bytes, params: KeyParams, *, where: str) -> bytes:
        try:
            answer = call(
                {
                    "op": "key",
                    "backend": self.name,
                    "vault_id": vault_id.hex(),
                    "key_id": params.key_id.hex(),
                    "salt": params.salt.hex(),
                },
                path=self.path,
            )
        except AgentError as exc:
            if exc.code != "locked":
                raise
            return self._unlock_here(vault_id, params, where, locked=True)
        if answer is None:
            return self._unlock_here(vault_id, params, where, locked=False)
        try:
            key = bytes.fromhex(str(answer["key"]))
        except (KeyError, ValueError):
            raise IntegrityError("the agent answered without a key") from None
        self.served = True
        return key

    def _unlock_here(
        self, vault_id: bytes, params: KeyParams, where: str, *, locked: bool
    ) -> bytes:
        self.served = False
        try:
            return self.backend.unlock(vault_id, params, where=where)
        except VaultError as exc:
            if locked:
                exc.hint = (
                    f"{exc.hint}; " if exc.hint else ""
                ) + "the agent of this vault is locked: `vault unlock` unlocks it"
            raise

    def refused(self, key: bytes, error: IntegrityError, *, where: str) -> IntegrityError | None:
        if self.served:  # the agent's key no longer opens the file: nothing to ask again
            return error
        return self.backend.refused(key, error, where=where)

    def marks(self, vault_id: bytes, state_key: bytes) -> Marks:
        if not self.served:
            return self.backend.marks(vault_id, state_key)
        answer = call(
            {"op": "marks", "vault_id": vault_id.hex(), "state_key": state_key.hex()},
            path=self.path,
        )
        if answer is None:
            raise IntegrityError("the agent stopped while this command used its key")
        generation, audit = answer.get("generation"), answer.get("audit")
        if not isinstance(generation, int) or not (audit is None or isinstance(audit, dict)):
            raise IntegrityError("the agent answered with malformed marks")
        return Marks(generation, audit)

    def new_key(
        self,
        vault_id: bytes,
        state_key: bytes,
        marks: Marks,
        *,
        confirm: bool,
        new_secret: bool = False,
    ) -> tuple[KeyParams, bytes]:
        return self.backend.new_key(
            vault_id, state_key, marks, confirm=confirm, new_secret=new_secret
        )

    def save_marks(
        self, vault_id: bytes, params: KeyParams, key: bytes, marks: Marks, state_key: bytes
    ) -> str | None:
        if not self.served:
            return self.backend.save_marks(vault_id, params, key, marks, state_key)
        try:
            answer = call(
                {
                    "op": "save_marks",
                    "vault_id": vault_id.hex(),
                    "key_id": params.key_id.hex(),
                    "salt": params.salt.hex(),
                    "generation": marks.generation,
                    "audit": marks.audit,
                    "state_key": state_key.hex(),
                },
                path=self.path,
            )
        except VaultError as exc:
            return f"the vault was written, but the agent could not record its generation: {exc}"
        if answer is None:
            return "the vault was written, but the agent stopped before it recorded the generation"
        warning = answer.get("warning")
        return str(warning) if warning else None

    def retire(self, vault_id: bytes) -> str | None:
        return self.backend.retire(vault_id)
