"""Property tests (hypothesis) and bounded atheris runs over everything vault reads from disk:
vault files, the decrypted payload, audit logs, policies and config.yaml.

The property is always: the reading code returns, or raises one of the project's own errors
(``VaultError``), and never hangs. The audit log has a stronger one: a changed log never
verifies. The targets themselves are in tests/fuzz/targets.py, shared with the atheris
harnesses (``python -m tests.fuzz.<target> -runs=N``), which the last tests run as subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import VaultCLI
from tests.fuzz import targets
from tests.fuzz.targets import AuditFiles, ConfigFiles, VaultFiles, sealed, valid_payload
from vault.audit.chain import Hwm
from vault.errors import IntegrityError
from vault.store import format as fmt
from vault.store.model import PAYLOAD_MAGIC, Meta, TokenRecord, split_payload

REPO = Path(__file__).resolve().parents[2]
FUZZ = settings(
    max_examples=250,
    deadline=timedelta(seconds=5),  # generous (2 shared cores); a hang is caught below
    # no_hang is per test, not per example, on purpose
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


class Hang(BaseException):
    """Raised by SIGALRM: not an Exception, so no `except Exception` in vault swallows it."""


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang("the reading code did not return within 60 s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 60)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def vaults(scratch: Path) -> VaultFiles:
    return VaultFiles(scratch / "vault")


@pytest.fixture(scope="module")
def logs(scratch: Path) -> AuditFiles:
    return AuditFiles(scratch / "audit")


@pytest.fixture(scope="module")
def configs(scratch: Path) -> ConfigFiles:
    return ConfigFiles(scratch / "config")


# --- strategies --------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
# With every optional field present (a token needing a new login), so that each is fuzzed.
RECORD_DOC = {
    **json.loads(targets.record("x").to_json()),
    "needs_login": {"cause": "invalid_grant", "reason": "refused", "at": 1_700_000_000},
}
META_DOC = json.loads(Meta(targets.AUDIT_KEY, targets.STATE_KEY, 1).to_json())


@st.composite
def mutations(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few bits flipped, bytes overwritten, inserted or cut."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


def _line(name: bytes, raw: bytes) -> bytes:
    return name + b"\t" + raw + b"\n"


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """Decrypted payloads: random, mutated, and well-formed lines whose JSON (meta or record)
    has one field replaced by any JSON value, or is any JSON at all. Names are UTF-8 text
    (bytes that are not UTF-8 are a known bug: see test_known_bug)."""
    kind = draw(st.sampled_from(["random", "magic+random", "mutated", "fields"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "magic+random":
        return PAYLOAD_MAGIC + draw(st.binary(max_size=300))
    if kind == "mutated":
        return draw(mutations(valid_payload()))
    meta = dict(META_DOC)
    if draw(st.booleans()):
        meta[draw(st.sampled_from([*META_DOC, "x"]))] = draw(JSON)
    out = PAYLOAD_MAGIC + _line(b"#meta", json.dumps(meta).encode())
    names = st.text(st.characters(codec="utf-8", exclude_characters="\t\n"), max_size=12)
    for _ in range(draw(st.integers(0, 3))):
        doc: object = dict(RECORD_DOC)
        if draw(st.booleans()):
            assert isinstance(doc, dict)
            doc[draw(st.sampled_from([*RECORD_DOC, "extra"]))] = draw(JSON)
        else:
            doc = draw(JSON)
        out += _line(draw(names).encode(), json.dumps(doc).encode())
    return out


YAML_BITS = [
    "version: 1\n", "max_token_age: 8h\n", "allowed_scopes: [", "]", "{", "}", ": ", "- ",
    "&a ", "*a", "!!python/object:os.system ", "!foo ", "!!binary ", "!!int ", "<<: ", "? ",
    "\t", "\n", "  ", "'", '"', "# c\n", "---\n", "...\n", "%YAML 1.1\n", "0x", "1e9", "~",
    "null", "providers:\n  gh:\n    ", "storage:\n  key_backends: [", "tokens:\n  ", "\ufeff",
    "\x00", "\x1b[2J", "\u202e", "9" * 30, "[" * 40, "key_backend: passphrase\n", "audit:\n  ",
]  # fmt: skip


# A small YAML grammar: the schema's keys, every tag, hostile scalars, block and flow style.
YAML_KEYS = [
    "version", "max_token_age", "allowed_scopes", "denied_scopes", "allowed_issuers", "storage",
    "key_backends", "vault_dirs", "tokens", "print_to_terminal", "providers", "github",
    "key_backend", "audit", "max_bytes", "syslog", "format", "tls_ca", "tls_pin", "issuer",
    "registries", "terraform", "token", "username",
    "client_id", "scopes", "<<", "1",
]  # fmt: skip
YAML_TAGS = [
    "", "", "", "!!int ", "!!float ", "!!bool ", "!!str ", "!!null ", "!!binary ", "!!timestamp ",
    "!!map ", "!!seq ", "!!set ", "!foo ", "!!python/object:os.system ", "&a ", "*a ",
]  # fmt: skip
YAML_SCALARS = [
    "1", "0", "-1", "abc", "'x y'", '"\\x1b[2J"', '"\\u202e"', "null", "~", "true", "maybe",
    "8h", "1d12h", "0h", "1e999", ".nan", "2024-01-01", "1:2:3", "0o17", "0b101",
    "@NINES@", "0x@EFS@", "@NINES@h", "@DEEP@",
    "keyring", "passphrase", "https://idp.example.com", "'*'", "openid",
]  # fmt: skip
# Long scalars stand in as short names (a strategy's repr holds its values), expanded last.
BIG = {"@NINES@": "9" * 5000, "@EFS@": "f" * 5000, "@DEEP@": "[" * 40_000 + "]" * 40_000}
_SCALAR = st.builds("{}{}".format, st.sampled_from(YAML_TAGS), st.sampled_from(YAML_SCALARS))
_NODE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from(YAML_KEYS), inner), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=8,
)


@st.composite
def yaml_docs(draw: st.DrawFn) -> str:
    lines = ["version: 1"] if draw(st.booleans()) else []
    for key, value in draw(st.lists(st.tuples(st.sampled_from(YAML_KEYS), _NODE), max_size=5)):
        lines.append(f"{draw(st.sampled_from([*YAML_TAGS[:3], '&b ']))}{key}: {value}")
    text = "\n".join(lines) + "\n"
    for name, big in BIG.items():
        text = text.replace(name, big)
    return text


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["text", "soup", "grammar", "grammar", "mutated"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "soup":
        return "".join(draw(st.lists(st.sampled_from(YAML_BITS), max_size=30)))
    if kind == "grammar":
        return draw(yaml_docs())
    shipped = sorted((REPO / "policies").glob("*.yaml"))
    base = draw(st.sampled_from(shipped)).read_bytes()
    return draw(mutations(base)).decode("utf-8", "replace")


# --- vault files ------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(lambda b: fmt.MAGIC + b)))
def test_vault_file_random_bytes(vaults: VaultFiles, blob: bytes) -> None:
    vaults.read(blob)


@FUZZ
@given(mutations(sealed(valid_payload())))
def test_vault_file_changed_anywhere_is_refused(vaults: VaultFiles, blob: bytes) -> None:
    """Any change to a valid file (header, ciphertext, tag, length) is refused: every header
    byte is associated data of the AEAD."""
    write = vaults.paths.vault_file
    targets.write_private(write, blob)
    if blob == sealed(valid_payload()):
        assert vaults.store.read() is not None
        return
    with pytest.raises(IntegrityError):
        vaults.store.read()


@FUZZ
@given(payloads())
def test_vault_file_with_a_garbage_payload(vaults: VaultFiles, payload: bytes) -> None:
    """A payload that passes authentication (sealed with the right key) but is garbage."""
    vaults.read(sealed(payload))


# --- the decrypted payload -------------------------------------------------------------------


@FUZZ
@given(payloads())
def test_payload_parser(payload: bytes) -> None:
    targets.parse_payload(payload)


@FUZZ
@given(st.sampled_from(sorted(RECORD_DOC)), JSON)
def test_record_field_of_any_type(field: str, value: object) -> None:
    """Each field of a stored record, replaced by each kind of JSON value."""
    doc = {**RECORD_DOC, field: value}
    targets.expect_vault_errors(lambda: TokenRecord.from_json("x", json.dumps(doc).encode()))


# --- audit logs -------------------------------------------------------------------------------


@st.composite
def changed_logs(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    """A valid log with records deleted, duplicated, reordered, edited, cut, or foreign lines
    (random JSON, random bytes) inserted."""
    out = list(lines)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "edit", "insert", "cut"]))
        at = draw(st.integers(0, max(0, len(out) - 1)))
        if op == "delete" and out:
            del out[at]
        elif op == "duplicate" and out:
            out.insert(draw(st.integers(0, len(out))), out[at])
        elif op == "swap" and len(out) > 1:
            other = draw(st.integers(0, len(out) - 1))
            out[at], out[other] = out[other], out[at]
        elif op == "edit" and out:
            out[at] = draw(mutations(out[at]))
        elif op == "insert":
            foreign = draw(st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary()))
            out.insert(at, foreign + b"\n")
        else:
            data = b"".join(out)
            return data[: draw(st.integers(0, len(data)))]
    return b"".join(out)


@FUZZ
@given(data=st.data())
def test_changed_audit_log_never_verifies(logs: AuditFiles, data: st.DataObject) -> None:
    log = data.draw(changed_logs(logs.lines()))
    ok = logs.verify(log)
    if ok:
        assert logs.is_valid_or_torn(log), "a changed audit log verified as intact"


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=600),
        st.lists(JSON).map(lambda docs: b"".join(json.dumps(d).encode() + b"\n" for d in docs)),
    )
)
def test_random_audit_log(logs: AuditFiles, log: bytes) -> None:  # fmt: skip
    """Random bytes or random JSON lines: never verify against the high-water mark of six
    records, and against none (a fresh vault) only when they hold no complete line."""
    assert not logs.verify(log)
    if logs.verify(log, Hwm()):
        assert b"\n" not in log


# --- YAML, policies, config -----------------------------------------------------------------


@FUZZ
@given(yaml_texts())
@example("version: !!int\n")  # found by hypothesis: IndexError in PyYAML's int constructor
@example("version: !!float 0b101\n")  # found by hypothesis: ValueError
def test_yaml_and_policy_text(configs: ConfigFiles, text: str) -> None:
    configs.parse_text(text)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b""]).flatmap(
            lambda bom: yaml_texts().map(lambda t: bom + t.encode("utf-8", "surrogatepass"))
        ),
    )
)
def test_policy_and_config_files(configs: ConfigFiles, data: bytes) -> None:
    configs.read_bytes(data)


# --- crash inputs found so far, and the bugs still open -----------------------------------------

REGRESSIONS = sorted((REPO / "tests" / "fuzz" / "regressions").glob("*/*.bin"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fuzz_regression(scratch: Path, path: Path) -> None:
    """Inputs that once failed a harness (tests/fuzz/regressions/TARGET/NAME.bin), replayed
    through that target as the harness feeds it."""
    one_input = targets.make_one_input(path.parent.name, scratch / "replay" / path.stem)
    one_input(path.read_bytes())


META_LINE = PAYLOAD_MAGIC + _line(b"#meta", json.dumps(META_DOC).encode())
DEEP = b"[" * 100_000 + b"]" * 100_000


def _payload_name_not_utf8() -> None:
    split_payload(META_LINE + _line(b"\xff\xfe", b'{"access_token": "x"}'))


def _record_nested_too_deeply() -> None:
    TokenRecord.from_json("a", DEEP)


MALFORMED_PAYLOADS = {
    "payload name not UTF-8": _payload_name_not_utf8,  # once a UnicodeDecodeError (exit 1)
    "record nested too deeply": _record_nested_too_deeply,  # once a RecursionError (exit 1)
}


@pytest.mark.parametrize("case", list(MALFORMED_PAYLOADS))
def test_malformed_payload_is_an_integrity_error(case: str) -> None:
    """A payload that passed authentication but is malformed must be an IntegrityError (exit 6)
    like every other malformed payload (both cases were found by the fuzzers)."""
    with pytest.raises(IntegrityError):
        MALFORMED_PAYLOADS[case]()


def test_no_known_bugs_are_stepped_over() -> None:
    """The fuzzers step over targets.KNOWN_BUGS; each entry needs a strict xfail here. None is
    open now: a new entry must come with its pinned test."""
    assert targets.KNOWN_BUGS == ()


@pytest.mark.parametrize(
    "line", [b"[1, 2]\n", b"[" * 100_000 + b"]" * 100_000 + b"\n"], ids=["array", "deep"]
)
def test_audit_show_skips_lines_that_are_not_records(vault: VaultCLI, line: bytes) -> None:
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    with open(vault.home / "audit.jsonl", "ab") as fh:
        fh.write(line)
    for args in (["audit", "show"], ["audit", "report", "--json"]):
        r = vault.run(*args)
        assert "internal error" not in r.stderr, r
        assert r.returncode == 0, r


# --- atheris ----------------------------------------------------------------------------------

# A few seconds each here (measured at 60k runs: payload ~20000 exec/s, audit_log ~4300,
# vault_file ~3500, policy_yaml ~1200); VAULT_FUZZ_RUNS=N runs every harness N times instead.
ATHERIS_RUNS = {"payload": 20_000, "vault_file": 8_000, "audit_log": 8_000, "policy_yaml": 4_000}


@pytest.fixture
def fast_scratch(tmp_path: Path) -> Iterator[Path]:
    """A scratch folder for the harness's files: in /dev/shm where there is one (truncating a
    file on this ext4 with `discard` costs 0.2 ms, a third of an execution), removed after."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="vault-fuzz-", dir=shm)) if shm.is_dir() else tmp_path
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("target", targets.TARGETS)
def test_atheris_harness(
    target: str,
    tmp_path: Path,
    fast_scratch: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """Each harness, a bounded number of runs from its seeds, ends cleanly (a crash would leave
    its input in tmp_path: save it under tests/fuzz/regressions/TARGET/)."""
    pytest.importorskip("atheris")
    runs = int(os.environ.get("VAULT_FUZZ_RUNS") or ATHERIS_RUNS[target])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            f"tests.fuzz.{target}",
            f"-runs={runs}",
            "-max_len=4096",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=REPO,
        env={**os.environ, "VAULT_FUZZ_TMP": str(fast_scratch)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - start
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert f"Done {runs} runs" in proc.stderr, tail
    assert not list(tmp_path.glob("crash-*")), tail
    seeded = re.search(r"seed corpus: files: (\d+)", proc.stderr)
    assert seeded is not None, tail
    assert int(seeded.group(1)) >= len(targets.seeds(target)), tail
    coverage = re.findall(r"DONE\s+cov: (\d+)", proc.stderr)
    record_property("runs", runs)
    record_property("seconds", round(elapsed, 2))
    record_property("exec_per_s", round(runs / elapsed))
    record_property("coverage", int(coverage[-1]) if coverage else None)
    print(f"{target}: {runs} runs in {elapsed:.1f} s ({runs / elapsed:.0f} exec/s)")
