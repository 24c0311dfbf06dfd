"""Handing out the token config.yaml names for a host: the docker and Terraform credential
helpers ask for a host, never for a token by name.

The host is looked up here, by whoever holds the store (this process, or the agent), in
config.yaml as it is now: a token is handed out only for a host its section names for it,
whatever the asking process believes. Nothing here prints.
"""

from __future__ import annotations

from vault.util.hosts import registry_host, service_host

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from vault.policy.config import Config
    from vault.policy.hosts import HostEntry
    from vault.policy.rules import Policy
    from vault.store.model import TokenRecord
    from vault.store.vault import Store

# The config.yaml sections, each read by one helper.
KINDS = ("registries", "terraform")


def configured(config: Config, kind: str, asked: str) -> tuple[str, HostEntry] | None:
    """The host ``asked`` names (a docker server URL for "registries", a Terraform hostname for
    "terraform") and its entry, or None where it names no host of that section (exact match of
    the one spelling: no suffix, no wildcard, no other port). ValueError for an unknown kind."""
    if kind == "registries":
        host, section = registry_host(asked), config.registries
    elif kind == "terraform":
        host, section = service_host(asked), config.terraform
    else:
        raise ValueError(f"no such section: {kind!r}")
    if host is None:
        return None
    entry = section.get(host)
    return None if entry is None else (host, entry)


def use_for_host(
    store: Store,
    policy: Policy,
    config: Config,
    kind: str,
    asked: str,
    *,
    min_valid: int,
    command: str,
) -> tuple[TokenRecord, str, HostEntry] | None:
    """The token config.yaml names for the host ``asked`` (vault.tokens.use.use_token: policy,
    refresh, the use audited as ``command``), the host and its entry; None, with nothing
    checked or audited, where the section names no such host (the helper then says it has no
    credentials: docker and Terraform ask it about hosts it may not serve)."""
    from vault.tokens.use import use_token

    found = configured(config, kind, asked)
    if found is None:
        return None
    host, entry = found
    record = use_token(
        store, policy, config.providers, entry.token, min_valid=min_valid, command=command
    )
    return record, host, entry
