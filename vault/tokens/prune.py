"""`vault prune`: expire and revoke what policy no longer allows. Cron-safe: no prompts, one
lock, idempotent. The plan is a pure function of the vault, the policy and the time, and
`--dry-run` prints exactly the plan the real run carries out."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vault.cli.app import App
from vault.store.model import TokenRecord
from vault.util.text import dump_json, rfc3339, table
from vault.policy.rules import Policy
from vault.util.record import asdict, datarecord
from vault.errors import EXIT_NETWORK, AuthError, NetworkError, VaultError


@datarecord(frozen=True)
class PruneAction:
    name: str
    provider: str
    reason: str  # max_token_age | expired | scope | issuer | storage | revoke_pending
    detail: str
    rule: str | None
    source: str | None
    revoke: bool  # a revocation at the provider will be attempted


def _revocable(record: TokenRecord) -> bool:
    return record.source == "login" and isinstance(record.extra.get("revocation_endpoint"), str)


def plan(
    records: Sequence[TokenRecord],
    policy: Policy,
    now: float,
    *,
    backend: str,
    vault_dir: Path,
) -> list[PruneAction]:
    """Every token that must go, and why, in name order."""
    actions = []
    storage = policy.storage_denial(backend, vault_dir)
    for record in sorted(records, key=lambda r: r.name):
        revoke = _revocable(record)
        denial = storage or policy.age_denial(record.provider, record.issued_at, now)
        if denial is None:
            denial = policy.scope_denial(record.provider, record.scopes)
        if denial is None:
            denial = policy.issuer_denial(record.provider, record.issuer)
        if denial is not None:
            reason = {
                "storage.key_backends": "storage",
                "storage.vault_dirs": "storage",
                "max_token_age": "max_token_age",
                "allowed_scopes": "scope",
                "denied_scopes": "scope",
                "allowed_issuers": "issuer",
            }.get(denial.rule, denial.rule)
            actions.append(
                PruneAction(
                    record.name,
                    record.provider,
                    reason,
                    denial.message,
                    denial.rule,
                    denial.source,
                    revoke,
                )
            )
        elif record.revoke_pending:
            actions.append(
                PruneAction(
                    record.name,
                    record.provider,
                    "revoke_pending",
                    "a previous prune could not reach the provider",
                    None,
                    None,
                    revoke,
                )
            )
        elif (
            record.expires_at is not None and record.expires_at <= now and not record.refresh_token
        ):
            # Expired and not refreshable: nothing to revoke, it is dead at the provider too.
            actions.append(
                PruneAction(
                    record.name,
                    record.provider,
                    "expired",
                    f"expired at {rfc3339(record.expires_at)} with no refresh token",
                    None,
                    None,
                    False,
                )
            )
    return actions


@datarecord
class Outcome:
    action: PruneAction
    result: str  # deleted | revoked_and_deleted | kept_pending
    revocation: str  # revoked | unsupported | imported | not_attempted | failed
    message: str


def run_plan(
    app: App, *, dry_run: bool, now: float | None = None
) -> tuple[list[PruneAction], list[Outcome]]:
    from vault.audit.chain import for_record
    from vault.tokens.lifecycle import revoke_at_provider

    when = time.time() if now is None else now
    backend, _ = app.config.backend()
    store = app.unchecked_store()
    if dry_run:
        snapshot = store.read()
        records = snapshot.records() if snapshot else []
        return plan(records, app.policy, when, backend=backend, vault_dir=app.paths.vault_dir), []
    outcomes: list[Outcome] = []
    with store.edit() as editor:
        by_name = {r.name: r for r in editor.records()}  # each parsed once
        actions = plan(
            list(by_name.values()),
            app.policy,
            when,
            backend=backend,
            vault_dir=app.paths.vault_dir,
        )
        key = editor.meta.audit_key
        for action in actions:
            record = by_name[action.name]
            if action.revoke:
                try:
                    result = revoke_at_provider(app, record, timeout=10.0)
                except (NetworkError, AuthError) as exc:
                    editor.put(_marked(record))
                    editor.audit(
                        for_record(
                            "pruned",
                            record,
                            key,
                            outcome="revoke_pending",
                            reason=f"{action.detail}; revocation failed: {exc.message}",
                        )
                    )
                    outcomes.append(Outcome(action, "kept_pending", "failed", exc.message))
                    continue
                revocation = result.status
            else:
                revocation = "not_attempted"
            editor.delete(action.name)
            editor.audit(
                for_record(
                    "pruned",
                    record,
                    key,
                    reason=f"{action.detail} (rule {action.rule}, {action.source})"
                    if action.rule
                    else action.detail,
                )
            )
            outcomes.append(
                Outcome(
                    action,
                    "revoked_and_deleted" if revocation == "revoked" else "deleted",
                    revocation,
                    action.detail,
                )
            )
    return actions, outcomes


def _marked(record: TokenRecord) -> TokenRecord:
    from vault.util.record import replace

    return replace(record, revoke_pending=True)


def cmd_prune(app: App, ns: argparse.Namespace) -> int:
    if ns.install_schedule:
        return install_schedule(app, ns)
    app.passphrase.interactive = False  # cron-safe: never prompt
    actions, outcomes = run_plan(app, dry_run=ns.dry_run)
    pending = [o for o in outcomes if o.result == "kept_pending"]
    if app.json:
        dump_json(
            {
                "version": 1,
                "dry_run": ns.dry_run,
                "time": rfc3339(time.time()),
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
                    "pending": len(pending),
                },
            }
        )
    elif not actions:
        app.say("Nothing to prune.")
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
    unit_dir.mkdir(parents=True, exist_ok=True)
    (unit_dir / "vault-prune.service").write_text(service)
    (unit_dir / "vault-prune.timer").write_text(timer)
    assert systemctl is not None
    for args in (["daemon-reload"], ["enable", "--now", "vault-prune.timer"]):
        proc = subprocess.run(  # noqa: S603 (systemctl found on PATH, fixed arguments)
            [systemctl, "--user", *args], capture_output=True, text=True, timeout=30, check=False
        )
        if proc.returncode != 0:
            raise VaultError(f"systemctl --user {' '.join(args)} failed: {proc.stderr.strip()}")
    app.say(f"Installed and started {unit_dir / 'vault-prune.timer'} (hourly).")
    return 0
