"""`vault token` with words the hand parser leaves to argparse: the same usage errors (exit 2,
one error line and the help hint), never an internal error."""

from __future__ import annotations

import pytest

from tests.conftest import VaultCLI


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-valid=--5"], "argument --min-valid: invalid int value: '--5'"),
        (["--min-valid=---1"], "argument --min-valid: invalid int value: '---1'"),
        (["--min-valid", "--5"], "argument --min-valid: expected one argument"),
        (["--min-valid="], "argument --min-valid: invalid int value: ''"),
        (["--min-valid", "1e3"], "argument --min-valid: invalid int value: '1e3'"),
        (["--passphrase-file", "--debug"], "argument --passphrase-file: expected one argument"),
    ],
)
def test_bad_min_valid_is_a_usage_error(
    passphrase_vault: VaultCLI, args: list[str], message: str
) -> None:
    r = passphrase_vault.run("token", "x", *args)
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"vault: error: {message}",
        "vault: hint: see `vault token --help`",
    ], r


def test_a_number_over_ints_digit_limit_is_a_usage_error(passphrase_vault: VaultCLI) -> None:
    r = passphrase_vault.run("token", "x", "--min-valid", "9" * 5000)
    assert r.returncode == 2, r
    first, hint = r.stderr.splitlines()  # the message is clipped, still one line
    assert first.startswith("vault: error: argument --min-valid: invalid int value: '999"), r
    assert hint == "vault: hint: see `vault token --help`"
