"""Load: sixteen real `vault` processes at once, for a bounded time, against the real local
identity provider: logins (approved through the provider's own pages), `token` (some forcing a
refresh), `refresh`, `logout`/`revoke` and `prune` under a short max_token_age.

Every operation started goes into a ledger with its process id, exit code and output. Afterwards
the ledger is checked against three independent records:

* the vault itself (`vault list --json`, `vault status --json`): no token lost, none twice, and
  exactly one vault generation per successful write;
* the audit log (`vault audit verify`, `vault audit show --json`): each operation's records,
  matched by process id, are exactly those its outcome calls for, and no record comes from
  anywhere else;
* the provider's grant and revocation log (`IdP.grants()`): no refresh token presented twice,
  none refused, each presented token one the provider had issued, every grant chain ending in
  the refresh token the vault now holds or in a revocation.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VaultCLI, configure_provider
from tests.harness.provider import IdP, approve_complete, start_idp

WORKERS = 16
DURATION = 20.0  # seconds during which new operations start; those running then finish
MAX_OPS_PER_WORKER = 80  # a second bound on every worker's loop
OP_TIMEOUT = 60.0  # no single vault process may take longer
MAX_AGE = 10  # seconds: the policy's max_token_age, so that prune has work to do
ACCESS_TTL = 3  # seconds: short-lived access tokens, so `token` refreshes often
WEIGHTS = {"login": 3, "token": 6, "refresh": 2, "logout": 1, "prune": 1}
PRUNE_EVERY = 1.0  # seconds between the cron worker's prunes
NOT_FOUND = "no token named"

# The refresh token of every stored record (as SHA-256 hex: the CLI never shows a refresh token),
# and the audit fingerprints of the access tokens given on stdin (what `vault audit hash` says),
# from one separate process with the test's environment that opens the store once.
_DUMP = """
import hashlib, json, sys
from vault.fs import paths as _paths
from vault.audit.chain import fingerprint
from vault.policy.config import load
from vault.keys.passphrase import PassphraseSource
from vault.store.vault import Store
from vault.secret import Secret
paths = _paths.resolve()
store = Store(paths, backend=load(paths).backend()[0], passphrase=PassphraseSource())
snap = store.read()
held = {}
for rec in snap.records():
    rt = rec.refresh_token.reveal() if rec.refresh_token else ""
    held[rec.name] = hashlib.sha256(rt.encode()).hexdigest()
tokens = json.load(sys.stdin)
prints = [fingerprint(snap.meta.audit_key, Secret(t)) for t in tokens]
print(json.dumps({"held": held, "fingerprints": prints}))
"""


def _dump(vault: VaultCLI, tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _DUMP],
        input=json.dumps(tokens),
        capture_output=True,
        text=True,
        env=vault.full_env(),
        check=True,
        timeout=60,
    )
    doc = json.loads(proc.stdout)
    return doc["held"], doc["fingerprints"]


@dataclass
class Op:
    """One `vault` process the test started."""

    worker: int
    kind: str  # login | token | refresh | logout | prune
    name: str | None
    args: list[str]
    pid: int = 0
    start: float = 0.0  # wall clock (time.time()), to compare with audit times
    end: float = 0.0
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    audit: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{self.kind} {' '.join(self.args)} (worker {self.worker}, pid {self.pid}, "
            f"rc {self.rc}): stdout={self.stdout[-500:]!r} stderr={self.stderr[-800:]!r}"
        )


@dataclass
class Ledger:
    """Every operation started, and the names the workers may pick from."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ops: list[Op] = field(default_factory=list)
    logged_in: list[str] = field(default_factory=list)  # logins that exited 0, in order
    believed_gone: set[str] = field(default_factory=set)  # deletions seen so far

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)

    def pick(self, rng: random.Random) -> str | None:
        with self.lock:
            if not self.logged_in:
                return None
            live = [n for n in self.logged_in if n not in self.believed_gone]
            # Mostly names still there; sometimes any name, so that some operations race a
            # deletion (and must then fail cleanly with "not found").
            pool = live if live and rng.random() < 0.9 else self.logged_in
            return rng.choice(pool)


