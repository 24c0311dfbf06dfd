"""The token lifecycle against two real identity providers, through the real `vault` executable.

The same test bodies run against oidc-provider (Node, ``tests/harness/provider.py``) and
Glewlwyd (C, Debian's package, ``tests/harness/glewlwyd.py``): log in by the device flow with a
scripted person approving, use the token, refresh it (forced, and by expiry), revoke it, and the
person denying and the code expiring, each with its audit record. What differs between the two
providers lives in one small adapter per provider (:class:`OidcProvider`, :class:`Glewlwyd`):
how the person approves or denies, how a resource server introspects, how vault is configured,
and whether refresh tokens rotate. The Glewlwyd quirks met here are listed, with what vault
does about each, in the docstring of ``tests/harness/glewlwyd.py``.

Cases that need the ``lifecycle`` branch (an empty 400 on refresh means "log in again";
`vault revoke` kills the access token too) are strict xfails for the provider that needs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import httpx
import pytest

from tests.conftest import VaultCLI, finish_login, read_record, start_login
from tests.harness import glewlwyd as _glewlwyd
from tests.harness import provider as _oidc
from tests.harness.clock import at

SCOPES = ("openid", "offline_access", "repo")
NAME = "idp"
ACCESS_TTL = 600
"""The access token lifetime both providers are configured with, seconds."""
LATER = ACCESS_TTL + 120
"""A clock this far ahead (libfaketime) sees every access token expired, none of the grants."""

NEEDS_LIFECYCLE = "needs the lifecycle branch: "

glewlwyd_server = _glewlwyd.glewlwyd_server  # the harness's fixture, usable in this module


class Adapter(Protocol):
    """What differs between providers; everything else is one test body."""

    name: str
    rotates_refresh: bool
    """Whether a refresh answer carries a new refresh token (and the old one dies)."""

    @property
    def issuer(self) -> str:
        """The issuer vault is configured with."""

    @property
    def userinfo(self) -> str:
        """The provider's userinfo endpoint (where curl uses the token)."""

    def configure_vault(self, vault: VaultCLI, *, for_revocation: bool = False) -> None:
        """Write vault's config.yaml for this provider (the client vault revokes with when
        ``for_revocation``)."""

    def approve(self, event: dict[str, object]) -> None:
        """The person approves the device login whose first ``--json`` event is ``event``."""

    def deny(self, event: dict[str, object]) -> None:
        """The person refuses it."""

    def introspect(self, token: str) -> dict[str, object]:
        """RFC 7662 at the provider, as a resource server."""

    def revoke_at_provider(self, token: str, hint: str) -> None:
        """Revoke ``token`` at the provider, as its administrator would."""


def _write_config(
    vault: VaultCLI, issuer: str, client_id: str, client_secret: str | None = None
) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    secret = f"    client_secret: {client_secret}\n" if client_secret else ""
    (vault.home / "config.yaml").write_text(
        f"providers:\n  {NAME}:\n    issuer: {issuer}\n    client_id: {client_id}\n{secret}"
        f"    scopes: [{', '.join(SCOPES)}]\n"
    )


@dataclass
class OidcProvider:
    """oidc-provider: rotates refresh tokens, revokes for public clients, has a deny button."""

    idp: _oidc.IdP
    name: str = "oidc-provider"
    rotates_refresh: bool = True

    @property
    def issuer(self) -> str:
        return self.idp.issuer

    @property
    def userinfo(self) -> str:
        return self.idp.url("/me")

    def configure_vault(self, vault: VaultCLI, *, for_revocation: bool = False) -> None:
        _write_config(vault, self.issuer, _oidc.PUBLIC_CLIENT_ID)

    def approve(self, event: dict[str, object]) -> None:
        _oidc.approve_complete(str(event["verification_uri_complete"]))

    def deny(self, event: dict[str, object]) -> None:
        _oidc.approve_complete(str(event["verification_uri_complete"]), deny=True)

    def introspect(self, token: str) -> dict[str, object]:
        return self.idp.introspect(token)

    def revoke_at_provider(self, token: str, hint: str) -> None:
        self.idp.revoke(token, hint)


