"""Where vault keeps things (../CLI.md "Where things live"), and the checks on them."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from vault.errors import ConfigError, IntegrityError
from vault.fs.where import VAULT_FILE, folders
from vault.util.record import datarecord

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Mapping


@datarecord(frozen=True)
class Paths:
    config_file: Path
    policy_dir: Path
    system_policy_dir: Path
    vault_file: Path
    key_file: Path
    lock_file: Path
    audit_file: Path

    @property
    def vault_dir(self) -> Path:
        return self.vault_file.parent

    @property
    def name_lock_file(self) -> Path:
        """Beside the vault's lock: the per-name locks (vault.fs.durable.NameLock) that a
        refresh, and what revokes a token, hold while they wait for the provider."""
        return self.lock_file.with_name(f"{self.lock_file.stem}.names.lock")


def resolve(environ: Mapping[str, str] | None = None) -> Paths:
    """The paths in force for a process with ``environ`` (default: this one's), from
    ``VAULT_HOME`` or the XDG folders. Every variable is read from ``environ``, HOME included:
    `vault doctor` works out which vault a scheduled job would open from the job's own
    environment, not from the one doctor runs in."""
    env = os.environ if environ is None else environ
    system_dir = Path(env.get("VAULT_SYSTEM_POLICY_DIR") or "/etc/vault/policies")
    config, data, state = (Path(folder) for folder in folders(env))
    return Paths(
        config_file=config / "config.yaml",
        policy_dir=config / "policies",
        system_policy_dir=system_dir,
        vault_file=data / VAULT_FILE,
        key_file=data / "vault.key",
        lock_file=data / "vault.lock",
        audit_file=state / "audit.jsonl",
    )


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) 0700, then check it is ours and not open to others.

    Every folder vault creates is 0700 whatever the umask, the missing parents included (under
    `umask 000`, ``Path.mkdir(parents=True)`` makes ~/.local/share 0777, and anyone could then
    move the vault folder away). Each is made inside the folder above it, held open, and
    opened without following a symlink before the next is made in it; a folder that is not
    ours and private right after it was made is refused. An existing parent such as ``~`` is
    left as it is.
    """
    path = Path(os.path.abspath(path))
    missing: list[str] = []
    top = path
    while not os.path.lexists(top) and top.parent != top:
        missing.append(top.name)
        top = top.parent
    if missing:
        _make_private_folders(top, missing[::-1])
    check_private_dir(path)


def _make_private_folders(top: Path, names: list[str]) -> None:
    """``top/names[0]/names[1]/...``, each 0700 (the umask is set to 077 meanwhile, so the mode
    is exactly 0700 and the folder is usable even under a umask such as 0777)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        fd = os.open(top, flags)
    except OSError as exc:
        raise IntegrityError(f"cannot create folder {top / names[0]}: {exc.strerror}") from exc
    old_umask = os.umask(0o077)
    folder = top
    try:
        for name in names:
            folder = folder / name
            with contextlib.suppress(FileExistsError):  # made meanwhile: checked the same
                os.mkdir(name, 0o700, dir_fd=fd)
            try:
                child = os.open(name, flags | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                raise IntegrityError(f"cannot create folder {folder}: {exc.strerror}") from exc
            os.close(fd)
            fd = child
            st = os.fstat(fd)
            if st.st_uid != os.geteuid() or st.st_mode & 0o077:
                raise IntegrityError(
                    f"refusing folder {folder}: just created, it is owned by uid {st.st_uid} "
                    f"with mode {stat.S_IMODE(st.st_mode):04o}, not yours and private",
                    hint=f"someone else can write to {folder.parent}",
                )
    except OSError as exc:
        raise IntegrityError(f"cannot create folder {folder}: {exc.strerror}") from exc
    finally:
        os.umask(old_umask)
        os.close(fd)


def check_private_dir(path: Path) -> None:
    """Refuse a folder that is a symlink, someone else's, or writable by group or others."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise IntegrityError(f"cannot inspect folder {path}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise IntegrityError(
            f"refusing folder {path}: it is a symlink",
            hint="point VAULT_HOME (or the XDG folder) at the real folder",
        )
    if not stat.S_ISDIR(st.st_mode):
        raise IntegrityError(f"refusing {path}: not a folder")
    if st.st_uid != os.geteuid():
        raise IntegrityError(f"refusing folder {path}: owned by uid {st.st_uid}, not by you")
    if st.st_mode & 0o022:
        raise IntegrityError(
            f"refusing folder {path}: writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"chmod 700 {path}",
        )


