"""The student release: everything a student needs, no reference code, and CI that publishes the score."""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import main
from grader import labs
from grader.export.release import (WORKFLOW, ReleaseError, body_lines, find_leaks, find_working_helpers, reference_lines,
                            registry_source, student_readme, write_release)
from grader.report.summary import GRADED_ON_SUBMISSION
from tests.conftest import REPO

LAB = "lab3"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "student-repo"
    write_release(out, [labs.load(LAB)])
    return out


def _steps(release: Path) -> dict[str, dict]:
    flow = yaml.safe_load((release / WORKFLOW).read_text())
    (job,) = flow["jobs"].values()
    return {step.get("name", step.get("uses")): step for step in job["steps"]}


def _run_step(release: Path, script: str, summary: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A workflow step as the runner runs it (bash -eo pipefail), with `dlkit` and `python` being the
    release's own CLI and this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, target in (("dlkit", f'"{sys.executable}" "{release / "cli.py"}"'), ("python", f'"{sys.executable}"')):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", GITHUB_STEP_SUMMARY=str(summary), DLKIT_PROFILE="ci")
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=release, env=env,
                          capture_output=True, text=True, timeout=600)


# ----------------------------------------------------------------------------- what is in it


def test_the_release_holds_stubs_handouts_grader_cli_packaging_readme_and_workflow(release):
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert {"cli.py", "pyproject.toml", "README.md", ".gitignore", WORKFLOW.as_posix(),
            f"assignments/{LAB}/README.md", f"assignments/{LAB}/conv.py",
            "grader/run/engine.py", "grader/sandbox/worker.py", "grader/report/summary.py", f"grader/labs/{LAB}.py"} <= files
    tops = {f.split("/")[0] for f in files}
    assert not tops & {"solutions", "tests", "docs", "scripts", "feedback"}
    assert not any("__pycache__" in f for f in files)


def test_the_release_has_no_line_of_any_reference_function_body(release):
    reference = reference_lines(REPO / "solutions")
    assert len(reference) > 50  # the detector sees the reference's code, not just a few lines
    assert find_leaks(release, reference) == []


@pytest.mark.parametrize("lab", labs.names())
def test_each_registered_lab_can_be_released_without_leaking_reference_code(tmp_path, lab):
    """A lab whose declaration or handout repeats a line of its reference solution cannot be released."""
    problem = ""
    try:
        write_release(tmp_path / "out", [labs.load(lab)])
    except ReleaseError as error:
        problem = str(error)
    assert not problem, problem


def test_the_leak_detector_finds_a_reference_line_planted_anywhere_in_a_release(release, tmp_path):
    copy = shutil.copytree(release, tmp_path / "copy")
    solution = (REPO / "solutions" / LAB / "conv.py").read_text()
    planted = sorted(body_lines(solution))[0]
    with open(copy / "grader" / "declare" / "strategies.py", "a") as f:
        f.write(f"\n\n    {planted}   \n")
    leaks = find_leaks(copy, reference_lines(REPO / "solutions"))
    assert [(leak.path.as_posix(), leak.text) for leak in leaks] == [("grader/declare/strategies.py", planted)]


def test_short_idioms_are_not_counted_as_reference_code_but_formulas_are():
    source = ('def f(x, w, b):\n    """Doc: out = x @ w + b."""\n    # a comment with many words in it here\n'
              '    out = x @ w + b\n    return out\n')
    assert body_lines(source) == {"out = x @ w + b"}


def test_a_release_that_would_leak_is_refused_and_nothing_is_written(tmp_path):
    fake = tmp_path / "kit"
    fake.mkdir()
    for name in ("cli.py", "pyproject.toml"):
        shutil.copyfile(REPO / name, fake / name)
    shutil.copytree(REPO / "grader", fake / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "assignments" / LAB, fake / "assignments" / LAB)
    shutil.copytree(REPO / "solutions" / LAB, fake / "solutions" / LAB, ignore=shutil.ignore_patterns("__pycache__"))
    planted = sorted(body_lines((fake / "solutions" / LAB / "conv.py").read_text()))[-1]
    with open(fake / "assignments" / LAB / "README.md", "a") as f:
        f.write(f"\n```python\n{planted}\n```\n")
    with pytest.raises(ReleaseError, match=f"assignments/{LAB}/README.md"):
        write_release(tmp_path / "out", [labs.load(LAB)], repo=fake)
    assert not (tmp_path / "out").exists()


def test_the_registry_of_the_release_lists_only_the_released_labs(release):
    assert sorted(p.name for p in (release / "grader" / "labs").glob("*.py")) == ["__init__.py", f"{LAB}.py"]
    source = (REPO / "grader" / "labs" / "__init__.py").read_text()
    cut = registry_source(source, [labs.load(LAB)])
    namespace: dict[str, object] = {}
    exec(compile(cut, "registry", "exec"), namespace)  # noqa: S102 - our own registry module
    assert namespace["MODULES"] == {LAB: labs.MODULES[LAB]}


