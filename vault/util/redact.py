"""Redaction of secrets from text and data: the last line of defence before anything is written.

Two entry points:

- ``scrub_text(text)`` masks what looks like a secret inside free text: token formats (GitHub,
  GitLab, JWT, Google), authorization header values, credentials in URLs, and the values of
  sensitive ``key=value`` / ``"key": "value"`` / ``('key', 'value')`` pairs and
  ``<Key>value</Key>`` XML elements.
- ``redact(value)`` walks data (dicts, lists, tuples, sets, nested to any reasonable depth):
  values under sensitive keys and ``Secret`` instances become ``MASK``, every string is scrubbed,
  and any other object is replaced by its scrubbed ``repr``.

What it cannot do: recognise an opaque secret that is neither under a sensitive key nor in a known
token format (``log.info("got %s", token)`` with a random 40-character string). Keep secrets in
``Secret`` or under a sensitive key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vault.secret import Secret

MASK = "********"

SENSITIVE_KEYS = (
    "access_token",
    "refresh_token",
    "id_token",
    "device_code",
    "client_secret",
    "client_assertion",
    "assertion",
    "password",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "cookie",
    "set-cookie",
    "code",
    "api_key",
    "apikey",
    "private_key",
)

# A key is sensitive when its compact form (lower case, separators removed) ends with one of
# these: ``x_refresh_token``, ``Proxy-Authorization``, ``refreshToken``, ``X-Api-Key``.
_SENSITIVE_SUFFIXES = (
    "token",
    "secret",
    "secrets",
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "authorization",
    "cookie",
    "cookies",
    "assertion",
    "devicecode",
    "authcode",
    "authorizationcode",
    "codeverifier",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "datakey",
    "sessionkey",
    "credential",
    "credentials",
    "sessionid",
    "signature",
)
# Sensitive as the last word of the key (``basic_auth``, ``totp``'s ``otp``); as plain suffixes
# they would hit ``oauth``. ``code`` is sensitive only as the whole key: ``status_code`` is not.
_SENSITIVE_WORDS = frozenset({"auth", "otp"})
# Never sensitive although they look it: the user code is shown to the user on purpose.
_NOT_SENSITIVE = frozenset({"user_code", "usercode"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _normalize(key: str) -> str:
    return _NON_ALNUM.sub("_", _CAMEL.sub("_", key).lower()).strip("_")


def is_sensitive_key(key: object) -> bool:
    """Whether a value stored under ``key`` must be masked (case-insensitive, by suffix)."""
    if not isinstance(key, str) or not key or len(key) > 128:
        return False
    normalized = _normalize(key)
    if normalized in _NOT_SENSITIVE:
        return False
    compact = normalized.replace("_", "")
    if compact.endswith(_SENSITIVE_SUFFIXES):
        return True
    return normalized == "code" or normalized.rpartition("_")[2] in _SENSITIVE_WORDS


_TOKEN_CHARS = r"A-Za-z0-9\-._~+/"
_PATTERNS = [
    # GitHub token formats.
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,255}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,255}\b"),
    # GitLab tokens: glpat- (personal), gloas-, gldt-, glrt-, glptt-, ...
    re.compile(r"\bgl[a-z]{1,6}-[A-Za-z0-9_\-.]{20,}"),
    # JWTs (three base64url parts, the first a JSON header).
    re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    # Google OAuth access and refresh tokens.
    re.compile(r"\bya29\.[A-Za-z0-9_\-]{20,}"),
    re.compile(r"(?<![A-Za-z0-9])1//[A-Za-z0-9_\-]{20,}"),
]
# Authorization header values: ``Bearer <token>``, ``Basic <b64>``, GitHub's ``token <token>``.
_SCHEME = re.compile(
    rf"(?i)\b(?P<scheme>bearer|basic|digest|negotiate|dpop)(?P<sp>\s+)(?P<value>[{_TOKEN_CHARS}]{{6,}}=*)"
)
# ``token`` is also an English word: mask only what looks like one (long, with a digit).
_TOKEN_SCHEME = re.compile(
    rf"(?i)\b(?P<scheme>token)(?P<sp>\s+)(?P<value>(?=[{_TOKEN_CHARS}]*[0-9])[{_TOKEN_CHARS}]{{8,}}=*)"
)
# Credentials in URLs: scheme://user:password@host.
_URL_USERINFO = re.compile(r"(?i)\b(?P<head>[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^/\s@]+(?=@)")
# Header tuples as httpcore logs them: (b'Set-Cookie', b'sid=...').
_PAIR = re.compile(
    r"""\(\s*b?(?P<q1>['"])(?P<key>[A-Za-z0-9_\-.]{1,64})(?P=q1)\s*,\s*"""
    r"""(?P<vhead>b?(?P<q2>['"]))(?P<value>(?:\\.|(?!(?P=q2)).){0,4096})(?P=q2)"""
)
# ``key=value``, ``key: value``, ``"key": "value"``, ``key='value'``, ``\"key\": \"value\"``.
_KEY = re.compile(
    r"""(?<![A-Za-z0-9_\-.])(?P<key>[A-Za-z_][A-Za-z0-9_\-.]{0,127})"""
    r"""(?P<sep>\\?["']?[ \t]*[:=][ \t]*(?:b?(?P<esc>\\)?(?P<q>["']))?)"""
)
# ``<SecretAccessKey>value</SecretAccessKey>``: an XML element of a sensitive name (STS answers).
_XML_ELEMENT = re.compile(
    r"<(?P<key>[A-Za-z_][A-Za-z0-9_.:\-]{0,127})(?P<attrs>\s[^<>]{0,1024})?>"
    r"(?P<value>[^<]{1,65536})</(?P=key)\s*>"
)
_BARE_VALUE = re.compile(r"""[^\s"'\\&,;}\]\[{)(<>]+""")
_ESCAPED_VALUE = re.compile(r"""[^\\\r\n"]{0,4096}""")
# A ``Cookie: a=1; b=2`` header line: all of it. An authorization value: scheme and credentials.
_LINE_VALUE = re.compile(r"""[^\r\n"'\\]+""")
_AUTH_VALUE = re.compile(r"""(?:[A-Za-z][A-Za-z0-9_\-]*[ \t]+)?[^\s"'\\,;]+""")


def _quoted_value(quote: str) -> re.Pattern[str]:
    return re.compile(r"(?:\\.|[^\\" + quote + r"\r\n]){0,4096}")


_QUOTED_VALUE = {'"': _quoted_value('"'), "'": _quoted_value("'")}


def _mask_scheme(match: re.Match[str]) -> str:
    return match.group("scheme") + match.group("sp") + MASK


def _mask_pair(match: re.Match[str]) -> str:
    if not is_sensitive_key(match.group("key")):
        return match.group(0)
    start = match.start("value") - match.start()
    end = match.end("value") - match.start()
    whole = match.group(0)
    return whole[:start] + MASK + whole[end:]


def _mask_element(match: re.Match[str]) -> str:
    if not is_sensitive_key(match.group("key")):
        return match.group(0)
    start = match.start("value") - match.start()
    end = match.end("value") - match.start()
    whole = match.group(0)
    return whole[:start] + MASK + whole[end:]


def _scrub_key_values(text: str) -> str:
    out: list[str] = []
    pos = 0
    scan = 0
    while True:
        match = _KEY.search(text, scan)
        if match is None:
            break
        scan = match.end()
        if not is_sensitive_key(match.group("key")):
            continue
        quote = match.group("q")
        if quote and match.group("esc"):
            value = _ESCAPED_VALUE.match(text, match.end())
        elif quote:
            value = _QUOTED_VALUE[quote].match(text, match.end())
        elif (compact := _normalize(match.group("key")).replace("_", "")).endswith("cookie") and (
            ":" in match.group("sep")
        ):
            value = _LINE_VALUE.match(text, match.end())
        elif compact.endswith("authorization"):
            value = _AUTH_VALUE.match(text, match.end())
        else:
            value = _BARE_VALUE.match(text, match.end())
        if value is None or value.end() == value.start():
            continue
        out.append(text[pos : match.end()])
        out.append(MASK)
        pos = scan = value.end()
    out.append(text[pos:])
    return "".join(out)


def scrub_text(text: str) -> str:
    """Mask everything in ``text`` that looks like a secret."""
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    text = _SCHEME.sub(_mask_scheme, text)
    text = _TOKEN_SCHEME.sub(_mask_scheme, text)
    text = _URL_USERINFO.sub(lambda m: m.group("head") + MASK, text)
    text = _PAIR.sub(_mask_pair, text)
    if "</" in text:
        text = _XML_ELEMENT.sub(_mask_element, text)
    return _scrub_key_values(text)


class Redacted(str):
    """Scrubbed text standing for an object: its ``repr`` is the text itself, so a renderer that
    quotes non-``str`` values shows the object as it would have been shown, only masked."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


_MAX_DEPTH = 12
_KEEP_TYPES = (bool, int, float, type(None))


def redact(value: object, *, sensitive: bool = False) -> Any:
    """A copy of ``value`` safe to write out. ``sensitive``: the value sits under a sensitive
    key, so anything but ``None``, a bool or an empty string is masked whole."""
    return _redact(value, sensitive, 0, set())


def _redact(value: object, sensitive: bool, depth: int, active: set[int]) -> Any:
    if isinstance(value, Secret):
        return MASK
    if sensitive:
        if value is None or isinstance(value, bool) or (isinstance(value, str) and not value):
            return value
        return MASK
    if isinstance(value, str):
        return Redacted(scrub_text(value)) if isinstance(value, Redacted) else scrub_text(value)
    if isinstance(value, _KEEP_TYPES):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return scrub_text(bytes(value).decode("utf-8", "backslashreplace"))
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if depth >= _MAX_DEPTH or id(value) in active:
            return Redacted(MASK if id(value) in active else scrub_text(_safe_repr(value)))
        active.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {
                    _redact_key(k): _redact(v, is_sensitive_key(k), depth + 1, active)
                    for k, v in value.items()
                }
            # A (name, value) pair, as in a header list: the name decides.
            pair = isinstance(value, tuple | list) and len(value) == 2
            first_sensitive = pair and is_sensitive_key(next(iter(value)))
            items = [
                _redact(v, first_sensitive and i == 1, depth + 1, active)
                for i, v in enumerate(value)
            ]
            return tuple(items) if isinstance(value, tuple) else items
        finally:
            active.discard(id(value))
    return Redacted(scrub_text(_safe_repr(value)))


def _redact_key(key: object) -> object:
    return scrub_text(key) if isinstance(key, str) else key


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not break logging
        return f"<{type(value).__name__} (repr failed: {type(exc).__name__})>"


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """``redact`` for the top level of a mapping (a log event): keys stay as they are."""
    return {k: _redact(v, is_sensitive_key(k), 1, set()) for k, v in data.items()}
