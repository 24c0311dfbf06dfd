"""Every store command through the real `vault` executable, keys in a real Secret Service."""

from __future__ import annotations

import json
import os
import stat

from tests.conftest import GH_CANARY, VaultCLI


def test_import_token_round_trip(vault: VaultCLI) -> None:
    r = vault.run("import", "gh", "--provider", "github", "--scope", "repo", input=GH_CANARY + "\n")
    assert r.returncode == 0, r
    assert r.stdout == ""
    assert GH_CANARY not in r.stderr
    r = vault.run("token", "gh")
    assert r.returncode == 0, r
    assert r.stdout == GH_CANARY + "\n"
    assert r.stderr == ""
    # Files are private and the token is not in them in clear.
    for name in ("vault.enc", "vault.lock"):
        mode = stat.S_IMODE(os.stat(vault.home / name).st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE(os.stat(vault.home).st_mode) == 0o700
    assert GH_CANARY.encode() not in vault.vault_file.read_bytes()


def test_reading_does_not_rewrite(vault: VaultCLI) -> None:
    vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaaaaaa")
    before = vault.vault_file.read_bytes()
    st = os.stat(vault.vault_file)
    for args in (["token", "a"], ["list"], ["status"], ["status", "a"], ["doctor"]):
        assert vault.run(*args).returncode == 0
    assert vault.vault_file.read_bytes() == before
    assert os.stat(vault.vault_file).st_mtime_ns == st.st_mtime_ns


def test_list_and_status_json_shapes(vault: VaultCLI) -> None:
    r = vault.run("list", "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {"version": 1, "tokens": []}
    vault.run(
        "import",
        "gl",
        "--provider",
        "gitlab",
        "--scope",
        "read_user",
        "--scope",
        "api",
        "--expires-in",
        "3600",
        input="glpat-canarycanarycanary12",
    )
    doc = json.loads(vault.run("list", "--json").stdout)
    (tok,) = doc["tokens"]
    assert tok["name"] == "gl"
    assert tok["provider"] == "gitlab"
    assert tok["issuer"] == "https://gitlab.com"
    assert tok["scopes"] == ["read_user", "api"]
    assert tok["state"] == "valid"
    assert tok["source"] == "import"
    assert 3500 < tok["expires_in"] <= 3600
    assert tok["refreshable"] is False
    assert tok["account"] is None  # an import: vault does not know whose it is
    assert set(tok) == {
        "name",
        "provider",
        "issuer",
        "client_id",
        "token_type",
        "source",
        "scopes",
        "issued_at",
        "expires_at",
        "last_refresh",
        "age_seconds",
        "expires_in",
        "state",
        "refreshable",
        "revoke_pending",
        "policy_denial",
        "needs_login",
        "rejected_at",
        "account",
    }
    assert tok["needs_login"] is None
    assert tok["rejected_at"] is None
    one = json.loads(vault.run("status", "gl", "--json").stdout)
    assert one == {**tok, "age_seconds": one["age_seconds"], "expires_in": one["expires_in"]}
    st = json.loads(vault.run("status", "--json").stdout)
    assert st["vault"]["backend"] == "keyring"
    assert st["vault"]["tokens"] == 1
    assert st["vault"]["generation"] == 1
    assert "glpat-canary" not in json.dumps(st)
    text = vault.run("list")
    assert text.returncode == 0
    # An imported token has no account: the ACCOUNT column is left out where no token has one.
    assert text.stdout.splitlines()[0].split() == [
        "NAME",
        "PROVIDER",
        "SCOPES",
        "ISSUED",
        "EXPIRES",
        "STATE",
    ]
    assert "glpat-canary" not in text.stdout


def test_unknown_name_is_exit_4(vault: VaultCLI) -> None:
    for args in (["token", "nope"], ["status", "nope"], ["logout", "nope"], ["revoke", "nope"]):
        r = vault.run(*args)
        assert r.returncode == 4, r
        assert "no token named 'nope'" in r.stderr
        assert len(r.stderr.strip().splitlines()) <= 2  # a message and a hint, no traceback
        assert "Traceback" not in r.stderr


def test_expired_without_refresh_is_exit_4(vault: VaultCLI) -> None:
    vault.run(
        "import", "short", "--provider", "github", "--expires-in", "2", input="tok-short-1234"
    )
    r = vault.run("token", "short", "--min-valid", "60")
    assert r.returncode == 4, r
    assert "no refresh token" in r.stderr
    assert r.stdout == ""


def test_import_refuses_duplicates_and_bad_input(vault: VaultCLI) -> None:
    assert vault.run("import", "x", "--provider", "github", input="tok-1234567").returncode == 0
    r = vault.run("import", "x", "--provider", "github", input="tok-other")
    assert r.returncode == 2
    assert "--force" in r.stderr
    assert (
        vault.run("import", "x", "--provider", "github", "--force", input="tok-new").returncode == 0
    )
    assert vault.run("token", "x").stdout == "tok-new\n"
    cases = {
        "": "no token",
        "two words": "one word",
        "tok\x1b[31m": "control",
        "x" * 20000: "over",
    }
    for data, expected in cases.items():
        r = vault.run("import", "y", "--provider", "github", input=data)
        assert r.returncode == 2, (data[:10], r)
        assert expected in r.stderr
    for args, expected in (
        (["import", "bad name", "--provider", "github"], "invalid token name"),
        (["import", "y", "--provider", "nosuch"], "unknown provider"),
        (["import", "y"], "--provider"),
        (["token", "x", "y"], "unexpected argument"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["token", "x", "--min-valid", "-1"], "--min-valid"),
        (["import", "y", "--provider", "github", "--expires-at", "yesterday"], "RFC 3339"),
    ):
        r = vault.run(*args, input="tok-abcdefgh")
        assert r.returncode == 2, (args, r)
        assert expected in r.stderr, (args, r)
        assert "Traceback" not in r.stderr
    listed = json.loads(vault.run("list", "--json").stdout)
    assert [t["name"] for t in listed["tokens"]] == ["x"]


def test_logout_deletes_locally(vault: VaultCLI) -> None:
    vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    vault.run("import", "b", "--provider", "github", input="tok-bbbbbbbb")
    r = vault.run("logout", "a")
    assert r.returncode == 0, r
    assert vault.run("token", "a").returncode == 4
    assert vault.run("token", "b").stdout == "tok-bbbbbbbb\n"


def test_rekey_keeps_tokens_and_changes_key(vault: VaultCLI) -> None:
    vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    before = vault.vault_file.read_bytes()
    r = vault.run("rekey", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["backend"] == "keyring"
    assert doc["generation"] == 2
    after = vault.vault_file.read_bytes()
    assert before[8 + 2 + 1 : 8 + 2 + 1 + 4] != after[8 + 2 + 1 : 8 + 2 + 1 + 4]  # new key id
    assert vault.run("token", "a").stdout == "tok-aaaaaaaa\n"
    # The old file no longer opens: its key left the keyring.
    vault.vault_file.write_bytes(before)
    r = vault.run("token", "a")
    assert r.returncode == 6, r


def test_doctor_reports(vault: VaultCLI) -> None:
    r = vault.run("doctor", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    names = {c["check"] for c in doc["checks"]}
    assert {"key backend", "keyring", "vault file", "vault opens", "audit log"} <= names
    vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    os.chmod(vault.vault_file, 0o644)
    r = vault.run("doctor")
    assert r.returncode == 6, r
    assert "FAIL" in r.stdout
    assert "accessible by group or others" in r.stdout


def test_backend_never_switches_silently(vault: VaultCLI, tmp_path: object) -> None:
    vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    r = vault.run("token", "a", env={"VAULT_KEY_BACKEND": "passphrase"})
    assert r.returncode == 6, r
    assert "never switches backends silently" in r.stderr
    assert "vault rekey" in r.stderr


def test_move_between_backends_with_rekey(vault: VaultCLI, tmp_path: os.PathLike[str]) -> None:
    pw = os.path.join(tmp_path, "pw")
    with open(pw, "w") as fh:
        fh.write("a long passphrase here")
    os.chmod(pw, 0o600)
    vault.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    env = {"VAULT_KEY_BACKEND": "passphrase", "VAULT_PASSPHRASE_FILE": pw}
    r = vault.run("rekey", "--json", env=env)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["backend"] == "passphrase"
    assert (vault.home / "vault.key").exists()
    assert vault.run("token", "a", env=env).stdout == "tok-aaaaaaaa\n"
    assert vault.run("token", "a").returncode == 6  # keyring configured, file is passphrase
    r = vault.run("rekey", "--json", env={"VAULT_PASSPHRASE_FILE": pw})
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["backend"] == "keyring"
    assert not (vault.home / "vault.key").exists()
    assert vault.run("token", "a").stdout == "tok-aaaaaaaa\n"


def test_config_errors_name_file_and_line(vault: VaultCLI) -> None:
    vault.home.mkdir(mode=0o700, parents=True)
    cfg = vault.home / "config.yaml"
    cases = {
        "providers:\n  work:\n    issuer: https://x\n    colour: blue\n": (
            ":4: provider 'work': unknown key 'colour'"
        ),
        "key_backend: plaintext\n": ":1: key_backend: 'plaintext'",
        "providers:\n  w:\n    scopes: repo\n": ":3: provider 'w': scopes must be a list",
        "surprise: 1\n": ":1: unknown key 'surprise'",
        "a: [\n": "not valid YAML",
        "providers: !!python/object:os.system {}\n": "tag",
        "x: &a [1]\ny: *a\n": "anchors and aliases",
    }
    for text, expected in cases.items():
        cfg.write_text(text)
        r = vault.run("import", "a", "--provider", "work", input="tok-12345678")
        assert r.returncode == 3, (text, r)
        assert expected in r.stderr, (text, r)
        assert str(cfg) in r.stderr
    cfg.write_text(
        "providers:\n  work:\n    issuer: https://idp.example.com\n    client_id: cli\n"
        "    scopes: [openid]\n"
    )
    r = vault.run("import", "a", "--provider", "work", input="tok-12345678")
    assert r.returncode == 0, r
    assert (
        json.loads(vault.run("status", "a", "--json").stdout)["issuer"] == "https://idp.example.com"
    )
