"""`terraform-credentials-vault`, end to end: driven exactly as Terraform drives a credentials
helper (argv `VERB HOST`, JSON on stdout, errors on stderr), and by the real `terraform`
where it is installed: `terraform init` fetching a module from a registry on 127.0.0.1 over
HTTPS (service discovery included), the helper found in Terraform's plugin folder."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VAULT_BIN, VaultCLI
from tests.harness.helper_probe import probe_imports, running_agent
from tests.harness.tf_registry import TERRAFORM, running_module_registry

HELPER = str(Path(VAULT_BIN).parent / "terraform-credentials-vault")
CANARY = "tfcCANARY.atlasv1.0123456789abcdefghijklmnopqrstuvwxyz"
HOST = "app.terraform.io"


def _setup(vault: VaultCLI, host: str = HOST, *, scope: str | None = None) -> None:
    args = ["--scope", scope] if scope else []
    r = vault.run("import", "tfc", "--provider", "github", *args, input=CANARY + "\n")
    assert r.returncode == 0, r
    _config(vault, f"terraform:\n  {host}: {{token: tfc}}\n")


def _config(vault: VaultCLI, text: str) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    path = vault.home / "config.yaml"
    path.write_text(text)
    path.chmod(0o600)


def _helper(
    vault: VaultCLI, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """As Terraform runs it: the verb and the host as arguments; stdin only for `store`."""
    return subprocess.run(
        [HELPER, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env=vault.full_env(),
        timeout=60,
        check=False,
        start_new_session=True,  # no terminal: nothing may be asked
    )


def _events(vault: VaultCLI) -> list[dict[str, object]]:
    path = vault.home / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_get_prints_the_token_object(vault: VaultCLI) -> None:
    _setup(vault)
    r = _helper(vault, "get", HOST)
    assert (r.returncode, r.stderr) == (0, b""), r
    assert json.loads(r.stdout) == {"token": CANARY}
    # Terraform's spelling of the same host: lowercase, the default port left out.
    assert json.loads(_helper(vault, "get", "APP.Terraform.io:443").stdout) == {"token": CANARY}
    used = [e for e in _events(vault) if e["event"] == "used"]
    assert len(used) == 2
    assert all(str(e["command"]).startswith(f"terraform-credentials {HOST} (") for e in used)
    assert CANARY not in (vault.home / "audit.jsonl").read_text()


def test_get_through_the_agent_imports_nothing_heavy(vault: VaultCLI, tmp_path: Path) -> None:
    _setup(vault)
    with running_agent(vault, tmp_path) as agent:
        proc, heavy = probe_imports(vault, "terraform", ["get", HOST])
        assert proc.returncode == 0, proc
        assert json.loads(proc.stdout) == {"token": CANARY}
        assert heavy == []
        proc, heavy = probe_imports(vault, "terraform", ["get", "other.example.com"])
        assert (proc.returncode, proc.stdout) == (0, b"{}\n")
        assert heavy == []
        r = _helper(vault, "get", HOST)  # the executable itself, as Terraform runs it
        assert json.loads(r.stdout) == {"token": CANARY}
    used = [e for e in _events(vault) if e["event"] == "used"]
    assert len(used) == 2
    assert {e.get("agent") for e in used} == {agent}


def test_a_host_it_does_not_serve_is_an_empty_object(vault: VaultCLI) -> None:
    _setup(vault)
    for host in ("registry.terraform.io", "app.terraform.io:8443", "evil.app.terraform.io"):
        r = _helper(vault, "get", host)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"{}\n", b""), r
    assert [e for e in _events(vault) if e["event"] == "used"] == []


def test_policy_denial_is_an_error_on_stderr_and_audited(vault: VaultCLI) -> None:
    _setup(vault, scope="repo")
    folder = vault.home / "policies"
    folder.mkdir(mode=0o700)
    (folder / "p.yaml").write_text("version: 1\nallowed_scopes: ['read:*']\n")
    r = _helper(vault, "get", HOST)
    assert r.returncode == 5
    assert r.stdout == b""
    assert r.stderr.count(b"\n") == 1
    assert CANARY.encode() not in r.stderr
    denied = [e for e in _events(vault) if e["event"] == "denied"]
    assert [str(e["command"]).split(" (")[0] for e in denied] == [f"terraform-credentials {HOST}"]


def test_store_reads_all_of_stdin_and_refuses(vault: VaultCLI) -> None:
    _setup(vault)
    typed = json.dumps({"token": "new-token-from-terraform-login-" + "x" * 2_000_000}).encode()
    for host in (HOST, "other.example.com"):
        r = _helper(vault, "store", host, stdin=typed)  # a blocked writer would time out
        assert r.returncode == 2
        assert r.stdout == b""
        assert r.stderr.count(b"\n") == 1
        assert b"new-token-from" not in r.stderr
    assert json.loads(_helper(vault, "get", HOST).stdout) == {"token": CANARY}  # unchanged


def test_forget(vault: VaultCLI) -> None:
    _setup(vault)
    # Nothing is stored for another host: the protocol's silent success.
    r = _helper(vault, "forget", "other.example.com")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    # The vault goes on serving a configured host: the protocol says to fail then.
    r = _helper(vault, "forget", HOST)
    assert r.returncode == 2
    assert r.stderr.count(b"\n") == 1
    assert b"remove it there" in r.stderr


def test_other_verbs_and_shapes_are_refused(vault: VaultCLI) -> None:
    _setup(vault)
    for argv in ([], ["get"], ["get", HOST, "extra"], ["list", HOST], ["--host=x", "get", HOST]):
        r = _helper(vault, *argv)
        assert r.returncode == 2, r
        assert r.stdout == b""
        assert r.stderr.count(b"\n") == 1


def test_never_asks_for_a_passphrase(passphrase_vault: VaultCLI) -> None:
    _setup(passphrase_vault)
    env = dict(passphrase_vault.env)
    env.pop("VAULT_PASSPHRASE_FILE")
    r = _helper(VaultCLI(passphrase_vault.home, env), "get", HOST)
    assert r.returncode == 6
    assert r.stdout == b""
    assert b"never prompts" in r.stderr


def test_a_bad_config_is_exit_3_naming_file_and_key(vault: VaultCLI) -> None:
    _setup(vault)
    _config(vault, f"terraform:\n  {HOST}: {{token: tfc, username: me}}\n")
    r = _helper(vault, "get", HOST)
    assert r.returncode == 3
    assert b"config.yaml:2" in r.stderr
    assert b"username" in r.stderr


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.one_of(
        st.text(
            st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
            max_size=200,
        ),
        st.builds(
            lambda pre, post: pre + HOST + post,
            st.sampled_from(["", "https://", "user@", "-", " ", "*."]),
            st.sampled_from(["", "/", "/v1", ":0", ":443", ":65536", ".", "\n"]),
        ),
        st.just("a" * 100_000),
    )
)
def test_hostile_hosts_never_crash_the_helper(vault: VaultCLI, host: str) -> None:
    from vault.util.hosts import service_host

    _config(vault, f"terraform:\n  {HOST}: {{token: tfc}}\n")
    r = _helper(vault, "get", host)
    assert b"Traceback" not in r.stdout + r.stderr
    assert b"internal error" not in r.stderr
    if service_host(host) == HOST:  # configured, but no token `tfc` is stored: exit 4
        assert r.returncode == 4, r
        assert r.stderr.count(b"\n") == 1
    else:
        assert (r.returncode, r.stdout) == (0, b"{}\n"), r


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
def test_terraform_init_fetches_a_module_with_the_vault_token(
    vault: VaultCLI, tmp_path: Path
) -> None:
    with running_module_registry(tmp_path / "registry") as registry:
        _setup(vault, registry.host)
        home = tmp_path / "home"
        plugins = home / ".terraform.d" / "plugins"
        plugins.mkdir(parents=True)
        (plugins / "terraform-credentials-vault").symlink_to(HELPER)
        cli_config = tmp_path / "terraform.rc"
        cli_config.write_text('credentials_helper "vault" {}\n')
        project = tmp_path / "project"
        project.mkdir()
        (project / "main.tf").write_text(
            f'module "hello" {{\n  source  = "{registry.host}/acme/hello/null"\n'
            '  version = "1.0.0"\n}\n'
        )
        env = vault.full_env(
            {
                "HOME": str(home),
                "TF_CLI_CONFIG_FILE": str(cli_config),
                "SSL_CERT_FILE": str(registry.ca_file),
                "TF_IN_AUTOMATION": "1",
                "CHECKPOINT_DISABLE": "1",
            }
        )
        for key in ("TF_PLUGIN_CACHE_DIR", "TF_TOKEN_127_0_0_1"):
            env.pop(key, None)
        r = subprocess.run(
            [str(TERRAFORM), "init", "-input=false", "-no-color", "-backend=false"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            start_new_session=True,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert (project / ".terraform" / "modules" / "hello" / "main.tf").exists()
        authorized = {path for path, auth in registry.seen if auth == f"Bearer {CANARY}"}
        assert "/v1/modules/acme/hello/null/versions" in authorized
        assert "/v1/modules/acme/hello/null/1.0.0/download" in authorized
        assert all(auth in (None, f"Bearer {CANARY}") for _, auth in registry.seen)
        used = [e for e in _events(vault) if e["event"] == "used"]
        assert used
        assert {e["command"] for e in used} == {
            f"terraform-credentials {registry.host} (terraform)"
        }
        assert CANARY not in r.stdout + r.stderr
        assert CANARY not in (vault.home / "audit.jsonl").read_text()
        assert os.path.islink(plugins / "terraform-credentials-vault")
