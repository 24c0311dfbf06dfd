"""Every field of every answer vault consumes from a provider, in every hostile shape.

One table (``FIELDS``) describes each field once: which answer carries it (discovery, device
authorization, token, slow_down, refresh, revocation, and the error answers), what kind of value
it is, and whether it may be absent. The variants are generated from the kind: missing, null,
each wrong JSON type, empty, huge (over the 1 MiB answer limit), large (under it, over the
field's own limit), control characters and terminal escapes, hostile URLs, absurd lifetimes and
intervals. Each variant says what must happen: refused with a given exit code and a message
naming the field, or accepted with a given value.

The whole table runs in process against the scripted server on 127.0.0.1 (the real HTTP layer
and the real validation in ``vault.login.oauth``, time faked). The variants marked ``exe`` also run
through the installed executable (``vault login`` / ``refresh`` / ``revoke``), where the error
must be one clean line with the documented exit code, and the vault must hold nothing new. Cases
``tests/integration/test_hostile_servers.py`` already runs through the executable are not marked
``exe``.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Final

import httpx
import pytest

from tests.conftest import Result, SecretService, VaultCLI
from tests.harness.fake_oauth import FakeOAuth, Handler, Reply, fake_oauth
from vault.errors import VaultError
from vault.login import http as _http
from vault.login import oauth as _oauth
from vault.login.oauth import DeviceAuthorization, Endpoints
from vault.login.providers import Provider
from vault.secret import Secret

DISCOVERY = "/.well-known/openid-configuration"
HUGE = 2 * 1024 * 1024  # over the 1 MiB answer limit
LARGE = 600 * 1024  # under it, over every field's own limit
# What must never reach a terminal: C0 controls (but newline), DEL, C1, bidi and zero-width.
UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


class Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing()


class Raw(str):
    """Spliced into the JSON body as it is: NaN, 1e400, deep nesting, 5000-digit numbers."""


class Tmpl(str):
    """A value naming the scripted server: {issuer} (http://127.0.0.1:PORT), {host}, {port}."""


DEEP = Raw("[" * 100_000 + "]" * 100_000)  # json.loads: RecursionError, not ValueError

CONTROLS: dict[str, str] = {
    "csi": "\x1b[2J",
    "osc8": "\x1b]8;;https://evil.example/\x1b\\",
    "cr": "\r",
    "nul": "\x00",
    "bidi": "\u202e",
    "c1": "\x9b",
    "zwsp": "\u200b",
}
WRONG_TYPES: dict[str, object] = {
    "int": 42,
    "float": 1.5,
    "list": ["x"],
    "object": {"a": "b"},
    "true": True,
}
# RFC 6749 §5.2 and RFC 8628 §3.5: a person must act (exit 4); anything else is exit 7.
TERMINAL = (
    "access_denied",
    "expired_token",
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "invalid_scope",
    "unsupported_grant_type",
    "invalid_request",
)


@dataclass(frozen=True)
class Reject:
    exit_code: int
    fragment: str | None  # must appear in the message (usually the field's name)


@dataclass(frozen=True)
class Accept:
    check: Callable[[Any], bool]
    what: str


Expect = Reject | Accept


@dataclass(frozen=True)
class Variant:
    label: str
    value: object  # MISSING, a JSON value, Raw or Tmpl
    expect: Expect
    exe: bool = False  # also through the real executable
    form: bool = False  # the answer form-encoded (GitHub) instead of JSON


@dataclass(frozen=True)
class FieldSpec:
    answer: str  # a key of ANSWERS
    name: str
    variants: tuple[Variant, ...]
    drop: tuple[str, ...] = ()  # fields removed from the base answer first


def _rej(fragment: str | None, code: int = 7) -> Reject:
    return Reject(code, fragment)


def _is(attr: str, expected: object) -> Accept:
    return Accept(lambda r: getattr(r, attr) == expected, f"{attr} == {expected!r}")


# --- variant generators, one per kind of field ---------------------------------------------


def _shapes(
    name: str, *, absent: Expect, exe: tuple[str, ...] = (), empty: Expect | None = None
) -> list[Variant]:
    """Missing, null, every wrong JSON type, empty, huge and large: for any string field."""
    out = [
        Variant("missing", MISSING, absent),
        Variant("null", None, absent),
        *(Variant(label, value, _rej(name)) for label, value in WRONG_TYPES.items()),
        Variant("empty", "", empty or _rej(name)),
        Variant("huge", "h" * HUGE, _rej("over 1024 KiB")),
        Variant("large", "l" * LARGE, _rej(name)),
        Variant("deep nesting", DEEP, _rej("not JSON")),
    ]
    return [_mark(v, exe) for v in out]


def _mark(v: Variant, exe: tuple[str, ...]) -> Variant:
    return Variant(v.label, v.value, v.expect, exe=v.label in exe, form=v.form)


def _controls(base: str, expect: Expect, exe: tuple[str, ...] = (), at: int = 2) -> list[Variant]:
    """``base`` with each control sequence inserted at ``at`` (a Tmpl stays a Tmpl)."""
    kind = Tmpl if isinstance(base, Tmpl) else str
    return [
        _mark(Variant(label, kind(base[:at] + ctrl + base[at:]), expect), exe)
        for label, ctrl in CONTROLS.items()
    ]


def secret(name: str, *, limit: int, required: bool, exe: tuple[str, ...] = ()) -> list[Variant]:
    """device_code, access_token, refresh_token, id_token: visible ASCII, bounded."""
    absent: Expect = _rej(name) if required else _is(name, None)
    return [
        *_shapes(name, absent=absent, exe=exe),
        *_controls("tok-abcdef", _rej(name), exe),
        _mark(Variant("space", "tok abc", _rej(name)), exe),
        _mark(Variant("non-ascii", "tok-é", _rej(name)), exe),
        _mark(Variant("at limit", "a" * limit, Accept(lambda r: r is not None, "accepted")), exe),
        _mark(Variant("over limit", "a" * (limit + 1), _rej(name)), exe),
    ]


def user_code(exe: tuple[str, ...] = ()) -> list[Variant]:
    def shown_clean(r: DeviceAuthorization) -> bool:
        return r.user_code.startswith("AB") and r.user_code.endswith("CD-EF")

    return [
        *_shapes("user_code", absent=_rej("user_code"), exe=exe),
        # A code with controls is shown with them stripped (the person types what they see).
        *_controls("ABCD-EF", Accept(shown_clean, "shown without controls"), exe),
        _mark(Variant("blank", "   ", _rej("user_code")), exe),
        _mark(Variant("only controls", "\x1b\x00\u202e\x9b", _rej("user_code")), exe),
        _mark(Variant("64 chars", "A" * 64, _is("user_code", "A" * 64)), exe),
        _mark(Variant("65 chars", "A" * 65, _rej("user_code")), exe),
    ]


def _url_common(expect_bad: Reject, exe: tuple[str, ...]) -> list[Variant]:
    """URL shapes refused wherever a URL comes from a server; the controls go into a URL on
    the provider's own host, so they are the only thing wrong with it."""
    bad = {
        "javascript": "javascript:alert(1)",
        "data": "data:text/html,<script>alert(1)</script>",
        "file": "file:///etc/passwd",
        "ftp": "ftp://127.0.0.1/x",
        "relative": "/device",
        "scheme-relative": "//127.0.0.1/device",
        "http not loopback": "http://idp.example.com/device",
        "credentials": "https://user:pw@idp.example.com/x",
        "bad ipv6": "https://[::1/device",
        "nfkc netloc": "https://evil.example\uff03@127.0.0.1/",
        "space": "https://idp.example.com/a b",
    }
    out = [_mark(Variant(label, url, expect_bad), exe) for label, url in bad.items()]
    base = Tmpl("{issuer}/device")
    out += _controls(base, expect_bad, exe, at=len(base) - 3)
    return out


def endpoint(name: str, *, required: bool, exe: tuple[str, ...] = ()) -> list[Variant]:
    """A discovery endpoint. One on another https host is accepted: the metadata comes from
    the issuer itself over https, and real ones do this (Google: accounts.google.com names
    oauth2.googleapis.com)."""
    absent: Expect = _rej(name) if required else _is(name, None)
    foreign = "https://elsewhere.example/oauth"
    other_port = Tmpl("http://{host_only}:1/oauth")
    return [
        *_shapes(name, absent=absent, exe=exe),
        *_url_common(_rej(name), exe),
        _mark(Variant("too long", "https://idp.example.com/" + "a" * 2048, _rej(name)), exe),
        Variant("foreign https", foreign, _is(name, foreign)),
        Variant("loopback other port", other_port, Accept(lambda r: True, "accepted")),
    ]


def issuer(exe: tuple[str, ...] = ()) -> list[Variant]:
    """The metadata's issuer must equal the configured one exactly (RFC 8414 §3.3)."""
    refused = _rej("is not the configured issuer")
    # Every shape of a string is refused as "not the configured issuer", but for the bodies
    # that are refused before the issuer is even read.
    out = [
        v if v.label in ("huge", "deep nesting") else Variant(v.label, v.value, refused, exe=v.exe)
        for v in _shapes("issuer", absent=refused, exe=exe)
    ]
    out += _controls(Tmpl("{issuer}"), refused, exe, at=len("{issuer}"))
    for label, value in {
        "trailing slash": Tmpl("{issuer}/"),
        "https": Tmpl("https://{host}"),
        "other port": Tmpl("http://{host_only}:1"),
        "path": Tmpl("{issuer}/realms/x"),
        "upper case": Tmpl("HTTP://{host}"),
        "foreign": "https://evil.example",
    }.items():
        out.append(_mark(Variant(label, value, refused), exe))
    return out


def verification_uri(exe: tuple[str, ...] = ()) -> list[Variant]:
    """Where the person is sent: only the provider's own hosts (messages always say
    verification_uri, also for Google's verification_url)."""
    foreign = _rej("not to the provider")
    return [
        *_shapes("verification_uri", absent=_rej("verification_uri"), exe=exe),
        *_url_common(_rej("verification_uri"), exe),
        *(
            _mark(Variant(label, url, foreign), exe)
            for label, url in {
                "foreign https": "https://evil.example/device",
                "lookalike host": "https://127.0.0.1.evil.example/device",
                "fragment trick": "https://evil.example#@127.0.0.1/",
                "query trick": "https://evil.example/?127.0.0.1",
                "localhost alias": Tmpl("http://localhost:{port}/device"),
            }.items()
        ),
        *(
            _mark(Variant(label, url, _rej("credentials")), exe)
            for label, url in {
                "userinfo before": Tmpl("http://evil.example@{host}/device"),
                "userinfo after": Tmpl("http://{host}@evil.example/device"),
                # WHATWG (browsers) reads "\\" as "/": this would open evil.example.
                "backslash userinfo": Tmpl("http://evil.example\\@{host}/device"),
            }.items()
        ),
        Variant("upper case", Tmpl("HTTP://{host}/device"), Accept(lambda r: True, "accepted")),
        # The exact origin: the same host on another port is another server.
        Variant("other port", Tmpl("http://{host_only}:1/d"), foreign),
    ]


def verification_uri_complete(exe: tuple[str, ...] = ()) -> list[Variant]:
    name = "verification_uri_complete"
    other = _rej("another host")
    return [
        *_shapes(name, absent=_is(name, None), exe=exe),
        *_url_common(_rej(name), exe),
        _mark(Variant("foreign https", "https://evil.example/device?c=1", other), exe),
        _mark(Variant("other port", Tmpl("http://{host_only}:1/device?c=1"), other), exe),
        Variant("same host", Tmpl("{issuer}/device?user_code=X"), Accept(lambda r: True, "ok")),
    ]


def lifetime(
    name: str,
    *,
    low: int,
    high: int,
    typical: int,
    absent: Expect,
    attr: Callable[[int], Accept],
    exe: tuple[str, ...] = (),
) -> list[Variant]:
    """expires_in and interval: whole seconds within a sane range; digits in a string are
    accepted (some providers send them so), nothing else is."""
    bad = _rej(name)
    out = [
        Variant("missing", MISSING, absent),
        Variant("null", None, absent),
        Variant("zero", 0, bad if low > 0 else attr(0)),
        Variant("negative", -1, bad),
        Variant("minimum", low, attr(low)),
        Variant("maximum", high, attr(high)),
        Variant("over maximum", high + 1, bad),
        Variant("1e300", 1e300, bad),
        Variant("fraction", typical + 0.5, bad),
        Variant("integral float", float(typical), bad),
        Variant("nan", float("nan"), bad),
        Variant("infinity", float("inf"), bad),
        Variant("-infinity", float("-inf"), bad),
        Variant("1e400 literal", Raw("1e400"), bad),
        Variant("10**400", 10**400, bad),
        Variant("5000 digits", Raw("9" * 5000), _rej("not JSON")),
        Variant("deep nesting", DEEP, _rej("not JSON")),
        Variant("true", True, bad),
        Variant("false", False, bad),
        Variant("list", [typical], bad),
        Variant("object", {"seconds": typical}, bad),
        Variant("string", str(typical), attr(typical)),
        Variant("string zero", "0", bad),
        Variant("string negative", "-5", bad),
        Variant("string NaN", "NaN", bad),
        Variant("string 1e3", "1e3", bad),
        Variant("string padded", f" {typical}", bad),
        Variant("string unit", f"{typical}s", bad),
        Variant("string 13 digits", "9" * 13, bad),
        Variant("string 12 digits", "9" * 12, bad),
        Variant("superscript", "\u00b2", bad),
        Variant("fullwidth digits", "\uff13\uff10", bad),
        Variant("arabic-indic digits", "\u0663\u0660", bad),
        Variant("empty", "", bad),
        Variant("csi", f"{typical}\x1b[2J", bad),
        Variant("large", "9" * LARGE, bad),
        Variant("huge", "9" * HUGE, _rej("over 1024 KiB")),
    ]
    return [_mark(v, exe) for v in out]


def token_type(exe: tuple[str, ...] = ()) -> list[Variant]:
    bearer = _is("token_type", "Bearer")
    return [
        *_shapes("token_type", absent=_rej("token_type"), exe=exe),
        *_controls("Bearer", _rej("token_type"), exe),
        _mark(Variant("DPoP", "DPoP", _rej("token_type")), exe),
        _mark(Variant("trailing space", "Bearer ", _rej("token_type")), exe),
        Variant("upper case", "BEARER", bearer),
        Variant("lower case", "bearer", bearer),
    ]


def scope(exe: tuple[str, ...] = ()) -> list[Variant]:
    many = " ".join(f"s{i}" for i in range(100))
    return [
        *_shapes("scope", absent=_is("scopes", ("openid",)), exe=exe, empty=_is("scopes", ())),
        *_controls("openid profile", _rej("scope"), exe),
        _mark(Variant("tab", "openid\tprofile", _rej("scope")), exe),
        _mark(Variant("non-ascii", "op\u00e9nid", _rej("scope")), exe),
        # Half a megabyte of granted scopes would go into every audit record of the token.
        _mark(Variant("large list", " ".join(f"s{i}" for i in range(60000)), _rej("scope")), exe),
        Variant("duplicates", "openid openid", _is("scopes", ("openid",))),
        Variant("comma is not a separator", "a,b", _is("scopes", ("a,b",))),
        Variant("100 scopes", many, _is("scopes", tuple(many.split()))),
    ]


def error_code(*, polling: bool, exe: tuple[str, ...] = (), refresh: bool = False) -> list[Variant]:
    """``error`` in an error answer (HTTP 400): the RFC codes that need a person are exit 4;
    anything else, or a code that is not exactly one of them, is exit 7. A refresh answered
    400 with no ``error`` at all means the refresh token no longer works: exit 4, log in again."""
    unknown = _rej("does not know")
    expired = _rej("[expired_token]", 4)
    out = [
        Variant(
            "missing",
            MISSING,
            _rej("HTTP 400 with no OAuth error", 4) if refresh else _rej("HTTP 400"),
        ),
        Variant("null", None, _rej(None)),
        *(Variant(label, value, _rej(None)) for label, value in WRONG_TYPES.items()),
        Variant("empty", "", unknown),
        Variant("unknown", "please_hold", unknown),
        Variant("upper case", "ACCESS_DENIED", unknown),
        Variant("huge", "e" * HUGE, _rej("over 1024 KiB")),
        Variant("large", "e" * LARGE, unknown),
        *(Variant(code, code, _rej(f"[{code}]", 4)) for code in TERMINAL),
        # Still pending: the device flow goes on polling until the code expires.
        Variant("pending", "authorization_pending", expired if polling else unknown),
        Variant("slow_down", "slow_down", expired if polling else unknown),
    ]
    # A known code with controls in it is not that code.
    out += _controls("access_denied", unknown)
    return [_mark(v, exe) for v in out]


def error_description(base: str, exe: tuple[str, ...] = ()) -> list[Variant]:
    """Only ever quoted (cleaned, bounded) in the message; the error code decides."""
    known = _rej(f"[{base}]", 4)
    out = [
        Variant("missing", MISSING, known),
        Variant("null", None, known),
        *(Variant(label, value, known) for label, value in WRONG_TYPES.items()),
        Variant("empty", "", known),
        Variant("huge", "d" * HUGE, _rej("over 1024 KiB")),
        Variant("large", "d" * LARGE, known),
        *_controls("the person said no", known),
    ]
    return [_mark(v, exe) for v in out]


def revocation_body() -> list[Variant]:
    """RFC 7009 §2.2: HTTP 200 means revoked, whatever the body says; over the answer limit
    the answer is not read at all."""
    ok = Accept(lambda r: r is None, "revoked")
    return [
        Variant("empty", Raw(""), ok),
        Variant("garbage", Raw("<html>\x1b[2J</html>"), ok),
        Variant("an error", Raw('{"error": "invalid_request"}'), ok),
        Variant("deep nesting", Raw("[" * 100_000 + "]" * 100_000), ok),
        Variant("huge", Raw('"' + "x" * HUGE + '"'), _rej("over 1024 KiB")),
    ]


def _token_fields(answer: str, exe: dict[str, tuple[str, ...]]) -> list[FieldSpec]:
    def expires(value: int) -> Accept:
        return _is("expires_in", value)

    return [
        FieldSpec(
            answer,
            "access_token",
            tuple(
                secret("access_token", limit=32768, required=True, exe=exe.get("access_token", ()))
            ),
        ),
        FieldSpec(answer, "token_type", tuple(token_type(exe.get("token_type", ())))),
        FieldSpec(
            answer,
            "expires_in",
            tuple(
                lifetime(
                    "expires_in",
                    low=1,
                    high=_oauth.MAX_LIFETIME,
                    typical=3600,
                    absent=expires_none(),
                    attr=expires,
                    exe=exe.get("expires_in", ()),
                )
            ),
        ),
        FieldSpec(
            answer,
            "refresh_token",
            tuple(
                secret(
                    "refresh_token", limit=32768, required=False, exe=exe.get("refresh_token", ())
                )
            ),
        ),
        FieldSpec(
            answer,
            "id_token",
            tuple(secret("id_token", limit=65536, required=False, exe=exe.get("id_token", ()))),
        ),
        FieldSpec(answer, "scope", tuple(scope(exe.get("scope", ())))),
    ]


def expires_none() -> Accept:
    return _is("expires_in", None)


def _with_form(specs: list[FieldSpec]) -> list[FieldSpec]:
    """GitHub answers form-encoded: every string-valued variant again, form-encoded (where a
    form has no types, %1B decodes to ESC, and validation must run after decoding)."""
    out = []
    for spec in specs:
        extra = tuple(
            Variant(f"{v.label} (form)", v.value, v.expect, form=True)
            for v in spec.variants
            if (isinstance(v.value, str) and not isinstance(v.value, Raw)) or v.value is MISSING
        )
        out.append(FieldSpec(spec.answer, spec.name, spec.variants + extra, spec.drop))
    return out


def _device_fields() -> list[FieldSpec]:
    def dev(attr: str) -> Callable[[int], Accept]:
        return lambda value: _is(attr, value)

    return [
        FieldSpec(
            "device",
            "device_code",
            tuple(secret("device_code", limit=4096, required=True, exe=("bidi",))),
        ),
        FieldSpec("device", "user_code", tuple(user_code(exe=("only controls", "65 chars")))),
        FieldSpec(
            "device",
            "verification_uri",
            tuple(verification_uri(exe=("backslash userinfo", "bad ipv6", "c1"))),
            drop=("verification_uri_complete",),
        ),
        # Google calls it verification_url; read only when verification_uri is absent.
        FieldSpec(
            "device",
            "verification_url",
            tuple(verification_uri(exe=("lookalike host",))),
            drop=("verification_uri", "verification_uri_complete"),
        ),
        FieldSpec(
            "device",
            "verification_uri_complete",
            tuple(verification_uri_complete(exe=("other port", "zwsp"))),
        ),
        FieldSpec(
            "device",
            "expires_in",
            tuple(
                lifetime(
                    "expires_in",
                    low=1,
                    high=_oauth.MAX_DEVICE_LIFETIME,
                    typical=30,
                    absent=_rej("expires_in"),
                    attr=dev("expires_in"),
                    exe=("superscript", "string zero"),
                )
            ),
        ),
        FieldSpec(
            "device",
            "interval",
            tuple(
                lifetime(
                    "interval",
                    low=1,
                    high=600,
                    typical=2,
                    absent=_is("interval", _oauth.DEFAULT_INTERVAL),
                    attr=dev("interval"),
                    exe=("fraction",),
                )
            ),
        ),
    ]


def _slow_down_interval() -> list[Variant]:
    """``interval`` in a slow_down answer: the next wait is max(interval + 5, the server's)."""

    def waited(seconds: int) -> Accept:
        # 1 s before the first poll, then the slowed-down wait before the second.
        return Accept(
            lambda r: r == 1 + max(1 + _oauth.SLOW_DOWN_STEP, seconds), f"waited {seconds}"
        )

    return lifetime(
        "interval",
        low=1,
        high=600,
        typical=7,
        absent=waited(0),
        attr=waited,
        exe=("string NaN",),
    )


FIELDS: list[FieldSpec] = [
    FieldSpec("discovery", "issuer", tuple(issuer(exe=("trailing slash", "csi")))),
    FieldSpec(
        "discovery",
        "token_endpoint",
        tuple(endpoint("token_endpoint", required=True, exe=("bidi", "bad ipv6"))),
    ),
    FieldSpec(
        "discovery",
        "device_authorization_endpoint",
        tuple(endpoint("device_authorization_endpoint", required=False, exe=("credentials",))),
    ),
    FieldSpec(
        "discovery",
        "revocation_endpoint",
        tuple(endpoint("revocation_endpoint", required=False, exe=("javascript",))),
    ),
    FieldSpec(
        "discovery",
        "introspection_endpoint",
        tuple(endpoint("introspection_endpoint", required=False, exe=("nul",))),
    ),
    FieldSpec(
        "discovery",
        "userinfo_endpoint",
        tuple(endpoint("userinfo_endpoint", required=False, exe=("c1",))),
    ),
    *_device_fields(),
    FieldSpec("device-error", "error", tuple(error_code(polling=False, exe=("csi",)))),
    FieldSpec(
        "device-error",
        "error_description",
        tuple(error_description("access_denied", exe=("osc8",))),
    ),
    *_with_form(
        _token_fields(
            "token",
            {
                "access_token": ("space",),
                "token_type": ("nul",),
                "expires_in": ("nan",),
                "refresh_token": ("bidi",),
                "id_token": ("csi",),
                "scope": ("large list",),
            },
        )
    ),
    FieldSpec("token-error", "error", tuple(error_code(polling=True, exe=("bidi",)))),
    FieldSpec(
        "token-error",
        "error_description",
        tuple(error_description("access_denied", exe=("csi",))),
    ),
    FieldSpec("slow-down", "interval", tuple(_slow_down_interval())),
    *_token_fields(
        "refresh",
        {
            "access_token": ("missing",),
            "token_type": ("object",),
            "expires_in": ("superscript",),
            "refresh_token": ("space",),
            "id_token": ("empty",),
            "scope": ("large list",),
        },
    ),
    FieldSpec(
        "refresh-error", "error", tuple(error_code(polling=False, exe=("cr",), refresh=True))
    ),
    FieldSpec(
        "refresh-error",
        "error_description",
        tuple(error_description("invalid_grant", exe=("csi",))),
    ),
    FieldSpec("revocation-error", "error", tuple(error_code(polling=False, exe=("nul",)))),
    FieldSpec(
        "revocation-error",
        "error_description",
        tuple(error_description("invalid_request", exe=("huge",))),
    ),
    FieldSpec("revocation-200", "body", tuple(revocation_body())),
]

CASES = {f"{s.answer}:{s.name}:{v.label}": (s, v) for s in FIELDS for v in s.variants}
EXE_CASES = sorted(key for key, (_, v) in CASES.items() if v.exe)


def test_the_table_is_whole() -> None:
    """Every field has its variants, labels are unique, and the executable subset covers every
    field that can be refused."""
    assert len(CASES) == sum(len(s.variants) for s in FIELDS)
    exe_fields = {(s.answer, s.name) for s, v in CASES.values() if v.exe}
    refusable = {
        (s.answer, s.name)
        for s in FIELDS
        if any(isinstance(v.expect, Reject) for v in s.variants) and s.answer != "revocation-200"
    }
    assert refusable == exe_fields
    for key in EXE_CASES:
        assert isinstance(CASES[key][1].expect, Reject), key


# --- the scripted server, in process ---------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOAuth]:
    with fake_oauth() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOAuth) -> FakeOAuth:
    server.routes.clear()
    server.requests.clear()
    server.default_routes()
    return server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with _http.client(timeout=10) as client:
        yield client


