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

from vault.errors import IntegrityError, VaultError
from vault.fs.durable import atomic_write
from vault.fs.paths import check_private_file, read_private_file
from vault.keys.base import KeyBackend, KeyParams, Marks
from vault.secret import Secret
from vault.util import mac as _hmac
from vault.util.record import datarecord, field
from vault.util.trace import log

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

# The Argon2id parameters of a new key (RFC 9106 §4, second recommendation); a vault's header
# records the ones its key was derived with.
ARGON2_T = 3
ARGON2_M_KIB = 64 * 1024
ARGON2_P = 4

PASSPHRASE_LIMIT = 4096
# How many times a person at a terminal may type a passphrase: a wrong one for an existing
# vault, or a refused or mistyped new one.
TRIES = 3


class PassphraseSource:
    """Where the passphrase comes from: a file (``--passphrase-file`` / ``VAULT_PASSPHRASE_FILE``)
    or a prompt on the controlling terminal. Never argv, never stdin, never echoed.

    A file, or a passphrase handed over (``give``), is one try: wrong is final. On a terminal
    a person has ``TRIES``: ``ask_again`` says whether the backend may prompt once more after
    a wrong passphrase (and tells the person so). A new passphrase (``get(confirm=True)``) must
    pass vault.keys.strength, from a file as from the terminal; on the terminal it is typed
    twice, and a refused or mismatched one is asked for again."""

    def __init__(self, file: str | None = None, *, interactive: bool = True) -> None:
        self.file = file or os.environ.get("VAULT_PASSPHRASE_FILE") or None
        self.interactive = interactive
        self._cached: Secret | None = None
        self._given = False
        self.prompts = 0  # passphrases typed at the terminal for the vault being opened

    def give(self, passphrase: Secret) -> None:
        """Use ``passphrase``, already read (by the process that started the agent)."""
        self._cached = passphrase
        self._given = True

    def get(self, *, confirm: bool = False, prompt: str = "Vault passphrase: ") -> Secret:
        """The passphrase; ``confirm``: a new one (strength checked; typed twice on a
        terminal). Raises IntegrityError when there is none to be had, UsageError when a new
        one is refused."""
        if self._cached is not None:
            return self._cached
        if self.file:
            value = self._read_file(Path(self.file))
            if confirm:
                _refuse_weak(value, where=f"the passphrase in {self.file}")
        elif confirm:
            value = self._prompt_new(prompt)
        else:
            value = self._prompt(prompt)
        if not value:
            raise IntegrityError("the passphrase is empty")
        self._cached = Secret(value)
        return self._cached

    def ask_again(self, wrong: str) -> bool:
        """After the passphrase proved wrong (``wrong``: what to tell the person): True when
        it was typed at a terminal with tries left; the person is told, and the next ``get``
        prompts anew. False for a file, a passphrase handed over, or the last try."""
        if self.file or self._given or self.prompts == 0 or self.prompts >= TRIES:
            return False
        self._cached = None
        left = TRIES - self.prompts
        _tell(f"{wrong}; try again ({left} {'try' if left == 1 else 'tries'} left).\n")
        return True

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

    def _check_terminal(self) -> None:
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

    def _prompt(self, prompt: str) -> str:
        self._check_terminal()
        self.prompts += 1
        return _read_hidden(prompt)

    def _prompt_new(self, prompt: str) -> str:
        """A new passphrase typed twice, strong enough; asked again (TRIES rounds) when it is
        refused or the two differ. The terminal's echo stays off for the whole exchange, so
        that what is typed ahead, while a passphrase is being judged, is not shown either."""
        from vault.errors import UsageError
        from vault.keys import strength

        self._check_terminal()
        with _HiddenTerminal() as tty:
            tty.say(
                f"Choose a passphrase for the vault: at least {strength.MIN_LENGTH} characters,"
                " hard to guess\n(a few unrelated words work well). It is not shown as you type.\n"
            )
            for _ in range(TRIES):
                first = tty.ask(prompt)
                why = strength.weakness(first)
                if why is not None:
                    tty.say(f"That passphrase is refused: {why}\n")
                    continue
                again = tty.ask("Repeat the passphrase: ")
                if not _hmac.compare_digest(first.encode(), again.encode()):
                    tty.say("The two passphrases differ; type it again.\n")
                    continue
                return first
        raise UsageError(
            f"no acceptable new passphrase in {TRIES} tries; nothing was changed",
            hint=f"at least {strength.MIN_LENGTH} characters, hard to guess, typed the same twice",
        )


