"""vault.login.pkce: the verifier and challenge (RFC 7636), the authorization request, and
every check on the authorization response and the ID token."""

from __future__ import annotations

import base64
import json
import urllib.parse

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.login.test_oauth_checks import Server
from vault.errors import AuthError, NetworkError
from vault.login import oauth, pkce
from vault.login.providers import Provider
from vault.secret import Secret

ISSUER = "https://idp.example.test"
PROVIDER = Provider(name="p", preset="oidc", issuer=ISSUER, client_id="vault-cli")
ENDPOINTS = oauth.Endpoints(
    issuer=ISSUER,
    device_authorization_endpoint=None,
    token_endpoint=f"{ISSUER}/token",
    authorization_endpoint=f"{ISSUER}/auth",
    iss_parameter_supported=True,
)
REDIRECT = "http://127.0.0.1:4711/callback"


def _params(url: str) -> dict[str, str]:
    pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    assert len(pairs) == len(dict(pairs)), "a parameter twice"
    return dict(pairs)


def _auth(scopes: tuple[str, ...] = ("openid",)) -> pkce.AuthRequest:
    return pkce.start(PROVIDER, ENDPOINTS, scopes, REDIRECT)


def _query(auth: pkce.AuthRequest, **fields: str | None) -> str:
    doc: dict[str, str | None] = {"code": "the-code", "state": auth.state.reveal(), "iss": ISSUER}
    doc.update(fields)
    return urllib.parse.urlencode({k: v for k, v in doc.items() if v is not None})


def test_rfc7636_appendix_b_example() -> None:
    verifier = Secret("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert pkce.challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifiers_are_fresh_and_within_the_rfc() -> None:
    seen = {pkce.new_verifier().reveal() for _ in range(200)}
    assert len(seen) == 200
    for v in seen:
        assert 43 <= len(v) <= 128
        assert pkce.check_verifier(v) == v
    assert "Secret(" in repr(pkce.new_verifier())


@given(st.text(max_size=200))
def test_check_verifier_takes_only_what_rfc7636_allows(text: str) -> None:
    ok = 43 <= len(text) <= 128 and all(c.isascii() and (c.isalnum() or c in "-._~") for c in text)
    if ok:
        assert pkce.check_verifier(text) == text
    else:
        with pytest.raises(ValueError, match="43 to 128"):
            pkce.check_verifier(text)


def test_authorization_url_carries_the_request() -> None:
    auth = _auth(("openid", "repo"))
    params = _params(auth.url)
    assert auth.url.startswith(f"{ISSUER}/auth?")
    assert params == {
        "response_type": "code",
        "client_id": "vault-cli",
        "redirect_uri": REDIRECT,
        "state": auth.state.reveal(),
        "nonce": auth.nonce.reveal(),
        "code_challenge": pkce.challenge(auth.verifier),
        "code_challenge_method": "S256",
        "scope": "openid repo",
    }
    assert auth.verifier.reveal() not in auth.url
    assert auth.redirect_uri == REDIRECT
    other = _auth(("openid", "repo"))
    assert other.state.reveal() != auth.state.reveal()
    assert other.nonce.reveal() != auth.nonce.reveal()


def test_offline_access_asks_for_consent_and_a_query_is_kept() -> None:
    assert _params(_auth(("openid", "offline_access")).url)["prompt"] == "consent"
    assert "prompt" not in _params(_auth(("openid",)).url)
    endpoints = oauth.Endpoints(
        issuer=ISSUER,
        device_authorization_endpoint=None,
        token_endpoint=f"{ISSUER}/token",
        authorization_endpoint=f"{ISSUER}/auth?tenant=a%20b",
    )
    url = pkce.start(PROVIDER, endpoints, (), REDIRECT).url
    assert _params(url)["tenant"] == "a b"
    assert "scope" not in _params(url)


def test_no_authorization_endpoint_is_refused() -> None:
    endpoints = oauth.Endpoints(
        issuer=ISSUER, device_authorization_endpoint=None, token_endpoint=f"{ISSUER}/token"
    )
    with pytest.raises(NetworkError, match="no authorization endpoint") as err:
        pkce.start(PROVIDER, endpoints, (), REDIRECT)
    assert err.value.exit_code == 7


def test_a_good_response_gives_the_code() -> None:
    auth = _auth()
    code = pkce.parse_response(_query(auth), auth, ENDPOINTS)
    assert code.reveal() == "the-code"
    assert "the-code" not in repr(code)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"state": "forged"}, "state_mismatch"),
        ({"state": None}, "state_mismatch"),
        ({"state": ""}, "state_mismatch"),
        ({"iss": "https://evil.example.test"}, "iss_mismatch"),
        ({"iss": ISSUER + "/"}, "iss_mismatch"),
        ({"iss": None}, "iss_mismatch"),  # the metadata promises iss (RFC 9207)
        ({"code": None}, "invalid_response"),
        ({"code": ""}, "invalid_response"),
        ({"code": "has space"}, "invalid_response"),
        ({"code": "x" * 5000}, "invalid_response"),
        ({"code": None, "error": "access_denied"}, "access_denied"),
        ({"error": "access_denied", "error_description": "no\x1b[31m"}, "access_denied"),
        ({"code": None, "error": "invalid_scope"}, "invalid_scope"),
        ({"code": None, "error": "made_up"}, "unknown_error"),
    ],
)
def test_every_bad_response_is_refused(fields: dict[str, str | None], code: str) -> None:
    auth = _auth()
    with pytest.raises(AuthError) as err:
        pkce.parse_response(_query(auth, **fields), auth, ENDPOINTS)
    assert err.value.code == code
    assert err.value.exit_code == 4
    assert "\x1b" not in err.value.message


