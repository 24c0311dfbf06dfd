"""`vault login --web` (authorization code with PKCE, loopback redirect) through the real
`vault` executable, against the real local provider (oidc-provider) with the person scripted
through its own login and consent pages, over plain HTTP and in headless Chromium; plus a small
fake provider where oidc-provider cannot produce the case. And the choice between the grants:
flags, policy (refused before any request), and where a browser can be opened."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import stat
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    VaultCLI,
    approved_login,
    configure_provider,
    finish_login,
    read_record,
)
from tests.harness.fake_oauth import FakeOAuth, fake_oauth, json_reply
from tests.harness.provider import (
    IdP,
    authorize,
    authorize_in_browser,
    chromium_available,
    deliver_callback,
    start_idp,
)
from tests.harness.tmux import TMUX, Terminal

SCOPES = ("openid", "offline_access", "repo")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def idp() -> Iterator[IdP]:
    with start_idp() as server:
        yield server


@pytest.fixture
def configured(vault: VaultCLI, idp: IdP) -> VaultCLI:
    """The local provider configured, and a vault (so a failed first login can be audited:
    no vault is created just to hold a refusal)."""
    configure_provider(vault, idp.issuer, SCOPES)
    seed = vault.run("import", "seed", "--provider", "github", "--scope", "repo", input="tok-seed1")
    assert seed.returncode == 0, seed
    return vault


def start_web(
    vault: VaultCLI, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`vault login local --web --no-browser --json ARGS`; its first event's URL."""
    proc = vault.popen("login", "local", "--web", "--no-browser", "--json", *args, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first, proc.communicate(timeout=30)
    event = json.loads(first)
    assert event["event"] == "authorization_url", event
    assert set(event) == {"event", "url"}
    return proc, str(event["url"])


def _param(url: str, name: str) -> str | None:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(name)
    return values[0] if values else None


def _with(url: str, **changes: str | None) -> str:
    """``url`` with query parameters replaced (None: removed)."""
    parts = urllib.parse.urlsplit(url)
    pairs = [
        (k, changes.get(k, v))
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    query = urllib.parse.urlencode([(k, v) for k, v in pairs if v is not None])
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def audit_events(vault: VaultCLI) -> list[dict[str, object]]:
    """The audit records of `vault login` (not the seed's import)."""
    r = vault.run("audit", "show", "--json")
    assert r.returncode == 0, r
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return [e for e in records if e.get("command") == "login"]


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp* gives them) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                address, port_hex = fields[1].rsplit(":", 1)
                if fields[3] == "0A" and int(port_hex, 16) == port:
                    found.append(address)
    return found


# --- the whole login ------------------------------------------------------------------------


def test_web_login_end_to_end(configured: VaultCLI, idp: IdP) -> None:
    proc, url = start_web(configured, "--debug")
    redirect = _param(url, "redirect_uri")
    assert redirect is not None
    parts = urllib.parse.urlsplit(redirect)
    assert (parts.scheme, parts.hostname, parts.path) == ("http", "127.0.0.1", "/callback")
    assert parts.port is not None
    # While it waits: listening on 127.0.0.1 (0100007F) only, never on any other address.
    assert _listening(parts.port) == ["0100007F"]
    assert url.startswith(idp.issuer + "/auth?")
    assert _param(url, "code_challenge_method") == "S256"
    assert _param(url, "prompt") == "consent"  # offline_access asks for it
    result = authorize(url)
    code, events, err = finish_login(proc)
    assert code == 0, err
    assert result.status == 200
    assert "Logged in" in result.text
    assert "default-src 'none'" in result.headers["content-security-policy"]
    assert events == [
        {
            "event": "success",
            "name": "local",
            "provider": "local",
            "scopes": list(SCOPES),
            "expires_at": events[0]["expires_at"],
            "account": {"subject": "alice", "display": None},  # the ID token's sub
        }
    ]
    assert "Logging in through your browser (authorization code with PKCE): --web was given." in (
        err
    )
    assert _listening(parts.port) == []
    with pytest.raises(httpx.ConnectError):  # the replayed callback finds nothing
        deliver_callback(result.callback_url)
    record = read_record(configured, "local")
    assert record is not None
    assert record["refresh_token"]
    assert record["id_token"]
    (grant,) = [g for g in idp.grants()["grants"] if g["grant_type"] == "authorization_code"]
    assert (
        grant["issued_access_sha256"]
        == hashlib.sha256(str(record["access_token"]).encode()).hexdigest()
    )
    issued = [e for e in audit_events(configured) if e["event"] == "issued"]
    assert [(e["grant"], e["command"], e["outcome"]) for e in issued] == [
        ("authorization_code", "login", "success")
    ]
    # Nothing secret anywhere it could be read: the code, the tokens (the verifier: see
    # test_the_verifier_and_code_reach_only_the_token_endpoint).
    secrets = [
        str(_param(result.callback_url, "code")),
        str(record["access_token"]),
        str(record["refresh_token"]),
        str(record["id_token"]),
    ]
    audit_text = (configured.home / "audit.jsonl").read_text()
    for secret in secrets:
        assert secret not in err
        assert secret not in audit_text
        assert secret not in json.dumps(events)
    # The token works like any other: refresh through the stored endpoints.
    r = configured.run("refresh", "local")
    assert r.returncode == 0, r
    assert configured.run("audit", "verify").returncode == 0  # the chain covers `grant` too


def test_device_login_audit_names_its_grant(configured: VaultCLI) -> None:
    code, _, err = approved_login(configured, "local")
    assert code == 0, err
    assert "Logging in with a code (device flow): --json was given." in err
    issued = [e for e in audit_events(configured) if e["event"] == "issued"]
    assert [e["grant"] for e in issued] == ["device_code"]


def test_the_device_flag_forces_the_device_flow(configured: VaultCLI) -> None:
    code, _, err = approved_login(configured, "local", "--device")
    assert code == 0, err
    assert "(device flow): --device was given." in err


@pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")
def test_web_login_in_a_real_browser(configured: VaultCLI, idp: IdP) -> None:
    proc, url = start_web(configured)
    page = authorize_in_browser(url)
    code, events, err = finish_login(proc)
    assert code == 0, err
    assert "Logged in" in page
    assert "You can close this tab" in page
    assert events[-1]["event"] == "success"
    assert read_record(configured, "local") is not None


# --- attacks on the callback ---------------------------------------------------------------


def _refused_login(vault: VaultCLI, proc: subprocess.Popen[bytes], code: int = 4) -> str:
    rc, events, err = finish_login(proc)
    assert rc == code, err
    assert events[-1]["event"] == "error", events
    assert read_record(vault, "local") is None
    failed = [e for e in audit_events(vault) if e["event"] in ("login_failed", "denied")]
    assert [e["grant"] for e in failed] == ["authorization_code"]
    return err


def test_a_wrong_state_is_refused(configured: VaultCLI) -> None:
    proc, url = start_web(configured)
    result = authorize(url, tamper_callback=lambda u: _with(u, state="forged-state"))
    assert result.status == 400
    assert "Login failed" in result.text
    err = _refused_login(configured, proc)
    assert "the state does not match" in err


def test_a_callback_without_state_is_refused(configured: VaultCLI) -> None:
    proc, url = start_web(configured)
    authorize(url, tamper_callback=lambda u: _with(u, state=None))
    assert "the state does not match" in _refused_login(configured, proc)


def test_a_missing_code_is_refused(configured: VaultCLI) -> None:
    proc, url = start_web(configured)
    authorize(url, tamper_callback=lambda u: _with(u, code=None))
    assert "the redirect carries no code" in _refused_login(configured, proc)


def test_access_denied_is_exit_4(configured: VaultCLI) -> None:
    proc, url = start_web(configured)
    result = authorize(url, deny=True)
    assert _param(result.callback_url, "error") == "access_denied"
    err = _refused_login(configured, proc)
    assert "the login was denied [access_denied]" in err


def test_an_iss_mismatch_is_refused(configured: VaultCLI, idp: IdP) -> None:
    proc, url = start_web(configured)
    result = authorize(url, tamper_callback=lambda u: _with(u, iss="http://127.0.0.1:1"))
    assert _param(result.callback_url, "iss") == idp.issuer  # oidc-provider sends it
    assert "a mix-up, RFC 9207" in _refused_login(configured, proc)
    # The code was never exchanged.
    assert not [g for g in idp.grants()["grants"] if g["grant_type"] == "authorization_code"]


def test_a_missing_iss_is_refused_where_the_metadata_promises_it(configured: VaultCLI) -> None:
    proc, url = start_web(configured)
    authorize(url, tamper_callback=lambda u: _with(u, iss=None))
    assert "no iss although" in _refused_login(configured, proc)


def test_a_nonce_mismatch_is_refused_and_the_tokens_revoked(configured: VaultCLI, idp: IdP) -> None:
    proc, url = start_web(configured)
    # A hostile page swaps the nonce: the provider signs an ID token for another request.
    authorize(url, tamper_request=lambda u: _with(u, nonce="attacker-nonce"))
    err = _refused_login(configured, proc)
    assert "nonce does not match" in err
    (grant,) = [g for g in idp.grants()["grants"] if g["grant_type"] == "authorization_code"]
    revoked = idp.grants()["revocations"]
    assert [r["token_sha256"] for r in revoked] == [grant["issued_refresh_sha256"]]


def test_the_wrong_path_and_a_silent_connection_do_not_end_the_wait(
    configured: VaultCLI,
) -> None:
    proc, url = start_web(configured)
    redirect = str(_param(url, "redirect_uri"))
    port = urllib.parse.urlsplit(redirect).port
    assert port is not None
    silent = socket.create_connection(("127.0.0.1", port))  # before the real one, says nothing
    try:
        result = authorize(url, deliver=False)
        for path in ("/callback/", "/other", "/"):
            wrong = result.callback_url.replace("/callback?", path + "?")
            assert deliver_callback(wrong).status_code == 404
        assert deliver_callback(result.callback_url).status_code == 200
    finally:
        silent.close()
    code, events, err = finish_login(proc)
    assert code == 0, err
    assert events[-1]["event"] == "success"


def test_the_deadline(configured: VaultCLI) -> None:
    proc, url = start_web(configured, "--timeout", "1")
    rc, events, err = finish_login(proc)
    assert rc == 4, err
    assert "the browser did not come back within 1 s; nothing was stored" in err
    assert events[-1]["error"] == "timeout"
    with pytest.raises(httpx.ConnectError):
        deliver_callback(str(_param(url, "redirect_uri")) + "?code=late")


@pytest.mark.parametrize("value", ["0", "-5", "1801", "nan", "inf", "soon"])
def test_a_bad_timeout_is_a_usage_error(configured: VaultCLI, idp: IdP, value: str) -> None:
    r = configured.run("login", "local", "--web", "--no-browser", "--timeout", value)
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr
    assert idp.requests() == []


def test_web_and_device_together_are_a_usage_error(configured: VaultCLI) -> None:
    r = configured.run("login", "local", "--web", "--device")
    assert r.returncode == 2, r
    assert "not allowed with" in r.stderr


# --- policy: allowed_grants, refused before any request ------------------------------------


def _policy(vault: VaultCLI, text: str) -> Path:
    folder = vault.home / "policies"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "grants.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("rule", "flag", "grant"),
    [
        ("[device_code]", "--web", "authorization_code"),
        ("[authorization_code]", "--device", "device_code"),
        ("[]", "--web", "authorization_code"),
        ("[]", None, "device_code"),
    ],
)
def test_a_forbidden_grant_is_refused_before_any_request(
    configured: VaultCLI, idp: IdP, rule: str, flag: str | None, grant: str
) -> None:
    path = _policy(configured, f"version: 1\nallowed_grants: {rule}\n")
    args = ["login", "local", "--no-browser"] + ([flag] if flag else [])
    r = configured.run(*args)
    assert r.returncode == 5, r
    assert f"the {grant} grant is not allowed" in r.stderr
    assert f"rule allowed_grants, {path}:2" in r.stderr
    assert idp.requests() == []  # not even discovery
    (denied,) = [e for e in audit_events(configured) if e["event"] == "denied"]
    assert (denied["rule"], denied["source"], denied["grant"]) == (
        "allowed_grants",
        f"{path}:2",
        grant,
    )


