"""Redaction of secrets from text: the last line of defence before anything is written out."""

from __future__ import annotations

import re

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

_PATTERNS = [
    # GitHub token formats.
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,255}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,255}\b"),
    # GitLab personal/OAuth tokens.
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b"),
    # JWTs (three base64url parts, the first a JSON header).
    re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    # Authorization header values.
    re.compile(r"(?i)(?<=\b(?:bearer|basic|token) )[A-Za-z0-9\-._~+/]{8,}=*"),
]
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>\b(?:" + "|".join(re.escape(k) for k in SENSITIVE_KEYS) + r")\b"
    r"[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"'&,;}]{4,})"
)


def scrub_text(text: str) -> str:
    """Mask everything in ``text`` that looks like a secret."""
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return _KEY_VALUE.sub(lambda m: m.group("key") + MASK, text)
