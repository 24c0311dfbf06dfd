"""config.yaml: named providers, preferences, and which token serves which host."""

from __future__ import annotations

import os
import re
from pathlib import Path

from vault.errors import ConfigError
from vault.fs.paths import Paths, check_trusted, check_trusted_path, read_config_text
from vault.policy import safe_yaml as _yaml
from vault.policy.hosts import HostEntry, host_section
from vault.util.record import datarecord, field

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

    from vault.login.providers import Provider

TOP_KEYS = {"key_backend", "providers", "audit", "registries", "terraform"}
AUDIT_KEYS = {"max_bytes": int, "syslog": str, "format": str, "tls_ca": str, "tls_pin": str}
AUDIT_FORMATS = ("rfc5424", "ocsf", "ecs")
"""``audit.format``: what a forwarded event's syslog MSG holds (vault.audit.forward)."""
_PIN_RE = re.compile(r"sha256:[0-9a-fA-F]{64}")
PROVIDER_KEYS = {
    "preset": str,
    "issuer": str,
    "client_id": str,
    "client_secret": str,
    "scopes": list,
    "device_authorization_endpoint": str,
    "token_endpoint": str,
    "revocation_endpoint": str,
    "userinfo_endpoint": str,
    "api_base": str,
    "tenant": str,
    "host": str,  # preset: github only: GitHub Enterprise Server (vault.login.github)
}


@datarecord(frozen=True)
class Config:
    path: str
    key_backend: str | None = None
    key_backend_source: str = "default"
    providers: dict[str, Provider] = field(default_factory=dict)
    audit_max_bytes: int = 64 * 1024 * 1024
    audit_syslog: str | None = None
    registries: dict[str, HostEntry] = field(default_factory=dict)  # docker-credential-vault
    terraform: dict[str, HostEntry] = field(default_factory=dict)  # terraform-credentials-vault
    audit_format: str = "rfc5424"
    audit_tls_ca: str | None = None
    """An absolute path (``~`` expanded; a relative one is taken from the config's folder)."""
    audit_tls_pin: str | None = None

    def backend(self) -> tuple[str, str]:
        """The key backend in force and where that choice came from."""
        env = os.environ.get("VAULT_KEY_BACKEND")
        if env:
            if env not in ("keyring", "passphrase"):
                raise ConfigError(f"VAULT_KEY_BACKEND={env!r}: use keyring or passphrase")
            return env, "VAULT_KEY_BACKEND"
        if self.key_backend:
            return self.key_backend, self.key_backend_source
        return "keyring", "default"


def _check_file(path: Path, vault_dir: Path) -> None:
    """As for a policy: a regular file, yours or root's, not writable by group or others, on a
    trusted path. The config names the endpoints your tokens are sent to."""
    check_trusted_path(path.parent, "config folder", vault_dir=vault_dir)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return  # no config (a dangling symlink included): the defaults
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    check_trusted(path, st, "config file")


