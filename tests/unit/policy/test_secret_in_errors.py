"""A secret from config.yaml (client_secret) never appears in an error message, whatever its
YAML type: a string, a number too large for 64 bits, a list, a mapping (its keys included,
duplicated or not strings), a tagged scalar (`!!int`, `!!bool`, a custom tag), nested or not.
Each example puts a canary in the value and looks for any 8 characters of it in the error."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import ConfigError
from vault.fs.paths import resolve
from vault.policy.config import load

LETTERS = st.text(string.ascii_uppercase + string.digits, min_size=12, max_size=60).map(
    lambda s: "Q" + s
)
DIGITS = st.text(string.digits, min_size=24, max_size=60).map(lambda s: "9" + s)


@st.composite
def secret_values(draw: st.DrawFn) -> tuple[str, str]:
    """(YAML text of a value holding the canary, the canary)."""
    canary = draw(st.one_of(LETTERS, DIGITS))

    def scalars() -> st.SearchStrategy[str]:
        return st.sampled_from(
            [
                canary,
                f'"{canary}"',
                f"!!int {canary}",
                f"!!bool {canary}",
                f"!!float {canary}",
                f"!!null {canary}",
                f"!{canary} x",
                f"!!str {canary}",
                f"0x{canary}",
            ]
        )

    def collections(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
            children.map(lambda c: "{" + c + ": 1}"),  # the canary as a key
            children.map(lambda c: "{" + c + ": 1, " + c + ": 2}"),  # a duplicate key
            children.map(lambda c: "{x: " + c + "}"),
            children.map(lambda c: "{[" + c + "]: 1}"),  # a key that is not a string
        )

    value = draw(st.recursive(scalars(), collections, max_leaves=4))
    return value, canary


def _leaks(text: str, canary: str) -> bool:
    return any(canary[i : i + 8] in text for i in range(len(canary) - 7))


def _load(text: str) -> ConfigError | None:
    with tempfile.TemporaryDirectory() as base:
        home = Path(base) / "vh"
        home.mkdir(mode=0o700)
        (home / "config.yaml").write_text(text)
        try:
            load(resolve({"VAULT_HOME": str(home)}))
        except ConfigError as exc:
            return exc
    return None


@settings(max_examples=300, deadline=None)
@given(secret=secret_values(), where=st.sampled_from(["block", "flow", "top", "misspelt"]))
def test_client_secret_never_in_an_error(secret: tuple[str, str], where: str) -> None:
    value, canary = secret
    text = {
        "block": f"providers:\n  p:\n    issuer: https://idp.example\n    client_secret: {value}\n",
        "flow": f"providers: {{p: {{issuer: 'https://idp.example', client_secret: {value}}}}}\n",
        "top": f"client_secret: {value}\n",
        "misspelt": f"providers:\n  p:\n    client_secrte: {value}\n",
    }[where]
    error = _load(text)
    if error is not None:
        assert not _leaks(f"{error.message}\n{error.hint}", canary), (text, error.message)


@pytest.mark.parametrize(
    "value",
    ["!!int {c}", "!!bool {c}", "{{{c}: 1, {c}: 2}}", "{{[{c}]: 1}}", "!{c} x", "9{d}"],
)
def test_examples_once_seen_leaking(value: str) -> None:
    canary, digits = "QSECRETCANARY42", "9" + "31415926535" * 3
    error = _load(f"providers:\n  p:\n    client_secret: {value.format(c=canary, d=digits[1:])}\n")
    assert error is not None
    assert not _leaks(error.message + str(error.hint), canary if "{c}" in value else digits)
