"""Crash consistency: a `vault` process SIGKILLed at any step of a write leaves a vault that
opens and holds exactly the old or exactly the new state, and an audit log that verifies.

The real executable runs with tests/harness/crashhook/sitecustomize.py on its PYTHONPATH (and only
its
own): the hook counts the calls that change the vault's files (the vault, the key file
`vault.key`, the audit log and its rotation, their temporaries, folder fsyncs) and its keyring
entry (D-Bus CreateItem/Delete). Each command is run once in count mode to list those calls;
then, from the same starting state every time (files copied back, keyring entry written back),
it is killed at each of them: before every call, halfway through every write() (a torn write),
and after the last call. After one call returns and before the next counted call starts nothing
changes on disk or in the keyring (every such change is a counted call), so "after call i" is
the state "before call i+1" and is run once; VAULT_TEST_CRASH_EVERY_PHASE=1 runs both anyway.

After each crash: `vault list` succeeds and shows the old or the new names (where the command
changes them); `vault audit verify` accepts the log (a torn last line may be reported, never a
broken chain) and holds the old records or the new ones (always the new ones once the vault
holds the new state: the record is written first); `vault token` opens the vault and hands out
the old or the new token, writing again after the crash (a torn line is then set aside and the
log verifies without it). Where the crash left no vault at all (the first write), the command
is run again and must succeed from what was left.

A refresh is the one change written the other way round (vault.store.vault: the provider's answer
is kept first, its record journaled inside the vault until the log holds it). For it, a vault
holding the new state may have a log without the new record, but then `audit verify` reports the
record as pending, and after the next command the log holds it: a `refreshed` record with the
new token's fingerprint, written exactly once. The refresh against the real identity provider,
at every crash point and under every audit fault, is at the end of this file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    SecretService,
    VaultCLI,
    approved_login,
    configure_provider,
    read_records,
)
from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.harness.fault_hook import Call, hook_env, read_trace
from tests.harness.provider import IdP, start_idp

TOKEN_A = "ghp_" + "Aa1" * 10 + "crashA"
TOKEN_B = "ghp_" + "Bb2" * 10 + "crashB"
EVERY_PHASE = os.environ.get("VAULT_TEST_CRASH_EVERY_PHASE") == "1"


class KeyringItem:
    """The vault's entry in the test Secret Service, saved once and written back before each
    run (the generation and audit mark it holds must match the files copied back)."""

    def __init__(self, service: SecretService, vault_id: str) -> None:
        from jeepney.io.blocking import open_dbus_connection

        self.attributes = {"service": "vault", "username": vault_id}
        self.conn = open_dbus_connection(bus=service.bus_address)
        self.saved = self._item().get_secret()

    def _item(self) -> Any:
        import secretstorage

        items = list(secretstorage.search_items(self.conn, self.attributes))
        assert len(items) == 1, items
        return items[0]

    def restore(self) -> None:
        self._item().set_secret(self.saved)

    def close(self) -> None:
        self.conn.close()


@dataclass
class Scenario:
    """One command, crashed at every point, from the state its setup left."""

    vault: VaultCLI
    args: tuple[str, ...]
    old: dict[str, str]  # name -> access token, before the command
    new: Callable[[], dict[str, str]]  # ... after it (asked after each run: refresh varies)
    stdin: str | None = None
    keyring: KeyringItem | None = None
    kept: bool = False  # the change is a provider's answer: kept first, its record journaled
    template: Path = field(default_factory=Path)
    old_records: int = 0
    new_records: int = 0


def _audit_records(home: Path) -> int:
    """Complete lines in the audit log and its rotated files (a torn last line is not one)."""
    total = 0
    for path in home.glob("audit.jsonl*"):
        suffix = path.name.removeprefix("audit.jsonl")
        if suffix == "" or suffix.lstrip(".").isdigit():
            total += path.read_bytes().count(b"\n")
    return total


def _restore(sc: Scenario) -> None:
    home = sc.vault.home
    if home.exists():
        shutil.rmtree(home)
    if sc.template.exists():
        shutil.copytree(sc.template, home, symlinks=True)
    if sc.keyring is not None:
        sc.keyring.restore()


def _ok(vault: VaultCLI, *args: str, stdin: str | None = None) -> str:
    r = vault.run(*args, input=stdin)
    assert r.returncode == 0, r
    return r.stdout


def _points(calls: list[Call]) -> list[str]:
    points = []
    for call in calls:
        points.append(call.at("before"))
        if call.op == "write" and not call.path.endswith(".tmp"):
            # Half a record in a file written in place (the audit log). Half a temporary file
            # is never seen: it is renamed only after it was written whole and fsynced.
            points.append(call.at("torn"))
        if EVERY_PHASE:
            points.append(call.at("after"))
    if calls and not EVERY_PHASE:
        points.append(calls[-1].at("after"))
    return points


def _check(sc: Scenario, point: str) -> None:
    """The state a crash at ``point`` left: opens, old or new, audit log verifies."""
    vault = sc.vault
    new = sc.new()
    names = set(sc.old)
    if set(sc.old) != set(new):
        r = vault.run("list", "--json")
        assert r.returncode == 0, (point, r)
        names = {t["name"] for t in json.loads(r.stdout)["tokens"]}
        assert names in (set(sc.old), set(new)), (point, names)
    # else `vault token` below is what must open it, and tells the old value from the new.
    records: int | None = None
    v = vault.run("audit", "verify", "--json")
    if not vault.vault_file.exists():
        # Killed before the first vault file was in place: the old state is "no vault".
        assert not sc.old, (point, v)
        assert v.returncode == 6, (point, v)
        assert "there is no vault" in v.stderr, (point, v)
        assert "Traceback" not in v.stderr
    else:
        assert v.returncode == 0, (point, v)
        doc = json.loads(v.stdout)
        assert doc["ok"] is True, (point, doc)
        records = int(doc["records"])
        assert sc.old_records <= records <= sc.new_records, (point, records, sc)
        pending = int(doc["pending"])
        assert pending == 0 or sc.kept, (point, "only a kept answer is journaled", doc)
    torn = "torn last line" in v.stderr
    if point.endswith(":torn") and records is not None:
        assert torn, (point, "half a record was written, verify must report it", v)
    recovered = False
    if not names:
        # Nothing was stored: the same command must work now, from what the crash left.
        r = vault.run(*sc.args, input=sc.stdin)
        assert r.returncode == 0, (point, r)
        names, recovered = set(new), True
    other = set(new) if names == set(sc.old) else set(sc.old)
    probe = sorted((names - other) or names)[0]
    r = vault.run("token", probe)
    assert r.returncode == 0, (point, r)
    value = r.stdout.strip()
    is_old = names == set(sc.old) and value == sc.old.get(probe)
    is_new = names == set(new) and value == new.get(probe)
    assert is_old or is_new, (point, names, probe)
    if is_new and not is_old and records is not None and records < sc.new_records:
        # Only a kept answer may be in the vault before its record, and then it is journaled:
        # reported pending before, and in the log (once) after the `vault token` above.
        assert sc.kept, (point, "the vault changed before its audit record")
        assert pending > 0, (
            point,
            "the vault holds a change whose record is neither in the log nor pending",
        )
        assert _refreshed_records(vault, value) == 1, (
            point,
            "the journaled record was not written once",
        )
        after = json.loads(vault.run("audit", "verify", "--json").stdout)
        assert after["ok"] is True, (point, after)
        assert after["pending"] == 0, (point, after)
    elif is_new and not is_old and sc.kept:
        assert _refreshed_records(vault, value) == 1, (point, "the refresh is not in the log once")
    if torn or recovered:
        v = vault.run("audit", "verify")
        assert v.returncode == 0, (point, v)
        assert "torn last line" not in v.stderr, (point, v)


def _refreshed_records(vault: VaultCLI, access_token: str) -> int:
    """How many successful `refreshed` records in the log name ``access_token`` (by its keyed
    fingerprint, as `vault audit hash` gives it)."""
    r = vault.run("audit", "hash", input=access_token)
    assert r.returncode == 0, r
    fingerprint = r.stdout.strip()
    r = vault.run("audit", "show", "--event", "refreshed", "--json")
    assert r.returncode == 0, r
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    return sum(1 for d in docs if d["fingerprint"] == fingerprint and d["outcome"] == "success")


def _crash_everywhere(sc: Scenario, record_property: Callable[[str, object], None]) -> int:
    home = sc.vault.home
    base = home.parent
    sc.template = base / "template"
    if home.exists():
        shutil.copytree(home, sc.template, symlinks=True)
    sc.old_records = _audit_records(home)
    log = base / "trace.jsonl"
    r = sc.vault.run(*sc.args, input=sc.stdin, env=hook_env(home, log=str(log)))
    assert r.returncode == 0, r
    calls = read_trace(log)
    sc.new_records = _audit_records(home)
    assert sc.new_records > sc.old_records
    points = _points(calls)
    assert len(points) > 0, "no crash point found: the hook saw no write"
    started = time.monotonic()
    for point in points:
        _restore(sc)
        r = sc.vault.run(*sc.args, input=sc.stdin, env=hook_env(home, crash_at=point))
        assert r.returncode == -signal.SIGKILL, (point, "the crash point was not reached", r)
        _check(sc, point)
    print(
        f"\ncrash points for `vault {' '.join(sc.args)}`: {len(points)} "
        f"({len(calls)} calls: {', '.join(sorted({c.op for c in calls}))}); "
        f"{time.monotonic() - started:.1f} s"
    )
    record_property("crash_points", len(points))
    record_property("crash_calls", len(calls))
    record_property("crash_command", " ".join(sc.args))
    return len(points)


# --- the scenarios --------------------------------------------------------------------------


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def _keyring_item(vault: VaultCLI, service: SecretService, stack: ExitStack) -> KeyringItem:
    vault_id = json.loads(_ok(vault, "status", "--json"))["vault"]["vault_id"]
    item = KeyringItem(service, vault_id)
    stack.callback(item.close)
    return item


def _import(vault: VaultCLI, name: str, token: str) -> None:
    _ok(vault, "import", name, "--provider", "github", stdin=token)


def test_crash_first_import(vault: VaultCLI, record_property: Any) -> None:
    """The first write: creates the folder, the keyring entry, the audit log and the vault."""
    sc = Scenario(
        vault,
        ("import", "a", "--provider", "github"),
        old={},
        new=lambda: {"a": TOKEN_A},
        stdin=TOKEN_A,
    )
    assert _crash_everywhere(sc, record_property) > 0


def test_crash_import(
    vault: VaultCLI, secret_service: SecretService, stack: ExitStack, record_property: Any
) -> None:
    _import(vault, "a", TOKEN_A)
    sc = Scenario(
        vault,
        ("import", "b", "--provider", "github"),
        old={"a": TOKEN_A},
        new=lambda: {"a": TOKEN_A, "b": TOKEN_B},
        stdin=TOKEN_B,
        keyring=_keyring_item(vault, secret_service, stack),
    )
    assert _crash_everywhere(sc, record_property) > 0


def test_crash_logout(
    vault: VaultCLI, secret_service: SecretService, stack: ExitStack, record_property: Any
) -> None:
    _import(vault, "a", TOKEN_A)
    _import(vault, "b", TOKEN_B)
    sc = Scenario(
        vault,
        ("logout", "b"),
        old={"a": TOKEN_A, "b": TOKEN_B},
        new=lambda: {"a": TOKEN_A},
        keyring=_keyring_item(vault, secret_service, stack),
    )
    assert _crash_everywhere(sc, record_property) > 0


def test_crash_rekey_keyring(
    vault: VaultCLI, secret_service: SecretService, stack: ExitStack, record_property: Any
) -> None:
    _import(vault, "a", TOKEN_A)
    sc = Scenario(
        vault,
        ("rekey",),
        old={"a": TOKEN_A},
        new=lambda: {"a": TOKEN_A},
        keyring=_keyring_item(vault, secret_service, stack),
    )
    assert _crash_everywhere(sc, record_property) > 0


def test_crash_rekey_passphrase(passphrase_vault: VaultCLI, record_property: Any) -> None:
    """The passphrase backend: the vault, then its key file vault.key (generation, audit mark)."""
    _import(passphrase_vault, "a", TOKEN_A)
    sc = Scenario(
        passphrase_vault,
        ("rekey",),
        old={"a": TOKEN_A},
        new=lambda: {"a": TOKEN_A},
    )
    assert _crash_everywhere(sc, record_property) > 0


def test_crash_token(
    vault: VaultCLI, secret_service: SecretService, stack: ExitStack, record_property: Any
) -> None:
    """`vault token` appends a `used` record before it prints."""
    _import(vault, "a", TOKEN_A)
    sc = Scenario(
        vault,
        ("token", "a"),
        old={"a": TOKEN_A},
        new=lambda: {"a": TOKEN_A},
        keyring=_keyring_item(vault, secret_service, stack),
    )
    assert _crash_everywhere(sc, record_property) > 0


def test_crash_token_rotating_the_audit_log(
    vault: VaultCLI, secret_service: SecretService, stack: ExitStack, record_property: Any
) -> None:
    """A `used` record that rotates the log (audit.max_bytes reached): rename, new file."""
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text("audit:\n  max_bytes: 4096\n")
    _import(vault, "a", TOKEN_A)
    log = vault.home / "audit.jsonl"
    for _ in range(40):
        if log.stat().st_size >= 4096:
            break
        _ok(vault, "token", "a")
    assert log.stat().st_size >= 4096
    assert not list(vault.home.glob("audit.jsonl.0*"))  # the next write is the first rotation
    sc = Scenario(
        vault,
        ("token", "a"),
        old={"a": TOKEN_A},
        new=lambda: {"a": TOKEN_A},
        keyring=_keyring_item(vault, secret_service, stack),
    )
    assert _crash_everywhere(sc, record_property) > 0
    assert any(c for c in read_trace(vault.home.parent / "trace.jsonl") if c.op == "rename")


def _rotating_token_endpoint(issued: list[str]) -> Callable[[dict[str, str]], Reply]:
    counter = itertools.count(1)

    def reply(form: dict[str, str]) -> Reply:
        n = next(counter)
        issued.append(f"at-{n:05d}-" + "y" * 24)
        return json_reply(
            {
                "access_token": issued[-1],
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": f"rt-{n:05d}-" + "z" * 24,
                "scope": "openid",
            }
        )

    return reply


def test_crash_refresh(
    vault: VaultCLI, secret_service: SecretService, stack: ExitStack, record_property: Any
) -> None:
    """`vault refresh`: the rotated tokens are written (with their audit record) or not at all.
    Against a scripted provider on 127.0.0.1 that hands out a new token on every call."""
    issued: list[str] = []
    fake: FakeOAuth = stack.enter_context(fake_oauth({"/token": _rotating_token_endpoint(issued)}))
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  local:\n    issuer: {fake.issuer}\n    client_id: cli\n"
        "    scopes: [openid]\n"
    )
    r = vault.run("login", "local", "--no-browser", timeout=90)
    assert r.returncode == 0, r
    first = issued[-1]
    assert _ok(vault, "token", "local").strip() == first
    sc = Scenario(
        vault,
        ("refresh", "local"),
        old={"local": first},
        new=lambda: {"local": issued[-1]},
        keyring=_keyring_item(vault, secret_service, stack),
        kept=True,
    )
    assert _crash_everywhere(sc, record_property) > 0


# --- a refresh against the real identity provider ------------------------------------------------
#
# oidc-provider rotates refresh tokens and, when it sees a rotated one again, revokes the whole
# grant: an answer lost after the provider gave it logs the person out at the next refresh. So
# here every crash point gets a grant of its own (the provider's state cannot be copied back),
# and what the provider logged (IdP.grants(): each refresh grant, the token presented and the
# tokens issued, as SHA-256) is the oracle for "was the answer kept".


def _sha256(text: object) -> str:
    return hashlib.sha256(str(text).encode()).hexdigest()


def _login_many(vault: VaultCLI, names: list[str]) -> None:
    def one(name: str) -> None:
        code, _, err = approved_login(vault, "local", "--name", name)
        assert code == 0, (name, err)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, names))


def _grants_presenting(idp: IdP, refresh_token: object) -> list[dict[str, object]]:
    return [
        g
        for g in idp.grants()["grants"]
        if g["grant_type"] == "refresh_token" and g["presented_sha256"] == _sha256(refresh_token)
    ]


def _refreshed_fingerprints(vault: VaultCLI) -> Counter[str]:
    r = vault.run("audit", "show", "--event", "refreshed", "--json")
    assert r.returncode == 0, r
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    return Counter(str(d["fingerprint"]) for d in docs if d["outcome"] == "success")


SIGNAL_EXIT = {"term": -signal.SIGTERM, "int": 130, "hup": -signal.SIGHUP}


def test_crash_refresh_real_provider(
    vault: VaultCLI, secret_service: SecretService, stack: ExitStack, record_property: Any
) -> None:
    """`vault refresh` against the real provider, killed (SIGKILL) at every counted call, torn
    in every audit write, killed after its last call (before it prints), and sent SIGTERM,
    SIGINT or SIGHUP at every call between the provider's answer and the vault holding it.

    After each: the vault opens and the log verifies; the answer was kept exactly unless a
    SIGKILL landed in the one window nothing can cover (the answer only in memory: after the
    request, before the vault's rename), and signals other than SIGKILL never lose it; then the
    next `vault refresh` works without a replay (the provider's log: the refresh token the vault
    kept, answered ok), or, for an answer lost to SIGKILL, is refused by the provider and the
    token needs a new login (exit 4, naming `vault login`); the log then holds every answer kept
    exactly once (by its access token's fingerprint) and nothing pending."""
    idp = stack.enter_context(start_idp())
    configure_provider(vault, idp.issuer)
    _login_many(vault, ["probe"])
    keyring = _keyring_item(vault, secret_service, stack)
    home = vault.home
    template = home.parent / "template"
    # The first refresh of a vault creates the names' lock file, vault.names.lock (a counted
    # call of its own: test_crash_refresh crashes at it); the template below has it, so the
    # calls counted are those of a refresh after that one.
    r = vault.run("refresh", "probe")
    assert r.returncode == 0, r
    # Count mode on a token of its own: the calls `vault refresh` makes.
    trace = home.parent / "trace.jsonl"
    r = vault.run("refresh", "probe", env=hook_env(home, log=str(trace)))
    assert r.returncode == 0, r
    calls = read_trace(trace)
    assert "vault.names.lock" not in {c.path for c in calls}
    first_write = next(
        i for i, c in enumerate(calls) if c.op == "write" and c.path.endswith(".tmp")
    )
    renamed = next(i for i, c in enumerate(calls) if c.op == "rename")
    # Requested before `first_write`, answered in memory until the rename returns.
    window = calls[first_write : renamed + 1]
    assert {c.op for c in window} <= {"write", "ftruncate", "fsync", "rename"}, window
    lost_window = {c.at("before") for c in window}
    kill_points = _points(calls)
    signal_points = [c.at(sig) for c in window for sig in ("term", "int")] + [window[0].at("hup")]
    points = kill_points + signal_points
    names = [f"t{i:02d}" for i in range(len(points))]
    _login_many(vault, names)
    keyring.saved = keyring._item().get_secret()
    shutil.copytree(home, template, symlinks=True)
    before = read_records(vault)
    sc = Scenario(vault, (), old={}, new=dict, keyring=keyring, template=template)
    started = time.monotonic()
    lost_seen = 0
    for point, name in zip(points, names, strict=True):
        _restore(sc)
        old = before[name]
        r = vault.run("refresh", name, env=hook_env(home, crash_at=point))
        phase = point.rsplit(":", 1)[1]
        assert r.returncode == SIGNAL_EXIT.get(phase, -signal.SIGKILL), (point, r)
        assert "Traceback" not in r.stderr, (point, r)
        answered = [g for g in _grants_presenting(idp, old["refresh_token"]) if g["result"] == "ok"]
        assert len(answered) <= 1, (point, answered)
        now = read_records(vault)[name]
        kept = now["refresh_token"] != old["refresh_token"]
        if kept:
            assert answered, (point, "a refresh token the provider never issued")
            assert _sha256(now["refresh_token"]) == answered[0]["issued_refresh_sha256"], point
        lost = bool(answered) and not kept
        assert lost == (point in lost_window), (point, "answer lost" if lost else "answer kept")
        lost_seen += lost
        v = vault.run("audit", "verify", "--json")
        assert v.returncode == 0, (point, v)
        assert json.loads(v.stdout)["ok"] is True, (point, v)
        # The next refresh: the provider takes the token the vault kept (no replay)...
        r = vault.run("refresh", name)
        after = read_records(vault)[name]
        if lost:
            # ...except after an answer lost to SIGKILL: the provider sees its rotated-away
            # refresh token again and revokes the grant; the token then needs a new login.
            assert r.returncode == 4, (point, r)
            assert "vault login local --name" in r.stderr, (point, r)
            replay = _grants_presenting(idp, old["refresh_token"])
            assert [g["result"] for g in replay] == ["ok", "invalid_grant"], (point, replay)
            assert after["needs_login"] is not None, point
        else:
            assert r.returncode == 0, (point, r)
            grants = _grants_presenting(idp, now["refresh_token"])
            assert [g["result"] for g in grants] == ["ok"], (point, grants)
            assert _sha256(after["refresh_token"]) == grants[0]["issued_refresh_sha256"], point
            r = vault.run("token", name)
            assert r.stdout == f"{after['access_token']}\n", (point, r)
        # ... and the log holds each answer kept, exactly once, and nothing is pending.
        v = vault.run("audit", "verify", "--json")
        assert v.returncode == 0, (point, v)
        doc = json.loads(v.stdout)
        assert doc["ok"] is True, (point, doc)
        assert doc["pending"] == 0, (point, doc)
        fingerprints = _refreshed_fingerprints(vault)
        if kept:
            assert fingerprints[str(now["fingerprint"])] == 1, (point, "crashed answer's record")
        if not lost:
            assert fingerprints[str(after["fingerprint"])] == 1, (point, "next answer's record")
    assert lost_seen == len(lost_window)
    print(
        f"\ncrash points for `vault refresh` against the real provider: {len(kill_points)} "
        f"SIGKILL ({len(lost_window)} of them lose the answer) and {len(signal_points)} "
        f"SIGTERM/SIGINT/SIGHUP ({len(calls)} calls); {time.monotonic() - started:.1f} s"
    )
    record_property("crash_points", len(points))
    record_property("crash_calls", len(calls))
    record_property("crash_command", "refresh (real provider)")


def _damage_the_log(vault: VaultCLI) -> None:
    """Cut the log's last record off: the log no longer ends where the high-water mark says, so
    every append is refused (exit 6) until `vault audit reset`."""
    log = vault.home / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))


