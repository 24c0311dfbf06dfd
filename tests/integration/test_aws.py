"""`vault aws` as the AWS CLI's credential_process: the real `aws` program (its config in a
temporary file) against moto's STS server on 127.0.0.1, with a real login to the local OIDC
provider for a real ID token. A recording server in front of moto counts the exchanges; it
also answers what moto never does (garbage, oversized answers, an XML bomb, STS errors).

Every failure leaves stdout and stderr empty (a person's words go only to /dev/tty), every use
is audited with the calling tool named, and no secret reaches stderr, the audit log or the
listing commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI, approved_login, configure_provider, read_record
from tests.harness.provider import IdP, start_idp
from tests.harness.sts import Front, Moto, front, moto_server_path, start_moto

ROLE = "arn:aws:iam::123456789012:role/dev"
SCOPES = ("openid", "profile", "offline_access")
KEYS = {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
AWS_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_STS", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
)  # fmt: skip


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    if moto_server_path() is None:
        pytest.skip("moto_server is missing: make install (moto[server] is in the dev lock)")
    with start_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def sts(moto: Moto) -> Iterator[Front]:
    with front(moto.url) as recorder:
        yield recorder


def _aws_env(vault: VaultCLI, sts: Front, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in vault.full_env().items() if k not in AWS_VARS}
    env.update(AWS_ENDPOINT_URL=sts.url, AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1")
    env.update(extra)
    return env


def _vault_aws(
    vault: VaultCLI, sts: Front, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VAULT_BIN, "aws", *args],
        capture_output=True,
        text=True,
        env=_aws_env(vault, sts, **env),
        timeout=60,
        check=False,
        start_new_session=True,  # no controlling terminal: a person's words go nowhere
        stdin=subprocess.DEVNULL,
    )


def _caller_identity(
    vault: VaultCLI, sts: Front, tmp: Path, *helper: str
) -> subprocess.CompletedProcess[str]:
    """`aws sts get-caller-identity` with vault as the profile's credential_process."""
    aws = shutil.which("aws")
    if aws is None:
        pytest.skip("the AWS CLI (`aws`) is not installed: pip install awscli, or apt-get awscli")
    config, creds = tmp / "aws-config", tmp / "aws-credentials"
    creds.write_text("")
    line = " ".join([VAULT_BIN, "aws", *(helper or ("local", "--role-arn", ROLE))])
    config.write_text(f"[profile vault]\ncredential_process = {line}\nregion = us-east-1\n")
    env = _aws_env(
        vault,
        sts,
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(creds),
        AWS_PROFILE="vault",
    )
    return subprocess.run(
        # --endpoint-url as well as AWS_ENDPOINT_URL (which vault, its child, reads): CLIs
        # older than 1.29 / 2.13 (Debian's awscli) know only the option.
        [aws, "--endpoint-url", sts.url, "sts", "get-caller-identity", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )


def _login(vault: VaultCLI, idp: IdP, username: str = "carol") -> None:
    configure_provider(vault, idp.issuer, SCOPES)
    code, _, err = approved_login(vault, username=username)
    assert code == 0, err


def _used(vault: VaultCLI) -> list[tuple[str, str]]:
    out = vault.run("audit", "show", "--json").stdout.splitlines()
    return [
        (e["outcome"], e["command"])
        for e in map(json.loads, out)
        if e["event"] in ("used", "denied")
    ]


def test_the_aws_cli_assumes_the_role_with_the_stored_id_token(
    vault: VaultCLI, sts: Front, tmp_path: Path
) -> None:
    with start_idp() as idp:
        _login(vault, idp)
        r = _caller_identity(vault, sts, tmp_path)
        assert r.returncode == 0, r
        assert json.loads(r.stdout)["Arn"] == "arn:aws:sts::123456789012:assumed-role/dev/carol"
        stored = read_record(vault, "local")
        assert stored is not None
        [asked] = sts.actions()
        assert asked["WebIdentityToken"] == stored["id_token"]
        assert asked["RoleArn"] == ROLE
        assert asked["RoleSessionName"] == "carol"
        assert asked["DurationSeconds"] == "3600"
        # The second command is served from the vault: no exchange at STS.
        r = _caller_identity(vault, sts, tmp_path)
        assert r.returncode == 0, r
        assert json.loads(r.stdout)["Arn"].endswith("assumed-role/dev/carol")
        assert len(sts.actions()) == 1
        assert len(sts.actions("GetCallerIdentity")) == 2
    via = f"via 127.0.0.1:{sts.port}"  # the ID token went to a host that is not AWS's own
    assert _used(vault) == [
        ("success", f"aws sts {ROLE} {via} (aws)"),
        ("success", f"aws sts {ROLE} cached {via} (aws)"),
    ]


def test_stdout_is_exactly_the_credential_process_answer(vault: VaultCLI, sts: Front) -> None:
    with start_idp() as idp:
        _login(vault, idp)
        r = _vault_aws(vault, sts, "local", "--role-arn", ROLE, "--duration", "900")
    assert r.returncode == 0, r
    assert r.stderr == ""
    assert r.stdout.endswith("}\n")
    assert r.stdout.count("\n") == 1
    doc = json.loads(r.stdout)
    assert set(doc) == KEYS
    assert doc["Version"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["Expiration"])
    assert doc["AccessKeyId"].startswith("ASIA")


def test_no_secret_reaches_stderr_the_audit_log_or_the_listings(
    vault: VaultCLI, sts: Front
) -> None:
    with start_idp() as idp:
        _login(vault, idp)
        runs = [
            _vault_aws(vault, sts, "local", "--role-arn", ROLE, *flags)
            for flags in ((), ("--debug",), ("-v",))
        ]
    stored = read_record(vault, "local")
    assert stored is not None
    creds = json.loads(runs[0].stdout)
    canaries = [str(stored["id_token"]), creds["SecretAccessKey"], creds["SessionToken"]]
    seen = [r.stderr for r in runs]
    seen.append((vault.home / "audit.jsonl").read_text())
    for args in (("list", "--json"), ("status", "--json"), ("status", "local", "--json")):
        r = vault.run(*args)
        assert r.returncode == 0, r
        assert "aws" not in r.stdout.lower()
        seen.append(r.stdout)
    for text in seen:
        for canary in canaries:
            assert canary not in text
    assert [r.stderr for r in runs] == ["", "", ""]  # --debug and -v: to the terminal only


def test_logout_deletes_the_kept_credentials(vault: VaultCLI, sts: Front) -> None:
    with start_idp() as idp:
        _login(vault, idp)
        assert _vault_aws(vault, sts, "local", "--role-arn", ROLE).returncode == 0
        stored = read_record(vault, "local")
        assert stored is not None
        assert len(stored["aws"]) == 1  # type: ignore[arg-type]
        assert vault.run("logout", "local").returncode == 0
        assert read_record(vault, "local") is None
        _login(vault, idp)
        assert _vault_aws(vault, sts, "local", "--role-arn", ROLE).returncode == 0
    assert len(sts.actions()) == 2  # the new login's first call asked STS again


def test_an_expiring_id_token_is_refreshed_before_the_exchange(vault: VaultCLI, sts: Front) -> None:
    with start_idp(access_ttl=200) as idp:  # ID tokens live as long: under --min-valid 300
        _login(vault, idp)
        before = read_record(vault, "local")
        assert before is not None
        r = _vault_aws(vault, sts, "local", "--role-arn", ROLE)
        assert r.returncode == 0, r
        after = read_record(vault, "local")
        assert after is not None
        refreshes = [g for g in idp.grants()["grants"] if g["grant_type"] == "refresh_token"]
    assert [g["result"] for g in refreshes] == ["ok"]
    [asked] = sts.actions()
    assert asked["WebIdentityToken"] == after["id_token"] != before["id_token"]


def test_max_token_age_caps_the_duration_and_refuses_when_too_little_is_left(
    vault: VaultCLI, sts: Front
) -> None:
    with start_idp() as idp:
        _login(vault, idp)
        folder = vault.home / "policies"
        folder.mkdir(mode=0o700)
        (folder / "p.yaml").write_text("version: 1\nmax_token_age: 20m\n")
        r = _vault_aws(vault, sts, "local", "--role-arn", ROLE)
        assert r.returncode == 0, r
        asked = int(sts.actions()[0]["DurationSeconds"])
        assert 1100 < asked <= 1200
        (folder / "p.yaml").write_text("version: 1\nmax_token_age: 14m\n")
        r = _vault_aws(vault, sts, "local", "--role-arn", ROLE, "--duration", "900")
        assert (r.returncode, r.stdout, r.stderr) == (5, "", "")
    assert len(sts.actions()) == 1
    # The tool named is this test's process (pytest-xdist renames its workers while they run).
    outcome, command = _used(vault)[-1]
    assert outcome == "denied"
    assert re.fullmatch(rf"aws sts {re.escape(ROLE)} via 127\.0\.0\.1:{sts.port} \(.+\)", command)


IMPORTED = "ghp_" + "AwsCanary" * 4 + "x"


@pytest.mark.parametrize(
    ("args", "env", "code"),
    [
        (["nope", "--role-arn", ROLE], {}, 4),
        (["local", "--role-arn", "arn:aws:iam::1:role/x"], {}, 2),
        (["local"], {}, 2),
        (["local", "--role-arn", ROLE, "--duration", "60"], {}, 2),
        (["local", "--role-arn", ROLE, "--session-name", "a b"], {}, 2),
        (["local", "--role-arn", ROLE, "--no-such-flag"], {}, 2),
        (["gh", "--role-arn", ROLE], {}, 4),  # no ID token
        (["local", "--role-arn", ROLE], {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, 7),
        (["local", "--role-arn", ROLE], {"AWS_ENDPOINT_URL": "http://sts.example"}, 3),
        (["local", "--role-arn", ROLE], {"AWS_ENDPOINT_URL_STS": "http://[::1"}, 3),
    ],
)
def test_failures_print_nothing_on_stdout_or_stderr(
    vault: VaultCLI, sts: Front, args: list[str], env: dict[str, str], code: int
) -> None:
    r = vault.run("import", "gh", "--provider", "github", input=IMPORTED)
    assert r.returncode == 0, r
    with start_idp() as idp:
        _login(vault, idp)
        done = _vault_aws(vault, sts, *args, **env)
    assert (done.returncode, done.stdout, done.stderr) == (code, "", "")
    assert sts.actions() == []


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY a%d "%s">' % (i, (b"&a%d;" % (i - 1) if i else b"&a;") * 10) for i in range(1, 9)
    )
    + b"]><b>&a8;</b>"
)
STS_ANSWERS = {
    "garbage": ((200, {"Content-Type": "text/xml"}, b"\x00\xffnot xml"), 7),
    "json": ((200, {"Content-Type": "application/json"}, b'{"AccessKeyId": "x"}'), 7),
    "oversized": ((200, {"Content-Type": "text/xml"}, b"<a>" + b"x" * (1 << 20) + b"</a>"), 7),
    "xml bomb": ((200, {"Content-Type": "text/xml"}, BOMB), 7),
    "html 502": ((502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"), 7),
    "redirect": ((302, {"Location": "http://127.0.0.2/"}, b""), 7),
    "invalid token": (
        (
            400,
            {"Content-Type": "text/xml"},
            b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            b"<Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key"
            b"</Message></Error></ErrorResponse>",
        ),
        4,
    ),
    "throttled": (
        (
            400,
            {"Content-Type": "text/xml"},
            b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            b"<Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
        ),
        7,
    ),
}


@pytest.mark.parametrize(("answer", "code"), STS_ANSWERS.values(), ids=STS_ANSWERS.keys())
def test_what_sts_answers_badly_fails_silently_and_keeps_nothing(
    vault: VaultCLI,
    sts: Front,
    answer: tuple[int, dict[str, str], bytes],
    code: int,
) -> None:
    with start_idp() as idp:
        _login(vault, idp)
        sts.reply = answer
        r = _vault_aws(vault, sts, "local", "--role-arn", ROLE)
        assert (r.returncode, r.stdout, r.stderr) == (code, "", "")
        stored = read_record(vault, "local")
        assert stored is not None
        assert "aws" not in stored
        sts.reply = None
        assert _vault_aws(vault, sts, "local", "--role-arn", ROLE).returncode == 0
    assert [outcome for outcome, _ in _used(vault)] == ["success", "failure", "success"]


def test_through_the_aws_cli_a_failure_shows_nothing_of_vault(
    vault: VaultCLI, sts: Front, tmp_path: Path
) -> None:
    r = _caller_identity(vault, sts, tmp_path, "nope", "--role-arn", ROLE)
    assert r.returncode != 0
    assert "vault" not in r.stderr.lower().replace(VAULT_BIN.lower(), "")
    assert "no token named" not in r.stderr


_ON_A_TERMINAL = """
import os, sys
os.setsid()
fd = os.open(sys.argv[1], os.O_RDWR)  # a session leader opening a terminal: its controlling one
os.close(fd)
os.execv(sys.argv[2], sys.argv[2:])
"""


def test_a_persons_words_go_to_the_controlling_terminal(vault: VaultCLI, sts: Front) -> None:
    """With a controlling terminal, the error and its hint are written there; stdout and
    stderr (the SDK's pipes) stay empty."""
    master, slave = os.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _ON_A_TERMINAL, os.ttyname(slave), VAULT_BIN, "aws", "nope",
             "--role-arn", ROLE],
            capture_output=True,
            text=True,
            env=_aws_env(vault, sts),
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        os.set_blocking(master, False)  # what it wrote waits in the terminal: read it all
        said = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            said += chunk
    finally:
        os.close(master)
        os.close(slave)
    assert (proc.returncode, proc.stdout, proc.stderr) == (4, "", "")
    text = said.decode(errors="replace")
    assert "\x1b[" in text  # a terminal: `error:` is emphasised there
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "vault: error: no token named 'nope' in the vault" in text
    assert "vault: hint:" in text
