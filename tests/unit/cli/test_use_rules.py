"""Where a token may go from `vault api` and the git credential helper, as rules over classes
of inputs: header names that re-route a request, and origins that are not the provider's."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.cli.commands.git import credential_origin
from vault.errors import UsageError
from vault.login.http import parse_header_arg
from vault.tokens.use import provider_origins

ROUTING = [
    "Host",
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Server",
    "X-Real-IP",
    "Authorization",
    "Proxy-Authorization",
    "Proxy-Connection",
    "Cookie",
    "Transfer-Encoding",
    "Content-Length",
]
SPACE = st.text(alphabet=" \t\u00a0\u2003", max_size=3)


def _any_case(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(
            c.upper() if u else c.lower() for c, u in zip(name, upper, strict=True)
        )
    )


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(ROUTING).flatmap(_any_case),
    before=SPACE,
    after=SPACE,
    value=st.text(alphabet="abc.example:/ 1", max_size=20),
)
def test_headers_that_route_or_speak_for_someone_are_refused(
    name: str, before: str, after: str, value: str
) -> None:
    with pytest.raises(UsageError):
        parse_header_arg(f"{before}{name}{after}:{value}")


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(["Host", "Forwarded", "Cookie"]),
    junk=st.sampled_from(["\x00", "\r", "\n", " ", "\u200b", "\u0131", "/", "@"]),
    at=st.integers(min_value=1, max_value=3),
)
def test_a_header_name_with_junk_inside_is_refused(name: str, junk: str, at: int) -> None:
    with pytest.raises(UsageError):
        parse_header_arg(f"{name[:at]}{junk}{name[at:]}: x")


@pytest.mark.parametrize("value", ["a\r\nHost: evil", "a\nX: b", "a\x00b", "a\x1bb"])
def test_a_header_value_cannot_smuggle_another_header(value: str) -> None:
    with pytest.raises(UsageError):
        parse_header_arg(f"X-Request-Id: {value}")


@pytest.mark.parametrize("raw", ["Accept: application/json", "X-GitHub-Api-Version: 2022-11-28"])
def test_ordinary_headers_pass(raw: str) -> None:
    name, value = parse_header_arg(raw)
    assert f"{name}: {value}" == raw


ISSUERS = [
    ("https://github.com", "https://api.github.com"),
    ("http://127.0.0.1:8123", None),
    ("https://git.example.com:8443", "https://git.example.com:8443/api/v4"),
]


class _Rec:
    """The two fields of a TokenRecord the helper reads."""

    def __init__(self, issuer: str, api_base: str | None) -> None:
        self.issuer = issuer
        self.extra = {} if api_base is None else {"api_base": api_base}


def _variants(scheme: str, host: str, port: int) -> st.SearchStrategy[tuple[str, str, bool]]:
    """(protocol, host field, whether it names the provider's origin)."""
    schemes = st.sampled_from(["https", "http", "HTTPS", "ftp", "ssh", ""])
    hosts = st.sampled_from(
        [
            host,
            host.upper(),
            host + ".",
            "evil" + host,
            "evil." + host,
            host + ".evil.example",
            host + "@evil.example",
            "evil.example@" + host,
            host.replace("t", "\u0442").replace("1", "\uff11"),  # Cyrillic te, fullwidth one
            "xn--" + host,
            host + "/x",
            host + "%2f",
            host + "\x00",
        ]
    )
    ports = st.sampled_from([None, port, 443, 80, 8443, 8123, 1, 65535, 99999])

    def build(protocol: str, name: str, p: int | None) -> tuple[str, str, bool]:
        field_ = name if p is None else f"{name}:{p}"
        effective = p if p is not None else (443 if protocol == "https" else 80)
        ok = name.lower() == host and effective == port and protocol == scheme
        return protocol, field_, ok

    return st.builds(build, schemes, hosts, ports)


@pytest.mark.parametrize(("issuer", "api_base"), ISSUERS)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_helper_answers_only_for_the_providers_exact_origin(
    issuer: str, api_base: str | None, data: st.DataObject
) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(issuer)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    protocol, host, expected = data.draw(_variants(parts.scheme, parts.hostname, port))
    asked = credential_origin(protocol, host)
    record: Any = _Rec(issuer, api_base)
    answered = asked is not None and asked in provider_origins(record)
    assert answered == expected, (protocol, host)
