"""Holding off the signals that end a process (Ctrl-C, `kill`, a closed terminal) while an
answer that exists nowhere else is being made durable.

A refresh spends the refresh token the moment the provider answers: a rotating provider has
forgotten the old one, and one that sees it again treats that as theft and revokes the whole
grant. So from the request until the answer is in the vault, SIGINT, SIGTERM, SIGHUP and SIGQUIT
are blocked (held pending by the kernel, not lost) and delivered as soon as that is done: the
command then ends as it would have, with the answer kept. SIGKILL cannot be held; what a kill -9
inside that window costs is said in vault.store.vault.Store.edit.

The window is bounded: the request has its deadline (vault.tokens.lifecycle.REFRESH_DEADLINE),
the wait for the vault's lock after it is for other commands' local work (no command holds that
lock across a request to a provider; bounded by vault.tokens.lifecycle.KEEP_WAIT), and the
vault write is local. Only the main thread's mask is changed; vault runs no other thread then
(the keyring's worker threads have ended by the time a refresh starts; the agent, whose requests
are served on threads, holds nothing off).
"""

from __future__ import annotations

import signal
import threading

HELD = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})


class Held:
    """The terminating signals, blocked from :meth:`hold` until :meth:`release` (each
    idempotent; release delivers whatever arrived in between)."""

    def __init__(self) -> None:
        self._saved: set[int | signal.Signals] | None = None

    @property
    def holding(self) -> bool:
        return self._saved is not None

    def hold(self) -> None:
        if self._saved is None and threading.current_thread() is threading.main_thread():
            self._saved = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)

    def release(self) -> None:
        saved, self._saved = self._saved, None
        if saved is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved)
