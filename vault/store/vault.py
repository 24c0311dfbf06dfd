"""The encrypted vault: open, read, and change it under the lock.

Reads take a shared lock and never write. Every read-modify-write takes the exclusive lock,
re-reads the file, applies the change and writes it back atomically, so concurrent vault
processes (a login while cron prunes) never lose each other's changes.

Two orders of writing, both under the one lock (see ``Store.edit``):

* a change vault makes on its own (an import, a login's new token, a deletion, a use) is
  audited first: the record is appended and fsynced, then the vault is written, then the
  generation and audit mark are saved with the key. A change never exists without its record;
  a failed write of the log means the change is not made.
* a change that carries a provider's answer (``Editor.keep``: a refresh, which has spent the
  refresh token the moment the provider answered) is kept first: the vault is written with the
  change and, journaled inside it, the change's audit records (``Meta.pending``); then the
  records are appended and fsynced; then the vault is written again without the journal, its
  audit mark moved. Whatever fails after the provider's answer (the log is full, unwritable,
  damaged, or the process dies) the answer is kept; the records wait in the encrypted vault and
  the next command that writes the log writes them first, marked as recorded late. Nothing a
  record describes leaves vault before the record is fsynced: a token handed out has its
  `used` record in the log, or the command fails (exit 6) and prints nothing.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path

from vault.audit.chain import (
    DEFAULT_MAX_BYTES,
    NOT_CARRIED_OUT,
    AuditLog,
    Hwm,
    late,
    make_event,
    noted,
)
from vault.errors import IntegrityError, VaultError
from vault.fs.durable import Reserved, atomic_write, locked, remove_stale_temporaries
from vault.fs.paths import Paths, check_private_dir, ensure_private_dir, read_private_file
from vault.keys.base import BACKENDS, KeyBackend, KeyParams, Marks
from vault.keys.keyring import KeyringBackend, KeyringStore
from vault.store import format as fmt
from vault.store.model import (
    Meta,
    TokenRecord,
    find_record,
    join_payload,
    meta_of,
    split_payload,
    with_meta,
)
from vault.store.names import write_index
from vault.util.record import datarecord, field, replace
from vault.util.trace import log

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from vault.keys.passphrase import PassphraseSource
    from vault.secret import Secret


@datarecord
class Opened:
    """A vault file that passed authentication and the rollback check."""

    header: fmt.Header
    key: bytes
    payload: bytes
    meta: Meta
    stored_generation: int
    hwm: Hwm = field(default_factory=Hwm)
    size: int = 0  # of the vault file as read


@datarecord
class Snapshot:
    """A read-only view of the vault at one moment."""

    path: Path
    header: fmt.Header
    payload: bytes
    meta: Meta
    hwm: Hwm = field(default_factory=Hwm)

    def get(self, name: str) -> TokenRecord | None:
        raw = find_record(self.payload, name)
        return None if raw is None else TokenRecord.from_json(name, raw)

    def records(self) -> list[TokenRecord]:
        _, raw = split_payload(self.payload)
        return [TokenRecord.from_json(name, data) for name, data in sorted(raw.items())]


@datarecord
class Editor:
    """The records being changed inside ``Store.edit``; written back when the block ends.

    The payload is split into records only when something asks for all of them or changes
    one: `vault token` reads one record by a byte search, whatever the size of the vault."""

    meta: Meta
    payload: bytes | None = None  # the decrypted payload, until split
    header: fmt.Header | None = None
    changed: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    # The records of kept changes (``keep``), also in ``events``: journaled in the vault first.
    journal: list[dict[str, Any]] = field(default_factory=list)
    # Sign the audit chain's head after this block's records (`vault audit seal`).
    seal: bool = False
    # The vault had no audit signing key (made before there was one): one was made for it
    # now, and the vault is written with it. Nothing is signed with it until it is written.
    new_signing_key: bool = False
    _raw: dict[str, bytes] | None = None
    _expect: Callable[[int], None] | None = None  # set by Store.edit

    @property
    def raw(self) -> dict[str, bytes]:
        if self._raw is None:
            self._raw = split_payload(self.payload)[1] if self.payload is not None else {}
        return self._raw

    def audit(self, event: dict[str, Any]) -> None:
        """Record an audit event; it is written (and fsynced) before anything else."""
        self.events.append(event)

    def ensure_signing_key(self) -> None:
        """Give a vault made before there were audit signing keys one (see new_signing_key)."""
        if self.meta.signing_key is None:
            from vault.audit.signing import new_seed

            self.meta = replace(self.meta, signing_key=new_seed())
            self.new_signing_key = True

    def get(self, name: str) -> TokenRecord | None:
        if self._raw is None and self.payload is not None:
            data = find_record(self.payload, name)
        else:
            data = self.raw.get(name)
        return None if data is None else TokenRecord.from_json(name, data)

    def records(self) -> list[TokenRecord]:
        return [TokenRecord.from_json(n, d) for n, d in sorted(self.raw.items())]

    def put(self, record: TokenRecord) -> None:
        self.raw[record.name] = record.to_json()
        self.meta.hold(record.access_token, record.issued_at, record.expires_at, time.time())
        self.changed = True

    def first_held(self, token: Secret) -> int | None:
        """When ``token`` was first issued, if this vault has held it (Meta.held)."""
        return self.meta.first_held(token)

    def keep(self, record: TokenRecord, event: dict[str, Any]) -> None:
        """Put ``record``, which holds what a provider answered and exists nowhere else, and
        audit it with ``event``: the change is written even if the block then raises, and
        before the audit log (journaled with the record inside the vault until the log holds
        it; see Store.edit)."""
        self.put(record)
        self.events.append(event)
        self.journal.append(event)

    def expect_answer(self, size: int) -> None:
        """About to send a request whose answer must be kept (a refresh): from now until the
        answer is written, the signals that end a process are held (vault.util.signals), and
        ``size`` more bytes than the vault has now are reserved for it on the disk. Raises
        IntegrityError, before anything is sent, when that room cannot be had."""
        if self._expect is not None:
            self._expect(size)

    def delete(self, name: str) -> bool:
        if self.raw.pop(name, None) is None:
            return False
        self.changed = True
        return True


def params_of(header: fmt.Header) -> KeyParams:
    return KeyParams(header.key_id, header.salt, header.t_cost, header.m_cost, header.parallelism)


def _key_of(header: fmt.Header) -> tuple[object, ...]:
    """What names the key a vault file needs: the same tuple, the same key."""
    return (
        header.backend, header.vault_id, header.key_id, header.salt,
        header.t_cost, header.m_cost, header.parallelism,
    )  # fmt: skip


def header_for(backend: str, params: KeyParams, vault_id: bytes, generation: int) -> fmt.Header:
    kdf = fmt.KDF_KEYRING if backend == "keyring" else fmt.KDF_ARGON2ID
    return fmt.Header(
        kdf,
        params.key_id,
        params.t_cost,
        params.m_cost,
        params.parallelism,
        params.salt,
        vault_id,
        generation,
        os.urandom(12),
    )


class Store:
    """The vault file, its key backend and its audit log, changed together under one lock."""

    def __init__(
        self,
        paths: Paths,
        *,
        backend: str = "keyring",
        passphrase: PassphraseSource | Callable[[], PassphraseSource] | None = None,
        keyring: KeyringStore | None = None,
        audit_max_bytes: int = DEFAULT_MAX_BYTES,
        backends: dict[str, KeyBackend] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise IntegrityError(f"unknown key backend {backend!r}")
        self.paths = paths
        self.backend = backend  # the configured backend: used to create, and required to open
        self.passphrase = passphrase
        self.keyring = keyring or KeyringStore()
        self.audit_max_bytes = audit_max_bytes
        self.warnings: list[str] = []
        self.appended: list[dict[str, Any]] = []  # audit records this command wrote
        self.wrong_keys = 0  # wrong passphrases typed before the right one, not yet audited
        self._backends: dict[str, KeyBackend] = dict(backends or {})
        # Ask this vault's agent for the key first (vault.keys.agent), unless the backends
        # were given (the agent's own store) or the command must not (rekey).
        self.use_agent = backends is None

    def key_backend(self, name: str) -> KeyBackend:
        """The backend called ``name``, one instance per store; behind this vault's agent
        where one may run."""
        backend = self._backends.get(name)
        if backend is None:
            if name == "keyring":
                backend = KeyringBackend(self.keyring)
            elif name == "passphrase":
                from vault.keys.passphrase import PassphraseBackend, PassphraseSource

                given = self.passphrase() if callable(self.passphrase) else self.passphrase
                source = given or PassphraseSource()
                backend = PassphraseBackend(source, self.paths.key_file)
            else:
                raise IntegrityError(f"unknown key backend {name!r}")
            if self.use_agent:
                from vault.keys.agent import AgentBackend, socket_path

                backend = AgentBackend(backend, socket_path(str(self.paths.vault_file)))
            self._backends[name] = backend
        return backend

    # --- reading ---------------------------------------------------------------------

    def exists(self) -> bool:
        return os.path.lexists(self.paths.vault_file)

    def read(self) -> Snapshot | None:
        """The vault as it is now, or None when no vault file exists yet."""
        check_private_dir(self.paths.vault_dir)
        if not self.paths.vault_dir.exists():
            return None
        with locked(self.paths.lock_file, exclusive=False):
            opened = self._open()
        if opened is None:
            return None
        return Snapshot(
            self.paths.vault_file, opened.header, opened.payload, opened.meta, opened.hwm
        )

    def preflight(self) -> None:
        """Make sure a write will succeed key-wise before asking a person to do anything:
        the vault opens, or (no vault yet) the keyring answers / the passphrase is at hand."""
        if self.read() is not None:
            return
        self.key_backend(self.backend).probe()

    def _open(self, *, known: Opened | None = None) -> Opened | None:
        """The vault as it is on disk, authenticated and checked against rollback.

        ``known``: how this command opened it before it sent a request whose answer it now
        keeps (Answer.opened). While the file names the same key (key id and salt), that key
        opens it again, so that between the provider's answer and the vault write no agent or
        Argon2id is asked for it (each can wait, or fail, and the answer would be lost); the
        marks are read again. Where they come only with the key (the keyring's entry holds
        both: ``marks_need_unlock``) the key is read again too, for them; if that fails, the
        key and the marks as of then serve, and the answer is kept all the same."""
        path = self.paths.vault_file
        blob = read_private_file(path, "vault file", limit=fmt.MAX_FILE_SIZE)
        if blob is None:
            return None
        header = fmt.parse_header(blob, path=str(path))
        if header.backend != self.backend:
            raise IntegrityError(
                f"the vault at {path} uses the {header.backend} key backend but the "
                f"configuration asks for {self.backend}; vault never switches backends silently",
                hint="run `vault rekey` to move the vault to the configured backend, or "
                f"set key_backend: {header.backend}",
            )
        backend = self.key_backend(header.backend)
        earlier = known if known is not None and _key_of(known.header) == _key_of(header) else None
        if earlier is not None and not backend.marks_need_unlock:
            key = earlier.key
        else:
            try:
                key = backend.unlock(header.vault_id, params_of(header), where=str(path))
            except VaultError as exc:
                if earlier is None:
                    raise
                log("vault.unlock_failed", reason=exc.message, fallback="the earlier key")
                key = earlier.key
        while True:
            try:
                payload = fmt.open_sealed(header, key, blob, path=str(path))
                break
            except IntegrityError as exc:  # the key does not open the file
                if earlier is not None:
                    raise
                refusal = backend.refused(key, exc, where=str(path))
                if refusal is not None:
                    raise refusal from None
                self.wrong_keys += 1  # a passphrase retyped: audited by the next edit
                key = backend.unlock(header.vault_id, params_of(header), where=str(path))
        meta = meta_of(payload)
        try:
            marks = backend.marks(header.vault_id, meta.state_key)
            stored, kept = marks.generation, Hwm.load(marks.audit)
        except VaultError as exc:
            if earlier is None:
                raise
            log("vault.marks_failed", reason=exc.message, fallback="the marks of the earlier open")
            stored, kept = earlier.stored_generation, earlier.hwm
        hwm = _audit_mark(kept, stored, meta, header.generation)
        if header.generation < stored:
            raise IntegrityError(
                f"the vault at {path} was rolled back: its generation {header.generation} is "
                f"older than the last one written ({stored})",
                hint="an older copy of the file was put back; the file was left as it is",
            )
        return Opened(header, key, payload, meta, stored, hwm, len(blob))

    # --- changing --------------------------------------------------------------------

    def audit_log(self, meta: Meta) -> AuditLog:
        return AuditLog(
            self.paths.audit_file,
            meta.audit_key,
            max_bytes=self.audit_max_bytes,
            signing_key=meta.signing_key,
        )

    @contextlib.contextmanager
    def edit(
        self, *, answer: Answer | None = None, timeout: float | None = None
    ) -> Iterator[Editor]:
        """Exclusive read-modify-write, written when the block ends. ``timeout``: how long to
        wait for the lock (VAULT_LOCK_TIMEOUT by default; vault.fs.durable.Busy after that).
        ``answer``: the reservation (Editor.expect_answer) this block makes or uses, when it
        must outlive the block (a refresh lets the lock go while the provider answers, then
        keeps the answer in a later block): the caller ends it, not the block.

        Audit events recorded on the editor are appended (and fsynced) first; then the vault is
        written if it changed; then the generation and the audit high-water mark are saved with
        the key. If the audit append fails, nothing else happens. If the block raises, its audit
        events (a denial, say) are still written.

        A change kept with ``Editor.keep`` (a provider's answer) goes the other way round: the
        vault is written first, the change's records journaled inside it (``Meta.pending``);
        then every record is appended; then the vault is written again without the journal.
        It is written even if the block raises. If the append fails the command fails (the
        error says the change was kept), nothing the records describe leaves vault, and the
        journal stays: the next command that appends writes those records first, each marked
        as recorded late. Where each crash or failure leaves things:

        * before the first vault write: the old vault, the old log (the answer is lost: a
          provider that rotates refresh tokens will refuse the old one, and the token is then
          marked as needing a new login; signals other than SIGKILL are held off until the
          answer is written, and the room for it was reserved before the request was sent;
          a refresh lets this lock go while the provider answers and takes it again to keep
          the answer, in a block given the same ``answer``: vault.tokens.lifecycle);
        * after it, before or during the append: the new vault, journal included; the old log
          (a torn line at worst, set aside later); the next append writes the journal first;
        * after the append, before the second write: the journal is still in the vault, but the
          log has gone past where it ended then (``pending.after``), which says it holds them:
          they are not written twice, and the next vault write drops the journal.

        `vault audit verify` reports records journaled but not yet in the log (a warning, and
        "pending" in --json); it never reports them as tampering."""
        ensure_private_dir(self.paths.vault_dir)
        with locked(self.paths.lock_file, exclusive=True, timeout=timeout):
            remove_stale_temporaries(self.paths.vault_dir, self.paths.vault_file.name)
            remove_stale_temporaries(self.paths.vault_dir, self.paths.key_file.name)
            ours = answer is None
            if answer is None:
                answer = Answer(self)
            opened = self._open(known=answer.opened)
            if opened is None:
                editor = Editor(Meta.new())
            else:
                editor = Editor(opened.meta, opened.payload, header=opened.header)
                editor.ensure_signing_key()
                if self.wrong_keys:
                    editor.audit(_wrong_keys_event(self.wrong_keys))
                    self.wrong_keys = 0
            editor._expect = functools.partial(answer.expect, opened)
            try:
                try:
                    yield editor
                except BaseException:
                    if (editor.events or editor.journal) and opened is not None:
                        try:
                            self._commit(
                                opened, editor, write_vault=bool(editor.journal), answer=answer
                            )
                        except VaultError as exc:
                            self.warnings.append(f"the audit record could not be written: {exc}")
                    raise
                self._commit(opened, editor, write_vault=editor.changed, answer=answer)
            finally:
                if ours:
                    answer.end()

    def signing_key(self) -> Secret:
        """The vault's audit signing key (vault.audit.signing), made and written into the
        vault first if it has none yet. Raises IntegrityError when there is no vault."""
        if self.read() is None:
            raise IntegrityError("there is no vault, so there is no audit signing key yet")
        with self.edit() as editor:  # writes the metadata only if the key is new
            key = editor.meta.signing_key
        assert key is not None
        return key

    def seal(self) -> dict[str, Any]:
        """Sign the audit chain's head now (`vault audit seal`): appends a ``chain_signed``
        record and returns it. Raises IntegrityError when there is no vault or the log cannot
        be written."""
        self.signing_key()  # in the vault before anything is signed with it
        before = len(self.appended)
        with self.edit() as editor:
            editor.seal = True
        signed = [r for r in self.appended[before:] if r.get("event") == "chain_signed"]
        if not signed:
            raise IntegrityError("the audit chain's head could not be signed")
        return signed[-1]

    def record_event(self, event: dict[str, Any]) -> None:
        """Write one audit event on its own (a refusal before anything else happened). Best
        effort: the refusal stands even if it cannot be recorded (no vault yet, keyring down),
        and a failure to record it becomes a warning."""
        try:
            with self.edit() as editor:
                editor.audit(event)
        except VaultError as exc:
            self.warnings.append(f"the refusal could not be audited: {exc.message}")

    def _commit(
        self,
        opened: Opened | None,
        editor: Editor,
        *,
        write_vault: bool,
        answer: Answer | None = None,
    ) -> None:
        wanted = editor.events or editor.seal or editor.new_signing_key
        if not write_vault and (not wanted or opened is None):
            return  # nothing to write; no vault is created just to hold an audit record
        if opened is None:
            self._create(editor)
            return
        if editor.journal:
            self._commit_kept(opened, editor, answer)
            return
        header = opened.header
        journaled = self._unlogged(editor.meta)
        before = len(self.appended)
        hwm = self._append_audit(editor, opened.hwm, late=journaled)
        written = self.appended[before:]  # with any record the log added (rotation, torn line)
        now = time.time()
        generation = header.generation
        settle = editor.meta.pending is not None or editor.new_signing_key
        if write_vault or settle or _vault_mark_due(written, opened.meta.audit, now):
            # The vault holds the audit mark too: anything but a run of successful uses writes
            # it (with the records unchanged if only the mark moved), so an older key file or
            # keyring entry put back alone cannot hide an issue, a deletion or a denial. The log
            # now holds any records journaled before (appended now, or before a crash): the
            # journal goes, and the mark inside moves past them.
            generation = max(header.generation, opened.stored_generation) + 1
            meta = replace(editor.meta, audit=hwm.dump(int(now)), pending=None)
            if write_vault:
                payload = join_payload(meta, editor.raw.items())
            else:
                payload = with_meta(opened.payload, meta)
            self._write_vault(header.next_write(generation), opened.key, payload)
        else:
            generation = max(generation, opened.stored_generation)
            # Marks older than the vault are saved now: they are what catches a rollback of it.
            current = opened.stored_generation >= header.generation
            if current and _mark_can_wait(written, opened.hwm, now):
                return
        self._save_state(header, opened.key, generation=generation, hwm=hwm, meta=editor.meta)

    def _commit_kept(self, opened: Opened, editor: Editor, answer: Answer | None) -> None:
        """The vault first, with the records of the kept change journaled; then the log; then
        the vault without the journal (see ``edit``)."""
        now = int(time.time())
        audit_log = self.audit_log(editor.meta)
        earlier = self._unlogged(editor.meta, raw=True)
        try:
            seq, mac = audit_log.end()
            after: dict[str, Any] | None = {"seq": seq, "mac": mac}
        except IntegrityError:
            after = None  # unreadable: the journal cannot tell later whether the log holds it
        pending = {
            "after": after,
            "events": [*earlier, *({"at": now, "event": e} for e in editor.journal)],
        }
        generation = max(opened.header.generation, opened.stored_generation) + 1
        header = opened.header.next_write(generation)
        meta = replace(editor.meta, audit=opened.hwm.dump(now), pending=pending)
        payload = join_payload(meta, editor.raw.items())
        try:
            reserved = answer.take() if answer else None
            self._write_vault(header, opened.key, payload, reserved=reserved)
        except IntegrityError as exc:
            self._record_lost(opened, editor, exc)
            raise IntegrityError(
                f"{exc.message}; {ANSWER_LOST}",
                hint="check the disk holding the vault; if the next refresh is refused, log in "
                "again",
            ) from exc
        try:
            hwm = self._append_audit(editor, opened.hwm, late=_late(earlier))
        except IntegrityError as exc:
            if answer is not None:
                answer.release()
            self._save_state_or_warn(
                header, opened.key, generation=generation, hwm=opened.hwm, meta=meta
            )
            raise IntegrityError(
                f"{exc.message.removesuffix(NOT_CARRIED_OUT)}; {KEPT_WITHOUT_RECORD}",
                hint=exc.hint
                or "free the space or fix the log (`vault audit verify`), then "
                "run the command again",
            ) from exc
        if answer is not None:
            answer.release()
        try:
            meta = replace(meta, audit=hwm.dump(int(time.time())), pending=None)
            header = header.next_write(generation + 1)
            self._write_vault(header, opened.key, with_meta(payload, meta))
            generation += 1
        except IntegrityError as exc:
            # The log holds the records and has gone past where the journal says it ended:
            # the journal is settled, and goes at the next write. (Had the log's end been
            # unreadable when it was journaled, the next append writes the records again,
            # marked late: a duplicate, never a loss.)
            self.warnings.append(f"the vault could not be written again after the audit log: {exc}")
            header = opened.header.next_write(generation)
        self._save_state(header, opened.key, generation=generation, hwm=hwm, meta=editor.meta)

    def _record_lost(self, opened: Opened, editor: Editor, exc: IntegrityError) -> None:
        """The vault could not be written with a provider's answer (it is lost): the log gets
        the kept change's records as failures saying so, if it can (a warning if not), with
        whatever else the command recorded and nothing journaled, as any change-less command."""
        lost = [noted(e, f"not kept: {exc.message}", outcome="failure") for e in editor.journal]
        others = [e for e in editor.events if not any(e is j for j in editor.journal)]
        record = Editor(editor.meta, opened.payload, header=opened.header, events=[*lost, *others])
        try:
            self._commit(opened, record, write_vault=False)
        except VaultError as failure:
            self.warnings.append(f"the audit record could not be written: {failure}")

    def unlogged(self, meta: Meta) -> list[dict[str, Any]]:
        """The audit records the vault (as of ``meta``) holds journaled that the log does not:
        a kept change whose log could not be written (see ``edit``), as the next command that
        writes the log will append them. Reads only."""
        return self._unlogged(meta)

    def _unlogged(self, meta: Meta, *, raw: bool = False) -> list[dict[str, Any]]:
        """The journal of an earlier kept change (``Meta.pending``) that the log does not hold
        yet: all of it, unless the log has gone past where it ended when the journal was made.
        ``raw``: as journal entries ({"at", "event"}); else the events as appended now, late."""
        pending = meta.pending
        if not pending:
            return []
        entries = [
            e
            for e in pending.get("events") or []
            if isinstance(e, dict)
            and isinstance(e.get("event"), dict)
            and isinstance(e.get("at"), int)
        ]
        after = pending.get("after")
        if entries and isinstance(after, dict) and isinstance(after.get("seq"), int):
            try:
                seq, _ = self.audit_log(meta).end()
            except IntegrityError:
                seq = -1  # the append will say what is wrong with the log
            if seq > after["seq"]:
                return []
        return entries if raw else _late(entries)

    def _append_audit(
        self, editor: Editor, hwm: Hwm, *, late: list[dict[str, Any]] | None = None
    ) -> Hwm:
        events = [*(late or ()), *editor.events]
        if not events and not editor.seal:
            return hwm
        log("audit.append", events=[e["event"] for e in events], after=hwm.seq, seal=editor.seal)
        audit_log = self.audit_log(editor.meta)
        if editor.new_signing_key:
            audit_log.signing_key = None  # not yet in the vault: nothing is signed with it
        new_hwm, records = audit_log.append(events, hwm, seal=editor.seal)
        self.warnings.extend(audit_log.warnings)
        self.appended.extend(records)
        return new_hwm

    def _save_state_or_warn(
        self, header: fmt.Header, key: bytes, *, generation: int, hwm: Hwm, meta: Meta
    ) -> None:
        try:
            self._save_state(header, key, generation=generation, hwm=hwm, meta=meta)
        except VaultError as exc:
            self.warnings.append(f"the generation could not be saved with the key: {exc}")

    def _save_state(
        self, header: fmt.Header, key: bytes, *, generation: int, hwm: Hwm, meta: Meta
    ) -> None:
        marks = Marks(generation, hwm.dump(int(time.time())))
        backend = self.key_backend(header.backend)
        warning = backend.save_marks(header.vault_id, params_of(header), key, marks, meta.state_key)
        if warning:
            self.warnings.append(warning)

    def _create(self, editor: Editor) -> None:
        meta = editor.meta
        self._set_aside_foreign_log()
        vault_id = os.urandom(16)
        # The key, and for the passphrase backend its key file, go first: a vault whose key
        # is not where it says could not be opened.
        params, key = self.key_backend(self.backend).new_key(
            vault_id, meta.state_key, Marks(0), confirm=True
        )
        header = header_for(self.backend, params, vault_id, 1)
        hwm = self._append_audit(editor, Hwm())
        payload = join_payload(replace(meta, audit=hwm.dump(int(time.time()))), editor.raw.items())
        self._write_vault(header, key, payload)
        self._save_state(header, key, generation=1, hwm=hwm, meta=meta)

    def reset_audit(self, reason: str) -> tuple[list[str], int]:
        """Set the current audit log aside (renamed, never deleted) and start a new chain whose
        first record says why and where the old one went. For a log `vault audit verify`
        found damaged: the operations it blocks may then go on, on a fresh, verifiable chain."""
        with locked(self.paths.lock_file, exclusive=True):
            opened = self._open()
            if opened is None:
                raise IntegrityError("there is no vault, so there is no audit log to reset")
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            # Records journaled in the vault that the old log never got start the new chain,
            # after the record of the reset: the old log is damaged, but they are not.
            journaled = self._unlogged(opened.meta)
            moved = []
            for path in AuditLog(self.paths.audit_file, b"").files(checked=False):
                target = path.with_name(f"{path.name}.reset-{stamp}")
                os.rename(path, target)
                moved.append(str(target))
            editor = Editor(opened.meta)
            editor.ensure_signing_key()
            editor.audit(
                make_event(
                    "log_reset",
                    outcome="warning",
                    reason=f"{reason}; the previous log (up to record {opened.hwm.seq}) was set "
                    f"aside as {', '.join(moved) or 'nothing'}",
                )
            )
            editor.events.extend(journaled)
            hwm = self._append_audit(editor, Hwm())
            # The new chain's mark goes into the vault too: the mark it held (of the old chain)
            # must not make the new log look truncated.
            generation = max(opened.header.generation, opened.stored_generation) + 1
            meta = replace(editor.meta, audit=hwm.dump(int(time.time())), pending=None)
            header = opened.header.next_write(generation)
            self._write_vault(header, opened.key, with_meta(opened.payload, meta))
            self._save_state(header, opened.key, generation=generation, hwm=hwm, meta=meta)
            return moved, opened.hwm.seq

    def _set_aside_foreign_log(self) -> None:
        """A new vault has a new audit key: a log left from an earlier vault cannot continue
        its chain, so it is kept beside, renamed, rather than appended to or deleted."""
        log = AuditLog(self.paths.audit_file, b"")
        files = log.files(checked=False)  # renamed, never read
        if not files:
            return
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for path in files:
            target = path.with_name(f"{path.name}.orphaned-{stamp}")
            os.rename(path, target)
        self.warnings.append(
            f"an audit log from an earlier vault was kept as {self.paths.audit_file}.orphaned-"
            f"{stamp}; it cannot be verified with the new vault's key"
        )

    def _write_vault(
        self, header: fmt.Header, key: bytes, payload: bytes, *, reserved: Reserved | None = None
    ) -> None:
        log("vault.write", generation=header.generation, backend=header.backend, bytes=len(payload))
        blob = fmt.seal(header, key, payload)
        atomic_write(self.paths.vault_file, blob, what="vault file", reserved=reserved)
        write_index(self.paths.vault_file, payload)  # names only, for shell completion

    # --- rekey -----------------------------------------------------------------------

    def rekey(self, *, new_passphrase: bool = False) -> tuple[str, str, int]:
        """Rotate the data key, moving the vault to the configured backend if it differs.
        Returns (old backend, new backend, new generation). Every step leaves a vault that
        opens: the new key is stored before the file that needs it is written. After a move,
        the old backend forgets the vault's key; if it cannot (a keyring that asks for a
        confirmation, is locked or does not answer), the move is kept and IntegrityError says
        that the old key remains: rekey never reports success while it does."""
        ensure_private_dir(self.paths.vault_dir)
        # The old key is read from its backend itself, not from an agent: the keyring backend
        # keeps the new key beside the old one in the entry it read, until the file is written.
        self.use_agent = False
        self._backends.clear()
        # The agent forgets the key first, while it can still audit that with it.
        self._agent_forget("the vault is being rekeyed")
        return self._rekey(new_passphrase=new_passphrase)

    def _agent_forget(self, reason: str) -> None:
        """Have this vault's agent, if one runs, drop a key the vault no longer uses."""
        from vault.keys.agent import call, socket_path

        try:
            call({"op": "lock", "reason": reason}, path=socket_path(str(self.paths.vault_file)))
        except VaultError as exc:
            self.warnings.append(f"the agent could not be told to forget the old key: {exc}")

    def _rekey(self, *, new_passphrase: bool) -> tuple[str, str, int]:
        target = self.backend
        with locked(self.paths.lock_file, exclusive=True):
            header = self._peek_header()
            if header is None:
                raise IntegrityError("there is no vault to rekey yet")
            self.backend = header.backend  # open with what the file uses
            try:
                opened = self._open()
            finally:
                self.backend = target
            assert opened is not None
            old = opened.header
            generation = max(old.generation, opened.stored_generation) + 1
            vault_id = old.vault_id
            meta = opened.meta
            rotated = Editor(meta)
            rotated.ensure_signing_key()  # kept, not rotated: it identifies the vault
            meta = rotated.meta
            rotated.audit(
                make_event(
                    "key_rotated",
                    reason=f"data key rotated ({old.backend} backend to {target} backend)",
                )
            )
            # The new key is durable (with the marks so far) before the file that needs it.
            params, key = self.key_backend(target).new_key(
                vault_id,
                meta.state_key,
                Marks(generation - 1, opened.hwm.dump(opened.hwm.at)),
                confirm=True,
                # Moving from the keyring, the configured passphrase source is the new one.
                new_secret=new_passphrase and old.kdf == fmt.KDF_ARGON2ID,
            )
            hwm = self._append_audit(rotated, opened.hwm, late=self._unlogged(meta))
            header = header_for(target, params, vault_id, generation)
            meta = replace(meta, audit=hwm.dump(int(time.time())), pending=None)
            payload = with_meta(opened.payload, meta)
            self._write_vault(header, key, payload)
            self._save_state(header, key, generation=generation, hwm=hwm, meta=meta)
            if old.backend != target:
                left = self.key_backend(old.backend).retire(vault_id)
                if left:  # the move stands (the file needs the new key), the old key stays
                    raise IntegrityError(
                        f"the vault moved from the {old.backend} to the {target} backend "
                        f"(generation {generation}), but its old data key is still there: {left}",
                        hint="the vault no longer needs that key: remove it by hand, e.g. the "
                        f"item \"Password for '{vault_id.hex()}' on 'vault'\" in the keyring",
                    )
            return old.backend, header.backend, generation

    def _peek_header(self) -> fmt.Header | None:
        blob = read_private_file(self.paths.vault_file, "vault file", limit=fmt.MAX_FILE_SIZE)
        if blob is None:
            return None
        return fmt.parse_header(blob, path=str(self.paths.vault_file))


