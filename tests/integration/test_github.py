"""GitHub as it behaves, through the real `vault` executable configured with ``preset: github``
and ``host: 127.0.0.1:PORT`` against the GitHub emulator (tests/harness/github.py): both kinds
of user token (OAuth App gho_, GitHub App ghu_/ghr_), refresh rotation, bad_refresh_token,
revocation with and without the client secret, `status --verify`, the ten-token warning,
slow_down, HTTP-200 errors, and bad `host:` values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import VaultCLI, read_record
from tests.harness.clock import at
from tests.harness.github import App, GitHub, github_emulator


@pytest.fixture
def gh() -> Iterator[GitHub]:
    with github_emulator() as emulator:
        yield emulator


def _config(
    vault: VaultCLI,
    gh: GitHub,
    app: App,
    *,
    secret: bool = True,
    scopes: tuple[str, ...] = ("read:user", "repo"),
) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    text = (
        f"providers:\n  ghe:\n    preset: github\n    host: {gh.host}\n"
        f"    client_id: {app.client_id}\n    scopes: [{', '.join(scopes)}]\n"
    )
    if secret:
        text += f"    client_secret: {app.client_secret}\n"
    path = vault.home / "config.yaml"
    path.write_text(text)
    path.chmod(0o600)


def _system_policy(tmp_path: Path, text: str) -> dict[str, str]:
    folder = tmp_path / "system-policies"
    folder.mkdir(exist_ok=True, mode=0o755)
    path = folder / "org.yaml"
    path.write_text(text)
    path.chmod(0o644)
    return {"VAULT_SYSTEM_POLICY_DIR": str(folder)}


def _login(
    vault: VaultCLI,
    gh: GitHub,
    *args: str,
    deny: bool = False,
    approve: bool = True,
    env: dict[str, str] | None = None,
) -> tuple[int, list[dict[str, object]], str]:
    """`vault login ghe ARGS --json`, the person approving on the emulator's page once the
    device code is shown (or never, with ``approve=False``: the emulator's script decides)."""
    proc = vault.popen("login", "ghe", *args, "--json", env=env)
    assert proc.stdout is not None
    events: list[dict[str, object]] = []
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        events.append(json.loads(line))
        if events[-1]["event"] == "device_code":
            if approve:
                assert gh.approve(str(events[-1]["user_code"]), deny=deny) == 200
            break
    out, err = proc.communicate(timeout=90)
    events += [json.loads(x) for x in out.decode().splitlines() if x.strip()]
    return proc.returncode, events, err.decode()


def _audit(vault: VaultCLI) -> list[dict[str, object]]:
    r = vault.run("audit", "show", "--json")
    assert r.returncode == 0, r
    return [json.loads(line) for line in r.stdout.splitlines()]


def _record(vault: VaultCLI, name: str = "ghe") -> dict[str, object]:
    record = read_record(vault, name)
    assert record is not None
    return record


def _works(gh: GitHub, token: str) -> bool:
    """Whether GitHub (the emulator) takes the token now, asked as a client would."""
    resp = httpx.get(f"{gh.base}/api/v3/user", headers={"Authorization": f"Bearer {token}"})
    return resp.status_code == 200


def _refresh_at_github(gh: GitHub, app: App, refresh_token: str) -> dict[str, object]:
    resp = httpx.post(
        f"{gh.base}/login/oauth/access_token",
        data={
            "client_id": app.client_id,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 200  # GitHub sends its errors with HTTP 200
    doc = resp.json()
    assert isinstance(doc, dict)
    return doc


# --- OAuth App tokens (gho_) ---------------------------------------------------------------


def test_an_oauth_app_token_logs_in_is_used_and_verified_with_its_live_scopes(
    vault: VaultCLI, gh: GitHub
) -> None:
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    code, events, err = _login(vault, gh)
    assert code == 0, err
    assert events[-1]["event"] == "success"
    assert events[-1]["scopes"] == ["read:user", "repo"]  # comma-separated at GitHub
    assert events[-1]["expires_at"] is None
    status = json.loads(vault.run("status", "ghe", "--json").stdout)
    assert status["issuer"] == gh.base  # a GHES host is its own issuer
    assert status["refreshable"] is False
    record = _record(vault)
    assert record["extra"]["github_token"] == "oauth_app"  # type: ignore[index]
    assert record["extra"]["api_base"] == f"{gh.base}/api/v3"  # type: ignore[index]

    r = vault.run("token", "ghe")
    assert r.returncode == 0, r
    token = r.stdout.strip()
    assert token.startswith("gho_")
    assert _works(gh, token)
    r = vault.run("api", "ghe", "user")  # {api}/user on the GHES API base
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["login"] == "octocat"

    r = vault.run("status", "ghe", "--verify")
    assert r.returncode == 0, r
    assert "drift:          none" in r.stdout
    assert token not in r.stdout + r.stderr

    # The authorization's scopes change at GitHub: the drift is shown, exit 0.
    gh.set_scopes(token, ("read:user", "gist"))
    r = vault.run("status", "ghe", "--verify", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["live_scopes"] == ["read:user", "gist"]
    assert doc["stored_scopes"] == ["read:user", "repo"]
    assert doc["drift"] == {"added": ["gist"], "removed": ["repo"]}
    assert doc["revoked"] is False
    r = vault.run("status", "ghe", "--verify")
    assert r.returncode == 0, r
    assert "added: gist; removed: repo" in r.stdout
    asked = [
        s
        for s in gh.seen
        if s.path == "/api/v3/user" and s.headers.get("user-agent", "").startswith("vault/")
    ]
    # the login's account lookup once (`login`, `id`), `vault api` once, --verify three times:
    # nothing else
    assert len(asked) == 5
    uses = [d for d in _audit(vault) if d["event"] == "used"]
    assert [d["command"] for d in uses].count("status --verify (GET /user)") == 3


def test_verify_reports_a_token_revoked_at_github(vault: VaultCLI, gh: GitHub) -> None:
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    assert _login(vault, gh)[0] == 0
    token = vault.run("token", "ghe").stdout.strip()
    gh.kill(token)  # the person revokes it in GitHub's settings
    r = vault.run("status", "ghe", "--verify", "--json")
    assert r.returncode == 4, r
    doc = json.loads(r.stdout)
    assert doc["revoked"] is True
    assert doc["live_scopes"] is None
    assert json.loads(vault.run("status", "ghe", "--json").stdout)["rejected_at"] is not None
    assert [d["command"] for d in _audit(vault) if d["event"] == "rejected"] == ["status --verify"]
    # Marked rejected, and with no refresh token: it is not handed out again.
    r = vault.run("token", "ghe")
    assert r.returncode == 4, r
    assert "rejected" in r.stderr
    assert token not in r.stdout


def test_verify_says_in_words_that_github_revoked_the_token(vault: VaultCLI, gh: GitHub) -> None:
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    assert _login(vault, gh)[0] == 0
    gh.kill(vault.run("token", "ghe").stdout.strip())
    r = vault.run("status", "ghe", "--verify")
    assert r.returncode == 4, r
    assert "revoked at GitHub" in r.stderr
    assert "vault login ghe --name ghe" in r.stderr
    assert r.stdout == ""


def test_verify_needs_a_github_token_and_a_name(vault: VaultCLI, gh: GitHub) -> None:
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    r = vault.run("status", "--verify")
    assert r.returncode == 2, r
    assert "NAME" in r.stderr
    r = vault.run("import", "t", "--provider", "gitlab", input="glpat-" + "a" * 20)
    assert r.returncode == 0, r
    r = vault.run("status", "t", "--verify")
    assert r.returncode == 2, r
    assert "not a GitHub token" in r.stderr
    assert gh.seen == []


def test_revoking_an_oauth_app_token_with_the_client_secret(vault: VaultCLI, gh: GitHub) -> None:
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    assert _login(vault, gh)[0] == 0
    token = vault.run("token", "ghe").stdout.strip()
    r = vault.run("revoke", "ghe", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["revoked"] is True
    assert doc["deleted"] is True
    deletes = [s for s in gh.seen if s.method == "DELETE"]
    assert len(deletes) == 1
    delete = deletes[0]
    assert delete.path == f"/api/v3/applications/{app.client_id}/token"
    assert delete.body == {"access_token": token}
    assert delete.headers["authorization"].startswith("Basic ")
    assert delete.answer == "204"
    assert not _works(gh, token)  # dead at GitHub
    revoked = [d for d in _audit(vault) if d["event"] == "revoked"]
    assert len(revoked) == 1
    assert revoked[0]["outcome"] == "success"
    log = vault.run("audit", "show", "--json").stdout
    assert app.client_secret not in log + r.stdout + r.stderr


def test_a_delete_github_refuses_is_not_reported_as_a_revocation(
    vault: VaultCLI, gh: GitHub
) -> None:
    """A wrong client secret: GitHub answers 404, the token still works, so nothing is
    reported revoked and the token is kept (exit 7); --force deletes it, audited not revoked."""
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    assert _login(vault, gh)[0] == 0
    token = vault.run("token", "ghe").stdout.strip()
    app.client_secret = "wrong" + app.client_secret[5:]  # GitHub's copy changes (a reset)
    r = vault.run("revoke", "ghe")
    assert r.returncode == 7, r
    assert "still works" in r.stderr
    assert "was kept" in r.stderr
    assert _works(gh, token)
    assert vault.run("status", "ghe").returncode == 0
    r = vault.run("revoke", "ghe", "--force")
    assert r.returncode == 0, r
    assert "NOT revoked" in r.stderr
    events = _audit(vault)
    assert not any(d["event"] == "revoked" and d["outcome"] == "success" for d in events)
    assert any(d["event"] == "deleted" and d["outcome"] == "not_revoked" for d in events)


@pytest.mark.parametrize(
    ("kind", "page"),
    [("oauth_app", "settings/applications"), ("app", "settings/apps/authorizations")],
)
def test_revoking_without_a_client_secret_says_so_and_where(
    vault: VaultCLI, gh: GitHub, kind: str, page: str
) -> None:
    app = gh.add_app(kind)
    _config(vault, gh, app, secret=False, scopes=() if kind == "app" else ("repo",))
    assert _login(vault, gh)[0] == 0
    token = vault.run("token", "ghe").stdout.strip()
    r = vault.run("revoke", "ghe")
    assert r.returncode == 0, r
    assert "NOT revoked" in r.stderr
    assert "client secret" in r.stderr
    assert f"Revoke it by hand at {gh.base}/{page}" in r.stderr
    assert not any(s.method == "DELETE" for s in gh.seen)
    assert _works(gh, token)  # honestly still alive
    events = _audit(vault)
    assert not any(d["event"] == "revoked" for d in events)
    deleted = [d for d in events if d["event"] == "deleted"]
    assert len(deleted) == 1
    assert deleted[0]["outcome"] == "not_revoked"


@pytest.mark.parametrize("secret", [True, False])
def test_scopes_github_granted_beyond_policy_are_revoked_or_said_not_to_be(
    vault: VaultCLI, gh: GitHub, tmp_path: Path, secret: bool
) -> None:
    app = gh.add_app("oauth_app")
    _config(vault, gh, app, secret=secret)
    gh.extra_scopes = ("admin:org",)
    env = _system_policy(tmp_path, "version: 1\nallowed_scopes: ['read:user', repo]\n")
    code, _, err = _login(vault, gh, env=env)
    assert code == 5, err
    assert "scope 'admin:org' is not in the allowed scopes" in err
    token = next(iter(gh.tokens))
    if secret:
        assert "revoked and nothing was stored" in err
        assert [s.answer for s in gh.seen if s.method == "DELETE"] == ["204"]
        assert not _works(gh, token)
    else:
        assert "NOT revoked" in err
        assert "client secret" in err
        assert f"{gh.base}/settings/applications" in err
        assert not any(s.method == "DELETE" for s in gh.seen)
        assert _works(gh, token)
    assert vault.run("token", "ghe").returncode == 4


# --- GitHub App user tokens (ghu_/ghr_) -------------------------------------------------------


def test_an_app_token_refreshes_with_rotation_and_the_old_refresh_token_is_dead(
    vault: VaultCLI, gh: GitHub, tmp_path: Path
) -> None:
    """A GitHub App token has no scopes (scope: ""): allowed_scopes does not refuse it. Its
    refresh token rotates on every refresh; the old one and the old access token are dead."""
    app = gh.add_app("app")
    _config(vault, gh, app, secret=False, scopes=())  # device-flow tokens refresh without one
    env = _system_policy(tmp_path, "version: 1\nallowed_scopes: [repo]\n")
    code, events, err = _login(vault, gh, env=env)
    assert code == 0, err
    assert events[-1]["scopes"] == []
    first = _record(vault)
    assert first["extra"]["github_token"] == "app"  # type: ignore[index]
    assert str(first["access_token"]).startswith("ghu_")
    assert str(first["refresh_token"]).startswith("ghr_")
    status = json.loads(vault.run("status", "ghe", "--json", env=env).stdout)
    assert status["refreshable"] is True
    assert 28000 < status["expires_in"] <= 28800
    assert vault.run("token", "ghe", env=env).returncode == 0

    r = vault.run("refresh", "ghe", env=env)
    assert r.returncode == 0, r
    second = _record(vault)
    assert second["refresh_token"] != first["refresh_token"]
    assert str(second["refresh_token"]).startswith("ghr_")
    assert second["access_token"] != first["access_token"]
    assert _works(gh, str(second["access_token"]))
    assert not _works(gh, str(first["access_token"]))
    # The old refresh token, presented again (as a second copy of the vault would): refused.
    assert _refresh_at_github(gh, app, str(first["refresh_token"]))["error"] == (
        "bad_refresh_token"
    )
    # And the vault's own copy still works: a second refresh rotates again.
    assert vault.run("refresh", "ghe", env=env).returncode == 0
    assert _record(vault)["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    r = vault.run("status", "ghe", "--verify", "--json", env=env)
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["github_token"] == "app"
    assert doc["live_scopes"] is None
    assert doc["drift"] is None


def test_bad_refresh_token_means_log_in_again(vault: VaultCLI, gh: GitHub) -> None:
    app = gh.add_app("app")
    _config(vault, gh, app, scopes=())
    assert _login(vault, gh)[0] == 0
    gh.kill(str(_record(vault)["refresh_token"]))  # reused elsewhere, or revoked
    r = vault.run("refresh", "ghe")
    assert r.returncode == 4, r
    assert "bad_refresh_token" in r.stderr
    assert "vault login ghe --name ghe" in r.stderr
    assert "Traceback" not in r.stderr
    listed = json.loads(vault.run("list", "--json").stdout)["tokens"]
    assert [t["state"] for t in listed] == ["needs_login"]
    assert listed[0]["needs_login"]["cause"] == "invalid_grant"
    refreshes = [d for d in _audit(vault) if d["event"] == "refreshed"]
    assert len(refreshes) == 1
    assert refreshes[0]["outcome"] == "failure"
    assert "bad_refresh_token" in str(refreshes[0]["reason"])
    asked = len(gh.answers("/login/oauth/access_token"))
    r = vault.run("token", "ghe", "--min-valid", "999999")
    assert r.returncode == 4, r
    assert len(gh.answers("/login/oauth/access_token")) == asked  # never sent again
    assert vault.run("audit", "verify").returncode == 0


def test_revoking_an_app_token_with_the_client_secret(vault: VaultCLI, gh: GitHub) -> None:
    app = gh.add_app("app")
    _config(vault, gh, app, scopes=())
    assert _login(vault, gh)[0] == 0
    record = _record(vault)
    r = vault.run("revoke", "ghe")
    assert r.returncode == 0, r
    assert "Revoked 'ghe'" in r.stderr
    assert [s.answer for s in gh.seen if s.method == "DELETE"] == ["204"]
    assert not _works(gh, str(record["access_token"]))
    assert _refresh_at_github(gh, app, str(record["refresh_token"]))["error"] == (
        "bad_refresh_token"
    )


def test_revoking_an_expired_app_token_refreshes_it_first(vault: VaultCLI, gh: GitHub) -> None:
    """GitHub deletes only a live access token: vault, nine hours on (the ghu_ expired),
    refreshes first and deletes the new access token; the stored refresh token is spent."""
    app = gh.add_app("app")
    _config(vault, gh, app, scopes=())
    assert _login(vault, gh)[0] == 0
    record = _record(vault)
    r = vault.run("revoke", "ghe", env=at(9 * 3600))
    assert r.returncode == 0, r
    assert "Revoked 'ghe'" in r.stderr
    calls = [(s.method, s.path, s.answer) for s in gh.seen if s.path != "/login/device"]
    assert calls[-2:] == [
        ("POST", "/login/oauth/access_token", "token"),
        ("DELETE", f"/api/v3/applications/{app.client_id}/token", "204"),
    ]
    deleted = next(s.body for s in gh.seen if s.method == "DELETE")
    assert deleted is not None
    assert deleted["access_token"] != record["access_token"]  # the new one
    assert not _works(gh, str(deleted["access_token"]))
    assert _refresh_at_github(gh, app, str(record["refresh_token"]))["error"] == (
        "bad_refresh_token"
    )


# --- the device flow as GitHub runs it -------------------------------------------------------


def test_slow_down_raises_the_polling_interval(vault: VaultCLI, gh: GitHub) -> None:
    """GitHub answers slow_down (HTTP 200) with a new interval, 5 s longer, and answers
    slow_down again to any poll sooner than that: one slow_down only means vault waited."""
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    gh.slow_down_polls = {1}
    code, _, err = _login(vault, gh)
    assert code == 0, err
    assert gh.answers("/login/oauth/access_token") == ["slow_down", "token"]


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("deny", "access_denied"),
        ("forget", "incorrect_device_code"),
        ("disabled", "device_flow_disabled"),
    ],
)
def test_github_errors_sent_with_http_200_end_the_login(
    vault: VaultCLI, gh: GitHub, script: str, error: str
) -> None:
    app = gh.add_app("oauth_app", device_flow=script != "disabled")
    _config(vault, gh, app)
    if script == "forget":
        proc = vault.popen("login", "ghe", "--json")
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["event"] == "device_code"
        with gh.lock:
            gh.devices.clear()
        _out, raw = proc.communicate(timeout=60)
        code, err = proc.returncode, raw.decode()
    else:
        code, _, err = _login(vault, gh, deny=True)
    assert code == 4, err
    assert f"[{error}]" in err
    assert "Traceback" not in err
    assert vault.run("list", "--json").stdout.count('"name"') == 0


def test_a_warning_once_when_github_would_revoke_the_oldest_token(
    vault: VaultCLI, gh: GitHub
) -> None:
    """Ten tokens for one app and scope set are GitHub's limit: the eleventh login warns once
    (stderr, and a JSON event), and no login before it does."""
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    gh.auto_approve = True
    for i in range(10):
        code, events, err = _login(vault, gh, "--name", f"t{i}", approve=False)
        assert code == 0, err
        assert "warning" not in err
        assert all(e["event"] != "warning" for e in events)
    # Another scope set is another count.
    code, events, err = _login(vault, gh, "--name", "other", "--scope", "gist", approve=False)
    assert code == 0
    assert "warning" not in err
    code, events, err = _login(vault, gh, "--name", "t10", approve=False)
    assert code == 0, err
    assert err.count("GitHub keeps at most 10") == 1
    warnings = [e for e in events if e["event"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["warning"] == "github_token_limit"
    assert "holds 10 tokens" in str(warnings[0]["message"])


def test_policy_allowed_issuers_for_github_com_refuses_a_ghes_host_before_any_request(
    vault: VaultCLI, gh: GitHub, tmp_path: Path
) -> None:
    app = gh.add_app("oauth_app")
    _config(vault, gh, app)
    env = _system_policy(tmp_path, "version: 1\nallowed_issuers: ['https://github.com']\n")
    r = vault.run("login", "ghe", env=env)
    assert r.returncode == 5, r
    assert f"issuer '{gh.base}' is not allowed" in r.stderr
    assert gh.seen == []


# --- host: --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "ghe.example.com/api",
        "https://ghe.example.com",
        "alice@ghe.example.com",
        "ghe.example.com:0",
        "ghe.example.com:65536",
        "ghe.example.com:08443",
        "'ghe example.com'",
        "ghé.example.com",
        "'::1'",
        "'[::1'",
        "ghe.example.com.",
        "-ghe.example.com",
        "ghe.example.com?x=1",
        "'ghe.example.com:'",
    ],
)
def test_a_bad_host_is_a_config_error_of_one_line(vault: VaultCLI, host: str) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    path = vault.home / "config.yaml"
    path.write_text(f"providers:\n  ghe:\n    preset: github\n    host: {host}\n    client_id: x\n")
    path.chmod(0o600)
    r = vault.run("login", "ghe")
    assert r.returncode == 3, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r
    assert "host:" in lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ("    preset: gitlab\n    host: gitlab.example.com\n", "only to preset: github"),
        (
            "    preset: github\n    host: ghe.example.com\n    issuer: https://x.example\n",
            "not both",
        ),
        ("    preset: github\n    host: 443\n", "host must be a str"),
    ],
)
def test_host_where_it_does_not_belong_is_a_config_error(
    vault: VaultCLI, section: str, needle: str
) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    path = vault.home / "config.yaml"
    path.write_text(f"providers:\n  ghe:\n{section}    client_id: x\n")
    path.chmod(0o600)
    r = vault.run("login", "ghe")
    assert r.returncode == 3, r
    assert needle in r.stderr


def test_a_ghes_host_gets_its_endpoints_and_issuer(vault: VaultCLI, tmp_path: Path) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    path = vault.home / "config.yaml"
    path.write_text(
        "providers:\n  ghe:\n    preset: github\n    host: GHE.Example.com:8443\n    client_id: x\n"
    )
    path.chmod(0o600)
    r = vault.run("import", "t", "--provider", "ghe", input="ghp_" + "a" * 36)
    assert r.returncode == 0, r
    status = json.loads(vault.run("status", "t", "--json").stdout)
    assert status["issuer"] == "https://ghe.example.com:8443"


def test_the_emulator_answers_form_encoded_unless_asked_for_json(gh: GitHub) -> None:
    """GitHub's own default, which vault never relies on (it asks for JSON)."""
    app = gh.add_app("oauth_app")
    resp = httpx.post(f"{gh.base}/login/device/code", data={"client_id": app.client_id})
    assert resp.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert "device_code=" in resp.text
    resp = httpx.post(f"{gh.base}/login/device/code", data={"client_id": "nobody"})
    assert resp.status_code == 200
    assert "error=incorrect_client_credentials" in resp.text


def test_the_client_secret_never_reaches_argv_or_output(vault: VaultCLI, gh: GitHub) -> None:
    app = gh.add_app("app")
    _config(vault, gh, app, scopes=())
    assert _login(vault, gh)[0] == 0
    outputs = []
    for args in (("status", "ghe"), ("status", "ghe", "--verify"), ("list",), ("revoke", "ghe")):
        r = vault.run(*args)
        outputs.append(r.stdout + r.stderr)
    r = vault.run("audit", "show", "--json")
    outputs.append(r.stdout)
    assert not any(app.client_secret in text for text in outputs)
