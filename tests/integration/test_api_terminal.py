"""`vault api` on a terminal: JSON is pretty-printed readable, but no character of the one
unsafe table (C0/C1 controls, bidi controls, zero-width and invisible characters, tag
characters, lone surrogates) reaches the terminal raw; each stays a JSON escape, so the data is
unchanged. A scripted server, since no real API sends these on demand."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess

from tests.conftest import VAULT_BIN, VaultCLI
from tests.harness.fake_oauth import fake_oauth
from vault.util.text import UNSAFE_TABLE

HOSTILE = {
    "c0": "a\x1b[2Jb\x07",
    "c1": "a\x9b31mb\x85",
    "bidi": "\u202egnp.exe\u202c \u2066x\u2069 \u061c \u200e\u200f",
    "invisible": "g\u200bh\u2060\ufeff\u00ad",
    "tags": "x\U000e0041\U000e007f",
    "surrogate": "\ud800",
    "plain": "snowman \u2603 caf\u00e9",
}


def _read_all(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 5)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def test_pretty_json_on_a_terminal_carries_no_unsafe_character(vault: VaultCLI) -> None:
    body = json.dumps({"items": [HOSTILE], "n": 1}).encode()
    with fake_oauth({"/data": lambda _q: (200, {"Content-Type": "application/json"}, body)}) as srv:
        vault.home.mkdir(mode=0o700)
        (vault.home / "config.yaml").write_text(
            f"providers:\n  api:\n    issuer: {srv.issuer}\n    client_id: x\n"
        )
        r = vault.run("import", "t", "--provider", "api", input="tok-api-terminal-1")
        assert r.returncode == 0, r
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                [VAULT_BIN, "api", "t", f"{srv.issuer}/data"],
                stdout=slave,
                stderr=subprocess.PIPE,
                env=vault.full_env(),
            )
            os.close(slave)
            slave = -1
            shown = _read_all(master).decode("utf-8")
            assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if slave >= 0:
                os.close(slave)
            os.close(master)
        unsafe = [
            ch
            for ch in shown
            if ch not in "\r\n" and any(lo <= ord(ch) <= hi for lo, hi in UNSAFE_TABLE)
        ]
        assert unsafe == [], unsafe
        assert "\u2603 caf\u00e9" in shown  # readable: not everything is escaped
        assert "\\u202e" in shown
        # The escapes decode to exactly the data the server sent.
        assert json.loads(shown.replace("\r\n", "\n")) == {"items": [HOSTILE], "n": 1}
        piped = vault.run("api", "t", f"{srv.issuer}/data")  # a pipe gets the bytes as sent
        assert piped.returncode == 0, piped
        assert json.loads(piped.stdout) == {"items": [HOSTILE], "n": 1}
