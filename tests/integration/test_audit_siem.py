"""The real `vault` executable forwarding its audit records to a real rsyslogd in its default
parser configuration: OCSF and ECS documents over RFC 5425 TLS (rsyslog's gtls driver, a CA
made in the fixture), the local line on imuxsock's default parser, every resolved address tried;
and `vault audit show --format`."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest

from tests.conftest import Result, VaultCLI
from tests.harness.rsyslog import Received, Record, Rsyslog, find_rsyslogd, start_rsyslog
from tests.harness.testca import make_ca

RESOLVE_HOOK = Path(__file__).parent.parent / "harness" / "resolvehook"
CANARY = "tok-siem-canary-5b1f0e"


def tls_of(daemon: Rsyslog) -> tuple[int, Path]:
    if daemon.tls_port is None or daemon.ca is None:
        pytest.skip("rsyslog's gtls driver is not installed (apt-get install rsyslog-gnutls)")
    return daemon.tls_port, daemon.ca.ca_file


def configure(vault: VaultCLI, **audit: str) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    lines = "".join(f"  {key}: {json.dumps(value)}\n" for key, value in audit.items())
    (vault.home / "config.yaml").write_text(f"audit:\n{lines}")
    (vault.home / "config.yaml").chmod(0o600)


def import_and_use(vault: VaultCLI, name: str, env: dict[str, str] | None = None) -> list[Result]:
    results = [
        vault.run("import", name, "--provider", "github", input=CANARY, env=env),
        vault.run("token", name, env=env),
    ]
    for result in results:
        assert result.returncode == 0, result
    return results


def local_records(vault: VaultCLI) -> list[dict[str, object]]:
    return [json.loads(line) for line in (vault.home / "audit.jsonl").read_text().splitlines()]


def no_canary(daemon: Rsyslog) -> None:
    for path in (daemon.out_log, daemon.fields_log):
        if path.exists():
            assert CANARY.encode() not in path.read_bytes()


def one_warning(result: Result, fragment: str) -> None:
    """The command succeeded, and said on one line that forwarding did not happen."""
    assert result.returncode == 0, result
    lines = [line for line in result.stderr.splitlines() if "not forwarded" in line]
    assert len(lines) == 1, result
    assert fragment in lines[0], result
    assert "Traceback" not in result.stderr


# -- TLS ------------------------------------------------------------------------------------------


def test_ocsf_over_tls_reaches_rsyslog(vault: VaultCLI, rsyslog: Rsyslog) -> None:
    port, ca = tls_of(rsyslog)
    configure(vault, syslog=f"tls:127.0.0.1:{port}", format="ocsf", tls_ca=str(ca))
    for result in import_and_use(vault, "siem-ocsf"):
        assert "not forwarded" not in result.stderr, result
    local = local_records(vault)
    marker = str(local[0]["fingerprint"])
    records: list[Record] = rsyslog.wait_for(marker, 2)
    assert [r.msgid for r in records] == ["issued", "used"]
    docs = [json.loads(r.msg) for r in records]
    for doc, stored in zip(docs, local, strict=True):
        assert doc["class_uid"] == 3002
        assert doc["metadata"]["sequence"] == stored["seq"]
        assert doc["unmapped"]["fingerprint"] == stored["fingerprint"]
        assert doc["unmapped"]["name"] == "siem-ocsf"
        assert doc["service"]["name"] == "github"
        assert doc["auth_protocol"] == "OAUTH 2.0"
        assert doc["user"]["name"] == stored["user"]
    assert [d["activity_id"] for d in docs] == [1, 99]
    received: list[Received] = rsyslog.wait_for_received(marker, 2)
    assert {got.inputname for got in received} == {"tls"}
    assert {got.programname for got in received} == {"vault"}
    no_canary(rsyslog)


def test_ecs_over_tcp_reaches_rsyslog(vault: VaultCLI, rsyslog: Rsyslog) -> None:
    configure(vault, syslog=f"tcp:127.0.0.1:{rsyslog.tcp_port}", format="ecs")
    import_and_use(vault, "siem-ecs")
    local = local_records(vault)
    records = rsyslog.wait_for(str(local[0]["fingerprint"]), 2)
    docs = [json.loads(r.msg) for r in records]
    assert [d["event"]["action"] for d in docs] == ["issued", "used"]
    assert [d["event"]["sequence"] for d in docs] == [r["seq"] for r in local]
    assert {d["ecs"]["version"] for d in docs} == {"8.11.0"}
    assert {d["service"]["target"]["name"] for d in docs} == {"github"}
    no_canary(rsyslog)


def test_tls_with_the_pinned_key(vault: VaultCLI, rsyslog: Rsyslog) -> None:
    port, ca = tls_of(rsyslog)
    assert rsyslog.ca is not None
    pin = f"sha256:{rsyslog.ca.spki_sha256}"
    configure(vault, syslog=f"tls:127.0.0.1:{port}", tls_ca=str(ca), tls_pin=pin)
    import_and_use(vault, "siem-pin")
    assert len(rsyslog.wait_for(str(local_records(vault)[0]["fingerprint"]), 2)) == 2


def test_tls_wrong_ca_is_a_warning_and_nothing_sent(
    vault: VaultCLI, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    port, _ = tls_of(rsyslog)
    other = make_ca(tmp_path / "other")
    configure(vault, syslog=f"tls:127.0.0.1:{port}", tls_ca=str(other.ca_file))
    for result in import_and_use(vault, "siem-wrong-ca"):
        one_warning(result, "TLS certificate refused")
    marker = str(local_records(vault)[0]["fingerprint"])
    assert rsyslog.wait_for(marker, 1, timeout=1.0) == []
    assert vault.run("audit", "verify").returncode == 0


def test_tls_wrong_pin_is_a_warning_and_nothing_sent(
    vault: VaultCLI, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    port, ca = tls_of(rsyslog)
    pin = f"sha256:{make_ca(tmp_path / 'other').spki_sha256}"
    configure(vault, syslog=f"tls:127.0.0.1:{port}", tls_ca=str(ca), tls_pin=pin)
    for result in import_and_use(vault, "siem-wrong-pin"):
        one_warning(result, "does not match audit.tls_pin")
    marker = str(local_records(vault)[0]["fingerprint"])
    assert rsyslog.wait_for(marker, 1, timeout=1.0) == []


def test_tls_ca_relative_to_the_config_folder(vault: VaultCLI, rsyslog: Rsyslog) -> None:
    port, ca = tls_of(rsyslog)
    vault.home.mkdir(mode=0o700)
    (vault.home / "syslog-ca.pem").write_bytes(ca.read_bytes())
    configure(vault, syslog=f"tls:127.0.0.1:{port}", tls_ca="syslog-ca.pem")
    import_and_use(vault, "siem-relative")
    assert len(rsyslog.wait_for(str(local_records(vault)[0]["fingerprint"]), 2)) == 2


# -- the local socket, read by imuxsock's default parser ------------------------------------------


@pytest.mark.parametrize("message_format", ["rfc5424", "ocsf"])
def test_local_socket_on_the_default_parser(
    vault: VaultCLI, rsyslog: Rsyslog, message_format: str
) -> None:
    configure(vault, syslog=f"unix:{rsyslog.unix_socket}", format=message_format)
    import_and_use(vault, f"siem-local-{message_format}")
    local = local_records(vault)
    marker = str(local[0]["fingerprint"])
    received = rsyslog.wait_for_received(marker, 2)
    assert len(received) == 2, rsyslog.received()
    for got, stored in zip(received, local, strict=True):
        assert got.inputname == "imuxsock"
        assert got.programname == "vault"
        assert got.syslogtag == f"vault[{stored['pid']}]:"
        assert got.procid == str(stored["pid"])
        assert got.hostname == socket.gethostname().split(".")[0]
        assert got.facility == 10  # authpriv: Debian's rsyslog.conf sends it to auth.log
        doc = json.loads(got.msg)
        if message_format == "rfc5424":
            assert doc["seq"] == stored["seq"]
            assert doc["fingerprint"] == stored["fingerprint"]
        else:
            assert doc["metadata"]["sequence"] == stored["seq"]
    no_canary(rsyslog)


# -- every resolved address, by the real executable -----------------------------------------------


def v6_port_is_free(port: int, kind: socket.SocketKind) -> bool:
    try:
        with socket.socket(socket.AF_INET6, kind) as sock:
            sock.bind(("::1", port))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("transport", ["tcp", "udp", "tls"])
def test_an_unreachable_first_address_is_skipped(
    vault: VaultCLI, rsyslog: Rsyslog, transport: str
) -> None:
    """``localhost`` resolving to ::1 (nothing listens there) and then 127.0.0.1, as a
    dual-stack resolver gives it; the name is answered by tests/harness/resolvehook, since this
    machine's localhost is 127.0.0.1 only and /etc/hosts is not the tests' to change."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    audit: dict[str, str] = {}
    if transport == "tls":
        port, ca = tls_of(rsyslog)
        audit["tls_ca"] = str(ca)
    else:
        port = rsyslog.udp_port if transport == "udp" else rsyslog.tcp_port
    if not v6_port_is_free(port, kind):
        pytest.skip("no IPv6 loopback here, or the port is taken on ::1")
    configure(vault, syslog=f"{transport}:localhost:{port}", **audit)
    env = {
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(RESOLVE_HOOK), os.environ.get("PYTHONPATH")) if p
        ),
        "VAULT_TEST_RESOLVE": "localhost=::1,127.0.0.1",
    }
    for result in import_and_use(vault, f"siem-addr-{transport}", env=env):
        assert "not forwarded" not in result.stderr, result
    assert len(rsyslog.wait_for(str(local_records(vault)[0]["fingerprint"]), 2)) == 2