def test_a_per_provider_rule_and_a_system_policy_a_user_cannot_widen(
    configured: VaultCLI, idp: IdP, tmp_path: Path
) -> None:
    system = tmp_path / "system-policies"
    system.mkdir(mode=0o755)
    (system / "org.yaml").write_text(
        "version: 1\nproviders:\n  oidc:\n    allowed_grants: [authorization_code]\n"
    )
    (system / "org.yaml").chmod(0o644)
    _policy(configured, "version: 1\nallowed_grants: [authorization_code, device_code]\n")
    env = {"VAULT_SYSTEM_POLICY_DIR": str(system)}
    r = configured.run("login", "local", "--device", env=env)
    assert r.returncode == 5, r
    assert f"{system / 'org.yaml'}:4" in r.stderr
    assert idp.requests() == []
    # With neither flag the choice falls to the one grant allowed: the web login.
    proc = configured.popen("login", "local", "--no-browser", "--json", env=env)
    assert proc.stdout is not None
    event = json.loads(proc.stdout.readline())
    assert event["event"] == "authorization_url"
    authorize(str(event["url"]))
    code, events, err = finish_login(proc)
    assert code == 0, err
    assert "authorization code with PKCE): policy allows only this grant (" in err
    assert [e["event"] for e in events] == ["success"]


