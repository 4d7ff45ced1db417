"""Submissions per minute for `dlkit grade` on a synthetic lab 3 class, next to the import floor.

The class mixes correct submissions, realistic mistakes (one wrong function each, from
tests/mutants/lab3.py) and hostile ones (exit at import, an infinite loop, a memory bomb, a
fake printed score, an empty folder, a syntax error). The floor is what a grader that pays one
`import torch` per submission, on every core, could reach at best.

    python scripts/bench_grade.py [--size 60] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HOSTILE = {
    "exit_at_import": "import sys\nsys.exit(0)\n",
    "loop": "\n\ndef same_padding(kernel_size, dilation=1):\n    while True:\n        pass\n",
    "bomb": "\n\ndef linear_params(in_features, out_features, bias=True):\n    import numpy\n    return numpy.ones(10**11)\n",
    "fake_print": "\nprint('{\"score\": 100, \"max_score\": 100}')\n",
    "syntax": "\n\ndef broken(:\n",
}


def build_class(root: Path, size: int) -> None:
    from tests.conftest import function_source
    from tests.mutants import collect
    import tests.mutants.lab3 as mutants

    reference = (REPO / "solutions" / "lab3" / "conv.py").read_text()
    mistakes = [m for m in collect(mutants) if m.expect]
    for i in range(size):
        folder = root / f"student{i:03d}" / "lab3"
        kind = i % 10
        if kind == 9:  # one in ten hostile
            name = list(HOSTILE)[(i // 10) % (len(HOSTILE) + 1)] if (i // 10) % (len(HOSTILE) + 1) < len(HOSTILE) else None
            if name is None:
                (root / f"student{i:03d}").mkdir(parents=True)  # an empty submission
                continue
            folder.mkdir(parents=True)
            text = HOSTILE[name]
            (folder / "conv.py").write_text(text if name == "exit_at_import" else reference + text)
        elif kind >= 5:  # half buggy
            m = mistakes[i % len(mistakes)]
            folder.mkdir(parents=True)
            (folder / "conv.py").write_text(reference + "\n\n" + function_source(m.function, m.task) + "\n")
        else:
            folder.mkdir(parents=True)
            (folder / "conv.py").write_text(reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dlkit-bench-"))
    try:
        build_class(work / "class", args.size)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "cli.py"), "grade", str(work / "class"), "--lab", "lab3",
                        "--jobs", str(args.jobs), "--feedback", str(work / "feedback"), "--output", str(work / "grades.csv")],
                       check=True, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        rows = (work / "grades.csv").read_text().splitlines()[1:]
        imports = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True)
            imports.append(time.perf_counter() - t)
        floor = 60.0 / statistics.median(imports) * args.jobs
        statuses = {}
        for row in rows:
            status = row.split(",")[3]
            statuses[status] = statuses.get(status, 0) + 1
        print(f"graded {len(rows)} lab 3 submissions in {elapsed:.1f} s with {args.jobs} processes: "
              f"{len(rows) / elapsed * 60:.0f} submissions per minute (goal: at least 60)")
        print(f"floor (one `import torch` per submission, {args.jobs} at a time): {floor:.0f} per minute")
        print("rows by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