def test_the_resolver_hook_is_what_puts_v6_first(vault: VaultCLI, rsyslog: Rsyslog) -> None:
    """The control: with ::1 alone, nothing arrives and the command says so."""
    port = rsyslog.tcp_port
    if not v6_port_is_free(port, socket.SOCK_STREAM):
        pytest.skip("no IPv6 loopback here, or the port is taken on ::1")
    configure(vault, syslog=f"tcp:localhost:{port}")
    env = {"PYTHONPATH": str(RESOLVE_HOOK), "VAULT_TEST_RESOLVE": "localhost=::1"}
    result = vault.run("import", "siem-v6", "--provider", "github", input=CANARY, env=env)
    one_warning(result, "connection refused")


# -- vault audit show --format --------------------------------------------------------------------


@pytest.fixture
def with_records(vault: VaultCLI) -> VaultCLI:
    import_and_use(vault, "show-a")
    return vault


@pytest.mark.parametrize("shape", ["ocsf", "ecs"])
def test_show_documents(with_records: VaultCLI, shape: str) -> None:
    r = with_records.run("audit", "show", "--format", shape)
    assert r.returncode == 0, r
    local = local_records(with_records)
    lines = r.stdout.splitlines()
    assert len(lines) == len(local)
    for line, stored in zip(lines, local, strict=True):
        assert line.isascii()
        assert line.isprintable()
        doc = json.loads(line)
        if shape == "ocsf":
            assert doc["class_uid"] == 3002
            assert doc["metadata"]["sequence"] == stored["seq"]
        else:
            assert doc["event"]["sequence"] == stored["seq"]
            assert doc["event"]["action"] == stored["event"]
    assert CANARY not in r.stdout