def test_with_only_the_device_flow_allowed_the_default_is_the_device_flow(
    configured: VaultCLI,
) -> None:
    _policy(configured, "version: 1\nallowed_grants: [device_code]\n")
    code, _, err = approved_login(configured, "local")
    assert code == 0, err
    assert "(device flow): policy allows only this grant (" in err


# --- the default choice, in a real terminal -------------------------------------------------

BROWSER_SCRIPT = """#!{python}
# A browser as the web login meets one: it is handed the URL and returns at once, the person
# then goes through the provider's pages (here: tests.harness.provider.authorize).
import os, subprocess, sys
open({record!r}, "w").write(sys.argv[1])
print("a browser's chatter on its stdout")
subprocess.Popen(
    [sys.executable, "-c", "import sys; from tests.harness.provider import authorize; "
     "authorize(sys.argv[1])", sys.argv[1]],
    cwd={repo!r}, start_new_session=True,
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
"""


def _terminal_env(vault: VaultCLI, tmp_path: Path, **extra: str) -> tuple[dict[str, str], Path]:
    record = tmp_path / "opened-url"
    script = tmp_path / "browser"
    script.write_text(
        BROWSER_SCRIPT.format(python=sys.executable, record=str(record), repo=str(REPO))
    )
    script.chmod(stat.S_IRWXU)
    env = vault.full_env({"BROWSER": str(script), "DISPLAY": ":97", "TERM": "xterm"})
    for name in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    env.update(extra)
    return env, record


