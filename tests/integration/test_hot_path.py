"""What keeps `vault token` fast, held to its contract: the hand parser agrees with argparse,
the light record classes behave as the dataclasses they replace, the command imports nothing
it does not need, and the audit mark kept with the key lags only behind successful uses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VaultCLI, keyring_package
from vault.audit import chain as audit_module
from vault.audit.chain import AuditLog, Hwm, make_event, read_lines, verify
from vault.audit.report import lines_with
from vault.cli.parser import parse
from vault.cli.run import _parse_fast
from vault.errors import IntegrityError, UsageError
from vault.keys.passphrase import derive_key
from vault.secret import Secret
from vault.store.vault import MARK_INTERVAL, _mark_can_wait
from vault.util.record import FrozenInstanceError, asdict, datarecord, field, replace

TOKEN = "ghp_" + "Q9w8E7r6T5" * 3 + "abcdef"


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "gh"],
        ["token", "gh", "--min-valid", "30"],
        ["token", "--min-valid=30", "gh"],
        ["token", "gh", "--passphrase-file", "/x/p"],
        ["token", "--passphrase-file=/x/p", "gh", "--min-valid", "0"],
        ["token", "gh", "--min-valid", "-5"],
        ["token", "gh", "--min-valid", "7", "--min-valid", "9"],
        ["token"],  # the default token
        ["token", "--min-valid", "30"],
    ],
)
def test_token_parser_agrees_with_argparse(argv: list[str]) -> None:
    fast = _parse_fast(argv)
    full = parse(argv)
    assert fast is not None
    assert fast.name == full.name
    assert fast.min_valid == full.min_valid
    assert getattr(fast, "passphrase_file", None) == getattr(full, "passphrase_file", None)
    assert fast.handler == full.handler


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "a", "b"],
        ["token", "gh", "--min-valid"],
        ["token", "gh", "--min-valid", "x"],
        ["token", "gh", "--min-valid", "٣"],  # a digit to str.isdigit, not to argparse's int()
        ["token", "gh", "-v"],
        ["token", "gh", "--debug"],
        ["token", "--help"],
        ["token", "gh", "--bogus"],
        ["list"],
    ],
)
def test_anything_unusual_goes_to_argparse(argv: list[str]) -> None:
    assert _parse_fast(argv) is None


def test_argparse_still_reports_the_mistakes() -> None:
    with pytest.raises(UsageError, match="--min-valid"):
        parse(["token", "gh", "--min-valid", "x"])


@datarecord(frozen=True)
class _Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@datarecord(frozen=True)
class _Pair:
    a: int
    b: int


@datarecord
class _Checked:
    n: int
    seen: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("negative")


def test_datarecord_behaves_like_a_dataclass() -> None:
    p = _Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, [])
    assert _Point(1, 2) == _Point(x=1, y=2)
    assert _Point(1) != _Point(2)
    assert repr(_Point(1, 2, ["a"])) == "_Point(x=1, y=2, tags=['a'])"
    assert _Point(1).tags is not _Point(1).tags  # a fresh default per instance
    with pytest.raises(FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y
    assert len({_Pair(1, 2), _Pair(1, 2), _Pair(2, 1)}) == 2  # frozen: hashable by value
    assert replace(p, y=5) == _Point(1, 5)
    assert asdict(_Point(1, 2)) == {"x": 1, "y": 2, "tags": []}
    with pytest.raises(TypeError):
        replace(p, z=1)
    with pytest.raises(TypeError):
        _Point()  # type: ignore[call-arg]


def test_datarecord_mutable_runs_post_init_and_is_unhashable() -> None:
    c = _Checked(1)
    c.n = 2
    assert c == _Checked(2)
    with pytest.raises(TypeError):
        hash(c)
    with pytest.raises(ValueError, match="negative"):
        _Checked(-1)
    with pytest.raises(ValueError, match="negative"):
        replace(c, n=-1)  # replace builds through __init__, checks included


def test_datarecord_refuses_a_required_field_after_a_default() -> None:
    with pytest.raises(TypeError, match="without a default"):

        @datarecord
        class _Bad:
            a: int = 0
            b: int  # type: ignore[misc]


# Modules `vault token` must never pay for.
HEAVY = (
    "argparse",
    "dataclasses",
    "inspect",
    "httpx",
    "structlog",
    "yaml",
    "keyring",
    "secretstorage",
    "jeepney",
    "typing",
    "hashlib",
    "hmac",
    "_hashlib",
    "argon2",
    "datetime",
    "vault.util.redact",
    "vault.util.log",
    "vault.login.oauth",
    "vault.cli.parser",
    "cryptography.hazmat.primitives.ciphers",
    "cryptography.hazmat.decrepit",
    "cryptography.hazmat.primitives.asymmetric",
    "cryptography.hazmat.primitives.kdf",
    "cryptography.hazmat.primitives.hashes",
    "cryptography.hazmat.primitives.padding",
    "cryptography.hazmat.primitives.serialization",
    "secrets",
    "random",
)


def test_vault_token_imports_nothing_heavy(vault: VaultCLI) -> None:
    """Not even cryptography's cipher package (and the ``typing`` it imports): the Secret
    Service session's AES-CBC goes through the system's libcrypto (vault.keys.sscrypto)."""
    assert vault.run("import", "gh", "--provider", "github", input=TOKEN).returncode == 0
    loaded = _token_path_modules(vault)
    assert "vault.store.vault" in loaded  # the probe saw the command's modules
    assert "vault.keys.sscrypto" in loaded  # the session was encrypted
    assert "cipher:libcrypto" in loaded  # and its cipher chosen in the command
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert sorted(heavy) == []


def _token_path_modules(cli: VaultCLI) -> set[str]:
    """The modules `vault token gh` loaded in a process of its own, and ``cipher:...``: how
    the Secret Service session's AES-CBC was done, if it was."""
    code = (
        "import sys\n"
        "from vault.cli.main import main\n"
        "code = main(['token', 'gh'])\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
        "ss = sys.modules.get('vault.keys.sscrypto')\n"
        "lib = ss and ss._CHOICE and ss._CHOICE[0]\n"
        "print('cipher:libcrypto' if lib else 'cipher:other', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=cli.full_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == TOKEN + "\n"
    return set(proc.stderr.split())


def test_datarecord_only_in_modules_vault_token_imports(vault: VaultCLI, tmp_path: Path) -> None:
    """`datarecord` exists for start-up time: a module `vault token` never imports (on the
    keyring or the passphrase backend) has no reason to use it instead of dataclasses."""
    import vault as package

    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    pw.chmod(0o600)
    passphrase = VaultCLI(
        tmp_path / "pp",
        {
            "VAULT_KEY_BACKEND": "passphrase",
            "VAULT_PASSPHRASE_FILE": str(pw),
            "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
        },
    )
    loaded: set[str] = set()
    for cli in (vault, passphrase):
        assert cli.run("import", "gh", "--provider", "github", input=TOKEN).returncode == 0
        loaded |= _token_path_modules(cli)
    root = Path(package.__file__).parent
    users = {
        "vault." + ".".join(path.relative_to(root).with_suffix("").parts)
        for path in root.rglob("*.py")
        if re.search(r"^@datarecord\b", path.read_text(), re.MULTILINE)
    }
    assert "vault.store.model" in users  # the scan sees the decorator where it is
    assert "vault.keys.passphrase" in loaded  # the passphrase run reached its backend
    assert sorted(users - loaded) == []


def test_the_fast_aesgcm_is_cryptographys_own() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from vault.store.format import aesgcm

    assert aesgcm() is AESGCM


def _event(kind: str, outcome: str = "success") -> dict[str, Any]:
    return {"event": kind, "outcome": outcome}


def test_mark_waits_only_after_successful_uses() -> None:
    saved = Hwm(seq=10, mac="ab" * 32, at=1_000_000)
    now = 1_000_000 + MARK_INTERVAL - 1
    assert _mark_can_wait([_event("used")], saved, now)
    assert _mark_can_wait([_event("used"), _event("used")], saved, now)
    assert not _mark_can_wait([_event("used", "failure")], saved, now)  # a refusal
    assert not _mark_can_wait([_event("denied", "failure")], saved, now)
    assert not _mark_can_wait([_event("used"), _event("refreshed")], saved, now)
    assert not _mark_can_wait([_event("used")], saved, 1_000_000 + MARK_INTERVAL)  # due
    assert not _mark_can_wait([_event("used")], saved, 1_000_000 - 1)  # the clock went back


def _keyring_mark(vault: VaultCLI) -> dict[str, Any]:
    entry = keyring_package(vault, "print(k.get_password('vault', vault_id))")
    mark: dict[str, Any] = json.loads(entry)["extra"]["audit"]
    return mark


def _last_seq(vault: VaultCLI) -> int:
    lines = (vault.home / "audit.jsonl").read_text().splitlines()
    seq: int = json.loads(lines[-1])["seq"]
    return seq


def test_uses_leave_the_mark_and_everything_else_moves_it(vault: VaultCLI) -> None:
    assert vault.run("import", "gh", "--provider", "github", input=TOKEN).returncode == 0
    after_import = _keyring_mark(vault)
    assert after_import["seq"] == _last_seq(vault) == 1
    for _ in range(3):
        assert vault.run("token", "gh").returncode == 0
    assert _last_seq(vault) == 4
    assert _keyring_mark(vault) == after_import  # three uses, no keyring write
    assert vault.run("audit", "verify").returncode == 0  # a log ahead of its mark is fine
    assert vault.run("token", "missing").returncode != 0  # a failed use moves it
    assert _keyring_mark(vault)["seq"] == _last_seq(vault) == 5
    assert vault.run("logout", "gh").returncode == 0
    assert _keyring_mark(vault)["seq"] == _last_seq(vault) == 6
    # Whatever the mark has seen cannot be cut off the log unnoticed.
    path = vault.home / "audit.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    assert vault.run("audit", "verify").returncode == 6


@given(
    lines=st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=30),
    torn=st.binary(max_size=20).filter(lambda b: b"\n" not in b),
    block=st.integers(min_value=1, max_value=64),
    needle=st.binary(min_size=1, max_size=3).filter(lambda b: b"\n" not in b),
)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_block_readers_see_the_lines_a_split_sees(
    tmp_path: Path, lines: list[bytes], torn: bytes, block: int, needle: bytes
) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"".join(line + b"\n" for line in lines) + torn)
    path.chmod(0o600)  # the readers check a log file as the log itself is checked
    ending = [b"?"]
    assert list(read_lines(path, ending, block)) == lines
    assert ending == [torn]
    assert list(lines_with(path, needle, block)) == [line for line in lines if needle in line]


