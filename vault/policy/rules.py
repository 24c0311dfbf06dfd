"""YAML policies: what may be stored, for how long, and where.

Schema (version 1; every key optional except ``version``)::

    version: 1
    max_token_age: 8h              # since login; refresh never resets it
    allowed_scopes: [openid, "read:*"]
    denied_scopes: ["admin:*"]
    allowed_issuers: ["https://github.com", "https://idp.example.com/*"]
    allowed_grants: [authorization_code, device_code]   # how `vault login` may obtain tokens
    storage:
      key_backends: [keyring]      # keyring | passphrase
      vault_dirs: ["~/.local/share/vault"]
    tokens:
      print_to_terminal: false     # may `vault token` print to an interactive terminal?
    agent:                         # may a background agent hold the vault's key, how long
      allowed: true
      max_unlocked: 8h
    providers:                     # per provider identity: may only tighten
      github: {max_token_age: 12h, allowed_scopes: [repo], denied_scopes: [...]}
      "https://idp.example.com/realms/*": {max_token_age: 1h}

``agent:`` is about the whole vault (an agent holding the data key can open every token), so a
``providers:`` section cannot carry it.

A ``providers:`` key is what a provider *is*, never what a config.yaml calls it: a preset name
(its rules follow every provider built on that preset, and every token from that preset's
issuer, whatever the provider is named) or an issuer URL pattern. See :class:`Identity`.

Patterns match in linear time (:func:`glob_match`, no regular expression is built from them).
A ``*`` in a scope pattern matches any run of characters, never a space; an issuer pattern is
matched by scheme, host and path separately (:func:`url_match`): ``*`` may stand for the leading
labels of a host (``https://*.example.com``, any subdomain) or for any part of the path, never
across the host's boundary.

Several files combine into one effective policy and the strictest rule wins: the shortest age,
the intersection of allow-lists, the union of deny-lists, ``false`` over ``true``. A user policy
therefore can only make things stricter than the system's. Every rule remembers its file and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from vault.errors import ConfigError, PolicyError
from vault.fs.paths import Paths, check_trusted, check_trusted_path
from vault.login.providers import PRESET_ISSUERS, Identity
from vault.policy import safe_yaml as _yaml
from vault.util.record import datarecord, field
from vault.util.text import MAX_SCOPE_LENGTH, scope_problem

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

POLICY_VERSION = 1
MAX_POLICY_BYTES = 64 * 1024
_DURATION = r"(\d{1,12})([smhdw])"  # bounded: int() refuses over 4300 digits
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
PRESET_KEYS = ("github", "gitlab", "google", "microsoft", "oidc")
TOP_KEYS = {
    "version",
    "max_token_age",
    "allowed_scopes",
    "denied_scopes",
    "allowed_issuers",
    "allowed_grants",
    "storage",
    "tokens",
    "agent",
    "providers",
}
PROVIDER_KEYS = {
    "max_token_age",
    "allowed_scopes",
    "denied_scopes",
    "allowed_issuers",
    "allowed_grants",
}
GRANTS = ("authorization_code", "device_code")
"""The OAuth grants `vault login` can use, by the names ``allowed_grants`` gives them."""
STORAGE_KEYS = {"key_backends", "vault_dirs"}
TOKENS_KEYS = {"print_to_terminal"}
AGENT_KEYS = {"allowed", "max_unlocked"}


CLOCK_STEP_TOLERANCE = 300  # seconds the clock may stand behind a token's issue time


def parse_duration(text: object, where: str, key: str) -> int:
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ConfigError(f"{where}: {key}: a duration such as 90m, 8h or 30d, not {text!r}")
    value = str(text).strip().replace(" ", "")
    if isinstance(text, int):
        raise ConfigError(f"{where}: {key}: {text} needs a unit (s, m, h, d or w), e.g. {text}h")
    pos, total = 0, 0
    for match in re.finditer(_DURATION, value):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise ConfigError(f"{where}: {key}: {text!r} is not a duration (use e.g. 90m, 8h, 1d12h)")
    if total <= 0:
        raise ConfigError(f"{where}: {key}: {text!r} must be longer than zero")
    return total


def format_duration(seconds: int) -> str:
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern``, where ``*`` stands for any run of characters
    except a space (scope-tokens have none, so a pattern never matches across two scopes).

    Linear: the pieces between the stars are found left to right, each at its first place
    (for ``*``-only patterns the leftmost match of each piece is always a right choice), so no
    input makes it backtrack, whatever the number of stars."""
    if " " in text:
        return False
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return pattern == text
    first, last = pieces[0], pieces[-1]
    end = len(text) - len(last)
    if end < len(first) or not text.startswith(first) or not text.endswith(last):
        return False
    pos = len(first)
    for piece in pieces[1:-1]:
        found = text.find(piece, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def _url_parts(url: str, *, pattern: bool) -> tuple[str, str, str] | None:
    """(scheme, host[:port], path) of an https or http URL, lower-cased where case does not
    matter, the scheme's default port dropped and a trailing ``/`` dropped; None for anything
    that could make a textual match mean something else (credentials, a query or fragment,
    dot segments or encoded separators in the path, a ``*`` in the host other than as leading
    labels, a ``*`` in an issuer)."""
    import urllib.parse

    if len(url) > 2048 or "?" in url or "#" in url or "\\" in url:
        return None
    star = False
    if pattern:
        for head in ("https://*.", "http://*."):
            if url[: len(head)].lower() == head:
                url, star = url[: len(head) - 2] + "x." + url[len(head) :], True
                break
    netloc = url.partition("://")[2].split("/", 1)[0]
    any_port = pattern and netloc.endswith(":*")
    if any_port:
        url = url.replace(netloc, netloc[:-2], 1)
        netloc = netloc[:-2]
    if "*" in netloc or "@" in netloc or (not pattern and "*" in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host or any(c in host for c in "%/"):
        return None
    if star:
        host = "*" + host[1:]
    if ":" in host:
        host = f"[{host}]"
    if any_port:
        host = f"{host}:*"
    elif port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    path = parts.path
    lowered = path.lower()
    if "%2f" in lowered or "%2e" in lowered or "%5c" in lowered:
        return None
    if any(seg in (".", "..") for seg in path.split("/")):
        return None
    return scheme, host, path.rstrip("/")


def url_match(pattern: str, url: str) -> bool:
    """Whether the issuer ``url`` matches the URL ``pattern``: the same scheme, the same host
    and port (``*.example.com``: any subdomain of example.com, not example.com itself;
    ``host:*``: any port), and a
    path matching by :func:`glob_match` (``/realms/*``: /realms and anything below it; no path:
    only the issuer without one). A trailing ``/`` on either side is not significant."""
    want = _url_parts(pattern, pattern=True)
    have = _url_parts(url, pattern=False)
    if want is None or have is None or want[0] != have[0]:
        return False
    host, other = want[1], have[1]
    if host.endswith(":*"):  # any port, the default one included
        host = host[:-2]
        other = other.rpartition(":")[0] if not other.endswith("]") and ":" in other else other
    if host.startswith("*."):
        if not other.endswith(host[1:]) or len(other) <= len(host) - 1:
            return False
    elif host != other:
        return False
    path = want[2]
    if path.endswith("/*") and have[2] == path[:-2]:
        return True  # "/realms/*": below /realms, and /realms itself
    return glob_match(path, have[2])


def url_pattern_problem(pattern: str) -> str | None:
    if _url_parts(pattern, pattern=True) is None:
        return (
            "is not an issuer URL pattern (https://host[:port][/path]; '*' only as the host's "
            "leading labels '*.', as the port ':*' or in the path; no query, fragment or "
            "credentials)"
        )
    return None


def covers(key: str, provider: Identity) -> bool:
    """Whether the ``providers:`` section ``key`` of a policy applies to ``provider``: the
    preset's name (for a preset with a fixed issuer, also every token from that issuer, on
    whichever preset it was configured), or an issuer URL pattern. Never a provider's name."""
    if key in PRESET_KEYS:
        if key == provider.preset:
            return True
        fixed = PRESET_ISSUERS.get(key)
        return fixed is not None and url_match(fixed, provider.issuer)
    return url_match(key, provider.issuer)


@datarecord(frozen=True)
class Rule:
    """One rule from one file: its value and where it was written."""

    key: str
    value: Any
    source: str  # file:line

    def matches(self, item: str) -> bool:
        return any(glob_match(p, item) for p in self.value)

    def matches_url(self, url: str) -> bool:
        return any(url_match(p, url) for p in self.value)


PROVIDER_RULES = (
    "max_token_age",
    "allowed_scopes",
    "denied_scopes",
    "allowed_issuers",
    "allowed_grants",
)
FILE_RULES = (
    *PROVIDER_RULES,
    "key_backends",
    "vault_dirs",
    "print_to_terminal",
    "agent_allowed",
    "agent_max_unlocked",
)


@datarecord(frozen=True)
class ProviderRules:
    max_token_age: Rule | None = None
    allowed_scopes: Rule | None = None
    denied_scopes: Rule | None = None
    allowed_issuers: Rule | None = None
    allowed_grants: Rule | None = None


@datarecord(frozen=True)
class PolicyFile:
    path: str
    system: bool
    max_token_age: Rule | None = None
    allowed_scopes: Rule | None = None
    denied_scopes: Rule | None = None
    allowed_issuers: Rule | None = None
    allowed_grants: Rule | None = None
    key_backends: Rule | None = None
    vault_dirs: Rule | None = None
    print_to_terminal: Rule | None = None
    agent_allowed: Rule | None = None  # agent.allowed
    agent_max_unlocked: Rule | None = None  # agent.max_unlocked, in seconds
    providers: dict[str, ProviderRules] = field(default_factory=dict)

    def rule_count(self) -> int:
        count = sum(getattr(self, k) is not None for k in FILE_RULES)
        for p in self.providers.values():
            count += sum(getattr(p, k) is not None for k in PROVIDER_RULES)
        return count


# --- parsing ---------------------------------------------------------------------------


def _check_keys(data: Any, allowed: set[str], path: str, context: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{_yaml.where(path, data, key)}: unknown key {key!r}{context} "
                f"(known: {', '.join(sorted(allowed))})"
            )


def _string_list(data: Any, key: str, path: str, *, scopes: bool = False) -> Rule:
    value = data[key]
    where = _yaml.where(path, data, key)
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {key} must be a list, not {type(value).__name__}")
    for item in value:
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{where}: {key}: every entry must be a non-empty string")
        # The one scope-token check ("*", the wildcard, is one of its characters).
        if scopes and scope_problem(item) is not None:
            raise ConfigError(
                f"{where}: {key}: {item!r} is not a scope (RFC 6749 characters; '*' as wildcard; "
                f"at most {MAX_SCOPE_LENGTH} characters)"
            )
    return Rule(key, tuple(value), where)


def _rules(data: Any, path: str) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    if "max_token_age" in data:
        where = _yaml.where(path, data, "max_token_age")
        rules["max_token_age"] = Rule(
            "max_token_age", parse_duration(data["max_token_age"], where, "max_token_age"), where
        )
    for key in ("allowed_scopes", "denied_scopes"):
        if key in data:
            rules[key] = _string_list(data, key, path, scopes=True)
    if "allowed_issuers" in data:
        rule = _string_list(data, "allowed_issuers", path)
        for item in rule.value:
            problem = url_pattern_problem(item)
            if problem:
                raise ConfigError(f"{rule.source}: allowed_issuers: {item!r} {problem}")
        rules["allowed_issuers"] = rule
    if "allowed_grants" in data:
        rule = _string_list(data, "allowed_grants", path)
        for item in rule.value:
            if item not in GRANTS:
                raise ConfigError(
                    f"{rule.source}: allowed_grants: {item!r} is not a grant vault knows "
                    f"(one of {', '.join(GRANTS)})"
                )
        rules["allowed_grants"] = rule
    return rules


def _agent_rules(data: Any, path: str) -> dict[str, Rule]:
    """``agent: {allowed: BOOL, max_unlocked: DURATION}``. ``max_unlocked`` is read by the same
    parser as ``max_token_age``, so it is never zero, negative or without a unit."""
    agent = data.get("agent")
    if agent is None:
        return {}
    if not isinstance(agent, dict):
        raise ConfigError(
            f"{_yaml.where(path, data, 'agent')}: agent must be a mapping "
            "(e.g. {allowed: true, max_unlocked: 8h})"
        )
    _check_keys(agent, AGENT_KEYS, path, " in agent")
    rules: dict[str, Rule] = {}
    if "allowed" in agent:
        where = _yaml.where(path, agent, "allowed")
        if not isinstance(agent["allowed"], bool):
            raise ConfigError(f"{where}: agent.allowed must be true or false")
        rules["agent_allowed"] = Rule("agent_allowed", agent["allowed"], where)
    if "max_unlocked" in agent:
        where = _yaml.where(path, agent, "max_unlocked")
        seconds = parse_duration(agent["max_unlocked"], where, "agent.max_unlocked")
        rules["agent_max_unlocked"] = Rule("agent_max_unlocked", seconds, where)
    return rules


def parse_policy(text: str, path: str, *, system: bool) -> PolicyFile:
    data = _yaml.load(text, path)
    if data is None:
        raise ConfigError(f"{path}: the policy is empty; write at least `version: 1`")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a policy must be a mapping")
    _check_keys(data, TOP_KEYS, path, "")
    if "version" not in data:
        raise ConfigError(f"{path}:{getattr(data, 'line', 1)}: version: missing (write version: 1)")
    if data["version"] != POLICY_VERSION or isinstance(data["version"], bool):
        raise ConfigError(
            f"{_yaml.where(path, data, 'version')}: version: {data['version']!r} is not supported "
            f"(this vault reads version {POLICY_VERSION})"
        )
    rules = _rules(data, path)
    storage = data.get("storage")
    if storage is not None:
        if not isinstance(storage, dict):
            raise ConfigError(f"{_yaml.where(path, data, 'storage')}: storage must be a mapping")
        _check_keys(storage, STORAGE_KEYS, path, " in storage")
        if "key_backends" in storage:
            rule = _string_list(storage, "key_backends", path)
            for item in rule.value:
                if item not in ("keyring", "passphrase"):
                    raise ConfigError(
                        f"{rule.source}: key_backends: {item!r} is not keyring or passphrase"
                    )
            rules["key_backends"] = rule
        if "vault_dirs" in storage:
            rules["vault_dirs"] = _string_list(storage, "vault_dirs", path)
    tokens = data.get("tokens")
    if tokens is not None:
        if not isinstance(tokens, dict):
            raise ConfigError(f"{_yaml.where(path, data, 'tokens')}: tokens must be a mapping")
        _check_keys(tokens, TOKENS_KEYS, path, " in tokens")
        if "print_to_terminal" in tokens:
            value = tokens["print_to_terminal"]
            where = _yaml.where(path, tokens, "print_to_terminal")
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: print_to_terminal must be true or false")
            rules["print_to_terminal"] = Rule("print_to_terminal", value, where)
    rules.update(_agent_rules(data, path))
    providers: dict[str, ProviderRules] = {}
    raw = data.get("providers")
    if raw is not None:
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{_yaml.where(path, data, 'providers')}: providers must be a mapping"
            )
        for name, section in raw.items():
            where = _yaml.where(path, raw, name)
            if not isinstance(name, str) or (
                name not in PRESET_KEYS and url_pattern_problem(name) is not None
            ):
                raise ConfigError(
                    f"{where}: providers: {name!r} is neither a preset "
                    f"({', '.join(PRESET_KEYS)}) nor an issuer URL pattern: per-provider rules "
                    "follow what a provider is, not the name a config.yaml gives it"
                )
            if not isinstance(section, dict):
                raise ConfigError(f"{where}: providers: {name!r} must be a mapping")
            if "agent" in section:
                # Named apart from an unknown key: it is a known rule in the wrong place.
                raise ConfigError(
                    f"{_yaml.where(path, section, 'agent')}: agent in provider {name!r}: the "
                    "agent rule applies to the whole vault (an agent holds the key to every "
                    "token), so it belongs at the top level of the policy"
                )
            _check_keys(section, PROVIDER_KEYS, path, f" in provider {name!r}")
            providers[name] = ProviderRules(**_rules(section, path))
    return PolicyFile(path=path, system=system, providers=providers, **rules)


# --- loading ---------------------------------------------------------------------------


def _policy_paths(folder: Path) -> list[Path]:
    try:
        entries = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot list policies: {exc.strerror}") from exc
    return entries


def _check_owner(path: Path, *, system: bool, folder: bool = False) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy: {exc.strerror}") from exc
    # Root's, or yours (tests, and a policy you wrote yourself). Anyone who may add a file can
    # only tighten: rules combine strictest-wins. Editing others' files is what must be
    # impossible, hence the mode check on every file and on the system folder.
    rule = "system policies must be owned by root" if system else "it must be yours"
    check_trusted(path, st, "policy", owner_rule=rule, folder=folder)


def read_policy(path: Path, *, system: bool) -> PolicyFile:
    _check_owner(path, system=system)
    from vault.fs.paths import read_config_text

    text = read_config_text(path, "policy", limit=MAX_POLICY_BYTES)
    if text is None:
        raise ConfigError(f"{path}: the policy disappeared while being read")
    return parse_policy(text, str(path), system=system)


DEFAULT_SYSTEM_DIR = Path("/etc/vault/policies")


def load(paths: Paths) -> Policy:
    """Every policy in force. /etc/vault/policies is always read when it exists, even when
    VAULT_SYSTEM_POLICY_DIR names another folder: a variable the user controls must not be able
    to drop the administrator's policy. Each folder must be on a trusted path
    (``check_trusted_path``): otherwise whoever could write a folder above it could rename the
    policies away."""
    files: list[PolicyFile] = []
    system_dirs = [DEFAULT_SYSTEM_DIR]
    if paths.system_policy_dir != DEFAULT_SYSTEM_DIR:
        system_dirs.append(paths.system_policy_dir)
    for system_dir in system_dirs:
        if system_dir.exists():
            _check_owner(system_dir, system=True, folder=True)
        check_trusted_path(system_dir, "system policy folder", vault_dir=paths.vault_dir)
        for path in _policy_paths(system_dir):
            files.append(read_policy(path, system=True))
    check_trusted_path(paths.policy_dir, "policy folder", vault_dir=paths.vault_dir)
    for path in _policy_paths(paths.policy_dir):
        files.append(read_policy(path, system=False))
    return Policy(files)


# --- the effective policy ----------------------------------------------------------------


@datarecord(frozen=True)
class Denial:
    rule: str
    source: str
    message: str

    def error(self) -> PolicyError:
        return PolicyError(
            f"refused by policy: {self.message} (rule {self.rule}, {self.source})",
            rule=self.rule,
            source=self.source,
        )


@datarecord(frozen=True)
class Policy:
    files: list[PolicyFile]

    def _layers(self, provider: Identity | None) -> Iterable[PolicyFile | ProviderRules]:
        for f in self.files:
            yield f
            if provider is not None:
                for key, rules in f.providers.items():
                    if covers(key, provider):
                        yield rules

    def max_token_age(self, provider: Identity | None) -> Rule | None:
        rules = [layer.max_token_age for layer in self._layers(provider) if layer.max_token_age]
        return min(rules, key=lambda r: r.value) if rules else None

    def scope_denial(self, provider: Identity | None, scopes: Iterable[str]) -> Denial | None:
        for scope in scopes:
            for layer in self._layers(provider):
                denied = layer.denied_scopes
                if denied is not None and denied.matches(scope):
                    return Denial("denied_scopes", denied.source, f"scope {scope!r} is denied")
                allowed = layer.allowed_scopes
                if allowed is not None and not allowed.matches(scope):
                    return Denial(
                        "allowed_scopes",
                        allowed.source,
                        f"scope {scope!r} is not in the allowed scopes",
                    )
        return None

    def issuer_denial(self, provider: Identity) -> Denial | None:
        issuer = provider.issuer
        for layer in self._layers(provider):
            rule = layer.allowed_issuers
            if rule is not None and not rule.matches_url(issuer):
                return Denial("allowed_issuers", rule.source, f"issuer {issuer!r} is not allowed")
        return None

    def allowed_grants(self, provider: Identity) -> tuple[str, ...]:
        """The grants (of :data:`GRANTS`, in that order) every ``allowed_grants`` rule that
        covers ``provider`` allows: the intersection, so a user policy can only take away."""
        return tuple(g for g in GRANTS if self.grant_type_denial(provider, g) is None)

    def grant_type_denial(self, provider: Identity, grant: str) -> Denial | None:
        """Whether `vault login` may use ``grant`` (``authorization_code`` or
        ``device_code``) with ``provider``; the first rule (system policies first) that leaves
        it out is the one named."""
        for layer in self._layers(provider):
            rule = layer.allowed_grants
            if rule is not None and grant not in rule.value:
                allowed = ", ".join(rule.value) or "none"
                return Denial(
                    "allowed_grants",
                    rule.source,
                    f"the {grant} grant is not allowed (allowed: {allowed})",
                )
        return None

    def age_denial(self, provider: Identity, issued_at: int, now: float) -> Denial | None:
        rule = self.max_token_age(provider)
        if rule is None:
            return None
        age = now - issued_at  # not truncated: a token 1.9 s old is older than 1 s
        if age < -CLOCK_STEP_TOLERANCE:
            # Issued "in the future": the clock moved backward since the login (or the login
            # ran on a clock that was ahead). Its real age cannot be told, so it is not trusted.
            return Denial(
                "max_token_age",
                rule.source,
                f"the token was issued {format_duration(int(-age))} after the present time: "
                "the clock moved backward, so its age is unknown",
            )
        if age > rule.value:
            return Denial(
                "max_token_age",
                rule.source,
                f"the token is {format_duration(int(age))} old, over the maximum "
                f"{format_duration(rule.value)} since login",
            )
        return None

    def storage_denial(self, backend: str, vault_dir: Path) -> Denial | None:
        for f in self.files:
            if f.key_backends is not None and backend not in f.key_backends.value:
                return Denial(
                    "storage.key_backends",
                    f.key_backends.source,
                    f"the {backend} key backend is not allowed "
                    f"(allowed: {', '.join(f.key_backends.value)})",
                )
            if f.vault_dirs is not None and not _inside_any(vault_dir, f.vault_dirs.value):
                return Denial(
                    "storage.vault_dirs",
                    f.vault_dirs.source,
                    f"the vault folder {vault_dir} is not an allowed place "
                    f"(allowed: {', '.join(f.vault_dirs.value)})",
                )
        return None

    def terminal_denial(self) -> Denial | None:
        for f in self.files:
            if f.print_to_terminal is not None and f.print_to_terminal.value is False:
                return Denial(
                    "tokens.print_to_terminal",
                    f.print_to_terminal.source,
                    "printing a token to an interactive terminal is not allowed; pipe it, or "
                    "use `vault exec`",
                )
        return None

    def agent_denial(self) -> Denial | None:
        """Whether a key agent may hold this vault's data key at all. Any file saying
        ``allowed: false`` forbids it, whatever the others say; the first such file (system
        policies are read before the user's) is the one named."""
        for f in self.files:
            if f.agent_allowed is not None and f.agent_allowed.value is False:
                return Denial(
                    "agent.allowed",
                    f.agent_allowed.source,
                    "a key agent may not hold this vault's key",
                )
        return None

    def agent_max_unlocked(self) -> tuple[float, str] | None:
        """The longest an agent may keep the key unlocked, in seconds, and the file:line that
        set it: the shortest ``agent.max_unlocked`` over every file (on a tie the first file,
        so a system policy is named before a user's); None when no policy caps it."""
        rules = [f.agent_max_unlocked for f in self.files if f.agent_max_unlocked is not None]
        if not rules:
            return None
        rule = min(rules, key=lambda r: r.value)
        return float(rule.value), rule.source

    def grant_denial(self, provider: Identity, scopes: Iterable[str]) -> Denial | None:
        """Whether a token for these scopes from this provider may be obtained or stored."""
        return self.issuer_denial(provider) or self.scope_denial(provider, scopes)

    def token_denial(
        self, provider: Identity, scopes: Iterable[str], issued_at: int, now: float
    ) -> Denial | None:
        """Everything that decides whether a stored token may still be used."""
        return (
            self.age_denial(provider, issued_at, now)
            or self.scope_denial(provider, scopes)
            or self.issuer_denial(provider)
        )


def _inside_any(folder: Path, allowed: Iterable[str]) -> bool:
    real = Path(os.path.realpath(folder))
    for entry in allowed:
        base = Path(os.path.realpath(os.path.expanduser(os.path.expandvars(entry))))
        if real == base or base in real.parents:
            return True
    return False