@dataclass
class Glewlwyd:
    """Glewlwyd 2.7.5: an issuer with a path, refresh tokens that do not rotate, revocation
    for confidential clients only, and no way for the person to refuse a device login."""

    server: _glewlwyd.Glewlwyd
    name: str = "glewlwyd"
    rotates_refresh: bool = False

    @property
    def issuer(self) -> str:
        return self.server.issuer

    @property
    def userinfo(self) -> str:
        return self.server.endpoint("userinfo")

    def configure_vault(self, vault: VaultCLI, *, for_revocation: bool = False) -> None:
        if for_revocation:  # Glewlwyd revokes only for confidential clients
            _write_config(
                vault,
                self.issuer,
                _glewlwyd.CONFIDENTIAL_CLIENT_ID,
                _glewlwyd.CONFIDENTIAL_CLIENT_SECRET,
            )
        else:
            _write_config(vault, self.issuer, _glewlwyd.PUBLIC_CLIENT_ID)

    def approve(self, event: dict[str, object]) -> None:
        self.server.approve(str(event["user_code"]), " ".join(SCOPES))

    def deny(self, event: dict[str, object]) -> None:
        pytest.skip(
            "Glewlwyd 2.7.5's device page has no way to refuse a login: the code stays pending "
            "until it expires (the expiry case covers that)"
        )

    def introspect(self, token: str) -> dict[str, object]:
        return self.server.introspect(token)

    def revoke_at_provider(self, token: str, hint: str) -> None:
        self.server.revoke(token, hint)


@contextlib.contextmanager
def _oidc_adapter(*, device_ttl: int = 600) -> Iterator[Adapter]:
    with _oidc.start_idp(access_ttl=ACCESS_TTL, device_code_ttl=device_ttl) as idp:
        yield OidcProvider(idp)


@contextlib.contextmanager
def _glewlwyd_adapter(*, device_ttl: int = 600) -> Iterator[Adapter]:
    if not _glewlwyd.available():
        pytest.skip("glewlwyd is not installed (Debian: apt-get install -y glewlwyd)")
    with _glewlwyd.start_glewlwyd(access_ttl=ACCESS_TTL, device_ttl=device_ttl) as server:
        yield Glewlwyd(server)


Starter = Callable[..., contextlib.AbstractContextManager[Adapter]]
STARTERS: dict[str, Starter] = {"oidc-provider": _oidc_adapter, "glewlwyd": _glewlwyd_adapter}


def _xfail_for(provider: str, reason: str) -> list[object]:
    """Both providers, the case a strict xfail for ``provider``."""
    return [
        pytest.param(
            name,
            marks=pytest.mark.xfail(strict=True, reason=NEEDS_LIFECYCLE + reason)
            if name == provider
            else (),
        )
        for name in STARTERS
    ]


@pytest.fixture(scope="module", params=list(STARTERS))
def provider(request: pytest.FixtureRequest) -> Iterator[Adapter]:
    """One running provider per module and parameter (shared by the cases: each logs in anew)."""
    with STARTERS[request.param]() as adapter:
        yield adapter


@pytest.fixture
def configured(vault: VaultCLI, provider: Adapter) -> VaultCLI:
    provider.configure_vault(vault)
    return vault


@pytest.fixture
def by_name(request: pytest.FixtureRequest, vault: VaultCLI) -> Iterator[Adapter]:
    """The provider named by the test's ``name`` parameter (for cases with their own marks)."""
    with STARTERS[request.param]() as adapter:
        yield adapter


def _login(vault: VaultCLI, provider: Adapter) -> list[dict[str, object]]:
    """A device login the person approves; its ``--json`` events. The verification URI is
    shown as the provider gave it (Glewlwyd's redirects to its login page: vault never
    follows it), and no token appears on vault's output."""
    proc, event = start_login(vault, NAME)
    assert event["event"] == "device_code"
    assert str(event["verification_uri"]).startswith(provider.issuer + "/")
    provider.approve(event)
    code, events, err = finish_login(proc)
    assert code == 0, err
    record = _record(vault)
    shown = json.dumps(events) + err
    for secret in ("access_token", "refresh_token", "id_token"):
        if record.get(secret):
            assert str(record[secret]) not in shown
    return [event, *events]


