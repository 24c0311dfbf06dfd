"""Obtaining a token: the device authorization grant or the authorization code grant with
PKCE (the web login) under policy, or a token a person hands over (import), then the token
stored and its issue audited, naming the grant.

The person's side (what is shown, the countdown, reading the pasted token) is passed in by the
caller; nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from vault.errors import ConfigError, PolicyError, UsageError, VaultError
from vault.login import http as http_
from vault.login import loopback, oauth, pkce
from vault.login.providers import Provider
from vault.policy.rules import Policy
from vault.secret import Secret
from vault.store.model import TokenRecord
from vault.store.vault import Store
from vault.tokens.events import for_denial, for_record
from vault.tokens.whoami import lookup as lookup_account
from vault.util.record import replace
from vault.util.redact import scrub_text
from vault.util.text import check_scopes
from vault.util.trace import log

if TYPE_CHECKING:
    import httpx


class DeviceScreen(Protocol):
    """The person's view of a device-flow login."""

    def show(
        self, provider: Provider, endpoints: oauth.Endpoints, device: oauth.DeviceAuthorization
    ) -> None:
        """The code is known: show where to enter it."""

    def tick(self, remaining: float) -> None:
        """Still waiting; ``remaining`` seconds until the code expires."""

    def end_ticks(self) -> None:
        """The wait is over (either way)."""


DEVICE_GRANT = "device_code"
WEB_GRANT = "authorization_code"


class WebScreen(Protocol):
    """The person's view of a web (authorization code) login."""

    def show_authorization(
        self, provider: Provider, endpoints: oauth.Endpoints, url: str, wait: float
    ) -> None:
        """The browser must go to ``url`` (open it, or show it); the wait is ``wait`` s."""

    def tick(self, remaining: float) -> None:
        """Still waiting; ``remaining`` seconds until the wait ends."""

    def end_ticks(self) -> None:
        """The wait is over (either way)."""


def check_login(
    policy: Policy, provider: Provider, scopes: tuple[str, ...], grant: str | None
) -> tuple[str, ...]:
    """Everything about a login that is known before any request: a client_id, scopes that
    can be scopes, and policy (``allowed_grants`` for ``grant`` when given, issuers, scopes).
    Returns the scopes; raises the refusal (PolicyError, exit 5) without a request made."""
    if not provider.client_id:
        raise ConfigError(
            f"provider {provider.name!r} has no client_id ({provider.source})",
            hint=provider.register_app,
        )
    scopes = check_scopes(scopes, "--scope", UsageError)
    who = provider.identity()
    denial = (policy.grant_type_denial(who, grant) if grant else None) or policy.grant_denial(
        who, scopes
    )
    if denial is not None:
        raise denial.error()
    return scopes


def discover(http: httpx.Client, provider: Provider) -> oauth.Endpoints:
    """The provider's endpoints (vault.login.oauth.discover), logged."""
    endpoints = oauth.discover(http, provider)
    log(
        "login.discovered",
        provider=provider.name,
        issuer=endpoints.issuer,
        token_endpoint=endpoints.token_endpoint,
    )
    return endpoints


def find_endpoints(provider: Provider) -> oauth.Endpoints:
    """:func:`discover` on a client of its own (for choosing a grant before a login)."""
    with http_.client() as http:
        return discover(http, provider)


def device_login(
    store: Store,
    policy: Policy,
    provider: Provider,
    *,
    name: str,
    scopes: tuple[str, ...],
    screen: DeviceScreen,
    endpoints: oauth.Endpoints | None = None,
    force: bool = False,
) -> Stored:
    """Log in to ``provider`` with the device authorization grant (RFC 8628) and store the
    token set as ``name``. Policy and the vault are checked before the person is involved, and
    what the provider granted is checked before anything is stored: a grant policy forbids is
    revoked at the provider and nothing is kept. ``endpoints``, when given, were discovered
    already (no second discovery). A token stored as ``name`` is replaced only as
    ``store_login`` says (the caller checked vault.tokens.lifecycle.check_relogin before)."""
    scopes = check_login(policy, provider, scopes, DEVICE_GRANT)
    store.preflight()
    with http_.client() as http:
        endpoints = endpoints or discover(http, provider)
        device = oauth.request_device_code(http, provider, endpoints, scopes)
        log(
            "login.device_code",
            user_code=device.user_code,
            device_code=device.device_code,
            expires_in=device.expires_in,
            interval=device.interval,
        )
        screen.show(provider, endpoints, device)
        tokens = oauth.poll(http, provider, endpoints, device, scopes, on_wait=screen.tick)
    screen.end_ticks()
    return keep_login(
        store,
        policy,
        provider,
        endpoints,
        tokens,
        name=name,
        grant=DEVICE_GRANT,
        reason="device flow login",
        force=force,
    )


