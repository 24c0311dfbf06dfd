"""The OAuth checks in process, against a scripted transport: discovery (issuer match, URL
checks, endpoint overrides), the device authorization answer (verification_uri host, look-alike
hosts, field bounds), token answers, refresh and revocation; exact refusals and the exact form
each request sends."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from vault.errors import AuthError, ConfigError, NetworkError
from vault.login import oauth as _oauth
from vault.login.providers import PRESETS, Provider
from vault.secret import Secret

ISSUER = "https://idp.example.com"
OIDC = Provider(name="corp", preset="oidc", issuer=ISSUER, client_id="cli", source="config.yaml:3")
GITHUB = PRESETS["github"].__class__(
    **{**{k: getattr(PRESETS["github"], k) for k in ("name", "preset", "issuer")}},
    client_id="gh-cli",
)
ENDPOINTS = _oauth.Endpoints(
    issuer=ISSUER,
    device_authorization_endpoint=f"{ISSUER}/device",
    token_endpoint=f"{ISSUER}/token",
)

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class Server:
    """Answers by URL; remembers every request."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.get(str(request.url))
        if answer is None:
            return httpx.Response(404)
        return answer(request) if callable(answer) else answer

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def forms(self) -> list[dict[str, str]]:
        return [dict(urllib.parse.parse_qsl(r.content.decode())) for r in self.requests]


def j(doc: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=doc)


def net_error(exc: pytest.ExceptionInfo[BaseException]) -> tuple[str, str]:
    assert isinstance(exc.value, NetworkError | AuthError), exc.value
    return str(exc.value), exc.value.code


def discovery_refusal(answers: dict[str, Answer]) -> pytest.ExceptionInfo[NetworkError]:
    with Server(answers).client() as http, pytest.raises(NetworkError) as info:
        _oauth.discover(http, OIDC)
    return info


# --- discovery -------------------------------------------------------------------------

META = {
    "issuer": ISSUER,
    "device_authorization_endpoint": f"{ISSUER}/device",
    "token_endpoint": f"{ISSUER}/token",
    "revocation_endpoint": f"{ISSUER}/revoke",
    "introspection_endpoint": f"{ISSUER}/introspect",
    "userinfo_endpoint": f"{ISSUER}/userinfo",
}
OIDC_URL = f"{ISSUER}/.well-known/openid-configuration"


def test_metadata_urls() -> None:
    assert _oauth._metadata_urls("https://a.example/tenant/") == [
        "https://a.example/tenant/.well-known/openid-configuration",
        "https://a.example/.well-known/oauth-authorization-server/tenant",
    ]
    assert _oauth._metadata_urls("https://a.example") == [
        "https://a.example/.well-known/openid-configuration",
        "https://a.example/.well-known/oauth-authorization-server",
    ]
    assert _oauth._metadata_urls("http://127.0.0.1:8080/t?x#y") == [
        "http://127.0.0.1:8080/t?x#y/.well-known/openid-configuration",
        "http://127.0.0.1:8080/.well-known/oauth-authorization-server/t",
    ]


def test_discovery_reads_every_endpoint() -> None:
    server = Server({OIDC_URL: j(META)})
    with server.client() as http:
        got = _oauth.discover(http, OIDC)
    assert got == _oauth.Endpoints(
        issuer=ISSUER,
        device_authorization_endpoint=f"{ISSUER}/device",
        token_endpoint=f"{ISSUER}/token",
        revocation_endpoint=f"{ISSUER}/revoke",
        introspection_endpoint=f"{ISSUER}/introspect",
        userinfo_endpoint=f"{ISSUER}/userinfo",
    )
    assert [(r.method, str(r.url)) for r in server.requests] == [("GET", OIDC_URL)]


def test_discovery_falls_back_to_rfc8414_after_a_404_only() -> None:
    rfc = f"{ISSUER}/.well-known/oauth-authorization-server"
    minimal = {"issuer": ISSUER, "token_endpoint": f"{ISSUER}/t"}
    server = Server({rfc: j(minimal)})
    with server.client() as http:
        got = _oauth.discover(http, OIDC)
    assert got == _oauth.Endpoints(
        issuer=ISSUER, device_authorization_endpoint=None, token_endpoint=f"{ISSUER}/t"
    )
    assert [str(r.url) for r in server.requests] == [OIDC_URL, rfc]
    failing = Server({OIDC_URL: httpx.Response(500), rfc: j(minimal)})
    with failing.client() as http, pytest.raises(NetworkError) as info:
        _oauth.discover(http, OIDC)
    assert net_error(info) == (
        "provider discovery: idp.example.com answered HTTP 500",
        "discovery_failed",
    )
    assert len(failing.requests) == 1
    info = discovery_refusal({OIDC_URL: httpx.Response(403)})
    assert net_error(info)[0] == "provider discovery: idp.example.com answered HTTP 403"


def test_discovery_without_metadata() -> None:
    with Server({}).client() as http, pytest.raises(NetworkError) as info:
        _oauth.discover(http, OIDC)
    assert net_error(info) == (
        "provider discovery: idp.example.com publishes no OpenID or RFC 8414 metadata",
        "discovery_failed",
    )
    assert info.value.hint == (
        "set device_authorization_endpoint and token_endpoint for the provider in config.yaml"
    )


def test_discovery_refuses_another_issuer() -> None:
    for issuer in (f"{ISSUER}/", "https://evil.example", None, "https://IDP.example.com"):
        info = discovery_refusal({OIDC_URL: j({**META, "issuer": issuer})})
        assert net_error(info) == (
            f"provider discovery: the metadata's issuer {str(issuer)!r} is not the configured "
            f"issuer {ISSUER!r}; refusing (RFC 8414 §3.3)",
            "issuer_mismatch",
        )


