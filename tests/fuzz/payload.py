"""atheris: the decrypted payload parser (``vault.store.model``), every entry point.

python -m tests.fuzz.payload -runs=20000 [CORPUS_DIR]
"""

from __future__ import annotations

from tests.fuzz import _harness

if __name__ == "__main__":
    _harness.main("payload")
