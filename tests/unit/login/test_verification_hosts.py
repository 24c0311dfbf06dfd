"""The verification_uri a provider sends is where the person types the code: each preset allows
exactly its provider's documented verification pages, and nothing that merely looks like one.

Documented verification URIs: Google answers ``verification_url`` https://www.google.com/device
(developers.google.com, "OAuth 2.0 for TV and Limited-Input Device Applications"); Microsoft
answers https://microsoft.com/devicelogin (learn.microsoft.com, "Microsoft identity platform
and the OAuth 2.0 device authorization grant flow"), and newer tenants
https://login.microsoft.com/device; GitHub https://github.com/login/device; GitLab
https://gitlab.com/oauth/device (both on the issuer's host)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vault.errors import NetworkError
from vault.login import oauth as _oauth
from vault.login.providers import Provider, from_config

DOCUMENTED = {
    "google": ["https://www.google.com/device"],
    "microsoft": [
        "https://microsoft.com/devicelogin",
        "https://login.microsoft.com/device",
        "https://login.microsoftonline.com/common/oauth2/deviceauth",
    ],
    "github": ["https://github.com/login/device"],
}


def _ask(preset: str, verification_uri: str, complete: str | None = None) -> str:
    provider: Provider = from_config(preset, {"client_id": "cli"}, "test")

    def answer(request: httpx.Request) -> httpx.Response:
        doc = {
            "device_code": "dc",
            "user_code": "ABCD-EFGH",
            "verification_uri" if preset != "google" else "verification_url": verification_uri,
            "expires_in": 900,
            "interval": 5,
        }
        if complete is not None:
            doc["verification_uri_complete"] = complete
        return httpx.Response(200, json=doc)

    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        endpoints = _oauth.discover(http, provider)
        device = _oauth.request_device_code(http, provider, endpoints, ("openid",))
    return device.verification_uri


@pytest.mark.parametrize(
    ("preset", "uri"), [(p, u) for p, uris in DOCUMENTED.items() for u in uris]
)
def test_each_preset_accepts_its_providers_documented_verification_page(
    preset: str, uri: str
) -> None:
    assert _ask(preset, uri) == uri
    upper = uri.replace(uri.split("/")[2], uri.split("/")[2].upper())
    assert _ask(preset, upper) == upper  # host names are case-insensitive


def _lookalikes(host: str) -> st.SearchStrategy[str]:
    label, _, rest = host.partition(".")
    return st.sampled_from(
        [
            f"{host}.evil.example",  # suffix
            f"evil{host}",  # prefix
            f"evil.{host}",  # a subdomain is another host
            f"{host}.",  # trailing dot
            f"{host}..",
            f"{host}:8443",  # another port
            f"{host}:80",
            f"{host}@evil.example",  # userinfo: the real host is after the @
            f"evil.example@{host}",
            f"evil.example#@{host}",
            f"{label}-{rest}",
            f"{label}{rest}",
            host.replace("o", "\u043e", 1),  # Cyrillic o
            host.replace("e", "\u0435", 1),  # Cyrillic e
            f"xn--{label}-7ya.{rest}",  # punycode of a look-alike
            f"{host}%2eevil.example",
            f"{host}\\@evil.example",
            f"{host}\u3002evil.example",  # ideographic full stop
            f"{host.upper()}.EVIL.EXAMPLE",
        ]
    )


ALLOWED = {
    "google": ["www.google.com", "accounts.google.com", "oauth2.googleapis.com"],
    "microsoft": ["microsoft.com", "login.microsoft.com", "login.microsoftonline.com"],
    "github": ["github.com"],
}


@settings(max_examples=300, deadline=None)
@given(
    case=st.sampled_from([(p, h) for p, hosts in ALLOWED.items() for h in hosts]).flatmap(
        lambda ph: st.tuples(st.just(ph[0]), _lookalikes(ph[1]))
    ),
    path=st.sampled_from(["/device", "/devicelogin", "/"]),
    scheme=st.sampled_from(["https", "http"]),
)
def test_look_alike_verification_hosts_are_refused(
    case: tuple[str, str], path: str, scheme: str
) -> None:
    preset, host = case
    assume(host.lower() not in ALLOWED[preset])  # a homoglyph swap that found nothing to swap
    with pytest.raises(NetworkError):
        _ask(preset, f"{scheme}://{host}{path}")


@pytest.mark.parametrize("preset", sorted(DOCUMENTED))
def test_plain_http_to_a_documented_host_is_refused(preset: str) -> None:
    for uri in DOCUMENTED[preset]:
        with pytest.raises(NetworkError):
            _ask(preset, uri.replace("https://", "http://"))


def test_another_presets_page_is_not_this_ones() -> None:
    with pytest.raises(NetworkError, match="not to the provider"):
        _ask("google", "https://microsoft.com/devicelogin")
    with pytest.raises(NetworkError, match="not to the provider"):
        _ask("github", "https://www.google.com/device")