def _wrong_keys_event(count: int) -> dict[str, Any]:
    """The record of passphrases typed wrong before the right one opened the vault (those of
    a command that never opened it cannot be recorded: the audit key is inside the vault)."""
    return make_event(
        "unlock_failed",
        outcome="failure",
        reason=f"{count} wrong passphrase{'s' if count > 1 else ''} typed before the right one",
    )


# How long the audit mark kept with the key may lag behind successful uses (see _mark_can_wait).
MARK_INTERVAL = 60
# ... and the copy of it inside the vault (see _vault_mark_due).
VAULT_MARK_INTERVAL = 3600


def _audit_mark(kept: Hwm, kept_generation: int, meta: Meta, generation: int) -> Hwm:
    """The audit mark in force: the newer of the one kept with the key (the key file, the
    keyring entry) and the one the vault holds (as of its last write).

    The key's marks name the generation they were saved at. Marks older than the vault
    (``kept_generation < generation``) were saved before this write of the vault: a crash
    between the two writes, or an older key file or keyring entry put back on its own. The mark
    inside the vault is then the newer one, whatever the seq says (`audit reset` starts a new
    chain at 1 and writes the vault). At the same generation the key's mark was saved after the
    vault's, so it can only be as new or newer: a lower seq is taken as the vault's."""
    if meta.audit is None:
        return kept  # a vault last written before it held the mark
    inside = Hwm.load(meta.audit)
    if kept_generation < generation or inside.seq > kept.seq:
        return inside
    return kept