def _host(fake: FakeOAuth) -> str:
    return f"127.0.0.1:{fake.port}"


def _fill(value: object, fake: FakeOAuth) -> object:
    if isinstance(value, Tmpl):
        return value.format(
            issuer=fake.issuer, host=_host(fake), host_only="127.0.0.1", port=fake.port
        )
    return value


def _body(doc: dict[str, object]) -> bytes:
    """JSON, with Raw values spliced in as they are."""
    raws: dict[str, str] = {}
    plain: dict[str, object] = {}
    for key, value in doc.items():
        if isinstance(value, Raw):
            marker = f"@@raw{len(raws)}@@"
            raws[json.dumps(marker)] = str(value)
            plain[key] = marker
        else:
            plain[key] = value
    text = json.dumps(plain)
    for marker, raw in raws.items():
        text = text.replace(marker, raw)
    return text.encode()


def _reply(doc: dict[str, object], status: int, form: bool) -> Reply:
    if form:
        pairs = {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}
        ctype = "application/x-www-form-urlencoded"
        return status, {"Content-Type": ctype}, urllib.parse.urlencode(pairs).encode()
    return status, {"Content-Type": "application/json"}, _body(doc)


def _provider(fake: FakeOAuth) -> Provider:
    return Provider(
        name="fake", preset="oidc", issuer=fake.issuer, client_id="cli", scopes=("openid",)
    )


