"""The names index: the stored tokens' names, and nothing else, in a file beside the vault
(``vault.names``), so that shell completion can offer them without decrypting the vault.

Contract: the index is written (0600, replaced by rename) from the payload of every vault write
that changes a name, under the vault's lock; it is a hint for completion and is never read for
anything else. It is not made durable (no fsync): after a crash it may be stale or missing,
which costs a completion, nothing more. It is read strictly: a private regular file of this
user (as the vault itself, vault.fs.paths), the exact header, at most `MAX_NAMES` lines each a
valid token name; anything else reads as no index.
"""

from __future__ import annotations

import contextlib
import os

from vault.errors import VaultError
from vault.fs.paths import read_private_file
from vault.store.model import META_NAME, PAYLOAD_MAGIC
from vault.util.text import NAME_RE

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from pathlib import Path

HEADER = b"vault-names 1\n"
MAX_NAMES = 10_000
LIMIT = len(HEADER) + MAX_NAMES * 129


def index_path(vault_file: Path) -> Path:
    return vault_file.with_name("vault.names")


def payload_names(payload: bytes) -> list[str]:
    """The record names of a vault payload (vault.store.model's layout), without parsing the
    records: each line's name before its tab, the meta line left out."""
    body = payload[len(PAYLOAD_MAGIC) :] if payload.startswith(PAYLOAD_MAGIC) else b""
    names = []
    for line in body.split(b"\n"):
        name = line.partition(b"\t")[0]
        if name and name != META_NAME:
            names.append(name.decode("utf-8", "replace"))
    return names


def write_index(vault_file: Path, payload: bytes) -> None:
    """Replace the index beside ``vault_file`` with ``payload``'s names. Never fails: where it
    cannot be written the old index is removed (a missing index is only a lost completion)."""
    path = index_path(vault_file)
    names = sorted(n for n in payload_names(payload) if NAME_RE.fullmatch(n))[:MAX_NAMES]
    if read_index(vault_file) == names:
        return  # most writes (a refresh, an audit mark) change no name: no rename
    data = HEADER + b"".join(n.encode() + b"\n" for n in names)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        with contextlib.suppress(OSError):
            os.unlink(path)


def read_index(vault_file: Path) -> list[str] | None:
    """The names the index beside ``vault_file`` holds; None where there is none, or it is
    not exactly what `write_index` writes (or not a private file of this user)."""
    try:
        data = read_private_file(index_path(vault_file), "names index", limit=LIMIT)
    except VaultError:
        return None
    if data is None or not data.startswith(HEADER) or not data.endswith(b"\n"):
        return None
    try:
        names = data[len(HEADER) :].decode("ascii").split("\n")[:-1]
    except UnicodeDecodeError:
        return None
    if len(names) > MAX_NAMES or not all(NAME_RE.fullmatch(n) for n in names):
        return None
    return names