def test_denial_says_denied() -> None:
    auth = _auth()
    with pytest.raises(AuthError, match="the login was denied"):
        pkce.parse_response(_query(auth, code=None, error="access_denied"), auth, ENDPOINTS)


def test_a_forged_error_is_a_state_mismatch_first() -> None:
    auth = _auth()
    with pytest.raises(AuthError) as err:
        pkce.parse_response("error=access_denied&state=nope", auth, ENDPOINTS)
    assert err.value.code == "state_mismatch"


def test_iss_is_optional_where_the_metadata_does_not_promise_it() -> None:
    auth = _auth()
    quiet = oauth.Endpoints(
        issuer=ISSUER,
        device_authorization_endpoint=None,
        token_endpoint=f"{ISSUER}/token",
        authorization_endpoint=f"{ISSUER}/auth",
    )
    assert pkce.parse_response(_query(auth, iss=None), auth, quiet).reveal() == "the-code"
    with pytest.raises(AuthError, match="mix-up"):  # sent: still checked
        pkce.parse_response(_query(auth, iss="https://other.test"), auth, quiet)


def test_a_parameter_twice_is_refused() -> None:
    auth = _auth()
    query = _query(auth) + "&code=second"
    with pytest.raises(AuthError, match="given twice"):
        pkce.parse_response(query, auth, ENDPOINTS)
    query = _query(auth) + "&state=" + auth.state.reveal()
    with pytest.raises(AuthError, match="given twice"):
        pkce.parse_response(query, auth, ENDPOINTS)


@given(st.text(max_size=300))
def test_any_query_is_a_code_or_an_auth_error(query: str) -> None:
    auth = _auth()
    try:
        pkce.parse_response(query, auth, ENDPOINTS)
    except AuthError:
        return
    raise AssertionError("a random query passed")  # it cannot know the state


def _jwt(claims: dict[str, object]) -> Secret:
    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return Secret(f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln")


def test_id_token_nonce() -> None:
    auth = _auth()
    pkce.check_id_token(_jwt({"nonce": auth.nonce.reveal()}), auth.nonce)
    pkce.check_id_token(None, auth.nonce)
    bad: list[dict[str, object]] = [{"nonce": "other"}, {}, {"nonce": 5}]
    for claims in bad:
        with pytest.raises(AuthError) as err:
            pkce.check_id_token(_jwt(claims), auth.nonce)
        assert err.value.code == "nonce_mismatch"
    with pytest.raises(NetworkError, match="not a JWT"):
        pkce.check_id_token(Secret("opaque"), auth.nonce)


# --- the code exchange (RFC 6749 §4.1.3, RFC 7636 §4.5), against a scripted transport ----------

TOKEN_URL = f"{ISSUER}/token"
CANARY = "code-canary-7f3e"


def _exchange(
    answer: httpx.Response, provider: Provider = PROVIDER
) -> tuple[oauth.TokenSet | BaseException, dict[str, str], pkce.AuthRequest]:
    auth = _auth(("openid", "profile"))
    server = Server({TOKEN_URL: answer})
    with server.client() as http:
        try:
            result: oauth.TokenSet | BaseException = pkce.exchange(
                http, provider, ENDPOINTS, auth, Secret(CANARY), requested=("openid", "profile")
            )
        except (AuthError, NetworkError) as exc:
            result = exc
    assert [(r.method, str(r.url)) for r in server.requests] == [("POST", TOKEN_URL)]
    return result, server.forms()[0], auth


def test_the_exchange_sends_the_code_the_verifier_and_the_redirect() -> None:
    body = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "scope": "openid"}
    result, form, auth = _exchange(httpx.Response(200, json=body))
    assert isinstance(result, oauth.TokenSet), result
    assert result.access_token.reveal() == "at-1"
    assert form == {
        "grant_type": "authorization_code",
        "code": CANARY,
        "redirect_uri": REDIRECT,
        "code_verifier": auth.verifier.reveal(),
        "client_id": "vault-cli",
    }


