"""vault.cli.schedule: the values a scheduled prune carries, quoted for cron and sh, and for
systemd, checked against the real readers (sh after cron's `%` rule, systemd-analyze), and
read back the way `vault doctor` reads an installed job."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.harness.cron import bare_env, percent
from vault.cli import schedule
from vault.errors import UsageError

# What can break a quoting: each shell and cron metacharacter, systemd's specifier and escape
# characters, blanks at either end, other scripts.
NASTY = [
    "plain",
    "with space",
    "  leading and trailing  ",
    "single'quote",
    'double"quote',
    "dollar $HOME and ${HOME} and $(id) and `id`",
    "percent % and %% and %h",
    "backslash \\ and \\% and \\\\% and trailing \\",
    "semicolon; && || | & > < >> 2>&1",
    "glob * ? [a] ~ ~root",
    "-leading-dash",
    "tab\there",
    "escape\x1b[31mred",
    "é ü 中文 🙂",
    "'",
    "%",
    "\\",
    "",
]

# Any text a crontab line or a unit can carry: everything but line breaks, NUL and the lone
# surrogates that stand for bytes that are not UTF-8.
CARRIED = st.text(
    st.one_of(
        st.sampled_from(list("%\\'\"$`;&|<>(){}[]*?~!# \t=")),
        st.characters(
            blacklist_categories=["Cs"],
            blacklist_characters="\n\r\0",
        ),
    ),
    max_size=40,
)


def _through_cron_and_sh(assignments: dict[str, str]) -> dict[str, str]:
    """The environment sh gives a command after cron and sh have read
    ``NAME=<cron_word(value)>...`` (cron's `%` rule first, as tests.harness.cron applies it)."""
    words = " ".join(f"{k}={schedule.cron_word(v)}" for k, v in assignments.items())
    command, stdin = percent(f"{words} exec /usr/bin/env -0")
    assert stdin == "", "a % reached cron unescaped"
    proc = subprocess.run(
        [*bare_env(Path("/")), "/bin/sh", "-c", command],
        capture_output=True,
        check=True,
        timeout=30,
    )
    seen = {}
    for item in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        name, _, value = item.partition("=")
        seen[name] = value
    return seen


@pytest.mark.parametrize("value", NASTY)
def test_cron_word_survives_cron_and_sh(value: str) -> None:
    assert _through_cron_and_sh({"V": value})["V"] == value


@settings(max_examples=150, deadline=None)
@given(CARRIED)
@example("\\%")
@example("a\\")
def test_cron_word_survives_cron_and_sh_for_any_text(value: str) -> None:
    assert _through_cron_and_sh({"V": value})["V"] == value


def _through_systemd(values: list[str], tmp: Path) -> list[str]:
    """What systemd reads from ``Environment=`` lines as vault.cli.schedule writes them.
    systemd-analyze verify parses a unit as the manager would and logs an assignment whose name
    is invalid as it read it, value included: each test value goes under the invalid name
    "1V<i>", the rest of the line exactly as service_unit writes it."""
    unit = tmp / "probe.service"
    unit.write_text(
        schedule.service_unit(["/bin/true"], {f"1V{i}": v for i, v in enumerate(values)})
    )
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    text = proc.stderr.decode("utf-8", "surrogateescape")
    found: dict[int, str] = {}
    for match in re.finditer(r"Invalid environment assignment, ignoring: 1V(\d+)=(.*)", text):
        found[int(match.group(1))] = match.group(2)
    other = [
        line
        for line in text.split("\n")  # not splitlines: values hold \x1c-\x1e, \x85 ...
        if line and "Invalid environment assignment, ignoring: 1V" not in line
    ]
    assert not other, text
    # systemd strips nothing inside the quotes, but its log line ends where the value does.
    return [found.get(i, "<missing>") for i in range(len(values))]


needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


@needs_systemd
def test_systemd_quote_as_systemd_reads_it(tmp_path: Path) -> None:
    values = [v for v in NASTY if v]  # systemd logs an empty assignment differently
    assert _through_systemd(values, tmp_path) == values


@needs_systemd
@settings(max_examples=40, deadline=None)
@given(st.lists(CARRIED.filter(lambda v: v != "" and v == v.rstrip()), min_size=1, max_size=8))
def test_systemd_quote_as_systemd_reads_it_for_any_text(
    tmp_path_factory: pytest.TempPathFactory, values: list[str]
) -> None:
    # Trailing blanks are left out only because systemd's log line cannot show them apart.
    assert _through_systemd(values, tmp_path_factory.mktemp("unit")) == values


@needs_systemd
def test_execstart_path_as_systemd_reads_it(tmp_path: Path) -> None:
    """The executable's path: systemd-analyze names a command it cannot find as it read it."""
    path = "/nowhere/a b$e%f $$ %% é/vault"
    unit = tmp_path / "probe.service"
    unit.write_text(schedule.service_unit([path], {}))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert f"Command {path} is not executable" in proc.stderr, proc.stderr


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), CARRIED))
def test_doctor_reads_back_what_service_unit_writes(env: dict[str, str]) -> None:
    text = schedule.service_unit(["/opt/my vault/bin/vault"], env)
    read: dict[str, str] = {}
    command: list[str] = []
    for line in text.split("\n"):
        key, _, value = line.partition("=")
        if key == "Environment":
            (word,) = schedule.systemd_words(value)
            name, _, val = word.partition("=")
            read[name] = val
        elif key == "ExecStart":
            command = schedule.systemd_words(value)
    assert read == env
    assert command == ["/opt/my vault/bin/vault", "prune", "--json"]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(schedule.PINNED), CARRIED, min_size=1))
