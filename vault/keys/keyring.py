"""The ``keyring`` backend: a random 256-bit key held in the OS keyring (Secret Service, macOS
Keychain, Windows Credential Locker) under service ``vault`` and the vault's id. The entry also
keeps the marks (the last generation written, the audit mark), so a vault file rolled back to an
older copy is detected. It never falls back to another keyring, or to anything in clear.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from collections.abc import Callable

from vault.errors import IntegrityError, KeyringUnavailable
from vault.keys.base import KeyBackend, KeyParams, Marks
from vault.util.record import datarecord, field

SERVICE = "vault"

# The only keyring backends we accept, by the dotted name PYTHON_KEYRING_BACKEND would use.
OS_KEYRINGS = {
    "keyring.backends.SecretService.Keyring": "Secret Service",
    "keyring.backends.macOS.Keyring": "macOS Keychain",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Locker",
}


TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from vault.keys.secretservice import SecretService

    T = TypeVar("T")


def keyring_timeout() -> float:
    raw = os.environ.get("VAULT_KEYRING_TIMEOUT", "")
    try:
        return max(0.1, float(raw)) if raw else 10.0
    except ValueError:
        return 10.0


def _bounded(fn: Callable[[], T], *, what: str) -> T:
    """Run a keyring call on a daemon thread and give up after the timeout: a locked keyring
    waiting for a prompt nobody can answer must not hang a cron job."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised on the calling thread
            error.append(exc)

    import threading

    worker = threading.Thread(target=run, name="vault-keyring", daemon=True)
    worker.start()
    limit = keyring_timeout()
    worker.join(limit)
    if worker.is_alive():
        raise KeyringUnavailable(
            f"the OS keyring did not answer within {limit:g} s while trying to {what}",
            hint="the keyring may be locked and waiting for an unlock prompt: unlock it "
            "(log in to the desktop session) or set VAULT_KEYRING_TIMEOUT",
        )
    if error:
        raise _translate(error[0], what) from error[0]
    return result[0]


def _translate(exc: BaseException, what: str) -> BaseException:
    if isinstance(exc, IntegrityError):
        return exc
    name = type(exc).__name__
    if name == "KeyringLocked":
        return KeyringUnavailable(
            f"the OS keyring is locked (while trying to {what})",
            hint="unlock it, e.g. by logging in to the desktop session, then retry",
        )
    # Never include str(exc): keyring errors can quote the data they were given.
    return KeyringUnavailable(
        f"the OS keyring is unavailable ({name}) while trying to {what}",
        hint="check that a Secret Service (gnome-keyring, KeePassXC) runs in this session and "
        "that DBUS_SESSION_BUS_ADDRESS is set, or configure key_backend: passphrase",
    )


def _platform_backend_name() -> str:
    if sys.platform == "darwin":
        return "keyring.backends.macOS.Keyring"
    if sys.platform == "win32":
        return "keyring.backends.Windows.WinVaultKeyring"
    return "keyring.backends.SecretService.Keyring"


def keyring_backend_name() -> str:
    """The backend we would use, checked against the allow-list. keyring's own discovery
    (entry points, keyringrc.cfg) is never run: it can pick a plaintext backend silently."""
    requested = os.environ.get("PYTHON_KEYRING_BACKEND", "").strip()
    if requested and requested not in OS_KEYRINGS:
        raise KeyringUnavailable(
            f"PYTHON_KEYRING_BACKEND={requested} is not an OS keyring; vault keeps its key only "
            "in Secret Service, macOS Keychain or Windows Credential Locker",
            hint="unset PYTHON_KEYRING_BACKEND, or set key_backend: passphrase in config.yaml",
        )
    return requested or _platform_backend_name()


def _load_backend() -> Any:
    dotted = keyring_backend_name()
    module_name, _, cls_name = dotted.rpartition(".")
    import importlib

    try:
        module = importlib.import_module(module_name)
        backend = getattr(module, cls_name)()
    except Exception as exc:
        raise KeyringUnavailable(
            f"cannot load the {OS_KEYRINGS[dotted]} keyring backend ({type(exc).__name__})",
            hint="install the keyring package's dependencies for this platform "
            "(secretstorage on Linux)",
        ) from exc
    return backend