def test_a_confidential_client_sends_its_secret() -> None:
    confidential = Provider(
        name="p", preset="oidc", issuer=ISSUER, client_id="vault-cli", client_secret=Secret("s3")
    )
    body = {"access_token": "at-1", "token_type": "Bearer"}
    result, form, _ = _exchange(httpx.Response(200, json=body), confidential)
    assert isinstance(result, oauth.TokenSet), result
    assert form["client_secret"] == "s3"


@pytest.mark.parametrize(
    ("answer", "kind", "code", "words"),
    [
        (
            httpx.Response(400, json={"error": "invalid_grant"}),
            AuthError,
            "invalid_grant",
            "refused the authorization code (used, expired, or not issued for this verifier)",
        ),
        (
            httpx.Response(400, json={"error": "invalid_client"}),
            AuthError,
            "invalid_client",
            "invalid_client",
        ),
        (httpx.Response(502, text="bad gateway"), NetworkError, "server_error", "HTTP 502"),
        (httpx.Response(500, json={"error": "invalid_grant"}), NetworkError, "server_error", "500"),
        (
            httpx.Response(201, json={"access_token": "at", "token_type": "Bearer"}),
            NetworkError,
            "invalid_response",
            "HTTP 201 without an OAuth error",
        ),
        (
            httpx.Response(400, json={"note": "nothing"}),
            NetworkError,
            "invalid_response",
            "HTTP 400 without an OAuth error",
        ),
    ],
)
def test_every_refused_exchange_says_why(
    answer: httpx.Response, kind: type[BaseException], code: str, words: str
) -> None:
    result, _, _ = _exchange(answer)
    assert type(result) is kind, result
    assert isinstance(result, AuthError | NetworkError)
    assert result.code == code
    assert words in str(result)
    assert result.message.startswith("token request")
    assert CANARY not in str(result)


# --- every refusal in the words a person reads, at the edges of each check ----------------------

AR = "authorization response: "


def _refusal(query: str, auth: pkce.AuthRequest, endpoints: oauth.Endpoints = ENDPOINTS) -> str:
    with pytest.raises(AuthError) as err:
        pkce.parse_response(query, auth, endpoints)
    assert err.value.exit_code == 4
    return f"{err.value.code}: {err.value.message}"


def test_each_refusal_of_a_response_reads_exactly() -> None:
    auth = _auth()
    state = auth.state.reveal()
    ok = f"state={state}&iss={urllib.parse.quote(ISSUER, safe='')}"
    long_key, long_iss, long_error = "k" * 50, "i" * 250, "e" * 70
    cases = {
        "state=a&junk": "invalid_response: " + AR + "the redirect's query cannot be read",
        f"{ok}&code=%ff": "invalid_response: " + AR + "the redirect's query cannot be read",
        "&".join(f"f{i}=x" for i in range(33)): (
            "invalid_response: " + AR + "the redirect's query cannot be read"
        ),
        f"{ok}&{long_key}=1&{long_key}=2": (f"invalid_response: {AR}'{'k' * 39}…' is given twice"),
        "state=nope&code=c": (
            f"state_mismatch: {AR}the state does not match this login's; refusing (a forged or "
            "stale redirect) [state_mismatch]"
        ),
        f"state={state}&code=c": (
            f"iss_mismatch: {AR}no iss although the provider's metadata promises one (RFC 9207); "
            "refusing [iss_mismatch]"
        ),
        f"state={state}&iss={long_iss}&code=c": (
            f"iss_mismatch: {AR}it comes from issuer '{'i' * 199}…', not '{ISSUER}'; refusing "
            "(a mix-up, RFC 9207) [iss_mismatch]"
        ),
        f"{ok}&error={long_error}": (
            f"unknown_error: {AR}the provider answered an error vault does not know: '{'e' * 63}…'"
        ),
        f"{ok}&error=invalid_scope&error_description={'d' * 250}": (
            f"invalid_scope: {AR}the provider refused the requested scopes [invalid_scope] "
            f"({'d' * 199}…)"
        ),
        f"{ok}&error=access_denied&error_description=": (
            f"access_denied: {AR}the login was denied [access_denied]"
        ),
        ok: f"invalid_response: {AR}the redirect carries no code",
        f"{ok}&code=": f"invalid_response: {AR}the redirect carries no code",
        f"{ok}&code={'c' * (pkce.MAX_CODE_CHARS + 1)}": (
            f"invalid_response: {AR}the code is not one a provider sends"
        ),
        f"{ok}&code=a%7Fb": f"invalid_response: {AR}the code is not one a provider sends",
        f"{ok}&code=a%20b": f"invalid_response: {AR}the code is not one a provider sends",
    }
    for query, expected in cases.items():
        assert _refusal(query, auth) == expected, query


