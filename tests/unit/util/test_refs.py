"""vault:// references, env files and templates (vault.util.refs): what each grammar accepts,
what it refuses (always a UsageError naming FILE:LINE, never quoting a value), and round trips
and hostile bytes under hypothesis."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vault.errors import UsageError
from vault.util.refs import (
    ID_TOKEN,
    MAX_ENV_FILE,
    MAX_OUTPUT,
    MAX_TEMPLATE,
    EnvEntry,
    Placeholder,
    Ref,
    RefError,
    parse_env_file,
    parse_ref,
    parse_template,
    render_template,
)
from vault.util.text import NAME_RE

CANARY = "s3cr3tCanaryValue"
# No deadline (a loaded machine is not a failure) and no complaint about slow generation.
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(NAME_RE, fullmatch=True)
fields = st.sampled_from(["access_token", "id_token"])
refs = st.builds(Ref, names, fields)
env_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


_T = TypeVar("_T")


def _outcome(func: Callable[..., _T], *args: object) -> tuple[_T | None, Exception | None]:
    """What ``func(*args)`` returns, or the RefError or UsageError it raises (anything else
    propagates and fails the test)."""
    try:
        return func(*args), None
    except (RefError, UsageError) as exc:
        return None, exc


# --- references -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("vault://gh", Ref("gh")),
        ("vault://gh#access_token", Ref("gh")),
        ("vault://work.oidc@corp#id_token", Ref("work.oidc@corp", ID_TOKEN)),
        ("vault://A-1_b+c", Ref("A-1_b+c")),
    ],
)
def test_references_that_parse(text: str, ref: Ref) -> None:
    assert parse_ref(text) == ref


@pytest.mark.parametrize(
    "text",
    [
        "vault://",
        "vault://#id_token",
        "vault://gh#",
        "vault://gh#refresh_token",
        "vault://gh#id_token#x",
        "vault://gh/x",
        "vault://gh ",
        "vault:// gh",
        "vault://-gh",
        "vault://" + "a" * 129,
        "VAULT://gh",
        "Vault://gh",
        "vault:gh",
        "op://vault/item",
        "gh",
        "",
        "vault://g\x00h",
        "vault://gh\n",
        "vault://user:" + CANARY + "@host",
    ],
)
def test_references_that_do_not(text: str) -> None:
    with pytest.raises(RefError) as err:
        parse_ref(text)
    assert CANARY not in str(err.value)
    assert text[8:] not in str(err.value) or len(text) <= 10


@RELAXED
@given(refs)
def test_a_reference_round_trips(ref: Ref) -> None:
    assert parse_ref(str(ref)) == ref


@RELAXED
@given(st.text(max_size=300))
def test_any_text_is_a_reference_or_a_ref_error(text: str) -> None:
    ref, error = _outcome(parse_ref, text)
    if error is not None:
        assert isinstance(error, RefError)
        assert len(text) <= 12 or text not in str(error)
        return
    assert str(ref) == text or str(ref) + "#access_token" == text


# --- env files --------------------------------------------------------------------------------


def _one(line: str) -> EnvEntry:
    entries = parse_env_file(line.encode(), "F")
    assert len(entries) == 1, entries
    return entries[0]


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("A=b", "A", "b"),
        ("A=", "A", ""),
        ("_x1=b", "_x1", "b"),
        ("  A=b", "A", "b"),
        ("\tA=b", "A", "b"),
        ("A=hello world", "A", "hello world"),
        ("A=b   \t", "A", "b"),
        ("A=a#b", "A", "a#b"),
        ("A=it's", "A", "it's"),
        ('A=say"hi"', "A", 'say"hi"'),
        ("A=$HOME/x", "A", "$HOME/x"),
        ("A=back\\slash", "A", "back\\slash"),
        ("A==", "A", "="),
        ("A=b=c", "A", "b=c"),
        ("export A=b", "A", "b"),
        ("export \t A=b", "A", "b"),
        ("export=1", "export", "1"),
        ("exportA=1", "exportA", "1"),
        ("A='  spaced  '", "A", "  spaced  "),
        ("A='no \\n escapes $X \"'", "A", 'no \\n escapes $X "'),
        ("A='x' # a comment", "A", "x"),
        ("A=''", "A", ""),
        ('A=""', "A", ""),
        ('A="a \\"b\\" \\\\ c"', "A", 'a "b" \\ c'),
        ('A="l1\\nl2\\tt\\rr"', "A", "l1\nl2\tt\rr"),
        ('A="# not a comment"', "A", "# not a comment"),
        ('A="x"\t#c', "A", "x"),
        ("A=héllo wörld ✓", "A", "héllo wörld ✓"),
        ("A=b\r", "A", "b"),
    ],
)
def test_env_lines_that_parse(line: str, key: str, value: str) -> None:
    entry = _one(line)
    assert (entry.key, entry.value, entry.ref) == (key, value, None)


@pytest.mark.parametrize(
    ("line", "ref"),
    [
        ("PGPASSWORD=vault://db", Ref("db")),
        ("export T=vault://gh#access_token", Ref("gh")),
        ("T='vault://gh'", Ref("gh")),
        ('T="vault://k8s#id_token"', Ref("k8s", ID_TOKEN)),
        ("T=vault://gh   ", Ref("gh")),
    ],
)
def test_env_references(line: str, ref: Ref) -> None:
    entry = _one(line)
    assert (entry.ref, entry.value) == (ref, "")


REFUSED_ENV = [
    ("A", "expected KEY=VALUE"),
    ("export A", "expected KEY=VALUE"),
    ("A =b", "expected KEY=VALUE"),
    ("1A=b", "expected KEY=VALUE"),
    ("A-B=b", "expected KEY=VALUE"),
    ("=b", "expected KEY=VALUE"),
    ("ÄB=b", "expected KEY=VALUE"),
    ("A= b", "a blank after '='"),
    ("A=\tb", "a blank after '='"),
    ("A=b #c", "'#' after a blank"),
    ("A=b\t#c", "'#' after a blank"),
    ("A='b", "single quote is not closed"),
    ('A="b', "double quote is not closed"),
    ('A="b\\"', "double quote is not closed"),
    ('A="b\\x"', "unknown escape"),
    ('A="b\\$"', "unknown escape"),
    ("A='b'c", "text after the closing quote"),
    ("A='b'#c", "text after the closing quote"),
    ('A="b" c', "text after the closing quote"),
    ("A=x vault://gh", "must be the whole value"),
    ("A=vault://gh,vault://gl", "not a valid token name"),
    ("A=postgres://u:VAULT://gh@h", "must be the whole value"),
    ("A=VAULT://gh", "lower case"),
    ("A=vault://gh#secret", "access_token or id_token"),
    ("A=vault://", "not a valid token name"),
]


@pytest.mark.parametrize(("line", "why"), [r for r in REFUSED_ENV if r[1] is not None])
def test_env_lines_that_are_refused(line: str, why: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_env_file(f"# first\n\n{line}\n".encode(), "F")
    message = err.value.message
    assert re.match(r"F:3(: | \(A\): )", message), message
    assert why in message
    value = line.partition("=")[2]
    if len(value) > 2 and value != "vault://":  # (the message itself says "vault://")
        assert value not in message  # never the value


def test_a_refusal_never_quotes_the_value() -> None:
    tried = 0
    for line, why in REFUSED_ENV:
        key, _, value = line.partition("=")
        if "b" not in value:
            continue
        hostile = f"{key}={value.replace('b', CANARY)}"
        with pytest.raises(UsageError) as err:
            parse_env_file(hostile.encode(), "F")
        assert why is None or why in err.value.message
        assert CANARY not in err.value.message, (hostile, err.value.message)
        assert CANARY not in (err.value.hint or "")
        tried += 1
    assert tried > 10


def test_comments_blank_lines_line_numbers_and_crlf() -> None:
    data = b"# c\r\n\r\n   \t\n  # indented comment\nA=1\r\nB=vault://gh\nC='3'"
    entries = parse_env_file(data, "F")
    assert [(e.key, e.value, e.ref, e.line) for e in entries] == [
        ("A", "1", None, 5),
        ("B", "", Ref("gh"), 6),
        ("C", "3", None, 7),
    ]


def test_the_documented_example_parses_as_documented() -> None:
    import vault.util.refs as module

    doc = module.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    example = "\n".join(line[4:] for line in block.splitlines())
    assert [(e.key, e.value, e.ref) for e in parse_env_file(example.encode(), "doc")] == [
        ("PLAIN", "some value", None),
        ("PGPASSWORD", "", Ref("db")),
        ("QUOTED", 'a "b"\n', None),
        ("SINGLE", "taken as written", None),
    ]


def test_a_byte_order_mark_at_the_start_only() -> None:
    assert parse_env_file(b"\xef\xbb\xbfA=1\n", "F") == [EnvEntry("A", "1", None, 1)]
    with pytest.raises(UsageError, match=r"^F:2: expected KEY=VALUE"):
        parse_env_file(b"A=1\n\xef\xbb\xbfB=2\n", "F")


def test_a_key_twice_in_one_file_is_refused() -> None:
    with pytest.raises(UsageError, match=r"^F:3: A is already set on line 1$"):
        parse_env_file(b"A=1\nB=2\nexport A=vault://gh\n", "F")


@pytest.mark.parametrize(
    ("data", "why", "line"),
    [
        (b"A=1\nB=x\x00y\n", "NUL", 2),
        (b"A=1\nB=x\ry\n", "carriage return", 2),
        (b"A=1\r\r\n", "carriage return", 1),
        (b"A=\xff\xfe", "not UTF-8", 1),
        (b"A=1\n\n\nB=\xc3(", "not UTF-8", 4),
        (b"A=\xed\xa0\x80", "not UTF-8", 1),  # an encoded surrogate is not UTF-8
    ],
)
def test_hostile_bytes_are_refused_by_line(data: bytes, why: str, line: int) -> None:
    with pytest.raises(UsageError) as err:
        parse_env_file(data, "F")
    assert err.value.message.startswith(f"F:{line}: ")
    assert why in err.value.message


def test_size_limits() -> None:
    long_value = "x" * (MAX_ENV_FILE - 10)
    (entry,) = parse_env_file(f"A={long_value}\n".encode(), "F")
    assert entry.value == long_value
    with pytest.raises(UsageError, match="KiB limit"):
        parse_env_file(b"A=" + b"x" * MAX_ENV_FILE, "F")


def _quoted(value: str) -> str:
    """A value written so that the env-file grammar reads it back exactly (double quotes)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


