"""RFC 8628 §3.5 polling rules, with the clock as an input (in process, scripted transport)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import httpx
import pytest

from vault.errors import AuthError, NetworkError
from vault.login import oauth as _oauth
from vault.login.providers import PRESETS, Provider
from vault.secret import Secret

PROVIDER: Provider = PRESETS["oidc"].__class__(
    name="t", preset="oidc", issuer="http://127.0.0.1:1", client_id="cli"
)
ENDPOINTS = _oauth.Endpoints(
    issuer="http://127.0.0.1:1",
    device_authorization_endpoint="http://127.0.0.1:1/device",
    token_endpoint="http://127.0.0.1:1/token",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.polls: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def _run(
    answers: list[Callable[[], httpx.Response]], *, interval: int = 5, expires_in: int = 600
) -> tuple[Clock, _oauth.TokenSet | BaseException]:
    clock = Clock()
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        clock.polls.append(clock.now)
        return queue.pop(0)()

    device = _oauth.DeviceAuthorization(
        device_code=Secret("dc"),
        user_code="U",
        verification_uri="http://127.0.0.1:1/d",
        verification_uri_complete=None,
        expires_in=expires_in,
        interval=interval,
    )
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        try:
            result: _oauth.TokenSet | BaseException = _oauth.poll(
                http, PROVIDER, ENDPOINTS, device, ("openid",), clock=clock, sleep=clock.sleep
            )
        except (AuthError, NetworkError) as exc:
            result = exc
    return clock, result


def err(code: str, status: int = 400) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(status, json={"error": code})


def ok() -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(200, json={"access_token": "at", "token_type": "bearer"})


def down() -> Callable[[], httpx.Response]:
    def raise_() -> httpx.Response:
        raise httpx.ConnectError("refused")

    return raise_


def gaps(clock: Clock) -> list[float]:
    times = [1000.0, *clock.polls]
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


def test_waits_interval_before_every_poll() -> None:
    clock, result = _run([err("authorization_pending")] * 3 + [ok()], interval=5)
    assert isinstance(result, _oauth.TokenSet)
    assert gaps(clock) == [5, 5, 5, 5]


def test_slow_down_adds_five_seconds_for_this_and_every_later_poll() -> None:
    answers = [
        err("authorization_pending"),
        err("slow_down"),
        err("authorization_pending"),
        err("slow_down"),
        err("authorization_pending"),
        ok(),
    ]
    clock, result = _run(answers, interval=5)
    assert isinstance(result, _oauth.TokenSet)
    assert gaps(clock) == [5, 5, 10, 10, 15, 15]


def test_slow_down_with_server_interval_takes_the_larger() -> None:
    answers = [lambda: httpx.Response(200, json={"error": "slow_down", "interval": 30}), ok()]
    clock, _ = _run(answers, interval=5)
    assert gaps(clock) == [5, 30]


def test_default_interval_is_five_seconds() -> None:
    assert _oauth.DEFAULT_INTERVAL == 5


def test_connection_errors_back_off_exponentially_then_recover() -> None:
    answers = [down(), down(), down(), err("authorization_pending"), ok()]
    clock, result = _run(answers, interval=2)
    assert isinstance(result, _oauth.TokenSet)
    assert gaps(clock) == [2, 4, 8, 16, 2]


def test_5xx_backs_off_too() -> None:
    answers = [lambda: httpx.Response(503), lambda: httpx.Response(502), ok()]
    clock, _ = _run(answers, interval=1)
    assert gaps(clock) == [1, 2, 4]


def test_stops_locally_at_expires_in() -> None:
    clock, result = _run([err("authorization_pending")] * 100, interval=5, expires_in=23)
    assert isinstance(result, AuthError)
    assert result.code == "expired_token"
    assert len(clock.polls) == 4  # at 5, 10, 15, 20; the next (25) would be past 23
    assert clock.now <= 1023


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (err("access_denied"), AuthError, "access_denied"),
        (err("expired_token"), AuthError, "expired_token"),
        (err("something_new"), NetworkError, "unknown_error"),
        (lambda: httpx.Response(200, content=b"\x00garbage"), NetworkError, "invalid_response"),
        (lambda: httpx.Response(200, json=["list"]), NetworkError, "invalid_response"),
        (
            lambda: httpx.Response(200, json={"access_token": "x", "token_type": "DPoP"}),
            NetworkError,
            "unsupported_token_type",
        ),
    ],
)
def test_terminal_answers_stop_polling(
    answer: Callable[[], httpx.Response], kind: type[Exception], code: str
) -> None:
    clock, result = _run([answer, ok()], interval=1)
    assert isinstance(result, kind)
    assert getattr(result, "code", None) == code
    assert len(clock.polls) == 1


def test_form_encoded_pending_then_success() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answers = [
        lambda: httpx.Response(200, headers=form, content=b"error=authorization_pending"),
        lambda: httpx.Response(
            200, headers=form, content=b"access_token=gho_x&token_type=bearer&scope=repo"
        ),
    ]
    clock, result = _run(answers, interval=1)
    assert isinstance(result, _oauth.TokenSet)
    assert result.scopes == ("repo",)
    assert gaps(clock) == [1, 1]
