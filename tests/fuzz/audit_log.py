"""atheris: audit logs through ``vault.audit.chain.verify`` and ``read_tail``.

    python -m tests.fuzz.audit_log -runs=20000 [CORPUS_DIR]

The first byte picks the mode: even, the rest is the whole log (an empty corpus folder is seeded
with a valid one); odd, the rest is appended to a valid log. Besides never crashing, a log that
is not the valid one (but for a torn last line) must never verify: the chain of MACs and the
high-water mark leave no other way.
"""

from __future__ import annotations

from tests.fuzz import _harness

if __name__ == "__main__":
    _harness.main("audit_log")
