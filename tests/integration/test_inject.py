"""Secrets into processes and files: `vault exec --env-file` and `vault inject`, run as the real
`vault` executable. Canary tokens must appear where they are sent (the child's environment, the
output file) and nowhere else; one failure means nothing runs and nothing is written; every
token used is audited once, with the consumers named."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    VAULT_BIN,
    VaultCLI,
    approved_login,
    configure_provider,
    read_record,
)
from tests.harness.provider import start_idp

GH = "ghp_" + "InjCanaryGh" * 3 + "x"
GL = "ghp_" + "InjCanaryGl" * 3 + "y"
PY = os.path.basename(sys.executable)
PRINT = (
    "import json, os, sys; print(json.dumps({'argv': sys.argv, 'env': dict(os.environ),"
    " 'cmdline': open('/proc/self/cmdline', 'rb').read().decode()}))"
)


def _import(vault: VaultCLI, name: str, token: str, scope: str = "repo") -> None:
    r = vault.run("import", name, "--provider", "github", "--scope", scope, input=token)
    assert r.returncode == 0, r


def _used(vault: VaultCLI) -> list[dict[str, object]]:
    r = vault.run("audit", "show", "--json")
    assert r.returncode == 0, r
    return [
        doc for doc in map(json.loads, r.stdout.splitlines()) if doc["event"] in ("used", "denied")
    ]


def _no_canary_outside(vault: VaultCLI, *allowed: Path) -> None:
    """Neither canary in any file under the vault's home (the vault itself is encrypted) or the
    test's folders, except the files ``allowed``."""
    roots = {vault.home, *(p.parent for p in allowed)}
    for root in roots:
        for path in root.rglob("*"):
            if path in allowed or not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            assert GH.encode() not in data, path
            assert GL.encode() not in data, path