AUDIT_FAULTS = {
    "disk full (ENOSPC)": ("write:*:ENOSPC:audit.jsonl", "the disk is full"),
    "I/O error (EIO) on fsync": ("fsync:*:EIO:audit.jsonl", "Input/output error"),
    "read-only (EROFS)": ("open:*:EROFS:audit.jsonl", "Read-only file system"),
    "damaged log": ("", "truncated"),
}


@pytest.mark.parametrize("fault", list(AUDIT_FAULTS))
@pytest.mark.parametrize("command", ["token", "refresh"])
def test_refresh_kept_when_the_audit_log_fails(vault: VaultCLI, fault: str, command: str) -> None:
    """The provider answered and rotated, then the audit append fails. The command fails with
    exit 6 and hands out nothing, but the rotated refresh token is kept: once the log can be
    written (or is reset), the next command writes the refresh's record first (marked late),
    the next refresh works without a replay, and the log verifies with every refresh in it."""
    spec, message = AUDIT_FAULTS[fault]
    with start_idp() as idp:
        configure_provider(vault, idp.issuer)
        code, _, err = approved_login(vault)
        assert code == 0, err
        old = read_records(vault)["local"]
        env = hook_env(vault.home, fault=spec) if spec else None
        if not spec:
            _damage_the_log(vault)
        args = (
            ("token", "local", "--min-valid", "999999")
            if command == "token"
            else ("refresh", "local")
        )
        r = vault.run(*args, env=env)
        assert r.returncode == 6, r
        assert r.stdout == "", r  # nothing handed out without its record
        assert "Traceback" not in r.stderr
        errors = [line for line in r.stderr.splitlines() if line.startswith("vault: error: ")]
        assert len(errors) == 1, r
        assert message in errors[0], r
        assert (
            "the provider's answer was saved in the vault, but nothing was handed out" in errors[0]
        )
        answered = _grants_presenting(idp, old["refresh_token"])
        assert [g["result"] for g in answered] == ["ok"]
        kept = read_records(vault)["local"]
        assert _sha256(kept["refresh_token"]) == answered[0]["issued_refresh_sha256"]
        v = vault.run("audit", "verify", "--json")
        if spec:
            assert v.returncode == 0, v
            assert json.loads(v.stdout)["pending"] == 1, v  # reported, never silently missing
            assert "kept in the vault but not yet in the log" in v.stderr
        else:
            assert v.returncode == 6, v
            r = vault.run("audit", "reset", "--reason", "damaged in a test")
            assert r.returncode == 0, r
        # The fault is gone: the next use writes the journaled record first, then its own.
        r = vault.run("token", "local")
        assert r.returncode == 0, r
        assert r.stdout == f"{kept['access_token']}\n"
        r = vault.run("refresh", "local")
        assert r.returncode == 0, r
        grants = _grants_presenting(idp, kept["refresh_token"])
        assert [g["result"] for g in grants] == ["ok"]  # the rotated token: no replay
        final = read_records(vault)["local"]
        v = vault.run("audit", "verify", "--json")
        assert v.returncode == 0, v
        assert json.loads(v.stdout)["pending"] == 0
        fingerprints = _refreshed_fingerprints(vault)
        assert fingerprints[str(kept["fingerprint"])] == 1
        assert fingerprints[str(final["fingerprint"])] == 1
        shown = [json.loads(x) for x in vault.run("audit", "show", "--json").stdout.splitlines()]
        late = [
            d
            for d in shown
            if d["fingerprint"] == kept["fingerprint"] and d["event"] == "refreshed"
        ]
        assert str(late[0]["reason"]).startswith(
            "recorded late: the audit log could not be written"
        )
        # In order: the late refresh, then the use it allowed, then the next refresh.
        events = [
            (d["event"], d["fingerprint"]) for d in shown if d["event"] in ("refreshed", "used")
        ]
        assert events[-3:] == [
            ("refreshed", kept["fingerprint"]),
            ("used", kept["fingerprint"]),
            ("refreshed", final["fingerprint"]),
        ], events


