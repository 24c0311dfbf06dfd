"""Token records and the vault's plaintext payload.

The payload is one line of metadata, then one line per token, sorted by name::

    #meta\t{"v": 1, "audit_key": "...", "state_key": "..."}\n
    NAME\t{...record as JSON...}\n

Names cannot hold a tab or a newline, and JSON keeps both escaped, so finding one name is a
byte search over the decrypted payload: reading one token never parses the others.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable

from vault.errors import IntegrityError
from vault.secret import Secret
from vault.util.record import datarecord, field, replace

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

    from vault.login.providers import Identity

PAYLOAD_MAGIC = b"VREC1\n"
META_NAME = b"#meta"
EXPIRING_SOON = 300  # seconds: `vault list` calls a token with less left "expiring"
MAX_HELD = 1024  # fingerprints of held tokens kept in the metadata (Meta.held): read by every
# command, so bounded; past it the tokens that expire first are forgotten first


@datarecord(frozen=True)
class LoginNeeded:
    """Why a stored token can no longer be used or refreshed: only a new login (or import) for
    its name helps. ``cause``: "invalid_grant" (the provider refused its refresh token) or
    "scope" (a refresh was answered with scopes policy does not allow)."""

    cause: str
    reason: str
    at: int  # when vault found out (UNIX seconds)


@datarecord(frozen=True)
class AwsCredentials:
    """Temporary AWS credentials STS gave for a token's ID token (vault.tokens.aws), kept with
    the token they came from until shortly before ``expiration``. ``role_arn``,
    ``session_name`` and ``duration`` (as asked, in seconds) are what they are looked up by.
    The secret access key and the session token are ``Secret``; the repr shows neither them
    nor the access key id."""

    role_arn: str
    session_name: str
    duration: int
    access_key_id: str
    secret_access_key: Secret
    session_token: Secret
    expiration: int  # UNIX seconds, as STS said (capped by vault.tokens.aws when served)
    obtained: int

    def matches(self, role_arn: str, session_name: str, duration: int) -> bool:
        return (self.role_arn, self.session_name, self.duration) == (
            role_arn,
            session_name,
            duration,
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "role_arn": self.role_arn,
            "session_name": self.session_name,
            "duration": self.duration,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key.reveal(),
            "session_token": self.session_token.reveal(),
            "expiration": self.expiration,
            "obtained": self.obtained,
        }

    @classmethod
    def from_doc(cls, doc: object) -> AwsCredentials:
        if not isinstance(doc, dict):
            raise TypeError("expected an object")
        return cls(
            role_arn=_str(doc["role_arn"]),
            session_name=_str(doc["session_name"]),
            duration=_int(doc["duration"]),
            access_key_id=_str(doc["access_key_id"]),
            secret_access_key=Secret(_str(doc["secret_access_key"])),
            session_token=Secret(_str(doc["session_token"])),
            expiration=_int(doc["expiration"]),
            obtained=_int(doc["obtained"]),
        )


def _aws_repr(self: AwsCredentials) -> str:
    return f"AwsCredentials(role_arn={self.role_arn!r}, expiration={self.expiration})"


# datarecord's repr shows every field (it replaces one the class defines): this one shows less.
AwsCredentials.__repr__ = _aws_repr  # type: ignore[method-assign,assignment]


@datarecord(frozen=True)
class Account:
    """Whom a token was issued to: the subject (``sub``, or the provider's stable user id) and
    a name a person recognises (``preferred_username``, ``email``, GitHub's ``login``)."""

    subject: str | None = None
    display: str | None = None

    def shown(self) -> str | None:
        """What a person is shown: the display name, else the subject (None: neither)."""
        return self.display or self.subject

    def to_doc(self) -> dict[str, str]:
        doc: dict[str, str] = {}
        if self.subject is not None:
            doc["subject"] = self.subject
        if self.display is not None:
            doc["display"] = self.display
        return doc

    @classmethod
    def from_doc(cls, doc: object) -> Account | None:
        if doc is None:
            return None
        if not isinstance(doc, dict):
            raise TypeError("account: expected an object")
        subject, display = doc.get("subject"), doc.get("display")
        return cls(
            subject=None if subject is None else _str(subject),
            display=None if display is None else _str(display),
        )


@datarecord(frozen=True)
class TokenRecord:
    """One stored token set. Secrets are ``Secret``; times are UNIX seconds (UTC)."""

    name: str
    provider: str
    issuer: str
    client_id: str
    token_type: str
    access_token: Secret
    refresh_token: Secret | None
    id_token: Secret | None
    scopes: tuple[str, ...]
    issued_at: int  # when the person logged in (or imported); refresh never moves it
    expires_at: int | None
    last_refresh: int | None
    source: str = "login"  # "login" | "import"
    revoke_pending: bool = False  # prune could not reach the provider; retried next run
    extra: dict[str, Any] = field(default_factory=dict)
    needs_login: LoginNeeded | None = None  # never handed out or refreshed again
    # When a server this token was handed to refused it (git's `erase`): its next use
    # refreshes it first (or, without a refresh token, is refused: a new login is needed).
    # A refresh, a login or an import for the name clears it.
    rejected_at: int | None = None
    # AWS credentials obtained with this token (`vault aws`): deleted with it, never listed.
    aws: tuple[AwsCredentials, ...] = ()
    # Who the token belongs to, as the provider said at login (ID token claims, userinfo or
    # the provider's API): not a secret, never used for a decision. None when unknown.
    account: Account | None = None

    def whom(self) -> str | None:
        """The account shown for this token (:meth:`Account.shown`), None where unknown."""
        return None if self.account is None else self.account.shown()

    def state(self, now: float | None = None) -> str:
        """needs_login | valid | expiring | refreshable | expired"""
        t = time.time() if now is None else now
        if self.needs_login is not None:
            return "needs_login"
        if self.expires_at is None:
            return "valid"
        left = self.expires_at - t
        if left > EXPIRING_SOON:
            return "valid"
        if left > 0:
            return "expiring"
        return "refreshable" if self.refresh_token else "expired"

    def identity(self) -> Identity:
        """What policy sees of this token: the preset and the issuer it was stored under
        (never the name of the provider in today's config.yaml)."""
        from vault.login.providers import Identity

        return Identity.of_record(self.extra.get("preset"), self.issuer)

    def with_tokens(
        self,
        *,
        access_token: Secret,
        refresh_token: Secret | None,
        id_token: Secret | None,
        expires_at: int | None,
        scopes: tuple[str, ...],
        refreshed_at: int,
    ) -> TokenRecord:
        return replace(
            self,
            access_token=access_token,
            refresh_token=refresh_token,
            id_token=id_token,
            expires_at=expires_at,
            scopes=scopes,
            last_refresh=refreshed_at,
            rejected_at=None,
        )

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "provider": self.provider,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "token_type": self.token_type,
            "access_token": self.access_token.reveal(),
            "refresh_token": self.refresh_token.reveal() if self.refresh_token else None,
            "id_token": self.id_token.reveal() if self.id_token else None,
            "scopes": list(self.scopes),
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "last_refresh": self.last_refresh,
            "source": self.source,
            "revoke_pending": self.revoke_pending,
        }
        if self.extra:
            doc["extra"] = self.extra
        if self.needs_login is not None:
            mark = self.needs_login
            doc["needs_login"] = {"cause": mark.cause, "reason": mark.reason, "at": mark.at}
        if self.rejected_at is not None:  # written only when set: older versions read the rest
            doc["rejected_at"] = self.rejected_at
        if self.aws:
            doc["aws"] = [c.to_doc() for c in self.aws]
        if self.account is not None:
            doc["account"] = self.account.to_doc()
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()

    @classmethod
    def from_json(cls, name: str, raw: bytes) -> TokenRecord:
        try:
            doc = json.loads(raw)
            return cls(
                name=name,
                provider=_str(doc["provider"]),
                issuer=_str(doc["issuer"]),
                client_id=_str(doc["client_id"]),
                token_type=_str(doc["token_type"]),
                access_token=Secret(_str(doc["access_token"])),
                refresh_token=_secret_or_none(doc.get("refresh_token")),
                id_token=_secret_or_none(doc.get("id_token")),
                scopes=tuple(_str(s) for s in doc["scopes"]),
                issued_at=_int(doc["issued_at"]),
                expires_at=_int_or_none(doc.get("expires_at")),
                last_refresh=_int_or_none(doc.get("last_refresh")),
                source=_str(doc.get("source", "login")),
                revoke_pending=bool(doc.get("revoke_pending", False)),
                extra=dict(doc.get("extra") or {}),
                needs_login=_login_needed(doc.get("needs_login")),
                rejected_at=_int_or_none(doc.get("rejected_at")),
                aws=tuple(AwsCredentials.from_doc(c) for c in doc.get("aws") or ()),
                account=Account.from_doc(doc.get("account")),
            )
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            # The payload passed authentication, so this is a bug or a future format, not an
            # attack; still, never show the record (it holds secrets).
            raise IntegrityError(f"stored record {name!r} is malformed") from exc


def _str(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError("expected a string")
    return v


def _int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("expected an integer")
    return v


def _int_or_none(v: object) -> int | None:
    return None if v is None else _int(v)


def _dict_or_none(v: object) -> dict[str, Any] | None:
    if v is not None and not isinstance(v, dict):
        raise TypeError("expected an object")
    return v


def _held(v: object) -> dict[str, list[int | None]]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise TypeError("expected an object")
    out: dict[str, list[int | None]] = {}
    for key, value in v.items():
        if not isinstance(value, list) or len(value) != 2:
            raise TypeError("expected [issued_at, expires_at]")
        out[_str(key)] = [_int(value[0]), _int_or_none(value[1])]
    return out


def _login_needed(v: object) -> LoginNeeded | None:
    mark = _dict_or_none(v)
    if mark is None:
        return None
    return LoginNeeded(_str(mark["cause"]), _str(mark["reason"]), _int(mark["at"]))


def _secret_or_none(v: object) -> Secret | None:
    return None if v is None else Secret(_str(v))


@datarecord
class Meta:
    """Per-vault secrets that travel inside the encrypted payload."""

    audit_key: bytes
    state_key: bytes
    created: int
    # The audit high-water mark (seq, mac, at) as of this write of the vault: a copy of the one
    # kept with the key, so that putting back an older key file or keyring entry alone cannot
    # roll it back (vault.store.vault.Store._open takes the newer of the two).
    audit: dict[str, Any] | None = None
    # Every access token this vault has held that may still be valid: a keyed fingerprint
    # (state_key) -> [issued_at, expires_at or None]. Putting a token back (import, --force)
    # keeps the issue time it had, so max_token_age cannot be reset by re-importing it.
    held: dict[str, list[int | None]] = field(default_factory=dict)

    def held_key(self, token: Secret) -> str:
        from vault.util import mac

        return mac.hexdigest(self.state_key, b"vault held token v1\0" + token.reveal().encode())[
            :32
        ]

    def hold(self, token: Secret, issued_at: int, expires_at: int | None, now: float) -> None:
        """Remember ``token`` (the earliest issue time wins). When more than MAX_HELD are held,
        the expired are forgotten, then the ones that expire first, down to three quarters."""
        key = self.held_key(token)
        seen = self.held.get(key)
        if seen is not None and seen[0] is not None and seen[0] <= issued_at:
            issued_at = seen[0]
        self.held[key] = [issued_at, expires_at]
        if len(self.held) <= MAX_HELD:
            return  # constant time per put; the expired are dropped once the map is full
        live = {k: v for k, v in self.held.items() if v[1] is None or v[1] > now}
        if len(live) > MAX_HELD * 3 // 4:  # room for a quarter more before the next sweep
            others = [k for k in live if k != key]  # never the token being held now
            order = sorted(others, key=lambda k: (live[k][1] is None, live[k][1] or 0))
            for k in order[: len(live) - MAX_HELD * 3 // 4]:
                del live[k]
        self.held = live

    def first_held(self, token: Secret) -> int | None:
        seen = self.held.get(self.held_key(token))
        return None if seen is None else seen[0]

    # Audit events of a change the vault holds whose records may not be in the log yet (a
    # provider's answer is written to the vault before its record: vault.store.vault.Store.edit):
    # {"after": {"seq", "mac"} | None, "at": UNIX seconds, "events": [...]}. "after" is where
    # the log ended when they were journaled: a log that has gone past it holds them.
    pending: dict[str, Any] | None = None
    # The Ed25519 key that signs the audit chain's heads (vault.audit.signing): its 32-byte
    # seed in base64. Made with the vault, or by the first command that writes a vault made
    # before it existed; kept by `vault rekey` (it identifies the vault to auditors).
    signing_key: Secret | None = None

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "v": 1,
            "audit_key": base64.b64encode(self.audit_key).decode(),
            "state_key": base64.b64encode(self.state_key).decode(),
            "created": self.created,
        }
        if self.audit is not None:
            doc["audit"] = self.audit
        if self.held:
            doc["held"] = self.held
        if self.pending is not None:
            doc["pending"] = self.pending
        if self.signing_key is not None:
            doc["signing_key"] = self.signing_key.reveal()
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Meta:
        try:
            doc = json.loads(raw)
            return cls(
                audit_key=base64.b64decode(doc["audit_key"], validate=True),
                state_key=base64.b64decode(doc["state_key"], validate=True),
                created=_int(doc["created"]),
                audit=_dict_or_none(doc.get("audit")),
                held=_held(doc.get("held")),
                pending=_dict_or_none(doc.get("pending")),
                signing_key=_signing_key(doc.get("signing_key")),
            )
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise IntegrityError("vault metadata is malformed") from exc

    @classmethod
    def new(cls) -> Meta:
        import os

        from vault.audit.signing import new_seed

        return cls(
            audit_key=os.urandom(32),
            state_key=os.urandom(32),
            created=int(time.time()),
            signing_key=new_seed(),
        )


def _signing_key(v: object) -> Secret | None:
    if v is None:
        return None
    if len(base64.b64decode(_str(v), validate=True)) != 32:
        raise ValueError("the audit signing key is not 32 bytes")
    return Secret(_str(v))


def find_record(payload: bytes, name: str) -> bytes | None:
    """The JSON of ``name`` in ``payload``, without parsing any other record."""
    needle = b"\n" + name.encode() + b"\t"
    start = payload.find(needle)
    if start < 0:
        return None
    start += len(needle)
    end = payload.find(b"\n", start)
    if end < 0:
        raise IntegrityError("vault payload is malformed")
    return payload[start:end]


def split_payload(payload: bytes) -> tuple[Meta, dict[str, bytes]]:
    """Meta and every record's raw JSON by name."""
    if not payload.startswith(PAYLOAD_MAGIC):
        raise IntegrityError("vault payload is malformed (bad magic)")
    body = payload[len(PAYLOAD_MAGIC) :]
    meta: Meta | None = None
    records: dict[str, bytes] = {}
    for line in body.split(b"\n"):
        if not line:
            continue
        name, sep, raw = line.partition(b"\t")
        if not sep:
            raise IntegrityError("vault payload is malformed (a line has no name)")
        if name == META_NAME:
            meta = Meta.from_json(raw)
        else:
            try:
                records[name.decode()] = raw
            except UnicodeDecodeError:
                raise IntegrityError("vault payload is malformed (a name is not UTF-8)") from None
    if meta is None:
        raise IntegrityError("vault payload is malformed (no metadata)")
    return meta, records


def meta_of(payload: bytes) -> Meta:
    start = len(PAYLOAD_MAGIC)
    prefix = META_NAME + b"\t"
    if not payload.startswith(PAYLOAD_MAGIC) or payload[start : start + len(prefix)] != prefix:
        raise IntegrityError("vault payload is malformed (no metadata)")
    end = payload.find(b"\n", start)
    return Meta.from_json(payload[start + len(prefix) : end])


def with_meta(payload: bytes, meta: Meta) -> bytes:
    """``payload`` with its metadata line replaced by ``meta`` (the records left as they are)."""
    meta_of(payload)  # checks the shape
    end = payload.find(b"\n", len(PAYLOAD_MAGIC))
    return PAYLOAD_MAGIC + META_NAME + b"\t" + meta.to_json() + payload[end:]


def join_payload(meta: Meta, records: Iterable[tuple[str, bytes]]) -> bytes:
    parts = [PAYLOAD_MAGIC, META_NAME, b"\t", meta.to_json(), b"\n"]
    for name, raw in sorted(records):
        parts += [name.encode(), b"\t", raw, b"\n"]
    return b"".join(parts)
