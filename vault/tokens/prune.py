"""Pruning: expire and revoke what policy no longer allows. One lock, idempotent, no prompts.
The plan is a pure function of the tokens, the policy and the time; a dry run returns exactly
the plan the real run carries out."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vault.errors import AuthError, NetworkError
from vault.login.providers import Provider
from vault.policy.rules import Policy
from vault.store.model import TokenRecord
from vault.store.vault import Store
from vault.util.text import rfc3339


@dataclass(frozen=True)
class PruneAction:
    name: str
    provider: str
    reason: str  # max_token_age | expired | scope | issuer | storage | revoke_pending | needs_login
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
        who = record.identity()
        denial = storage or policy.age_denial(who, record.issued_at, now)
        if denial is None:
            denial = policy.scope_denial(who, record.scopes)
        if denial is None:
            denial = policy.issuer_denial(who)
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
        elif record.needs_login is not None:
            # Dead: the provider refused it. Its access token is revoked first while it may
            # still be live (unexpired), where the provider can revoke; else it is deleted.
            live = record.expires_at is None or record.expires_at > now
            actions.append(
                PruneAction(
                    record.name,
                    record.provider,
                    "needs_login",
                    f"needs a new login: {record.needs_login.reason}",
                    None,
                    None,
                    revoke and (live or record.refresh_token is not None),
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


@dataclass
class Outcome:
    action: PruneAction
    result: str  # deleted | revoked_and_deleted | kept_pending
    revocation: str  # revoked | unsupported | imported | not_attempted | failed
    message: str


def run_plan(
    store: Store,
    policy: Policy,
    providers: Mapping[str, Provider],
    *,
    backend: str,
    vault_dir: Path,
    dry_run: bool,
    now: float | None = None,
) -> tuple[list[PruneAction], list[Outcome]]:
    """Carry out the plan (or, with ``dry_run``, only make it) on ``store``, which must not
    enforce the storage rules itself: emptying a vault kept where policy no longer allows is
    part of the plan."""
    from vault.tokens.events import for_record
    from vault.tokens.lifecycle import provider_of, revoke_at_provider

    when = time.time() if now is None else now
    if dry_run:
        snapshot = store.read()
        records = snapshot.records() if snapshot else []
        return plan(records, policy, when, backend=backend, vault_dir=vault_dir), []
    outcomes: list[Outcome] = []
    with store.edit() as editor:
        by_name = {r.name: r for r in editor.records()}  # each parsed once
        actions = plan(list(by_name.values()), policy, when, backend=backend, vault_dir=vault_dir)
        key = editor.meta.audit_key
        for action in actions:
            record = by_name[action.name]
            if action.revoke:
                try:
                    provider = provider_of(providers, record)
                    result = revoke_at_provider(provider, record, timeout=10.0)
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
