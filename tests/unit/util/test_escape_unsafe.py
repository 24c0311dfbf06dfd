"""escape_unsafe: every character of the one table becomes a JSON escape, nothing else
changes, and JSON with it decodes to the same value."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from vault.util.text import UNSAFE_TABLE, escape_unsafe

unsafe_chars = st.one_of(*(st.integers(lo, hi) for lo, hi in UNSAFE_TABLE)).map(chr)
text = st.lists(st.one_of(unsafe_chars, st.characters()), max_size=40).map("".join)


def _is_unsafe(ch: str) -> bool:
    return any(lo <= ord(ch) <= hi for lo, hi in UNSAFE_TABLE)


@given(
    st.recursive(
        text,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4),
        max_leaves=12,
    )
)
def test_json_through_escape_unsafe_is_safe_and_the_same_value(value: object) -> None:
    value = json.loads(json.dumps(value))  # as a server's JSON decodes (surrogate pairs joined)
    shown = escape_unsafe(json.dumps(value, indent=2, ensure_ascii=False))
    assert not [ch for ch in shown if ch != "\n" and _is_unsafe(ch)]
    assert json.loads(shown) == value


@given(text)
def test_safe_characters_are_left_as_they_are(value: str) -> None:
    kept = "".join(ch for ch in value if not _is_unsafe(ch) or ch == "\n")
    assert "".join(ch for ch in escape_unsafe(value) if not ch.isascii() or ch == "\n") == "".join(
        ch for ch in kept if not ch.isascii() or ch == "\n"
    )
