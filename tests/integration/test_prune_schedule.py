"""`vault prune --install-schedule`: the crontab line and the systemd service run for real from
the bare environment cron and systemd give a job (``env -i HOME=... PATH=/usr/bin:/bin``), and
prune the vault they were installed for, not the default (empty) one of that environment; a
job that cannot reach the key fails with exit 6 and says why in its log; `vault prune` names
the vault it did not find."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI, temporary_secret_service
from tests.harness.cron import bare_env, run_line

DENY_ADMIN = "version: 1\ndenied_scopes: ['admin:*']\n"


def _two_tokens_one_denied(vault: VaultCLI) -> None:
    """Tokens "keep" (repo) and "admin" (admin:org), then a policy that no longer allows the
    second."""
    for name, scope in (("keep", "repo"), ("admin", "admin:org")):
        r = vault.run(
            "import", name, "--provider", "github", "--scope", scope, input=f"tok-{name}-1234"
        )
        assert r.returncode == 0, r
    folder = vault.home / "policies"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "p.yaml").write_text(DENY_ADMIN)


def _names(vault: VaultCLI) -> list[str]:
    r = vault.run("list", "--json")
    assert r.returncode == 0, r
    return [t["name"] for t in json.loads(r.stdout)["tokens"]]


def _cron_line(vault: VaultCLI, env: dict[str, str] | None = None) -> str:
    r = vault.run("prune", "--install-schedule", "--cron", env=env)
    assert r.returncode == 0, r
    (line,) = r.stdout.splitlines()
    return line


def _cron_home(tmp_path: Path) -> Path:
    """The HOME the job runs with: empty, so a job that lost its VAULT_HOME finds no vault
    there (and never the developer's own)."""
    home = tmp_path / "cron-home"
    home.mkdir(exist_ok=True)
    return home


def _log_records(log: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]


@pytest.mark.parametrize("backend", ["passphrase", "keyring"])
def test_cron_line_prunes_the_intended_vault_from_a_bare_environment(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    vault: VaultCLI = request.getfixturevalue(
        "passphrase_vault" if backend == "passphrase" else "vault"
    )
    _two_tokens_one_denied(vault)
    line = _cron_line(vault)
    log = vault.home / "prune.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # made private before the first run
    proc = run_line(line, _cron_home(tmp_path))
    assert proc.returncode == 0, (line, proc, log.read_text())
    assert _names(vault) == ["keep"]  # pruned in THIS vault
    (record,) = _log_records(log)
    assert record["vault"] == str(vault.vault_file)
    assert record["counts"] == {"planned": 1, "deleted": 1, "revoked": 0, "pending": 0}
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert not (_cron_home(tmp_path) / ".local").exists()  # no default vault made meanwhile


def test_cron_line_pins_the_running_vault_not_the_first_on_path(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    """Another `vault` first on PATH (another install, or another program of that name) is not
    what the job runs: it runs the executable that installed it."""
    other = tmp_path / "bin"
    other.mkdir()
    (other / "vault").write_text("#!/bin/sh\nexit 0\n")
    (other / "vault").chmod(0o755)
    line = _cron_line(passphrase_vault, env={"PATH": f"{other}:{os.environ['PATH']}"})
    assert f" {os.path.realpath(VAULT_BIN)} prune --json >> " in line
    assert str(other) not in line


def test_cron_job_without_its_passphrase_exits_6_and_logs_why(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    v = passphrase_vault
    _two_tokens_one_denied(v)
    r = v.run("prune", "--install-schedule", "--cron", env={"VAULT_PASSPHRASE_FILE": ""})
    assert r.returncode == 0, r
    assert "will not reach the key" in r.stderr
    assert "VAULT_PASSPHRASE_FILE" in r.stderr
    proc = run_line(r.stdout.strip(), _cron_home(tmp_path), timeout=60)
    assert proc.returncode == 6, proc
    log = (v.home / "prune.log").read_text()
    assert "vault: error: a passphrase is needed and this command never prompts" in log
    assert _names(v) == ["admin", "keep"]  # nothing changed


def test_cron_job_with_the_keyring_gone_exits_6_and_logs_why(tmp_path: Path) -> None:
    with temporary_secret_service(tmp_path / "ss") as service:
        v = VaultCLI(tmp_path / "vh", dict(service.env()))
        _two_tokens_one_denied(v)
        line = _cron_line(v)
    # The session ended (logout): the job's pinned bus is gone.
    proc = run_line(line, _cron_home(tmp_path), timeout=60)
    assert proc.returncode == 6, proc
    log = (v.home / "prune.log").read_text()
    assert "vault: error: the OS keyring is unavailable" in log
    assert "nothing to prune" not in log.lower()


def test_cron_job_without_a_bus_exits_6(vault: VaultCLI, tmp_path: Path) -> None:
    """Installed from a shell with no D-Bus session (ssh, say): the job has no address either,
    is warned about at install time, and fails with exit 6, never "nothing to prune"."""
    _two_tokens_one_denied(vault)
    r = vault.run("prune", "--install-schedule", "--cron", env={"DBUS_SESSION_BUS_ADDRESS": ""})
    assert "will not reach the key" in r.stderr
    assert "DBUS_SESSION_BUS_ADDRESS" in r.stderr
    assert "DBUS_SESSION_BUS_ADDRESS" not in r.stdout
    proc = run_line(r.stdout.strip(), _cron_home(tmp_path), timeout=60)
    assert proc.returncode == 6, proc
    assert "no D-Bus session" in (vault.home / "prune.log").read_text()
    assert _names(vault) == ["admin", "keep"]


NASTY_HOMES = [
    "my vaults",
    'it\'s "quoted"',
    "$HOME `id` $(id) ${X}",
    "100% \\% \\\\% %%",
    "semi;colon && pipe| amp& <in >out",
    "glob * ? [a] ~ é",
]


@pytest.mark.parametrize("name", NASTY_HOMES)
def test_cron_line_survives_a_nasty_vault_home(
    tmp_path: Path, passphrase_vault: VaultCLI, name: str
) -> None:
    v = VaultCLI(tmp_path / name / "vh", passphrase_vault.env)
    v.home.parent.mkdir()
    _two_tokens_one_denied(v)
    line = _cron_line(v)
    proc = run_line(line, _cron_home(tmp_path))
    assert proc.returncode == 0, (line, proc)
    assert _names(v) == ["keep"]
    (record,) = _log_records(v.home / "prune.log")
    assert record["vault"] == str(v.vault_file)


@pytest.mark.parametrize("where", ["VAULT_HOME", "XDG_DATA_HOME"])
def test_install_refuses_a_value_with_a_newline(
    passphrase_vault: VaultCLI, tmp_path: Path, where: str
) -> None:
    bad = str(tmp_path / "two\nlines")
    config_home = tmp_path / "cfg"
    for args in (["--cron"], []):
        r = passphrase_vault.run(
            "prune",
            "--install-schedule",
            *args,
            env={
                where: bad,
                "XDG_CONFIG_HOME": str(config_home),
                "PATH": _fake_systemctl(tmp_path),
            },
        )
        assert r.returncode == 2, r
        assert r.stdout == ""
        (message,) = [x for x in r.stderr.splitlines() if x.startswith("vault: error:")]
        assert where in message
        assert "newline" in message
        assert not config_home.exists()  # no unit written


def _fake_systemctl(tmp_path: Path) -> str:
    """A PATH whose `systemctl` records its arguments and succeeds: no systemd user manager runs
    in the test machine."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "systemctl-calls"}\nexit 0\n')
    fake.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def _as_systemd_reads(service: Path, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The executable and the Environment= assignments of a service, as systemd itself parses
    them: systemd-analyze verify logs an assignment with an invalid name as it read it, and a
    command it cannot find by the path it read; so a copy is verified in which each name is
    made invalid ("1" before it) and the executable put under a folder that does not exist."""
    probe = tmp_path / "probe.service"
    text = service.read_text()
    text = text.replace('Environment="', 'Environment="1')
    text = text.replace('ExecStart="', 'ExecStart="/nonexistent')
    probe.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(probe)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    env = {
        m.group(1): m.group(2)
        for m in re.finditer(r"Invalid environment assignment, ignoring: 1(\w+)=(.*)", proc.stderr)
    }
    (exe,) = re.findall(r"Command /nonexistent(.*) is not executable", proc.stderr)
    # Nothing else to complain about in the unit as written.
    clean = subprocess.run(
        ["systemd-analyze", "verify", str(service)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert clean.returncode == 0, clean.stderr
    assert clean.stderr == "", clean.stderr
    return exe, env


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name", ["plain", 'it\'s "100%" $HOME \\ `x`'])
def test_systemd_service_prunes_the_intended_vault_from_a_bare_environment(
    tmp_path: Path, passphrase_vault: VaultCLI, name: str
) -> None:
    """The service's ExecStart and Environment=, as systemd reads them, run from a bare
    environment (systemd adds HOME, XDG_RUNTIME_DIR and its manager's variables; nothing of the
    installing shell)."""
    v = VaultCLI(tmp_path / name / "vh", passphrase_vault.env)
    v.home.parent.mkdir()
    _two_tokens_one_denied(v)
    config_home = tmp_path / "cfg"
    r = v.run(
        "prune",
        "--install-schedule",
        env={"XDG_CONFIG_HOME": str(config_home), "PATH": _fake_systemctl(tmp_path)},
    )
    assert r.returncode == 0, r
    service = config_home / "systemd" / "user" / "vault-prune.service"
    assert stat.S_IMODE(service.stat().st_mode) == 0o600
    exe, env = _as_systemd_reads(service, tmp_path)
    assert exe == os.path.realpath(VAULT_BIN)
    assert env["VAULT_HOME"] == str(v.home)
    assignments = [f"{k}={x}" for k, x in env.items()]
    proc = subprocess.run(
        [*bare_env(_cron_home(tmp_path)), *assignments, exe, "prune", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        start_new_session=True,
    )
    assert proc.returncode == 0, proc
    assert json.loads(proc.stdout)["vault"] == str(v.vault_file)
    assert _names(v) == ["keep"]


def test_prune_log_made_private(passphrase_vault: VaultCLI) -> None:
    """A log an older line (or cron's umask) left 0644 is made 0600; a symlink is refused."""
    v = passphrase_vault
    v.home.mkdir(mode=0o700)
    log = v.home / "prune.log"
    log.write_text("old\n")
    log.chmod(0o644)
    _cron_line(v)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text() == "old\n"
    log.unlink()
    log.symlink_to(v.home / "elsewhere")
    r = v.run("prune", "--install-schedule", "--cron")
    assert r.returncode == 6, r
    assert r.stdout == ""
    assert not (v.home / "elsewhere").exists()


def _failure(log: Path) -> tuple[str, str]:
    """The last run's error and hint lines (stderr) from ``log``, checked against the JSON
    error object the failed `prune --json` printed on stdout into the same log."""
    lines = log.read_text().splitlines()
    error, hint = [x for x in lines if x.startswith("vault: ")][-2:]
    doc = json.loads(lines[-1] if lines[-1].startswith("{") else lines[-3])
    assert (doc["event"], doc["exit"]) == ("error", 6), doc
    assert error == f"vault: error: {doc['message']}"
    assert hint == f"vault: hint: {doc['hint']}"
    return error, hint


def test_cron_line_prunes_the_intended_vault_through_the_agent(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    """The passphrase typed once into the agent, nowhere in the job: from cron's bare
    environment the job finds the agent (its XDG_RUNTIME_DIR pinned), prunes this vault, and
    audits the prune; with the agent stopped the same line exits 6 and says why in its log."""
    v = passphrase_vault
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    v.env["XDG_RUNTIME_DIR"] = str(run)
    _two_tokens_one_denied(v)
    started = v.run("agent", "start")
    assert started.returncode == 0, started
    pid = json.loads(v.run("agent", "status", "--json").stdout)["pid"]
    try:
        r = v.run("prune", "--install-schedule", "--cron", env={"VAULT_PASSPHRASE_FILE": ""})
        assert r.returncode == 0, r
        assert "through the agent" in r.stderr
        line = r.stdout.strip()
        assert "VAULT_PASSPHRASE_FILE" not in line
        assert f"XDG_RUNTIME_DIR={run}" in line
        proc = run_line(line, _cron_home(tmp_path))
        log = v.home / "prune.log"
        assert proc.returncode == 0, (line, proc, log.read_text())
        assert _names(v) == ["keep"]
        (record,) = _log_records(log)
        assert record["vault"] == str(v.vault_file)
        assert record["counts"] == {"planned": 1, "deleted": 1, "revoked": 0, "pending": 0}
        shown = v.run("audit", "show", "--json", "--event", "pruned")
        (pruned,) = [json.loads(x) for x in shown.stdout.splitlines()]
        assert pruned["name"] == "admin"
        assert pruned["pid"] != pid  # pruned by the job itself, with the key from the agent
        assert "agent" not in pruned
        assert v.run("lock").returncode == 0
        proc = run_line(line, _cron_home(tmp_path), timeout=60)
        assert proc.returncode == 6, proc
        error, hint = _failure(log)
        assert "a passphrase is needed" in error
        assert "`vault unlock`" in hint
        assert v.run("agent", "stop").returncode == 0
        proc = run_line(line, _cron_home(tmp_path), timeout=60)
        assert proc.returncode == 6, proc
        error, hint = _failure(log)
        assert "a passphrase is needed" in error
        assert "agent" not in hint
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
