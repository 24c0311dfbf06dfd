"""`vault audit verify | show | report | hash | reset`: the audit log for auditors."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vault.audit.chain import AuditLog, Hwm, fingerprint, read_lines, verify
from vault.cli.app import App
from vault.cli.render import dump_json, table
from vault.errors import IntegrityError, UsageError
from vault.fs.durable import atomic_write
from vault.util.text import clean, parse_time

EVENTS = (
    "issued",
    "used",
    "refreshed",
    "revoked",
    "deleted",
    "pruned",
    "denied",
    "login_failed",
    "key_rotated",
    "log_rotated",
    "log_reset",
    "torn_record_set_aside",
)


def _log_and_hwm(app: App) -> tuple[AuditLog, Hwm]:
    snapshot = app.store.read()
    if snapshot is None:
        raise IntegrityError(
            "there is no vault, so there is no audit key to verify with",
            hint="the audit log is keyed by the vault it belongs to",
        )
    log = AuditLog(app.paths.audit_file, snapshot.meta.audit_key)
    return log, snapshot.hwm


def cmd_verify(app: App, ns: argparse.Namespace) -> int:
    log, hwm = _log_and_hwm(app)
    verdict = verify(log, hwm)
    if app.json:
        dump_json(
            {
                "ok": verdict.ok,
                "records": verdict.records,
                "files": verdict.files,
                "problem": verdict.problem,
                "bad_seq": verdict.bad_seq,
                "bad_line": verdict.bad_line,
                "bad_file": verdict.bad_file,
                "warnings": verdict.warnings,
            }
        )
    for warning in verdict.warnings:
        app.say(f"vault: warning: {warning}")
    if not verdict.ok:
        raise IntegrityError(f"the audit log was tampered with: {verdict.problem}")
    if not app.json:
        app.say(
            f"The audit log is intact: {verdict.records} records in {verdict.files} file(s), "
            f"chain and high-water mark (record {hwm.seq}) verified."
        )
    return 0


def _time_arg(text: str | None, what: str) -> str | None:
    if text is None:
        return None
    try:
        ts = parse_time(text)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


def filtered(app: App, ns: argparse.Namespace) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Records matching the filters, as (raw line, parsed). A cheap byte test skips lines that
    cannot match before any JSON is parsed, so `--token X` over a million lines is quick."""
    since = _time_arg(ns.since, "--since")
    until = _time_arg(ns.until, "--until")
    if ns.event and ns.event not in EVENTS:
        raise UsageError(f"unknown event {ns.event!r}", hint=f"events: {', '.join(EVENTS)}")
    needles = []
    if ns.token:
        needles.append(b'"name":' + json.dumps(ns.token).encode() + b",")
    if ns.event:
        needles.append(b'"event":' + json.dumps(ns.event).encode() + b",")
    if getattr(ns, "provider", None):
        needles.append(b'"provider":' + json.dumps(ns.provider).encode() + b",")
    log = AuditLog(app.paths.audit_file, b"")
    for path in log.files():
        lines = _lines_with(path, needles[0]) if needles else read_lines(path, [b""])
        for raw in lines:
            if len(needles) > 1 and not all(n in raw for n in needles[1:]):
                continue
            try:
                doc = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if not isinstance(doc, dict):
                continue  # valid JSON, but no record of ours
            stamp = str(doc.get("time", ""))[:19]
            if since and stamp < since:
                continue
            if until and stamp > until:
                continue
            yield raw + b"\n", doc


def _lines_with(path: Path, needle: bytes, block: int = 1 << 22) -> Iterator[bytes]:
    """The complete lines of a file that contain ``needle`` (without their newline), found by
    searching whole blocks rather than testing line after line: `--token X` skips the lines
    of every other token at the speed of a byte search."""
    rest = b""
    with open(path, "rb", buffering=0) as fh:
        while data := fh.read(block):
            data = rest + data
            end_of_lines = data.rfind(b"\n") + 1  # the torn or unread part stays for later
            at = data.find(needle, 0, end_of_lines)
            while at >= 0:
                start = data.rfind(b"\n", 0, at) + 1
                end = data.find(b"\n", at)
                yield data[start:end]
                at = data.find(needle, end + 1, end_of_lines)
            rest = data[end_of_lines:]


def cmd_show(app: App, ns: argparse.Namespace) -> int:
    if app.json:
        out = sys.stdout.buffer
        for raw, _ in filtered(app, ns):
            out.write(raw)
        return 0
    rows = []
    for _, doc in filtered(app, ns):
        rows.append(
            [
                str(doc.get("seq", "")),
                str(doc.get("time", ""))[:19] + "Z",
                clean(doc.get("event") or "-", 24),
                clean(doc.get("name") or "-", 40),
                clean(doc.get("provider") or "-", 24),
                clean(doc.get("outcome") or "-", 12),
                clean(doc.get("reason") or doc.get("rule") or "-", 80),
            ]
        )
    if not rows:
        app.say("No audit records match.")
        return 0
    table(["SEQ", "TIME", "EVENT", "NAME", "PROVIDER", "OUTCOME", "REASON"], rows)
    return 0


# --- report ------------------------------------------------------------------------------


