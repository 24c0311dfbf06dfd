"""Through the executable: a client_secret that config.yaml cannot use is refused (exit 3)
with its file and line, and no part of it on stderr or stdout, whatever its YAML type."""

from __future__ import annotations

import pytest

from tests.conftest import VaultCLI

CANARY = "QCANARYSECRET7X4Z9"
DIGITS = "9" + "27182818284" * 3


@pytest.mark.parametrize(
    "value",
    [
        f"!!int {CANARY}",
        f"!!bool {CANARY}",
        f"[{CANARY}, !!float {CANARY}]",
        f"{{{CANARY}: 1, {CANARY}: 2}}",
        f"{{[{CANARY}]: 1}}",
        f"!{CANARY} x",
        DIGITS,
        f"0x{DIGITS}",
        f"{{x: {CANARY}}}",
    ],
)
def test_unusable_client_secret_is_not_shown(passphrase_vault: VaultCLI, value: str) -> None:
    v = passphrase_vault
    v.home.mkdir(mode=0o700)
    (v.home / "config.yaml").write_text(
        f"providers:\n  p:\n    issuer: https://idp.example\n    client_secret: {value}\n"
    )
    r = v.run("list")
    assert r.returncode == 3, r
    assert f"{v.home / 'config.yaml'}:4: " in r.stderr, r
    canary = DIGITS if DIGITS in value else CANARY
    output = r.stderr + r.stdout
    assert not any(canary[i : i + 8] in output for i in range(len(canary) - 7)), r