@datarecord
class KeyringEntry:
    """What the keyring holds for one vault."""

    keys: dict[bytes, bytes]  # key id -> 32-byte key
    generation: int
    extra: dict[str, Any] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "keys": {k.hex(): base64.b64encode(v).decode() for k, v in self.keys.items()},
                "generation": self.generation,
                **({"extra": self.extra} if self.extra else {}),
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, text: str) -> KeyringEntry:
        try:
            doc = json.loads(text)
            if doc.get("v") != 1:
                raise ValueError("version")
            keys = {
                bytes.fromhex(k): base64.b64decode(v, validate=True) for k, v in doc["keys"].items()
            }
            if any(len(k) != 4 or len(v) != 32 for k, v in keys.items()):
                raise ValueError("key size")
            generation = doc["generation"]
            if not isinstance(generation, int) or isinstance(generation, bool):
                raise TypeError("generation")
            return cls(keys=keys, generation=generation, extra=dict(doc.get("extra") or {}))
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
            raise IntegrityError("the vault's keyring entry is malformed") from exc


SECRET_SERVICE = "keyring.backends.SecretService.Keyring"


class KeyringStore:
    """The vault's entry in the OS keyring, every call bounded by a timeout.

    On Secret Service (Linux), calls go straight over D-Bus (vault.keys.secretservice), to the same
    items keyring's backend uses; elsewhere through the keyring package's OS backend."""

    def __init__(self) -> None:
        self._backend: Any = None
        self._service: SecretService | None = None

    @property
    def label(self) -> str:
        return OS_KEYRINGS[keyring_backend_name()]

    def _get_backend(self) -> Any:
        if self._backend is None:
            self._backend = _load_backend()
        return self._backend

    @staticmethod
    def _direct() -> bool:
        return keyring_backend_name() == SECRET_SERVICE

    @staticmethod
    def _attributes(username: str) -> dict[str, str]:
        return {"service": SERVICE, "username": username}

    def _on_secret_service(self, call: Callable[[SecretService], T]) -> T:
        """``call`` on the one connection a command keeps (a read and a write share one
        connect, one authentication and one session); a connection that broke since it was
        opened (the daemon restarted during a long login) is replaced once."""
        from vault.keys.secretservice import Disconnected, SecretService

        reused = self._service is not None
        if self._service is None:
            self._service = SecretService(keyring_timeout())
        try:
            return call(self._service)
        except Disconnected:
            self.close()
            if not reused:
                raise
        self._service = SecretService(keyring_timeout())
        return call(self._service)

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None

    def load(self, vault_id: bytes) -> KeyringEntry | None:
        if self._direct():
            attributes = self._attributes(vault_id.hex())
            text = self._on_secret_service(lambda ss: ss.get(attributes))
            return None if text is None else KeyringEntry.parse(text)
        backend = self._get_backend()
        text = _bounded(
            lambda: backend.get_password(SERVICE, vault_id.hex()), what="read the vault key"
        )
        if text is None:
            return None
        return KeyringEntry.parse(text)

    def probe(self) -> None:
        """Check the keyring answers (and is unlocked) without changing anything."""
        if self._direct():
            attributes = self._attributes("probe")
            self._on_secret_service(lambda ss: ss.get(attributes))
            return
        backend = self._get_backend()
        _bounded(lambda: backend.get_password(SERVICE, "probe"), what="reach the keyring")

    def save(self, vault_id: bytes, entry: KeyringEntry) -> None:
        if self._direct():
            username = vault_id.hex()
            label = f"Password for '{username}' on '{SERVICE}'"
            dumped = entry.dump()
            self._on_secret_service(lambda ss: ss.set(self._attributes(username), label, dumped))
            return
        backend = self._get_backend()
        dumped = entry.dump()
        _bounded(
            lambda: backend.set_password(SERVICE, vault_id.hex(), dumped),
            what="store the vault key",
        )

    def delete(self, vault_id: bytes) -> None:
        """Delete the vault's entry; returns only once it is gone (or was never there), else
        KeyringUnavailable (vault.keys.secretservice: a prompt is a failure)."""
        if self._direct():
            attributes = self._attributes(vault_id.hex())
            self._on_secret_service(lambda ss: ss.delete(attributes))
            return
        backend = self._get_backend()

        def run() -> None:
            try:
                backend.delete_password(SERVICE, vault_id.hex())
            except Exception as exc:
                if type(exc).__name__ != "PasswordDeleteError":
                    raise

        _bounded(run, what="delete the vault key")


