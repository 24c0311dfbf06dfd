"""What the fuzzers feed, and to which reading code: shared by the hypothesis properties in
tests/system/test_fuzz.py and the atheris harnesses (``python -m tests.fuzz.<target> -runs=N``).

Every target is the real reading code, in process: a vault file through ``Store.read`` (with
the key handed over by a stand-in for the keyring, so no D-Bus is needed), the decrypted
payload through ``vault.store.model``, an audit log through ``vault.audit.chain.verify`` and
``read_tail``, a policy or config file through ``vault.policy.safe_yaml``,
``vault.policy.rules`` and ``vault.policy.config``. The property is always the same: the code
returns, or raises one of the project's own errors (``VaultError``); anything else is a bug.

``KNOWN_BUGS`` lists bugs in files this suite's author could not change: each is pinned by a
strict xfail in tests/system/test_fuzz.py (which fails loudly once the bug is fixed), and the
fuzzers
step over it so they keep looking for new ones. Delete an entry when its bug is fixed.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vault.audit.chain import AuditLog, Hwm, make_event, read_tail, verify
from vault.errors import VaultError
from vault.fs import paths as _paths
from vault.keys.keyring import KeyringEntry, KeyringStore
from vault.secret import Secret
from vault.store import format as fmt
from vault.store.model import Meta, TokenRecord, find_record, join_payload, meta_of, split_payload
from vault.store.vault import Store

KEY = bytes(range(32))
KEY_ID = b"\x01\x02\x03\x04"
VAULT_ID = bytes(range(100, 116))
NONCE = bytes(range(12))
AUDIT_KEY = bytes(range(32, 64))
STATE_KEY = bytes(range(64, 96))


@dataclass(frozen=True)
class KnownBug:
    exception: type[BaseException]
    function: str  # the innermost vault function the exception escapes from
    pinned_by: str  # the strict-xfail test in tests/system/test_fuzz.py


KNOWN_BUGS: tuple[KnownBug, ...] = ()


def known_bug(exc: BaseException) -> KnownBug | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/vault/" in f.filename]
    innermost = frames[-1].name if frames else None
    for bug in KNOWN_BUGS:
        if isinstance(exc, bug.exception) and innermost == bug.function:
            return bug
    return None


def expect_vault_errors(*calls: Callable[[], object]) -> None:
    """Run each call; a VaultError (or a known bug) is fine, any other exception escapes."""
    for call in calls:
        try:
            call()
        except VaultError:
            continue
        except Exception as exc:
            if known_bug(exc) is None:
                raise


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# --- vault files and payloads ----------------------------------------------------------------


def record(name: str, token: str = "tok-" + "a" * 20) -> TokenRecord:
    return TokenRecord(
        name=name,
        provider="github",
        issuer="https://github.com",
        client_id="cid",
        token_type="Bearer",
        access_token=Secret(token),
        refresh_token=Secret("r" * 30),
        id_token=None,
        scopes=("repo", "read:org"),
        issued_at=1_700_000_000,
        expires_at=1_700_003_600,
        last_refresh=None,
        extra={"token_endpoint": "https://github.com/login/oauth/access_token"},
    )


def valid_payload() -> bytes:
    meta = Meta(audit_key=AUDIT_KEY, state_key=STATE_KEY, created=1_700_000_000)
    return join_payload(meta, [(r.name, r.to_json()) for r in (record("a"), record("b.c@d"))])


def sealed(payload: bytes, *, generation: int = 1) -> bytes:
    """``payload`` sealed as a keyring-backend vault file under KEY: it passes the header
    checks and authentication, so the payload parser sees exactly these bytes."""
    header = fmt.Header(fmt.KDF_KEYRING, KEY_ID, 0, 0, 0, bytes(16), VAULT_ID, generation, NONCE)
    return fmt.seal(header, KEY, payload)


class HandedKey(KeyringStore):
    """The keyring as the vault file's reader sees it: KEY, for whatever vault id is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.entry = KeyringEntry({KEY_ID: KEY}, generation=0)

    def load(self, vault_id: bytes) -> KeyringEntry | None:
        return self.entry


class VaultFiles:
    """A private VAULT_HOME holding one vault file at a time, read by the real Store."""

    def __init__(self, folder: Path) -> None:
        self.paths = _paths.resolve({"VAULT_HOME": str(private_dir(folder))})
        self.store = Store(self.paths, backend="keyring", keyring=HandedKey())

    def read(self, blob: bytes) -> None:
        write_private(self.paths.vault_file, blob)

        def everything() -> None:
            snapshot = self.store.read()
            if snapshot is not None:
                snapshot.get("a")
                snapshot.records()

        expect_vault_errors(everything)


def parse_payload(payload: bytes) -> None:
    """Every way vault reads a decrypted payload (or a record's bytes)."""

    def lookups() -> None:
        _, records = split_payload(payload)
        for name, raw in records.items():
            TokenRecord.from_json(name, raw)
            find_record(payload, name)

    expect_vault_errors(
        lambda: meta_of(payload),
        lookups,
        lambda: find_record(payload, "a"),
        lambda: TokenRecord.from_json("a", payload),
        lambda: Meta.from_json(payload),
    )


# --- audit logs ------------------------------------------------------------------------------