def _run(vault: VaultCLI, op: Op, ledger: Ledger) -> None:
    ledger.add(op)
    op.start = time.time()
    proc = vault.popen(*op.args)
    op.pid = proc.pid
    try:
        out, err = proc.communicate(timeout=OP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    op.end = time.time()
    op.rc = proc.returncode
    op.stdout, op.stderr = out.decode(errors="replace"), err.decode(errors="replace")


def _login(vault: VaultCLI, op: Op, ledger: Ledger) -> None:
    """`vault login --json`, approved by the scripted person as soon as the code is shown."""
    ledger.add(op)
    op.start = time.time()
    proc = vault.popen(*op.args)
    op.pid = proc.pid
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()
        event = json.loads(first) if first else {}
        if event.get("event") == "device_code":  # else it failed: its exit code tells
            approve_complete(str(event["verification_uri_complete"]), timeout=OP_TIMEOUT)
        out, err = proc.communicate(timeout=OP_TIMEOUT)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    op.end = time.time()
    op.rc = proc.returncode
    op.stdout = (first + out).decode(errors="replace")
    op.stderr = err.decode(errors="replace")


def _cron(vault: VaultCLI, ledger: Ledger, worker: int, deadline: float) -> None:
    """One worker plays cron: `vault prune --json` about every PRUNE_EVERY seconds, so that
    prunes are spread over the whole run and meet tokens as they pass max_token_age."""
    pace = threading.Event()  # never set: its wait() is the cron's pacing, not a sync point
    for _ in range(MAX_OPS_PER_WORKER):
        if time.monotonic() >= deadline:
            return
        op = Op(worker, "prune", None, ["prune", "--json"])
        _run(vault, op, ledger)
        if op.rc == 0:
            with ledger.lock:
                ledger.believed_gone.update(r["name"] for r in json.loads(op.stdout)["results"])
        pace.wait(min(PRUNE_EVERY, max(0.0, deadline - time.monotonic())))


def _worker(vault: VaultCLI, ledger: Ledger, worker: int, deadline: float) -> None:
    rng = random.Random(f"load-{worker}")  # a reproducible mix, not a secret
    kinds = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    for i in range(MAX_OPS_PER_WORKER):
        if time.monotonic() >= deadline:
            return
        kind = rng.choices(kinds, weights)[0]
        name = None if kind in ("login", "prune") else ledger.pick(rng)
        if kind not in ("login", "prune") and name is None:
            kind = "login"
        if kind == "login":
            name = f"w{worker:02d}-{i:03d}"
            op = Op(worker, kind, name, ["login", "local", "--name", name, "--json"])
            _login(vault, op, ledger)
            if op.rc == 0:
                with ledger.lock:
                    ledger.logged_in.append(name)
            continue
        assert name is not None or kind == "prune"
        if kind == "token":
            # --min-valid 60 outlives every 3-second access token: a refresh, unless another
            # process refreshed it moments ago (then refreshing again would gain nothing).
            extra = ["--min-valid", "60"] if rng.random() < 0.5 else []
            args = ["token", str(name), *extra]
        elif kind == "refresh":
            args = ["refresh", str(name), *(["--json"] if rng.random() < 0.5 else [])]
        elif kind == "logout":
            args = ["logout", str(name)] if rng.random() < 0.5 else ["revoke", str(name), "--json"]
        else:
            args = ["prune", "--json"]
        op = Op(worker, kind, name, args)
        _run(vault, op, ledger)
        gone: list[str] = []
        if kind == "logout" and op.rc == 0:
            gone = [str(name)]
        elif kind == "prune" and op.rc == 0:
            gone = [r["name"] for r in json.loads(op.stdout)["results"]]
        if gone:
            with ledger.lock:
                ledger.believed_gone.update(gone)


@pytest.fixture
def idp() -> Iterator[IdP]:
    # A bigger store than oidc-provider's 1000 entries: about ten per login and two per
    # refresh, and an evicted grant would look like a refused refresh.
    with start_idp(access_ttl=ACCESS_TTL, interval=1, store_size=50_000) as server:
        yield server


def _rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _audit_time(record: dict[str, Any]) -> float:
    return _rfc3339(str(record["time"]))


@pytest.mark.parametrize("with_agent", [False, True], ids=["direct", "agent-and-direct"])
def test_sixteen_processes_mixed_load(
    vault: VaultCLI, idp: IdP, tmp_path: Path, with_agent: bool
) -> None:
    """With ``with_agent``, an agent holds the key: the cron worker and every even worker are
    served by it, every odd worker runs directly (its runtime folder has no agent socket)."""
    configure_provider(vault, idp.issuer)
    policies = vault.home / "policies"
    policies.mkdir(mode=0o700)
    (policies / "load.yaml").write_text(f"version: 1\nmax_token_age: {MAX_AGE}s\n")

    ledger = Ledger()
    # One login first: it creates the vault and its keyring entry; then everything races.
    seed = Op(-1, "login", "seed", ["login", "local", "--name", "seed", "--json"])
    _login(vault, seed, ledger)
    assert seed.rc == 0, seed.describe()
    ledger.logged_in.append("seed")
    agent_pid = None
    clients = {w: vault for w in range(WORKERS)}
    if with_agent:
        begun = vault.run("agent", "start", "--idle", "0")
        assert begun.returncode == 0, begun
        agent_pid = json.loads(vault.run("agent", "status", "--json").stdout)["pid"]
        elsewhere = tmp_path / "no-agent-here"
        elsewhere.mkdir(mode=0o700)
        direct = VaultCLI(vault.home, {**vault.env, "XDG_RUNTIME_DIR": str(elsewhere)})
        clients.update({w: direct for w in range(1, WORKERS, 2)})

    started = time.monotonic()
    deadline = started + DURATION
    errors: list[BaseException] = []

    def guarded(worker: int) -> None:
        try:
            (_cron if worker == 0 else _worker)(clients[worker], ledger, worker, deadline)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DURATION + 3 * OP_TIMEOUT)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), "a worker did not finish"
    assert not errors, errors
    if with_agent:
        stopped = vault.run("agent", "stop")
        assert stopped.returncode == 0, stopped
    ops = ledger.ops
    # Kept beside the vault for whoever has to read a failure.
    with (tmp_path / "ledger.jsonl").open("w") as fh:
        for op in ops:
            doc = {k: v for k, v in vars(op).items() if k not in ("stdout", "audit")}
            fh.write(json.dumps(doc) + "\n")  # stdout holds access tokens: left out
    assert all(op.rc is not None for op in ops)
    per_kind = Counter(op.kind for op in ops)
    failures = Counter(
        f"{op.kind}:{op.rc}" + (":not_found" if NOT_FOUND in op.stderr else "")
        for op in ops
        if op.rc != 0
    )
    print(
        f"\nload: {WORKERS} processes, {elapsed:.1f} s, {len(ops)} operations "
        f"({len(ops) / elapsed:.1f} ops/s): {dict(per_kind)}; non-zero exits {dict(failures)}"
    )

    # --- exit codes: only the documented, expected failures --------------------------------
    deletions: dict[str, list[Op]] = defaultdict(list)  # name -> successful deleting ops
    for op in ops:
        if op.kind == "logout" and op.rc == 0:
            deletions[str(op.name)].append(op)
        if op.kind == "prune" and op.rc == 0:
            doc = json.loads(op.stdout)
            for result in doc["results"]:
                deletions[result["name"]].append(op)
    logged_in = [op.name for op in ops if op.kind == "login" and op.rc == 0]
    unexpected = []
    for op in ops:
        assert "Traceback" not in op.stderr, op.describe()
        if op.rc == 0:
            continue
        deleted_before_end = any(
            d is not op and d.start < op.end for d in deletions.get(str(op.name), [])
        )
        if (
            op.kind in ("token", "refresh", "logout")
            and op.rc == 4
            and NOT_FOUND in op.stderr
            and deleted_before_end
        ):
            continue  # asked for a name another process deleted meanwhile
        if op.kind in ("token", "refresh") and op.rc == 5 and "max_token_age" in op.stderr:
            continue  # older than the policy allows (checked against the audit log below)
        unexpected.append(op.describe())
    assert unexpected == [], "\n".join(unexpected)

    # --- the vault: nothing lost, nothing twice, one generation per write -----------------
    listed = vault.run("list", "--json")
    assert listed.returncode == 0, listed
    names = [t["name"] for t in json.loads(listed.stdout)["tokens"]]
    assert len(names) == len(set(names)), f"duplicated names: {Counter(names)}"
    assert len(logged_in) == len(set(logged_in))
    for name, ops_deleting in deletions.items():
        assert len(ops_deleting) == 1, [o.describe() for o in ops_deleting]
        assert name in logged_in
    expected_live = {str(n) for n in logged_in} - set(deletions)
    lost, extra = sorted(expected_live - set(names)), sorted(set(names) - expected_live)
    assert (lost, extra) == ([], []), f"lost: {lost}; unexpected: {extra}"

    # --- the audit log: intact, and every operation accounted for -------------------------
    verify = vault.run("audit", "verify", "--json")
    assert verify.returncode == 0, verify
    assert json.loads(verify.stdout)["ok"] is True
    shown = vault.run("audit", "show", "--json")
    assert shown.returncode == 0, shown
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert json.loads(verify.stdout)["records"] == len(records)
    # The agent's own records: its start and unlock before any it served, its lock at the end
    # (that one names the pid of `vault agent stop`, which asked for it).
    own = [r for r in records if str(r["event"]).startswith("agent_")]
    assert all(r["pid"] == agent_pid or r.get("agent") == agent_pid for r in own)
    assert [r["event"] for r in own] == (
        ["agent_started", "agent_unlocked", "agent_locked"] if with_agent else []
    )
    records = [r for r in records if r not in own]
    served = [r for r in records if "agent" in r]
    assert all(r["agent"] == agent_pid for r in served)
    if with_agent:
        assert served, "the agent served nothing"
        assert len(served) < len(records), "no process ran directly"
    by_pid: dict[int, list[Op]] = defaultdict(list)
    for op in ops:
        by_pid[op.pid].append(op)
    for record in records:
        candidates = by_pid.get(int(record["pid"]), [])
        # A pid could be reused within the run: the record belongs to the run that held it then.
        when = _audit_time(record)
        owners = [o for o in candidates if o.start - 1 <= when <= o.end + 1]
        assert len(owners) == 1, f"audit record from no (or several) ledger operations: {record}"
        owners[0].audit.append(record)

    # The stored issued_at, exactly: the login's success event says when the access token
    # expires, issued_at + expires_in, and the provider's expires_in is ACCESS_TTL.
    issued_at: dict[str, float] = {}
    for op in ops:
        if op.kind == "login" and op.rc == 0:
            success = json.loads(op.stdout.splitlines()[-1])
            assert success["event"] == "success", op.describe()
            issued_at[str(op.name)] = _rfc3339(str(success["expires_at"])) - ACCESS_TTL
    deleted_seq: dict[str, int] = {}
    for record in records:
        if record["event"] in ("revoked", "deleted", "pruned"):
            assert record["name"] not in deleted_seq, f"deleted twice: {record}"
            deleted_seq[record["name"]] = int(record["seq"])

    def shape(op: Op) -> list[tuple[str, str | None, str]]:
        return [(r["event"], r["name"], r["outcome"]) for r in op.audit]

    refreshes_in_token = 0
    handed_out: list[tuple[str, str]] = []  # (token printed, fingerprint audited)
    for op in ops:
        got = shape(op)
        if op.rc != 0 and NOT_FOUND in op.stderr:
            if op.kind == "token":
                assert got == [("used", op.name, "failure")], op.describe()
                assert op.audit[0]["reason"] == "no such token"
                # The deletion came first in the log's (the lock's) order.
                assert deleted_seq[str(op.name)] < int(op.audit[0]["seq"]), op.describe()
            else:
                assert got == [], op.describe()  # nothing happened, nothing to record
                assert str(op.name) in deleted_seq
            continue
        if op.kind == "login":
            assert got == [("issued", op.name, "success")], op.describe()
        elif op.kind in ("token", "refresh") and op.rc == 5:
            assert got == [("denied", op.name, "denied")], op.describe()
            assert op.audit[0]["rule"] == "max_token_age"
            # The check ran before its record was written: the token was over age then.
            age = _audit_time(op.audit[0]) - issued_at[str(op.name)]
            assert age > MAX_AGE, (age, op.describe())
        elif op.kind == "token":
            assert got in (
                [("used", op.name, "success")],
                [("refreshed", op.name, "success"), ("used", op.name, "success")],
            ), op.describe()
            refreshes_in_token += len(got) == 2
            handed_out.append((op.stdout.strip(), str(op.audit[-1]["fingerprint"])))
            # Never handed out past the policy's age: the check ran after the process started.
            age = op.start - issued_at[str(op.name)]
            assert age <= MAX_AGE, (age, op.describe())
        elif op.kind == "refresh":
            assert got == [("refreshed", op.name, "success")], op.describe()
            # Policy applies to refresh too: no refresh token spent on a token over age.
            age = op.start - issued_at[str(op.name)]
            assert age <= MAX_AGE, (age, op.describe())
            if "--json" in op.args:
                doc = json.loads(op.stdout)
                assert (doc["name"], doc["refreshable"]) == (op.name, True), op.describe()
        elif op.kind == "logout":
            assert got == [("revoked", op.name, "success")], op.describe()
            if op.args[0] == "revoke":
                doc = json.loads(op.stdout)
                assert (doc["deleted"], doc["revoked"], doc["revocation"]) == (
                    True,
                    True,
                    "revoked",
                )
        else:
            doc = json.loads(op.stdout)
            results = doc["results"]
            assert got == [("pruned", r["name"], "success") for r in results], op.describe()
            assert all(r["result"] == "revoked_and_deleted" for r in results), op.describe()
            assert all(a["reason"] == "max_token_age" for a in doc["plan"]), op.describe()
            assert doc["counts"]["pending"] == 0

    # Per event type and per name, the log holds exactly what the ledger's successes imply.
    events = Counter((r["event"], r["outcome"]) for r in records)
    kinds = Counter((op.kind, op.rc) for op in ops)
    pruned_names = [n for n, d in deletions.items() if d[0].kind == "prune"]
    refresh_ok = kinds[("refresh", 0)] + refreshes_in_token
    assert events[("issued", "success")] == kinds[("login", 0)]
    assert events[("refreshed", "success")] == refresh_ok
    assert events[("used", "success")] == kinds[("token", 0)]
    assert events[("revoked", "success")] == kinds[("logout", 0)]
    assert events[("pruned", "success")] == len(pruned_names)
    assert events[("denied", "denied")] == kinds[("token", 5)] + kinds[("refresh", 5)]
    token_not_found = sum(1 for op in ops if op.kind == "token" and NOT_FOUND in op.stderr)
    assert events[("used", "failure")] == token_not_found
    assert set(events) <= {
        ("issued", "success"),
        ("refreshed", "success"),
        ("used", "success"),
        ("used", "failure"),
        ("revoked", "success"),
        ("pruned", "success"),
        ("denied", "denied"),
    }, events

    # --- one vault generation per write: every change, and every command whose audit record
    # is more than a successful use (a denial, a failed lookup), which moves the audit mark
    # inside the vault so that it cannot be cut off with an older key file; a refresh writes
    # twice (the answer with its record journaled, then the mark once the log holds it) ------
    writes = (
        kinds[("login", 0)]
        + 2 * refresh_ok
        + kinds[("logout", 0)]
        + sum(1 for op in ops if op.kind == "prune" and op.rc == 0 and op.audit)
        + token_not_found
        + kinds[("token", 5)]
        + kinds[("refresh", 5)]
        + len(own)  # each of the agent's own records is written on its own
    )
    status = json.loads(vault.run("status", "--json").stdout)
    assert status["vault"]["generation"] == writes  # the seed login wrote generation 1
    assert [p.name for p in vault.home.iterdir() if p.name.endswith(".tmp")] == []

    # --- the provider: no refresh token spent twice ---------------------------------------
    log = idp.grants()
    grants, revocations = log["grants"], log["revocations"]
    device = [g for g in grants if g["grant_type"] != "refresh_token"]
    refreshes = [g for g in grants if g["grant_type"] == "refresh_token"]
    assert len(device) == kinds[("login", 0)]
    refused = [g for g in refreshes if g["result"] != "ok"]
    assert refused == [], f"the provider refused refresh tokens (replayed?): {refused}"
    presented = [str(g["presented_sha256"]) for g in refreshes]
    twice = [h for h, n in Counter(presented).items() if n > 1]
    assert twice == [], f"refresh tokens presented more than once: {twice}"
    assert len(refreshes) == refresh_ok  # each refresh the log shows reached the provider once
    assert all(g["issued_refresh_sha256"] for g in grants)
    issued = [str(g["issued_refresh_sha256"]) for g in grants]
    assert len(issued) == len(set(issued))
    assert set(presented) <= set(issued), "a refresh token the provider never issued"
    # Each presented token had been issued before it was presented.
    issued_when = {str(g["issued_refresh_sha256"]): int(str(g["t"])) for g in grants}
    assert all(issued_when[str(g["presented_sha256"])] <= int(str(g["t"])) for g in refreshes)
    mine = [r for r in revocations if r["client_id"] == "vault-cli"]
    # Each logout and prune revokes its grant's refresh token, then its access token unless that
    # is known to have expired (two RFC 7009 requests, each with its token_type_hint).
    ours = [r for r in mine if r["token_type_hint"] == "refresh_token"]
    ours_access = [r for r in mine if r["token_type_hint"] == "access_token"]
    assert len(ours) + len(ours_access) == len(mine), mine
    assert len(ours) == kinds[("logout", 0)] + len(pruned_names)
    assert all(r["found"] == "RefreshToken" and r["status"] == 200 for r in ours), ours
    revoked = {str(r["token_sha256"]) for r in ours}
    # An access token revoked is the one issued with a refresh token revoked (the grant's newest),
    # once each, each after its refresh token.
    access_of = {str(g["issued_refresh_sha256"]): str(g["issued_access_sha256"]) for g in grants}
    assert all(r["status"] == 200 for r in ours_access), ours_access
    revoked_access = [str(r["token_sha256"]) for r in ours_access]
    assert len(revoked_access) == len(set(revoked_access)), ours_access
    assert set(revoked_access) <= {access_of[h] for h in revoked}, ours_access
    refresh_revoked_at = {access_of[str(r["token_sha256"])]: int(str(r["t"])) for r in ours}
    assert all(refresh_revoked_at[str(r["token_sha256"])] <= int(str(r["t"])) for r in ours_access)
    assert not revoked & set(presented), "a revoked refresh token was presented afterwards"
    heads = set(issued) - set(presented)  # the newest token of each grant chain
    assert revoked <= heads, "a revocation named a refresh token that had been rotated away"
    held, prints = _dump(vault, [token for token, _ in handed_out])
    # Every token printed is the one its `used` record fingerprints.
    assert prints == [fp for _, fp in handed_out]
    assert set(held) == expected_live
    assert sorted(str(h) for h in held.values()) == sorted(heads - revoked), (
        "the refresh tokens the vault holds are not exactly the live ends of the grant chains"
    )

    # --- figures ----------------------------------------------------------------------------
    print(
        f"load: refreshes {refresh_ok} ({refreshes_in_token} inside `token`), at the provider "
        f"{len(refreshes)}; pruned {len(pruned_names)}; revoked at the provider {len(ours)} "
        f"(and {len(ours_access)} access tokens); "
        f"live at the end {len(expected_live)}; audit records {len(records)}"
    )
    # Every kind of operation happened, several times (the bounds hold on a machine under load:
    # on 2 CPUs shared with other work, 9 successful `token` calls were seen).
    assert kinds[("login", 0)] >= 3
    assert kinds[("token", 0)] >= 3
    assert refresh_ok >= 5
    assert refreshes_in_token >= 1
    assert kinds[("logout", 0)] >= 1
    assert sum(1 for op in ops if op.kind == "prune") >= 3
    assert pruned_names, "no prune ever pruned: the max_token_age path was not exercised"
