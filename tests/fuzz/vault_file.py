"""atheris: vault files through the real ``Store.read``.

    python -m tests.fuzz.vault_file -runs=20000 [CORPUS_DIR]

The first byte picks the mode: even, the rest is the whole vault file (an empty corpus folder is
seeded with a valid one, and libFuzzer's mutations make the flipped, cut and spliced files); odd,
the rest is a payload sealed under a valid header and key, so it passes authentication and
reaches the payload parser.
"""

from __future__ import annotations

from tests.fuzz import _harness

if __name__ == "__main__":
    _harness.main("vault_file")
