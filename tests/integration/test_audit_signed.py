"""A log a third party can verify, through the real executable: a log written by real commands
(import, token, logout, rekey, audit seal), copied elsewhere, verifies with `vault audit verify
--pubkey` alone (an empty HOME, no keyring, no vault), and every tampering fails; the signatures
at rotation and after an hour; the private key nowhere in the clear; a syslog collector's copy
of the heads compared with the machine's log."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import VAULT_BIN, Result, VaultCLI
from tests.harness.clock import at
from tests.harness.rsyslog import Rsyslog
from vault.audit.signing import DOMAIN

TOKEN = "ghp_" + "S1gn3dCha1n" * 3 + "q"


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _history(vault: VaultCLI) -> list[Result]:
    """A vault's life by real commands; returns every result (their output is searched)."""
    results = [
        vault.run("import", "a", "--provider", "github", input=TOKEN),
        vault.run("import", "b", "--provider", "github", input="tok-bbbbbbbbbbbb"),
        vault.run("token", "a"),
        vault.run("token", "a"),
        vault.run("logout", "b"),
        vault.run("rekey"),
        vault.run("audit", "seal"),
    ]
    for result in results:
        assert result.returncode == 0, result
    return results


def _log_files(home: Path) -> list[Path]:
    archives = sorted(p for p in home.iterdir() if p.name.startswith("audit.jsonl.0"))
    return [*archives, home / "audit.jsonl"]


def _auditor(tmp_path: Path, vault: VaultCLI) -> tuple[Path, list[Path]]:
    """The public key and a copy of the log files, in a folder of their own."""
    where = tmp_path / "auditor"
    where.mkdir()
    pub = vault.run("audit", "pubkey")
    assert pub.returncode == 0, pub
    key = where / "vault.pub"
    key.write_text(pub.stdout)
    copies = []
    for path in _log_files(vault.home):
        copies.append(where / path.name)
        shutil.copy(path, copies[-1])
        copies[-1].chmod(0o644)  # an auditor's copy need not be private
    return key, copies