def web_login(
    store: Store,
    policy: Policy,
    provider: Provider,
    *,
    name: str,
    scopes: tuple[str, ...],
    screen: WebScreen,
    wait: float = loopback.DEFAULT_WAIT,
    endpoints: oauth.Endpoints | None = None,
    clock: Callable[[], float] = time.monotonic,
    force: bool = False,
) -> Stored:
    """Log in to ``provider`` with the authorization code grant, PKCE (S256) and a loopback
    redirect (RFC 8252 §7.3), and store the token set as ``name``: the same policy checks,
    storing and audit as :func:`device_login`. The listener on 127.0.0.1 takes one
    ``/callback`` request within ``wait`` seconds and is closed before the code is exchanged;
    the browser is told how it ended."""
    scopes = check_login(policy, provider, scopes, WEB_GRANT)
    wait = loopback.check_wait(wait)
    store.preflight()
    with http_.client() as http:
        endpoints = endpoints or discover(http, provider)
        with loopback.Loopback() as listener:
            auth = pkce.start(provider, endpoints, scopes, listener.redirect_uri)
            log("login.authorization", redirect_uri=auth.redirect_uri)
            screen.show_authorization(provider, endpoints, auth.url, wait)
            try:
                callback = listener.wait(wait, clock=clock, on_wait=screen.tick)
            finally:
                screen.end_ticks()
        with callback:
            try:
                code = pkce.parse_response(callback.query, auth, endpoints)
                tokens = pkce.exchange(http, provider, endpoints, auth, code, requested=scopes)
                try:
                    pkce.check_id_token(tokens.id_token, auth.nonce)
                except VaultError:
                    _revoke_unwanted(provider, endpoints, tokens)  # they answer another login
                    raise
                stored = keep_login(
                    store,
                    policy,
                    provider,
                    endpoints,
                    tokens,
                    name=name,
                    grant=WEB_GRANT,
                    reason="web login (authorization code with PKCE)",
                    force=force,
                )
            except VaultError as exc:
                callback.respond(False, f"vault did not log you in: {scrub_text(exc.message)}")
                raise
            callback.respond(True, f"vault stored {name!r}. You can close this tab.")
    return stored


def keep_login(
    store: Store,
    policy: Policy,
    provider: Provider,
    endpoints: oauth.Endpoints,
    tokens: oauth.TokenSet,
    *,
    name: str,
    grant: str,
    reason: str,
    force: bool = False,
) -> Stored:
    """What every login does with the tokens it got: what the provider granted is checked
    against policy (a grant policy forbids is revoked at the provider and nothing is kept),
    then the record is stored and its issue audited, naming the ``grant``."""
    who = provider.identity()
    denial = policy.grant_denial(who, tokens.scopes)
    if denial is not None:
        # The provider granted more than policy allows: the token must not live on.
        outcome = _revoke_unwanted(provider, endpoints, tokens)
        raise PolicyError(
            f"{denial.error().message}; the provider granted it, so the token was {outcome} and "
            "nothing was stored",
            rule=denial.rule,
            source=denial.source,
        )
    with http_.client() as http:  # whom the token belongs to: best effort, never fails here
        account = lookup_account(http, provider, endpoints, tokens)
    now = int(time.time())
    record = TokenRecord(
        name=name,
        provider=provider.name,
        issuer=who.issuer,
        client_id=provider.client_id or "",
        token_type=tokens.token_type,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        id_token=tokens.id_token,
        scopes=tokens.scopes,
        issued_at=now,
        expires_at=None if tokens.expires_in is None else now + tokens.expires_in,
        last_refresh=None,
        source="login",
        extra=endpoint_extra(provider, endpoints, tokens),
        account=account,
    )
    return store_login(store, provider, record, force=force, reason=reason, grant=grant)


@dataclass(frozen=True)
class Stored:
    """A new login's record, as stored, and the record it replaced under its name (None if
    none), whose grant the caller revokes next (vault.tokens.lifecycle.retire_replaced)."""

    record: TokenRecord
    replaced: TokenRecord | None


def store_login(
    store: Store,
    provider: Provider,
    record: TokenRecord,
    *,
    force: bool,
    reason: str,
    grant: str | None = None,
) -> Stored:
    """Store a new login's ``record`` as ``record.name`` with its `issued` audit record
    (``reason`` names the grant), in one write, whatever flow obtained it.

    A token already stored as the name is replaced only with ``force`` or when it needs a new
    login (vault.tokens.lifecycle.replaced_by): the new token is stored first, so nothing a
    crash or the provider does next can lose it, and the `issued` record says that it replaces
    one. If a live token was stored under the name while the person logged in (without
    ``force``), nothing is stored: the new grant is revoked at the provider (best effort, and
    said) and NameTaken (a UsageError) raised."""
    from vault.tokens.lifecycle import NameTaken, replaced_by, revoke_at_provider

    try:
        with store.edit() as editor:
            replaced = replaced_by(editor.get(record.name), force=force)
            if replaced is not None:
                reason += "; replaces the token stored under the name (its grant is revoked next)"
            editor.put(record)
            editor.audit(
                for_record(
                    "issued",
                    record,
                    editor.meta.audit_key,
                    reason=reason,
                    command="login",
                    grant=grant,
                    account=record.account,
                )
            )
    except NameTaken as exc:
        try:
            result = revoke_at_provider(provider, record, timeout=10.0)
            done = "revoked" if result.revoked else f"NOT revoked ({result.detail})"
        except VaultError as failure:
            done = f"NOT revoked ({failure.message})"
        exc.message = (
            f"{exc.message.partition('; nothing was sent')[0]}: it was stored while this login "
            f"waited, so the new token was {done} and nothing was stored"
        )
        raise
    return Stored(record, replaced)


