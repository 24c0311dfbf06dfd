"""`vault completion bash|zsh|fish` in the real shells, and the names they offer: token names
from the names index beside the vault or from the running agent, never by decrypting the vault.

bash runs the completion function as bash's completion does (COMP_WORDS, COMP_CWORD), and once
interactively to show it is registered; zsh completes on a pseudo-terminal (zsh/zpty, after
compinit: tests/harness/zsh_complete.zsh); fish through `complete -C`."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI
from tests.integration.test_agent import running_agent

CANARY = "ghp_COMPLETIONcanary0123456789abcdefghijk"
HARNESS = Path(__file__).resolve().parent.parent / "harness" / "zsh_complete.zsh"
PATH = f"{Path(VAULT_BIN).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"


def _script(vault: VaultCLI, shell: str, tmp_path: Path) -> Path:
    result = vault.run("completion", shell)
    assert (result.returncode, result.stderr) == (0, ""), result
    path = tmp_path / f"vault.{shell}"
    path.write_text(result.stdout)
    return path


def _bash(vault: VaultCLI, script: Path, *words: str) -> list[str]:
    """What bash's completion offers for WORDS (the last the one being completed)."""
    code = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _vault; '
    code += 'printf "%s\\n" "${COMPREPLY[@]}"'
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", code, "bash", str(script), VAULT_BIN, *words],
        capture_output=True,
        env=vault.full_env({"PATH": PATH}),
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, b""), proc
    return [w for w in proc.stdout.decode().split("\n") if w]


def _fish(vault: VaultCLI, script: Path, line: str) -> list[str]:
    proc = subprocess.run(
        ["fish", "--no-config", "-c", f"source {script}; complete -C {_fish_quote(line)}"],
        capture_output=True,
        env=vault.full_env({"PATH": PATH}),
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, b""), proc
    return [w.split("\t")[0] for w in proc.stdout.decode().split("\n") if w]


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _zsh(vault: VaultCLI, script: Path, *lines: str) -> dict[str, str]:
    """Each line's screen after TAB in an interactive zsh, by line."""
    proc = subprocess.run(
        ["zsh", "-f", str(HARNESS), str(script), *lines],
        capture_output=True,
        env=vault.full_env({"PATH": PATH, "TERM": "xterm"}),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc
    out: dict[str, str] = {}
    for chunk in proc.stdout.decode().split("=== ")[1:]:
        line, _, screen = chunk.partition("\n")
        out[line] = screen
    assert set(out) == set(lines), proc
    return out


def _import(vault: VaultCLI, name: str) -> None:
    result = vault.run("import", name, "--provider", "github", input=CANARY + "\n")
    assert result.returncode == 0, result


def _config(vault: VaultCLI) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        "providers:\n  work:\n    issuer: https://idp.example.com\n    client_id: cli\n"
    )


# --- commands, actions, options ----------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (["lo"], {"login", "logout", "lock"}),
        (["audit", "s"], {"show", "seal"}),
        (["--debug", "aud"], {"audit"}),
        (["audit", "show", "--f"], {"--format"}),
        (["audit", "show", "--format", ""], {"table", "json", "ocsf", "ecs"}),
        (["agent", ""], {"start", "stop", "status"}),
        (["agent", "start", "--i"], {"--idle"}),
        (["list", "--j"], {"--json"}),
        (["completion", ""], {"bash", "zsh", "fish"}),
        (["help", "au"], {"audit"}),
        (["credential-helper", "s"], set()),
        (["token", "--min-valid", ""], set()),
    ],
)
def test_bash_completes_commands_actions_options_and_choices(
    vault: VaultCLI, tmp_path: Path, words: list[str], offered: set[str]
) -> None:
    script = _script(vault, "bash", tmp_path)
    assert set(_bash(vault, script, *words)) == offered


def test_bash_completes_files_and_the_command_after_exec_separator(
    vault: VaultCLI, tmp_path: Path
) -> None:
    script = _script(vault, "bash", tmp_path)
    (tmp_path / "policy-a.yaml").write_text("version: 1\n")
    assert _bash(vault, script, "policy", "check", str(tmp_path / "policy-")) == [
        str(tmp_path / "policy-a.yaml")
    ]
    assert "git" in _bash(vault, script, "exec", "gh", "--", "gi")
    # after the command: its own arguments (files), never vault's options
    assert "--json" not in _bash(vault, script, "exec", "gh", "--", "ls", "--")


def test_bash_registers_the_completion_in_an_interactive_shell(vault: VaultCLI) -> None:
    proc = subprocess.run(
        [
            "bash",
            "--norc",
            "--noprofile",
            "-i",
            "-c",
            'eval "$(vault completion bash)"; complete -p vault',
        ],
        capture_output=True,
        env=vault.full_env({"PATH": PATH}),
        timeout=60,
        check=False,
        start_new_session=True,
    )
    assert proc.stdout.decode().strip() == "complete -F _vault vault", proc


def test_zsh_completes_commands_actions_options_and_choices(
    vault: VaultCLI, tmp_path: Path
) -> None:
    script = _script(vault, "zsh", tmp_path)
    screens = _zsh(
        vault,
        script,
        "vault audit s",
        "vault lo",
        "vault completion ",
        "vault list --js",
        "vault audit show --format ",
    )
    assert "show  -- " in screens["vault audit s"]
    assert "seal  -- " in screens["vault audit s"]
    assert "verify" not in screens["vault audit s"]
    for name in ("lock", "login", "logout"):
        assert re.search(rf"\b{name} +-- ", screens["vault lo"])
    assert re.search(r"bash +fish +zsh", screens["vault completion "])
    assert "vault list --json" in screens["vault list --js"]
    assert re.search(r"ecs +json +ocsf +table", screens["vault audit show --format "])


