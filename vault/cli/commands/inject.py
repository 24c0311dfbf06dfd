"""Secrets into processes and files: `vault exec --env-file FILE -- CMD` and `vault inject -i
TEMPLATE [-o FILE]`.

Both resolve every reference before anything else happens (CMD started, a byte written), each
distinct token (a name's access token, or its ID token) once, by vault.cli.serve (the agent
where one runs unlocked, else this process; vault.tokens.use.use_token either way): policy
checked, refreshed where needed, one `used` audit record naming the use, the program or the
output and the consumers. One failure and nothing runs and nothing is written. Values go only
where they are meant to (CMD's environment, the output); errors name files, lines and
variables, never a value. The formats are vault.util.refs'.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from vault.cli.app import App
from vault.errors import ConfigError, UsageError, VaultError
from vault.util.refs import (
    ACCESS_TOKEN,
    MAX_ENV_FILE,
    MAX_TEMPLATE,
    Placeholder,
    Ref,
    parse_env_file,
    parse_template,
    render_template,
)
from vault.util.text import check_name, clean

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from vault.secret import Secret

MAX_COMMAND = 200  # characters of an audit record's command string (what the agent accepts)


@dataclass(frozen=True)
class Use:
    """One consumer of a reference: ``label`` names it in the audit record (a variable),
    ``where`` in an error (FILE:LINE and the variable)."""

    ref: Ref
    label: str
    where: str


def resolve(
    app: App,
    uses: Sequence[Use],
    command: Callable[[Ref, list[Use]], str],
    *,
    min_valid: int,
    to_terminal: bool = False,
) -> dict[Ref, Secret]:
    """The value of every reference of ``uses``: each distinct token (a name's access token,
    or its ID token) handed out once, through this vault's agent where one runs unlocked, else
    in this process (vault.cli.serve; either way vault.tokens.use.use_token: policy checked,
    refreshed first, one `used` record with ``command(ref, its uses)``), in the order they
    first appear. The first failure propagates, its message prefixed with where that token was
    first used (FILE:LINE and the variable); a ``#id_token`` of a token without one is the
    core's AuthError (exit 4)."""
    from vault.cli.serve import in_process, through_agent

    if min_valid < 0:
        raise UsageError("--min-valid must be zero or more seconds")
    by_ref: dict[Ref, list[Use]] = {}
    for use in uses:
        by_ref.setdefault(use.ref, []).append(use)
    agent = getattr(app.ns, "passphrase_file", None) is None  # a file asks for our own key
    values: dict[Ref, Secret] = {}
    for ref, its_uses in by_ref.items():
        what = command(ref, its_uses)
        try:
            got = None
            if agent:
                got = through_agent(
                    ref.name, min_valid=min_valid, command=what, want=ref.field,
                    to_terminal=to_terminal,
                )  # fmt: skip
            if got is None:
                got = in_process(
                    app, ref.name, min_valid=min_valid, command=what, want=ref.field,
                    to_terminal=to_terminal,
                )  # fmt: skip
        except VaultError as exc:
            exc.message = f"{its_uses[0].where}: {exc.message}"
            exc.args = (exc.message,)
            raise
        values[ref] = got.token
    return values


def bounded(head: str, labels: list[str]) -> str:
    """``HEAD (A, B, ...N more)``: as many labels as fit in MAX_COMMAND characters, for the
    audit record (and the agent, which takes no longer a command)."""
    whole = f"{head} ({', '.join(labels)})"
    if len(whole) <= MAX_COMMAND:
        return whole
    size = len(head) + 3  # " (" and ")"
    kept: list[str] = []
    for i, label in enumerate(labels):
        more = len(labels) - i - 1
        add = len(label) + (2 if kept else 0)
        tail = len(f", ...{more} more") if more else 0
        if size + add + tail > MAX_COMMAND:
            kept.append(f"...{len(labels) - i} more")
            break
        kept.append(label)
        size += add
    return f"{head} ({', '.join(kept)})"


def _label(var: str, ref: Ref) -> str:
    return var if ref.field == ACCESS_TOKEN else f"{var}#{ref.field}"


# --- reading the input files ----------------------------------------------------------------


