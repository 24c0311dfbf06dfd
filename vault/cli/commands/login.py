"""`vault login`: the web login (authorization code with PKCE) or the device flow, with a
person in the loop, then the token into the vault. Which grant: :func:`choose_grant`."""

from __future__ import annotations

import argparse

from vault.cli.app import App
from vault.cli.render import error_code
from vault.cli.screen import LoginScreen
from vault.cli.webscreen import WebLoginScreen
from vault.errors import EXIT_INTERRUPTED, ConfigError, PolicyError, UsageError, VaultError
from vault.login import http as _http
from vault.login import oauth as _oauth
from vault.login import providers as _providers
from vault.store.model import TokenRecord
from vault.util.redact import scrub_text
from vault.util.text import check_name, clean, rfc3339

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from vault.store.model import TokenRecord


def provider_for_login(app: App, ns: argparse.Namespace) -> _providers.Provider:
    configured = app.config.providers
    if ns.issuer or ns.client_id:
        if ns.provider and ns.provider in configured:
            raise UsageError("--issuer/--client-id describe an ad-hoc provider; drop PROVIDER")
        if not (ns.issuer and ns.client_id):
            raise UsageError("--issuer and --client-id go together")
        base = _providers.PRESETS.get(ns.provider or "oidc", _providers.PRESETS["oidc"])
        _http.check_url(ns.issuer, what="--issuer", error=UsageError)
        from vault.util.record import replace

        return replace(
            base,
            name=ns.provider or "oidc",
            issuer=ns.issuer,
            client_id=ns.client_id,
            discovery=base.preset in ("oidc", "gitlab"),
            # Some providers refuse a request without a scope: an ad-hoc OIDC one gets openid.
            scopes=base.scopes or ("openid",),
            source="command line",
        )
    if ns.provider is None:
        if len(configured) == 1:
            return next(iter(configured.values()))
        raise UsageError(
            "which provider? name one: vault login PROVIDER",
            hint=f"configured: {', '.join(sorted(configured)) or 'none'}; presets: "
            + ", ".join(p for p in _providers.PRESETS if p != "oidc"),
        )
    return _providers.resolve(ns.provider, configured)


def cmd_login(app: App, ns: argparse.Namespace) -> int:
    screen = WebLoginScreen(
        json_mode=app.json, no_browser=ns.no_browser, clipboard=getattr(ns, "clipboard", False)
    )
    try:
        return _login(app, ns, screen)
    except VaultError as exc:
        screen.end_ticks()
        screen.event(
            {
                "event": "error",
                "error": error_code(exc),
                "message": scrub_text(clean(exc.message, 2000)),
                "hint": None if exc.hint is None else scrub_text(clean(exc.hint, 2000)),
                "exit": exc.exit_code,
            }
        )
        _audit_failure(app, ns, exc)
        raise
    except KeyboardInterrupt:
        screen.end_ticks()
        screen.event(
            {
                "event": "error",
                "error": "interrupted",
                "message": "interrupted; nothing was stored",
                "hint": None,
                "exit": EXIT_INTERRUPTED,
            }
        )
        _audit_failure(app, ns, None)
        raise


def _audit_failure(app: App, ns: argparse.Namespace, exc: VaultError | None) -> None:
    """A failed or refused login is audited, best effort (the vault may be what failed)."""
    from vault.audit.chain import make_event

    if isinstance(exc, UsageError | ConfigError):
        return  # a mistyped command line or a broken config file is not an event
    if exc is not None and exc.exit_code == 6:
        return  # the vault or keyring itself failed: there is nowhere to write
    kind = "denied" if isinstance(exc, PolicyError) else "login_failed"
    app.audit_only(
        make_event(
            kind,
            name=ns.name or ns.provider,
            provider=ns.provider,
            issuer=ns.issuer,
            scopes=ns.scope or None,
            outcome="denied" if kind == "denied" else "failure",
            reason=exc.message if exc is not None else "interrupted",
            rule=getattr(exc, "rule", None) or None,
            source=getattr(exc, "source", None) or None,
            command="login",
            grant=getattr(ns, "grant", None),
        )
    )


def _login(app: App, ns: argparse.Namespace, screen: LoginScreen) -> int:
    from vault.tokens.lifecycle import check_relogin
    from vault.tokens.obtain import device_login, web_login

    provider = provider_for_login(app, ns)
    name = check_name(ns.name or provider.name)
    scopes = tuple(dict.fromkeys(ns.scope)) if ns.scope else provider.scopes
    check_relogin(app.store, name, force=ns.force)  # before any request
    if provider.preset == "github":
        _github_limit(app, provider, scopes, screen)
    assert isinstance(screen, WebLoginScreen)
    grant, reason, endpoints = choose_grant(app, ns, provider, scopes, screen)
    screen.flow(grant, reason)
    if grant == "authorization_code":
        from vault.login.loopback import DEFAULT_WAIT, check_wait

        try:
            wait = check_wait(DEFAULT_WAIT if ns.timeout is None else ns.timeout)
        except ValueError as exc:
            raise UsageError(f"--timeout: {exc}") from None
        stored = web_login(
            app.store,
            app.policy,
            provider,
            name=name,
            scopes=scopes,
            screen=screen,
            wait=wait,
            endpoints=endpoints,
            force=ns.force,
        )
    else:
        stored = device_login(
            app.store,
            app.policy,
            provider,
            name=name,
            scopes=scopes,
            screen=screen,
            endpoints=endpoints,
            force=ns.force,
        )
    record = stored.record
    screen.event(
        {
            "event": "success",
            "name": name,
            "provider": provider.name,
            "scopes": list(record.scopes),
            "expires_at": rfc3339(record.expires_at),
            "account": None
            if record.account is None
            else {"subject": record.account.subject, "display": record.account.display},
        }
    )
    if not app.json:
        expiry = rfc3339(record.expires_at) or "no expiry given"
        app.say(
            f"{logged_in(record)}: stored {name!r} ({provider.name}; scopes: "
            f"{' '.join(record.scopes) or 'none'}; expires {expiry}"
            f"{'; refreshable' if record.refresh_token else ''})."
        )
    if stored.replaced is not None:
        _retire(app, screen, stored.replaced, record)
    return 0


