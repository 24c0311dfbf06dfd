"""The one interface every key backend implements, and the values it exchanges with the store.

A backend holds, finds or derives the vault's 256-bit data key, and keeps the vault's *marks*
(the last generation written and the audit high-water mark) where a copy of the vault file alone
cannot roll them back. The store calls it in a fixed order that keeps every step recoverable:
``new_key`` makes the new key (and the marks so far) durable before the file that needs it is
written; ``save_marks`` records the new generation after; ``retire`` forgets a backend the vault
has moved away from (or says why it could not). tests/unit/keys/test_contract.py runs one set
of tests against each.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

    from vault.errors import IntegrityError

BACKENDS = ("keyring", "passphrase")


class KeyParams:
    """What a vault header records about its key: which one (``key_id``) or how to derive it."""

    __slots__ = ("key_id", "m_cost", "parallelism", "salt", "t_cost")

    def __init__(
        self, key_id: bytes, salt: bytes, t_cost: int, m_cost: int, parallelism: int
    ) -> None:
        self.key_id = key_id  # 4 bytes: the keyring key's id; zeros for a derived key
        self.salt = salt  # 16 bytes: the Argon2id salt; zeros for a keyring key
        self.t_cost = t_cost
        self.m_cost = m_cost  # KiB
        self.parallelism = parallelism


class Marks:
    """Kept with the key: the last generation written, and the audit mark as its log saved it."""

    __slots__ = ("audit", "generation")

    def __init__(self, generation: int, audit: dict[str, Any] | None = None) -> None:
        self.generation = generation
        self.audit = audit

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Marks):
            return NotImplemented
        return (self.generation, self.audit) == (other.generation, other.audit)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Marks(generation={self.generation!r}, audit={self.audit!r})"


class KeyBackend:
    """A place the data key comes from. Subclasses implement every method; none falls back to
    another backend or to anything in clear."""

    name: str  # as the vault header and config.yaml's key_backend name it
    # The marks are read with the key (one keyring entry holds both): only ``unlock`` reads
    # them afresh; ``marks`` then gives what it read.
    marks_need_unlock: bool = False

    @property
    def label(self) -> str:
        """For people: "Secret Service", "passphrase"."""
        raise NotImplementedError

    def probe(self) -> None:
        """Check, without changing anything, that a new key could be made now."""
        raise NotImplementedError

    def unlock(self, vault_id: bytes, params: KeyParams, *, where: str) -> bytes:
        """The data key of the vault ``vault_id`` (at ``where``, for messages)."""
        raise NotImplementedError

    def refused(self, key: bytes, error: IntegrityError, *, where: str) -> IntegrityError | None:
        """``key``, from ``unlock``, did not open the vault at ``where`` (``error``: the
        format's authentication failure). The error to raise (this one, or one that says more
        precisely what is wrong), or None when the backend has a new key to try: the store
        then calls ``unlock`` again (a passphrase retyped at a terminal)."""
        return error

    def marks(self, vault_id: bytes, state_key: bytes) -> Marks:
        """The marks kept for the vault, after ``unlock``; ``state_key`` (from inside the vault)
        authenticates them where they are kept in a file."""
        raise NotImplementedError

    def new_key(
        self,
        vault_id: bytes,
        state_key: bytes,
        marks: Marks,
        *,
        confirm: bool,
        new_secret: bool = False,
    ) -> tuple[KeyParams, bytes]:
        """A new data key, durable (with ``marks``) before it returns. ``confirm`` asks for a
        new passphrase twice; ``new_secret`` asks for a different passphrase than the current."""
        raise NotImplementedError

    def save_marks(
        self, vault_id: bytes, params: KeyParams, key: bytes, marks: Marks, state_key: bytes
    ) -> str | None:
        """Record ``marks`` after a write that used ``key``. The write has happened: a failure
        is returned as a warning (rollback detection lags), never raised."""
        raise NotImplementedError

    def retire(self, vault_id: bytes) -> str | None:
        """Forget the vault here (it moved to another backend): None once its key is gone,
        else a one-line reason it remains (the caller reports it as a failure)."""
        raise NotImplementedError
