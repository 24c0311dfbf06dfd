"""The git credential helper with real git: `git clone` and `git push` against the real
`git http-backend` behind a loopback server that checks every request's credentials
(tests/harness/git_server.py), the helper being the real `vault` executable.

git here is 2.39 (no capabilities): the Basic path and the expiry attribute (ignored by it)
run through real git; the authtype negotiation of git 2.46+ is driven with git's documented
input directly (git-credential(1), "INPUT/OUTPUT FORMAT")."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VAULT_BIN, VaultCLI, approved_login, read_record
from tests.harness.git_server import GitServer, git_server
from tests.harness.provider import start_idp

TOKEN_A = "ghp_" + "GitCanaryA" * 3 + "abcdef"
TOKEN_B = "ghp_" + "GitCanaryB" * 3 + "abcdef"
HELPER = f"!{VAULT_BIN} credential-helper --name"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with git_server(tmp_path / "srv") as srv:
        srv.repo("orgA", "app")
        srv.repo("orgB", "app")
        yield srv


def _ghe_config(vault: VaultCLI, server: GitServer, extra: str = "") -> None:
    """A GitHub Enterprise-like provider (preset github) whose host is the local git server."""
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        "providers:\n"
        f"  ghe:\n    preset: github\n    issuer: {server.url}\n    client_id: Iv1.test\n" + extra
    )


def _import(vault: VaultCLI, name: str, token: str, *args: str) -> None:
    r = vault.run("import", name, "--provider", "ghe", "--scope", "repo", *args, input=token)
    assert r.returncode == 0, r


def _git_env(tmp_path: Path, gitconfig: str = "") -> dict[str, str]:
    """git with a private HOME and global config, no system config, never a prompt."""
    home = tmp_path / "githome"
    home.mkdir(exist_ok=True)
    config = home / ".gitconfig"
    config.write_text(
        "[user]\n\tname = t\n\temail = t@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n"
        "[credential]\n\thelper =\n" + gitconfig
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_ASKPASS", "SSH_ASKPASS", "HOME")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_GLOBAL=str(config),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_TRACE="0",
    )
    return env


def _git(
    vault: VaultCLI, env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        env=vault.full_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _events(vault: VaultCLI, kind: str | None = None) -> list[dict[str, object]]:
    path = vault.home / "audit.jsonl"
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in events if kind is None or e["event"] == kind]


def _helper(vault: VaultCLI, op: str, name: str, text: str) -> tuple[int, str, str]:
    r = vault.run("credential-helper", op, "--name", name, input=text)
    return r.returncode, r.stdout, r.stderr


def _ask(server: GitServer, *extra: str, path: str | None = None) -> str:
    lines = [*extra, "protocol=http", f"host={server.host}"]
    if path is not None:
        lines.append(f"path={path}")
    return "\n".join(lines) + "\n\n"


# --- the Basic path with real git -----------------------------------------------------------


def test_clone_and_push_with_the_stored_token(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN_A, "--expires-in", "3600")
    server.accept("orgA", TOKEN_A)
    env = _git_env(tmp_path, f"[credential]\n\thelper = {HELPER} gh\n")
    work = tmp_path / "clone"
    r = _git(vault, env, "clone", "-q", f"{server.url}/orgA/app.git", str(work))
    assert r.returncode == 0, r
    assert (work / "README").read_text() == "orgA/app\n"
    (work / "NEW").write_text("pushed\n")
    assert _git(vault, env, "add", "NEW", cwd=work).returncode == 0
    assert _git(vault, env, "commit", "-qm", "second", cwd=work).returncode == 0
    r = _git(vault, env, "push", "-q", "origin", "main", cwd=work)
    assert r.returncode == 0, r
    log = subprocess.run(
        ["git", "-C", str(server.root / "orgA" / "app.git"), "log", "--format=%s", "main"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert log.stdout.split() == ["second", "first"]
    # Basic, as GitHub wants it; every request after the first challenge carried it.
    authed = [s for s in server.seen if s.scheme is not None]
    assert authed
    assert {(s.scheme, s.username, s.allowed) for s in authed} == {
        ("basic", "x-access-token", True)
    }
    used = _events(vault, "used")
    assert len(used) == 2  # one per git command (clone, push)
    assert {e["command"] for e in used} == {f"git-credential {server.host} (git-remote-http)"}
    assert {e["name"] for e in used} == {"gh"}


def test_the_answer_carries_the_expiry_which_git_239_ignores(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN_A, "--expires-in", "3600")
    code, out, err = _helper(vault, "get", "gh", _ask(server))
    assert (code, err) == (0, "")
    record = read_record(vault, "gh")
    assert record is not None
    assert out.splitlines() == [
        "username=x-access-token",
        f"password={TOKEN_A}",
        f"password_expiry_utc={record['expires_at']}",
    ]
    # git 2.39 does not know the attribute and ignores it (credential.c: "Ignore other lines"):
    # the credential still works.
    server.accept("orgA", TOKEN_A)
    env = _git_env(tmp_path, f"[credential]\n\thelper = {HELPER} gh\n")
    r = _git(vault, env, "clone", "-q", f"{server.url}/orgA/app.git", str(tmp_path / "c"))
    assert r.returncode == 0, r
    # A token without an expiry: no attribute.
    _import(vault, "forever", TOKEN_B)
    code, out, _ = _helper(vault, "get", "forever", _ask(server))
    assert out.splitlines() == ["username=x-access-token", f"password={TOKEN_B}"]


def test_a_token_about_to_expire_is_not_handed_to_git(vault: VaultCLI, server: GitServer) -> None:
    """Under MIN_VALID (60 s) left it is refreshed first; this one cannot be: exit 4."""
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN_A, "--expires-in", "30")
    code, out, err = _helper(vault, "get", "gh", _ask(server))
    assert (code, out) == (4, "")
    assert "log in again" in err
    assert TOKEN_A not in err


# --- erase: the server refused the token ------------------------------------------------------


def _provider_with_git_api(vault: VaultCLI, issuer: str, server: GitServer) -> None:
    """The local OIDC provider, its API base at the git server (so git there gets its token)."""
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  local:\n    issuer: {issuer}\n    client_id: vault-cli\n"
        "    scopes: [openid, profile, offline_access]\n"
        f"    api_base: {server.url}\n"
    )


def test_a_rejected_token_is_marked_audited_and_refreshed_at_its_next_use(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    with start_idp() as idp:
        _provider_with_git_api(vault, idp.issuer, server)
        code, _, err = approved_login(vault)
        assert code == 0, err
        first = vault.run("token", "local").stdout.strip()
        server.accept_all_but("orgA", first)  # the server knows it was revoked
        env = _git_env(tmp_path, f"[credential]\n\thelper = {HELPER} local\n")
        url = f"{server.url}/orgA/app.git"
        r = _git(vault, env, "clone", "-q", url, str(tmp_path / "one"))
        assert r.returncode != 0
        assert "Authentication failed" in r.stderr
        # git's erase reached the helper: the record is marked, the rejection audited.
        status = json.loads(vault.run("status", "local", "--json").stdout)
        assert status["rejected_at"] is not None
        rejected = _events(vault, "rejected")
        assert [(e["name"], e["outcome"], e["command"]) for e in rejected] == [
            ("local", "success", f"git-credential {server.host} (git-remote-http)")
        ]
        grants = [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]
        assert grants == []
        # The next use (git's next command) refreshes first, and git gets the new token.
        r = _git(vault, env, "clone", "-q", url, str(tmp_path / "two"))
        assert r.returncode == 0, r
        grants = [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]
        assert [g["result"] for g in grants] == ["ok"]
        second = vault.run("token", "local").stdout.strip()
        assert second != first
        assert set(server.passed) == {second}
        status = json.loads(vault.run("status", "local", "--json").stdout)
        assert status["rejected_at"] is None
        # No second refresh: the mark went with it.
        assert vault.run("token", "local").stdout.strip() == second
        grants = [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]
        assert len(grants) == 1
    log = (vault.home / "audit.jsonl").read_text()
    assert first not in log
    assert second not in log


def test_a_rejected_token_without_refresh_token_needs_a_new_login(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN_A)  # never accepted by the server
    env = _git_env(tmp_path, f"[credential]\n\thelper = {HELPER} gh\n")
    r = _git(vault, env, "clone", "-q", f"{server.url}/orgA/app.git", str(tmp_path / "c"))
    assert r.returncode != 0
    assert [e["name"] for e in _events(vault, "rejected")] == ["gh"]
    for args in (["token", "gh"], ["credential-helper", "get", "--name", "gh"]):
        r2 = vault.run(*args, input=_ask(server))
        assert r2.returncode == 4, r2
        assert r2.stdout == ""
        assert "was rejected" in r2.stderr
        assert "vault login ghe --name gh" in r2.stderr
    failed = [e for e in _events(vault, "used") if e["outcome"] == "failure"]
    assert len(failed) == 2
    # A new import for the name clears the mark.
    _import(vault, "gh", TOKEN_B, "--force")
    assert vault.run("token", "gh").stdout == TOKEN_B + "\n"


def test_erase_marks_only_the_token_this_vault_holds_for_that_host(
    vault: VaultCLI, server: GitServer
) -> None:
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN_A)
    before = vault.vault_file.read_bytes()
    audit_before = _events(vault)
    not_ours = [
        _ask(server, "username=x-access-token", f"password={TOKEN_B}"),  # another password
        _ask(server, "username=x-access-token", f"password={TOKEN_A}x"),  # longer
        _ask(server, "username=x-access-token", f"password={TOKEN_A[:-1]}"),  # shorter
        _ask(server, "username=x-access-token", "password="),
        _ask(server, "username=x-access-token"),  # no password at all
        # our token, but for a host it never goes to
        f"protocol=https\nhost=github.com\nusername=x\npassword={TOKEN_A}\n\n",
        f"protocol=http\nhost=127.0.0.1:1\nusername=x\npassword={TOKEN_A}\n\n",
        # not what git sends (a second host line, a url)
        _ask(server, f"password={TOKEN_A}", f"host={server.host}"),
        f"url={server.url}\n" + _ask(server, f"password={TOKEN_A}"),
    ]
    for text in not_ours:
        assert _helper(vault, "erase", "gh", text) == (0, "", ""), text
        assert _helper(vault, "erase", "nosuch", text) == (0, "", ""), text
    # store: nothing, whatever it is given.
    assert _helper(vault, "store", "gh", _ask(server, f"password={TOKEN_A}")) == (0, "", "")
    assert vault.vault_file.read_bytes() == before
    assert _events(vault) == audit_before
    # The token itself, as Basic: marked.
    code, out, err = _helper(
        vault, "erase", "gh", _ask(server, "username=x", f"password={TOKEN_A}")
    )
    assert (code, out, err) == (0, "", "")
    record = read_record(vault, "gh")
    assert record is not None
    assert isinstance(record["rejected_at"], int)
    assert [e["event"] for e in _events(vault)[len(audit_before) :]] == ["rejected"]


# --- accounts by path -------------------------------------------------------------------------


@pytest.mark.parametrize("use_http_path", [False, True])
def test_accounts_by_path_with_gits_own_url_matching(
    vault: VaultCLI, server: GitServer, tmp_path: Path, use_http_path: bool
) -> None:
    """credential.<url>.helper with a path: git picks the helper by path prefix (segment by
    segment), with or without credential.useHttpPath."""
    _ghe_config(vault, server)
    _import(vault, "A", TOKEN_A)
    _import(vault, "B", TOKEN_B)
    server.accept("orgA", TOKEN_A)
    server.accept("orgB", TOKEN_B)
    server.repo("orgAB", "app")
    server.accept("orgAB", TOKEN_A, TOKEN_B)
    config = (
        f'[credential "{server.url}/orgA"]\n\thelper = {HELPER} A\n'
        f'[credential "{server.url}/orgB"]\n\thelper = {HELPER} B\n'
    )
    if use_http_path:
        config += "[credential]\n\tuseHttpPath = true\n"
    env = _git_env(tmp_path, config)
    for org in ("orgA", "orgB"):
        r = _git(vault, env, "clone", "-q", f"{server.url}/{org}/app.git", str(tmp_path / org))
        assert r.returncode == 0, r
        assert (tmp_path / org / "README").read_text() == f"{org}/app\n"
    # "orgA" is not a prefix of "orgAB" for git: no helper is asked there, git has nothing.
    r = _git(vault, env, "clone", "-q", f"{server.url}/orgAB/app.git", str(tmp_path / "ab"))
    assert r.returncode != 0
    used = _events(vault, "used")
    assert [e["name"] for e in used] == ["A", "B"]
    assert _events(vault, "rejected") == []


def test_a_rejection_under_one_path_marks_only_that_account(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    _ghe_config(vault, server)
    _import(vault, "A", TOKEN_A)
    _import(vault, "B", TOKEN_B)
    server.accept("orgA", TOKEN_A)  # orgB accepts nothing
    env = _git_env(
        tmp_path,
        f'[credential "{server.url}/orgA"]\n\thelper = {HELPER} A\n'
        f'[credential "{server.url}/orgB"]\n\thelper = {HELPER} B\n',
    )
    r = _git(vault, env, "clone", "-q", f"{server.url}/orgB/app.git", str(tmp_path / "b"))
    assert r.returncode != 0
    assert [e["name"] for e in _events(vault, "rejected")] == ["B"]
    a, b = read_record(vault, "A"), read_record(vault, "B")
    assert a is not None
    assert b is not None
    assert "rejected_at" not in a
    assert isinstance(b["rejected_at"], int)


# --- other hosts ----------------------------------------------------------------------------

CREDENTIAL_CASES = {
    # (protocol, host field): does the helper answer for the github.com token?
    ("https", "github.com"): True,
    ("https", "GitHub.com"): True,
    ("https", "github.com:443"): True,
    ("https", "github.com:0443"): True,
    ("https", "github.com:"): False,
    ("https", "github.com:8443"): False,
    ("https", "github.com:80"): False,
    ("http", "github.com"): False,
    ("http", "github.com:443"): False,
    ("https", "github.com."): False,
    ("https", "evilgithub.com"): False,
    ("https", "github.com.evil.example"): False,
    ("https", "gist.github.com"): False,
    ("https", "evil.example@github.com"): False,
    ("https", "github.com@evil.example"): False,
    ("https", "github.com/orgA"): False,
    ("https", "github.com\r"): True,  # git drops a CR before the LF too (strbuf_getline)
    ("https", "github.com\rx"): False,
    ("https", "github.com\r\r"): False,
    ("https", "github.com\tx"): False,
    ("https", "github.com#x"): False,
    ("https", "github.com?x"): False,
    ("https", "github.com%2f"): False,
    ("https", "\u0261ithub.com"): False,
    ("HTTPS", "github.com"): False,
    ("ssh", "github.com"): False,
    ("", "github.com"): False,
}


def test_the_helper_answers_only_for_the_providers_scheme_host_and_port(vault: VaultCLI) -> None:
    r = vault.run("import", "gh", "--provider", "github", "--scope", "repo", input=TOKEN_A)
    assert r.returncode == 0, r
    answered = {}
    for (protocol, host), _ in CREDENTIAL_CASES.items():
        code, out, err = _helper(vault, "get", "gh", f"protocol={protocol}\nhost={host}\n\n")
        assert (code, err) == (0, ""), (protocol, host)
        answered[protocol, host] = f"password={TOKEN_A}" in out.splitlines()
        assert out == "" or answered[protocol, host]
    assert answered == CREDENTIAL_CASES
    used = _events(vault, "used")
    assert len(used) == sum(CREDENTIAL_CASES.values())  # other hosts: not even audited


def test_other_hosts_get_nothing_from_real_git(vault: VaultCLI, tmp_path: Path) -> None:
    r = vault.run("import", "gh", "--provider", "github", "--scope", "repo", input=TOKEN_A)
    assert r.returncode == 0, r
    env = _git_env(tmp_path, f"[credential]\n\thelper = {HELPER} gh\n")

    def fill(protocol: str, host: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "credential", "fill"],
            input=f"protocol={protocol}\nhost={host}\n\n",
            env=vault.full_env(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    r2 = fill("https", "github.com")
    assert r2.returncode == 0, r2
    assert "username=x-access-token" in r2.stdout.splitlines()
    assert f"password={TOKEN_A}" in r2.stdout.splitlines()
    for protocol, host in (("https", "gitlab.com"), ("http", "github.com")):
        r2 = fill(protocol, host)
        assert r2.returncode != 0  # nothing answered, and git may not prompt
        assert TOKEN_A not in r2.stdout + r2.stderr
    assert [e["command"] for e in _events(vault, "used")] == ["git-credential github.com (git)"]
    # An unknown name: nothing, for git to ask its other helpers.
    assert _helper(vault, "get", "nosuch", "protocol=https\nhost=github.com\n\n") == (0, "", "")


# --- git 2.46+: capability negotiation, driven with git's documented input -----------------------


def _oidc_import(vault: VaultCLI, server: GitServer, name: str, token: str) -> None:
    """A token of a generic (non-GitHub) provider whose host is the git server."""
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        "providers:\n"
        f"  corp:\n    issuer: {server.url}\n    client_id: c\n"
        f"  ghe:\n    preset: github\n    issuer: {server.url}\n    client_id: Iv1.test\n"
    )
    r = vault.run("import", name, "--provider", "corp", "--expires-in", "3600", input=token)
    assert r.returncode == 0, r


def test_capability_authtype_gets_bearer_where_offered_and_never_otherwise(
    vault: VaultCLI, server: GitServer
) -> None:
    _oidc_import(vault, server, "corp", TOKEN_A)
    record = read_record(vault, "corp")
    assert record is not None
    expiry = f"password_expiry_utc={record['expires_at']}"
    # git 2.46+ offers authtype (and state) before the other attributes.
    offered = _ask(server, "capability[]=authtype", "capability[]=state")
    code, out, err = _helper(vault, "get", "corp", offered)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "capability[]=authtype",
        "authtype=Bearer",
        f"credential={TOKEN_A}",
        "ephemeral=true",
        expiry,
    ]
    # Not offered (git before 2.46, or another capability only): Basic, none of the new keys.
    for text in (_ask(server), _ask(server, "capability[]=state"), _ask(server, "capability[]=x")):
        code, out, _ = _helper(vault, "get", "corp", text)
        assert out.splitlines() == ["username=oauth2", f"password={TOKEN_A}", expiry]
    # GitHub (its preset here) keeps Basic even when offered: it refuses Bearer for git.
    _import(vault, "gh", TOKEN_B)
    code, out, _ = _helper(vault, "get", "gh", offered)
    assert out.splitlines() == ["username=x-access-token", f"password={TOKEN_B}"]
    # git's erase after a Bearer credential was refused: it sends the credential back.
    erase = _ask(
        server, "capability[]=authtype", "authtype=Bearer", f"credential={TOKEN_A}", "ephemeral=1"
    )
    assert _helper(vault, "erase", "corp", erase) == (0, "", "")
    assert [e["name"] for e in _events(vault, "rejected")] == ["corp"]


def test_the_capability_and_unknown_operations(vault: VaultCLI) -> None:
    """`capability` announces authtype (git-credential(1) "CAPABILITY INPUT/OUTPUT FORMAT");
    any other operation is ignored, as gitcredentials(7) asks of a helper."""
    assert _helper(vault, "capability", "gh", "") == (0, "version 0\ncapability authtype\n", "")
    for op in ("list", "frobnicate", "GET"):
        assert _helper(vault, op, "gh", "protocol=https\nhost=github.com\n\n") == (0, "", "")
    assert not vault.vault_file.exists()  # none of it even opened a vault


# --- the agent ----------------------------------------------------------------------------


@contextlib.contextmanager
def running_agent(vault: VaultCLI) -> Iterator[int]:
    result = vault.run("agent", "start")
    assert result.returncode == 0, result
    status = json.loads(vault.run("agent", "status", "--json").stdout)
    pid = status["pid"]
    assert isinstance(pid, int)
    assert status["unlocked"] is True
    try:
        yield pid
    finally:
        vault.run("agent", "stop")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_the_agent_gives_the_same_answers_and_audit_records(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    vault.env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o700)
    _oidc_import(vault, server, "corp", TOKEN_A)
    _import(vault, "gh", TOKEN_B, "--expires-in", "3600")
    asks = [
        ("get", "corp", _ask(server, "capability[]=authtype")),
        ("get", "corp", _ask(server)),
        ("get", "gh", _ask(server, "capability[]=authtype", path="orgA/app.git")),
        ("get", "gh", "protocol=https\nhost=github.com\n\n"),
        ("get", "nosuch", _ask(server)),
        ("get", "gh", _ask(server, f"host={server.host}")),
        ("store", "gh", _ask(server, f"password={TOKEN_B}")),
        ("capability", "gh", ""),
        ("nonsense", "gh", _ask(server)),
    ]
    mark = len(_events(vault))
    direct = [_helper(vault, *ask) for ask in asks]
    direct_events = _events(vault)[mark:]
    with running_agent(vault) as pid:
        mark = len(_events(vault))  # after agent_started, agent_unlocked
        served = [_helper(vault, *ask) for ask in asks]
        served_events = _events(vault)[mark:]
        server.accept("orgA", TOKEN_B)
        env = _git_env(tmp_path, f"[credential]\n\thelper = {HELPER} gh\n")
        url = f"{server.url}/orgA/app.git"
        r = _git(vault, env, "clone", "-q", url, str(tmp_path / "c"))
        assert r.returncode == 0, r
        server.accept("orgA")
        r = _git(vault, env, "clone", "-q", url, str(tmp_path / "d"))
        assert r.returncode != 0
        after = _events(vault)[mark + len(served_events) :]
    assert served == direct
    assert direct[0][1].startswith("capability[]=authtype\n")
    assert [(e["event"], e["name"], e["outcome"], e["command"]) for e in served_events] == [
        (e["event"], e["name"], e["outcome"], e["command"]) for e in direct_events
    ]
    assert len(direct_events) == 4  # corp twice, gh once, and the failed use of "nosuch"
    assert {e.get("agent") for e in served_events} == {pid}
    # Through the agent: the clone's use, then the refused one's use and its rejection.
    command = f"git-credential {server.host} (git-remote-http)"
    assert [(e["event"], e["name"], e["command"]) for e in after] == [
        ("used", "gh", command),
        ("used", "gh", command),
        ("rejected", "gh", command),
    ]
    assert vault.run("audit", "verify").returncode == 0


def test_the_helper_served_by_the_agent_imports_next_to_nothing(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    vault.env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o700)
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN_A, "--expires-in", "3600")
    code = (
        "import sys\n"
        "from vault.cli.main import main\n"
        "code = main(['credential-helper', 'get', '--name', 'gh'])\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    with running_agent(vault):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input=_ask(server, "capability[]=authtype", path="orgA/app.git"),
            env=vault.full_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            start_new_session=True,
        )
    assert proc.returncode == 0, proc.stderr
    assert f"password={TOKEN_A}" in proc.stdout.splitlines()
    loaded = set(proc.stderr.split())
    assert "vault.keys.agent" in loaded
    assert "vault.cli.commands.git" in loaded
    top = {"argparse", "json", "re", "typing", "pathlib", "cryptography", "argon2", "enum"}
    top |= {"ipaddress", "urllib", "hmac", "hashlib", "dataclasses"}
    parts = (
        *("vault.store", "vault.policy", "vault.tokens", "vault.audit", "vault.cli.app"),
        *("vault.login", "vault.util.text", "vault.cli.parser"),
    )
    heavy = sorted(m for m in loaded if m.split(".")[0] in top or m.startswith(parts))
    assert heavy == []


def test_never_a_passphrase_prompt_even_on_a_terminal(passphrase_vault: VaultCLI) -> None:
    """git runs its helpers whether or not a person is there: a passphrase vault with neither
    its file nor an unlocked agent is exit 6 and one line, never a prompt on the terminal."""
    r = passphrase_vault.run("import", "gh", "--provider", "github", input=TOKEN_A)
    assert r.returncode == 0, r
    env = passphrase_vault.full_env()
    env.pop("VAULT_PASSPHRASE_FILE")
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(2, termios.TIOCSCTTY, 0)  # stderr is the terminal

    proc = subprocess.Popen(
        [VAULT_BIN, "credential-helper", "get", "--name", "gh"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        start_new_session=True,
        preexec_fn=controlling_terminal,  # noqa: PLW1509 (the test needs a controlling tty)
    )
    os.close(slave)
    try:
        out, _ = proc.communicate(b"protocol=https\nhost=github.com\n\n", timeout=60)
    finally:
        proc.kill()
    screen = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(master, 4096):
            screen += chunk
    os.close(master)
    assert proc.returncode == 6
    assert out == b""
    text = screen.decode(errors="replace")
    assert "never prompts" in text
    assert "Passphrase" not in text
    # stderr is a terminal: "error:" is emphasised (SGR only), the line is still one line
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert len([line for line in plain.splitlines() if line.startswith("vault: error: ")]) == 1


# --- the canary -----------------------------------------------------------------------------


def test_the_token_goes_to_the_server_only(
    vault: VaultCLI, server: GitServer, tmp_path: Path
) -> None:
    """Not in git's output (its trace included: git redacts what it sends), not on vault's
    stderr, not in the audit log or the agent's log: only over the wire, to the server."""
    vault.env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o700)
    _ghe_config(vault, server)
    _import(vault, "gh", TOKEN_A, "--expires-in", "3600")
    basic = base64.b64encode(f"x-access-token:{TOKEN_A}".encode()).decode()
    env = _git_env(tmp_path, f"[credential]\n\thelper = {HELPER} gh\n")
    env.update(GIT_TRACE="1", GIT_TRACE_CURL="1", GIT_CURL_VERBOSE="1")
    url = f"{server.url}/orgA/app.git"
    outputs = [_git(vault, env, "clone", url, str(tmp_path / "refused"))]  # refused: erase
    server.accept("orgA", TOKEN_A)
    vault.run("import", "gh", "--provider", "ghe", "--force", input=TOKEN_A)  # clears the mark
    outputs.append(_git(vault, env, "clone", url, str(tmp_path / "direct")))
    with running_agent(vault):
        outputs.append(_git(vault, env, "clone", url, str(tmp_path / "agent")))
    assert [o.returncode == 0 for o in outputs] == [False, True, True]
    assert "<redacted>" in outputs[1].stderr  # the trace saw the header, and hid it
    for o in outputs:
        for secret in (TOKEN_A, basic):
            assert secret not in o.stdout
            assert secret not in o.stderr
    for path in vault.home.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".log"):
            assert TOKEN_A not in path.read_text(errors="replace"), path
    assert [e["event"] for e in _events(vault, "rejected")] == ["rejected"]


