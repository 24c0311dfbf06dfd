"""`vault doctor`: what is in force and whether it works, each check named."""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from vault.cli.app import App
from vault.cli.render import dump_json
from vault.errors import EXIT_CONFIG, EXIT_INTEGRITY, VaultError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    exit_code: int = 0


def _perm(path: Path) -> str:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    return f"mode {stat.S_IMODE(st.st_mode):04o}, uid {st.st_uid}"


def run_checks(app: App) -> list[Check]:
    from vault.fs.paths import check_private_dir, check_private_file

    checks: list[Check] = []

    def guard(name: str, fn: object) -> None:
        try:
            detail = fn()  # type: ignore[operator]
            checks.append(Check(name, "ok", str(detail)))
        except VaultError as exc:
            checks.append(Check(name, "fail", exc.message, exc.exit_code))

    guard(
        "config",
        lambda: (
            f"{app.paths.config_file} ({_perm(app.paths.config_file)}), "
            f"{len(app.config.providers)} provider(s)"
        ),
    )

    def backend() -> str:
        name, source = app.config.backend()
        return f"{name} (from {source})"

    guard("key backend", backend)

    def folder(path: Path) -> str:
        check_private_dir(path)
        return f"{path} ({_perm(path)})"

    def file(path: Path, what: str) -> str:
        check_private_file(path, what)
        return f"{path} ({_perm(path)})"

    for label, path in (
        ("vault folder", app.paths.vault_dir),
        ("audit folder", app.paths.audit_file.parent),
    ):
        guard(label, lambda p=path: folder(p))
    for label, path in (
        ("vault file", app.paths.vault_file),
        ("key file", app.paths.key_file),
        ("audit log", app.paths.audit_file),
    ):
        guard(label, lambda p=path, w=label: file(p, w))

    def policies() -> str:
        policy = app.policy
        if not policy.files:
            return "none in force"
        return ", ".join(f"{f.path} ({'system' if f.system else 'user'})" for f in policy.files)

    guard("policies", policies)

    def storage_policy() -> str:
        backend, _ = app.config.backend()
        denial = app.policy.storage_denial(backend, app.paths.vault_dir)
        if denial is not None:
            raise denial.error()
        return f"the {backend} backend and {app.paths.vault_dir} are allowed"

    guard("storage policy", storage_policy)

    checks.append(_keyring_check(app))

    def opens() -> str:
        snapshot = app.store.read()
        if snapshot is None:
            return "no vault yet (created on the first login or import)"
        count = len(snapshot.records())
        return (
            f"authenticated: {count} token(s), generation {snapshot.header.generation}, "
            f"{snapshot.header.backend} backend"
        )

    guard("vault opens", opens)
    checks.append(_agent_check(app))
    checks.append(_schedule_check(app))
    return checks


def _secret_service_problem() -> str | None:
    """Why the OS keyring cannot be reached from this process, or None if it answers. Asked for
    real (a search for an item that is not there: nothing is changed, nothing prompts), within
    VAULT_KEYRING_TIMEOUT. On Secret Service, an unset DBUS_SESSION_BUS_ADDRESS is said so
    first: vault's D-Bus client looks nowhere else, not even at a bus socket that is there."""
    from vault.errors import KeyringUnavailable
    from vault.keys.keyring import SECRET_SERVICE, KeyringStore, keyring_backend_name

    if keyring_backend_name() == SECRET_SERVICE and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        problem = "no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set)"
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        bus = Path(runtime) / "bus" if os.path.isabs(runtime) else None
        if bus is not None and bus.is_socket():
            problem += (
                f"; a bus listens at {bus}, but vault only connects to the address in that "
                f"variable: export DBUS_SESSION_BUS_ADDRESS=unix:path={bus}"
            )
        return problem
    store = KeyringStore()
    try:
        store.probe()
    except KeyringUnavailable as exc:
        return exc.message
    finally:
        store.close()
    return None


def _keyring_check(app: App) -> Check:
    """The keyring line: whether the OS keyring answers here, and what that means for the
    backend in force (for the keyring backend, no keyring means no vault: exit 6)."""
    from vault.errors import EXIT_INTEGRITY
    from vault.keys.keyring import OS_KEYRINGS, keyring_backend_name

    try:
        backend, _ = app.config.backend()
        dotted = keyring_backend_name()
    except VaultError as exc:
        return Check("keyring", "fail", exc.message, exc.exit_code)
    label = OS_KEYRINGS[dotted]
    problem = _secret_service_problem()
    if problem is None:
        if backend == "keyring":
            return Check("keyring", "ok", f"{label} ({dotted}) answers")
        return Check("keyring", "ok", f"not used ({label} answers here, {dotted})")
    if backend == "keyring":
        return Check(
            "keyring",
            "fail",
            f"{label} unreachable: {problem}. The key backend is keyring: the vault key is "
            "kept there, so no vault can be opened or created from here (exit 6)",
            EXIT_INTEGRITY,
        )
    return Check(
        "keyring",
        "warn",
        f"not used, and unreachable here: {problem} (no matter to the {backend} backend; "
        "key_backend: keyring would fail here)",
    )