def test_discovery_checks_every_endpoint_it_is_given() -> None:
    for key in (
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
    ):
        bad = {**META, key: "http://evil.example/x"}
        info = discovery_refusal({OIDC_URL: j(bad)})
        assert str(info.value) == (
            f"the provider's {key} must use https (plain http is allowed only on loopback): "
            "'http://evil.example/x'"
        )
        info = discovery_refusal({OIDC_URL: j({**META, key: 7})})
        assert net_error(info) == (
            f"provider discovery: {key} is not a string",
            "invalid_response",
        )
    no_token = {k: v for k, v in META.items() if k != "token_endpoint"}
    info = discovery_refusal({OIDC_URL: j(no_token)})
    assert net_error(info) == (
        "provider discovery: the metadata names no token_endpoint",
        "invalid_response",
    )


def test_configured_endpoints_override_discovered_ones() -> None:
    provider = Provider(
        name="corp",
        preset="oidc",
        issuer=ISSUER,
        client_id="cli",
        device_authorization_endpoint="https://other.example/device",
        token_endpoint="https://other.example/token",
        revocation_endpoint="https://other.example/revoke",
        userinfo_endpoint="https://other.example/me",
    )
    with Server({OIDC_URL: j({**META, "token_endpoint": 7})}).client() as http:
        got = _oauth.discover(http, provider)
    assert got == _oauth.Endpoints(
        issuer=ISSUER,
        device_authorization_endpoint="https://other.example/device",
        token_endpoint="https://other.example/token",
        revocation_endpoint="https://other.example/revoke",
        introspection_endpoint=f"{ISSUER}/introspect",
        userinfo_endpoint="https://other.example/me",
    )
    bad = Provider(name="corp", preset="oidc", issuer=ISSUER, token_endpoint="http://x.example/t")
    with Server({OIDC_URL: j(META)}).client() as http, pytest.raises(ConfigError) as cinfo:
        _oauth.discover(http, bad)
    assert str(cinfo.value) == (
        "endpoint in config must use https (plain http is allowed only on loopback): "
        "'http://x.example/t'"
    )


def test_no_discovery_uses_the_configured_endpoints_without_a_request() -> None:
    provider = Provider(
        name="p",
        preset="oidc",
        issuer="https://p.example",
        discovery=False,
        device_authorization_endpoint="https://p.example/d",
        token_endpoint="https://p.example/t",
        revocation_endpoint="https://p.example/r",
        userinfo_endpoint="https://p.example/u",
    )
    server = Server({})
    with server.client() as http:
        got = _oauth.discover(http, provider)
    assert got == _oauth.Endpoints(
        issuer="https://p.example",
        device_authorization_endpoint="https://p.example/d",
        token_endpoint="https://p.example/t",
        revocation_endpoint="https://p.example/r",
        userinfo_endpoint="https://p.example/u",
    )
    assert server.requests == []
    bare = Provider(
        name="p",
        preset="oidc",
        issuer="https://p.example",
        discovery=False,
        token_endpoint="https://p.example/t",
    )
    with server.client() as http:
        assert _oauth.discover(http, bare) == _oauth.Endpoints(
            issuer="https://p.example",
            device_authorization_endpoint=None,
            token_endpoint="https://p.example/t",
        )
    none = Provider(
        name="p", preset="oidc", issuer="https://p.example", discovery=False, source="config.yaml:9"
    )
    with server.client() as http, pytest.raises(ConfigError) as info:
        _oauth.discover(http, none)
    assert str(info.value) == "provider 'p' (config.yaml:9) has no token_endpoint"
    for key in (
        "device_authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
    ):
        worse = Provider(**{**bare.__dict__, key: "ftp://p.example/x"})
        with server.client() as http, pytest.raises(ConfigError) as info:
            _oauth.discover(http, worse)
        assert str(info.value) == (
            "endpoint in config must use https (plain http is allowed only on loopback): "
            "'ftp://p.example/x'"
        )


def test_the_issuer_itself_is_checked() -> None:
    provider = Provider(name="corp", preset="oidc", issuer="http://idp.example.com", client_id="c")
    with Server({}).client() as http, pytest.raises(ConfigError) as info:
        _oauth.discover(http, provider)
    assert str(info.value) == (
        "issuer of corp must use https (plain http is allowed only on loopback): "
        "'http://idp.example.com'"
    )


# --- the device authorization request ---------------------------------------------------

DEVICE = {
    "device_code": "dc-1",
    "user_code": "ABCD-EFGH",
    "verification_uri": f"{ISSUER}/activate",
    "expires_in": 900,
}


def device(
    doc: dict[str, Any],
    *,
    provider: Provider = OIDC,
    status: int = 200,
    endpoints: _oauth.Endpoints = ENDPOINTS,
    scopes: tuple[str, ...] = ("openid",),
) -> tuple[_oauth.DeviceAuthorization, Server]:
    server = Server({f"{ISSUER}/device": j(doc, status)})
    with server.client() as http:
        return _oauth.request_device_code(http, provider, endpoints, scopes), server


def device_refusal(doc: dict[str, Any], **kw: Any) -> tuple[str, str]:
    with pytest.raises((NetworkError, AuthError)) as info:
        device(doc, **kw)
    return net_error(info)


def test_device_code_request_and_answer() -> None:
    got, server = device(
        {**DEVICE, "verification_uri_complete": f"{ISSUER}/activate?c=1", "interval": "7"},
        scopes=("openid", "repo"),
    )
    assert got == _oauth.DeviceAuthorization(
        device_code=Secret("dc-1"),
        user_code="ABCD-EFGH",
        verification_uri=f"{ISSUER}/activate",
        verification_uri_complete=f"{ISSUER}/activate?c=1",
        expires_in=900,
        interval=7,
    )
    assert [r.method for r in server.requests] == ["POST"]
    assert server.forms() == [{"client_id": "cli", "scope": "openid repo"}]
    plain, server = device({**DEVICE, "user_code": "  ab\x1bcd  "}, scopes=())
    assert plain.interval == 5
    assert plain.verification_uri_complete is None
    assert plain.user_code == "abcd"
    assert server.forms() == [{"client_id": "cli"}]
    secret = Provider(**{**OIDC.__dict__, "client_secret": Secret("s3")})
    _, server = device(DEVICE, provider=secret)
    assert server.forms() == [{"client_id": "cli", "client_secret": "s3", "scope": "openid"}]


