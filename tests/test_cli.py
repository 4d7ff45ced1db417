"""The command line, driven through click's CliRunner: help, listing, checking, exit codes."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys

import pytest
from click.testing import CliRunner

from cli import main
from tests.conftest import REPO

COMMANDS = sorted(main.commands)


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_root_help_lists_every_command():
    result = run("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    first_line = (main.commands[command].help or "").strip().splitlines()[0]
    assert "Usage:" in result.output and first_line in " ".join(result.output.split())


def test_list_shows_every_lab_with_its_points():
    result = run("list")
    assert result.exit_code == 0
    assert "lab3" in result.output and "100 points" in result.output


def test_list_of_a_lab_shows_tasks_points_and_their_one_line_contract():
    result = run("list", "lab3")
    assert result.exit_code == 0
    assert "conv2d_forward" in result.output and "15 pts" in result.output
    assert "Cross-correlation" in result.output
    assert "total" in result.output and "100 pts" in result.output


def test_list_of_a_lab_gives_each_contract_whole_not_cut_mid_sentence():
    result = run("list", "lab4")
    assert result.exit_code == 0
    (lstm,) = [line for line in result.output.splitlines() if line.split()[:1] == ["lstm"]]
    assert lstm.endswith("and out[t] = h.")  # the docstring's first paragraph wraps over two lines


def test_list_of_a_lab_aligns_its_columns_to_the_longest_task_name():
    result = run("list", "lab5")
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines()[1:] if " pts" in line]
    assert len(rows) == 8 and len({line.index(" pts") for line in rows}) == 1


def test_lab_and_task_names_are_case_insensitive():
    assert run("list", "LAB3").exit_code == 0
    result = run("check", "Lab3", "Conv_Output_Size", "--submission", str(REPO / "solutions"), "--seed", "1",
                 "--profile", "ci")
    assert result.exit_code == 0, result.output
    assert "dlkit check lab3 conv_output_size" in result.output


@pytest.mark.parametrize(("args", "words"), [
    (["check", "lab33"], "unknown lab 'lab33' (did you mean 'lab3'?)"),
    (["check", "lab3", "conv3d_forward"], "has no task 'conv3d_forward' (did you mean 'conv2d_forward'?)"),
    (["list", "lb4"], "(did you mean 'lab4'?)"),
    (["grade", str(REPO), "--lab", "lab7"], "Invalid value for '--lab': unknown lab 'lab7'; the labs are"),
])
def test_unknown_names_are_usage_errors_that_suggest_the_closest_one(args, words):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "words"), [
    (["check", "lab99"], "unknown lab 'lab99'"),
    (["list", "lab99"], "unknown lab 'lab99'"),
    (["check", "lab3", "--submission", "no/such/folder"], "no submission folder"),
    (["check", "lab3", "conv3d_forward"], "has no task 'conv3d_forward'"),
    (["check", "lab3", "--format", "yaml"], "Invalid value for '--format'"),
    (["check"], "Missing argument 'LAB'"),
    (["grade", "no/such/folder", "--lab", "lab3"], "does not exist"),
    (["frobnicate"], "No such command"),
    (["plot", "lab3"], "lab3 has nothing to plot; plots exist for: lab2"),
    (["plot", "lab2", "--optimizer", "adamw"], "no optimizer 'adamw' in lab2; the optimizers are: sgd, momentum"),
    (["plot", "lab2", "--surface", "bowl"], "Invalid value for '--surface'"),
    (["plot", "lab2", "--submission", "no/such/folder"], "no submission folder 'no/such/folder'"),
])
def test_usage_errors_exit_2_with_one_line_and_no_traceback(args, words):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0]
    assert "Traceback" not in result.output


def test_check_json_of_the_reference_is_one_object_with_full_marks():
    result = run("check", "lab3", "conv_output_size", "linear_params", "--submission", str(REPO / "solutions"),
                 "--format", "json", "--seed", "7", "--profile", "ci")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["lab"] == "lab3" and report["seed"] == 7
    assert report["score"] == report["max_score"] == 12
    task = report["tasks"][0]
    assert set(task) >= {"name", "status", "score", "max_score", "message", "checks"}
    assert set(task["checks"][0]) >= {"name", "status", "message"}


def test_check_json_gives_each_failed_check_its_parts(tmp_path):
    folder = tmp_path / "sub" / "lab3"
    shutil.copytree(REPO / "solutions" / "lab3", folder)
    with open(folder / "conv.py", "a") as module:
        module.write("\n\ndef conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):\n"
                     "    return -(-(n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride) + 1\n")
    result = run("check", "lab3", "conv_output_size", "--submission", str(tmp_path / "sub"), "--format", "json",
                 "--seed", "7", "--profile", "ci")
    assert result.exit_code == 1
    (task,) = json.loads(result.output)["tasks"]
    failed = [c for c in task["checks"] if c["status"] == "failed"]
    assert failed
    for check in failed:
        assert {"input", "expected", "received", "max_abs_error", "hint", "possible_causes"} <= set(check)
        assert check["input"].startswith("conv_output_size(") and check["expected"] != check["received"]
    matches = next(c for c in failed if c["name"].startswith("matches"))
    assert isinstance(matches["max_abs_error"], (int, float)) and matches["max_abs_error"] > 0
    assert "conv_output_size.matches_ceil_instead_floor" in {h["id"] for c in failed for h in c["hint"]}
    assert all(c["status"] != "passed" or "input" not in c for c in task["checks"])


def test_check_of_the_stubs_exits_1_and_reports_not_implemented():
    result = run("check", "lab3", "same_padding", "--submission", str(REPO / "assignments"), "--format", "json",
                 "--profile", "ci")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["score"] == 0 and report["tasks"][0]["status"] == "not_implemented"
    assert isinstance(report["seed"], int)


def test_check_text_report_names_the_seed_that_reproduces_it():
    result = run("check", "lab3", "same_padding", "--submission", str(REPO / "solutions"), "--seed", "42",
                 "--profile", "ci")
    assert result.exit_code == 0
    assert "same_padding" in result.output and "5/5" in result.output
    assert "--seed 42" in result.output


def test_the_same_seed_gives_the_same_report(tmp_path):
    folder = tmp_path / "sub" / "lab3"
    folder.mkdir(parents=True)
    source = (REPO / "solutions" / "lab3" / "conv.py").read_text()
    (folder / "conv.py").write_text(source + "\n\ndef same_padding(kernel_size, dilation=1):\n    return kernel_size // 2\n")
    reports = [run("check", "lab3", "same_padding", "--submission", str(tmp_path / "sub"), "--format", "json",
                   "--seed", "5", "--profile", "ci").output for _ in range(2)]
    assert reports[0] == reports[1]
    assert json.loads(reports[0])["tasks"][0]["status"] == "failed"


def test_grade_writes_a_row_for_every_submission(tmp_path):
    root = tmp_path / "submissions"
    (root / "alice" / "lab3").mkdir(parents=True)
    shutil.copy(REPO / "solutions" / "lab3" / "conv.py", root / "alice" / "lab3" / "conv.py")
    (root / "bob").mkdir()
    (root / "carol" / "lab3").mkdir(parents=True)
    (root / "carol" / "lab3" / "conv.py").write_text("import sys\nsys.exit(0)\n")
    feedback = tmp_path / "feedback"
    result = run("grade", str(root), "--lab", "lab3", "--feedback", str(feedback), "--jobs", "2", "--profile", "ci")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["submission"] for r in rows] == ["alice", "bob", "carol"]
    assert list(rows[0])[:4] == ["submission", "score", "max_score", "status"]
    assert (rows[0]["score"], rows[0]["status"], rows[0]["conv2d_forward"]) == ("100", "graded", "15")
    assert (rows[1]["score"], rows[1]["status"]) == ("0", "empty")
    assert (rows[2]["score"], rows[2]["status"]) == ("0", "import_error")
    assert json.loads((feedback / "alice.json").read_text())["score"] == 100

    again = run("grade", str(root), "--lab", "lab3", "--feedback", str(feedback), "--profile", "ci")
    assert again.stdout == result.stdout
    assert "3 unchanged" in again.stderr


# ----------------------------------------------------------------------------- plot


def test_plot_writes_a_png_of_the_submission_paths_and_reports_each_race(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "pictures" / "paths.png"
    result = run("plot", "lab2", "--submission", str(REPO / "solutions"), "--output", str(out), "--steps", "8",
                 "--optimizer", "adam", "--optimizer", "sgd")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out} (" in result.output
    assert result.output.count("on torch.optim's path at every step") == 4  # 2 optimizers x 2 surfaces
    assert "ill-conditioned quadratic" in result.output and "Rosenbrock" in result.output
    assert "momentum" not in result.output and "what went wrong" not in result.output
    assert "step_decay(lr0=0.1, gamma=0.5, step_size=10, t)" in result.output
    assert result.output.count("matches ") == 3 and "matches torch.optim.lr_scheduler.StepLR at every t" in result.output


def test_plot_without_schedules_draws_and_reports_the_optimizers_only(tmp_path):
    pytest.importorskip("matplotlib")
    result = run("plot", "lab2", "--submission", str(REPO / "solutions"), "-o", str(tmp_path / "p.png"), "--steps", "3",
                 "--optimizer", "sgd", "--surface", "quadratic", "--no-schedules")
    assert result.exit_code == 0, result.output
    assert "learning-rate schedules" not in result.output and "step_decay" not in result.output


def test_plot_of_a_wrong_optimizer_says_where_it_leaves_torch_and_how_to_learn_why(submission, tmp_path):
    pytest.importorskip("matplotlib")
    folder = submission("lab2", """
        def momentum(w, dw, state, lr=0.01, mu=0.9):
            v = mu * state.get("v", np.zeros_like(w)) - lr * dw
            state["v"] = v
            return w - v, state
    """)
    result = run("plot", "lab2", "--submission", str(folder), "-o", str(tmp_path / "p.png"), "--steps", "5",
                 "--optimizer", "momentum", "--surface", "quadratic")
    assert result.exit_code == 0, result.output
    assert "leaves torch.optim's path at step 1: yours (" in result.output
    assert f"what went wrong, with hints: dlkit check lab2 momentum --submission {folder}" in result.output
    assert "Rosenbrock" not in result.output


def test_plot_without_matplotlib_says_how_to_install_the_extra_and_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "p.png"
    result = CliRunner().invoke(main, ["plot", "lab2", "--submission", str(REPO / "solutions"), "-o", str(out)])
    assert result.exit_code == 2
    assert "pip install 'dlkit[plot]'" in result.output and not out.exists()


def test_plot_of_a_module_that_does_not_import_exits_1_and_writes_nothing(submission, tmp_path):
    pytest.importorskip("matplotlib")
    folder = submission("lab2", "def sgd(w, dw, state, lr=0.01):\n    return w -\n")
    out = tmp_path / "p.png"
    result = CliRunner().invoke(main, ["plot", "lab2", "--submission", str(folder), "-o", str(out)])
    assert result.exit_code == 1
    assert "did not import, so there is nothing of yours to draw" in result.output and "SyntaxError" in result.output
    assert not out.exists()


def test_grade_as_a_worker_user_keeps_the_graders_files_out_of_the_students_reach(tmp_path):
    """A submission that scores only if it cannot read a file private to the grader: as the grader's own
    user, Landlock keeps it out (where the kernel has Landlock); with --worker-user, so do file permissions."""
    from grader.sandbox.confine import landlock_abi
    from tests.conftest import unprivileged_venv

    user, _ = unprivileged_venv()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "key.txt").write_text("secret")
    root = tmp_path / "submissions"
    (root / "mallory" / "lab3").mkdir(parents=True)
    reference = (REPO / "solutions" / "lab3" / "conv.py").read_text()
    # The read sits beside conv.py, out of the source gate's reading: the kernel and the file's owner refuse it.
    (root / "mallory" / "lab3" / "attack.py").write_text(f"""
