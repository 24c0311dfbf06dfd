"""How the `vault` entry point ends: `vault token` with ``os._exit`` (no interpreter teardown)
once its output is flushed, every other command through ``sys.exit``, atexit handlers included.

The real entry point (vault.cli.main:entry, the console script's target) runs in a separate
interpreter that first registers an atexit handler writing a marker file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import VaultCLI

TOKEN = "tok-" + "ExitPath" * 4

# -P: the source folder (the current directory of `python -c`) never shadows the installed wheel.
_WRAPPER = """
import atexit, sys
marker = sys.argv.pop(1)
atexit.register(lambda: open(marker, "w").write("atexit ran"))
sys.argv[0] = "vault"
from vault.cli.main import entry
entry()
"""


def _entry(vault: VaultCLI, marker: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    # Pipes and buffered streams (PYTHONUNBUFFERED off): output not flushed by the end is lost.
    env = {k: v for k, v in vault.full_env().items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-P", "-c", _WRAPPER, str(marker), *args],
        capture_output=True,
        env=env,
        cwd=marker.parent,
        timeout=60,
        check=False,
        start_new_session=True,
    )


def test_other_commands_run_atexit_handlers(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    v = passphrase_vault
    assert v.run("import", "c", "--provider", "github", input=TOKEN).returncode == 0
    cases = [
        (["list", "--json"], 0),
        (["list", "--no-such-flag"], 2),  # an error that main() turns into an exit code
        (["status", "no-such-token"], None),
    ]
    for n, (args, code) in enumerate(cases):
        marker = tmp_path / f"marker-{n}"
        r = _entry(v, marker, *args)
        expected = v.run(*args)
        assert r.returncode == expected.returncode, (args, r)
        if code is not None:
            assert r.returncode == code, (args, r)
        if args[0] != "list" or code != 0:  # `list` shows ages in seconds: they move
            assert r.stdout.decode() == expected.stdout, args
        assert r.stderr.decode() == expected.stderr, args
        assert marker.read_text() == "atexit ran", args
    listed = json.loads(_entry(v, tmp_path / "m", "list", "--json").stdout)
    assert [t["name"] for t in listed["tokens"]] == ["c"]  # all of it written out, flushed


def test_vault_token_exits_fast_with_its_code_and_flushed_output(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    v = passphrase_vault
    assert v.run("import", "c", "--provider", "github", input=TOKEN).returncode == 0
    marker = tmp_path / "marker"
    r = _entry(v, marker, "token", "c")
    assert (r.returncode, r.stdout, r.stderr) == (0, TOKEN.encode() + b"\n", b"")
    assert not marker.exists()  # os._exit: no interpreter teardown for `vault token`
    r = _entry(v, marker, "token", "missing")
    assert r.returncode == v.run("token", "missing").returncode != 0
    assert r.stdout == b""
    assert r.stderr.decode().startswith("vault: error: ")
    assert "missing" in r.stderr.decode()
    r = _entry(v, marker, "token", "c", "--min-valid=--5")
    assert r.returncode == 2
    assert r.stderr.decode().startswith("vault: error: argument --min-valid: invalid int value")
    assert not marker.exists()
