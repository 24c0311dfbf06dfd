"""Every field of an audit record is bounded and sanitised at the one place records are made
(vault.audit.chain.make_event), whatever its source: a server, the command line, the host name,
an environment variable (USER, LOGNAME). One value too long for the tail window would wedge the
log (every later append refused until `vault audit reset`); a control character would reach
`vault audit show`'s terminal."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.audit import chain
from vault.audit.chain import MAX_FIELD, TAIL_WINDOW, AuditLog, Hwm, make_event, verify
from vault.util.text import UNSAFE_TABLE, pattern

TEXT_FIELDS = ("name", "provider", "issuer", "outcome", "reason", "rule", "source", "command")

# Short hostile text, and huge values (one character repeated: a huge USER, a hostile name).
hostile = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
huge = st.builds(
    lambda ch, n: ch * n,
    st.sampled_from(["a", "\x1b", "é", "\U0001f600", "\u202e", '"', "\\", "\n"]),
    st.integers(MAX_FIELD, 300_000),
)
value = st.one_of(hostile, huge)


def _check(event: dict[str, Any]) -> None:
    unsafe = pattern(*UNSAFE_TABLE)
    for key, field in event.items():
        if isinstance(field, str):
            assert len(field) <= MAX_FIELD, key
            assert not unsafe.search(field), (key, field[:80])
    for scope in event["scopes"] or []:
        assert len(scope) <= MAX_FIELD
        assert not unsafe.search(scope), scope[:80]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.fixed_dictionaries({k: value for k in TEXT_FIELDS}),
    kind=value,
    user=value,
    host=value,
    scopes=st.lists(value, max_size=5),
)
def test_every_field_is_bounded_and_the_log_stays_appendable(
    fields: dict[str, str], kind: str, user: str, host: str, scopes: list[str]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chain, "_os_user", lambda: user)
        mp.setattr(chain, "_host", lambda: host, raising=False)
        mp.setattr(os, "uname", lambda: os.uname_result(("L", host, "r", "v", "m")))
        event = make_event(kind, scopes=scopes, **fields)
    _check(event)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "log"
        folder.mkdir(mode=0o700)
        log = AuditLog(folder / "audit.jsonl", b"k" * 32)
        hwm, _ = log.append([event], Hwm())
        assert os.path.getsize(log.path) < TAIL_WINDOW // 2
        # The log is not wedged: the next append reads the tail and goes on.
        hwm, _ = log.append([make_event("used", name="a")], hwm)
        assert verify(log, hwm).ok


@pytest.mark.parametrize("var", ["LOGNAME", "USER"])
def test_a_huge_login_name_from_the_environment(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    for other in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(var, "x\x1b[31m" * 100_000)
    chain._os_user.cache_clear()
    try:
        event = make_event("used", name="a")
    finally:
        chain._os_user.cache_clear()
    _check(event)
    assert event["user"].startswith("x[31mx")
