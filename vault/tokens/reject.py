"""A token a server refused (git's credential `erase`): marked so that its next use refreshes
it first, and audited. Nothing here prints."""

from __future__ import annotations

import hmac
import time

from vault.tokens.events import for_record
from vault.tokens.use import provider_origins
from vault.util.record import replace

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable

    from vault.secret import Secret
    from vault.store.vault import Store

    Origin = tuple[str, str, int]

REJECTED_REASON = "the server it was sent to refused it"


def mark_rejected(
    store: Store,
    name: str,
    presented: Secret,
    *,
    origin: Origin,
    command: str,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Under the vault's lock: when ``presented`` is the access token ``name`` holds now
    (compared in constant time) and ``origin`` is its provider's, mark the record rejected
    (``rejected_at``: the first rejection's time is kept until a refresh, login or import
    clears it) and audit a `rejected` event with ``command``; True. Anything else (no such
    name, another host, a token this vault does not hold for the name, a secret of another
    length) changes and audits nothing: False. The presented secret is never recorded."""
    with store.edit() as editor:
        record = editor.get(name)
        if record is None or origin not in provider_origins(record):
            return False
        ours = record.access_token.reveal().encode("utf-8", "surrogateescape")
        theirs = presented.reveal().encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(ours, theirs):
            return False
        if record.rejected_at is None:
            editor.put(replace(record, rejected_at=int(clock())))
        editor.audit(
            for_record(
                "rejected",
                record,
                editor.meta.audit_key,
                reason=REJECTED_REASON,
                command=command,
            )
        )
    return True
