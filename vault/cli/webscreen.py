"""What a person sees of the choice between the two login grants, and of a web login
(authorization code with PKCE): the login screen (vault.cli.screen) plus these."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

from vault.cli.screen import LoginScreen
from vault.login import http as _http
from vault.login import oauth as _oauth
from vault.login import providers as _providers
from vault.util.text import clean, rfc3339

GRANT_TEXT = {
    "authorization_code": "through your browser (authorization code with PKCE)",
    "device_code": "with a code (device flow)",
}


def no_local_browser() -> str | None:
    """Why no browser can be opened on this machine for the person (an SSH session, no
    display on Linux), or None when one can. The same conditions as the screen's own check
    (LoginScreen._may_open_browser) about the machine, said in words."""
    if any(os.environ.get(v) for v in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")):
        return "this is an SSH session"
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "there is no display"
    return None


class WebLoginScreen(LoginScreen):
    """The login screen with the grant choice and the web login's screen."""

    _web = False
    _flow: str | None = None

    def browser_here(self) -> tuple[bool, str]:
        """Whether a browser can be opened for the person here, and why (for the one line
        that says which flow is used): the screen's own decision, explained."""
        if self._may_open_browser():
            return True, "a browser can be opened here"
        if self.no_browser:
            return False, "--no-browser was given"
        if self.json_mode:
            return False, "--json was given"
        return False, no_local_browser() or "no terminal to work with a browser from"

    def flow(self, grant: str, reason: str) -> None:
        """The line that says which grant is used, and why: written on stderr above the URL
        (or the code), once every check that needs no person has passed, so a login refused
        before it starts says only why it was refused."""
        self._flow = f"  Logging in {GRANT_TEXT.get(grant, grant)}: {clean(reason, 300)}.\n"

    def _say_flow(self) -> None:
        if self._flow is not None:
            self.err.write(self._flow)
            self._flow = None

    def show(
        self,
        provider: _providers.Provider,
        endpoints: _oauth.Endpoints,
        device: _oauth.DeviceAuthorization,
    ) -> None:
        self._say_flow()
        super().show(provider, endpoints, device)

    def show_authorization(
        self,
        provider: _providers.Provider,
        endpoints: _oauth.Endpoints,
        url: str,
        wait: float,
    ) -> None:
        """The authorization URL: the ``authorization_url`` event, the lines on stderr, and the
        browser opened (unless --no-browser, or there is none to open here)."""
        self.event({"event": "authorization_url", "url": url})
        self._say_flow()
        host = clean(_http.host_of(url), 200)
        secs = int(wait)
        opened = False
        if not self.no_browser and no_local_browser() is None:
            opened = _open(url)
        how = "Opened in your browser:" if opened else "Open this in a browser on this machine:"
        lines = [
            "",
            f"  To log in to {clean(provider.name)} ({clean(endpoints.issuer, 200)}):",
            f"  {how}",
            f"    {clean(url, 4096)}",
            f"  Check that {host} is your identity provider before you approve.",
            f"  Waiting up to {secs // 60} min {secs % 60} s "
            f"(until {rfc3339(time.time() + wait)}) for the browser to come back.",
        ]
        self.err.write("\n".join(lines) + "\n")
        self.err.flush()
        self._web = True

    def waiting_text(self, secs: int) -> str:
        if not self._web:
            return super().waiting_text(secs)
        return f"  Waiting for the browser... {secs // 60}:{secs % 60:02d} left"


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """stdout (the JSON events) pointed at /dev/null for what starts meanwhile: a browser
    inherits it and may write there."""
    try:
        saved = os.dup(1)
    except OSError:
        yield
        return
    try:
        sys.stdout.flush()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _open(url: str) -> bool:
    try:
        import webbrowser

        with _quiet_stdout():
            return bool(webbrowser.open(url, new=2))
    except Exception:  # opening a browser is a convenience; the URL is on the screen
        return False
