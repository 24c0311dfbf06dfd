"""vault.util.jwt: claims read from any text without raising, and only from a real JWT shape."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from vault.util import jwt


def _part(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def _token(payload: object) -> str:
    return f"{_part({'alg': 'RS256'})}.{_part(payload)}.c2ln"


def test_exp_is_read_from_the_payload() -> None:
    assert jwt.expiry(_token({"exp": 1_900_000_000, "sub": "a"})) == 1_900_000_000
    assert jwt.claims(_token({"sub": "a"})) == {"sub": "a"}


def test_what_is_not_a_usable_exp_is_none() -> None:
    for payload in ({"exp": True}, {"exp": "1900000000"}, {"exp": -1}, {"exp": 2**41}, {}, [1]):
        assert jwt.expiry(_token(payload)) is None, payload
    for text in ("", "a.b", "a.b.c.d", "..", "x." + "é" + ".y", "opaque-token", "a.!!!.c"):
        assert jwt.expiry(text) is None, text
    assert jwt.claims("x." + "A" * (jwt.MAX_JWT_CHARS + 1) + ".y") is None


@given(st.text(max_size=300))
def test_any_text_is_read_without_raising(text: str) -> None:
    doc = jwt.claims(text)
    assert doc is None or isinstance(doc, dict)
    exp = jwt.expiry(text)
    assert exp is None or 0 < exp < 2**40


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4))
def test_any_payload_round_trips(payload: dict[str, object]) -> None:
    assert jwt.claims(_token(payload)) == payload
