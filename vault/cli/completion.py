"""Shell completion: `vault completion bash|zsh|fish` writes a script generated from the parser
(commands, actions, options and what each takes), and the hidden `vault __complete
tokens|providers` the scripts run for names.

Names never come from decrypting the vault: token names from this vault's running, unlocked
agent (op ``names``), else from the names-only index beside the vault (vault.store.names);
provider names from config.yaml and the presets. Whatever is printed is first checked to be a
plain name (letters, digits and ``. _ @ + -``), so that no shell reads code out of it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from vault.cli.helptext import HELP, path_of, subcommands, walk

SHELLS = ("bash", "zsh", "fish")

# What an option's value is, for the ones that are not any word: "tokens", "providers",
# "files" (anything else: no completion).
OPTION_KINDS: dict[tuple[str, str], str] = {
    ("*", "--passphrase-file"): "files",
    ("*", "--env-file"): "files",
    ("*", "--in-file"): "files",
    ("*", "--out-file"): "files",
    ("*", "--pubkey"): "files",
    ("*", "--kubeconfig"): "files",
    ("*", "--html"): "files",
    ("*", "--provider"): "providers",
    ("*", "--token"): "tokens",
    ("credential-helper", "--name"): "tokens",
}
# What a positional is, by its dest (and its command where the dest means something else).
POSITIONAL_KINDS: dict[tuple[str, str], str] = {
    ("*", "name"): "tokens",
    ("*", "provider"): "providers",
    ("policy show", "name"): "providers",
    ("login", "name"): "",
    ("*", "files"): "files",
    ("*", "logs"): "files",
    ("*", "topic"): "commands",
}


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]
    help: str
    value: str | None  # None: a flag; else its kind ("" any word, "tokens", "choices a b"...)


@dataclass(frozen=True)
class Node:
    """One command (or action) as completion sees it."""

    path: str
    subs: tuple[tuple[str, str], ...]  # (name, summary)
    options: tuple[Option, ...]
    positionals: tuple[str, ...]  # each one's kind
    repeat: bool  # the last positional takes any number of words


def _kind(table: dict[tuple[str, str], str], path: str, key: str) -> str:
    return table.get((path, key), table.get(("*", key), ""))


def _choices(action: argparse.Action) -> str | None:
    if action.choices is None:
        return None
    return "choices " + " ".join(str(c) for c in action.choices)


def _summary(text: str | None) -> str:
    line = (text or "").split("\n")[0].replace("%%", "%")
    return line if len(line) <= 60 else line[:57] + "..."


def model(parser: argparse.ArgumentParser) -> list[Node]:
    """Every command of ``parser`` (the top level first) as completion sees it."""
    nodes = []
    for each in walk(parser):
        path = path_of(each)
        subs = []
        for name, child in subcommands(each).items():
            entry = HELP.get(path_of(child))
            subs.append((name, _summary(entry.summary if entry else child.description)))
        options, positionals, repeat = [], [], False
        for action in each._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue
            if action.option_strings:
                value = None
                if action.nargs != 0:
                    value = _choices(action) or _kind(
                        OPTION_KINDS, path, max(action.option_strings, key=len)
                    )
                options.append(Option(tuple(action.option_strings), _summary(action.help), value))
            else:
                positionals.append(_choices(action) or _kind(POSITIONAL_KINDS, path, action.dest))
                repeat = action.nargs in ("*", "+")
        nodes.append(Node(path, tuple(subs), tuple(options), tuple(positionals), repeat))
    return nodes


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (one of `SHELLS`)."""
    nodes = model(parser)
    if shell == "bash":
        return _bash(nodes)
    if shell == "zsh":
        return _zsh(nodes)
    return _fish(nodes)


def _sq(text: str) -> str:
    """``text`` in POSIX single quotes."""
    return "'" + text.replace("'", "'\\''") + "'"


