"""A minimal Secret Service client (freedesktop.org Secret Service API over D-Bus, with jeepney).

It reads and writes exactly the items the `keyring` package's SecretService backend does (same
attributes, label and default collection), so either can read what the other wrote; it exists
because importing keyring costs `vault token` ~80 ms (entry points, urllib, email parsing) on
every call, and because every call here carries its own D-Bus timeout (no helper thread).

The session uses the "plain" algorithm: the secret crosses the local, per-user session bus
socket unencrypted, as it would with keyring's default for this backend (secretstorage's
dh-ietf1024 adds a key exchange against a peer on the same socket; it does not change who can
read the bus). A locked collection is reported, never unlocked by prompting.
"""

from __future__ import annotations

from typing import Any

from vault.errors import KeyringUnavailable

BUS_NAME = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
DEFAULT_ALIAS_PATH = "/org/freedesktop/secrets/aliases/default"
SERVICE_IFACE = "org.freedesktop.Secret.Service"
COLLECTION_IFACE = "org.freedesktop.Secret.Collection"
ITEM_IFACE = "org.freedesktop.Secret.Item"
KEYRING_APPLICATION = "Python keyring library"  # what keyring's backend sets on its items


class Disconnected(KeyringUnavailable):
    """The session bus connection broke (the daemon or the bus stopped)."""


class Refused(KeyringUnavailable):
    """The Secret Service answered a call with an error (locked, no such object, ...)."""


class SecretService:
    """One connection to the session bus and one plain session; close() when done."""

    def __init__(self, timeout: float) -> None:
        from jeepney.io.blocking import open_dbus_connection

        self.timeout = timeout
        try:
            self.conn = open_dbus_connection(bus="SESSION", auth_timeout=timeout)
        except Exception as exc:  # no bus address, no socket, auth refused
            raise KeyringUnavailable(
                f"the OS keyring is unavailable (no D-Bus session: {type(exc).__name__})",
                hint="run inside a desktop session with a Secret Service (gnome-keyring, "
                "KeePassXC) and DBUS_SESSION_BUS_ADDRESS set, or configure key_backend: "
                "passphrase",
            ) from None
        try:
            _, self.session = self._call(
                SERVICE_PATH, SERVICE_IFACE, "OpenSession", "sv", ("plain", ("s", ""))
            )
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SecretService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, path: str, iface: str, method: str, sig: str | None, body: tuple[Any, ...]
    ) -> Any:
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        address = DBusAddress(path, bus_name=BUS_NAME, interface=iface)
        msg = (
            new_method_call(address, method, sig, body) if sig else new_method_call(address, method)
        )
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=self.timeout)
        except TimeoutError:
            raise KeyringUnavailable(
                f"the OS keyring did not answer within {self.timeout:g} s ({method})",
                hint="the keyring may be busy or waiting for an unlock prompt; set "
                "VAULT_KEYRING_TIMEOUT to wait longer",
            ) from None
        except OSError as exc:  # the bus went away under us
            raise Disconnected(
                f"the connection to the OS keyring was lost ({method}: {type(exc).__name__})",
                hint="is the Secret Service (gnome-keyring, KeePassXC) still running?",
            ) from None
        try:
            return unwrap_msg(reply)
        except DBusErrorResponse as exc:
            if "ServiceUnknown" in str(exc.name) or "NoReply" in str(exc.name):
                raise KeyringUnavailable(
                    "the OS keyring is unavailable (no Secret Service on the session bus)",
                    hint="start gnome-keyring-daemon or another Secret Service, or configure "
                    "key_backend: passphrase",
                ) from None
            raise Refused(f"the OS keyring refused {method} ({exc.name})") from None

    def _default_collection(self) -> str:
        (path,) = self._call(SERVICE_PATH, SERVICE_IFACE, "ReadAlias", "s", ("default",))
        if path == "/":
            raise KeyringUnavailable(
                "the OS keyring has no default collection",
                hint="create the login keyring (e.g. with seahorse) or configure key_backend: "
                "passphrase",
            )
        return str(path)

    def _locked(self, path: str) -> bool:
        (value,) = self._call(
            path, "org.freedesktop.DBus.Properties", "Get", "ss", (COLLECTION_IFACE, "Locked")
        )
        return bool(value[1])

    def get(self, attributes: dict[str, str]) -> str | None:
        """The secret of the first item in the default collection with these attributes.

        First through the default collection's alias path (two calls, ~1.9 ms against
        gnome-keyring); when that finds nothing or is refused (a locked collection, a service
        without alias paths), the long way, which also tells a locked keyring from a missing
        item (three calls, ~5.5 ms)."""
        try:
            (found,) = self._call(
                DEFAULT_ALIAS_PATH, COLLECTION_IFACE, "SearchItems", "a{ss}", (attributes,)
            )
            if found:
                secret = self._secret(sorted(found)[0])
                if secret is not None:
                    return secret
        except Refused:
            pass
        return self._get_the_long_way(attributes)

    def _secret(self, item: str) -> str | None:
        (secrets,) = self._call(
            SERVICE_PATH, SERVICE_IFACE, "GetSecrets", "aoo", ([item], self.session)
        )
        for _session, _params, value, _ctype in secrets.values():
            return bytes(value).decode("utf-8")
        return None  # left out: a locked item

    def _get_the_long_way(self, attributes: dict[str, str]) -> str | None:
        collection = self._default_collection()
        unlocked, locked = self._call(
            SERVICE_PATH, SERVICE_IFACE, "SearchItems", "a{ss}", (attributes,)
        )
        prefix = collection + "/"
        mine = [p for p in unlocked if p.startswith(prefix)]
        if not mine:
            if any(p.startswith(prefix) for p in locked):
                raise KeyringUnavailable(
                    "the OS keyring is locked (the vault key is in a locked collection)",
                    hint="unlock it, e.g. by logging in to the desktop session, then retry",
                )
            return None
        return self._secret(sorted(mine)[0])

    def set(self, attributes: dict[str, str], label: str, secret: str) -> None:
        collection = self._default_collection()
        if self._locked(collection):
            raise KeyringUnavailable(
                "the OS keyring is locked; the vault key cannot be stored",
                hint="unlock it, e.g. by logging in to the desktop session, then retry",
            )
        properties = {
            f"{ITEM_IFACE}.Label": ("s", label),
            f"{ITEM_IFACE}.Attributes": (
                "a{ss}",
                {**attributes, "application": KEYRING_APPLICATION},
            ),
        }
        value = (self.session, b"", secret.encode("utf-8"), "text/plain")
        _item, prompt = self._call(
            collection,
            COLLECTION_IFACE,
            "CreateItem",
            "a{sv}(oayays)b",
            (properties, value, True),
        )
        if prompt != "/":
            raise KeyringUnavailable("the OS keyring wants a prompt to store the vault key")

    def delete(self, attributes: dict[str, str]) -> None:
        collection = self._default_collection()
        unlocked, _locked = self._call(
            SERVICE_PATH, SERVICE_IFACE, "SearchItems", "a{ss}", (attributes,)
        )
        for path in unlocked:
            if path.startswith(collection + "/"):
                self._call(path, ITEM_IFACE, "Delete", None, ())
