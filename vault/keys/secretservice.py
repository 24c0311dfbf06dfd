"""A minimal Secret Service client (freedesktop.org Secret Service API over D-Bus, with our own
D-Bus client, vault.keys.dbus, so that `vault token` imports no D-Bus library).

It reads and writes exactly the items the `keyring` package's SecretService backend does (same
attributes, label and default collection), so either can read what the other wrote; it exists
so that `vault token` does not import keyring (bench/NOTES.md, "Why the code is written as it
is"), and so that every call here carries its own D-Bus timeout (no helper thread).

The session uses the "plain" algorithm: the secret crosses the local, per-user session bus
socket unencrypted, as it would with keyring's default for this backend (secretstorage's
dh-ietf1024 adds a key exchange against a peer on the same socket; it does not change who can
read the bus). A locked collection is reported, never unlocked by prompting.

Calls are pipelined where they do not depend on each other's answers: `vault token` makes two
round trips (authentication, Hello, OpenSession and the alias-path SearchItems in one write;
then GetSecrets). CreateItem and Delete always go out in writes of their own (the crash tests
recognise them in what is sent).
"""

from __future__ import annotations

from vault.errors import KeyringUnavailable
from vault.keys.dbus import AuthenticationRefused, Connection, DBusError, ErrorReply

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

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


class _NoAnswer(KeyringUnavailable):
    """No answer within the timeout (it may still come: the call can be waited for again)."""


_NO_SESSION_HINT = (
    "run inside a desktop session with a Secret Service (gnome-keyring, KeePassXC) and "
    "DBUS_SESSION_BUS_ADDRESS set, or configure key_backend: passphrase"
)


def _no_session(exc: Exception) -> KeyringUnavailable:
    detail = str(exc) if isinstance(exc, DBusError) else type(exc).__name__
    return KeyringUnavailable(
        f"the OS keyring is unavailable (no D-Bus session: {detail})", hint=_NO_SESSION_HINT
    )


