"""`vault audit verify | show | report | hash | reset | pubkey | seal`: the audit log for
auditors."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vault.audit.chain import AuditLog, Hwm, fingerprint, verify
from vault.audit.report import EVENTS, SUMMARY, Filters, build_report, matching
from vault.cli.app import App
from vault.cli.render import Cell, Column, Styled, dump_json, table, when
from vault.errors import ConfigError, IntegrityError, UsageError
from vault.fs.durable import atomic_write
from vault.store.vault import Snapshot
from vault.util.text import clean, parse_time


def _log_and_hwm(app: App) -> tuple[AuditLog, Hwm, Snapshot]:
    snapshot = app.store.read()
    if snapshot is None:
        raise IntegrityError(
            "there is no vault, so there is no audit key to verify with",
            hint="the audit log is keyed by the vault it belongs to",
        )
    log = AuditLog(app.paths.audit_file, snapshot.meta.audit_key)
    return log, snapshot.hwm, snapshot


def cmd_verify(app: App, ns: argparse.Namespace) -> int:
    """The chain, the high-water mark, and the records the vault holds journaled that the log
    does not have yet (a kept change whose log could not be written: vault.store.vault): those
    are a warning ("pending" in --json), never tampering; the next command that can write the
    log writes them first, marked as recorded late."""
    if ns.pubkey is not None:
        return _verify_signed(app, ns)
    if ns.logs:
        raise UsageError(
            "log files are verified with the public key alone: vault audit verify --pubkey "
            "FILE LOG..."
        )
    log, hwm, snapshot = _log_and_hwm(app)
    verdict = verify(log, hwm)
    pending = app.store.unlogged(snapshot.meta)
    if pending:
        kinds = ", ".join(sorted({f"{e.get('event')} {e.get('name')!r}" for e in pending}))
        verdict.warnings.append(
            f"{len(pending)} audit record(s) ({clean(kinds, 300)}) are kept in the vault but not "
            "yet in the log, which could not be written when they happened; the next vault "
            "command that writes the log writes them first"
        )
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
                "pending": len(pending),
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


def time_arg(text: str | None, option: str, now: float) -> str | None:
    """``--since``/``--until``: an RFC 3339 time, a date (midnight UTC), or a duration as
    policies write them (``30m``, ``1h``, ``7d``, ``1d12h``: vault.policy.rules.parse_duration)
    meaning that long before ``now``; as UTC ``YYYY-MM-DDTHH:MM:SS``. Anything else is a usage
    error (exit 2) naming the option."""
    if text is None:
        return None
    try:
        ts = parse_time(text)
    except ValueError:
        ts = None
    except (OverflowError, OSError):  # a year out of range
        raise UsageError(f"{option}: {clean(text, 80)!r} is out of range") from None
    if ts is None:
        from vault.policy.rules import parse_duration

        try:
            ts = max(0, int(now) - parse_duration(text, option, "duration"))
        except ConfigError:
            ts = None
    if ts is None:
        raise UsageError(
            f"{option}: {clean(text, 80)!r} is not a time",
            hint="an RFC 3339 time (2026-11-23T08:00:00Z), a date (2026-11-23) or a duration "
            "back from now (30m, 1h, 7d)",
        )
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    except (OverflowError, OSError, ValueError):
        raise UsageError(f"{option}: {clean(text, 80)!r} is out of range") from None


def _filters(ns: argparse.Namespace) -> Filters:
    """The filter options, checked."""
    now = time.time()
    since = time_arg(ns.since, "--since", now)
    until = time_arg(ns.until, "--until", now)
    if ns.event and ns.event not in EVENTS:
        raise UsageError(f"unknown event {ns.event!r}", hint=f"events: {', '.join(EVENTS)}")
    return Filters(
        since=since,
        until=until,
        event=ns.event or None,
        token=ns.token or None,
        provider=getattr(ns, "provider", None) or None,
        user=getattr(ns, "user", None) or None,
        host=getattr(ns, "host", None) or None,
        command=getattr(ns, "command", None) or None,
    )


def filtered(app: App, ns: argparse.Namespace) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Records matching the filters, as (raw line, parsed)."""
    filters = _filters(ns)
    return matching(AuditLog(app.paths.audit_file, b"").files(), filters)


def _terminal_safe_json(doc: object) -> bytes:
    """JSON with every character outside printable ASCII escaped (``ensure_ascii`` leaves DEL)."""
    text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
    return text.replace("\x7f", "\\u007f").encode()


