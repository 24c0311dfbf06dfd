"""The redacting log pipeline, tested through the real configuration.

structlog's ``capture_logs()`` replaces the processor chain, so a test written with it would never
run the redactor. Every test here configures the real pipeline with a ``StringIO`` stream and
checks the rendered lines.
"""

from __future__ import annotations

import io
import json
import logging
import string
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import structlog

from vault.secret import Secret
from vault.util import log as _log
from vault.util.redact import MASK, is_sensitive_key, redact, scrub_text

# --- canaries: one of every format -------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits


def _chars(seed: str, n: int, alphabet: str = _ALNUM) -> str:
    """A deterministic run of ``n`` characters, distinct per seed."""
    out = []
    value = sum(map(ord, seed)) * 7919
    for _ in range(n):
        value = (value * 1103515245 + 12345) % (2**31)
        out.append(alphabet[value % len(alphabet)])
    return "".join(out)


GHP = "ghp_" + _chars("ghp", 36)
GHO = "gho_" + _chars("gho", 36)
GHU = "ghu_" + _chars("ghu", 36)
GHS = "ghs_" + _chars("ghs", 36)
GHR = "ghr_" + _chars("ghr", 36)
GITHUB_PAT = "github_pat_" + _chars("pat", 82, _ALNUM + "_")
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJjYW5hcnkiLCJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0."
    + _chars("jwtsig", 43, _ALNUM + "-_")
)
GLPAT = "glpat-" + _chars("glpat", 20)
OPAQUE_ACCESS = "OpaqAccess" + _chars("access", 24)
OPAQUE_REFRESH = "OpaqRefresh" + _chars("refresh", 24)
OPAQUE_DEVICE = "OpaqDevice" + _chars("device", 24)
OPAQUE_CODE = "OpaqCode" + _chars("code", 16)
SECRET_VALUE = "OpaqSecretObj" + _chars("secret", 24)
COOKIE_VALUE = "OpaqCookie" + _chars("cookie", 24)

FORMATTED = {
    "ghp": GHP,
    "gho": GHO,
    "ghu": GHU,
    "ghs": GHS,
    "ghr": GHR,
    "github_pat": GITHUB_PAT,
    "jwt": JWT,
    "glpat": GLPAT,
}
OPAQUE = {
    "access_token": OPAQUE_ACCESS,
    "refresh_token": OPAQUE_REFRESH,
    "device_code": OPAQUE_DEVICE,
}
ALL_CANARIES = [
    *FORMATTED.values(),
    *OPAQUE.values(),
    OPAQUE_CODE,
    SECRET_VALUE,
    COOKIE_VALUE,
]
USER_CODE = "WDJB-MJHT"


def assert_no_canary(output: str) -> None:
    for canary in ALL_CANARIES:
        # The whole canary, and its tail (a partial leak is a leak).
        assert canary not in output, f"canary leaked: {canary[:8]}..."
        assert canary[-12:] not in output, f"part of a canary leaked: {canary[:8]}..."


class TrapSecret(Secret):
    """A Secret that records any call to ``reveal()``: the logger must never make one."""

    revealed = 0

    def reveal(self) -> str:
        TrapSecret.revealed += 1
        return super().reveal()


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    handler = _log._state["handler"]
    if handler is not None:
        root.removeHandler(handler)
    for h in saved_handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(saved_level)
    logging.captureWarnings(False)
    structlog.reset_defaults()
    _log._state.update(configured=False, handler=None)


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


def configured(out: io.StringIO, verbosity: int = 0, *, debug: bool = False) -> Any:
    _log.configure(verbosity, debug=debug, stream=out)
    return _log.get_logger("vault.test")


# --- structured events -------------------------------------------------------------------------


def test_top_level_kwargs_are_redacted(out: io.StringIO) -> None:
    log = configured(out)
    log.warning(
        "token.stored",
        name="gh",
        scopes=["repo", "read:org"],
        user_code=USER_CODE,
        status_code=200,
        access_token=OPAQUE_ACCESS,
        refresh_token=OPAQUE_REFRESH,
        device_code=OPAQUE_DEVICE,
        code=OPAQUE_CODE,
        Authorization=f"Bearer {OPAQUE_ACCESS}",
        x_refresh_token=OPAQUE_REFRESH,
        **{f"note_{k}": v for k, v in FORMATTED.items()},  # formats under harmless keys
    )
    text = out.getvalue()
    assert_no_canary(text)
    assert "token.stored" in text
    assert "name=gh" in text
    assert "read:org" in text
    assert f"user_code={USER_CODE}" in text
    assert "status_code=200" in text
    assert f"access_token={MASK}" in text
    assert f"x_refresh_token={MASK}" in text
    assert "note_ghp=" in text
    assert len(text.splitlines()) == 1


