"""Per-invocation state: paths, configuration and the store, each built when first needed."""

from __future__ import annotations

import sys
from functools import cached_property

from vault.fs import paths as _paths
from vault.policy.config import Config
from vault.policy.rules import Policy
from vault.store.vault import Store

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from vault.keys.passphrase import PassphraseSource
    from vault.store.model import TokenRecord


class App:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.paths = _paths.resolve()
        self.json: bool = bool(getattr(ns, "json", False))

    @cached_property
    def passphrase(self) -> PassphraseSource:
        """Where a passphrase comes from (--passphrase-file, VAULT_PASSPHRASE_FILE, the
        terminal: never for a command that sets ``never_prompt`` on its namespace, as the
        helpers other programs start do); made when the passphrase backend first needs it."""
        from vault.keys.passphrase import PassphraseSource

        return PassphraseSource(
            getattr(self.ns, "passphrase_file", None),
            interactive=not getattr(self.ns, "never_prompt", False),
        )

    @cached_property
    def config(self) -> Config:
        from vault.policy import config as _config

        return _config.load(self.paths)

    @cached_property
    def policy(self) -> Policy:
        from vault.policy import rules as _policy

        return _policy.load(self.paths)

    def unchecked_store(self) -> Store:
        """The store without the storage rules: only for `vault prune`, whose job is to empty
        a vault that policy no longer allows where it is."""
        if "store" in self.__dict__:
            return self.store
        backend, _ = self.config.backend()
        store = Store(
            self.paths,
            backend=backend,
            passphrase=lambda: self.passphrase,
            audit_max_bytes=self.config.audit_max_bytes,
        )
        self.__dict__["store"] = store
        return store

    @cached_property
    def store(self) -> Store:
        """The store, once the storage rules of policy allow the configured backend and place."""
        backend, _ = self.config.backend()
        denial = self.policy.storage_denial(backend, self.paths.vault_dir)
        if denial is not None:
            raise denial.error()
        return Store(
            self.paths,
            backend=backend,
            passphrase=lambda: self.passphrase,
            audit_max_bytes=self.config.audit_max_bytes,
        )

    def use_token(
        self,
        name: str,
        *,
        min_valid: int,
        command: str | Callable[[TokenRecord], str],
        to_terminal: bool = False,
        want: str = "access_token",
        origin: tuple[str, str, int] | None = None,
    ) -> TokenRecord:
        """vault.tokens.use.use_token on this invocation's store, policy and providers."""
        from vault.tokens.use import use_token

        return use_token(
            self.store,
            self.policy,
            self.config.providers,
            name,
            min_valid=min_valid,
            command=command,
            to_terminal=to_terminal,
            want=want,
            origin=origin,
        )

    def audit_only(self, event: dict[str, Any]) -> None:
        """Write one audit event on its own (a refusal before anything else happened). Best
        effort: the refusal stands even if it cannot be recorded (no vault yet, keyring down)."""
        from vault.errors import VaultError

        try:
            store = self.store
        except VaultError as exc:  # the storage rules refuse the vault itself
            self.say(f"vault: warning: the refusal could not be audited: {exc.message}")
            return
        store.record_event(event)

    def forward_audit(self) -> None:
        """Send what this command appended to the audit log on to syslog, when configured.
        The local, fsynced log is the record; forwarding is best effort and says so."""
        if "store" not in self.__dict__ or not self.store.appended:
            return
        from vault.errors import VaultError

        try:
            config = self.config
        except VaultError:
            return
        if not config.audit_syslog:
            return
        from vault.audit.forward import SyslogError, sink_for

        try:
            sink = sink_for(config)
            if sink is not None:
                with sink:
                    sink.send_many(self.store.appended)
        except SyslogError as exc:
            self.store.warnings.append(f"audit events not forwarded to syslog: {exc}")
        self.store.appended.clear()

    def store_warnings(self) -> list[str]:
        if "store" not in self.__dict__:
            return []
        return list(self.store.warnings)

    def say(self, text: str) -> None:
        """A message for the person, on stderr."""
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
