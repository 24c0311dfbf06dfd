"""The report counts lives, not names: a log written with real appends, holding every event kind
and every odd life (a reused name, a replaced token revoked late, an interrupted login, a failed
lookup, a forced delete, a prune that waits for its revocation, a rotation across files, a log
reset), against the exact summary an auditor should read; and, for any sequence of records, the
report's invariants (hypothesis)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.audit import chain
from vault.audit.chain import AuditLog, Hwm, make_event
from vault.audit.report import Filters, build_report

AUDIT_KEY = bytes(range(32))
NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _private_files() -> Iterator[None]:
    old = os.umask(0o077)
    yield
    os.umask(old)


class Writer:
    """Appends records one at a time through AuditLog, each 7 hours after the one before, as
    ``user`` on ``host`` (the fields every record carries), pid fixed so record sizes are."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.hwm = Hwm()
        self.at = T0
        monkeypatch.setattr(chain, "now_rfc3339", self._now)
        # The records append writes itself (log_rotated) are alice's on ws1 too.
        monkeypatch.setattr(chain, "_os_user", lambda: "alice")
        monkeypatch.setattr(chain, "_host", lambda: "ws1")

    def _now(self) -> str:
        return self.at.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def log(self, *, max_bytes: int = 1 << 30) -> AuditLog:
        return AuditLog(self.path, AUDIT_KEY, max_bytes=max_bytes)

    def add(
        self, kind: str, *, user: str = "alice", host: str = "ws1", rotate: bool = False, **kw: Any
    ) -> None:
        event = {**make_event(kind, **kw), "user": user, "host": host, "pid": 4242}
        self.hwm, _ = self.log(max_bytes=1 if rotate else 1 << 30).append([event], self.hwm)
        self.at += timedelta(hours=7)

    def reset(self) -> None:
        """As vault.store.vault.Store.reset_audit: the files set aside, a new chain begun."""
        for path in self.log().files():
            path.rename(path.with_name(path.name + ".reset-20261102T150000Z"))
        self.hwm = Hwm()
        self.add("log_reset", outcome="warning", reason="damaged; the old log was set aside")


