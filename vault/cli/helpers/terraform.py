"""`terraform-credentials-vault`: Terraform's (and OpenTofu's) credentials helper protocol,
for the hosts config.yaml's `terraform` section names.

    terraform-credentials-vault get HOST      -> {"token": "..."}, or {} for a host it does
                                                 not serve (exit 0 either way)
    terraform-credentials-vault store HOST    reads the credentials on stdin to their end,
                                              stores nothing, and refuses (exit 2)
    terraform-credentials-vault forget HOST   nothing to forget: exit 0, silent, for a host
                                              the section does not name; refused (exit 2)
                                              for one it does (the vault goes on serving it)

As Terraform's protocol says: data on stdout, every failure one line on stderr and a non-zero
exit, any other verb refused. Nothing here asks anyone anything: no prompt, no login.
`get` is the start-up path (Terraform runs it for each host it calls): through the agent it
imports nothing heavy; without one it opens the store in this process.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from vault.policy.hosts import HostEntry

PROG = "terraform-credentials-vault"
USAGE = f"{PROG} get|store|forget HOST"
MIN_VALID = 60  # a token handed to Terraform lasts at least this long


def main(argv: list[str]) -> int:
    from vault.errors import UsageError

    if len(argv) != 2 or argv[0] not in ("get", "store", "forget"):
        if argv[:1] == ["store"]:
            _drain()  # the protocol: a refused store still reads its stdin to the end
        raise UsageError(f"usage: {USAGE} (Terraform runs it; config.yaml names the hosts)")
    verb, asked = argv
    if verb == "get":
        return get(asked)
    if verb == "store":
        _drain()
        return store(asked)
    return forget(asked)


def get(asked: str) -> int:
    """``{"token": ...}`` for a host the section names, ``{}`` for any other."""
    from vault.cli.serve import for_host
    from vault.util.hosts import service_host
    from vault.util.peer import calling_tool

    host = service_host(asked)
    got = None
    if host is not None:
        got = for_host(
            "terraform",
            host,
            min_valid=MIN_VALID,
            command=f"terraform-credentials {host} ({calling_tool()})",
        )
    if got is None:
        sys.stdout.write("{}\n")
        return 0
    from vault.keys.agent import dumps

    sys.stdout.write(dumps({"token": got.token.reveal()}).decode("ascii") + "\n")
    return 0


def store(asked: str) -> int:
    """`terraform login`: refused. The token it obtained would not be the one served (vault
    hands out its own, refreshed and audited): keep it with `vault import` instead."""
    from vault.errors import UsageError

    host, entry = _configured(asked)
    if entry is not None:
        raise UsageError(
            f"{host} is served by the vault token {entry.token!r}; terraform login's token "
            "was not stored (nothing changed)"
        )
    raise UsageError(
        "vault does not store terraform login's tokens; keep one with `vault import NAME "
        f"--provider P`, then name {host or 'the host'} and NAME in config.yaml's terraform section"
    )


def forget(asked: str) -> int:
    """`terraform logout`: silent success where nothing is served for the host; refused where
    the vault goes on serving it (the protocol: a helper that cannot be sure the credentials
    are gone must say so)."""
    from vault.errors import UsageError

    host, entry = _configured(asked)
    if entry is None:
        return 0
    raise UsageError(
        f"{host} is served by the vault token {entry.token!r} as long as config.yaml's "
        "terraform section names it; remove it there to stop"
    )


def _configured(asked: str) -> tuple[str | None, HostEntry | None]:
    from vault.fs.paths import resolve
    from vault.policy.config import load
    from vault.util.hosts import service_host

    host = service_host(asked)
    if host is None:
        return None, None
    return host, load(resolve()).terraform.get(host)


def _drain() -> None:
    from vault.cli.helpers.boundary import read_stdin

    read_stdin(0)


def entry() -> None:
    """The console script."""
    from vault.cli.helpers.boundary import entry as _entry

    _entry(main, prog=PROG, errors="stderr")
