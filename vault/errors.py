"""Every error vault reports to a person, each with its documented exit code.

The core raises these; ``vault.cli.main.main`` is the one place that catches them, prints one
line (plus an optional hint) to stderr and exits with ``exit_code``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_AUTH = 4
EXIT_POLICY = 5
EXIT_INTEGRITY = 6
EXIT_NETWORK = 7
EXIT_INTERRUPTED = 130


class VaultError(Exception):
    """Base of every expected failure. ``str(err)`` is the one-line message."""

    exit_code: int = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(VaultError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class ConfigError(VaultError):
    """config.yaml or a policy file is invalid or unreadable."""

    exit_code = EXIT_CONFIG


class AuthError(VaultError):
    """Authentication failed or is needed (denied, expired, unknown name)."""

    exit_code = EXIT_AUTH

    def __init__(self, message: str, *, hint: str | None = None, code: str = "auth") -> None:
        super().__init__(message, hint=hint)
        self.code = code


class NotFoundError(AuthError):
    """No token is stored under the asked name."""

    @classmethod
    def for_name(cls, name: str) -> NotFoundError:
        return cls(
            f"no token named {name!r} in the vault",
            hint="`vault list` shows the stored names; `vault login` or `vault import` adds one",
            code="unknown_name",
        )


class PolicyError(VaultError):
    """Refused by policy; the message names the rule and the file it came from."""

    exit_code = EXIT_POLICY

    def __init__(
        self, message: str, *, rule: str = "", source: str = "", hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.rule = rule
        self.source = source


class IntegrityError(VaultError):
    """The vault, its key, the key store or the audit log cannot be trusted or reached."""

    exit_code = EXIT_INTEGRITY


class KeyringUnavailable(IntegrityError):
    """The OS keyring is locked, missing, refused or did not answer in time."""


class NetworkError(VaultError):
    """The provider could not be reached or answered something unusable."""

    exit_code = EXIT_NETWORK

    def __init__(self, message: str, *, hint: str | None = None, code: str = "network") -> None:
        super().__init__(message, hint=hint)
        self.code = code
