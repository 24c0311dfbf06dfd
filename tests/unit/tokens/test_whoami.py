"""vault.tokens.whoami against any claims a provider could send: the account is made only of
cleaned, bounded strings, or is None; the order of the claims shown is the documented one."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from vault.store.model import Account
from vault.tokens.whoami import MAX_DISPLAY, MAX_SUBJECT, from_claims, from_github
from vault.util.text import UNSAFE_TABLE, char_class

UNSAFE = re.compile(char_class(*UNSAFE_TABLE))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
HOSTILE_TEXT = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from(["\x1b", "\u202e", "\u2066", "\u200b", "\u2028", "\r", "\n", "\x00"]),
    ),
    max_size=400,
)
VALUES = st.one_of(JSON, HOSTILE_TEXT, st.integers(min_value=-(10**40), max_value=10**40))
KEYS = ("sub", "preferred_username", "email", "name", "login", "id")


def _safe(account: Account | None) -> None:
    if account is None:
        return
    assert account.subject is not None or account.display is not None
    for value, limit in ((account.subject, MAX_SUBJECT), (account.display, MAX_DISPLAY)):
        if value is None:
            continue
        assert isinstance(value, str)
        assert value
        assert value == value.strip()
        assert len(value) <= limit
        assert not UNSAFE.search(value)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES))
def test_any_claims_give_a_clean_account_or_none(doc: dict[str, object]) -> None:
    _safe(from_claims(doc))
    _safe(from_github(doc))


def test_the_display_claims_in_order() -> None:
    doc = {"sub": "s", "name": "N", "email": "e@x", "preferred_username": "p"}
    assert from_claims(doc) == Account("s", "p")
    assert from_claims({"sub": "s", "name": "N", "email": "e@x"}) == Account("s", "e@x")
    assert from_claims({"sub": "s", "name": "N"}) == Account("s", "N")
    # A claim that cleans to nothing is skipped for the next one.
    assert from_claims({"sub": "s", "preferred_username": "\u200b", "email": 5}) == Account("s")
    assert from_claims({"preferred_username": 3}) is None


def test_a_subject_is_dropped_not_cut_and_a_name_is_cut() -> None:
    assert from_claims({"sub": "x" * MAX_SUBJECT}) == Account("x" * MAX_SUBJECT)
    assert from_claims({"sub": "x" * (MAX_SUBJECT + 1)}) is None
    long = from_claims({"sub": "s", "name": "n" * 1000})
    assert long is not None
    assert long.display == "n" * (MAX_DISPLAY - 1) + "…"


def test_github_ids() -> None:
    assert from_github({"login": "octocat", "id": 583231}) == Account("583231", "octocat")
    assert from_github({"login": "octocat", "id": True}) == Account(None, "octocat")
    assert from_github({"login": "octocat", "id": -1}) == Account(None, "octocat")
    assert from_github({"id": 1.5}) is None
