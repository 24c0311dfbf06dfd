"""The audit log through the real executable: every event, every tampering detected, failure
to audit blocking the operation, rotation, torn lines, filters and reports."""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI, approved_login, configure_provider
from tests.harness.clock import at
from tests.harness.provider import start_idp
from vault.util.text import UNSAFE_TABLE, pattern

TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "zyxwvu"


def _records(vault: VaultCLI) -> list[dict[str, object]]:
    path = vault.home / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _setup(vault: VaultCLI) -> None:
    assert vault.run("import", "a", "--provider", "github", input=TOKEN).returncode == 0
    assert vault.run("import", "b", "--provider", "github", input="tok-bbbbbbbbbb").returncode == 0
    for _ in range(3):
        assert vault.run("token", "a").returncode == 0
    assert vault.run("logout", "b").returncode == 0


def test_events_are_recorded_and_fingerprinted(vault: VaultCLI) -> None:
    _setup(vault)
    records = _records(vault)
    assert [r["event"] for r in records] == ["issued", "issued", "used", "used", "used", "deleted"]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    used = records[2]
    for key in (
        "time",
        "name",
        "provider",
        "issuer",
        "scopes",
        "outcome",
        "user",
        "host",
        "pid",
        "fingerprint",
        "mac",
    ):
        assert key in used
    assert used["name"] == "a"
    assert used["command"] == "token"
    assert str(used["time"]).endswith("Z")
    # The fingerprint lets an auditor check for a given token without the log holding it.
    fp = vault.run("audit", "hash", input=TOKEN).stdout.strip()
    assert fp == used["fingerprint"]
    raw = (vault.home / "audit.jsonl").read_bytes()
    assert TOKEN.encode() not in raw
    assert os.stat(vault.home / "audit.jsonl").st_mode & 0o777 == 0o600
    r = vault.run("audit", "verify")
    assert r.returncode == 0, r
    assert "intact: 6 records" in r.stderr


def test_denials_and_key_rotation_are_recorded(vault: VaultCLI) -> None:
    _setup(vault)
    policies = vault.home / "policies"
    policies.mkdir(mode=0o700)
    (policies / "p.yaml").write_text("version: 1\nmax_token_age: 1s\n")
    r = vault.run("token", "a", env=at(2))  # two seconds later
    assert r.returncode == 5
    (policies / "p.yaml").unlink()
    assert vault.run("rekey").returncode == 0
    records = _records(vault)
    denied = records[-2]
    assert denied["event"] == "denied"
    assert denied["outcome"] == "denied"
    assert denied["rule"] == "max_token_age"
    assert str(denied["source"]).endswith("p.yaml:2")
    assert records[-1]["event"] == "key_rotated"
    assert vault.run("audit", "verify").returncode == 0


def _tamper_cases(lines: list[bytes]) -> dict[str, tuple[bytes, str]]:
    edited = lines[3].replace(b'"event":"used"', b'"event":"issued"')
    return {
        "edited": (b"".join([*lines[:3], edited, *lines[4:]]), "record 4 was altered"),
        "deleted": (b"".join([*lines[:2], *lines[3:]]), "records 3..3 were deleted"),
        "inserted": (b"".join([*lines[:3], lines[1], *lines[3:]]), "out of order"),
        "reordered": (b"".join([*lines[:2], lines[3], lines[2], *lines[4:]]), "record 4"),
        "truncated": (b"".join(lines[:-1]), "truncated"),
        "replaced last": (b"".join([*lines[:-1], lines[-2]]), "record 5"),
        "garbage line": (b"".join([*lines[:2], b"hello\n", *lines[2:]]), "not an audit record"),
    }


@pytest.mark.parametrize(
    "case",
    ["edited", "deleted", "inserted", "reordered", "truncated", "replaced last", "garbage line"],
)
def test_tampering_is_detected_and_named(vault: VaultCLI, case: str) -> None:
    _setup(vault)
    path = vault.home / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    data, expected = _tamper_cases(lines)[case]
    path.write_bytes(data)
    r = vault.run("audit", "verify", "--json")
    assert r.returncode == 6, r
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    assert expected in doc["problem"], doc
    assert "tampered" in r.stderr


