"""`vault prune`: run the prune plan and report it; `--install-schedule` sets up the timer."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from vault.cli.app import App
from vault.cli.render import dump_json, table
from vault.errors import EXIT_NETWORK, VaultError
from vault.fs.durable import atomic_write
from vault.fs.paths import ensure_private_dir
from vault.tokens.prune import run_plan
from vault.util.text import rfc3339

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

    from vault.tokens.prune import Outcome, PruneAction


def cmd_prune(app: App, ns: argparse.Namespace) -> int:
    if ns.install_schedule:
        return install_schedule(app, ns)
    app.passphrase.interactive = False  # cron-safe: never prompt
    backend, _ = app.config.backend()
    store = app.unchecked_store()
    where = str(app.paths.vault_file)
    if not store.exists():
        # Said with the path, and nothing created there: a job that looks in the wrong place
        # (a VAULT_HOME its environment lost) must leave a line in its log naming that place,
        # not an "all clear" about a vault that was never the one meant.
        app.say(f"vault: no vault at {where}: nothing to prune")
        if app.json:
            dump_json(_report(ns, [], [], where))
        return 0
    actions, outcomes = run_plan(
        store,
        app.policy,
        app.config.providers,
        backend=backend,
        vault_dir=app.paths.vault_dir,
        dry_run=ns.dry_run,
    )
    pending = [o for o in outcomes if o.result == "kept_pending"]
    if app.json:
        dump_json(_report(ns, actions, outcomes, where))
    elif not actions:
        app.say(f"Nothing to prune in {where}.")
    else:
        if ns.dry_run:
            app.say(f"Would prune {len(actions)} token(s) (dry run: nothing changed):")
        results = {o.action.name: o.result for o in outcomes}
        table(
            ["NAME", "PROVIDER", "REASON", "REVOKE", "DETAIL"] + ([] if ns.dry_run else ["RESULT"]),
            [
                [a.name, a.provider, a.reason, "yes" if a.revoke else "no", a.detail[:80]]
                + ([] if ns.dry_run else [results.get(a.name, "-")])
                for a in actions
            ],
        )
    if pending:
        app.say(
            f"vault: {len(pending)} token(s) could not be revoked (provider unreachable); they "
            "are kept, marked, unusable, and retried on the next run"
        )
        return EXIT_NETWORK
    return 0


def _report(
    ns: argparse.Namespace, actions: list[PruneAction], outcomes: list[Outcome], where: str
) -> dict[str, Any]:
    """`vault prune --json`: the plan, the results and the vault they are about."""
    return {
        "version": 1,
        "dry_run": ns.dry_run,
        "time": rfc3339(time.time()),
        "vault": where,
        "plan": [asdict(a) for a in actions],
        "results": [
            {
                "name": o.action.name,
                "result": o.result,
                "revocation": o.revocation,
                "message": o.message,
            }
            for o in outcomes
        ],
        "counts": {
            "planned": len(actions),
            "deleted": sum(o.result != "kept_pending" for o in outcomes),
            "revoked": sum(o.revocation == "revoked" for o in outcomes),
            "pending": sum(o.result == "kept_pending" for o in outcomes),
        },
    }


# --- scheduling --------------------------------------------------------------------------


def _vault_command() -> str:
    exe = shutil.which("vault") or sys.argv[0]
    return os.path.realpath(exe)


def install_schedule(app: App, ns: argparse.Namespace) -> int:
    exe = _vault_command()
    env_lines = []
    for var in (
        "VAULT_HOME",
        "VAULT_KEY_BACKEND",
        "VAULT_PASSPHRASE_FILE",
        "VAULT_SYSTEM_POLICY_DIR",
    ):
        if os.environ.get(var):
            env_lines.append(f'Environment="{var}={os.environ[var]}"')
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    unit_dir = config_home / "systemd" / "user"
    service = (
        "[Unit]\nDescription=vault: expire and revoke tokens policy no longer allows\n\n"
        "[Service]\nType=oneshot\n"
        + "".join(line + "\n" for line in env_lines)
        + f"ExecStart={exe} prune --json\n"
    )
    timer = (
        "[Unit]\nDescription=Run vault prune hourly\n\n"
        "[Timer]\nOnCalendar=hourly\nRandomizedDelaySec=300\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    cron = f"17 * * * * {exe} prune --json >> {app.paths.audit_file.parent}/prune.log 2>&1"
    systemctl = shutil.which("systemctl")
    has_user_manager = (
        systemctl is not None
        and subprocess.run(  # noqa: S603 (systemctl found on PATH, fixed arguments)
            [systemctl, "--user", "show-environment"], capture_output=True, timeout=10, check=False
        ).returncode
        == 0
    )
    if not has_user_manager or ns.cron:
        sys.stdout.write(cron + "\n")
        app.say("No systemd user manager here: add the line above with `crontab -e`.")
        return 0
    # As every folder vault makes: missing levels 0700 whatever the umask, an existing one
    # only if it is yours and not open to others (a unit file someone else can replace runs
    # their command as you, hourly). The units are written atomically, 0600.
    ensure_private_dir(unit_dir)
    atomic_write(unit_dir / "vault-prune.service", service.encode(), what="systemd unit")
    atomic_write(unit_dir / "vault-prune.timer", timer.encode(), what="systemd unit")
    assert systemctl is not None
    for args in (["daemon-reload"], ["enable", "--now", "vault-prune.timer"]):
        proc = subprocess.run(  # noqa: S603 (systemctl found on PATH, fixed arguments)
            [systemctl, "--user", *args], capture_output=True, text=True, timeout=30, check=False
        )
        if proc.returncode != 0:
            raise VaultError(f"systemctl --user {' '.join(args)} failed: {proc.stderr.strip()}")
    app.say(f"Installed and started {unit_dir / 'vault-prune.timer'} (hourly).")
    return 0