def test_a_code_may_be_any_visible_ascii_up_to_its_limit() -> None:
    auth = _auth()
    ok = f"state={auth.state.reveal()}&iss={urllib.parse.quote(ISSUER, safe='')}"
    for code in ("!", "~", "!~", "c" * pkce.MAX_CODE_CHARS, "".join(map(chr, range(33, 127)))):
        query = f"{ok}&code={urllib.parse.quote(code, safe='')}"
        assert pkce.parse_response(query, auth, ENDPOINTS).reveal() == code


def test_a_state_that_cannot_be_encoded_is_a_mismatch_not_a_crash() -> None:
    auth = _auth()
    query = f"state=\ud800&iss={urllib.parse.quote(ISSUER, safe='')}&code=c"
    assert _refusal(query, auth).startswith("state_mismatch: ")


def test_the_id_token_refusals_read_exactly() -> None:
    nonce = _auth().nonce
    with pytest.raises(NetworkError) as not_jwt:
        pkce.check_id_token(Secret("opaque"), nonce)
    assert (not_jwt.value.code, not_jwt.value.message) == (
        "invalid_response",
        "token request: the id_token is not a JWT",
    )
    with pytest.raises(AuthError) as other:
        pkce.check_id_token(_jwt({"nonce": "another"}), nonce)
    assert (other.value.code, other.value.message) == (
        "nonce_mismatch",
        "token request: the ID token's nonce does not match this login's; refusing (a replayed "
        "or injected response) [nonce_mismatch]",
    )


def test_the_request_secrets_have_their_lengths() -> None:
    for _ in range(50):
        auth = _auth()
        assert len(auth.verifier.reveal()) == 64
        assert len(auth.state.reveal()) == 43  # 32 random bytes
        assert len(auth.nonce.reveal()) == 43


def test_a_verifier_may_use_every_unreserved_character_and_128_of_them() -> None:
    every = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    assert pkce.check_verifier(every) == every
    assert pkce.check_verifier("a" * 128) == "a" * 128
    with pytest.raises(ValueError) as err:
        pkce.check_verifier("a" * 129)
    assert str(err.value) == "a PKCE code verifier is 43 to 128 unreserved characters"


def test_the_challenge_is_the_unpadded_base64url_sha256_of_many_verifiers() -> None:
    import hashlib

    for _ in range(300):
        verifier = pkce.new_verifier()
        digest = hashlib.sha256(verifier.reveal().encode()).digest()
        expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        assert pkce.challenge(verifier) == expected


def test_the_authorization_url_is_exactly_the_endpoint_and_the_request() -> None:
    auth = pkce.start(PROVIDER, ENDPOINTS, ("openid", "profile"), REDIRECT)
    base, _, query = auth.url.partition("?")
    assert base == f"{ISSUER}/auth"
    assert "#" not in auth.url
    assert not query.startswith("&")
    assert "scope=openid%20profile" in query.split("&")  # quote, not quote_plus


def test_no_authorization_endpoint_is_refused_with_the_way_out() -> None:
    endpoints = oauth.Endpoints(
        issuer=ISSUER, device_authorization_endpoint=None, token_endpoint=f"{ISSUER}/token"
    )
    with pytest.raises(NetworkError) as err:
        pkce.start(PROVIDER, endpoints, (), REDIRECT)
    assert err.value.code == "unsupported"
    assert err.value.message == "provider 'p' has no authorization endpoint"
    assert err.value.hint == (
        "use the device flow (vault login --device), or set authorization_endpoint"
    )
