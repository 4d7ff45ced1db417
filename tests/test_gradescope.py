"""Gradescope: results.json in the specification's shape, the upload laid out, and the autograder bundle."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from grader import labs
from grader.export.gradescope import collect, results, write_bundle
from grader.sandbox.intake import BadSubmission
from tests.conftest import REPO, TEST_LIMITS, grade, unprivileged_venv

LAB = "lab3"
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def assert_gradescope_shape(data: dict) -> None:
    """The keys and types of https://gradescope-autograders.readthedocs.io/en/latest/specs/ that dlkit writes."""
    json.dumps(data)
    assert isinstance(data["score"], (int, float)) and not isinstance(data["score"], bool)
    assert isinstance(data["execution_time"], int) and data["execution_time"] >= 0
    assert isinstance(data["output"], str)
    assert data["visibility"] in VISIBILITY and data["stdout_visibility"] in VISIBILITY
    assert isinstance(data["tests"], list) and data["tests"]
    for test in data["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITY
        assert (test["status"] == "passed") == (test["score"] == test["max_score"])
    assert abs(sum(t["score"] for t in data["tests"]) - data["score"]) < 1e-6


def test_results_json_has_the_specification_shape_with_one_test_per_task(submission):
    folder = submission(LAB, "def linear_params(in_features, out_features, bias=True):\n    return in_features * out_features\n")
    result = grade(LAB, folder, tasks=("conv_output_size", "linear_params"), limits=TEST_LIMITS)
    data = results(result, "Convolution and pooling", 3.4, "dlkit check lab3 --seed 1")
    assert_gradescope_shape(data)
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["conv_output_size"]["status"] == "passed" and tests["conv_output_size"]["score"] == 8
    wrong = tests["linear_params"]
    assert wrong["status"] == "failed" and wrong["score"] < wrong["max_score"] == 4
    assert "✗" in wrong["output"] and "expected" in wrong["output"]
    assert data["execution_time"] == 3 and "seed" in data["output"] and data["extra_data"]["seed"] == result.seed


def test_a_submission_without_the_module_gets_every_test_failed_and_says_why(tmp_path):
    (tmp_path / LAB).mkdir()
    data = results(grade(LAB, tmp_path, tasks=("conv_output_size", "linear_params")), "Convolution and pooling", 0.2)
    assert_gradescope_shape(data)
    assert data["score"] == 0 and {t["status"] for t in data["tests"]} == {"failed"}
    assert "missing_module" in data["output"] and "no file lab3/conv.py" in data["tests"][0]["output"]


def test_check_format_gradescope_prints_results_json_and_nothing_else(submission):
    folder = submission(LAB, "import sys\nprint('{\"score\": 100}')\nsys.stderr.write('{\"score\": 100}')\n")
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "check", LAB, "conv_output_size", "linear_params",
                           "--submission", str(folder), "--format", "gradescope", "--seed", "3", "--profile", "ci"],
                          capture_output=True, text=True, timeout=300)
    data = json.loads(proc.stdout)
    assert_gradescope_shape(data)
    assert proc.returncode == 0 and data["score"] == 12 and data["extra_data"]["seed"] == 3


def test_worker_user_that_does_not_exist_is_a_usage_error():
    result = CliRunner().invoke(main, ["check", LAB, "--worker-user", "no-such-user-dlkit"])
    assert result.exit_code == 2 and "no user 'no-such-user-dlkit'" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


@pytest.mark.parametrize("command", [["gradescope"], ["gradescope", "bundle"], ["gradescope", "collect"]])
def test_every_gradescope_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


# ----------------------------------------------------------------------------- the upload


@pytest.mark.parametrize("where", ["assignments/lab3/conv.py", "lab3/conv.py", "conv.py", "my-repo/work/conv.py"])
def test_collect_finds_the_module_wherever_the_upload_keeps_it(tmp_path, where):
    upload = tmp_path / "upload"
    (upload / where).parent.mkdir(parents=True)
    (upload / where).write_text("def linear_params(a, b, bias=True):\n    return 0\n")
    (upload / where).with_name("helpers.py").write_text("X = 1\n")
    (upload / "notes.txt").write_text("not code")
    found = collect(labs.load(LAB), upload, tmp_path / "out")
    assert found.path == upload / where
    assert sorted(p.name for p in (tmp_path / "out" / LAB).iterdir()) == ["conv.py", "helpers.py"]


def test_collect_prefers_the_assignments_layout(tmp_path):
    upload = tmp_path / "upload"
    for where in (f"assignments/{LAB}/conv.py", f"{LAB}/conv.py", "conv.py"):
        (upload / where).parent.mkdir(parents=True, exist_ok=True)
        (upload / where).write_text(f"WHERE = {where!r}\n")
    found = collect(labs.load(LAB), upload, tmp_path / "out")
    assert found.path == upload / "assignments" / LAB / "conv.py"
    assert "assignments" in (tmp_path / "out" / LAB / "conv.py").read_text()


@pytest.mark.parametrize(("link", "words"), [(f"{LAB}/conv.py", f"{LAB}/conv.py is a symbolic link"),
                                             (f"{LAB}/stolen.py", f"{LAB}/stolen.py is a symbolic link")])
