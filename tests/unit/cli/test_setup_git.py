"""`vault setup-git`'s pieces: the origin git's key is for, and the helper command line, run
by a real shell as git runs a "!" helper, whatever the path of the vault executable holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault.cli.commands import setup_git
from vault.errors import UsageError
from vault.secret import Secret
from vault.store.model import TokenRecord


def _record(issuer: str) -> TokenRecord:
    return TokenRecord(
        name="gh",
        provider="p",
        issuer=issuer,
        client_id="c",
        token_type="Bearer",
        access_token=Secret("t"),
        refresh_token=None,
        id_token=None,
        scopes=(),
        issued_at=0,
        expires_at=None,
        last_refresh=None,
    )


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        ("https://github.com", "https://github.com"),
        ("https://GitLab.Example.com:443/", "https://gitlab.example.com"),
        ("https://git.example.com:8443/realms/x", "https://git.example.com:8443"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("http://localhost", "http://localhost"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ],
)
def test_credential_url(issuer: str, url: str) -> None:
    assert setup_git.credential_url(_record(issuer)) == url


def test_plain_http_off_loopback_is_refused() -> None:
    with pytest.raises(UsageError, match="not https"):
        setup_git.credential_url(_record("http://git.example.com"))


@pytest.mark.parametrize(
    "folder", ["plain", "with space", "it's", 'a"b$(touch x)`y`', "semi;colon"]
)
def test_the_helper_runs_through_a_shell_whatever_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    where = tmp_path / folder
    where.mkdir()
    program = where / "vault"
    program.write_text(f"#!{sys.executable}\nimport sys\nprint(repr(sys.argv[1:]))\n")
    program.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(program)])
    value = setup_git.helper_value("my.token")
    assert value.startswith("!")
    out = subprocess.run(
        ["sh", "-c", value[1:] + ' "$@"', "sh", "get"],  # as git runs it: the operation after
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == repr(["credential-helper", "--name", "my.token", "get"]) + "\n"
    assert not (tmp_path / "x").exists()


def test_started_as_a_module_the_helper_is_python_m_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [os.path.join(os.path.dirname(setup_git.__file__), "x.py")])
    assert setup_git.vault_command() == [os.path.abspath(sys.executable), "-m", "vault"]
