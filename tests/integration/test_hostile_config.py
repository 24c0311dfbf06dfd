"""Malicious YAML in config.yaml and policies, hostile values in config.yaml, and hostile paths
for every place vault reads or keeps a file (config, user and system policies, the vault
folder, vault file, key file, lock and audit log).

Each case ends in a clear one-line error with the documented exit code (3 for config and
policies, 6 for the vault's own files), no traceback, within seconds (never a hang), and
nothing changed: the vault file and the audit log keep their exact bytes.

Covered elsewhere, so not here: a loose vault file or folder, a symlinked or hard-linked vault
file, a vault file of another owner (tests/integration/test_keyring_and_paths.py); a loose system
policy or
system policy folder, a policy over 64 KiB, and one case each of unknown key, bad duration, tag,
alias and duplicate key in a policy (tests/integration/test_policy.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result, SecretService, VaultCLI
from tests.fuzz.targets import private_dir
from vault.errors import ConfigError
from vault.fs import paths as _paths
from vault.policy import config as _config
from vault.policy.rules import MAX_POLICY_BYTES, read_policy

CONFIG_LIMIT = 256 * 1024
ESCAPES = ("\x1b", "\x07", "\x00", "\u202e", "\x9b")
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="changing a file's owner needs root")


@dataclass(frozen=True)
class Bad:
    """A file's content (``KEY`` stands for a key the schema knows: ``version`` in a policy,
    ``key_backend`` in config.yaml), the words the error must hold (None: whichever layer refuses
    it, ours or the YAML library's, may word it), and the line it must name."""

    text: str | bytes
    fragment: str | None
    line: int | None = None
    only: str | None = None  # "config" or "policy" when the case fits one of them only
    exe: bool = False  # also through the executable


def _billion_laughs() -> str:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, 10):
        refs = ", ".join(f"*lol{i - 1}" for _ in range(9))
        lines.append(f"lol{i}: &lol{i} [{refs}]")
    return "\n".join(lines) + "\nKEY: *lol9\n"


def _deep_block(levels: int) -> str:
    return "".join("  " * i + "a:\n" for i in range(levels)) + "  " * levels + "KEY: 1\n"


# 32000 brackets each way fit in a policy's 64 KiB: libyaml's composer recursed that deep in C
# and crashed the process (SIGSEGV) before vault.policy.safe_yaml walked the event stream first.
DEEP_POLICY = 32_000
DEEP_CONFIG = 50_000  # "{a: " 50000 times: 250 KB, under the 256 KiB limit

