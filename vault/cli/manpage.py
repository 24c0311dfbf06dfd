"""vault(1), the man page, generated from the parser and vault.cli.helptext: every command with
its usage, description, options and examples, then exit status, environment and files.

`python -m vault.cli.manpage > vault.1` (`make man`) writes it; the output depends on nothing
but the installed package (no date), so two builds of one version give the same page.
"""

from __future__ import annotations

import argparse
import sys

from vault.cli.helptext import EXIT_CODES, GROUPS, HELP, TOP, path_of, subcommands, walk

ENVIRONMENT = (
    ("VAULT_HOME", "keep config, policies, vault, key file, lock and audit log in this folder"),
    ("XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_STATE_HOME", "the default folders (see FILES)"),
    ("VAULT_KEY_BACKEND", "keyring or passphrase; overrides key_backend in config.yaml"),
    ("VAULT_PASSPHRASE_FILE", "read the passphrase from this 0600 file instead of prompting"),
    ("VAULT_NEW_PASSPHRASE_FILE", "vault rekey --new-passphrase: the new passphrase"),
    ("VAULT_SYSTEM_POLICY_DIR", "system policies (default /etc/vault/policies)"),
    ("VAULT_KEYRING_TIMEOUT", "seconds a keyring call may take before exit 6 (default 10)"),
    ("VAULT_LOCK_TIMEOUT", "seconds to wait for another vault process's lock (default 30)"),
    ("XDG_RUNTIME_DIR", "where the agent's socket folder is (default /run/user/UID)"),
    ("PYTHON_KEYRING_BACKEND", "honoured only if it names an OS keyring"),
    ("AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL", "vault aws: the STS endpoint"),
    ("AWS_REGION, AWS_DEFAULT_REGION", "vault aws: the region of the default STS endpoint"),
    ("KUBERNETES_EXEC_INFO", "vault kube: what kubectl says about the call"),
    ("NO_COLOR", "no colour in what vault prints"),
)

FILES = (
    ("~/.config/vault/config.yaml", "providers and preferences"),
    ("~/.config/vault/policies/*.yaml", "your policies"),
    ("/etc/vault/policies/*.yaml", "system policies (they only tighten)"),
    ("~/.local/share/vault/vault.enc", "the encrypted vault"),
    ("~/.local/share/vault/vault.key", "the wrapped key, for the passphrase backend"),
    ("~/.local/share/vault/vault.names", "token names only, for shell completion"),
    ("~/.local/state/vault/audit.jsonl", "the audit log"),
)


def roff(text: str) -> str:
    """``text`` as roff body text: backslashes and hyphens escaped, and no line starting with
    a control character (. or ')."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    lines = out.split("\n")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in lines)


def _bold(text: str) -> str:
    return f"\\fB{roff(text)}\\fR"


def _italic(text: str) -> str:
    return f"\\fI{roff(text)}\\fR"


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def _option(action: argparse.Action) -> str:
    if not action.option_strings:
        return _italic(str(action.metavar or action.dest))
    shown = []
    for name in action.option_strings:
        if action.nargs == 0:
            shown.append(_bold(name))
        else:
            metavar = action.metavar or action.dest.upper()
            if isinstance(metavar, tuple):
                metavar = " ".join(metavar)
            shown.append(f"{_bold(name)} {_italic(str(metavar))}")
    return ", ".join(shown)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = parser._get_formatter()
    formatter._width = 10_000  # one line each; man fills it
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, "")
    lines = [" ".join(line.split()) for line in formatter.format_help().strip().split("\n")]
    return "\n.br\n".join(roff(line) for line in lines if line)


def _examples(lines: tuple[str, ...]) -> list[str]:
    return [".PP", "Examples:", ".RS 2", ".nf", *(roff(line) for line in lines), ".fi", ".RE"]


def _command(parser: argparse.ArgumentParser) -> list[str]:
    path = path_of(parser)
    entry = HELP.get(path)
    out = [f'.SS "vault {path}"', _usage(parser)]
    if entry and entry.alias_of:
        out += [".PP", roff(f"An alias: the same command as vault {entry.alias_of}.")]
    for paragraph in _paragraphs(entry.description if entry else parser.description or ""):
        out += [".PP", roff(paragraph)]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if action.dest in ("help", "passphrase_file", "verbose", "debug"):
            continue  # on every command: under GLOBAL OPTIONS
        help_text = (action.help or "") % {"default": action.default, "prog": parser.prog}
        out += [".TP", _option(action), roff(help_text)]
    if entry:
        out += _examples(entry.examples)
    return out


def page(parser: argparse.ArgumentParser) -> str:
    """vault(1) in roff (man(7) macros)."""
    from vault import __version__

    commands = subcommands(parser)
    order = [c for _, names in GROUPS for c in names if c in commands]
    order += [c for c in commands if c not in order]
    out = [
        f'.TH VAULT 1 "" "vault {roff(__version__)}" "User Commands"',
        ".ad l",
        ".SH NAME",
        "vault \\- a policy\\-enforcing secure token vault",
        ".SH SYNOPSIS",
        ".B vault",
        ".I COMMAND",
        "[\\fIARGS\\fR...] [\\fIOPTIONS\\fR...]",
        ".br",
        ".B vault help",
        ".I COMMAND",
        ".SH DESCRIPTION",
        roff(TOP.description),
        ".PP",
        "The commands, in the order a person meets them:",
    ]
    for title, names in GROUPS:
        present = [n for n in names if n in commands]
        if present:
            out += [".TP", _bold(title), roff(", ".join(present))]
    out += [".SH COMMANDS"]
    for name in order:
        for each in walk(commands[name]):
            out += _command(each)
    out += [".SH GLOBAL OPTIONS", "Every command takes these."]
    for action in parser._actions:
        if action.dest in ("help", "version", "passphrase_file", "verbose", "debug"):
            out += [".TP", _option(action), roff(action.help or "")]
    out += [".SH EXIT STATUS"]
    for code, meaning in EXIT_CODES:
        out += [".TP", _bold(str(code)), roff(meaning)]
    out += [".SH ENVIRONMENT"]
    for variable, effect in ENVIRONMENT:
        out += [".TP", _bold(variable), roff(effect)]
    out += [
        ".SH FILES",
        roff("With VAULT_HOME set, all of these are in that one folder."),
    ]
    for path, what in FILES:
        out += [".TP", _italic(path), roff(what)]
    out += [".SH EXAMPLES", *_examples(TOP.examples)[2:]]
    out += [
        ".SH SEE ALSO",
        "\\fBgit-credential\\fR(7), \\fBkubectl\\fR(1), \\fBaws\\fR(1)",
        ".PP",
        roff(
            "`vault help COMMAND` prints a command's help; `vault completion SHELL` a "
            "completion script for bash, zsh or fish."
        ),
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    from vault.cli.parser import build_parser

    sys.stdout.write(page(build_parser()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
