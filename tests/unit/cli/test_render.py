"""vault.cli.render: relative times, the colour decision, and tables that fit."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from vault.cli.render import (
    Column,
    Styled,
    color_enabled,
    error_code,
    relative_time,
    render_table,
    style,
    text_width,
    truncate,
    when,
    wrap,
)
from vault.errors import (
    AuthError,
    ConfigError,
    IntegrityError,
    NetworkError,
    PolicyError,
    UsageError,
    VaultError,
)

UNIT = {"s": 1, "min": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
SHAPE = re.compile(r"(?:in (\d+) (s|min|h|d|y)|(\d+) (s|min|h|d|y) ago|now)")
NOW = 1_800_000_000.0


# --- relative times ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (0, "now"),
        (0.999, "now"),
        (-0.999, "now"),
        (1, "in 1 s"),
        (-1, "1 s ago"),
        (59.999, "in 59 s"),
        (60, "in 1 min"),
        (-60, "1 min ago"),
        (3599, "in 59 min"),
        (3600, "in 1 h"),
        (86399, "in 23 h"),
        (86400, "in 1 d"),
        (-3 * 86400, "3 d ago"),
        (364 * 86400 + 86399, "in 364 d"),
        (365 * 86400, "in 1 y"),
        (-7 * 60 - 59, "7 min ago"),
    ],
)
def test_relative_time_at_unit_boundaries(delta: float, text: str) -> None:
    assert relative_time(NOW + delta, NOW) == text


DELTAS = st.one_of(
    st.floats(min_value=-1e10, max_value=1e10, allow_nan=False),
    # around every unit boundary, on both sides, in the past and the future
    st.builds(
        lambda size, k, eps, sign: sign * (size * k + eps),
        st.sampled_from(list(UNIT.values())),
        st.integers(1, 3),
        st.floats(-1.5, 1.5),
        st.sampled_from([-1, 1]),
    ),
)


@settings(max_examples=1000, deadline=None)
@given(DELTAS)
@example(59.5)
@example(-86400.0)
def test_relative_time_names_the_largest_unit_rounded_down(delta: float) -> None:
    text = relative_time(NOW + delta, NOW)
    m = SHAPE.fullmatch(text)
    assert m is not None, text
    distance = abs((NOW + delta) - NOW)  # as the function sees it (float rounding included)
    if text == "now":
        assert distance < 1
        return
    future = m.group(1) is not None
    amount = int(m.group(1) or m.group(3))
    unit = UNIT[m.group(2) or m.group(4)]
    assert future == (delta > 0)
    assert amount >= 1
    assert amount * unit <= distance < (amount + 1) * unit
    bigger = [size for size in UNIT.values() if size > unit]
    assert not bigger or distance < min(bigger)  # no larger unit fits
    # the past reads as the future does, the other way round
    mirror = SHAPE.fullmatch(relative_time(NOW - delta, NOW))
    assert mirror is not None
    assert (mirror.group(1) or mirror.group(3), mirror.group(2) or mirror.group(4)) == (
        str(amount),
        m.group(2) or m.group(4),
    )


@given(st.floats(-1e9, 1e9, allow_nan=False), st.floats(1, 1e6))
def test_relative_time_is_monotonic_in_the_amount(delta: float, more: float) -> None:
    """Further away never reads as closer (same direction, same or larger amount)."""
    assume(delta > 1)

    def amount(text: str) -> int:
        m = SHAPE.fullmatch(text)
        assert m is not None
        return int(m.group(1) or m.group(3)) * UNIT[m.group(2) or m.group(4)]

    assert amount(relative_time(NOW + delta + more, NOW)) >= amount(relative_time(NOW + delta, NOW))


def test_when_is_absolute_on_request_and_says_what_none_is() -> None:
    assert when(NOW + 420, NOW) == "in 7 min"
    assert when(NOW + 420, NOW, absolute=True) == "2027-01-15T08:07:00Z"
    assert when(None, NOW, none="never") == "never"


# --- colour ------------------------------------------------------------------------------


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("env", "tty", "on"),
    [
        ({"TERM": "xterm-256color"}, True, True),
        ({"TERM": "xterm-256color"}, False, False),  # not a terminal
        ({}, True, False),  # no TERM
        ({"TERM": "dumb"}, True, False),
        ({"TERM": ""}, True, False),
        ({"TERM": "xterm", "NO_COLOR": "1"}, True, False),
        ({"TERM": "xterm", "NO_COLOR": "anything"}, True, False),
        ({"TERM": "xterm", "NO_COLOR": ""}, True, True),  # no-color.org: empty means unset
        ({"TERM": "dumb", "CLICOLOR_FORCE": "1"}, False, True),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "3"}, False, True),
        ({"FORCE_COLOR": "0"}, False, False),
        ({"CLICOLOR_FORCE": "0", "TERM": "xterm"}, False, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, True, False),  # NO_COLOR wins
        ({"CLICOLOR_FORCE": "1", "NO_COLOR": "x"}, False, False),
    ],
)
def test_color_decision(env: dict[str, str], tty: bool, on: bool) -> None:
    assert color_enabled(_Stream(tty), env) is on


def test_style_adds_sgr_only_when_colour_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NO_COLOR", "CLICOLOR_FORCE", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert style("ABCD-EFGH", "code", _Stream(True)) == "\x1b[1mABCD-EFGH\x1b[0m"
    assert style("ABCD-EFGH", "code", _Stream(False)) == "ABCD-EFGH"
    monkeypatch.setenv("NO_COLOR", "1")
    assert style("ABCD-EFGH", "code", _Stream(True)) == "ABCD-EFGH"
    with pytest.raises(ValueError, match="unknown style"):
        style("x", "blink")


# --- tables ------------------------------------------------------------------------------

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Mn", "Me", "Cf")),
    max_size=150,
)
NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}", fullmatch=True)


def _columns() -> list[Column]:
    return [
        Column("NAME", "wrap", least=8),
        Column("ACCOUNT", "cut", least=7),
        Column("PROVIDER", "cut", least=8),
        Column("SCOPES", "cut", least=6),
        Column("ISSUED", "keep"),
        Column("EXPIRES", "keep"),
        Column("REFRESHED", "keep", wide=True),
        Column("STATE", "wrap", least=8),
    ]


TIMES = st.sampled_from(["now", "59 s ago", "in 59 min", "364 d ago", "never", "-"])
STATES = st.sampled_from(
    [
        "valid",
        "expiring",
        "refreshable",
        "expired",
        "needs_login",
        "rejected",
        "denied:max_token_age",
        "denied:allowed_scopes",
        "denied:allowed_issuers",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(NAMES, TEXT, TEXT, TEXT, TIMES, TIMES, TIMES, STATES), min_size=1, max_size=6
    ),
    st.sampled_from([80, 100, 120]),
)
def test_every_line_fits_and_nothing_of_a_name_is_lost(
    rows: list[tuple[str, ...]], width: int
) -> None:
    lines = render_table(_columns(), [list(r) for r in rows], width=width)
    for line in lines:
        assert text_width(line) <= width, (width, line)
    # a name is wrapped, never cut: the NAME column, read down, is every name in order
    name_column = lines[0].index("ACCOUNT")
    assert "".join(line[:name_column].strip() for line in lines[1:]) == "".join(r[0] for r in rows)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES, TEXT, TEXT), min_size=1, max_size=5))
def test_a_cut_value_ends_in_an_ellipsis_and_wide_shows_it_whole(
    rows: list[tuple[str, str, str]],
) -> None:
    columns = [Column("NAME", "wrap"), Column("A", "cut"), Column("B", "cut")]
    narrow = render_table(columns, [list(r) for r in rows], width=40)
    wide = render_table(columns, [list(r) for r in rows], width=40, wide=True)
    assert all(text_width(line) <= 40 for line in narrow)
    for row in rows:
        for value in row[1:]:
            assert value.strip() == "" or any(value.rstrip() in line for line in wide)
    text = "\n".join(narrow)
    for value in (v for r in rows for v in r[1:]):
        # whole, or a beginning of it marked as cut
        assert value.rstrip() in text or any(
            cut.endswith("…") and value.strip().startswith(cut[:-1].strip())
            for line in narrow
            for cut in (c.strip() for c in line.split("  "))
            if cut
        ), value


def test_truncate_marks_what_it_cut() -> None:
    assert truncate("abcdef", 6) == "abcdef"
    assert truncate("abcdefg", 6) == "abcde…"
    assert text_width(truncate("日本語のテキスト", 7)) <= 7
    assert truncate("日本語のテキスト", 7).endswith("…")


@given(TEXT, st.integers(1, 60))
def test_wrap_keeps_every_character_and_fits(text: str, width: int) -> None:
    lines = wrap(text, width)
    assert all(text_width(line) <= width or len(line) == 1 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_layout_of_a_token_list_at_80_columns() -> None:
    name = "a-token-name-of-forty-one-characters-long"
    lines = render_table(
        _columns(),
        [
            [name, "octocat", "github", "repo read:org", "2 h ago", "in 7 min", "never", "valid"],
            ["gl", "-", "gitlab", "api", "3 d ago", "2 d ago", "never", "expired"],
        ],
        width=80,
    )
    assert lines == [  # values are cut (marked) first; then the name breaks after a dash
        "NAME                       ACCOUNT  PROVIDER  SCOPES  ISSUED   EXPIRES   STATE",
        "a-token-name-of-forty-     octocat  github    repo …  2 h ago  in 7 min  valid",
        "one-characters-long",
        "gl                         -        gitlab    api     3 d ago  2 d ago   expired",
    ]


def test_colour_in_a_table_takes_no_columns() -> None:
    rows: list[list[str | Styled]] = [["gh", Styled("expired", "bad")]]
    plain = render_table([Column("NAME"), Column("STATE")], rows, width=80)
    coloured = render_table([Column("NAME"), Column("STATE")], rows, width=80, color=True)
    assert plain == ["NAME  STATE", "gh    expired"]
    assert coloured == ["\x1b[1mNAME\x1b[0m  \x1b[1mSTATE\x1b[0m", "gh    \x1b[31mexpired\x1b[0m"]


# --- JSON errors -------------------------------------------------------------------------


def test_error_codes() -> None:
    assert error_code(UsageError("x")) == "usage"
    assert error_code(ConfigError("x")) == "config"
    assert error_code(AuthError("x", code="expired")) == "expired"
    assert error_code(PolicyError("x")) == "policy"
    assert error_code(IntegrityError("x")) == "integrity"
    assert error_code(NetworkError("x", code="unreachable")) == "unreachable"
    assert error_code(VaultError("x")) == "internal"
    assert error_code(KeyboardInterrupt()) == "interrupted"
    assert error_code(RuntimeError("x")) == "internal"
