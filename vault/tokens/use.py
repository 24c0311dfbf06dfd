"""Handing out a stored token: policy checked, refreshed when it must be (or now, when asked),
every use audited.

The one path by which a token leaves the vault for `vault token`, `exec`, `api` and the
credential helpers. Nothing here prints: callers render the record or the error.
"""

from __future__ import annotations

import time

from vault.errors import AuthError, NotFoundError
from vault.policy.rules import CLOCK_STEP_TOLERANCE
from vault.tokens.events import for_denial, for_record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from vault.login.providers import Provider
    from vault.policy.rules import Policy
    from vault.store.model import TokenRecord
    from vault.store.vault import Editor, Store

    Providers = Mapping[str, Provider]


def use_token(
    store: Store,
    policy: Policy,
    providers: Providers,
    name: str,
    *,
    min_valid: int,
    command: str | Callable[[TokenRecord], str],
    to_terminal: bool = False,
    clock: Callable[[], float] = time.time,
) -> TokenRecord:
    """The token ``name`` ready to hand out: policy checked, refreshed if it expires within
    ``min_valid``, and its use audited (fsynced) before it is returned. Every refusal is
    audited as a denial. ``command`` may be a function of the stored record, called first,
    under the same lock: it names the use for the audit log, or raises to refuse."""
    from vault.audit.chain import make_event

    with store.edit() as editor:
        now = clock()  # after the lock is held: waiting for it takes time
        record = editor.get(name)
        if record is None:
            editor.audit(
                make_event(
                    "used",
                    name=name,
                    outcome="failure",
                    reason="no such token",
                    command=command if isinstance(command, str) else None,
                )
            )
            raise NotFoundError.for_name(name)
        if not isinstance(command, str):
            # The caller checks the stored record first (a foreign host is refused here,
            # before anything is refreshed or audited) and says what the use is.
            command = command(record)
        refuse_unusable(policy, editor, record, command=command, to_terminal=to_terminal, now=now)
        if _wants_refresh(record, min_valid, now):
            from vault.tokens.lifecycle import provider_of, refresh_in

            try:
                record = refresh_in(editor, record, provider_of(providers, record), policy)
            except AuthError as exc:
                if exc.code == "expired":  # refused before any refresh was tried or audited
                    _audit_failed_use(editor, record, exc.message, command)
                raise
        editor.audit(for_record("used", record, editor.meta.audit_key, command=command))
    return record


def refresh_record(store: Store, policy: Policy, providers: Providers, name: str) -> TokenRecord:
    """`vault refresh NAME`: refresh now, whatever the expiry."""
    from vault.tokens.lifecycle import provider_of, refresh_in

    with store.edit() as editor:
        record = editor.get(name)
        if record is None:
            raise NotFoundError.for_name(name)
        # Not a token policy refuses, or one waiting for revocation: refreshing it would spend
        # a refresh token, and extend a grant, for nothing anyone may use.
        refuse_unusable(policy, editor, record, command="refresh")
        return refresh_in(editor, record, provider_of(providers, record), policy)


def refuse_unusable(
    policy: Policy,
    editor: Editor,
    record: TokenRecord,
    *,
    command: str,
    to_terminal: bool = False,
    now: float | None = None,
) -> None:
    """Raise (after auditing the refusal) if ``record`` may not be handed out or refreshed: it
    needs a new login (the provider refused it), it was pruned and waits for revocation, or
    policy no longer allows it at ``now``. Nothing here contacts the provider."""
    name = record.name
    if record.needs_login is not None:
        reason = record.needs_login.reason
        _audit_failed_use(editor, record, f"needs a new login: {reason}", command)
        raise AuthError(
            f"the token {name!r} needs a new login ({reason}): "
            f"vault login {record.provider} --name {name}",
            hint="a new `vault login` (or `vault import`) for the name replaces it",
            code="needs_login",
        )
    if record.revoke_pending:
        _audit_failed_use(editor, record, "pruned; waiting for revocation", command)
        raise AuthError(
            f"the token {name!r} was pruned and is waiting to be revoked at the provider",
            hint="the next `vault prune` retries; log in again for a new token",
            code="revoke_pending",
        )
    denial = policy.token_denial(
        record.identity(),
        record.scopes,
        record.issued_at,
        time.time() if now is None else now,
    ) or (policy.terminal_denial() if to_terminal else None)
    if denial is not None:
        editor.audit(
            for_denial(
                denial,
                name=name,
                provider=record.provider,
                issuer=record.issuer,
                scopes=record.scopes,
                command=command,
            )
        )
        raise denial.error()


def _wants_refresh(record: TokenRecord, min_valid: int, now: float) -> bool:
    """Expired, or expiring within ``min_valid``; except a token refreshed moments ago whose
    whole lifetime is shorter than ``min_valid``: another process refreshed it while this one
    waited for the lock, and refreshing again would gain at most a few seconds of validity
    while spending the refresh token once more. A refreshable token obtained "in the future"
    (the clock was ahead then, or went back since) is refreshed: its expiry overstates what
    is left of it."""
    if record.expires_at is None:
        return False
    obtained = record.issued_at if record.last_refresh is None else record.last_refresh
    if record.refresh_token and obtained > now + CLOCK_STEP_TOLERANCE:
        return True
    if record.expires_at - now > min_valid:
        return False
    if record.expires_at <= now or record.last_refresh is None:
        return True
    lifetime = record.expires_at - record.last_refresh
    just_refreshed = now - record.last_refresh <= max(5.0, 0.05 * lifetime)
    return not (lifetime <= min_valid and just_refreshed)


def _audit_failed_use(editor: Editor, record: TokenRecord, reason: str, command: str) -> None:
    editor.audit(
        for_record(
            "used", record, editor.meta.audit_key, outcome="failure", reason=reason, command=command
        )
    )