def load(paths: Paths) -> Config:
    path = str(paths.config_file)
    _check_file(paths.config_file, paths.vault_dir)
    text = read_config_text(paths.config_file, "config file")
    if text is None:
        return Config(path)
    data = _yaml.load(text, path, show_values=False)  # it holds client secrets
    if data is None:
        return Config(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping")
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(
                f"{_yaml.where(path, data, key)}: unknown key {key!r} "
                f"(known: {', '.join(sorted(TOP_KEYS))})"
            )
    backend = data.get("key_backend")
    if backend is not None and backend not in ("keyring", "passphrase"):
        raise ConfigError(
            f"{_yaml.where(path, data, 'key_backend')}: key_backend: {backend!r} is not one of "
            "keyring, passphrase"
        )
    providers: dict[str, Provider] = {}
    raw = data.get("providers")
    if raw is not None:
        if not isinstance(raw, dict):
            at = _yaml.where(path, data, "providers")
            raise ConfigError(f"{at}: providers must be a mapping")
        for name, section in raw.items():
            where = _yaml.where(path, raw, name)
            providers[name] = _provider(name, section, where, path)
    audit = _audit(data.get("audit"), data, path, paths.config_file.parent)
    return Config(
        path,
        registries=host_section(data, "registries", path),
        terraform=host_section(data, "terraform", path),
        **audit,
        key_backend=backend,
        key_backend_source=_yaml.where(path, data, "key_backend"),
        providers=providers,
    )


def _audit(audit: Any, data: dict[str, Any], path: str, folder: Path) -> dict[str, Any]:
    """The ``audit:`` section as Config's ``audit_*`` fields, checked: every key known and of
    its type, ``format`` one of :data:`AUDIT_FORMATS`, ``tls_ca``/``tls_pin`` only with a
    ``tls:`` syslog address and the pin of the form ``sha256:<64 hex>``."""
    out: dict[str, Any] = {}
    if audit is None:
        return out
    if not isinstance(audit, dict):
        raise ConfigError(f"{_yaml.where(path, data, 'audit')}: audit must be a mapping")
    for key, value in audit.items():
        at = _yaml.where(path, audit, key)
        expected = AUDIT_KEYS.get(key)
        if expected is None:
            raise ConfigError(
                f"{at}: unknown key {key!r} in audit (known: {', '.join(sorted(AUDIT_KEYS))})"
            )
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(f"{at}: audit.{key} must be a {expected.__name__}")
    if "max_bytes" in audit:
        if audit["max_bytes"] < 4096:
            at = _yaml.where(path, audit, "max_bytes")
            raise ConfigError(f"{at}: audit.max_bytes must be at least 4096")
        out["audit_max_bytes"] = audit["max_bytes"]
    out["audit_syslog"] = audit.get("syslog")
    if "format" in audit:
        if audit["format"] not in AUDIT_FORMATS:
            at = _yaml.where(path, audit, "format")
            raise ConfigError(f"{at}: audit.format must be one of {', '.join(AUDIT_FORMATS)}")
        out["audit_format"] = audit["format"]
    for key in ("tls_ca", "tls_pin"):
        if key in audit and not str(audit.get("syslog") or "").startswith("tls:"):
            at = _yaml.where(path, audit, key)
            raise ConfigError(f"{at}: audit.{key} applies only to a tls: syslog address")
    if "tls_ca" in audit:
        ca = audit["tls_ca"]
        if not ca or "\0" in ca:
            at = _yaml.where(path, audit, "tls_ca")
            raise ConfigError(f"{at}: audit.tls_ca must be the path of a PEM file")
        out["audit_tls_ca"] = str(folder / os.path.expanduser(ca))
    if "tls_pin" in audit:
        if not _PIN_RE.fullmatch(audit["tls_pin"]):
            at = _yaml.where(path, audit, "tls_pin")
            raise ConfigError(f"{at}: audit.tls_pin must be sha256: followed by 64 hex digits")
        out["audit_tls_pin"] = audit["tls_pin"]
    return out


def _provider(name: str, section: Any, where: str, path: str) -> Provider:
    from vault.util.text import NAME_RE

    if not NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}: provider name {name!r} is not a valid name")
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: provider {name!r} must be a mapping")
    for key, value in section.items():
        at = _yaml.where(path, section, key)
        expected = PROVIDER_KEYS.get(key)
        if expected is None:
            raise ConfigError(
                f"{at}: provider {name!r}: unknown key {key!r} "
                f"(known: {', '.join(sorted(PROVIDER_KEYS))})"
            )
        if value is not None and not isinstance(value, expected):
            raise ConfigError(
                f"{at}: provider {name!r}: {key} must be a {expected.__name__}, "
                f"not a {_yaml.kind(value)}"
            )
        if key == "scopes" and value:
            from vault.util.text import MAX_SCOPES, scope_problem

            if len(value) > MAX_SCOPES:
                problem: str | None = f"at most {MAX_SCOPES} scopes"
            else:
                problem = next(filter(None, map(scope_problem, value)), None)
            if problem:  # the value is not quoted: config.yaml's errors never show its text
                raise ConfigError(
                    f"{at}: provider {name!r}: scopes must be a list of scope names ({problem})"
                )
    from vault.login.providers import from_config

    return from_config(name, dict(section), where)
