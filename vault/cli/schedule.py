"""The job `vault prune --install-schedule` sets up (a crontab line, or a systemd user timer and
its service), and reading an installed one back for `vault doctor`.

cron and systemd start the job in an environment of their own: cron's holds little more than
HOME, LOGNAME, SHELL=/bin/sh and PATH=/usr/bin:/bin. A job that relied on the installing shell's
VAULT_HOME opened the default (empty) vault instead and reported "Nothing to prune" every hour.
So the job carries, written into it, the absolute path of the vault executable that installed
it and every variable that decided where this invocation found its vault, config, policies and
key (``pinned_env``), each quoted for the one reader it has: sh, after cron's own rule for `%`,
for the crontab line; systemd's unit-file rules for the service.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vault.errors import IntegrityError, UsageError, VaultError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Mapping

SERVICE = "vault-prune.service"
TIMER = "vault-prune.timer"
CRON_SCHEDULE = "17 * * * *"
LOG_NAME = "prune.log"

# The variables a job must carry to find what this invocation found, in the order written.
# Folders and files: VAULT_HOME, VAULT_SYSTEM_POLICY_DIR, XDG_{CONFIG,DATA,STATE}_HOME (where
# config, policies, vault and audit log are), VAULT_PASSPHRASE_FILE (the passphrase backend's
# key); which key backend and keyring: VAULT_KEY_BACKEND, PYTHON_KEYRING_BACKEND; how the key is
# reached: XDG_RUNTIME_DIR (the key agent's socket is $XDG_RUNTIME_DIR/vault/, else
# /run/user/UID/vault/) and DBUS_SESSION_BUS_ADDRESS (the Secret Service of a desktop session);
# and HOME where it is not the one cron and systemd take from the password database.
PINNED = (
    "HOME",
    "VAULT_HOME",
    "VAULT_SYSTEM_POLICY_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "VAULT_KEY_BACKEND",
    "PYTHON_KEYRING_BACKEND",
    "VAULT_PASSPHRASE_FILE",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _passwd_home() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return ""


def vault_command() -> list[str]:
    """The command that runs this very vault, absolute: the console script (``sys.argv[0]``, its
    symlinks resolved), or this interpreter with ``-m vault``. Never whatever `vault` is first on
    PATH: that may be another install, or another program of the same name."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "__main__.py":
        # The interpreter as started, not resolved: a virtual environment's python is a symlink
        # to the system's, and resolving it would lose the environment vault is installed in.
        return [os.path.abspath(sys.executable), "-m", "vault"]
    if argv0 and os.path.isfile(argv0) and os.access(argv0, os.X_OK):
        return [os.path.realpath(argv0)]
    raise UsageError(
        f"cannot tell which vault executable is running (argv[0] is {argv0!r})",
        hint="run the installed `vault` command, or `python -m vault`",
    )


def dbus_path_address(address: str) -> str | None:
    """The ``unix:path=`` entries of a D-Bus address, each reduced to its path (a ``guid`` names
    one run of the bus; the job must reach whichever runs then), or None if it has none.
    Abstract and TCP addresses are not pinned: they name one login session's bus, not a place."""
    kept = []
    for entry in address.split(";"):
        transport, colon, rest = entry.partition(":")
        if not colon or transport != "unix":
            continue
        for pair in rest.split(","):
            key, eq, value = pair.partition("=")
            if key == "path" and eq and value:
                kept.append(f"unix:path={value}")
    return ";".join(kept) or None


def _absolute(value: str) -> str:
    """``value`` as the process that read it understood it: a relative path is relative to its
    working folder, which a job's (HOME, or /) is not."""
    return value if os.path.isabs(value) else str(Path.cwd() / value)