def _retire(app: App, screen: LoginScreen, old: TokenRecord, new: TokenRecord) -> None:
    """The grant the new login replaced, revoked now that the new token is stored; a failure
    is a warning (the login succeeded: exit 0) saying the old grant is still alive."""
    from vault.tokens.lifecycle import retire_replaced

    try:
        result = retire_replaced(app.store, app.config.providers, old, new)
    except KeyboardInterrupt:  # the new token is stored: the login is not undone
        app.store.warnings.append(
            f"interrupted before the grant of the token this login replaced under {new.name!r} "
            "was revoked: it may still be alive at the provider; revoke it there by hand"
        )
        return
    screen.event(
        {
            "event": "replaced",
            "name": new.name,
            "revoked": result.revoked,
            "detail": scrub_text(clean(result.problem or result.detail, 2000)),
            "revoke_by_hand": result.by_hand,
        }
    )
    if result.revoked:
        if app.json:
            return
        if result.same:
            app.say(f"It replaced a token the provider handed out again: {result.detail}.")
        else:
            app.say(f"Revoked the grant of the token it replaced ({result.detail}).")
        return
    where = (
        f"revoke it by hand at {result.by_hand}"
        if result.by_hand
        else "revoke it at the provider (its account or application settings)"
    )
    app.store.warnings.append(
        f"the grant of the token this login replaced under {new.name!r} is still alive at "
        f"the provider ({result.problem}); {where}"
    )


def logged_in(record: TokenRecord) -> str:
    """ "Logged in to HOST as ACCOUNT" (the provider's host, the account's name, else its
    subject), or "Logged in" where the account is unknown. Both parts are shown cleaned:
    the host comes from config.yaml, the account from the provider."""
    who = record.whom()
    if who is None:
        return "Logged in"
    host = clean(_http.host_of(record.issuer), 100) or clean(record.provider, 100)
    return f"Logged in to {host} as {clean(who, 100)}"


def _github_limit(
    app: App, provider: _providers.Provider, scopes: tuple[str, ...], screen: LoginScreen
) -> None:
    """Warn, once, before the login, when the vault already holds GitHub's limit of tokens for
    this app, host and scope set (vault.login.github.TOKEN_LIMIT): GitHub would revoke the
    oldest. On stderr, and as a `warning` event with --json."""
    from vault.login import github

    snapshot = app.store.read()
    if snapshot is None or not provider.client_id:
        return
    issuer = provider.identity().issuer
    held = [
        (r.client_id, r.issuer, r.scopes)
        for r in snapshot.records()
        if r.identity().preset == "github" and r.source == "login" and r.needs_login is None
    ]
    count = github.same_grants(held, provider.client_id, issuer, scopes)
    message = github.limit_warning(count, _http.host_of(issuer))
    if message is None:
        return
    app.say(f"vault: warning: {message}")
    screen.event({"event": "warning", "warning": "github_token_limit", "message": message})


def choose_grant(
    app: App,
    ns: argparse.Namespace,
    provider: _providers.Provider,
    scopes: tuple[str, ...],
    screen: WebLoginScreen,
) -> tuple[str, str, _oauth.Endpoints | None]:
    """The grant to log in with, why, and the endpoints when finding them was part of the
    choice. Policy first, before any request: ``--web``/``--device`` that policy forbids are
    refused (exit 5); with neither, the grant policy allows; with both allowed, the web login
    where a browser can be opened here and the provider has an authorization endpoint."""
    from vault.tokens.obtain import check_login, find_endpoints

    who = provider.identity()
    wanted = "authorization_code" if ns.web else "device_code" if ns.device else None
    ns.grant = wanted
    if wanted is not None:
        check_login(app.policy, provider, scopes, wanted)
        return wanted, f"--{'web' if ns.web else 'device'} was given", None
    allowed = app.policy.allowed_grants(who)
    if not allowed:
        ns.grant = "device_code"  # the grant that works everywhere, refused too
        denial = app.policy.grant_type_denial(who, "device_code")
        assert denial is not None
        raise denial.error()
    if len(allowed) == 1:
        ns.grant = allowed[0]
        check_login(app.policy, provider, scopes, allowed[0])
        other = "authorization_code" if allowed[0] == "device_code" else "device_code"
        denial = app.policy.grant_type_denial(who, other)
        source = f" ({denial.source})" if denial is not None else ""
        return allowed[0], f"policy allows only this grant{source}", None
    here, why = screen.browser_here()
    if not here:
        ns.grant = "device_code"
        return "device_code", why, None
    check_login(app.policy, provider, scopes, None)  # refused before the discovery request
    endpoints = None
    if provider.authorization_endpoint is None and provider.discovery:
        endpoints = find_endpoints(provider)
        has_endpoint = endpoints.authorization_endpoint is not None
    else:
        has_endpoint = provider.authorization_endpoint is not None
    if not has_endpoint:
        ns.grant = "device_code"
        return "device_code", "the provider has no authorization endpoint", endpoints
    ns.grant = "authorization_code"
    return "authorization_code", why, endpoints
