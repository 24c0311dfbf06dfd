"""Tampering with the vault file through the CLI: each refused with exit 6, file untouched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import SecretService, VaultCLI
from vault.store import format as fmt


def _setup(vault: VaultCLI) -> bytes:
    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa").returncode == 0
    assert vault.run("import", "b", "--provider", "github", input="tok-bbbbbbbbbb").returncode == 0
    return vault.vault_file.read_bytes()


def _assert_refused(vault: VaultCLI, bad: bytes, expected: str) -> None:
    """Each command refuses ``bad`` with exit 6 and one message naming the vault file and
    containing ``expected`` (``{path}`` in it: the file's path), and leaves it as it was."""
    assert expected, "a refusal is checked by its message"
    path = str(vault.vault_file)
    vault.vault_file.write_bytes(bad)
    for args in (["token", "a"], ["list"], ["import", "c", "--provider", "github"]):
        r = vault.run(*args, input="tok-cccccccccc")
        assert r.returncode == 6, (args, r)
        first, *hint = r.stderr.splitlines()
        assert first.startswith("vault: error: "), (args, r)
        assert path in first, (args, r)  # the file is named
        assert expected.format(path=path) in first, (args, r)
        assert all(line.startswith("vault: hint: ") for line in hint), (args, r)
        assert r.stdout == ""
        assert vault.vault_file.read_bytes() == bad  # left exactly as it was


AUTH = (
    "vault file {path} failed authentication: it was altered, damaged, or the key or "
    "passphrase is wrong"
)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0, "{path} is not a vault file (bad magic bytes)"),  # magic
        (9, "vault file {path} has format version 17; this vault reads version 1"),  # version
        (12, "the keyring holds no key with the id the vault at {path} names"),  # key id
        (fmt.HEADER_SIZE - 20, AUTH),  # vault id
        (fmt.HEADER_SIZE - 13, AUTH),  # generation
        (fmt.HEADER_SIZE - 1, AUTH),  # nonce
        (fmt.HEADER_SIZE + 3, AUTH),  # ciphertext
        (-1, AUTH),  # tag
    ],
)
def test_flipped_bit(vault: VaultCLI, offset: int, expected: str) -> None:
    good = bytearray(_setup(vault))
    good[offset] ^= 0x10
    _assert_refused(vault, bytes(good), expected)


def test_truncated(vault: VaultCLI) -> None:
    good = _setup(vault)
    _assert_refused(vault, good[:-1], "failed authentication")
    _assert_refused(vault, good[:50], "truncated")
    _assert_refused(vault, b"", "truncated")


def test_header_swapped_from_another_write(vault: VaultCLI) -> None:
    first = _setup(vault)
    vault.run("logout", "b")
    second = vault.vault_file.read_bytes()
    spliced = second[: fmt.HEADER_SIZE] + first[fmt.HEADER_SIZE :]
    _assert_refused(vault, spliced, "failed authentication")


def test_older_copy_put_back(vault: VaultCLI, tmp_path: Path) -> None:
    old = _setup(vault)
    shutil.copy(vault.vault_file, tmp_path / "backup")
    assert vault.run("logout", "b").returncode == 0
    _assert_refused(vault, old, "rolled back")


def test_passphrase_older_copy_put_back(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    assert v.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa").returncode == 0
    old = v.vault_file.read_bytes()
    assert v.run("logout", "a").returncode == 0
    v.vault_file.write_bytes(old)
    r = v.run("token", "a")
    assert r.returncode == 6, r
    assert "rolled back" in r.stderr
    assert v.vault_file.read_bytes() == old


def test_passphrase_key_file_tampered_or_missing(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    assert v.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa").returncode == 0
    key_file = v.home / "vault.key"
    good = key_file.read_bytes()
    key_file.write_bytes(good.replace(b'"generation":1', b'"generation":0'))
    r = v.run("token", "a")
    assert r.returncode == 6, r
    assert "failed authentication" in r.stderr
    os.unlink(key_file)
    r = v.run("token", "a")
    assert r.returncode == 6, r
    assert "missing" in r.stderr
    key_file.write_bytes(good)
    key_file.chmod(0o600)
    assert v.run("token", "a").returncode == 0


# --- the key file (or keyring entry) rolled back alone, the audit log cut to match -----------


def _cut_log_to(vault: VaultCLI, records: int) -> None:
    log = vault.home / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:records]))


def _deny_once(vault: VaultCLI) -> None:
    policies = vault.home / "policies"
    policies.mkdir(mode=0o700, exist_ok=True)
    (policies / "deny.yaml").write_text("version: 1\nmax_token_age: 1s\n")
    from tests.harness.clock import at

    assert vault.run("token", "a", env=at(5)).returncode == 5
    (policies / "deny.yaml").unlink()


@pytest.mark.parametrize("hidden", ["issue and deletion", "denial"])
def test_passphrase_key_file_put_back_alone_does_not_hide_records(
    passphrase_vault: VaultCLI, hidden: str
) -> None:
    """An older vault.key put back on its own (the vault file untouched) and the audit log cut
    to the mark it holds: the vault itself keeps the audit mark too, so verify still sees the
    records that were cut, whatever they were (an issue, a deletion, a denial)."""
    v = passphrase_vault
    assert v.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa").returncode == 0
    key_file = v.home / "vault.key"
    old_key = key_file.read_bytes()
    if hidden == "denial":
        _deny_once(v)
    else:
        assert v.run("import", "b", "--provider", "github", input="tok-bbbbbbbbbb").returncode == 0
        assert v.run("logout", "b").returncode == 0
    vault_file = v.vault_file.read_bytes()
    key_file.write_bytes(old_key)
    _cut_log_to(v, 1)
    r = v.run("audit", "verify", "--json")
    assert r.returncode == 6, r
    assert json.loads(r.stdout)["ok"] is False, r
    assert "tampered" in r.stderr, r
    assert "truncated" in r.stderr, r
    r = v.run("token", "a")
    assert r.returncode == 6, r  # fail closed, as for any cut log
    assert r.stdout == "", r
    assert v.vault_file.read_bytes() == vault_file


def test_keyring_entry_put_back_alone_does_not_hide_records(
    vault: VaultCLI, secret_service: SecretService
) -> None:
    """The same for the keyring backend: the vault's keyring entry (key, generation, audit mark)
    written back to an older value on its own, the log cut to its mark."""
    import secretstorage
    from jeepney.io.blocking import open_dbus_connection

    assert vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaa").returncode == 0
    vault_id = json.loads(vault.run("status", "--json").stdout)["vault"]["vault_id"]
    conn = open_dbus_connection(bus=secret_service.bus_address)
    try:
        attributes = {"service": "vault", "username": vault_id}
        (item,) = secretstorage.search_items(conn, attributes)
        old_entry = item.get_secret()
        _deny_once(vault)
        r = vault.run("import", "b", "--provider", "github", input="tok-bbbbbbbbbb")
        assert r.returncode == 0, r
        assert vault.run("logout", "b").returncode == 0
        (item,) = secretstorage.search_items(conn, attributes)
        item.set_secret(old_entry)
    finally:
        conn.close()
    _cut_log_to(vault, 1)
    r = vault.run("audit", "verify", "--json")
    assert r.returncode == 6, r
    assert json.loads(r.stdout)["ok"] is False, r
    assert "truncated" in r.stderr, r
