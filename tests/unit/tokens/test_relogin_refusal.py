"""The refusal of a second login over a stored name: one line naming the token (provider,
account where known, issue time), the --force hint; a token that needs a new login is replaced
without --force."""

from __future__ import annotations

import pytest

from vault.errors import UsageError
from vault.secret import Secret
from vault.store.model import Account, LoginNeeded, TokenRecord
from vault.tokens.lifecycle import replaced_by


def _record(**changes: object) -> TokenRecord:
    doc: dict[str, object] = {
        "name": "work",
        "provider": "corp",
        "issuer": "https://idp.example.com",
        "client_id": "cli",
        "token_type": "Bearer",
        "access_token": Secret("at-canary-1"),
        "refresh_token": Secret("rt-canary-1"),
        "id_token": None,
        "scopes": ("openid",),
        "issued_at": 1_700_000_000,
        "expires_at": None,
        "last_refresh": None,
    }
    doc.update(changes)
    return TokenRecord(**doc)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("account", "shown"),
    [
        (None, None),
        (Account(subject="u-1", display="alice@example.com"), "alice@example.com"),
        (Account(subject="u-1"), "u-1"),
        (Account(), None),
    ],
)
def test_a_live_token_is_refused_naming_it(account: Account | None, shown: str | None) -> None:
    with pytest.raises(UsageError) as info:
        replaced_by(_record(account=account), force=False)
    message = info.value.message
    assert message.startswith("a token named 'work' is already stored (corp")
    assert "issued 2023-11-14T22:13:20Z" in message
    assert (f"account {shown!r}" in message) if shown else ("account" not in message)
    assert "\n" not in message
    assert "canary" not in message
    assert info.value.hint is not None
    assert "--force" in info.value.hint
    assert info.value.exit_code == 2


def test_force_replaces_a_live_token() -> None:
    record = _record()
    assert replaced_by(record, force=True) is record
    assert replaced_by(None, force=False) is None


def test_a_token_that_needs_a_login_is_replaced_without_force() -> None:
    dead = _record(needs_login=LoginNeeded("invalid_grant", "refused", 1_700_000_100))
    assert replaced_by(dead, force=False) is dead
