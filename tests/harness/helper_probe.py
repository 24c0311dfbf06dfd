"""For the credential helpers' tests: an agent for a test's vault, and the modules a
helper's start-up path loads."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import VaultCLI


@contextlib.contextmanager
def running_agent(vault: VaultCLI, tmp_path: Path) -> Iterator[int]:
    """`vault agent start` for this vault (a runtime folder of its own); its pid; stopped
    after."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    vault.env["XDG_RUNTIME_DIR"] = str(run)
    r = vault.run("agent", "start")
    assert r.returncode == 0, r
    status = json.loads(vault.run("agent", "status", "--json").stdout)
    assert status["unlocked"] is True
    try:
        yield int(status["pid"])
    finally:
        vault.run("agent", "stop")


# The modules a helper's `get` must not load when the agent serves it (the agent does that
# work): the same list as `vault token`'s (tests/integration/test_hot_path.py), and more.
HEAVY = (
    "argparse",
    "json",
    "re",
    "typing",
    "pathlib",
    "dataclasses",
    "inspect",
    "httpx",
    "structlog",
    "yaml",
    "keyring",
    "secretstorage",
    "jeepney",
    "hashlib",
    "hmac",
    "argon2",
    "datetime",
    "cryptography",
    "secrets",
    "random",
    "vault.store",
    "vault.policy",
    "vault.audit",
    "vault.login",
    "vault.util.redact",
    "vault.util.log",
    "vault.cli.parser",
    "vault.cli.app",
)

PROBE = (
    "import sys\n"
    "from vault.cli.helpers.boundary import run\n"
    "from vault.cli.helpers.{module} import main\n"
    "code = run(main, {argv!r}, prog='probe', errors=sys.stdout)\n"
    "sys.stdout.flush()\n"
    "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def probe_imports(
    vault: VaultCLI, module: str, argv: list[str], stdin: bytes = b""
) -> tuple[subprocess.CompletedProcess[bytes], list[str]]:
    """Run a helper's main in a fresh interpreter; its result and the heavy modules it loaded."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, argv=argv)],
        input=stdin,
        env=vault.full_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    loaded = set(proc.stderr.decode().split())
    assert "vault.cli.serve" in loaded  # the probe saw the command's modules
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    return proc, sorted(heavy)
