"""`vault doctor`'s keyring line says whether the Secret Service answers (not only which backend
would be used), and its scheduled prune line whether a job is installed and whether, from the
job's own environment, it opens this vault and reaches its key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import VaultCLI


def _lines(stdout: str) -> dict[str, tuple[str, str]]:
    """doctor's lines by check name: (mark, detail)."""
    out = {}
    for line in stdout.splitlines():
        mark, _, rest = line.partition("  ")
        name, _, detail = rest.strip().partition("  ")
        out[name.strip()] = (mark.strip(), detail.strip())
    return out


def _doctor(
    vault: VaultCLI, tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[int, dict[str, tuple[str, str]], dict[str, dict[str, str]]]:
    """doctor, text and --json, with no schedule of the developer's in sight: systemd units
    under a private XDG_CONFIG_HOME, and a `crontab` that prints tmp_path/crontab (if any)."""
    bin_dir = tmp_path / "doctor-bin"
    bin_dir.mkdir(exist_ok=True)
    crontab = bin_dir / "crontab"
    table = tmp_path / "crontab"
    crontab.write_text(
        f'#!/bin/sh\n[ "$1" = -l ] && [ -f {table} ] && exec cat {table}\n'
        'echo "no crontab for $(id -un)" >&2\nexit 1\n'
    )
    crontab.chmod(0o755)
    full = {
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        **(env or {}),
    }
    text = vault.run("doctor", env=full)
    as_json = vault.run("doctor", "--json", env=full)
    assert text.returncode == as_json.returncode, (text, as_json)
    checks = {c["check"]: c for c in json.loads(as_json.stdout)["checks"]}
    return text.returncode, _lines(text.stdout), checks


def test_keyring_ok_when_the_secret_service_answers(vault: VaultCLI, tmp_path: Path) -> None:
    code, lines, checks = _doctor(vault, tmp_path)
    assert code == 0
    assert lines["keyring"][0] == "ok"
    assert "answers" in lines["keyring"][1]
    assert checks["keyring"]["status"] == "ok"


def test_no_dbus_session_is_not_ok_keyring(vault: VaultCLI, tmp_path: Path) -> None:
    """No DBUS_SESSION_BUS_ADDRESS: vault cannot reach the keyring, so doctor must not say
    "ok keyring". The test session's bus socket is at $XDG_RUNTIME_DIR/bus: doctor says so,
    and that vault does not look there by itself."""
    code, lines, checks = _doctor(vault, tmp_path, {"DBUS_SESSION_BUS_ADDRESS": ""})
    assert code == 6
    mark, detail = lines["keyring"]
    assert mark == "FAIL"
    assert "DBUS_SESSION_BUS_ADDRESS is not set" in detail
    assert f"a bus listens at {vault.env['XDG_RUNTIME_DIR']}/bus" in detail
    assert "no vault can be opened" in detail
    assert checks["keyring"]["status"] == "fail"


def test_unreachable_bus_is_not_ok_keyring(vault: VaultCLI, tmp_path: Path) -> None:
    code, lines, _ = _doctor(
        vault,
        tmp_path,
        {"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus", "XDG_RUNTIME_DIR": ""},
    )
    assert code == 6
    assert lines["keyring"][0] == "FAIL"
    assert "no D-Bus session" in lines["keyring"][1]


def test_no_keyring_is_a_warning_for_the_passphrase_backend(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    code, lines, checks = _doctor(passphrase_vault, tmp_path)
    assert code == 0
    mark, detail = lines["keyring"]
    assert mark == "warn"
    assert "not used" in detail
    assert "passphrase backend" in detail
    assert checks["keyring"]["status"] == "warn"


def test_scheduled_prune_none_installed(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    code, lines, checks = _doctor(passphrase_vault, tmp_path)
    assert code == 0
    mark, detail = lines["scheduled prune"]
    assert mark == "ok"
    assert detail.startswith("none installed")
    assert "reaching the passphrase from" in detail  # what installing from here would do
    assert checks["scheduled prune"]["status"] == "ok"
    _, lines, _ = _doctor(passphrase_vault, tmp_path, {"VAULT_PASSPHRASE_FILE": ""})
    assert "not reaching the key" in lines["scheduled prune"][1]


def _fake_systemctl(tmp_path: Path) -> str:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "systemctl"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_scheduled_prune_systemd_timer_reaching_the_keyring(
    vault: VaultCLI, tmp_path: Path
) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": _fake_systemctl(tmp_path)}
    assert vault.run("prune", "--install-schedule", env=env).returncode == 0
    timer = tmp_path / "cfg" / "systemd" / "user" / "vault-prune.timer"
    wants = timer.parent / "timers.target.wants"
    wants.mkdir()
    (wants / timer.name).symlink_to(timer)  # what `systemctl --user enable` does
    code, lines, _ = _doctor(vault, tmp_path)
    assert code == 0
    mark, detail = lines["scheduled prune"]
    assert mark == "ok", detail
    assert f"systemd timer {timer}" in detail
    assert "Secret Service over the D-Bus socket" in detail


def test_scheduled_prune_not_enabled_warns(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": _fake_systemctl(tmp_path)}
    assert passphrase_vault.run("prune", "--install-schedule", env=env).returncode == 0
    _, lines, _ = _doctor(passphrase_vault, tmp_path)
    assert lines["scheduled prune"][0] == "warn"
    assert "installed but not enabled" in lines["scheduled prune"][1]


def _crontab(vault: VaultCLI, tmp_path: Path, env: dict[str, str] | None = None) -> None:
    r = vault.run("prune", "--install-schedule", "--cron", env=env)
    assert r.returncode == 0, r
    (tmp_path / "crontab").write_text("MAILTO=''\n" + r.stdout)


def test_scheduled_prune_crontab_line_reaching_the_passphrase(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    _crontab(passphrase_vault, tmp_path)
    code, lines, _ = _doctor(passphrase_vault, tmp_path)
    assert code == 0
    mark, detail = lines["scheduled prune"]
    assert mark == "ok", detail
    assert detail.startswith("crontab line, reaching the passphrase from")


def test_scheduled_prune_crontab_line_without_a_bus_warns(vault: VaultCLI, tmp_path: Path) -> None:
    _crontab(vault, tmp_path, {"DBUS_SESSION_BUS_ADDRESS": ""})
    _, lines, checks = _doctor(vault, tmp_path)
    mark, detail = lines["scheduled prune"]
    assert mark == "warn"
    assert "cannot reach the key" in detail
    assert "DBUS_SESSION_BUS_ADDRESS" in detail
    assert checks["scheduled prune"]["status"] == "warn"


def test_scheduled_prune_of_another_vault_warns(vault: VaultCLI, tmp_path: Path) -> None:
    """The user's bug: a job that opens another vault than this one (here: the one its
    environment left it, the default) is named, with both paths."""
    line = f"17 * * * * /usr/bin/vault prune --json >> {tmp_path}/log 2>&1\n"
    (tmp_path / "crontab").write_text(line)
    _, lines, _ = _doctor(vault, tmp_path)
    mark, detail = lines["scheduled prune"]
    assert mark == "warn"
    assert f"not this vault ({vault.vault_file})" in detail
    assert "/.local/share/vault/vault.enc" in detail


@pytest.mark.parametrize("status", ["ok", "warn"])
def test_doctor_json_has_the_scheduled_prune_check(
    passphrase_vault: VaultCLI, tmp_path: Path, status: str
) -> None:
    if status == "warn":
        _crontab(passphrase_vault, tmp_path, {"VAULT_PASSPHRASE_FILE": ""})
    _, _, checks = _doctor(passphrase_vault, tmp_path)
    assert checks["scheduled prune"]["status"] == status
