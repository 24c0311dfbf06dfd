"""`docker-credential-vault`, end to end: the real client (skopeo, from Debian, with
`credHelpers` in its auth file) pushes to and inspects a real registry (Debian's
docker-registry on 127.0.0.1, behind a proxy that accepts only the vault's current token),
and the helper is driven by hand for the verbs skopeo does not use."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VAULT_BIN, VaultCLI
from tests.harness.helper_probe import probe_imports, running_agent
from tests.harness.registry import REGISTRY, SKOPEO, Registry, make_oci_image, running_registry

pytestmark = pytest.mark.skipif(
    REGISTRY is None or SKOPEO is None, reason="needs Debian's skopeo and docker-registry"
)

BIN = Path(VAULT_BIN).parent
HELPER = str(BIN / "docker-credential-vault")
CANARY = "ghp_REGISTRYcanary0123456789abcdefghijkl"
USER = "octo-tester"
NOT_FOUND = "credentials not found in native keychain\n"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def image(tmp_path: Path) -> Path:
    folder = tmp_path / "image"
    make_oci_image(folder)
    return folder


def _setup(vault: VaultCLI, registry: Registry, *, scope: str | None = None) -> None:
    args = ["--scope", scope] if scope else []
    r = vault.run("import", "reg", "--provider", "github", *args, input=CANARY + "\n")
    assert r.returncode == 0, r
    _config(vault, f"registries:\n  {registry.host}: {{token: reg, username: {USER}}}\n")
    registry.gate.reset(USER, CANARY)


def _config(vault: VaultCLI, text: str) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    path = vault.home / "config.yaml"
    path.write_text(text)
    path.chmod(0o600)


def _skopeo(
    vault: VaultCLI, registry: Registry, tmp_path: Path, *args: str, helper_host: str | None = None
) -> subprocess.CompletedProcess[str]:
    """skopeo ARGS with an auth file that sends ``helper_host`` (default: the registry) to
    `docker-credential-vault`, found on PATH as docker finds it."""
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"credHelpers": {helper_host or registry.host: "vault"}}))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    home = tmp_path / "skopeo-home"
    home.mkdir(exist_ok=True)
    env = vault.full_env({"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home)})
    verb, rest = args[0], args[1:]
    return subprocess.run(
        [str(SKOPEO), "--policy", str(policy), verb, "--authfile", str(auth), *rest],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        start_new_session=True,
    )


def _push(
    vault: VaultCLI, registry: Registry, tmp_path: Path, image: Path, **kw: str
) -> subprocess.CompletedProcess[str]:
    return _skopeo(
        vault,
        registry,
        tmp_path,
        "copy",
        "--dest-tls-verify=false",
        f"oci:{image}:latest",
        f"docker://{registry.host}/vault/hello:latest",
        **kw,
    )


def _inspect(
    vault: VaultCLI, registry: Registry, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return _skopeo(
        vault,
        registry,
        tmp_path,
        "inspect",
        "--tls-verify=false",
        f"docker://{registry.host}/vault/hello:latest",
    )


def _sent(registry: Registry) -> list[str]:
    """The "user:password" of every Basic header the registry got."""
    return [base64.b64decode(h.removeprefix("Basic ")).decode() for h in registry.gate.seen]


def _events(vault: VaultCLI) -> list[dict[str, object]]:
    path = vault.home / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _helper(vault: VaultCLI, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [HELPER, *args],
        input=stdin,
        capture_output=True,
        env=vault.full_env(),
        timeout=60,
        check=False,
        start_new_session=True,  # no terminal: nothing may be asked
    )


def _no_canary_outside(vault: VaultCLI, registry: Registry, *outputs: str) -> None:
    """The canary went to the registry (as Basic credentials) and nowhere else we can see."""
    for text in outputs:
        assert CANARY not in text
    assert CANARY not in (vault.home / "audit.jsonl").read_text()
    assert CANARY not in registry.log.read_text(errors="replace")
    log = vault.home / "agent.log"
    assert not log.exists() or CANARY not in log.read_text()


def test_skopeo_pushes_and_inspects_with_the_vault_token(
    vault: VaultCLI, registry: Registry, tmp_path: Path, image: Path
) -> None:
    _setup(vault, registry)
    pushed = _push(vault, registry, tmp_path, image)
    assert pushed.returncode == 0, pushed.stderr
    inspected = _inspect(vault, registry, tmp_path)
    assert inspected.returncode == 0, inspected.stderr
    assert len(json.loads(inspected.stdout)["Layers"]) == 1
    # The registry was reached with the token, as Basic credentials with the configured user.
    expected = "Basic " + base64.b64encode(f"{USER}:{CANARY}".encode()).decode()
    assert expected in registry.gate.seen
    assert set(registry.gate.seen) == {expected}
    used = [e for e in _events(vault) if e["event"] == "used"]
    assert len(used) >= 2  # one for each skopeo command at least
    assert {e["command"] for e in used} == {f"docker-credential {registry.host} (skopeo)"}
    assert all(e["outcome"] == "success" and e["name"] == "reg" for e in used)
    _no_canary_outside(
        vault, registry, pushed.stdout, pushed.stderr, inspected.stdout, inspected.stderr
    )


def test_a_token_the_registry_does_not_take_fails_the_push(
    vault: VaultCLI, registry: Registry, tmp_path: Path, image: Path
) -> None:
    _setup(vault, registry)
    registry.gate.reset(USER, "ghp_someOtherTokenTheRegistryWants000000")
    pushed = _push(vault, registry, tmp_path, image)
    assert pushed.returncode != 0
    assert registry.gate.refused > 0
    assert registry.gate.seen  # the helper's credentials were offered, and refused
    assert CANARY not in pushed.stderr


def test_an_unconfigured_host_gets_no_credentials(
    vault: VaultCLI, registry: Registry, tmp_path: Path, image: Path
) -> None:
    _setup(vault, registry)
    _config(vault, "registries:\n  registry.example.com: {token: reg}\n")
    pushed = _push(vault, registry, tmp_path, image)
    assert pushed.returncode != 0
    assert set(_sent(registry)) <= {":"}  # skopeo had no credentials to send
    assert [e for e in _events(vault) if e["event"] == "used"] == []
    # As the helper protocol says it, to the letter (clients compare the words).
    r = _helper(vault, "get", stdin=registry.host.encode())
    assert (r.returncode, r.stdout, r.stderr) == (1, NOT_FOUND.encode(), b"")


def test_policy_denial_fails_skopeo_and_is_audited(
    vault: VaultCLI, registry: Registry, tmp_path: Path, image: Path
) -> None:
    _setup(vault, registry, scope="repo")
    folder = vault.home / "policies"
    folder.mkdir(mode=0o700)
    (folder / "p.yaml").write_text("version: 1\nallowed_scopes: ['read:*']\n")
    pushed = _push(vault, registry, tmp_path, image)
    assert pushed.returncode != 0
    assert set(_sent(registry)) <= {":"}  # no token left the vault
    denied = [e for e in _events(vault) if e["event"] == "denied"]
    assert denied
    assert {e["command"] for e in denied} == {f"docker-credential {registry.host} (skopeo)"}
    r = _helper(vault, "get", stdin=registry.host.encode())
    assert r.returncode == 5
    assert r.stdout.count(b"\n") == 1  # one line, where docker's client reads it
    assert b"allowed_scopes" in r.stdout
    assert CANARY.encode() not in r.stdout + r.stderr


def test_through_the_agent_skopeo_works_the_same(
    vault: VaultCLI, registry: Registry, tmp_path: Path, image: Path
) -> None:
    _setup(vault, registry, scope="repo")
    with running_agent(vault, tmp_path) as agent:
        _through_the_agent(vault, registry, tmp_path, image, agent)


def _through_the_agent(
    vault: VaultCLI, registry: Registry, tmp_path: Path, image: Path, agent: int
) -> None:
    pushed = _push(vault, registry, tmp_path, image)
    assert pushed.returncode == 0, pushed.stderr
    inspected = _inspect(vault, registry, tmp_path)
    assert inspected.returncode == 0, inspected.stderr
    used = [e for e in _events(vault) if e["event"] == "used"]
    assert used
    assert {e["command"] for e in used} == {f"docker-credential {registry.host} (skopeo)"}
    assert {e.get("agent") for e in used} == {agent}  # served by the agent, every one
    # A denial through the agent: skopeo fails, the agent audits it.
    folder = vault.home / "policies"
    folder.mkdir(mode=0o700)
    (folder / "p.yaml").write_text("version: 1\nallowed_scopes: ['read:*']\n")
    refused = _push(vault, registry, tmp_path, image)
    assert refused.returncode != 0
    denied = [e for e in _events(vault) if e["event"] == "denied"]
    assert denied
    assert {e.get("agent") for e in denied} == {agent}
    _no_canary_outside(vault, registry, pushed.stderr, inspected.stderr)


def test_get_through_the_agent_imports_nothing_heavy(
    vault: VaultCLI, registry: Registry, tmp_path: Path
) -> None:
    _setup(vault, registry)
    with running_agent(vault, tmp_path):
        _imports_nothing_heavy(vault, registry)


def _imports_nothing_heavy(vault: VaultCLI, registry: Registry) -> None:
    proc, heavy = probe_imports(vault, "docker", ["get"], registry.host.encode())
    assert proc.returncode == 0, proc
    assert json.loads(proc.stdout)["Secret"] == CANARY
    assert heavy == []
    # A host no section names: the agent says so, and nothing heavy is loaded either.
    proc, heavy = probe_imports(vault, "docker", ["get"], b"elsewhere.example:5000")
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND.encode())
    assert heavy == []


def test_the_protocol_verbs(vault: VaultCLI, registry: Registry) -> None:
    _setup(vault, registry)
    got = _helper(vault, "get", stdin=f"https://{registry.host}/v2/\n".encode())
    assert got.returncode == 0, got
    assert json.loads(got.stdout) == {
        "ServerURL": f"https://{registry.host}/v2/",
        "Username": USER,
        "Secret": CANARY,
    }
    assert got.stderr == b""
    listed = _helper(vault, "list")
    assert listed.returncode == 0, listed
    assert json.loads(listed.stdout) == {registry.host: USER}
    assert CANARY.encode() not in listed.stdout + listed.stderr
    # docker login HOST stores what it read from `get`: nothing to do for a configured host.
    creds = json.dumps({"ServerURL": registry.host, "Username": USER, "Secret": "typed-pw-123"})
    stored = _helper(vault, "store", stdin=creds.encode())
    assert (stored.returncode, stored.stdout) == (0, b"")
    assert b"typed-pw-123" not in stored.stderr
    # Another host: vault keeps no passwords.
    other = json.dumps({"ServerURL": "other.example", "Username": "u", "Secret": "typed-pw-123"})
    refused = _helper(vault, "store", stdin=other.encode())
    assert refused.returncode == 2
    assert refused.stdout.count(b"\n") == 1
    assert b"typed-pw-123" not in refused.stdout + refused.stderr
    # docker logout: a configured host goes on being served, and the helper says so.
    erased = _helper(vault, "erase", stdin=registry.host.encode())
    assert erased.returncode == 2
    assert b"remove it there" in erased.stdout
    assert _helper(vault, "erase", stdin=b"other.example").stdout == NOT_FOUND.encode()
    # The rest, as docker-credential-helpers' own helpers answer them.
    assert _helper(vault, "version").stdout.startswith(b"docker-credential-vault (vault) ")
    for argv in ([], ["get", "extra"], ["frobnicate"]):
        r = _helper(vault, *argv)
        assert r.returncode == 1
        assert r.stdout.count(b"\n") == 1
    used = [e for e in _events(vault) if e["event"] == "used"]
    assert len(used) == 1  # only `get` handed the token out
    command = str(used[0]["command"])
    assert command.startswith(f"docker-credential {registry.host} (")  # (the test's python)
    assert command.endswith(")")


def test_never_asks_for_a_passphrase(passphrase_vault: VaultCLI, registry: Registry) -> None:
    _setup(passphrase_vault, registry)
    env = dict(passphrase_vault.env)
    env.pop("VAULT_PASSPHRASE_FILE")
    bare = VaultCLI(passphrase_vault.home, env)
    r = _helper(bare, "get", stdin=registry.host.encode())
    assert r.returncode == 6
    assert r.stdout.count(b"\n") == 1
    assert b"never prompts" in r.stdout


def test_a_bad_config_is_exit_3_naming_file_and_key(vault: VaultCLI, registry: Registry) -> None:
    _setup(vault, registry)
    _config(vault, f"registries:\n  {registry.host}: {{token: reg, colour: blue}}\n")
    r = _helper(vault, "get", stdin=registry.host.encode())
    assert r.returncode == 3
    assert b"config.yaml:2" in r.stdout
    assert b"colour" in r.stdout


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda pre, post: (pre + "127.0.0.1:5000" + post).encode(),
            st.sampled_from(["", "https://", "http://", "user:pw@", "https://u@", " ", "\x00"]),
            st.sampled_from(["", "/", "/v2/", "/a/b", "?q=1", "#f", "\x00", "\n\n", ":99999"]),
        ),
        st.just(b"x" * 200_000),
    )
)
def test_hostile_server_urls_never_crash_the_helper(vault: VaultCLI, stdin: bytes) -> None:
    from vault.util.hosts import registry_host

    _config(vault, "registries:\n  127.0.0.1:5000: {token: reg}\n")
    r = _helper(vault, "get", stdin=stdin)
    try:
        configured = registry_host(stdin.decode("ascii")) == "127.0.0.1:5000"
    except UnicodeDecodeError:
        configured = False
    if configured:
        # Configured, but no token named `reg` is stored: exit 4, one line.
        assert r.returncode == 4, r
        assert r.stdout.count(b"\n") == 1
    else:
        assert (r.returncode, r.stdout) == (1, NOT_FOUND.encode()), r
    assert b"Traceback" not in r.stdout + r.stderr
    assert b"internal error" not in r.stdout + r.stderr