# --- hostile input ------------------------------------------------------------------------

HOSTILE_LINES = st.one_of(
    st.sampled_from(
        [
            b"protocol=https",
            b"protocol=http",
            b"host=github.com",
            b"host=github.com\r",
            b"host=github.com\0.evil",
            b"host=evil.example",
            b"host=github.com/orgA",
            b"host=x@github.com",
            b"host=github.com@x",
            b"host=github.com:443",
            b"host=github.com:99999",
            b"host=" + b"a" * 70000,
            b"path=orgA/repo.git",
            b"username=x",
            b"password=hunter2",
            b"capability[]=authtype",
            b'wwwauth[]=Basic realm="x"',
            b"url=https://evil.example/",
            b"noequals",
            b"=",
            b"\xff\xfe=\x80",
            b"",
        ]
    ),
    st.binary(max_size=40),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(HOSTILE_LINES, max_size=8), ending=st.sampled_from([b"\n", b"\r\n"]))
def test_hostile_attributes_never_crash_and_never_answer_for_a_foreign_host(
    vault: VaultCLI, lines: list[bytes], ending: bytes
) -> None:
    if not vault.vault_file.exists():
        r = vault.run("import", "gh", "--provider", "github", "--scope", "repo", input=TOKEN_A)
        assert r.returncode == 0, r
    data = ending.join(lines) + ending
    r = vault.run("credential-helper", "get", "--name", "gh", input=data)
    assert r.returncode == 0, r
    assert "Traceback" not in r.stderr
    assert r.stderr == ""
    if r.stdout:
        # Answered: exactly one protocol and one host line before the end, as git reads
        # them, and they name github.com over https.
        fields = []
        for raw in data.split(b"\n"):
            line = raw.removesuffix(b"\r")
            if not line:
                break
            fields.append(line)
        hosts = [f for f in fields if f.startswith(b"host=")]
        protocols = [f for f in fields if f.startswith(b"protocol=")]
        assert hosts in ([b"host=github.com"], [b"host=github.com:443"]), data
        assert protocols == [b"protocol=https"], data
        assert r.stdout.splitlines() == ["username=x-access-token", f"password={TOKEN_A}"]
