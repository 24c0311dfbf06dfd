"""Fixtures: a real Secret Service in a private D-Bus session, and the real `vault` executable.

The Secret Service is gnome-keyring-daemon on its own dbus-daemon, unlocked with a known
password fed on stdin (no newline), run in the foreground and killed by pid, so nothing
outlives the test session and nothing touches the developer's own keyring.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def _import_source_vault(root: Path) -> None:
    """VAULT_TEST_SOURCE=1: import the package from the folder beside the tests (mutation
    testing runs the tests against a mutated copy of the source in ./mutants/); no staleness
    check, since there is no installed copy under test."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import vault

    imported = Path(vault.__file__).resolve().parent
    if imported != root / "vault":
        pytest.exit(f"VAULT_TEST_SOURCE=1 but vault was imported from {imported}", 2)
    print(f"VAULT_TEST_SOURCE=1: testing the source folder {imported}, not the installed wheel")


def _import_installed_vault() -> None:
    """Import the package as a user installs it (the wheel in site-packages), not the source
    folder beside the tests, and refuse to test an installed copy older than the source.
    VAULT_TEST_SOURCE=1 opts out (see _import_source_vault)."""
    root = Path(__file__).resolve().parent.parent
    if os.environ.get("VAULT_TEST_SOURCE") == "1":
        _import_source_vault(root)
        return
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != root]
    try:
        import vault
    finally:
        sys.path[:] = saved
    installed = Path(vault.__file__).resolve().parent
    if installed == root / "vault":
        pytest.exit("vault is imported from the source folder, not installed: run make install", 2)
    stale = [
        str(src.relative_to(root))
        for src in sorted(
            [*(root / "vault").rglob("*.py"), *(root / "vault").glob("audit/templates/*")]
        )
        if not (installed / src.relative_to(root / "vault")).is_file()
        or (installed / src.relative_to(root / "vault")).read_bytes() != src.read_bytes()
    ]
    if stale:
        pytest.exit(f"the installed vault differs from {', '.join(stale[:5])}: run make install", 2)


_import_installed_vault()

from tests.harness.rsyslog import Rsyslog, find_rsyslogd, start_rsyslog  # noqa: E402

VAULT_BIN = str(Path(sys.executable).parent / "vault")
KEYRING_PASSWORD = b"vault-test-keyring"

# Variables that would make a test touch the developer's real environment.
_SCRUB = (
    "VAULT_HOME",
    "VAULT_KEY_BACKEND",
    "VAULT_PASSPHRASE_FILE",
    "VAULT_NEW_PASSPHRASE_FILE",
    "VAULT_SYSTEM_POLICY_DIR",
    "PYTHON_KEYRING_BACKEND",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
)


