"""What every atheris harness shares: instrumented imports, a scratch folder, the run."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris


def instrumented() -> None:
    """Import (and so instrument for coverage) every vault module a target reaches, before
    the target's own imports pull them in uninstrumented."""
    with atheris.instrument_imports(include=["vault"]):
        pass


def scratch(name: str) -> Path:
    """A folder for the target's files: under $VAULT_FUZZ_TMP when the test suite runs the
    harness (pytest removes it), else a new folder in the system's temporary folder."""
    return Path(
        tempfile.mkdtemp(prefix=f"vault-fuzz-{name}-", dir=os.environ.get("VAULT_FUZZ_TMP"))
    )


def run(one_input: Callable[[bytes], None], seeds: dict[str, bytes]) -> None:
    """libFuzzer's command line (-runs=N, -max_len=N, corpus folders) from sys.argv. An empty
    corpus folder is first given the target's seeds (valid inputs to mutate from)."""
    for arg in sys.argv[1:]:
        folder = Path(arg)
        if not arg.startswith("-") and folder.is_dir() and not any(folder.iterdir()):
            for name, data in seeds.items():
                (folder / name).write_bytes(data)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


def main(target: str) -> None:
    instrumented()
    from tests.fuzz.targets import make_one_input, seeds

    run(make_one_input(target, scratch(target)), seeds(target))
