"""How fast `dlkit check LAB --watch` answers a save, against a cold `dlkit check LAB`.

In one run: the cold check's median time; then watch mode on a copy of the reference, where
the script saves a one-line change to one task's function (alternately breaking and mending
it) and times, from the save, the first JSON line (the changed task's verdict) and the second
(the whole lab's). Goals: the changed task in at most 0.2 of the cold time, the lab in 0.5.

    python scripts/bench_watch.py [--lab lab3] [--saves 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# a one-line change per lab: (function, the line added as its first statement); the line changes the
# function's code without changing what it returns
EDITS = {
    "lab1": "mse_loss", "lab2": "momentum", "lab3": "same_padding", "lab4": "embedding", "lab5": "causal_mask",
    "lab6": "dropout_forward",
}


def one_line_change(source: str, function: str, count: int) -> str:
    """``source`` with ``_watch_edit = <count>`` as the first statement of ``function``'s body."""
    import ast

    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        first = node.body[1] if len(node.body) > 1 else first  # after the docstring
    lines = source.splitlines(keepends=True)
    indent = " " * first.col_offset
    line = first.lineno - 1
    if lines[line - 1].lstrip().startswith("_watch_edit ="):
        del lines[line - 1]
        line -= 1
    lines.insert(line, f"{indent}_watch_edit = {count}\n")
    return "".join(lines)


class Lines:
    """The lines a process prints, as they come (a thread reads them, so none waits in a buffer)."""

    def __init__(self, process: subprocess.Popen[str]):
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.queue.put(line)
        self.queue.put("")

    def report(self, timeout: float = 120) -> dict[str, Any]:
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            raise SystemExit(f"no report within {timeout:g} s") from None
        if not line:
            raise SystemExit("watch mode ended")
        data: dict[str, Any] = json.loads(line)
        return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="lab3", choices=sorted(EDITS))
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="cold checks")
    args = parser.parse_args()
    from grader import labs

    lab = labs.load(args.lab)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="dlkit-watch-bench-"))
    try:
        shutil.copytree(REPO / "solutions" / lab.name, work / lab.name)
        module = work / lab.name / f"{lab.module}.py"
        command = [sys.executable, str(REPO / "cli.py"), "check", lab.name, "--submission", str(work), "--format", "json",
                   "--seed", "1"]
        colds = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            colds.append(time.perf_counter() - start)
        cold = statistics.median(colds)
        process = subprocess.Popen(command + ["--watch"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines = Lines(process)
        try:
            lines.report()  # the first run: the whole lab
            firsts, fulls = [], []
            for count in range(args.saves):
                time.sleep(0.5)
                module.write_text(one_line_change(module.read_text(), EDITS[lab.name], count))
                saved = time.perf_counter()
                changed = lines.report()
                firsts.append(time.perf_counter() - saved)
                whole = lines.report()
                fulls.append(time.perf_counter() - saved)
                assert changed["watch"] == {"part": "changed", "changed": [
                    t.name for t in lab.tasks if t.function == EDITS[lab.name]]}, changed["watch"]
                assert whole["watch"]["part"] == "lab", whole["watch"]
        finally:
            process.terminate()
            process.wait()
        first, full = statistics.median(firsts), statistics.median(fulls)
        print(f"load average (1, 5, 15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}, after: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, on {os.cpu_count()} cores")
        print(f"cold dlkit check {lab.name}: median {cold:.2f} s over {args.runs} runs")
        print(f"watch mode, save -> changed task's verdict: median {first:.2f} s over {args.saves} saves, "
              f"{first / cold:.2f} of cold (goal: at most 0.2)")
        print(f"watch mode, save -> whole lab: median {full:.2f} s, {full / cold:.2f} of cold (goal: at most 0.5)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
