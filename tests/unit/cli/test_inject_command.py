"""The audit record's command string for env files (vault.cli.commands.inject.bounded): every
consumer named while they fit, never longer than the agent accepts, the rest counted."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from vault.cli.commands.inject import MAX_COMMAND, bounded

labels = st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,60}(#id_token)?", fullmatch=True))


def test_short_lists_are_named_whole() -> None:
    assert bounded("exec env-file psql", ["PGPASSWORD"]) == "exec env-file psql (PGPASSWORD)"
    assert bounded("exec env-file x", ["A", "B#id_token"]) == "exec env-file x (A, B#id_token)"


def test_long_lists_are_cut_and_counted() -> None:
    text = bounded("exec env-file x", [f"VARIABLE_{i}" for i in range(100)])
    assert len(text) <= MAX_COMMAND
    match = re.fullmatch(r"exec env-file x \((.*), \.\.\.(\d+) more\)", text)
    assert match is not None
    shown = match.group(1).split(", ")
    assert shown == [f"VARIABLE_{i}" for i in range(len(shown))]
    assert len(shown) + int(match.group(2)) == 100


@settings(deadline=None, max_examples=300)
@given(st.from_regex(r"exec env-file [a-z]{1,60}", fullmatch=True), labels)
def test_never_longer_than_the_agent_takes(head: str, names: list[str]) -> None:
    text = bounded(head, names)
    assert len(text) <= MAX_COMMAND
    whole = f"{head} ({', '.join(names)})"
    if len(whole) <= MAX_COMMAND:
        assert text == whole
    else:
        inner = text[len(head) + 2 : -1]
        *shown, rest = inner.split(", ")
        count = re.fullmatch(r"\.\.\.(\d+) more", rest)
        assert count is not None
        assert shown == names[: len(shown)]
        assert len(shown) + int(count.group(1)) == len(names)
