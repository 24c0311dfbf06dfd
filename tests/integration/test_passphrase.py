"""The passphrase backend end to end: Argon2id, wrong passphrase, weak parameters, no prompt."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import VaultCLI
from vault.keys.passphrase import KeyFileState, derive_key, write_key_file
from vault.secret import Secret
from vault.store import format as fmt
from vault.store.model import Meta, join_payload


def test_round_trip(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    r = v.run("import", "a", "--provider", "google", "--scope", "email", input="ya29.canary-token")
    assert r.returncode == 0, r
    assert v.run("token", "a").stdout == "ya29.canary-token\n"
    header = fmt.parse_header(v.vault_file.read_bytes(), path="v")
    assert (header.kdf, header.t_cost, header.m_cost, header.parallelism) == (
        fmt.KDF_ARGON2ID,
        3,
        65536,
        4,
    )
    assert len(header.salt) == 16
    assert header.salt != bytes(16)
    doc = json.loads(v.run("status", "--json").stdout)
    assert doc["vault"]["backend"] == "passphrase"


def test_wrong_passphrase(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    v = passphrase_vault
    v.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    wrong = tmp_path / "wrong"
    wrong.write_text("not it")
    wrong.chmod(0o600)
    before = v.vault_file.read_bytes()
    for args in (["token", "a"], ["import", "b", "--provider", "github"], ["rekey"]):
        r = v.run(*args, env={"VAULT_PASSPHRASE_FILE": str(wrong)}, input="tok-bbbbbbbb")
        assert r.returncode == 6, (args, r)
        assert "error: wrong passphrase for the vault at " in r.stderr
        assert "altered" not in r.stderr  # the key file's check tells: the passphrase is wrong
        assert v.vault_file.read_bytes() == before


def test_passphrase_file_must_be_private(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    v = passphrase_vault
    loose = tmp_path / "loose"
    loose.write_text("correct horse battery staple\n")
    loose.chmod(0o644)
    r = v.run(
        "import",
        "a",
        "--provider",
        "github",
        env={"VAULT_PASSPHRASE_FILE": str(loose)},
        input="tok-aaaaaaaa",
    )
    assert r.returncode == 6, r
    assert "accessible by group or others" in r.stderr
    assert not v.vault_file.exists()


def test_passphrase_flag_instead_of_env(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    v = passphrase_vault
    pw = v.env["VAULT_PASSPHRASE_FILE"]
    env = {"VAULT_PASSPHRASE_FILE": ""}
    r = v.run(
        "import",
        "a",
        "--provider",
        "github",
        "--passphrase-file",
        pw,
        env=env,
        input="tok-aaaaaaaa",
    )
    assert r.returncode == 0, r
    assert v.run("token", "a", "--passphrase-file", pw, env=env).stdout == "tok-aaaaaaaa\n"


def test_no_terminal_and_no_file_fails_fast(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    r = v.run(
        "import",
        "a",
        "--provider",
        "github",
        env={"VAULT_PASSPHRASE_FILE": ""},
        input="tok-aaaaaaaa",
        timeout=20,
    )
    assert r.returncode == 6, r
    assert "no terminal" in r.stderr
    assert "VAULT_PASSPHRASE_FILE" in r.stderr


def test_weak_parameters_refused(passphrase_vault: VaultCLI) -> None:
    """A file whose Argon2id parameters are below OWASP's floor is refused before deriving,
    even when it is otherwise perfectly valid for the passphrase."""
    v = passphrase_vault
    v.home.mkdir(mode=0o700)
    passphrase = Secret("correct horse battery staple")
    meta = Meta.new()
    vault_id = os.urandom(16)
    salt = os.urandom(16)
    t, m, p = 1, 8192, 1
    key = derive_key(passphrase, salt=salt, t_cost=t, m_cost=m, parallelism=p)
    header = fmt.Header(fmt.KDF_ARGON2ID, bytes(4), t, m, p, salt, vault_id, 1, os.urandom(12))
    v.vault_file.write_bytes(fmt.seal(header, key, join_payload(meta, [])))
    v.vault_file.chmod(0o600)
    write_key_file(v.home / "vault.key", KeyFileState(vault_id, 1), meta.state_key)
    r = v.run("list")
    assert r.returncode == 6, r
    assert "below OWASP" in r.stderr


def test_rekey_changes_salt_and_optionally_passphrase(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    v = passphrase_vault
    v.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    salt1 = fmt.parse_header(v.vault_file.read_bytes(), path="v").salt
    assert v.run("rekey").returncode == 0
    salt2 = fmt.parse_header(v.vault_file.read_bytes(), path="v").salt
    assert salt1 != salt2
    new = tmp_path / "new"
    new.write_text("a brand new passphrase")
    new.chmod(0o600)
    r = v.run("rekey", "--new-passphrase", env={"VAULT_NEW_PASSPHRASE_FILE": str(new)})
    assert r.returncode == 0, r
    assert v.run("token", "a").returncode == 6
    assert v.run("token", "a", env={"VAULT_PASSPHRASE_FILE": str(new)}).stdout == "tok-aaaaaaaa\n"
