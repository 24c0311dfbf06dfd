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
    """What the person sees, on stderr; and the JSON events on stdout with --json."""

    def __init__(self, *, json_mode: bool, no_browser: bool, err: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.no_browser = no_browser
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
        host = clean(_http.host_of(device.verification_uri), 200)
        url = clean(device.verification_uri, 2048)
        lines = [
            "",
            f"  To log in to {clean(provider.name)} ({clean(endpoints.issuer, 200)}):",
            f"  1. Open      {url}",
            f"  2. Enter     {style(device.user_code, 'code', self.err)}",
            f"  You are about to trust {host}: check that this is your identity provider.",
            f"  The code expires in {device.expires_in // 60} min {device.expires_in % 60} s "
            f"(at {rfc3339(time.time() + device.expires_in)}).",
        ]
        self.err.write("\n".join(lines) + "\n")
        if device.verification_uri_complete and self.tty and _can_draw_qr():
            self._qr(device.verification_uri_complete)
        if self._may_open_browser():
            self._offer_browser(device.verification_uri_complete or device.verification_uri)
        self.err.flush()

    def _qr(self, data: str) -> None:
        try:
            import segno

            self.err.write(f"  Or scan this with a phone ({clean(data, 200)}):\n")
            segno.make(data, error="l").terminal(out=self.err, compact=True, border=2)
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
        if not self.tty or self.json_mode:
            return
        secs = max(0, int(remaining))
        if secs == self._last_tick:
            return
        self._last_tick = secs
        self._ticking = True
        self.err.write(
            f"\r  Waiting for approval... the code expires in {secs // 60}:{secs % 60:02d} "
        )
        self.err.flush()

    def end_ticks(self) -> None:
        if self._ticking:
            self.err.write("\r" + " " * 64 + "\r")
            self._ticking = False


def terminal_width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def _can_draw_qr() -> bool:
    return os.environ.get("TERM", "") not in ("", "dumb") and terminal_width() >= 60
