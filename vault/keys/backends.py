"""Key backends: where the vault's data key comes from.

``keyring``: a random 256-bit key held in the OS keyring (Secret Service, macOS Keychain,
Windows Credential Locker) under service ``vault`` and the vault's id. The entry also keeps the
last generation written, so a vault file rolled back to an older copy is detected.

``passphrase``: the key derived from a passphrase with Argon2id (RFC 9106 low-memory profile).
The last generation is kept in the key file ``vault.key`` beside the vault, authenticated with
a key that only exists inside the encrypted vault.

Neither backend ever falls back to the other, or to anything in clear.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from vault.errors import IntegrityError, KeyringUnavailable
from vault.fs.durable import atomic_write
from vault.fs.paths import check_private_file, read_private_file
from vault.secret import Secret
from vault.util import mac as _hmac
from vault.util.record import datarecord, field

SERVICE = "vault"
BACKENDS = ("keyring", "passphrase")

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


# --- passphrase backend -------------------------------------------------------------------

PASSPHRASE_LIMIT = 4096


class PassphraseSource:
    """Where the passphrase comes from: a file (``--passphrase-file`` / ``VAULT_PASSPHRASE_FILE``)
    or a prompt on the controlling terminal. Never argv, never stdin."""

    def __init__(self, file: str | None = None, *, interactive: bool = True) -> None:
        self.file = file or os.environ.get("VAULT_PASSPHRASE_FILE") or None
        self.interactive = interactive
        self._cached: Secret | None = None

    def get(self, *, confirm: bool = False, prompt: str = "Vault passphrase: ") -> Secret:
        if self._cached is not None:
            return self._cached
        if self.file:
            value = self._read_file(Path(self.file))
        else:
            value = self._prompt(prompt, confirm=confirm)
        if not value:
            raise IntegrityError("the passphrase is empty")
        self._cached = Secret(value)
        return self._cached

    @staticmethod
    def _read_file(path: Path) -> str:
        st = check_private_file(path, "passphrase file")
        if st is None:
            raise IntegrityError(f"passphrase file {path} does not exist")
        data = read_private_file(
            path, "passphrase file", limit=PASSPHRASE_LIMIT, check_folder=False
        )
        assert data is not None
        text = data.decode("utf-8", errors="strict")
        # One trailing newline is how editors and `echo` end a file; it is not part of it.
        return text[:-1] if text.endswith("\n") else text

    def _prompt(self, prompt: str, *, confirm: bool) -> str:
        if not self.interactive:
            raise IntegrityError(
                "a passphrase is needed and this command never prompts",
                hint="set VAULT_PASSPHRASE_FILE to a 0600 file holding the passphrase",
            )
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            raise IntegrityError(
                "a passphrase is needed but there is no terminal to ask on",
                hint="set VAULT_PASSPHRASE_FILE (or --passphrase-file) to a 0600 file",
            ) from None
        os.close(fd)
        import getpass
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error", getpass.GetPassWarning)
            first = getpass.getpass(prompt)
            if confirm:
                again = getpass.getpass("Repeat the passphrase: ")
                if not _hmac.compare_digest(first.encode(), again.encode()):
                    raise IntegrityError("the two passphrases differ; nothing was changed")
        return first


def derive_key(
    passphrase: Secret, *, salt: bytes, t_cost: int, m_cost: int, parallelism: int
) -> bytes:
    """Argon2id (version 0x13) through argon2-cffi's own C bindings: what
    ``argon2.low_level.hash_secret_raw`` does (tests/integration/test_hot_path.py checks it),
    without importing the ``argon2`` package and its password-hasher profiles."""
    from _argon2_cffi_bindings import ffi, lib

    secret = passphrase.reveal().encode("utf-8")
    out = ffi.new("uint8_t[]", 32)
    rv = lib.argon2_hash(
        t_cost,
        m_cost,
        parallelism,
        ffi.new("uint8_t[]", secret),
        len(secret),
        ffi.new("uint8_t[]", salt),
        len(salt),
        out,
        32,
        ffi.NULL,
        0,
        lib.Argon2_id,
        lib.ARGON2_VERSION_13,
    )
    if rv != lib.ARGON2_OK:
        message = ffi.string(lib.argon2_error_message(rv)).decode("ascii", "replace")
        raise IntegrityError(f"the passphrase key could not be derived (Argon2: {message})")
    return bytes(ffi.buffer(out, 32))


KEY_FILE_MAGIC = b"VAULTKEY1\n"


@datarecord
class KeyFileState:
    """The passphrase backend's record of the last write, MAC'd with the vault's state key."""

    vault_id: bytes
    generation: int
    extra: dict[str, Any] = field(default_factory=dict)


def write_key_file(path: Path, state: KeyFileState, state_key: bytes) -> None:
    body = json.dumps(
        {
            "v": 1,
            "vault_id": state.vault_id.hex(),
            "generation": state.generation,
            **({"extra": state.extra} if state.extra else {}),
        },
        separators=(",", ":"),
    ).encode()
    mac = _hmac.hexdigest(state_key, KEY_FILE_MAGIC + body).encode()
    atomic_write(path, KEY_FILE_MAGIC + body + b"\n" + mac + b"\n", what="key file")


def read_key_file(path: Path, state_key: bytes) -> KeyFileState | None:
    data = read_private_file(path, "key file", limit=1 << 20)
    if data is None:
        return None
    try:
        if not data.startswith(KEY_FILE_MAGIC):
            raise ValueError("magic")
        body, mac, rest = data[len(KEY_FILE_MAGIC) :].split(b"\n")
        if rest:
            raise ValueError("trailing data")
        expected = _hmac.hexdigest(state_key, KEY_FILE_MAGIC + body)
        if not _hmac.compare_digest(expected.encode(), mac):
            raise IntegrityError(
                f"key file {path} failed authentication: it was altered or belongs to another vault"
            )
        doc = json.loads(body)
        generation = doc["generation"]
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise TypeError("generation")
        return KeyFileState(
            vault_id=bytes.fromhex(doc["vault_id"]),
            generation=generation,
            extra=dict(doc.get("extra") or {}),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"key file {path} is malformed") from exc
