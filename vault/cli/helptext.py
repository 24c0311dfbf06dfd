"""The words of `vault --help`: every command's description and examples, the order and groups
`vault --help` lists commands in, and the formatter that lays them out.

vault.cli.parser defines what each command accepts; this module only dresses the parser it
builds (``decorate``), so the two change apart. Nothing here is imported on `vault token`'s
path: it is loaded when a parser is built (any command but the FAST ones of vault.cli.run).
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass

WIDTH = 80  # no help line is longer (tests/integration/test_help_golden.py checks it)
EXAMPLE_WIDTH = 68  # nor an example: it fits an 80-column man page, indented (vault.cli.manpage)


@dataclass(frozen=True)
class Help:
    """One command's help: ``summary`` is its line in `vault --help`, ``description`` a few
    sentences (paragraphs split by blank lines), ``examples`` shell lines (a line starting with
    "#" is a comment introducing the next), ``alias_of`` the command it is another name for."""

    summary: str
    description: str
    examples: tuple[str, ...]
    alias_of: str | None = None


# Keyed by the command's words after `vault` ("audit show"). Every command the parser defines
# has an entry (tests/unit/cli/test_helptext.py walks the parser to check).
HELP: dict[str, Help] = {
    "login": Help(
        "log in to a provider and store the token",
        "Log in to PROVIDER (a preset such as github, or a name from config.yaml) and store "
        "the tokens it grants under NAME. Where a browser can be opened here the web flow "
        "(authorization code with PKCE, a loopback redirect) is used, else the device flow: "
        "a URL and a code to enter on any device.\n\n"
        "Policy decides which scopes, grants and providers are allowed; the login is "
        "audited.",
        (
            "vault login github",
            "vault login work --name work-ro --scope openid --scope read:org",
            "# an OIDC issuer not in config.yaml",
            "vault login --issuer https://idp.example.com --client-id cli",
            "# JSON lines on stdout, for a script that shows the code itself",
            "vault login github --no-browser --json",
        ),
    ),
    "import": Help(
        "store a token read from standard input",
        "Store a token you already have (a personal access token) under NAME, read from "
        "standard input so it never appears in argv or the shell's history. It is kept "
        "under the same policies as a token from `vault login`.",
        (
            "vault import ci --provider github --scope repo < token.txt",
            "pass show gh | vault import pat --provider github --expires-in 3600",
        ),
    ),
    "help": Help(
        "help on a command",
        "Show the help of COMMAND (and ACTION, for commands that have actions): the same as "
        "`vault COMMAND [ACTION] --help`. With no command: the list of commands.",
        ("vault help", "vault help exec", "vault help audit show"),
    ),
    "token": Help(
        "print a token, refreshed first if needed",
        "Print NAME's access token on stdout, for scripts. It is refreshed first when it "
        "has expired or expires within --min-valid seconds. Policy is checked and the use is "
        "audited; prefer `vault exec` or `vault api`, which keep the token out of your "
        "shell.",
        (
            "vault token github",
            'curl -H "Authorization: Bearer $(vault token work)" https://x.test/',
            "vault token work --min-valid 300",
        ),
    ),
    "exec": Help(
        "run a command with a token in its environment",
        "Run CMD with NAME's access token in an environment variable (--env VAR), "
        "refreshed first if it expires within --min-valid seconds. Put -- before the "
        "command: everything after it is CMD's, never vault's.\n\n"
        "With --env-file, each KEY=vault://NAME line becomes a variable holding that token.",
        (
            "vault exec github -- gh api /user",
            "vault exec work --env TOKEN -- ./deploy.sh --prod",
            "vault exec --env-file .env -- make release",
        ),
    ),
    "api": Help(
        "an authenticated HTTP request, like gh api",
        "Send an HTTP request with NAME's token as a bearer token and print the answer "
        "body. PATH is relative to the provider's API (https://api.github.com for GitHub); "
        "a full URL works too. The token is only sent to the provider's own host unless "
        "--allow-host names another.",
        (
            "vault api github /user",
            "vault api github /repos/OWNER/REPO/issues -X POST -d @issue.json",
            "vault api work https://api.example.com/v1/me -H 'Accept: text/plain'",
        ),
    ),
    "inject": Help(
        "fill {{ vault://NAME }} placeholders of a template",
        "Read TEMPLATE, replace each {{ vault://NAME }} placeholder (or "
        "{{ vault://NAME#id_token }}) with that token, and write the result to stdout or to "
        "FILE (created 0600, replaced atomically). Every token is resolved before anything "
        "is written; it never prompts.",
        (
            "vault inject -i app.conf.tpl -o app.conf",
            "vault inject -i - < netrc.tpl > ~/.netrc",
        ),
    ),
    "setup-git": Help(
        "make git use vault for a token's host",
        "Configure git's credential helper for the host of NAME's provider, as "
        "`gh auth setup-git` does: earlier helpers for that host only are reset.",
        ("vault setup-git github", "vault setup-git"),
    ),
    "switch": Help(
        "choose the default token",
        "Make NAME the token commands use when they are given no NAME (`vault token`, "
        "`exec`, `api`, `logout`).",
        ("vault switch work", "vault token"),
    ),
    "list": Help(
        "list stored tokens (never a secret)",
        "List the stored tokens: name, provider, account, scopes, expiry and state "
        "(valid, expired, denied by a policy rule, needs login). No secret is printed.",
        ("vault list", "vault list --json | jq -r '.[].name'"),
    ),
    "status": Help(
        "the vault, or one token, in detail",
        "Without NAME: where the vault is, its key backend, the agent and the tokens. With "
        "NAME: that token in detail (account, scopes, issued, expiry, refreshable, which "
        "policy rule applies). No secret is printed.",
        ("vault status", "vault status github --json"),
    ),
    "refresh": Help(
        "refresh a token now",
        "Refresh NAME now with its refresh token, whatever its expiry. A rotated refresh "
        "token is saved before anything else uses it.",
        ("vault refresh work", "vault refresh work --json"),
    ),
    "logout": Help(
        "revoke a token where possible, delete it",
        "Revoke NAME at its provider (RFC 7009) where the provider allows it, then delete it "
        "from the vault. `vault revoke` is the same command. With --force it is deleted even "
        "when the provider cannot be reached.",
        ("vault logout github", "vault logout old --force"),
    ),
    "revoke": Help(
        "the same as logout",
        "The same as `vault logout`: revoke NAME at its provider (RFC 7009) where the "
        "provider allows it, then delete it from the vault.",
        ("vault revoke github", "vault revoke old --force --json"),
        alias_of="logout",
    ),
    "rekey": Help(
        "rotate the vault's data key",
        "Encrypt the vault with a new data key (and, with --new-passphrase, under a new "
        "passphrase). The old key is retired; a running agent forgets it.",
        ("vault rekey", "VAULT_NEW_PASSPHRASE_FILE=new.txt vault rekey --new-passphrase"),
    ),
    "audit": Help(
        "read, verify and report on the audit log",
        "The audit log records every token issued, used, refreshed, revoked or refused, in "
        "a hash chain signed with the vault's Ed25519 key. Its actions read it (show, "
        "report), check it (verify), and sign or restart it (seal, reset).",
        (
            "vault audit show --since 1h",
            "vault audit verify",
            "vault audit report --html report.html",
        ),
    ),
    "audit show": Help(
        "the records, filtered: a table or JSON lines",
        "Print the audit records that match every filter given, oldest first: a table, or "
        "with --format one JSON document a line (json exactly as stored; ocsf and ecs for "
        "a SIEM).",
        (
            "vault audit show --since 1h",
            "vault audit show --token github --event used --since 2026-12-01",
            "vault audit show --format ocsf | nc -q0 siem.example.com 6514",
        ),
    ),
    "audit verify": Help(
        "check the log's chain and signatures",
        "Check the log's hash chain and its high-water mark against the vault (exit 0 "
        "intact, 6 altered, naming the first bad record). With --pubkey, check the chain "
        "and its signatures without the vault, on any machine.",
        (
            "vault audit verify",
            "vault audit verify --pubkey vault.pem audit.jsonl.1 audit.jsonl",
        ),
    ),
    "audit pubkey": Help(
        "the public key that signs the log",
        "Print the Ed25519 public key that signs this vault's chain heads (PEM), or its "
        "fingerprint, for `vault audit verify --pubkey` elsewhere.",
        ("vault audit pubkey > vault.pem", "vault audit pubkey --fingerprint"),
    ),
    "audit seal": Help(
        "sign the chain's head now",
        "Sign the audit chain's current head now (it is also signed as records are "
        "written), so that a copy of the log verifies up to its last record.",
        ("vault audit seal",),
    ),
    "audit report": Help(
        "per-token summary for auditors",
        "Summarise the log per token: issued, used, last use, refreshed, revoked, denials. "
        "The filters of `vault audit show` narrow what is counted.",
        (
            "vault audit report --since 30d",
            "vault audit report --csv > report.csv",
            "vault audit report --html -",
        ),
    ),
    "audit hash": Help(
        "a token's fingerprint in this log",
        "Read a token from standard input and print the fingerprint it has in this vault's "
        "audit records, to find where a leaked token was used.",
        ("vault audit hash < leaked.txt",),
    ),
    "audit reset": Help(
        "set a damaged log aside, start a new chain",
        "Rename a damaged or unverifiable log aside and start a new chain whose first "
        "record says why. Use it only after `vault audit verify` has told you what is "
        "wrong.",
        ('vault audit reset --reason "disk full on 2026-12-01, log truncated"',),
    ),
    "policy": Help(
        "check or show policies",
        "Policies (YAML, in ~/.config/vault/policies and /etc/vault/policies) limit token "
        "age, scopes, providers, key backends and the agent; the strictest rule wins.",
        ("vault policy check", "vault policy show github"),
    ),
    "policy check": Help(
        "validate policy files",
        "Validate FILEs (default: the policies in force). An unknown key, a wrong type or a "
        "bad duration is reported with file, line and key (exit 3).",
        ("vault policy check", "vault policy check new-policy.yaml"),
    ),
    "policy show": Help(
        "the effective policy and where each rule came from",
        "Show the policy in force, for all providers or for PROVIDER, and the file each "
        "rule came from.",
        ("vault policy show", "vault policy show github --json"),
    ),
    "prune": Help(
        "expire and revoke what policy no longer allows",
        "Revoke and delete every token that policy no longer allows (too old, scopes no "
        "longer allowed). Never prompts: safe in cron or a systemd timer.",
        ("vault prune --dry-run", "vault prune --install-schedule"),
    ),
    "doctor": Help(
        "check backend, paths, permissions, policies",
        "Check what vault depends on: the key backend, the paths and their permissions, the "
        "policy files, the agent and whether the providers can be reached.",
        ("vault doctor", "vault doctor --json"),
    ),
    "agent": Help(
        "a process that holds the vault's key for a while",
        "The agent holds the vault's data key in locked memory, so that commands do not ask "
        "the keyring or for a passphrase each time. It forgets the key when idle, after "
        "--max-unlocked, on `vault lock` and when stopped.",
        ("vault agent start --idle 30m", "vault agent status", "vault agent --install"),
    ),
    "agent start": Help(
        "start the agent and unlock it",
        "Start this vault's agent in the background and unlock it (the keyring, or the "
        "passphrase once).",
        ("vault agent start", "vault agent start --idle 15m --max-unlocked 4h"),
    ),
    "agent stop": Help(
        "stop the agent",
        "Stop this vault's agent; the key it held is forgotten.",
        ("vault agent stop",),
    ),
    "agent status": Help(
        "whether it runs, is unlocked, and until when",
        "Say whether this vault's agent runs, whether it is unlocked, and when it will "
        "forget the key.",
        ("vault agent status", "vault agent status --json"),
    ),
    "lock": Help(
        "make the agent forget the key now",
        "Make the agent forget the vault's key now. It keeps running, locked, until "
        "`vault unlock` or `vault agent stop`.",
        ("vault lock",),
    ),
    "unlock": Help(
        "unlock the agent again",
        "Unlock the running agent again, from the keyring or with the passphrase (asked once).",
        ("vault unlock", "vault unlock --passphrase-file ~/.vault-pass"),
    ),
    "credential-helper": Help(
        "git credential helper (git runs it)",
        "The git credential helper protocol: git runs it with get, store, erase or "
        "capability and reads the answer. `vault setup-git` writes the configuration.",
        (
            "git config --global credential.https://github.com.helper \\",
            "    '!vault credential-helper --name github'",
        ),
    ),
    "kube": Help(
        "Kubernetes exec credential plugin",
        "kubectl runs `vault kube NAME` from a kubeconfig user and reads an ExecCredential "
        "on stdout. `vault kube setup NAME --cluster C` prints that kubeconfig entry (or "
        "writes it, with --write).",
        (
            "vault kube setup work --cluster prod --id-token --write",
            "kubectl --user vault-work get pods",
        ),
    ),
    "aws": Help(
        "AWS credential_process via STS",
        "Exchange NAME's ID token for AWS credentials (STS AssumeRoleWithWebIdentity) and "
        "print them as credential_process JSON. The AWS CLI and SDKs run it from "
        "~/.aws/config.",
        (
            "# in ~/.aws/config, under [profile work]:",
            "credential_process=vault aws work --role-arn arn:aws:iam::1:role/dev",
        ),
    ),
    "completion": Help(
        "shell completion script for bash, zsh or fish",
        "Print a completion script for SHELL on stdout: commands, actions, options, token "
        "and provider names (names come from the agent or a names-only index; the vault is "
        "never decrypted to complete).",
        (
            "# bash, in ~/.bashrc",
            'eval "$(vault completion bash)"',
            "# zsh, in ~/.zshrc after compinit",
            'eval "$(vault completion zsh)"',
            "# fish",
            "vault completion fish > ~/.config/fish/completions/vault.fish",
        ),
    ),
}

TOP = Help(
    "",
    "vault keeps OAuth and OIDC tokens encrypted, hands them to programs under policy, "
    "and records every use in a signed audit log.",
    (
        "vault login github",
        "vault exec github -- gh repo list",
        "vault list",
        "vault audit show --since 1h",
    ),
)

# `vault --help` lists commands in these groups, in this order: the order a person meets them.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Start", ("login", "import", "help")),
    ("Use tokens", ("token", "exec", "api", "inject", "setup-git")),
    ("Manage", ("list", "status", "switch", "refresh", "logout", "revoke", "rekey")),
    ("Audit & policy", ("audit", "policy", "prune", "doctor")),
    ("Plumbing", ("agent", "lock", "unlock", "credential-helper", "kube", "aws", "completion")),
)
# Usage lines argparse cannot work out itself (what follows `--`), where vault.cli.parser sets
# none.
USAGE = {
    "exec": "vault exec [NAME] [--env VAR] [--env-file FILE]... [--min-valid SECONDS]\n"
    "                  -- CMD [ARG...]",
}
OTHER = "Other"  # a command not in GROUPS (one added without an entry here) is listed last

# Options left without help= in vault.cli.parser get these, by their option string.
OPTION_HELP = {
    "--json": "print JSON on stdout instead of text",
}
POSITIONAL_HELP = {
    "name": "the token's name, as `vault list` shows it",
}

EXIT_CODES = (
    (0, "success"),
    (1, "internal error (a bug: please report it)"),
    (2, "usage error"),
    (3, "config or policy file invalid"),
    (4, "authentication failed or needed"),
    (5, "refused by policy"),
    (6, "vault, key or audit integrity failure"),
    (7, "network or provider error"),
    (130, "interrupted"),
)


class Formatter(argparse.HelpFormatter):
    """argparse's formatter at no more than `WIDTH` columns, whose descriptions and epilogs
    keep their layout: paragraphs (split by blank lines) are wrapped, and a line that starts
    with a space or ends with ":" is printed as written (examples, headings, lists)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24) -> None:
        import shutil

        width = min(shutil.get_terminal_size().columns, WIDTH) - 2
        super().__init__(prog, indent_increment, max_help_position, max(width, 40))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                words = " ".join(paragraph)
                out.extend(
                    textwrap.wrap(
                        words,
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                    )
                )
                paragraph.clear()

        for line in text.splitlines():
            if not line.strip():
                flush()
                out.append("")
            elif line.startswith(" ") or line.endswith(":"):
                flush()
                out.append(indent + line)
            else:
                paragraph.append(line.strip())
        flush()
        return "\n".join(out)


