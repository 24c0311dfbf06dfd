"""`docker-credential-vault`: docker's credential helper protocol (docker, skopeo, podman,
buildah, crane...), for the registries config.yaml's `registries` section names.

    docker-credential-vault get      server URL on stdin -> {"ServerURL", "Username", "Secret"}
    docker-credential-vault list     -> {"<host>": "<username>"} for the configured hosts
    docker-credential-vault store    {"ServerURL", "Username", "Secret"} on stdin: nothing is
                                     stored; accepted for a configured host, refused otherwise
    docker-credential-vault erase    server URL on stdin: refused for a configured host (the
                                     vault keeps serving it), "not found" otherwise
    docker-credential-vault version

As docker-credential-helpers' own helpers do: a host the section does not name prints
`credentials not found in native keychain` and exits 1 (the client then goes on without
credentials), and every other failure is one line on stdout (where the client reads it) with
vault's exit code. Nothing here asks anyone anything: no prompt, no login.

`get` is the start-up path (the client runs it before each of its commands): through the
agent it imports nothing heavy; without one it opens the store in this process.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from vault.policy.config import Config

PROG = "docker-credential-vault"
NOT_FOUND = "credentials not found in native keychain"  # the words clients look for
USAGE = f"Usage: {PROG} <store|get|erase|list|version>"
MIN_VALID = 60  # a token handed to a registry client lasts at least this long


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        _out(USAGE)
        return 1
    action = argv[0]
    if action in ("--help", "-h"):
        _out(USAGE)
        return 0
    if action in ("version", "--version", "-v"):
        from vault import __version__

        _out(f"{PROG} (vault) {__version__}")
        return 0
    if action == "get":
        return get()
    if action == "list":
        return list_hosts()
    if action == "store":
        return store()
    if action == "erase":
        return erase()
    from vault.cli.helpers.boundary import one_line

    _out(one_line(f"{PROG}: unknown action: {action}"))
    return 1


def get() -> int:
    """The credentials for the server URL on stdin, or NOT_FOUND (exit 1)."""
    from vault.cli.helpers.boundary import read_stdin
    from vault.cli.serve import for_host
    from vault.util.hosts import registry_host
    from vault.util.peer import calling_tool

    asked, over = _server_url(read_stdin())
    host = None if over or asked is None else registry_host(asked)
    if asked is None or host is None:
        return _not_found()
    got = for_host(
        "registries",
        host,
        min_valid=MIN_VALID,
        command=f"docker-credential {host} ({calling_tool()})",
    )
    if got is None:
        return _not_found()
    from vault.keys.agent import dumps

    answer = {"ServerURL": asked, "Username": got.username or "", "Secret": got.token.reveal()}
    sys.stdout.write(dumps(answer).decode("ascii") + "\n")
    return 0


def list_hosts() -> int:
    """``{"<host>": "<username>"}`` for every host of the section (config.yaml only: the
    vault is not opened)."""
    import json

    config = _config()
    listed = {host: entry.username or "" for host, entry in sorted(config.registries.items())}
    sys.stdout.write(json.dumps(listed) + "\n")
    return 0


def store() -> int:
    """`docker login`: vault keeps no password. For a host the section names, nothing to do
    (docker stores what it just read from `get` after each `docker login HOST`): exit 0, and
    the vault token goes on serving it. Any other host: refused, so docker says it could not
    save the credentials."""
    import json

    from vault.cli.helpers.boundary import read_stdin
    from vault.errors import UsageError
    from vault.util.hosts import registry_host

    data, over = read_stdin()
    try:
        creds = json.loads(data.decode("utf-8")) if not over else None
    except (UnicodeDecodeError, ValueError):
        creds = None
    url = creds.get("ServerURL") if isinstance(creds, dict) else None
    if not isinstance(url, str):
        raise UsageError("store: stdin is not docker's credentials JSON with a ServerURL")
    host = registry_host(url)
    entry = None if host is None else _config().registries.get(host)
    if host is None or entry is None:
        raise UsageError(
            f"vault stores no registry password; to have it serve {host or 'a registry'}, "
            "name the host and a stored token in config.yaml's registries section"
        )
    sys.stderr.write(
        f"{PROG}: {host} is served by the vault token {entry.token!r}; nothing stored\n"
    )
    return 0


def erase() -> int:
    """`docker logout`: nothing is stored to erase. A host the section names is refused (the
    vault goes on serving it: docker warns that the credentials could not be erased); any
    other host is NOT_FOUND."""
    from vault.cli.helpers.boundary import read_stdin
    from vault.errors import UsageError
    from vault.util.hosts import registry_host

    asked, over = _server_url(read_stdin())
    host = None if over or asked is None else registry_host(asked)
    entry = None if host is None else _config().registries.get(host)
    if host is None or entry is None:
        return _not_found()
    raise UsageError(
        f"{host} is served by the vault token {entry.token!r} as long as config.yaml's "
        f"registries section names it; remove it there to stop"
    )


def _server_url(read: tuple[bytes, bool]) -> tuple[str | None, bool]:
    """The server URL (ASCII, trimmed as docker trims it), or None for anything else."""
    data, over = read
    try:
        text = data.decode("ascii").strip(" \t\r\n")
    except UnicodeDecodeError:
        return None, over
    return (text or None), over


def _config() -> Config:
    """config.yaml, as `vault` reads it (the vault itself is not opened)."""
    from vault.fs.paths import resolve
    from vault.policy.config import load

    return load(resolve())


def _not_found() -> int:
    _out(NOT_FOUND)
    return 1


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def entry() -> None:
    """The console script."""
    from vault.cli.helpers.boundary import entry as _entry

    _entry(main, prog=PROG, errors="stdout")