def test_nested_three_deep_in_dicts_lists_and_tuples(out: io.StringIO) -> None:
    log = configured(out)
    deep = {
        "level1": {
            "level2": [
                {"level3": {"refresh_token": OPAQUE_REFRESH, "keep": "visible-value"}},
                ("pair", {"device_code": OPAQUE_DEVICE, "user_code": USER_CODE}),
                [{"note": f"text with {GHP} and {JWT}"}, ["Authorization", f"Basic {GLPAT}"]],
            ],
            "tokens": [{"id_token": JWT, "ProxyAuthorization": GHS}],
        },
        "headers": [("Set-Cookie", f"sid={COOKIE_VALUE}"), ("accept", "application/json")],
        "formats": list(FORMATTED.values()),
        "opaque": {"access_token": OPAQUE_ACCESS, "nested": (GHR, GITHUB_PAT, GHU, GHO)},
    }
    log.warning("deep.event", data=deep)
    text = out.getvalue()
    assert_no_canary(text)
    assert "deep.event" in text
    assert "visible-value" in text
    assert USER_CODE in text
    assert "application/json" in text
    assert "level3" in text


def test_event_message_string_is_scrubbed(out: io.StringIO) -> None:
    log = configured(out)
    message = (
        f"login.done with {GHP} {GHO} {GHU} {GHS} {GHR} {GITHUB_PAT} {JWT} {GLPAT} "
        f"access_token={OPAQUE_ACCESS} refresh_token={OPAQUE_REFRESH} "
        f'{{"device_code": "{OPAQUE_DEVICE}"}} Authorization: Bearer {OPAQUE_CODE}'
    )
    log.warning(message)
    text = out.getvalue()
    assert_no_canary(text)
    assert "login.done with" in text


def test_secret_instances_are_masked_without_reveal(out: io.StringIO) -> None:
    log = configured(out)
    TrapSecret.revealed = 0
    secret = TrapSecret(SECRET_VALUE)
    log.warning(
        "secret.held",
        harmless_name=secret,
        inside={"a": [{"b": secret}], "t": (secret,)},
    )
    text = out.getvalue()
    assert_no_canary(text)
    assert f"harmless_name={MASK}" in text
    assert TrapSecret.revealed == 0


def _fail_with_secrets() -> None:
    local_only = "LocalVariableCanary" + _chars("local", 20)  # noqa: F841 (must not be printed)
    raise RuntimeError(
        f"refresh refused: refresh_token={OPAQUE_REFRESH} bearer={GHP} jwt {JWT} "
        f"Authorization: Bearer {OPAQUE_ACCESS} {GLPAT}"
    )


def test_exception_traceback_is_scrubbed_and_has_no_locals(out: io.StringIO) -> None:
    log = configured(out)
    try:
        _fail_with_secrets()
    except RuntimeError:
        log.exception("refresh.failed", name="gh", access_token=OPAQUE_ACCESS)
    text = out.getvalue()
    assert_no_canary(text)
    assert "LocalVariableCanary" not in text
    assert "Traceback (most recent call last)" in text
    assert "_fail_with_secrets" in text
    assert "RuntimeError: refresh refused" in text
    assert "refresh.failed" in text
    assert "name=gh" in text


def test_stdlib_exception_is_formatted_and_scrubbed(out: io.StringIO) -> None:
    configured(out)
    try:
        _fail_with_secrets()
    except RuntimeError:
        logging.getLogger("some.library").exception("library failed with %s", GHS)
    text = out.getvalue()
    assert_no_canary(text)
    assert "library failed with" in text
    assert "Traceback (most recent call last)" in text
    assert "[some.library]" in text


def test_stdlib_httpx_logger_url_query_is_redacted(out: io.StringIO) -> None:
    configured(out, verbosity=1)
    url = (
        f"https://idp.example.com/oauth/callback?code={OPAQUE_CODE}&state=keep-this-state"
        f"&access_token={OPAQUE_ACCESS}&refresh_token={OPAQUE_REFRESH}&x={GHO}"
    )
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"', "GET", url, "HTTP/1.1", 200, "OK"
    )
    text = out.getvalue()
    assert_no_canary(text)
    assert "HTTP Request: GET https://idp.example.com/oauth/callback?code=" in text
    assert "state=keep-this-state" in text
    assert "[httpx]" in text


def test_warnings_are_routed_through_the_pipeline(out: io.StringIO) -> None:
    configured(out)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated use of access_token={OPAQUE_ACCESS}", UserWarning, stacklevel=1)
    text = out.getvalue()
    assert_no_canary(text)
    assert "deprecated use of access_token" in text
    assert "py.warnings" in text