def test_truncated_log_blocks_use_until_reset(vault: VaultCLI) -> None:
    _setup(vault)
    path = vault.home / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]))
    r = vault.run("token", "a")
    assert r.returncode == 6, r
    assert r.stdout == ""  # fail closed: no token without its audit record
    assert "truncated or altered" in r.stderr
    r = vault.run("audit", "reset", "--reason", "incident 42: log damaged")
    assert r.returncode == 0, r
    assert vault.run("token", "a").stdout == TOKEN + "\n"
    assert vault.run("audit", "verify").returncode == 0
    first = _records(vault)[0]
    assert first["event"] == "log_reset"
    assert "incident 42" in str(first["reason"])
    assert any(p.name.startswith("audit.jsonl.reset-") for p in vault.home.iterdir())


def test_torn_last_line_reported_then_set_aside(vault: VaultCLI) -> None:
    _setup(vault)
    path = vault.home / "audit.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"v":1,"seq":7,"time":"2026-')  # a crash mid-write
    r = vault.run("audit", "verify")
    assert r.returncode == 0, r
    assert "torn last line" in r.stderr
    r = vault.run("token", "a")
    assert r.returncode == 0, r
    assert "set aside" in r.stderr
    aside = [p for p in vault.home.iterdir() if ".torn-" in p.name]
    assert len(aside) == 1
    assert aside[0].read_bytes() == b'{"v":1,"seq":7,"time":"2026-'
    events = [r["event"] for r in _records(vault)]
    assert events[-2:] == ["torn_record_set_aside", "used"]
    assert vault.run("audit", "verify").returncode == 0


def _run_with_fsize_limit(
    vault: VaultCLI, limit: int, *args: str
) -> subprocess.CompletedProcess[bytes]:
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [VAULT_BIN, *args],
        env=vault.full_env(),
        capture_output=True,
        timeout=60,
        check=False,
        preexec_fn=limit_files,
    )


def test_disk_full_on_audit_blocks_the_token(vault: VaultCLI) -> None:
    _setup(vault)
    path = vault.home / "audit.jsonl"
    before = path.read_bytes()
    proc = _run_with_fsize_limit(vault, len(before) + 10, "token", "a")
    assert proc.returncode == 6, proc
    assert proc.stdout == b""  # the token is not printed
    assert b"cannot write the audit log" in proc.stderr
    assert path.read_bytes() == before  # no partial record left behind
    assert vault.run("audit", "verify").returncode == 0


def test_unwritable_audit_log_blocks_import(vault: VaultCLI) -> None:
    _setup(vault)
    path = vault.home / "audit.jsonl"
    path.rename(vault.home / "moved.jsonl")
    path.mkdir()  # a folder where the log should be: cannot be opened for writing
    r = vault.run("import", "c", "--provider", "github", input="tok-cccccccccc")
    assert r.returncode == 6, r
    path.rmdir()
    (vault.home / "moved.jsonl").rename(path)
    assert vault.run("token", "c").returncode == 4  # not stored


def test_rotation_keeps_one_chain(vault: VaultCLI) -> None:
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text("audit:\n  max_bytes: 4096\n")
    assert vault.run("import", "a", "--provider", "github", input=TOKEN).returncode == 0
    for _ in range(25):
        assert vault.run("token", "a").returncode == 0
    archives = sorted(p for p in vault.home.iterdir() if p.name.startswith("audit.jsonl.0"))
    assert len(archives) >= 2
    r = vault.run("audit", "verify", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["files"] == len(archives) + 1
    rotated = [r for r in _records(vault) if r["event"] == "log_rotated"]
    assert rotated
    shown = vault.run("audit", "show", "--json", "--event", "used")
    assert len(shown.stdout.splitlines()) == 25
    # Deleting an archived file is detected too.
    archives[0].unlink()
    assert vault.run("audit", "verify").returncode == 6


def test_show_filters_and_reports(vault: VaultCLI, tmp_path: Path) -> None:
    _setup(vault)
    r = vault.run("audit", "show", "--token", "a", "--json")
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["event"] for d in docs] == ["issued", "used", "used", "used"]
    r = vault.run("audit", "show", "--event", "deleted")
    assert r.returncode == 0
    assert "deleted" in r.stdout
    assert " b " in r.stdout
    assert vault.run("audit", "show", "--since", "2999-01-01").stderr.startswith("No audit")
    r = vault.run("audit", "show", "--until", "2000-01-01T00:00:00Z", "--json")
    assert r.stdout == ""
    r = vault.run("audit", "show", "--provider", "github", "--json")
    assert len(r.stdout.splitlines()) == 6
    assert vault.run("audit", "show", "--event", "nope").returncode == 2
    report = json.loads(vault.run("audit", "report", "--json").stdout)
    by_name = {t["name"]: t for t in report["tokens"]}
    assert by_name["a"]["uses"] == 3
    assert by_name["a"]["status"] == "active"
    assert by_name["b"]["status"] == "deleted"
    assert report["log"]["verified"] is True
    out = vault.run("audit", "report", "--csv").stdout
    verdict, rest = out.split("\n", 1)
    assert verdict.startswith("# audit log ")
    assert "verified=true: intact: 6 records" in verdict
    rows = list(csv.DictReader(io.StringIO(rest)))
    assert {r["name"] for r in rows} == {"a", "b"}
    html = tmp_path / "report.html"
    r = vault.run("audit", "report", "--html", str(html))
    assert r.returncode == 0, r
    page = html.read_text()
    assert "<html" in page.lower()
    assert TOKEN not in page