def _elsewhere(tmp_path: Path, *args: str) -> Result:
    """The real `vault` on "another machine": an empty HOME, no VAULT_HOME, no D-Bus session
    (so no Secret Service), no passphrase, nothing of the vault."""
    home = tmp_path / "empty-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    proc = subprocess.run(
        [VAULT_BIN, *args],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert list(home.iterdir()) == [], "verifying wrote into HOME"
    return Result([*args], proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def _verify(tmp_path: Path, key: Path, files: list[Path]) -> tuple[Result, dict[str, object]]:
    r = _elsewhere(tmp_path, "audit", "verify", "--json", "--pubkey", str(key), *map(str, files))
    return r, json.loads(r.stdout)


def test_a_copied_log_verifies_with_the_public_key_alone(vault: VaultCLI, tmp_path: Path) -> None:
    _history(vault)
    key, files = _auditor(tmp_path, vault)
    r, doc = _verify(tmp_path, key, files)
    assert r.returncode == 0, r
    records = [json.loads(line) for line in _lines(files[-1])]
    assert [rec["event"] for rec in records] == [
        "issued", "issued", "used", "used", "deleted", "key_rotated", "chain_signed",
    ]  # fmt: skip
    assert doc["ok"] is True
    assert doc["records"] == 7
    assert doc["chain_start"] == 1
    assert doc["anchored_seq"] == 7
    assert doc["unanchored"] is None
    assert doc["signatures"] == 1
    assert doc["anchored_time"] == records[-1]["time"]
    assert doc["key_fingerprint"] == records[-1]["key_fingerprint"]
    fingerprint = vault.run("audit", "pubkey", "--fingerprint").stdout.strip()
    assert doc["key_fingerprint"] == fingerprint
    # The human form says the same on stderr.
    human = _elsewhere(tmp_path, "audit", "verify", "--pubkey", str(key), *map(str, files))
    assert human.returncode == 0, human
    assert "anchored up to record 7" in human.stderr
    # The vault's own verify (HMAC chain, high-water mark) agrees.
    assert vault.run("audit", "verify").returncode == 0


def test_a_signature_checks_with_openssl_too(vault: VaultCLI, tmp_path: Path) -> None:
    """What is signed is documented enough for a tool that is not vault to check it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is missing: apt-get install openssl")
    _history(vault)
    key, files = _auditor(tmp_path, vault)
    line = _lines(files[-1])[-1]
    doc = json.loads(line)
    (tmp_path / "msg").write_bytes(DOMAIN + line[: line.rindex(b',"signature":"')])
    (tmp_path / "sig").write_bytes(base64.b64decode(doc["signature"]))
    argv = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(key), "-rawin",
            "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig")]  # fmt: skip
    assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
    (tmp_path / "msg").write_bytes(DOMAIN + line[: line.rindex(b',"signature":"')] + b" ")
    assert subprocess.run(argv, capture_output=True, check=False).returncode != 0


@pytest.fixture
def history(vault: VaultCLI, tmp_path: Path) -> tuple[Path, list[Path], list[bytes]]:
    _history(vault)
    key, files = _auditor(tmp_path, vault)
    return key, files, _lines(files[-1])


def _fails(tmp_path: Path, key: Path, files: list[Path]) -> dict[str, object]:
    r, doc = _verify(tmp_path, key, files)
    assert r.returncode == 6, r
    assert "the audit log does not verify" in r.stderr
    assert "Traceback" not in r.stderr
    return doc


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_an_edited_copy_fails(
    history: tuple[Path, list[Path], list[bytes]], tmp_path: Path, data: st.DataObject
) -> None:
    key, files, lines = history
    index = data.draw(st.integers(0, len(lines) - 1), label="record")
    line = lines[index]
    # Any byte of the record, but the last record's MAC (covered by no later record: not
    # content, and checked by `vault audit verify` with the vault).
    end = len(line) - 66 if index == len(lines) - 1 else len(line)
    pos = data.draw(st.integers(0, end - 1), label="byte")
    new = data.draw(st.integers(0x20, 0x7E).filter(lambda b: b != line[pos]), label="new")
    changed = list(lines)
    changed[index] = line[:pos] + bytes([new]) + line[pos + 1 :]
    _write_lines(files[-1], changed)
    try:
        doc = _fails(tmp_path, key, files)
        # Named (the changed line, or a neighbour its hash links), or the only signature is
        # one no more: then nothing is anchored.
        named = doc["bad_line"] in (index, index + 1, index + 2)
        assert named or "no record is signed by" in str(doc["problem"]), doc
    finally:
        _write_lines(files[-1], lines)


def test_deleted_swapped_inserted_records_fail(
    history: tuple[Path, list[Path], list[bytes]], tmp_path: Path
) -> None:
    key, files, lines = history
    cases = {
        "deleted": (lines[:2] + lines[3:], 4, "records 3..3 were deleted"),
        "swapped": ([lines[0], lines[2], lines[1], *lines[3:]], 3, "were deleted"),
        "inserted": ([*lines[:4], lines[1], *lines[4:]], 2, "out of order"),
    }
    for name, (changed, seq, what) in cases.items():
        _write_lines(files[-1], changed)
        r, doc = _verify(tmp_path, key, files)
        assert r.returncode == 6, (name, r)
        assert doc["bad_seq"] == seq, (name, doc)
        assert what in str(doc["problem"]), (name, doc)
    # A log given from record 2 on (its first file missing): said, and still anchored.
    _write_lines(files[-1], lines[1:])
    r, doc = _verify(tmp_path, key, files)
    assert r.returncode == 0, r
    assert "starts at record 2" in r.stderr
    _write_lines(files[-1], lines)


def test_truncation_before_and_after_the_last_anchor(vault: VaultCLI, tmp_path: Path) -> None:
    _history(vault)
    assert vault.run("token", "a").returncode == 0  # record 8: after the seal
    assert vault.run("token", "a").returncode == 0  # record 9
    key, files = _auditor(tmp_path, vault)
    lines = _lines(files[-1])
    r, doc = _verify(tmp_path, key, files)
    assert r.returncode == 0, r
    assert doc["anchored_seq"] == 7
    assert doc["unanchored"] == [8, 9]
    assert "records 8..9 are after the last signature (record 7) and not anchored" in r.stderr
    assert "cannot be told from a log that ended there" in r.stderr
    # Cut after the anchor: indistinguishable from a log that ended there, and said so.
    _write_lines(files[-1], lines[:8])
    r, doc = _verify(tmp_path, key, files)
    assert r.returncode == 0, r
    assert doc["unanchored"] == [8, 8], r
    # Cut in the middle of a record: a partial last record, a warning (a crash looks so).
    files[-1].write_bytes(b"".join(ln + b"\n" for ln in lines[:8]) + lines[8][:40])
    r, doc = _verify(tmp_path, key, files)
    assert r.returncode == 0, r
    assert "partial last record" in r.stderr, r
    # Cut before the anchor, nothing signed left: not verified.
    _write_lines(files[-1], lines[:6])
    doc = _fails(tmp_path, key, files)
    assert "no record is signed by" in str(doc["problem"])
    # The vault itself knows better: its high-water mark says record 9 was written.
    (vault.home / "audit.jsonl").write_bytes(files[-1].read_bytes())
    assert vault.run("audit", "verify").returncode == 6


def test_another_vaults_key_or_signature_fails(
    vault: VaultCLI, tmp_path: Path, passphrase_vault: VaultCLI
) -> None:
    _history(vault)
    key, files = _auditor(tmp_path, vault)
    second = VaultCLI(tmp_path / "second", passphrase_vault.env)
    assert second.run("import", "z", "--provider", "github", input="tok-zzzz").returncode == 0
    assert second.run("audit", "seal").returncode == 0
    other = tmp_path / "other.pub"
    other.write_text(second.run("audit", "pubkey").stdout)
    doc = _fails(tmp_path, other, files)
    assert doc["bad_seq"] == 7
    assert "signed by another key" in str(doc["problem"])
    # The other vault's log, its signature record relabelled as ours: does not verify.
    theirs = tmp_path / "theirs.jsonl"
    ours = json.loads(_lines(files[-1])[-1])["key_fingerprint"]
    data = (second.home / "audit.jsonl").read_bytes()
    theirs_fp = json.loads(data.splitlines()[-1])["key_fingerprint"]
    theirs.write_bytes(data.replace(theirs_fp.encode(), ours.encode()))
    doc = _fails(tmp_path, key, [theirs])
    assert "does not verify with the key" in str(doc["problem"])


def test_bad_arguments_are_usage_errors(vault: VaultCLI, tmp_path: Path) -> None:
    _history(vault)
    key, files = _auditor(tmp_path, vault)
    r = vault.run("audit", "verify", str(files[-1]))
    assert r.returncode == 2, r
    assert "--pubkey" in r.stderr, r
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    r = _elsewhere(tmp_path, "audit", "verify", "--pubkey", str(junk), str(files[-1]))
    assert r.returncode == 2, r
    assert "is not a public key" in r.stderr, r
    r = _elsewhere(tmp_path, "audit", "verify", "--pubkey", str(key), str(tmp_path / "nope"))
    assert r.returncode == 2, r
    assert "cannot read" in r.stderr, r
    # Without LOG: this vault's own log (VAULT_HOME), still without its key.
    no_keyring = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}
    r = vault.run("audit", "verify", "--pubkey", str(key), env=no_keyring)
    assert r.returncode == 0, r


def test_every_rotated_file_ends_signed(vault: VaultCLI, tmp_path: Path) -> None:
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text("audit:\n  max_bytes: 4096\n")
    assert vault.run("import", "a", "--provider", "github", input=TOKEN).returncode == 0
    for _ in range(20):
        assert vault.run("token", "a").returncode == 0
    key, files = _auditor(tmp_path, vault)
    assert len(files) >= 3
    for archive in files[:-1]:
        assert json.loads(_lines(archive)[-1])["event"] == "chain_signed"
    r, doc = _verify(tmp_path, key, files)
    assert r.returncode == 0, r
    assert doc["signatures"] == len(files) - 1
    assert doc["files"] == len(files)
    # An archive cut in the middle (before an anchor): fails, naming where.
    data = files[0].read_bytes()
    files[0].write_bytes(data[: data.index(b"\n") + 1])
    doc = _fails(tmp_path, key, files)
    assert doc["bad_file"] == str(files[1])
    # An archive left out: the next file does not chain to the one before it.
    files[0].write_bytes(data)
    doc = _fails(tmp_path, key, [files[0], *files[2:]])
    assert doc["bad_file"] == str(files[2])


def test_signed_at_least_once_an_hour(vault: VaultCLI) -> None:
    assert vault.run("import", "a", "--provider", "github", input=TOKEN).returncode == 0
    assert vault.run("token", "a", env=at(1800)).returncode == 0
    events = [json.loads(line)["event"] for line in _lines(vault.home / "audit.jsonl")]
    assert events == ["issued", "used"]
    assert vault.run("token", "a", env=at(3700)).returncode == 0  # more than an hour on
    records = [json.loads(line) for line in _lines(vault.home / "audit.jsonl")]
    assert [r["event"] for r in records] == ["issued", "used", "used", "chain_signed"]
    assert records[-1]["head_seq"] == 3
    assert vault.run("token", "a", env=at(3800)).returncode == 0  # within the hour after it
    assert [json.loads(ln)["event"] for ln in _lines(vault.home / "audit.jsonl")][-1] == "used"
    assert vault.run("audit", "verify", env=at(3800)).returncode == 0


def _private_forms(vault: VaultCLI) -> list[bytes]:
    """The signing key as it is inside the vault, read through the store, in every form it
    could leak as: the seed raw, in base64 and hex, and as a PKCS#8 PEM (its body)."""
    script = (
        "from vault.fs import paths; from vault.policy.config import load;"
        "from vault.store.vault import Store; p = paths.resolve();"
        "s = Store(p, backend=load(p).backend()[0]).read(); print(s.meta.signing_key.reveal())"
    )
    python = str(Path(VAULT_BIN).parent / "python")
    out = subprocess.run(
        [python, "-c", script], capture_output=True, env=vault.full_env(), check=True, timeout=60
    ).stdout.strip()
    seed = base64.b64decode(out)
    assert len(seed) == 32
    pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    body = b"".join(pem.splitlines()[1:-1])
    return [seed, out, seed.hex().encode(), body, base64.b64encode(seed).rstrip(b"=")]


def test_the_private_key_is_nowhere_in_the_clear(vault: VaultCLI, tmp_path: Path) -> None:
    results = _history(vault)
    results += [
        vault.run("--debug", "audit", "seal"),
        vault.run("-v", "audit", "pubkey", "--json"),
        vault.run("audit", "show", "--json"),
        vault.run("audit", "report", "--json"),
        vault.run("--debug", "token", "a", env=at(4000)),  # the hourly signature, traced
    ]
    assert all(r.returncode == 0 for r in results), results
    forms = _private_forms(vault)
    for result in results:
        for form in forms:
            assert form.decode("latin-1") not in result.stdout + result.stderr, result.args
    for path in vault.home.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for form in forms:
                assert form not in content, path
    log = (vault.home / "audit.jsonl").read_text()
    assert "PRIVATE KEY" not in log
    assert log.count('"event":"chain_signed"') == 3


def test_the_signing_key_survives_rekey_and_moves(vault: VaultCLI) -> None:
    assert vault.run("import", "a", "--provider", "github", input=TOKEN).returncode == 0
    before = vault.run("audit", "pubkey", "--fingerprint").stdout
    assert vault.run("rekey").returncode == 0
    assert vault.run("audit", "pubkey", "--fingerprint").stdout == before
    openssh = vault.run("audit", "pubkey", "--openssh").stdout
    assert openssh.startswith("ssh-ed25519 ")
    shown = json.loads(vault.run("audit", "pubkey", "--json").stdout)
    assert shown["fingerprint"] + "\n" == before
    assert shown["algorithm"] == "ed25519"


def test_a_collectors_copy_of_the_heads_matches_the_log(
    vault: VaultCLI, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    """What README tells an auditor to do: the hashes a syslog collector received, compared
    with the machine's log; a log rewritten after its last anchor (hashes recomputed, which
    the public key alone cannot catch) differs from the collector's copy."""
    vault.home.mkdir(mode=0o700)
    (vault.home / "config.yaml").write_text(f"audit:\n  syslog: tcp:127.0.0.1:{rsyslog.tcp_port}\n")
    assert vault.run("import", "c", "--provider", "github", input=TOKEN).returncode == 0
    assert vault.run("audit", "seal").returncode == 0
    assert vault.run("token", "c").returncode == 0
    received = rsyslog.wait_for("vault@32473", 3)
    collector = {}
    for record in received:
        sd = record.sd["vault@32473"]
        msg = json.loads(record.msg.lstrip("\ufeff"))
        assert (sd["prev_sha256"], sd["sha256"]) == (msg["prev_sha256"], msg["sha256"])
        collector[int(sd["seq"])] = sd["sha256"]
    assert [r.msgid for r in received] == ["issued", "chain_signed", "used"]
    assert "signature" in received[1].sd["vault@32473"]
    machine = {
        json.loads(line)["seq"]: hashlib.sha256(line).hexdigest()
        for line in _lines(vault.home / "audit.jsonl")
    }
    assert machine == collector
    # The verified head is the collector's last hash.
    key, files = _auditor(tmp_path, vault)
    _, doc = _verify(tmp_path, key, files)
    assert doc["head_sha256"] == collector[3]
    assert doc["unanchored"] == [3, 3]
    # Rewrite the unanchored record 3 and nothing else: the public key alone cannot tell ...
    lines = _lines(files[-1])
    lines[2] = lines[2].replace(b'"command":"token"', b'"command":"other"')
    _write_lines(files[-1], lines)
    r, doc = _verify(tmp_path, key, files)
    assert r.returncode == 0
    assert doc["head_sha256"] != collector[3]
