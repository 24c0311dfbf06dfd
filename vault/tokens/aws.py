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
2. otherwise, checked before anything is refreshed or sent, each refusal audited: the token
   has an ID token (a login with the ``openid`` scope), one that is valid for longer than
   ``min_valid`` or can be refreshed; policy leaves the token at least STS's minimum of 900 s
   (DurationSeconds is never more than what ``max_token_age`` leaves, so no set outlives it);
3. use_token again, refreshing first when the ID token expires within ``min_valid`` (its JWT
   ``exp``, read without verifying: STS verifies it), `used` audited; then the request;
4. the set kept with the record (under the name's lock, as a refresh is: a refresh of the
   name in flight keeps its answer, and the set waits for it); a failure to keep it is a
   warning, the set is served all the same.

A failure after the `used` record (STS refused, the ID token still expiring after a refresh)
adds a failed `used` record saying why. Nothing here prints.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass

from vault.errors import AuthError, NotFoundError, VaultError
from vault.policy.rules import Denial, format_duration
from vault.store.model import AwsCredentials, TokenRecord
from vault.tokens import sts
from vault.tokens.events import for_record
from vault.util.text import rfc3339

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, NoReturn

    from vault.login.providers import Provider
    from vault.policy.rules import Policy
    from vault.secret import Secret
    from vault.store.vault import Store

    Providers = Mapping[str, Provider]

NEVER = -(10**12)  # use_token's min_valid that never asks for a refresh
ALWAYS = 10**12  # ... and one that asks for one (unless another process just refreshed it)
ID_TOKEN_FLOOR = 10  # seconds an ID token must have left after a refresh to be sent at all
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
    now = clock()
    refresh_first = False
    if stored.id_token is None:
        _refuse(store, policy, name, what, _no_id_token(stored))
    elif not id_token_valid(stored.id_token, now, asked.min_valid):
        refresh_first = True
        problem = _unrefreshable(stored)
        if problem is not None:
            _refuse(store, policy, name, what, problem)
    denial = duration_denial(policy, stored, now)
    if denial is not None:
        _refuse(store, policy, name, what, denial)

    record = use_token(
        store,
        policy,
        providers,
        name,
        min_valid=ALWAYS if refresh_first else NEVER,
        command=what,
        clock=clock,
    )
    now = clock()
    token = record.id_token
    if token is None or not id_token_valid(token, now, ID_TOKEN_FLOOR):
        error = _no_id_token(record) if token is None else _still_expiring(record, token)
        _failed(store, record, what, error.message)
        raise error
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
    return Served(creds, until, cached=False, refreshed=refresh_first)


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


def claims(token: Secret) -> dict[str, Any]:
    """The payload of a JWT, not verified (for the expiry and a user name only; STS verifies
    the token itself); {} when it is not a JWT with a JSON object payload."""
    parts = token.reveal().split(".")
    if len(parts) != 3 or len(parts[1]) > 64 * 1024:
        return {}
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def id_token_valid(token: Secret, now: float, margin: int) -> bool:
    """Whether the ID token expires more than ``margin`` seconds from ``now`` (its ``exp``);
    one without a readable ``exp`` is taken as valid (STS is the judge)."""
    exp = claims(token).get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return True
    return exp - now > margin


def default_session_name(record: TokenRecord) -> str:
    """The role session name (it names the session in CloudTrail): the ID token's
    preferred_username, email or sub, else the token's name, made valid for STS."""
    said = claims(record.id_token) if record.id_token is not None else {}
    return sts.session_name_from(
        said.get("preferred_username"), said.get("email"), said.get("sub"), record.name
    )


def _no_id_token(record: TokenRecord) -> AuthError:
    return AuthError(
        f"the token {record.name!r} has no ID token to exchange with AWS STS",
        hint=f"log in with the openid scope: vault login {record.provider} --name {record.name} "
        "--scope openid (or add openid to the provider's scopes in config.yaml)",
        code="no_id_token",
    )


def _unrefreshable(record: TokenRecord) -> AuthError | None:
    """Why an expiring ID token cannot be renewed by a refresh, if it cannot."""
    from vault.tokens.use import check_refreshable

    if record.expires_at is None and record.refresh_token is not None:
        why = "its access token has no expiry, so vault never refreshes it"
    else:
        try:
            check_refreshable(record)
            return None
        except AuthError:
            why = "it has no refresh token"
    assert record.id_token is not None
    return AuthError(
        f"the ID token of {record.name!r} expires at {_expiry(record.id_token)} and {why}",
        hint=f"log in again: vault login {record.provider} --name {record.name}",
        code="expired",
    )


def _still_expiring(record: TokenRecord, token: Secret) -> AuthError:
    return AuthError(
        f"the ID token of {record.name!r} expires at {_expiry(token)}, and refreshing the "
        "token gave no newer one; nothing was sent to AWS STS",
        hint=f"log in again: vault login {record.provider} --name {record.name}",
        code="expired",
    )


def _expiry(token: Secret) -> str:
    exp = claims(token).get("exp")
    ok = isinstance(exp, (int, float)) and not isinstance(exp, bool)
    return (rfc3339(exp) or "?") if ok else "?"


# --- audit and the kept sets -----------------------------------------------------------------


def _refuse(
    store: Store, policy: Policy, name: str, what: str, why: AuthError | Denial
) -> NoReturn:
    """Refuse before the token is used: policy first (a token policy refuses says so,
    audited by refuse_unusable), then ``why`` audited (a failed `used`, or a `denied`) and
    raised."""
    from vault.tokens.use import refuse_unusable

    with store.edit() as editor:
        record = editor.get(name)
        if record is None:
            raise NotFoundError.for_name(name)
        refuse_unusable(policy, editor, record, command=what)
        key = editor.meta.audit_key
        if isinstance(why, Denial):
            editor.audit(for_record("denied", record, key, denial=why, command=what))
        else:
            editor.audit(
                for_record("used", record, key, outcome="failure", reason=why.message, command=what)
            )
    raise why.error() if isinstance(why, Denial) else why


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
