"""The device-flow login screen in a real terminal (tmux) against the real provider: the exact
layout at 80x24 and 120x40, nothing wrapped, no QR code for a loopback provider, one Waiting
line rewritten in place and erased when the wait ends (approved, denied, interrupted), the
user code emphasised only where colour is wanted, --clipboard through stdin."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI, configure_provider
from tests.harness.provider import IdP, approve, start_idp
from tests.harness.tmux import TMUX, Terminal
from vault.cli.screen import device_lines, phone_can_open
from vault.login.oauth import DeviceAuthorization, Endpoints
from vault.login.providers import PRESETS
from vault.secret import Secret
from vault.util.record import replace

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

WAITING = "  Waiting for approval... the code expires in "


@pytest.fixture(scope="module")
def idp() -> Iterator[IdP]:
    with start_idp(device_code_ttl=600) as server:
        yield server


def _env(vault: VaultCLI, **extra: str) -> dict[str, str]:
    env = vault.full_env({"TERM": "xterm-256color", **extra})
    for var in ("NO_COLOR", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION"):
        if var not in extra:
            env.pop(var, None)
    return env


def _layout(issuer: str) -> list[str]:
    """The screen while waiting, as patterns (port, code and times vary)."""
    host = re.escape(issuer.split("//", 1)[1].rstrip("/"))
    return [
        "",
        rf"  To log in to local \({re.escape(issuer)}\):",
        rf"  1\. Open   http://{host}/device",
        r"  2\. Enter  [A-Z]{4}-[A-Z]{4}",
        rf"  Check that {host} is your identity provider before you approve\.",
        r"  The code expires in 10 min \(at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\.",
        r"  Waiting for approval\.\.\. the code expires in (10:00|9:\d\d)",
    ]


def _waiting(term: Terminal) -> list[str]:
    """The screen once the Waiting line has been rewritten at least twice."""
    first = next(r for r in term.wait_for(WAITING) if r.startswith(WAITING))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = term.screen()
        if first not in rows:
            return rows
        time.sleep(0.2)
    raise AssertionError("the Waiting line never changed:\n" + "\n".join(term.screen()))


def _check_waiting_screen(rows: list[str], issuer: str, width: int) -> tuple[str, str]:
    expected = _layout(issuer)
    for pattern, row in zip(expected, rows, strict=False):
        assert re.fullmatch(pattern, row), (pattern, rows)
    assert all(row == "" for row in rows[len(expected) :]), rows  # nothing more: no QR code
    assert sum(WAITING in row for row in rows) == 1, rows  # one Waiting line, no pile-up
    assert all(len(row) < width for row in rows), rows  # nothing wrapped
    return rows[2].split()[-1], rows[3].split()[-1]


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40)])
def test_the_screen_at_a_terminal_size(vault: VaultCLI, idp: IdP, width: int, height: int) -> None:
    configure_provider(vault, idp.issuer)
    argv = [VAULT_BIN, "login", "local", "--no-browser"]
    with Terminal(argv, env=_env(vault), width=width, height=height) as term:
        rows = _waiting(term)
        url, code = _check_waiting_screen(rows, idp.issuer, width)
        approve(url, code)
        assert term.wait_exit() == 0, term.screen()
        after = term.screen()
    assert after[:6] == rows[:6]  # the header and the trust line stay
    assert after[6].startswith("Logged in"), after  # where the Waiting line was, erased
    assert not any("Waiting" in row for row in after), after
    assert all(row == "" for row in after[8:]), after


def test_denied_erases_the_waiting_line(vault: VaultCLI, idp: IdP) -> None:
    configure_provider(vault, idp.issuer)
    with Terminal([VAULT_BIN, "login", "local", "--no-browser"], env=_env(vault)) as term:
        url, code = _check_waiting_screen(_waiting(term), idp.issuer, 80)
        approve(url, code, deny=True)
        assert term.wait_exit() == 4, term.screen()
        after = term.screen()
    assert not any("Waiting" in row for row in after), after
    assert after[6].startswith("vault: error: "), after


def _pane_child(term: Terminal) -> int:
    pane = term._tmux("list-panes", "-F", "#{pane_pid}").stdout.split()[0]
    out = subprocess.run(["pgrep", "-P", pane], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def test_ctrl_c_erases_the_waiting_line(vault: VaultCLI, idp: IdP) -> None:
    """SIGINT, as Ctrl-C sends it, to vault alone (tmux would also stop the shell that
    reports the exit status)."""
    configure_provider(vault, idp.issuer)
    with Terminal([VAULT_BIN, "login", "local", "--no-browser"], env=_env(vault)) as term:
        _waiting(term)
        os.kill(_pane_child(term), signal.SIGINT)
        assert term.wait_exit() == 130, term.screen()
        after = term.screen()
    assert not any("Waiting" in row for row in after), after
    assert "interrupted" in after[6], after


def test_the_code_is_bold_on_a_terminal_and_plain_with_no_color(vault: VaultCLI, idp: IdP) -> None:
    configure_provider(vault, idp.issuer)
    # tmux sets TERM in the pane itself: TERM=dumb is set by env(1), as a person would.
    for pre, extra, bold in (
        ([], {}, True),
        ([], {"NO_COLOR": "1"}, False),
        (["env", "TERM=dumb"], {}, False),
    ):
        argv = [*pre, VAULT_BIN, "login", "local", "--no-browser"]
        with Terminal(argv, env=_env(vault, **extra)) as term:
            rows = term.wait_for(WAITING)
            code = rows[3].split()[-1]
            raw = term.raw()
        assert (f"\x1b[1m{code}" in raw) is bold, (pre, extra, raw)
        if not bold:
            assert "\x1b[1m" not in raw


def test_not_a_terminal_no_escapes_no_waiting_line(vault: VaultCLI, idp: IdP) -> None:
    from tests.harness.provider import approve_complete

    configure_provider(vault, idp.issuer)
    proc = vault.popen("login", "local", "--no-browser", "--json")
    assert proc.stdout is not None
    import json

    event = json.loads(proc.stdout.readline())
    approve_complete(str(event["verification_uri_complete"]))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    text = err.decode()
    assert "\x1b" not in text
    assert "\r" not in text
    assert "Waiting" not in text
    assert f"  2. Enter  {event['user_code']}\n" in text


def _recorder(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A stand-in clipboard tool (no real clipboard exists without a display): it records its
    arguments and what it read on stdin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "clipboard"
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}.argv\ncat > {record}\n')
    tool.chmod(0o755)
    return bin_dir, record


def test_clipboard_gets_the_code_through_stdin(vault: VaultCLI, idp: IdP, tmp_path: Path) -> None:
    configure_provider(vault, idp.issuer)
    bin_dir, record = _recorder(tmp_path, "pbcopy")
    env = _env(vault, PATH=f"{bin_dir}:/usr/bin:/bin")
    argv = [VAULT_BIN, "login", "local", "--no-browser", "--clipboard"]
    with Terminal(argv, env=env) as term:
        rows = term.wait_for(WAITING)
        code = rows[3].split()[-1]
        assert rows[6] == "  The code is copied to the clipboard (pbcopy).", rows
        assert all(len(row) < 80 for row in rows), rows
    assert record.read_text() == code
    assert code not in Path(f"{record}.argv").read_text()


def test_clipboard_without_a_tool_says_so(vault: VaultCLI, idp: IdP, tmp_path: Path) -> None:
    configure_provider(vault, idp.issuer)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = _env(vault, PATH=str(empty))
    argv = [VAULT_BIN, "login", "local", "--no-browser", "--clipboard"]
    with Terminal(argv, env=env) as term:
        rows = term.wait_for(WAITING)
    assert (
        rows[6] == "  The code was not copied: no clipboard tool found (see vault login --help)."
    ), rows
    assert sum(WAITING in row for row in rows) == 1


# --- the parts, without a terminal -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/device",
        "http://127.8.9.10/device",
        "http://[::1]:9000/device",
        "http://localhost/device",
        "http://LOCALHOST./device",
        "http://idp.localhost/device",
        "https://printer.local/device",
        "https://idp/device",
        "http://0.0.0.0/device",
        "http://[fe80::1]/device",
        "http://169.254.1.1/device",
        "not a url",
        "http://[::1/broken",
    ],
)
def test_no_qr_code_where_a_phone_cannot_go(url: str) -> None:
    assert not phone_can_open(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/login/device",
        "https://microsoft.com/devicelogin?code=X",
        "https://192.168.1.20/device",
        "https://idp.example.local.example.com/device",
    ],
)
def test_a_qr_code_where_a_phone_can_go(url: str) -> None:
    assert phone_can_open(url)


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize(
    "host",
    ["github.com", "login.microsoftonline.com", "idp.a-very-long-subdomain.example.com:8443"],
)
def test_lines_fit_the_width_whatever_the_host(width: int, host: str) -> None:
    provider = replace(PRESETS["oidc"], name="work")
    issuer = f"https://{host}/realms/engineering-and-operations"
    endpoints = Endpoints(
        issuer=issuer, device_authorization_endpoint=None, token_endpoint=f"{issuer}/token"
    )
    device = DeviceAuthorization(
        device_code=Secret("d"),
        user_code="WDJB-MJHT",
        verification_uri=f"https://{host}/device",
        verification_uri_complete=None,
        expires_in=900,
        interval=5,
    )
    lines = device_lines(provider, endpoints, device, width=width, now=0)
    assert all(len(line) < width for line in lines), lines
    assert any(host in line and "Check that" in line for line in lines) or any(
        line == f"  {host}" for line in lines
    ), lines
    assert "  2. Enter  WDJB-MJHT" in lines