def _vault_mark_due(
    events: list[dict[str, Any]], inside: dict[str, Any] | None, now: float
) -> bool:
    """Whether the vault must be written, for the audit mark it holds, after these events.

    Anything but successful uses (an issue, a deletion, a denial, a failure, a rotation of the
    log) writes it: the mark kept with the key alone could be rolled back (an older key file
    or keyring entry put back) and the log cut to match. Successful uses write it at most once
    a VAULT_MARK_INTERVAL, so `vault token` does not rewrite the vault on every use, and a key
    rolled back alone can hide at most that long a run of successful uses."""
    if not all(e.get("event") == "used" and e.get("outcome") == "success" for e in events):
        return True
    if not events:
        return False
    at = inside.get("at") if inside is not None else None
    return not isinstance(at, int) or not 0 <= now - at < VAULT_MARK_INTERVAL


def _mark_can_wait(events: list[dict[str, Any]], saved: Hwm, now: float) -> bool:
    """Whether saving the audit high-water mark with the key can be skipped after these events.

    The mark (kept in the keyring, or in the passphrase backend's MAC'd key file) is what
    makes a truncated audit log detectable. Saving it is a keyring write or an fsynced file,
    on every `vault token` (bench/NOTES.md). So after nothing but successful uses it is saved at
    most once a MARK_INTERVAL: a truncation can then hide at most that long a run of uses, and
    never an issue, refresh, revocation, prune, denial or failure, which always move it."""
    if not 0 <= now - saved.at < MARK_INTERVAL:
        return False  # due, or the clock went back: save
    return all(e.get("event") == "used" and e.get("outcome") == "success" for e in events)


