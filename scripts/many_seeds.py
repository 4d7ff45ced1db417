"""Grade the reference and every correct alternative in tests/mutants over many seeds; count the lost points.

A correct submission must score full marks on every seed: any point lost is a false verdict of the
grader (a tolerance too tight, an oracle that disagrees with itself, a property that rounding breaks).
Each lab's submissions are graded in one worker per submission and job, seed after seed, so that a
seed costs only the checks themselves. Prints, per lab, the points lost (with the submission, seed,
task and first failing check of each loss) and exits 1 if any were lost.

    python scripts/many_seeds.py [--lab lab2 ...] [--seeds 200] [--first 0] [--profile default] [--jobs 2]

Defaults: 200 seeds with the default profile, 20 with ``thorough``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader import labs  # noqa: E402
from grader.declare.signatures import read_signatures  # noqa: E402
from grader.declare.spec import Lab  # noqa: E402
from grader.run.engine import PROFILES, Budget, grade_task, load_reference, read_submission, worker_config  # noqa: E402
from grader.sandbox.host import Limits, Sandbox, end_strays  # noqa: E402

DEFAULT_SEEDS = {"default": 200, "ci": 200, "thorough": 20}


@dataclass(frozen=True)
class Submission:
    """A correct submission: the reference module, or it with one alternative appended under its task's name."""

    name: str
    folder: Path
    tasks: tuple[str, ...]  # the tasks it is graded on (an alternative: its own task only)


def submissions(lab: Lab, root: Path) -> list[Submission]:
    """The reference and, from tests/mutants/<lab>.py, every ``@alternative``, written under ``root``."""
    from tests.conftest import function_source
    from tests.mutants import collect

    found = [Submission("reference", REPO / "solutions", tuple(t.name for t in lab.tasks))]
    try:
        mutants = collect(importlib.import_module(f"tests.mutants.{lab.name}"))
    except ModuleNotFoundError:
        mutants = []
    reference = (REPO / "solutions" / lab.name / f"{lab.module}.py").read_text()
    for mutant in mutants:
        if mutant.expect is not None:
            continue
        folder = root / mutant.id
        target = folder / lab.name / f"{lab.module}.py"
        target.parent.mkdir(parents=True)
        target.write_text(reference + "\n\n" + function_source(mutant.function, mutant.task) + "\n")
        found.append(Submission(mutant.id, folder, (mutant.task,)))
    return found


def losses(lab: Lab, entry: Submission, seeds: Sequence[int], budget: Budget, slot: int) -> list[dict[str, object]]:
    """Every task that lost points on a seed: one worker for all the seeds."""
    files = read_submission(lab, entry.folder)
    reference = load_reference(lab, REPO / "solutions")
    signatures = read_signatures(REPO / "assignments" / lab.name / f"{lab.module}.py")
    lost: list[dict[str, object]] = []
    with Sandbox(files, worker_config(lab), Limits(), None, slot=slot) as sandbox:
        sandbox.start()
        for seed in seeds:
            for name in entry.tasks:
                task = lab.task(name)
                result = grade_task(task, lab, sandbox, reference, signatures.get(task.function), seed, budget)
                if result.score < result.max_score:
                    failed = next((c for c in result.checks if c.status not in ("passed", "skipped")), None)
                    lost.append({"submission": entry.name, "seed": seed, "task": name,
                                 "lost": round(result.max_score - result.score, 2),
                                 "check": failed.name if failed else result.status,
                                 "message": (failed.message if failed else result.message).split("\n")[0][:300]})
    return lost


def grade_share(lab: Lab, entries: Sequence[Submission], seeds: Sequence[int], budget: Budget,
                slot: int) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for entry in entries:
        more = losses(lab, entry, seeds, budget, slot)
        found += more
        print(f"  [{lab.name} job {slot}] {entry.name}: {len(seeds)} seeds, "
              f"{round(sum(float(str(f['lost'])) for f in more), 2):g} points lost", file=sys.stderr, flush=True)
    return found


def run_lab(lab: Lab, seeds: Sequence[int], budget: Budget, jobs: int) -> tuple[int, list[dict[str, object]]]:
    """(submissions graded, losses) for one lab, the seeds shared among ``jobs`` forked processes."""
    with tempfile.TemporaryDirectory(prefix=f"many-seeds-{lab.name}-") as root:
        entries = submissions(lab, Path(root))
        shares = [list(seeds[i::jobs]) for i in range(jobs) if seeds[i::jobs]]
        children = []
        for slot, share in enumerate(shares[1:], start=1):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read)
                try:
                    payload = json.dumps(grade_share(lab, entries, share, budget, slot))
                except BaseException as error:  # noqa: BLE001 - reported by the parent
                    payload = json.dumps({"error": f"{type(error).__name__}: {error}"})
                with os.fdopen(write, "w") as out:
                    out.write(payload)
                os._exit(0)
            os.close(write)
            children.append((pid, read))
        found = grade_share(lab, entries, shares[0], budget, 0) if shares else []
        for pid, read in children:
            with os.fdopen(read) as stream:
                data = json.loads(stream.read() or '{"error": "a process ended without a report"}')
            os.waitpid(pid, 0)
            if isinstance(data, dict):
                raise RuntimeError(f"grading {lab.name} failed: {data['error']}")
            found += data
        end_strays()
        return len(entries), sorted(found, key=lambda f: (str(f["submission"]), int(str(f["seed"]))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", action="append", choices=labs.names(), help="a lab to run (repeat; default: all)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default: 200, 20 with thorough)")
    parser.add_argument("--first", type=int, default=0, help="the first seed (seeds are first .. first + seeds - 1)")
    parser.add_argument("--jobs", type=int, default=1, help="processes per lab (each with its own worker)")
    args = parser.parse_args(argv)
    count = args.seeds if args.seeds is not None else DEFAULT_SEEDS[args.profile]
    seeds = range(args.first, args.first + count)
    total = 0.0
    for name in args.lab or labs.names():
        lab = labs.load(name)
        start = time.perf_counter()
        graded, found = run_lab(lab, seeds, PROFILES[args.profile], max(1, args.jobs))
        lost = round(sum(float(str(f["lost"])) for f in found), 2)
        total += lost
        print(f"{name}: {lost:g} points lost over seeds {seeds.start}..{seeds.stop - 1} ({count} seeds, profile "
              f"{args.profile}) by {graded} correct submissions (the reference and {graded - 1} alternatives) "
              f"in {time.perf_counter() - start:.0f} s", flush=True)
        for f in found:
            print(f"  {f['submission']} seed {f['seed']} {f['task']}: -{f['lost']} at '{f['check']}': {f['message']}",
                  flush=True)
    print(f"total: {total:g} points lost")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
