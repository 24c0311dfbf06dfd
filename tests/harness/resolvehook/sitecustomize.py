"""Test-only name resolution for the real `vault` executable.

Never installed: tests/integration/test_audit_siem.py puts this folder on PYTHONPATH of the
`vault` subprocesses it starts, so Python imports it at start-up (site.py imports
``sitecustomize``). Without ``VAULT_TEST_RESOLVE`` in the environment it does nothing.

``VAULT_TEST_RESOLVE=NAME=ADDR,ADDR,...`` makes ``socket.getaddrinfo`` answer for NAME with
those addresses, in that order (IPv6 ones in the form ``::1``), as a dual-stack resolver that
lists an unreachable address first would; every other name goes to the real resolver. This
machine's /etc/hosts is not the tests' to change, and ``localhost`` resolves to 127.0.0.1 only
here.
"""

from __future__ import annotations

import os
import socket

_SPEC = os.environ.get("VAULT_TEST_RESOLVE", "")

if "=" in _SPEC:
    _NAME, _, _ADDRESSES = _SPEC.partition("=")
    _real_getaddrinfo = socket.getaddrinfo

    def _getaddrinfo(  # type: ignore[no-untyped-def]  # noqa: PLR0917
        host, port, family=0, type=0, proto=0, flags=0
    ):
        if host != _NAME:
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        if flags & socket.AI_NUMERICHOST:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers: list[tuple[object, ...]] = []
        for address in _ADDRESSES.split(","):
            if ":" in address:
                answers.append((socket.AF_INET6, type, proto, "", (address, port, 0, 0)))
            else:
                answers.append((socket.AF_INET, type, proto, "", (address, port)))
        return answers

    socket.getaddrinfo = _getaddrinfo
