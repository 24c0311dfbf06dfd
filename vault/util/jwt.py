"""What a JWT says about itself, read without verifying it: for display and for timing only.

vault never trusts a claim read here for a decision about who someone is. It uses them where
the token came straight from the provider over TLS and a wrong value costs at most a refresh:
when an ID token expires (`exp`), and later whose account a token is (`sub`, `name`)."""

from __future__ import annotations

import base64
import binascii
import json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

MAX_JWT_CHARS = 64 * 1024


def claims(token: str) -> dict[str, Any] | None:
    """The payload of the compact JWS ``token`` (three base64url parts), or None when it is not
    one: another shape, bad base64, not a JSON object, over MAX_JWT_CHARS."""
    if len(token) > MAX_JWT_CHARS or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    if not payload or not payload.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def expiry(token: str) -> int | None:
    """The token's `exp` (UNIX seconds), or None where it has none usable (not a JWT, no `exp`,
    not an integer of a plausible size)."""
    doc = claims(token)
    if doc is None:
        return None
    exp = doc.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    if not 0 < exp < 2**40:
        return None
    return int(exp)
