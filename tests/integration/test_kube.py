"""`vault kube NAME [--id-token]` as kubectl runs it: the real kubectl, a kubeconfig whose user
runs the installed `vault kube` as an exec credential plugin, and a loopback HTTPS server
(tests/harness/kube_api.py) that records the Authorization header of every request kubectl
sends. Tokens come from a real login at the local provider (oidc-provider), or are imported
canaries. `vault kube setup` is checked by having kubectl itself read what it writes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import (
    VAULT_BIN,
    Result,
    VaultCLI,
    approved_login,
    configure_provider,
    read_record,
)
from tests.harness.kube_api import KubeAPI, start_kube_api
from tests.harness.provider import IdP, start_idp

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
CANARY = "ghp_" + "KubeCanary" * 3 + "0123456789"
BIG = "999999"  # --min-valid beyond the provider's 3600 s access tokens: a refresh is due
KUBECTL = shutil.which("kubectl")


def _exec_info(api_version: str = V1, *, interactive: bool = False) -> str:
    return json.dumps(
        {"kind": "ExecCredential", "apiVersion": api_version, "spec": {"interactive": interactive}}
    )


@pytest.fixture(scope="module")
def kubectl() -> str:
    """The real kubectl (the image has it; .ci/run installs it where it is missing)."""
    if KUBECTL is None:
        pytest.fail("kubectl is not installed: these tests need the real one")
    return KUBECTL


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeAPI]:
    folder = tmp_path / "kube-api"
    folder.mkdir()
    with start_kube_api(folder) as server:
        yield server


@pytest.fixture
def idp() -> Iterator[IdP]:
    with start_idp() as server:
        yield server


def _kubeconfig(
    path: Path, api: KubeAPI, args: list[str], *, api_version: str = V1, env: dict[str, str]
) -> Path:
    """A kubeconfig whose one user runs `vault ARGS` (VAULT_HOME set in the entry's env, as
    `vault kube setup` writes it)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": api.url, "certificate-authority": str(api.ca_file)},
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "vault"}}],
        "current-context": "local",
        "users": [
            {
                "name": "vault",
                "user": {
                    "exec": {
                        "apiVersion": api_version,
                        "command": VAULT_BIN,
                        "args": args,
                        "env": [{"name": k, "value": v} for k, v in env.items()],
                        "interactiveMode": "IfAvailable",
                        "provideClusterInfo": False,
                    }
                },
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _kubectl(
    kubectl: str, vault: VaultCLI, kubeconfig: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """`kubectl ARGS` with this kubeconfig, no terminal, the vault's environment."""
    return subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(kubeconfig.parent / "kube-cache"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=vault.full_env(),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
        start_new_session=True,
    )


def _plugin_env(vault: VaultCLI) -> dict[str, str]:
    return {"VAULT_HOME": str(vault.home)}


def _used(vault: VaultCLI) -> list[dict[str, Any]]:
    out = vault.run("audit", "show", "--event", "used", "--json").stdout
    return [json.loads(line) for line in out.splitlines()]


def _refresh_grants(idp: IdP) -> list[dict[str, object]]:
    return [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]


def _login(vault: VaultCLI, idp: IdP) -> dict[str, object]:
    configure_provider(vault, idp.issuer)
    code, _, err = approved_login(vault)
    assert code == 0, err
    record = read_record(vault, "local")
    assert record is not None
    return record


def _import(vault: VaultCLI, name: str = "gh", token: str = CANARY, *args: str) -> None:
    r = vault.run("import", name, "--provider", "github", *args, input=token + "\n")
    assert r.returncode == 0, r


def _kube(vault: VaultCLI, *args: str, info: str | None = _exec_info()) -> Result:
    env = {} if info is None else {"KUBERNETES_EXEC_INFO": info}
    return vault.run("kube", *args, env=env)


def _one_line(r: Result, code: int, *needles: str) -> str:
    """The run failed with ``code``, said one line on stderr and nothing on stdout."""
    assert r.returncode == code, r
    assert r.stdout == "", r
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r
    assert lines[0].startswith("vault: error: "), r
    for needle in needles:
        assert needle in lines[0], (needle, r)
    return lines[0]


@contextlib.contextmanager
def _agent(vault: VaultCLI) -> Iterator[int]:
    started = vault.run("agent", "start", "--idle", "0")
    assert started.returncode == 0, started
    status = json.loads(vault.run("agent", "status", "--json").stdout)
    pid = status["pid"]
    assert isinstance(pid, int)
    try:
        yield pid
    finally:
        vault.run("agent", "stop")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(params=["direct", "agent"])
def served(request: pytest.FixtureRequest, vault: VaultCLI, tmp_path: Path) -> Iterator[str]:
    """Each test with it runs twice: without an agent, and with one running for the vault."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    vault.env["XDG_RUNTIME_DIR"] = str(run)
    if request.param == "direct":
        yield "direct"
        return
    _import(vault, "warmup")  # the vault must exist before an agent can be started for it
    with _agent(vault):
        yield "agent"


# --- kubectl, a real login --------------------------------------------------------------------


def test_kubectl_sends_the_access_token_of_a_real_login(  # noqa: PLR0917 (fixtures)
    kubectl: str, vault: VaultCLI, idp: IdP, api: KubeAPI, tmp_path: Path, served: str
) -> None:
    record = _login(vault, idp)
    config = _kubeconfig(tmp_path / "kubeconfig", api, ["kube", "local"], env=_plugin_env(vault))
    got = _kubectl(kubectl, vault, config, "get", "--raw", "/api")
    assert got.returncode == 0, got
    assert json.loads(got.stdout)["kind"] == "APIVersions"
    pods = _kubectl(kubectl, vault, config, "get", "pods")
    assert pods.returncode == 0, pods
    assert "No resources found" in pods.stderr
    sent = api.bearer_tokens()
    assert sent, api.seen
    assert set(sent) == {record["access_token"]}
    assert all(s.authorization is not None for s in api.seen)
    assert idp.introspect(str(record["access_token"]))["active"] is True
    used = [u for u in _used(vault) if u["name"] == "local"]
    assert len(used) == 2  # one plugin run per kubectl command
    assert {u["command"] for u in used} == {"kube kubectl"}
    assert {u["outcome"] for u in used} == {"success"}
    if served == "agent":
        assert all("agent" in u for u in used)
    else:
        assert all("agent" not in u for u in used)
    assert _refresh_grants(idp) == []  # a fresh token: nothing refreshed


def test_kubectl_sends_the_id_token_with_id_token(  # noqa: PLR0917 (fixtures)
    kubectl: str, vault: VaultCLI, idp: IdP, api: KubeAPI, tmp_path: Path, served: str
) -> None:
    record = _login(vault, idp)
    config = _kubeconfig(
        tmp_path / "kubeconfig", api, ["kube", "local", "--id-token"], env=_plugin_env(vault)
    )
    got = _kubectl(kubectl, vault, config, "get", "--raw", "/api/v1/namespaces/default/pods")
    assert got.returncode == 0, got
    assert set(api.bearer_tokens()) == {record["id_token"]}
    assert record["id_token"] != record["access_token"]
    assert [u["command"] for u in _used(vault) if u["name"] == "local"] == ["kube kubectl"]


def test_the_credential_carries_each_tokens_own_expiry(vault: VaultCLI, idp: IdP) -> None:
    import base64

    record = _login(vault, idp)
    access = json.loads(_kube(vault, "local").stdout)
    ident = json.loads(_kube(vault, "local", "--id-token").stdout)
    assert set(access) == {"apiVersion", "kind", "status"}
    assert access["apiVersion"] == V1
    assert access["kind"] == "ExecCredential"
    assert set(access["status"]) == {"token", "expirationTimestamp"}
    assert access["status"]["token"] == record["access_token"]
    assert ident["status"]["token"] == record["id_token"]
    payload = str(record["id_token"]).split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    import datetime

    def stamp(ts: float) -> str:
        return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert ident["status"]["expirationTimestamp"] == stamp(claims["exp"])
    assert access["status"]["expirationTimestamp"] == stamp(float(str(record["expires_at"])))


# --- many kubectl at once: every one served, one refresh --------------------------------------


def test_many_kubectl_at_once_share_one_refresh(  # noqa: PLR0917 (fixtures)
    kubectl: str, vault: VaultCLI, idp: IdP, api: KubeAPI, tmp_path: Path, served: str
) -> None:
    before = _login(vault, idp)
    # Due for a refresh: the plugin asks for more validity than the token has left.
    config = _kubeconfig(
        tmp_path / "kubeconfig",
        api,
        ["kube", "local", "--min-valid", BIG],
        env=_plugin_env(vault),
    )
    results: list[subprocess.CompletedProcess[str]] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def one() -> None:
        start.wait(60)
        got = _kubectl(kubectl, vault, config, "get", "--raw", "/api")
        with lock:
            results.append(got)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(results) == 12
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    refreshes = _refresh_grants(idp)
    assert [g["result"] for g in refreshes] == ["ok"]  # exactly one refresh for all twelve
    after = read_record(vault, "local")
    assert after is not None
    assert after["access_token"] != before["access_token"]
    sent = api.bearer_tokens()
    assert len(sent) >= 12
    assert set(sent) == {after["access_token"]}  # every one got the refreshed token
    assert idp.introspect(str(after["access_token"]))["active"] is True
    used = [u for u in _used(vault) if u["name"] == "local"]
    assert len(used) == 12
    assert {(u["command"], u["outcome"]) for u in used} == {("kube kubectl", "success")}
    if served == "agent":
        assert all("agent" in u for u in used)
    assert vault.run("audit", "verify").returncode == 0


# --- refusals: nothing interactive, one line, exit 4 ------------------------------------------


def test_an_unknown_name_is_exit_4_and_one_line(vault: VaultCLI, served: str) -> None:
    _import(vault)
    line = _one_line(_kube(vault, "nope"), 4, "no token named 'nope'", "vault login")
    assert "--name nope" in line


def test_a_token_that_needs_a_login_is_refused_without_asking(
    vault: VaultCLI, idp: IdP, served: str
) -> None:
    record = _login(vault, idp)
    idp.revoke(str(record["refresh_token"]), "refresh_token")
    # The refresh the provider refuses marks the token; every later run is refused at once.
    _one_line(_kube(vault, "local", "--min-valid", BIG), 4, "vault login local --name local")
    asked = len(_refresh_grants(idp))
    for args in (("local",), ("local", "--id-token"), ("local", "--min-valid", BIG)):
        _one_line(_kube(vault, *args), 4, "needs a new login", "vault login local --name local")
    assert len(_refresh_grants(idp)) == asked  # never sent to the provider again


def test_an_expired_token_without_refresh_is_exit_4(vault: VaultCLI, served: str) -> None:
    _import(vault, "gh", CANARY, "--expires-in", "3600")
    line = _one_line(_kube(vault, "gh", "--min-valid", BIG), 4, "vault login github --name gh")
    assert CANARY not in line
    # The same token with time enough left is handed out.
    assert json.loads(_kube(vault, "gh").stdout)["status"]["token"] == CANARY


def test_id_token_of_a_token_without_one_is_exit_4(vault: VaultCLI, served: str) -> None:
    _import(vault)
    _one_line(_kube(vault, "gh", "--id-token"), 4, "has no ID token", "--scope openid")


def test_interactive_says_the_same_with_a_hint_and_starts_nothing(vault: VaultCLI) -> None:
    _import(vault)
    r = _kube(vault, "nope", info=_exec_info(interactive=True))
    assert r.returncode == 4, r
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r
    assert "vault login PROVIDER --name nope" in lines[0]
    assert lines[1].startswith("vault: hint: ")
    assert "device_code" not in r.stderr


def test_kubectl_shows_the_refusal_and_sends_nothing(
    kubectl: str, vault: VaultCLI, api: KubeAPI, tmp_path: Path
) -> None:
    _import(vault)
    config = _kubeconfig(tmp_path / "kubeconfig", api, ["kube", "nope"], env=_plugin_env(vault))
    got = _kubectl(kubectl, vault, config, "get", "--raw", "/api")
    assert got.returncode != 0
    assert "vault login PROVIDER --name nope" in got.stderr
    assert api.bearer_tokens() == []  # kubectl got no credential to send


def test_a_locked_passphrase_vault_never_prompts(passphrase_vault: VaultCLI) -> None:
    _import(passphrase_vault)
    env = passphrase_vault.full_env({"KUBERNETES_EXEC_INFO": _exec_info()})
    env.pop("VAULT_PASSPHRASE_FILE")
    proc = subprocess.run(
        [VAULT_BIN, "kube", "gh"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 6, proc
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "never prompts" in proc.stderr


# --- KUBERNETES_EXEC_INFO -----------------------------------------------------------------


def test_v1beta1_is_answered_in_v1beta1(
    kubectl: str, vault: VaultCLI, api: KubeAPI, tmp_path: Path, served: str
) -> None:
    _import(vault)
    out = json.loads(_kube(vault, "gh", info=_exec_info(V1BETA1)).stdout)
    assert out == {"apiVersion": V1BETA1, "kind": "ExecCredential", "status": {"token": CANARY}}
    config = _kubeconfig(
        tmp_path / "kubeconfig", api, ["kube", "gh"], api_version=V1BETA1, env=_plugin_env(vault)
    )
    got = _kubectl(kubectl, vault, config, "get", "--raw", "/api")
    assert got.returncode == 0, got
    assert set(api.bearer_tokens()) == {CANARY}


def test_no_exec_info_answers_v1(vault: VaultCLI, served: str) -> None:
    _import(vault)
    r = _kube(vault, "gh", info=None)
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {
        "apiVersion": V1,
        "kind": "ExecCredential",
        "status": {"token": CANARY},  # an imported token without expiry: none given
    }


MALFORMED = {
    "not json": "{not json",
    "an array": "[]",
    "trailing": _exec_info() + "x",
    "another version": _exec_info("client.authentication.k8s.io/v1alpha1"),
    "no version": json.dumps({"kind": "ExecCredential", "spec": {}}),
    "another kind": json.dumps({"kind": "Pod", "apiVersion": V1, "spec": {}}),
    "spec not an object": json.dumps({"kind": "ExecCredential", "apiVersion": V1, "spec": []}),
    "interactive a string": json.dumps(
        {"kind": "ExecCredential", "apiVersion": V1, "spec": {"interactive": "false"}}
    ),
    "too big": json.dumps(
        {"kind": "ExecCredential", "apiVersion": V1, "spec": {"x": "a" * 100_000}}
    ),
    "control characters": json.dumps({"kind": "ExecCredential", "apiVersion": "v1\x1b[2J"}),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_exec_info_is_exit_2_and_one_line(vault: VaultCLI, case: str) -> None:
    _import(vault)
    before = len(_used(vault))
    line = _one_line(_kube(vault, "gh", info=MALFORMED[case]), 2, "KUBERNETES_EXEC_INFO")
    assert "\x1b" not in line
    assert len(_used(vault)) == before  # refused before anything was used


def test_malformed_exec_info_through_the_agent(vault: VaultCLI, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    vault.env["XDG_RUNTIME_DIR"] = str(run)
    _import(vault)
    with _agent(vault):
        _one_line(_kube(vault, "gh", info=MALFORMED["another version"]), 2, "v1alpha1")


# --- the canary: where the token goes, and where it never goes ------------------------------


def test_the_token_reaches_only_kubectls_header_and_vaults_stdout(
    kubectl: str, vault: VaultCLI, api: KubeAPI, tmp_path: Path, served: str
) -> None:
    _import(vault)
    config = _kubeconfig(tmp_path / "kubeconfig", api, ["kube", "gh"], env=_plugin_env(vault))
    got = _kubectl(kubectl, vault, config, "get", "--raw", "/api", "-v", "6")
    assert got.returncode == 0, got
    assert CANARY not in got.stdout + got.stderr  # kubectl printed nothing of it
    assert {s.authorization for s in api.seen} == {f"Bearer {CANARY}"}
    direct = _kube(vault, "gh")
    assert CANARY in direct.stdout
    assert CANARY not in direct.stderr
    refused = _kube(vault, "gh", "--id-token")
    assert refused.returncode == 4
    assert CANARY not in refused.stdout + refused.stderr
    for log in (vault.home / "audit.jsonl", vault.home / "agent.log"):
        if log.exists():
            assert CANARY not in log.read_text(errors="replace"), log
    assert CANARY not in config.read_text()


# --- vault kube setup -----------------------------------------------------------------------


def test_setup_prints_the_user_entry(vault: VaultCLI) -> None:
    r = vault.run("kube", "setup", "gh", "--cluster", "prod")
    assert r.returncode == 0, r
    doc = yaml.safe_load(r.stdout)
    assert doc == {
        "users": [
            {
                "name": "vault-gh",
                "user": {
                    "exec": {
                        "apiVersion": V1,
                        "command": VAULT_BIN,
                        "args": ["kube", "gh"],
                        "env": [{"name": "VAULT_HOME", "value": str(vault.home)}],
                        "interactiveMode": "IfAvailable",
                        "provideClusterInfo": False,
                    }
                },
            }
        ]
    }
    assert "kubectl config set-context prod --cluster prod --user vault-gh" in r.stderr
    r = vault.run("kube", "setup", "gh", "--cluster", "prod", "--id-token", "--user", "me")
    entry = yaml.safe_load(r.stdout)["users"][0]
    assert entry["name"] == "me"
    assert entry["user"]["exec"]["args"] == ["kube", "gh", "--id-token"]
    r = vault.run("kube", "setup", "gh", "--cluster", "prod", "--min-valid", "300")
    assert yaml.safe_load(r.stdout)["users"][0]["user"]["exec"]["args"] == [
        "kube",
        "gh",
        "--min-valid=300",
    ]


def test_setup_write_edits_the_kubeconfig_with_kubectl(
    kubectl: str, vault: VaultCLI, api: KubeAPI, tmp_path: Path
) -> None:
    _import(vault)
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "prod",
                        "cluster": {"server": api.url, "certificate-authority": str(api.ca_file)},
                    }
                ],
                "contexts": [
                    {
                        "name": "prod",
                        "context": {"cluster": "prod", "user": "old", "namespace": "ns1"},
                    }
                ],
                "current-context": "prod",
                # A stale static token under the same user name: replaced, not kept beside.
                "users": [
                    {"name": "vault-gh", "user": {"token": "stale-static-token"}},
                    {"name": "old", "user": {"token": "old-token"}},
                ],
            }
        )
    )
    config.chmod(0o600)
    r = vault.run(
        "kube", "setup", "gh", "--cluster", "prod", "--write", "--kubeconfig", str(config)
    )
    assert r.returncode == 0, r
    assert r.stdout == ""
    view = subprocess.run(
        [kubectl, "--kubeconfig", str(config), "config", "view", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    doc = json.loads(view.stdout)
    users = {u["name"]: u["user"] for u in doc["users"]}
    assert users["vault-gh"] == {
        "exec": {
            "apiVersion": V1,
            "command": VAULT_BIN,
            "args": ["kube", "gh"],
            "env": [{"name": "VAULT_HOME", "value": str(vault.home)}],
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": False,
        }
    }
    assert users["old"] == {"token": "REDACTED"}  # other users left alone
    contexts = {c["name"]: c["context"] for c in doc["contexts"]}
    assert contexts["prod"] == {"cluster": "prod", "user": "vault-gh", "namespace": "ns1"}
    assert doc["current-context"] == "prod"
    # kubectl now runs vault for that context. (gcloud's kubectl, a version dispatcher, asks
    # the current context's server for its version on every command, `kubectl config` too:
    # what the edits above sent is not counted.)
    with api.lock:
        api.seen.clear()
    env = vault.full_env()
    got = subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(config),
            "--cache-dir",
            str(tmp_path / "c"),
            "get",
            "--raw",
            "/api",
        ],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert got.returncode == 0, got
    assert set(api.bearer_tokens()) == {CANARY}
    # Run again: the same entry, nothing added.
    again = vault.run(
        "kube", "setup", "gh", "--cluster", "prod", "--write", "--kubeconfig", str(config)
    )
    assert again.returncode == 0, again
    doc2 = json.loads(
        subprocess.run(
            [kubectl, "--kubeconfig", str(config), "config", "view", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    assert doc2 == doc


def test_setup_write_creates_the_context_and_keeps_the_current_one(
    kubectl: str, vault: VaultCLI, api: KubeAPI, tmp_path: Path
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "prod", "cluster": {"server": api.url}}],
                "contexts": [{"name": "other", "context": {"cluster": "prod", "user": "x"}}],
                "current-context": "other",
                "users": [{"name": "x", "user": {"token": "t"}}],
            }
        )
    )
    r = vault.run(
        "kube",
        "setup",
        "gh",
        "--cluster",
        "prod",
        "--id-token",
        "--write",
        "--kubeconfig",
        str(config),
    )
    assert r.returncode == 0, r
    doc = yaml.safe_load(config.read_text())
    contexts = {c["name"]: c["context"] for c in doc["contexts"]}
    assert contexts["prod"] == {"cluster": "prod", "user": "vault-gh-id-token"}
    assert contexts["other"] == {"cluster": "prod", "user": "x"}
    assert doc["current-context"] == "other"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["kube", "setup"], "needs the token's name"),
        (["kube", "setup", "gh"], "needs --cluster"),
        (["kube", "setup", "setup", "--cluster", "c"], "cannot be used by `vault kube`"),
        (["kube", "setup", "gh", "--cluster", ""], "not a usable kubeconfig name"),
        (["kube", "setup", "gh", "--cluster", "a\nb"], "not a usable kubeconfig name"),
        (["kube", "setup", "gh", "--cluster", "c", "--kubeconfig", "f"], "--kubeconfig is for"),
        (["kube", "gh", "--cluster", "c"], "--cluster is for `vault kube setup"),
        (["kube", "gh", "--write"], "--write is for `vault kube setup"),
        (["kube", "gh", "extra"], "is for `vault kube setup"),
        (["kube", "setup", "bad name!", "--cluster", "c"], "invalid token name"),
        (["kube", "gh", "--min-valid", "-1"], "--min-valid must be zero or more"),
    ],
)
def test_usage_errors_are_exit_2(vault: VaultCLI, args: list[str], needle: str) -> None:
    r = vault.run(*args, env={"KUBERNETES_EXEC_INFO": _exec_info()})
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert needle in r.stderr, r
    assert "Traceback" not in r.stderr


def test_setup_write_refuses_what_it_cannot_do_right(
    kubectl: str, vault: VaultCLI, tmp_path: Path
) -> None:
    config = tmp_path / "kubeconfig"
    original = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "prod", "cluster": {"server": "https://127.0.0.1:1"}},
                {"name": "dev", "cluster": {"server": "https://127.0.0.1:2"}},
            ],
            "contexts": [{"name": "prod", "context": {"cluster": "dev", "user": "x"}}],
            "users": [],
        }
    )
    config.write_text(original)
    base = ["kube", "setup", "gh", "--write", "--kubeconfig", str(config)]
    r = vault.run(*base, "--cluster", "nope")
    assert r.returncode == 2, r
    assert "no cluster 'nope'" in r.stderr
    r = vault.run(*base, "--cluster", "prod")  # the context named prod is dev's
    assert r.returncode == 2, r
    assert "is for the cluster 'dev'" in r.stderr
    assert config.read_text() == original
    no_kubectl = vault.run(*base, "--cluster", "dev", env={"PATH": "/nonexistent"})
    assert no_kubectl.returncode == 2, no_kubectl
    assert "kubectl is not installed" in no_kubectl.stderr


# --- the agent's path imports next to nothing -------------------------------------------------


def test_vault_kube_imports_nothing_heavy_through_the_agent(
    vault: VaultCLI, tmp_path: Path
) -> None:
    """The client connects, asks and prints: none of the store, policy, crypto or JSON."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    vault.env["XDG_RUNTIME_DIR"] = str(run)
    _import(vault)
    code = (
        "import sys\n"
        "sys.argv = ['vault', 'kube', 'gh']\n"
        "from vault.cli.main import main\n"
        "code = main(['kube', 'gh'])\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    with _agent(vault):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=vault.full_env({"KUBERNETES_EXEC_INFO": _exec_info()}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            start_new_session=True,
        )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"]["token"] == CANARY
    loaded = set(proc.stderr.split())
    assert "vault.keys.agent" in loaded
    assert "vault.cli.commands.kube" in loaded
    top = ("json", "re", "typing", "pathlib", "cryptography", "argon2", "enum", "argparse", "yaml")
    parts = ("vault.store", "vault.policy", "vault.tokens", "vault.audit", "vault.cli.app")
    heavy = sorted(m for m in loaded if m.split(".")[0] in top or m.startswith(parts))
    assert heavy == []
