"""Pruning: expire and revoke what policy no longer allows. One write, idempotent, no prompts.
The plan is a pure function of the tokens, the policy and the time; a dry run returns exactly
the plan the real run carries out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vault.errors import AuthError, NetworkError, VaultError
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
    part of the plan.

    The lock of each name in the plan is taken first (vault.fs.durable.NameLock, in name
    order): no refresh of those names runs meanwhile (one would rotate away the refresh token
    being revoked, or have its answer deleted), while every other command goes on. The
    revocations are then made outside the vault's lock; then the plan is made again from the
    vault as it is, under its lock, and carried out in one write, in name order, as before,
    for the names locked: a token revoked is deleted (or marked revoke_pending where the
    provider could not be reached) only if it is still the one revoked. A token that came into
    the plan meanwhile, or changed (a new login or import under the name), is left to the next
    run; a revocation whose token was replaced meanwhile is audited as such, the new one kept."""
    from vault.fs.durable import NameLocks
    from vault.tokens.events import for_record
    from vault.tokens.lifecycle import Revocation, provider_of, revoke_at_provider

    when = time.time() if now is None else now
    snapshot = store.read()
    records = snapshot.records() if snapshot else []
    first = plan(records, policy, when, backend=backend, vault_dir=vault_dir)
    if dry_run or not first:
        return first, []
    outcomes: list[Outcome] = []
    with contextlib.ExitStack() as held:
        # Each name in the plan locked first; the provider asked outside the vault's lock.
        revoked: dict[str, tuple[TokenRecord, Revocation | VaultError]] = {}
        names = {a.name for a in first}
        held.enter_context(NameLocks(store.paths.name_lock_file, names))
        if any(a.revoke for a in first):
            snapshot = store.read()
            by_name = {r.name: r for r in (snapshot.records() if snapshot else [])}
            again = plan(list(by_name.values()), policy, when, backend=backend, vault_dir=vault_dir)
            for action in again:
                if action.revoke and action.name in names:
                    record = by_name[action.name]
                    try:
                        provider = provider_of(providers, record)
                        result: Revocation | VaultError = revoke_at_provider(
                            provider, record, timeout=10.0
                        )
                    except (NetworkError, AuthError) as exc:
                        result = exc
                    revoked[action.name] = (record, result)
        with store.edit() as editor:
            by_name = {r.name: r for r in editor.records()}  # each parsed once
            actions = plan(
                list(by_name.values()), policy, when, backend=backend, vault_dir=vault_dir
            )
            key = editor.meta.audit_key
            actions = [a for a in actions if a.name in names]  # the others: the next run
            for action in actions:
                record = by_name[action.name]
                if action.revoke:
                    asked = revoked.get(action.name)
                    if asked is None or not _same(asked[0], record):
                        continue  # not revoked as it is now: the next run revokes it
                    del revoked[action.name]
                    result = asked[1]
                    if isinstance(result, VaultError):
                        editor.put(_marked(record))
                        editor.audit(
                            for_record(
                                "pruned",
                                record,
                                key,
                                outcome="revoke_pending",
                                reason=f"{action.detail}; revocation failed: {result.message}",
                            )
                        )
                        outcomes.append(Outcome(action, "kept_pending", "failed", result.message))
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
            for _, (record, result) in sorted(revoked.items()):
                # Revoked, but the name holds another token now (a new login or import), or
                # none (deleted meanwhile): the token revoked is the one this run found.
                if isinstance(result, Revocation) and result.revoked:
                    editor.audit(
                        for_record(
                            "revoked",
                            record,
                            key,
                            reason=f"{result.detail} by prune; the name changed meanwhile, "
                            "what it holds now was kept",
                        )
                    )
    done = {o.action.name for o in outcomes}
    return [a for a in actions if a.name in done], outcomes


def _same(a: TokenRecord, b: TokenRecord) -> bool:
    from vault.secret import compare_digest

    return compare_digest(a.to_json(), b.to_json())


def _marked(record: TokenRecord) -> TokenRecord:
    from vault.util.record import replace

    return replace(record, revoke_pending=True)
