"""Refresh and revocation of stored tokens, each under the vault's exclusive lock.

Refresh holds the lock across the HTTP call, so two processes never spend the same refresh
token: the second waits, re-reads, and finds the token already fresh. Once the provider has
answered, its answer is kept whatever fails next: the rotated refresh token is written (and
fsynced) into the vault before the audit log, and both before the new access token is handed out
(vault.store.vault describes the order and what each failure leaves). What the provider answers
is judged before that: scopes policy does not allow, or a refused refresh token, mark the token
as needing a new login instead of handing it out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vault.errors import (
    AuthError,
    IntegrityError,
    NetworkError,
    NotFoundError,
    PolicyError,
    UsageError,
)
from vault.login import http as _http
from vault.login import oauth as _oauth
from vault.login import providers as _providers
from vault.policy.rules import Denial
from vault.store.model import LoginNeeded, TokenRecord
from vault.store.vault import Editor, Store
from vault.tokens.events import for_record
from vault.util.record import replace
from vault.util.text import rfc3339
from vault.util.trace import log

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import NoReturn

    from vault.policy.rules import Policy

    Providers = Mapping[str, _providers.Provider]


def provider_of(providers: Providers, record: TokenRecord) -> _providers.Provider:
    """The provider a record came from: its config entry or preset, else what the record says."""
    try:
        provider = _providers.resolve(record.provider, providers)
    except UsageError:
        provider = replace(_providers.PRESETS["oidc"], name=record.provider, issuer=record.issuer)
    if provider.client_id != record.client_id:
        provider = replace(provider, client_id=record.client_id)
    return provider


# A refresh runs under the vault's exclusive lock: the provider gets this long, in total,
# before every other vault command may go on.
REFRESH_DEADLINE = 15.0

# Room reserved on the disk, beyond the vault's size, before a refresh is sent: the most an
# answer can add (every token at the most vault.login.oauth accepts, its scopes in the record
# and in the records journaled beside it), and some.
ANSWER_ROOM = 4 * _oauth.MAX_TOKEN_CHARS + 3 * _oauth.MAX_SCOPE_CHARS + 16 * 1024


def refresh_in(
    editor: Editor, record: TokenRecord, provider: _providers.Provider, policy: Policy
) -> TokenRecord:
    """Refresh ``record`` now; the caller holds the exclusive lock (``editor``).

    The provider's answer is kept whatever happens after it arrives (``Editor.keep``): the
    vault, with the rotated refresh token and the `refreshed` record journaled inside it, is
    written before the audit log, and before anything is handed out. Before the request, room
    for the answer is reserved on the disk (a full disk refuses the refresh before the refresh
    token is spent) and the signals that end a process are held until the answer is written.

    The scopes granted are checked against ``policy`` when the answer arrives, as at login: a
    grant policy does not allow is never handed out (see ``_refuse_grant``). A refusal of the
    refresh token (`invalid_grant`) marks the token as needing a new login."""
    name = record.name
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
    try:
        editor.expect_answer(ANSWER_ROOM)
    except IntegrityError as exc:
        raise IntegrityError(
            f"cannot refresh {name!r}: {exc.message}; the refresh token was not spent",
            hint="free some space on the disk holding the vault, then retry",
        ) from exc
    try:
        with _http.client(REFRESH_DEADLINE) as http:
            tokens = _oauth.refresh(
                http, provider, token_endpoint, record.refresh_token, record.scopes
            )
    except AuthError as exc:
        hint = f"log in again: vault login {record.provider} --name {name}"
        failed = for_record(
            "refreshed", record, editor.meta.audit_key, outcome="failure", reason=exc.message
        )
        if exc.code != "invalid_grant":
            exc.hint = hint
            editor.audit(failed)
            raise
        # The provider will never take this refresh token again (expired, revoked, or seen
        # twice): the token is marked, kept like any answer, and never handed out or sent to
        # the provider again; a new login for the name replaces it.
        marked = replace(
            record,
            refresh_token=None,
            needs_login=LoginNeeded(
                "invalid_grant",
                "the provider refused its refresh token as expired or revoked [invalid_grant]",
                int(time.time()),
            ),
        )
        editor.keep(marked, failed)
        raise AuthError(
            f"{exc.message}; the token {name!r} needs a new login: "
            f"vault login {record.provider} --name {name}",
            hint="log in again: until then it is never handed out or refreshed",
            code="invalid_grant",
        ) from None
    refreshed_at = int(time.time())
    scopes = tokens.scopes if tokens.scope_reported else record.scopes
    updated = record.with_tokens(
        access_token=tokens.access_token,
        # RFC 6749 §6: the server may keep the old refresh token; keep it then.
        refresh_token=tokens.refresh_token or record.refresh_token,
        id_token=tokens.id_token or record.id_token,
        expires_at=None if tokens.expires_in is None else refreshed_at + tokens.expires_in,
        scopes=scopes,
        refreshed_at=refreshed_at,
    )
    denial = policy.grant_denial(record.identity(), scopes)
    if denial is not None:
        _refuse_grant(editor, updated, provider, denial)
    editor.keep(updated, for_record("refreshed", updated, editor.meta.audit_key))
    log(
        "token.refreshed",
        name=name,
        access_token=updated.access_token,
        rotated=tokens.refresh_token is not None,
        expires_at=updated.expires_at,
    )
    return updated


# A grant refused on refresh is revoked at once, still under the lock: this long at most.
REVOKE_DEADLINE = 10.0


def _refuse_grant(
    editor: Editor, granted: TokenRecord, provider: _providers.Provider, denial: Denial
) -> NoReturn:
    """The provider answered a refresh with scopes ``denial`` refuses: as at login, the grant
    must not live on. It is revoked at the provider (the new refresh token ends the grant) and
    the record is marked as needing a new login, so the over-granted token is never handed
    out; where the provider cannot be reached, its refresh token is kept with `revoke_pending`
    so that `vault prune` retries. The change is kept like any answer, with a `denied` record
    (the rule, the granted scopes, the fingerprint of the refused token); then PolicyError."""
    name = granted.name
    pending = False
    try:
        result = revoke_at_provider(provider, granted, timeout=REVOKE_DEADLINE)
        done = result.detail if result.revoked else f"not revoked ({result.detail})"
        if result.by_hand and not result.revoked:
            done += f"; revoke it by hand at {result.by_hand}"
    except (NetworkError, AuthError) as exc:
        pending = True
        done = f"not revoked yet ({exc.message}); `vault prune` retries"
    mark = LoginNeeded(
        "scope", f"a refresh was granted scopes policy does not allow: {denial.message}",
        int(time.time()),
    )  # fmt: skip
    marked = replace(
        granted,
        refresh_token=granted.refresh_token if pending else None,
        revoke_pending=pending,
        needs_login=mark,
    )
    told = f"the provider granted it on refresh: the token was {done}, and needs a new login"
    why = Denial(denial.rule, denial.source, f"{denial.message}; {told}")
    editor.keep(
        marked, for_record("denied", marked, editor.meta.audit_key, denial=why, command="refresh")
    )
    raise PolicyError(
        f"{denial.error().message}; {told}: vault login {granted.provider} --name {name}",
        rule=denial.rule,
        source=denial.source,
    )


@dataclass(frozen=True)
class Revocation:
    revoked: bool
    status: str  # revoked | unsupported | imported | failed
    detail: str
    by_hand: str | None = None


def revoke_at_provider(
    provider: _providers.Provider, record: TokenRecord, *, timeout: float = 30.0
) -> Revocation:
    """RFC 7009: revoke the refresh token (which ends the grant) or else the access token."""
    by_hand = provider.revoke_by_hand or record.issuer
    if record.source == "import":
        return Revocation(
            False, "imported", "vault cannot revoke a token it did not obtain itself", by_hand
        )
    endpoint = record.extra.get("revocation_endpoint")
    if not isinstance(endpoint, str):
        return Revocation(
            False,
            "unsupported",
            f"{provider.name} offers no revocation endpoint (RFC 7009) for this client",
            by_hand,
        )
    token, hint = (
        (record.refresh_token, "refresh_token")
        if record.refresh_token
        else (record.access_token, "access_token")
    )
    with _http.client(timeout) as http:
        _oauth.revoke(http, provider, endpoint, token, hint)
    return Revocation(True, "revoked", f"revoked at {_http.host_of(endpoint)}")


def revoke_and_delete(
    store: Store, providers: Providers, name: str, *, force: bool
) -> tuple[Revocation, bool]:
    """Revoke at the provider, then delete locally. A provider that cannot be reached keeps
    the token (exit 7) unless ``force``: a token forgotten locally may still be live."""
    with store.edit() as editor:
        record = editor.get(name)
        if record is None:
            raise NotFoundError.for_name(name)
        key = editor.meta.audit_key
        try:
            result = revoke_at_provider(provider_of(providers, record), record)
        except (NetworkError, AuthError) as exc:
            if not force:
                editor.audit(
                    for_record("revoked", record, key, outcome="failure", reason=exc.message)
                )
                raise NetworkError(
                    f"could not revoke {name!r} at the provider: {exc.message}; the token was kept",
                    hint="retry later, or pass --force to delete it locally anyway",
                    code=getattr(exc, "code", "network"),
                ) from None
            result = Revocation(False, "failed", exc.message)
        if result.revoked:
            editor.audit(for_record("revoked", record, key, reason=result.detail))
        else:
            editor.audit(
                for_record("deleted", record, key, outcome="not_revoked", reason=result.detail)
            )
        editor.delete(name)
    return result, True
