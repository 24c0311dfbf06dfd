"""A token whose refresh the provider refused (`invalid_grant`) needs a new login: it is marked
so, kept like any answer, never handed out or sent to the provider again, shown as
`needs_login` by `vault list` and `vault status`, cleared by a new login or import for its
name, and deleted by `vault prune` (it is dead).

Against the real local identity provider (oidc-provider), in the two ways a person meets the
refusal: the grant was revoked (at the provider, or by an admin), or the refresh token was
spent elsewhere first (a copy of the vault, a stolen refresh token) and the token it holds
is then a replay, which oidc-provider answers by revoking the whole grant. The provider's own
grant log proves that no command contacts it about a marked token. A scripted provider gives the
other refusals, which must not mark the token."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Result, VaultCLI, approved_login, configure_provider, read_record
from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.harness.provider import IdP, start_idp


@pytest.fixture
def idp() -> Iterator[IdP]:
    with start_idp() as server:
        yield server


def _login(vault: VaultCLI, idp: IdP) -> None:
    configure_provider(vault, idp.issuer)
    code, _, err = approved_login(vault)
    assert code == 0, err


def _refresh_grants(idp: IdP) -> int:
    return sum(1 for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token")


def _one_error(r: Result, code: int, *needles: str) -> str:
    assert r.returncode == code, r
    assert "Traceback" not in r.stderr, r
    assert r.stdout == "", r
    errors = [line for line in r.stderr.splitlines() if line.startswith("vault: error: ")]
    assert len(errors) == 1, r
    for needle in needles:
        assert needle in errors[0], (needle, r)
    return errors[0]


def _revoked_at_the_provider(vault: VaultCLI, idp: IdP) -> None:
    record = read_record(vault, "local")
    assert record is not None
    idp.revoke(str(record["refresh_token"]), "refresh_token")


def _spent_elsewhere(vault: VaultCLI, idp: IdP) -> None:
    """Someone else (a copy of the vault, a stolen refresh token) refreshes first: the refresh
    token the vault holds is then one the provider already rotated away."""
    import httpx

    from tests.harness.provider import PUBLIC_CLIENT_ID

    record = read_record(vault, "local")
    assert record is not None
    form = {
        "grant_type": "refresh_token",
        "refresh_token": str(record["refresh_token"]),
        "client_id": PUBLIC_CLIENT_ID,
    }
    assert httpx.post(idp.url("/token"), data=form, timeout=10).status_code == 200


REFUSALS: dict[str, Callable[[VaultCLI, IdP], None]] = {
    "grant revoked": _revoked_at_the_provider,
    "refresh token replayed": _spent_elsewhere,
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_refresh_marks_the_token_and_nothing_contacts_the_provider_again(
    vault: VaultCLI, idp: IdP, refusal: str
) -> None:
    _login(vault, idp)
    old_access = vault.run("token", "local").stdout.strip()
    REFUSALS[refusal](vault, idp)
    r = vault.run("refresh", "local")
    _one_error(r, 4, "[invalid_grant]", "needs a new login", "vault login local --name local")
    asked = _refresh_grants(idp)
    # Every way a token leaves vault, or is refreshed, is refused without asking the provider:
    # the old access token is never handed out again, even while it has not expired.
    uses: list[tuple[str, ...]] = [
        ("token", "local"),
        ("token", "local", "--min-valid", "999999"),
        ("refresh", "local"),
        ("exec", "local", "--env", "TOKEN", "--", "true"),
        ("api", "local", idp.url("/me")),
    ]
    for args in uses:
        r = vault.run(*args)
        _one_error(r, 4, "needs a new login", "vault login local --name local")
        assert old_access not in r.stdout + r.stderr
    assert _refresh_grants(idp) == asked, "a marked token was sent to the provider"
    assert (read_record(vault, "local") or {}).get("refresh_token") is None  # dead: not kept

    listed = json.loads(vault.run("list", "--json").stdout)["tokens"]
    assert [t["state"] for t in listed] == ["needs_login"]
    assert listed[0]["refreshable"] is False
    mark = listed[0]["needs_login"]
    assert mark["cause"] == "invalid_grant"
    assert "refused its refresh token" in mark["reason"]
    assert mark["since"].endswith("Z")
    assert json.loads(vault.run("status", "local", "--json").stdout)["state"] == "needs_login"
    status = json.loads(vault.run("status", "--json").stdout)
    assert [t["state"] for t in status["tokens"]] == ["needs_login"]
    shown_by: list[tuple[str, ...]] = [("list",), ("status",), ("status", "local")]
    for args in shown_by:  # the text forms too
        r = vault.run(*args)
        assert r.returncode == 0, r
        assert "needs_login" in r.stdout, r

    # Audited: the refused refresh, and each refused use; the log verifies.
    shown = [json.loads(line) for line in vault.run("audit", "show", "--json").stdout.splitlines()]
    refreshes = [d for d in shown if d["event"] == "refreshed" and d["outcome"] == "failure"]
    assert len(refreshes) == 1
    assert "invalid_grant" in refreshes[0]["reason"]
    refused = [d for d in shown if d["event"] == "used" and d["outcome"] == "failure"]
    assert len(refused) == 5
    assert all("needs a new login" in d["reason"] for d in refused)
    assert vault.run("audit", "verify").returncode == 0

    # A new login for the name clears the mark.
    code, _, err = approved_login(vault)
    assert code == 0, err
    listed = json.loads(vault.run("list", "--json").stdout)["tokens"]
    assert [(t["state"], t["needs_login"]) for t in listed] == [("valid", None)]
    assert vault.run("refresh", "local").returncode == 0
    assert vault.run("token", "local").returncode == 0


def test_prune_deletes_a_token_that_needs_a_new_login(vault: VaultCLI, idp: IdP) -> None:
    _login(vault, idp)
    _revoked_at_the_provider(vault, idp)
    assert vault.run("refresh", "local").returncode == 4
    r = vault.run("prune", "--dry-run", "--json")
    assert r.returncode == 0, r
    plan = json.loads(r.stdout)["plan"]
    assert [(a["name"], a["reason"]) for a in plan] == [("local", "needs_login")]
    assert plan[0]["revoke"] is True  # its access token has not expired: revoked first
    r = vault.run("prune", "--json")
    assert r.returncode == 0, r
    results = json.loads(r.stdout)["results"]
    assert [(o["name"], o["result"]) for o in results] == [("local", "revoked_and_deleted")]
    assert json.loads(vault.run("list", "--json").stdout)["tokens"] == []
    assert vault.run("audit", "verify").returncode == 0


def test_an_import_replaces_a_token_that_needs_a_new_login(vault: VaultCLI, idp: IdP) -> None:
    _login(vault, idp)
    _revoked_at_the_provider(vault, idp)
    assert vault.run("refresh", "local").returncode == 4
    token = "pat-" + "q" * 30
    r = vault.run("import", "local", "--provider", "local", input=token)  # no --force needed
    assert r.returncode == 0, r
    listed = json.loads(vault.run("list", "--json").stdout)["tokens"]
    assert [(t["state"], t["needs_login"]) for t in listed] == [("valid", None)]
    assert vault.run("token", "local").stdout == token + "\n"
    # A live token of the name is still only replaced with --force.
    r = vault.run("import", "local", "--provider", "local", input=token)
    assert r.returncode == 2, r


# --- which refusals mark the token: only invalid_grant -----------------------------------------


def _token_endpoint(refresh: Reply) -> Callable[[dict[str, str]], Reply]:
    counter = itertools.count(1)

    def reply(form: dict[str, str]) -> Reply:
        if form.get("grant_type") == "refresh_token":
            return refresh
        n = next(counter)
        return json_reply(
            {
                "access_token": f"at-{n:04d}-" + "y" * 24,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": f"rt-{n:04d}-" + "z" * 24,
                "scope": "openid",
            }
        )

    return reply


@pytest.mark.parametrize(
    ("answer", "code", "marked"),
    [
        (json_reply({"error": "invalid_grant"}, 400), 4, True),
        (
            json_reply({"error": "invalid_grant", "error_description": "grant revoked"}, 400),
            4,
            True,
        ),
        (json_reply({"error": "invalid_client"}, 401), 4, False),
        (json_reply({"error": "unauthorized_client"}, 400), 4, False),
        (json_reply({"error": "invalid_scope"}, 400), 4, False),
        (json_reply({"error": "invalid_request"}, 400), 4, False),
        (json_reply({"error": "temporarily_unavailable"}, 400), 7, False),
        ((503, {}, b"busy"), 7, False),
    ],
    ids=lambda v: v if isinstance(v, bool | int) else v[2].decode()[:40],
)
def test_only_invalid_grant_marks_the_token(
    vault: VaultCLI, answer: Reply, code: int, marked: bool, tmp_path: Path
) -> None:
    with fake_oauth({"/token": _token_endpoint(answer)}) as fake:
        _fake_login(vault, fake)
        r = vault.run("refresh", "local")
        assert r.returncode == code, r
        assert "Traceback" not in r.stderr
        state = json.loads(vault.run("status", "local", "--json").stdout)["state"]
        assert (state == "needs_login") is marked, (state, r)
        asked = sum(1 for path, form in fake.requests if form.get("grant_type") == "refresh_token")
        vault.run("token", "local", "--min-valid", "999999")
        again = sum(1 for path, form in fake.requests if form.get("grant_type") == "refresh_token")
        assert (again == asked) is marked  # a marked token is never sent again; others are


def _fake_login(vault: VaultCLI, fake: FakeOAuth) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  local:\n    issuer: {fake.issuer}\n    client_id: cli\n"
        "    scopes: [openid]\n"
    )
    r = vault.run("login", "local", "--no-browser", timeout=90)
    assert r.returncode == 0, r
