"""vault.util.hosts: one spelling for each host a credential helper is asked about, and None
for anything that is not a plain host: no user, no other path, no query, no controls. What a
helper answers for is decided by exact match on this spelling, so every way of writing
another host (a suffix, a user part, another port) must come out different or None."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.util.hosts import registry_host, service_host

SAFE = set("abcdefghijklmnopqrstuvwxyz0123456789.-:[]")


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("ghcr.io", "ghcr.io"),
        ("GHCR.io", "ghcr.io"),
        ("https://ghcr.io", "ghcr.io"),
        ("https://ghcr.io/", "ghcr.io"),
        ("ghcr.io/v2/", "ghcr.io"),
        (" ghcr.io\n", "ghcr.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io", "docker.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("127.0.0.1:05000", "127.0.0.1:5000"),
        ("http://localhost:5000/v2", "localhost:5000"),
        ("[::1]:5000", "[::1]:5000"),
        ("registry.example.com:443", "registry.example.com:443"),  # docker keeps the port
        ("index.docker.io:443", "index.docker.io:443"),  # not Docker Hub's own spelling
    ],
)
def test_registry_spellings(text: str, host: str) -> None:
    assert registry_host(text) == host


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "user@ghcr.io",
        "https://user:pw@ghcr.io",
        "ghcr.io/org",
        "ghcr.io/v2/org/image",
        "ghcr.io?x=1",
        "ghcr.io#frag",
        "ghcr.io\x00.evil.com",
        "ghcr .io",
        "ftp://ghcr.io",
        "ghcr.io:",
        "ghcr.io:0",
        "ghcr.io:65536",
        "ghcr.io:+80",
        "ghcr.io:80:80",
        "-ghcr.io",
        "ghcr-.io",
        "ghcr..io",
        ".ghcr.io",
        "ghcr.io.",
        "gh_cr.io",
        "ghcr.\u0456\u043e",  # Cyrillic letters that look like "io"
        "[::1",
        "[zz::1]",
        "[]",
        "[::1]x",
        "a" * 64 + ".io",
        ("a" * 60 + ".") * 5 + "io",
        "x" * 2000,
        "*.ghcr.io",
    ],
)
def test_not_a_registry(text: str) -> None:
    assert registry_host(text) is None


def test_service_hosts_are_terraforms_spelling() -> None:
    assert service_host("app.terraform.io") == "app.terraform.io"
    assert service_host("APP.terraform.io:443") == "app.terraform.io"
    assert service_host("tfe.example.com:8443") == "tfe.example.com:8443"
    for text in ("https://app.terraform.io", "app.terraform.io/", "u@app.terraform.io", ""):
        assert service_host(text) is None


@given(st.text(max_size=300))
def test_any_text_is_one_spelling_or_none(text: str) -> None:
    for normalise in (registry_host, service_host):
        host = normalise(text)
        if host is None:
            continue
        assert set(host) <= SAFE
        assert normalise(host) == host  # the spelling is a fixed point
        assert host
        assert host == host.strip()


@given(st.text(max_size=80), st.sampled_from(["@", "?", "#", "\x00", "\n", " ", "\\", "%"]))
def test_a_user_query_or_control_inside_is_never_a_host(text: str, bad: str) -> None:
    middle = f"ghcr.io{bad}{text}x" if bad != "@" else f"{text}x{bad}ghcr.io"
    assert registry_host(middle) is None
    assert service_host(middle) is None


@given(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True))
def test_a_longer_name_is_another_host(label: str) -> None:
    assert registry_host(f"ghcr.io.{label}") != "ghcr.io"
    assert registry_host(f"{label}.ghcr.io") != "ghcr.io"
    assert registry_host(f"ghcr.io:{len(label) + 1}") != "ghcr.io"