def check_private_file(path: Path, what: str) -> os.stat_result | None:
    """Refuse a file that is a symlink, a hard-linked copy, someone else's, or group/world
    accessible, as OpenSSH refuses a loose key. Returns its stat, or None if it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IntegrityError(f"cannot inspect {what} {path}: {exc.strerror}") from exc
    _refuse_unless_private(path, what, st)
    return st


def _refuse_unless_private(path: Path, what: str, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise IntegrityError(f"refusing {what} {path}: it is a symlink")
    if not stat.S_ISREG(st.st_mode):
        raise IntegrityError(f"refusing {what} {path}: not a regular file")
    if st.st_uid != os.geteuid():
        raise IntegrityError(f"refusing {what} {path}: owned by uid {st.st_uid}, not by you")
    if st.st_mode & 0o077:
        raise IntegrityError(
            f"refusing {what} {path}: accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"chmod 600 {path}",
        )
    if st.st_nlink > 1:
        raise IntegrityError(
            f"refusing {what} {path}: it has {st.st_nlink} hard links",
            hint="another name for the same file could be used to read or replace it",
        )


def open_private_file(path: Path, what: str) -> int:
    """A private file opened for reading (a file descriptor), checked as
    :func:`check_private_file` checks it, before and after the open: never through a symlink
    (O_NOFOLLOW), and never waiting on a FIFO (O_NONBLOCK; the open file must be a regular
    one), even one swapped in between the check and the open."""
    if check_private_file(path, what) is None:
        raise IntegrityError(f"cannot open {what} {path}: it disappeared")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntegrityError(f"refusing {what} {path}: it is a symlink") from None
        raise IntegrityError(f"cannot open {what} {path}: {exc.strerror}") from exc
    try:
        _refuse_unless_private(path, what, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_private_file(
    path: Path, what: str, *, limit: int, check_folder: bool = True
) -> bytes | None:
    """Read a private file without following symlinks; None if it does not exist."""
    if check_folder:
        check_private_dir(path.parent)
    if check_private_file(path, what) is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IntegrityError(f"cannot open {what} {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if st.st_size > limit:
            raise IntegrityError(f"refusing {what} {path}: {st.st_size} bytes is over the limit")
        # One read of the whole file as fstat sizes it (a 3 MB vault of 10,000 tokens read in
        # 1 MiB chunks and joined cost twice the copying); then to the end, in case it grew.
        data = os.read(fd, min(st.st_size, limit) + 1)
        if len(data) <= limit:
            chunks = [data]
            remaining = limit + 1 - len(data)
            while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
                chunks.append(chunk)
                remaining -= len(chunk)
            if len(chunks) > 1:
                data = b"".join(chunks)
        if len(data) > limit:
            raise IntegrityError(f"refusing {what} {path}: over the size limit")
        return data
    except OSError as exc:
        raise IntegrityError(f"cannot read {what} {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def check_trusted(
    path: Path,
    st: os.stat_result,
    what: str,
    *,
    owner_rule: str = "it must be yours",
    folder: bool = False,
) -> None:
    """Refuse a file (or, with ``folder``, a folder) a person wrote that others could have
    written instead: not a regular file (a FIFO would block the read forever), owned by neither
    you nor root, or writable by group or others. ``what`` names it ("policy", "config file")."""
    if not folder and not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path}: the {what} is not a regular file")
    if st.st_uid not in (0, os.geteuid()):
        raise ConfigError(f"{path}: the {what} is owned by uid {st.st_uid}; {owner_rule}")
    if st.st_mode & 0o022:
        raise ConfigError(
            f"{path}: the {what} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); it cannot be trusted",
            hint=f"chmod go-w {path}",
        )


def check_trusted_path(folder: Path, what: str, *, vault_dir: Path | None = None) -> None:
    """Refuse a folder of policies or config that is not on a trusted path, as OpenSSH's
    StrictModes refuses a key: every folder from ``folder`` up to ``/``, both as named and as
    its symlinks resolve, must be owned by root or you, and not writable by group or others
    unless it is sticky. A folder that does not exist is judged by the nearest one that does
    (whoever could have renamed it away is just as bad).

    The sticky rule: a sticky folder others may write (``/tmp``, mode 1777) is accepted, since
    there only an entry's owner (or the folder's, or root) can rename or remove it, and the
    entry below it on the path is itself checked to be root's or yours. A writable folder that
    is not sticky lets anyone with write access rename what is in it.

    ``what`` names what the folder holds ("system policy folder", "config folder"). The vault
    folder, when on the path (VAULT_HOME holds config.yaml and policies/), is held to its own
    stricter rule instead (``check_private_dir``: yours, a real folder, not writable by group
    or others; exit 6)."""
    named = Path(os.path.abspath(folder))
    seen: set[str] = set()
    for chain in (named, Path(os.path.realpath(named))):
        path = chain
        while True:
            if str(path) not in seen:
                seen.add(str(path))
                if path == vault_dir:
                    if os.path.isdir(path):  # not a folder: reading below it says so
                        check_private_dir(path)
                else:
                    _check_path_folder(path, what)
            if path.parent == path:
                break
            path = path.parent


def _check_path_folder(path: Path, what: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return  # judged by the folder above it
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot inspect this folder on the way to the {what}: {exc.strerror}"
        ) from exc
    if stat.S_ISLNK(st.st_mode):
        return  # the folder holding the link is checked; so is where it leads
    if st.st_uid not in (0, os.geteuid()):
        raise ConfigError(
            f"{path}: this folder on the way to the {what} is owned by uid {st.st_uid}, neither "
            "root nor you; its owner could rename the folders below it away",
        )
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"{path}: this folder on the way to the {what} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}) and not sticky; anyone who can write it "
            "could rename the folders below it away",
            hint=f"chmod go-w {path}",
        )


def read_config_text(path: Path, what: str, *, limit: int = 256 * 1024) -> str | None:
    """Read a YAML file a person wrote (config or policy); None if it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    if st.st_size > limit:
        raise ConfigError(f"{path}: {what} is {st.st_size} bytes, over the {limit}-byte limit")
    try:
        # O_NONBLOCK: a FIFO swapped in after the caller's checks must not block the read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"{path}: {what} is not a regular file")
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    if len(data) > limit:
        raise ConfigError(f"{path}: {what} is over the {limit}-byte limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} is not UTF-8 (byte {exc.start})") from exc