class AuditFiles:
    """A valid audit log of a few records (and its high-water mark), and a private folder in
    which a changed copy of it is verified."""

    def __init__(self, folder: Path, records: int = 6) -> None:
        source = private_dir(folder / "source") / "audit.jsonl"
        events = [
            make_event(kind, name=f"t{i}", provider="github", scopes=["repo"], command="token")
            for i, kind in enumerate(["issued", "used", "used", "refreshed", "used", "deleted"])
        ][:records]
        self.hwm, _ = AuditLog(source, AUDIT_KEY).append(events, Hwm())
        self.valid = source.read_bytes()
        self.path = private_dir(folder / "check") / "audit.jsonl"

    def verify(self, data: bytes, hwm: Hwm | None = None) -> bool | None:
        """Whether ``data`` verifies as the log (None: the reading code raised a VaultError)."""
        write_private(self.path, data)
        verdicts: list[bool] = []

        def tail() -> None:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                read_tail(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)

        expect_vault_errors(
            lambda: verdicts.append(verify(AuditLog(self.path, AUDIT_KEY), hwm or self.hwm).ok),
            tail,
        )
        return verdicts[0] if verdicts else None

    def lines(self) -> list[bytes]:
        return self.valid.splitlines(keepends=True)

    def is_valid_or_torn(self, log: bytes) -> bool:
        """The valid log, perhaps followed by a torn last line (no newline): the only logs
        that may verify."""
        return log.startswith(self.valid) and b"\n" not in log[len(self.valid) :]


# --- policies and config ---------------------------------------------------------------------


class ConfigFiles:
    """A private VAULT_HOME where fuzzed bytes become config.yaml or a user policy."""

    def __init__(self, folder: Path) -> None:
        self.paths = _paths.resolve({"VAULT_HOME": str(private_dir(folder))})
        private_dir(self.paths.policy_dir)
        self.policy = self.paths.policy_dir / "fuzz.yaml"

    def parse_text(self, text: str) -> None:
        from vault.policy import safe_yaml as _yaml
        from vault.policy.rules import parse_policy

        expect_vault_errors(
            lambda: _yaml.load(text, "fuzz.yaml"),
            lambda: parse_policy(text, "fuzz.yaml", system=False),
            lambda: parse_policy(text, "fuzz.yaml", system=True),
        )

    def read_bytes(self, data: bytes) -> None:
        """The bytes as config.yaml and as a policy file, read as vault reads them."""
        from vault.policy import config as _config
        from vault.policy.rules import read_policy

        write_private(self.paths.config_file, data)
        write_private(self.policy, data)
        expect_vault_errors(
            lambda: _config.load(self.paths).backend(),
            lambda: read_policy(self.policy, system=False),
        )


# --- seeds: valid inputs for the fuzzers to start from -----------------------------------------

REPO = Path(__file__).resolve().parent.parent.parent


def seeds(target: str) -> dict[str, bytes]:
    """A few valid inputs per atheris harness (the first byte is the harness's mode byte)."""
    if target == "payload":
        return {"valid": valid_payload(), "record": record("x").to_json()}
    if target == "vault_file":
        return {"file": b"\x00" + sealed(valid_payload()), "payload": b"\x01" + valid_payload()}
    if target == "audit_log":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            log = AuditFiles(Path(tmp)).valid
        return {"log": b"\x00" + log, "torn": b"\x01" + log[: len(log) // 3]}
    if target == "policy_yaml":
        found = {}
        for path in sorted((REPO / "policies").glob("*.yaml")):
            text = path.read_bytes()
            found[f"text-{path.stem}"] = b"\x00" + text
            found[f"file-{path.stem}"] = b"\x01" + text
        found["config"] = b"\x01" + CONFIG_SAMPLE
        return found
    raise ValueError(f"unknown fuzz target {target!r}")


CONFIG_SAMPLE = b"""\
key_backend: keyring
providers:
  gh:
    preset: github
    client_id: Iv1.0123456789abcdef
    scopes: [repo, "read:org"]
  work:
    issuer: https://idp.example.com/realms/main
    client_id: vault-cli
    scopes: [openid, offline_access]
audit:
  max_bytes: 1048576
  syslog: "udp:127.0.0.1:514"
"""


# --- one input, as the atheris harnesses (and the regression replays) take it --------------------

TARGETS = ("vault_file", "payload", "audit_log", "policy_yaml")


def make_one_input(target: str, folder: Path) -> Callable[[bytes], None]:
    """The function libFuzzer calls with each input. For all but ``payload`` the first byte
    picks a mode (see each harness's docstring); the rest is the input."""
    if target == "payload":
        return parse_payload
    if target == "vault_file":
        vaults = VaultFiles(folder / "vh")

        def vault_file(data: bytes) -> None:
            if data:
                vaults.read(data[1:] if data[0] % 2 == 0 else sealed(data[1:]))

        return vault_file
    if target == "audit_log":
        logs = AuditFiles(folder)

        def audit_log(data: bytes) -> None:
            if not data:
                return
            log = data[1:] if data[0] % 2 == 0 else logs.valid + data[1:]
            if logs.verify(log) and not logs.is_valid_or_torn(log):
                raise AssertionError("a changed audit log verified as intact")

        return audit_log
    if target == "policy_yaml":
        configs = ConfigFiles(folder / "vh")

        def policy_yaml(data: bytes) -> None:
            if not data:
                return
            if data[0] % 2 == 0:
                configs.parse_text(data[1:].decode("utf-8", "replace"))
            else:
                configs.read_bytes(data[1:])

        return policy_yaml
    raise ValueError(f"unknown fuzz target {target!r}")
