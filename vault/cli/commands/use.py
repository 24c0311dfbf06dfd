"""Using tokens without seeing them: `vault exec` and `vault api` (the git credential helper
is vault.cli.commands.git). Each obeys policy (age, scopes), refreshes first where needed, and
writes a `used` audit event (fsynced) before the token leaves the process."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.parse

from vault.cli.app import App
from vault.errors import EXIT_NETWORK, AuthError, UsageError
from vault.login.http import check_url, host_of, parse_header_arg
from vault.store.model import TokenRecord
from vault.util.text import clean, escape_unsafe

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
API_DEADLINE = 120.0  # `vault api`: one request, connect to last byte, at most this long


def cmd_exec(app: App, ns: argparse.Namespace) -> int:
    """Replace this process with CMD, the token in its environment (never in its argv): NAME's
    (no NAME: the default token) in --env VAR, else in its provider's conventional variable
    (:func:`token_variable`)."""
    cmd = list(ns.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no command to run", hint="vault exec NAME -- CMD [ARGS...]")
    if ns.env is not None and not _ENV_NAME.fullmatch(ns.env):
        raise UsageError(f"--env {clean(ns.env, 60)!r} is not an environment variable name")
    if ns.env_file:
        if ns.name is None and ns.env is not None:
            raise UsageError("--env names the variable for NAME's token; give NAME too")
        from vault.cli.commands.inject import exec_with_env_files

        return exec_with_env_files(app, ns, cmd)
    from vault.tokens.default import resolve

    name = resolve(app.store, ns.name)  # no NAME: the default token
    import shutil

    program = shutil.which(cmd[0])
    if program is None:
        app.say(f"vault: error: command not found: {clean(cmd[0], 200)}")
        return 127
    chosen: list[str] = []

    def command(stored: TokenRecord) -> str:
        """The variable, decided on the record used, before the token leaves the vault."""
        chosen.append(token_variable(stored, ns.env))
        return f"exec {os.path.basename(program)}"

    try:
        record = app.use_token(name, min_valid=ns.min_valid, command=command)
    except AuthError as exc:
        raise _with_min_valid(app, name, ns.min_valid, exc) from None
    env = dict(os.environ)
    env[chosen[-1]] = record.access_token.reveal()
    return run_program(app, program, cmd, env)


def _with_min_valid(app: App, name: str, min_valid: int, exc: AuthError) -> AuthError:
    """An "expired" refusal of `vault exec`, saying what --min-valid asked when the token had
    time left (less than asked, and no refresh token to get more); any other error as it is."""
    if exc.code != "expired":
        return exc
    snapshot = app.store.read()
    record = snapshot.get(name) if snapshot else None
    left = None if record is None or record.expires_at is None else record.expires_at - time.time()
    if left is None or left <= 0:
        return exc
    return AuthError(
        f"{exc.message}: it has {int(left)} s left, under the {min_valid} s vault exec asks for "
        f"(--min-valid, default {MIN_VALID_DEFAULT})",
        hint=f"{exc.hint}; or --min-valid 0 to use it for the time it has left"
        if exc.hint
        else "--min-valid 0 uses it for the time it has left",
        code=exc.code,
    )


MIN_VALID_DEFAULT = 60  # vault exec's --min-valid (vault.cli.parser)


# The variable each provider's own command-line tool reads its token from (gh, glab). Not
# VAULT_TOKEN: that is HashiCorp Vault's variable, and HashiCorp tooling in the child (vault,
# terraform's vault provider, consul-template, envconsul) would send the OAuth token to
# VAULT_ADDR as a Vault token.
CONVENTIONAL = {"github": "GH_TOKEN", "gitlab": "GITLAB_TOKEN"}
GITHUB_ENTERPRISE = "GH_ENTERPRISE_TOKEN"  # gh reads it for a host other than github.com


def token_variable(record: TokenRecord, env: str | None) -> str:
    """The variable a token goes into: ``env`` (--env) when given, else its provider's
    conventional one (CONVENTIONAL; GH_ENTERPRISE_TOKEN for a GitHub preset on another host,
    as gh reads it). A provider without one (microsoft, google, any OIDC provider) needs --env:
    a UsageError (exit 2) naming it."""
    if env is not None:
        return env
    preset = record.identity().preset
    variable = CONVENTIONAL.get(preset)
    if variable is None:
        raise UsageError(
            f"{record.name!r} is a token of {clean(record.provider, 60)} ({preset}), which has "
            "no conventional environment variable: name one with --env",
            hint=f"vault exec {record.name} --env VAR -- CMD",
        )
    if preset == "github" and host_of(record.issuer).lower() != "github.com":
        return GITHUB_ENTERPRISE
    return variable


def run_program(app: App, program: str, cmd: list[str], env: dict[str, str]) -> int:
    """Replace this process with ``program`` (argv ``cmd``, environment ``env``); 126 where it
    cannot be run (only then does this return)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(program, cmd, env)  # noqa: S606 (the person's own command, by design)
    except OSError as exc:
        app.say(f"vault: error: cannot run {clean(cmd[0], 200)}: {exc.strerror}")
        return 126
    return 0  # not reached


