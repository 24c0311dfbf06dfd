"""`make mutate` (python -m tests.mutation): mutation testing of the modules that decide security.

Runs mutmut 3 (configured in pyproject.toml, [tool.mutmut]) with VAULT_TEST_SOURCE=1, so that the
tests import the mutated copy of the source in ./mutants/ instead of the installed wheel (under
which every mutant would survive), then prints the score per module and in total and lists every
mutant that was not killed. Each run starts from an empty ./mutants/ (mutmut keeps old verdicts
otherwise, even after the tests changed); --keep reuses it, --rerun tries again only the mutants
the last run left alive (with the tests as they are now), --report only reads it.

Exit status: 0 when the total score reaches --min (default 90%), 1 below it, 2 if mutmut failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
# Hypothesis examples per test for each mutant (tests/conftest.py caps them): thousands of
# mutants times the suite's own counts (up to 1,500) would take hours on two cores.
EXAMPLES = 25

# mutmut's exit codes per mutant (mutmut/stats.py): what counts as killed, what as not.
KILLED = {
    1: "killed",
    3: "killed",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "caught by type check",
    -11: "segfault",
    -9: "segfault",
}
NOT_KILLED = {
    0: "survived",
    5: "no tests",
    33: "no tests",
    None: "not checked",
    34: "skipped",
    35: "suspicious",
}


def modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def run_mutmut(children: int, names: list[str] | None = None) -> int:
    env = {**os.environ, "VAULT_TEST_SOURCE": "1", "VAULT_TEST_MAX_EXAMPLES": str(EXAMPLES)}
    mutmut = Path(sys.executable).parent / "mutmut"
    cmd = [str(mutmut), "run", "--max-children", str(children), *(names or [])]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-4000:])
    return proc.returncode


def results(module: str) -> dict[str, int | None]:
    meta = MUTANTS / (module + ".meta")
    if not meta.is_file():
        raise SystemExit(f"{meta.relative_to(ROOT)} is missing: run without --report first")
    doc = json.loads(meta.read_text())
    codes: dict[str, int | None] = doc["exit_code_by_key"]
    return codes


def not_killed() -> list[str]:
    """Every mutant the last run did not kill, by name."""
    return sorted(
        name for module in modules() for name, code in results(module).items() if code not in KILLED
    )


def report(threshold: float) -> int:
    total_killed = total = 0
    lines = []
    survivors: list[str] = []
    for module in modules():
        codes = results(module)
        killed = sum(1 for code in codes.values() if code in KILLED)
        total_killed += killed
        total += len(codes)
        pct = 100.0 * killed / len(codes) if codes else 100.0
        lines.append(f"  {module:<28} {killed:>5} / {len(codes):<5} {pct:6.1f}%")
        for name, code in sorted(codes.items()):
            if code not in KILLED:
                survivors.append(f"  {NOT_KILLED.get(code, f'exit {code}'):<12} {name}")
    score = 100.0 * total_killed / total if total else 100.0
    print("mutation score (killed / mutants):")
    print("\n".join(lines))
    print(f"  {'total':<28} {total_killed:>5} / {total:<5} {score:6.1f}%")
    if survivors:
        print(f"\nnot killed ({len(survivors)}; `.venv/bin/mutmut show NAME` shows one):")
        print("\n".join(survivors))
    return 0 if score >= threshold else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="reuse ./mutants/ (mutmut's cache)")
    parser.add_argument("--report", action="store_true", help="only report the last run")
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="run again only the mutants the last run did not kill (after adding tests)",
    )
    parser.add_argument("--children", type=int, default=2, help="parallel test processes (2)")
    parser.add_argument("--min", type=float, default=90.0, help="required total score in %%")
    args = parser.parse_args()
    if not args.report:
        names = not_killed() if args.rerun else None
        if not args.keep and not args.rerun and MUTANTS.exists():
            shutil.rmtree(MUTANTS)
        started = time.monotonic()
        if run_mutmut(args.children, names) != 0:
            print("mutmut failed", file=sys.stderr)
            return 2
        print(f"mutmut ran in {time.monotonic() - started:.0f} s")
    return report(args.min)


if __name__ == "__main__":
    sys.exit(main())