@pytest.mark.parametrize(
    ("t_cost", "m_cost", "parallelism", "salt"),
    [(1, 8, 1, b"s" * 8), (3, 1024, 4, b"\x00" * 16), (2, 4096, 2, bytes(range(32)))],
)
def test_derive_key_is_argon2id_as_argon2_cffi_computes_it(
    t_cost: int, m_cost: int, parallelism: int, salt: bytes
) -> None:
    from argon2.low_level import Type, hash_secret_raw

    secret = Secret("pass phrase ∂ with unicode")
    expected = hash_secret_raw(
        secret.reveal().encode(), salt, t_cost, m_cost, parallelism, 32, Type.ID
    )
    got = derive_key(secret, salt=salt, t_cost=t_cost, m_cost=m_cost, parallelism=parallelism)
    assert got == expected


def test_derive_key_reports_what_argon2_refuses() -> None:
    with pytest.raises(IntegrityError, match="Argon2"):
        derive_key(Secret("x"), salt=b"short", t_cost=1, m_cost=8, parallelism=1)


def _tampered_logs(tmp_path: Path) -> tuple[AuditLog, Hwm, list[Path]]:
    folder = tmp_path / "log"
    folder.mkdir(mode=0o700)
    log = AuditLog(folder / "audit.jsonl", b"k" * 32, max_bytes=40_000)
    hwm = Hwm()
    for i in range(30):
        batch = [make_event("used", name=f"t{i}-{j}", command="token") for j in range(10)]
        hwm, _ = log.append(batch, hwm)
    files = log.files()
    assert len(files) >= 3  # rotated: ranges and files both cross
    return log, hwm, files


