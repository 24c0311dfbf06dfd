"""`vault doctor`: what is in force and whether it works, each check named."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from vault.cli.app import App
from vault.cli.render import dump_json
from vault.errors import EXIT_CONFIG, EXIT_INTEGRITY, VaultError


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

    def keyring() -> str:
        from vault.keys.keyring import keyring_backend_name

        name, _ = app.config.backend()
        dotted = keyring_backend_name()
        if name != "keyring":
            return f"not used ({dotted} would be)"
        return f"{app.store.keyring.label} ({dotted})"

    guard("keyring", keyring)

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
    return checks


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
