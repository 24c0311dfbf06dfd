"""What a person sees while logging in (stderr), and the JSON events (stdout) with --json."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import Any, TextIO

from vault.cli.render import dump_json, style
from vault.login import http as _http
from vault.login import oauth as _oauth
from vault.login import providers as _providers
from vault.util.text import clean, rfc3339


class LoginScreen:
    """What the person sees, on stderr; and the JSON events on stdout with --json.

    The device-flow screen fits the terminal: at 80x24 no line wraps and the header and the
    trust line stay on screen (the QR code is left out when it would push them off). The QR
    code is drawn only for a URL a phone could open (not loopback, not a .local name). One
    "Waiting for approval..." line is rewritten in place and erased when the wait ends."""

    def __init__(
        self,
        *,
        json_mode: bool,
        no_browser: bool,
        err: TextIO | None = None,
        clipboard: bool = False,
    ) -> None:
        self.json_mode = json_mode
        self.no_browser = no_browser
        self.clipboard = clipboard
        self.err = err or sys.stderr
        self.tty = self.err.isatty()
        self._last_tick = -1
        self._ticking = False

    def event(self, doc: dict[str, Any]) -> None:
        if self.json_mode:
            dump_json(doc)

    def show(
        self,
        provider: _providers.Provider,
        endpoints: _oauth.Endpoints,
        device: _oauth.DeviceAuthorization,
    ) -> None:
        self.event(
            {
                "event": "device_code",
                "verification_uri": device.verification_uri,
                "verification_uri_complete": device.verification_uri_complete,
                "user_code": device.user_code,
                "expires_in": device.expires_in,
                "interval": device.interval,
            }
        )
        width, height = terminal_size()
        lines = device_lines(provider, endpoints, device, width=width, now=time.time())
        code = clean(device.user_code, 64)
        shown = [
            line.replace(code, style(code, "code", self.err)) if line.startswith("  2.") else line
            for line in lines
        ]
        self.err.write("\n".join(shown) + "\n")
        if self.clipboard:
            self.err.write(f"  {copy_to_clipboard(device.user_code)}\n")
        qr_url = device.verification_uri_complete
        if qr_url and self.tty and phone_can_open(qr_url):
            room = height - len(lines) - (1 if self.clipboard else 0) - 3  # + its title, Waiting
            self._qr(qr_url, width=width, rows=room)
        if self._may_open_browser():
            self._offer_browser(device.verification_uri_complete or device.verification_uri)
        self.err.flush()

    def _qr(self, data: str, *, width: int, rows: int) -> None:
        """The QR code, drawn only where the terminal can show it whole in ``rows``."""
        if os.environ.get("TERM", "") in ("", "dumb"):
            return
        try:
            import segno

            qr = segno.make(data, error="l")
            w, h = qr.symbol_size(border=2)
            if w > width or (h + 1) // 2 > rows:
                return
            self.err.write("  Or scan this with a phone:\n")
            qr.terminal(out=self.err, compact=True, border=2)
        except Exception:  # a QR code is a convenience; never fail a login over it
            return

    def _may_open_browser(self) -> bool:
        if self.no_browser or self.json_mode:
            return False
        if any(os.environ.get(v) for v in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")):
            return False
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            return False
        return sys.stdin is not None and sys.stdin.isatty() and self.tty

    def _offer_browser(self, url: str) -> None:
        self.err.write("  Press Enter to open it in your browser.\n")

        def wait_for_enter() -> None:
            try:
                if sys.stdin.readline():
                    import webbrowser

                    webbrowser.open(url, new=2)
            except Exception:
                return

        threading.Thread(target=wait_for_enter, name="vault-browser", daemon=True).start()

    def tick(self, remaining: float) -> None:
        """The one Waiting line, rewritten in place (a terminal only; never wider than it)."""
        if not self.tty or self.json_mode:
            return
        secs = max(0, int(remaining))
        if secs == self._last_tick:
            return
        self._last_tick = secs
        self._ticking = True
        text = self.waiting_text(secs)[: max(1, terminal_size()[0] - 1)]
        self.err.write(self._erase() + text)
        self.err.flush()

    def waiting_text(self, secs: int) -> str:
        """The Waiting line with ``secs`` left."""
        return f"  Waiting for approval... the code expires in {secs // 60}:{secs % 60:02d}"

    def _erase(self) -> str:
        """Back to the start of the Waiting line, erased: the terminal's erase-line sequence,
        or blanks where TERM=dumb says it has none."""
        if os.environ.get("TERM", "") in ("", "dumb"):
            return "\r" + " " * max(1, terminal_size()[0] - 1) + "\r"
        return "\r\033[K"

    def end_ticks(self) -> None:
        """Erase the Waiting line (success, failure or Ctrl-C alike)."""
        if self._ticking:
            self.err.write(self._erase())
            self.err.flush()
            self._ticking = False


def device_lines(
    provider: _providers.Provider,
    endpoints: _oauth.Endpoints,
    device: _oauth.DeviceAuthorization,
    *,
    width: int,
    now: float,
) -> list[str]:
    """The device-flow screen's text, as lines that fit ``width`` columns where they can: an
    issuer too long is left out of the header, a long host moves to a line of its own; only a
    URL longer than the terminal is left whole (a URL cut in two cannot be opened)."""
    fit = max(20, width - 1)
    name = clean(provider.name, 64)
    issuer = clean(endpoints.issuer, 200)
    host = clean(_http.host_of(device.verification_uri), 200)
    url = clean(device.verification_uri, 2048)
    code = clean(device.user_code, 64)
    header = f"  To log in to {name} ({issuer}):"
    lines = [""]
    # An issuer too long for the line is left out: the trust line names its host.
    lines.append(header if len(header) <= fit else f"  To log in to {name}:")
    lines += [f"  1. Open   {url}", f"  2. Enter  {code}"]
    trust = f"  Check that {host} is your identity provider before you approve."
    if len(trust) <= fit:
        lines.append(trust)
    else:
        lines += ["  Check that this is your identity provider before you approve:", f"  {host}"]
    minutes, seconds = divmod(max(0, int(device.expires_in)), 60)
    left = f"{minutes} min" + (f" {seconds} s" if seconds else "")
    expiry = f"  The code expires in {left} (at {rfc3339(now + device.expires_in)})."
    lines.append(expiry if len(expiry) <= fit else f"  The code expires in {left}.")
    return lines


def phone_can_open(url: str) -> bool:
    """Whether a phone (another device) could open ``url``: not a loopback address or
    ``localhost``, not a single-label or mDNS ``.local`` name that only this network knows."""
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    if not host or _http.is_loopback_host(host) or host.endswith(".localhost"):
        return False
    if host.endswith(".local") or host == "local":
        return False
    import ipaddress

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host  # a single-label name resolves on this machine's network only
    return not (address.is_unspecified or address.is_link_local)


# Clipboard tools, in the order tried: (program, arguments). The text goes through stdin.
CLIPBOARD_TOOLS = (
    ("wl-copy", ()),  # Wayland
    ("xclip", ("-selection", "clipboard")),
    ("xsel", ("--clipboard", "--input")),
    ("pbcopy", ()),  # macOS
    ("clip.exe", ()),  # WSL
)


def copy_to_clipboard(text: str) -> str:
    """Copy ``text`` (the user code: not a secret, but still never in argv) with the first
    clipboard tool found on PATH, through its stdin. Returns the line to show: what was
    copied with which tool, or why nothing was."""
    import subprocess

    for program, args in CLIPBOARD_TOOLS:
        if program == "wl-copy" and not os.environ.get("WAYLAND_DISPLAY"):
            continue
        if program in ("xclip", "xsel") and not os.environ.get("DISPLAY"):
            continue
        path = shutil.which(program)
        if path is None:
            continue
        try:
            subprocess.run(  # noqa: S603 (a clipboard tool found on PATH, fixed arguments)
                [path, *args],
                input=text.encode(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=5,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return f"The code could not be copied: {program} failed."
        return f"The code is copied to the clipboard ({program})."
    return "The code was not copied: no clipboard tool found (see vault login --help)."


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size((80, 24))
    return size.columns, size.lines


def terminal_width() -> int:
    return terminal_size()[0]