class SecretService:
    """One connection to the session bus and one plain session; close() when done.

    Connecting only queues the authentication, Hello and OpenSession; they go out with the
    first call, and any call first checks the session was opened (as if opened here)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        try:
            self.conn = Connection.session(timeout)
        except (OSError, DBusError) as exc:  # no bus address, no socket
            raise _no_session(exc) from None
        self._opening = self._send(
            SERVICE_PATH, SERVICE_IFACE, "OpenSession", "sv", ("plain", ("s", ""))
        )
        self._session: str | None = None
        self._session_error: KeyringUnavailable | None = None

    @property
    def session(self) -> str:
        """The plain session's object path (waits for OpenSession's answer the first time)."""
        if self._session is None:
            if self._session_error is not None:
                raise self._session_error
            try:
                _output, path = self._reply(self._opening, "OpenSession", "vo", session=False)
            except (Disconnected, _NoAnswer):
                raise
            except KeyringUnavailable as exc:  # answered, with an error: for good
                self._session_error = exc
                raise
            self._session = str(path)
        return self._session

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SecretService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(
        self, path: str, iface: str, method: str, sig: str = "", body: tuple[Any, ...] = ()
    ) -> int:
        """Queue a call to the Secret Service; it goes out with the next wait for an answer."""
        try:
            return self.conn.call(BUS_NAME, path, iface, method, signature=sig, body=body)
        except DBusError as exc:  # a value that cannot be marshalled: a bug, but no traceback
            raise KeyringUnavailable(f"cannot send {method} to the OS keyring ({exc})") from None

    def _reply(
        self, serial: int, method: str, expect: str | None, *, session: bool = True
    ) -> tuple[Any, ...]:
        """The answer to the queued call ``serial`` (sending what is queued), once the session
        is known to be open."""
        if session and self._session is None:
            _ = self.session
        try:
            return self.conn.reply(serial, self.timeout, expect)
        except TimeoutError:
            raise _NoAnswer(
                f"the OS keyring did not answer within {self.timeout:g} s ({method})",
                hint="the keyring may be busy or waiting for an unlock prompt; set "
                "VAULT_KEYRING_TIMEOUT to wait longer",
            ) from None
        except OSError as exc:  # the bus went away under us
            raise Disconnected(
                f"the connection to the OS keyring was lost ({method}: {type(exc).__name__})",
                hint="is the Secret Service (gnome-keyring, KeePassXC) still running?",
            ) from None
        except AuthenticationRefused as exc:
            raise _no_session(exc) from None
        except DBusError as exc:  # malformed, oversized or unexpected: nothing to trust
            raise KeyringUnavailable(
                f"the OS keyring sent an unusable answer to {method} ({exc})",
                hint="is the Secret Service (gnome-keyring, KeePassXC) working?",
            ) from None
        except ErrorReply as exc:
            if "ServiceUnknown" in exc.name or "NoReply" in exc.name:
                raise KeyringUnavailable(
                    "the OS keyring is unavailable (no Secret Service on the session bus)",
                    hint="start gnome-keyring-daemon or another Secret Service, or configure "
                    "key_backend: passphrase",
                ) from None
            raise Refused(f"the OS keyring refused {method} ({exc.name})") from None

    def _call(
        self, path: str, iface: str, method: str, sig: str, body: tuple[Any, ...], *, expect: str
    ) -> tuple[Any, ...]:
        return self._reply(self._send(path, iface, method, sig, body), method, expect)

    def _read_alias(self) -> int:
        return self._send(SERVICE_PATH, SERVICE_IFACE, "ReadAlias", "s", ("default",))

    def _default_collection(self, read_alias: int) -> str:
        (path,) = self._reply(read_alias, "ReadAlias", "o")
        if path == "/":
            raise KeyringUnavailable(
                "the OS keyring has no default collection",
                hint="create the login keyring (e.g. with seahorse) or configure key_backend: "
                "passphrase",
            )
        return str(path)

    def _locked(self, path: str) -> bool:
        (value,) = self._call(
            path,
            "org.freedesktop.DBus.Properties",
            "Get",
            "ss",
            (COLLECTION_IFACE, "Locked"),
            expect="v",
        )
        return bool(value[1])

    def get(self, attributes: dict[str, str]) -> str | None:
        """The secret of the first item in the default collection with these attributes.

        First through the default collection's alias path (SearchItems, sent with the
        connection's first write, then GetSecrets); when that finds nothing or is refused (a
        locked collection, a service without alias paths), the long way, which also tells a
        locked keyring from a missing item (ReadAlias and Service.SearchItems together, then
        GetSecrets)."""
        search = self._send(
            DEFAULT_ALIAS_PATH, COLLECTION_IFACE, "SearchItems", "a{ss}", (attributes,)
        )
        try:
            (found,) = self._reply(search, "SearchItems", "ao")
            if found:
                secret = self._secret(sorted(found)[0])
                if secret is not None:
                    return secret
        except Refused:
            pass
        return self._get_the_long_way(attributes)

    def _secret(self, item: str) -> str | None:
        (secrets,) = self._call(
            SERVICE_PATH,
            SERVICE_IFACE,
            "GetSecrets",
            "aoo",
            ([item], self.session),
            expect="a{o(oayays)}",
        )
        for _session, _params, value, _ctype in secrets.values():
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise KeyringUnavailable(
                    "the OS keyring holds a vault key that is not UTF-8 text"
                ) from None
        return None  # left out: a locked item

    def _search(self, attributes: dict[str, str]) -> int:
        return self._send(SERVICE_PATH, SERVICE_IFACE, "SearchItems", "a{ss}", (attributes,))

    def _get_the_long_way(self, attributes: dict[str, str]) -> str | None:
        read_alias, search = self._read_alias(), self._search(attributes)
        collection = self._default_collection(read_alias)
        unlocked, locked = self._reply(search, "SearchItems", "aoao")
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
        collection = self._default_collection(self._read_alias())
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
            expect="oo",
        )
        if prompt != "/":
            raise KeyringUnavailable("the OS keyring wants a prompt to store the vault key")

    def delete(self, attributes: dict[str, str]) -> None:
        read_alias, search = self._read_alias(), self._search(attributes)
        collection = self._default_collection(read_alias)
        unlocked, _locked = self._reply(search, "SearchItems", "aoao")
        for path in unlocked:
            if path.startswith(collection + "/"):
                self._reply(self._send(path, ITEM_IFACE, "Delete"), "Delete", None)