def test_fish_completes_commands_actions_options_and_choices(
    vault: VaultCLI, tmp_path: Path
) -> None:
    script = _script(vault, "fish", tmp_path)
    assert set(_fish(vault, script, "vault lo")) == {"login", "logout", "lock"}
    assert set(_fish(vault, script, "vault audit s")) == {"show", "seal"}
    assert set(_fish(vault, script, "vault audit show --format ")) == {
        "table",
        "json",
        "ocsf",
        "ecs",
    }
    assert "--json" in _fish(vault, script, "vault list --j")
    assert "git" in _fish(vault, script, "vault exec gh -- gi")


# --- names -------------------------------------------------------------------------------


def test_token_and_provider_names_in_every_shell(vault: VaultCLI, tmp_path: Path) -> None:
    _config(vault)
    _import(vault, "alpha")
    _import(vault, "beta.2")
    tokens, providers = {"alpha", "beta.2"}, {"work", "github", "gitlab", "google"}
    bash = _script(vault, "bash", tmp_path)
    assert set(_bash(vault, bash, "token", "")) == tokens
    assert set(_bash(vault, bash, "exec", "a")) == {"alpha"}
    assert set(_bash(vault, bash, "audit", "show", "--token", "")) == tokens
    assert providers <= set(_bash(vault, bash, "login", ""))
    assert providers <= set(_bash(vault, bash, "import", "x", "--provider", ""))
    fish = _script(vault, "fish", tmp_path)
    assert set(_fish(vault, fish, "vault status ")) == tokens
    assert providers <= set(_fish(vault, fish, "vault policy show "))
    zsh = _script(vault, "zsh", tmp_path)
    screens = _zsh(vault, zsh, "vault refresh ", "vault login w")
    assert re.search(r"alpha +beta\.2", screens["vault refresh "])
    assert "vault login work" in screens["vault login w"]


def test_the_names_index_holds_names_only(vault: VaultCLI) -> None:
    _import(vault, "alpha")
    index = vault.home / "vault.names"
    assert stat.S_IMODE(index.stat().st_mode) == 0o600
    assert index.read_bytes() == b"vault-names 1\nalpha\n"
    _import(vault, "beta")
    assert index.read_bytes() == b"vault-names 1\nalpha\nbeta\n"
    assert CANARY.encode() not in index.read_bytes()
    result = vault.run("__complete", "tokens")
    assert (result.returncode, result.stdout, result.stderr) == (0, "alpha\nbeta\n", "")


@pytest.mark.parametrize(
    "damage",
    ["loose", "symlink", "code", "header", "unterminated", "missing", "too-long-name"],
)
def test_an_index_not_exactly_as_written_gives_no_names(vault: VaultCLI, damage: str) -> None:
    _import(vault, "alpha")
    index = vault.home / "vault.names"
    if damage == "loose":
        index.chmod(0o644)
    elif damage == "symlink":
        real = vault.home / "elsewhere"
        index.rename(real)
        index.symlink_to(real)
    elif damage == "code":
        index.write_bytes(b"vault-names 1\nalpha\n$(touch pwned)\n")
    elif damage == "header":
        index.write_bytes(b"vault-names 2\nalpha\n")
    elif damage == "unterminated":
        index.write_bytes(b"vault-names 1\nalpha")
    elif damage == "missing":
        index.unlink()
    else:
        index.write_bytes(b"vault-names 1\n" + b"a" * 129 + b"\n")
    result = vault.run("__complete", "tokens")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (vault.home / "pwned").exists()


def test_hostile_provider_names_are_never_printed(vault: VaultCLI) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        'providers:\n  "$(touch pwned)":\n    issuer: https://idp.example.com\n    client_id: cli\n'
    )
    result = vault.run("__complete", "providers")
    assert result.returncode == 0
    assert "pwned" not in result.stdout
    assert "github" in result.stdout


def test_unknown_complete_kinds_print_nothing(vault: VaultCLI) -> None:
    for args in (["__complete"], ["__complete", "secrets"], ["__complete", "tokens", "x"]):
        result = vault.run(*args)
        assert (result.returncode, result.stdout) == (2, ""), result


def test_names_come_from_the_agent_and_never_unlock_the_vault(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    passphrase_vault.env["XDG_RUNTIME_DIR"] = str(run)
    _import(passphrase_vault, "alpha")
    index = passphrase_vault.home / "vault.names"
    # no passphrase but the agent's, no terminal: a prompt would fail, and a decrypt could not
    env = dict(passphrase_vault.env)
    env.pop("VAULT_PASSPHRASE_FILE")
    bare = VaultCLI(passphrase_vault.home, env)
    with running_agent(passphrase_vault):
        index.unlink()
        assert bare.run("__complete", "tokens").stdout == "alpha\n"
        assert bare.run("lock").returncode == 0  # audited: the vault, and its index, written
        assert bare.run("__complete", "tokens").stdout == "alpha\n"
        index.unlink()
        locked = bare.run("__complete", "tokens")  # a locked agent has no names to give
        assert (locked.returncode, locked.stdout, locked.stderr) == (0, "", "")
    _import(passphrase_vault, "beta")
    assert bare.run("__complete", "tokens").stdout == "alpha\nbeta\n"