def test_collect_never_follows_a_link_and_says_which_entry_it_refused(tmp_path, link, words):
    secret = tmp_path / "secret.py"
    secret.write_text("REFERENCE = 'solution'\n")
    upload = tmp_path / "upload"
    (upload / LAB).mkdir(parents=True)
    if not link.endswith("conv.py"):
        (upload / LAB / "conv.py").write_text("MINE = 1\n")
    (upload / link).symlink_to(secret)
    with pytest.raises(BadSubmission, match=words) as refused:
        collect(labs.load(LAB), upload, tmp_path / "out")
    assert refused.value.status == "bad_file"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.py"))


def test_collect_of_an_upload_without_the_module_says_so(tmp_path):
    (tmp_path / "upload").mkdir()
    with pytest.raises(BadSubmission, match="no file conv.py") as missing:
        collect(labs.load(LAB), tmp_path / "upload", tmp_path / "out")
    assert missing.value.status == "missing_module"


# ----------------------------------------------------------------------------- the bundle


def test_the_bundle_zip_holds_executable_scripts_the_kit_and_only_this_labs_reference(tmp_path):
    result = CliRunner().invoke(main, ["gradescope", "bundle", LAB, str(tmp_path / "autograder.zip"), "--seed", "5"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "autograder.zip") as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        run = archive.read("run_autograder").decode()
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "cli.py", "pyproject.toml", "README.md", "grader/run/engine.py",
            f"assignments/{LAB}/conv.py", f"solutions/{LAB}/conv.py"} <= names
    assert not any(n.startswith(("tests/", ".github/")) for n in names)
    assert {n for n in names if n.startswith("solutions/") and not n.endswith("/")} == {f"solutions/{LAB}/conv.py"}
    for script in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(modes[script]) == 0o755
    assert f"check {LAB} --submission" in run and "--format gradescope" in run and "--worker-user" in run
    assert "--find-module" in run and "student0,student1" in run and "student0 student1" in setup
    assert "--seed 5" in run and '--output "$RESULTS/results.json"' in run and 'chmod 700 "$RESULTS"' in run
    assert 'chmod -R go-rwx "$SOURCE/solutions"' in run and 'chmod -R go-rwx "$SOURCE/solutions"' in setup
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup and "useradd" in setup


@pytest.mark.parametrize("script", ["setup.sh", "run_autograder"])
def test_the_bundle_scripts_are_valid_bash(tmp_path, script):
    write_bundle(labs.load(LAB), tmp_path / "bundle")
    assert os.access(tmp_path / "bundle" / script, os.X_OK)
    subprocess.run(["bash", "-n", str(tmp_path / "bundle" / script)], check=True)


@pytest.mark.parametrize(("args", "words"), [(["busy"], "exists"), (["new.zip", "--user", "x; rm -rf /"], "not a user name"),
                                             (["new.zip", "--seed", "-1"], "Invalid value for '--seed'")])
def test_bundle_usage_errors_exit_2_with_one_line_and_write_nothing(tmp_path, args, words):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    result = CliRunner().invoke(main, ["gradescope", "bundle", LAB, str(tmp_path / args[0]), *args[1:]])
    assert result.exit_code == 2 and words in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "new.zip").exists() and os.listdir(tmp_path / "busy") == ["x"]


# ----------------------------------------------------------------------------- run_autograder, end to end


def test_run_autograder_grades_as_an_unprivileged_user_who_cannot_read_the_reference_or_the_results():
    user, venv = unprivileged_venv()
    autograder = Path(tempfile.mkdtemp(prefix="dlkit-autograder-"))
    try:
        autograder.chmod(0o755)
        write_bundle(labs.load(LAB), autograder / "source", seed=2)
        (autograder / "source" / ".venv").symlink_to(venv)
        subprocess.run(["chmod", "-R", "a+rX", str(autograder / "source")], check=True)
        module = autograder / "submission" / "assignments" / LAB / "conv.py"
        module.parent.mkdir(parents=True)
        # The reads sit in a module beside conv.py that the source gate does not read (a student can hide
        # them from any reading of the source): what refuses them is the kernel, and the files' owner.
        (module.parent / "attack.py").write_text(f'''
def read_reference():
    open("{autograder}/source/solutions/{LAB}/conv.py").read()  # refused: the reference is root's


def forge_results():
    open("{autograder}/results/results.json", "w").write('{{"score": 1000}}')  # refused: so are the results
''')
        module.write_text((REPO / "solutions" / LAB / "conv.py").read_text() + '''

def linear_params(in_features, out_features, bias=True):
    from attack import read_reference
    read_reference()
    return in_features * out_features + (out_features if bias else 0)


def same_padding(kernel_size, dilation=1):
    from attack import forge_results
    forge_results()
    return dilation * (kernel_size - 1) // 2
''')
        env = dict(os.environ, AUTOGRADER=str(autograder), DLKIT_STUDENT=user)
        proc = subprocess.run(["bash", str(autograder / "source" / "run_autograder")], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        data = json.loads((autograder / "results" / "results.json").read_text())
        assert_gradescope_shape(data)
        tests = {t["name"]: t for t in data["tests"]}
        assert "PermissionError" in tests["linear_params"]["output"] and tests["linear_params"]["score"] == 0
        assert "PermissionError" in tests["same_padding"]["output"] and tests["same_padding"]["score"] == 0
        assert tests["conv2d_forward"]["status"] == "passed" and data["extra_data"]["seed"] == 2
        assert stat.S_IMODE((autograder / "results").stat().st_mode) == 0o700
        assert stat.S_IMODE((autograder / "source" / "solutions").stat().st_mode) == 0o700
    finally:
        shutil.rmtree(autograder, ignore_errors=True)
