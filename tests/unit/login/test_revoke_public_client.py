"""A provider that revokes only for confidential clients (Glewlwyd 2.7.5: an empty 401 to a
public client): the refusal is reported as one, names where the person revokes instead, and is
never mistaken for a revocation; answers that are not that refusal keep their own errors."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vault.errors import AuthError, NetworkError
from vault.login import oauth as _oauth
from vault.login.providers import PRESETS, Provider
from vault.secret import Secret
from vault.util.record import replace

ISSUER = "http://127.0.0.1:4593/api/vault"
URL = f"{ISSUER}/revoke"
PUBLIC = Provider(name="g", preset="oidc", issuer=ISSUER, client_id="vault-cli", source="c:1")
V = "token revocation"


def revoke(answer: httpx.Response, provider: Provider = PUBLIC, token: str = "t") -> None:  # noqa: S107
    def handler(request: httpx.Request) -> httpx.Response:
        return answer

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        _oauth.revoke(http, provider, URL, Secret(token), "refresh_token")


def refusal(answer: httpx.Response, provider: Provider = PUBLIC) -> tuple[str, str]:
    with pytest.raises((NetworkError, AuthError)) as info:
        revoke(answer, provider)
    assert isinstance(info.value, NetworkError | AuthError)
    return str(info.value), info.value.code


REFUSED = (
    f"{V}: the provider refused to revoke for the public client 'vault-cli' (HTTP 401; it may "
    f"revoke only for confidential clients); revoke the grant on the provider's own pages: "
    f"{ISSUER}"
)


def test_an_empty_401_to_a_public_client_is_a_refusal_naming_where_to_revoke() -> None:
    assert refusal(httpx.Response(401)) == (REFUSED, "revocation_refused")
    assert refusal(httpx.Response(403, content=b"")) == (
        REFUSED.replace("HTTP 401", "HTTP 403"),
        "revocation_refused",
    )
    assert refusal(httpx.Response(401, content=b"<html>no</html>"))[1] == "revocation_refused"


def test_the_place_to_revoke_is_the_providers_own_when_it_has_one() -> None:
    github = replace(PRESETS["github"], client_id="gh-cli")
    message, code = refusal(httpx.Response(401), github)
    assert code == "revocation_refused"
    assert message.endswith("https://github.com/settings/applications")


def test_other_answers_keep_their_own_errors() -> None:
    # An OAuth error body says what it says, public client or not.
    assert refusal(httpx.Response(401, json={"error": "invalid_client"}))[1] == "invalid_client"
    # A confidential client refused is not "public client" (its secret may be wrong).
    confidential = replace(PUBLIC, client_secret=Secret("s3"))
    assert refusal(httpx.Response(401), confidential) == (
        f"{V}: the provider answered HTTP 401",
        "invalid_response",
    )
    assert refusal(httpx.Response(400))[1] == "invalid_response"
    revoke(httpx.Response(200))  # revoked: no error


@given(
    client_id=st.text(min_size=1, max_size=300),
    tail=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=40),
)
def test_the_refusal_is_one_clean_line_without_the_token(client_id: str, tail: str) -> None:
    token = "canary-" + tail
    assume(token not in client_id)
    provider = replace(PUBLIC, client_id=client_id)
    with pytest.raises(NetworkError) as info:
        revoke(httpx.Response(401), provider, token)
    message = str(info.value)
    assert token not in message
    assert "\n" not in message
    assert "\r" not in message
    assert "\x1b" not in message
    assert len(message) < 700


def test_long_names_in_the_refusal_are_cut_where_the_message_says() -> None:
    long_id, page = "c" * 150, "https://idp.example/" + "p" * 400
    provider = replace(PUBLIC, client_id=long_id, revoke_by_hand=page)
    message, code = refusal(httpx.Response(401), provider)
    assert code == "revocation_refused"
    assert message == (
        f"{V}: the provider refused to revoke for the public client '{'c' * 99}…' (HTTP 401; it "
        "may revoke only for confidential clients); revoke the grant on the provider's own "
        f"pages: {page[:299]}…"
    )
