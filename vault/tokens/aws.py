"""AWS credentials for a stored token: its ID token exchanged with STS (vault.tokens.sts), the
temporary credentials kept inside the vault with the token, and served from there until shortly
before they expire.

Every serve, fresh or from the vault, goes through vault.tokens.use.use_token: policy checked
(a token policy no longer allows is never served, nor any set kept with it), refreshed first
where the ID token needs it, and a `used` record (naming the role and the calling tool) fsynced
before anything leaves. The steps (``serve``):

1. the stored record, through use_token without a refresh: a set kept for the same role,
   session name and duration with more than ``min_valid`` left (its expiry capped by the
   token's ``max_token_age`` since login) is served: `used`, "cached";
2. otherwise, checked before anything is refreshed or sent: policy leaves the token at least
   STS's minimum of 900 s (DurationSeconds is never more than what ``max_token_age`` leaves,
   so no set outlives it), else a `denied` record and PolicyError;
3. use_token again, for the ID token (``want="id_token"``): a record without one is refused
   (a login with the ``openid`` scope gives one), one that expires within ``min_valid`` (its
   JWT ``exp``) is refreshed first, and one a refresh did not renew is refused, each audited;
   otherwise `used` audited; then the request;
4. the set kept with the record (under the name's lock, as a refresh is: a refresh of the
   name in flight keeps its answer, and the set waits for it); a failure to keep it is a
   warning, the set is served all the same.

A failure after the `used` record (STS refused, unreachable, answered garbage) adds a failed
`used` record saying why. Nothing here prints.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from vault.errors import NotFoundError, VaultError
from vault.policy.rules import Denial, format_duration
from vault.store.model import AwsCredentials, TokenRecord
from vault.tokens import sts
from vault.tokens.events import for_record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import NoReturn

    from vault.login.providers import Provider
    from vault.policy.rules import Policy
    from vault.store.vault import Store

    Providers = Mapping[str, Provider]

NEVER = -(10**12)  # use_token's min_valid that never asks for a refresh
MAX_KEPT = 8  # sets kept per token (roles, durations, session names); the oldest go first
KEEP_WAIT = 10.0  # seconds to wait for the name's lock to keep a set; then it is not kept
_AWS_HOST = re.compile(r"sts(?:\.[a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?(?::443)?", re.ASCII)


@dataclass(frozen=True)
class Asked:
    """What `vault aws` asks for. ``session_name`` None: made from the token (the ID token's
    preferred_username, email or sub, else the token's name). ``min_valid``: the set served
    has more than this left, and the ID token sent more than this (else refreshed first)."""

    role_arn: str
    duration: int
    endpoint: str
    tool: str  # the calling tool, for the audit record (vault.util.peer)
    session_name: str | None = None
    min_valid: int = 300

    def command(self, *, cached: bool) -> str:
        """What the audit record calls the use: the role, "cached" for a set served from the
        vault, the endpoint's host when it is not AWS's own (the ID token went there), and the
        calling tool."""
        from vault.login.http import host_of

        host = host_of(self.endpoint).lower()
        via = "" if _AWS_HOST.fullmatch(host) else f" via {host}"
        return f"aws sts {self.role_arn}{' cached' if cached else ''}{via} ({self.tool})"


@dataclass(frozen=True)
class Served:
    credentials: AwsCredentials
    expiration: int  # as handed out: STS's, or earlier where max_token_age ends first
    cached: bool  # served from the vault, without a request
    refreshed: bool  # the token was refreshed first, for a valid ID token


class _Miss(Exception):
    """No set kept for the request: the stored record, as use_token read it."""

    def __init__(self, record: TokenRecord) -> None:
        super().__init__("no kept set")
        self.record = record


def serve(
    store: Store,
    policy: Policy,
    providers: Providers,
    name: str,
    asked: Asked,
    *,
    clock: Callable[[], float] = time.time,
) -> Served:
    """AWS credentials for ``asked`` from the token ``name``, in the steps the module docstring
    gives. Raises AuthError (no such token, no usable ID token, STS refused: exit 4),
    PolicyError (exit 5), UsageError (STS refused a parameter: exit 2), NetworkError (exit 7),
    IntegrityError (exit 6)."""
    from vault.tokens.use import use_token

    found: list[Served] = []

    def kept(record: TokenRecord) -> str:
        now = clock()
        session = asked.session_name or default_session_name(record)
        limit = age_limit(policy, record)
        for creds in record.aws:
            if not creds.matches(asked.role_arn, session, asked.duration):
                continue
            until = creds.expiration if limit is None else min(creds.expiration, limit)
            if until - now > asked.min_valid:
                found[:] = [Served(creds, until, cached=True, refreshed=False)]
                return asked.command(cached=True)
        raise _Miss(record)

    try:
        use_token(store, policy, providers, name, min_valid=NEVER, command=kept, clock=clock)
        return found[0]
    except _Miss as miss:
        stored = miss.record
    return _exchange(store, policy, providers, stored, asked, clock=clock)


def _exchange(
    store: Store,
    policy: Policy,
    providers: Providers,
    stored: TokenRecord,
    asked: Asked,
    *,
    clock: Callable[[], float],
) -> Served:
    from vault.login.http import client
    from vault.tokens.use import use_token

    name = stored.name
    what = asked.command(cached=False)
    denial = duration_denial(policy, stored, clock())
    if denial is not None:
        _refuse(store, policy, name, what, denial)
    # The ID token is what is handed out (to STS): use_token refuses a record without one,
    # refreshes first when it expires within min_valid, and refuses one a refresh did not
    # renew; each audited.
    record = use_token(
        store,
        policy,
        providers,
        name,
        min_valid=asked.min_valid,
        command=what,
        want="id_token",
        clock=clock,
    )
    token = record.id_token
    assert token is not None  # use_token(want="id_token") refuses a record without one
    now = clock()
    refreshed = record.last_refresh != stored.last_refresh
    denial = duration_denial(policy, record, now)  # the record as it is now (a refresh)
    if denial is not None:
        _refuse(store, policy, name, what, denial)
    limit = age_limit(policy, record)
    duration = asked.duration if limit is None else min(asked.duration, int(limit - now))
    session = asked.session_name or default_session_name(record)
    try:
        with client(sts.DEADLINE) as http:
            issued = sts.assume_role_with_web_identity(
                http,
                asked.endpoint,
                role_arn=asked.role_arn,
                session_name=session,
                web_identity_token=token,
                duration=duration,
                now=now,
            )
    except VaultError as exc:
        _failed(store, record, what, f"STS: {exc.message}")
        raise
    creds = AwsCredentials(
        role_arn=asked.role_arn,
        session_name=session,
        duration=asked.duration,
        access_key_id=issued.access_key_id,
        secret_access_key=issued.secret_access_key,
        session_token=issued.session_token,
        expiration=issued.expiration,
        obtained=int(now),
    )
    _keep(store, record, creds, now)
    until = creds.expiration if limit is None else min(creds.expiration, limit)
    return Served(creds, until, cached=False, refreshed=refreshed)


# --- decisions on the stored record ------------------------------------------------------


def age_limit(policy: Policy, record: TokenRecord) -> int | None:
    """When policy's ``max_token_age`` ends this token (UNIX seconds), if any rule sets one."""
    rule = policy.max_token_age(record.identity())
    return None if rule is None else record.issued_at + int(rule.value)


def duration_denial(policy: Policy, record: TokenRecord, now: float) -> Denial | None:
    """A denial when policy leaves the token less than STS's shortest lifetime (900 s): any
    set STS gave would outlive the token's ``max_token_age``."""
    rule = policy.max_token_age(record.identity())
    if rule is None:
        return None
    left = record.issued_at + int(rule.value) - now
    if left >= sts.MIN_DURATION:
        return None
    return Denial(
        "max_token_age",
        rule.source,
        f"the token has {format_duration(max(0, int(left)))} left of its maximum "
        f"{format_duration(int(rule.value))} since login, and AWS credentials last at least "
        f"{format_duration(sts.MIN_DURATION)}",
    )


def default_session_name(record: TokenRecord) -> str:
    """The role session name (it names the session in CloudTrail): the ID token's
    preferred_username, email or sub (read without verifying: STS verifies the token), else
    the token's name, made valid for STS."""
    from vault.util import jwt

    said = (jwt.claims(record.id_token.reveal()) if record.id_token is not None else None) or {}
    return sts.session_name_from(
        said.get("preferred_username"), said.get("email"), said.get("sub"), record.name
    )


# --- audit and the kept sets -----------------------------------------------------------------


def _refuse(store: Store, policy: Policy, name: str, what: str, denial: Denial) -> NoReturn:
    """Refuse before the token is used: policy first (a token policy refuses says so, audited
    by refuse_unusable), then ``denial`` audited as a `denied` record and raised."""
    from vault.tokens.use import refuse_unusable

    with store.edit() as editor:
        record = editor.get(name)
        if record is None:
            raise NotFoundError.for_name(name)
        refuse_unusable(policy, editor, record, command=what)
        key = editor.meta.audit_key
        editor.audit(for_record("denied", record, key, denial=denial, command=what))
    raise denial.error()


def _failed(store: Store, record: TokenRecord, what: str, reason: str) -> None:
    """A failed `used` record after the successful one (the request did not give a set)."""
    try:
        with store.edit() as editor:
            key = editor.meta.audit_key
            editor.audit(
                for_record("used", record, key, outcome="failure", reason=reason, command=what)
            )
    except VaultError as exc:
        store.warnings.append(f"the audit record could not be written: {exc.message}")


def _same_login(current: TokenRecord, used: TokenRecord) -> bool:
    """Whether ``current`` is still the token ``used`` was (refreshed, perhaps), and usable:
    not replaced by a new login or import, not marked since."""
    return (
        (current.issued_at, current.provider, current.issuer, current.client_id, current.source)
        == (used.issued_at, used.provider, used.issuer, used.client_id, used.source)
        and current.needs_login is None
        and not current.revoke_pending
    )


def _keep(store: Store, used: TokenRecord, creds: AwsCredentials, now: float) -> None:
    """Keep ``creds`` with the token they came from (step 4 of the module docstring): the sets
    that expired, and one for the same request, go; at most MAX_KEPT stay. Best effort."""
    from vault.fs.durable import NameLock
    from vault.util.record import replace

    lock = NameLock(store.paths.name_lock_file, used.name)
    try:
        lock.acquire(timeout=KEEP_WAIT)
        with store.edit() as editor:
            current = editor.get(used.name)
            if current is None or not _same_login(current, used):
                return  # deleted or replaced meanwhile: the set goes with what it came from
            others = [
                c
                for c in current.aws
                if c.expiration > now
                and not c.matches(creds.role_arn, creds.session_name, creds.duration)
            ]
            kept = (*others[-(MAX_KEPT - 1) :], creds)
            editor.put(replace(current, aws=kept))
    except VaultError as exc:
        store.warnings.append(
            f"the AWS credentials were not kept in the vault ({exc.message}); the next call "
            "asks STS again"
        )
    finally:
        lock.release()