def _endpoints(fake: FakeOAuth) -> Endpoints:
    return Endpoints(
        issuer=fake.issuer,
        device_authorization_endpoint=f"{fake.issuer}/device_authorization",
        token_endpoint=f"{fake.issuer}/token",
        revocation_endpoint=f"{fake.issuer}/revoke",
    )


class FakeClock:
    """Time for poll(): sleeping moves it on at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _device(fake: FakeOAuth, expires_in: int = 30) -> DeviceAuthorization:
    return DeviceAuthorization(
        device_code=Secret("dc-" + "x" * 30),
        user_code="ABCD-EFGH",
        verification_uri=f"{fake.issuer}/device",
        verification_uri_complete=None,
        expires_in=expires_in,
        interval=1,
    )


def _poll(fake: FakeOAuth, http: httpx.Client, expires_in: int = 30) -> object:
    clock = FakeClock()
    device = _device(fake, expires_in)
    return _oauth.poll(
        http, _provider(fake), _endpoints(fake), device, ("openid",), clock=clock, sleep=clock.sleep
    )


def _slow_down(fake: FakeOAuth, http: httpx.Client) -> object:
    """How long the poll took, in faked seconds."""
    clock = FakeClock()
    start = clock.now
    device = _device(fake, 900)
    _oauth.poll(
        http, _provider(fake), _endpoints(fake), device, ("openid",), clock=clock, sleep=clock.sleep
    )
    return clock.now - start


def _refresh(fake: FakeOAuth, http: httpx.Client) -> object:
    return _oauth.refresh(
        http, _provider(fake), f"{fake.issuer}/token", Secret("rt-" + "z" * 30), ("openid",)
    )


def _revoke(fake: FakeOAuth, http: httpx.Client) -> object:
    _oauth.revoke(http, _provider(fake), f"{fake.issuer}/revoke", Secret("rt-zz"), "refresh_token")
    return None


@dataclass(frozen=True)
class Answer:
    path: str
    status: int
    base: Callable[[FakeOAuth], dict[str, object]]
    call: Callable[[FakeOAuth, httpx.Client], object]
    command: str  # the vault command that meets this answer
    then_default: bool = False  # only the first answer is hostile


def _token_base(fake: FakeOAuth) -> dict[str, object]:
    return fake.token_response(id_token="eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")


ANSWERS: dict[str, Answer] = {
    "discovery": Answer(
        DISCOVERY,
        200,
        lambda f: {
            **f.metadata(),
            "introspection_endpoint": f"{f.issuer}/introspect",
            "userinfo_endpoint": f"{f.issuer}/userinfo",
        },
        lambda f, http: _oauth.discover(http, _provider(f)),
        "login",
    ),
    "device": Answer(
        "/device_authorization",
        200,
        lambda f: f.device_response(),
        lambda f, http: _oauth.request_device_code(http, _provider(f), _endpoints(f), ("openid",)),
        "login",
    ),
    "device-error": Answer(
        "/device_authorization",
        400,
        lambda f: {"error": "access_denied", "error_description": "the person said no"},
        lambda f, http: _oauth.request_device_code(http, _provider(f), _endpoints(f), ("openid",)),
        "login",
    ),
    "token": Answer("/token", 200, _token_base, _poll, "login"),
    "token-error": Answer(
        "/token",
        400,
        lambda f: {"error": "access_denied", "error_description": "the person said no"},
        _poll,
        "login",
    ),
    "slow-down": Answer(
        "/token", 400, lambda f: {"error": "slow_down"}, _slow_down, "login", then_default=True
    ),
    "refresh": Answer("/token", 200, _token_base, _refresh, "refresh"),
    "refresh-error": Answer(
        "/token",
        400,
        lambda f: {"error": "invalid_grant", "error_description": "revoked"},
        _refresh,
        "refresh",
    ),
    "revocation-error": Answer(
        "/revoke",
        400,
        lambda f: {"error": "invalid_request", "error_description": "no"},
        _revoke,
        "revoke",
    ),
    "revocation-200": Answer("/revoke", 200, lambda f: {}, _revoke, "revoke"),
}


def _route(fake: FakeOAuth, spec: FieldSpec, variant: Variant) -> tuple[str, Handler]:
    """The handler answering with ``variant`` in ``spec``'s field."""
    answer = ANSWERS[spec.answer]
    if spec.answer == "revocation-200":
        assert isinstance(variant.value, Raw)
        body = str(variant.value).encode()
        return answer.path, lambda _: (200, {"Content-Type": "application/json"}, body)
    doc = {k: v for k, v in answer.base(fake).items() if k not in spec.drop}
    if variant.value is MISSING:
        doc.pop(spec.name, None)
    else:
        doc[spec.name] = _fill(variant.value, fake)
    reply = _reply(doc, answer.status, variant.form)
    if not answer.then_default:
        return answer.path, lambda _: reply
    count = itertools.count()
    good = _reply(fake.token_response(), 200, form=False)
    return answer.path, lambda _: reply if next(count) == 0 else good