class KeyringBackend(KeyBackend):
    """The data key in the OS keyring entry of the vault, beside the marks."""

    name = "keyring"
    marks_need_unlock = True  # they are in the entry unlock reads

    def __init__(self, keyring: KeyringStore | None = None) -> None:
        self.keyring = keyring or KeyringStore()
        self._entry: KeyringEntry | None = None  # the entry last read or written ...
        self._entry_of = b""  # ... and the vault it belongs to

    @property
    def label(self) -> str:
        return self.keyring.label

    def probe(self) -> None:
        self.keyring.probe()

    def unlock(self, vault_id: bytes, params: KeyParams, *, where: str) -> bytes:
        entry = self.keyring.load(vault_id)
        if entry is None:
            raise KeyringUnavailable(
                f"the key of the vault at {where} is not in the {self.keyring.label} "
                f"(vault id {vault_id.hex()})",
                hint="is this the keyring the vault was created with? It may be a "
                "different login session or machine",
            )
        key = entry.keys.get(params.key_id)
        if key is None:
            raise IntegrityError(f"the keyring holds no key with the id the vault at {where} names")
        self._entry, self._entry_of = entry, vault_id
        return key

    def marks(self, vault_id: bytes, state_key: bytes) -> Marks:
        if self._entry is None or self._entry_of != vault_id:
            raise RuntimeError("KeyringBackend.marks before unlock")  # a bug, not bad input
        return Marks(self._entry.generation, self._entry.extra.get("audit"))

    def new_key(
        self,
        vault_id: bytes,
        state_key: bytes,
        marks: Marks,
        *,
        confirm: bool,
        new_secret: bool = False,
    ) -> tuple[KeyParams, bytes]:
        key_id, key = os.urandom(4), os.urandom(32)
        if self._entry is not None and self._entry_of == vault_id:
            entry = self._entry  # the new key goes beside the old: the file on disk needs it
        else:
            extra = {"audit": marks.audit} if marks.audit else {}
            entry = KeyringEntry({}, marks.generation, extra)
        entry.keys[key_id] = key
        self.keyring.save(vault_id, entry)
        self._entry, self._entry_of = entry, vault_id
        return KeyParams(key_id, bytes(16), 0, 0, 0), key

    def save_marks(
        self, vault_id: bytes, params: KeyParams, key: bytes, marks: Marks, state_key: bytes
    ) -> str | None:
        kept = self._entry if self._entry is not None and self._entry_of == vault_id else None
        extra = dict(kept.extra) if kept else {}
        extra["audit"] = marks.audit
        entry = KeyringEntry({params.key_id: key}, marks.generation, extra)
        try:
            self.keyring.save(vault_id, entry)
        except KeyringUnavailable as exc:
            return f"the vault was written, but the keyring could not record its generation: {exc}"
        self._entry, self._entry_of = entry, vault_id
        return None

    def retire(self, vault_id: bytes) -> str | None:
        """Delete the vault's entry (old data key and marks). A Secret Service that asks for a
        confirmation prompt, is locked or fails leaves it there: the reason is returned."""
        try:
            self.keyring.delete(vault_id)
        except KeyringUnavailable as exc:
            return f"the keyring entry could not be deleted ({exc})"
        self._entry = None
        return None