@pytest.mark.skipif(TMUX is None, reason="needs tmux")
def test_default_is_the_web_login_where_a_browser_can_be_opened(
    configured: VaultCLI, tmp_path: Path
) -> None:
    env, record = _terminal_env(configured, tmp_path)
    vault_bin = str(Path(sys.executable).with_name("vault"))
    with Terminal([vault_bin, "login", "local"], env=env, width=200, height=40) as term:
        term.wait_for("a browser can be opened here.")
        assert term.wait_exit(timeout=60) == 0, term.raw()
        screen = "\n".join(term.screen())
    assert "Logging in through your browser (authorization code with PKCE)" in screen
    assert "Opened in your browser:" in screen
    assert record.read_text().startswith(configured_issuer(configured))
    assert read_record(configured, "local") is not None


@pytest.mark.skipif(TMUX is None, reason="needs tmux")
def test_default_over_ssh_is_the_device_flow(configured: VaultCLI, tmp_path: Path) -> None:
    env, record = _terminal_env(configured, tmp_path, SSH_CONNECTION="10.0.0.1 22 10.0.0.2 22")
    vault_bin = str(Path(sys.executable).with_name("vault"))
    with Terminal([vault_bin, "login", "local"], env=env, width=200, height=40) as term:
        term.wait_for("Enter")
        screen = "\n".join(term.screen())
        # Leaving the terminal ends the login (tmux's server goes, and the command with it).
    assert "Logging in with a code (device flow): this is an SSH session." in screen
    assert not record.exists()


def configured_issuer(vault: VaultCLI) -> str:
    text = (vault.home / "config.yaml").read_text()
    return text.split("issuer: ", 1)[1].split("\n", 1)[0]


def test_web_opens_the_browser_unless_no_browser(configured: VaultCLI, tmp_path: Path) -> None:
    env, record = _terminal_env(configured, tmp_path)
    proc = configured.popen("login", "local", "--web", "--no-browser", "--json", env=env)
    assert proc.stdout is not None
    url = json.loads(proc.stdout.readline())["url"]
    assert not record.exists()  # whoever reads the event opens it
    authorize(url)
    code, _, err = finish_login(proc)
    assert code == 0, err
    assert "Open this in a browser on this machine:" in err
    assert not record.exists()
    # Without --no-browser (and with a display, not over SSH) the browser is opened; what it
    # might print does not reach the JSON on stdout.
    proc = configured.popen("login", "local", "--name", "again", "--web", "--json", env=env)
    out, err_bytes = proc.communicate(timeout=90)
    assert proc.returncode == 0, err_bytes
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert [e["event"] for e in events] == ["authorization_url", "success"]
    assert record.read_text() == events[0]["url"]
    assert "Opened in your browser:" in err_bytes.decode()


