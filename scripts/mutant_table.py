"""The verdict of every mutant and alternative in tests/mutants, and of the reference, at a fixed seed.

One line per submission: lab, submission, task, score/max, task status, and whether the feedback
confirms the mistake the mutant names by id ("hint" / "no hint"), or the check it names caught it
("caught" / "not caught"); "-" for alternatives and the reference.
Used to show that a refactoring of the grader keeps every verdict:

    DLKIT_PROFILE=ci python scripts/mutant_table.py [--lab lab1] [--jobs 2] > table.txt
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SEED = 20261122


def _grade(job: tuple[str, str, str, str, str | None]) -> str:
    """One row: (lab, submission name, task or "" for the whole lab, appended source, expect)."""
    from grader import labs
    from grader.run.engine import PROFILES, grade_lab

    lab_name, name, task, extra, expect = job
    lab = labs.load(lab_name)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / lab_name / f"{lab.module}.py"
        target.parent.mkdir(parents=True)
        reference = (REPO / "solutions" / lab_name / f"{lab.module}.py").read_text()
        target.write_text(reference + ("\n\n" + extra + "\n" if extra else ""))
        result = grade_lab(lab, Path(tmp), seed=SEED, tasks=(task,) if task else (),
                           budget=PROFILES[os.environ.get("DLKIT_PROFILE", "ci")])
    rows = []
    for t in result.tasks:
        if expect is None:
            hint = "-"
        elif expect.startswith("check:"):  # the named check must catch it
            caught = any(c.status != "passed" and c.name.startswith(expect.removeprefix("check:")) for c in t.checks)
            hint = "caught" if caught else "not caught"
        else:  # the feedback must confirm the mistake of that id
            hint = "hint" if any(expect in c.mistakes for c in t.checks) else "no hint"
        rows.append(f"{lab_name}\t{name}\t{t.name}\t{t.score:g}/{t.max_score:g}\t{t.status}\t{hint}")
    return "\n".join(rows)


def jobs_for(lab_name: str) -> list[tuple[str, str, str, str, str | None]]:
    from tests.conftest import function_source
    from tests.mutants import collect

    found: list[tuple[str, str, str, str, str | None]] = [(lab_name, "reference", "", "", None)]
    try:
        module = importlib.import_module(f"tests.mutants.{lab_name}")
    except ModuleNotFoundError:
        return found
    for m in collect(module):
        found.append((lab_name, m.id, m.task, function_source(m.function, m.task), m.expect))
    return found


def main() -> None:
    from grader import labs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", action="append", help="only this lab (repeatable); default: every lab")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    jobs = [job for lab in (args.lab or labs.names()) for job in jobs_for(lab)]
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(_grade, jobs):
            print(row, flush=True)


if __name__ == "__main__":
    main()
