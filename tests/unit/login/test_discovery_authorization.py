"""What discovery reads for the authorization code grant (RFC 8414 / OpenID Connect Discovery):
the authorization endpoint, config.yaml's over the metadata's, and RFC 9207's promise of
``iss`` only where the metadata says ``true``; and the same endpoint without discovery."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tests.unit.login.test_oauth_checks import ISSUER, META, OIDC, OIDC_URL, Server, j
from vault.login import oauth as _oauth
from vault.login.providers import Provider
from vault.util.record import replace

AUTH = f"{ISSUER}/authorize"


def _discover(doc: Mapping[str, object], provider: Provider = OIDC) -> _oauth.Endpoints:
    with Server({OIDC_URL: j(doc)}).client() as http:
        return _oauth.discover(http, provider)


def test_the_authorization_endpoint_comes_from_the_metadata() -> None:
    got = _discover({**META, "authorization_endpoint": AUTH})
    assert got.authorization_endpoint == AUTH
    assert _discover(META).authorization_endpoint is None


def test_config_yamls_authorization_endpoint_wins() -> None:
    mine = f"{ISSUER}/my-authorize"
    provider = replace(OIDC, authorization_endpoint=mine)
    assert _discover({**META, "authorization_endpoint": AUTH}, provider).authorization_endpoint == (
        mine
    )
    assert _discover(META, provider).authorization_endpoint == mine


@pytest.mark.parametrize(
    ("value", "promised"),
    [(True, True), (False, False), ("true", False), (1, False), (None, False)],
)
def test_iss_is_promised_only_by_a_json_true(value: object, promised: bool) -> None:
    doc: dict[str, object] = dict(META)
    if value is not None:
        doc["authorization_response_iss_parameter_supported"] = value
    assert _discover(doc).iss_parameter_supported is promised


def test_without_discovery_the_configured_authorization_endpoint_is_used() -> None:
    provider = replace(
        OIDC,
        discovery=False,
        token_endpoint=f"{ISSUER}/token",
        device_authorization_endpoint=f"{ISSUER}/device",
        authorization_endpoint=AUTH,
    )
    with Server({}).client() as http:
        got = _oauth.discover(http, provider)
    assert got.authorization_endpoint == AUTH
    assert got.token_endpoint == f"{ISSUER}/token"
    assert got.iss_parameter_supported is False