def test_login_events_against_the_provider(vault: VaultCLI) -> None:
    with start_idp() as idp:
        configure_provider(vault, idp.issuer, ("openid", "offline_access"))
        # A first login creates the vault; then a denied one (over the same name: --force) is
        # recorded as login_failed.
        approved_login(vault)
        approved_login(vault, "local", "--force", deny=True)
        assert vault.run("refresh", "local").returncode == 0
        assert vault.run("revoke", "local").returncode == 0
    events = [(r["event"], r["outcome"]) for r in _records(vault)]
    assert events == [
        ("issued", "success"),
        ("login_failed", "failure"),
        ("refreshed", "success"),
        ("revoked", "success"),
    ]
    assert vault.run("audit", "verify").returncode == 0


def test_huge_scope_lists_are_bounded_in_the_record() -> None:
    """A record longer than the append's tail window would make the log unreadable to the next
    write; a scope list a person (or a provider) made huge is cut, and says so."""
    from vault.audit.chain import MAX_SCOPES_CHARS, TAIL_WINDOW, make_event

    event = make_event("issued", name="a", scopes=[f"scope-{i:05d}" for i in range(100_000)])
    scopes = event["scopes"]
    assert isinstance(scopes, list)
    assert scopes[-1].endswith("more not recorded)")
    assert len(json.dumps(scopes)) < 2 * MAX_SCOPES_CHARS < TAIL_WINDOW
    assert make_event("issued", scopes=["repo", "gist"])["scopes"] == ["repo", "gist"]


# Every unsafe character of vault.util.text's table: each range's first and last code point.
HOSTILE = "".join(chr(c) for rng in UNSAFE_TABLE for c in rng if not 0xD800 <= c <= 0xDFFF)


def _hostile_records() -> bytes:
    """Lines someone put in the log (it is read unverified by show and report): every field
    holds every unsafe character; one line also holds raw C1 controls, DEL and a CR."""
    fields = ("event", "name", "provider", "outcome", "reason", "rule", "command", "time")
    lines = []
    for seq, kind in ((7, "issued"), (8, "used"), (9, "revoked")):
        doc: dict[str, object] = {k: f"{k}={HOSTILE}=" for k in fields}
        doc.update(v=1, seq=f"{seq}{HOSTILE}", event=kind, name=f"n{HOSTILE}", outcome="success")
        lines.append(json.dumps(doc).encode())
    doc = {"v": 1, "seq": 10, "time": 5, "event": "issued", "name": "raw", "outcome": "success"}
    raw = json.dumps(doc, ensure_ascii=False).replace('"raw"', '"r\u009b2J\x7f\u202eaw"')
    lines.append(raw.encode() + b"\r")
    return b"".join(line + b"\n" for line in lines)


def test_show_and_report_print_no_unsafe_character(vault: VaultCLI) -> None:
    """`audit show` and `audit report`, in every form, print nothing of the unsafe table raw,
    whatever the log holds; the CSV report still states the (failed) verdict first."""
    _setup(vault)
    with (vault.home / "audit.jsonl").open("ab") as fh:
        fh.write(_hostile_records())
    unsafe = pattern(*UNSAFE_TABLE, keep="\n")
    runs = {
        "show": ("audit", "show"),
        "show json": ("audit", "show", "--json"),
        "report": ("audit", "report"),
        "report json": ("audit", "report", "--json"),
        "report csv": ("audit", "report", "--csv"),
    }
    for what, args in runs.items():
        r = vault.run(*args)
        assert r.returncode == 0, (what, r)
        assert "Traceback" not in r.stderr, (what, r)
        for stream in (r.stdout, r.stderr):
            found = unsafe.search(stream)
            assert found is None, (what, found, stream[max(0, found.start() - 40) :][:80])
        if what == "show json":
            assert len(r.stdout.splitlines()) == 10  # every record, the hostile ones too
            assert json.loads(r.stdout.splitlines()[-1])["name"] == "r\u009b2J\x7f\u202eaw"
        if what == "report csv":
            first = r.stdout.splitlines()[0]
            assert first.startswith("# audit log ")
            assert "verified=false: TAMPERED" in first


