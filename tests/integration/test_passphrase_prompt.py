"""A passphrase typed by a person, in a real terminal (tmux, 80x24): a new one refused when
weak, typed twice; a wrong one for an existing vault said plainly, three tries, then exit 6;
a file is one try and never a prompt. Nothing typed is ever echoed or written anywhere."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from tests.conftest import VAULT_BIN, VaultCLI
from tests.harness.tmux import TMUX, Terminal

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

RIGHT = "correct horse battery staple"  # the passphrase_vault fixture's
CANARY = "zebra-Canary-quilt-9071-mosaic"  # a strong new passphrase nobody else types


def _env(v: VaultCLI, **extra: str) -> dict[str, str]:
    env = v.full_env()
    env.pop("VAULT_PASSPHRASE_FILE", None)
    env.update(extra)
    env["TERM"] = "xterm-256color"
    return env


def _type(term: Terminal, text: str) -> None:
    term.send(text, literal=True)
    term.send("Enter")


def _prompted(term: Terminal, prompt: str) -> list[str]:
    """The screen once its last line is ``prompt``: the program waits for input there."""
    term.wait_for(prompt)
    for _ in range(300):
        rows = [row for row in term.screen() if row.strip()]
        if rows and rows[-1] == prompt.rstrip():
            return rows
        time.sleep(0.1)
    raise AssertionError(f"no {prompt!r} prompt last; the screen was:\n" + "\n".join(rows))


def _shell(cmd: str) -> list[str]:
    return ["/bin/sh", "-c", cmd]


def _import(token: str = "tok-aaaaaaaa") -> list[str]:  # noqa: S107 (a test token)
    return _shell(f"printf %s {shlex.quote(token)} | {shlex.quote(VAULT_BIN)} import a "
                  "--provider github")  # fmt: skip


def _everything_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def test_new_passphrase_weak_refused_then_mismatch_then_accepted(
    passphrase_vault: VaultCLI, tmp_path: Path
) -> None:
    v = passphrase_vault
    with Terminal(_import(), env=_env(v)) as term:
        screen = _prompted(term, "New vault passphrase:")
        assert any("at least 12 characters" in row for row in screen), screen
        assert not any(len(row) >= 80 for row in screen), screen  # nothing wraps
        _type(term, "password1234")
        screen = term.wait_for("That passphrase is refused")
        assert "too easy to guess" in "\n".join(screen), screen
        _prompted(term, "New vault passphrase:")
        _type(term, CANARY)
        _prompted(term, "Repeat the passphrase:")
        _type(term, CANARY + "x")
        term.wait_for("The two passphrases differ; type it again.")
        _prompted(term, "New vault passphrase:")
        _type(term, CANARY)
        _prompted(term, "Repeat the passphrase:")
        _type(term, CANARY)
        assert term.wait_exit() == 0, term.screen()
        shown = "\n".join(term.screen())
    assert CANARY not in shown
    assert "password1234" not in shown  # never echoed
    good = _file(tmp_path, "good", CANARY)
    assert v.run("token", "a", env={"VAULT_PASSPHRASE_FILE": str(good)}).stdout == "tok-aaaaaaaa\n"
    assert CANARY.encode() not in _everything_under(v.home)


def test_a_short_passphrase_is_refused_with_the_length(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    with Terminal(_import(), env=_env(v)) as term:
        _prompted(term, "New vault passphrase:")
        _type(term, "Zq9!x")
        term.wait_for("refused: it is 5 characters long; at least 12 are needed")
        _prompted(term, "New vault passphrase:")
        _type(term, CANARY)
        _prompted(term, "Repeat the passphrase:")
        _type(term, CANARY)
        assert term.wait_exit() == 0, term.screen()
    assert v.vault_file.exists()


def test_three_refused_new_passphrases_create_nothing(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    with Terminal(_import(), env=_env(v)) as term:
        for weak in ("qwertyuiopas", "aaaaaaaaaaaaaaaa", "password12345"):
            _prompted(term, "New vault passphrase:")
            _type(term, weak)
        assert term.wait_exit() == 2, term.screen()
        screen = "\n".join(term.screen())
    assert "no acceptable new passphrase in 3 tries; nothing was changed" in screen
    assert not v.vault_file.exists()


@pytest.mark.parametrize(
    "weak", ["short", "password1234", "qwertyuiopasdfgh", "aaaaaaaaaaaaaaaaaaaa", "vaultvault12"]
)
def test_a_weak_passphrase_file_is_refused_for_a_new_vault(
    passphrase_vault: VaultCLI, tmp_path: Path, weak: str
) -> None:
    v = passphrase_vault
    pw = _file(tmp_path, "weak", weak)
    r = v.run(
        "import", "a", "--provider", "github", env={"VAULT_PASSPHRASE_FILE": str(pw)}, input="tok-a"
    )
    assert r.returncode == 2, r
    assert f"error: the passphrase in {pw} is refused as a new passphrase because it is" in r.stderr
    assert weak not in r.stderr
    assert not v.vault_file.exists()


def _made(v: VaultCLI) -> None:
    r = v.run("import", "a", "--provider", "github", input="tok-aaaaaaaa")
    assert r.returncode == 0, r


def test_wrong_then_right_on_the_second_try(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    _made(v)
    with Terminal([VAULT_BIN, "token", "a"], env=_env(v)) as term:
        _prompted(term, "Vault passphrase:")
        _type(term, "not the passphrase")
        term.wait_for("Wrong passphrase; try again (2 tries left).")
        _prompted(term, "Vault passphrase:")
        _type(term, RIGHT)
        assert term.wait_exit() == 0, term.screen()
        screen = term.screen()
    assert "tok-aaaaaaaa" in screen
    assert not any(RIGHT in row or "not the passphrase" in row for row in screen)
    records = [json.loads(line) for line in (v.home / "audit.jsonl").read_text().splitlines()]
    failed = [r for r in records if r["event"] == "unlock_failed"]
    assert [r["reason"] for r in failed] == ["1 wrong passphrase typed before the right one"]
    assert failed[0]["outcome"] == "failure"
    assert records[-1]["event"] == "used"  # the failures first, then the use they led to
    assert v.run("audit", "verify").returncode == 0


def test_three_wrong_passphrases_exit_6(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    _made(v)
    before = v.vault_file.read_bytes()
    with Terminal([VAULT_BIN, "token", "a"], env=_env(v)) as term:
        _prompted(term, "Vault passphrase:")
        _type(term, "wrong one")
        term.wait_for("(2 tries left)")
        _prompted(term, "Vault passphrase:")
        _type(term, "wrong two")
        term.wait_for("(1 try left)")
        _prompted(term, "Vault passphrase:")
        _type(term, "wrong three")
        assert term.wait_exit() == 6, term.screen()
        screen = "\n".join(term.screen())
    assert "error: wrong passphrase for the vault at " in screen
    assert "3 tries" in screen
    assert "tok-aaaaaaaa" not in screen
    assert "wrong one" not in screen
    assert v.vault_file.read_bytes() == before


def test_a_file_is_one_try_even_on_a_terminal(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    v = passphrase_vault
    _made(v)
    wrong = _file(tmp_path, "wrong", "not it at all")
    with Terminal([VAULT_BIN, "token", "a"], env=_env(v, VAULT_PASSPHRASE_FILE=str(wrong))) as term:
        assert term.wait_exit() == 6
        screen = "\n".join(term.screen())
    assert "passphrase:" not in screen
    assert "try again" not in screen
    assert "error: wrong passphrase for the vault at " in screen


def test_no_terminal_no_prompt(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    _made(v)
    r = v.run("token", "a", env={"VAULT_PASSPHRASE_FILE": ""}, timeout=20)
    assert r.returncode == 6, r
    assert "no terminal" in r.stderr
    assert "passphrase:" not in r.stderr


def test_a_damaged_vault_with_the_right_passphrase_says_so(passphrase_vault: VaultCLI) -> None:
    v = passphrase_vault
    _made(v)
    blob = bytearray(v.vault_file.read_bytes())
    blob[-1] ^= 1
    v.vault_file.write_bytes(bytes(blob))
    r = v.run("token", "a")
    assert r.returncode == 6, r
    assert "it was altered or damaged (the passphrase is right)" in r.stderr
    assert "wrong passphrase" not in r.stderr


def test_a_key_file_without_a_check_cannot_tell(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    """A key file written before the key check (or by an older vault): a wrong passphrase and
    an altered file look the same, and the message says both."""
    from vault.keys.passphrase import KEY_FILE_MAGIC

    v = passphrase_vault
    _made(v)
    key_file = v.home / "vault.key"
    body, mac, _ = key_file.read_bytes()[len(KEY_FILE_MAGIC) :].split(b"\n")
    doc = json.loads(body)
    doc["extra"].pop("check")
    key_file.write_bytes(KEY_FILE_MAGIC + json.dumps(doc).encode() + b"\n" + mac + b"\n")
    wrong = _file(tmp_path, "wrong", "not it at all")
    r = v.run("token", "a", env={"VAULT_PASSPHRASE_FILE": str(wrong)})
    assert r.returncode == 6, r
    assert "error: wrong passphrase (or the vault file was altered) for the vault at" in r.stderr


def test_rekey_new_passphrase_on_a_terminal(passphrase_vault: VaultCLI, tmp_path: Path) -> None:
    v = passphrase_vault
    _made(v)
    pw = v.env["VAULT_PASSPHRASE_FILE"]
    env = _env(v, VAULT_PASSPHRASE_FILE=pw)
    with Terminal([VAULT_BIN, "rekey", "--new-passphrase"], env=env) as term:
        _prompted(term, "New vault passphrase:")
        _type(term, "abc")
        term.wait_for("at least 12 are needed")
        _prompted(term, "New vault passphrase:")
        _type(term, CANARY)
        _prompted(term, "Repeat the passphrase:")
        _type(term, CANARY)
        assert term.wait_exit() == 0, term.screen()
    good = _file(tmp_path, "good", CANARY)
    assert v.run("token", "a", env={"VAULT_PASSPHRASE_FILE": str(good)}).stdout == "tok-aaaaaaaa\n"
    assert v.run("token", "a").returncode == 6
    assert CANARY.encode() not in _everything_under(v.home)
