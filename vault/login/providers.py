"""Identity provider presets, and named providers from config.yaml."""

from __future__ import annotations

from vault.errors import ConfigError, UsageError
from vault.secret import Secret
from vault.util.record import datarecord, field, replace

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Mapping


@datarecord(frozen=True)
class Identity:
    """What a provider is, for policy: the preset it is built on and the issuer its tokens
    come from (for a stored token: the ones it was stored under). A user chooses a provider's
    name, never its identity: renaming a provider changes nothing here, and pointing its
    endpoints somewhere else changes its issuer (:meth:`Provider.identity`)."""

    preset: str
    issuer: str

    @classmethod
    def of_record(cls, preset: object, issuer: str) -> Identity:
        """A stored token's identity. Tokens stored before the preset was recorded get the
        preset whose fixed issuer they came from, else ``oidc``."""
        if isinstance(preset, str) and preset in PRESETS:
            return cls(preset, issuer)
        from vault.login.http import origin

        where = origin(issuer)
        for name, fixed in PRESET_ISSUERS.items():
            if where is not None and where == origin(fixed.rstrip("*")):
                return cls(name, issuer)
        return cls("oidc", issuer)


@datarecord(frozen=True)
class Provider:
    """Everything needed to log in to, refresh at, revoke at and call one identity provider.

    Endpoints left None are found by discovery (RFC 8414 / OpenID Connect Discovery) from
    ``issuer`` when ``discovery`` is true."""

    name: str
    preset: str
    issuer: str
    client_id: str | None = None
    client_secret: Secret | None = None
    scopes: tuple[str, ...] = ()
    device_authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    api_base: str | None = None
    discovery: bool = True
    tenant: str | None = None
    revoke_by_hand: str | None = None  # where a person revokes when there is no endpoint
    register_app: str = "register an OAuth application with your identity provider"
    source: str = "built-in preset"
    # Hosts (host or host:port, https) besides the issuer's and the device authorization
    # endpoint's where the provider's verification page lives: exact matches, no subdomains.
    verification_hosts: tuple[str, ...] = field(default=())
    # The hosts (https) a preset's fixed endpoints live on besides its issuer's: an endpoint
    # there still belongs to the preset's issuer. Empty for discovery presets (the issuer's own
    # metadata names its endpoints).
    endpoint_hosts: tuple[str, ...] = field(default=())

    def identity(self) -> Identity:
        """What this provider is for policy: its preset and the issuer its tokens come from.

        The issuer is the configured one when every endpoint a secret is sent to (device
        authorization, token, revocation, userinfo) is on the issuer's origin, or, for a preset
        with fixed endpoints, on that preset's own hosts; discovered endpoints always are (the
        issuer's metadata names them, RFC 8414 §3.3). An endpoint configured anywhere else
        makes that origin the issuer (the token endpoint's first): re-pointing a provider
        changes what it is, so no rule or allowed issuer of the original follows it there."""
        from vault.login.http import origin

        own = origin(self.issuer)
        trusted = {own} | {origin(f"https://{host}") for host in self.endpoint_hosts}
        urls = (
            self.token_endpoint,
            self.device_authorization_endpoint,
            self.revocation_endpoint,
            self.userinfo_endpoint,
        )
        for url in urls:
            if url and origin(url) not in trusted:
                where = origin(url)
                if where is None:
                    break  # an unusable URL: refused where it is used
                scheme, host, port = where
                default = 443 if scheme == "https" else 80
                shown = f"[{host}]" if ":" in host else host
                netloc = shown if port == default else f"{shown}:{port}"
                return Identity(self.preset, f"{scheme}://{netloc}")
        return Identity(self.preset, self.issuer)