BAD: dict[str, Bad] = {
    "python object tag": Bad(
        "KEY: !!python/object/apply:os.system ['touch MARKER']\n", "is not allowed", 1, exe=True
    ),
    "python name tag": Bad("KEY: !!python/name:os.system\n", "is not allowed", 1),
    "local tag": Bad("KEY: !foo 1\n", "the YAML tag '!foo' is not allowed", 1),
    "verbatim tag": Bad(
        "KEY: !<tag:yaml.org,2002:python/object:os.system> {}\n", "is not allowed", 1
    ),
    "TAG directive": Bad(
        "%TAG !x! tag:yaml.org,2002:python/\n---\nKEY: !x!object:os.system {}\n",
        "is not allowed",
        3,
        exe=True,
    ),
    "binary tag": Bad("KEY: !!binary aGVsbG8=\n", "tag:yaml.org,2002:binary", 1),
    "set tag": Bad("KEY: !!set {a, b}\n", "tag:yaml.org,2002:set", 1),
    "omap tag": Bad("KEY: !!omap [a: 1]\n", "tag:yaml.org,2002:omap", 1),
    "implicit timestamp": Bad("KEY: 2024-01-01\n", "tag:yaml.org,2002:timestamp", 1),
    "anchor alone": Bad("KEY: &v keyring\n", "anchors and aliases are not allowed", 1, exe=True),
    "alias": Bad("a: &a x\nKEY: *a\n", "anchors and aliases are not allowed", 1),
    "billion laughs": Bad(_billion_laughs(), "anchors and aliases are not allowed", 1, exe=True),
    "merge key": Bad("KEY: {<<: {x: 1}}\n", "merge keys are not allowed", 1),
    "deep flow nesting": Bad(
        "KEY: " + "[" * DEEP_POLICY + "]" * DEEP_POLICY + "\n", None, 1, exe=True
    ),
    "deep flow nesting (config)": Bad(
        "KEY: " + "{a: " * DEEP_CONFIG + "1" + "}" * DEEP_CONFIG + "\n",
        None,
        1,
        only="config",
        exe=True,
    ),
    "deep block nesting": Bad(_deep_block(40), None),
    "many nodes": Bad(
        "KEY: [" + "1," * 110_000 + "1]\n", "document too large", 1, only="config", exe=True
    ),
    "duplicate key": Bad("KEY: 1\nKEY: 2\n", "duplicate key", 2),
    "duplicate key, other quoting": Bad("KEY: 1\n'KEY': 2\n", "duplicate key", 2, exe=True),
    "duplicate nested key": Bad("a:\n  x: 1\n  x: 2\n", "duplicate key 'x'", 3),
    "complex key": Bad("? [a, b]\n: 1\n", "keys must be strings", 1),
    "number key": Bad("1: x\n", "keys must be strings", 1),
    "null key": Bad("~: x\n", "keys must be strings", 1),
    "huge integer": Bad("KEY: " + "9" * 5000 + "\n", "cannot read the value", 1, exe=True),
    "huge hex integer": Bad("KEY: 0x" + "f" * 5000 + "\n", "is too large", 1),
    "bad !!int": Bad("KEY: !!int abc\n", "cannot read the value 'abc'", 1, exe=True),
    "bad !!bool": Bad("KEY: !!bool maybe\n", "cannot read the value 'maybe'", 1),
    "bad !!float": Bad("KEY: !!float 0b101\n", "cannot read the value", 1),
    "empty !!int": Bad("KEY: !!int\n", "cannot read the value ''", 1, exe=True),
    "huge duration": Bad(
        "version: 1\nmax_token_age: " + "9" * 5000 + "h\n", "is not a duration", 2, "policy"
    ),
    "NUL byte": Bad("KEY: 1\x00\n", "not valid YAML"),
    "bell": Bad("KEY: a\x07\n", "not valid YAML", exe=True),
    "escapes in a key": Bad('"\\e[2J\\e]8;;https://evil/\\e\\\\": 1\n', "unknown key", 1, exe=True),
    "bidi override in a key": Bad('"KEY\\u202e": 1\n', "unknown key", 1),
    "tab indentation": Bad("a:\n\tb: 1\n", "not valid YAML", 2),
    "two documents": Bad("KEY: 1\n---\nKEY: 1\n", "not valid YAML", 2),
    "unterminated": Bad("KEY: [1, 2\n", "not valid YAML"),
    "surrogate escape": Bad('KEY: "\\ud800"\n', "not valid YAML", 1),
    "latin-1": Bad(b"KEY: caf\xe9\n", "is not UTF-8 (byte ", exe=True),
    "UTF-16 with BOM": Bad("KEY: keyring\n".encode("utf-16"), "is not UTF-8 (byte 0)"),
    "UTF-32 with BOM": Bad("KEY: keyring\n".encode("utf-32"), "is not UTF-8"),
    "a scalar": Bad("just a string\n", "must be a mapping"),
    "a list": Bad("- KEY\n", "must be a mapping"),
    "over the policy limit": Bad(
        "version: 1\n" + "#" * MAX_POLICY_BYTES + "\n", "over the 65536-byte limit", None, "policy"
    ),
    "over the config limit": Bad(
        "key_backend: keyring\n" + "#" * CONFIG_LIMIT + "\n",
        "over the 262144-byte limit",
        None,
        "config",
    ),
}


def _text(case: Bad, kind: str) -> bytes:
    key = "version" if kind == "policy" else "key_backend"
    data = case.text.encode() if isinstance(case.text, str) else case.text
    return data.replace(b"KEY", key.encode())


CASES = [
    (name, kind)
    for name, case in BAD.items()
    for kind in ("config", "policy")
    if case.only in (None, kind)
]


