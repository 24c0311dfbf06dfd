"""The git credential helper's rules in process: how git's attributes are read (bounded, as
git writes them, anything else refused), which origins are ever answered (never more than the
URL parser vault's providers are stored by would say), and what an answer holds (Bearer only
where git offered the capability and the host is not GitHub's; the expiry; never a line
break of a token)."""

from __future__ import annotations

import io
import string
from typing import BinaryIO, cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vault.cli.commands.git import (
    MAX_LINE,
    MAX_LINES,
    Attributes,
    answer,
    credential_origin,
    read_attributes,
)
from vault.cli.serve import Handed
from vault.errors import IntegrityError
from vault.login.http import is_loopback_host, origin
from vault.secret import Secret

TOKEN = "tok-" + "x" * 30


def _read(data: bytes) -> Attributes | None:
    return read_attributes(io.BytesIO(data))


# --- reading ------------------------------------------------------------------------------


def test_what_git_writes_is_read_as_git_reads_it() -> None:
    got = _read(
        b"capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=github.com\n"
        b'path=orgA/app.git\nwwwauth[]=Basic realm="x"\nwwwauth[]=Bearer\nx-future=1\n\n'
        b"after=the end\n"
    )
    assert got is not None
    assert got.fields == {
        "protocol": "https",
        "host": "github.com",
        "path": "orgA/app.git",
        "x-future": "1",
    }
    assert got.capabilities == {"authtype", "state"}
    assert "github" not in repr(got)  # keys only


def test_crlf_end_of_file_and_empty_values() -> None:
    got = _read(b"protocol=https\r\nhost=github.com\r\npassword=\r\n")
    assert got is not None
    assert got.fields == {"protocol": "https", "host": "github.com", "password": ""}
    empty = _read(b"")
    assert empty is not None
    assert empty.fields == {}
    # Only one CR before the LF goes; others stay in the value.
    got = _read(b"host=github.com\r\r\n\n")
    assert got is not None
    assert got.fields["host"] == "github.com\r"


@pytest.mark.parametrize(
    "data",
    [
        b"protocol=https\nhost=github.com\nhost=evil.example\n\n",  # a second host
        b"protocol=https\nprotocol=http\nhost=github.com\n\n",
        b"password=a\npassword=b\n\n",
        b"url=https://evil.example/\nprotocol=https\nhost=github.com\n\n",
        b"protocol=https\nhost=github.com\0evil\n\n",  # NUL
        b"protocol=https\nnot an attribute\n\n",  # no "="
        b"host=" + b"a" * MAX_LINE + b"\n\n",  # a line over 65535 bytes
        b"wwwauth[]=x\n" * (MAX_LINES + 1),  # more lines than git would send
    ],
)
def test_what_git_never_writes_is_refused_whole(data: bytes) -> None:
    assert _read(data) is None


def test_a_line_of_exactly_the_limit_is_read() -> None:
    line = b"path=" + b"p" * (MAX_LINE - len(b"path=") - 1) + b"\n"
    assert len(line) == MAX_LINE
    got = _read(line + b"protocol=https\n\n")
    assert got is not None
    assert got.fields["protocol"] == "https"


class Endless:
    """A caller that keeps the pipe open after its blank line (a person typing): reading on
    would block, here it fails the test."""

    def __init__(self, *lines: bytes) -> None:
        self.lines = list(lines)

    def readline(self, limit: int = -1) -> bytes:
        if not self.lines:
            raise AssertionError("read past the blank line")
        return self.lines.pop(0)


def test_reading_stops_at_the_blank_line() -> None:
    stream = Endless(b"protocol=https\n", b"host=github.com\n", b"\n")
    got = read_attributes(cast("BinaryIO", stream))
    assert got is not None
    assert got.fields["host"] == "github.com"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
@example(b"\xff\xfe=\x80\n\n")
@example(b"=\n=\n\n")
def test_any_bytes_read_or_refused_never_raise(data: bytes) -> None:
    got = _read(data)
    if got is not None:
        assert all("\n" not in k + v and "\0" not in k + v for k, v in got.fields.items())
        assert "url" not in got.fields


# --- origins ------------------------------------------------------------------------------

