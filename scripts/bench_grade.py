"""Submissions per minute for `dlkit grade` on a synthetic lab 3 class: a mixed one, and an ordinary one.

The mixed class holds correct submissions, realistic mistakes (one wrong function each, from
tests/mutants/lab3.py) and one each of the hostile kinds: a loop at import, a loop in a task, a memory
bomb, a fork attempt, ``sys.exit`` at import, a syntax error. The ordinary class is the same size,
correct and buggy submissions only. Both are graded in this one run, with the load average printed;
goals on 2 cores: at least 100 a minute mixed, at least 200 ordinary.

    python scripts/bench_grade.py [--size 40] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HOSTILE = {  # appended to the reference (each replaces one task's function, or runs at import)
    "loop_at_import": "\nwhile True:\n    pass\n",
    "loop_in_task": "\n\ndef same_padding(kernel_size, dilation=1):\n    while True:\n        pass\n",
    "memory_bomb": "\n\ndef linear_params(in_features, out_features, bias=True):\n    import numpy\n"
                   "    return int(numpy.ones(10**11).sum())\n",
    "fork": "\n\ndef conv2d_params(in_channels, out_channels, kernel_size, bias=True):\n    import os\n"
            "    os.fork()\n    return 0\n",
    "exit_at_import": "\nimport sys\nsys.exit(0)\n",
    "syntax_error": "\n\ndef broken(:\n",
}


def build_class(root: Path, size: int, hostile: bool) -> dict[str, str]:
    """``size`` submissions under ``root``: the hostile kinds once each (with ``hostile``), then correct and
    buggy ones alternately. Returns each submission's kind."""
    from tests.conftest import function_source
    from tests.mutants import collect
    import tests.mutants.lab3 as mutants

    reference = (REPO / "solutions" / "lab3" / "conv.py").read_text()
    mistakes = [m for m in collect(mutants) if m.expect]
    kinds: dict[str, str] = {}
    for i in range(size):
        name = f"student{i:03d}"
        folder = root / name / "lab3"
        folder.mkdir(parents=True)
        if hostile and i < len(HOSTILE):
            kind = list(HOSTILE)[i]
            text = reference + HOSTILE[kind]
        elif i % 2:
            m = mistakes[i % len(mistakes)]
            kind, text = "buggy", reference + "\n\n" + function_source(m.function, m.task) + "\n"
        else:
            kind, text = "correct", reference
        (folder / "conv.py").write_text(text)
        kinds[name] = kind
    return kinds


def grade(work: Path, name: str, size: int, jobs: int, hostile: bool) -> tuple[float, dict[str, str], dict[str, str]]:
    """Grade one class; (seconds, each submission's kind, each submission's status)."""
    kinds = build_class(work / name, size, hostile)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "cli.py"), "grade", str(work / name), "--lab", "lab3",
                    "--jobs", str(jobs), "--feedback", str(work / f"{name}-feedback"),
                    "--output", str(work / f"{name}.csv")], check=True, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    rows = [line.split(",") for line in (work / f"{name}.csv").read_text().splitlines()[1:]]
    return elapsed, kinds, {row[0]: row[3] for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="dlkit-bench-"))
    try:
        mixed_time, kinds, statuses = grade(work, "mixed", args.size, args.jobs, hostile=True)
        ordinary_time, _, ordinary = grade(work, "ordinary", args.size, args.jobs, hostile=False)
        print(f"load average (1, 5, 15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}, after: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, on {os.cpu_count()} cores; {args.jobs} processes")
        print(f"mixed class: {len(statuses)} lab 3 submissions in {mixed_time:.1f} s: "
              f"{len(statuses) / mixed_time * 60:.0f} per minute (goal: at least 100)")
        print(f"ordinary class: {len(ordinary)} submissions in {ordinary_time:.1f} s: "
              f"{len(ordinary) / ordinary_time * 60:.0f} per minute (goal: at least 200)")
        for kind in HOSTILE:
            who = next(n for n, k in kinds.items() if k == kind)
            print(f"  {kind:<15} {who}: {statuses.get(who, 'no row')}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
