"""vault.audit.report.build_report as a function of plain values: a log, the mark, the time."""

from __future__ import annotations

import json
from pathlib import Path

from vault.audit.chain import AuditLog, Hwm, make_event
from vault.audit.report import Filters, build_report

NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def _log(tmp_path: Path) -> tuple[AuditLog, Hwm]:
    folder = tmp_path / "log"
    folder.mkdir(mode=0o700)
    log = AuditLog(folder / "audit.jsonl", b"k" * 32)
    hwm, _ = log.append(
        [
            make_event("issued", name="gh", provider="github", command="import", fingerprint="f1"),
            make_event("used", name="gh", provider="github", command="token", fingerprint="f1"),
            make_event("used", name="gh", provider="github", command="token", fingerprint="f1"),
            make_event("denied", name="gl", provider="gitlab", outcome="denied", rule="r1"),
            make_event("revoked", name="gh", provider="github", command="logout"),
            make_event("log_rotated", reason="not a token's"),
        ],
        Hwm(),
    )
    return log, hwm


def test_the_report_of_a_log(tmp_path: Path) -> None:
    log, hwm = _log(tmp_path)
    report = build_report(log, hwm, now=NOW)
    assert report["generated_at"] == "2026-11-18T11:06:40Z"
    assert report["log"]["path"] == str(log.path)
    assert report["log"]["events"] == 6
    assert report["log"]["verified"] is True
    assert report["log"]["verify_message"] == "intact: 6 records"
    (gh,) = report["tokens"]
    assert (gh["name"], gh["uses"], gh["status"], gh["issued_by"]) == ("gh", 2, "revoked", "import")
    assert gh["fingerprints"] == ["f1"]
    assert [e["event"] for e in gh["events"]] == ["issued", "used", "used", "revoked"]
    # A denial of a name that was never issued is an attempt, not a token.
    (gl,) = report["attempts"]
    assert (gl["name"], gl["denials"], gl["attempts"]) == ("gl", 1, 1)
    assert gl["events"][0]["rule"] == "r1 (None)"
    assert [v["event"] for v in report["vault_events"]] == ["log_rotated"]
    json.dumps(report)  # JSON-compatible


def test_filters(tmp_path: Path) -> None:
    log, hwm = _log(tmp_path)
    report = build_report(log, hwm, now=NOW, filters=Filters(token="gh", event="used"))
    assert report["log"]["events"] == 2
    assert [t["name"] for t in report["tokens"]] == ["gh"]
    assert (
        build_report(log, hwm, now=NOW, filters=Filters(since="2999-01-01T00:00:00"))["log"][
            "events"
        ]
        == 0
    )


def test_without_the_mark_nothing_is_verified(tmp_path: Path) -> None:
    log, _ = _log(tmp_path)
    report = build_report(AuditLog(log.path, b""), None, now=NOW, unverified="no vault")
    assert report["log"]["verified"] is None
    assert report["log"]["verify_message"] == "no vault"
    assert report["log"]["events"] == 6


def test_a_tampered_log(tmp_path: Path) -> None:
    log, hwm = _log(tmp_path)
    log.path.write_bytes(log.path.read_bytes().replace(b'"gl"', b'"GL"'))
    report = build_report(log, hwm, now=NOW)
    assert report["log"]["verified"] is False
    assert report["log"]["verify_message"].startswith("TAMPERED: ")
    assert [t["name"] for t in report["tokens"]] == ["gh"]
    assert [a["name"] for a in report["attempts"]] == ["GL"]
