"""Host names as the credential helpers are asked about them (docker's server URLs, Terraform's
hostnames): one spelling for each host, so that a host in config.yaml matches exactly the
hosts it names and nothing else.

A credential helper's start-up path reads this module: it imports nothing.
"""

from __future__ import annotations

DOCKER_HUB = "docker.io"
# The names docker and its kin use for Docker Hub: `docker login` stores it under
# https://index.docker.io/v1/, containers/image (skopeo, podman) under docker.io.
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# Paths a docker client puts after a registry's host: none, or the API's version.
REGISTRY_PATHS = frozenset({"", "/", "/v1", "/v1/", "/v2", "/v2/"})
MAX_INPUT = 1024  # longer is no host anyone configured
_LABEL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_IPV6 = frozenset("0123456789abcdef:.")


def registry_host(text: str) -> str | None:
    """The registry ``text`` names, as ``host`` or ``host:port`` (lowercase, the port as
    given, Docker Hub's names as ``docker.io``), or None where ``text`` is not a registry's
    address: ``[https://|http://]host[:port][/|/v1/|/v2/]`` and nothing else (no user, no
    other path, no query, no spaces inside, printable ASCII only)."""
    text = text.strip(" \t\r\n")
    if len(text) > MAX_INPUT:
        return None
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() not in ("https", "http"):
            return None
        text = rest
    slash = text.find("/")
    hostport, path = (text, "") if slash < 0 else (text[:slash], text[slash:])
    if path not in REGISTRY_PATHS:
        return None
    key = _host_port(hostport)
    if key is None:
        return None
    return DOCKER_HUB if key in HUB_ALIASES else key


def service_host(text: str) -> str | None:
    """The Terraform service host ``text`` names, as Terraform spells it (lowercase, the port
    kept unless it is 443), or None where ``text`` is not a bare ``host[:port]``."""
    if len(text) > MAX_INPUT:
        return None
    key = _host_port(text)
    if key is not None and key.endswith(":443"):
        return key[:-4]
    return key


def _host_port(text: str) -> str | None:
    if not text or not all("!" <= c <= "~" for c in text):
        return None
    text = text.lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 3 or not all(c in _IPV6 for c in text[1:end]) or ":" not in text[1:end]:
            return None
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = text.partition(":")
        port = port_text if colon else None
        if not _dns_name(host):
            return None
    if port is None:
        return host
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or not 0 < int(port) < 65536:
        return None
    return f"{host}:{int(port)}"


def _dns_name(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    for label in host.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c in _LABEL for c in label):
            return False
    return True