def test_the_student_readme_explains_setup_checking_and_checks_graded_on_submission(release):
    readme = (release / "README.md").read_text()
    for words in ("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu", "pip install -e .",
                  f"dlkit check {LAB}", GRADED_ON_SUBMISSION, f"assignments/{LAB}/conv.py", "Actions"):
        assert words in readme
    assert "solutions/" not in readme


def test_the_student_readme_tells_how_to_draw_only_when_a_lab_with_a_plot_is_released():
    with_plot = student_readme([labs.load("lab2"), labs.load("lab3")])
    assert "dlkit plot lab2" in with_plot and "pip install -e '.[plot]'" in with_plot
    without = student_readme([labs.load("lab3")])
    assert "dlkit plot" not in without and "[plot]" not in without


def test_the_release_draws_with_torch_alone_and_the_students_stubs(tmp_path):
    """No reference solutions in a release: the plot's reference is torch.optim."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "release"
    write_release(out, [labs.load("lab2")])
    proc = subprocess.run([sys.executable, str(out / "cli.py"), "plot", "lab2", "--steps", "3", "-o", "p.png"],
                          cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("not implemented yet") == 14 + 3 and (out / "p.png").is_file()  # 7 optimizers x 2, 3 schedules
    assert "torch.optim's paths only" in proc.stdout


# ----------------------------------------------------------------------------- it grades without the reference


def test_the_release_grades_on_its_own_and_shows_reference_checks_as_graded_on_submission(release):
    proc = subprocess.run([sys.executable, str(release / "cli.py"), "check", LAB, "--submission", str(REPO / "solutions"),
                           "--format", "json", "--seed", "1", "--profile", "ci"],
                          cwd=release, capture_output=True, text=True, timeout=600)
    report = json.loads(proc.stdout)
    # the reference checks' points are pending here, not shared among the other checks
    assert proc.returncode == 0 and 0 < report["score"] < report["max_score"] == 100
    assert report["score"] + report["pending"] == 100
    skipped = [c for t in report["tasks"] for c in t["checks"] if c["message"] == GRADED_ON_SUBMISSION]
    spec = labs.load(LAB)
    assert len(skipped) == sum(len(c.variants) for t in spec.tasks for c in t.checks if c.needs_reference) > 0
    assert all(c["status"] == "skipped" and c["pending"] > 0 for c in skipped)
    text = subprocess.run([sys.executable, str(release / "cli.py"), "check", LAB, "--submission", str(REPO / "solutions"),
                           "--seed", "1", "--profile", "ci"], cwd=release, capture_output=True, text=True, timeout=600)
    assert f"score: {report['score']:g}/100 here, up to {report['pending']:g} more from checks graded on submission" \
        in text.stdout


def test_the_release_leaves_out_the_withheld_mistake_producers_and_their_hints_wait_for_submission(tmp_path):
    out = tmp_path / "release"
    write_release(out, [labs.load("lab4")])
    assert not (out / "grader" / "labs" / "lab4_withheld.py").exists()
    assert (REPO / "grader" / "labs" / "lab4_withheld.py").is_file()
    module = out / "assignments" / "lab4" / "recurrent.py"
    module.write_text((REPO / "solutions" / "lab4" / "recurrent.py").read_text() + """

def rnn_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    return torch.sigmoid(_affine(x, W_ih, b_ih) + _affine(h, W_hh, b_hh))
""")
    proc = subprocess.run([sys.executable, str(out / "cli.py"), "check", "lab4", "rnn_cell", "--format", "json",
                           "--seed", "3", "--profile", "ci"], cwd=out, capture_output=True, text=True, timeout=600)
    (task,) = json.loads(proc.stdout)["tasks"]
    assert task["status"] == "failed" and "recognised only when it is graded on submission" in task["message"]
    assert "sigmoid where tanh belongs" not in task["message"]


# ----------------------------------------------------------------------------- no working helper ships


def _kit_copy(tmp_path: Path) -> Path:
    fake = tmp_path / "kit"
    fake.mkdir()
    for name in ("cli.py", "pyproject.toml"):
        shutil.copyfile(REPO / name, fake / name)
    shutil.copytree(REPO / "grader", fake / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "assignments" / LAB, fake / "assignments" / LAB)
    shutil.copytree(REPO / "solutions" / LAB, fake / "solutions" / LAB, ignore=shutil.ignore_patterns("__pycache__"))
    return fake


def test_the_real_release_ships_no_function_that_passes_a_task(release):
    assert find_working_helpers(release, [labs.load(LAB)]) == []


def test_a_release_whose_grader_holds_a_working_helper_is_refused_and_nothing_is_written(tmp_path):
    fake = _kit_copy(tmp_path)
    with open(fake / "grader" / "labs" / f"{LAB}.py", "a") as f:
        f.write('''

def _weights_of_a_dense_layer(inputs, outputs, biased=True):
    """Planted: a working linear_params."""
    return inputs * outputs + (outputs if biased else 0)


def _dense_layer_by_torch(inputs, outputs, biased=True):
    """Planted too, but it computes with PyTorch, which a NumPy lab's worker cannot import."""
    return sum(p.numel() for p in oracles.torch().nn.Linear(inputs, outputs, biased, device="meta").parameters())
