"""A minimal Secret Service client (freedesktop.org Secret Service API over D-Bus, with our own
D-Bus client, vault.keys.dbus, so that `vault token` imports no D-Bus library).

It reads and writes exactly the items the `keyring` package's SecretService backend does (same
attributes, label and default collection), so either can read what the other wrote; it exists
so that `vault token` does not import keyring (bench/NOTES.md, "Why the code is written as it
is"), and so that every call here carries its own D-Bus timeout (no helper thread).

The session is encrypted with the "dh-ietf1024-sha256-aes128-cbc-pkcs7" algorithm
(vault.keys.sscrypto), as libsecret's and secretstorage's are: the vault key never crosses the
bus in clear, so a bus monitor, a capture or a log of the traffic does not show it. There is no
fallback to "plain": a service that refuses the algorithm, or answers with an unusable public
value or ciphertext, is an error (KeyringUnavailable, exit 6). Encryption does not change who
may ask: any process of the user can still request the secret from the service itself.

Prompts are never answered: a locked collection is reported, never unlocked by prompting, and
a CreateItem or an Item.Delete that answers with a prompt (KeePassXC can ask for a
confirmation) is a failure, never taken as done: the prompt is dismissed and KeyringUnavailable
raised, so nothing was stored or deleted. vault runs from cron jobs and scripts, where nobody
could answer a dialog within the timeout. A delete that finds a matching item only in a locked
collection fails the same way.

Calls are pipelined where they do not depend on each other's answers: `vault token` makes two
round trips (authentication, Hello, OpenSession with our public value and the alias-path
SearchItems in one write, cryptography's cipher imported while the service computes its half of
the exchange; then GetSecrets, the session key derived while it is answered). CreateItem and
Delete always go out in writes of their own (the crash tests recognise them in what is sent).
"""

from __future__ import annotations

from vault.errors import KeyringUnavailable
from vault.keys.dbus import AuthenticationRefused, Connection, DBusError, ErrorReply
from vault.keys.sscrypto import ALGORITHM, Session, SessionCryptoError, load_cipher

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

