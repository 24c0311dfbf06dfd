"""Proxy variables never see a secret in clear: loopback never goes through a proxy, plain http
never does (it goes only to loopback), and https does only as a CONNECT tunnel.

A recording proxy on 127.0.0.1 keeps every byte sent to it; a fake provider on 127.0.0.1
answers. Whatever the proxy variables say, the form (device code, client secret, refresh
token) and the Authorization header reach the provider, and none of it reaches the proxy."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.fake_oauth import fake_oauth
from tests.harness.hostile_net import recording_proxy
from vault.errors import NetworkError
from vault.login import http as _http

NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
SECRETS = {"device_code": "DC-secret-1", "refresh_token": "RT-secret-2", "client_secret": "CS-3"}
BEARER = "Bearer AT-secret-4"


def _set(monkeypatch: pytest.MonkeyPatch, names: list[str], value: str) -> None:
    for name in (*NAMES, *(n.lower() for n in NAMES), "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in names:
        monkeypatch.setenv(name, value)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(
        st.sampled_from([*NAMES, *(n.lower() for n in NAMES)]), min_size=1, max_size=6, unique=True
    ),
    host=st.sampled_from(["127.0.0.1", "localhost"]),
)
@pytest.mark.slow  # waits out a real deadline: `make test`, not `make test-fast`
def test_loopback_requests_never_go_through_a_proxy(
    monkeypatch: pytest.MonkeyPatch, names: list[str], host: str
) -> None:
    with recording_proxy() as proxy, fake_oauth() as fake:
        _set(monkeypatch, names, proxy.url)
        with _http.client(timeout=10) as http:
            resp = _http.request(
                http,
                "POST",
                f"http://{host}:{fake.port}/token",
                what="t",
                data=SECRETS,
                headers={"Authorization": BEARER},
            )
        assert resp.status == 200
        assert fake.requests == [("/token", SECRETS)]
    assert proxy.received == []


def test_https_goes_through_the_proxy_only_as_a_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy is asked to CONNECT to host:443 and is told nothing else (it answers 502, so
    nothing is sent through the tunnel either)."""
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        with recording_proxy() as proxy:
            _set(monkeypatch, [name], proxy.url)
            with _http.client(timeout=10) as http, pytest.raises(NetworkError):
                _http.request(
                    http,
                    "POST",
                    "https://idp.example.com/token",
                    what="t",
                    data=SECRETS,
                    headers={"Authorization": BEARER},
                )
        assert len(proxy.received) == 1, name
        seen = proxy.received[0].decode()
        assert seen.startswith("CONNECT idp.example.com:443 HTTP/1.1\r\n"), seen
        assert "Bearer" not in seen
        assert not any(secret in seen for secret in SECRETS.values())


def test_http_proxy_alone_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording_proxy() as proxy:
        _set(monkeypatch, ["HTTP_PROXY", "http_proxy"], proxy.url)
        assert _http.https_proxy() is None
        with _http.client(timeout=3) as http, pytest.raises(NetworkError):
            _http.request(http, "GET", "https://idp.example.invalid/x", what="t")
    assert proxy.received == []


def test_a_socks_proxy_is_refused_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """vault speaks only to http(s) proxies: an https request that would use a SOCKS proxy is
    refused, naming it; loopback, which never uses a proxy, still works."""
    _set(monkeypatch, ["ALL_PROXY"], "socks5://127.0.0.1:1080")
    with _http.client(timeout=5) as http:
        with pytest.raises(NetworkError, match="not an http"):
            _http.request(http, "GET", "https://idp.example.com/x", what="t")
        with fake_oauth() as fake:
            assert _http.request(http, "GET", f"{fake.issuer}/revoke", what="t").status == 200
