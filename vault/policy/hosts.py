"""config.yaml's `registries` and `terraform` sections: which stored token the docker and
Terraform credential helpers hand out for which host.

```yaml
registries:                                   # docker-credential-vault
  ghcr.io: {token: gh, username: octocat}     # ghcr.io needs your GitHub login
  registry.gitlab.com: {token: gitlab}        # username: oauth2
terraform:                                    # terraform-credentials-vault
  app.terraform.io: {token: tfc}
```

Hosts are read as the helpers are asked about them (vault.util.hosts): lowercase, the port
kept, Docker Hub's names as `docker.io`; a helper answers for exactly these hosts. Read
strictly, as the rest of config.yaml: an unknown key, a wrong type, a host that is not a
host, a token that is not a name, or two spellings of one host are errors naming the file,
the line and the key (exit 3).
"""

from __future__ import annotations

from vault.errors import ConfigError
from vault.policy import safe_yaml as _yaml
from vault.util.hosts import registry_host, service_host
from vault.util.record import datarecord

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

DEFAULT_USERNAME = "oauth2"  # what GitLab's registry and most token-checking registries take
# Registries whose user name is the account's own login: there is no default to guess.
LOGIN_REGISTRIES = {"ghcr.io": "your GitHub login"}
MAX_USERNAME = 256


@datarecord(frozen=True)
class HostEntry:
    """The stored token that serves a host and, for a registry, the user name sent with it
    (``"<token>"``: docker's identity token, the secret then goes to the registry's token
    service as a refresh token)."""

    token: str
    username: str | None = None


def host_section(data: dict[str, Any], section: str, path: str) -> dict[str, HostEntry]:
    """``data[section]`` ("registries" or "terraform") checked, keyed by the host's one
    spelling; empty where the section is absent or null."""
    raw = data.get(section)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        at = _yaml.where(path, data, section)
        raise ConfigError(f"{at}: {section} must be a mapping of hosts, not a {_yaml.kind(raw)}")
    registries = section == "registries"
    entries: dict[str, HostEntry] = {}
    spelled: dict[str, str] = {}
    for key, value in raw.items():
        at = _yaml.where(path, raw, key)
        shown = _shown(key)
        host = None
        if isinstance(key, str):
            host = registry_host(key) if registries else service_host(key)
        if host is None:
            what = "[https://]host[:port]" if registries else "host[:port]"
            raise ConfigError(f"{at}: {section}: {shown} is not a host ({what})")
        if host in spelled:
            raise ConfigError(
                f"{at}: {section}: {shown} is the host {host}, already given as "
                f"{_shown(spelled[host])}"
            )
        spelled[host] = key
        entries[host] = _entry(value, f"{at}: {section}: {shown}", host, registries=registries)
    return entries


def _entry(value: Any, where: str, host: str, *, registries: bool) -> HostEntry:
    from vault.util.text import NAME_RE

    known = ("token", "username") if registries else ("token",)
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: must be a mapping ({{token: NAME}}), not a {_yaml.kind(value)}"
        )
    for key in value:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {_shown(key)} (known: {', '.join(known)})")
    token = value.get("token")
    if token is None:
        raise ConfigError(f"{where}: token: missing (the name of a stored token)")
    if not isinstance(token, str) or not NAME_RE.fullmatch(token):
        raise ConfigError(f"{where}: token must be the name of a stored token")
    if not registries:
        return HostEntry(token)
    username = value.get("username")
    if username is None:
        login = LOGIN_REGISTRIES.get(host)
        if login is not None:
            raise ConfigError(f"{where}: username: missing ({host} needs {login})")
        return HostEntry(token, DEFAULT_USERNAME)
    if (
        not isinstance(username, str)
        or not 0 < len(username) <= MAX_USERNAME
        or ":" in username
        or not username.isprintable()
    ):
        raise ConfigError(
            f"{where}: username must be a word of at most {MAX_USERNAME} printable characters"
            " without ':'"
        )
    return HostEntry(token, username)


def _shown(key: object) -> str:
    from vault.util.text import clean

    return repr(clean(str(key), limit=80))
