"""`vault kube setup NAME --cluster C [--id-token] [--user U] [--write [--kubeconfig FILE]]`:
the kubeconfig user entry that has kubectl run `vault kube NAME`.

Without --write it prints the entry (YAML, under ``users:``) for a person to add. With --write
it has the real kubectl edit the kubeconfig, as kubectl edits it: ``kubectl config
delete-user`` (where U exists: the entry is replaced whole, no stale token or certificate left
beside the plugin), ``kubectl config set-credentials U --exec-...`` and ``kubectl config
set-context C --cluster C --user U`` (the context named after the cluster, created where it is
missing; its namespace is kept). The current context is left as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from vault.cli.commands.kube import API_V1, DEFAULT_MIN_VALID, SUBCOMMANDS
from vault.errors import ConfigError, UsageError
from vault.util.text import check_name, clean

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from vault.cli.app import App

KUBECTL_DEADLINE = 60.0  # one `kubectl config` command; it only reads and writes a file


def vault_command() -> str:
    """The absolute path of the `vault` executable running now, as it was started (a symlink
    is kept: an upgrade that moves what it points to keeps the kubeconfig working)."""
    started = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if os.path.basename(started) == "vault" and os.access(started, os.X_OK):
        return os.path.abspath(started)
    found = shutil.which("vault")
    if found is None:
        raise UsageError(
            "cannot tell where the vault executable is",
            hint="run `vault kube setup` as the installed `vault` command",
        )
    return os.path.abspath(found)


def _kube_name(value: str, what: str) -> str:
    """A kubeconfig name (cluster, user): any text kubectl takes, but not empty, not over 253
    characters and without controls (it is shown and written to a YAML file)."""
    if not value or len(value) > 253 or clean(value, 300) != value or value.strip() != value:
        raise UsageError(f"{what} {clean(value, 60)!r} is not a usable kubeconfig name")
    return value


def plugin_args(name: str, *, id_token: bool, min_valid: int = DEFAULT_MIN_VALID) -> list[str]:
    """The arguments kubectl runs the plugin with (--min-valid only where it is not the
    default)."""
    args = ["kube", name]
    if id_token:
        args.append("--id-token")
    if min_valid != DEFAULT_MIN_VALID:
        args.append(f"--min-valid={min_valid}")
    return args


def plugin_env() -> list[dict[str, str]]:
    """The environment the entry sets for the plugin: VAULT_HOME where it is set now, so that
    kubectl started from anywhere (an editor, a desktop launcher) reaches this same vault."""
    home = os.environ.get("VAULT_HOME")
    return [{"name": "VAULT_HOME", "value": os.path.abspath(home)}] if home else []


def user_entry(
    user: str, command: str, args: list[str], env: list[dict[str, str]]
) -> dict[str, Any]:
    """The kubeconfig ``users:`` item, as `kubectl config view` shows what --write sets."""
    exec_: dict[str, Any] = {"apiVersion": API_V1, "command": command, "args": args}
    if env:
        exec_["env"] = env
    exec_["interactiveMode"] = "IfAvailable"
    exec_["provideClusterInfo"] = False
    return {"name": user, "user": {"exec": exec_}}


def set_credentials_argv(
    user: str, command: str, args: list[str], env: list[dict[str, str]]
) -> list[str]:
    """``kubectl config set-credentials`` for the same entry."""
    return [
        "config",
        "set-credentials",
        user,
        f"--exec-api-version={API_V1}",
        f"--exec-command={command}",
        *(f"--exec-arg={arg}" for arg in args),
        *(f"--exec-env={item['name']}={item['value']}" for item in env),
        "--exec-interactive-mode=IfAvailable",
        "--exec-provide-cluster-info=false",
    ]


def cmd_kube_setup(app: App, ns: argparse.Namespace) -> int:
    if ns.setup_name is None:
        raise UsageError(
            "`vault kube setup` needs the token's name",
            hint="vault kube setup NAME --cluster C [--id-token] [--user U] [--write]",
        )
    name = check_name(ns.setup_name)
    if name in SUBCOMMANDS:
        raise UsageError(
            f"a token named {name!r} cannot be used by `vault kube` (the word is its subcommand)",
            hint="log in under another name: vault login PROVIDER --name NAME",
        )
    if ns.min_valid < 0:
        raise UsageError("--min-valid must be zero or more seconds")
    if ns.cluster is None:
        raise UsageError("`vault kube setup` needs --cluster C (the kubeconfig cluster)")
    cluster = _kube_name(ns.cluster, "the cluster")
    default_user = f"vault-{name}" + ("-id-token" if ns.id_token else "")
    user = _kube_name(ns.user if ns.user is not None else default_user, "the user")
    if ns.kubeconfig is not None and not ns.write:
        raise UsageError("--kubeconfig is for --write (the file kubectl edits)")
    command = vault_command()
    args = plugin_args(name, id_token=ns.id_token, min_valid=ns.min_valid)
    env = plugin_env()
    if not ns.write:
        import yaml

        entry = user_entry(user, command, args, env)
        sys.stdout.write(yaml.safe_dump({"users": [entry]}, sort_keys=False))
        app.say(
            f"vault: add this under `users:` in your kubeconfig, then: kubectl config "
            f"set-context {cluster} --cluster {cluster} --user {user} (or run again with --write)"
        )
        return 0
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise UsageError(
            "kubectl is not installed here: --write edits the kubeconfig with it",
            hint="install kubectl, or leave out --write and add the printed entry by hand",
        )
    base = [kubectl, *(["--kubeconfig", ns.kubeconfig] if ns.kubeconfig else [])]
    config = _view(base)
    clusters = {c.get("name") for c in config.get("clusters") or () if isinstance(c, dict)}
    if cluster not in clusters:
        raise UsageError(
            f"the kubeconfig has no cluster {cluster!r}",
            hint="`kubectl config get-clusters` lists them",
        )
    for context in config.get("contexts") or ():
        if isinstance(context, dict) and context.get("name") == cluster:
            inner = context.get("context")
            other = inner.get("cluster") if isinstance(inner, dict) else None
            if other != cluster:
                raise UsageError(
                    f"the kubeconfig's context {cluster!r} is for the cluster "
                    f"{clean(other, 60)!r}: not changed",
                    hint="rename that context (kubectl config rename-context), then run again",
                )
    users = {u.get("name") for u in config.get("users") or () if isinstance(u, dict)}
    if user in users:
        _kubectl(base, ["config", "delete-user", user])
    _kubectl(base, set_credentials_argv(user, command, args, env))
    _kubectl(base, ["config", "set-context", cluster, f"--cluster={cluster}", f"--user={user}"])
    app.say(
        f"vault: kubeconfig user {user!r} runs `vault kube {' '.join(args[1:])}`; context "
        f"{cluster!r} uses it (kubectl config use-context {cluster})"
    )
    return 0


def _view(base: list[str]) -> dict[str, Any]:
    out = _kubectl(base, ["config", "view", "-o", "json"])
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ConfigError("`kubectl config view -o json` did not print a kubeconfig")
    return doc


def _kubectl(base: list[str], argv: list[str]) -> str:
    """Run ``kubectl ARGV`` (never a shell); its stdout, or ConfigError with its own words."""
    try:
        proc = subprocess.run(  # noqa: S603 (kubectl, found on PATH, with a fixed argv)
            [*base, *argv],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=KUBECTL_DEADLINE,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"`kubectl {argv[0]} {argv[1]}` failed: {type(exc).__name__}") from None
    if proc.returncode != 0:
        said = clean(proc.stderr.decode("utf-8", "replace").strip(), 300)
        raise ConfigError(f"`kubectl {argv[0]} {argv[1]}` failed: {said}")
    return proc.stdout.decode("utf-8", "replace")
