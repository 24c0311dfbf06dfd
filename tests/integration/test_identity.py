"""Who a token belongs to, found at login and shown after: through the real `vault` executable,
against the real local OpenID provider (oidc-provider: an ID token with `sub`, a userinfo
endpoint), and a scripted fake (tests/harness/fake_oauth.py) for GitHub's `/user` and for the
hostile answers no real provider gives on demand."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VaultCLI, approved_login, configure_provider, read_record
from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.harness.provider import IdP, start_idp

# Every character vault.util.text.clean removes: none may reach a terminal or a stored record.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


@pytest.fixture
def idp() -> Iterator[IdP]:
    with start_idp() as server:
        yield server


def _audit(vault: VaultCLI, kind: str) -> list[dict[str, object]]:
    lines = (vault.home / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def _listed(vault: VaultCLI) -> dict[str, dict[str, object]]:
    r = vault.run("list", "--json")
    assert r.returncode == 0, r
    return {t["name"]: t for t in json.loads(r.stdout)["tokens"]}


# --- the real provider -------------------------------------------------------------------------


def test_the_id_token_names_the_account(vault: VaultCLI, idp: IdP) -> None:
    """openid only: the ID token's `sub`, and userinfo (asked for a name) has no more."""
    configure_provider(vault, idp.issuer, ("openid", "offline_access"))
    code, events, err = approved_login(vault, username="carol")
    assert code == 0, err
    assert events[-1]["account"] == {"subject": "carol", "display": None}
    record = read_record(vault, "local")
    assert record is not None
    assert record["account"] == {"subject": "carol"}
    assert _listed(vault)["local"]["account"] == {"subject": "carol", "display": None}
    issued = _audit(vault, "issued")[-1]
    assert (issued["account"], issued["account_subject"]) == ("carol", "carol")
    assert vault.run("audit", "verify").returncode == 0


def test_userinfo_gives_the_name_to_show(vault: VaultCLI, idp: IdP) -> None:
    """With the email scope, oidc-provider keeps the claim out of the ID token (an access token
    was issued too) and answers it at userinfo: that is where the name comes from."""
    configure_provider(vault, idp.issuer, ("openid", "email"))
    code, events, err = approved_login(vault, username="dave")
    assert code == 0, err
    account = {"subject": "dave", "display": "dave@example.test"}
    assert events[-1]["account"] == account
    assert _listed(vault)["local"]["account"] == account
    r = vault.run("status", "local", "--json")
    assert json.loads(r.stdout)["account"] == account
    r = vault.run("status", "local")
    assert re.search(r"^account: +dave@example\.test \(subject dave\)$", r.stdout, re.M), r
    r = vault.run("list")
    header, row = r.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ACCOUNT", "PROVIDER"]
    assert row.split()[:3] == ["local", "dave@example.test", "local"]
    issued = _audit(vault, "issued")[-1]
    assert (issued["account"], issued["account_subject"]) == ("dave@example.test", "dave")


# --- GitHub's /user, and hostile answers, from a fake ---------------------------------------


def _jwt(claims: object) -> str:
    def part(doc: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def _github_config(vault: VaultCLI, fake: FakeOAuth) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        "providers:\n  github:\n    preset: github\n"
        f"    issuer: {fake.issuer}\n    client_id: Iv1.test\n"
        f"    device_authorization_endpoint: {fake.issuer}/device_authorization\n"
        f"    token_endpoint: {fake.issuer}/token\n"
        f"    api_base: {fake.issuer}/api\n"
    )


def _oidc_config(vault: VaultCLI, fake: FakeOAuth) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  fake:\n    issuer: {fake.issuer}\n    client_id: cli\n"
        "    scopes: [openid]\n"
    )


def _login(vault: VaultCLI, name: str, *args: str) -> tuple[str, list[dict[str, object]]]:
    r = vault.run("login", name, "--no-browser", *args)
    assert r.returncode == 0, r
    j = vault.run("list", "--json")
    return r.stderr, json.loads(j.stdout)["tokens"]


def test_github_user_names_the_account(vault: VaultCLI) -> None:
    with fake_oauth() as fake:
        fake.routes["/api/user"] = lambda _: json_reply({"login": "octocat", "id": 583231})
        _github_config(vault, fake)
        err, tokens = _login(vault, "github")
        assert ("/api/user", {}) in fake.requests
    host = fake.issuer.removeprefix("http://")
    assert f"Logged in to {host} as octocat: stored 'github'" in err
    assert tokens[0]["account"] == {"subject": "583231", "display": "octocat"}


def test_a_failed_lookup_never_fails_the_login(vault: VaultCLI) -> None:
    """/user refused, and at -v the reason is said; the line is today's."""
    with fake_oauth() as fake:
        fake.routes["/api/user"] = lambda _: json_reply({"message": "Bad credentials"}, 401)
        _github_config(vault, fake)
        err, tokens = _login(vault, "github", "-v")
    assert "Logged in: stored 'github'" in err
    assert "login.account_unknown" in err
    assert "HTTP 401" in err
    assert tokens[0]["account"] is None
    assert "account" not in _audit(vault, "issued")[-1]


