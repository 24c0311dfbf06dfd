"""Misbehaving identity providers (scripted fakes on loopback) against the real executable:
every case ends in a clear one-line error, a documented exit code, and nothing stored."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import VaultCLI
from tests.harness.fake_oauth import FakeOAuth, Handler, Reply, Trickle, fake_oauth, json_reply
from tests.harness.hostile_net import recording_proxy

HUGE = b"{" + b'"a": "' + b"x" * (2 * 1024 * 1024) + b'"}'


def _login(vault: VaultCLI, fake: FakeOAuth) -> Any:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  fake:\n    issuer: {fake.issuer}\n    client_id: cli\n"
        "    scopes: [openid]\n"
    )
    return vault.run("login", "fake", "--no-browser", timeout=90)


def _assert_clean_failure(vault: VaultCLI, r: Any, code: int, expected: str) -> None:
    assert r.returncode == code, r
    assert expected in r.stderr, r
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("vault:")]
    assert lines[0].startswith("vault: error: "), r
    assert vault.run("token", "fake").returncode == 4  # nothing stored


Case = tuple[str, Callable[[FakeOAuth], Handler], int, str]

DISCOVERY = "/.well-known/openid-configuration"


def _meta(**changes: object) -> Callable[[FakeOAuth], Handler]:
    return lambda f: lambda _: json_reply({**f.metadata(), **changes})


def _device(**changes: object) -> Callable[[FakeOAuth], Handler]:
    return lambda f: lambda _: json_reply(f.device_response(**changes))


def _token(**changes: object) -> Callable[[FakeOAuth], Handler]:
    return lambda f: lambda _: json_reply(f.token_response(**changes))


def _raw(
    status: int, body: bytes, ctype: str = "application/json"
) -> Callable[[FakeOAuth], Handler]:
    return lambda f: lambda _: (status, {"Content-Type": ctype}, body)


CASES: dict[str, tuple[str, Callable[[FakeOAuth], Handler], int, str]] = {
    "discovery garbage": (DISCOVERY, _raw(200, b"<html>hello</html>"), 7, "not JSON"),
    "discovery array": (DISCOVERY, _raw(200, b"[1, 2]"), 7, "not an object"),
    "discovery huge": (DISCOVERY, _raw(200, HUGE), 7, "over 1024 KiB"),
    "discovery 500": (DISCOVERY, _raw(500, b"oops"), 7, "HTTP 500"),
    "issuer wrong type": (DISCOVERY, _meta(issuer=42), 7, "is not the configured issuer"),
    "endpoint not https": (
        DISCOVERY,
        _meta(token_endpoint="http://idp.example.com/token"),
        7,
        "must use https",
    ),
    "endpoint wrong type": (DISCOVERY, _meta(token_endpoint=["x"]), 7, "not a string"),
    "no device endpoint": (
        DISCOVERY,
        _meta(device_authorization_endpoint=None),
        7,
        "no device authorization",
    ),
    "discovery redirect": (
        DISCOVERY,
        lambda f: lambda _: (302, {"Location": "https://evil.example/x"}, b""),
        7,
        "redirected",
    ),
    "device garbage": ("/device_authorization", _raw(200, b"\x00\xff garbage"), 7, "not JSON"),
    "device no code": ("/device_authorization", _device(device_code=None), 7, "device_code"),
    "device code type": ("/device_authorization", _device(device_code=123), 7, "device_code"),
    "user code type": ("/device_authorization", _device(user_code=["A"]), 7, "user_code"),
    "user code huge": ("/device_authorization", _device(user_code="A" * 5000), 7, "user_code"),
    "no verification uri": (
        "/device_authorization",
        _device(verification_uri=None),
        7,
        "verification_uri",
    ),
    "verification foreign host": (
        "/device_authorization",
        _device(verification_uri="https://evil.example/device"),
        7,
        "not to the provider",
    ),
    "verification other port": (
        "/device_authorization",
        lambda f: (
            lambda _: json_reply(
                f.device_response(
                    verification_uri="http://127.0.0.1:1/device", verification_uri_complete=None
                )
            )
        ),
        7,
        "not to the provider",
    ),
    "verification javascript": (
        "/device_authorization",
        _device(verification_uri="javascript:alert(1)"),
        7,
        "URL",
    ),
    "complete on another host": (
        "/device_authorization",
        _device(verification_uri_complete="http://127.0.0.2:1/device?user_code=X"),
        7,
        "another host",
    ),
    "expires absurd": ("/device_authorization", _device(expires_in=10**9), 7, "expires_in"),
    "expires negative": ("/device_authorization", _device(expires_in=-1), 7, "expires_in"),
    "expires missing": ("/device_authorization", _device(expires_in=None), 7, "expires_in"),
    "interval zero": ("/device_authorization", _device(interval=0), 7, "interval"),
    "interval text": ("/device_authorization", _device(interval="soon"), 7, "interval"),
    "device error": (
        "/device_authorization",
        lambda f: lambda _: json_reply({"error": "invalid_client"}, 401),
        4,
        "invalid_client",
    ),
    "device unknown error": (
        "/device_authorization",
        lambda f: lambda _: json_reply({"error": "teapot"}, 400),
        7,
        "does not know",
    ),
    "token garbage": ("/token", _raw(200, b"not json at all"), 7, "not JSON"),
    "token huge": ("/token", _raw(200, HUGE), 7, "over 1024 KiB"),
    "token type mac": ("/token", _token(token_type="mac"), 7, "token_type 'mac'"),
    "token type missing": ("/token", _token(token_type=None), 7, "token_type"),
    "token with escapes": ("/token", _token(access_token="at\x1b]0;pwned\x07"), 7, "access_token"),
    "token wrong type": ("/token", _token(access_token={"a": 1}), 7, "access_token"),
    "token lifetime absurd": ("/token", _token(expires_in=10**12), 7, "expires_in"),
    "token lifetime negative": ("/token", _token(expires_in=-5), 7, "expires_in"),
    "token scope wrong type": ("/token", _token(scope=["openid"]), 7, "scope"),
    "token refresh wrong type": ("/token", _token(refresh_token=7), 7, "refresh_token"),
    "token unknown error": (
        "/token",
        lambda f: lambda _: json_reply({"error": "please_hold"}, 400),
        7,
        "does not know",
    ),
    "token 400 no error": ("/token", _raw(400, b"{}"), 7, "without an OAuth error"),
    "token redirect": (
        "/token",
        lambda f: lambda _: (307, {"Location": "https://evil.example/t"}, b""),
        7,
        "redirected",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_server(vault: VaultCLI, case: str) -> None:
    path, make, code, expected = CASES[case]
    with fake_oauth() as fake:
        fake.routes[path] = make(fake)
        r = _login(vault, fake)
    _assert_clean_failure(vault, r, code, expected)


def test_server_strings_are_printed_without_control_characters(vault: VaultCLI) -> None:
    with fake_oauth() as fake:
        fake.routes["/device_authorization"] = lambda _: json_reply(
            fake.device_response(user_code="AB\x1b[2J\x1b]0;owned\x07CD\u202e", expires_in=2)
        )
        fake.routes["/token"] = lambda _: json_reply({"error": "authorization_pending"}, 400)
        r = _login(vault, fake)
    assert r.returncode == 4, r
    assert "\x1b" not in r.stderr
    assert "\x07" not in r.stderr
    assert "\u202e" not in r.stderr
    assert "AB[2J]0;ownedCD" in r.stderr


def test_5xx_storm_ends_with_a_network_error(vault: VaultCLI) -> None:
    with fake_oauth() as fake:
        fake.routes["/device_authorization"] = lambda _: json_reply(
            fake.device_response(expires_in=6)
        )
        fake.routes["/token"] = lambda _: (503, {}, b"busy")
        r = _login(vault, fake)
        polls = [p for p, _ in fake.requests if p == "/token"]
    _assert_clean_failure(vault, r, 7, "kept failing")
    # Exponential backoff: 1 s, then 2 s, then 4 s would pass the 6 s expiry: 2 polls at most.
    assert 1 <= len(polls) <= 3


def test_github_style_form_encoded_answers(vault: VaultCLI) -> None:
    """GitHub answers errors with HTTP 200 and form-encoded bodies when not asked for JSON."""
    counter = itertools.count()

    def token(_: dict[str, str]) -> Reply:
        if next(counter) < 2:
            return (
                200,
                {"Content-Type": "application/x-www-form-urlencoded"},
                (b"error=authorization_pending&error_description=pending"),
            )
        return (
            200,
            {"Content-Type": "application/x-www-form-urlencoded"},
            (b"access_token=gho_" + b"a" * 36 + b"&scope=repo%2Cread%3Aorg&token_type=bearer"),
        )

    with fake_oauth({"/token": token}) as fake:
        vault.home.mkdir(mode=0o700)
        (vault.home / "config.yaml").write_text(
            "providers:\n  gh:\n    preset: github\n    client_id: Iv1.abc\n"
            f"    device_authorization_endpoint: {fake.issuer}/device_authorization\n"
            f"    token_endpoint: {fake.issuer}/token\n"
            f"    issuer: {fake.issuer}\n"
            "    scopes: [repo, 'read:org']\n"
        )
        r = vault.run("login", "gh", "--no-browser", "--json", timeout=60)
        assert r.returncode == 0, r
    doc = vault.run("status", "gh", "--json")
    assert '"scopes": ["repo", "read:org"]' in doc.stdout  # GitHub separates with commas
    assert vault.run("token", "gh").stdout == "gho_" + "a" * 36 + "\n"
    revoke = vault.run("revoke", "gh")
    assert revoke.returncode == 0, revoke
    assert "NOT revoked" in revoke.stderr
    assert "github.com/settings/applications" in revoke.stderr


def test_server_omitting_scope_means_requested_were_granted(vault: VaultCLI) -> None:
    with fake_oauth() as fake:
        fake.routes["/token"] = lambda _: json_reply(fake.token_response(scope=None))
        r = _login(vault, fake)
    assert r.returncode == 0, r
    assert '"scopes": ["openid"]' in vault.run("status", "fake", "--json").stdout


def _trickle_token(fake: FakeOAuth) -> Trickle:
    return Trickle(json_reply(fake.token_response()), every=0.5, limit=60)


def test_a_trickling_token_endpoint_cannot_hold_login_past_the_codes_expiry(
    vault: VaultCLI,
) -> None:
    """Each byte in time for a per-read timeout, the whole answer never: `vault login` stops
    when the device code expires (4 s), not when the server lets go (60 s)."""
    with fake_oauth() as fake:
        fake.routes["/device_authorization"] = lambda _: json_reply(
            fake.device_response(expires_in=4)
        )
        fake.routes["/token"] = lambda _: _trickle_token(fake)
        start = time.monotonic()
        r = _login(vault, fake)
        elapsed = time.monotonic() - start
    _assert_clean_failure(vault, r, 7, "until the code expired")
    assert elapsed < 15, elapsed


def test_a_trickling_refresh_releases_the_lock_at_its_deadline(vault: VaultCLI) -> None:
    """A refresh inside `vault token` holds its name's lock (never the vault's: see
    tests/system/test_slow_refresh.py): a token endpoint that trickles its answer gets 15 s in
    all, and another command runs right after."""
    with fake_oauth() as fake:
        fake.routes["/token"] = lambda _: json_reply(fake.token_response(expires_in=30))
        assert _login(vault, fake).returncode == 0
        fake.routes["/token"] = lambda _: _trickle_token(fake)  # expires in 30 s: refresh
        start = time.monotonic()
        r = vault.run("token", "fake", "--min-valid", "60", timeout=90)
        elapsed = time.monotonic() - start
        assert r.returncode == 7, r
        assert "did not answer in time" in r.stderr, r
        assert elapsed < 25, elapsed
        assert vault.run("status", "fake").returncode == 0  # the lock is free again


def test_proxy_variables_never_see_a_loopback_login(vault: VaultCLI) -> None:
    """Every proxy variable, in both cases, points at a recording proxy: the whole login (the
    device code, the tokens) and a refresh go straight to the loopback provider."""
    with recording_proxy() as proxy, fake_oauth() as fake:
        names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
        vault.env.update({n: proxy.url for n in (*names, *(n.lower() for n in names))})
        r = _login(vault, fake)
        assert r.returncode == 0, r
        assert vault.run("refresh", "fake").returncode == 0
        assert [p for p, _ in fake.requests].count("/token") == 2
    assert proxy.received == []