# --- levels, format, configuration -------------------------------------------------------------


def test_default_level_is_warning(out: io.StringIO) -> None:
    log = configured(out)
    log.debug("hidden.debug")
    log.info("hidden.info")
    logging.getLogger("httpx").info("HTTP Request: GET https://example.com/hidden")
    log.warning("shown.warning")
    text = out.getvalue()
    assert "hidden" not in text
    assert "shown.warning" in text


def test_verbose_shows_info_and_debug_flag_shows_debug(out: io.StringIO) -> None:
    log = configured(out, verbosity=1)
    log.debug("hidden.debug")
    log.info("shown.info")
    assert "hidden.debug" not in out.getvalue()
    assert "shown.info" in out.getvalue()

    debug_out = io.StringIO()
    log = configured(debug_out, debug=True)
    log.debug("shown.debug")
    assert "shown.debug" in debug_out.getvalue()


def test_reconfigure_replaces_the_handler(out: io.StringIO) -> None:
    configured(out)
    second = io.StringIO()
    log = configured(second)
    log.warning("only.once")
    assert out.getvalue() == ""
    assert second.getvalue().count("only.once") == 1
    ours = [h for h in logging.getLogger().handlers if h is _log._state["handler"]]
    assert len(logging.getLogger().handlers) == 1
    assert len(ours) == 1


def test_get_logger_before_configure_uses_the_redacting_pipeline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _log._state.update(configured=False)
    _log.get_logger("vault.early").warning("early.event", refresh_token=OPAQUE_REFRESH)
    captured = capsys.readouterr()
    assert "early.event" in captured.err
    assert captured.out == ""
    assert_no_canary(captured.err + captured.out)


def test_one_line_per_event_and_no_colours_off_terminal(out: io.StringIO) -> None:
    log = configured(out)
    log.warning("line.one\nforged.line level=error", value="a\x1b[31mred\nb", n=1)
    text = out.getvalue()
    assert len(text.splitlines()) == 1
    assert "\x1b" not in text


def test_broken_repr_does_not_break_logging(out: io.StringIO) -> None:
    class Broken:
        def __repr__(self) -> str:
            raise ValueError(OPAQUE_ACCESS)

    log = configured(out)
    log.warning("odd.value", value=Broken())
    text = out.getvalue()
    assert "odd.value" in text
    assert "repr failed" in text
    assert_no_canary(text)


def test_processor_chain_order() -> None:
    _log.configure(stream=io.StringIO())
    chain = structlog.get_config()["processors"]
    exc = chain.index(structlog.processors.format_exc_info)
    red = chain.index(_log.redact_event)
    assert exc < red < len(chain) - 1
    assert chain[-1] is structlog.stdlib.ProcessorFormatter.wrap_for_formatter

    handlers = logging.getLogger().handlers
    assert len(handlers) == 1
    formatter = handlers[0].formatter
    assert isinstance(formatter, structlog.stdlib.ProcessorFormatter)
    fchain = list(formatter.processors)
    exc = fchain.index(structlog.processors.format_exc_info)
    red = fchain.index(_log.redact_event)
    renderer = fchain[-1]
    assert exc < red < len(fchain) - 1
    assert isinstance(renderer, _log.ScrubbingRenderer)
    assert isinstance(renderer.inner, structlog.dev.ConsoleRenderer)
    assert renderer.inner.exception_formatter is structlog.dev.plain_traceback
    assert formatter.foreign_pre_chain  # stdlib records get level, logger name and time


def test_final_scrub_catches_what_the_processor_missed() -> None:
    renderer = _log.ScrubbingRenderer(structlog.dev.ConsoleRenderer(colors=False))
    line = renderer(
        None, "warning", {"event": f"raw {GHP}", "note": f"access_token={OPAQUE_ACCESS}"}
    )
    assert GHP not in line
    assert OPAQUE_ACCESS not in line
    assert "raw" in line


def test_importing_the_module_is_light() -> None:
    code = (
        "import sys, vault.util.log; "
        "print(sorted(m for m in ('structlog', 'httpx', 'logging') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- the redactor on its own -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "access_token",
        "Refresh_Token",
        "x_refresh_token",
        "refreshToken",
        "id_token",
        "Authorization",
        "proxy-authorization",
        "cookie",
        "Set-Cookie",
        "client_secret",
        "password",
        "passphrase",
        "device_code",
        "code",
        "assertion",
        "client_assertion",
        "api_key",
        "X-Api-Key",
        "private_key",
        "basic_auth",
        "code_verifier",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)
    assert scrub_text(f"{key}={OPAQUE_ACCESS}") == f"{key}={MASK}"
    assert redact({key: OPAQUE_ACCESS}) == {key: MASK}