''')
    with pytest.raises(ReleaseError) as refused:
        write_release(tmp_path / "out", [labs.load(LAB)], repo=fake)
    assert "grader/labs/lab3.py: _weights_of_a_dense_layer as linear_params" in str(refused.value)
    assert "_dense_layer_by_torch" not in str(refused.value)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- the workflow


def test_the_workflow_is_valid_yaml_that_runs_the_checks_and_publishes_the_score(release):
    flow = yaml.safe_load((release / WORKFLOW).read_text())
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers
    steps = _steps(release)
    uses = [step["uses"] for step in steps.values() if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", u) for u in uses)  # pinned by commit
    assert "cache" not in steps[uses[1]].get("with", {})  # setup-python saves its cache only on success
    assert steps["Save the pip cache"]["if"].startswith("always()")
    install = steps["Install PyTorch (CPU) and dlkit"]["run"]
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install and "pip install -e ." in install
    checks = steps["Run the checks"]["run"]
    assert 'for lab in $(python -c "from grader import labs; print(*labs.names())"); do' in checks
    assert 'dlkit check "$lab" --format json >' in checks
    assert "-u GITHUB_STEP_SUMMARY" in checks and "-u GITHUB_ENV" in checks and "-u GITHUB_OUTPUT" in checks
    publish = steps["Publish the score"]["run"]
    assert "python -m grader.report.summary" in publish and '>> "$GITHUB_STEP_SUMMARY"' in publish
    assert steps["Publish the score"]["if"] == "always()" and "Report the points to GitHub Classroom" not in steps


def test_the_classroom_workflow_names_its_job_for_classroom_and_reports_the_points(tmp_path):
    out = tmp_path / "classroom"
    write_release(out, [labs.load(LAB)], classroom=True)
    flow = yaml.safe_load((out / WORKFLOW).read_text())
    (job,) = flow["jobs"].values()
    assert job["name"] == "Autograding Tests" and flow["permissions"]["checks"] == "write"
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    assert "--classroom dlkit-classroom.json" in steps["Publish the score"]["run"]
    assert "--input dlkit-classroom.json" in steps["Report the points to GitHub Classroom"]["run"]


def test_the_workflow_steps_grade_the_stubs_and_write_the_score_table(release, tmp_path):
    work = shutil.copytree(release, tmp_path / "repo")
    summary = tmp_path / "summary.md"
    steps = _steps(work)
    ran = _run_step(work, steps["Run the checks"]["run"], summary, tmp_path)
    assert ran.returncode == 0, ran.stderr
    report = json.loads((work / "dlkit-reports" / f"{LAB}.json").read_text())
    assert report["score"] == 0 and {t["status"] for t in report["tasks"]} == {"not_implemented"}
    published = _run_step(work, steps["Publish the score"]["run"], summary, tmp_path)
    assert published.returncode == 0  # a failing task is a score: the job stays green
    assert "| lab3 | 0/100 | 0/12 |" in summary.read_text()


def test_nothing_the_students_code_prints_forges_the_score_or_injects_workflow_commands(release, tmp_path):
    work = shutil.copytree(release, tmp_path / "repo")
    hostile = '''
import os, sys
print("::error::forged by the student")
print("| lab3 | 100/100 | 12/12 | 0 |")
sys.stderr.write("::set-output name=score::100\\n")
for name in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_ENV"):
    if os.environ.get(name):
        open(os.environ[name], "a").write("| lab3 | 100/100 | forged |\\nscore=100\\n")


def linear_params(in_features, out_features, bias=True):
    print("::add-mask::secret")
    raise ValueError("wrong\\n::error::injected\\n| lab3 | 100/100 | 12/12 | 0 |\\n## dlkit: your score\\n<img src=x>")
