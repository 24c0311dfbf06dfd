"""Scope and issuer patterns: linear-time globs that never match across a space, issuer URL
patterns that never match across the host boundary, and provider identities that follow what
a provider is (preset, issuer, where its endpoints are), never what it is called."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import ConfigError, UsageError
from vault.login.providers import PRESETS, Identity, from_config
from vault.policy.rules import covers, glob_match, parse_policy, url_match, url_pattern_problem
from vault.util.text import MAX_SCOPE_LENGTH, MAX_SCOPES, check_scopes, scope_problem

small = st.text(alphabet="ab* :", max_size=12)


def _reference(pattern: str, text: str) -> bool:
    """The meaning of a glob, as a (backtracking) regular expression: '*' is any run of
    characters other than a space."""
    regex = "".join("[^ ]*" if ch == "*" else re.escape(ch) for ch in pattern)
    return " " not in text and re.fullmatch(regex, text) is not None


@settings(max_examples=3000)
@given(pattern=small, text=small)
def test_glob_match_means_what_the_reference_means(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) == _reference(pattern, text)


@given(st.lists(st.sampled_from(["a", "b", "*"]), min_size=1, max_size=8), st.text("ab"))
def test_a_star_never_matches_a_space(parts: list[str], text: str) -> None:
    pattern = "".join(parts)
    for i in range(len(text) + 1):
        assert not glob_match(pattern, text[:i] + " " + text[i:])


def test_many_stars_against_a_long_scope_finish_with_the_right_answer() -> None:
    """The inputs that make a backtracking matcher take exponential time (a regular expression
    built from the glob: `(.*a){n}b` against a run of a's). Each piece is searched once."""
    for stars in (5, 20, 60):
        pattern = "*a" * stars + "b"
        assert glob_match(pattern, "a" * MAX_SCOPE_LENGTH) is False
        assert glob_match(pattern, "a" * (MAX_SCOPE_LENGTH - 1) + "b") is (
            stars <= MAX_SCOPE_LENGTH - 1
        )


# --- issuer URL patterns ------------------------------------------------------------------

url_chars = st.text(alphabet="aeg.x/?#@:%2f\\-*", max_size=24)


@settings(max_examples=3000)
@given(middle=url_chars, tail=url_chars)
def test_a_subdomain_pattern_never_matches_another_host(middle: str, tail: str) -> None:
    """`https://*.example.com` matches an issuer only when its host, as an HTTP client
    parses it, is a subdomain of example.com: whatever a hostile string puts before or after
    (paths, queries, fragments, credentials, encoded slashes, backslashes, ports)."""
    url = f"https://{middle}.example.com{tail}"
    if url_match("https://*.example.com", url):
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname is not None
        assert parts.hostname.endswith(".example.com")
        assert parts.port is None
        assert not parts.username
        assert not parts.query
    url = f"https://{middle}{tail}"
    if url_match("https://github.com", url):
        assert urllib.parse.urlsplit(url).hostname == "github.com"


@pytest.mark.parametrize(
    ("pattern", "url", "expected"),
    [
        ("https://*.example.com", "https://a.example.com", True),
        ("https://*.example.com", "https://a.b.example.com/x", False),
        ("https://*.example.com/*", "https://a.b.example.com/x", True),
        ("https://*.example.com/*", "https://a.example.com", True),
        ("https://*.example.com", "https://example.com", False),
        ("https://*.example.com", "https://evil.com/.example.com", False),
        ("https://*.example.com", "https://evil.com?.example.com", False),
        ("https://*.example.com", "https://evil.com#.example.com", False),
        ("https://*.example.com", "https://a.example.com@evil.com", False),
        ("https://*.example.com", "https://a.example.com.evil.com", False),
        ("https://*.example.com", "https://a.example.com:8443", False),
        ("https://*.example.com", "http://a.example.com", False),
        ("https://idp.example.com/*", "https://idp.example.com/realms/main", True),
        ("https://idp.example.com/*", "https://idp.example.com.evil.net/realms", False),
        ("https://idp.example.com/*", "https://idp.example.com/a/../../b", False),
        ("https://idp.example.com/*", "https://idp.example.com/a%2F..%2Fb", False),
        ("https://idp.example.com/realms/*", "https://idp.example.com/other", False),
        ("https://github.com", "https://github.com/", True),
        ("https://github.com", "https://GitHub.com", True),
        ("https://github.com", "https://github.com:443", True),
        ("https://github.com", "https://github.com:8443", False),
        ("http://127.0.0.1:*", "http://127.0.0.1:4567", True),
        ("http://127.0.0.1:*", "http://127.0.0.10:4567", False),
        ("https://login.microsoftonline.com/*", "https://login.microsoftonline.com/x/v2.0", True),
    ],
)
def test_url_patterns(pattern: str, url: str, expected: bool) -> None:
    assert url_match(pattern, url) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "https://idp.example.com*",
        "https://*example.com",
        "https://a.*.example.com",
        "https://user@idp.example.com",
        "https://idp.example.com/?x=*",
        "ftp://x",
        "x",
    ],
)
def test_host_crossing_patterns_are_refused_in_a_policy(pattern: str) -> None:
    assert url_pattern_problem(pattern) is not None
    with pytest.raises(ConfigError, match="is not an issuer URL pattern"):
        parse_policy(f"version: 1\nallowed_issuers: ['{pattern}']\n", "p.yaml", system=True)


