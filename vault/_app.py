"""Per-invocation state: paths, configuration and the store, each built when first needed."""

from __future__ import annotations

import argparse
import sys
from functools import cached_property

from vault import _paths
from vault._config import Config
from vault._keys import PassphraseSource
from vault._policy import Policy
from vault._store import Store


class App:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.paths = _paths.resolve()
        self.json: bool = bool(getattr(ns, "json", False))
        self.passphrase = PassphraseSource(getattr(ns, "passphrase_file", None))

    @cached_property
    def config(self) -> Config:
        from vault import _config

        return _config.load(self.paths)

    @cached_property
    def policy(self) -> Policy:
        from vault import _policy

        return _policy.load(self.paths)

    @cached_property
    def store(self) -> Store:
        """The store, once the storage rules of policy allow the configured backend and place."""
        backend, _ = self.config.backend()
        denial = self.policy.storage_denial(backend, self.paths.vault_dir)
        if denial is not None:
            raise denial.error()
        return Store(self.paths, backend=backend, passphrase=self.passphrase)

    def store_warnings(self) -> list[str]:
        if "store" not in self.__dict__:
            return []
        return list(self.store.warnings)

    def say(self, text: str) -> None:
        """A message for the person, on stderr."""
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
