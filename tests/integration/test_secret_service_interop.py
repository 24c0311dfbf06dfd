"""vault's encrypted Secret Service session against the real gnome-keyring (the shared test
session, tests/conftest.py): secretstorage (on its default encrypted session) and the keyring
package read the entry vault writes, vault reads the ones they write, and a bus monitor sees no
vault key cross the bus in clear, while a control secret sent over a "plain" session shows up
in the same capture."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecretService as Daemon
from tests.conftest import VaultCLI, keyring_package
from tests.harness.fake_secret_service import ALGORITHM
from vault.keys import dbus as _dbus
from vault.keys.secretservice import KEYRING_APPLICATION

TOKEN = "ghp_" + "1nt3r0p" * 4 + "abcdefgh"


def _vault_id(vault: VaultCLI) -> str:
    vault_id: str = json.loads(vault.run("status", "--json").stdout)["vault"]["vault_id"]
    return vault_id


def _secretstorage_item(service: Daemon, vault_id: str) -> tuple[bytes, dict[str, str], str]:
    import secretstorage
    from jeepney.io.blocking import open_dbus_connection

    conn = open_dbus_connection(bus=service.bus_address)
    try:
        (item,) = list(secretstorage.search_items(conn, {"service": "vault", "username": vault_id}))
        secret: bytes = item.get_secret()
        attributes: dict[str, str] = item.get_attributes()
        label: str = item.get_label()
        return secret, attributes, label
    finally:
        conn.close()


def _pieces(text: str, size: int = 12) -> list[bytes]:
    raw = text.encode()
    return [raw[i : i + size] for i in range(len(raw) - size + 1)]


def _leaks(text: str, data: bytes) -> bool:
    """Any 12-character piece of ``text`` in ``data``."""
    return any(piece in data for piece in _pieces(text))


@contextlib.contextmanager
def _monitored(address: str, tmp_path: Path) -> Iterator[Path]:
    """dbus-monitor on the bus (which any process of the user may run on its session bus),
    recording every message in both directions into the file yielded, until the block ends."""
    if shutil.which("dbus-monitor") is None:
        pytest.fail("dbus-monitor is missing: apt-get install dbus (see .ci/run)")
    capture = tmp_path / f"capture-{uuid.uuid4().hex[:8]}.bin"
    with capture.open("wb") as out:
        monitor = subprocess.Popen(
            ["dbus-monitor", "--address", address, "--binary"],
            stdout=out,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ping = [
        "dbus-send",
        f"--bus={address}",
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ListNames",
    ]
    try:
        for _ in range(200):  # until the monitor records traffic
            subprocess.run(ping, capture_output=True, timeout=10, check=False)
            if capture.stat().st_size:
                break
            time.sleep(0.05)
        else:
            pytest.fail("dbus-monitor captured nothing")
        yield capture
    finally:
        os.killpg(monitor.pid, signal.SIGTERM)
        monitor.wait(5)


def _entry(vault: VaultCLI) -> str:
    """The vault's keyring entry, read by keyring's backend (over its own encrypted session)."""
    return keyring_package(vault, "print(k.get_password('vault', vault_id))").strip()


def _entry_leaks(entry: str, captured: bytes) -> bool:
    """The entry's data key (as the entry holds it, or its raw bytes) or its text from the
    keys on, in any 12-character piece."""
    (key,) = json.loads(entry)["keys"].values()
    assert len(base64.b64decode(key)) == 32
    return (
        _leaks(key, captured)
        or base64.b64decode(key) in captured
        or _leaks(entry[entry.index('"keys"') :], captured)
    )


def test_secretstorage_and_keyring_read_what_vault_wrote(
    vault: VaultCLI, secret_service: Daemon, tmp_path: Path
) -> None:
    with _monitored(secret_service.bus_address, tmp_path) as capture:
        assert vault.run("import", "gh", "--provider", "github", input=TOKEN).returncode == 0
    assert not _entry_leaks(_entry(vault), capture.read_bytes())  # written encrypted
    vault_id = _vault_id(vault)
    secret, attributes, label = _secretstorage_item(secret_service, vault_id)
    attributes.pop("xdg:schema", None)  # gnome-keyring may add the generic schema's name
    assert attributes == {
        "service": "vault",
        "username": vault_id,
        "application": KEYRING_APPLICATION,
    }
    assert label == f"Password for '{vault_id}' on 'vault'"
    entry = json.loads(secret)
    assert entry["v"] == 1
    assert len(entry["keys"]) == 1
    # keyring's own backend reads the very same text
    assert (
        keyring_package(vault, "print(k.get_password('vault', vault_id))").strip()
        == secret.decode()
    )


def test_vault_reads_what_keyring_and_secretstorage_wrote(
    vault: VaultCLI, secret_service: Daemon, tmp_path: Path
) -> None:
    assert vault.run("import", "gh", "--provider", "github", input=TOKEN).returncode == 0
    entry = keyring_package(vault, "print(k.get_password('vault', vault_id))").strip()
    # keyring deletes the entry and writes it back (its session: secretstorage's, encrypted)
    keyring_package(
        vault,
        "e = k.get_password('vault', vault_id); k.delete_password('vault', vault_id); "
        "k.set_password('vault', vault_id, e)",
    )
    with _monitored(secret_service.bus_address, tmp_path) as capture:
        r = vault.run("token", "gh")
    assert (r.returncode, r.stdout) == (0, TOKEN + "\n"), r
    assert not _entry_leaks(entry, capture.read_bytes())  # read back encrypted
    # secretstorage writes it back too, under keyring's attributes
    import secretstorage
    from jeepney.io.blocking import open_dbus_connection

    vault_id = _vault_id(vault)
    conn = open_dbus_connection(bus=secret_service.bus_address)
    try:
        attributes = {"service": "vault", "username": vault_id, "application": KEYRING_APPLICATION}
        collection = secretstorage.get_default_collection(conn)
        collection.create_item("written by secretstorage", attributes, entry.encode(), replace=True)
    finally:
        conn.close()
    r = vault.run("token", "gh")
    assert (r.returncode, r.stdout) == (0, TOKEN + "\n"), r


def _plain_create_item(address: str, attributes: dict[str, str], secret: str) -> None:
    """The control: an item stored over a "plain" session (what vault did before)."""
    conn = _dbus.Connection.session(10, address)
    try:
        dest, path = "org.freedesktop.secrets", "/org/freedesktop/secrets"
        opened = conn.call(
            dest,
            path,
            "org.freedesktop.Secret.Service",
            "OpenSession",
            signature="sv",
            body=("plain", ("s", "")),
        )
        _output, session = conn.reply(opened, 10, "vo")
        props: dict[str, Any] = {
            "org.freedesktop.Secret.Item.Label": ("s", "control"),
            "org.freedesktop.Secret.Item.Attributes": ("a{ss}", attributes),
        }
        created = conn.call(
            dest,
            "/org/freedesktop/secrets/aliases/default",
            "org.freedesktop.Secret.Collection",
            "CreateItem",
            signature="a{sv}(oayays)b",
            body=(props, (session, b"", secret.encode(), "text/plain"), True),
        )
        conn.reply(created, 10, "oo")
    finally:
        conn.close()


def test_a_bus_monitor_never_sees_the_vault_key(
    vault: VaultCLI, secret_service: Daemon, tmp_path: Path
) -> None:
    """`vault import` (CreateItem) and `vault token` (GetSecrets) carry the keyring entry:
    neither its data key nor its text is in a capture of the bus, while a control secret sent
    over a plain session is, so the capture would have shown it."""
    control = "control-" + uuid.uuid4().hex
    with _monitored(secret_service.bus_address, tmp_path) as capture:
        assert vault.run("import", "gh", "--provider", "github", input=TOKEN).returncode == 0
        r = vault.run("token", "gh")
        assert (r.returncode, r.stdout) == (0, TOKEN + "\n"), r
        _plain_create_item(
            secret_service.bus_address, {"service": "control", "username": control}, control
        )
        deadline = time.monotonic() + 10
        while not _leaks(control, capture.read_bytes()) and time.monotonic() < deadline:
            time.sleep(0.05)
    captured = capture.read_bytes()
    assert _leaks(control, captured)  # the monitor does see a secret sent in clear
    assert ALGORITHM.encode() in captured
    assert b"CreateItem" in captured
    assert b"GetSecrets" in captured
    assert not _entry_leaks(_entry(vault), captured)
