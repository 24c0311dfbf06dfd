"""`vault credential-helper --name NAME OPERATION`: git's credential helper protocol
(gitcredentials(7), git-credential(1) "INPUT/OUTPUT FORMAT").

- ``get``: the stored token for an https origin (plain http on loopback only) that is its
  provider's (issuer or API base), nothing for any other: git then asks its other helpers.
  GitHub (its preset, github.com, a GitHub Enterprise host) gets Basic ``x-access-token`` and
  the token as password: GitHub refuses Bearer for git over HTTPS. Any other host, where git
  offers ``capability[]=authtype`` (git 2.46+), gets ``authtype=Bearer`` and the token as a
  pre-encoded ``credential``, marked ``ephemeral``; without that offer, Basic ``oauth2``.
  ``password_expiry_utc`` (git 2.40+; older git ignores attributes it does not know) says when
  the token expires: the token handed out has at least MIN_VALID seconds left.
- ``erase`` (git: the server refused the credential): when the password (or Bearer
  credential) is the token this vault holds for NAME, the record is marked so that its next use
  refreshes it first, and a `rejected` event is audited; anything else is ignored.
- ``store`` does nothing (git hands vault nothing worth keeping), ``capability`` announces
  ``authtype``, any other operation is ignored, as gitcredentials(7) asks of helpers.

Started by git for every command that talks to a remote: through the agent, this module
imports next to nothing (`served`); the store, policy and audit are imported in process only.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse
    from typing import BinaryIO

    from vault.cli.app import App
    from vault.cli.serve import Handed

    Origin = tuple[str, str, int]

# A token with less than this left is refreshed before git gets it: git uses one credential for
# every request of its command (a clone is a few of them), and this covers the time between
# them and a server's clock a little ahead of ours. git itself drops a password once
# password_expiry_utc has passed, so it never sends an expired one.
MIN_VALID = 60

# git-credential(1): "A line, including the trailing newline, may not exceed 65535 bytes".
MAX_LINE = 65535
MAX_INPUT = 1024 * 1024  # all attributes together (wwwauth[] may repeat); more: not from git
MAX_LINES = 1024
# Attributes of which git sends at most one: a second one is not from git, and is ambiguous.
SINGLE = frozenset(
    {"protocol", "host", "path", "username", "password", "credential", "authtype", "ephemeral"}
)
GITHUB_USER = "x-access-token"
OTHER_USER = "oauth2"  # GitLab's (and others') username for an OAuth token over Basic
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_IPV6_CHARS = frozenset("0123456789abcdef:.")


class Attributes:
    """What git said: its single-valued attributes and the capabilities it offered."""

    __slots__ = ("capabilities", "fields")

    def __init__(self, fields: dict[str, str], capabilities: frozenset[str]) -> None:
        self.fields = fields
        self.capabilities = capabilities

    def __repr__(self) -> str:  # never the password
        keys, offered = sorted(self.fields), sorted(self.capabilities)
        return f"Attributes(keys={keys!r}, capabilities={offered!r})"


def read_attributes(stream: BinaryIO) -> Attributes | None:
    """git's attribute lines up to the blank line (or the end), read line by line so that a
    caller that keeps the pipe open is answered. None for anything git does not send: a line
    over 65535 bytes, over MAX_LINES lines or MAX_INPUT bytes, a NUL, a line without "=", a
    second value of a single-valued attribute, ``url`` (git resolves it before any helper
    sees it). Lines end in LF, an LF before which a CR is dropped (as git reads them); other
    bytes are kept as they are (undecodable ones as surrogates)."""
    fields: dict[str, str] = {}
    capabilities: set[str] = set()
    total = 0
    for _ in range(MAX_LINES):
        raw = stream.readline(MAX_LINE + 1)
        total += len(raw)
        if total > MAX_INPUT or (len(raw) > MAX_LINE and not raw.endswith(b"\n")):
            return None
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        if not raw:
            return Attributes(fields, frozenset(capabilities))
        if b"\0" in raw or b"=" not in raw:
            return None
        key, _, value = raw.decode("utf-8", "surrogateescape").partition("=")
        if key == "capability[]":
            capabilities.add(value)
        elif key.endswith("[]"):
            continue  # wwwauth[], state[]: not used here
        elif key == "url" or (key in SINGLE and key in fields):
            return None
        else:
            fields[key] = value
    return None


def _stdin_attributes() -> Attributes | None:
    stream = getattr(sys.stdin, "buffer", None)  # None: started with stdin closed
    return None if stream is None else read_attributes(stream)


def credential_origin(protocol: str, host: str) -> Origin | None:
    """The origin git asks about (``protocol`` and ``host[:port]``), as
    vault.login.http.origin gives it (lower case, the scheme's default port filled in), or
    None when vault never answers for it: anything but https, plain http off loopback, a host
    that is not plain ASCII letters, digits, dots and hyphens (or a bracketed IPv6 address),
    a port that is not 1-65535 in ASCII digits. So a path, userinfo, a query, spaces, controls
    and anything else a URL could hide in a host are refused."""
    if protocol not in ("https", "http") or not host or len(host) > 300 or not host.isascii():
        return None
    text = host.lower()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or not name or not set(name) <= _IPV6_CHARS or ":" not in name:
            return None
    else:
        name, colon, port_text = text.partition(":")
        rest = colon + port_text
        if not name or not set(name) <= _HOST_CHARS:
            return None
    if rest:
        digits = rest[1:]
        if not rest.startswith(":") or not digits.isdigit() or len(digits) > 5:
            return None
        port = int(digits)
        if not 0 < port < 65536:
            return None
    else:
        port = 443 if protocol == "https" else 80
    if protocol == "http" and not _loopback(name):
        return None
    return protocol, name, port


def _loopback(name: str) -> bool:
    """localhost, 127.0.0.0/8 as a plain dotted quad, or ::1 (as the ipaddress module reads
    them, without importing it for the common case)."""
    if name == "localhost":
        return True
    if ":" in name:
        import ipaddress

        try:
            return ipaddress.IPv6Address(name).is_loopback
        except ValueError:
            return False
    parts = name.split(".")
    if len(parts) != 4 or parts[0] != "127":
        return False
    return all(p.isdigit() and len(p) <= 3 and str(int(p)) == p and int(p) < 256 for p in parts)


def _command(host: str) -> str:
    """The use, as the audit log names it: the host git asked about and the program that ran
    the helper (git, git-remote-https...)."""
    from vault.util.peer import calling_tool

    return f"git-credential {host.lower()[:150]} ({calling_tool()})"


def answer(got: Handed, asked: Origin, capabilities: frozenset[str]) -> str:
    """The attribute lines of a `get` answer: Bearer where git offered the authtype
    capability and the host is not GitHub's, else Basic; the expiry when the token has one.
    Only what git offered: authtype, credential and ephemeral never without the capability."""
    token = got.token.reveal()
    if any(c in token for c in "\n\r\0"):
        from vault.errors import IntegrityError

        raise IntegrityError(
            "the stored token holds a line break or a NUL: it is not handed to git",
            hint="log in again for a new token",
        )
    github = got.is_github or asked[1] == "github.com"
    if "authtype" in capabilities and not github:
        lines = [
            "capability[]=authtype",
            "authtype=Bearer",
            f"credential={token}",
            "ephemeral=true",
        ]
    else:
        lines = [f"username={GITHUB_USER if github else OTHER_USER}", f"password={token}"]
    if got.expires_at is not None:
        lines.append(f"password_expiry_utc={got.expires_at}")
    return "\n".join(lines) + "\n"


def served(ns: argparse.Namespace) -> int | None:
    """Through this vault's agent: reads git's attributes (kept on ``ns`` for
    cmd_credential_helper), and answers everything that needs no store here: None where the
    handler is to run in process (no unlocked agent for a `get`; every `erase`)."""
    attributes = _stdin_attributes()
    ns.git_attributes = attributes
    operation = ns.operation
    if operation == "capability":
        sys.stdout.write("version 0\ncapability authtype\n")
        return 0
    if attributes is None or operation not in ("get", "erase"):
        return 0
    fields = attributes.fields
    asked = credential_origin(fields.get("protocol", ""), fields.get("host", ""))
    if asked is None:
        return 0  # not an origin vault ever answers for: say nothing, do nothing
    if operation == "erase" or getattr(ns, "passphrase_file", None) is not None:
        return None
    from vault.cli.serve import through_agent
    from vault.keys.agent import AgentError

    try:
        got = through_agent(
            ns.name, min_valid=MIN_VALID, command=_command(fields["host"]), origin=asked
        )
    except AgentError as exc:
        if exc.code in ("elsewhere", "unknown_name"):
            return 0  # say nothing: git asks its other helpers
        raise
    if got is None:
        return None
    sys.stdout.write(answer(got, asked, attributes.capabilities))
    return 0


def cmd_credential_helper(app: App, ns: argparse.Namespace) -> int:
    """In process (no unlocked agent, an `erase`, or a command line the hand parser left to
    argparse): the same answers as `served`, by this process's own store. Never a prompt:
    git runs helpers whether or not a person is there (a passphrase vault needs its file or
    the agent: exit 6 otherwise)."""
    from vault.errors import NotFoundError
    from vault.util.text import check_name

    ns.never_prompt = True  # read by App.passphrase, made only when the store is first opened

    if hasattr(ns, "git_attributes"):
        attributes: Attributes | None = ns.git_attributes
    else:
        attributes = _stdin_attributes()
    if ns.operation == "capability":
        sys.stdout.write("version 0\ncapability authtype\n")
        return 0
    if attributes is None or ns.operation not in ("get", "erase"):
        return 0
    fields = attributes.fields
    asked = credential_origin(fields.get("protocol", ""), fields.get("host", ""))
    if asked is None:
        return 0
    name = check_name(ns.name)
    command = _command(fields["host"])
    if ns.operation == "erase":
        return _erase(app, name, attributes, asked, command)

    from vault.cli.serve import in_process
    from vault.tokens.use import ElsewhereError

    try:
        got = in_process(app, name, min_valid=MIN_VALID, command=command, origin=asked)
    except (ElsewhereError, NotFoundError):
        return 0  # say nothing: git asks its other helpers
    sys.stdout.write(answer(got, asked, attributes.capabilities))
    return 0


def _erase(app: App, name: str, attributes: Attributes, asked: Origin, command: str) -> int:
    """git's `erase`: the secret it sends back is the one a server refused (the Bearer
    ``credential`` where git used one, else the password)."""
    from vault.secret import Secret
    from vault.tokens.reject import mark_rejected

    fields = attributes.fields
    presented = fields.get("credential") if "credential" in fields else fields.get("password")
    if not presented:
        return 0
    mark_rejected(app.store, name, Secret(presented), origin=asked, command=command)
    return 0