@pytest.mark.parametrize(
    "damage", ["none", "edit", "delete", "swap", "torn", "truncate", "archive gone", "garbage"]
)
def test_parallel_verify_agrees_with_the_walk_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    log, hwm, files = _tampered_logs(tmp_path)
    current = files[-1]
    archive = files[1]
    lines = archive.read_bytes().splitlines(keepends=True)
    if damage == "edit":
        archive.write_bytes(b"".join([*lines[:5], lines[5].replace(b"t", b"T", 1), *lines[6:]]))
    elif damage == "delete":
        archive.write_bytes(b"".join([*lines[:5], *lines[6:]]))
    elif damage == "swap":
        archive.write_bytes(b"".join([*lines[:5], lines[6], lines[5], *lines[7:]]))
    elif damage == "torn":
        with current.open("ab") as fh:
            fh.write(b'{"v":1,"seq":')
    elif damage == "truncate":
        current_lines = current.read_bytes().splitlines(keepends=True)
        current.write_bytes(b"".join(current_lines[:-3]))
    elif damage == "archive gone":
        archive.unlink()
    elif damage == "garbage":
        archive.write_bytes(b"".join([*lines[:5], b"hello\n", *lines[5:]]))
    in_order = verify(log, hwm, workers=1)
    monkeypatch.setattr(audit_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(audit_module, "RANGE_BYTES", 3000)
    assert verify(log, hwm, workers=3) == in_order
    assert in_order.ok is (damage in ("none", "torn"))
    # The fast path really ran (and did not just fall back) where the log is whole.
    fast = audit_module._walk_parallel(log.files(), audit_module.chain_key(log.audit_key), 3)
    chain_whole = damage in ("none", "torn", "truncate")  # truncation: the mark tells
    assert (fast is not None) is chain_whole
    if fast is not None:
        assert fast[0] == in_order.records >= 300 - 3 * (damage == "truncate")