env_values = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=200).filter(
    lambda v: "vault://" not in v.lower()
)


@settings(RELAXED, max_examples=300)
@given(st.dictionaries(env_keys, st.one_of(env_values, refs), max_size=12), st.booleans())
def test_env_file_round_trip(assignments: dict[str, str | Ref], crlf: bool) -> None:
    end = "\r\n" if crlf else "\n"
    lines = []
    for key, value in assignments.items():
        written = str(value) if isinstance(value, Ref) else _quoted(value)
        lines += ["# comment", f"export {key}={written}", ""]
    entries = parse_env_file(end.join(lines).encode(), "F")
    got = {e.key: (e.ref if e.ref is not None else e.value) for e in entries}
    assert got == assignments
    assert [e.line for e in entries] == [3 * i + 2 for i in range(len(assignments))]


@settings(RELAXED, max_examples=300)
@given(env_values.filter(lambda v: "'" not in v and "\n" not in v and "\r" not in v))
def test_single_quoted_values_are_taken_as_written(value: str) -> None:
    assert _one(f"A='{value}'").value == value


@settings(RELAXED, max_examples=500)
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_are_a_usage_error_naming_a_line(data: bytes) -> None:
    entries, error = _outcome(parse_env_file, data, "F")
    if error is not None:
        assert isinstance(error, UsageError)
        assert re.match(r"F:\d+(: | \([A-Za-z0-9_]+\): )", error.message), error.message
        return
    assert entries is not None
    for entry in entries:
        assert ENV_KEY_RE.fullmatch(entry.key)
        assert "\0" not in entry.value


ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@settings(RELAXED, max_examples=300)
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_hostile_bytes_around_a_secret_never_echo_it(before: bytes, after: bytes) -> None:
    data = before + b"\nKEY=" + CANARY.encode() + after
    _, error = _outcome(parse_env_file, data, "F")
    assert CANARY not in str(error)
    assert not isinstance(error, UsageError) or CANARY not in (error.hint or "")


