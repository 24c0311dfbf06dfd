"""`make demo`: a real `vault login` against the bundled local identity provider.

Starts a private Secret Service (gnome-keyring on its own D-Bus) and the local OIDC provider on
127.0.0.1, points a throw-away VAULT_HOME at it, and runs the real `vault` executable. On a
terminal you approve the login yourself in a browser (any user name works on the provider's dev
pages); without a terminal, or with VAULT_DEMO_APPROVE=auto, a scripted user approves it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.conftest import VAULT_BIN, VaultCLI, start_secret_service
from tests.harness.provider import approve_complete, start_idp


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
                proc = subprocess.Popen(
                    [VAULT_BIN, "login", "local", "--json", "--no-browser"],
                    env=vault.full_env(),
                    stdout=subprocess.PIPE,
                    stderr=None,
                    stdin=subprocess.DEVNULL,
                )
                assert proc.stdout is not None
                event = json.loads(proc.stdout.readline())
                if interactive:
                    sys.stderr.write(
                        "\nOpen the URL above in a browser on this machine, sign in with any "
                        "name, and approve.\n"
                    )
                else:

                    def scripted() -> None:
                        time.sleep(2)
                        sys.stderr.write("(a scripted user approves on the provider's pages)\n")
                        approve_complete(str(event["verification_uri_complete"]), username="demo")

                    threading.Thread(target=scripted, daemon=True).start()
                out, _ = proc.communicate(timeout=event["expires_in"] + 30)
                sys.stderr.write(out.decode())
                if proc.returncode != 0:
                    sys.stderr.write(f"login failed (exit {proc.returncode})\n")
                    return proc.returncode
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
                sys.stderr.write(
                    f"vault token local -> {len(token)} characters (not shown); introspection: "
                    f"active={idp.introspect(token)['active']}\n"
                )
                step("refresh (the refresh token rotates and is saved first)")
                show(vault, "refresh", "local")
                step("revoke at the provider (RFC 7009), then delete locally")
                show(vault, "revoke", "local")
                sys.stderr.write(f"introspection of the old token now: {idp.introspect(token)}\n")
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