_NOT_PRINTABLE_ASCII = re.compile(rb"[^\x20-\x7e]")


def _safe_line(raw: bytes, doc: dict[str, Any]) -> bytes:
    """A record's line for `audit show --json`: as it is on disk when it is printable ASCII
    (every line vault writes), else re-serialised with the rest escaped. The log is read
    unverified here, and a line put in it must not reach the terminal raw."""
    body = raw[:-1] if raw.endswith(b"\n") else raw
    if _NOT_PRINTABLE_ASCII.search(body) is None:  # one scan in C, not a loop over bytes
        return body + b"\n"
    return _terminal_safe_json(doc) + b"\n"


def _cell(value: object, limit: int) -> str:
    """One column of `audit show` or `audit report`, from a record that was not verified."""
    return clean("-" if value is None or value == "" else value, limit)


def _show_format(ns: argparse.Namespace) -> str:
    """--format, with --json as its alias for json."""
    chosen: str | None = getattr(ns, "format", None)
    if ns.json and chosen not in (None, "json"):
        raise UsageError(f"--json is --format json: give one of --json, --format {chosen}")
    return "json" if ns.json else chosen or "table"


def cmd_show(app: App, ns: argparse.Namespace) -> int:
    """The records as a table, as stored (json), or as OCSF or ECS documents, one a line;
    every line printable ASCII (the log is read unverified)."""
    shape = _show_format(ns)
    if shape == "json":
        out = sys.stdout.buffer
        for raw, doc in filtered(app, ns):
            out.write(_safe_line(raw, doc))
        return 0
    if shape in ("ocsf", "ecs"):
        from vault.audit.formats import to_ecs, to_ocsf

        convert = to_ocsf if shape == "ocsf" else to_ecs
        out = sys.stdout.buffer
        for _, doc in filtered(app, ns):
            out.write(_terminal_safe_json(convert(doc)) + b"\n")
        return 0
    now, absolute = time.time(), bool(getattr(ns, "absolute", False))
    rows: list[list[Cell]] = []
    for _, doc in filtered(app, ns):
        outcome = _cell(doc.get("outcome"), 12)
        rows.append(
            [
                _cell(doc.get("seq"), 20),
                _time(doc.get("time"), now, absolute),
                _cell(doc.get("event"), 24),
                _cell(doc.get("name"), 128),
                _cell(doc.get("provider"), 24),
                Styled(outcome, _OUTCOME_STYLE.get(outcome)),
                _cell(doc.get("user"), 32),
                _cell(doc.get("host"), 64),
                _cell(doc.get("command"), 80),
                _cell(doc.get("reason") or doc.get("rule"), 200),
            ]
        )
    if not rows:
        app.say("No audit records match.")
        return 0
    table(
        [Column("SEQ", "keep"), Column("TIME", "keep"), Column("EVENT", "cut", least=7),
         Column("NAME", "wrap", least=8), Column("PROVIDER", "cut", wide=True),
         Column("OUTCOME", "cut", least=7), Column("USER", "cut", wide=True),
         Column("HOST", "cut", wide=True), Column("COMMAND", "cut", least=8),
         Column("REASON", "cut", least=8)],
        rows,
        wide=bool(getattr(ns, "wide", False)),
    )  # fmt: skip
    return 0


_OUTCOME_STYLE = {"denied": "bad", "failure": "bad", "success": None}


