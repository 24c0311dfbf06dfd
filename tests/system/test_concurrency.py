"""Concurrent vault processes: nothing lost, the file never corrupt."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import VaultCLI

WORKERS = 8
ROUNDS = 5


def _worker(vault: VaultCLI, worker: int) -> list[str]:
    """Import ROUNDS names, read each back, delete every other one. Returns what must remain."""
    kept = []
    for i in range(ROUNDS):
        name = f"w{worker}-{i}"
        token = f"tok-{worker}-{i}-" + "z" * 16
        r = vault.run("import", name, "--provider", "github", input=token, timeout=120)
        assert r.returncode == 0, r
        r = vault.run("token", name, timeout=120)
        assert r.returncode == 0, r
        assert r.stdout == token + "\n"
        if i % 2:
            r = vault.run("logout", name, timeout=120)
            assert r.returncode == 0, r
        else:
            kept.append(name)
    return kept


def test_parallel_import_read_delete(vault: VaultCLI) -> None:
    # The first write creates the vault (and its keyring entry); from then on all race.
    assert (
        vault.run("import", "seed", "--provider", "github", input="tok-seed-0000").returncode == 0
    )
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda w: _worker(vault, w), range(WORKERS)))
    expected = {"seed", *(name for kept in results for name in kept)}
    r = vault.run("list", "--json")
    assert r.returncode == 0, r
    names = {t["name"] for t in json.loads(r.stdout)["tokens"]}
    assert names == expected
    for name in expected - {"seed"}:
        worker, i = name[1:].split("-")
        assert vault.run("token", name).stdout == f"tok-{worker}-{i}-" + "z" * 16 + "\n"
    status = json.loads(vault.run("status", "--json").stdout)
    # 1 seed write, then per worker ROUNDS imports and ROUNDS // 2 deletions.
    assert status["vault"]["generation"] == 1 + WORKERS * (ROUNDS + ROUNDS // 2)
    leftovers = [p.name for p in vault.home.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
