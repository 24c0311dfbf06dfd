"""The lifecycle of a grant, through the real `vault` executable: a second login over a stored
name (refused before any request without --force; with it, the new token stored first and the
grant it replaced revoked, both tokens of it), `vault revoke` ending the refresh token AND the
access token, a refresh refused with an HTTP 400 that carries no OAuth error (the refresh token
is dead: exit 4, needs_login, audited) told apart from 5xx and network failures (exit 7, record
untouched), and the scope an ad-hoc login asks for.

The real provider (oidc-provider) proves tokens dead or alive by introspection (RFC 7662, its
`introspector` client); tests/harness/fake_oauth.py scripts what it cannot produce: empty and
HTML 400s, revocation endpoints that fail for one token or are missing."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Result, VaultCLI, approved_login, configure_provider, read_record
from tests.harness.fake_oauth import FakeOAuth, Reply, fake_oauth, json_reply
from tests.harness.fault_hook import hook_env, read_trace
from tests.harness.provider import IdP, start_idp


@pytest.fixture
def idp() -> Iterator[IdP]:
    with start_idp() as server:
        yield server


def _one_error(r: Result, code: int, *needles: str) -> str:
    assert r.returncode == code, r
    assert "Traceback" not in r.stderr, r
    errors = [line for line in r.stderr.splitlines() if line.startswith("vault: error: ")]
    assert len(errors) == 1, r
    for needle in needles:
        assert needle in errors[0], (needle, r)
    return errors[0]


def _audit(vault: VaultCLI, event: str) -> list[dict[str, object]]:
    r = vault.run("audit", "show", "--event", event, "--json")
    assert r.returncode == 0, r
    return [json.loads(line) for line in r.stdout.splitlines()]


def _tokens(vault: VaultCLI, name: str = "local") -> tuple[str, str, str]:
    """(access token, refresh token, audit fingerprint) of the stored record."""
    from tests.conftest import read_records

    record = read_records(vault)[name]
    return str(record["access_token"]), str(record["refresh_token"]), str(record["fingerprint"])


def _active(idp: IdP, token: str) -> bool:
    return idp.introspect(token).get("active") is True


# --- a second login over a stored name, against the real provider ---------------------------


def _idp_login(vault: VaultCLI, *args: str) -> list[dict[str, object]]:
    code, events, err = approved_login(vault, "local", *args)
    assert code == 0, err
    return events


def test_force_relogin_revokes_both_tokens_of_the_old_grant(vault: VaultCLI, idp: IdP) -> None:
    configure_provider(vault, idp.issuer)
    _idp_login(vault)
    old_access, old_refresh, old_fp = _tokens(vault)
    assert _active(idp, old_access)
    assert _active(idp, old_refresh)

    events = _idp_login(vault, "--force")
    assert [e["event"] for e in events] == ["success", "replaced"]
    replaced = events[-1]
    assert (replaced["name"], replaced["revoked"], replaced["revoke_by_hand"]) == (
        "local",
        True,
        None,
    )
    assert "refresh token and access token" in str(replaced["detail"])
    new_access, new_refresh, new_fp = _tokens(vault)
    assert new_access != old_access
    assert new_refresh != old_refresh
    assert not _active(idp, old_refresh)
    assert not _active(idp, old_access)
    assert _active(idp, new_access)
    assert _active(idp, new_refresh)
    # Two RFC 7009 requests, each with its hint, for the old tokens only.
    import hashlib

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    revocations = idp.grants()["revocations"]
    assert [(r["token_sha256"], r["token_type_hint"], r["status"]) for r in revocations] == [
        (sha(old_refresh), "refresh_token", 200),
        (sha(old_access), "access_token", 200),
    ]
    revoked = _audit(vault, "revoked")
    assert len(revoked) == 1
    assert revoked[0]["fingerprint"] == old_fp
    assert revoked[0]["outcome"] == "success"
    assert "replaced by a new login" in str(revoked[0]["reason"])
    assert "refresh token and access token" in str(revoked[0]["reason"])
    issued = _audit(vault, "issued")
    assert [i["fingerprint"] for i in issued] == [old_fp, new_fp]
    assert "replaces the token stored under the name" in str(issued[1]["reason"])
    assert vault.run("token", "local").stdout == new_access + "\n"
    assert vault.run("audit", "verify").returncode == 0


def test_revoke_kills_the_refresh_and_the_access_token(vault: VaultCLI, idp: IdP) -> None:
    configure_provider(vault, idp.issuer)
    _idp_login(vault)
    access, refresh, fp = _tokens(vault)
    r = vault.run("revoke", "local", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["revoked"] is True
    assert doc["deleted"] is True
    assert doc["tokens_revoked"] == ["refresh_token", "access_token"]
    assert not _active(idp, refresh)
    assert not _active(idp, access)
    hints = [r["token_type_hint"] for r in idp.grants()["revocations"]]
    assert hints == ["refresh_token", "access_token"]
    revoked = _audit(vault, "revoked")
    assert [(e["fingerprint"], e["outcome"]) for e in revoked] == [(fp, "success")]
    assert "refresh token and access token" in str(revoked[0]["reason"])


# --- the same against a scripted provider: what oidc-provider does not do ------------------


def _counting_tokens(
    refresh: Callable[[], Reply] | None = None,
) -> Callable[[dict[str, str]], Reply]:
    """A token endpoint handing out at-NNNN / rt-NNNN, and answering refreshes with
    ``refresh()`` (a fresh pair if None)."""
    counter = itertools.count(1)

    def reply(form: dict[str, str]) -> Reply:
        if form.get("grant_type") == "refresh_token" and refresh is not None:
            return refresh()
        n = next(counter)
        return json_reply(
            {
                "access_token": f"at-{n:04d}-" + "y" * 24,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": f"rt-{n:04d}-" + "z" * 24,
                "scope": "openid",
            }
        )

    return reply


def _configure_fake(vault: VaultCLI, fake: FakeOAuth, extra: str = "") -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  local:\n    issuer: {fake.issuer}\n    client_id: cli\n"
        f"    scopes: [openid]\n{extra}"
    )


def _fake_login(vault: VaultCLI, *args: str, env: dict[str, str] | None = None) -> Result:
    return vault.run("login", "local", "--no-browser", *args, timeout=90, env=env)


def _revocations(fake: FakeOAuth) -> list[tuple[str, str]]:
    return [(f["token"], f["token_type_hint"]) for path, f in fake.requests if path == "/revoke"]


def test_a_second_login_is_refused_before_any_request(vault: VaultCLI) -> None:
    with fake_oauth({"/token": _counting_tokens()}) as fake:
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        before = read_record(vault, "local")
        sent = len(fake.requests)
        for args in ((), ("--json",), ("--name", "local"), ("--scope", "openid")):
            r = _fake_login(vault, *args)
            line = _one_error(r, 2, "'local' is already stored", "(local, issued ")
            assert "nothing was sent to the provider" in line
            assert "--force" in r.stderr
            assert len(fake.requests) == sent, fake.requests[sent:]
        # The ad-hoc provider of the same name is refused alike.
        r = vault.run(
            "login", "--issuer", fake.issuer, "--client-id", "cli", "--name", "local",
            "--no-browser",
        )  # fmt: skip
        _one_error(r, 2, "'local' is already stored")
        assert len(fake.requests) == sent
        assert read_record(vault, "local") == before
        assert _audit(vault, "revoked") == []


@pytest.mark.parametrize(
    ("revoke", "by_hand"),
    [
        (lambda form: (503, {}, b"busy"), None),
        (lambda form: json_reply({"error": "invalid_client"}, 401), None),
        (None, "revoke it by hand at"),  # the provider publishes no revocation endpoint
    ],
    ids=["503", "invalid_client", "no-endpoint"],
)
def test_a_failed_revocation_on_force_keeps_the_new_token_and_warns(
    vault: VaultCLI, revoke: Callable[[dict[str, str]], Reply] | None, by_hand: str | None
) -> None:
    with fake_oauth({"/token": _counting_tokens()}) as fake:
        if revoke is None:
            metadata = fake.metadata()
            del metadata["revocation_endpoint"]
            fake.routes["/.well-known/openid-configuration"] = lambda _: json_reply(metadata)
        else:
            fake.routes["/revoke"] = revoke
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        old_access, _, old_fp = _tokens(vault)
        r = _fake_login(vault, "--force")
        assert r.returncode == 0, r
        assert "Traceback" not in r.stderr
        warnings = [line for line in r.stderr.splitlines() if line.startswith("vault: warning:")]
        assert len(warnings) == 1, r
        assert "still alive at the provider" in warnings[0]
        if by_hand:
            assert f"{by_hand} {fake.issuer}" in warnings[0], warnings
        new_access, _, _ = _tokens(vault)
        assert new_access != old_access
        assert vault.run("token", "local").stdout == new_access + "\n"
        revoked = _audit(vault, "revoked")
        assert len(revoked) == 1
        assert revoked[0]["fingerprint"] == old_fp
        assert revoked[0]["outcome"] == ("not_revoked" if by_hand else "failure")
        assert "replaced by a new login; not revoked" in str(revoked[0]["reason"])


def test_force_relogin_spares_a_token_the_provider_hands_out_again(vault: VaultCLI) -> None:
    """A provider that answers the new login with the same token (GitHub's OAuth Apps do):
    revoking "the old one" would kill the new one; it is left alone."""
    with fake_oauth() as fake:
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        r = _fake_login(vault, "--force")
        assert r.returncode == 0, r
        assert _revocations(fake) == []
        assert "nothing to revoke" in r.stderr
        assert _audit(vault, "revoked") == []
        assert vault.run("token", "local").returncode == 0


def test_relogin_over_a_token_that_needs_a_login_needs_no_force(vault: VaultCLI) -> None:
    dead: list[Reply] = [(400, {}, b"")]
    with fake_oauth({"/token": _counting_tokens(lambda: dead[0])}) as fake:
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        old_access, _, _ = _tokens(vault)
        assert vault.run("refresh", "local").returncode == 4
        r = _fake_login(vault)
        assert r.returncode == 0, r
        # Its access token may still be live: it is revoked; its refresh token went with the mark.
        assert _revocations(fake) == [(old_access, "access_token")]
        assert json.loads(vault.run("status", "local", "--json").stdout)["state"] == "valid"


def test_a_crash_after_storing_before_revoking_keeps_the_new_token(
    vault: VaultCLI, tmp_path: Path
) -> None:
    with fake_oauth({"/token": _counting_tokens()}) as fake:
        log = tmp_path / "calls.jsonl"
        seen: list[int] = []

        def revoke(form: dict[str, str]) -> Reply:
            calls = read_trace(log)
            seen.append(len(calls))
            return 200, {}, b""

        fake.routes["/revoke"] = revoke
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        # Count mode: the calls that change files before the first revocation request.
        r = _fake_login(vault, "--force", env=hook_env(vault.home, log=str(log)))
        assert r.returncode == 0, r
        calls = read_trace(log)
        stored_before = seen[0]
        assert stored_before > 0
        assert len(_revocations(fake)) == 2
        # Killed right after the last of them: the new token is stored, nothing was revoked.
        before, _, _ = _tokens(vault)
        requests = len(fake.requests)
        # (A keyring call's "after" fires only at the process's next counted call or socket,
        # here after the request: the last call on a file is the one to crash after.)
        last = [c for c in calls[:stored_before] if not c.op.startswith("keyring")][-1]
        crash = last.at("after")
        r = _fake_login(vault, "--force", env=hook_env(vault.home, crash_at=crash))
        assert r.returncode < 0, r  # SIGKILL
        new_access, _, new_fp = _tokens(vault)
        assert new_access != before
        assert [path for path, _ in fake.requests[requests:]].count("/revoke") == 0
        assert vault.run("audit", "verify").returncode == 0
        issued = _audit(vault, "issued")
        assert issued[-1]["fingerprint"] == new_fp
        assert "its grant is revoked next" in str(issued[-1]["reason"])
        assert len(_audit(vault, "revoked")) == 1  # the count-mode run's, not this one's
        assert vault.run("token", "local").stdout == new_access + "\n"


# --- revoke: both tokens, and an honest account of which -----------------------------------


def test_revoke_sends_both_tokens_with_their_hints(vault: VaultCLI) -> None:
    killed: set[str] = set()

    def revoke_refresh_only(form: dict[str, str]) -> Reply:
        if form["token_type_hint"] == "refresh_token":
            killed.add(form["token"])
        return 200, {}, b""

    with fake_oauth({"/token": _counting_tokens(), "/revoke": revoke_refresh_only}) as fake:
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        access, refresh, _ = _tokens(vault)
        r = vault.run("revoke", "local")
        assert r.returncode == 0, r
        assert _revocations(fake) == [(refresh, "refresh_token"), (access, "access_token")]
        assert "refresh token and access token" in r.stderr


def test_a_revocation_failing_for_the_access_token_says_so(vault: VaultCLI) -> None:
    def revoke(form: dict[str, str]) -> Reply:
        if form["token_type_hint"] == "access_token":
            return 503, {}, b"busy"
        return 200, {}, b""

    with fake_oauth({"/token": _counting_tokens(), "/revoke": revoke}) as fake:
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        before = read_record(vault, "local")
        r = vault.run("revoke", "local")
        line = _one_error(r, 7, "the refresh token revoked", "the access token NOT revoked")
        assert "the token was kept" in line
        assert read_record(vault, "local") == before
        failed = _audit(vault, "revoked")
        assert [e["outcome"] for e in failed] == ["failure"]
        assert "access token NOT revoked" in str(failed[0]["reason"])
        # --force: deleted locally, and reported as not (wholly) revoked.
        r = vault.run("revoke", "local", "--force", "--json")
        assert r.returncode == 0, r
        doc = json.loads(r.stdout)
        assert (doc["deleted"], doc["revoked"]) == (True, False)
        assert "access token NOT revoked" in doc["detail"]
        deleted = _audit(vault, "deleted")
        assert [e["outcome"] for e in deleted] == ["not_revoked"]
        assert read_record(vault, "local") is None
        assert len(_revocations(fake)) == 4


def test_an_expired_access_token_is_not_sent(vault: VaultCLI) -> None:
    """Only what may still be live is revoked: an access token past its expiry is dead."""
    with fake_oauth() as fake:
        fake.routes["/token"] = lambda _: json_reply(fake.token_response(expires_in=1))
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        _, refresh, _ = _tokens(vault)
        threading.Event().wait(2.5)  # the access token expires (not a timing assertion)
        r = vault.run("revoke", "local")
        assert r.returncode == 0, r
        assert _revocations(fake) == [(refresh, "refresh_token")]


# --- a refresh refused with a 400 that names no OAuth error ---------------------------------

NOT_AN_OAUTH_ERROR = st.one_of(
    st.sampled_from(
        [
            ("", b""),
            ("text/plain", b""),
            ("application/json", b""),
            ("text/html", b"<html><body><h1>400 Bad Request</h1></body></html>"),
            ("application/json", b"[]"),
            ("application/json", b'"invalid_grant"'),
            ("application/json", b"null"),
            ("application/json", b"{}"),
            ("application/json", b'{"message": "bad"}'),
            ("application/json", b"{"),
            ("application/x-www-form-urlencoded", b"status=bad"),
            ("text/plain", b"Bad Request"),
        ]
    ),
    st.tuples(
        st.sampled_from(["", "text/html", "application/json", "text/plain"]),
        st.binary(max_size=200).filter(lambda b: b"error" not in b),
    ),
)


@pytest.fixture
def refusing() -> Iterator[tuple[FakeOAuth, list[Reply]]]:
    """A scripted provider whose refreshes are answered with the reply in the list."""
    replies: list[Reply] = [(400, {}, b"")]
    with fake_oauth({"/token": _counting_tokens(lambda: replies[0])}) as fake:
        yield fake, replies


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(NOT_AN_OAUTH_ERROR)
def test_a_400_without_an_oauth_error_needs_a_new_login(
    vault: VaultCLI, refusing: tuple[FakeOAuth, list[Reply]], answer: tuple[str, bytes]
) -> None:
    fake, replies = refusing
    content_type, body = answer
    replies[0] = (400, {"Content-Type": content_type} if content_type else {}, body)
    _configure_fake(vault, fake)
    r = _fake_login(vault, "--force")  # a new token for each example
    assert r.returncode == 0, r
    failures = len([e for e in _audit(vault, "refreshed") if e["outcome"] == "failure"])
    r = vault.run("refresh", "local")
    _one_error(r, 4, "refused its refresh token (HTTP 400", "vault login local --name local")
    assert "log in again: vault login local --name local" in r.stderr
    status = json.loads(vault.run("status", "local", "--json").stdout)
    assert status["state"] == "needs_login", status
    assert status["needs_login"]["cause"] == "invalid_grant"
    assert "HTTP 400" in status["needs_login"]["reason"]
    assert status["refreshable"] is False
    after = [e for e in _audit(vault, "refreshed") if e["outcome"] == "failure"]
    assert len(after) == failures + 1
    assert "HTTP 400" in str(after[-1]["reason"])
    # Never sent again: `vault token` refuses it without asking the provider.
    sent = len(fake.requests)
    assert vault.run("token", "local", "--min-valid", "999999").returncode == 4
    assert len(fake.requests) == sent


@pytest.mark.parametrize(
    "answer",
    [
        (500, {}, b""),
        (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"),
        (503, {"Content-Type": "application/json"}, b'{"error": "invalid_grant"}'),
        None,  # nobody listens any more
    ],
    ids=["500-empty", "502-html", "503-json", "unreachable"],
)
def test_5xx_and_network_failures_leave_the_record_untouched(
    vault: VaultCLI, answer: Reply | None
) -> None:
    with fake_oauth({"/token": _counting_tokens(lambda: answer or (200, {}, b""))}) as fake:
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        before = read_record(vault, "local")
        if answer is not None:
            _one_error(vault.run("refresh", "local"), 7)
    if answer is None:  # the provider is gone: nothing listens on its port
        _one_error(vault.run("refresh", "local"), 7)
    assert read_record(vault, "local") == before
    assert json.loads(vault.run("status", "local", "--json").stdout)["state"] == "valid"
    failed = [e for e in _audit(vault, "refreshed") if e["outcome"] == "failure"]
    assert len(failed) <= 1  # audited where the vault could say why; never marked


def test_a_400_with_an_oauth_error_is_judged_by_the_error(vault: VaultCLI) -> None:
    """Consistent with the errors named: invalid_grant marks it, invalid_client does not
    (exit 4, a problem of the client, not of the token), an unknown error is exit 7."""
    answers = [
        (json_reply({"error": "invalid_client"}, 400), 4, "valid"),
        (json_reply({"error": "temporarily_unavailable"}, 400), 7, "valid"),
        ((400, {"Content-Type": "application/x-www-form-urlencoded"}, b"error=invalid_grant"), 4,
         "needs_login"),
    ]  # fmt: skip
    current: list[Reply] = [answers[0][0]]
    with fake_oauth({"/token": _counting_tokens(lambda: current[0])}) as fake:
        _configure_fake(vault, fake)
        assert _fake_login(vault).returncode == 0
        for reply, code, state in answers:
            current[0] = reply
            before = read_record(vault, "local")
            _one_error(vault.run("refresh", "local"), code)
            status = json.loads(vault.run("status", "local", "--json").stdout)
            assert status["state"] == state, (reply, status)
            if state == "valid":
                assert read_record(vault, "local") == before


# --- the scope of an ad-hoc login ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "scope"),
    [
        ((), "openid"),
        (("--scope", "profile"), "profile"),
        (("--scope", "a", "--scope", "b"), "a b"),
    ],
)
def test_an_ad_hoc_login_asks_for_openid_without_scope(
    vault: VaultCLI, args: tuple[str, ...], scope: str
) -> None:
    with fake_oauth() as fake:
        vault.home.mkdir(mode=0o700, exist_ok=True)
        r = vault.run(
            "login", "--issuer", fake.issuer, "--client-id", "cli", "--no-browser", *args,
            timeout=90,
        )  # fmt: skip
        assert r.returncode == 0, r
        asked = [f.get("scope") for path, f in fake.requests if path == "/device_authorization"]
        assert asked == [scope]


def test_a_token_stored_while_the_person_logs_in_is_not_replaced(vault: VaultCLI) -> None:
    """The store step checks again under the vault's lock: a token imported under the name
    while the login waited is kept, and the login's new grant revoked, nothing stored."""
    arrived, go = threading.Event(), threading.Event()
    tokens = _counting_tokens()

    def token(form: dict[str, str]) -> Reply:
        arrived.set()
        assert go.wait(60)
        return tokens(form)

    with fake_oauth({"/token": token}) as fake:
        _configure_fake(vault, fake)
        proc = vault.popen("login", "local", "--no-browser")
        try:
            assert arrived.wait(60)
            imported = "imported-" + "q" * 24
            r = vault.run("import", "local", "--provider", "local", input=imported)
            assert r.returncode == 0, r
        finally:
            go.set()
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 2, err
        text = err.decode()
        assert "it was stored while this login waited, so the new token was revoked" in text
        assert vault.run("token", "local").stdout == imported + "\n"
        assert sorted(hint for _, hint in _revocations(fake)) == ["access_token", "refresh_token"]
