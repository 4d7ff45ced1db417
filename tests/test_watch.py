"""Watch mode (grader/run/watch.py, `dlkit check LAB --watch`): which tasks a save changed, and the command
driven as a student drives it: saves, a syntax error, Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from grader import labs
from grader.run.watch import changed_tasks, definitions

REPO = Path(__file__).resolve().parent.parent
LAB3 = (REPO / "solutions" / "lab3" / "conv.py").read_text()


def _names(tasks: Any) -> list[str]:
    return [t.name for t in tasks]


def test_changed_tasks_is_the_task_whose_function_body_changed() -> None:
    after = LAB3.replace("    reach = dilation * (kernel_size - 1)\n", "    reach = (kernel_size - 1) * dilation\n")
    assert after != LAB3
    assert _names(changed_tasks(labs.load("lab3"), LAB3, after)) == ["same_padding"]


def test_changed_tasks_ignores_comments_blank_lines_and_moves() -> None:
    after = "# a note\n\n" + LAB3.replace("    reach = dilation * (kernel_size - 1)\n",
                                          "    # the dilated kernel's reach\n    reach = dilation * (kernel_size - 1)\n")
    assert changed_tasks(labs.load("lab3"), LAB3, after) == []


def test_changed_tasks_follows_a_helper_to_every_task_that_reaches_it() -> None:
    head = "def _layer_params(shape: tuple[int, ...], layer: dict[str, Any]) -> int:\n"
    assert head in LAB3
    after = LAB3.replace(head, head + "    layer = dict(layer)\n")
    # count_params calls _layer_params; no other task reaches it
    assert _names(changed_tasks(labs.load("lab3"), LAB3, after)) == ["count_params"]


def test_changed_tasks_follows_a_changed_constant_or_import() -> None:
    lab = labs.load("lab3")
    assert "import numpy as np\n" in LAB3
    after = LAB3.replace("import numpy as np\n", "import numpy as np\nimport numpy as numpy_again\n")
    assert changed_tasks(lab, LAB3, after) == []  # a new name that no task reads
    moved = LAB3.replace("import numpy as np\n", "import numpy.linalg as np\n")
    reading = [t.name for t in lab.tasks if "np" in _reach_names(LAB3, t.function)]
    assert reading and _names(changed_tasks(lab, LAB3, moved)) == reading


def _reach_names(source: str, function: str) -> set[str]:
    from grader.run.watch import _reach

    found = definitions(source)
    assert found is not None
    return _reach(function, found)


def test_changed_tasks_is_every_task_when_a_version_does_not_parse() -> None:
    lab = labs.load("lab3")
    assert _names(changed_tasks(lab, LAB3, LAB3 + "\ndef broken(:\n")) == _names(lab.tasks)
    assert _names(changed_tasks(lab, None, LAB3)) == _names(lab.tasks)


# ----------------------------------------------------------------------------- the command


class Watching:
    """`dlkit check lab3 --watch` on a copy of the reference, read line by line."""

    def __init__(self, root: Path, fmt: str = "json"):
        shutil.copytree(REPO / "solutions" / "lab3", root / "lab3")
        self.module = root / "lab3" / "conv.py"
        env = dict(os.environ, DLKIT_PROFILE="ci")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "cli.py"), "check", "lab3", "--watch", "--submission", str(root),
             "--format", fmt, "--seed", "7"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def line(self, timeout: float = 120) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout} s") from None

    def report(self) -> dict[str, Any]:
        line = self.line()
        assert line, f"watch mode ended: {self.process.stderr.read() if self.process.stderr else ''}"
        data: dict[str, Any] = json.loads(line)
        return data

    def save(self, text: str) -> None:
        time.sleep(0.05)  # a new modification time even on a coarse clock
        self.module.write_text(text)

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        assert self.process.stderr is not None
        return self.process.returncode, self.process.stderr.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def watching(tmp_path: Path) -> Any:
    watch = Watching(tmp_path)
    yield watch
    watch.close()


def _complete(report: dict[str, Any]) -> None:
    """A report of the JSON contract (../shared/GRADER.md): its keys, and every task's."""
    assert {"lab", "submission", "score", "max_score", "seed", "tasks"} <= set(report)
    for task in report["tasks"]:
        assert {"name", "status", "score", "max_score", "message", "checks"} <= set(task)


def test_watch_grades_at_once_then_regrades_the_changed_task_first_after_a_save(watching: Watching) -> None:
    first = watching.report()
    _complete(first)
    assert first["watch"] == {"part": "lab", "changed": []} and first["score"] == first["max_score"]
    broken = LAB3.replace("    return reach // 2\n", "    return reach // 2 + 1\n")
    assert broken != LAB3
    watching.save(broken)
    changed, whole = watching.report(), watching.report()
    _complete(changed)
    _complete(whole)
    assert changed["watch"] == {"part": "changed", "changed": ["same_padding"]}
    assert [t["name"] for t in changed["tasks"]] == ["same_padding"] and changed["tasks"][0]["status"] == "failed"
    assert whole["watch"]["part"] == "lab"
    assert [t["name"] for t in whole["tasks"]] == [t.name for t in labs.load("lab3").tasks]
    statuses = {t["name"]: t["status"] for t in whole["tasks"]}
    assert statuses["same_padding"] == "failed" and statuses["conv_output_size"] == "passed"
    assert whole["seed"] == first["seed"] == 7


def test_watch_shows_a_syntax_error_and_keeps_watching(watching: Watching) -> None:
    watching.report()
    watching.save(LAB3 + "\n\ndef broken(:\n")
    report = watching.report()
    _complete(report)
    assert report["status"] == "import_error"
    assert "SyntaxError" in report["error"]  # said once, at the top of the report
    watching.save(LAB3)
    mended = watching.report()
    assert mended["status"] == "graded" and mended["score"] == mended["max_score"]


def test_watch_ends_with_status_0_and_no_traceback_on_ctrl_c(watching: Watching) -> None:
    watching.report()
    code, err = watching.interrupt()
    assert code == 0, err
    assert "Traceback" not in err and "Aborted" not in err


def test_watch_in_text_mode_clears_between_runs_and_says_what_it_watches(tmp_path: Path) -> None:
    watch = Watching(tmp_path, fmt="text")
    try:
        seen = ""
        while "watching" not in seen:
            line = watch.line()
            assert line, "watch mode ended"
            seen += line
        watch.save(LAB3.replace("    return reach // 2\n", "    return reach // 2 + 1\n"))
        later = ""
        while "watching" not in later:
            line = watch.line()
            assert line, "watch mode ended"
            later += line
        assert "the changed tasks first: same_padding" in later and "same_padding" in later
        code, err = watch.interrupt()
        assert code == 0 and "Traceback" not in err
    finally:
        watch.close()


def test_watch_refuses_options_of_a_single_report(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), "check", "lab3", "--watch", "--format", "gradescope"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--watch" in result.stderr and "--format gradescope" in result.stderr and "Traceback" not in result.stderr