def can_read_the_key():
    try:
        open({str(private / "key.txt")!r}).read()
    except PermissionError:
        return False
    return True
""")
    (root / "mallory" / "lab3" / "conv.py").write_text(reference + """

_same_padding = same_padding


def same_padding(kernel_size, dilation=1):
    from attack import can_read_the_key
    return -1 if can_read_the_key() else _same_padding(kernel_size, dilation)
""")
    scores = {}
    for who in (None, user):
        extra = ["--worker-user", who] if who else []
        result = run("grade", str(root), "--lab", "lab3", "--feedback", str(tmp_path / f"feedback-{who}"),
                     "--jobs", "1", "--profile", "ci", *extra)
        assert result.exit_code == 0, result.output
        (row,) = csv.DictReader(io.StringIO(result.stdout))
        scores[who] = row["same_padding"]
    assert scores[None] == ("5" if landlock_abi() else "0") and scores[user] == "5"


def test_grade_refuses_a_worker_user_that_does_not_exist(tmp_path):
    (tmp_path / "subs").mkdir()
    result = CliRunner().invoke(main, ["grade", str(tmp_path / "subs"), "--lab", "lab3", "--worker-user", "no-such-dlkit"])
    assert result.exit_code == 2 and "no user 'no-such-dlkit'" in result.output
