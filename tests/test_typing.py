"""The grader package and the CLI type-check cleanly (mypy, from the test extra)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_grader_and_cli_type_check_cleanly():
    pytest.importorskip("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy", "grader", "cli.py", "--ignore-missing-imports",
                           "--no-error-summary", "--cache-dir", "/dev/null"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