@dataclass
class Place:
    """A VAULT_HOME (0700) whose config.yaml or user policy the case is written to."""

    paths: _paths.Paths

    def path(self, kind: str) -> Path:
        return self.paths.config_file if kind == "config" else self.paths.policy_dir / "p.yaml"

    def write(self, kind: str, data: bytes) -> Path:
        path = self.path(kind)
        private_dir(path.parent)
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def load(self, kind: str) -> object:
        if kind == "config":
            return _config.load(self.paths)
        return read_policy(self.path(kind), system=False)


@pytest.fixture
def place(tmp_path: Path) -> Place:
    return Place(_paths.resolve({"VAULT_HOME": str(private_dir(tmp_path / "vh"))}))


def _fragment(case: Bad, kind: str) -> str | None:
    """The words to expect: config.yaml holds secrets, so its YAML errors quote nothing of the
    file (no value, key or tag: "duplicate key", not "duplicate key 'x'"); a policy's do."""
    if case.fragment is None or kind == "policy":
        return case.fragment
    import re

    return re.sub(r" ?'[^']*'", "", case.fragment)


def _check_error(message: str, path: Path, case: Bad, kind: str) -> None:
    fragment = _fragment(case, kind)
    assert fragment is None or fragment in message, message
    assert message.startswith(str(path)), message
    if case.line is not None:
        assert message.startswith(f"{path}:{case.line}:"), message
    assert "\n" not in message
    assert not any(e in message for e in ESCAPES), repr(message)


@pytest.mark.timeout(60)  # a hostile document must be refused, not worked through for ever
@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{k}: {n}" for n, k in CASES])
def test_bad_yaml_in_process(place: Place, tmp_path: Path, name: str, kind: str) -> None:
    case = BAD[name]
    path = place.write(kind, _text(case, kind).replace(b"MARKER", str(tmp_path / "m").encode()))
    with pytest.raises(ConfigError) as info:
        place.load(kind)
    _check_error(info.value.message, path, case, kind)
    assert not (tmp_path / "m").exists()


def test_utf8_bom_is_read_like_no_bom(place: Place) -> None:
    """A UTF-8 BOM (Windows editors write one) is not an error, and lines are still counted
    right."""
    text = "version: 1\nmax_token_age: 8h\n"
    place.write("policy", b"\xef\xbb\xbf" + text.encode())
    with_bom = read_policy(place.path("policy"), system=False)
    assert with_bom.max_token_age is not None
    assert with_bom.max_token_age.value == 8 * 3600
    assert with_bom.max_token_age.source == f"{place.path('policy')}:2"
    place.write("config", b"\xef\xbb\xbfkey_backend: passphrase\n")
    config = _config.load(place.paths)
    assert config.key_backend == "passphrase"
    assert config.key_backend_source == f"{place.paths.config_file}:1"


@pytest.mark.parametrize(
    ("kind", "limit"), [("policy", MAX_POLICY_BYTES), ("config", CONFIG_LIMIT)]
)
def test_a_file_of_exactly_the_limit_is_read(place: Place, kind: str, limit: int) -> None:
    head = b"version: 1\n" if kind == "policy" else b"key_backend: keyring\n"
    place.write(kind, head + b"#" * (limit - len(head) - 1) + b"\n")
    assert place.load(kind) is not None
    place.write(kind, head + b"#" * (limit - len(head)) + b"\n")
    with pytest.raises(ConfigError, match="over the"):
        place.load(kind)


# --- through the executable --------------------------------------------------------------------


@dataclass
class Setup:
    vault: VaultCLI

    def snapshot(self) -> tuple[bytes, bytes]:
        home = self.vault.home
        return (home / "vault.enc").read_bytes(), (home / "audit.jsonl").read_bytes()


