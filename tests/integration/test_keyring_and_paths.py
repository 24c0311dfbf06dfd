"""Keyring refusals and faults, and the OpenSSH-style checks on paths."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import VaultCLI, keyring_package, temporary_secret_service


@pytest.mark.parametrize(
    "backend",
    [
        "keyrings.alt.file.PlaintextKeyring",
        "keyring.backends.fail.Keyring",
        "keyring.backends.null.Keyring",
        "keyrings.alt.file.EncryptedKeyring",
    ],
)
def test_non_os_keyrings_are_refused(vault: VaultCLI, backend: str) -> None:
    r = vault.run(
        "import",
        "a",
        "--provider",
        "github",
        input="tok-aaaaaaaa",
        env={"PYTHON_KEYRING_BACKEND": backend},
    )
    assert r.returncode == 6, r
    assert "is not an OS keyring" in r.stderr
    assert "key_backend: passphrase" in r.stderr
    assert not vault.vault_file.exists()


def test_unreachable_keyring_is_exit_6_not_plaintext(vault: VaultCLI) -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}
    r = vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa", env=env)
    assert r.returncode == 6, r
    assert "keyring is unavailable" in r.stderr
    assert not vault.vault_file.exists()
    assert not any(p.name.startswith("vault.enc") for p in vault.home.glob("*"))


def test_keyring_disappears_after_the_vault_exists(tmp_path: Path) -> None:
    with temporary_secret_service(tmp_path / "ss") as service:
        v = VaultCLI(tmp_path / "vh", service.env())
        assert v.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
        before = v.vault_file.read_bytes()
    r = v.run("token", "a", timeout=30)
    assert r.returncode == 6, r
    assert "keyring" in r.stderr
    assert r.stdout == ""
    assert v.vault_file.read_bytes() == before


def test_locked_keyring_is_exit_6_within_the_timeout(tmp_path: Path) -> None:
    with temporary_secret_service(tmp_path / "ss") as service:
        v = VaultCLI(tmp_path / "vh", {**service.env(), "VAULT_KEYRING_TIMEOUT": "3"})
        assert v.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
        service.lock()
        start = time.monotonic()
        r = v.run("token", "a", timeout=30)
        elapsed = time.monotonic() - start
        assert r.returncode == 6, r
        assert "locked" in r.stderr or "did not answer" in r.stderr
        assert r.stdout == ""
        assert elapsed < 20


def test_key_missing_from_keyring(vault: VaultCLI, tmp_path: Path) -> None:
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0
    with temporary_secret_service(tmp_path / "other") as other:
        r = vault.run("token", "a", env=other.env())
    assert r.returncode == 6, r
    assert "is not in the Secret Service" in r.stderr


def _make(vault: VaultCLI) -> None:
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa").returncode == 0


def test_loose_file_modes_refused(vault: VaultCLI) -> None:
    _make(vault)
    for mode in (0o640, 0o604, 0o660):
        os.chmod(vault.vault_file, mode)
        r = vault.run("token", "a")
        assert r.returncode == 6, r
        assert "accessible by group or others" in r.stderr
        assert "chmod 600" in r.stderr
    os.chmod(vault.vault_file, 0o600)
    os.chmod(vault.home, 0o770)
    r = vault.run("token", "a")
    assert r.returncode == 6, r
    assert "writable by group or others" in r.stderr
    os.chmod(vault.home, 0o700)
    assert vault.run("token", "a").returncode == 0


def test_symlinked_vault_refused(vault: VaultCLI, tmp_path: Path) -> None:
    _make(vault)
    real = tmp_path / "elsewhere.enc"
    os.rename(vault.vault_file, real)
    os.symlink(real, vault.vault_file)
    r = vault.run("token", "a")
    assert r.returncode == 6, r
    assert "symlink" in r.stderr
    r = vault.run("import", "b", "--provider", "github", input="tok-bbbbbbbb")
    assert r.returncode == 6, r
    assert os.path.islink(vault.vault_file)


def test_symlinked_vault_folder_refused(tmp_path: Path, vault: VaultCLI) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(real, vault.home)
    r = vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    assert r.returncode == 6, r
    assert "symlink" in r.stderr
    assert list(real.iterdir()) == []


def test_hard_linked_vault_refused(vault: VaultCLI, tmp_path: Path) -> None:
    _make(vault)
    os.link(vault.vault_file, tmp_path / "copy")
    r = vault.run("token", "a")
    assert r.returncode == 6, r
    assert "hard links" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_foreign_owner_refused(vault: VaultCLI) -> None:
    _make(vault)
    os.chown(vault.vault_file, 65534, 65534)
    r = vault.run("token", "a")
    assert r.returncode == 6, r
    assert "not by you" in r.stderr


def test_folders_created_private(vault: VaultCLI) -> None:
    _make(vault)
    assert (os.stat(vault.home).st_mode & 0o777) == 0o700
    assert (os.stat(vault.vault_file).st_mode & 0o777) == 0o600


def test_entries_interoperate_with_the_keyring_package(vault: VaultCLI) -> None:
    """vault talks to Secret Service directly (speed), but to the very items keyring's own
    SecretService backend reads and writes: either can read what the other wrote."""
    import json

    _make(vault)
    out = keyring_package(
        vault,
        "v = k.get_password('vault', vault_id); print(v); "
        "k.set_password('vault', vault_id, v.replace('\"v\":1', '\"v\": 1'))",
    )
    entry = json.loads(out)
    assert entry["generation"] >= 1
    assert len(entry["keys"]) == 1
    # keyring rewrote the entry (same content, other spacing); vault still opens with it.
    assert vault.run("token", "a").stdout == "tok-aaaaaaaa\n"


def test_xdg_parents_created_private_under_umask_000(tmp_path: Path) -> None:
    """`umask 000`, no XDG variables and a bare home: ~/.local, ~/.local/share and
    ~/.local/state are vault's to create, and are created 0700 like the vault folders."""
    import subprocess

    from tests.conftest import _SCRUB, VAULT_BIN

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    pw = tmp_path / "passphrase"
    pw.write_text("correct horse battery staple\n")
    pw.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env |= {"HOME": str(home), "VAULT_KEY_BACKEND": "passphrase", "VAULT_PASSPHRASE_FILE": str(pw)}
    r = subprocess.run(
        [VAULT_BIN, "import", "a", "--provider", "github"],
        input=b"tok-aaaaaaaa",
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.umask(0),
    )
    assert r.returncode == 0, r
    for folder in (".local", ".local/share", ".local/share/vault", ".local/state"):
        mode = os.stat(home / folder).st_mode & 0o777
        assert mode == 0o700, f"~/{folder} is {mode:04o}"