class _HiddenTerminal:
    """The controlling terminal with its echo off until the block ends (restored however it
    ends, Ctrl-C included: the terminal keeps generating signals)."""

    def __enter__(self) -> _HiddenTerminal:
        import termios

        self._fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        import io

        # As getpass opens it: unbuffered read-write bytes, text on top.
        self._file = io.TextIOWrapper(io.FileIO(self._fd, "w+"), encoding="utf-8", errors="replace")
        self._saved = termios.tcgetattr(self._fd)
        quiet = termios.tcgetattr(self._fd)
        quiet[3] &= ~(termios.ECHO | termios.ECHONL)
        termios.tcsetattr(self._fd, termios.TCSADRAIN, quiet)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        try:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
        finally:
            self._file.close()

    def say(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()

    def ask(self, prompt: str) -> str:
        self.say(prompt)
        line = self._file.readline()
        self.say("\n")
        if not line:
            raise IntegrityError("no passphrase was typed (end of input)")
        return line[:-1] if line.endswith("\n") else line


def _refuse_weak(passphrase: str, *, where: str) -> None:
    from vault.errors import UsageError
    from vault.keys import strength

    why = strength.weakness(passphrase)
    if why is not None:
        raise UsageError(
            f"{where} is refused as a new passphrase because {why}",
            hint=f"at least {strength.MIN_LENGTH} characters and hard to guess",
        )


def _read_hidden(prompt: str) -> str:
    """One line typed at the controlling terminal, not echoed (getpass: the terminal's echo
    is off while it is typed, and restored after, Ctrl-C included)."""
    import getpass
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except EOFError:
            raise IntegrityError("no passphrase was typed (end of input)") from None


def _tell(text: str) -> None:
    """A line for the person typing, on the terminal the passphrase is read from."""
    try:
        with open("/dev/tty", "w", encoding="utf-8") as tty:
            tty.write(text)
    except OSError:
        import sys

        sys.stderr.write(text)


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
KEY_CHECK_LABEL = b"vault passphrase key check v1"


def key_check(key: bytes) -> str:
    """What the key file keeps to tell a wrong passphrase from a damaged vault file: 128 bits
    of HMAC-SHA-256(key, a fixed label). It tells an attacker nothing the vault file's own
    GCM tag does not (each guess still costs one Argon2id derivation)."""
    return _hmac.hexdigest(key, KEY_CHECK_LABEL)[:32]


def peek_key_check(path: Path) -> str | None:
    """The key check recorded in the key file, read before the vault is open (so before its
    MAC can be checked: the MAC is checked when the marks are read); None where there is no
    key file, it cannot be read, or it was written without one."""
    try:
        data = read_private_file(path, "key file", limit=1 << 20)
        if data is None or not data.startswith(KEY_FILE_MAGIC):
            return None
        doc = json.loads(data[len(KEY_FILE_MAGIC) :].split(b"\n")[0])
        check = doc.get("extra", {}).get("check")
    except (VaultError, ValueError, AttributeError):
        return None
    return check if isinstance(check, str) and len(check) == 32 else None


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

    def refused(self, key: bytes, error: IntegrityError, *, where: str) -> IntegrityError | None:
        """A wrong passphrase (the key check in the key file differs) or, where the key file
        has no check, a wrong passphrase or an altered file; a passphrase typed at a terminal
        may be typed again (PassphraseSource.ask_again). A right passphrase (the check
        matches) means the vault file itself was altered or damaged."""
        check = peek_key_check(self.key_file)
        if check is not None and _hmac.compare_digest(check.encode(), key_check(key).encode()):
            return IntegrityError(
                f"vault file {where} failed authentication: it was altered or damaged (the "
                "passphrase is right)",
                hint="the file was left as it is; restore a backup",
            )
        wrong = "wrong passphrase" + ("" if check else " (or the vault file was altered)")
        log("passphrase.wrong", vault=where, typed=self.source.prompts)
        if self.source.ask_again(wrong[0].upper() + wrong[1:]):
            return None
        typed = self.source.prompts
        return IntegrityError(
            f"{wrong} for the vault at {where}" + (f", {typed} tries" if typed > 1 else ""),
            hint="nothing was changed; check the passphrase (a file's trailing newline is "
            "dropped, nothing else is)",
        )

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
            source = PassphraseSource(interactive=self.source.interactive)
            # Never VAULT_PASSPHRASE_FILE: that holds the passphrase being replaced.
            source.file = os.environ.get("VAULT_NEW_PASSPHRASE_FILE") or None
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
        self._write(vault_id, marks, state_key, key)
        return params, key

    def save_marks(
        self, vault_id: bytes, params: KeyParams, key: bytes, marks: Marks, state_key: bytes
    ) -> str | None:
        try:
            self._write(vault_id, marks, state_key, key)
        except IntegrityError as exc:
            return f"the vault was written, but its key file could not record the generation: {exc}"
        return None

    def retire(self, vault_id: bytes) -> str | None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.key_file)
        return None

    def _write(self, vault_id: bytes, marks: Marks, state_key: bytes, key: bytes) -> None:
        extra: dict[str, Any] = {"audit": marks.audit} if marks.audit else {}
        extra["check"] = key_check(key)
        write_key_file(self.key_file, KeyFileState(vault_id, marks.generation, extra), state_key)