BUS_NAME = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
DEFAULT_ALIAS_PATH = "/org/freedesktop/secrets/aliases/default"
SERVICE_IFACE = "org.freedesktop.Secret.Service"
COLLECTION_IFACE = "org.freedesktop.Secret.Collection"
ITEM_IFACE = "org.freedesktop.Secret.Item"
PROMPT_IFACE = "org.freedesktop.Secret.Prompt"
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
    """One connection to the session bus and one encrypted session; close() when done.

    Connecting only queues the authentication, Hello and OpenSession; they go out with the
    first call, and any call first checks the session was opened (as if opened here)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        try:
            self.conn = Connection.session(timeout)
        except (OSError, DBusError) as exc:  # no bus address, no socket
            raise _no_session(exc) from None
        self._crypto = Session()  # our half of the key exchange, before anything is sent
        self._opening = self._send(
            SERVICE_PATH,
            SERVICE_IFACE,
            "OpenSession",
            "sv",
            (ALGORITHM, ("ay", self._crypto.public)),
        )
        self._session: str | None = None
        self._session_error: KeyringUnavailable | None = None

    @property
    def session(self) -> str:
        """The encrypted session's object path (waits for OpenSession's answer the first time,
        and checks the service's half of the key exchange in it)."""
        if self._session is None:
            if self._session_error is not None:
                raise self._session_error
            self.conn.flush(self.timeout)  # the first write goes out ...
            load_cipher()  # ... and the cipher is loaded while the service works
            try:
                output, path = self._reply(self._opening, "OpenSession", "vo", session=False)
                self._accept(output)
            except (Disconnected, _NoAnswer):
                raise
            except Refused as exc:  # NotSupported: the algorithm
                self._session_error = Refused(
                    f"{exc} for an encrypted session ({ALGORITHM}); vault never sends its key "
                    "in clear",
                    hint="use a Secret Service that supports it (gnome-keyring, KeePassXC), or "
                    "configure key_backend: passphrase",
                )
                raise self._session_error from None
            except KeyringUnavailable as exc:  # answered, with an error: for good
                self._session_error = exc
                raise
            self._session = str(path)
        return self._session

    def _accept(self, output: tuple[str, Any]) -> None:
        sig, value = output
        try:
            if sig != "ay":
                raise SessionCryptoError(f"a public value of type {sig!r}, not 'ay'")
            self._crypto.accept(value)
        except SessionCryptoError as exc:
            raise KeyringUnavailable(
                f"the OS keyring sent an unusable answer to OpenSession ({exc})",
                hint="is the Secret Service (gnome-keyring, KeePassXC) working?",
            ) from None

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
        asked = self._send(SERVICE_PATH, SERVICE_IFACE, "GetSecrets", "aoo", ([item], self.session))
        self.conn.flush(self.timeout)  # out now: the key is derived while the service answers
        self._crypto.derive()
        (secrets,) = self._reply(asked, "GetSecrets", "a{o(oayays)}")
        for _session, params, value, _ctype in secrets.values():
            try:
                plain = self._crypto.decrypt(params, value)
            except SessionCryptoError as exc:
                raise KeyringUnavailable(
                    f"the OS keyring sent a vault key that does not decrypt ({exc})",
                    hint="is the Secret Service (gnome-keyring, KeePassXC) working?",
                ) from None
            try:
                return plain.decode("utf-8")
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
        session = self.session
        iv, ciphertext = self._crypto.encrypt(secret.encode("utf-8"))
        value = (session, iv, ciphertext, "text/plain")
        _item, prompt = self._call(
            collection,
            COLLECTION_IFACE,
            "CreateItem",
            "a{sv}(oayays)b",
            (properties, value, True),
            expect="oo",
        )
        if prompt != "/":  # nothing is stored until the prompt is answered
            self._dismiss(prompt)
            raise KeyringUnavailable(
                "the OS keyring asked for a confirmation prompt to store the vault key; vault "
                "does not answer prompts, so the key was not stored",
                hint="allow vault's access without confirmation in the keyring's settings, or "
                "configure key_backend: passphrase",
            )

    def delete(self, attributes: dict[str, str]) -> None:
        """Delete every item with these attributes in the default collection. Returns only
        once each is gone: an item in a locked collection, or a Delete answered with a prompt
        (which vault dismisses, never answers), raises KeyringUnavailable and the item stays."""
        read_alias, search = self._read_alias(), self._search(attributes)
        collection = self._default_collection(read_alias)
        unlocked, locked = self._reply(search, "SearchItems", "aoao")
        prefix = collection + "/"
        if any(p.startswith(prefix) for p in locked):
            raise KeyringUnavailable(
                "the OS keyring is locked; the vault key in it could not be deleted",
                hint="unlock it, e.g. by logging in to the desktop session, then delete the "
                f"item labelled {attributes.get('username', '')!r} on 'vault' (or retry)",
            )
        for path in unlocked:
            if path.startswith(prefix):
                (prompt,) = self._reply(self._send(path, ITEM_IFACE, "Delete"), "Delete", "o")
                if prompt != "/":  # nothing is deleted until the prompt is answered
                    self._dismiss(prompt)
                    raise KeyringUnavailable(
                        "the OS keyring asked for a confirmation prompt to delete the vault "
                        "key; vault does not answer prompts, so it was not deleted",
                        hint="delete the item in the keyring's own window (KeePassXC: the "
                        "entry for 'vault'), or allow deletion without confirmation",
                    )

    def _dismiss(self, prompt: str) -> None:
        """Withdraw a prompt vault will not answer (best effort: the failure is reported
        either way)."""
        import contextlib

        with contextlib.suppress(KeyringUnavailable):
            self._reply(self._send(prompt, PROMPT_IFACE, "Dismiss"), "Dismiss", None)