def _audit(vault: VaultCLI) -> list[dict[str, object]]:
    r = vault.run("audit", "show", "--token", NAME, "--json")
    assert r.returncode == 0, r
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def _events(vault: VaultCLI) -> list[str]:
    return [str(d["event"]) for d in _audit(vault)]


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _exec_curl(vault: VaultCLI, url: str, env: dict[str, str] | None = None) -> str:
    """`vault exec` running the real curl against ``url`` with the token as a bearer; curl's
    output, and the SHA-256 of the token it was given (printed by the child, not the token)."""
    script = (
        'curl -sS -f -H "Authorization: Bearer $TOKEN" "$0" && '
        "printf '\\n' && printf %s \"$TOKEN\" | sha256sum"
    )
    r = vault.run("exec", NAME, "--env", "TOKEN", "--", "sh", "-c", script, url, env=env)
    assert r.returncode == 0, r
    return r.stdout


def _record(vault: VaultCLI) -> dict[str, object]:
    record = read_record(vault, NAME)
    assert record is not None
    return record


# --- the matrix -------------------------------------------------------------------------


def test_login_use_introspect_and_audit(configured: VaultCLI, provider: Adapter) -> None:
    events = _login(configured, provider)
    assert events[-1]["event"] == "success"
    record = _record(configured)
    access = str(record["access_token"])
    out = _exec_curl(configured, provider.userinfo)
    userinfo, digest = out.rsplit("\n", 2)[0], out.split()[-2]
    assert json.loads(userinfo)["sub"]  # the provider took the token
    assert digest == _sha(access)  # and it was the stored one
    live = provider.introspect(access)
    assert live["active"] is True
    assert live["client_id"] == record.get("client_id", live["client_id"])
    audit = _audit(configured)
    assert [d["event"] for d in audit][:2] == ["issued", "used"]
    used = audit[1]
    assert used["command"] == "exec sh", used  # the use, and the tool it went to (sh runs curl)
    assert access not in json.dumps(audit)  # the audit log names tokens by fingerprint only


def test_forced_refresh(configured: VaultCLI, provider: Adapter) -> None:
    _login(configured, provider)
    before = _record(configured)
    r = configured.run("refresh", NAME, "--json")
    assert r.returncode == 0, r
    after = _record(configured)
    assert after["access_token"] != before["access_token"]
    assert provider.introspect(str(after["access_token"]))["active"] is True
    rotated = after["refresh_token"] != before["refresh_token"]
    assert rotated is provider.rotates_refresh
    # The refresh token vault keeps is the one that works: the new one, or the old one kept.
    assert provider.introspect(str(after["refresh_token"]))["active"] is True
    assert provider.introspect(str(before["refresh_token"]))["active"] is not rotated
    assert after["issued_at"] == before["issued_at"]
    assert _events(configured)[-1] == "refreshed"


def test_refresh_by_expiry(configured: VaultCLI, provider: Adapter) -> None:
    """The access token is expired for a clock LATER seconds ahead: `vault exec` refreshes
    before it hands a token to curl, and curl's token is the new one."""
    _login(configured, provider)
    before = _record(configured)
    out = _exec_curl(configured, provider.userinfo, env=at(LATER))
    after = _record(configured)
    assert after["access_token"] != before["access_token"]
    assert out.split()[-2] == _sha(str(after["access_token"]))
    assert provider.introspect(str(after["access_token"]))["active"] is True
    events = _events(configured)
    assert events[-2:] == ["refreshed", "used"], events


