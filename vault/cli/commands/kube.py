"""`vault kube NAME [--id-token]`: a Kubernetes client-go exec credential plugin.

kubectl (and every client-go program) runs it for each of its commands that needs credentials,
with ``KUBERNETES_EXEC_INFO`` in its environment, and reads one ``ExecCredential`` from its
stdout: ``{"apiVersion", "kind": "ExecCredential", "status": {"token",
"expirationTimestamp"}}``, in the apiVersion it asked in (client.authentication.k8s.io/v1 or
v1beta1). The token is the access token, or with ``--id-token`` the OpenID Connect ID token
(what the API server's OIDC authenticator checks), each with its own expiry.

It never starts a login and never asks anything unless the calling tool says a person is there
(``spec.interactive``): a token that needs a login is exit 4 with one line on stderr naming the
`vault login` to run, and nothing on stdout. `vault kube setup` (vault.cli.commands.kube_setup)
writes the kubeconfig entry that runs it.

The agent's path (``served``) imports next to nothing: the request is parsed with the agent
protocol's C-codec JSON (vault.keys.agent), and the store, policy and audit are the agent's.
"""

from __future__ import annotations

import os
import sys

from vault.errors import EXIT_AUTH, UsageError, VaultError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse

    from vault.cli.app import App
    from vault.cli.serve import Handed

API_V1 = "client.authentication.k8s.io/v1"
API_V1BETA1 = "client.authentication.k8s.io/v1beta1"
API_VERSIONS = (API_V1, API_V1BETA1)
EXEC_INFO = "KUBERNETES_EXEC_INFO"
# client-go sends a few hundred bytes (with provideClusterInfo, the cluster's CA bundle too):
# anything past this is not a request from a Kubernetes client (and the kernel takes no
# environment string over 128 KiB).
EXEC_INFO_LIMIT = 64 * 1024
# A token handed to kubectl is good for at least this long (kubectl keeps it until its
# expirationTimestamp, for every request of a command that may run for a while).
DEFAULT_MIN_VALID = 60
SUBCOMMANDS = ("setup",)  # words `vault kube` reads as its own, never as a token's name
# The refusals that a new `vault login` cures (vault.tokens.use, vault.tokens.lifecycle).
LOGIN_CODES = frozenset(
    {"unknown_name", "needs_login", "invalid_grant", "expired", "no_id_token", "revoke_pending"}
)


class ExecInfo:
    """What the calling Kubernetes client asked: the ExecCredential apiVersion to answer in,
    and whether a person is there to answer questions (``spec.interactive``)."""

    __slots__ = ("api_version", "interactive")

    def __init__(self, api_version: str, interactive: bool) -> None:
        self.api_version = api_version
        self.interactive = interactive

    def __repr__(self) -> str:
        return f"ExecInfo({self.api_version!r}, interactive={self.interactive!r})"


def parse_exec_info(value: str | None, *, stdin_is_terminal: bool) -> ExecInfo:
    """``KUBERNETES_EXEC_INFO`` read: an ExecCredential of apiVersion v1 or v1beta1 (UsageError,
    one line, for anything else: over EXEC_INFO_LIMIT, not one JSON object, another kind or
    version, a ``spec`` or ``spec.interactive`` of the wrong type). ``spec.interactive``
    absent is false: nothing interactive unless the client says so. No variable at all (a
    person ran `vault kube` by hand): v1, interactive where stdin is a terminal."""
    if value is None:
        return ExecInfo(API_V1, stdin_is_terminal)
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > EXEC_INFO_LIMIT:
        raise UsageError(f"{EXEC_INFO} is over {EXEC_INFO_LIMIT // 1024} KiB; refused")
    from vault.keys.agent import ProtocolError, loads

    try:
        doc = loads(raw)
    except ProtocolError:
        raise UsageError(f"{EXEC_INFO} is not one JSON object") from None
    api_version = doc.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise UsageError(
            f"{EXEC_INFO} asks for apiVersion {_shown(api_version)}; vault kube answers "
            f"{API_V1} and {API_V1BETA1}"
        )
    if doc.get("kind") != "ExecCredential":
        raise UsageError(f"{EXEC_INFO} is of kind {_shown(doc.get('kind'))}, not ExecCredential")
    spec = doc.get("spec", {})
    if not isinstance(spec, dict):
        raise UsageError(f"{EXEC_INFO}: spec is not an object")
    interactive = spec.get("interactive", False)
    if not isinstance(interactive, bool):
        raise UsageError(f"{EXEC_INFO}: spec.interactive is not true or false")
    return ExecInfo(str(api_version), interactive)