def _revoke_unwanted(provider: Provider, endpoints: oauth.Endpoints, tokens: oauth.TokenSet) -> str:
    """Revoke a grant policy refused; what became of it: "revoked", or "NOT revoked (why)"
    (never reported revoked where it was not)."""
    if provider.preset == "github":
        from vault.login import github

        try:
            with http_.client() as http:
                done = github.revoke(
                    http,
                    provider,
                    api_base=provider.api_base or "",
                    client_id=provider.client_id or "",
                    access_token=tokens.access_token,
                )
        except VaultError as exc:
            done = github.Revoked(False, exc.message)
        if done.revoked:
            return "revoked"
        return f"NOT revoked ({done.detail}; revoke it at {provider.revoke_by_hand})"
    if not endpoints.revocation_endpoint:
        return "NOT revoked (the provider offers no revocation endpoint)"
    token, hint = (
        (tokens.refresh_token, "refresh_token")
        if tokens.refresh_token
        else (tokens.access_token, "access_token")
    )
    try:
        with http_.client() as http:
            oauth.revoke(http, provider, endpoints.revocation_endpoint, token, hint)
    except VaultError as exc:
        return f"NOT revoked ({exc.message})"
    return "revoked"


def endpoint_extra(
    provider: Provider, endpoints: oauth.Endpoints, tokens: oauth.TokenSet | None = None
) -> dict[str, Any]:
    """What refresh, revoke and `vault api` need later, fixed at login time inside the vault;
    for GitHub, also the kind of token (``github_token``: app or oauth_app)."""
    extra: dict[str, Any] = {"token_endpoint": endpoints.token_endpoint, "preset": provider.preset}
    if provider.preset == "github" and tokens is not None:
        from vault.login.github import token_kind

        extra["github_token"] = token_kind(
            tokens.access_token, tokens.refresh_token, tokens.expires_in
        )
    for key in ("revocation_endpoint", "userinfo_endpoint", "introspection_endpoint"):
        value = getattr(endpoints, key)
        if value:
            extra[key] = value
    if provider.api_base:
        extra["api_base"] = provider.api_base
    return extra


def import_token(
    store: Store,
    policy: Policy,
    provider: Provider,
    *,
    name: str,
    scopes: tuple[str, ...],
    expires_at: int | None,
    force: bool,
    read_token: Callable[[], Secret],
    clock: Callable[[], float] = time.time,
) -> TokenRecord:
    """Store a token obtained elsewhere (a personal access token) as ``name``, under the same
    grant policy as a login. Policy and the key are checked before ``read_token`` asks for the
    token; a refusal is audited. A stored ``name`` is replaced only with ``force``, or when it
    needs a new login (the provider refused it: it is dead).

    A token the vault has held before (under any name, since deleted or not) keeps the issue
    time it had then: putting the same token back never makes it younger for
    ``max_token_age`` (vault.store.vault.Editor.first_held)."""
    scopes = check_scopes(scopes, "--scope", UsageError)
    who = provider.identity()
    denial = policy.grant_denial(who, scopes)
    if denial is not None:
        store.record_event(
            for_denial(
                denial,
                name=name,
                provider=provider.name,
                issuer=who.issuer,
                scopes=scopes,
                command="import",
            )
        )
        raise denial.error()
    store.preflight()  # storage rules and the key, before the token is read
    token = read_token()
    now = int(clock())
    record = TokenRecord(
        name=name,
        provider=provider.name,
        issuer=who.issuer,
        client_id=provider.client_id or "",
        token_type="Bearer",
        access_token=token,
        refresh_token=None,
        id_token=None,
        scopes=scopes,
        issued_at=now,
        expires_at=expires_at,
        last_refresh=None,
        source="import",
        extra={"preset": provider.preset},
    )
    with store.edit() as editor:
        stored = editor.get(name)
        if stored is not None and stored.needs_login is None and not force:  # a dead one goes
            raise UsageError(
                f"a token named {name!r} is already stored", hint="pass --force to replace it"
            )
        first = editor.first_held(token)
        if first is not None and first < now:
            record = replace(record, issued_at=first)
        editor.put(record)
        editor.audit(
            for_record("issued", record, editor.meta.audit_key, reason="imported", command="import")
        )
    return record
