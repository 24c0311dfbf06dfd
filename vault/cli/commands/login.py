"""`vault login`: the device flow with a person in the loop, then the token into the vault."""

from __future__ import annotations

import argparse

from vault.cli.app import App
from vault.cli.screen import LoginScreen
from vault.errors import ConfigError, PolicyError, UsageError, VaultError
from vault.login import http as _http
from vault.login import providers as _providers
from vault.store.model import TokenRecord
from vault.util.redact import scrub_text
from vault.util.text import check_name, clean, rfc3339


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
    screen = LoginScreen(
        json_mode=app.json, no_browser=ns.no_browser, clipboard=getattr(ns, "clipboard", False)
    )
    try:
        return _login(app, ns, screen)
    except VaultError as exc:
        screen.end_ticks()
        screen.event(
            {
                "event": "error",
                "error": getattr(exc, "code", type(exc).__name__),
                "message": scrub_text(clean(exc.message, 2000)),
            }
        )
        _audit_failure(app, ns, exc)
        raise
    except KeyboardInterrupt:
        screen.end_ticks()
        screen.event(
            {"event": "error", "error": "interrupted", "message": "interrupted; nothing was stored"}
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
        )
    )


def _login(app: App, ns: argparse.Namespace, screen: LoginScreen) -> int:
    from vault.tokens.obtain import device_login

    provider = provider_for_login(app, ns)
    name = check_name(ns.name or provider.name)
    scopes = tuple(dict.fromkeys(ns.scope)) if ns.scope else provider.scopes
    if provider.preset == "github":
        _github_limit(app, provider, scopes, screen)
    record = device_login(app.store, app.policy, provider, name=name, scopes=scopes, screen=screen)
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
    return 0


def logged_in(record: TokenRecord) -> str:
    """ "Logged in to HOST as ACCOUNT" (the provider's host, the account's name, else its
    subject), or "Logged in" where the account is unknown. Both parts are shown cleaned:
    the host comes from config.yaml, the account from the provider."""
    account = record.account
    who = None if account is None else (account.display or account.subject)
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