def _shown(value: object) -> str:
    """A value from the request, quoted and cut for an error line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def exec_credential(api_version: str, token: str, expires_at: int | None) -> bytes:
    """The ExecCredential kubectl reads on stdout (no expirationTimestamp for a token that
    never expires: client-go then keeps it for as long as it runs)."""
    from vault.cli.serve import rfc3339
    from vault.keys.agent import dumps

    status: dict[str, str] = {"token": token}
    if expires_at is not None:
        status["expirationTimestamp"] = rfc3339(expires_at)
    return dumps({"apiVersion": api_version, "kind": "ExecCredential", "status": status}) + b"\n"


def login_line(message: str, hint: str | None, name: str) -> str:
    """One line for a token that needs a login: the refusal, and the `vault login` to run
    (as the refusal or its hint names it; for a name nothing is stored under, the provider is
    not known: PROVIDER stands for it)."""
    if "vault login " in message:
        return message
    at = hint.find("vault login ") if hint else -1
    if hint and at >= 0 and "`" not in hint[at:]:
        return f"{message}; run: {hint[at:]}"
    return f"{message}; run: vault login PROVIDER --name {name}"


def for_kubectl(exc: VaultError, name: str, info: ExecInfo) -> VaultError:
    """``exc`` as a Kubernetes client shows it: one line when no person is there (the hint
    folded in; for a token that needs a login, the `vault login` to run). Interactive, the
    same line with a hint on what to do after."""
    code = getattr(exc, "code", None)
    if exc.exit_code == EXIT_AUTH and code in LOGIN_CODES:
        exc.message = login_line(exc.message, exc.hint, name)
        exc.hint = "then run the kubectl command again" if info.interactive else None
    elif not info.interactive and exc.hint:
        exc.message = f"{exc.message} ({exc.hint})"
        exc.hint = None
    return exc


def _write(info: ExecInfo, got: Handed) -> int:
    sys.stdout.flush()
    sys.stdout.buffer.write(exec_credential(info.api_version, got.token.reveal(), got.expires_at))
    sys.stdout.buffer.flush()
    return 0


def _want(ns: argparse.Namespace) -> str:
    return "id_token" if ns.id_token else "access_token"


def _command(ns: argparse.Namespace) -> str:
    """The use, as the audit log names it: `kube kubectl` (the calling tool), once per run."""
    label = getattr(ns, "kube_command", None)
    if label is None:
        from vault.util.peer import calling_tool

        label = ns.kube_command = f"kube {calling_tool()}"
    return str(label)


def _info(ns: argparse.Namespace) -> ExecInfo:
    info = getattr(ns, "exec_info", None)
    if info is None:
        info = ns.exec_info = parse_exec_info(
            os.environ.get(EXEC_INFO), stdin_is_terminal=sys.stdin.isatty()
        )
    return info


def served(ns: argparse.Namespace) -> int | None:
    """Through this vault's agent; None where no unlocked agent serves it (or the command is
    `vault kube setup`, or the request is one cmd_kube refuses in its words)."""
    if ns.name in SUBCOMMANDS or ns.min_valid < 0 or getattr(ns, "passphrase_file", None):
        return None
    info = _info(ns)
    from vault.cli.serve import through_agent

    try:
        got = through_agent(ns.name, min_valid=ns.min_valid, command=_command(ns), want=_want(ns))
    except VaultError as exc:
        raise for_kubectl(exc, ns.name, info) from None
    if got is None:
        return None
    return _write(info, got)


def cmd_kube(app: App, ns: argparse.Namespace) -> int:
    """The plugin in this process (no agent serves the vault), or `vault kube setup`."""
    if ns.name == "setup":
        from vault.cli.commands.kube_setup import cmd_kube_setup

        return cmd_kube_setup(app, ns)
    setup_only = [
        flag
        for flag, given in (
            ("--cluster", ns.cluster is not None),
            ("--user", ns.user is not None),
            ("--write", ns.write),
            ("--kubeconfig", ns.kubeconfig is not None),
        )
        if given
    ]
    if ns.setup_name is not None or setup_only:
        what = setup_only[0] if setup_only else repr(ns.setup_name)[:60]
        raise UsageError(
            f"{what} is for `vault kube setup NAME --cluster C`",
            hint="the plugin is `vault kube NAME [--id-token] [--min-valid SECONDS]`",
        )
    info = _info(ns)
    from vault.cli.serve import in_process
    from vault.util.text import check_name

    try:
        name = check_name(ns.name)
        if ns.min_valid < 0:
            raise UsageError("--min-valid must be zero or more seconds")
        # Nothing is asked on a terminal unless the client says a person is there.
        ns.never_prompt = not info.interactive  # read by App.passphrase, made when first needed
        got = in_process(app, name, min_valid=ns.min_valid, command=_command(ns), want=_want(ns))
    except VaultError as exc:
        raise for_kubectl(exc, ns.name, info) from None
    return _write(info, got)
