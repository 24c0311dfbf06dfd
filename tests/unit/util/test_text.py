"""The one table of unsafe characters (vault.util.text) and every consumer of it.

Each consumer is checked against every character of the table, exhaustively and with hypothesis
over mixed text, so that none can drift from the table again: clean() removes them, the log
pipeline escapes them, the syslog sink escapes them in the structured data and in the JSON
message, and the HTML report removes the controls and shows the invisible ones as code points.
"""

from __future__ import annotations

import codecs
import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.audit import html
from vault.audit.forward import BOM, format_rfc5424
from vault.util.log import redact_event
from vault.util.text import (
    CONTROLS,
    INVISIBLE,
    SEPARATORS,
    UNSAFE_TABLE,
    char_class,
    clean,
    escape_char,
    pattern,
)


def _chars(*ranges: tuple[int, int]) -> frozenset[str]:
    return frozenset(chr(code) for first, last in ranges for code in range(first, last + 1))


UNSAFE = _chars(*UNSAFE_TABLE)
INVISIBLES = _chars(*INVISIBLE)
SORTED = sorted(UNSAFE)
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

# Mixed text: anything at all, with unsafe characters at any place, often.
HOSTILE = st.text(st.sampled_from(SORTED) | st.characters(), max_size=40)


def _unsafe_in(output: str, allowed: str = "") -> set[str]:
    return {ch for ch in output if ch in UNSAFE and ch not in allowed}


# --- the table --------------------------------------------------------------------------------


def test_the_classes_match_exactly_the_table() -> None:
    everything = "".join(map(chr, range(0x110000)))
    assert set(pattern(*UNSAFE_TABLE).findall(everything)) == UNSAFE
    assert set(pattern(*UNSAFE_TABLE, keep="\t\n").findall(everything)) == UNSAFE - {"\t", "\n"}
    assert set(pattern(*INVISIBLE).findall(everything)) == INVISIBLES
    assert set(pattern(*CONTROLS).findall(everything)) == _chars(*CONTROLS)
    assert set(pattern(*SEPARATORS).findall(everything)) == {"\u2028", "\u2029"}
    assert char_class(*UNSAFE_TABLE).isascii()


def test_the_ranges_are_ordered_and_disjoint() -> None:
    for first, last in UNSAFE_TABLE:
        assert 0 <= first <= last <= 0x10FFFF
    assert len(UNSAFE) == sum(last - first + 1 for first, last in UNSAFE_TABLE)


@pytest.mark.parametrize(
    "old",
    [
        # The four tables this one replaced: each is inside it.
        "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]",  # util.text, util.log
        "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]",  # audit.forward
        "[\x00-\x1f\x7f-\x9f]",  # audit.html, controls
        "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\ud800-\udfff"
        "\U000e0000-\U000e0fff]",  # audit.html, invisible
    ],
)
def test_the_old_tables_are_covered(old: str) -> None:
    everything = "".join(map(chr, range(0x110000)))
    assert set(re.findall(old, everything)) <= UNSAFE


def test_escape_char_is_read_back_as_the_character() -> None:
    assert escape_char("\n") == "\\x0a"
    assert escape_char("\u202e") == "\\u202e"
    assert escape_char("\U000e0041") == "\\U000e0041"
    for ch in SORTED:
        assert escape_char(ch).isascii()
        assert codecs.decode(escape_char(ch), "unicode_escape") == ch


def test_importing_compiles_nothing() -> None:
    code = "from vault.util import text; print(text.pattern.cache_info().currsize)"
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "0"


# --- the consumers, character by character ------------------------------------------------------


def _sd_and_msg(value: str) -> tuple[str, dict[str, object]]:
    event = {"event": "used", "name": value, "reason": value, "scopes": [value, "ok"]}
    message = format_rfc5424(event, hostname="ws1", procid=1, now=NOW)
    head, _, body = message.partition(BOM)
    return head.decode("utf-8") + body.decode("utf-8"), json.loads(body)


def test_every_consumer_neutralises_every_character() -> None:
    for ch in SORTED:
        value = f"a{ch}b"
        assert clean(value) == "ab", repr(ch)
        logged = redact_event(None, "info", {"event": value, "exception": value})
        assert not _unsafe_in(logged["event"]), repr(ch)
        assert not _unsafe_in(logged["exception"], allowed="\t\n"), repr(ch)
        sent, decoded = _sd_and_msg(value)
        assert not _unsafe_in(sent), repr(ch)
        assert decoded["name"] == value, repr(ch)  # the exact event survives in the MSG
        shown = html.clean(value)
        assert not _unsafe_in(shown), repr(ch)
        if ch in INVISIBLES:
            assert f"\u27e8U+{ord(ch):04X}\u27e9" in shown, repr(ch)


@given(value=HOSTILE)
@settings(max_examples=300, deadline=None)
def test_clean_removes_them_all(value: str) -> None:
    cleaned = clean(value, 10_000)
    assert not _unsafe_in(cleaned)
    assert cleaned == "".join(ch for ch in value if ch not in UNSAFE)


@given(value=HOSTILE)
@settings(max_examples=300, deadline=None)
def test_the_log_escapes_them_all(value: str) -> None:
    logged = redact_event(None, "info", {"event": value, "stack": value, "exception": value})
    assert not _unsafe_in(logged["event"])
    assert not _unsafe_in(logged["stack"], allowed="\t\n")
    assert not _unsafe_in(logged["exception"], allowed="\t\n")


@given(value=HOSTILE)
@settings(max_examples=300, deadline=None)
def test_syslog_escapes_them_all(value: str) -> None:
    sent, _ = _sd_and_msg(value)
    assert not _unsafe_in(sent)


@given(value=HOSTILE)
@settings(max_examples=300, deadline=None)
def test_the_html_report_neutralises_them_all(value: str) -> None:
    shown = html.clean(value)
    assert not _unsafe_in(shown)
    for ch in set(value) & INVISIBLES:
        assert f"\u27e8U+{ord(ch):04X}\u27e9" in shown


def test_safe_text_is_left_alone() -> None:
    plain = "gh-token_1 (repo, read:org) \u00e9\u4e2d\U0001f600"
    assert clean(plain) == plain
    assert redact_event(None, "info", {"event": plain})["event"] == plain
    assert html.clean(plain) == plain