def _fish_sq(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- bash --------------------------------------------------------------------------------

_BASH_WALK = r"""
_vault_names() {
    local n
    while IFS= read -r n; do
        [[ $n == "$2"* ]] && COMPREPLY+=("$n")
    done < <("$_vault_cmd" __complete "$1" 2>/dev/null)
}

_vault_fill() {
    local kind=$1 cur=$2 w
    case $kind in
        tokens | providers) _vault_names "$kind" "$cur" ;;
        files)
            compopt -o filenames 2>/dev/null
            while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen -f -- "$cur")
            ;;
        commands) _vault_subs ''; _vault_words "$cur" "${_vault_r[@]}" ;;
        choices\ *) _vault_words "$cur" ${kind#choices } ;;
    esac
}

_vault_words() {
    local cur=$1 w
    shift
    for w in "$@"; do [[ $w == "$cur"* ]] && COMPREPLY+=("$w"); done
}

_vault() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmdpath='' npos=0 dd=0 skip=0 i w kind lastopt=''
    local _vault_cmd=${COMP_WORDS[0]} _vault_k
    local -a _vault_r
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((dd)); then ((dd++)); continue; fi
        if ((skip)); then
            ((skip--))
            [[ $w == = && $skip -eq 0 ]] && skip=1
            continue
        fi
        case $w in
            --) dd=1 ;;
            -*)
                if [[ $w != *=* ]] && _vault_value "$cmdpath" "$w"; then
                    skip=1 lastopt=$w
                    [[ ${COMP_WORDS[i+1]} == = ]] && skip=2
                fi
                ;;
            *)
                _vault_subs "$cmdpath"
                if ((${#_vault_r[@]})) && [[ " ${_vault_r[*]} " == *" $w "* ]]; then
                    cmdpath=${cmdpath:+$cmdpath }$w npos=0
                else
                    ((npos++))
                fi
                ;;
        esac
    done
    if ((dd)); then
        if ((dd == 1)); then
            while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen -c -- "$cur")
        else
            _vault_fill files "$cur"
        fi
        return 0
    fi
    if ((skip)); then
        [[ $cur == = ]] && return 0
        _vault_value "$cmdpath" "$lastopt" && _vault_fill "$_vault_k" "$cur"
        return 0
    fi
    if [[ $cur == -* ]]; then
        _vault_opts "$cmdpath"
        _vault_words "$cur" "${_vault_r[@]}"
        return 0
    fi
    _vault_subs "$cmdpath"
    if ((${#_vault_r[@]})); then
        _vault_words "$cur" "${_vault_r[@]}"
        return 0
    fi
    _vault_pos "$cmdpath" "$npos" && _vault_fill "$_vault_k" "$cur"
    return 0
}

complete -F _vault vault
"""


def _bash(nodes: list[Node]) -> str:
    subs, opts, values, pos = [], [], [], []
    for node in nodes:
        key = _sq(node.path)
        if node.subs:
            subs.append(f"        {key}) _vault_r=({' '.join(n for n, _ in node.subs)}) ;;")
        words = " ".join(n for o in node.options for n in o.names)
        opts.append(f"        {key}) _vault_r=({words}) ;;")
        for o in node.options:
            if o.value is not None:
                pattern = "|".join(_sq(f"{node.path} {n}") for n in o.names)
                values.append(f"        {pattern}) _vault_k={_sq(o.value)} ;;")
        for i, kind in enumerate(node.positionals):
            last = node.repeat and i == len(node.positionals) - 1
            test = f"[[ $1 == {_sq(node.path)} ]] && (($2 {'>=' if last else '=='} {i}))"
            pos.append(f"    if {test}; then _vault_k={_sq(kind)}; return 0; fi")
    return (
        '# vault completion for bash. In ~/.bashrc: eval "$(vault completion bash)"\n'
        "# (generated by `vault completion bash`; regenerate after upgrading vault)\n"
        "_vault_subs() {\n    _vault_r=()\n    case $1 in\n"
        + "\n".join(subs)
        + "\n    esac\n}\n\n_vault_opts() {\n    _vault_r=()\n    case $1 in\n"
        + "\n".join(opts)
        + "\n    esac\n}\n\n"
        "# _vault_value PATH OPTION: true if OPTION takes a value there; its kind in _vault_k\n"
        '_vault_value() {\n    _vault_k=\n    case "$1 $2" in\n'
        + "\n".join(values)
        + "\n        *) return 1 ;;\n    esac\n}\n\n"
        "# _vault_pos PATH N: the kind of the Nth positional word (from 0), in _vault_k\n"
        "_vault_pos() {\n    _vault_k=\n" + "\n".join(pos) + "\n    return 1\n}\n" + _BASH_WALK
    )


# --- zsh ---------------------------------------------------------------------------------

_ZSH_WALK = r"""
_vault_fill() {
    local kind=$1
    local -a names
    case $kind in
        tokens | providers)
            names=(${(f)"$(${words[1]} __complete $kind 2>/dev/null)"})
            compadd -a names
            ;;
        files) _files ;;
        commands) _vault_subs ''; _describe -t commands 'vault command' reply ;;
        choices\ *) names=(${=kind#choices }); compadd -a names ;;
    esac
}

_vault() {
    local cmdpath='' npos=0 dd=0 skip=0 i w lastopt='' kind
    local -a reply
    for ((i = 2; i < CURRENT; i++)); do
        w=${words[i]}
        if ((dd)); then ((dd++)); continue; fi
        if ((skip)); then skip=0; continue; fi
        case $w in
            --) dd=$i ;;
            -*)
                if [[ $w != *=* ]] && _vault_value "$cmdpath" "$w"; then
                    skip=1 lastopt=$w
                fi
                ;;
            *)
                _vault_subs "$cmdpath"
                if ((${#reply})) && ((${reply[(I)${(b)w}:*]})); then
                    cmdpath=${cmdpath:+$cmdpath }$w npos=0
                else
                    ((npos++))
                fi
                ;;
        esac
    done
    if ((dd)); then
        local first=0
        for ((i = 2; i < CURRENT; i++)); do [[ ${words[i]} == -- ]] && { first=$i; break; }; done
        shift $first words
        ((CURRENT -= first))
        _normal
        return
    fi
    if ((skip)); then
        _vault_value "$cmdpath" "$lastopt" && _vault_fill "$REPLY"
        return
    fi
    if [[ ${words[CURRENT]} == -* ]]; then
        _vault_opts "$cmdpath"
        _describe -t options 'option' reply
        return
    fi
    _vault_subs "$cmdpath"
    if ((${#reply})); then
        _describe -t commands 'vault command' reply
        return
    fi
    _vault_pos "$cmdpath" "$npos" && _vault_fill "$REPLY"
}

if (($+functions[compdef])); then
    compdef _vault vault
fi
"""


def _zsh_item(name: str, text: str) -> str:
    return _sq(name.replace(":", "\\:") + ":" + text)


def _zsh(nodes: list[Node]) -> str:
    subs, opts, values, pos = [], [], [], []
    for node in nodes:
        key = _sq(node.path)
        if node.subs:
            items = " ".join(_zsh_item(n, s) for n, s in node.subs)
            subs.append(f"        {key}) reply=({items}) ;;")
        items = " ".join(_zsh_item(n, o.help) for o in node.options for n in o.names)
        opts.append(f"        {key}) reply=({items}) ;;")
        for o in node.options:
            if o.value is not None:
                pattern = "|".join(_sq(f"{node.path} {n}") for n in o.names)
                values.append(f"        {pattern}) REPLY={_sq(o.value)} ;;")
        for i, kind in enumerate(node.positionals):
            last = node.repeat and i == len(node.positionals) - 1
            at = _sq(f"{node.path} ") + ("<" + str(i) + "->" if last else _sq(str(i)))
            pos.append(f"        {at}) REPLY={_sq(kind)} ;;")
    return (
        "#compdef vault\n"
        '# vault completion for zsh. In ~/.zshrc, after compinit: eval "$(vault completion zsh)"\n'
        "# or save it as _vault in a folder of $fpath.\n"
        "_vault_subs() {\n    reply=()\n    case $1 in\n"
        + "\n".join(subs)
        + "\n    esac\n}\n\n_vault_opts() {\n    reply=()\n    case $1 in\n"
        + "\n".join(opts)
        + "\n    esac\n}\n\n"
        '_vault_value() {\n    REPLY=\n    case "$1 $2" in\n'
        + "\n".join(values)
        + "\n        *) return 1 ;;\n    esac\n}\n\n"
        '_vault_pos() {\n    REPLY=\n    case "$1 $2" in\n'
        + "\n".join(pos)
        + "\n        *) return 1 ;;\n    esac\n}\n"
        + _ZSH_WALK
        + '\nif [[ $zsh_eval_context[-1] == loadautofunc ]]; then _vault "$@"; fi\n'
    )


# --- fish --------------------------------------------------------------------------------

_FISH_WALK = r"""
function __vault_fill -a kind cur
    switch $kind
        case tokens providers
            set -l cmd (commandline -opc)[1]
            for n in ($cmd __complete $kind 2>/dev/null)
                printf '%s\n' $n
            end
        case files
            __fish_complete_path $cur
        case commands
            __vault_subs ''
        case 'choices *'
            string split ' ' -- (string replace 'choices ' '' -- $kind)
    end
end

function __vault_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmdpath ''
    set -l npos 0
    set -l dd 0
    set -l skip 0
    set -l lastopt ''
    for w in $words[2..-1]
        if test $dd -gt 0
            set dd (math $dd + 1)
            continue
        end
        if test $skip -gt 0
            set skip 0
            continue
        end
        switch $w
            case --
                set dd 1
            case '-*'
                if not string match -q -- '*=*' $w; and __vault_value "$cmdpath" $w >/dev/null
                    set skip 1
                    set lastopt $w
                end
            case '*'
                if contains -- $w (__vault_subs "$cmdpath" | string replace -r '\t.*' '')
                    set cmdpath (string trim -- "$cmdpath $w")
                    set npos 0
                else
                    set npos (math $npos + 1)
                end
        end
    end
    if test $dd -eq 1
        __fish_complete_command $cur
        return
    else if test $dd -gt 1
        __fish_complete_path $cur
        return
    end
    if test $skip -gt 0
        __vault_fill (__vault_value "$cmdpath" $lastopt) $cur
        return
    end
    if string match -q -- '-*' $cur
        __vault_opts "$cmdpath"
        return
    end
    set -l subs (__vault_subs "$cmdpath")
    if test (count $subs) -gt 0
        printf '%s\n' $subs
        return
    end
    set -l kind (__vault_pos "$cmdpath" $npos)
    and __vault_fill $kind $cur
end

complete -c vault -e
complete -c vault -f -a '(__vault_complete)'
"""


def _fish(nodes: list[Node]) -> str:
    subs, opts, values, pos = [], [], [], []
    for node in nodes:
        key = _fish_sq(node.path)
        if node.subs:
            lines = " ".join(_fish_sq(f"{n}\t{s}") for n, s in node.subs)
            subs.append(f"        case {key}\n            printf '%s\\n' {lines}")
        lines = " ".join(_fish_sq(f"{n}\t{o.help}") for o in node.options for n in o.names)
        opts.append(f"        case {key}\n            printf '%s\\n' {lines}")
        for o in node.options:
            if o.value is not None:
                cases = " ".join(_fish_sq(f"{node.path} {n}") for n in o.names)
                values.append(f"        case {cases}\n            echo {_fish_sq(o.value)}")
        for i, kind in enumerate(node.positionals):
            last = node.repeat and i == len(node.positionals) - 1
            at = _fish_sq(f"{node.path} {i}")
            test = f'test "$argv[1]" = {_fish_sq(node.path)}; and test $argv[2] -ge {i}'
            if last:
                pos.append(
                    f"    if {test}\n        echo {_fish_sq(kind)}\n        return 0\n    end"
                )
            else:
                pos.append(
                    f'    if test "$argv[1] $argv[2]" = {at}\n'
                    f"        echo {_fish_sq(kind)}\n        return 0\n    end"
                )
    return (
        "# vault completion for fish:\n"
        "#   vault completion fish > ~/.config/fish/completions/vault.fish\n"
        "function __vault_subs\n    switch $argv[1]\n"
        + "\n".join(subs)
        + "\n    end\nend\n\nfunction __vault_opts\n    switch $argv[1]\n"
        + "\n".join(opts)
        + '\n    end\nend\n\nfunction __vault_value\n    switch "$argv[1] $argv[2]"\n'
        + "\n".join(values)
        + "\n        case '*'\n            return 1\n    end\nend\n\n"
        "function __vault_pos\n" + "\n".join(pos) + "\n    return 1\nend\n" + _FISH_WALK
    )


# --- names -------------------------------------------------------------------------------


def hidden(args: list[str]) -> int:
    """A bare `vault` (the short help on stdout, exit 0) and `vault __complete KIND` (the
    names of KIND, one a line; nothing, exit 0, where there are none to be had)."""
    if not args:
        from vault.cli.helptext import short_help
        from vault.cli.parser import build_parser

        sys.stdout.write(short_help(build_parser()))
        return 0
    if args[1:] == ["tokens"]:
        names = token_names()
    elif args[1:] == ["providers"]:
        names = provider_names()
    else:
        return 2
    from vault.util.text import NAME_RE

    for name in sorted(set(names)):
        if NAME_RE.fullmatch(name):
            sys.stdout.write(name + "\n")
    return 0


def token_names() -> list[str]:
    """This vault's token names: from its agent, else from the names index; never by
    decrypting the vault (no prompt, no keyring); empty where neither has them."""
    from vault.errors import VaultError

    try:
        from vault.keys.agent import names

        found = names()
        if found is not None:
            return found
    except VaultError:
        pass
    try:
        from vault.fs.paths import resolve
        from vault.store.names import read_index

        return read_index(resolve().vault_file) or []
    except VaultError:
        return []


def provider_names() -> list[str]:
    """The presets, and the providers config.yaml names (if it can be read)."""
    from vault.errors import VaultError
    from vault.login.providers import PRESETS

    names = list(PRESETS)
    try:
        from vault.fs.paths import resolve
        from vault.policy.config import load

        names += list(load(resolve()).providers)
    except VaultError:
        pass
    return names
