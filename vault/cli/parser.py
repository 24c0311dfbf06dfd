"""The argparse command line: every command and option, with help; handlers named, not imported."""

from __future__ import annotations

import argparse
from typing import NoReturn

from vault.errors import UsageError

COMMANDS = "vault.cli.commands"  # handlers are named MODULE:FUNCTION in this package


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}", hint=f"see `{self.prog} --help`")


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("global options")
    g.add_argument(
        "--passphrase-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="read the vault passphrase from PATH (a 0600 file), for the passphrase backend",
    )
    g.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="log more (to stderr)"
    )
    g.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log everything, HTTP included, redacted (to stderr)",
    )


def _view(p: argparse.ArgumentParser, *, times: bool = True) -> None:
    """--wide (and --absolute) for a command whose tables a person reads."""
    p.add_argument(
        "--wide",
        action="store_true",
        help="every column, nothing cut or wrapped (tables otherwise fit the terminal, 80 "
        "columns when not on one)",
    )
    if times:
        p.add_argument(
            "--absolute",
            action="store_true",
            help="times as RFC 3339 (UTC) instead of relative to now (`in 7 min`, `2 h ago`)",
        )


def build_parser() -> argparse.ArgumentParser:
    from vault import __version__

    parser = _Parser(
        prog="vault",
        description="A policy-enforcing secure token vault.",
        epilog="Exit codes: 0 ok, 1 internal error, 2 usage, 3 config/policy invalid, "
        "4 authentication, 5 refused by policy, 6 vault/key/audit integrity, 7 network, "
        "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"vault {__version__}")
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, handler: str, help_text: str) -> argparse.ArgumentParser:
        """A subcommand whose handler is ``MODULE:FUNCTION`` in vault.cli.commands."""
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        p.set_defaults(handler=f"{COMMANDS}.{handler}")
        return p

    p = add("token", "token:cmd_token", "print a stored access token")
    p.add_argument("name", nargs="?", help="the token (default: the default token, see switch)")
    p.add_argument(
        "--min-valid",
        type=int,
        default=0,
        metavar="SECONDS",
        help="refresh first if the token expires within SECONDS",
    )

    p = add("import", "store:cmd_import", "store a token read from standard input")
    p.add_argument("name")
    p.add_argument("--provider", required=True, help="provider preset or name from config.yaml")
    p.add_argument("--scope", action="append", default=[], metavar="S", help="granted scope")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--expires-in", type=int, metavar="SECONDS", help="the token expires SECONDS from now"
    )
    when.add_argument("--expires-at", metavar="TIME", help="RFC 3339 time")
    p.add_argument("--force", action="store_true", help="replace a token of the same name")

    p = add("list", "store:cmd_list", "list stored tokens (never a secret)")
    p.add_argument("--json", action="store_true")
    _view(p)

    p = add("status", "store:cmd_status", "the vault, or one token, in detail")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--verify", action="store_true", help="ask GitHub for the token's live scopes (drift)"
    )
    _view(p)

    for name in ("logout", "revoke"):
        p = add(name, "store:cmd_logout", "revoke a token where possible, delete it")
        p.add_argument("name", nargs="?", help="the token (default: the default token)")
        p.add_argument(
            "--force", action="store_true", help="delete locally even if revocation fails"
        )
        p.add_argument("--json", action="store_true")

    p = add("refresh", "store:cmd_refresh", "refresh a token now")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")

    p = add("login", "login:cmd_login", "log in (in a browser, or with the device flow)")
    p.add_argument("provider", nargs="?", help="provider preset or name from config.yaml")
    p.add_argument("--name", help="store the token under NAME (default: the provider's name)")
    p.add_argument("--scope", action="append", default=[], metavar="S", help="scope to request")
    p.add_argument("--issuer", metavar="URL", help="an ad-hoc OIDC issuer (with --client-id)")
    p.add_argument("--client-id", metavar="ID", help="the OAuth client ID (with --issuer)")
    p.add_argument("--no-browser", action="store_true", help="never offer to open a browser")
    p.add_argument(
        "--clipboard",
        action="store_true",
        help="copy the code to the clipboard (wl-copy, xclip, xsel, pbcopy or clip.exe)",
    )
    p.add_argument("--json", action="store_true", help="JSON lines on stdout")
    grant = p.add_mutually_exclusive_group()
    grant.add_argument(
        "--web", action="store_true", help="authorization code with PKCE, through a browser"
    )
    grant.add_argument("--device", action="store_true", help="the device flow (a code to enter)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="web login: how long to wait for the browser (default 300, at most 1800)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace a stored token, revoking its grant"
    )

    p = add("prune", "prune:cmd_prune", "expire and revoke what policy no longer allows")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--install-schedule",
        action="store_true",
        help="install an hourly systemd user timer (or print a crontab line)",
    )
    p.add_argument("--cron", action="store_true", help="with --install-schedule: print cron line")

    p = add("exec", "use:cmd_exec", "run a command with the token in its environment")
    p.add_argument("name", nargs="?", help="the token (optional with --env-file)")
    p.add_argument(
        "--env",
        default=None,
        metavar="VAR",
        help="the variable for the token (default: the provider's own, GH_TOKEN for GitHub, "
        "GITLAB_TOKEN for GitLab; other providers need --env)",
    )
    p.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="KEY=VALUE lines for CMD's environment, VALUE a literal or vault://NAME[#id_token]; "
        "repeatable, a later file wins",
    )
    p.add_argument(
        "--min-valid",
        type=int,
        default=60,
        metavar="SECONDS",
        help="refresh first if the token expires within SECONDS (default 60)",
    )
    p.epilog = "Usage: vault exec [NAME] [--env VAR] [--env-file FILE]... -- CMD [ARG...]"

    p = add("inject", "inject:cmd_inject", "fill {{ vault://NAME }} placeholders of a template")
    p.add_argument(
        "-i", "--in-file", dest="template", required=True, metavar="TEMPLATE", help="'-': stdin"
    )
    p.add_argument(
        "-o",
        "--out-file",
        dest="output",
        default=None,
        metavar="FILE",
        help="replace FILE (created 0600) instead of writing to stdout",
    )
    p.add_argument(
        "--min-valid",
        type=int,
        default=60,
        metavar="SECONDS",
        help="refresh first if the token expires within SECONDS (default 60)",
    )

    p = add("api", "use:cmd_api", "an authenticated HTTP request, like `gh api`")
    p.add_argument("name", nargs="?", help="the token (default: the default token)")
    p.add_argument(
        "target", metavar="PATH-OR-URL", help="a path under the provider's API, or a full URL"
    )
    p.add_argument(
        "-X", "--method", default=None, help="the HTTP method (default GET, POST with -d)"
    )
    p.add_argument("-d", "--data", default=None, help="body; @FILE reads a file, @- stdin")
    p.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also send the token to HOST (it is refused by default)",
    )
    p.add_argument(
        "--min-valid",
        type=int,
        default=60,
        metavar="SECONDS",
        help="refresh first if the token expires within SECONDS (default 60)",
    )

    p = add(
        "aws",
        "aws:cmd_aws",
        "AWS credential_process: the token's ID token exchanged with STS "
        "AssumeRoleWithWebIdentity (JSON on stdout; messages only to /dev/tty)",
    )
    p.add_argument("name")
    p.add_argument(
        "--role-arn", required=True, metavar="ARN", help="arn:aws:iam::ACCOUNT:role/NAME"
    )
    p.add_argument(
        "--duration",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long the credentials last (900 to 43200; default 3600; policy's "
        "max_token_age may shorten it)",
    )
    p.add_argument(
        "--session-name",
        metavar="NAME",
        help="the role session name (default: the ID token's user, else the token's name)",
    )
    p.add_argument(
        "--region", help="for STS's regional endpoint (default AWS_REGION, AWS_DEFAULT_REGION)"
    )
    p.add_argument(
        "--min-valid",
        type=int,
        default=300,
        metavar="SECONDS",
        help="serve credentials with more than SECONDS left, and send an ID token with more "
        "(refreshed first otherwise); default 300",
    )
    p.epilog = (
        "In ~/.aws/config: credential_process = vault aws NAME --role-arn ARN. Errors go to "
        "/dev/tty (nowhere without a terminal), never to stderr; the exit code says what failed."
    )

    p = add(
        "credential-helper",
        "git:cmd_credential_helper",
        "git credential helper: git config credential.helper '!vault credential-helper --name N'",
    )
    p.add_argument(
        "operation",
        metavar="OPERATION",
        help="get, store, erase or capability, as git gives it (any other: ignored, as git asks)",
    )
    p.add_argument("--name", required=True, help="the stored token to offer")

    p = add("kube", "kube:cmd_kube", "Kubernetes exec credential plugin (ExecCredential on stdout)")
    p.usage = (
        "vault kube NAME [--id-token] [--min-valid SECONDS]\n"
        "       vault kube setup NAME --cluster C [--id-token] [--user U]\n"
        "                        [--write [--kubeconfig FILE]]"
    )
    p.epilog = (
        "kubectl runs `vault kube NAME` from the kubeconfig entry `vault kube setup` prints or "
        "writes. `setup` is always the subcommand: a token named setup cannot be used here."
    )
    p.add_argument("name", metavar="NAME", help="the stored token (or `setup`)")
    p.add_argument("setup_name", nargs="?", metavar="SETUP-NAME", help=argparse.SUPPRESS)
    p.add_argument(
        "--id-token",
        action="store_true",
        help="hand out the OpenID Connect ID token (the API server's OIDC authenticator)",
    )
    p.add_argument(
        "--min-valid",
        type=int,
        default=60,
        metavar="SECONDS",
        help="refresh first if the token expires within SECONDS (default 60)",
    )
    setup = p.add_argument_group("vault kube setup")
    setup.add_argument("--cluster", metavar="C", help="the kubeconfig cluster the user is for")
    setup.add_argument("--user", metavar="U", help="the kubeconfig user (default vault-NAME)")
    setup.add_argument(
        "--write", action="store_true", help="edit the kubeconfig with kubectl instead of printing"
    )
    setup.add_argument("--kubeconfig", metavar="FILE", help="with --write: the file to edit")

    p = add(
        "switch",
        "switch:cmd_switch",
        "choose the default token (used when a command is given no NAME), or show it",
    )
    p.add_argument("name", nargs="?", help="the token to make the default (none: show it)")
    p.add_argument("--unset", action="store_true", help="forget the default")
    p.add_argument("--json", action="store_true")

    p = add(
        "setup-git",
        "setup_git:cmd_setup_git",
        "make git use vault's credential helper for the token's provider host",
    )
    p.add_argument("name", nargs="?", help="the token (default: the default token)")
    p.add_argument("--dry-run", action="store_true", help="print the git commands, run none")

    p = add("rekey", "store:cmd_rekey", "rotate the vault's data key")
    p.add_argument(
        "--new-passphrase",
        action="store_true",
        help="passphrase backend: also change the passphrase (prompted, or "
        "VAULT_NEW_PASSPHRASE_FILE)",
    )
    p.add_argument("--json", action="store_true")

    p = add("agent", "agent:cmd_agent", "a process that holds the vault's key for a while")
    p.add_argument(
        "--install",
        action="store_true",
        help="write a systemd user socket and service (socket activation), or say how to "
        "start the agent from a shell profile",
    )
    agent_sub = p.add_subparsers(dest="agent_command", metavar="ACTION", parser_class=_Parser)
    start = agent_sub.add_parser(
        "start", help="start the agent and unlock it", description="start the agent and unlock it"
    )
    _common(start)
    start.add_argument(
        "--idle",
        metavar="D",
        help="forget the key after D without a request (default 1h; 0: never idle out)",
    )
    start.add_argument(
        "--max-unlocked",
        metavar="D",
        help="forget the key D after unlocking, whatever the use (default 8h; policy may cap it)",
    )
    start.add_argument("--foreground", action="store_true", help="serve in this process")
    start.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    start.add_argument("--secret-fd", type=int, default=None, help=argparse.SUPPRESS)
    _common(agent_sub.add_parser("stop", help="stop the agent (its key is forgotten)"))
    status = agent_sub.add_parser("status", help="whether it runs, is unlocked, and until when")
    _common(status)
    status.add_argument("--json", action="store_true")

    add("lock", "agent:cmd_lock", "make the agent forget the vault's key now")
    add("unlock", "agent:cmd_unlock", "unlock the agent again (keyring, or the passphrase once)")

    audit = sub.add_parser("audit", help="read, verify and report on the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=_Parser)
    audit_sub.required = True

    def audit_cmd(name: str, handler: str, help_text: str) -> argparse.ArgumentParser:
        p = audit_sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        p.set_defaults(handler=f"{COMMANDS}.audit:{handler}")
        return p

    def filters(p: argparse.ArgumentParser) -> None:
        when = "an RFC 3339 time, a date, or a duration back from now (30m, 1h, 7d)"
        p.add_argument("--since", metavar="T", help=when)
        p.add_argument("--until", metavar="T", help=when)
        p.add_argument("--event", metavar="E", help="issued, used, refreshed, revoked, ...")
        p.add_argument("--token", metavar="NAME", help="records of this token")
        p.add_argument("--provider", metavar="P", help="records of this provider")
        p.add_argument("--user", metavar="U", help="records of this user (exactly)")
        p.add_argument("--host", metavar="H", help="records from this host (exactly)")
        p.add_argument(
            "--command", metavar="C", help="records of this command, or of C followed by a space"
        )

    p = audit_cmd("show", "cmd_show", "the audit records, filtered, as a table or JSON lines")
    filters(p)
    p.add_argument(
        "--format",
        choices=("table", "json", "ocsf", "ecs"),
        help="table (default); json: lines exactly as stored; ocsf, ecs: one document a line",
    )
    p.add_argument("--json", action="store_true", help="the same as --format json")
    _view(p)
    p = audit_cmd(
        "verify",
        "cmd_verify",
        "check the log's chain and high-water mark (with the vault), or with --pubkey its "
        "hash chain and signatures alone (without the vault, on any machine)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--pubkey",
        metavar="FILE",
        help="the vault's public key (`vault audit pubkey`): verify without the vault",
    )
    p.add_argument(
        "logs",
        nargs="*",
        metavar="LOG",
        help="with --pubkey: the log files, oldest first (default: this vault's log)",
    )
    p = audit_cmd("pubkey", "cmd_pubkey", "the Ed25519 public key that signs this log (PEM)")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--fingerprint", action="store_true", help="only its SHA256 fingerprint")
    form.add_argument(
        "--openssh", action="store_true", help="as an OpenSSH public key line (ssh-keygen -l)"
    )
    p.add_argument("--json", action="store_true")
    p = audit_cmd("seal", "cmd_seal", "sign the audit chain's head now")
    p.add_argument("--json", action="store_true")
    p = audit_cmd("report", "cmd_report", "per-token summary for auditors")
    filters(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout, one row a token")
    fmt.add_argument("--html", metavar="FILE", help="a self-contained HTML page ('-': stdout)")
    _view(p)
    p = audit_cmd("hash", "cmd_hash", "the fingerprint a token (from stdin) has in this log")
    p = audit_cmd("reset", "cmd_reset", "set a damaged log aside and start a new chain")
    p.add_argument("--reason", required=True, help="why (recorded in the new log)")

    policy = sub.add_parser("policy", help="check or show policies")
    policy_sub = policy.add_subparsers(
        dest="policy_command", metavar="ACTION", parser_class=_Parser
    )
    policy_sub.required = True
    p = policy_sub.add_parser("check", help="validate policy files (default: those in force)")
    _common(p)
    p.set_defaults(handler=f"{COMMANDS}.policy:cmd_policy_check")
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="policy files (default: those in force)"
    )
    p.add_argument("--json", action="store_true")
    p = policy_sub.add_parser("show", help="the effective policy and where each rule came from")
    _common(p)
    p.set_defaults(handler=f"{COMMANDS}.policy:cmd_policy_show")
    p.add_argument(
        "name", nargs="?", metavar="PROVIDER", help="one provider's policy (default: all)"
    )
    p.add_argument("--json", action="store_true")
    _view(p, times=False)

    p = add("doctor", "doctor:cmd_doctor", "check backend, paths, permissions, policies")
    p.add_argument("--json", action="store_true")

    p = add("help", "help:cmd_help", "help on a command")
    p.add_argument(
        "topic", nargs="*", metavar="COMMAND", help="a command, and an action of it (audit show)"
    )
    p = add("completion", "help:cmd_completion", "shell completion script for bash, zsh or fish")
    p.add_argument(
        "shell", choices=("bash", "zsh", "fish"), metavar="SHELL", help="bash, zsh or fish"
    )

    from vault.cli.helptext import decorate

    return decorate(parser)


def parse(argv: list[str]) -> argparse.Namespace:
    # `vault exec NAME [options] -- CMD...`: what follows the first "--" is the command, never
    # parsed as vault's options (argparse mishandles "--" under subcommands).
    tail: list[str] | None = None
    if "--" in argv:
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except UsageError as exc:
        from vault.cli.mistakes import explain

        raise explain(exc, argv, parser) from None
    if ns.command == "exec":
        ns.cmd = tail or []
    elif tail is not None:
        raise UsageError(
            "`--` is only for `vault exec NAME -- CMD...`", hint=f"see `vault {ns.command} --help`"
        )
    return ns
