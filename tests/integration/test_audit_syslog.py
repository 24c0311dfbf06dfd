"""Audit events forwarded to a real rsyslog (RFC 5424 over TCP on 127.0.0.1) by the real CLI."""

from __future__ import annotations

import json

from tests.conftest import VaultCLI
from tests.harness.rsyslog import Rsyslog


def test_events_reach_rsyslog(vault: VaultCLI, rsyslog: Rsyslog) -> None:
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text(f"audit:\n  syslog: tcp:127.0.0.1:{rsyslog.tcp_port}\n")
    assert (
        vault.run("import", "sys-gh", "--provider", "github", input="tok-syslog-1").returncode == 0
    )
    assert vault.run("token", "sys-gh").returncode == 0
    records = rsyslog.wait_for('name="sys-gh"', 2)
    assert [r.msgid for r in records] == ["issued", "used"]
    local = [json.loads(line) for line in (vault.home / "audit.jsonl").read_text().splitlines()]
    for record, stored in zip(records, local, strict=True):
        assert record.app_name == "vault"
        assert record.sd["vault@32473"]["seq"] == str(stored["seq"])
        assert record.sd["vault@32473"]["fingerprint"] == stored["fingerprint"]
        assert json.loads(record.msg.lstrip("\ufeff"))["seq"] == stored["seq"]
        assert "tok-syslog-1" not in record.line


def test_unreachable_syslog_is_a_warning_not_a_loss(vault: VaultCLI) -> None:
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text("audit:\n  syslog: tcp:127.0.0.1:9\n")
    r = vault.run("import", "x", "--provider", "github", input="tok-xxxxxxxx")
    assert r.returncode == 0, r
    assert "not forwarded to syslog" in r.stderr
    assert vault.run("audit", "verify").returncode == 0