def odd_lives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[AuditLog, Hwm]:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    w = Writer(folder / "audit.jsonl", monkeypatch)
    gh: dict[str, Any] = {"provider": "github", "issuer": "https://github.com"}
    # Before the reset: a token issued and used, whose issue the report will never see.
    w.add("issued", name="old", fingerprint="fp-old", command="login", **gh)
    w.add("used", name="old", fingerprint="fp-old", command="token", **gh)
    w.reset()
    w.add("used", name="old", fingerprint="fp-old", command="token", **gh)
    w.add("key_rotated", reason="data key rotated (keyring backend to keyring backend)")
    # gh, life 1: issued, used by two people, denied once, refreshed, revoked.
    w.add("issued", name="gh", fingerprint="fp-gh1", command="login", **gh)
    w.add("used", name="gh", fingerprint="fp-gh1", command="git-credential github.com", **gh)
    w.add("used", name="gh", fingerprint="fp-gh1", command="exec gh", user="bob", host="ws2", **gh)
    w.add(
        "denied",
        name="gh",
        outcome="denied",
        rule="max_token_age",
        source="/etc/vault/policies/org.yaml:3",
        command="token",
        user="bob",
        host="ws2",
        **gh,
    )
    w.add("refreshed", name="gh", fingerprint="fp-gh2", **gh)
    w.add("used", name="gh", fingerprint="fp-gh2", command="token", **gh)
    w.add("revoked", name="gh", fingerprint="fp-gh2", reason="revoked", command="logout", **gh)
    # Between the lives: a lookup of the name, which holds nothing now.
    w.add(
        "used",
        name="gh",
        outcome="failure",
        reason="no such token",
        command="git-credential github.com",
        user="bob",
        host="ws2",
    )
    # gh, life 2: imported in a new log file (a rotation), then deleted by force.
    w.add("issued", name="gh", fingerprint="fp-gh3", command="import", rotate=True, **gh)
    w.add("used", name="gh", fingerprint="fp-gh3", command="token", **gh)
    w.add("deleted", name="gh", fingerprint="fp-gh3", outcome="not_revoked", reason="forced", **gh)
    # Names that never held a token: a lookup, a login interrupted, one failed, one denied.
    w.add("used", name="nosuch", outcome="failure", reason="no such token", command="token")
    work: dict[str, Any] = {"provider": "work", "issuer": "https://idp.example.com"}
    for reason in ("interrupted", "access_denied"):
        w.add(
            "login_failed", name="work", outcome="failure", reason=reason, command="login", **work
        )
    w.add("denied", name="work", outcome="denied", rule="allowed_scopes", command="login", **work)
    # ci: a prune that waits for the revocation, then the prune.
    lab: dict[str, Any] = {"provider": "gitlab", "issuer": "https://gitlab.com"}
    w.add("issued", name="ci", fingerprint="fp-ci", command="import", **lab)
    w.add("used", name="ci", fingerprint="fp-ci", command="exec glab", host="ci-runner", **lab)
    w.add("pruned", name="ci", fingerprint="fp-ci", outcome="revoke_pending", **lab)
    w.add("pruned", name="ci", fingerprint="fp-ci", reason="expired", **lab)
    # k8s: replaced by a forced import while its revocation ran; the revocation ends life 1.
    w.add("issued", name="k8s", fingerprint="fp-k1", command="login", **gh)
    w.add("issued", name="k8s", fingerprint="fp-k2", command="import", **gh)
    kept = "revoked; a token stored under the name meanwhile was kept"
    w.add("revoked", name="k8s", fingerprint="fp-k1", reason=kept, **gh)
    w.add("used", name="k8s", fingerprint="fp-k2", command="kube k8s (kubectl)", **gh)
    # The vault's own events (chain_signed: the signed chain's, the last of EVENTS).
    w.add("agent_started", reason="idle never")
    w.add("agent_unlocked", reason="key held until 2026-11-12T00:00:00Z")
    w.add("agent_locked", reason="idle")
    w.add("torn_record_set_aside", outcome="warning", reason="12 bytes after record 30")
    w.add("chain_signed", reason="the head signed")
    return w.log(), w.hwm


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its per-record lists (checked on their own) and its tmp path."""
    out = {k: v for k, v in report.items() if k != "log"}
    out["log"] = {k: v for k, v in report["log"].items() if k != "path"}
    for key in ("tokens", "attempts", "vault_events"):
        out[key] = [{k: v for k, v in row.items() if k != "events"} for row in report[key]]
    return out


def t(hours: int) -> str:
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_the_odd_lives_log_reads_as_it_happened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, hwm = odd_lives(tmp_path, monkeypatch)
    report = build_report(log, hwm, now=NOW)
    assert summary(report) == EXPECTED
    records = {
        f"{row['name']} {row['life']}": [
            (e["seq"], e["event"], e["outcome"]) for e in row["events"]
        ]
        for row in report["tokens"]
    }
    records |= {
        f"attempt {row['name']}": [(e["seq"], e["event"], e["outcome"]) for e in row["events"]]
        for row in report["attempts"]
    }
    assert records == RECORDS_OF


# The summary an auditor should read of the story above: a literal, checked line by line against
# that story (lives, attempts, every vault event, the people and hosts), never recomputed.
EXPECTED: dict[str, Any] = {
    "generated_at": "2026-11-18T11:06:40Z",
    "filters": {
        "since": None,
        "until": None,
        "event": None,
        "token": None,
        "provider": None,
        "user": None,
        "host": None,
        "command": None,
    },
    "tokens": [
        {
            "name": "ci",
            "life": 1,
            "provider": "gitlab",
            "issuer": "https://gitlab.com",
            "fingerprints": ["fp-ci"],
            "issued": t(140),
            "issued_by": "import",
            "first": t(140),
            "ended": t(161),
            "end_reason": "pruned",
            "uses": 1,
            "last_use": t(147),
            "refreshes": 0,
            "revoked": None,
            "pruned": t(161),
            "denials": 0,
            "failures": 0,
            "status": "pruned",
            "users": ["alice"],
            "hosts": ["ci-runner", "ws1"],
        },
        {
            "name": "gh",
            "life": 1,
            "provider": "github",
            "issuer": "https://github.com",
            "fingerprints": ["fp-gh1", "fp-gh2"],
            "issued": t(35),
            "issued_by": "login",
            "first": t(35),
            "ended": t(77),
            "end_reason": "revoked",
            "uses": 3,
            "last_use": t(70),
            "refreshes": 1,
            "revoked": t(77),
            "pruned": None,
            "denials": 1,
            "failures": 0,
            "status": "revoked",
            "users": ["alice", "bob"],
            "hosts": ["ws1", "ws2"],
        },
        {
            "name": "gh",
            "life": 2,
            "provider": "github",
            "issuer": "https://github.com",
            "fingerprints": ["fp-gh3"],
            "issued": t(91),
            "issued_by": "import",
            "first": t(91),
            "ended": t(105),
            "end_reason": "deleted",
            "uses": 1,
            "last_use": t(98),
            "refreshes": 0,
            "revoked": None,
            "pruned": None,
            "denials": 0,
            "failures": 0,
            "status": "deleted",
            "users": ["alice"],
            "hosts": ["ws1"],
        },
        {
            "name": "k8s",
            "life": 1,
            "provider": "github",
            "issuer": "https://github.com",
            "fingerprints": ["fp-k1"],
            "issued": t(168),
            "issued_by": "login",
            "first": t(168),
            "ended": t(182),
            "end_reason": "revoked",
            "uses": 0,
            "last_use": None,
            "refreshes": 0,
            "revoked": t(182),
            "pruned": None,
            "denials": 0,
            "failures": 0,
            "status": "revoked",
            "users": ["alice"],
            "hosts": ["ws1"],
        },
        {
            "name": "k8s",
            "life": 2,
            "provider": "github",
            "issuer": "https://github.com",
            "fingerprints": ["fp-k2"],
            "issued": t(175),
            "issued_by": "import",
            "first": t(175),
            "ended": None,
            "end_reason": None,
            "uses": 1,
            "last_use": t(189),
            "refreshes": 0,
            "revoked": None,
            "pruned": None,
            "denials": 0,
            "failures": 0,
            "status": "active",
            "users": ["alice"],
            "hosts": ["ws1"],
        },
        {
            "name": "old",
            "life": 1,
            "provider": "github",
            "issuer": "https://github.com",
            "fingerprints": ["fp-old"],
            "issued": None,
            "issued_by": None,
            "first": t(21),
            "ended": None,
            "end_reason": None,
            "uses": 1,
            "last_use": t(21),
            "refreshes": 0,
            "revoked": None,
            "pruned": None,
            "denials": 0,
            "failures": 0,
            "status": "active",
            "users": ["alice"],
            "hosts": ["ws1"],
        },
    ],
    "attempts": [
        {
            "name": "gh",
            "provider": None,
            "attempts": 1,
            "failed_lookups": 1,
            "failed_logins": 0,
            "interrupted_logins": 0,
            "denials": 0,
            "other": 0,
            "first": t(84),
            "last": t(84),
            "users": ["bob"],
        },
        {
            "name": "nosuch",
            "provider": None,
            "attempts": 1,
            "failed_lookups": 1,
            "failed_logins": 0,
            "interrupted_logins": 0,
            "denials": 0,
            "other": 0,
            "first": t(112),
            "last": t(112),
            "users": ["alice"],
        },
        {
            "name": "work",
            "provider": "work",
            "attempts": 3,
            "failed_lookups": 0,
            "failed_logins": 1,
            "interrupted_logins": 1,
            "denials": 1,
            "other": 0,
            "first": t(119),
            "last": t(133),
            "users": ["alice"],
        },
    ],
    "vault_events": [
        {
            "event": "key_rotated",
            "count": 1,
            "first": t(28),
            "last": t(28),
            "outcomes": {"success": 1},
        },
        {
            "event": "log_rotated",
            "count": 1,
            "first": t(91),
            "last": t(91),
            "outcomes": {"success": 1},
        },
        {
            "event": "log_reset",
            "count": 1,
            "first": t(14),
            "last": t(14),
            "outcomes": {"warning": 1},
        },
        {
            "event": "torn_record_set_aside",
            "count": 1,
            "first": t(217),
            "last": t(217),
            "outcomes": {"warning": 1},
        },
        {
            "event": "agent_started",
            "count": 1,
            "first": t(196),
            "last": t(196),
            "outcomes": {"success": 1},
        },
        {
            "event": "agent_unlocked",
            "count": 1,
            "first": t(203),
            "last": t(203),
            "outcomes": {"success": 1},
        },
        {
            "event": "agent_locked",
            "count": 1,
            "first": t(210),
            "last": t(210),
            "outcomes": {"success": 1},
        },
        {
            "event": "chain_signed",
            "count": 1,
            "first": t(224),
            "last": t(224),
            "outcomes": {"success": 1},
        },
    ],
    "users": [
        {"user": "alice", "events": 29, "uses": 6, "denials": 1, "failures": 3, "attempts": 4},
        {"user": "bob", "events": 3, "uses": 1, "denials": 1, "failures": 1, "attempts": 1},
    ],
    "hosts": [
        {"host": "ci-runner", "events": 1, "uses": 1, "denials": 0, "failures": 0, "attempts": 0},
        {"host": "ws1", "events": 28, "uses": 5, "denials": 1, "failures": 3, "attempts": 4},
        {"host": "ws2", "events": 3, "uses": 1, "denials": 1, "failures": 1, "attempts": 1},
    ],
    "commands": [
        {"command": "exec gh", "events": 1, "uses": 1, "denials": 0, "failures": 0, "attempts": 0},
        {
            "command": "exec glab",
            "events": 1,
            "uses": 1,
            "denials": 0,
            "failures": 0,
            "attempts": 0,
        },
        {
            "command": "git-credential github.com",
            "events": 2,
            "uses": 1,
            "denials": 0,
            "failures": 1,
            "attempts": 1,
        },
        {"command": "import", "events": 3, "uses": 0, "denials": 0, "failures": 0, "attempts": 0},
        {
            "command": "kube k8s (kubectl)",
            "events": 1,
            "uses": 1,
            "denials": 0,
            "failures": 0,
            "attempts": 0,
        },
        {"command": "login", "events": 5, "uses": 0, "denials": 1, "failures": 2, "attempts": 3},
        {"command": "logout", "events": 1, "uses": 0, "denials": 0, "failures": 0, "attempts": 0},
        {"command": "token", "events": 5, "uses": 3, "denials": 1, "failures": 1, "attempts": 1},
    ],
    "days": [
        {"day": "2026-11-02", "events": 1, "uses": 0, "denials": 0, "failures": 0},
        {"day": "2026-11-03", "events": 3, "uses": 1, "denials": 0, "failures": 0},
        {"day": "2026-11-04", "events": 4, "uses": 2, "denials": 1, "failures": 0},
        {"day": "2026-11-05", "events": 3, "uses": 1, "denials": 0, "failures": 1},
        {"day": "2026-11-06", "events": 4, "uses": 1, "denials": 0, "failures": 0},
        {"day": "2026-11-07", "events": 4, "uses": 0, "denials": 1, "failures": 3},
        {"day": "2026-11-08", "events": 3, "uses": 1, "denials": 0, "failures": 0},
        {"day": "2026-11-09", "events": 4, "uses": 0, "denials": 0, "failures": 0},
        {"day": "2026-11-10", "events": 3, "uses": 1, "denials": 0, "failures": 0},
        {"day": "2026-11-11", "events": 3, "uses": 0, "denials": 0, "failures": 0},
    ],
    "kinds": {
        "agent_locked": 1,
        "agent_started": 1,
        "agent_unlocked": 1,
        "chain_signed": 1,
        "deleted": 1,
        "denied": 2,
        "issued": 5,
        "key_rotated": 1,
        "log_reset": 1,
        "log_rotated": 1,
        "login_failed": 2,
        "pruned": 2,
        "refreshed": 1,
        "revoked": 2,
        "torn_record_set_aside": 1,
        "used": 9,
    },
    "log": {
        "files": 2,
        "events": 32,
        "first": t(14),
        "last": t(224),
        "verified": True,
        "verify_message": "intact: 32 records",
    },
}

RECORDS_OF: dict[str, list[tuple[int, str, str]]] = {
    "attempt gh": [(11, "used", "failure")],
    "attempt nosuch": [(16, "used", "failure")],
    "attempt work": [
        (17, "login_failed", "failure"),
        (18, "login_failed", "failure"),
        (19, "denied", "denied"),
    ],
    "ci 1": [
        (20, "issued", "success"),
        (21, "used", "success"),
        (22, "pruned", "revoke_pending"),
        (23, "pruned", "success"),
    ],
    "gh 1": [
        (4, "issued", "success"),
        (5, "used", "success"),
        (6, "used", "success"),
        (7, "denied", "denied"),
        (8, "refreshed", "success"),
        (9, "used", "success"),
        (10, "revoked", "success"),
    ],
    "gh 2": [(13, "issued", "success"), (14, "used", "success"), (15, "deleted", "not_revoked")],
    "k8s 1": [(24, "issued", "success"), (26, "revoked", "success")],
    "k8s 2": [(25, "issued", "success"), (27, "used", "success")],
    "old 1": [(2, "used", "success")],
}


def _lives(report: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(r["name"], r["life"], r["uses"]) for r in report["tokens"]]


@pytest.mark.parametrize(
    ("filters", "shown"),
    [
        # A day inside gh's second life: it, and `old`, alive then though not used.
        (
            Filters(since="2026-11-06T00:00:00", until="2026-11-06T23:59:59"),
            ([("gh", 2, 1), ("old", 1, 0)], [], ["log_rotated"]),
        ),
        # Bob's records: one use and a denial of gh's first life, his lookup between lives.
        (Filters(user="bob"), ([("gh", 1, 1)], ["gh"], [])),
        (Filters(host="ci-runner"), ([("ci", 1, 1)], [], [])),
        # A command matches whole words from its start.
        (Filters(command="git-credential"), ([("gh", 1, 1)], ["gh"], [])),
        (Filters(command="git"), ([], [], [])),
        (Filters(command="kube k8s (kubectl)"), ([("k8s", 2, 1)], [], [])),
        (Filters(token="gh"), ([("gh", 1, 3), ("gh", 2, 1)], ["gh"], [])),
        (Filters(event="login_failed"), ([], ["work"], [])),
        (Filters(event="chain_signed"), ([], [], ["chain_signed"])),
        (Filters(provider="gitlab"), ([("ci", 1, 1)], [], [])),
    ],
)
def test_filters_choose_records_lives_keep_their_facts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    filters: Filters,
    shown: tuple[list[tuple[str, int, int]], list[str], list[str]],
) -> None:
    lives, attempts, vault_events = shown
    log, hwm = odd_lives(tmp_path, monkeypatch)
    report = build_report(log, hwm, now=NOW, filters=filters)
    assert _lives(report) == lives
    assert [a["name"] for a in report["attempts"]] == attempts
    assert [v["event"] for v in report["vault_events"]] == vault_events
    for row in report["tokens"]:  # the life's own facts, whatever the filter
        whole = next(
            r for r in EXPECTED["tokens"] if (r["name"], r["life"]) == (row["name"], row["life"])
        )
        assert {k: row[k] for k in ("issued", "ended", "end_reason", "status")} == {
            k: whole[k] for k in ("issued", "ended", "end_reason", "status")
        }
    assert report["filters"] == filters.as_dict()


# --------------------------------------------------------------------------- any log

NAMES = ("a", "b")
FPS = (None, "f1", "f2", "f3")
record = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            [
                "issued",
                "used",
                "refreshed",
                "revoked",
                "deleted",
                "pruned",
                "denied",
                "login_failed",
                "key_rotated",
                "agent_locked",
                "surprise",
            ]
        ),
        "name": st.sampled_from((*NAMES, None)),
        "outcome": st.sampled_from(["success", "failure", "denied", "revoke_pending"]),
        "fingerprint": st.sampled_from(FPS),
        "command": st.sampled_from([None, "login", "import", "token", "exec gh"]),
        "user": st.sampled_from(["alice", "bob"]),
    }
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(record, max_size=40))
def test_any_log_counts_lives_and_attempts_apart(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]
) -> None:
    folder = tmp_path_factory.mktemp("log")
    folder.chmod(0o700)
    log = AuditLog(folder / "audit.jsonl", AUDIT_KEY)
    events = [
        {
            **make_event(
                r["kind"],
                name=r["name"],
                outcome=r["outcome"],
                fingerprint=r["fingerprint"],
                command=r["command"],
            ),
            "user": r["user"],
        }
        for r in records
    ]
    hwm, written = Hwm(), []
    clock = iter(range(len(events)))
    with mock.patch.object(
        chain,
        "now_rfc3339",
        side_effect=lambda: (T0 + timedelta(minutes=next(clock))).isoformat()[:19] + "Z",
    ):
        for event in events:  # one append each: every record a minute after the one before
            hwm, more = log.append([event], hwm)
            written.extend(more)
    report = build_report(log, hwm, now=NOW)
    by_seq = {doc["seq"]: doc for doc in written}
    lives, attempts, vault = report["tokens"], report["attempts"], report["vault_events"]
    seqs = [[e["seq"] for row in rows for e in row["events"]] for rows in (lives, attempts, vault)]
    # Every record is shown once, in exactly one place.
    assert sorted(s for part in seqs for s in part) == sorted(by_seq)
    # Uses of lives are the successful `used` records of lives.
    used_of_lives = [by_seq[s] for s in seqs[0]]
    assert sum(r["uses"] for r in lives) == sum(
        d["event"] == "used" and d["outcome"] == "success" for d in used_of_lives
    )
    for life in lives:
        first = by_seq[life["events"][0]["seq"]]
        # A life begins with a successful issue, or with a record of a stored token (one with
        # a fingerprint): never with a lookup, a failed login, or a denial of one.
        assert (first["event"], first["outcome"]) == ("issued", "success") or first["fingerprint"]
        assert first["event"] != "login_failed"
        assert (
            life["last_use"] is None or life["issued"] is None or life["last_use"] >= life["issued"]
        )
        assert life["status"] == (life["end_reason"] or "active")
        assert (life["ended"] is None) == (life["end_reason"] is None)
    for name in NAMES:
        numbers = [r["life"] for r in lives if r["name"] == name]
        assert numbers == list(range(1, len(numbers) + 1))
        # Only a name's last life can be open.
        assert all(
            r["status"] != "active" for r in lives if r["name"] == name and r["life"] < len(numbers)
        )
    for row in attempts:
        for e in row["events"]:
            doc = by_seq[e["seq"]]
            assert not (doc["event"] == "issued" and doc["outcome"] == "success")
        assert (
            row["attempts"]
            == len(row["events"])
            == sum(
                row[k]
                for k in (
                    "failed_lookups",
                    "failed_logins",
                    "interrupted_logins",
                    "denials",
                    "other",
                )
            )
        )
    assert all(by_seq[s]["name"] is None for s in seqs[2])
    assert sum(report["kinds"].values()) == len(by_seq) == report["log"]["events"]


@pytest.mark.parametrize("outcome", ["success", "failure", "not_revoked"])
def test_the_revocation_of_a_grant_a_login_replaced_belongs_to_the_old_life(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    """`vault login --force`: the new token is issued first, then the old grant's revocation is
    audited with the old fingerprint. Whether it succeeded or not, it is the old life's record:
    never a failure, or a fingerprint, of the new token's life."""
    w = Writer(tmp_path / "audit.jsonl", monkeypatch)
    gh: dict[str, Any] = {"provider": "github", "issuer": "https://github.com"}
    w.add("issued", name="gh", fingerprint="fp-1", command="login", **gh)
    w.add("issued", name="gh", fingerprint="fp-2", command="login", **gh)
    reason = "replaced by a new login" + ("" if outcome == "success" else "; not revoked: HTTP 503")
    w.add("revoked", name="gh", fingerprint="fp-1", outcome=outcome, reason=reason, **gh)
    w.add("used", name="gh", fingerprint="fp-2", command="token", **gh)
    report = build_report(w.log(), w.hwm, now=NOW)
    rows = [(t["life"], t["fingerprints"], t["status"], t["failures"]) for t in report["tokens"]]
    ended = "revoked" if outcome == "success" else "replaced"
    assert rows == [
        (1, ["fp-1"], ended, 1 if outcome == "failure" else 0),
        (2, ["fp-2"], "active", 0),
    ]
