"""A fake Secret Service on a fake session bus (a Unix socket), for what gnome-keyring never does:
refuse the encrypted session, answer with unusable public values or ciphertexts, or answer
Item.Delete and CreateItem with a prompt (KeePassXC asks for a confirmation).

It answers vault's client (vault.keys.secretservice) call by call as gnome-keyring would, in a
thread, one connection after another (each `vault` process opens one), and keeps its items
across connections. Its half of the key exchange is secretstorage's own (secretstorage.dhcrypto,
an implementation independent of vault's), its AES-128-CBC cryptography's. It records every
byte it received, the first write of each connection and every call, so tests can look for a
secret in what crossed the "bus".
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from secretstorage.dhcrypto import Session as TheirSession

from vault.keys import dbus as _dbus
from vault.keys.dbus import marshal, parse_message

ALGORITHM = "dh-ietf1024-sha256-aes128-cbc-pkcs7"
COLLECTION = "/org/freedesktop/secrets/collection/login"
ALIAS = "/org/freedesktop/secrets/aliases/default"
SESSION_PATH = "/org/freedesktop/secrets/session/s1"
PROMPT = "/org/freedesktop/secrets/prompt/p1"
OK_LINE = b"OK 0123456789abcdef0123456789abcdef\r\n"

Answer = tuple[str, tuple[Any, ...]] | str  # (signature, body) or an error name
Override = Answer | Callable[[tuple[Any, ...]], Answer]


def encrypt(key: bytes, plain: bytes, iv: bytes | None = None) -> tuple[bytes, bytes]:
    """(IV, AES-128-CBC-PKCS7 ciphertext), as a Secret Service encrypts a secret."""
    iv = os.urandom(16) if iv is None else iv
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv, enc.update(padded) + enc.finalize()


def decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(dec.update(data) + dec.finalize()) + unpadder.finalize()


def message(
    kind: int, serial: int, sig: str = "", body: tuple[Any, ...] = (), **fields: Any
) -> bytes:
    """A message as a bus sends it (little-endian), header fields by name."""
    codes = {
        "reply_serial": (_dbus.REPLY_SERIAL, "u"),
        "error_name": (_dbus.ERROR_NAME, "s"),
    }
    payload = marshal(sig, body) if sig else b""
    header_fields = [(codes[k][0], (codes[k][1], v)) for k, v in fields.items()]
    if sig:
        header_fields.append((_dbus.SIGNATURE, ("g", sig)))
    buf = bytearray()
    marshal("yyyyuua(yv)", (ord("l"), kind, 0, 1, len(payload), serial, header_fields), buf)
    buf += bytes(-len(buf) % 8) + payload
    return bytes(buf)


class Item:
    def __init__(self, attributes: dict[str, str], label: str, secret: bytes) -> None:
        self.attributes = attributes
        self.label = label
        self.secret = secret


class FakeSecretService:
    """Listens on ``path``; ``bus_address`` is what DBUS_SESSION_BUS_ADDRESS must be.

    ``overrides`` replaces the answer to a member (an answer, or a function of the call's body
    returning one); ``prompt_delete`` / ``prompt_create`` answer with a prompt instead of acting
    (as KeePassXC does when it asks for a confirmation); ``allow_plain`` accepts a "plain"
    session too (the client should never ask for one); ``locked`` puts every item in a locked
    collection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.overrides: dict[str, Override] = {}
        self.prompt_delete = False
        self.prompt_create = False
        self.allow_plain = False
        self.locked = False
        self.items: dict[str, Item] = {}
        self.received = bytearray()
        self.first_writes: list[bytes] = []
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []  # (path, member, body)
        self.keys: list[bytes] = []  # each encrypted session's AES key
        self._next_item = 1
        self._key: bytes | None = None
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(4)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def bus_address(self) -> str:
        return f"unix:path={self.path},guid=0123456789abcdef0123456789abcdef"

    def close(self) -> None:
        self._stop = True
        # shutdown wakes the thread blocked in accept() (close alone does not, on Linux: each
        # test then waited out the join's 5 s)
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(5)

    def __enter__(self) -> FakeSecretService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def members(self) -> list[str]:
        return [member for _path, member, _body in self.calls]

    def bodies(self, member: str) -> list[tuple[Any, ...]]:
        return [body for _path, m, body in self.calls if m == member]

    def add(self, attributes: dict[str, str], secret: bytes, label: str = "item") -> str:
        path = f"{COLLECTION}/{self._next_item}"
        self._next_item += 1
        self.items[path] = Item(dict(attributes), label, secret)
        return path

    # --- the service ------------------------------------------------------------------------

    def _matching(self, attributes: dict[str, str]) -> list[str]:
        return sorted(
            path
            for path, item in self.items.items()
            if all(item.attributes.get(k) == v for k, v in attributes.items())
        )

    def _answer(self, path: str, member: str, body: tuple[Any, ...]) -> Answer | None:
        override = self.overrides.get(member)
        if override is not None:
            return override(body) if callable(override) else override
        if member == "Hello":
            return "s", (":1.42",)
        if member == "OpenSession":
            algorithm, (sig, value) = body
            if algorithm == "plain" and self.allow_plain:
                self._key = None
                return "vo", (("s", ""), SESSION_PATH)
            if algorithm != ALGORITHM or sig != "ay":
                return "org.freedesktop.DBus.Error.NotSupported"
            half = TheirSession()
            half.set_server_public_key(int.from_bytes(value, "big"))
            assert half.aes_key is not None
            self._key = half.aes_key
            self.keys.append(half.aes_key)
            public = half.my_public_key.to_bytes(128, "big")
            return "vo", (("ay", public), SESSION_PATH)
        if member == "ReadAlias":
            return "o", (COLLECTION,)
        if member == "SearchItems":
            found = self._matching(body[0])
            if path == ALIAS:  # Collection.SearchItems: a locked collection refuses
                if self.locked:
                    return "org.freedesktop.Secret.Error.IsLocked"
                return "ao", (found,)
            return "aoao", (([], found) if self.locked else (found, []))
        if member == "GetSecrets":
            secrets = {}
            for item in body[0]:
                if item in self.items:
                    secrets[item] = (
                        SESSION_PATH,
                        *self._seal(self.items[item].secret),
                        "text/plain",
                    )
            return "a{o(oayays)}", (secrets,)
        if member == "Get":
            return "v", (("b", self.locked),)
        if member == "CreateItem":
            properties, (_session, iv, value, _ctype), replace = body
            if self.prompt_create:
                return "oo", ("/", PROMPT)
            secret = decrypt(self._key, iv, value) if self._key is not None else value
            attributes = properties["org.freedesktop.Secret.Item.Attributes"][1]
            label = properties["org.freedesktop.Secret.Item.Label"][1]
            if replace:
                for old in self._matching(attributes):
                    del self.items[old]
            return "oo", (self.add(attributes, secret, label), "/")
        if member == "Delete":
            if path not in self.items:
                return "org.freedesktop.Secret.Error.NoSuchObject"
            if self.prompt_delete:
                return "o", (PROMPT,)
            del self.items[path]
            return "o", ("/",)
        if member == "Dismiss":
            return "", ()
        return "org.freedesktop.DBus.Error.UnknownMethod"

    def _seal(self, plain: bytes) -> tuple[bytes, bytes]:
        if self._key is None:
            return b"", plain
        return encrypt(self._key, plain)

    def _serve(self) -> None:
        while not self._stop:
            try:
                peer, _ = self._server.accept()
            except OSError:
                return
            with peer, contextlib.suppress(OSError, _dbus.DBusError):
                self._connection(peer)

    def _connection(self, peer: socket.socket) -> None:
        peer.settimeout(30)
        buf = b""
        first = True
        while b"BEGIN\r\n" not in buf:
            chunk = peer.recv(65536)
            if not chunk:
                return
            if first:
                self.first_writes.append(chunk)
                first = False
            self.received += chunk
            buf += chunk
        buf = buf.split(b"BEGIN\r\n", 1)[1]
        peer.sendall(OK_LINE)
        for _ in range(10_000):
            while len(buf) < 16 or len(buf) < _dbus.message_length(buf[:16]):
                chunk = peer.recv(65536)
                if not chunk:
                    return
                self.received += chunk
                buf += chunk
            size = _dbus.message_length(buf[:16])
            call, buf = parse_message(buf[:size]), buf[size:]
            path, member = str(call.fields[_dbus.PATH]), str(call.fields[_dbus.MEMBER])
            body = call.body()
            self.calls.append((path, member, body))
            answer = self._answer(path, member, body)
            if isinstance(answer, str):
                peer.sendall(
                    message(
                        _dbus.ERROR,
                        1000 + call.serial,
                        "s",
                        ("refused",),
                        reply_serial=call.serial,
                        error_name=answer,
                    )
                )
            elif answer is not None:
                sig, values = answer
                peer.sendall(
                    message(
                        _dbus.METHOD_RETURN,
                        1000 + call.serial,
                        sig,
                        values,
                        reply_serial=call.serial,
                    )
                )