HOSTILE_USER: list[Reply] = [
    (200, {"Content-Type": "application/json"}, b"not json"),
    (200, {"Content-Type": "application/json"}, b"[1, 2]"),
    (200, {"Content-Type": "application/json"}, b"[" * 100000),
    (500, {}, b"oops"),
    (302, {"Location": "http://127.0.0.2:9/steal"}, b""),
    json_reply({"login": ["a"], "id": {"x": 1}}),
    json_reply({"login": None, "id": True}),
    json_reply({"login": "", "id": 10**40}),
    (200, {"Content-Type": "application/json"}, b'{"login": "' + b"x" * 300000 + b'"}'),
]


@pytest.mark.parametrize("reply", HOSTILE_USER, ids=range(len(HOSTILE_USER)))
def test_hostile_user_answers_leave_no_account(vault: VaultCLI, reply: Reply) -> None:
    with fake_oauth() as fake:
        fake.routes["/api/user"] = lambda _: reply
        _github_config(vault, fake)
        err, tokens = _login(vault, "github")
    assert "Logged in: stored 'github'" in err
    assert tokens[0]["account"] is None
    assert "Traceback" not in err


BIDI = "\u202egnp.exe"
HOSTILE_CLAIMS: list[tuple[dict[str, object], dict[str, object] | None]] = [
    # claims -> the account stored (None: only checked to be safe)
    ({"sub": "u1\x1b[31m", "preferred_username": "evil\x1b]0;title\x07name"}, None),
    ({"sub": "u1", "preferred_username": BIDI}, {"subject": "u1", "display": "gnp.exe"}),
    ({"sub": "u1", "preferred_username": "a\u200bb\u2028c\rd\ne"}, None),
    ({"sub": "s" * 256, "email": "x@y"}, {"display": "x@y"}),  # a subject cut would mislead
    ({"sub": 42, "name": ["a"], "email": {"a": 1}}, {"subject": "42"}),
    ({"sub": True, "preferred_username": 7.5}, None),
    ({"sub": None, "preferred_username": "   "}, None),
    ({"sub": "u1", "preferred_username": "n" * 20000}, {"subject": "u1", "display": "…"}),
    ({"sub": "\u202e\u2066"}, None),
]


@pytest.mark.parametrize(("claims", "stored"), HOSTILE_CLAIMS, ids=range(len(HOSTILE_CLAIMS)))
def test_hostile_id_token_claims_are_cleaned_and_bounded(
    vault: VaultCLI, claims: dict[str, object], stored: dict[str, object] | None
) -> None:
    with fake_oauth() as fake:
        fake.routes["/token"] = lambda _: json_reply(fake.token_response(id_token=_jwt(claims)))
        _oidc_config(vault, fake)
        r = vault.run("login", "fake", "--no-browser")
        assert r.returncode == 0, r
        listing = vault.run("list")
    record = read_record(vault, "fake")
    assert record is not None
    account = record.get("account")
    for text in (r.stderr, listing.stdout, json.dumps(account, ensure_ascii=False)):
        assert not UNSAFE.search(text.replace("\n", "")), text[:300]
    if stored is None:
        # Only what survived cleaning; the escape sequences' printable rest may remain.
        assert account is None or isinstance(account, dict)
        assert all(isinstance(v, str) and v for v in (account or {}).values())
        return
    assert isinstance(account, dict)
    for key, value in stored.items():
        assert isinstance(value, str)
        if value == "…":
            assert len(account[key]) == 80
            assert account[key].endswith("…")
        else:
            assert account[key] == value
    assert set(account) == set(stored)
    assert len(r.stderr.splitlines()[-1]) < 400


def test_userinfo_of_another_subject_is_ignored(vault: VaultCLI, tmp_path: Path) -> None:
    """OpenID Connect Core §5.3.4: userinfo's `sub` must be the ID token's, or it is not used."""
    with fake_oauth() as fake:
        meta = {**fake.metadata(), "userinfo_endpoint": f"{fake.issuer}/userinfo"}
        fake.routes["/.well-known/openid-configuration"] = lambda _: json_reply(meta)
        fake.routes["/token"] = lambda _: json_reply(
            fake.token_response(id_token=_jwt({"sub": "real"}))
        )
        fake.routes["/userinfo"] = lambda _: json_reply({"sub": "other", "email": "mallory@x"})
        _oidc_config(vault, fake)
        err, tokens = _login(vault, "fake")
        assert ("/userinfo", {}) in fake.requests
    assert tokens[0]["account"] == {"subject": "real", "display": None}
    assert "as real: stored" in err