# --- templates --------------------------------------------------------------------------------


def _values(*refs_: Ref) -> dict[Ref, bytes]:
    return {ref: f"<{ref.name}:{ref.field}>".encode() for ref in refs_}


@pytest.mark.parametrize(
    ("template", "filled"),
    [
        (b"token = {{ vault://gh }}\n", b"token = <gh:access_token>\n"),
        (b"{{vault://gh}}", b"<gh:access_token>"),
        (b"{{ \t vault://gh#access_token \t}}", b"<gh:access_token>"),
        (b"a{{ vault://k#id_token }}b{{ vault://gh }}c", b"a<k:id_token>b<gh:access_token>c"),
        (b"{{{ vault://gh }}}", b"{<gh:access_token>}"),
        (b"{{ {{ vault://gh }}", b"{{ <gh:access_token>"),
        (b"{{ other }} {{ .Values.x }} vault://gh", b"{{ other }} {{ .Values.x }} vault://gh"),
        (b"\xff\x00\r\n{{ vault://gh }}\xfe", b"\xff\x00\r\n<gh:access_token>\xfe"),
        (b"", b""),
    ],
)
def test_templates_that_fill(template: bytes, filled: bytes) -> None:
    segments = parse_template(template, "T")
    assert render_template(segments, _values(Ref("gh"), Ref("k", ID_TOKEN)), "T") == filled