@pytest.fixture(scope="module")
def stored(secret_service: SecretService, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """One vault holding one token; each case writes its file, runs, and removes it."""
    vault = VaultCLI(tmp_path_factory.mktemp("config") / "vh", dict(secret_service.env()))
    r = vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa")
    assert r.returncode == 0, r
    return Setup(vault)


def _assert_refused(r: Result, code: int, fragment: str | None = None) -> str:
    """The exit code, one error line (a hint may follow), no traceback, no escape bytes."""
    assert "Traceback" not in r.stderr, r
    assert r.returncode == code, r
    lines = r.stderr.splitlines()
    assert lines, r
    assert lines[0].startswith("vault: error: "), r
    assert all(line.startswith("vault: hint: ") for line in lines[1:]), r
    assert not any(e in r.stderr + r.stdout for e in ESCAPES), r
    if fragment is not None:
        assert fragment in lines[0], r
    return lines[0]


EXE_CASES = [(n, k) for n, k in CASES if BAD[n].exe]


@pytest.mark.parametrize(("name", "kind"), EXE_CASES, ids=[f"{k}: {n}" for n, k in EXE_CASES])
def test_bad_yaml_refuses_every_command(
    stored: Setup, tmp_path: Path, name: str, kind: str
) -> None:
    """Exit 3 for a write (import), and nothing stored or audited."""
    case = BAD[name]
    vault = stored.vault
    path = vault.home / ("config.yaml" if kind == "config" else "policies/p.yaml")
    private_dir(path.parent)
    path.write_bytes(_text(case, kind).replace(b"MARKER", str(tmp_path / "m").encode()))
    path.chmod(0o600)
    before = stored.snapshot()
    try:
        # Refused, not worked through: the subprocess timeout fails the test otherwise.
        r = vault.run("import", "b", "--provider", "github", input="tok-bbbbbbbbbb", timeout=30)
        line = _assert_refused(r, 3, _fragment(case, kind))
        assert line.startswith(f"vault: error: {path}"), r
        assert r.stdout == ""
    finally:
        path.unlink()
    assert stored.snapshot() == before
    assert not (tmp_path / "m").exists()


def test_huge_sparse_files_are_refused_before_reading(stored: Setup) -> None:
    """50 MB config and policy files (sparse: nothing is written) are refused by their size,
    quickly: not read into memory first."""
    vault = stored.vault
    before = stored.snapshot()
    for path, limit in ((vault.home / "config.yaml", CONFIG_LIMIT),
                        (vault.home / "policies" / "big.yaml", MAX_POLICY_BYTES)):  # fmt: skip
        private_dir(path.parent)
        with open(path, "wb") as fh:
            fh.truncate(50 * 1024 * 1024)
        path.chmod(0o600)
        try:
            r = vault.run("list", timeout=30)  # the limit is checked before reading
            _assert_refused(r, 3, f"is 52428800 bytes, over the {limit}-byte limit")
        finally:
            path.unlink()
    assert stored.snapshot() == before


# Values the YAML is fine with but vault must not accept: each is refused at `vault login`
# before anything is contacted (nothing listens at these addresses: exit 7 would mean it tried).
BAD_VALUES: dict[str, tuple[str, str]] = {
    "issuer javascript": ("issuer: 'javascript:alert(1)'", "is not a usable URL"),
    "issuer plain http": ("issuer: http://idp.example.com", "must use https"),
    "issuer credentials": ("issuer: https://user:pw@idp.example.com", "must not carry credentials"),
    "issuer bad IPv6": ("issuer: 'https://[::1'", "is not a usable URL"),
    "issuer bidi": ('issuer: "https://idp.example.com/\\u202eevil"', "is not a usable URL"),
    "issuer escape": ('issuer: "https://idp.example.com/\\e[2J"', "is not a usable URL"),
    "endpoint escape": (
        'preset: github\n    token_endpoint: "https://github.com/\\e]8;;x"',
        "is not a usable URL",
    ),
    "scope with a space": ("issuer: https://idp.example.com\n    scopes: ['a b']", "scopes must"),
    "client_id a list": (
        "issuer: https://idp.example.com\n    client_id: [x]",
        "must be a str, not a list",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_config_values_refused_before_any_contact(stored: Setup, case: str) -> None:
    entry, fragment = BAD_VALUES[case]
    vault = stored.vault
    config = vault.home / "config.yaml"
    client = "" if "client_id" in entry else "\n    client_id: cli"
    config.write_text(f"providers:\n  p:\n    {entry}{client}\n")
    config.chmod(0o600)
    before = stored.snapshot()
    try:
        r = vault.run("login", "p", "--no-browser", "--json", timeout=30)
    finally:
        config.unlink()
    _assert_refused(r, 3, fragment)
    assert stored.snapshot() == before


def test_bad_names_and_numbers_in_config(stored: Setup) -> None:
    vault = stored.vault
    config = vault.home / "config.yaml"
    before = stored.snapshot()
    try:
        for text, fragment in (
            ('providers:\n  "\\e[2J\\u202e": {preset: github}\n', "is not a valid name"),
            ("audit:\n  max_bytes: 1000000000000000000000000000000\n", "is too large"),
            ("audit:\n  max_bytes: -1\n", "at least 4096"),
            ("audit:\n  syslog: [a]\n", "audit.syslog must be a str"),
        ):
            config.write_text(text)
            config.chmod(0o600)
            _assert_refused(vault.run("list"), 3, fragment)
    finally:
        config.unlink()
    assert stored.snapshot() == before


# --- hostile paths ----------------------------------------------------------------------------


@pytest.fixture
def vault_with_token(vault: VaultCLI) -> VaultCLI:
    r = vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa")
    assert r.returncode == 0, r
    return vault


def _snapshot(vault: VaultCLI) -> tuple[bytes, bytes]:
    return (vault.home / "vault.enc").read_bytes(), (vault.home / "audit.jsonl").read_bytes()


def _refused_unchanged(
    vault: VaultCLI,
    code: int,
    fragment: str,
    *,
    args: tuple[str, ...] = ("token", "a"),
    env: dict[str, str] | None = None,
) -> None:
    """Run ``args`` (in 20 s at most: a FIFO must not hang it), expect the refusal, and find the
    vault and audit log exactly as they were."""
    before = _snapshot(vault)
    r = vault.run(*args, env=env, timeout=20)
    _assert_refused(r, code, fragment)
    assert r.stdout == ""  # no token printed
    assert _snapshot(vault) == before


def _fifo(path: Path, mode: int = 0o600) -> None:
    private_dir(path.parent)
    os.mkfifo(path, mode)


Make = Callable[[Path, Path], None]  # (the file's path, tmp_path)


def _symlink_to(target: Callable[[Path], Path]) -> Make:
    def make(path: Path, tmp_path: Path) -> None:
        private_dir(path.parent)
        os.symlink(target(tmp_path), path)

    return make


def _valid(path: Path, mode: int = 0o600) -> None:
    """A valid (empty) config.yaml or policy at ``path``: only its mode or owner can be wrong."""
    private_dir(path.parent)
    path.write_text("" if path.name == "config.yaml" else "version: 1\n")
    path.chmod(mode)


def _loose(mode: int) -> Make:
    return lambda path, tmp_path: _valid(path, mode)


def _a_folder(path: Path, tmp_path: Path) -> None:
    private_dir(path)


def _a_fifo(path: Path, tmp_path: Path) -> None:
    _fifo(path)


def _a_loop(path: Path, tmp_path: Path) -> None:
    private_dir(path.parent)
    os.symlink(path, path)


def _world_writable_file(tmp_path: Path) -> Path:
    target = tmp_path / "shared.yaml"
    target.write_text("version: 1\n")
    target.chmod(0o666)
    return target


# (where, how) -> (make, fragment). `where` is config.yaml or the user policy p.yaml.
CONFIG_PATHS: dict[str, tuple[Make, str]] = {
    "a FIFO": (_a_fifo, "is not a regular file"),
    "a folder": (_a_folder, "is not a regular file"),
    "a symlink to /dev/zero": (_symlink_to(lambda t: Path("/dev/zero")), "not a regular file"),
    "a symlink loop": (_a_loop, "Too many levels of symbolic links"),
    "writable by others": (_loose(0o602), "writable by group or others (mode 0602)"),
    "writable by the group": (_loose(0o620), "writable by group or others (mode 0620)"),
    "a symlink to a world-writable file": (
        _symlink_to(_world_writable_file),
        "writable by group or others",
    ),
}


def _place(vault: VaultCLI, where: str) -> Path:
    return vault.home / ("config.yaml" if where == "config" else "policies/p.yaml")


PATH_CASES = [(w, how) for w in ("config", "policy") for how in CONFIG_PATHS]


@pytest.mark.parametrize(("where", "how"), PATH_CASES, ids=[f"{w} is {h}" for w, h in PATH_CASES])
def test_hostile_config_and_policy_paths(
    vault_with_token: VaultCLI, tmp_path: Path, where: str, how: str
) -> None:
    make, fragment = CONFIG_PATHS[how]
    path = _place(vault_with_token, where)
    make(path, tmp_path)
    _refused_unchanged(vault_with_token, 3, fragment)


def test_dangling_policy_symlink_denies(vault_with_token: VaultCLI, tmp_path: Path) -> None:
    """A policy that cannot be read denies; never skipped (a config.yaml that dangles is no
    config: nothing in it could tighten anything)."""
    path = _place(vault_with_token, "policy")
    _symlink_to(lambda t: t / "gone.yaml")(path, tmp_path)
    _refused_unchanged(vault_with_token, 3, "No such file or directory")


def test_config_symlink_to_a_private_file_is_read(
    vault_with_token: VaultCLI, tmp_path: Path
) -> None:
    """Dotfile managers symlink ~/.config files: the target is checked, and used."""
    target = tmp_path / "dotfiles" / "config.yaml"
    private_dir(target.parent)
    target.write_text("key_backend: passphrase\n")
    target.chmod(0o600)
    os.symlink(target, vault_with_token.home / "config.yaml")
    r = vault_with_token.run("status", "--json")
    # The symlinked config was read: it asks for the passphrase backend, the vault is keyring.
    assert r.returncode == 6, r
    assert "uses the keyring key backend but the configuration asks for passphrase" in r.stderr


def test_user_policies_folder_is_a_file(vault_with_token: VaultCLI) -> None:
    (vault_with_token.home / "policies").write_text("version: 1\n")
    _refused_unchanged(vault_with_token, 3, "cannot list policies")


@needs_root
@pytest.mark.parametrize("where", ["config", "policy"])
def test_config_or_policy_of_another_owner(vault_with_token: VaultCLI, where: str) -> None:
    path = _place(vault_with_token, where)
    _valid(path)
    os.chown(path, 65534, 65534)
    _refused_unchanged(vault_with_token, 3, "is owned by uid 65534")


# The system folder: VAULT_SYSTEM_POLICY_DIR names one besides /etc/vault/policies.


def _system_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "system"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    return folder


def _system_fifo(tmp_path: Path) -> Path:
    folder = _system_dir(tmp_path)
    _fifo(folder / "org.yaml", 0o644)
    return folder


def _system_dev_zero(tmp_path: Path) -> Path:
    folder = _system_dir(tmp_path)
    os.symlink("/dev/zero", folder / "org.yaml")
    return folder


def _system_file(tmp_path: Path) -> Path:
    path = tmp_path / "system.yaml"
    path.write_text("version: 1\n")
    return path


def _symlinked_open_folder(tmp_path: Path) -> Path:
    real = tmp_path / "open"
    real.mkdir()
    real.chmod(0o777)
    (real / "org.yaml").write_text("version: 1\n")
    (real / "org.yaml").chmod(0o644)
    link = tmp_path / "system"
    os.symlink(real, link)
    return link


SYSTEM_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    # (make, fragment): make builds it in tmp_path and returns what the variable is to name.
    "a policy that is a FIFO": (_system_fifo, "org.yaml: the policy is not a regular file"),
    "a policy symlinked to /dev/zero": (_system_dev_zero, "the policy is not a regular file"),
    "a file, not a folder": (_system_file, "cannot list policies"),
    "a symlink to a world-writable folder": (
        _symlinked_open_folder,
        "writable by group or others (mode 0777)",
    ),
}


@pytest.mark.parametrize("case", sorted(SYSTEM_CASES))
def test_hostile_system_policy_dir(vault_with_token: VaultCLI, tmp_path: Path, case: str) -> None:
    make, fragment = SYSTEM_CASES[case]
    env = {"VAULT_SYSTEM_POLICY_DIR": str(make(tmp_path))}
    _refused_unchanged(vault_with_token, 3, fragment, env=env)


@needs_root
@pytest.mark.parametrize("what", ["folder", "policy"])
def test_system_policy_of_another_owner(
    vault_with_token: VaultCLI, tmp_path: Path, what: str
) -> None:
    folder = _system_dir(tmp_path)
    policy = folder / "org.yaml"
    policy.write_text("version: 1\n")
    policy.chmod(0o644)
    os.chown(folder if what == "folder" else policy, 65534, 65534)
    env = {"VAULT_SYSTEM_POLICY_DIR": str(folder)}
    _refused_unchanged(vault_with_token, 3, "system policies must be owned by root", env=env)


# The vault's own files: exit 6, and the token never printed.


def _replace_with_symlink(path: Path) -> None:
    real = path.with_name(path.name + ".real")
    path.rename(real)
    os.symlink(real, path)


VAULT_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "audit log readable by others": (
        lambda h: (h / "audit.jsonl").chmod(0o644),
        "accessible by group or others (mode 0644)",
    ),
    "audit log hard-linked": (
        lambda h: os.link(h / "audit.jsonl", h / "copy"),
        "audit.jsonl: it has 2 hard links",
    ),
    "audit log a symlink": (
        lambda h: _replace_with_symlink(h / "audit.jsonl"),
        "audit.jsonl: it is a symlink",
    ),
    "lock file a symlink": (
        lambda h: _replace_with_symlink(h / "vault.lock"),
        "cannot open lock file",
    ),
}


@pytest.mark.parametrize("case", sorted(VAULT_FILES))
def test_hostile_vault_files(vault_with_token: VaultCLI, case: str) -> None:
    make, fragment = VAULT_FILES[case]
    make(vault_with_token.home)
    _refused_unchanged(vault_with_token, 6, fragment)


def test_vault_file_is_a_fifo(vault_with_token: VaultCLI) -> None:
    home = vault_with_token.home
    (home / "vault.enc").rename(home / "saved")
    os.mkfifo(home / "vault.enc", 0o600)
    r = vault_with_token.run("token", "a", timeout=20)  # never waits for a writer
    _assert_refused(r, 6, "vault.enc: not a regular file")


def test_vault_home_is_a_file(vault: VaultCLI) -> None:
    """Nothing under it can be read, config.yaml first (exit 3); nothing is written."""
    vault.home.write_text("")
    r = vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa")
    _assert_refused(r, 3, "config.yaml: cannot read config file: Not a directory")
    assert vault.home.read_text() == ""


@needs_root
def test_vault_folder_of_another_owner(vault_with_token: VaultCLI) -> None:
    os.chown(vault_with_token.home, 65534, 65534)
    try:
        _refused_unchanged(vault_with_token, 6, "owned by uid 65534, not by you")
    finally:
        os.chown(vault_with_token.home, 0, 0)


@pytest.mark.parametrize("how", ["symlink", "readable by others", "hard-linked"])
def test_hostile_key_file(passphrase_vault: VaultCLI, tmp_path: Path, how: str) -> None:
    """The passphrase backend's key file (the rollback guard) is checked like the vault file."""
    v = passphrase_vault
    assert v.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa").returncode == 0
    key = v.home / "vault.key"
    if how == "symlink":
        _replace_with_symlink(key)
        fragment = "it is a symlink"
    elif how == "readable by others":
        key.chmod(0o640)
        fragment = "accessible by group or others (mode 0640)"
    else:
        os.link(key, tmp_path / "key-copy")
        fragment = "it has 2 hard links"
    _refused_unchanged(v, 6, fragment)


def test_refusals_leave_the_vault_usable(vault_with_token: VaultCLI, tmp_path: Path) -> None:
    """After a refused config is removed, everything works again: a refusal changed nothing."""
    path = _place(vault_with_token, "config")
    _fifo(path)
    _refused_unchanged(vault_with_token, 3, "not a regular file")
    path.unlink()
    assert vault_with_token.run("token", "a").stdout == "tok-aaaaaaaaaa\n"
    listed = json.loads(vault_with_token.run("list", "--json").stdout)
    assert [t["name"] for t in listed["tokens"]] == ["a"]
