"""The default token: the one `vault token`, `exec`, `api`, `logout` and `setup-git` use when
no NAME is given (as `gh auth switch` chooses gh's active account).

The rule (:func:`choose`): the token set with `vault switch NAME` if one is set (an error if
it is no longer stored, never a silent fallback to another token), else the only stored token,
else an error that lists the stored names (exit 2) or says the vault holds none (exit 4).

Where the choice lives: ``default-name`` beside the vault file (its folder, 0700), one line,
the name; 0600, replaced atomically (vault.fs.durable.atomic_write). Not config.yaml: that is
the person's file, edited by hand and never written by vault. Not inside the encrypted vault:
then `vault token` without NAME would need the vault's key to find out which name it means, and
every `vault switch` would be a new vault generation. A name is not a secret (`vault list`
shows it to anyone at the terminal); the file is private all the same, and checked as every
private file is (no symlink, ours, not open to others), because it decides which token is
handed out.
"""

from __future__ import annotations

import contextlib
import os

from vault.errors import IntegrityError, NotFoundError, UsageError
from vault.fs.durable import atomic_write
from vault.fs.paths import Paths, check_private_file, ensure_private_dir, read_private_file
from vault.util.text import NAME_RE, check_name

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from vault.store.vault import Store

FILE_NAME = "default-name"
MAX_FILE = 256
SHOWN_NAMES = 10  # names an error lists before "and N more"


def default_file(paths: Paths) -> Path:
    return paths.vault_dir / FILE_NAME


def read_default(paths: Paths) -> str | None:
    """The name set with `vault switch`, or None where none is set. A file that is not
    private, or does not hold one valid name on one line, is an IntegrityError (exit 6): it
    was not written by vault."""
    path = default_file(paths)
    if not os.path.lexists(path):
        return None
    data = read_private_file(path, "vault switch file", limit=MAX_FILE, check_folder=False)
    if data is None:
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    name = text[:-1] if text.endswith("\n") else text
    if not NAME_RE.fullmatch(name):
        raise IntegrityError(
            f"the vault switch file {path} does not hold a token name",
            hint="`vault switch --unset` removes it, `vault switch NAME` writes it again",
        )
    return name


def write_default(paths: Paths, name: str) -> None:
    """Make ``name`` the default (the caller checked it is stored)."""
    ensure_private_dir(paths.vault_dir)
    atomic_write(default_file(paths), check_name(name).encode() + b"\n", what="vault switch file")


def clear_default(paths: Paths, *, only: str | None = None) -> bool:
    """Remove the default (only where it is ``only``, when given); whether one was removed."""
    path = default_file(paths)
    if only is not None:
        try:
            if read_default(paths) != only:
                return False
        except IntegrityError:
            return False
    if check_private_file(path, "vault switch file") is None:
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
        return True
    return False


def listed(names: list[str]) -> str:
    """Names for an error message: the first SHOWN_NAMES, then how many more."""
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown if more <= 0 else f"{shown} and {more} more"


def choose(paths: Paths, names: Iterable[str]) -> str:
    """The default token among the stored ``names`` (the module docstring's rule)."""
    stored = sorted(names)
    chosen = read_default(paths)
    if chosen is not None:
        if chosen in stored:
            return chosen
        raise UsageError(
            f"the default token {chosen!r} (set with `vault switch`) is no longer stored",
            hint="name one, or choose another default: `vault switch NAME`"
            + (f" (stored: {listed(stored)})" if stored else "")
            + "; `vault switch --unset` forgets it",
        )
    if len(stored) == 1:
        return stored[0]
    if not stored:
        raise NotFoundError(
            "the vault holds no tokens",
            hint="`vault login` or `vault import` adds one",
            code="unknown_name",
        )
    raise UsageError(
        f"{len(stored)} tokens are stored and none is the default: name one ({listed(stored)})",
        hint="or set the default: `vault switch NAME`",
    )


def stored_names(store: Store) -> list[str]:
    """The names in the vault (decrypted, but no record parsed)."""
    from vault.store.model import split_payload

    snapshot = store.read()
    if snapshot is None:
        return []
    return sorted(split_payload(snapshot.payload)[1])


def resolve(store: Store, name: str | None) -> str:
    """``name`` checked, or where it is None the default token's name (:func:`choose`)."""
    if name is not None:
        return check_name(name)
    return choose(store.paths, stored_names(store))