def _archive_then_replace(vault: VaultCLI, kind: str, tmp_path: Path) -> Path:
    """A vault whose log was rotated once, with the archive (or the log) swapped for ``kind``."""
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text("audit:\n  max_bytes: 4096\n")
    _setup(vault)
    for _ in range(40):
        if list(vault.home.glob("audit.jsonl.0*")):
            break
        assert vault.run("token", "a").returncode == 0
    archives = sorted(vault.home.glob("audit.jsonl.0*"))
    assert archives
    target = archives[0] if kind != "symlinked log" else vault.home / "audit.jsonl"
    elsewhere = tmp_path / "elsewhere"
    shutil.move(target, elsewhere)
    if kind == "fifo":
        os.mkfifo(target, 0o600)
    else:
        target.symlink_to(elsewhere)
    return target


@pytest.mark.parametrize("kind", ["fifo", "symlinked archive", "symlinked log"])
def test_audit_commands_refuse_a_fifo_or_symlink_promptly(
    vault: VaultCLI, kind: str, tmp_path: Path
) -> None:
    """Every file the audit commands read (the log, its rotated archives) is checked as the log
    is: a FIFO (which would block a read forever) or a symlink is refused at once, with one line
    naming it and exit 6."""
    target = _archive_then_replace(vault, kind, tmp_path)
    for args in (
        ("audit", "verify"),
        ("audit", "show"),
        ("audit", "show", "--json", "--token", "a"),
        ("audit", "report"),
        ("audit", "report", "--csv"),
        ("audit", "report", "--html", str(tmp_path / "r.html")),
    ):
        r = vault.run(*args, timeout=20)
        assert r.returncode == 6, (args, r)
        first, *rest = r.stderr.splitlines()
        assert first.startswith("vault: error: refusing audit log"), (args, r)
        assert str(target) in first, (args, r)
        assert ("symlink" if "symlink" in kind else "not a regular file") in first, (args, r)
        assert all(line.startswith("vault: hint: ") for line in rest), (args, r)
        assert "Traceback" not in r.stderr


def test_filters_by_user_host_command_and_durations(vault: VaultCLI) -> None:
    """`--user`, `--host`, `--command` (whole words from the start) on show and report; `--since`
    and `--until` take durations as policies write them; a bad value is exit 2 naming it."""
    _setup(vault)
    assert vault.run("token", "nosuch").returncode != 0  # a lookup: an attempt, not a token
    me = _records(vault)[0]
    r = vault.run("audit", "show", "--json", "--user", str(me["user"]), "--since", "1h")
    assert len(r.stdout.splitlines()) == 7
    assert vault.run("audit", "show", "--json", "--user", "someone-else").stdout == ""
    r = vault.run("audit", "show", "--json", "--host", str(me["host"]), "--command", "token")
    assert [json.loads(line)["name"] for line in r.stdout.splitlines()] == ["a"] * 3 + ["nosuch"]
    assert vault.run("audit", "show", "--json", "--command", "tok").stdout == ""
    assert vault.run("audit", "show", "--json", "--until", "1h").stdout == ""
    table = vault.run("audit", "show", "--event", "issued", "--wide").stdout
    assert "USER" in table.splitlines()[0]
    assert str(me["host"]) in table
    report = json.loads(vault.run("audit", "report", "--json", "--since", "7d").stdout)
    assert [(t["name"], t["life"], t["status"]) for t in report["tokens"]] == [
        ("a", 1, "active"),
        ("b", 1, "deleted"),
    ]
    assert [(a["name"], a["failed_lookups"]) for a in report["attempts"]] == [("nosuch", 1)]
    assert report["users"][0]["user"] == me["user"]
    assert report["users"][0]["uses"] == 3
    for option in ("--since", "--until"):
        for bad in ("yesterday", "1x", "0h", "-1h"):
            r = vault.run("audit", "report", f"{option}={bad}")
            assert r.returncode == 2, (option, bad, r)
            assert r.stderr.startswith(f"vault: error: {option}: "), r.stderr
            assert "Traceback" not in r.stderr
