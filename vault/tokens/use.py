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
from vault.util.text import rfc3339

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from vault.login.providers import Provider
    from vault.policy.rules import Policy
    from vault.secret import Secret
    from vault.store.model import TokenRecord
    from vault.store.vault import Editor, Store

    Providers = Mapping[str, Provider]
    Origin = tuple[str, str, int]

# What a caller may ask to be handed: the access token (every helper), or the ID token (the
# Kubernetes OIDC authenticator, AWS web identity federation).
WANTS = ("access_token", "id_token")


class ElsewhereError(AuthError):
    """The token was asked for an origin that is not its provider's: a credential helper says
    nothing then (git, docker ask their other helpers). Never audited: such a helper is asked
    about every host its tool meets."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the token {name!r} is not for that host", code="elsewhere")


def provider_origins(record: TokenRecord) -> set[Origin]:
    """Where a credential helper hands the token out: exactly the scheme, host and port of the
    provider's issuer and API base (git hosts serve git on the issuer's origin)."""
    from vault.login.http import origin as _origin

    urls = [record.issuer, record.extra.get("api_base")]
    found = {_origin(url) for url in urls if isinstance(url, str)}
    return {o for o in found if o is not None}


def handed(record: TokenRecord, want: str) -> tuple[Secret, int | None]:
    """The secret ``want`` names in ``record``, and when it expires (an ID token: its own
    `exp`, else the token set's expiry). AuthError where the record has no such token."""
    if want == "id_token":
        if record.id_token is None:
            raise _no_id_token(record)
        from vault.util import jwt

        return record.id_token, jwt.expiry(record.id_token.reveal()) or record.expires_at
    return record.access_token, record.expires_at


def _no_id_token(record: TokenRecord) -> AuthError:
    return AuthError(
        f"the token {record.name!r} has no ID token",
        hint=f"log in with the openid scope: vault login {record.provider} --name {record.name}"
        " --scope openid",
        code="no_id_token",
    )


def use_token(
    store: Store,
    policy: Policy,
    providers: Providers,
    name: str,
    *,
    min_valid: int,
    command: str | Callable[[TokenRecord], str],
    to_terminal: bool = False,
    want: str = "access_token",
    origin: Origin | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenRecord:
    """The token ``name`` ready to hand out: policy checked, refreshed if it expires within
    ``min_valid``, and its use audited (fsynced) before it is returned. Every refusal is
    audited as a denial. ``command`` may be a function of the stored record, called first,
    under the same lock: it names the use for the audit log, or raises to refuse.

    ``want`` is what is handed out (WANTS): for "id_token", the ID token's own expiry decides
    the refresh, a record without one is refused (audited), and so is an ID token a refresh
    did not renew. With ``origin``, a record whose provider is not at that origin raises
    ElsewhereError, before anything is checked or audited.

    A refresh is made outside the vault's lock (vault.tokens.lifecycle.refresh): the record
    is then checked again, under the name's lock, as it is by then (another process may have
    refreshed it, and it is then used as it is), and the use is audited with the refresh."""
    from vault.audit.chain import make_event

    used: list[str] = []  # what the use is, as the last check of the record named it

    def check(editor: Editor) -> tuple[TokenRecord, bool]:
        """Under the vault's lock: the record, checked; whether it is to be refreshed (if not,
        its use is audited)."""
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
        if origin is not None and origin not in provider_origins(record):
            raise ElsewhereError(name)
        # The caller checks the stored record first (a foreign host is refused here, before
        # anything is refreshed or audited) and says what the use is.
        what = command if isinstance(command, str) else command(record)
        used[:] = [what]
        refuse_unusable(policy, editor, record, command=what, to_terminal=to_terminal, now=now)
        if want == "id_token" and record.id_token is None:
            _audit_failed_use(editor, record, "no ID token", what)
            raise _no_id_token(record)
        if not _wants_refresh(record, min_valid, now, want):
            if want == "id_token" and _stale_id_token(record, now):
                _audit_failed_use(editor, record, "the ID token has expired", what)
                raise AuthError(
                    f"the ID token of {name!r} has expired and cannot be refreshed",
                    hint=f"log in again: vault login {record.provider} --name {name}",
                    code="expired",
                )
            editor.audit(for_record("used", record, editor.meta.audit_key, command=what))
            return record, False
        try:
            check_refreshable(record)
        except AuthError as exc:  # refused before any refresh was tried or audited
            _audit_failed_use(editor, record, exc.message, what)
            raise
        return record, True

    with store.edit() as editor:
        record, due = check(editor)
    if not due:
        return record
    # A refresh is due: its module is imported only now (the request's machinery), outside
    # the vault's lock, which is let go while the provider answers. The record is checked
    # again under the name's lock.
    from vault.tokens.lifecycle import refresh

    def finish(editor: Editor, record: TokenRecord) -> None:
        if want == "id_token" and _stale_id_token(record, clock()):
            _audit_failed_use(editor, record, "the refresh brought no new ID token", used[0])
            raise AuthError(
                f"the ID token of {name!r} has expired and the provider's refresh did not renew it",
                hint=f"log in again: vault login {record.provider} --name {name}",
                code="expired",
            )
        editor.audit(for_record("used", record, editor.meta.audit_key, command=used[0]))

    return refresh(store, providers, policy, name, due=check, finish=finish)


def refresh_record(store: Store, policy: Policy, providers: Providers, name: str) -> TokenRecord:
    """`vault refresh NAME`: refresh now, whatever the expiry (after another refresh of the
    name that was under way, too: it then spends the refresh token that one got)."""
    from vault.tokens.lifecycle import refresh

    def due(editor: Editor) -> tuple[TokenRecord, bool]:
        record = editor.get(name)
        if record is None:
            raise NotFoundError.for_name(name)
        # Not a token policy refuses, or one waiting for revocation: refreshing it would spend
        # a refresh token, and extend a grant, for nothing anyone may use.
        refuse_unusable(policy, editor, record, command="refresh")
        check_refreshable(record)
        return record, True

    return refresh(store, providers, policy, name, due=due)


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


def check_refreshable(record: TokenRecord) -> str:
    """Where to refresh ``record`` (its token endpoint); AuthError ("expired", nothing tried
    or audited) when it cannot be."""
    name = record.name
    if not record.refresh_token and record.rejected_at is not None:
        raise AuthError(
            f"the token {name!r} was rejected by a server it was sent to (at "
            f"{rfc3339(record.rejected_at)}) and has no refresh token",
            hint=f"log in again: vault login {record.provider} --name {name}",
            code="rejected",
        )
    if not record.refresh_token:
        raise AuthError(
            f"the token {name!r} expires at {rfc3339(record.expires_at)} and has no refresh token",
            hint=f"log in again: vault login {record.provider} --name {name}",
            code="expired",
        )
    token_endpoint = record.extra.get("token_endpoint")
    if not isinstance(token_endpoint, str):
        raise AuthError(
            f"the token {name!r} does not say where to refresh it",
            hint="log in again",
            code="expired",
        )
    return token_endpoint


def _id_token_expiry(record: TokenRecord) -> int | None:
    from vault.util import jwt

    return jwt.expiry(record.id_token.reveal()) if record.id_token is not None else None


def _stale_id_token(record: TokenRecord, now: float) -> bool:
    expires = _id_token_expiry(record)
    return expires is not None and expires <= now


def _wants_refresh(
    record: TokenRecord, min_valid: int, now: float, want: str = "access_token"
) -> bool:
    """Expired, or expiring within ``min_valid``; except a token refreshed moments ago whose
    whole lifetime is shorter than ``min_valid``: another process refreshed it while this one
    waited for the lock, and refreshing again would gain at most a few seconds of validity
    while spending the refresh token once more. A refreshable token obtained "in the future"
    (the clock was ahead then, or went back since) is refreshed: its expiry overstates what
    is left of it. A token a server rejected (``rejected_at``, git's `erase`) is refreshed
    first, whatever its expiry: the refresh clears the mark."""
    if record.rejected_at is not None:
        return True
    if want == "id_token" and record.id_token is not None:
        expires = _id_token_expiry(record)
        if expires is not None and expires - now <= min_valid and record.refresh_token:
            # The ID token runs out before the access token may (its lifetime is the
            # provider's, often shorter): only a refresh renews it.
            return not (record.last_refresh is not None and now - record.last_refresh <= 5.0)
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
