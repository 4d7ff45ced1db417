"""How long `dlkit check lab3 --submission solutions` takes, against importing torch and hypothesis.

Both commands run alternately, several times, in this one process's session, so that machine
load affects them alike; the script prints each median and their ratio (goal: at most 1.5).

    python scripts/bench_check.py [--runs 7] [--lab lab3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--lab", default="lab3")
    args = parser.parse_args()
    check = [sys.executable, str(REPO / "cli.py"), "check", args.lab, "--submission", "solutions", "--format", "json"]
    baseline = [sys.executable, "-c", "import torch, hypothesis"]
    timed(baseline)  # warm the file cache for both
    timed(check + ["--seed", "0"])
    checks, imports = [], []
    for run in range(args.runs):
        imports.append(timed(baseline))
        checks.append(timed(check + ["--seed", str(run)]))
    c, b = statistics.median(checks), statistics.median(imports)
    print(f"dlkit check {args.lab} --submission solutions: median {c:.2f} s over {args.runs} runs")
    print(f"python -c 'import torch, hypothesis':      median {b:.2f} s")
    print(f"ratio: {c / b:.2f} (goal: at most 1.5)")


if __name__ == "__main__":
    main()
