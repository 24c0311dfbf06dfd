"""`vault prune`: run the prune plan and report it; `--install-schedule` sets up the timer."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict

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


def install_schedule(app: App, ns: argparse.Namespace) -> int:
    """An hourly systemd user timer, or (no user manager, or --cron) a crontab line printed for
    the person to add. Either runs this very vault executable with this invocation's vault,
    config, policies and way to the key pinned in it (vault.cli.schedule says why), so that it
    prunes the same vault from the bare environment cron and systemd give it."""
    from vault.cli import schedule

    command = schedule.vault_command()
    env = schedule.pinned_env()
    log = app.paths.audit_file.parent / schedule.LOG_NAME
    cron = schedule.cron_line(command, env, log)  # checked before anything is written
    service = schedule.service_unit(command, env)
    manager = schedule.manager_environment()
    if manager is None or ns.cron:
        schedule.open_log(log)
        sys.stdout.write(cron + "\n")
        why = "Add" if ns.cron else "No systemd user manager here: add"
        app.say(f"{why} the line above with `crontab -e`; each run appends to {log}.")
        if len(schedule.cron_command(command, env, log)) >= 990:
            app.say(
                "vault: warning: the command is over 990 characters; some crons (Debian's) "
                "cut commands at 1000: check `crontab -l` shows it whole"
            )
        _warn_unreachable_key(app, env)
        return 0
    unit_dir = schedule.unit_dir()
    # As every folder vault makes: missing levels 0700 whatever the umask, an existing one
    # only if it is yours and not open to others (a unit file someone else can replace runs
    # their command as you, hourly). The units are written atomically, 0600.
    ensure_private_dir(unit_dir)
    atomic_write(unit_dir / schedule.SERVICE, service.encode(), what="systemd unit")
    atomic_write(unit_dir / schedule.TIMER, schedule.TIMER_UNIT.encode(), what="systemd unit")
    schedule.enable(schedule.TIMER)
    app.say(f"Installed and started {unit_dir / schedule.TIMER} (hourly).")
    _warn_unreachable_key(app, {**manager, **env})
    return 0


def _warn_unreachable_key(app: App, env: dict[str, str]) -> None:
    """Say so now if the job, as installed, will not reach the key by itself (it would fail
    with exit 6 every hour, in its log), or only through the agent while it runs unlocked."""
    from vault.cli import schedule
    from vault.keys.agent import call, socket_path

    try:
        backend, _ = app.config.backend()
    except VaultError:
        return  # the job reports it, as this command's next run would
    reached, detail = schedule.key_route(env, backend)
    if reached:
        return
    try:
        agent = call({"op": "status"}, path=socket_path(str(app.paths.vault_file), env))
    except VaultError:
        agent = None
    if agent is not None and agent.get("unlocked"):
        app.say(
            f"vault: note: the scheduled job reaches the key through the agent (pid "
            f"{agent.get('pid')}) while it runs unlocked, until {agent.get('unlocked_until')}; "
            f"without it: {detail}"
        )
        return
    app.say(f"vault: warning: the scheduled job will not reach the key: {detail}")