@pytest.mark.parametrize(
    "key",
    [
        "user_code",
        "status_code",
        "exit_code",
        "token_type",
        "token_endpoint",
        "oauth",
        "name",
        "scopes",
        "passphrase_file",
    ],
)
def test_non_sensitive_keys(key: str) -> None:
    assert not is_sensitive_key(key)
    assert redact({key: "visible"}) == {key: "visible"}


def test_scrub_text_formats_and_pairs() -> None:
    for canary in FORMATTED.values():
        assert scrub_text(f"x {canary} y") == f"x {MASK} y"
    assert scrub_text(f"https://bob:{OPAQUE_ACCESS}@host/") == f"https://bob:{MASK}@host/"
    assert scrub_text(f"(b'Set-Cookie', b'sid={COOKIE_VALUE}')") == f"(b'Set-Cookie', b'{MASK}')"
    assert scrub_text(f'password="two words {OPAQUE_ACCESS}" n=1') == f'password="{MASK}" n=1'
    assert scrub_text("token refreshed for user") == "token refreshed for user"
    assert scrub_text(scrub_text(f"access_token={OPAQUE_ACCESS}")) == f"access_token={MASK}"


# --- HTTP hooks against a real local server ----------------------------------------------------

BIG_BODY = ("x" * 5000 + f" access_token={OPAQUE_ACCESS}").encode()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        body = json.dumps(
            {
                "access_token": OPAQUE_ACCESS,
                "refresh_token": OPAQUE_REFRESH,
                "id_token": JWT,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "openid visible-scope",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", f"sid={COOKIE_VALUE}; Path=/; HttpOnly")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BIG_BODY)))
        self.end_headers()
        self.wfile.write(BIG_BODY)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _client() -> httpx.Client:
    return httpx.Client(event_hooks=_log.http_event_hooks(), trust_env=False, timeout=10)


def test_http_hooks_log_redacted_request_and_response(out: io.StringIO, server: str) -> None:
    configured(out, debug=True)
    with _client() as client:
        response = client.post(
            f"{server}/oauth/token?code={OPAQUE_CODE}&state=visible-state",
            headers={"Authorization": f"Bearer {GHO}", "X-Trace": "visible-header"},
            data={
                "grant_type": "refresh_token",
                "refresh_token": OPAQUE_REFRESH,
                "client_id": "vault-cli",
                "device_code": OPAQUE_DEVICE,
            },
        )
    # The hooks did not disturb the caller.
    assert response.status_code == 200
    assert response.json()["access_token"] == OPAQUE_ACCESS
    text = out.getvalue()
    assert_no_canary(text)
    for visible in (
        "http.request",
        "http.response",
        "http.response.body",
        "/oauth/token",
        "state=visible-state",
        "visible-header",
        "grant_type",
        "vault-cli",
        "visible-scope",
        "token_type",
        "status=200",
        "[httpx]",  # httpx's own INFO line, redacted too
    ):
        assert visible in text, visible


def test_http_hooks_keep_streaming_callers_working(out: io.StringIO, server: str) -> None:
    configured(out, debug=True)
    with _client() as client, client.stream("GET", f"{server}/big") as response:
        raw = b"".join(response.iter_raw())
    assert raw == BIG_BODY
    text = out.getvalue()
    assert_no_canary(text)
    assert "http.response.body" in text
    assert "size=5" in text  # 5000-odd bytes read by the caller
    assert "truncated=True" in text


def test_http_hooks_do_nothing_without_debug(out: io.StringIO, server: str) -> None:
    configured(out, verbosity=1)
    with _client() as client:
        response = client.post(f"{server}/oauth/token", data={"refresh_token": OPAQUE_REFRESH})
        stream_type = type(response.stream).__name__
    assert response.json()["access_token"] == OPAQUE_ACCESS
    text = out.getvalue()
    assert "http.request" not in text
    assert "HTTP Request: POST" in text
    assert stream_type != "_Tee"
    assert_no_canary(text)


def test_http_hooks_with_an_in_memory_response(out: io.StringIO) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": OPAQUE_ACCESS, "user_code": USER_CODE})

    configured(out, debug=True)
    hooks: dict[str, list[Callable[..., Any]]] = _log.http_event_hooks()
    with httpx.Client(transport=httpx.MockTransport(answer), event_hooks=hooks) as client:
        response = client.get("https://idp.example.com/device")
    assert response.json()["access_token"] == OPAQUE_ACCESS
    text = out.getvalue()
    assert_no_canary(text)
    assert USER_CODE in text