def build_report(app: App, ns: argparse.Namespace) -> dict[str, Any]:
    tokens: dict[str, dict[str, Any]] = {}
    total = 0
    first = last = None
    for _, doc in filtered(app, ns):
        total += 1
        when = doc.get("time")
        first = first or when
        last = when
        name = doc.get("name")
        if not isinstance(name, str):
            continue
        t = tokens.setdefault(
            name,
            {
                "name": name,
                "provider": doc.get("provider"),
                "issuer": doc.get("issuer"),
                "fingerprints": [],
                "issued": None,
                "issued_by": None,
                "uses": 0,
                "last_use": None,
                "refreshes": 0,
                "revoked": None,
                "pruned": None,
                "denials": 0,
                "failures": 0,
                "status": "active",
                "events": [],
            },
        )
        kind = doc.get("event")
        outcome = doc.get("outcome")
        fp = doc.get("fingerprint")
        if fp and fp not in t["fingerprints"]:
            t["fingerprints"].append(fp)
        if kind == "issued" and outcome == "success":
            t["issued"] = when
            t["issued_by"] = doc.get("command") or "login"
            t["status"] = "active"
            t["provider"] = doc.get("provider") or t["provider"]
            t["issuer"] = doc.get("issuer") or t["issuer"]
        elif kind == "used" and outcome == "success":
            t["uses"] += 1
            t["last_use"] = when
        elif kind == "refreshed" and outcome == "success":
            t["refreshes"] += 1
        elif kind == "revoked" and outcome == "success":
            t["revoked"] = when
            t["status"] = "revoked"
        elif kind == "deleted":
            t["status"] = "deleted"
        elif kind == "pruned":
            t["pruned"] = when
            t["status"] = "pruned"
        if outcome == "denied":
            t["denials"] += 1
        elif outcome == "failure":
            t["failures"] += 1
        t["events"].append(
            {
                "time": when,
                "seq": doc.get("seq"),
                "event": kind,
                "outcome": outcome,
                "reason": doc.get("reason"),
                "rule": (f"{doc.get('rule')} ({doc.get('source')})" if doc.get("rule") else None),
                "scopes": doc.get("scopes"),
                "command": doc.get("command"),
            }
        )
    verified: bool | None = None
    message = "not verified"
    try:
        log, hwm = _log_and_hwm(app)
        verdict = verify(log, hwm)
        verified = verdict.ok
        message = (
            f"intact: {verdict.records} records" if verdict.ok else f"TAMPERED: {verdict.problem}"
        )
    except IntegrityError as exc:
        message = f"not verified: {exc.message}"
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "log": {
            "path": str(app.paths.audit_file),
            "events": total,
            "first": first,
            "last": last,
            "verified": verified,
            "verify_message": message,
        },
        "tokens": sorted(tokens.values(), key=lambda t: t["name"]),
    }


SUMMARY = (
    "name",
    "provider",
    "issuer",
    "issued",
    "issued_by",
    "uses",
    "last_use",
    "refreshes",
    "revoked",
    "pruned",
    "denials",
    "failures",
    "status",
)


def cmd_report(app: App, ns: argparse.Namespace) -> int:
    report = build_report(app, ns)
    if ns.html:
        from vault.audit.html import render_html

        target = Path(ns.html)
        page = render_html(report).encode()
        if str(target) == "-":
            sys.stdout.buffer.write(page)
        else:
            atomic_write(target, page, what="report")
            app.say(f"Wrote the report ({len(report['tokens'])} tokens) to {target}.")
        return 0
    rows = [{k: t[k] for k in SUMMARY} for t in report["tokens"]]
    if app.json:
        dump_json({"version": 1, "log": report["log"], "tokens": rows})
    elif ns.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(SUMMARY), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            # A leading =, +, - or @ would be a formula in a spreadsheet: neutralise it.
            writer.writerow({k: _csv_safe(v) for k, v in row.items()})
    else:
        app.say(f"Audit log {report['log']['path']}: {report['log']['verify_message']}")
        table(
            [
                "NAME",
                "PROVIDER",
                "ISSUED",
                "USES",
                "LAST USE",
                "REFRESHES",
                "ENDED",
                "DENIALS",
                "STATUS",
            ],
            [
                [
                    clean(r["name"], 40),
                    clean(r["provider"] or "-", 24),
                    (r["issued"] or "-")[:19],
                    str(r["uses"]),
                    (r["last_use"] or "-")[:19],
                    str(r["refreshes"]),
                    (r["revoked"] or r["pruned"] or "-")[:19],
                    str(r["denials"]),
                    r["status"],
                ]
                for r in rows
            ],
        )
    return 0


def _csv_safe(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def cmd_hash(app: App, ns: argparse.Namespace) -> int:
    """The fingerprint a token would have in this vault's audit log (token from stdin)."""
    from vault.cli.commands.store import read_token_from_stdin

    snapshot = app.store.read()
    if snapshot is None:
        raise IntegrityError("there is no vault, so there is no audit key")
    token = read_token_from_stdin()
    sys.stdout.write(fingerprint(snapshot.meta.audit_key, token) + "\n")
    return 0


def cmd_reset(app: App, ns: argparse.Namespace) -> int:
    """Set a damaged log aside and start a new chain whose first record says so."""
    if not ns.reason:
        raise UsageError("say why: vault audit reset --reason TEXT")
    moved, old_seq = app.store.reset_audit(clean(ns.reason, 300))
    app.say(
        f"Started a new audit log; the old one (up to record {old_seq}) was kept as "
        f"{', '.join(moved) or 'nothing (there was none)'}."
    )
    return 0
