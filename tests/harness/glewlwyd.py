"""Run and drive a real Glewlwyd (Debian's ``glewlwyd`` 2.7.5, C, SQLite) for the test suite.

This is the second real identity provider of the suite, beside oidc-provider
(:mod:`tests.harness.provider`). :func:`start_glewlwyd` starts one as that module starts
oidc-provider, and plays its administrator and the person who approves a login:

* its own config file in a fresh temporary directory, and a fresh SQLite database made
  from the package's init script (``/usr/share/dbconfig-common/.../install/sqlite3``)
  with Python's ``sqlite3`` module;
* ``bind_address`` 127.0.0.1 on a free port, the package's static files
  (``/usr/share/glewlwyd/webapp``), a bounded readiness wait on ``GET /config``;
* configured through its REST API as the init script's administrator (``admin`` /
  ``password``): an OIDC plugin instance (device grant, refresh, introspection and
  revocation on), vault's public client :data:`PUBLIC_CLIENT_ID` and confidential client
  :data:`CONFIDENTIAL_CLIENT_ID` (device grant and refresh), the confidential client
  :data:`INTROSPECTOR_ID` (client credentials, scope :data:`INTROSPECT_SCOPE`, which the
  plugin accepts as the right to introspect and revoke any token), the scopes and the
  user :data:`USERNAME`;
* :meth:`Glewlwyd.approve` signs the person in through the login API (password) and
  verifies the user code (``GET /api/<plugin>/device?code=...&g_continue``), over plain
  HTTP with its session cookie, as the package's login page does;
* :meth:`Glewlwyd.stop` kills the process group and removes the temporary directory.

Glewlwyd's quirks, met by the lifecycle matrix (``tests/integration/test_provider_matrix.py``,
whose ``test_glewlwyd_quirks_hold`` checks each against the running server), and what vault does:

================================  ==========================================================
Glewlwyd does                     vault
================================  ==========================================================
an issuer with a path             discovery asks OIDC's form first (issuer +
(``http://H:P/api/vault``)        ``/.well-known/openid-configuration``: it answers), and
                                  RFC 8414 §3.1 path insertion
                                  (``/.well-known/oauth-authorization-server/api/vault``,
                                  a 404 here) only after a 404; the ``issuer`` in the
                                  metadata must equal the configured one exactly.
a ``verification_uri`` that       shown as given (``.../api/vault/device``); vault never
redirects (302 to ``login.html``) fetches it, and checks only that its origin is the
                                  issuer's.
``token_type: "bearer"``          compared case-insensitively (RFC 6749 §5.1), stored as
                                  ``Bearer``.
JWT access tokens                 opaque: vault never reads them; the expiry is
                                  ``expires_in`` from the token answer (only an ID token's
                                  ``exp`` is read, for timing).
refresh tokens that do not        a refresh answer without ``refresh_token`` keeps the old
rotate (``refresh-token-rolling`` one (RFC 6749 §6), which goes on working.
off, the default)
revocation only for confidential  a public client's request gets an empty 401:
clients                           ``vault revoke`` reports no revocation, keeps the token
                                  (exit 7; ``--force`` deletes it locally and says it was NOT
                                  revoked) and says where to revoke: the provider's own
                                  pages (the issuer; in Glewlwyd, the person's profile
                                  page lists and revokes sessions). A vault configured
                                  with a confidential client (``client_secret``) revokes.
revoking a refresh token leaves   `vault revoke` must revoke the access token too (the
its access token active           ``lifecycle`` branch).
errors as empty 400s              a refresh refused with an empty 400 means the refresh
                                  token no longer works: exit 4, log in again (the
                                  ``lifecycle`` branch; before it, exit 7 "not JSON").
no "deny" on the device page      a person cannot refuse a device login in Glewlwyd 2.7.5:
                                  the code stays pending until it expires (exit 4 then).
``use_secure_connection=false``   (the harness, not vault) the key is left out of the config:
exits without TLS key files       2.7.5 reads any value as "TLS wanted" and exits without them.
================================  ==========================================================

Only the standard library and httpx are used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from types import TracebackType
from typing import IO, Self

import httpx
import pytest

GLEWLWYD = "/usr/bin/glewlwyd"
INIT_SQL = "/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3"
"""The package's SQLite init script: schema, the ``admin`` user, the database modules."""
MODULES = "/usr/lib/glewlwyd"
WEBAPP = "/usr/share/glewlwyd/webapp"

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "password"
"""The administrator the init script creates (Glewlwyd's documented default)."""

PLUGIN = "vault"
"""The OIDC plugin instance's name: its endpoints are under ``/api/vault/``."""