HOST_TEXT = st.lists(
    st.sampled_from([*"gGithub.cmo-:[]1270@/#?%\\ \t\r\x00\u0261\uff0e", "::1", "github.com"]),
    max_size=12,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(protocol=st.sampled_from(["https", "http", "HTTPS", "ssh", ""]), host=HOST_TEXT)
@example(protocol="https", host="github.com:0443")
@example(protocol="https", host="[::1]:8443")
@example(protocol="http", host="[::1]")
@example(protocol="http", host="127.000.0.1")
@example(protocol="https", host="github.com:")
def test_never_an_origin_the_url_parser_would_not_give(protocol: str, host: str) -> None:
    """The hand-written check is a subset of vault.login.http.origin (what the stored
    provider's URLs are read with), and plain http only for loopback."""
    asked = credential_origin(protocol, host)
    if asked is None:
        return
    assert asked == origin(f"{protocol}://{host}/")
    assert asked[0] == "https" or is_loopback_host(asked[1])
    assert all(c in string.ascii_lowercase + string.digits + ".-:" for c in asked[1])


NAMES = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,8}){0,3}", fullmatch=True)


@given(name=NAMES, port=st.one_of(st.none(), st.integers(1, 65535)), upper=st.booleans())
def test_every_plain_host_and_port_is_answered_as_the_url_parser_reads_it(
    name: str, port: int | None, upper: bool
) -> None:
    host = (name.upper() if upper else name) + ("" if port is None else f":{port}")
    assert credential_origin("https", host) == origin(f"https://{host}/")
    assert credential_origin("https", host) is not None


@pytest.mark.parametrize(
    ("protocol", "host", "expected"),
    [
        ("http", "127.0.0.1:8080", ("http", "127.0.0.1", 8080)),
        ("http", "127.255.0.9", ("http", "127.255.0.9", 80)),
        ("http", "localhost:1", ("http", "localhost", 1)),
        ("http", "[::1]:9", ("http", "::1", 9)),
        ("https", "[2001:db8::1]", ("https", "2001:db8::1", 443)),
        ("http", "128.0.0.1", None),
        ("http", "127.0.0.01", None),
        ("http", "127.0.1", None),
        ("http", "[::2]", None),
        ("http", "example.com", None),
        ("https", "github.com:0", None),
        ("https", "github.com:65536", None),
        ("https", "github.com:123456", None),
        ("https", "[::1", None),
        ("https", "[]", None),
        ("https", "[::1]x", None),
    ],
)
def test_loopback_and_ports(protocol: str, host: str, expected: object) -> None:
    assert credential_origin(protocol, host) == expected


# --- answers ------------------------------------------------------------------------------

GITHUB_HOST = ("https", "github.com", 443)
CORP_HOST = ("https", "git.corp.example", 443)


def _handed(preset: str | None, expires_at: int | None = 1_800_000_000) -> Handed:
    return Handed(Secret(TOKEN), expires_at, preset or "corp", preset)


def test_bearer_only_where_offered_and_not_github() -> None:
    offered = frozenset({"authtype", "state"})
    assert answer(_handed("oidc"), CORP_HOST, offered).splitlines() == [
        "capability[]=authtype",
        "authtype=Bearer",
        f"credential={TOKEN}",
        "ephemeral=true",
        "password_expiry_utc=1800000000",
    ]
    assert answer(_handed("oidc", None), CORP_HOST, frozenset()).splitlines() == [
        "username=oauth2",
        f"password={TOKEN}",
    ]
    for handed, where in ((_handed("github"), CORP_HOST), (_handed("oidc"), GITHUB_HOST)):
        assert answer(handed, where, offered).splitlines() == [
            "username=x-access-token",
            f"password={TOKEN}",
            "password_expiry_utc=1800000000",
        ]


@given(
    capabilities=st.frozensets(st.sampled_from(["state", "authtypes", "Authtype", "", "x"])),
    preset=st.sampled_from([None, "oidc", "gitlab", "github"]),
    where=st.sampled_from([GITHUB_HOST, CORP_HOST]),
)
def test_never_the_new_keys_without_the_capability(
    capabilities: frozenset[str], preset: str | None, where: tuple[str, str, int]
) -> None:
    keys = [
        line.partition("=")[0] for line in answer(_handed(preset), where, capabilities).splitlines()
    ]
    assert keys == ["username", "password", "password_expiry_utc"]


@pytest.mark.parametrize("bad", ["a\nhost=evil", "a\rb", "a\0b"])
def test_a_token_that_would_break_the_protocol_is_never_written(bad: str) -> None:
    with pytest.raises(IntegrityError) as caught:
        answer(Handed(Secret(bad), None, "corp", None), CORP_HOST, frozenset())
    assert bad not in caught.value.message