def test_revoke_then_introspection_says_inactive(vault: VaultCLI, provider: Adapter) -> None:
    provider.configure_vault(vault, for_revocation=True)
    _login(vault, provider)
    record = _record(vault)
    refresh = str(record["refresh_token"])
    assert provider.introspect(refresh)["active"] is True
    r = vault.run("revoke", NAME, "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["revoked"] is True
    assert doc["deleted"] is True
    assert provider.introspect(refresh)["active"] is False
    assert vault.run("token", NAME).returncode == 4
    assert "revoked" in _events(vault), _audit(vault)


@pytest.mark.parametrize(
    "by_name",
    _xfail_for(
        "glewlwyd", "Glewlwyd keeps the access token alive when its refresh token is revoked"
    ),
    indirect=True,
)
def test_revoke_kills_the_access_token_too(vault: VaultCLI, by_name: Adapter) -> None:
    by_name.configure_vault(vault, for_revocation=True)
    _login(vault, by_name)
    access = str(_record(vault)["access_token"])
    assert vault.run("revoke", NAME).returncode == 0
    assert by_name.introspect(access)["active"] is False


@pytest.mark.parametrize(
    "by_name",
    _xfail_for("glewlwyd", "an empty HTTP 400 on refresh means the refresh token is gone (exit 4)"),
    indirect=True,
)
def test_refresh_refused_means_log_in_again(vault: VaultCLI, by_name: Adapter) -> None:
    """The grant is revoked at the provider behind vault's back; the next refresh is refused
    (oidc-provider: invalid_grant; Glewlwyd: an empty 400) and means: log in again."""
    by_name.configure_vault(vault)
    _login(vault, by_name)
    by_name.revoke_at_provider(str(_record(vault)["refresh_token"]), "refresh_token")
    r = vault.run("refresh", NAME)
    assert r.returncode == 4, r
    assert "log in" in r.stderr.lower()
    status = json.loads(vault.run("status", NAME, "--json").stdout)
    assert "needs_login" in json.dumps(status), status


def _create_vault(vault: VaultCLI) -> None:
    """A vault that exists (a failed first login creates none, so has nowhere to audit)."""
    r = vault.run("import", "other", "--provider", NAME, input="imported-canary-token-0123")
    assert r.returncode == 0, r


def test_person_denies(configured: VaultCLI, provider: Adapter) -> None:
    _create_vault(configured)
    proc, event = start_login(configured, NAME)
    provider.deny(event)
    code, events, err = finish_login(proc)
    assert code == 4, err
    assert events[-1]["error"] == "access_denied"
    assert configured.run("token", NAME).returncode == 4
    audit = _audit(configured)
    assert audit[0]["event"] == "login_failed", audit
    assert "issued" not in [d["event"] for d in audit]
    assert "access_denied" in str(audit[0]["reason"])


@pytest.mark.parametrize("name", list(STARTERS))
def test_device_code_expires(vault: VaultCLI, name: str) -> None:
    with STARTERS[name](device_ttl=2) as adapter:
        adapter.configure_vault(vault)
        _create_vault(vault)
        proc, event = start_login(vault, NAME)
        assert event["expires_in"] == 2
        code, events, err = finish_login(proc)
    assert code == 4, err
    assert events[-1]["error"] == "expired_token"
    assert vault.run("token", NAME).returncode == 4
    audit = _audit(vault)
    assert audit[0]["event"] == "login_failed", audit
    assert "issued" not in [d["event"] for d in audit]
    assert "expired_token" in str(audit[0]["reason"])


# --- Glewlwyd only: what a public client meets ------------------------------------------


def test_glewlwyd_refuses_a_public_clients_revocation_and_vault_says_so(vault: VaultCLI) -> None:
    """Glewlwyd revokes only for confidential clients (an empty 401 otherwise). vault reports
    no revocation that did not happen, keeps the token, and says where the person revokes."""
    with _glewlwyd_adapter() as adapter:
        adapter.configure_vault(vault)
        _login(vault, adapter)
        refresh = str(_record(vault)["refresh_token"])
        r = vault.run("revoke", NAME)
        assert r.returncode == 7, r
        assert "confidential" in r.stderr, r
        assert adapter.issuer in r.stderr, r
        assert "kept" in r.stderr
        assert vault.run("status", NAME).returncode == 0
        r = vault.run("revoke", NAME, "--force", "--json")
        assert r.returncode == 0, r
        doc = json.loads(r.stdout)
        assert doc["revoked"] is False
        assert adapter.introspect(refresh)["active"] is True  # honestly: it is still live
        assert refresh not in r.stdout + r.stderr


# --- Glewlwyd's quirks, as the harness documents them (a newer Glewlwyd that changes one
# --- fails here, so the table in tests/harness/glewlwyd.py is kept true) -----------------


def _device_tokens(server: _glewlwyd.Glewlwyd, client: httpx.Client) -> dict[str, object]:
    """A device login straight against Glewlwyd (no vault): the token answer."""
    start = client.post(
        server.endpoint("device_authorization"),
        data={"client_id": _glewlwyd.PUBLIC_CLIENT_ID, "scope": " ".join(SCOPES)},
    )
    assert start.status_code == 200, start.text
    device = start.json()
    server.approve(str(device["user_code"]), " ".join(SCOPES))
    answer = client.post(
        server.endpoint("token"),
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": _glewlwyd.PUBLIC_CLIENT_ID,
            "device_code": device["device_code"],
        },
    )
    assert answer.status_code == 200, answer.text
    doc: dict[str, object] = answer.json()
    return {**doc, "_device": device}