def _time(value: object, now: float, absolute: bool) -> str:
    """A record's time (as stored: RFC 3339 UTC, milliseconds) for a person: relative to now,
    or with --absolute to the second, as written; "-" where it is missing or not a time (the
    log is read unverified)."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        ts = parse_time(value)
    except (ValueError, OverflowError, OSError):
        return _cell(value[:24], 24)
    return when(ts, now, absolute=absolute)


# --- report ------------------------------------------------------------------------------


def _report(app: App, ns: argparse.Namespace) -> dict[str, Any]:
    filters = _filters(ns)
    try:
        log, mark, _ = _log_and_hwm(app)
    except IntegrityError as exc:
        return build_report(
            AuditLog(app.paths.audit_file, b""),
            None,
            now=time.time(),
            filters=filters,
            unverified=f"not verified: {exc.message}",
        )
    return build_report(log, mark, now=time.time(), filters=filters)


def cmd_report(app: App, ns: argparse.Namespace) -> int:
    report = _report(app, ns)
    if ns.html:
        from vault.audit.html import render_html

        target = Path(ns.html)
        page = render_html(report).encode()
        if str(target) == "-":
            sys.stdout.buffer.write(page)
        else:
            atomic_write(target, page, what="report")
            app.say(
                f"Wrote the report ({len(report['tokens'])} token lives, "
                f"{len(report['attempts'])} names only attempted) to {target}."
            )
        return 0
    rows = [{k: t[k] for k in SUMMARY} for t in report["tokens"]]
    log = report["log"]
    if app.json:
        out = sys.stdout.buffer
        doc = {
            "version": 1,
            "log": log,
            "filters": report["filters"],
            "tokens": rows,
            "attempts": [_without_events(a) for a in report["attempts"]],
            "vault_events": [_without_events(v) for v in report["vault_events"]],
            **{key: report[key] for key in ("users", "hosts", "commands", "days", "kinds")},
        }
        out.write(_terminal_safe_json(doc) + b"\n")
        out.flush()
    elif ns.csv:
        # The verdict first, as the table, JSON and HTML reports give it: one comment row.
        verdict = {True: "true", False: "false", None: "null"}.get(log["verified"], "null")
        sys.stdout.write(
            _csv_line([f"# audit log {clean(log['path'])}: verified={verdict}: "
                       f"{clean(log['verify_message'], 2000)}"])
        )  # fmt: skip
        writer = csv.DictWriter(sys.stdout, fieldnames=list(SUMMARY), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_safe(v) for k, v in row.items()})
    else:
        _report_tables(app, report, rows)
    return 0


def _without_events(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "events"}


def _report_tables(app: App, report: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """`vault audit report` for a person: the verdict, then the lives, attempts, vault events
    and the records per user and host, each table only when it has rows. Narrow (fitted to
    the width) unless --wide; times relative unless --absolute."""
    ns = app.ns
    wide, absolute, now = (
        bool(getattr(ns, "wide", False)),
        bool(getattr(ns, "absolute", False)),
        time.time(),
    )

    def at(value: object) -> str:
        return _time(value, now, absolute) if value else "-"

    log = report["log"]
    app.say(f"Audit log {clean(log['path'])}: {clean(log['verify_message'], 2000)}")
    table(
        [Column("NAME", "wrap", least=8), Column("LIFE", "keep"),
         Column("PROVIDER", "cut", wide=True), Column("ISSUED", "keep", drop=2),
         Column("ENDED", "keep", wide=True), Column("USES", "keep"),
         Column("LAST USE", "keep", drop=1), Column("REFRESHES", "keep", wide=True),
         Column("DENIED", "keep"), Column("FAILED", "keep"), Column("STATUS", "cut", least=7),
         Column("USERS", "cut", wide=True)],
        [
            [_cell(r["name"], 128), _cell(r["life"], 6), _cell(r["provider"], 24),
             at(r["issued"]), at(r["ended"]), _cell(r["uses"], 20), at(r["last_use"]),
             _cell(r["refreshes"], 20), _cell(r["denials"], 20), _cell(r["failures"], 20),
             _cell(r["status"], 12), _cell(" ".join(r["users"]), 60)]
            for r in rows
        ],
        wide=wide,
    )  # fmt: skip
    attempts = report["attempts"]
    if attempts:
        sys.stdout.write("\nAttempts (names that held no token):\n")
        table(
            [Column("NAME", "wrap", least=8), Column("PROVIDER", "cut", wide=True),
             Column("ATTEMPTS", "keep"), Column("LOOKUPS", "keep", wide=True),
             Column("LOGINS FAILED", "keep", wide=True), Column("INTERRUPTED", "keep", wide=True),
             Column("DENIED", "keep"), Column("OTHER", "keep", wide=True),
             Column("FIRST", "keep", drop=1), Column("LAST", "keep"),
             Column("USERS", "cut", wide=True)],
            [
                [_cell(a["name"], 128), _cell(a["provider"], 24), _cell(a["attempts"], 20),
                 _cell(a["failed_lookups"], 20), _cell(a["failed_logins"], 20),
                 _cell(a["interrupted_logins"], 20), _cell(a["denials"], 20),
                 _cell(a["other"], 20), at(a["first"]), at(a["last"]),
                 _cell(" ".join(a["users"]), 60)]
                for a in attempts
            ],
            wide=wide,
        )  # fmt: skip
    if report["vault_events"]:
        sys.stdout.write("\nVault events:\n")
        table(
            [Column("EVENT", "wrap", least=8), Column("COUNT", "keep"),
             Column("FIRST", "keep", drop=1),
             Column("LAST", "keep")],
            [
                [_cell(v["event"], 30), _cell(v["count"], 20), at(v["first"]), at(v["last"])]
                for v in report["vault_events"]
            ],
            wide=wide,
        )  # fmt: skip
    for key, title in (("users", "USER"), ("hosts", "HOST")):
        if report[key]:
            sys.stdout.write(f"\nPer {key[:-1]}:\n")
            table(
                [Column(title, "wrap", least=8), Column("EVENTS", "keep"), Column("USES", "keep"),
                 Column("DENIED", "keep"), Column("FAILED", "keep"), Column("ATTEMPTS", "keep")],
                [
                    [_cell(r[key[:-1]], 64), _cell(r["events"], 20), _cell(r["uses"], 20),
                     _cell(r["denials"], 20), _cell(r["failures"], 20),
                     _cell(r["attempts"], 20)]
                    for r in report[key]
                ],
                wide=wide,
            )  # fmt: skip


def _csv_safe(value: object) -> object:
    """A CSV cell: text cleaned (vault.util.text), and a leading =, +, - or @ (a formula in a
    spreadsheet) neutralised; numbers as they are."""
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return value
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    text = clean(value, 2000)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


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


# --- signed chain ------------------------------------------------------------------------


def _verify_signed(app: App, ns: argparse.Namespace) -> int:
    """`verify --pubkey FILE [LOG...]`: the keyless chain and its signatures, with nothing of
    the vault (no key, keyring, config or policy is read): vault.audit.keyless. Exit 0 when
    intact and anchored (records after the last signature are reported, not failed), 6 when
    tampered, signed by another key, or not anchored at all."""
    from vault.audit.keyless import open_given, verify_signed
    from vault.audit.signing import PublicKey

    source = Path(ns.pubkey)
    fd = open_given(source)  # a regular file (a public key need not be private)
    with open(fd, "rb", closefd=True) as fh:
        data = fh.read(1 << 16)
    key = PublicKey.from_pem(data, source=str(source))
    if ns.logs:
        paths, given = [Path(p) for p in ns.logs], True
    else:
        paths, given = AuditLog(app.paths.audit_file, b"").files(), False
        if not paths:
            raise UsageError(f"there is no audit log at {app.paths.audit_file}")
    verdict = verify_signed(paths, key, given=given)
    if app.json:
        dump_json(verdict.to_json())
    for warning in verdict.warnings:
        app.say(f"vault: warning: {clean(warning, 2000)}")
    if not verdict.ok:
        raise IntegrityError(f"the audit log does not verify: {clean(verdict.problem, 2000)}")
    if not app.json:
        app.say(
            f"The audit log verifies with {key.fingerprint}: {verdict.records} records in "
            f"{verdict.files} file(s), hash chain intact from record {verdict.chain_start} to "
            f"{verdict.last_seq}, anchored up to record {verdict.anchored_seq} by its signature "
            f"({clean(verdict.anchored_time or '?', 40)}); {verdict.signatures} signature(s)."
        )
    return 0


def cmd_pubkey(app: App, ns: argparse.Namespace) -> int:
    """The public half of the vault's audit signing key, to publish: PEM on stdout, or its
    fingerprint. Makes the key (written into the vault) for a vault made before there was one."""
    from vault.audit.signing import Signer

    signer = Signer(app.store.signing_key())
    if app.json:
        dump_json(
            {
                "algorithm": "ed25519",
                "fingerprint": signer.fingerprint,
                "pem": signer.public_pem(),
                "openssh": signer.public_openssh(),
            }
        )
    elif ns.fingerprint:
        sys.stdout.write(signer.fingerprint + "\n")
    elif ns.openssh:
        sys.stdout.write(signer.public_openssh() + "\n")
    else:
        sys.stdout.write(signer.public_pem())
    return 0


def cmd_seal(app: App, ns: argparse.Namespace) -> int:
    """Sign the chain's head now: a `chain_signed` record is appended."""
    record = app.store.seal()
    if app.json:
        dump_json({k: record.get(k) for k in _SEAL_FIELDS})
    else:
        app.say(
            f"Signed the audit log's head (record {record['head_seq']}) with "
            f"{record['key_fingerprint']}: record {record['seq']}."
        )
    return 0


_SEAL_FIELDS = ("seq", "time", "head_seq", "head_hash", "key_fingerprint", "signature", "sha256")
