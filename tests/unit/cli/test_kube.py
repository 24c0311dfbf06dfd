"""`vault kube`'s pieces alone: KUBERNETES_EXEC_INFO read (what client-go sends, and hostile
input), the ExecCredential written, the one-line refusals, the setup entry, and the hand
parser against argparse for the plugin's command line."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.cli.commands.kube import (
    API_V1,
    API_V1BETA1,
    EXEC_INFO_LIMIT,
    ExecInfo,
    exec_credential,
    for_kubectl,
    login_line,
    parse_exec_info,
)
from vault.cli.commands.kube_setup import plugin_args, set_credentials_argv, user_entry
from vault.cli.parser import parse
from vault.cli.run import _parse_fast
from vault.errors import AuthError, IntegrityError, NotFoundError, UsageError


def _info(api_version: str = API_V1, **spec: object) -> str:
    return json.dumps({"kind": "ExecCredential", "apiVersion": api_version, "spec": spec})


# What client-go sends (k8s.io/client-go/plugin/pkg/client/auth/exec), byte for byte.
KUBECTL_V1 = (
    '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",'
    '"spec":{"interactive":false}}'
)
KUBECTL_V1BETA1_CLUSTER = json.dumps(
    {
        "kind": "ExecCredential",
        "apiVersion": API_V1BETA1,
        "spec": {
            "cluster": {
                "server": "https://127.0.0.1:6443",
                "certificate-authority-data": "LS0t" * 500,
                "config": None,
            },
            "interactive": True,
        },
    }
)


def test_what_kubectl_sends_is_read() -> None:
    info = parse_exec_info(KUBECTL_V1, stdin_is_terminal=True)
    assert (info.api_version, info.interactive) == (API_V1, False)
    info = parse_exec_info(KUBECTL_V1BETA1_CLUSTER, stdin_is_terminal=False)
    assert (info.api_version, info.interactive) == (API_V1BETA1, True)


def test_no_variable_is_v1_interactive_only_on_a_terminal() -> None:
    assert parse_exec_info(None, stdin_is_terminal=True).interactive is True
    none = parse_exec_info(None, stdin_is_terminal=False)
    assert (none.api_version, none.interactive) == (API_V1, False)


def test_interactive_absent_is_false() -> None:
    assert parse_exec_info(_info(), stdin_is_terminal=True).interactive is False
    no_spec = json.dumps({"kind": "ExecCredential", "apiVersion": API_V1BETA1})
    assert parse_exec_info(no_spec, stdin_is_terminal=True).interactive is False


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("", "not one JSON object"),
        ("{", "not one JSON object"),
        ("null", "not one JSON object"),
        ('"ExecCredential"', "not one JSON object"),
        (KUBECTL_V1 + "{}", "not one JSON object"),
        ('{"kind":"ExecCredential","apiVersion":NaN}', "not one JSON object"),
        ("[" * 100_000, "over 64 KiB"),
        ("[" * 10_000 + "]" * 10_000, "not one JSON object"),
        (_info("client.authentication.k8s.io/v1alpha1"), "v1alpha1"),
        (_info("v1"), "'v1'"),
        (json.dumps({"kind": "ExecCredential", "apiVersion": 1}), "apiVersion 1"),
        (json.dumps({"kind": "ExecCredentials", "apiVersion": API_V1}), "of kind"),
        (json.dumps({"apiVersion": API_V1}), "of kind None"),
        (json.dumps({"kind": "ExecCredential", "apiVersion": API_V1, "spec": "x"}), "spec is"),
        (_info(interactive=1), "spec.interactive"),
        (_info(interactive=None), "spec.interactive"),
        ("\udcff", "not one JSON object"),  # not UTF-8 (os.environ's surrogate escape)
    ],
)
def test_malformed_is_a_usage_error(value: str, needle: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_exec_info(value, stdin_is_terminal=False)
    assert needle in raised.value.message
    assert "\n" not in raised.value.message
    assert len(raised.value.message) < 300


def test_the_size_limit_is_inclusive() -> None:
    padded = _info()[:-1] + ', "pad": "' + "a" * EXEC_INFO_LIMIT + '"}'
    with pytest.raises(UsageError, match="over 64 KiB"):
        parse_exec_info(padded, stdin_is_terminal=False)
    fits = _info()[:-1] + ', "pad": "' + "a" * (EXEC_INFO_LIMIT - len(_info()) - 20) + '"}'
    assert len(fits.encode()) <= EXEC_INFO_LIMIT
    assert parse_exec_info(fits, stdin_is_terminal=False).api_version == API_V1


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["kind", "apiVersion", "spec", "interactive", "x"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ).map(json.dumps),
    )
)
def test_anything_is_read_or_refused_never_crashes(value: str) -> None:
    try:
        info = parse_exec_info(value, stdin_is_terminal=True)
    except UsageError as exc:
        refused: str | None = exc.message
    else:
        refused = None
    if refused is not None:
        assert "\n" not in refused
        return
    assert info.api_version in (API_V1, API_V1BETA1)
    assert isinstance(info.interactive, bool)


def test_the_credential_is_exactly_the_exec_credential() -> None:
    out = exec_credential(API_V1, "tok", 1_800_000_000)
    assert out.endswith(b"\n")
    assert json.loads(out) == {
        "apiVersion": API_V1,
        "kind": "ExecCredential",
        "status": {"token": "tok", "expirationTimestamp": "2027-01-15T08:00:00Z"},
    }
    assert json.loads(exec_credential(API_V1BETA1, "t", None)) == {
        "apiVersion": API_V1BETA1,
        "kind": "ExecCredential",
        "status": {"token": "t"},
    }
    # Whatever the token holds, the output is one line of ASCII JSON.
    odd = 'a"b\\c\n\u2028é'
    out = exec_credential(API_V1, odd, None)
    assert out.count(b"\n") == 1
    assert out.isascii()
    assert json.loads(out)["status"]["token"] == odd


def test_login_line_names_the_command() -> None:
    assert login_line("needs a login: vault login p --name n", None, "n").endswith("--name n")
    assert login_line("expired", "log in again: vault login p --name n", "n") == (
        "expired; run: vault login p --name n"
    )
    unknown = NotFoundError.for_name("gh")
    assert login_line(unknown.message, unknown.hint, "gh") == (
        "no token named 'gh' in the vault; run: vault login PROVIDER --name gh"
    )


def test_for_kubectl_is_one_line_unless_a_person_is_there() -> None:
    quiet, person = ExecInfo(API_V1, False), ExecInfo(API_V1, True)
    e = for_kubectl(
        AuthError("expired", hint="log in: vault login p --name n", code="expired"), "n", quiet
    )
    assert (e.message, e.hint) == ("expired; run: vault login p --name n", None)
    e = for_kubectl(
        AuthError("expired", hint="vault login p --name n", code="expired"), "n", person
    )
    assert e.message == "expired; run: vault login p --name n"
    assert e.hint is not None
    e = for_kubectl(IntegrityError("keyring locked", hint="unlock it"), "n", quiet)
    assert (e.message, e.hint, e.exit_code) == ("keyring locked (unlock it)", None, 6)
    e = for_kubectl(AuthError("replaced", hint="run again", code="replaced"), "n", person)
    assert (e.message, e.hint) == ("replaced", "run again")  # not a login: left as it is


def test_the_setup_entry_and_the_kubectl_argv_say_the_same() -> None:
    args = plugin_args("gh", id_token=True, min_valid=300)
    assert args == ["kube", "gh", "--id-token", "--min-valid=300"]
    assert plugin_args("gh", id_token=False) == ["kube", "gh"]
    env = [{"name": "VAULT_HOME", "value": "/v h"}]
    entry = user_entry("u", "/bin/vault", args, env)
    argv = set_credentials_argv("u", "/bin/vault", args, env)
    exec_ = entry["user"]["exec"]
    assert argv[:3] == ["config", "set-credentials", "u"]
    assert f"--exec-api-version={exec_['apiVersion']}" in argv
    assert f"--exec-command={exec_['command']}" in argv
    assert [a.removeprefix("--exec-arg=") for a in argv if a.startswith("--exec-arg=")] == args
    assert "--exec-env=VAULT_HOME=/v h" in argv
    assert f"--exec-interactive-mode={exec_['interactiveMode']}" in argv
    assert "--exec-provide-cluster-info=false" in argv
    assert exec_["provideClusterInfo"] is False


# --- the command line: the hand parser against argparse -------------------------------------


def _argparse(argv: list[str]) -> dict[str, Any] | None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return vars(parse(list(argv)))
        except (UsageError, SystemExit):
            return None


@pytest.mark.parametrize(
    "argv",
    [
        ["kube", "gh"],
        ["kube", "gh", "--id-token"],
        ["kube", "--id-token", "gh", "--min-valid", "300"],
        ["kube", "gh", "--min-valid=0", "--passphrase-file", "/p"],
    ],
)
def test_the_plugins_forms_take_the_fast_path(argv: list[str]) -> None:
    fast = _parse_fast(argv)
    assert fast is not None
    assert vars(fast) == _argparse(argv)
    assert fast.handler == "vault.cli.commands.kube:cmd_kube"


@pytest.mark.parametrize(
    "argv",
    [
        ["kube", "setup", "gh", "--cluster", "c"],
        ["kube", "gh", "--cluster", "c"],
        ["kube", "gh", "--write"],
        ["kube", "gh", "extra"],
        ["kube", "gh", "--id"],  # an abbreviation: argparse's to judge
        ["kube", "gh", "--id-token=1"],
        ["kube"],
    ],
)
def test_other_forms_go_to_argparse(argv: list[str]) -> None:
    assert _parse_fast(argv) is None


def test_setup_is_the_first_word_after_kube() -> None:
    ns = parse(["kube", "setup", "gh", "--cluster", "c", "--write"])
    assert (ns.name, ns.setup_name, ns.cluster, ns.write) == ("setup", "gh", "c", True)
    # Wherever the options stand, the first word is the subcommand's.
    ns = parse(["kube", "--id-token", "setup", "gh", "--cluster", "c"])
    assert (ns.name, ns.setup_name, ns.id_token) == ("setup", "gh", True)
    fast = _parse_fast(["kube", "--id-token", "setup"])
    assert fast is not None
    assert vars(fast) == _argparse(["kube", "--id-token", "setup"])
