"""What `vault api` and `vault exec` print around the use: an error body ends its line, a
successful body is passed on byte for byte, and exec's --min-valid default is said where it
matters (its help, and the refusal it causes)."""

from __future__ import annotations

from tests.conftest import VaultCLI
from tests.harness.fake_oauth import Handler, fake_oauth


def _api_vault(vault: VaultCLI, issuer: str) -> None:
    vault.home.mkdir(mode=0o700, exist_ok=True)
    (vault.home / "config.yaml").write_text(
        f"providers:\n  api:\n    issuer: {issuer}\n    client_id: x\n"
    )
    r = vault.run("import", "t", "--provider", "api", input="tok-api-output-1")
    assert r.returncode == 0, r


def test_api_error_body_ends_with_a_newline_and_data_is_untouched(vault: VaultCLI) -> None:
    routes: dict[str, Handler] = {
        "/missing": lambda _q: (404, {"Content-Type": "application/json"}, b'{"message":"nope"}'),
        "/ended": lambda _q: (500, {"Content-Type": "text/plain"}, b"broken\n"),
        "/empty": lambda _q: (403, {"Content-Type": "text/plain"}, b""),
        "/data": lambda _q: (200, {"Content-Type": "application/octet-stream"}, b"\x00raw"),
    }
    with fake_oauth(routes) as srv:
        _api_vault(vault, srv.issuer)
        r = vault.run("api", "t", f"{srv.issuer}/missing")
        assert r.returncode == 7, r
        assert r.stdout == '{"message":"nope"}\n'  # the body, then a line end
        assert r.stderr.startswith("vault: HTTP 404 from "), r
        r = vault.run("api", "t", f"{srv.issuer}/ended")
        assert r.stdout == "broken\n"  # not a second one
        r = vault.run("api", "t", f"{srv.issuer}/empty")
        assert r.returncode == 7, r
        assert r.stdout == ""  # no body, no line
        r = vault.run("api", "t", f"{srv.issuer}/data")
        assert r.returncode == 0, r
        assert r.stdout == "\x00raw"  # data: byte for byte, nothing added


def test_exec_min_valid_default_in_help_and_in_its_refusal(vault: VaultCLI) -> None:
    help_text = " ".join(vault.run("exec", "--help").stdout.split())
    assert "--min-valid SECONDS" in help_text
    assert "(default 60)" in help_text
    r = vault.run(
        "import", "short", "--provider", "github", "--expires-in", "45", input="tok-short-0001"
    )
    assert r.returncode == 0, r
    r = vault.run("exec", "short", "--", "true")
    assert r.returncode == 4, r
    error = r.stderr.splitlines()[0]
    assert error.startswith("vault: error: the token 'short' expires at ")
    assert "s left, under the 60 s vault exec asks for (--min-valid, default 60)" in error
    assert "--min-valid 0" in r.stderr
    # asked for less: it runs
    assert vault.run("exec", "short", "--min-valid", "0", "--", "true").returncode == 0
    # an expired token: the refusal is the plain one (no time left to speak of)
    r = vault.run("exec", "nosuch", "--", "true")
    assert r.returncode == 4, r
    assert "--min-valid" not in r.stderr