# What a failure to write the vault says when it was to keep a provider's answer.
ANSWER_LOST = (
    "the provider's answer could not be kept and nothing was handed out: if the provider "
    "rotated the refresh token, the next refresh is refused and the token needs a new login"
)

# What a failure to write the log says when the change was kept anyway (Store._commit_kept).
KEPT_WITHOUT_RECORD = (
    "the provider's answer was saved in the vault, but nothing was handed out; its audit "
    "record is kept in the vault and written to the log by the next command that can"
)


def _late(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [late(e["event"], e["at"]) for e in entries]


class Answer:
    """What a request whose answer must be kept (a refresh; Editor.expect_answer) has from
    before it is sent until the answer is written: the terminating signals held, and room on
    the disk reserved. Made by Store.edit for its own block; or by a caller that lets the
    vault's lock go while the provider answers, which gives it to each block from the one
    that reserves (``expect``) to the one that keeps the answer, and ends it itself."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held: Any = None  # vault.util.signals.Held, imported when first needed
        self.reserved: Reserved | None = None
        self.opened: Opened | None = None  # the vault as the room was reserved for it

    def expect(self, opened: Opened | None, size: int) -> None:
        if self.held is None:
            from vault.util.signals import Held

            self.held = Held()
            self.held.hold()
        if self.reserved is None and opened is not None:
            self.reserved = Reserved(
                self.store.paths.vault_file, opened.size + size, what="the vault file"
            )
            self.opened = opened

    def take(self) -> Reserved | None:
        reserved, self.reserved = self.reserved, None
        return reserved

    def release(self) -> None:
        if self.held is not None:
            self.held.release()

    def end(self) -> None:
        self.release()
        reserved = self.take()
        if reserved is not None:
            reserved.discard()