# --- scopes are scope-tokens --------------------------------------------------------------

outside = st.characters(
    blacklist_characters="".join(chr(c) for c in (0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)))
)


@given(st.text("abc:", max_size=5), outside, st.text("abc:", max_size=5))
def test_a_scope_with_any_character_outside_the_rfc_set_is_refused(
    left: str, bad: str, right: str
) -> None:
    scope = left + bad + right
    assert scope_problem(scope) is not None
    with pytest.raises(UsageError):
        check_scopes([scope], "--scope", UsageError)


def test_scope_bounds() -> None:
    assert check_scopes(["a" * MAX_SCOPE_LENGTH], "s", UsageError) == ("a" * MAX_SCOPE_LENGTH,)
    with pytest.raises(UsageError, match="at most 256"):
        check_scopes(["a" * (MAX_SCOPE_LENGTH + 1)], "s", UsageError)
    assert len(check_scopes([f"s{i}" for i in range(MAX_SCOPES)], "s", UsageError)) == MAX_SCOPES
    with pytest.raises(UsageError, match="more than 100"):
        check_scopes([f"s{i}" for i in range(MAX_SCOPES + 1)], "s", UsageError)


# --- identities -----------------------------------------------------------------------------


@given(st.from_regex(r"[a-z][a-z0-9_-]{0,30}", fullmatch=True))
def test_the_name_never_changes_the_identity(name: str) -> None:
    for preset in ("github", "google", "microsoft", "gitlab"):
        got = from_config(name, {"preset": preset, "client_id": "x"}, "c.yaml:1").identity()
        assert got == PRESETS[preset].identity() or preset == "microsoft"
        assert got.preset == preset
        assert covers(preset, got)


endpoint_fields = st.sampled_from(
    ["token_endpoint", "device_authorization_endpoint", "revocation_endpoint", "userinfo_endpoint"]
)
hosts = st.from_regex(
    r"[a-z]{1,10}\.(example|github\.com\.evil|googleapis\.com\.x)", fullmatch=True
)


@given(preset=st.sampled_from(["github", "google", "microsoft"]), field=endpoint_fields, host=hosts)
def test_an_endpoint_moved_elsewhere_makes_that_host_the_issuer(
    preset: str, field: str, host: str
) -> None:
    provider = from_config(
        "p", {"preset": preset, "client_id": "x", field: f"https://{host}/x"}, "c.yaml:1"
    )
    if getattr(provider, field) != f"https://{host}/x":
        assert preset == "microsoft"  # its tenant decides its token and device endpoints
        return
    who = provider.identity()
    assert who.issuer == f"https://{host}"
    # No rule written for the preset's issuer applies by issuer (only by preset), and no
    # allowed_issuers entry for it lets the token through.
    assert not url_match(PRESETS[preset].issuer, who.issuer)


def test_endpoints_on_the_issuers_own_origin_keep_the_issuer() -> None:
    provider = from_config(
        "corp",
        {
            "issuer": "https://idp.example.com/realms/main",
            "token_endpoint": "https://idp.example.com/realms/main/token",
            "revocation_endpoint": "https://idp.example.com:443/revoke",
        },
        "c.yaml:1",
    )
    assert provider.identity() == Identity("oidc", "https://idp.example.com/realms/main")
    moved = from_config(
        "corp",
        {"issuer": "https://idp.example.com", "token_endpoint": "https://idp.example.com:8443/t"},
        "c.yaml:1",
    )
    assert moved.identity() == Identity("oidc", "https://idp.example.com:8443")


def test_the_microsoft_section_covers_every_tenant_and_only_microsoft() -> None:
    tenant = from_config("work", {"preset": "microsoft", "tenant": "contoso"}, "c.yaml:1")
    assert covers("microsoft", tenant.identity())
    declared = Identity("oidc", "https://login.microsoftonline.com/contoso/v2.0")
    assert covers("microsoft", declared)
    assert not covers("microsoft", Identity("oidc", "https://login.microsoftonline.com.evil"))
    assert not covers("github", tenant.identity())


def test_old_records_without_a_preset_get_the_one_of_their_issuer() -> None:
    assert Identity.of_record(None, "https://github.com") == Identity(
        "github", "https://github.com"
    )
    assert Identity.of_record(None, "https://idp.x").preset == "oidc"
    assert Identity.of_record("bogus", "https://gitlab.com").preset == "gitlab"