@dataclass
class SecretService:
    base: Path
    bus_address: str
    dbus: subprocess.Popen[bytes]
    daemon: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {
            "DBUS_SESSION_BUS_ADDRESS": self.bus_address,
            "XDG_RUNTIME_DIR": str(self.base / "run"),
        }

    def lock(self) -> None:
        """Lock every collection, as a screen lock or a timeout would."""
        import secretstorage
        from jeepney.io.blocking import open_dbus_connection

        conn = open_dbus_connection(bus=self.bus_address)
        for collection in secretstorage.get_all_collections(conn):
            collection.lock()
        conn.close()

    def stop(self) -> None:
        for proc in (self.daemon, self.dbus):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_for_name(address: str, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}
    while time.monotonic() < deadline:
        out = subprocess.run(
            [
                "dbus-send",
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.ListNames",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
        if f'"{name}"' in out.stdout:
            return True
        time.sleep(0.05)
    return False


def _private_env(base: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base / "home"),
        "XDG_DATA_HOME": str(base / "data"),
        "XDG_RUNTIME_DIR": str(base / "run"),
    }


def _start_daemon(service: SecretService, *, unlock: bool) -> None:
    env = {**_private_env(service.base), "DBUS_SESSION_BUS_ADDRESS": service.bus_address}
    args = ["gnome-keyring-daemon", "--foreground", "--components=secrets"]
    if unlock:
        args.append("--unlock")
    with (service.base / "daemon.log").open("ab") as log:
        daemon = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    service.daemon = daemon
    assert daemon.stdin is not None
    if unlock:
        daemon.stdin.write(KEYRING_PASSWORD)
    daemon.stdin.close()
    if not _wait_for_name(service.bus_address, "org.freedesktop.secrets", 15):
        service.stop()
        pytest.fail("gnome-keyring-daemon did not register org.freedesktop.secrets")


def start_secret_service(base: Path, *, unlock: bool = True) -> SecretService:
    """dbus-daemon plus gnome-keyring-daemon (secrets component), in ``base``."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon", "dbus-send"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install dbus gnome-keyring (see .ci/run)")
    (base / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    (base / "data").mkdir(parents=True, exist_ok=True)
    (base / "home").mkdir(parents=True, exist_ok=True)
    # The bus gets the private home too: if the keyring daemon dies, D-Bus activation starts a
    # new one with the bus's environment, which must never be the developer's own home.
    private = _private_env(base)
    dbus = subprocess.Popen(
        [
            "dbus-daemon",
            "--session",
            "--nofork",
            "--print-address=1",
            f"--address=unix:path={base / 'run' / 'bus'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=private,
        start_new_session=True,
    )
    assert dbus.stdout is not None
    address = dbus.stdout.readline().decode().strip()
    service = SecretService(base, address, dbus)
    _start_daemon(service, unlock=unlock)
    return service


_SESSION_SERVICE: list[SecretService] = []


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    service = start_secret_service(tmp_path_factory.mktemp("secret-service"))
    _SESSION_SERVICE.append(service)
    try:
        yield service
    finally:
        _SESSION_SERVICE.clear()
        service.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """VAULT_TEST_MAX_EXAMPLES=N (set by `make test-fast` and `make mutate` only): every
    hypothesis test runs at most N examples, for feedback in a minute and for each of thousands
    of mutants to be judged in seconds. `make test` always runs each test's own count."""
    cap = os.environ.get("VAULT_TEST_MAX_EXAMPLES")
    if not cap:
        return
    from hypothesis import settings

    for item in items:
        test = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if own is not None and own.max_examples > int(cap):
            test._hypothesis_internal_use_settings = settings(own, max_examples=int(cap))  # type: ignore[union-attr]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield
    _check_session_service(item)  # before teardown: the last test's teardown ends the session


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield
    _check_session_service(item)


def _check_session_service(item: pytest.Item) -> None:
    """The session's Secret Service is shared by every test of a worker: a test that ends it
    (or locks it) is named here, not the dozens after it that would fail with "locked"."""
    if not _SESSION_SERVICE:
        return
    service = _SESSION_SERVICE[0]
    assert service.daemon is not None
    if "secret_service" not in getattr(item, "fixturenames", ()):
        return
    problem = _session_service_problem(service)
    if problem:
        # gnome-keyring-daemon is a real peer, and one that can fail on its own: if it dies,
        # D-Bus activation starts a new one whose login keyring is locked, and every later test
        # of this worker would fail with "locked". The test during which it happened is named
        # (a warning in the summary and incidents.log) and a fresh, unlocked daemon on the same
        # bus and keyring serves the tests after it.
        log = (service.base / "daemon.log").read_text(errors="replace")[-2000:]
        note = f"{problem} during {item.nodeid}; its log: {log!r}"
        with (service.base.parent / "incidents.log").open("a") as out:
            out.write(note + "\n")
        item.warn(pytest.PytestWarning(note))
        _DAEMON_INCIDENTS.append(note)
        _restart_daemon(service)


_DAEMON_INCIDENTS: list[str] = []  # the daemon ended during the test now running


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A test that failed while the session's gnome-keyring-daemon died under it is run once
    more, on the fresh daemon, and only its second run is reported (the first is named in a
    warning and in incidents.log). The daemon is a real peer with a bug of its own: under
    concurrent clients gnome-keyring 46 has been seen to abort on `aes_negotiate: assertion
    'session' failed` (its client table missing a caller that is still connected), about once
    in a full run. A test failing for any other reason is reported as it is, never run again."""
    if "secret_service" not in getattr(item, "fixturenames", ()):
        return None
    from _pytest.runner import runtestprotocol

    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    _DAEMON_INCIDENTS.clear()
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    setup_passed = bool(reports) and reports[0].when == "setup" and reports[0].passed
    if _DAEMON_INCIDENTS and setup_passed and any(r.failed for r in reports):
        failed = next(r for r in reports if r.failed)
        item.warn(
            pytest.PytestWarning(
                f"{item.nodeid} failed while gnome-keyring-daemon died under it; run again on "
                f"a fresh daemon. The first run's failure: {str(failed.longrepr)[-1500:]}"
            )
        )
        _DAEMON_INCIDENTS.clear()
        item._initrequest()  # type: ignore[attr-defined]
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _restart_daemon(service: SecretService) -> None:
    """End whatever owns org.freedesktop.secrets on the bus (the daemon, or the one D-Bus
    activation started in its place) and start an unlocked one."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    pids: set[int] = set()
    if service.daemon is not None and service.daemon.poll() is None:
        pids.add(service.daemon.pid)
    conn = open_dbus_connection(bus=service.bus_address)
    try:
        bus = DBusAddress(
            "/org/freedesktop/DBus",
            bus_name="org.freedesktop.DBus",
            interface="org.freedesktop.DBus",
        )
        msg = new_method_call(bus, "GetConnectionUnixProcessID", "s", ("org.freedesktop.secrets",))
        with contextlib.suppress(Exception):
            pids.add(int(conn.send_and_get_reply(msg, timeout=5).body[0]))
    finally:
        conn.close()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if service.daemon is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            service.daemon.wait(5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _wait_for_name(
        service.bus_address, "org.freedesktop.secrets", 0.1
    ):
        time.sleep(0.1)
    _start_daemon(service, unlock=True)


def _session_service_problem(service: SecretService) -> str:
    assert service.daemon is not None
    if service.daemon.poll() is not None:
        return f"the session's gnome-keyring-daemon exited (rc {service.daemon.returncode})"
    import secretstorage
    from jeepney.io.blocking import open_dbus_connection

    conn = open_dbus_connection(bus=service.bus_address)
    try:
        locked = [
            c.collection_path for c in secretstorage.get_all_collections(conn) if c.is_locked()
        ]
    finally:
        conn.close()
    return f"the session's keyring collections {locked} were locked" if locked else ""


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:
        return (
            f"Result(args={self.args!r}, rc={self.returncode}, stdout={self.stdout[:2000]!r}, "
            f"stderr={self.stderr[:2000]!r})"
        )


@dataclass
class VaultCLI:
    """Runs the installed `vault` executable with an isolated VAULT_HOME."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def vault_file(self) -> Path:
        return self.home / "vault.enc"

    def full_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env.update(self.env)
        env["VAULT_HOME"] = str(self.home)
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        *args: str,
        input: str | bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Result:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [VAULT_BIN, *args],
            input=data if data is not None else b"",
            capture_output=True,
            env=self.full_env(env),
            timeout=timeout,
            check=False,
            start_new_session=True,  # no controlling terminal: prompts must fail, not hang
        )
        return Result(
            [*args],
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [VAULT_BIN, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.full_env(env),
            start_new_session=True,
        )


@pytest.fixture
def vault(tmp_path: Path, secret_service: SecretService) -> VaultCLI:
    """A fresh vault on the keyring backend, in the shared test Secret Service."""
    home = tmp_path / "vh"
    return VaultCLI(home, dict(secret_service.env()))


@pytest.fixture
def passphrase_vault(tmp_path: Path) -> VaultCLI:
    """A fresh vault on the passphrase backend, passphrase from a 0600 file."""
    pw = tmp_path / "passphrase"
    pw.write_text("correct horse battery staple\n")
    pw.chmod(0o600)
    home = tmp_path / "vh"
    return VaultCLI(
        home,
        {
            "VAULT_KEY_BACKEND": "passphrase",
            "VAULT_PASSPHRASE_FILE": str(pw),
            "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
        },
    )


@contextlib.contextmanager
def temporary_secret_service(base: Path, *, unlock: bool = True) -> Iterator[SecretService]:
    service = start_secret_service(base, unlock=unlock)
    try:
        yield service
    finally:
        service.stop()


GH_CANARY = "ghp_" + "Cn4ry" * 7 + "X"


_DUMP_RECORD = """
import json, sys
from vault.fs import paths as _paths
from vault.policy.config import load
from vault.keys.passphrase import PassphraseSource
from vault.store.vault import Store
paths = _paths.resolve()
store = Store(paths, backend=load(paths).backend()[0], passphrase=PassphraseSource())
snap = store.read()
rec = snap.get(sys.argv[1]) if snap else None
if rec is None:
    print("null")
else:
    doc = json.loads(rec.to_json())
    doc["name"] = rec.name
    print(json.dumps(doc))
"""


_DUMP_RECORDS = """
import json
from vault.audit.chain import fingerprint
from vault.fs import paths as _paths
from vault.policy.config import load
from vault.keys.passphrase import PassphraseSource
from vault.store.vault import Store
paths = _paths.resolve()
store = Store(paths, backend=load(paths).backend()[0], passphrase=PassphraseSource())
snap = store.read()
out = {}
for rec in snap.records() if snap else []:
    doc = json.loads(rec.to_json())
    doc["name"] = rec.name
    doc["fingerprint"] = fingerprint(snap.meta.audit_key, rec.access_token)
    out[rec.name] = doc
print(json.dumps(out))
"""


def read_records(vault: VaultCLI) -> dict[str, dict[str, object]]:
    """Every stored record with its secrets, and the audit fingerprint of its access token (as
    `vault audit hash` gives it), read in one separate process with the test's env."""
    import json

    proc = subprocess.run(
        [sys.executable, "-c", _DUMP_RECORDS],
        capture_output=True,
        text=True,
        env=vault.full_env(),
        check=True,
        timeout=60,
    )
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def keyring_package(vault: VaultCLI, code: str) -> str:
    """Run ``code`` with the keyring package's own SecretService backend as ``k`` and this
    vault's id as ``vault_id``, in a separate process with the test's env; its stdout."""
    import json

    vault_id = json.loads(vault.run("status", "--json").stdout)["vault"]["vault_id"]
    prelude = (
        "import sys, keyring.backends.SecretService as s; k = s.Keyring(); vault_id = sys.argv[1]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", prelude + code, vault_id],
        env=vault.full_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


def read_record(vault: VaultCLI, name: str) -> dict[str, object] | None:
    """The stored record with its secrets, read in a separate process with the test's env
    (tests need the refresh token to check rotation; the CLI never shows it)."""
    import json

    proc = subprocess.run(
        [sys.executable, "-c", _DUMP_RECORD, name],
        capture_output=True,
        text=True,
        env=vault.full_env(),
        check=True,
        timeout=60,
    )
    doc = json.loads(proc.stdout)
    assert doc is None or isinstance(doc, dict)
    return doc


# --- logging in against the local identity provider --------------------------------------

DEFAULT_SCOPES = ("openid", "offline_access", "repo")


def configure_provider(
    vault: VaultCLI, issuer: str, scopes: tuple[str, ...] = DEFAULT_SCOPES, name: str = "local"
) -> None:
    """config.yaml naming the local provider (public client vault-cli)."""
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  {name}:\n    issuer: {issuer}\n    client_id: vault-cli\n"
        f"    scopes: [{', '.join(scopes)}]\n"
    )


def start_login(vault: VaultCLI, *args: str) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    """`vault login ARGS --json` running; returns it and its first event (the device code)."""
    import json

    proc = vault.popen("login", *args, "--json")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first, proc.communicate(timeout=30)
    return proc, json.loads(first)


def finish_login(proc: subprocess.Popen[bytes]) -> tuple[int, list[dict[str, object]], str]:
    import json

    out, err = proc.communicate(timeout=90)
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return proc.returncode, events, err.decode()


def approved_login(
    vault: VaultCLI, *args: str, username: str = "alice", deny: bool = False
) -> tuple[int, list[dict[str, object]], str]:
    """A whole `vault login`, the scripted person approving (or denying) on the provider's pages."""
    from tests.harness.provider import approve_complete

    proc, event = start_login(vault, *(args or ("local",)))
    approve_complete(str(event["verification_uri_complete"]), username=username, deny=deny)
    return finish_login(proc)


# --- a private rsyslogd on 127.0.0.1 (module scope: tests tell records apart by markers) ----


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    if find_rsyslogd() is None:
        pytest.skip("rsyslogd is not installed (Debian: apt-get install -y rsyslog)")
    daemon = start_rsyslog(tmp_path_factory.mktemp("rsyslog"))
    try:
        yield daemon
    finally:
        daemon.stop()