def test_doctor_reads_back_what_cron_line_writes(env: dict[str, str]) -> None:
    line = schedule.cron_line(["/opt/my vault/bin/vault"], env, Path("/state dir/prune.log"))
    (job,) = schedule.crontab_jobs(f"# m h dom mon dow command\n{line}\n")
    assert job.command == ["/opt/my vault/bin/vault"]
    assert {k: job.env[k] for k in env} == env


def test_crontab_jobs_takes_the_crontab_environment_and_skips_other_lines() -> None:
    text = (
        "MAILTO=me@example.com\n"
        'DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/1000/bus"\n'
        "0 * * * * /usr/bin/backup --all\n"
        "@hourly VAULT_HOME=/srv/v python3 -m vault prune >/dev/null 2>&1\n"
    )
    (job,) = schedule.crontab_jobs(text)
    assert job.command == ["python3", "-m", "vault"]
    assert job.env["VAULT_HOME"] == "/srv/v"
    assert job.env["DBUS_SESSION_BUS_ADDRESS"] == "unix:path=/run/user/1000/bus"
    assert job.env["PATH"] == "/usr/bin:/bin"


def _pwd_home() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_dir


def test_pinned_env_keeps_what_decides_where_things_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "HOME": _pwd_home(),  # cron and systemd set it themselves: not pinned
        "VAULT_HOME": "rel/vh",  # relative to the folder it was read in
        "VAULT_SYSTEM_POLICY_DIR": "/etc/vault/policies.d",
        "XDG_CONFIG_HOME": "relative-is-ignored",
        "XDG_DATA_HOME": "/data",
        "XDG_STATE_HOME": "",
        "VAULT_PASSPHRASE_FILE": "pw",
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus,guid=0123abcd",
        "VAULT_KEY_BACKEND": "passphrase",
        "PYTHON_KEYRING_BACKEND": " ",
        "TERM": "xterm",
    }
    assert schedule.pinned_env(env) == {
        "VAULT_HOME": str(tmp_path / "rel/vh"),
        "VAULT_SYSTEM_POLICY_DIR": "/etc/vault/policies.d",
        "XDG_DATA_HOME": "/data",
        "VAULT_KEY_BACKEND": "passphrase",
        "VAULT_PASSPHRASE_FILE": str(tmp_path / "pw"),
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
    }
    assert schedule.pinned_env({"HOME": "/elsewhere"}) == {"HOME": "/elsewhere"}


@pytest.mark.parametrize(
    ("address", "pinned"),
    [
        ("unix:path=/run/user/1000/bus", "unix:path=/run/user/1000/bus"),
        ("unix:path=/tmp/dbus-x,guid=42", "unix:path=/tmp/dbus-x"),
        ("unix:abstract=/tmp/dbus-XYZ,guid=42", None),
        ("tcp:host=localhost,port=1234", None),
        ("unix:abstract=/tmp/a;unix:path=/run/bus", "unix:path=/run/bus"),
        ("unix:path=/a%20b", "unix:path=/a%20b"),
        ("garbage", None),
    ],
)
def test_only_path_dbus_addresses_are_pinned(address: str, pinned: str | None) -> None:
    assert schedule.dbus_path_address(address) == pinned
    got = schedule.pinned_env({"DBUS_SESSION_BUS_ADDRESS": address})
    assert got.get("DBUS_SESSION_BUS_ADDRESS") == pinned


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", "bad\udcffbyte"])
def test_values_no_line_can_carry_are_refused(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        schedule.pinned_env({"VAULT_HOME": "/" + bad})
    assert err.value.exit_code == 2
    assert "VAULT_HOME" in err.value.message
    assert "\n" not in err.value.message


def test_cron_line_format() -> None:
    line = schedule.cron_line(
        ["/opt/vault/bin/vault"],
        {"VAULT_HOME": "/home/me/my vaults/100%"},
        Path("/home/me/my vaults/100%/prune.log"),
    )
    assert line == (
        "17 * * * * umask 077; VAULT_HOME='/home/me/my vaults/100'\"\\%\" "
        "/opt/vault/bin/vault prune --json >> '/home/me/my vaults/100'\"\\%\"/prune.log 2>&1"
    )


def test_service_unit_format() -> None:
    unit = schedule.service_unit(["/opt/vault/bin/vault"], {"VAULT_HOME": '/v "x" 100% \\'})
    assert unit == (
        "[Unit]\nDescription=vault: expire and revoke tokens policy no longer allows\n\n"
        "[Service]\nType=oneshot\n"
        'Environment="VAULT_HOME=/v \\"x\\" 100%% \\\\"\n'
        'ExecStart="/opt/vault/bin/vault" prune --json\n'
    )


@pytest.mark.parametrize("exe", ['/opt/a"b/vault', "/opt/a'b/vault", "/opt/a\\b/vault", "/a\tb"])
def test_service_unit_refuses_an_executable_systemd_cannot_run(exe: str) -> None:
    """systemd refuses quotes, backslashes and controls in ExecStart='s executable however it is
    quoted ("Executable name contains special characters"): refused here, exit 2, not a unit
    that never runs."""
    with pytest.raises(UsageError) as err:
        schedule.service_unit([exe], {})
    assert err.value.exit_code == 2
    assert "--cron" in (err.value.hint or "")