def test_show_filters_apply_to_documents(with_records: VaultCLI) -> None:
    r = with_records.run("audit", "show", "--format", "ecs", "--event", "used")
    assert r.returncode == 0, r
    assert [json.loads(line)["event"]["action"] for line in r.stdout.splitlines()] == ["used"]


def test_show_json_and_its_alias(with_records: VaultCLI) -> None:
    stored = (with_records.home / "audit.jsonl").read_text()
    for args in (("--json",), ("--format", "json"), ("--json", "--format", "json")):
        r = with_records.run("audit", "show", *args)
        assert r.returncode == 0, r
        assert r.stdout == stored
    # --absolute: relative times ("now", "1 s ago") move between the two runs
    table = with_records.run("audit", "show", "--format", "table", "--absolute")
    assert table.stdout == with_records.run("audit", "show", "--absolute").stdout
    assert "SEQ" in table.stdout


@pytest.mark.parametrize(
    "args", [("--format", "cef"), ("--json", "--format", "ocsf"), ("--format",)]
)
def test_show_bad_format_is_a_usage_error(with_records: VaultCLI, args: tuple[str, ...]) -> None:
    r = with_records.run("audit", "show", *args)
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr
    if "--json" in args:  # asked for JSON: the error is one JSON object, and nothing else
        doc = json.loads(r.stdout)
        assert (doc["event"], doc["error"], doc["exit"]) == ("error", "usage", 2), doc
    else:
        assert r.stdout == ""