def _agent_status(app: App, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The status of the agent a process with ``env`` (default: this one) would find for this
    vault, or None where it would find none."""
    from vault.keys.agent import call, socket_path

    return call({"op": "status"}, path=socket_path(str(app.paths.vault_file), env))


def _agent_check(app: App) -> Check:
    try:
        status = _agent_status(app)
    except VaultError as exc:
        return Check("agent", "fail", exc.message, exc.exit_code)
    if status is None:
        return Check("agent", "ok", "none runs for this vault (`vault agent start` starts one)")
    if not status.get("unlocked"):
        return Check(
            "agent", "warn", f"pid {status.get('pid')}, locked (`vault unlock` unlocks it)"
        )
    memory = "in locked memory" if status.get("locked_memory") else "not in locked memory"
    return Check(
        "agent",
        "ok",
        f"pid {status.get('pid')}, unlocked until {status.get('unlocked_until')} (idle "
        f"deadline {status.get('idle_deadline') or 'none'}), the key {memory}",
    )


def _agent_line(app: App, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """Whether a job started with ``env`` gets the key from a running agent, as (status,
    detail): "ok" while one runs unlocked, "warn" while it is locked; None where the job finds
    no agent (its own XDG_RUNTIME_DIR decides where it looks)."""
    try:
        status = _agent_status(app, env)
    except VaultError as exc:
        return "fail", f"the agent cannot be asked: {exc.message}"
    if status is None:
        return None
    if not status.get("unlocked"):
        return "warn", f"the agent (pid {status.get('pid')}) is locked: `vault unlock`"
    return "ok", (
        f"the agent (pid {status.get('pid')}), unlocked until {status.get('unlocked_until')}"
    )


def _schedule_check(app: App) -> Check:
    """The scheduled prune line: whether a job is installed (the systemd timer
    `vault prune --install-schedule` writes, or a crontab line running `vault prune`), whether it
    opens this vault, and whether from its own environment (not this shell's) it reaches the
    key. No job installed is not a problem; one that cannot do its work is a warning (it fails
    every hour, with exit 6, in its log or journal)."""
    from vault.cli import schedule
    from vault.fs.paths import resolve

    try:
        backend, _ = app.config.backend()
        jobs = schedule.installed_jobs()
    except VaultError as exc:
        return Check("scheduled prune", "fail", exc.message, exc.exit_code)
    agent = _agent_line(app, schedule.pinned_env() if not jobs else None)
    if not jobs:
        try:
            env = schedule.pinned_env()
        except VaultError as exc:
            return Check("scheduled prune", "warn", f"none installed, and {exc.message}")
        reached, detail = schedule.key_route(env, backend)
        if not reached and agent is not None and agent[0] == "ok":
            reached, detail = True, agent[1]
        verdict = f"reaching {detail}" if reached else f"not reaching the key: {detail}"
        return Check(
            "scheduled prune",
            "ok",
            f"none installed; `vault prune --install-schedule` here would install one {verdict}",
        )
    problems: list[str] = []
    found: list[str] = []
    for job in jobs:
        name = f"{job.kind} {job.where}".strip()
        if not job.enabled:
            problems.append(f"{name}: installed but not enabled")
        exe = job.command[0] if job.command else ""
        if not exe or shutil.which(exe, path=job.env.get("PATH", "/usr/bin:/bin")) is None:
            problems.append(f"{name}: its command {exe or '(none)'} is not an executable")
        job_vault = resolve(job.env).vault_file
        if job_vault != app.paths.vault_file:
            problems.append(f"{name} prunes {job_vault}, not this vault ({app.paths.vault_file})")
            continue
        reached, detail = schedule.key_route(job.env, job.env.get("VAULT_KEY_BACKEND") or backend)
        agent = _agent_line(app, job.env)
        if not reached and agent is not None and agent[0] == "ok":
            reached, detail = True, agent[1]
        elif agent is not None and agent[0] != "ok":
            detail += f"; {agent[1]}"
        if reached:
            found.append(f"{name}, reaching {detail}")
        else:
            # Why the job's environment may be short of what it needs (a manager not asked).
            problems.append(f"{name} cannot reach the key: " + "; ".join([detail, *job.notes]))
    if problems:
        return Check("scheduled prune", "warn", "; ".join(problems + found))
    return Check("scheduled prune", "ok", "; ".join(found))


def cmd_doctor(app: App, ns: argparse.Namespace) -> int:
    checks = run_checks(app)
    failed = [c for c in checks if c.status == "fail"]
    code = 0
    if failed:
        codes = {c.exit_code for c in failed}
        code = EXIT_INTEGRITY if EXIT_INTEGRITY in codes else min(codes) or EXIT_CONFIG
    if app.json:
        dump_json(
            {
                "ok": not failed,
                "checks": [
                    {"check": c.name, "status": c.status, "detail": c.detail} for c in checks
                ],
            }
        )
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[c.status]
            sys.stdout.write(f"{mark}  {c.name:<{width}}  {c.detail}\n")
    return code