def _strings(result: object) -> Iterator[str]:
    if isinstance(result, str):
        yield result
    elif isinstance(result, Secret):
        yield result.reveal()
    elif isinstance(result, tuple):
        for item in result:
            yield from _strings(item)
    elif is_dataclass(result):
        for f in fields(result):
            yield from _strings(getattr(result, f.name))


def _check_message(message: str) -> None:
    assert "\n" not in message
    assert UNSAFE.search(message) is None, repr(message)
    assert len(message) <= 1000, len(message)


@pytest.mark.parametrize("key", sorted(CASES))
def test_field_in_process(fake: FakeOAuth, http: httpx.Client, key: str) -> None:
    spec, variant = CASES[key]
    path, handler = _route(fake, spec, variant)
    fake.routes[path] = handler
    call = ANSWERS[spec.answer].call
    expect = variant.expect
    if isinstance(expect, Reject):
        with pytest.raises(VaultError) as info:
            call(fake, http)
        err = info.value
        assert err.exit_code == expect.exit_code, err.message
        if expect.fragment is not None:
            assert expect.fragment in err.message, err.message
        _check_message(err.message)
        return
    result = call(fake, http)
    assert expect.check(result), f"{key}: expected {expect.what}, got {result!r}"
    for text in _strings(result):
        assert UNSAFE.search(text) is None, (key, text[:200])


