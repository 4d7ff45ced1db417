"""How long `dlkit check LAB --submission solutions` takes, against importing torch and hypothesis.

Both commands run alternately, several times, in this one process's session, so that machine
load affects them alike; the script prints each median and their ratio (goal: at most 1.3), and
the load average it ran under. ``--all`` measures every lab in the same run, the floor between them.
dlkit imports its libraries with the garbage collector off (``grader.sandbox.eager.no_collections``), which a plain
import does not: the same import done that way is timed too, once per round, and printed beside the floor.

    python scripts/bench_check.py [--runs 7] [--lab lab3 | --all]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GOAL = 1.3


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def check_command(lab: str) -> list[str]:
    return [sys.executable, str(REPO / "cli.py"), "check", lab, "--submission", "solutions", "--format", "json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--lab", default="lab3")
    parser.add_argument("--all", action="store_true", help="every lab, in one run")
    args = parser.parse_args()
    from grader import labs

    chosen = labs.names() if args.all else [args.lab]
    load_before = os.getloadavg()
    baseline = [sys.executable, "-c", "import torch, hypothesis"]
    quiet = [sys.executable, "-c", "import gc; gc.disable(); import torch, hypothesis"]
    timed(baseline)  # warm the file cache for every command
    for lab in chosen:
        timed(check_command(lab) + ["--seed", "0"])
    checks: dict[str, list[float]] = {lab: [] for lab in chosen}
    imports: list[float] = []
    quiet_imports: list[float] = []
    for run in range(args.runs):
        quiet_imports.append(timed(quiet))
        for lab in chosen:  # the floor before each check: both see the same load
            imports.append(timed(baseline))
            checks[lab].append(timed(check_command(lab) + ["--seed", str(run)]))
    floor = statistics.median(imports)
    print(f"load average (1, 5, 15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}, after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, on {os.cpu_count()} cores")
    print(f"python -c 'import torch, hypothesis': median {floor:.2f} s over {len(imports)} runs "
          f"(with the garbage collector off: {statistics.median(quiet_imports):.2f} s over {len(quiet_imports)})")
    worst = 0.0
    for lab in chosen:
        median = statistics.median(checks[lab])
        worst = max(worst, median / floor)
        print(f"dlkit check {lab} --submission solutions: median {median:.2f} s over {args.runs} runs, "
              f"ratio {median / floor:.2f} ({median / statistics.median(quiet_imports):.2f} against the import "
              "with the collector off)")
    print(f"worst ratio: {worst:.2f} (goal: at most {GOAL})")


if __name__ == "__main__":
    main()