def test_google_says_verification_url() -> None:
    doc = {k: v for k, v in DEVICE.items() if k != "verification_uri"}
    got, _ = device({**doc, "verification_url": f"{ISSUER}/g"})
    assert got.verification_uri == f"{ISSUER}/g"
    both, _ = device({**DEVICE, "verification_url": "https://evil.example/"})
    assert both.verification_uri == f"{ISSUER}/activate"


def test_no_device_endpoint() -> None:
    endpoints = _oauth.Endpoints(
        issuer=ISSUER, device_authorization_endpoint=None, token_endpoint=f"{ISSUER}/token"
    )
    with Server({}).client() as http, pytest.raises(NetworkError) as info:
        _oauth.request_device_code(http, OIDC, endpoints, ())
    assert net_error(info) == (
        "provider 'corp' offers no device authorization endpoint",
        "unsupported",
    )
    assert info.value.hint == (
        "the provider must support RFC 8628 (the device flow) for `vault login`"
    )


W = "device authorization request"


@pytest.mark.parametrize(
    ("change", "message", "code"),
    [
        ({"device_code": None}, f"{W}: device_code is missing or not a string", "invalid_response"),
        ({"device_code": ""}, f"{W}: device_code is missing or not a string", "invalid_response"),
        ({"device_code": 5}, f"{W}: device_code is missing or not a string", "invalid_response"),
        (
            {"device_code": "x" * 4097},
            f"{W}: device_code is over 4096 characters",
            "invalid_response",
        ),
        (
            {"device_code": "a b"},
            f"{W}: device_code holds characters a token cannot hold "
            "(spaces, controls or non-ASCII)",
            "invalid_response",
        ),
        ({"user_code": None}, f"{W}: user_code is missing or malformed", "invalid_response"),
        ({"user_code": 12}, f"{W}: user_code is missing or malformed", "invalid_response"),
        ({"user_code": " \x1b "}, f"{W}: user_code is missing or malformed", "invalid_response"),
        ({"user_code": "A" * 65}, f"{W}: user_code is missing or malformed", "invalid_response"),
        ({"verification_uri": None}, f"{W}: verification_uri is missing", "invalid_response"),
        ({"verification_uri": 3}, f"{W}: verification_uri is missing", "invalid_response"),
        (
            {"verification_uri": "http://idp.example.com/a"},
            f"{W}: verification_uri must use https (plain http is allowed only on loopback): "
            "'http://idp.example.com/a'",
            "network",
        ),
        (
            {"verification_uri": "https://idp.example.com.evil.example/a"},
            f"{W}: verification_uri points to 'idp.example.com.evil.example', not to the provider "
            "(https://idp.example.com:443); refusing to send you there",
            "foreign_host",
        ),
        (
            {"verification_uri": "https://evilidp.example.com/a"},
            f"{W}: verification_uri points to 'evilidp.example.com', not to the provider "
            "(https://idp.example.com:443); refusing to send you there",
            "foreign_host",
        ),
        (
            {"verification_uri_complete": 5},
            f"{W}: verification_uri_complete is not a string",
            "invalid_response",
        ),
        (
            {"verification_uri_complete": "http://idp.example.com/c"},
            f"{W}: verification_uri_complete must use https (plain http is allowed only on "
            "loopback): 'http://idp.example.com/c'",
            "network",
        ),
        (
            {"verification_uri_complete": "https://evil.example/c"},
            f"{W}: verification_uri_complete is on another host than verification_uri",
            "foreign_host",
        ),
        ({"expires_in": None}, f"{W}: expires_in is missing", "invalid_response"),
        (
            {"expires_in": 0},
            f"{W}: expires_in=0 is outside the sane range 1..86400",
            "invalid_response",
        ),
        (
            {"expires_in": 86401},
            f"{W}: expires_in=86401 is outside the sane range 1..86400",
            "invalid_response",
        ),
        ({"expires_in": True}, f"{W}: expires_in is not a number", "invalid_response"),
        ({"expires_in": "²"}, f"{W}: expires_in is not a number", "invalid_response"),
        ({"expires_in": "1" * 13}, f"{W}: expires_in is not a number", "invalid_response"),
        ({"expires_in": 9.5}, f"{W}: expires_in is not a number", "invalid_response"),
        ({"interval": 0}, f"{W}: interval=0 is outside the sane range 1..600", "invalid_response"),
        (
            {"interval": 601},
            f"{W}: interval=601 is outside the sane range 1..600",
            "invalid_response",
        ),
    ],
)
def test_device_answer_refusals(change: dict[str, Any], message: str, code: str) -> None:
    doc = {k: v for k, v in {**DEVICE, **change}.items() if v is not None}
    assert device_refusal(doc) == (message, code)


def test_device_answer_bounds_that_pass() -> None:
    for doc in (
        {
            **DEVICE,
            "device_code": "x" * 4096,
            "user_code": "A" * 64,
            "expires_in": 1,
            "interval": 1,
        },
        {**DEVICE, "expires_in": 86400, "interval": 600},
        {**DEVICE, "expires_in": "000000000900"},
        {**DEVICE, "device_code": "!~"},
    ):
        got, _ = device(doc)
        assert got.device_code.reveal() == doc["device_code"]
        assert got.expires_in == int(str(doc["expires_in"]))