def read_input(spec: str, what: str, limit: int) -> tuple[bytes, str]:
    """The bytes of an env file or template (``-``: stdin) and the name errors give it. A regular
    file must be yours or root's and not writable by others (it decides what a token is sent
    to); a pipe (`<(...)`, stdin) is read as it comes. Over ``limit`` bytes is a usage error."""
    if spec == "-":
        data = sys.stdin.buffer.read(limit + 1)
        source = "<stdin>"
    else:
        source = clean(spec, 200)
        try:
            fd = os.open(spec, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            raise UsageError(f"cannot read the {what} {source}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise UsageError(f"the {what} {source} is a folder")
            if stat.S_ISREG(st.st_mode):
                _check_trusted(st, what, source)
            chunks: list[bytes] = []
            size = 0
            while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
        except OSError as exc:
            raise UsageError(f"cannot read the {what} {source}: {exc.strerror}") from None
        finally:
            os.close(fd)
    if len(data) > limit:
        raise UsageError(f"{source}: over the {limit // 1024} KiB limit for the {what}")
    return data, source


def _check_trusted(st: os.stat_result, what: str, source: str) -> None:
    if st.st_uid not in (0, os.geteuid()):
        raise ConfigError(
            f"refusing the {what} {source}: owned by uid {st.st_uid}, neither you nor root; "
            "its owner decides where your tokens go"
        )
    if st.st_mode & stat.S_IWOTH:
        raise ConfigError(
            f"refusing the {what} {source}: anyone can write it "
            f"(mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"chmod o-w {source}",
        )


# --- vault exec --env-file ------------------------------------------------------------------


def exec_with_env_files(app: App, ns: argparse.Namespace, cmd: list[str]) -> int:
    """`vault exec [NAME] [--env VAR] --env-file FILE... -- CMD`: CMD's environment is this
    process's, then each env file in order (a later file's KEY replaces an earlier one's), then
    NAME's token in VAR (by default its provider's conventional variable:
    vault.cli.commands.use.token_variable) above all. Only the references that end up in
    it are resolved; then this process is replaced by CMD (found on the PATH CMD gets)."""
    env: dict[str, str] = dict(os.environ)
    refs: dict[str, Use] = {}  # variable -> the reference it is set to, in order
    for spec in ns.env_file:
        data, source = read_input(spec, "env file", MAX_ENV_FILE)
        for entry in parse_env_file(data, source):
            refs.pop(entry.key, None)
            if entry.ref is None:
                env[entry.key] = entry.value
            else:
                env.pop(entry.key, None)
                where = f"{source}:{entry.line} ({entry.key})"
                refs[entry.key] = Use(entry.ref, _label(entry.key, entry.ref), where)
    if ns.name is not None:
        var = ns.env if ns.env is not None else _conventional_variable(app, check_name(ns.name))
        refs.pop(var, None)
        refs[var] = Use(Ref(check_name(ns.name)), var, f"{ns.name} ({var})")
    import shutil

    search = env.get("PATH", os.defpath) if "PATH" not in refs else os.environ.get("PATH")
    program = shutil.which(cmd[0], path=search)
    if program is None:
        app.say(f"vault: error: command not found: {clean(cmd[0], 200)}")
        return 127
    base = os.path.basename(program)

    def command(ref: Ref, uses: list[Use]) -> str:
        return bounded(f"exec env-file {clean(base, 60)}", [u.label for u in uses])

    ordered = list(refs.items())
    values = resolve(app, [use for _, use in ordered], command, min_valid=ns.min_valid)
    for var, use in ordered:
        env[var] = values[use.ref].reveal()
    from vault.cli.commands.use import run_program

    return run_program(app, program, cmd, env)


def _conventional_variable(app: App, name: str) -> str:
    """NAME's provider's conventional variable (GH_TOKEN...), read from this process's view
    of the vault before anything is resolved; a UsageError where there is none (--env)."""
    from vault.cli.commands.use import token_variable
    from vault.errors import NotFoundError

    snapshot = app.store.read()
    record = snapshot.get(name) if snapshot is not None else None
    if record is None:
        raise NotFoundError.for_name(name)
    return token_variable(record, None)


# --- vault inject ---------------------------------------------------------------------------


def cmd_inject(app: App, ns: argparse.Namespace) -> int:
    """`vault inject -i TEMPLATE [-o FILE]`: every placeholder resolved first, then the output
    written whole: FILE replaced atomically (0600), or stdout. Never prompts."""
    app.passphrase.interactive = False
    out = Path(os.path.abspath(ns.output)) if ns.output is not None else None
    if out is not None:
        _refuse_vaults_own(app, out)
        _check_output(out, ns.template)
    data, source = read_input(ns.template, "template", MAX_TEMPLATE)
    segments = parse_template(data, source)
    uses = [
        Use(s.ref, f"line {s.line}", f"{source}:{s.line}")
        for s in segments
        if isinstance(s, Placeholder)
    ]
    target = "stdout" if out is None else str(out)
    to_terminal = out is None and sys.stdout.isatty()

    def command(ref: Ref, its_uses: list[Use]) -> str:
        suffix = "" if ref.field == ACCESS_TOKEN else f" {ref.field}"
        return f"inject {clean(target, MAX_COMMAND - 20)}{suffix}"

    values = resolve(app, uses, command, min_valid=ns.min_valid, to_terminal=to_terminal)
    filled = render_template(
        segments, {ref: value.reveal().encode() for ref, value in values.items()}, source
    )
    if out is None:
        sys.stdout.buffer.write(filled)
        sys.stdout.flush()
        return 0
    from vault.fs.durable import atomic_write

    _check_output(out, ns.template)  # again: it may have changed while the tokens came
    atomic_write(out, filled, what="output file")
    return 0


def _refuse_vaults_own(app: App, out: Path) -> None:
    """Refuse an output in one of vault's own folders (the vault's, the audit log's, the
    config's and the policies'): replacing the vault, its key file, its log or a policy with a
    filled template would destroy it, and nothing else belongs there."""
    paths = app.paths
    folders = {
        paths.vault_dir,
        paths.audit_file.parent,
        paths.config_file.parent,
        paths.policy_dir,
        paths.system_policy_dir,
    }
    where = os.path.realpath(out.parent)
    if any(where == os.path.realpath(folder) for folder in folders):
        raise UsageError(
            f"refusing to write {clean(out, 200)}: the folder is one of vault's own",
            hint="write the output somewhere else",
        )


def _check_output(out: Path, template: str) -> None:
    """Refuse, before any token is used, an output that is not ours to replace: not in a
    folder you can write, the template itself, or an existing file that is a symlink, not a
    regular file, someone else's, hard-linked or readable by others
    (vault.fs.paths.check_private_file, exit 6)."""
    from vault.fs.paths import check_private_file

    folder = clean(out.parent, 200)
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {clean(out, 200)}: {folder} is not a folder")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {clean(out, 200)}: {folder} is not writable by you")
    st = check_private_file(out, "to replace the output file")
    if st is not None and template != "-":
        try:
            same = os.path.samefile(template, out)
        except OSError:
            same = False
        if same:
            raise UsageError("the output file is the template itself")
