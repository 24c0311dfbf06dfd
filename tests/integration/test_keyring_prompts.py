"""The real `vault` executable against a Secret Service that asks for confirmations (as
KeePassXC can: Item.Delete and CreateItem answered with a prompt), played by the fake service of
tests/harness/fake_secret_service.py: `vault rekey` to the passphrase backend never reports
success while the old data key is still in the keyring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VaultCLI
from tests.harness.fake_secret_service import PROMPT, FakeSecretService

TOKEN = "ghp_" + "Pr0mpt" * 5 + "abcdef"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeSecretService]:
    with FakeSecretService(tmp_path / "bus") as service:
        # It would serve a plain session too, so that only the prompt decides these tests.
        service.allow_plain = True
        yield service


def _vault(tmp_path: Path, fake: FakeSecretService) -> tuple[VaultCLI, dict[str, str]]:
    vault = VaultCLI(
        tmp_path / "vh",
        {"DBUS_SESSION_BUS_ADDRESS": fake.bus_address, "VAULT_KEYRING_TIMEOUT": "5"},
    )
    pw = tmp_path / "pw"
    pw.write_text("a long passphrase for the move\n")
    pw.chmod(0o600)
    r = vault.run("import", "gh", "--provider", "github", input=TOKEN)
    assert r.returncode == 0, r
    assert len(fake.items) == 1  # the keyring entry: the data key and the marks
    return vault, {"VAULT_KEY_BACKEND": "passphrase", "VAULT_PASSPHRASE_FILE": str(pw)}


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_rekey_fails_while_the_old_key_stays_behind_a_prompt(
    tmp_path: Path, fake: FakeSecretService, json_output: bool
) -> None:
    vault, passphrase = _vault(tmp_path, fake)
    entry = next(iter(fake.items))
    fake.prompt_delete = True
    r = vault.run("rekey", *(["--json"] if json_output else []), env=passphrase)
    assert r.returncode == 6, r
    error = [line for line in r.stderr.splitlines() if line.startswith("vault: error")]
    assert len(error) == 1, r
    assert "still there" in error[0]
    assert "prompt" in error[0]
    assert "passphrase backend" in error[0]
    assert "Traceback" not in r.stderr
    assert "Moved" not in r.stdout
    assert "rekeyed" not in r.stdout
    assert entry in fake.items  # the old key is there, and vault said so
    assert (PROMPT, "Dismiss", ()) in fake.calls
    # The move itself stands: the vault opens with the passphrase, not with the keyring.
    assert vault.run("token", "gh", env=passphrase).stdout == TOKEN + "\n"
    status = json.loads(vault.run("status", "--json", env=passphrase).stdout)
    assert status["vault"]["backend"] == "passphrase"


def test_rekey_succeeds_once_the_old_key_is_gone(tmp_path: Path, fake: FakeSecretService) -> None:
    """No confirmation asked, a service that only speaks the encrypted session: the move and
    the delete both happen."""
    fake.allow_plain = False
    vault, passphrase = _vault(tmp_path, fake)
    r = vault.run("rekey", "--json", env=passphrase)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["backend"] == "passphrase"
    assert fake.items == {}
    assert "Dismiss" not in fake.members()
