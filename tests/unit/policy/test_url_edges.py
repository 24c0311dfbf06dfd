"""Issuer URL patterns and the glob under them, at the edges each check decides: exact parts
of a URL (scheme, host[:port], path), every refusal that keeps a textual match from meaning
something else, the subdomain and any-port rules, and the glob's pieces. Examples, each chosen
to be decided by one line of vault.policy.rules (the hypothesis tests beside it sample wider)."""

from __future__ import annotations

import pytest

from vault.policy.rules import _url_parts, glob_match, url_match


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("a*b*b", "ab", False),  # the middle piece may not overlap the last
        ("ab*b", "ab", False),
        ("a*b*b", "abb", True),
        ("xa*a*", "xa", False),  # the middle piece is looked for after the first
        ("xa*a*", "xaa", True),
        ("*b*", "x", False),
        ("*b*", "xbx", True),
        ("*b*c*", "xb", False),  # every middle piece, not only the first
        ("*b*c*", "xcb", False),  # in order
        ("*b*c*", "xbc", True),
        ("*b*b*", "xb", False),  # the second is looked for after the first
        ("*b*b*", "bb", True),
        ("*", "", True),
        ("*", "a b", False),  # never across a space
        ("repo", "repo", True),
        ("repo", "repos", False),
    ],
)
def test_glob_pieces(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


@pytest.mark.parametrize(
    ("url", "pattern", "parts"),
    [
        ("https://idp.example.test", False, ("https", "idp.example.test", "")),
        ("HTTPS://IDP.Example.TEST/Realms/", False, ("https", "idp.example.test", "/Realms")),
        ("https://idp.example.test/AX", False, ("https", "idp.example.test", "/AX")),
        ("http://h:80/", False, ("http", "h", "")),
        ("https://h:443", False, ("https", "h", "")),
        ("http://h:443", False, ("http", "h:443", "")),
        ("https://h:8443/x", False, ("https", "h:8443", "/x")),
        ("https://[::1]:8443/x", False, ("https", "[::1]:8443", "/x")),
        ("https://[::1]", False, ("https", "[::1]", "")),
        ("http://*.example.com", True, ("http", "*.example.com", "")),
        ("HTTPS://*.Example.com/r", True, ("https", "*.example.com", "/r")),
        ("https://idp.example:*/realms/x", True, ("https", "idp.example:*", "/realms/x")),
        ("https://h:*/h:*", True, ("https", "h:*", "/h:*")),
        ("https://h/realms/*", True, ("https", "h", "/realms/*")),
        ("https://h/" + "a" * 2038, False, ("https", "h", "/" + "a" * 2038)),  # 2,048 characters
    ],
)
def test_the_parts_of_a_url(url: str, pattern: bool, parts: tuple[str, str, str]) -> None:
    assert _url_parts(url, pattern=pattern) == parts


@pytest.mark.parametrize(
    ("url", "pattern"),
    [
        ("https://h/" + "a" * 2039, False),  # 2,049 characters
        ("https://idp.example/a\\b", False),
        ("https://idp.example/#x", False),
        ("https://idp.example/?x", False),
        ("https://idp.example/a*", False),  # a star in an issuer
        ("https://user@idp.example/p://x", False),
        ("https://user@idp:*", True),
        ("https://ab*:*", True),
        ("https://a*b.example", True),
        ("https://idp.example/a%2e%2e/b", False),
        ("https://idp.example/a%2E/b", False),
        ("https://idp.example/a%5cb", False),
        ("https://idp.example/a%5Cb", False),
        ("https://idp.example/a%2fb", False),
        ("https://idp.example/a/./b", False),
        ("https://idp.example/a/../b", False),
        ("ftp://idp.example", False),
    ],
)
def test_urls_that_could_mean_something_else_have_no_parts(url: str, pattern: bool) -> None:
    assert _url_parts(url, pattern=pattern) is None


@pytest.mark.parametrize(
    ("pattern", "url", "expected"),
    [
        ("https://*.example.com", "https://a.example.com", True),
        ("https://*.example.com", "https://evilexample.com", False),  # a look-alike, not a label
        ("https://*.example.com", "https://.example.com", False),
        ("https://*.example.com", "https://example.com", False),
        ("https://[::1]:*", "https://[::1]", True),
        ("https://[::1]:*", "https://[::1]:8443", True),
        ("https://h:*", "https://h:8443", True),
        ("https://h:*", "https://h", True),
        ("https://h/realms/*", "https://h/realms", True),
        ("https://h/realms/*", "https://h/realms/a", True),
        ("https://h/realms/*", "https://h/realm", False),
        ("https://h/realms/*", "https://h/realms/*", False),  # an issuer never holds a star
        ("https://h", "http://h", False),
    ],
)
def test_url_match_edges(pattern: str, url: str, expected: bool) -> None:
    assert url_match(pattern, url) is expected