@pytest.mark.parametrize(
    ("template", "why"),
    [
        (b"x\n\ny = {{ vault://gh }", "not closed"),
        (b"x\n\ny = {{ vault://gh \n}}", "not closed"),
        (b"x\n\ny = {{ vault://g h }}", "not closed"),
        (b"x\n\ny = {{ vault://gh#refresh_token }}", "access_token or id_token"),
        (b"x\n\ny = {{ VAULT://gh }}", "lower case"),
        (b"x\n\ny = {{ vault:// }}", "not a valid token name"),
        (b"x\n\ny = {{ vault://g\xc3\xa9 }}", "not a valid token name"),
        (b"x\n\ny = {{ vault://gh}", "not closed"),
        (b"x\n\ny = {{ vault://{{ vault://gh }} }}", "not closed"),
    ],
)
def test_templates_that_are_refused(template: bytes, why: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_template(template, "T")
    assert err.value.message.startswith("T:3: "), err.value.message
    assert why in err.value.message


def test_placeholders_know_their_line() -> None:
    segments = parse_template(b"a\nb {{ vault://x }}\n\n{{ vault://y#id_token }}", "T")
    assert [s for s in segments if isinstance(s, Placeholder)] == [
        Placeholder(Ref("x"), 2),
        Placeholder(Ref("y", ID_TOKEN), 4),
    ]


def test_template_size_limits() -> None:
    parse_template(b"x" * MAX_TEMPLATE, "T")
    with pytest.raises(UsageError, match="KiB limit"):
        parse_template(b"x" * (MAX_TEMPLATE + 1), "T")
    segments = parse_template(b"{{ vault://gh }}" * 9, "T")
    with pytest.raises(UsageError, match="MiB limit"):
        render_template(segments, {Ref("gh"): b"t" * (MAX_OUTPUT // 8)}, "T")


literal = st.binary(max_size=60).filter(lambda b: b"{" not in b or not _opens(b))


def _opens(data: bytes) -> bool:
    return re.search(rb"\{\{[ \t]*vault://", data, re.IGNORECASE) is not None


@settings(RELAXED, max_examples=300)
@given(st.lists(st.one_of(literal, refs), max_size=10), st.sampled_from(["", " ", " \t "]))
def test_template_round_trip(parts: list[bytes | Ref], pad: str) -> None:
    template = b""
    expected = b""
    for part in parts:
        if isinstance(part, Ref):
            template += f"{{{{{pad}{part}{pad}}}}}".encode()
            expected += f"<{part.name}:{part.field}>".encode()
        else:
            template += part
            expected += part
    # Two literal parts may join into an opening of their own: such examples are set aside.
    try:
        segments = parse_template(template, "T")
    except UsageError:
        assume(False)  # a literal part ending in "{" before a placeholder: "{{{ vault://"
        return
    placeholders = [s.ref for s in segments if isinstance(s, Placeholder)]
    assume(placeholders == [p for p in parts if isinstance(p, Ref)])
    assert render_template(segments, _values(*placeholders), "T") == expected


@settings(RELAXED, max_examples=500)
@given(st.binary(max_size=400))
def test_bytes_without_a_placeholder_pass_through(data: bytes) -> None:
    assume(not _opens(data))
    assert render_template(parse_template(data, "T"), {}, "T") == data


@settings(RELAXED, max_examples=500)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_any_bytes_around_an_opening_fill_or_name_a_line(before: bytes, after: bytes) -> None:
    data = before + b"{{ vault://" + after
    segments, error = _outcome(parse_template, data, "T")
    if error is not None:
        assert isinstance(error, UsageError)
        assert re.match(r"T:\d+: ", error.message), error.message
        return
    assert segments is not None
    refs_ = [s.ref for s in segments if isinstance(s, Placeholder)]
    assert refs_
    literal_bytes = b"".join(s for s in segments if isinstance(s, bytes))
    assert len(literal_bytes) < len(data)