def test_show_documents_of_a_hostile_log_line(with_records: VaultCLI) -> None:
    """`audit show` reads the log unverified: a planted line still prints as one ASCII line."""
    log = with_records.home / "audit.jsonl"
    planted = {"v": 1, "seq": 99, "time": "x", "event": "used\n\x1b[2J", "name": "\u202e" * 3000}
    with log.open("a") as fh:
        fh.write(json.dumps(planted, ensure_ascii=False) + "\n")
    for shape in ("ocsf", "ecs"):
        r = with_records.run("audit", "show", "--format", shape)
        assert r.returncode == 0, r
        last = r.stdout.splitlines()[-1]
        assert last.isascii()
        assert last.isprintable()
        assert "\x1b" not in r.stdout


# -- the audit: section, checked strictly ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("audit:\n  format: cef\n", "audit.format must be one of rfc5424, ocsf, ecs"),
        ("audit:\n  format: [ocsf]\n", "audit.format must be a str"),
        ("audit:\n  syslog: tls:h:1\n  tls_pin: abc\n", "audit.tls_pin must be sha256:"),
        ("audit:\n  syslog: tls:h:1\n  tls_pin: 7\n", "audit.tls_pin must be a str"),
        ("audit:\n  syslog: tcp:h:1\n  tls_ca: /x.pem\n", "audit.tls_ca applies only to a tls:"),
        ("audit:\n  tls_pin: sha256:" + "0" * 64 + "\n", "audit.tls_pin applies only to a tls:"),
        ("audit:\n  syslog: tls:h:1\n  tls_ca: ''\n", "audit.tls_ca must be the path"),
        ("audit:\n  tls_verify: false\n", "unknown key 'tls_verify' in audit"),
    ],
)
def test_bad_audit_settings_exit_3(vault: VaultCLI, text: str, fragment: str) -> None:
    vault.home.mkdir(mode=0o700)
    config = vault.home / "config.yaml"
    config.write_text(text)
    config.chmod(0o600)
    r = vault.run("list")
    assert r.returncode == 3, r
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"vault: error: {config}:"), r
    assert fragment in first, r
    assert "Traceback" not in r.stderr


# -- the agent forwards what it writes, in the configured format -----------------------------------


def test_agent_forwards_ecs_to_the_local_socket(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    """The agent writes agent_started, agent_unlocked and the used record itself: each reaches
    a private rsyslog (this test's alone, so every record in it is this vault's)."""
    if find_rsyslogd() is None:
        pytest.skip("rsyslogd is not installed (Debian: apt-get install -y rsyslog)")
    vault = passphrase_vault
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    vault.env["XDG_RUNTIME_DIR"] = str(run)
    rs_dir = tmp_path / "rs"
    rs_dir.mkdir()
    with start_rsyslog(rs_dir, tls=False) as daemon:
        configure(vault, syslog=f"unix:{daemon.unix_socket}", format="ecs")
        assert vault.run("import", "t1", "--provider", "github", input=CANARY).returncode == 0
        started = vault.run("agent", "start")
        assert started.returncode == 0, started
        status = json.loads(vault.run("agent", "status", "--json").stdout)
        pid = status["pid"]
        assert isinstance(pid, int)
        try:
            env = dict(vault.env)
            env.pop("VAULT_PASSPHRASE_FILE")
            result = VaultCLI(vault.home, env).run("token", "t1")
            assert result.stdout == CANARY + "\n", result
        finally:
            os.kill(pid, signal.SIGKILL)
        local = local_records(vault)
        received = daemon.wait_for_received('"action":"used"', 1)
        assert received, daemon.received()
        docs = {
            json.loads(got.msg)["event"]["sequence"]: json.loads(got.msg)
            for got in daemon.received()
        }
        no_canary(daemon)
    by_agent = [r for r in local if r["event"] in ("agent_started", "agent_unlocked", "used")]
    assert [r["event"] for r in by_agent] == ["agent_started", "agent_unlocked", "used"]
    for record in local:
        assert docs[record["seq"]]["event"]["action"] == record["event"], (record, docs)
    unlocked = docs[by_agent[1]["seq"]]
    assert unlocked["event"]["category"] == ["authentication", "session"]
    assert unlocked["event"]["type"] == ["start"]
    used = docs[by_agent[2]["seq"]]
    assert used["process"]["pid"] != pid  # the client's pid; the agent's is vault.agent
    assert used["vault"]["agent"] == pid