def _api_url(record: TokenRecord, target: str) -> str:
    base = record.extra.get("api_base")
    if target.startswith(("https://", "http://")):
        return check_url(target, what="the URL", error=UsageError)
    if not isinstance(base, str):
        raise UsageError(
            f"the provider of {record.name!r} has no API base; give a full URL",
            hint="set api_base for the provider in config.yaml",
        )
    return base.rstrip("/") + "/" + target.lstrip("/")


def _allowed_hosts(record: TokenRecord, extra: list[str]) -> set[str]:
    hosts = {host_of(record.issuer).lower()}
    for key in ("api_base", "userinfo_endpoint", "token_endpoint"):
        value = record.extra.get(key)
        if isinstance(value, str):
            hosts.add(host_of(value).lower())
    hosts.update(h.lower() for h in extra)
    return hosts


def cmd_api(app: App, ns: argparse.Namespace) -> int:
    import httpx

    from vault.login.http import MAX_BODY, client
    from vault.tokens.default import resolve

    name = resolve(app.store, ns.name)  # no NAME: the default token
    headers: dict[str, str] = {}
    for raw in ns.header:
        key, value = parse_header_arg(raw)  # refuses Host, Forwarded, Authorization, Proxy-*...
        headers[key] = value
    body: bytes | None = None
    if ns.data is not None:
        body = _read_data(ns.data)
        if "content-type" not in {k.lower() for k in headers}:
            try:
                json.loads(body)
                headers["Content-Type"] = "application/json"
            except ValueError:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
    method = (ns.method or ("POST" if body is not None else "GET")).upper()
    target: list[str] = []

    def host_allowed(stored: TokenRecord) -> str:
        """Resolve the URL and check its host before the token is refreshed or used."""
        url = _api_url(stored, ns.target)
        host = host_of(url).lower()
        allowed = _allowed_hosts(stored, ns.allow_host)
        if host not in allowed:
            raise UsageError(
                f"refusing to send the {name!r} token to {clean(host, 100)}: it is not the "
                f"provider's API ({', '.join(sorted(allowed))})",
                hint=f"pass --allow-host {clean(host, 100)} if you really mean it",
            )
        target.append(url)
        return f"api {method} {host}{urllib.parse.urlsplit(url).path}"

    record = app.use_token(name, min_valid=ns.min_valid, command=host_allowed)
    url = target[-1]  # as the last check of the record (a refresh checks it again) resolved it
    host = host_of(url).lower()
    path = urllib.parse.urlsplit(url).path
    headers["Authorization"] = f"Bearer {record.access_token.reveal()}"
    with client(API_DEADLINE) as http:
        try:
            with http.stream(method, url, headers=headers, content=body) as resp:
                data = b""
                for chunk in resp.iter_bytes():
                    data += chunk
                    if len(data) > 64 * MAX_BODY:
                        raise UsageError("the response is over 64 MiB; refused")
                status = resp.status_code
                ctype = resp.headers.get("content-type", "")
        except httpx.TransportError as exc:
            from vault.errors import NetworkError

            raise NetworkError(f"cannot reach {host}: {type(exc).__name__}") from None
    _write_body(data, ctype, error=status >= 400)
    if status >= 400:
        app.say(f"vault: HTTP {status} from {host}{clean(path, 200)}")
        return EXIT_NETWORK
    return 0


def _read_data(spec: str) -> bytes:
    if spec == "@-":
        return sys.stdin.buffer.read(64 * 1024 * 1024)
    if spec.startswith("@"):
        try:
            with open(spec[1:], "rb") as fh:
                return fh.read(64 * 1024 * 1024)
        except OSError as exc:
            raise UsageError(f"cannot read {clean(spec[1:], 200)}: {exc.strerror}") from None
    return spec.encode()


def _write_body(data: bytes, ctype: str, *, error: bool = False) -> None:
    if sys.stdout.isatty() and "json" in ctype:
        try:
            # Readable (not ASCII-escaped), but every character of the one unsafe table
            # (controls, C1, bidi, invisible, tag characters) stays an escape, never raw.
            pretty = json.dumps(json.loads(data), indent=2, ensure_ascii=False)
            sys.stdout.write(escape_unsafe(pretty) + "\n")
            return
        except ValueError:
            pass
    if sys.stdout.isatty():
        sys.stdout.write(clean(data.decode("utf-8", errors="replace"), 10**8) + "\n")
        return
    sys.stdout.buffer.write(data)
    if error and data and not data.endswith(b"\n"):
        # An error body is for the person (or log) reading it: the shell prompt, or the
        # "vault: HTTP ..." line on stderr, starts on a line of its own. A successful body is
        # data, passed on byte for byte (a script may hash or parse it).
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