@pytest.mark.parametrize(
    "fault",
    ["rename:*:EROFS:.vault.enc.*.tmp", "fsync:*:EIO:.vault.enc.*.tmp"],
    ids=["read-only folder", "I/O error"],
)
def test_refresh_answer_that_cannot_be_written_to_the_vault(vault: VaultCLI, fault: str) -> None:
    """The one failure after the provider's answer that nothing can cover (besides SIGKILL before
    the write): the vault itself cannot be written (the folder turned read-only, an I/O error;
    a full disk is refused before the request, see test_faults.py). The command says the answer
    is lost (exit 6, nothing handed out), the log records the refresh as a failure saying so,
    and the next refresh, which the provider refuses as a replay, marks the token as needing a
    new login: a clear error naming `vault login`, never a traceback or a stale token."""
    with start_idp() as idp:
        configure_provider(vault, idp.issuer)
        code, _, err = approved_login(vault)
        assert code == 0, err
        old = read_records(vault)["local"]
        r = vault.run("refresh", "local", env=hook_env(vault.home, fault=fault))
        assert r.returncode == 6, r
        assert "Traceback" not in r.stderr
        assert "the provider's answer could not be kept and nothing was handed out" in r.stderr
        assert read_records(vault)["local"]["refresh_token"] == old["refresh_token"]
        shown = [json.loads(x) for x in vault.run("audit", "show", "--json").stdout.splitlines()]
        assert [(d["event"], d["outcome"]) for d in shown][-1] == ("refreshed", "failure")
        assert str(shown[-1]["reason"]).startswith("not kept: cannot write vault file")
        assert vault.run("audit", "verify").returncode == 0
        r = vault.run("refresh", "local")
        assert r.returncode == 4, r
        assert "vault login local --name local" in r.stderr
        replay = _grants_presenting(idp, old["refresh_token"])
        assert [g["result"] for g in replay] == ["ok", "invalid_grant"]
        r = vault.run("token", "local")
        assert r.returncode == 4, r
        assert r.stdout == ""