def _exec(vault: VaultCLI, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    r = vault.run("exec", *args, "--", sys.executable, "-c", PRINT, "an-arg", env=env)
    assert r.returncode == 0, r
    assert GH not in r.stderr
    assert GL not in r.stderr
    child: dict[str, object] = json.loads(r.stdout)
    argv = child["argv"]
    assert isinstance(argv, list)
    assert argv[1:] == ["an-arg"]
    assert GH not in str(child["cmdline"])
    assert GL not in str(child["cmdline"])
    return child


# --- vault exec --env-file ------------------------------------------------------------------


def test_env_file_references_reach_the_environment_only(vault: VaultCLI, tmp_path: Path) -> None:
    _import(vault, "gh", GH)
    _import(vault, "gl", GL)
    folder = tmp_path / "app"
    folder.mkdir()
    env_file = folder / ".env"
    env_file.write_text(
        "# the database\n"
        "PGPASSWORD=vault://gh\n"
        "PLAIN='hello world'\n"
        "\n"
        'export OTHER="vault://gl#access_token"\n'
        "SAME=vault://gh\n"
        "URL=https://example.com/a#b\n"
    )
    child = _exec(vault, "--env-file", str(env_file))
    env = child["env"]
    assert isinstance(env, dict)
    assert (env["PGPASSWORD"], env["SAME"], env["OTHER"]) == (GH, GH, GL)
    assert (env["PLAIN"], env["URL"]) == ("hello world", "https://example.com/a#b")
    assert "GH_TOKEN" not in env  # no NAME: no token of its own
    # One record per token used, naming the program and the variables it went into.
    assert [(u["event"], u["name"], u["outcome"], u["command"]) for u in _used(vault)] == [
        ("used", "gh", "success", f"exec env-file {PY} (PGPASSWORD, SAME)"),
        ("used", "gl", "success", f"exec env-file {PY} (OTHER)"),
    ]
    assert all("agent" not in u for u in _used(vault))  # no agent runs: this process did
    assert sorted(p.name for p in folder.iterdir()) == [".env"]
    _no_canary_outside(vault)
    _exec(vault, "--debug", "--env-file", str(env_file))  # nothing of them in the debug log


def test_env_files_layer_over_the_environment_and_name_wins(
    vault: VaultCLI, tmp_path: Path
) -> None:
    _import(vault, "gh", GH)
    _import(vault, "gl", GL)
    first, second = tmp_path / "one.env", tmp_path / "two.env"
    first.write_text("A=one\nB=one\nC=vault://gl\nD=vault://gl\nGH_TOKEN=from-file\n")
    second.write_text("A=two\nC=plain\n")
    process = {"A": "process", "B": "process", "E": "process", "C": "process"}
    child = _exec(vault, "--env-file", str(first), "--env-file", str(second), env=process)
    env = child["env"]
    assert isinstance(env, dict)
    # The process's environment, then each file in order (a later one wins), then NAME.
    assert [env[k] for k in "ABCDE"] == ["two", "one", "plain", GL, "process"]
    assert env["GH_TOKEN"] == "from-file"
    # C's reference was replaced by the second file: only D's use of gl is audited.
    assert [u["command"] for u in _used(vault)] == [f"exec env-file {PY} (D)"]
    child = _exec(vault, "gh", "--env-file", str(first), env=process)
    env = child["env"]
    assert isinstance(env, dict)
    assert (env["GH_TOKEN"], env["C"]) == (GH, GL)  # NAME's variable wins over the file's
    child = _exec(vault, "gh", "--env", "D", "--env-file", str(first))
    env = child["env"]
    assert isinstance(env, dict)
    assert (env["D"], env["C"], env["GH_TOKEN"]) == (GH, GL, "from-file")
    assert [u["command"] for u in _used(vault)][1:] == [
        f"exec env-file {PY} (C, D)",  # in the order the names first appear, NAME's last
        f"exec env-file {PY} (GH_TOKEN)",
        f"exec env-file {PY} (C)",
        f"exec env-file {PY} (D)",
    ]


def test_the_command_is_found_on_the_path_it_gets(vault: VaultCLI, tmp_path: Path) -> None:
    _import(vault, "gh", GH)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "only-here"
    tool.write_text('#!/bin/sh\necho "T=$T"\n')
    tool.chmod(0o755)
    env_file = tmp_path / ".env"
    env_file.write_text(f"PATH={bin_dir}:/usr/bin:/bin\nT=vault://gh\n")
    r = vault.run("exec", "--env-file", str(env_file), "--", "only-here")
    assert (r.returncode, r.stdout) == (0, f"T={GH}\n"), r
    assert [u["command"] for u in _used(vault)] == ["exec env-file only-here (T)"]
    # Not found: exit 127 before any token is used.
    r = vault.run("exec", "--env-file", str(env_file), "--", "no-such-command-here")
    assert r.returncode == 127
    assert len(_used(vault)) == 1


def test_one_failure_and_nothing_runs(vault: VaultCLI, tmp_path: Path) -> None:
    _import(vault, "gh", GH)
    _import(vault, "gl", GL, scope="admin:org")
    marker = tmp_path / "ran"
    run = ["--", "sh", "-c", f"touch {marker}"]
    cases = {
        "GH=vault://gh\nGL=vault://gl\n": (5, "F:2 (GL): "),
        "GH=vault://gh\nNOPE=vault://nope\n": (4, "F:2 (NOPE): no token named 'nope'"),
        "GH=vault://gh\n\nID=vault://gh#id_token\n": (4, "F:3 (ID): the token 'gh' has no ID"),
        "NOPE=vault://nope\nN2=vault://nope\n": (4, "F:1 (NOPE): no token named 'nope'"),
        "GH=vault://gh\nBAD=x-vault://gh\n": (2, "F:2 (BAD): vault:// must be the whole"),
        f"A=1\nSECRET={GH} # note\n": (2, "F:2 (SECRET): '#' after a blank"),
        f"A=1\nPGPASSWORD='{GH}\n": (2, "F:2 (PGPASSWORD): the single quote is not closed"),
    }
    (vault.home / "policies").mkdir(mode=0o700)
    (vault.home / "policies" / "p.yaml").write_text("version: 1\nallowed_scopes: [repo]\n")
    for text, (code, message) in cases.items():
        env_file = tmp_path / "F"
        env_file.write_text(text)
        r = subprocess_in(vault, tmp_path, "exec", "--env-file", "F", *run)
        assert r.returncode == code, (text, r)
        assert r.stderr.startswith(f"vault: error: {message}"), (text, r)
        assert not marker.exists()
        assert GH not in r.stderr
        assert GL not in r.stderr
    records = [(u["event"], u["name"], u["outcome"]) for u in _used(vault)]
    # gh, taken out before the second token failed, is audited as used; the denial, the
    # unknown name (once for its two uses) and the missing ID token are audited as refusals;
    # format errors fail before any token is used.
    assert records == [
        ("used", "gh", "success"),
        ("denied", "gl", "denied"),
        ("used", "gh", "success"),
        ("used", "nope", "failure"),
        ("used", "gh", "success"),
        ("used", "gh", "failure"),
        ("used", "nope", "failure"),
    ]
    _no_canary_outside(vault)


def subprocess_in(vault: VaultCLI, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VAULT_BIN, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=vault.full_env(),
        timeout=60,
        check=False,
        start_new_session=True,
    )


def test_through_the_agent(vault: VaultCLI, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    vault.env["XDG_RUNTIME_DIR"] = str(run)  # the agent's socket: this test's own
    _import(vault, "gh", GH)
    _import(vault, "gl", GL)
    env_file = tmp_path / ".env"
    env_file.write_text("A=vault://gh\nB=vault://gl\nC=vault://gh\n")
    template = tmp_path / "t"
    template.write_text("{{ vault://gl }} {{ vault://gh }}\n")
    r = vault.run("agent", "start", "--idle", "0")
    assert r.returncode == 0, r
    pid = json.loads(vault.run("agent", "status", "--json").stdout)["pid"]
    assert isinstance(pid, int)
    try:
        env = _exec(vault, "--env-file", str(env_file))["env"]
        assert isinstance(env, dict)
        assert (env["A"], env["B"], env["C"]) == (GH, GL, GH)
        r = vault.run("inject", "-i", str(template))
        assert (r.returncode, r.stdout) == (0, f"{GL} {GH}\n"), r
        r = vault.run("inject", "-i", "-", input="{{ vault://gh#id_token }}")
        assert r.returncode == 4, r
        assert r.stderr.startswith("vault: error: <stdin>:1: the token 'gh' has no ID token")
    finally:
        vault.run("agent", "stop")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    used = _used(vault)
    assert [(u["name"], u["outcome"], u["command"]) for u in used] == [
        ("gh", "success", f"exec env-file {PY} (A, C)"),
        ("gl", "success", f"exec env-file {PY} (B)"),
        ("gl", "success", "inject stdout"),
        ("gh", "success", "inject stdout"),
        ("gh", "failure", "inject stdout id_token"),
    ]
    assert all("agent" in u for u in used)  # the agent handed them out
    _no_canary_outside(vault)


def test_env_files_others_could_write_are_refused(vault: VaultCLI, tmp_path: Path) -> None:
    _import(vault, "gh", GH)
    env_file = tmp_path / "e.env"
    env_file.write_text("T=vault://gh\n")
    env_file.chmod(0o646)
    r = vault.run("exec", "--env-file", str(env_file), "--", "true")
    assert r.returncode == 3, r
    assert "anyone can write it" in r.stderr, r
    env_file.chmod(0o664)  # group-writable is common (user private groups) and accepted
    assert vault.run("exec", "--env-file", str(env_file), "--", "true").returncode == 0
    if os.geteuid() == 0:
        os.chown(env_file, 65534, 65534)
        env_file.chmod(0o644)
        r = vault.run("exec", "--env-file", str(env_file), "--", "true")
        assert r.returncode == 3, r
    assert "owned by uid 65534" in r.stderr, r
    assert len(_used(vault)) == 1


def test_env_file_from_a_pipe(vault: VaultCLI) -> None:
    _import(vault, "gh", GH)
    r = vault.run(
        "exec", "--env-file", "/dev/stdin", "--", "sh", "-c", 'echo "$T"', input="T=vault://gh\n"
    )
    assert (r.returncode, r.stdout) == (0, GH + "\n"), r
    r = vault.run("exec", "--env-file", "/dev/stdin", "--", "true", input=b"T=\xff\n")
    assert r.returncode == 2, r
    assert "/dev/stdin:1: not UTF-8" in r.stderr, r


def test_exec_usage_errors(vault: VaultCLI, tmp_path: Path) -> None:
    env_file = tmp_path / "e.env"
    env_file.write_text("A=1\n")
    r = vault.run("exec", "--", "true")  # no NAME, and no token to be the default
    assert r.returncode == 4, r
    assert "the vault holds no tokens" in r.stderr, r
    for args in (
        ["exec", "--env", "X", "--env-file", str(env_file), "--", "true"],
        ["exec", "--env-file", str(env_file)],
        ["exec", "--env-file", str(tmp_path / "missing"), "--", "true"],
        ["exec", "--env-file", str(tmp_path), "--", "true"],
    ):
        r = vault.run(*args)
        assert r.returncode == 2, r
        assert "Traceback" not in r.stderr


# --- vault inject ---------------------------------------------------------------------------

TEMPLATE = (
    b"# config\n"
    b"token = {{ vault://gh }}\n"
    b"again = {{vault://gh#access_token}}\n"
    b"other = {{ vault://gl }}\n"
    b"helm = {{ .Values.x }} and raw bytes \xff\x00\r\n"
)
FILLED = (
    b"# config\n"
    + f"token = {GH}\nagain = {GH}\nother = {GL}\n".encode()
    + b"helm = {{ .Values.x }} and raw bytes \xff\x00\r\n"
)


def _setup_inject(vault: VaultCLI, tmp_path: Path, gl_scope: str = "repo") -> tuple[Path, Path]:
    _import(vault, "gh", GH)
    _import(vault, "gl", GL, scope=gl_scope)
    folder = tmp_path / "out"
    folder.mkdir()
    template = tmp_path / "app.conf.tpl"
    template.write_bytes(TEMPLATE)
    return template, folder / "app.conf"


def test_inject_writes_a_private_file(vault: VaultCLI, tmp_path: Path) -> None:
    template, out = _setup_inject(vault, tmp_path)
    r = vault.run("inject", "-i", str(template), "-o", str(out))
    assert (r.returncode, r.stdout) == (0, ""), r
    assert out.read_bytes() == FILLED
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [(u["name"], u["command"]) for u in _used(vault)] == [
        ("gh", f"inject {out}"),
        ("gl", f"inject {out}"),
    ]
    # An existing 0600 file is replaced by a new one (a rename, never rewritten in place),
    # still 0600 under a umask that would give anything else.
    before = out.stat().st_ino
    out.write_bytes(b"old")
    proc = subprocess.run(
        ["sh", "-c", 'umask 000; exec "$0" "$@"', VAULT_BIN, "inject", "-i", str(template),
         "--out-file", str(out)],
        env=vault.full_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc
    assert out.read_bytes() == FILLED
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.stat().st_ino != before
    assert sorted(p.name for p in out.parent.iterdir()) == ["app.conf"]  # no temporary left
    assert GH.encode() not in proc.stderr
    _no_canary_outside(vault, out)
    r = vault.run("--debug", "inject", "-i", str(template), "-o", str(out))
    assert r.returncode == 0, r
    assert GH not in r.stderr
    assert GL not in r.stderr


def test_inject_to_stdout_from_stdin(vault: VaultCLI, tmp_path: Path) -> None:
    _setup_inject(vault, tmp_path)
    r = vault.run("inject", "-i", "-", input=TEMPLATE)
    assert r.returncode == 0, r
    assert r.stdout == FILLED.decode(errors="replace")
    assert GH not in r.stderr
    assert [u["command"] for u in _used(vault)] == ["inject stdout", "inject stdout"]
    r = vault.run("inject", "-i", "-", input=b"no placeholders {{ here }}\n")
    assert (r.returncode, r.stdout) == (0, "no placeholders {{ here }}\n")
    assert len(_used(vault)) == 2  # nothing used, nothing audited


def test_a_denied_token_writes_nothing(vault: VaultCLI, tmp_path: Path) -> None:
    template, out = _setup_inject(vault, tmp_path, gl_scope="admin:org")
    out.write_bytes(b"the old file\n")
    out.chmod(0o600)
    (vault.home / "policies").mkdir(mode=0o700)
    (vault.home / "policies" / "p.yaml").write_text("version: 1\nallowed_scopes: [repo]\n")
    r = vault.run("inject", "-i", str(template), "-o", str(out))
    assert r.returncode == 5, r
    assert f"{template}:4: " in r.stderr
    assert GH not in r.stderr
    assert out.read_bytes() == b"the old file\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["app.conf"]
    # gh, taken out before gl was refused, is audited as used; nothing was written.
    assert [(u["event"], u["name"], u["command"]) for u in _used(vault)] == [
        ("used", "gh", f"inject {out}"),
        ("denied", "gl", f"inject {out}"),
    ]
    _no_canary_outside(vault)


def test_inject_refuses_outputs_it_must_not_replace(vault: VaultCLI, tmp_path: Path) -> None:
    template, out = _setup_inject(vault, tmp_path)
    other = tmp_path / "someone-elses"
    other.write_bytes(b"keep me\n")
    other.chmod(0o600)

    def refused(path: Path, code: int, why: str) -> None:
        r = vault.run("inject", "-i", str(template), "-o", str(path), timeout=30)
        assert r.returncode == code, (path, r)
        assert why in r.stderr, (path, r)

    link = out.parent / "link"
    link.symlink_to(other)
    refused(link, 6, "it is a symlink")
    dangling = out.parent / "dangling"
    dangling.symlink_to(tmp_path / "not-yet")
    refused(dangling, 6, "it is a symlink")
    assert not (tmp_path / "not-yet").exists()
    loose = out.parent / "loose"
    loose.write_bytes(b"loose\n")
    loose.chmod(0o644)
    refused(loose, 6, "accessible by group or others (mode 0644)")
    fifo = out.parent / "fifo"
    os.mkfifo(fifo, 0o600)
    refused(fifo, 6, "not a regular file")
    folder = out.parent / "folder"
    folder.mkdir()
    refused(folder, 6, "not a regular file")
    hard = out.parent / "hard"
    os.link(other, hard)
    refused(hard, 6, "hard links")
    refused(tmp_path / "missing" / "x", 2, "is not a folder")
    template.chmod(0o600)
    refused(template, 2, "the output file is the template itself")
    vault_file = vault.home / "vault.enc"
    before = vault_file.read_bytes()
    for own in (vault_file, vault.home / "audit.jsonl", vault.home / "new.conf"):
        refused(own, 2, "the folder is one of vault's own")
    assert vault_file.read_bytes() == before
    assert not (vault.home / "new.conf").exists()
    if os.geteuid() == 0:
        foreign = out.parent / "foreign"
        foreign.write_bytes(b"theirs\n")
        foreign.chmod(0o600)
        os.chown(foreign, 65534, 65534)
        refused(foreign, 6, "owned by uid 65534")
        assert foreign.read_bytes() == b"theirs\n"
    assert other.read_bytes() == b"keep me\n"
    assert loose.read_bytes() == b"loose\n"
    assert template.read_bytes() == TEMPLATE
    assert _used(vault) == []  # every refusal came before any token was used
    _no_canary_outside(vault)


def test_inject_to_a_terminal_obeys_policy(vault: VaultCLI, tmp_path: Path) -> None:
    template, out = _setup_inject(vault, tmp_path)
    (vault.home / "policies").mkdir(mode=0o700)
    (vault.home / "policies" / "p.yaml").write_text(
        "version: 1\ntokens:\n  print_to_terminal: false\n"
    )
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [VAULT_BIN, "inject", "-i", str(template)],
            stdout=slave,
            stderr=subprocess.PIPE,
            env=vault.full_env(),
            timeout=30,
            check=False,
        )
    finally:
        os.close(slave)
    try:
        assert proc.returncode == 5, proc.stderr
        assert b"tokens.print_to_terminal" in proc.stderr
        os.set_blocking(master, False)
        try:
            shown = os.read(master, 65536)
        except OSError:  # nothing was written (EAGAIN, or EIO once the other end closed)
            shown = b""
        assert GH.encode() not in shown
    finally:
        os.close(master)
    # To a file or a pipe it is allowed.
    assert vault.run("inject", "-i", str(template), "-o", str(out)).returncode == 0
    assert vault.run("inject", "-i", str(template)).returncode == 0


def test_inject_template_errors(vault: VaultCLI, tmp_path: Path) -> None:
    template, out = _setup_inject(vault, tmp_path)
    for text, message in (
        (b"a\n{{ vault://gh }}\nb = {{ vault://gh }\n", ":3: a {{ vault:// placeholder"),
        (b"a = {{ vault://gh#refresh_token }}\n", ":1: after '#' comes"),
        (b"a = {{ vault://nope }}\n", ":1: no token named 'nope'"),
        (b"\n\na = {{ vault://gh#id_token }}\n", ":3: the token 'gh' has no ID token"),
        (b"x" * (1024 * 1024 + 1), "over the 1024 KiB limit"),
    ):
        template.write_bytes(text)
        r = vault.run("inject", "-i", str(template), "-o", str(out))
        assert r.returncode in (2, 4), r
        assert message in r.stderr, r
        assert not out.exists()
    assert [(u["name"], u["outcome"]) for u in _used(vault)] == [
        ("nope", "failure"),
        ("gh", "failure"),  # no ID token
    ]


def test_template_from_a_file_others_can_write_is_refused(vault: VaultCLI, tmp_path: Path) -> None:
    template, out = _setup_inject(vault, tmp_path)
    template.chmod(0o666)
    r = vault.run("inject", "-i", str(template), "-o", str(out))
    assert r.returncode == 3, r
    assert "anyone can write it" in r.stderr, r
    assert not out.exists()


def test_inject_never_prompts(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    vault = passphrase_vault
    _import(vault, "gh", GH)
    template = tmp_path / "t"
    template.write_text("{{ vault://gh }}")
    r = vault.run("inject", "-i", str(template), env={"VAULT_PASSPHRASE_FILE": ""})
    assert r.returncode == 6, r
    assert "never prompts" in r.stderr


# --- ID tokens, from a real login -----------------------------------------------------------


@pytest.mark.timeout(240)
def test_id_tokens_from_a_real_login(vault: VaultCLI, tmp_path: Path) -> None:
    with start_idp() as idp:
        configure_provider(vault, idp.issuer)
        code, _, err = approved_login(vault)
        assert code == 0, err
        stored = read_record(vault, "local")
        assert stored is not None
        access, id_token = stored["access_token"], stored["id_token"]
        assert isinstance(id_token, str)
        assert id_token.count(".") == 2
        env_file = tmp_path / ".env"
        env_file.write_text("AT=vault://local\nID=vault://local#id_token\n")
        child = _exec(vault, "--env-file", str(env_file))
        env = child["env"]
        assert isinstance(env, dict)
        assert (env["AT"], env["ID"]) == (access, id_token)
        template = tmp_path / "kubeconfig.tpl"
        template.write_text("token: {{ vault://local#id_token }}\n")
        out = tmp_path / "kubeconfig"
        r = vault.run("inject", "-i", str(template), "-o", str(out))
        assert r.returncode == 0, r
        assert out.read_text() == f"token: {id_token}\n"
        assert id_token not in r.stderr
        used = [u for u in _used(vault) if u["event"] == "used"]
        # One record per token handed out: the access token, then the ID token.
        assert [u["command"] for u in used] == [
            f"exec env-file {PY} (AT)",
            f"exec env-file {PY} (ID#id_token)",
            f"inject {out} id_token",
        ]
        # Refreshed first when it must be: the command then starts with no signal held off
        # (a refresh blocks them until its answer is saved), with the refreshed tokens.
        show = (
            "import os; print([l for l in open('/proc/self/status') if l.startswith('SigBlk')]"
            "[0].split()[1], os.environ['AT'], os.environ['ID'].count('.'))"
        )
        r = vault.run(
            "exec", "--min-valid", "999999", "--env-file", str(env_file), "--",
            sys.executable, "-c", show,
        )  # fmt: skip
        assert r.returncode == 0, r
        blocked, new_access, dots = r.stdout.split()
        assert (blocked, dots) == ("0" * 16, "2")
        stored = read_record(vault, "local")
        assert stored is not None
        assert new_access == stored["access_token"] != access
        refreshes = [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]
        assert refreshes
        assert all(g["result"] == "ok" for g in refreshes)