def test_device_errors_from_the_provider() -> None:
    assert device_refusal({"error": "invalid_client", "error_description": "who?"}, status=401) == (
        f"{W}: the provider does not know this client_id (or it needs a secret) "
        "[invalid_client] (who?)",
        "invalid_client",
    )
    assert device_refusal({"error": "weird"}, status=400) == (
        f"{W}: the provider answered an error vault does not know: 'weird'",
        "unknown_error",
    )
    assert device_refusal(DEVICE, status=201) == (
        f"{W}: the provider answered HTTP 201 without an OAuth error",
        "invalid_response",
    )
    assert device_refusal(DEVICE, status=500) == (
        f"{W}: the provider answered HTTP 500",
        "server_error",
    )
    assert device_refusal(DEVICE, status=499) == (
        f"{W}: the provider answered HTTP 499 without an OAuth error",
        "invalid_response",
    )


# --- which hosts a verification_uri may point to -----------------------------------------


def test_allowed_verification_hosts() -> None:
    endpoints = _oauth.Endpoints(
        issuer="https://IdP.Example.com/t",
        device_authorization_endpoint="https://Login.Example.net:8443/device",
        token_endpoint="https://x.example/t",
    )
    provider = Provider(name="p", preset="oidc", issuer="", verification_hosts=("Aka.MS",))
    assert _oauth.allowed_verification_hosts(provider, endpoints) == {
        "https://idp.example.com:443",
        "https://login.example.net:8443",
        "https://aka.ms:443",
    }
    no_device = _oauth.Endpoints(
        issuer="https://a.example",
        device_authorization_endpoint=None,
        token_endpoint="https://b.example/t",
    )
    assert _oauth.allowed_verification_hosts(provider, no_device) == {
        "https://a.example:443",
        "https://aka.ms:443",
    }


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        ("https://idp.example.com/a", {"https://idp.example.com:443"}, True),
        ("https://IDP.example.com/a", {"https://idp.example.com:443"}, True),
        ("https://idp.example.com:443/a", {"https://idp.example.com:443"}, True),
        ("https://www.idp.example.com/a", {"https://idp.example.com:443"}, False),
        ("https://idp.example.com.evil.example/a", {"https://idp.example.com:443"}, False),
        ("https://evilidp.example.com/a", {"https://idp.example.com:443"}, False),
        ("https://example.com/a", {"https://idp.example.com:443"}, False),
        ("https://idp.example.com:8443/a", {"https://idp.example.com:8443"}, True),
        ("https://idp.example.com:9999/a", {"https://idp.example.com:8443"}, False),
        ("https://sub.idp.example.com:8443/a", {"https://idp.example.com:8443"}, False),
        ("http://idp.example.com/a", {"https://idp.example.com:443"}, False),
        ("https://user@evil.example/a", {"https://idp.example.com:443"}, False),
        ("https://evil.example/idp.example.com", {"https://idp.example.com:443"}, False),
        ("https://a.example/x", {"https://b.example:443", "https://a.example:443"}, True),
        ("https://a.example/x", set(), False),
        ("https:///nohost", {"https://a.example:443"}, False),
    ],
)
def test_host_allowed(url: str, allowed: set[str], ok: bool) -> None:
    assert _oauth._host_allowed(url, allowed) is ok


def test_a_look_alike_verification_host_is_refused_end_to_end() -> None:
    for host in ("idp.example.com.attacker.example", "idp-example.com", "xn--idp-example.com"):
        assert device_refusal({**DEVICE, "verification_uri": f"https://{host}/activate"})[1] == (
            "foreign_host"
        )
    extra = Provider(**{**OIDC.__dict__, "verification_hosts": ("www.microsoft.com",)})
    got, _ = device(
        {**DEVICE, "verification_uri": "https://www.microsoft.com/link"}, provider=extra
    )
    assert got.verification_uri == "https://www.microsoft.com/link"
    ok, _ = device({**DEVICE, "verification_uri_complete": "https://IDP.example.COM/a?c=1"})
    assert ok.verification_uri_complete == "https://IDP.example.COM/a?c=1"
    sep = _oauth.Endpoints(
        issuer=ISSUER,
        device_authorization_endpoint=f"{ISSUER}/device",
        token_endpoint="https://t.example/t",
    )
    with pytest.raises(NetworkError) as info:
        device({**DEVICE, "verification_uri": "https://t.example/a"}, endpoints=sep)
    assert info.value.code == "foreign_host"


def test_device_host_is_allowed_besides_the_issuer() -> None:
    endpoints = _oauth.Endpoints(
        issuer=ISSUER,
        device_authorization_endpoint=f"{ISSUER}/device",
        token_endpoint=f"{ISSUER}/token",
    )
    other = Provider(**{**OIDC.__dict__, "issuer": "https://issuer.example"})
    moved = _oauth.Endpoints(
        issuer="https://issuer.example",
        device_authorization_endpoint=f"{ISSUER}/device",
        token_endpoint=f"{ISSUER}/token",
    )
    got, _ = device(DEVICE, provider=other, endpoints=moved)
    assert got.verification_uri == f"{ISSUER}/activate"
    assert endpoints.device_authorization_endpoint is not None


# --- token answers ---------------------------------------------------------------------

T = "token request"
NOT_ONE = "one scope-token (RFC 6749 §3.3) has no spaces, quotes, backslashes or controls"
FULL = {"access_token": "at", "token_type": "Bearer"}


def tokens(
    doc: dict[str, Any], requested: tuple[str, ...] = ("openid",), provider: Provider = OIDC
) -> _oauth.TokenSet:
    return _oauth.parse_token_response(doc, requested, provider=provider, what=T)


