"""atheris: policies and config.yaml through vault.policy (safe_yaml, rules, config).

    python -m tests.fuzz.policy_yaml -runs=20000 [CORPUS_DIR]

The first byte picks the mode: even, the rest (bad UTF-8 replaced) is parsed as YAML, as a user
policy and as a system policy; odd, the rest is written as config.yaml and as a policy file and
read as vault reads them (size limit, UTF-8, owner and mode checks included).
"""

from __future__ import annotations

from tests.fuzz import _harness

if __name__ == "__main__":
    _harness.main("policy_yaml")