def path_of(parser: argparse.ArgumentParser) -> str:
    """A parser's command words after `vault` ("audit show"), from its prog."""
    return parser.prog.partition(" ")[2]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name, in the order they were defined (none: empty)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walk(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and every subcommand's parser below it, depth first, in definition order."""
    found = [parser]
    for child in subcommands(parser).values():
        found.extend(walk(child))
    return found


def examples_text(examples: tuple[str, ...]) -> str:
    return "Examples:\n" + "\n".join(f"  {line}" for line in examples)


def decorate(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` (vault.cli.parser's) dressed for people: every command's description and
    examples from `HELP`, options left without help given theirs, the top level's command
    list grouped (`GROUPS`), one formatter for all. Returns ``parser``."""
    for each in walk(parser):
        each.formatter_class = Formatter
        entry = HELP.get(path_of(each)) if each is not parser else TOP
        if entry is None:
            continue
        each.description = entry.description
        if each.usage is None and path_of(each) in USAGE:
            each.usage = USAGE[path_of(each)]
        parts = [each.epilog] if each.epilog else []
        parts.append(examples_text(entry.examples))
        each.epilog = "\n\n".join(parts)
        for action in each._actions:
            if action.help is None:
                if action.option_strings:
                    action.help = next(
                        (OPTION_HELP[o] for o in action.option_strings if o in OPTION_HELP), None
                    )
                else:
                    action.help = POSITIONAL_HELP.get(action.dest)
    _top(parser)
    return parser


def command_list(parser: argparse.ArgumentParser) -> str:
    """The grouped command list of `vault --help` (and a bare `vault`)."""
    commands = subcommands(parser)
    listed: set[str] = set()
    lines: list[str] = []
    groups = [(title, [c for c in names if c in commands]) for title, names in GROUPS]
    groups.append((OTHER, [c for c in commands if not any(c in n for _, n in GROUPS)]))
    for title, names in groups:
        if not names:
            continue
        lines += ["", f"{title}:"]
        for name in names:
            listed.add(name)
            entry = HELP.get(name)
            summary = entry.summary if entry else _parser_help(parser, name)
            lines.append(f"  {name:<18}{summary}"[: WIDTH - 2])
    return "\n".join(lines[1:])


def _parser_help(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return str(choice.help or "")
    return ""


def _top(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.help = argparse.SUPPRESS
    parser.usage = "vault COMMAND [ARGS...] [OPTIONS...]\n       vault help COMMAND"
    parser.description = TOP.description + "\n\n" + command_list(parser)
    codes = "\n".join(f"  {code:<5}{meaning}" for code, meaning in EXIT_CODES)
    parser.epilog = (
        examples_text(TOP.examples)
        + "\n\nRun `vault help COMMAND` for a command's options and examples.\n\n"
        + "Exit codes:\n"
        + codes
    )


def short_help(parser: argparse.ArgumentParser) -> str:
    """What a bare `vault` prints: usage, the command list, where to read more."""
    formatter = Formatter("vault")
    more = (
        "Run `vault help COMMAND` for a command's options and examples, and `vault --help` "
        "for the global options and exit codes."
    )
    fill = formatter._fill_text
    width = formatter._width
    return (
        f"usage: {parser.usage}\n\n{fill(TOP.description, width, '')}\n\n"
        f"{command_list(parser)}\n\n{fill(more, width, '')}\n"
    )
