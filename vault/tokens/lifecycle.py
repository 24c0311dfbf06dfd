"""Refresh and revocation of stored tokens, with the provider asked outside the vault's lock.

A refresh sends its request while no vault lock is held, so that a provider slow to answer (up
to REFRESH_DEADLINE) delays no other command on the vault: reads, uses of other tokens, writes.
What the vault's lock gave the refresh before, the name's own lock gives it now
(vault.fs.durable.NameLock, in `vault.names.lock` beside the vault's lock): from the decision to
refresh until the answer is in the vault, one process (or one thread of the agent) holds it; a
second refresher of the same name waits for it, then reads the record again and finds it fresh
(`vault token`), or refreshes with the new refresh token (`vault refresh`): a refresh token is
never presented twice. The steps (``refresh``):

1. the name's lock; then under the vault's lock: the record read and checked by the caller
   (it exists and may be used: policy, needs_login, revoke_pending; it is still due: another
   process may have refreshed it meanwhile); room for the answer reserved on the disk (a full
   disk refuses the refresh before the refresh token is spent) and the terminating signals held
   (vault.util.signals); the vault's lock let go;
2. the request, with only the name's lock held;
3. the vault's lock again (waited for at least KEEP_WAIT), the record read again: if it is
   still the one whose refresh token was spent, the answer is kept as it always was
   (Editor.keep: the vault, with the rotated refresh token and the `refreshed` record journaled
   inside it, is written before the audit log, and both before the new access token is handed
   out; vault.store.vault says what each failure leaves). If it was deleted or replaced meanwhile
   (by a command that does not take the name's lock: a new login or import under the name) the
   answer is stored nowhere: it is revoked at the provider, best effort, that is audited, and the
   command fails (exit 4).

What the provider answers is judged before it is kept: scopes policy does not allow, or a
refused refresh token, mark the token as needing a new login instead of handing it out.

A second login for a stored name (``check_relogin``, before any request; ``replaced_by`` again
under the vault's lock) is refused unless forced or the stored token needs a new login; the
new token is stored first, then the grant it replaced is revoked (``retire_replaced``): a crash
or a failure between the two loses no token, only that revocation, which is audited honestly.

Revocation revokes every token of a grant: the refresh token, then the access token (some
providers leave access tokens live when the refresh token is revoked), one request each.

Revocation (`vault logout`/`revoke`; `vault prune` in vault.tokens.prune) asks the provider
outside the vault's lock too, holding the name's lock: no refresh of the name runs meanwhile (it
would rotate away the refresh token being revoked), and the vault's lock is held only for the
reading and writing around the request. No request to a provider is made under the vault's lock.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from vault.errors import (
    AuthError,
    IntegrityError,
    NetworkError,
    NotFoundError,
    PolicyError,
    UsageError,
    VaultError,
)
from vault.fs.durable import Busy, NameLock, lock_timeout
from vault.fs.paths import ensure_private_dir
from vault.login import http as _http
from vault.login import oauth as _oauth
from vault.login import providers as _providers
from vault.policy.rules import Denial
from vault.secret import compare_digest
from vault.store.model import LoginNeeded, TokenRecord
from vault.store.vault import ANSWER_LOST, Answer, Editor, Store
from vault.tokens.events import for_record
from vault.tokens.use import check_refreshable
from vault.util.record import replace
from vault.util.trace import log

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import NoReturn

    from vault.policy.rules import Policy
    from vault.secret import Secret

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


# The provider gets this long to answer a refresh, in total. Meanwhile the name's lock is held
# (another refresh of the same name waits that long at most), never the vault's.
REFRESH_DEADLINE = 15.0

# Room reserved on the disk, beyond the vault's size, before a refresh is sent: the most an
# answer can add (every token at the most vault.login.oauth accepts, its scopes in the record
# and in the records journaled beside it), and some.
ANSWER_ROOM = 4 * _oauth.MAX_TOKEN_CHARS + 3 * _oauth.MAX_SCOPE_CHARS + 16 * 1024

# Once the provider has answered, the answer exists nowhere else: the vault's lock is waited
# for at least this long to keep it, whatever VAULT_LOCK_TIMEOUT says (a timeout of 0 must not
# lose an answer to a `vault token` that happened to hold the lock). No command holds that lock
# across a request to a provider, so this is a bound, not a wait anyone should see.
KEEP_WAIT = 60.0

# A grant refused on refresh, or the answer for a token that went meanwhile, is revoked at once,
# the name's lock (not the vault's) held: this long at most.
REVOKE_DEADLINE = 10.0


def refresh(
    store: Store,
    providers: Providers,
    policy: Policy,
    name: str,
    *,
    due: Callable[[Editor], tuple[TokenRecord, bool]],
    finish: Callable[[Editor, TokenRecord], None] | None = None,
) -> TokenRecord:
    """Refresh the token ``name`` if ``due`` still says so, in the steps the module docstring
    gives; the record refreshed (or, if none was due, the one ``due`` found).

    ``due(editor)`` runs under the vault's lock, the name's lock held: it reads and checks the
    record (raising, after auditing what it refuses; check_refreshable among its checks), and
    says whether it is to be refreshed; if not, it has finished the command (audited the use).
    ``finish(editor, record)`` runs in the block that keeps the answer, after it is kept (the
    `used` record of `vault token`, appended with the `refreshed` one).

    The scopes granted are checked against ``policy`` when the answer arrives, as at login: a
    grant policy does not allow is never handed out (see ``_refuse_grant``). A refusal of the
    refresh token (`invalid_grant`) marks the token as needing a new login."""
    ensure_private_dir(store.paths.vault_dir)  # the name's lock lives there
    lock = NameLock(store.paths.name_lock_file, name)
    answer = Answer(store)
    try:
        lock.acquire()
        with store.edit(answer=answer) as editor:
            record, wanted = due(editor)
            if not wanted:
                return record
            try:
                editor.expect_answer(ANSWER_ROOM)
            except IntegrityError as exc:
                raise IntegrityError(
                    f"cannot refresh {name!r}: {exc.message}; the refresh token was not spent",
                    hint="free some space on the disk holding the vault, then retry",
                ) from exc
        provider = provider_of(providers, record)
        return _refresh_now(store, provider, policy, record, answer=answer, finish=finish)
    finally:
        lock.release()
        answer.end()  # last: it delivers the signals it held


def _refresh_now(
    store: Store,
    provider: _providers.Provider,
    policy: Policy,
    spent: TokenRecord,
    *,
    answer: Answer,
    finish: Callable[[Editor, TokenRecord], None] | None,
) -> TokenRecord:
    """Steps 2 and 3: the request for ``spent`` (no vault lock held), then its answer kept."""
    name = spent.name
    token_endpoint = check_refreshable(spent)
    assert spent.refresh_token is not None
    try:
        with _http.client(REFRESH_DEADLINE) as http:
            tokens = _oauth.refresh(
                http, provider, token_endpoint, spent.refresh_token, spent.scopes
            )
    except AuthError as exc:
        _refused(store, answer, spent, exc)
    refreshed_at = int(time.time())
    scopes = tokens.scopes if tokens.scope_reported else spent.scopes
    updated = spent.with_tokens(
        access_token=tokens.access_token,
        # RFC 6749 §6: the server may keep the old refresh token; keep it then.
        refresh_token=tokens.refresh_token or spent.refresh_token,
        id_token=tokens.id_token or spent.id_token,
        expires_at=None if tokens.expires_in is None else refreshed_at + tokens.expires_in,
        scopes=scopes,
        refreshed_at=refreshed_at,
    )
    denial = policy.grant_denial(spent.identity(), scopes)
    refusal = None if denial is None else _refuse_grant(updated, provider, denial)
    with _keeping(store, answer) as editor:
        current = editor.get(name)
        kept = _same(current, spent)
        if kept:
            if refusal is not None:
                refusal.keep(editor)  # raises PolicyError
            editor.keep(updated, for_record("refreshed", updated, editor.meta.audit_key))
            if finish is not None:
                finish(editor, updated)
    if not kept:
        _orphaned(store, provider, updated, gone=current is None, refusal=refusal)
    log(
        "token.refreshed",
        name=name,
        access_token=updated.access_token,
        rotated=tokens.refresh_token is not None,
        expires_at=updated.expires_at,
    )
    return updated


def _same(current: TokenRecord | None, spent: TokenRecord) -> bool:
    """Whether the stored record is still the one read before the request (nothing but a
    refresh under the name's lock, or a login, import or deletion, changes a record)."""
    return current is not None and compare_digest(current.to_json(), spent.to_json())


@contextlib.contextmanager
def _keeping(store: Store, answer: Answer) -> Iterator[Editor]:
    """The vault's lock for the block that keeps an answer, waited for at least KEEP_WAIT: a
    vault still busy then (vault.fs.durable.Busy) loses the answer, and says so."""
    try:
        with store.edit(answer=answer, timeout=max(lock_timeout(), KEEP_WAIT)) as editor:
            yield editor
    except Busy as exc:
        raise IntegrityError(
            f"{exc.message}; {ANSWER_LOST}",
            hint="find what holds the vault's lock that long; if the next refresh is refused, "
            "log in again",
        ) from exc


def _refused(store: Store, answer: Answer, spent: TokenRecord, exc: AuthError) -> NoReturn:
    """The provider refused the refresh: audited as a failed refresh; an `invalid_grant` (the
    refresh token is dead) also marks the token as needing a new login, kept like any answer."""
    name = spent.name
    hint = f"log in again: vault login {spent.provider} --name {name}"
    if exc.code != "invalid_grant":
        exc.hint = hint
        try:
            with store.edit(answer=answer) as editor:
                key = editor.meta.audit_key
                editor.audit(
                    for_record("refreshed", spent, key, outcome="failure", reason=exc.message)
                )
        except VaultError as failure:
            store.warnings.append(f"the audit record could not be written: {failure}")
        raise exc
    # The provider will never take this refresh token again (expired, revoked, or seen
    # twice): the token is marked, kept like any answer, and never handed out or sent to
    # the provider again; a new login for the name replaces it.
    marked = replace(
        spent,
        refresh_token=None,
        needs_login=LoginNeeded(
            "invalid_grant",
            _why_refused(exc),
            int(time.time()),
        ),
    )
    with _keeping(store, answer) as editor:
        current = editor.get(name)
        still = _same(current, spent)
        failed = for_record(
            "refreshed", spent, editor.meta.audit_key, outcome="failure", reason=exc.message
        )
        if still:
            editor.keep(marked, failed)
        else:
            editor.audit(failed)  # whatever holds the name now is left as it is
    if not still:
        raise _went(name, gone=current is None, what="the provider refused its refresh token")
    raise AuthError(
        f"{exc.message}; the token {name!r} needs a new login: "
        f"vault login {spent.provider} --name {name}",
        hint=f"{hint}; until then it is never handed out or refreshed",
        code="invalid_grant",
    ) from None


def _why_refused(exc: AuthError) -> str:
    """The needs_login reason of a refused refresh token: what the provider answered, when it
    named no error (an HTTP 400 with an empty or non-JSON body), else `invalid_grant`."""
    said = exc.message.removeprefix("token refresh: ")
    if said.startswith("the provider refused its refresh token (HTTP 400"):
        return said
    return "the provider refused its refresh token as expired or revoked [invalid_grant]"


def _went(name: str, *, gone: bool, what: str) -> AuthError:
    """The error of a refresh whose record was deleted (NotFoundError) or replaced meanwhile."""
    if gone:
        return NotFoundError(
            f"no token named {name!r} in the vault: it was deleted while it was being "
            f"refreshed; {what}",
            hint="`vault list` shows the stored names; `vault login` or `vault import` adds one",
            code="unknown_name",
        )
    return AuthError(
        f"the token {name!r} was replaced while it was being refreshed (a new login or import "
        f"stored another under the name); {what}",
        hint="run the command again: it uses the token stored now",
        code="replaced",
    )


def _orphaned(
    store: Store,
    provider: _providers.Provider,
    granted: TokenRecord,
    *,
    gone: bool,
    refusal: _Refusal | None,
) -> NoReturn:
    """The record whose refresh token was spent was deleted or replaced while the provider
    answered (by a command that does not take the name's lock). The answer must not be stored
    under whatever holds the name now: the grant it carries is revoked at the provider, best
    effort (a grant policy refused was revoked already), that is audited as a failed refresh
    (with the new access token's fingerprint), and the command fails (exit 4)."""
    if refusal is not None:
        done = refusal.outcome
    else:
        try:
            result = revoke_at_provider(provider, granted, timeout=REVOKE_DEADLINE)
            done = result.detail if result.revoked else f"not revoked ({result.detail})"
        except (NetworkError, AuthError) as exc:
            done = f"not revoked ({exc.message})"
    what = f"the provider's answer was not kept, and was {done}"
    went = "deleted" if gone else "replaced"
    reason = f"the token was {went} while it was being refreshed: {what}"
    try:
        with store.edit() as editor:
            key = editor.meta.audit_key
            editor.audit(for_record("refreshed", granted, key, outcome="failure", reason=reason))
    except VaultError as exc:
        store.warnings.append(f"the audit record could not be written: {exc}")
    raise _went(granted.name, gone=gone, what=what)


@dataclass(frozen=True)
class _Refusal:
    """A refresh answer whose scopes policy refuses, revoked (or not: ``marked`` then keeps
    its refresh token, revoke_pending): what to keep, and the error to raise then."""

    marked: TokenRecord
    denial: Denial
    error: PolicyError
    outcome: str  # of the revocation: "revoked at HOST", "not revoked (why)"

    def keep(self, editor: Editor) -> NoReturn:
        key = editor.meta.audit_key
        editor.keep(
            self.marked,
            for_record("denied", self.marked, key, denial=self.denial, command="refresh"),
        )
        raise self.error


def _refuse_grant(granted: TokenRecord, provider: _providers.Provider, denial: Denial) -> _Refusal:
    """The provider answered a refresh with scopes ``denial`` refuses: as at login, the grant
    must not live on. It is revoked at the provider at once (the new refresh token ends the
    grant; no vault lock is held) and the record is marked as needing a new login, so the
    over-granted token is never handed out; where the provider cannot be reached, its refresh
    token is kept with `revoke_pending` so that `vault prune` retries. The change is then kept
    like any answer, with a `denied` record (the rule, the granted scopes, the fingerprint of
    the refused token), and PolicyError raised (``_Refusal.keep``)."""
    name = granted.name
    pending = False
    try:
        result = revoke_at_provider(provider, granted, timeout=REVOKE_DEADLINE)
        done = outcome = result.detail if result.revoked else f"not revoked ({result.detail})"
        if result.by_hand and not result.revoked:
            done += f"; revoke it by hand at {result.by_hand}"
    except (NetworkError, AuthError) as exc:
        pending = True
        outcome = f"not revoked ({exc.message})"
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
    error = PolicyError(
        f"{denial.error().message}; {told}: vault login {granted.provider} --name {name}",
        rule=denial.rule,
        source=denial.source,
    )
    return _Refusal(marked, why, error, outcome)


@dataclass(frozen=True)
class Revocation:
    revoked: bool
    status: str  # revoked | unsupported | imported | failed | kept (all ``keep``'s)
    detail: str
    by_hand: str | None = None
    tokens: tuple[str, ...] = ()  # the kinds revoked: refresh_token, access_token


# What a grant's tokens are called in what the person reads and the audit log holds.
_KINDS = {"refresh_token": "refresh token", "access_token": "access token"}


def _grant_tokens(record: TokenRecord, now: float) -> list[tuple[Secret, str]]:
    """The tokens of ``record``'s grant that may still be live, as (token, RFC 7009 hint): its
    refresh token and its access token (some providers do not end the access tokens of a grant
    whose refresh token is revoked), the access token unless it is known to have expired."""
    tokens: list[tuple[Secret, str]] = []
    if record.refresh_token:
        tokens.append((record.refresh_token, "refresh_token"))
    if record.expires_at is None or record.expires_at > now or not tokens:
        tokens.append((record.access_token, "access_token"))
    return tokens


def _listed(kinds: list[str]) -> str:
    return " and ".join(_KINDS[kind] for kind in kinds)


def revoke_at_provider(
    provider: _providers.Provider,
    record: TokenRecord,
    *,
    timeout: float = 30.0,
    keep: TokenRecord | None = None,
) -> Revocation:
    """RFC 7009: revoke every token of the grant ``record`` holds, one request each with its
    token_type_hint: the refresh token (which ends the grant where the provider keeps grants),
    then the access token (which some providers leave live), unless it has expired. A token
    ``keep`` holds too (a provider that answered a new login with the same token) is not
    revoked: it is the new one's.

    Every token is tried; if any request fails, the error of the first failure is raised, its
    message saying which tokens were revoked and which were not (NetworkError or AuthError, as
    vault.login.oauth.revoke raised it). A Revocation says what was revoked, never more."""
    by_hand = provider.revoke_by_hand or record.issuer
    if record.source == "import":
        return Revocation(
            False, "imported", "vault cannot revoke a token it did not obtain itself", by_hand
        )
    if record.identity().preset == "github":
        if keep is not None and keep.access_token == record.access_token:
            # An OAuth App answers a new login with the token it gave before: it is the new one.
            return Revocation(
                False, "kept", "the new login holds the same token: nothing to revoke"
            )
        return _revoke_at_github(provider, record, timeout=timeout)
    endpoint = record.extra.get("revocation_endpoint")
    if not isinstance(endpoint, str):
        return Revocation(
            False,
            "unsupported",
            f"{provider.name} offers no revocation endpoint (RFC 7009) for this client",
            by_hand,
        )
    kept = () if keep is None else (keep.access_token, keep.refresh_token)
    tokens = [
        (token, hint)
        for token, hint in _grant_tokens(record, time.time())
        if not any(other is not None and token == other for other in kept)
    ]
    host = _http.host_of(endpoint)
    if not tokens:
        return Revocation(False, "kept", "the new login holds the same tokens: nothing to revoke")
    done: list[str] = []
    failed: list[str] = []
    first: NetworkError | AuthError | None = None
    with _http.client(timeout) as http:
        for token, hint in tokens:
            try:
                _oauth.revoke(http, provider, endpoint, token, hint)
                done.append(hint)
            except (NetworkError, AuthError) as exc:
                failed.append(hint)
                first = first or exc
    if first is not None:
        what = f"the {_listed(done)} revoked, " if done else ""
        first.message = f"{first.message} ({what}the {_listed(failed)} NOT revoked)"
        raise first
    return Revocation(
        True, "revoked", f"revoked at {host}: the {_listed(done)}", tokens=tuple(done)
    )


def check_relogin(store: Store, name: str, *, force: bool) -> TokenRecord | None:
    """Before a login sends any request: the token stored as ``name`` that the login would
    replace (None if there is none). Without ``force`` a live one is refused (UsageError, exit
    2), naming it; one that needs a new login (the provider refused it) is replaced without
    ``force``, as the error that marked it tells the person to log in again. Both login flows
    call this first; the store step checks again under the vault's lock (``replaced_by``)."""
    if not store.exists():
        return None
    snapshot = store.read()
    record = snapshot.get(name) if snapshot is not None else None
    if record is not None and record.needs_login is None and not force:
        raise _refusal(record)
    return record


class NameTaken(UsageError):
    """A login refused because a live token is stored under the name (exit 2)."""


def _refusal(record: TokenRecord) -> NameTaken:
    from vault.util.text import rfc3339

    who = record.whom()
    of = f", account {who!r}" if who else ""
    return NameTaken(
        f"a token named {record.name!r} is already stored ({record.provider}{of}, issued "
        f"{rfc3339(record.issued_at)}); nothing was sent to the provider",
        hint="pass --force to replace it and revoke the grant it holds",
    )


def replaced_by(current: TokenRecord | None, *, force: bool) -> TokenRecord | None:
    """In the store step of a login, under the vault's lock: the stored record the new token
    replaces (None if none), refused as ``check_relogin`` refuses (a token stored under the
    name while the person logged in)."""
    if current is not None and current.needs_login is None and not force:
        raise _refusal(current)
    return current


@dataclass(frozen=True)
class Retired:
    """What became of the grant a new login replaced: ``revoked`` only if every token of it
    was; else ``problem`` says why not, ``by_hand`` where to revoke it by hand."""

    revoked: bool
    detail: str
    problem: str | None = None
    by_hand: str | None = None
    same: bool = False  # the provider handed out the same tokens again: nothing to revoke


REPLACED = "replaced by a new login"


def retire_replaced(
    store: Store, providers: Providers, old: TokenRecord, new: TokenRecord
) -> Retired:
    """After a new login stored ``new`` in place of ``old`` (``new`` is in the vault first: a
    crash or a failure here loses nothing but this revocation): the grant ``old`` held is
    revoked at the provider (``revoke_at_provider``, sparing any token ``new`` holds too), and
    a `revoked` record audits it, reason "replaced by a new login", outcome success, failure
    (the request failed) or not_revoked (the provider or the token cannot be revoked). Never
    raises for the provider or the audit log: the new login succeeded; the caller warns."""
    provider = provider_of(providers, old)
    problem: str | None = None
    by_hand: str | None = None
    outcome = "success"
    try:
        result = revoke_at_provider(provider, old, timeout=REVOKE_DEADLINE, keep=new)
        detail = result.detail
        if result.status == "kept":  # the provider handed out the same token again
            return Retired(True, detail, same=True)  # nothing ended: no `revoked` record
        if not result.revoked:
            outcome, problem, by_hand = "not_revoked", result.detail, result.by_hand
    except (NetworkError, AuthError) as exc:
        outcome, problem, detail = "failure", exc.message, exc.message
        by_hand = provider.revoke_by_hand or old.issuer
    reason = f"{REPLACED}: {detail}" if problem is None else f"{REPLACED}; not revoked: {detail}"
    try:
        with store.edit() as editor:
            editor.audit(
                for_record(
                    "revoked",
                    old,
                    editor.meta.audit_key,
                    outcome=outcome,
                    reason=reason,
                    command="login",
                )
            )
    except VaultError as exc:
        store.warnings.append(f"the audit record could not be written: {exc}")
    return Retired(problem is None, detail, problem, by_hand)


def _revoke_at_github(
    provider: _providers.Provider, record: TokenRecord, *, timeout: float
) -> Revocation:
    """GitHub has no RFC 7009 endpoint: vault.login.github.revoke, with the app's client
    secret (without one: not revoked, and where to do it by hand). A GitHub App token whose
    access token has expired is refreshed first (GitHub deletes only a live access token); the
    new pair is never stored, its access token is the one deleted."""
    from vault.login import github as _github

    page = provider.revoke_by_hand or f"{record.issuer.rstrip('/')}/settings/applications"
    by_hand = _github.settings_url(page, record.extra.get("github_token"))
    api = record.extra.get("api_base")
    if not isinstance(api, str):
        return Revocation(False, "unsupported", "the record names no GitHub API", by_hand)
    token = record.access_token
    with _http.client(timeout) as http:
        if provider.client_secret is None:
            result = _github.revoke(
                http, provider, api_base=api, client_id=record.client_id, access_token=token
            )
            return Revocation(False, "unsupported", result.detail, by_hand)
        endpoint = record.extra.get("token_endpoint")
        expired = record.expires_at is not None and record.expires_at <= time.time() + 30
        if expired and record.refresh_token is not None and isinstance(endpoint, str):
            token = _oauth.refresh(
                http, provider, endpoint, record.refresh_token, record.scopes
            ).access_token
        result = _github.revoke(
            http, provider, api_base=api, client_id=record.client_id, access_token=token
        )
    return Revocation(result.revoked, "revoked" if result.revoked else "failed", result.detail)


def revoke_and_delete(
    store: Store, providers: Providers, name: str, *, force: bool
) -> tuple[Revocation, bool]:
    """Revoke at the provider, then delete locally; (the revocation, whether it was deleted).
    A provider that cannot be reached keeps the token (exit 7) unless ``force``: a token
    forgotten locally may still be live.

    The request is made holding the name's lock (no refresh of the name runs meanwhile: it
    would rotate away the refresh token being revoked), not the vault's: other commands go on.
    A token stored under the name meanwhile (a new login or import) is not the one revoked: it
    is kept, the audit record of the revocation says so, and deleted is False."""
    if not store.exists():
        raise NotFoundError.for_name(name)
    with NameLock(store.paths.name_lock_file, name):
        snapshot = store.read()
        record = snapshot.get(name) if snapshot is not None else None
        if record is None:
            raise NotFoundError.for_name(name)
        failure: NetworkError | AuthError | None = None
        try:
            result = revoke_at_provider(provider_of(providers, record), record)
        except (NetworkError, AuthError) as exc:
            failure, result = exc, Revocation(False, "failed", exc.message)
        with store.edit() as editor:
            key = editor.meta.audit_key
            current = editor.get(name)
            replaced = current is not None and not _same(current, record)
            if failure is not None and not force:
                editor.audit(
                    for_record("revoked", record, key, outcome="failure", reason=failure.message)
                )
                raise NetworkError(
                    f"could not revoke {name!r} at the provider: {failure.message}; the token "
                    "was kept",
                    hint="retry later, or pass --force to delete it locally anyway",
                    code=getattr(failure, "code", "network"),
                ) from None
            reason = result.detail
            if replaced:
                reason += (
                    "; a token stored under the name meanwhile (a new login or import) was kept"
                )
            if result.revoked:
                editor.audit(for_record("revoked", record, key, reason=reason))
            else:
                editor.audit(
                    for_record("deleted", record, key, outcome="not_revoked", reason=reason)
                )
            if not replaced:
                editor.delete(name)
    return result, not replaced