PRESETS: dict[str, Provider] = {
    "github": Provider(
        name="github",
        preset="github",
        issuer="https://github.com",
        scopes=("read:user",),
        device_authorization_endpoint="https://github.com/login/device/code",
        token_endpoint="https://github.com/login/oauth/access_token",
        api_base="https://api.github.com",
        discovery=False,
        endpoint_hosts=("github.com",),
        revoke_by_hand="https://github.com/settings/applications",
        register_app="create an OAuth app at https://github.com/settings/developers with "
        "'Enable Device Flow' ticked, then put its client ID in config.yaml",
    ),
    "gitlab": Provider(
        name="gitlab",
        preset="gitlab",
        issuer="https://gitlab.com",
        scopes=("read_user",),
        api_base="https://gitlab.com/api/v4",
        register_app="create an application at https://gitlab.com/-/user_settings/applications "
        "(not confidential, scopes as needed), then put its application ID in config.yaml",
    ),
    "microsoft": Provider(
        name="microsoft",
        preset="microsoft",
        issuer="https://login.microsoftonline.com/organizations/v2.0",
        scopes=("openid", "offline_access", "User.Read"),
        tenant="organizations",
        api_base="https://graph.microsoft.com",
        discovery=False,
        endpoint_hosts=("login.microsoftonline.com",),
        # https://microsoft.com/devicelogin (documented), https://login.microsoft.com/device
        verification_hosts=("microsoft.com", "login.microsoft.com"),
        revoke_by_hand="https://myaccount.microsoft.com (Sign out everywhere), or an admin "
        "revokes sessions in Entra ID",
        register_app="register an application in Entra ID (App registrations), enable "
        "'Allow public client flows', then put its application (client) ID in config.yaml",
    ),
    "google": Provider(
        name="google",
        preset="google",
        issuer="https://accounts.google.com",
        scopes=("openid", "email"),
        device_authorization_endpoint="https://oauth2.googleapis.com/device/code",
        token_endpoint="https://oauth2.googleapis.com/token",
        revocation_endpoint="https://oauth2.googleapis.com/revoke",
        userinfo_endpoint="https://openidconnect.googleapis.com/v1/userinfo",
        api_base="https://www.googleapis.com",
        discovery=False,
        endpoint_hosts=("oauth2.googleapis.com", "openidconnect.googleapis.com"),
        verification_hosts=("www.google.com",),  # verification_url https://www.google.com/device
        register_app="create an OAuth client of type 'TVs and Limited Input devices' in the "
        "Google Cloud console; put its client ID and client secret in config.yaml",
    ),
    "oidc": Provider(name="oidc", preset="oidc", issuer=""),
}

# The issuer (pattern) of each preset that has one fixed: a policy's rules for the preset also
# cover every token from that issuer, whichever preset it was configured on.
PRESET_ISSUERS: dict[str, str] = {
    "github": "https://github.com",
    "gitlab": "https://gitlab.com",
    "google": "https://accounts.google.com",
    "microsoft": "https://login.microsoftonline.com/*",
}


def microsoft_endpoints(tenant: str) -> dict[str, str]:
    base = f"https://login.microsoftonline.com/{tenant}"
    return {
        "issuer": f"{base}/v2.0",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
    }


def from_config(name: str, doc: dict[str, object], where: str) -> Provider:
    """Build a provider from its already type-checked config.yaml section."""
    preset_name = str(doc.get("preset") or ("oidc" if "issuer" in doc else name))
    if preset_name not in PRESETS:
        raise ConfigError(
            f"{where}: provider {name!r}: unknown preset {preset_name!r} "
            f"(one of {', '.join(sorted(PRESETS))})"
        )
    base = PRESETS[preset_name]
    changes: dict[str, object] = {"name": name, "source": where}
    for key in (
        "issuer",
        "client_id",
        "device_authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
        "api_base",
        "tenant",
    ):
        if doc.get(key) is not None:
            changes[key] = doc[key]
    if doc.get("client_secret") is not None:
        changes["client_secret"] = Secret(str(doc["client_secret"]))
    if doc.get("scopes") is not None:
        scopes = doc["scopes"]
        assert isinstance(scopes, list)
        changes["scopes"] = tuple(str(s) for s in scopes)
    if doc.get("host") is not None:
        changes.update(github_host(name, preset_name, doc, where))
    if preset_name == "microsoft":
        changes.update(microsoft_endpoints(str(changes.get("tenant") or base.tenant)))
    if preset_name == "oidc" and not changes.get("issuer"):
        raise ConfigError(f"{where}: provider {name!r} needs an issuer")
    if preset_name == "gitlab" and "issuer" in changes and "api_base" not in changes:
        changes["api_base"] = str(changes["issuer"]).rstrip("/") + "/api/v4"
    return replace(base, **changes)


def github_host(name: str, preset: str, doc: dict[str, object], where: str) -> dict[str, object]:
    """The fields ``host: HOST[:PORT]`` gives a ``preset: github`` provider (vault.login.github):
    issuer, endpoints and API base on that host. Endpoints configured beside it still win
    (and, elsewhere, change the provider's identity); an ``issuer`` beside it is refused."""
    from vault.login import github

    if preset != "github":
        raise ConfigError(f"{where}: provider {name!r}: host applies only to preset: github")
    if doc.get("issuer") is not None:
        raise ConfigError(
            f"{where}: provider {name!r}: give host or issuer, not both (the host is the issuer)"
        )
    try:
        host = github.parse_host(doc["host"])
    except ValueError as exc:
        raise ConfigError(f"{where}: provider {name!r}: host: {exc}") from None
    fields = github.endpoints_for(host)
    return {key: value for key, value in fields.items() if doc.get(key) is None}


def resolve(name: str, configured: Mapping[str, Provider]) -> Provider:
    if name in configured:
        return configured[name]
    if name in PRESETS and name != "oidc":
        return PRESETS[name]
    known = sorted(set(configured) | (set(PRESETS) - {"oidc"}))
    raise UsageError(
        f"unknown provider {name!r}",
        hint=f"known providers: {', '.join(known)}; add others under providers: in config.yaml",
    )
