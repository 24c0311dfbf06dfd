"""Handing a token to another program (kubectl, git, docker, Terraform): through this vault's
agent where one runs unlocked, else in this process, with the same rules either way
(vault.tokens.use.use_token: policy checked, refreshed first, the use audited under the name of
the program that asked).

These helpers are started once for every command of the calling tool, so the agent's path
imports next to nothing: no argparse, no json package, none of the store, policy or audit
modules (the agent does that work). Nothing here prints but the store's and the agent's
warnings (on stderr): the commands render what they get.
"""

from __future__ import annotations

import sys
import time

from vault.secret import Secret

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable

    from vault.cli.app import App
    from vault.store.model import TokenRecord

    Origin = tuple[str, str, int]


class Handed:
    """A token handed out: the secret, when it expires (UNIX seconds, or None), and the
    provider it came from (its name, and its preset where it has one)."""

    __slots__ = ("expires_at", "preset", "provider", "token")

    def __init__(
        self, token: Secret, expires_at: int | None, provider: str, preset: str | None
    ) -> None:
        self.token = token
        self.expires_at = expires_at
        self.provider = provider
        self.preset = preset

    def __repr__(self) -> str:
        return f"Handed(provider={self.provider!r}, expires_at={self.expires_at!r})"

    @property
    def is_github(self) -> bool:
        return self.preset == "github" or self.provider == "github"


def through_agent(
    name: str,
    *,
    min_valid: int,
    command: str,
    want: str = "access_token",
    origin: Origin | None = None,
    to_terminal: bool = False,
) -> Handed | None:
    """The token from the agent, or None where none runs unlocked for this vault (or a
    passphrase file was given on the command line: that asks for this process's own key).
    ``to_terminal``: it is for a terminal (policy's print_to_terminal applies)."""
    from vault.keys.agent import hand_out

    answer = hand_out(
        name, min_valid, command=command, want=want, origin=origin, to_terminal=to_terminal
    )
    if answer is None:
        return None
    preset = answer.get("preset")
    return Handed(
        Secret(answer["token"]),
        answer["expires_at"],
        str(answer.get("provider") or ""),
        preset if isinstance(preset, str) else None,
    )


def in_process(
    app: App,
    name: str,
    *,
    min_valid: int,
    command: str | Callable[[TokenRecord], str],
    want: str = "access_token",
    origin: Origin | None = None,
    to_terminal: bool = False,
) -> Handed:
    """The token by this process's own store (the key from the agent where it runs, or from
    the keyring or passphrase)."""
    from vault.tokens.use import handed

    record = app.use_token(
        name,
        min_valid=min_valid,
        command=command,
        to_terminal=to_terminal,
        want=want,
        origin=origin,
    )
    token, expires_at = handed(record, want)
    preset = record.extra.get("preset")
    return Handed(token, expires_at, record.provider, preset if isinstance(preset, str) else None)


class ForHost(Handed):
    """A token handed out for a host config.yaml names (vault.tokens.hosts): also the host,
    as configured, and the user name to send with it (None: the section has none)."""

    __slots__ = ("host", "username")

    def __init__(self, handed: Handed, host: str, username: str | None) -> None:
        super().__init__(handed.token, handed.expires_at, handed.provider, handed.preset)
        self.host = host
        self.username = username

    def __repr__(self) -> str:
        return f"ForHost(host={self.host!r}, provider={self.provider!r})"


def for_host(kind: str, asked: str, *, min_valid: int, command: str) -> ForHost | None:
    """The token config.yaml's ``kind`` section names for the host ``asked``: through the
    agent where one runs unlocked, else in this process, never asking anyone for anything
    (no passphrase prompt: a passphrase vault needs the agent or VAULT_PASSPHRASE_FILE).
    None where the section names no such host (nothing checked or audited then)."""
    from vault.keys.agent import hand_out_host

    answer = hand_out_host(kind, asked, min_valid, command=command)
    if answer is not None:
        if answer.get("found") is not True:
            return None
        preset = answer.get("preset")
        username = answer.get("username")
        handed = Handed(
            Secret(answer["token"]),
            answer["expires_at"],
            str(answer.get("provider") or ""),
            preset if isinstance(preset, str) else None,
        )
        return ForHost(
            handed, str(answer.get("host") or ""), username if isinstance(username, str) else None
        )
    from types import SimpleNamespace

    from vault.cli.app import App

    app = App(SimpleNamespace(passphrase_file=None))  # type: ignore[arg-type]
    app.passphrase.interactive = False
    try:
        return in_process_for_host(app, kind, asked, min_valid=min_valid, command=command)
    finally:
        app.forward_audit()
        for warning in app.store_warnings():
            sys.stderr.write(f"vault: warning: {warning}\n")


def in_process_for_host(
    app: App, kind: str, asked: str, *, min_valid: int, command: str
) -> ForHost | None:
    """As `for_host`, by this process's own store."""
    from vault.tokens.hosts import configured, use_for_host
    from vault.tokens.use import handed

    if configured(app.config, kind, asked) is None:
        return None  # the store is not opened for a host no section names
    found = use_for_host(
        app.store, app.policy, app.config, kind, asked, min_valid=min_valid, command=command
    )
    if found is None:
        return None
    record, host, entry = found
    token, expires_at = handed(record, "access_token")
    preset = record.extra.get("preset")
    return ForHost(
        Handed(token, expires_at, record.provider, preset if isinstance(preset, str) else None),
        host,
        entry.username,
    )


def rfc3339(ts: int) -> str:
    """UTC, to the second, with Z (as vault.util.text.rfc3339, without importing it)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