PUBLIC_CLIENT_ID = "vault-cli"
CONFIDENTIAL_CLIENT_ID = "vault-confidential"
CONFIDENTIAL_CLIENT_SECRET = "vault-confidential-secret"
"""A confidential client for vault (device grant and refresh): Glewlwyd revokes only for
confidential clients, so a vault configured with it can revoke its own grants."""
INTROSPECTOR_ID = "introspector"
INTROSPECTOR_SECRET = "introspector-secret"
INTROSPECT_SCOPE = "introspect"
USERNAME = "alice"
PASSWORD = "alice-password-1"
SCOPES = ("offline_access", "repo", INTROSPECT_SCOPE)
"""Scopes added beside the init script's ``openid``, ``g_admin`` and ``g_profile``."""

READY_TIMEOUT = 20.0
STOP_GRACE = 5.0


class GlewlwydError(RuntimeError):
    """Glewlwyd could not be started or configured, or a helper could not do its job."""


def available() -> bool:
    """Whether Debian's glewlwyd package (binary, modules, init script) is installed."""
    return os.access(GLEWLWYD, os.X_OK) and os.path.isfile(INIT_SQL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config_text(*, port: int, database: str) -> str:
    """The ``glewlwyd.conf`` (libconfig syntax) for one private instance."""
    return f"""\
port={port}
bind_address="127.0.0.1"
external_url="http://127.0.0.1:{port}"
login_url="login.html"
api_prefix="api"
static_files_path="{WEBAPP}/"
allow_origin="http://127.0.0.1:{port}"
log_mode="console"
log_level="INFO"
cookie_secure=0
cookie_same_site="empty"
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
plugin_api_run_enabled=""
add_x_frame_option_header_deny=true
max_post_size=1048576
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="{MODULES}/user"
client_module_path="{MODULES}/client"
user_auth_scheme_module_path="{MODULES}/scheme"
plugin_module_path="{MODULES}/plugin"

# use_secure_connection is left out: "false" without key files makes 2.7.5 exit.
hash_algorithm="SHA512"
database =
{{
  type = "sqlite3"
  path = "{database}"
}};
static_files_mime_types =
(
  {{ extension = ".html" mime_type = "text/html" }},
  {{ extension = ".css" mime_type = "text/css" }},
  {{ extension = ".js" mime_type = "application/javascript" }},
  {{ extension = ".json" mime_type = "application/json" }},
  {{ extension = ".png" mime_type = "image/png" }},
  {{ extension = ".ico" mime_type = "image/x-icon" }}
)
"""


def _kill_group(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Glewlwyd:
    """A running, configured Glewlwyd; stop it with :meth:`stop` or use it as a context manager.

    Attributes:
        base: ``http://127.0.0.1:PORT``.
        issuer: the OIDC plugin's issuer, ``http://127.0.0.1:PORT/api/vault`` (with a path).
        port: its TCP port (127.0.0.1 only).
        access_ttl: the access token lifetime configured in the plugin, seconds.
        startup_seconds: seconds from the fresh database's creation to the first answer of
            ``GET /config`` (0.3-0.5 s here; the REST configuration after it takes 1-4 s).
    """

    def __init__(
        self,
        *,
        port: int,
        proc: subprocess.Popen[bytes],
        tmpdir: str,
        log: IO[bytes],
        access_ttl: int,
        startup_seconds: float,
    ) -> None:
        """Wrap a started process (use :func:`start_glewlwyd`)."""
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.issuer = f"{self.base}/api/{PLUGIN}"
        self.proc = proc
        self.access_ttl = access_ttl
        self.startup_seconds = startup_seconds
        self._tmpdir = tmpdir
        self._log = log

    def api(self, path: str) -> str:
        """The absolute URL of ``/api`` + ``path``."""
        return f"{self.base}/api{path}"

    def endpoint(self, name: str) -> str:
        """The URL of the plugin's endpoint ``name`` (``token``, ``introspect``, ...)."""
        return f"{self.issuer}/{name}"

    # --- the administrator -------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self, username: str, password: str) -> Iterator[httpx.Client]:
        """An httpx client holding the session cookie of ``username`` (login API, password)."""
        with httpx.Client(base_url=self.api(""), timeout=10, follow_redirects=False) as client:
            resp = client.post("/auth/", json={"username": username, "password": password})
            if resp.status_code != 200:
                raise GlewlwydError(
                    f"login as {username} failed: HTTP {resp.status_code} {resp.text}"
                )
            yield client

    def configure(self, *, access_ttl: int, device_ttl: int, interval: int) -> None:
        """Create the scopes, the OIDC plugin instance, both clients and the user."""
        with self._session(ADMIN_USERNAME, ADMIN_PASSWORD) as admin:
            for scope in SCOPES:
                self._admin(
                    admin,
                    "/scope/",
                    {"name": scope, "display_name": scope, "password_required": False},
                )
            self._admin(
                admin,
                "/mod/plugin/",
                {
                    "module": "oidc",
                    "name": PLUGIN,
                    "display_name": "vault test provider",
                    "enabled": True,
                    "parameters": {
                        "iss": self.issuer,
                        "jwt-type": "sha",
                        "jwt-key-size": "256",
                        "key": os.urandom(24).hex(),
                        "access-token-duration": access_ttl,
                        "refresh-token-duration": 86400,
                        "code-duration": 600,
                        "refresh-token-rolling": False,
                        "allow-non-oidc": True,
                        "auth-type-code-enabled": True,
                        "auth-type-client-enabled": True,
                        "auth-type-refresh-enabled": True,
                        "auth-type-device-enabled": True,
                        "device-authorization-expiration": device_ttl,
                        "device-authorization-interval": interval,
                        "introspection-revocation-allowed": True,
                        "introspection-revocation-allow-target-client": True,
                        "introspection-revocation-auth-scope": [INTROSPECT_SCOPE],
                    },
                },
            )
            self._admin(
                admin,
                "/client/",
                {
                    "client_id": PUBLIC_CLIENT_ID,
                    "name": "vault",
                    "confidential": False,
                    "enabled": True,
                    "authorization_type": ["device_authorization", "refresh_token"],
                    "redirect_uri": ["http://127.0.0.1/callback"],
                    "scope": [],
                },
            )
            self._admin(
                admin,
                "/client/",
                {
                    "client_id": CONFIDENTIAL_CLIENT_ID,
                    "name": "vault (confidential)",
                    "confidential": True,
                    "client_secret": CONFIDENTIAL_CLIENT_SECRET,
                    "token_endpoint_auth_method": ["client_secret_post", "client_secret_basic"],
                    "enabled": True,
                    "authorization_type": ["device_authorization", "refresh_token"],
                    "redirect_uri": ["http://127.0.0.1/callback"],
                    "scope": [],
                },
            )
            self._admin(
                admin,
                "/client/",
                {
                    "client_id": INTROSPECTOR_ID,
                    "name": "introspector",
                    "confidential": True,
                    "client_secret": INTROSPECTOR_SECRET,
                    "token_endpoint_auth_method": ["client_secret_basic"],
                    "enabled": True,
                    "authorization_type": ["client_credentials"],
                    "scope": [INTROSPECT_SCOPE],
                },
            )
            self._admin(
                admin,
                "/user/",
                {
                    "username": USERNAME,
                    "name": "Alice Example",
                    "email": "alice@example.test",
                    "password": PASSWORD,
                    "enabled": True,
                    "scope": ["g_profile", "openid", "offline_access", "repo"],
                },
            )

    @staticmethod
    def _admin(client: httpx.Client, path: str, body: dict[str, object]) -> None:
        resp = client.post(path, json=body)
        if resp.status_code != 200:
            raise GlewlwydError(f"POST {path} failed: HTTP {resp.status_code} {resp.text}")

    # --- the person ----------------------------------------------------------------------

    def approve(self, user_code: str, scope: str, *, username: str = USERNAME) -> None:
        """Sign in as ``username`` and approve the device login ``user_code`` for ``scope``.

        As the package's login page does: ``POST /api/auth/`` (password), consent to the
        scopes for both of vault's clients (``PUT /api/auth/grant/CLIENT``), then
        ``GET /api/vault/device?code=USER_CODE&g_continue``, which must redirect to the
        login page with ``prompt=deviceComplete``.
        """
        with self._session(username, PASSWORD) as person:
            for client_id in (PUBLIC_CLIENT_ID, CONFIDENTIAL_CLIENT_ID):
                resp = person.put(self.api(f"/auth/grant/{client_id}"), json={"scope": scope})
                if resp.status_code != 200:
                    raise GlewlwydError(f"consent failed: HTTP {resp.status_code} {resp.text}")
            resp = person.get(self.endpoint("device"), params={"code": user_code, "g_continue": ""})
            location = resp.headers.get("location", "")
            if resp.status_code != 302 or "prompt=deviceComplete" not in location:
                raise GlewlwydError(
                    f"device verification did not complete: HTTP {resp.status_code} "
                    f"Location {location!r}"
                )

    # --- the resource server -------------------------------------------------------------

    def _introspector_token(self) -> str:
        resp = httpx.post(
            self.endpoint("token"),
            data={"grant_type": "client_credentials", "scope": INTROSPECT_SCOPE},
            auth=(INTROSPECTOR_ID, INTROSPECTOR_SECRET),
            timeout=10,
        )
        if resp.status_code != 200:
            raise GlewlwydError(f"client_credentials failed: HTTP {resp.status_code} {resp.text}")
        token: str = resp.json()["access_token"]
        return token

    def introspect(self, token: str) -> dict[str, object]:
        """Introspect ``token`` (RFC 7662) with the introspector's ``introspect`` access token."""
        resp = httpx.post(
            self.endpoint("introspect"),
            data={"token": token},
            headers={"Authorization": f"Bearer {self._introspector_token()}"},
            timeout=10,
        )
        if resp.status_code != 200:
            raise GlewlwydError(f"introspection failed: HTTP {resp.status_code} {resp.text}")
        doc: dict[str, object] = resp.json()
        return doc

    def revoke(self, token: str, token_type_hint: str) -> None:
        """Revoke ``token`` (RFC 7009) with the introspector's ``introspect`` access token, as
        an administrator would (the plugin lets that scope revoke any token)."""
        resp = httpx.post(
            self.endpoint("revoke"),
            data={"token": token, "token_type_hint": token_type_hint},
            headers={"Authorization": f"Bearer {self._introspector_token()}"},
            timeout=10,
        )
        if resp.status_code != 200:
            raise GlewlwydError(f"revocation failed: HTTP {resp.status_code} {resp.text}")

    def log_text(self) -> str:
        """What Glewlwyd has logged so far (console log mode, stdout and stderr)."""
        self._log.flush()
        with open(self._log.name, "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def stop(self) -> None:
        """Stop the process group (SIGTERM, SIGKILL after 5 s) and remove the temp dir."""
        _kill_group(self.proc)
        if not self._log.closed:
            self._log.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> Self:
        """Return self; the server is already running."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def __repr__(self) -> str:
        """Show the issuer and process id."""
        return f"Glewlwyd(issuer={self.issuer!r}, pid={self.proc.pid})"


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        time.sleep(0.05)
    return False


def start_glewlwyd(*, access_ttl: int = 3600, device_ttl: int = 600, interval: int = 1) -> Glewlwyd:
    """Start a fresh Glewlwyd on 127.0.0.1 and configure it; return it running.

    Args:
        access_ttl: the plugin's access token lifetime, seconds.
        device_ttl: device code lifetime, seconds.
        interval: the device flow's polling interval, seconds.

    Raises:
        GlewlwydError: the package is missing, the server exited or did not answer within
            20 s (the message carries its log), or the REST configuration failed.
    """
    if not available():
        raise GlewlwydError(f"{GLEWLWYD} or {INIT_SQL} is missing: apt-get install glewlwyd")
    tmpdir = tempfile.mkdtemp(prefix="vault-glewlwyd-")
    database = os.path.join(tmpdir, "glewlwyd.db")
    started = time.monotonic()
    ready = False
    log = open(os.path.join(tmpdir, "glewlwyd.log"), "wb")  # noqa: SIM115 (closed by stop)
    proc: subprocess.Popen[bytes] | None = None
    try:
        with (
            open(INIT_SQL, encoding="utf-8") as fh,
            contextlib.closing(sqlite3.connect(database)) as db,
        ):
            db.executescript(fh.read())
            db.commit()
        for _ in range(5):  # the free port may be taken between probe and bind
            port = _free_port()
            conf = os.path.join(tmpdir, "glewlwyd.conf")
            with open(conf, "w", encoding="utf-8") as fh:
                fh.write(_config_text(port=port, database=database))
            proc = subprocess.Popen(
                [GLEWLWYD, f"--config-file={conf}"],
                cwd=tmpdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            if _wait_ready(proc, f"http://127.0.0.1:{port}/config", READY_TIMEOUT):
                break
            _kill_group(proc)
        else:
            log.flush()
            with open(log.name, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
            raise GlewlwydError(f"glewlwyd did not come up within {READY_TIMEOUT:g} s:\n{text}")
        assert proc is not None
        server = Glewlwyd(
            port=port,
            proc=proc,
            tmpdir=tmpdir,
            log=log,
            access_ttl=access_ttl,
            startup_seconds=time.monotonic() - started,
        )
        server.configure(access_ttl=access_ttl, device_ttl=device_ttl, interval=interval)
        ready = True
        return server
    finally:
        if not ready:
            if proc is not None:
                _kill_group(proc)
            log.close()
            shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.fixture(scope="module")
def glewlwyd_server() -> Iterator[Glewlwyd]:
    """A configured Glewlwyd for a test module (skipped where the package is not installed);
    stopped, and its temporary directory removed, after the module."""
    if not available():
        pytest.skip("glewlwyd is not installed (Debian: apt-get install -y glewlwyd)")
    with start_glewlwyd() as server:
        yield server
