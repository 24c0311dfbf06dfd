"""``host:`` of a ``preset: github`` provider (vault.login.github.parse_host): a host name, an
IPv4 address or a bracketed IPv6 address, and an optional port; every hostile value refused
with ValueError (never another exception), without its text in the message."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vault.errors import ConfigError
from vault.login import github
from vault.login.providers import from_config

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
names = (
    st.lists(labels, min_size=1, max_size=5)
    .map(".".join)
    .filter(lambda n: not n.split(".")[-1].isdigit())
)
ports = st.integers(min_value=1, max_value=65535)


@given(name=names, port=st.none() | ports)
def test_a_host_name_with_or_without_a_port_is_accepted_as_written(
    name: str, port: int | None
) -> None:
    text = name if port is None else f"{name}:{port}"
    host = github.parse_host(text.upper())  # host names are case-insensitive
    assert host.hostname == name
    assert host.scheme == ("http" if name == "localhost" else "https")
    default = 80 if host.scheme == "http" else 443
    assert host.port == (None if port in (None, default) else port)
    again = github.parse_host(host.netloc)
    assert again == host


@pytest.mark.parametrize(
    ("text", "base"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("localhost:1", "http://localhost:1"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("[::1]", "http://[::1]"),
        ("[2001:DB8::1]:8443", "https://[2001:db8::1]:8443"),
        ("10.0.0.1", "https://10.0.0.1"),
        ("ghe.example.com:443", "https://ghe.example.com"),
        ("xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ],
)
def test_addresses_and_loopback(text: str, base: str) -> None:
    assert github.parse_host(text).base == base


HOSTILE = [
    "",
    "ghe.example.com/",
    "ghe.example.com/api/v3",
    "https://ghe.example.com",
    "//ghe.example.com",
    "user@ghe.example.com",
    "user:pw@ghe.example.com",
    "ghe.example.com?x=1",
    "ghe.example.com#frag",
    "ghe example.com",
    " ghe.example.com",
    "ghe.example.com\n",
    "ghe.example.com\t",
    "ghe.exam\x00ple.com",
    "ghé.example.com",
    "ghe.example.com\u200b",
    "\uff47\uff48\uff45.example.com",  # fullwidth ghe: NFKC would make it ASCII
    "ghe.example.com:",
    "ghe.example.com:0",
    "ghe.example.com:65536",
    "ghe.example.com:99999999999",
    "ghe.example.com:-1",
    "ghe.example.com:+443",
    "ghe.example.com:0443",
    "ghe.example.com:44a",
    "ghe.example.com:443:443",
    "ghe.example.com.",
    ".ghe.example.com",
    "ghe..example.com",
    "-ghe.example.com",
    "ghe-.example.com",
    "ghe_x.example.com",
    "a" * 64 + ".example.com",
    ".".join(["a" * 60] * 5),
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "example.123",
    "::1",
    "2001:db8::1",
    "[::1",
    "::1]",
    "[::1]x",
    "[::1]:",
    "[::1]:0",
    "[::1]:70000",
    "[fe80::1%eth0]",
    "[127.0.0.1]",
    "[ghe.example.com]",
    "[]",
    "[[::1]]",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_hosts_are_refused(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        github.parse_host(text)
    if len(text) > 3:
        assert text not in str(caught.value)


@given(text=st.text(max_size=300))
@example(text="ghe.example.com:65535")
@example(text="[::ffff:127.0.0.1]:1")
def test_any_text_is_parsed_or_refused_with_value_error(text: str) -> None:
    try:
        host = github.parse_host(text)
    except ValueError:
        return
    # What is accepted is plain ASCII of host characters, and reads back the same.
    assert host.netloc.isascii()
    assert all(ch.isalnum() or ch in ".-:[]" for ch in host.netloc)
    assert github.parse_host(host.netloc) == host
    assert host.port is None or 1 <= host.port <= 65535


@given(
    name=names,
    junk=st.sampled_from(["/", "@", "?", "#", " ", "\\", "%", "é", "\u202e", "*", ","]),
    where=st.integers(min_value=0, max_value=30),
)
def test_one_bad_character_anywhere_is_refused(name: str, junk: str, where: int) -> None:
    at = min(where, len(name))
    with pytest.raises(ValueError):
        github.parse_host(name[:at] + junk + name[at:])


@given(port=st.integers(min_value=65536, max_value=10**12) | st.integers(max_value=0))
def test_ports_out_of_range_are_refused(port: int) -> None:
    with pytest.raises(ValueError):
        github.parse_host(f"ghe.example.com:{port}")


def test_endpoints_of_a_ghes_host_and_of_github_com() -> None:
    ghes = github.endpoints_for(github.parse_host("ghe.example.com:8443"))
    assert ghes["issuer"] == "https://ghe.example.com:8443"
    assert ghes["device_authorization_endpoint"] == (
        "https://ghe.example.com:8443/login/device/code"
    )
    assert ghes["token_endpoint"] == "https://ghe.example.com:8443/login/oauth/access_token"
    assert ghes["api_base"] == "https://ghe.example.com:8443/api/v3"
    dotcom = github.endpoints_for(github.parse_host("github.com"))
    assert dotcom["api_base"] == "https://api.github.com"
    assert dotcom["issuer"] == "https://github.com"


def test_a_ghes_provider_is_its_own_issuer_for_policy() -> None:
    provider = from_config(
        "ghe", {"preset": "github", "host": "ghe.example.com", "client_id": "x"}, "c:1"
    )
    assert provider.identity().preset == "github"
    assert provider.identity().issuer == "https://ghe.example.com"
    loop = from_config("t", {"preset": "github", "host": "127.0.0.1:9999", "client_id": "x"}, "c:1")
    assert loop.identity().issuer == "http://127.0.0.1:9999"
    assert loop.api_base == "http://127.0.0.1:9999/api/v3"
    # An endpoint configured elsewhere still changes the identity (vault.login.providers).
    moved = from_config(
        "m",
        {
            "preset": "github",
            "host": "ghe.example.com",
            "client_id": "x",
            "token_endpoint": "https://evil.example/t",
        },
        "c:1",
    )
    assert moved.identity().issuer == "https://evil.example"


@pytest.mark.parametrize(
    "doc",
    [
        {"preset": "gitlab", "host": "gitlab.example.com"},
        {"preset": "github", "host": "ghe.example.com", "issuer": "https://ghe.example.com"},
        {"preset": "github", "host": "ghe.example.com/CANARY"},
    ],
)
def test_host_misuse_is_a_config_error(doc: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        from_config("p", doc, "config.yaml:3")
    assert "config.yaml:3" in caught.value.message
    assert "CANARY" not in caught.value.message


def test_the_ten_token_limit_counts_one_app_host_and_scope_set() -> None:
    held: list[tuple[str, str, tuple[str, ...]]]
    held = [("app", "https://ghe.example.com", ("repo", "read:user"))] * 9
    held += [("app", "https://ghe.example.com/", ("read:user", "repo", "repo"))]
    held += [("other", "https://ghe.example.com", ("repo", "read:user"))]
    held += [("app", "https://github.com", ("repo", "read:user"))]
    held += [("app", "https://ghe.example.com", ("repo",))]
    count = github.same_grants(held, "app", "https://ghe.example.com", ("read:user", "repo"))
    assert count == 10
    assert github.limit_warning(9, "h") is None
    assert github.limit_warning(10, "h") is not None