def token_refusal(doc: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(NetworkError) as info:
        tokens(doc)
    return net_error(info)


def test_a_full_token_answer() -> None:
    got = tokens(
        {
            "access_token": "at",
            "token_type": "BEARER",
            "refresh_token": "rt",
            "id_token": "it",
            "expires_in": "3600",
            "scope": "b a b",
        }
    )
    assert got == _oauth.TokenSet(
        access_token=Secret("at"),
        token_type="Bearer",
        refresh_token=Secret("rt"),
        id_token=Secret("it"),
        expires_in=3600,
        scopes=("b", "a"),
        scope_reported=True,
    )
    bare = tokens({"access_token": "at", "token_type": "bearer"}, ("x", "y"))
    assert bare == _oauth.TokenSet(Secret("at"), "Bearer", None, None, None, ("x", "y"), False)
    empty = tokens({"access_token": "at", "token_type": "bearer", "scope": ""}, ("x",))
    assert empty.scopes == ()
    assert empty.scope_reported is True


def test_github_scopes_are_comma_separated() -> None:
    doc = {"access_token": "at", "token_type": "bearer", "scope": "repo,read:org, gist"}
    assert tokens(doc, provider=GITHUB).scopes == ("repo", "read:org", "gist")
    assert tokens(doc).scopes == ("repo,read:org,", "gist")


@pytest.mark.parametrize(
    ("change", "message", "code"),
    [
        (
            {"access_token": None},
            f"{T}: access_token is missing or not a string",
            "invalid_response",
        ),
        (
            {"access_token": "a" * (32 * 1024 + 1)},
            f"{T}: access_token is over 32768 characters",
            "invalid_response",
        ),
        (
            {"access_token": "a\x7fb"},
            f"{T}: access_token holds characters a token cannot hold "
            "(spaces, controls or non-ASCII)",
            "invalid_response",
        ),
        (
            {"access_token": "é"},
            f"{T}: access_token holds characters a token cannot hold "
            "(spaces, controls or non-ASCII)",
            "invalid_response",
        ),
        (
            {"token_type": None},
            f"{T}: token_type 'NoneType' is not one vault understands (Bearer)",
            "unsupported_token_type",
        ),
        (
            {"token_type": "mac"},
            f"{T}: token_type 'mac' is not one vault understands (Bearer)",
            "unsupported_token_type",
        ),
        (
            {"token_type": "DPoP\x1b"},
            f"{T}: token_type 'DPoP' is not one vault understands (Bearer)",
            "unsupported_token_type",
        ),
        (
            {"refresh_token": ""},
            f"{T}: refresh_token is missing or not a string",
            "invalid_response",
        ),
        (
            {"refresh_token": "r" * (32 * 1024 + 1)},
            f"{T}: refresh_token is over 32768 characters",
            "invalid_response",
        ),
        ({"id_token": 5}, f"{T}: id_token is missing or not a string", "invalid_response"),
        (
            {"id_token": "i" * (64 * 1024 + 1)},
            f"{T}: id_token is over 65536 characters",
            "invalid_response",
        ),
        (
            {"expires_in": 0},
            f"{T}: expires_in=0 is outside the sane range 1..315360000",
            "invalid_response",
        ),
        (
            {"expires_in": 315360001},
            f"{T}: expires_in=315360001 is outside the sane range 1..315360000",
            "invalid_response",
        ),
        ({"scope": ["a"]}, f"{T}: scope is not a string", "invalid_response"),
        ({"scope": "a" * 8193}, f"{T}: scope is over 8192 characters", "invalid_response"),
        ({"scope": "a\tb"}, f"{T}: scope: 'ab' is refused: {NOT_ONE}", "invalid_response"),
        ({"scope": "a\x7f"}, f"{T}: scope: 'a' is refused: {NOT_ONE}", "invalid_response"),
        ({"scope": 'x a"b'}, f"{T}: scope: 'a\"b' is refused: {NOT_ONE}", "invalid_response"),
        ({"scope": "a\\b"}, f"{T}: scope: 'a\\\\b' is refused: {NOT_ONE}", "invalid_response"),
        (
            {"scope": "a" * 257},
            f"{T}: scope: '{'a' * 59}…' is refused: a scope is at most 256 characters",
            "invalid_response",
        ),
        (
            {"scope": " ".join(f"s{i}" for i in range(101))},
            f"{T}: scope: more than 100 scopes",
            "invalid_response",
        ),
    ],
)
def test_token_answer_refusals(change: dict[str, Any], message: str, code: str) -> None:
    doc = {
        k: v
        for k, v in {"access_token": "at", "token_type": "bearer", **change}.items()
        if v is not None or k == "token_type"
    }
    if change.get("access_token", "") is None:
        doc.pop("access_token", None)
    assert token_refusal(doc) == (message, code)


def test_token_answer_bounds_that_pass() -> None:
    got = tokens(
        {
            "access_token": "a" * 32 * 1024,
            "token_type": "Bearer",
            "refresh_token": "r" * 32 * 1024,
            "id_token": "i" * 64 * 1024,
            "expires_in": 315360000,
            "scope": " ".join(f"{i:03d}" + "a" * 252 for i in range(31)),
        }
    )
    assert got.expires_in == 315360000
    assert got.scopes == tuple(f"{i:03d}" + "a" * 252 for i in range(31))
    assert len(tokens({**FULL, "scope": " ".join(f"s{i}" for i in range(100))}).scopes) == 100
    assert tokens(
        {"access_token": "!~", "token_type": "bearer", "expires_in": 1, "scope": "! ~"}
    ).scopes == ("!", "~")


# --- error answers ---------------------------------------------------------------------


def test_oauth_error() -> None:
    err = _oauth.oauth_error({"error": "access_denied", "error_description": "no\x1b!"}, what="w")
    assert isinstance(err, AuthError)
    assert (str(err), err.code) == (
        "w: the login was denied [access_denied] (no!)",
        "access_denied",
    )
    err = _oauth.oauth_error({"error": "access_denied", "error_description": ""}, what="w")
    assert str(err) == "w: the login was denied [access_denied]"
    err = _oauth.oauth_error({"error": "x" * 100, "error_description": 5}, what="w")
    assert isinstance(err, NetworkError)
    assert (str(err), err.code) == (
        f"w: the provider answered an error vault does not know: {'x' * 63 + '…'!r}",
        "unknown_error",
    )
    err = _oauth.oauth_error({"error": 5, "error_description": "d" * 300}, what="w")
    assert str(err) == f"w: the provider answered an error vault does not know: '?' ({'d' * 199}…)"
    err = _oauth.oauth_error({"error": "access_denied\x1b"}, what="w")
    assert isinstance(err, NetworkError)
    for code, text in _oauth.TERMINAL_ERRORS.items():
        got = _oauth.oauth_error({"error": code}, what="w")
        assert isinstance(got, AuthError)
        assert str(got) == f"w: {text} [{code}]"


# --- refresh and revocation ------------------------------------------------------------

TOKEN_URL = f"{ISSUER}/token"
REVOKE_URL = f"{ISSUER}/revoke"


def do_refresh(answer: Answer, provider: Provider = OIDC) -> tuple[_oauth.TokenSet, Server]:
    server = Server({TOKEN_URL: answer})
    with server.client() as http:
        return _oauth.refresh(http, provider, TOKEN_URL, Secret("rt-1"), ("a", "b")), server


def refresh_refusal(answer: Answer) -> tuple[str, str]:
    with pytest.raises((NetworkError, AuthError)) as info:
        do_refresh(answer)
    return net_error(info)


def test_refresh_sends_the_refresh_grant() -> None:
    got, server = do_refresh(
        j(
            {
                "access_token": "at2",
                "token_type": "bearer",
                "refresh_token": "rt-2",
                "expires_in": 60,
            }
        )
    )
    assert got == _oauth.TokenSet(
        Secret("at2"), "Bearer", Secret("rt-2"), None, 60, ("a", "b"), False
    )
    assert [(r.method, str(r.url)) for r in server.requests] == [("POST", TOKEN_URL)]
    assert server.forms() == [
        {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "cli"}
    ]
    secret = Provider(**{**OIDC.__dict__, "client_secret": Secret("s3")})
    _, server = do_refresh(j({"access_token": "a", "token_type": "bearer"}), secret)
    assert server.forms()[0]["client_secret"] == "s3"
    form, _ = do_refresh(
        httpx.Response(
            200,
            content=b"access_token=a&token_type=bearer&scope=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    )
    assert form.scopes == ("x",)


def test_refresh_refusals() -> None:
    R = "token refresh"
    assert refresh_refusal(j({"error": "invalid_grant"}, 400)) == (
        f"{R}: the provider refused the refresh token (expired or revoked) [invalid_grant]",
        "invalid_grant",
    )
    assert refresh_refusal(j({"error": "invalid_client"}, 401)) == (
        f"{R}: the provider does not know this client_id (or it needs a secret) [invalid_client]",
        "invalid_client",
    )
    assert refresh_refusal(j({"error": "nope"}, 400)) == (
        f"{R}: the provider answered an error vault does not know: 'nope'",
        "unknown_error",
    )
    assert refresh_refusal(j({"error": "invalid_grant"}, 500)) == (
        f"{R}: the provider answered HTTP 500",
        "server_error",
    )
    assert refresh_refusal(j({"access_token": "a", "token_type": "bearer"}, 201)) == (
        f"{R}: HTTP 201 without an OAuth error",
        "invalid_response",
    )
    assert refresh_refusal(j({"access_token": "a", "token_type": "bearer"}, 499)) == (
        f"{R}: HTTP 499 without an OAuth error",
        "invalid_response",
    )
    assert refresh_refusal(j({"access_token": "a b", "token_type": "bearer"})) == (
        f"{R}: access_token holds characters a token cannot hold (spaces, controls or non-ASCII)",
        "invalid_response",
    )


def do_revoke(answer: Answer, hint: str = "refresh_token", provider: Provider = OIDC) -> Server:
    server = Server({REVOKE_URL: answer})
    with server.client() as http:
        _oauth.revoke(http, provider, REVOKE_URL, Secret("tok"), hint)
    return server


def revoke_refusal(answer: Answer) -> tuple[str, str]:
    with pytest.raises((NetworkError, AuthError)) as info:
        do_revoke(answer)
    return net_error(info)


def test_revoke() -> None:
    server = do_revoke(httpx.Response(200, content=b"not json"))
    assert [(r.method, str(r.url)) for r in server.requests] == [("POST", REVOKE_URL)]
    assert server.forms() == [
        {"token": "tok", "token_type_hint": "refresh_token", "client_id": "cli"}
    ]
    secret = Provider(**{**OIDC.__dict__, "client_secret": Secret("s3")})
    assert do_revoke(httpx.Response(200), "access_token", secret).forms() == [
        {
            "token": "tok",
            "token_type_hint": "access_token",
            "client_id": "cli",
            "client_secret": "s3",
        }
    ]
    V = "token revocation"
    assert revoke_refusal(httpx.Response(503)) == (
        f"{V}: the provider answered HTTP 503",
        "server_error",
    )
    assert revoke_refusal(j({"error": "unsupported_token_type"}, 400)) == (
        f"{V}: the provider answered an error vault does not know: 'unsupported_token_type'",
        "unknown_error",
    )
    assert revoke_refusal(j({"error": "invalid_client"}, 401)) == (
        f"{V}: the provider does not know this client_id (or it needs a secret) [invalid_client]",
        "invalid_client",
    )
    assert revoke_refusal(httpx.Response(400, content=b"{{garbage")) == (
        f"{V}: the provider answered HTTP 400",
        "invalid_response",
    )
    assert revoke_refusal(j({"ok": True}, 204)) == (
        f"{V}: the provider answered HTTP 204",
        "invalid_response",
    )
    assert revoke_refusal(j({"ok": True}, 499)) == (
        f"{V}: the provider answered HTTP 499",
        "invalid_response",
    )


def test_responses_are_read_as_json_or_form() -> None:
    assert json.loads(json.dumps(META)) == META


# --- more exact refusals: each names what was being done ---------------------------------


def test_what_is_named_in_transport_and_parse_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with Server({OIDC_URL: refuse}).client() as http, pytest.raises(NetworkError) as info:
        _oauth.discover(http, OIDC)
    assert net_error(info) == (
        "provider discovery: cannot reach idp.example.com (ConnectError)",
        "unreachable",
    )
    info = discovery_refusal({OIDC_URL: httpx.Response(200, content=b"<html>")})
    assert str(info.value) == (
        "provider discovery: the provider answered HTTP 200 with a body that is not JSON"
    )
    bad_form = httpx.Response(
        200, content=b"a=%zz&&=", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    with Server({f"{ISSUER}/device": bad_form}).client() as http, pytest.raises(NetworkError) as i2:
        _oauth.request_device_code(http, OIDC, ENDPOINTS, ())
    assert str(i2.value) == f"{W}: the provider's form-encoded answer is malformed"
    with Server({f"{ISSUER}/device": refuse}).client() as http, pytest.raises(NetworkError) as i2:
        _oauth.request_device_code(http, OIDC, ENDPOINTS, ())
    assert str(i2.value) == f"{W}: cannot reach idp.example.com (ConnectError)"
    assert refresh_refusal(bad_form) == (
        "token refresh: the provider's form-encoded answer is malformed",
        "invalid_response",
    )
    assert refresh_refusal(refuse) == (
        "token refresh: cannot reach idp.example.com (ConnectError)",
        "unreachable",
    )
    bad_form_400 = httpx.Response(
        400, content=b"a=%zz&&=", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert revoke_refusal(bad_form_400) == (
        "token revocation: the provider answered HTTP 400",
        "invalid_response",
    )
    assert revoke_refusal(refuse) == (
        "token revocation: cannot reach idp.example.com (ConnectError)",
        "unreachable",
    )
    assert revoke_refusal(httpx.Response(500)) == (
        "token revocation: the provider answered HTTP 500",
        "server_error",
    )
    assert revoke_refusal(j({"error": "invalid_client"}, 500)) == (
        "token revocation: the provider answered HTTP 500",
        "server_error",
    )


def test_long_values_are_cut_in_messages() -> None:
    long_issuer = "https://" + "i" * 300
    info = discovery_refusal({OIDC_URL: j({**META, "issuer": long_issuer})})
    assert str(info.value) == (
        f"provider discovery: the metadata's issuer {long_issuer[:199] + '…'!r} is not the "
        f"configured issuer {ISSUER!r}; refusing (RFC 8414 §3.3)"
    )
    host = "h" * 150 + ".example"
    extra = Provider(**{**OIDC.__dict__, "verification_hosts": ("b.example", "a.example")})
    assert device_refusal({**DEVICE, "verification_uri": f"https://{host}/"}, provider=extra) == (
        f"{W}: verification_uri points to {host[:99] + '…'!r}, not to the provider "
        "(https://a.example:443, https://b.example:443, https://idp.example.com:443); "
        "refusing to send you there",
        "foreign_host",
    )
    assert token_refusal({"access_token": "a", "token_type": "t" * 50}) == (
        f"{T}: token_type {'t' * 39 + '…'!r} is not one vault understands (Bearer)",
        "unsupported_token_type",
    )
    assert token_refusal({"access_token": "a", "token_type": 5}) == (
        f"{T}: token_type 'int' is not one vault understands (Bearer)",
        "unsupported_token_type",
    )


def test_metadata_urls_strip_only_slashes() -> None:
    assert _oauth._metadata_urls("https://a.example/tenantX") == [
        "https://a.example/tenantX/.well-known/openid-configuration",
        "https://a.example/.well-known/oauth-authorization-server/tenantX",
    ]


def test_host_allowed_without_a_host() -> None:
    assert _oauth._host_allowed("https:///p", {"xxxx"}) is False


# --- polling, exactly ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


DEVICE_AUTH = _oauth.DeviceAuthorization(
    device_code=Secret("dc-9"),
    user_code="U",
    verification_uri=f"{ISSUER}/a",
    verification_uri_complete=None,
    expires_in=60,
    interval=5,
)


def run_poll(
    answers: list[Answer],
    *,
    provider: Provider = OIDC,
    device_auth: _oauth.DeviceAuthorization = DEVICE_AUTH,
) -> tuple[Clock, Server, _oauth.TokenSet | NetworkError | AuthError]:
    clock = Clock()
    queue = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        a = queue.pop(0)
        return a(request) if callable(a) else a

    server = Server({TOKEN_URL: answer})
    with server.client() as http:
        try:
            result: _oauth.TokenSet | NetworkError | AuthError = _oauth.poll(
                http,
                provider,
                ENDPOINTS,
                device_auth,
                ("openid", "repo"),
                clock=clock,
                sleep=clock.sleep,
                on_wait=clock.waits.append,
            )
        except (NetworkError, AuthError) as exc:
            result = exc
    return clock, server, result


PENDING = j({"error": "authorization_pending"}, 400)
OK = j({"access_token": "at", "token_type": "bearer"})


def test_poll_sends_the_device_grant_and_keeps_the_requested_scopes() -> None:
    clock, server, result = run_poll([PENDING, OK])
    assert result == _oauth.TokenSet(
        Secret("at"), "Bearer", None, None, None, ("openid", "repo"), False
    )
    assert (
        server.forms()
        == [{"grant_type": _oauth.DEVICE_GRANT, "device_code": "dc-9", "client_id": "cli"}] * 2
    )
    assert [r.method for r in server.requests] == ["POST", "POST"]
    secret = Provider(**{**OIDC.__dict__, "client_secret": Secret("s3")})
    _, server, _ = run_poll([OK], provider=secret)
    assert server.forms() == [
        {
            "grant_type": _oauth.DEVICE_GRANT,
            "device_code": "dc-9",
            "client_id": "cli",
            "client_secret": "s3",
        }
    ]
    # one-second sleeps, each after telling how long the code has left
    assert clock.sleeps == [1.0] * 10
    assert clock.waits == [60.0 - i for i in range(10)]


def test_wait_sleeps_in_steps_of_at_most_a_second() -> None:
    clock = Clock()
    _oauth._wait(2.5, clock, clock.sleep, clock.waits.append, 1010.0)
    assert clock.sleeps == [1.0, 1.0, 0.5]
    assert clock.waits == [10.0, 9.0, 8.0]
    assert clock.now == 1002.5
    quiet = Clock()
    _oauth._wait(0.25, quiet, quiet.sleep, None, 0.0)
    assert quiet.sleeps == [0.25]
    _oauth._wait(0, quiet, quiet.sleep, None, 0.0)
    assert quiet.sleeps == [0.25]


def test_poll_stops_exactly_at_the_deadline() -> None:
    short = _oauth.DeviceAuthorization(Secret("d"), "U", f"{ISSUER}/a", None, 10, 5)
    clock, server, result = run_poll([PENDING, PENDING, OK], device_auth=short)
    # At 5 s; the next poll would land on the deadline itself, when the code has expired.
    assert len(server.requests) == 1
    assert isinstance(result, AuthError)
    assert (str(result), result.code) == (
        "token request: the code expired before it was approved [expired_token]",
        "expired_token",
    )
    assert clock.now == 1010.0


def test_poll_failures_until_expiry_name_the_last_failure() -> None:
    short = _oauth.DeviceAuthorization(Secret("d"), "U", f"{ISSUER}/a", None, 30, 5)
    _, server, result = run_poll([httpx.Response(503)] * 5, device_auth=short)
    assert isinstance(result, NetworkError)
    assert (str(result), result.code) == (
        "token request: the provider kept failing until the code expired (token request: HTTP 503)",
        "server_error",
    )
    assert len(server.requests) == 2  # 5 s, then 10 s of backoff; 20 s more would pass 30

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    _, _, result = run_poll([refuse] * 5, device_auth=short)
    assert isinstance(result, NetworkError)
    assert (str(result), result.code) == (
        "token request: the provider kept failing until the code expired "
        "(token request: cannot reach idp.example.com (ConnectError))",
        "unreachable",
    )


def test_poll_recovers_after_a_failure_and_backs_off_again() -> None:
    clock, server, result = run_poll([httpx.Response(503), PENDING, httpx.Response(429), OK])
    assert isinstance(result, _oauth.TokenSet)
    assert len(server.requests) == 4
    assert clock.now == 1000.0 + 5 + 10 + 5 + 10


def test_poll_slow_down_bounds() -> None:
    clock, _, result = run_poll(
        [j({"error": "slow_down", "interval": 600}, 400), OK],
        device_auth=_oauth.DeviceAuthorization(Secret("d"), "U", f"{ISSUER}/a", None, 3600, 5),
    )
    assert isinstance(result, _oauth.TokenSet)
    assert clock.now == 1000.0 + 5 + 600
    clock, _, result = run_poll([j({"error": "slow_down", "interval": 1}, 400), OK])
    assert isinstance(result, _oauth.TokenSet)
    assert clock.now == 1000.0 + 5 + 10
    _, _, result = run_poll([j({"error": "slow_down", "interval": 601}, 400), OK])
    assert isinstance(result, NetworkError)
    assert (str(result), result.code) == (
        "token request: interval=601 is outside the sane range 1..600",
        "invalid_response",
    )


def test_poll_terminal_answers_are_exact() -> None:
    _, _, result = run_poll([j({"error": "access_denied"}, 400)])
    assert isinstance(result, AuthError)
    assert (str(result), result.code) == (
        "token request: the login was denied [access_denied]",
        "access_denied",
    )
    _, _, result = run_poll([j({"access_token": "at", "token_type": "bearer"}, 201)])
    assert isinstance(result, NetworkError)
    assert (str(result), result.code) == (
        "token request: HTTP 201 without an OAuth error",
        "invalid_response",
    )
    _, _, result = run_poll([j({"access_token": "a b", "token_type": "bearer"})])
    assert isinstance(result, NetworkError)
    assert str(result) == (
        "token request: access_token holds characters a token cannot hold (spaces, controls "
        "or non-ASCII)"
    )
    bad_form = httpx.Response(
        200, content=b"a=%zz&&=", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    _, _, result = run_poll([bad_form])
    assert str(result) == "token request: the provider's form-encoded answer is malformed"


def test_poll_expiring_before_the_first_poll() -> None:
    brief = _oauth.DeviceAuthorization(Secret("d"), "U", f"{ISSUER}/a", None, 3, 5)
    clock, server, result = run_poll([OK], device_auth=brief)
    assert server.requests == []
    assert isinstance(result, AuthError)
    assert str(result) == "token request: the code expired before it was approved [expired_token]"
    assert clock.now == 1000.0


def test_poll_retries_timeouts_and_http_500() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    clock, _, result = run_poll([slow, OK])
    assert isinstance(result, _oauth.TokenSet)
    assert clock.now == 1000.0 + 5 + 10
    clock, _, result = run_poll([httpx.Response(500), OK])
    assert isinstance(result, _oauth.TokenSet)
    assert clock.now == 1000.0 + 5 + 10
    _, _, result = run_poll([j({}, 499), OK])
    assert isinstance(result, NetworkError)
    assert str(result) == "token request: HTTP 499 without an OAuth error"
