"""The ``passphrase`` backend: the data key derived from a passphrase with Argon2id (RFC 9106,
its second recommended, low-memory profile). The marks (the last generation written, the audit
mark) are kept in the key file ``vault.key`` beside the vault, authenticated with a key that only
exists inside the encrypted vault. The passphrase comes from a file or the terminal, never argv
or stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from vault.errors import IntegrityError
from vault.fs.durable import atomic_write
from vault.fs.paths import check_private_file, read_private_file
from vault.keys.base import KeyBackend, KeyParams, Marks
from vault.secret import Secret
from vault.util import mac as _hmac
from vault.util.record import datarecord, field

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

# The Argon2id parameters of a new key (RFC 9106 §4, second recommendation); a vault's header
# records the ones its key was derived with.
ARGON2_T = 3
ARGON2_M_KIB = 64 * 1024
ARGON2_P = 4

PASSPHRASE_LIMIT = 4096


class PassphraseSource:
    """Where the passphrase comes from: a file (``--passphrase-file`` / ``VAULT_PASSPHRASE_FILE``)
    or a prompt on the controlling terminal. Never argv, never stdin."""

    def __init__(self, file: str | None = None, *, interactive: bool = True) -> None:
        self.file = file or os.environ.get("VAULT_PASSPHRASE_FILE") or None
        self.interactive = interactive
        self._cached: Secret | None = None

    def give(self, passphrase: Secret) -> None:
        """Use ``passphrase``, already read (by the process that started the agent)."""
        self._cached = passphrase

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


class PassphraseBackend(KeyBackend):
    """The data key derived from the passphrase; the marks in the MAC'd key file."""

    name = "passphrase"

    @property
    def label(self) -> str:
        return "passphrase"

    def __init__(self, source: PassphraseSource, key_file: Path) -> None:
        self.source = source
        self.key_file = key_file

    def probe(self) -> None:
        self.source.get(confirm=True, prompt="New vault passphrase: ")

    def unlock(self, vault_id: bytes, params: KeyParams, *, where: str) -> bytes:
        return derive_key(
            self.source.get(),
            salt=params.salt,
            t_cost=params.t_cost,
            m_cost=params.m_cost,
            parallelism=params.parallelism,
        )

    def marks(self, vault_id: bytes, state_key: bytes) -> Marks:
        state = read_key_file(self.key_file, state_key)
        if state is None:
            raise IntegrityError(
                f"key file {self.key_file} is missing: the vault's rollback "
                "protection cannot be checked",
                hint="restore the key file from the same backup as the vault",
            )
        if state.vault_id != vault_id:
            raise IntegrityError(f"key file {self.key_file} belongs to another vault")
        return Marks(state.generation, state.extra.get("audit"))

    def new_key(
        self,
        vault_id: bytes,
        state_key: bytes,
        marks: Marks,
        *,
        confirm: bool,
        new_secret: bool = False,
    ) -> tuple[KeyParams, bytes]:
        if new_secret:
            source = PassphraseSource(
                os.environ.get("VAULT_NEW_PASSPHRASE_FILE"), interactive=self.source.interactive
            )
            secret = source.get(confirm=True, prompt="New vault passphrase: ")
            self.source = source
        else:
            secret = self.source.get(confirm=confirm, prompt="New vault passphrase: ")
        params = KeyParams(bytes(4), os.urandom(16), ARGON2_T, ARGON2_M_KIB, ARGON2_P)
        key = derive_key(
            secret,
            salt=params.salt,
            t_cost=params.t_cost,
            m_cost=params.m_cost,
            parallelism=params.parallelism,
        )
        self._write(vault_id, marks, state_key)
        return params, key

    def save_marks(
        self, vault_id: bytes, params: KeyParams, key: bytes, marks: Marks, state_key: bytes
    ) -> str | None:
        try:
            self._write(vault_id, marks, state_key)
        except IntegrityError as exc:
            return f"the vault was written, but its key file could not record the generation: {exc}"
        return None

    def retire(self, vault_id: bytes) -> str | None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.key_file)
        return None

    def _write(self, vault_id: bytes, marks: Marks, state_key: bytes) -> None:
        extra = {"audit": marks.audit} if marks.audit else {}
        write_key_file(self.key_file, KeyFileState(vault_id, marks.generation, extra), state_key)
