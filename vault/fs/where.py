"""Where vault's folders are, as strings, from the environment alone (no pathlib: the agent's
client on the `vault token` path needs the vault's place before anything else is imported).
vault.fs.paths builds its `Paths` from these."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Mapping


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> str:
    value = env.get(var, "")
    # The XDG spec: a relative path in these variables is invalid and must be ignored.
    if value and os.path.isabs(value):
        return value
    home = env.get("HOME", "")
    return os.path.join(home if os.path.isabs(home) else os.path.expanduser("~"), fallback)


def folders(env: Mapping[str, str]) -> tuple[str, str, str]:
    """(config folder, data folder, state folder): all three ``VAULT_HOME`` when it is set
    (relative to the working folder if relative), else the XDG folders' ``vault``."""
    home = env.get("VAULT_HOME")
    if home:
        base = os.path.expanduser(home)
        if not os.path.isabs(base):
            base = os.path.join(os.getcwd(), base)
        return base, base, base
    return (
        os.path.join(_xdg(env, "XDG_CONFIG_HOME", ".config"), "vault"),
        os.path.join(_xdg(env, "XDG_DATA_HOME", ".local/share"), "vault"),
        os.path.join(_xdg(env, "XDG_STATE_HOME", ".local/state"), "vault"),
    )


def vault_file(env: Mapping[str, str]) -> str:
    return os.path.join(folders(env)[1], VAULT_FILE)


VAULT_FILE = "vault.enc"
