"""`make demo`: a real `vault login` against the bundled local identity provider.

Starts a private Secret Service (gnome-keyring on its own D-Bus) and the local OIDC provider on
127.0.0.1, points a throw-away VAULT_HOME at it, and runs the real `vault` executable. On a
terminal you approve the login yourself in a browser (any user name works on the provider's dev
pages); without a terminal, or with VAULT_DEMO_APPROVE=auto, a scripted user approves it. A
remote session (SSH, or no display) is told how to ask for that. Every line is what vault
itself prints, or a sentence: never raw JSON.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

from tests.conftest import VAULT_BIN, VaultCLI, start_secret_service
from tests.harness.provider import approve, start_idp


def step(title: str) -> None:
    sys.stderr.write(f"\n\033[1m== {title}\033[0m\n" if sys.stderr.isatty() else f"\n== {title}\n")
    sys.stderr.flush()


def show(vault: VaultCLI, *args: str) -> subprocess.CompletedProcess[str]:
    sys.stderr.write(f"$ vault {' '.join(args)}\n")
    proc = subprocess.run(
        [VAULT_BIN, *args], env=vault.full_env(), capture_output=True, text=True, check=False
    )
    sys.stderr.write(proc.stdout + proc.stderr)
    sys.stderr.write(f"(exit {proc.returncode})\n")
    return proc


def remote_session() -> bool:
    """A session whose browser is probably elsewhere: over SSH, or with no display here."""
    if any(os.environ.get(v) for v in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")):
        return True
    return sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


class Relay:
    """vault's stderr, passed on to ours as it comes; remembers the URL and the code it shows."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.url = ""
        self.code = ""
        self.shown = threading.Event()  # the URL and the code are on the screen
        self.thread = threading.Thread(target=self._run, name="demo-relay", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace")
            sys.stderr.write(line)
            sys.stderr.flush()
            words = line.split()
            if line.startswith("  1. Open ") and words:
                self.url = words[-1]
            elif line.startswith("  2. Enter ") and words:
                self.code = words[-1]
            elif line.startswith("  The code expires in ") and self.url and self.code:
                self.shown.set()  # the last line of the screen
        self.shown.set()  # vault ended (a failure): nothing more to wait for


def login(vault: VaultCLI, *, interactive: bool) -> int:
    """`vault login local` as a person runs it, its screen shown as it comes; approved by the
    person (interactive) or by a scripted user on the provider's pages."""
    proc = subprocess.Popen(
        [VAULT_BIN, "login", "local", "--no-browser"],
        env=vault.full_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    relay = Relay(proc.stderr)
    relay.shown.wait(timeout=60)
    if relay.url and relay.code:
        if interactive:
            sys.stderr.write(
                "\nOpen the URL above in a browser on this machine, sign in with any name, "
                "enter the code if asked, and approve.\n"
            )
            if remote_session():
                sys.stderr.write(
                    "This looks like a remote session (SSH, or no display): a browser elsewhere "
                    "cannot reach 127.0.0.1 here.\nTo have a scripted user approve instead, run: "
                    "VAULT_DEMO_APPROVE=auto make demo\n"
                )
        else:
            sys.stderr.write("\n(a scripted user opens the URL above and approves)\n")
            approve(relay.url, relay.code, username="demo")
        sys.stderr.flush()
    try:
        proc.wait(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    relay.thread.join(timeout=10)
    return proc.returncode


def main() -> int:
    interactive = sys.stdin.isatty() and os.environ.get("VAULT_DEMO_APPROVE") != "auto"
    with tempfile.TemporaryDirectory(prefix="vault-demo-") as tmp:
        base = Path(tmp)
        step("starting a private Secret Service and the local identity provider")
        service = start_secret_service(base / "secret-service")
        try:
            with start_idp(access_ttl=120) as idp:
                sys.stderr.write(f"identity provider: {idp.issuer}\n")
                vault = VaultCLI(base / "vault-home", service.env())
                vault.home.mkdir(mode=0o700)
                (vault.home / "config.yaml").write_text(
                    f"providers:\n  local:\n    issuer: {idp.issuer}\n    client_id: vault-cli\n"
                    "    scopes: [openid, offline_access, repo]\n"
                )
                step("vault login local (RFC 8628 device flow)")
                code = login(vault, interactive=interactive)
                if code != 0:
                    sys.stderr.write(f"The login failed (exit {code}); the demo stops here.\n")
                    return code
                step("what is stored (never a secret)")
                show(vault, "list")
                show(vault, "status", "local")
                step("using the token: the provider confirms it is live")
                token = subprocess.run(
                    [VAULT_BIN, "token", "local"],
                    env=vault.full_env(),
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                live = "active" if idp.introspect(token).get("active") else "not active"
                sys.stderr.write(
                    f"$ vault token local\n(a token of {len(token)} characters, not shown here)\n"
                    f"The provider says this token is {live}.\n"
                )
                step("refresh (the refresh token rotates and is saved first)")
                show(vault, "refresh", "local")
                step("revoke at the provider (RFC 7009), then delete locally")
                show(vault, "revoke", "local")
                live = "active" if idp.introspect(token).get("active") else "not active"
                sys.stderr.write(f"The provider now says the old token is {live}.\n")
                step("the audit log: every step recorded, chained, verifiable")
                show(vault, "audit", "show")
                show(vault, "audit", "verify")
                show(vault, "doctor")
        finally:
            service.stop()
    step("demo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
