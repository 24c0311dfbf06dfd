"""The hand parser for `vault token` (vault.cli.run._parse_fast) against argparse
(vault.cli.parser.parse): it accepts a strict subset of what argparse accepts, and for what it
accepts it gives the same namespace."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vault.cli.parser import parse
from vault.cli.run import FAST, _parse_fast
from vault.errors import UsageError

# Words that are near the edges of both grammars: numbers argparse's int() reads but the hand
# parser must not (signs, spaces, underscores, other scripts' digits), words that look like
# options, abbreviations argparse allows, "=" in odd places and the "--" separator.
ARABIC_FIVE, FULLWIDTH_FIVE = "\u0665", "\uff15"  # int() reads both as 5
NUMBERS = st.one_of(
    st.sampled_from(
        [
            "0",
            "5",
            "-5",
            "--5",
            "-0",
            "00",
            "+5",
            " 5",
            "5 ",
            "5\n",
            "-5\n",
            "5_0",
            "",
            "-",
            ARABIC_FIVE,
            "-" + ARABIC_FIVE,
            FULLWIDTH_FIVE,
            "1e3",
            "0x10",
            "9" * 25,
            "---1",
        ]
    ),
    # Any decimal digits of any script, with or without signs.
    st.tuples(
        st.sampled_from(["", "-", "--", "+"]),
        st.text(st.characters(categories=["Nd"]), min_size=1, max_size=3),
    ).map("".join),
)
OPTIONS = st.sampled_from(
    [
        "--min-valid",
        "--min",
        "--m",
        "--min-valid=",
        "--passphrase-file",
        "--pass",
        "--passphrase-file=",
        "--passphrase",
        "-v",
        "-vv",
        "--verbose",
        "--debug",
        "-h",
        "--help",
        "--",
        "-",
        "=",
        "--=",
        "--min-valid==",
        "-x",
        "--bogus",
        "-5",
        "--5",
    ]
)
# Every option and choice of every FAST grammar, and near misses of each (abbreviations).
GRAMMAR_WORDS = sorted(
    {
        word
        for grammar in FAST.values()
        for option in (*grammar.values, *grammar.ints, *grammar.flags)
        for word in (option, option[:-2], option + "=", option + "x")
    }
    | {c for grammar in FAST.values() for _, choices in grammar.positionals for c in choices or ()}
)
NAMES = st.one_of(
    st.sampled_from(["gh", "a b", "token", "x=y", "", "-", "ß", "-a b", "--min-valid"]),
    st.sampled_from(GRAMMAR_WORDS),
)


@st.composite
def words(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["option", "number", "name", "joined", "text", "grammar"]))
    if kind == "option":
        return draw(OPTIONS)
    if kind == "grammar":
        return draw(st.sampled_from(GRAMMAR_WORDS))
    if kind == "number":
        return draw(NUMBERS)
    if kind == "name":
        return draw(NAMES)
    if kind == "joined":
        option = draw(
            st.sampled_from(["--min-valid", "--passphrase-file", "--min", "--pass", *GRAMMAR_WORDS])
        )
        return f"{option}={draw(st.one_of(NUMBERS, NAMES, OPTIONS))}"
    return draw(st.text(max_size=6))


ARGV = st.one_of(
    st.tuples(st.sampled_from(sorted(FAST)), st.lists(words(), max_size=6)).map(
        lambda pair: [pair[0], *pair[1]]
    ),
    st.lists(words(), max_size=6),  # also argv not starting with "token"
)


def _argparse(argv: list[str]) -> dict[str, Any] | None:
    """argparse's namespace for argv as a dict, or None where it refuses or prints help."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return vars(parse(list(argv)))
        except (UsageError, SystemExit):
            return None


def _check(argv: list[str]) -> None:
    fast = _parse_fast(list(argv))
    if fast is None:
        return
    full = _argparse(argv)
    assert full is not None, f"the hand parser accepts {argv!r}, argparse refuses it"
    assert vars(fast) == full, argv


@settings(max_examples=1500, deadline=None)
@given(ARGV)
@example(["token", "x", "--min-valid=--5"])
@example(["token", "x", "--min-valid", "--5"])
@example(["token", "x", "--passphrase-file", "-p"])
@example(["token", "x", "--passphrase-file", "-5"])
@example(["token", "x", "--min-valid", "-0"])
@example(["token", "x", "--min-valid=" + ARABIC_FIVE])
@example(["token", "x", "--min-valid=5", "--min-valid", "7"])
@example(["token", "x", "--min-valid", "9" * 5000])  # over int()'s digit limit
@example(["token", "gh", "--passphrase-file=--"])  # argparse drops a bare "--" value
@example(["token"])  # no NAME: the default token
@example(["token", "--min-valid", "5"])
@example(["token", "--min-valid"])
@example(["token", "--passphrase-file", "p"])
@example(["token", "-"])
@example(["kube"])  # NAME stays required where it is
@example(["credential-helper", "--name", "x"])
def test_hand_parser_accepts_a_subset_of_argparse_with_the_same_values(argv: list[str]) -> None:
    _check(argv)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["token", "gh"], {"name": "gh", "min_valid": 0}),
        (["token"], {"name": None, "min_valid": 0}),
        (["token", "--min-valid", "30"], {"name": None, "min_valid": 30}),
        (["token", "--passphrase-file=p"], {"name": None, "min_valid": 0, "passphrase_file": "p"}),
        (["token", "gh", "--min-valid", "30"], {"name": "gh", "min_valid": 30}),
        (["token", "--min-valid=-5", "gh"], {"name": "gh", "min_valid": -5}),
        (["token", "gh", "--min-valid", "-0"], {"name": "gh", "min_valid": 0}),
        (["token", "gh", "--min-valid=1", "--min-valid=2"], {"name": "gh", "min_valid": 2}),
        (
            ["token", "gh", "--passphrase-file", "-5"],
            {"name": "gh", "min_valid": 0, "passphrase_file": "-5"},
        ),
        (
            ["token", "gh", "--passphrase-file=a=b"],
            {"name": "gh", "min_valid": 0, "passphrase_file": "a=b"},
        ),
    ],
)
def test_the_common_forms_take_the_fast_path(argv: list[str], expected: dict[str, Any]) -> None:
    """The differential test alone would pass if the hand parser refused everything."""
    fast = _parse_fast(argv)
    assert fast is not None
    assert vars(fast) == {
        "command": "token",
        "handler": "vault.cli.commands.token:cmd_token",
        **expected,
    }
    assert vars(fast) == _argparse(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "x", "--min-valid=--5"],
        ["token", "x", "--min-valid", "--5"],
        ["token", "x", "--min-valid=---1"],
        ["token", "x", "--min-valid", "+5"],
        ["token", "x", "--min-valid=" + ARABIC_FIVE],
        ["token", "x", "--passphrase-file", "--debug"],
        ["token", "x", "--min", "5"],
        ["token", "x", "--min-valid", "9" * 5000],
        ["token", "x", "--", "y"],
        ["token", "--"],
        ["token", "a", "b"],
        ["kube"],
        ["kube", "--min-valid", "5"],
        ["credential-helper", "--name", "x"],
    ],
)
def test_doubtful_words_go_to_argparse(argv: list[str]) -> None:
    assert _parse_fast(argv) is None
