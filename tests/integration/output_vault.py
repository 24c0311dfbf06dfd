"""A vault holding a token in every state a person can meet, for the output tests.

The tokens are stored with `vault import` (the real executable); the states an import cannot
give (a refresh token, a refusal by the provider, a rejection, an account, times in the
past) are then written into those records through vault's own store, in a separate process
with the test's environment, as a login or a refresh would have left them. Times are put in
the middle of their unit ("2 h 30 min ago"), so a relative time reads the same for minutes."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import VaultCLI

H, D = 3600, 86400

# name: (provider, scopes, what the record is changed to, with times relative to now)
TOKENS: dict[str, tuple[str, list[str], dict[str, object]]] = {
    "gh": (
        "github",
        ["repo", "read:org"],
        {"issued": -2 * H - 1800, "expires": 7 * H + 1800, "refresh": True, "display": "octocat"},
    ),
    "gh-expiring": ("github", ["repo"], {"issued": -1800, "expires": 299}),
    "gl-refreshable": (
        "gitlab",
        ["api"],
        {"issued": -3 * D - 2 * H, "expires": -3 * D - H, "refresh": True, "display": "Zoë Å."},
    ),
    "gl-expired": ("gitlab", ["read_user"], {"issued": -2 * H - 1800, "expires": -H - 1800}),
    "needs-login": (
        "github",
        ["repo"],
        {"issued": -5 * H, "expires": -H - 1800, "refresh": True, "needs_login": -H - 1800},
    ),
    "too-old": ("github", ["repo"], {"issued": -40 * D, "expires": None, "subject": "12345"}),
    "bad-scope": ("gitlab", ["api", "admin:all"], {"issued": -H - 1800, "expires": D + 2 * H}),
    "rejected": (
        "github",
        ["repo"],
        {"issued": -H - 1800, "expires": 5 * H + 1800, "refresh": True, "rejected": -600},
    ),
}

POLICY = "version: 1\nmax_token_age: 30d\ndenied_scopes: ['admin:*']\n"

STATES = {
    "gh": "valid",
    "gh-expiring": "expiring",
    "gl-refreshable": "refreshable",
    "gl-expired": "expired",
    "needs-login": "needs_login",
    "too-old": "denied:max_token_age",
    "bad-scope": "denied:denied_scopes",
    "rejected": "rejected",
}

_SEED = """
import json, sys, time
from vault.fs import paths as _paths
from vault.keys.passphrase import PassphraseSource
from vault.policy.config import load
from vault.secret import Secret
from vault.store.model import Account, LoginNeeded
from vault.store.vault import Store
from vault.util.record import replace

spec = json.load(sys.stdin)
now = int(time.time())
paths = _paths.resolve()
store = Store(paths, backend=load(paths).backend()[0], passphrase=PassphraseSource())
with store.edit() as editor:
    for name, (scopes, change) in spec.items():
        record = editor.get(name)
        fields = {"scopes": tuple(scopes), "issued_at": now + change["issued"]}
        fields["expires_at"] = None if change["expires"] is None else now + change["expires"]
        if change.get("refresh"):
            fields["refresh_token"] = Secret("rt-" + name + "-0123456789abcdef")
            fields["extra"] = {**record.extra, "token_endpoint": "https://example.invalid/t"}
        if "needs_login" in change:
            fields["needs_login"] = LoginNeeded(
                "invalid_grant", "the provider refused the refresh token",
                now + change["needs_login"],
            )
        if "rejected" in change:
            fields["rejected_at"] = now + change["rejected"]
        if "display" in change or "subject" in change:
            fields["account"] = Account(change.get("subject"), change.get("display"))
        editor.put(replace(record, **fields))
"""


def populate(vault: VaultCLI) -> None:
    """Every token of TOKENS in the vault, in its state, and the policy that denies two."""
    for name, (provider, _, _) in TOKENS.items():
        token = f"tok-{name}-0123456789abcdef"
        r = vault.run("import", name, "--provider", provider, input=token)
        assert r.returncode == 0, r
    folder = vault.home / "policies"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "user.yaml").write_text(POLICY)
    (folder / "user.yaml").chmod(0o600)
    spec = {name: (scopes, change) for name, (_, scopes, change) in TOKENS.items()}
    subprocess.run(
        [sys.executable, "-c", _SEED],
        input=json.dumps(spec),
        text=True,
        env=vault.full_env(),
        check=True,
        timeout=60,
    )