# --- through the executable --------------------------------------------------------------------


def _listing(vault: VaultCLI) -> list[dict[str, object]]:
    """`vault list --json` without what moves with the clock."""
    r = vault.run("list", "--json")
    assert r.returncode == 0, r
    tokens = json.loads(r.stdout)["tokens"]
    for token in tokens:
        for key in ("age_seconds", "expires_in", "state"):
            token.pop(key, None)
    assert isinstance(tokens, list)
    return tokens


def _configure(vault: VaultCLI, fake: FakeOAuth) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  fake:\n    issuer: {fake.issuer}\n    client_id: cli\n"
        "    scopes: [openid]\n"
    )


@dataclass
class Setup:
    vault: VaultCLI
    baseline: list[dict[str, object]]


@pytest.fixture(scope="module")
def login_vault(
    server: FakeOAuth, secret_service: SecretService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """A vault holding one imported token, configured for the scripted provider."""
    home = tmp_path_factory.mktemp("login") / "vh"
    vault = VaultCLI(home, dict(secret_service.env()))
    _configure(vault, server)
    r = vault.run("import", "keep", "--provider", "github", input="tok-keepkeepkeep")
    assert r.returncode == 0, r
    yield Setup(vault, _listing(vault))
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def session_vault(
    server: FakeOAuth, secret_service: SecretService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """A vault holding a token from a real login at the scripted provider (refreshable and
    revocable there)."""
    home = tmp_path_factory.mktemp("session") / "vh"
    vault = VaultCLI(home, dict(secret_service.env()))
    _configure(vault, server)
    server.routes.clear()
    server.default_routes()
    r = vault.run("login", "fake", "--no-browser", timeout=90)
    assert r.returncode == 0, r
    yield Setup(vault, _listing(vault))
    shutil.rmtree(home, ignore_errors=True)


def _assert_clean_refusal(r: Result, code: int, fragment: str | None) -> str:
    """The documented exit code, one error line (a hint may follow), no escape bytes anywhere;
    returns the error line."""
    assert "Traceback" not in r.stderr, r
    assert r.returncode == code, r
    lines = r.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("vault: error: ")]
    assert len(errors) == 1, r
    assert all(line.startswith("vault: hint: ") for line in lines[errors[0] + 1 :]), r
    assert not any(line.startswith("vault:") for line in lines[: errors[0]]), r
    for text in (r.stderr, r.stdout):
        assert UNSAFE.search(text) is None, r
    if fragment is not None:
        assert fragment in lines[errors[0]], r
    return lines[errors[0]]


def _exe_expectation(spec: FieldSpec, variant: Variant) -> Reject:
    expect = variant.expect
    assert isinstance(expect, Reject)
    if ANSWERS[spec.answer].command == "revoke":
        return Reject(7, expect.fragment)  # a failed revocation keeps the token: exit 7
    return expect


LOGIN_CASES = [k for k in EXE_CASES if ANSWERS[CASES[k][0].answer].command == "login"]
STORED_CASES = [k for k in EXE_CASES if k not in LOGIN_CASES]


@pytest.mark.parametrize("key", LOGIN_CASES)
def test_login_refuses(fake: FakeOAuth, login_vault: Setup, key: str) -> None:
    spec, variant = CASES[key]
    expect = _exe_expectation(spec, variant)
    path, handler = _route(fake, spec, variant)
    fake.routes[path] = handler
    r = login_vault.vault.run("login", "fake", "--no-browser", "--json", timeout=90)
    line = _assert_clean_refusal(r, expect.exit_code, expect.fragment)
    events = [json.loads(text) for text in r.stdout.splitlines()]
    assert events, r
    assert events[-1]["event"] == "error", r
    assert str(events[-1]["message"]) in line
    assert all(e["event"] != "success" for e in events)
    assert _listing(login_vault.vault) == login_vault.baseline


@pytest.mark.parametrize("key", STORED_CASES)
def test_refresh_and_revoke_refuse(fake: FakeOAuth, session_vault: Setup, key: str) -> None:
    spec, variant = CASES[key]
    expect = _exe_expectation(spec, variant)
    path, handler = _route(fake, spec, variant)
    fake.routes[path] = handler
    command = ANSWERS[spec.answer].command
    r = session_vault.vault.run(command, "fake", "--json")
    _assert_clean_refusal(r, expect.exit_code, expect.fragment)
    listing = _listing(session_vault.vault)
    if spec.answer == "refresh-error" and spec.name != "error":
        # invalid_grant, whatever its description says: the provider refused the refresh
        # token, so the token is marked as needing a new login (test_needs_login.py), its
        # refresh token dropped, and nothing else changed. A new login for the next case.
        marks = [t.pop("needs_login") for t in listing]
        assert [m["cause"] for m in marks if isinstance(m, dict)] == ["invalid_grant"], marks
        baseline = [{**t, "needs_login": None} for t in listing]
        assert [{**t, "refreshable": True} for t in baseline] == session_vault.baseline
        fake.routes.clear()
        fake.default_routes()
        relogin = session_vault.vault.run("login", "fake", "--no-browser", timeout=90)
        assert relogin.returncode == 0, relogin
        session_vault.baseline = _listing(session_vault.vault)
        return
    # Neither a new token nor a lost one: a failed revocation keeps it.
    assert listing == session_vault.baseline
