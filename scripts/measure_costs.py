"""How long each task of each lab takes to grade on the reference: grader/labs/costs.json.

`dlkit check` shares a lab's tasks between two grading processes before it runs them, longest first
into the lighter process. A task's count of examples is a poor guess of its time (lab 1's train_xor
has four calls, each training a network for 2000 steps; two_layer_net's examples cost three times
softmax's), so the share reads the seconds measured here. The table only decides which process
grades which task, never what a task draws or how it is scored: a stale table costs balance, not
correctness. Re-run it when a lab's checks change (a test says when a task has no entry):

    python scripts/measure_costs.py [--runs 5] [--lab lab1 ...]

Each task is graded alone, warm (after one pass over the whole lab), in one process with one
worker, ``--runs`` times with different seeds; the median is written, in seconds. On a lab whose
inputs `dlkit check` draws ahead in a process of its own (``engine.draws_ahead``), what is timed is
a task graded on inputs drawn already, as the two grading processes then grade it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader import labs  # noqa: E402
from grader.run import engine  # noqa: E402
from grader.sandbox.host import Sandbox  # noqa: E402


def measure(name: str, runs: int) -> dict[str, float]:
    lab = labs.load(name)
    oracle = engine.Oracle.load(lab)
    files = engine.read_submission(lab, REPO / "solutions")
    budget = engine.PROFILES["default"]
    with Sandbox(files, engine.worker_config(lab), engine.Limits()) as box:
        box.start()
        oracle.grade(list(lab.tasks), box, 0, budget)  # warm: first imports and first calls
        seconds: dict[str, list[float]] = {t.name: [] for t in lab.tasks}
        for seed in range(1, runs + 1):
            for task in lab.tasks:
                if engine.draws_ahead(lab, jobs=2):
                    oracle.grade([task], box, seed, budget)  # drawn: timed below is the replay
                start = time.perf_counter()
                oracle.grade([task], box, seed, budget)
                seconds[task.name].append(time.perf_counter() - start)
    return {task: round(statistics.median(times), 4) for task, times in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lab", action="append", help="measure only these labs (the others keep their entries)")
    args = parser.parse_args()
    table = json.loads(engine.COSTS.read_text()) if engine.COSTS.is_file() else {}
    for name in args.lab or labs.names():
        table[name] = measure(name, args.runs)
        print(name, json.dumps(table[name]), flush=True)
    engine.COSTS.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
