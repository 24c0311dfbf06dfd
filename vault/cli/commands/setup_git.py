"""`vault setup-git [NAME] [--dry-run]`: git's credential helper for NAME's provider host, as
`gh auth setup-git` configures gh's.

Two entries of git's global configuration (`git config --global`, so GIT_CONFIG_GLOBAL is
honoured), for the token's provider origin only (``credential.https://HOST[:PORT].helper``;
``http://`` only for a loopback provider, as the helper answers nothing else):

1. an empty value, which resets the helpers configured before it for that origin (git: "If
   credential.helper is configured to the empty string, this resets the helper list to
   empty"), so that no other helper is asked first, or is handed the token by `store`;
2. ``!'/abs/path/vault' credential-helper --name NAME``: the running vault executable by its
   absolute path, shell-quoted (git runs a ``!`` helper with the shell).

Written with ``--replace-all`` then ``--add``: run twice, it leaves the same two entries, and
no other key is touched (every other host's helpers, the plain ``credential.helper``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from vault.cli.app import App
from vault.errors import ConfigError, NotFoundError, UsageError
from vault.login.http import is_loopback_host, origin
from vault.store.model import TokenRecord
from vault.tokens.default import resolve
from vault.util.text import clean

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse


def credential_url(record: TokenRecord) -> str:
    """The URL git's ``credential.<url>.helper`` key is for: the provider's origin (the
    token's issuer), the port only where it is not the scheme's default."""
    where = origin(record.issuer)
    if where is None:
        raise ConfigError(f"the issuer of {record.name!r} is not a usable URL")
    scheme, host, port = where
    if scheme == "http" and not is_loopback_host(host):
        raise UsageError(f"the provider of {record.name!r} is not https: git is not set up for it")
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{shown}" if port == default else f"{scheme}://{shown}:{port}"


def vault_command() -> list[str]:
    """The running vault, as a command a shell can start from anywhere: this executable by
    its absolute path, or ``python -m vault`` where vault was started that way."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    path = os.path.abspath(argv0) if argv0 else ""
    if path and not path.endswith(".py") and os.access(path, os.X_OK) and os.path.isfile(path):
        return [path]
    return [os.path.abspath(sys.executable), "-m", "vault"]


def helper_value(name: str) -> str:
    """git's value for the helper: ``!`` and a shell command line, every word quoted."""
    words = [*vault_command(), "credential-helper", "--name", name]
    return "!" + " ".join(shlex.quote(w) for w in words)


def git_commands(url: str, name: str) -> list[list[str]]:
    key = f"credential.{url}.helper"
    return [
        ["git", "config", "--global", "--replace-all", key, ""],
        ["git", "config", "--global", "--add", key, helper_value(name)],
    ]


def cmd_setup_git(app: App, ns: argparse.Namespace) -> int:
    name = resolve(app.store, ns.name)  # no NAME: the default token
    snapshot = app.store.read()
    record = snapshot.get(name) if snapshot is not None else None
    if record is None:
        raise NotFoundError.for_name(name)
    url = credential_url(record)
    commands = git_commands(url, name)
    if ns.dry_run:
        for argv in commands:
            print(shlex.join(argv))
        return 0
    import shutil

    git = shutil.which("git")
    if git is None:
        raise ConfigError("git is not installed (not found on PATH)")
    for argv in commands:
        try:
            done = subprocess.run(  # noqa: S603 (git, found on PATH, with fixed arguments)
                [git, *argv[1:]],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"git config failed: {type(exc).__name__}") from None
        if done.returncode != 0:
            raise ConfigError(
                f"git config failed (exit {done.returncode}): "
                f"{clean(done.stderr.strip(), 300) or 'no message'}"
            )
    app.say(f"git now asks vault for {url} (token {name!r}); other hosts' helpers are unchanged.")
    return 0