'''
    module = work / "assignments" / LAB / "conv.py"
    module.write_text((REPO / "solutions" / LAB / "conv.py").read_text() + hostile)
    summary = tmp_path / "summary.md"
    steps = _steps(work)
    ran = _run_step(work, steps["Run the checks"]["run"], summary, tmp_path)
    published = _run_step(work, steps["Publish the score"]["run"], summary, tmp_path)
    log = ran.stdout + ran.stderr + published.stdout + published.stderr
    assert not any(line.lstrip().startswith("::") for line in log.splitlines())
    report = json.loads((work / "dlkit-reports" / f"{LAB}.json").read_text())
    # the module's top-level code opens files: a construct banned in every task, flagged for the instructor
    assert report["score"] == 0 and any(flag.endswith("open() of a file") for flag in report["flags"])
    text = summary.read_text()
    assert "forged" not in text and "score=100" not in text
    markdown = [line for line in _outside_code(text)]
    assert [line for line in markdown if line.startswith("| lab3 |")] == [
        f"| lab3 | {report['score']:g}/100 | {sum(t['status'] == 'passed' for t in report['tasks'])}/12 | {report['seed']} |"]
    assert not any("100/100" in line or "<img" in line for line in markdown)
    assert published.returncode == 0


def test_the_checks_step_fails_only_when_grading_itself_breaks(release, tmp_path):
    work = shutil.copytree(release, tmp_path / "repo")
    shutil.rmtree(work / "assignments" / LAB)  # dlkit check exits 2: no submission folder for the lab
    (work / "assignments").mkdir(exist_ok=True)
    steps = _steps(work)
    ran = _run_step(work, steps["Run the checks"]["run"].replace("dlkit check \"$lab\"",
                                                                 "dlkit check \"$lab\" --submission nowhere"),
                    tmp_path / "summary.md", tmp_path)
    assert ran.returncode == 1 and f"dlkit check {LAB} could not grade (exit status 2)" in ran.stderr


def _outside_code(text: str) -> list[str]:
    from tests.test_summary import markdown_outside_code

    return markdown_outside_code(text)


# ----------------------------------------------------------------------------- the command


def test_dlkit_release_writes_the_release_and_says_where(tmp_path):
    result = CliRunner().invoke(main, ["release", str(tmp_path / "out"), "--lab", LAB])
    assert result.exit_code == 0, result.output
    assert f"student release of {LAB}" in result.output and (tmp_path / "out" / "README.md").is_file()


def test_dlkit_release_may_write_into_a_clone_that_holds_only_git(tmp_path):
    (tmp_path / "clone" / ".git").mkdir(parents=True)
    result = CliRunner().invoke(main, ["release", str(tmp_path / "clone"), "--lab", LAB])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "clone" / ".git").is_dir() and (tmp_path / "clone" / "cli.py").is_file()


@pytest.mark.parametrize(("target", "words"), [("nonempty", "is not empty"), ("kit", "holds the kit itself"),
                                               ("lab", "unknown lab 'lab99'")])
def test_dlkit_release_usage_errors_exit_2_with_one_line(tmp_path, target, words):
    (tmp_path / "nonempty").mkdir()
    (tmp_path / "nonempty" / "notes.txt").write_text("mine")
    folder = {"nonempty": tmp_path / "nonempty", "kit": REPO, "lab": tmp_path / "new"}[target]
    args = ["release", str(folder), "--lab", "lab99" if target == "lab" else LAB]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.output
    assert (tmp_path / "nonempty" / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- local and official agree


def test_dlkit_check_in_the_release_and_the_official_run_agree_check_by_check(release, tmp_path):
    """Same code, same seed: every check both can run gives the same JSON (status, message, points), and the
    scores differ by exactly what the checks graded on submission earn, never more than the pending points."""
    from grader.run.engine import PROFILES, grade_lab
    from tests.test_determinism import partly_correct

    submission = partly_correct(tmp_path / "submission")
    official = grade_lab(labs.load(LAB), submission, seed=7, budget=PROFILES["ci"]).to_json()
    proc = subprocess.run([sys.executable, str(release / "cli.py"), "check", LAB, "--submission", str(submission),
                           "--format", "json", "--seed", "7", "--profile", "ci"],
                          cwd=release, capture_output=True, text=True, timeout=600)
    local = json.loads(proc.stdout)
    assert proc.returncode == 1 and official["pending"] == 0 < local["pending"]
    earned_on_submission = 0.0
    for here, there in zip(local["tasks"], official["tasks"]):
        checks = {c["name"]: c for c in there["checks"]}
        assert [c["name"] for c in here["checks"]] == list(checks)
        for check in here["checks"]:
            if check.get("pending"):
                earned_on_submission += checks[check["name"]]["points"]
                assert checks[check["name"]]["points"] <= check["pending"]
            elif check["status"] != "skipped":
                assert check == checks[check["name"]], (here["name"], check["name"])
        if all(checks[c["name"]]["status"] == "passed" for c in here["checks"] if c.get("pending")):
            assert there["score"] == pytest.approx(here["score"] + here["pending"], abs=0.011), here["name"]
    assert official["score"] == pytest.approx(local["score"] + earned_on_submission, abs=0.05)
    assert official["score"] < local["score"] + local["pending"]  # the wrong tasks fail their reference checks too
