"""Run every benchmark and print a table; write results/latest.json.

Usage: python benchmarks/run.py [--quick] [--only core,probe,dashboard,classroom,board,memory]

Each figure is a ratio (or a bound) against a baseline measured in the same
run on the same machine; absolute times alone prove nothing on a noisy
machine.  Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, report  # noqa: E402

SUITES = ("core", "probe", "dashboard", "classroom", "board", "memory")
#: A suite run by another module's function (default: ``bench_<suite>.run_all``).
RUNNERS = {"board": ("bench_classroom", "run_board"), "memory": ("bench_classroom", "run_memory")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test, not a measurement)")
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated suites: " + ", ".join(SUITES))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    args = parser.parse_args(argv)
    figures = []
    with tempfile.TemporaryDirectory(prefix="xmailnb-bench-") as tmp:
        work = Path(tmp)
        for suite in [s.strip() for s in args.only.split(",") if s.strip()]:
            if suite not in SUITES:
                parser.error(f"unknown suite {suite!r}")
            module_name, function = RUNNERS.get(suite, (f"bench_{suite}", "run_all"))
            module = __import__(module_name)
            print(f"[{suite}] running ...", flush=True)
            (work / suite).mkdir()
            figures += getattr(module, function)(work / suite, args.quick)
    return report(figures, Path(args.out))


if __name__ == "__main__":
    sys.exit(main())