def test_glewlwyd_quirks_hold(glewlwyd_server: _glewlwyd.Glewlwyd) -> None:
    glewlwyd = glewlwyd_server
    with httpx.Client(timeout=10) as client:
        # An issuer with a path: OIDC discovery (appended) answers, RFC 8414 insertion does not.
        oidc = client.get(glewlwyd.issuer + "/.well-known/openid-configuration")
        assert oidc.status_code == 200
        assert oidc.json()["issuer"] == glewlwyd.issuer
        assert urllib.parse.urlsplit(glewlwyd.issuer).path == "/api/vault"
        rfc8414 = f"{glewlwyd.base}/.well-known/oauth-authorization-server/api/vault"
        assert client.get(rfc8414).status_code == 404
        tokens = _device_tokens(glewlwyd, client)
        device = tokens["_device"]
        assert isinstance(device, dict)
        # The verification URI redirects (to the login page).
        page = client.get(str(device["verification_uri"]))
        assert page.status_code == 302
        assert "login.html" in page.headers["location"]
        # Lowercase bearer; a JWT access token (three base64url parts).
        assert tokens["token_type"] == "bearer"
        assert len(str(tokens["access_token"]).split(".")) == 3
        # Refresh tokens do not rotate: the answer has none, and the old one goes on working.
        refresh = str(tokens["refresh_token"])
        form = {
            "grant_type": "refresh_token",
            "client_id": _glewlwyd.PUBLIC_CLIENT_ID,
            "refresh_token": refresh,
        }
        for _ in range(2):
            again = client.post(glewlwyd.endpoint("token"), data=form)
            assert again.status_code == 200, again.text
            assert "refresh_token" not in again.json()
        # A public client's revocation: an empty 401; the token stays active.
        refused = client.post(
            glewlwyd.endpoint("revoke"),
            data={"client_id": _glewlwyd.PUBLIC_CLIENT_ID, "token": refresh},
        )
        assert (refused.status_code, refused.content) == (401, b"")
        assert glewlwyd.introspect(refresh)["active"] is True
        # Errors as empty 400s: a refresh token it does not know.
        bad = client.post(glewlwyd.endpoint("token"), data={**form, "refresh_token": "x" * 128})
        assert (bad.status_code, bad.content) == (400, b"")


def test_glewlwyd_listens_on_loopback_only_and_stop_leaves_nothing() -> None:
    if not _glewlwyd.available():
        pytest.skip("glewlwyd is not installed (Debian: apt-get install -y glewlwyd)")
    server = _glewlwyd.start_glewlwyd()
    tmpdir, pid = server._tmpdir, server.proc.pid
    try:
        assert os.path.isdir(tmpdir)
        with open(os.path.join(tmpdir, "glewlwyd.conf"), encoding="utf-8") as fh:
            conf = fh.read()
        assert 'bind_address="127.0.0.1"' in conf
        listening = _listening_ports(pid)
        assert listening == {("127.0.0.1", server.port)}, listening
    finally:
        server.stop()
    assert not os.path.exists(tmpdir)
    assert server.proc.poll() is not None
    server.stop()  # idempotent


def _listening_ports(pid: int) -> set[tuple[str, int]]:
    """The (address, port) of every TCP socket in LISTEN that process ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state != "0A" or inode not in inodes:
                    continue
                addr, port = local.split(":")
                host = socket.inet_ntoa(bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr
                found.add((host, int(port, 16)))
    return found