def pinned_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the scheduled job must be given, from this invocation's environment (see PINNED):
    only variables that are set (and would have an effect), paths made absolute as they were
    understood here. UsageError (exit 2) for a value no crontab line or unit can carry."""
    env = os.environ if environ is None else environ
    pinned: dict[str, str] = {}
    for name in PINNED:
        value = env.get(name, "")
        if name == "PYTHON_KEYRING_BACKEND":
            value = value.strip()
        if not value:
            continue
        if name == "HOME":
            if value == _passwd_home():
                continue  # cron and systemd set this one themselves
            value = _absolute(value)
        elif name == "VAULT_HOME":
            value = _absolute(os.path.expanduser(value))  # as vault.fs.paths.resolve reads it
        elif name in ("VAULT_SYSTEM_POLICY_DIR", "VAULT_PASSPHRASE_FILE"):
            value = _absolute(value)
        elif name.startswith("XDG_"):
            if not os.path.isabs(value):
                continue  # the XDG spec: ignored, here and in the job alike
        elif name == "DBUS_SESSION_BUS_ADDRESS":
            address = dbus_path_address(value)
            if address is None:
                continue
            value = address
        check_value(name, value)
        pinned[name] = value
    return pinned


def check_value(name: str, value: str) -> None:
    """Refuse what a one-line crontab entry or a unit file cannot carry faithfully."""
    for ch, what in (("\n", "a newline"), ("\r", "a carriage return"), ("\0", "a NUL byte")):
        if ch in value:
            raise UsageError(
                f"cannot write {name} into the scheduled job: its value holds {what}",
                hint=f"use a {name} without line breaks (a crontab entry is one line)",
            )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"cannot write {name} into the scheduled job: its value is not valid UTF-8"
        ) from None


# --- the crontab line --------------------------------------------------------------------


def cron_word(text: str) -> str:
    """``text`` as one sh word, written so that it survives cron first. cron ends the command at
    the first ``%`` (the rest becomes its stdin) unless a backslash precedes it, and removes
    that backslash; no sh word can hold a literal ``\\%`` through that. So every ``%`` is
    written as ``"\\%"``, outside any single quotes, which cron turns into ``"%"``; the
    character before that backslash is always ``"``, never a backslash cron would pair it
    with."""
    if not text:
        return "''"
    return '"\\%"'.join(shlex.quote(part) if part else "" for part in text.split("%"))


def cron_command(command: list[str], env: Mapping[str, str], log: Path) -> str:
    """The command part of the crontab line: umask 077 (a log made again after it was removed
    is private too), the pinned variables, the vault command, output appended to ``log``."""
    for word in (*command, str(log)):
        check_value("the vault command", word)
    words = ["umask 077;"]
    words += [f"{name}={cron_word(value)}" for name, value in env.items()]
    words += [cron_word(word) for word in command]
    words += ["prune", "--json", ">>", cron_word(str(log)), "2>&1"]
    return " ".join(words)


def cron_line(command: list[str], env: Mapping[str, str], log: Path) -> str:
    return f"{CRON_SCHEDULE} {cron_command(command, env, log)}"


def cron_unescape(command: str) -> tuple[str, str]:
    """What cron hands to ``sh -c`` for a crontab command, and what it feeds on stdin: cron's
    (Vixie cron, cronie, Debian's) rule for ``%``, as in its do_command.c."""
    out: list[str] = []
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            if ch == "%":
                out[-1] = "%"
            else:
                out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            out.append(ch)
            continue
        if ch == "%":
            return "".join(out), command[i + 1 :].replace("%", "\n")
        out.append(ch)
    return "".join(out), ""


def open_log(path: Path) -> None:
    """Create the job's log 0600 (or make an existing one 0600), so that the first run, under
    cron's umask, does not create it open to others; a symlink or someone else's file there is
    refused. The umask 077 of the line keeps a log made again later private too."""
    from vault.fs.paths import ensure_private_dir

    ensure_private_dir(path.parent)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise IntegrityError(f"cannot create the prune log {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise IntegrityError(f"refusing the prune log {path}: not a file of yours")
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


# --- the systemd units -------------------------------------------------------------------


def systemd_quote(text: str, *, expand_dollar: bool = False) -> str:
    """``text`` as one double-quoted word of a unit file (systemd.syntax, "Quoting"; systemd.exec
    for Environment=): C escapes inside the quotes (backslash, double quote, controls as
    ``\\xNN``), ``%%`` for ``%`` (specifiers are expanded in both Environment= and ExecStart=),
    and with ``expand_dollar`` ``$$`` for ``$`` (ExecStart='s arguments after the first have
    $VAR substituted; the executable's path and Environment= do not)."""
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "$" and expand_dollar:
            out.append("$$")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def service_unit(command: list[str], env: Mapping[str, str]) -> str:
    return (
        "[Unit]\nDescription=vault: expire and revoke tokens policy no longer allows\n\n"
        "[Service]\nType=oneshot\n" + service_lines(command, env, "prune --json")
    )


def service_lines(command: list[str], env: Mapping[str, str], args: str) -> str:
    """A service's Environment= lines and its ExecStart= (``command`` then ``args``, fixed words
    without quotes or specifiers), quoted as systemd reads them."""
    for word in command:
        check_value("the vault command", word)
    if any(ch in "\"'\\\x7f" or ord(ch) < 0x20 for ch in command[0]):
        # systemd refuses these in ExecStart='s executable, quoted or not ("Executable name
        # contains special characters"): the unit would never run.
        raise UsageError(
            f"systemd cannot run {command[0]}: its path holds a quote, a backslash or a "
            "control character",
            hint="use `vault prune --install-schedule --cron`, or install vault elsewhere",
        )
    exec_start = " ".join(
        [systemd_quote(command[0]), *(systemd_quote(w, expand_dollar=True) for w in command[1:])]
    )
    return (
        "".join(f"Environment={systemd_quote(f'{k}={v}')}\n" for k, v in env.items())
        + f"ExecStart={exec_start} {args}\n"
    )


TIMER_UNIT = (
    "[Unit]\nDescription=Run vault prune hourly\n\n"
    "[Timer]\nOnCalendar=hourly\nRandomizedDelaySec=300\nPersistent=true\n\n"
    "[Install]\nWantedBy=timers.target\n"
)


def unit_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    config = env.get("XDG_CONFIG_HOME", "")
    base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
    return base / "systemd" / "user"


_C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def systemd_words(text: str) -> list[str]:
    """A unit-file value split into words as systemd splits Environment= (quotes removed, C
    escapes and ``%%`` undone): enough to read back what ``service_unit`` wrote and simple
    hand edits; other specifiers are left as written."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        word: list[str] = []
        quote = ""
        while i < n and (quote or text[i] not in " \t"):
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                nxt = text[i + 1]
                if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4]):
                    word.append(chr(int(text[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                word.append(_C_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            if quote and ch == quote:
                quote = ""
            elif not quote and ch in "\"'":
                quote = ch
            elif ch == "%" and text[i + 1 : i + 2] == "%":
                word.append("%")
                i += 1
            else:
                word.append(ch)
            i += 1
        words.append("".join(word))
    return words


# --- reading an installed job back --------------------------------------------------------


@dataclass
class Job:
    """An installed scheduled prune, as far as it can be read: what starts it, where it is
    written, the command it runs and the environment it runs with."""

    kind: str  # "systemd timer" | "crontab line"
    where: str  # the timer's path; "" for a crontab line
    command: list[str]
    env: dict[str, str]
    enabled: bool = True
    notes: list[str] = field(default_factory=list)


def _run(args: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(  # noqa: S603 (a tool found on PATH, fixed arguments)
            args, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def enable(unit: str) -> None:
    """`systemctl --user daemon-reload`, then `enable --now UNIT`; VaultError if either fails."""
    systemctl = shutil.which("systemctl") or "systemctl"
    for args in (["daemon-reload"], ["enable", "--now", unit]):
        try:
            proc = subprocess.run(  # noqa: S603 (systemctl found on PATH, fixed arguments)
                [systemctl, "--user", *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VaultError(f"systemctl --user {' '.join(args)} failed: {exc}") from None
        if proc.returncode != 0:
            raise VaultError(f"systemctl --user {' '.join(args)} failed: {proc.stderr.strip()}")


def manager_environment() -> dict[str, str] | None:
    """The systemd user manager's environment (what its services inherit), or None when there
    is no manager to ask."""
    systemctl = shutil.which("systemctl")
    proc = None if systemctl is None else _run([systemctl, "--user", "show-environment"])
    if proc is None or proc.returncode != 0:
        return None
    env = {}
    for line in proc.stdout.splitlines():
        name, eq, value = line.partition("=")
        if eq and _NAME.match(name):
            env[name] = value
    return env


def systemd_job(environ: Mapping[str, str] | None = None) -> Job | None:
    folder = unit_dir(environ)
    timer = folder / TIMER
    if not os.path.lexists(timer):
        return None
    notes: list[str] = []
    env: dict[str, str] = {}
    manager = manager_environment()
    if manager is None:
        notes.append("the systemd user manager's environment could not be read")
        env["HOME"] = _passwd_home()
    else:
        env.update(manager)
    command: list[str] = []
    try:
        text = (folder / SERVICE).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        notes.append(f"cannot read {folder / SERVICE}: {exc.strerror}")
        text = ""
    for line in text.split("\n"):  # systemd's lines; str.splitlines also breaks at \x1c, \x85...
        key, eq, value = line.strip(" \t\r").partition("=")
        if not eq:
            continue
        if key == "Environment":
            for word in systemd_words(value):
                name, eq2, val = word.partition("=")
                if eq2 and _NAME.match(name):
                    env[name] = val
        elif key == "ExecStart":
            command = systemd_words(value.lstrip("-@:+!"))
    enabled = os.path.lexists(folder / "timers.target.wants" / TIMER)
    return Job("systemd timer", str(timer), command, env, enabled, notes)


_CRON_ENV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)\Z", re.DOTALL)


def crontab_jobs(text: str) -> list[Job]:
    """The lines of a crontab that run `vault prune` (ours, or written by hand), each with the
    environment cron would give it: its defaults, the crontab's NAME=value lines above it, and
    the assignments before the command."""
    env = {"HOME": _passwd_home(), "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    jobs = []
    # Lines, blanks and fields as cron knows them (newline; space and tab), not as str's
    # splitlines, strip and split do (they also break at \x1c-\x1e, \x85, U+2028...).
    for raw in text.split("\n"):
        line = raw.strip(" \t")
        if not line or line.startswith("#"):
            continue
        assignment = _CRON_ENV.match(line)
        if assignment and not line[0].isdigit():
            value = assignment.group(2).strip(" \t")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            env[assignment.group(1)] = value
            continue
        fields = re.split(r"[ \t]+", line, maxsplit=1 if line.startswith("@") else 5)
        if len(fields) < (2 if line.startswith("@") else 6):
            continue
        command, _ = cron_unescape(fields[-1])
        found = _prune_command(command)
        if found is not None:
            words, assigned = found
            jobs.append(Job("crontab line", "", words, {**env, **assigned}))
    return jobs


def _prune_command(command: str) -> tuple[list[str], dict[str, str]] | None:
    """The vault command and the variables assigned before it, for an sh command line that runs
    `vault prune` (as the console script, or ``python -m vault``); None for any other."""
    try:
        lex = shlex.shlex(command, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        tokens = list(lex)
    except ValueError:
        return None
    segment: list[str] = []
    for token in [*tokens, ";"]:
        if token and all(ch in "();<>|&" for ch in token):
            found = _prune_segment(segment)
            if found is not None:
                return found
            segment = []
        else:
            segment.append(token)
    return None


def _prune_segment(words: list[str]) -> tuple[list[str], dict[str, str]] | None:
    assigned: dict[str, str] = {}
    i = 0
    while i < len(words):
        name, eq, value = words[i].partition("=")
        if eq and _NAME.match(name):
            assigned[name] = value
        elif words[i] not in ("exec", "env"):
            break
        i += 1
    rest = words[i:]
    if not rest:
        return None
    if os.path.basename(rest[0]) == "vault" and "prune" in rest[1:2]:
        return rest[:1], assigned
    if rest[1:3] == ["-m", "vault"] and "prune" in rest[3:4]:
        return rest[:3], assigned
    return None


def crontab_text() -> str | None:
    """This user's crontab (`crontab -l`), or None if there is none or no crontab command."""
    crontab = shutil.which("crontab")
    proc = None if crontab is None else _run([crontab, "-l"])
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout


def installed_jobs(environ: Mapping[str, str] | None = None) -> list[Job]:
    jobs = []
    systemd = systemd_job(environ)
    if systemd is not None:
        jobs.append(systemd)
    text = crontab_text()
    if text is not None:
        jobs.extend(crontab_jobs(text))
    return jobs


# --- whether a job reaches the key ---------------------------------------------------------


def key_route(env: Mapping[str, str], backend: str) -> tuple[bool, str]:
    """Whether a job started with ``env`` gets the key of a ``backend`` vault with nobody there
    (no prompt, no desktop), and how, or why not. The key agent is not considered here (see
    vault.cli.commands.doctor._agent_line)."""
    if backend == "passphrase":
        file = env.get("VAULT_PASSPHRASE_FILE", "")
        if not file:
            return False, (
                "the passphrase backend needs VAULT_PASSPHRASE_FILE and the job has none: it "
                "never prompts, so it would fail with exit 6"
            )
        if not os.path.isfile(file):
            return False, f"the job's VAULT_PASSPHRASE_FILE {file} does not exist"
        return True, f"the passphrase from {file}"
    from vault.keys.keyring import SECRET_SERVICE, _platform_backend_name

    dotted = env.get("PYTHON_KEYRING_BACKEND", "").strip() or _platform_backend_name()
    if dotted != SECRET_SERVICE:
        return True, "the OS keyring of your login session (not checked beyond that)"
    address = env.get("DBUS_SESSION_BUS_ADDRESS", "")
    if not address:
        return False, (
            "the keyring backend needs a D-Bus session address (DBUS_SESSION_BUS_ADDRESS) and "
            "the job has none: it would fail with exit 6"
        )
    pinned = dbus_path_address(address)
    if pinned is None:
        return False, f"the job's D-Bus address {address} has no unix:path= socket"
    sockets = [entry.partition("=")[2] for entry in pinned.split(";")]
    from vault.keys.dbus import DBusError, _unescape

    for socket in sockets:
        try:
            path = os.fsdecode(_unescape(socket))
        except DBusError:
            continue
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return True, (
                    f"the Secret Service over the D-Bus socket {path} (while that session runs "
                    "and its keyring is unlocked)"
                )
        except OSError:
            pass
    return False, (
        f"the job's D-Bus socket {', '.join(sockets)} is not there now (no session running?)"
    )