def test_default_is_the_device_flow_when_the_provider_has_no_authorization_endpoint(
    vault: VaultCLI, tmp_path: Path
) -> None:
    with fake_oauth() as fake:
        configure_provider(vault, fake.issuer, ("openid",))
        env, record = _terminal_env(vault, tmp_path)
        if TMUX is None:
            pytest.skip("needs tmux")
        vault_bin = str(Path(sys.executable).with_name("vault"))
        with Terminal([vault_bin, "login", "local"], env=env, width=200, height=40) as term:
            term.wait_for("ABCD-EFGH")
            screen = "\n".join(term.screen())
    assert "(device flow): the provider has no authorization endpoint." in screen
    assert not record.exists()


# --- a small fake provider: what oidc-provider cannot be made to do -------------------------


def _b64(doc: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def _fake_web(fake: FakeOAuth, *, iss_supported: bool) -> None:
    meta = fake.metadata()
    meta["authorization_endpoint"] = f"{fake.issuer}/authorize"
    if iss_supported:
        meta["authorization_response_iss_parameter_supported"] = True
    fake.routes["/.well-known/openid-configuration"] = lambda _: json_reply(meta)


CODE = "code-Canary-" + "k" * 20
ACCESS = "at-Canary-" + "a" * 30
REFRESH = "rt-Canary-" + "r" * 30


def test_the_verifier_and_code_reach_only_the_token_endpoint(
    vault: VaultCLI, tmp_path: Path
) -> None:
    with fake_oauth() as fake:
        _fake_web(fake, iss_supported=False)
        nonce: list[str] = []

        def id_token() -> str:
            return f"{_b64({'alg': 'none'})}.{_b64({'nonce': nonce[0]})}.c2ln"

        fake.routes["/token"] = lambda _: json_reply(
            fake.token_response(access_token=ACCESS, refresh_token=REFRESH, id_token=id_token())
        )
        configure_provider(vault, fake.issuer, ("openid",))
        proc, url = start_web(vault, "--debug")
        nonce.append(str(_param(url, "nonce")))
        callback = f"{_param(url, 'redirect_uri')}?code={CODE}&state={_param(url, 'state')}"
        assert deliver_callback(callback).status_code == 200  # no iss: none promised
        code, events, err = finish_login(proc)
    assert code == 0, err
    (token_form,) = [form for path, form in fake.requests if path == "/token"]
    verifier = token_form["code_verifier"]
    assert 43 <= len(verifier) <= 128
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge.rstrip(b"=").decode() == _param(url, "code_challenge")
    assert token_form["code"] == CODE
    assert token_form["grant_type"] == "authorization_code"
    assert token_form["redirect_uri"] == _param(url, "redirect_uri")
    assert verifier not in url
    stdout = json.dumps(events)
    for secret in (verifier, CODE, ACCESS, REFRESH, id_token()):
        assert secret not in err
        assert secret not in stdout
        for path in vault.home.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_an_iss_sent_without_the_metadata_promising_it_is_still_checked(
    vault: VaultCLI,
) -> None:
    with fake_oauth() as fake:
        _fake_web(fake, iss_supported=False)
        configure_provider(vault, fake.issuer, ("openid",))
        proc, url = start_web(vault)
        callback = (
            f"{_param(url, 'redirect_uri')}?code={CODE}&state={_param(url, 'state')}"
            "&iss=https%3A%2F%2Fevil.example"
        )
        assert deliver_callback(callback).status_code == 400
        rc, _, err = finish_login(proc)
        assert [path for path, _ in fake.requests] == ["/.well-known/openid-configuration"]
    assert rc == 4, err
    assert "not " + repr(fake.issuer) in err


def test_an_error_page_from_the_provider_is_shown_safely(vault: VaultCLI) -> None:
    with fake_oauth() as fake:
        _fake_web(fake, iss_supported=True)
        configure_provider(vault, fake.issuer, ("openid",))
        proc, url = start_web(vault)
        callback = (
            f"{_param(url, 'redirect_uri')}?error=access_denied&state={_param(url, 'state')}"
            f"&iss={urllib.parse.quote(fake.issuer)}"
            "&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E%1b%5B2J"
        )
        page = deliver_callback(callback)
        rc, _, err = finish_login(proc)
    assert rc == 4, err
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "\x1b" not in err
    assert "the login was denied" in err
