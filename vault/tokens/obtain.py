"""Obtaining a token: the device authorization grant under policy, or a token a person hands
over (import), then the token stored and its issue audited.

The person's side (what is shown, the countdown, reading the pasted token) is passed in by the
caller; nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from vault.errors import ConfigError, PolicyError, UsageError, VaultError
from vault.login import http as http_
from vault.login import oauth
from vault.login.providers import Provider
from vault.policy.rules import Policy
from vault.secret import Secret
from vault.store.model import TokenRecord
from vault.store.vault import Store
from vault.tokens.events import for_denial, for_record
from vault.tokens.whoami import lookup as lookup_account
from vault.util.record import replace
from vault.util.text import check_scopes
from vault.util.trace import log


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


def device_login(
    store: Store,
    policy: Policy,
    provider: Provider,
    *,
    name: str,
    scopes: tuple[str, ...],
    screen: DeviceScreen,
) -> TokenRecord:
    """Log in to ``provider`` with the device authorization grant (RFC 8628) and store the
    token set as ``name``. Policy and the vault are checked before the person is involved, and
    what the provider granted is checked before anything is stored: a grant policy forbids is
    revoked at the provider and nothing is kept."""
    if not provider.client_id:
        raise ConfigError(
            f"provider {provider.name!r} has no client_id ({provider.source})",
            hint=provider.register_app,
        )
    scopes = check_scopes(scopes, "--scope", UsageError)
    who = provider.identity()
    denial = policy.grant_denial(who, scopes)
    if denial is not None:
        raise denial.error()
    store.preflight()
    with http_.client() as http:
        endpoints = oauth.discover(http, provider)
        log(
            "login.discovered",
            provider=provider.name,
            issuer=endpoints.issuer,
            token_endpoint=endpoints.token_endpoint,
        )
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
        client_id=provider.client_id,
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
    with store.edit() as editor:
        editor.put(record)
        editor.audit(
            for_record(
                "issued",
                record,
                editor.meta.audit_key,
                reason="device flow login",
                command="login",
                account=account,
            )
        )
    return record


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
