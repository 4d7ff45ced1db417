"""Stubs are derived from the solutions: same signatures and docstrings, bodies that raise."""

from __future__ import annotations

import ast

import pytest

from cli import main
from click.testing import CliRunner
from grader import labs
from grader.export.stubs import solution_path, stub_path, stub_source
from tests.conftest import REPO


def test_committed_stubs_are_exactly_what_the_solutions_generate():
    result = CliRunner().invoke(main, ["stubs", "--check"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("lab", labs.names())
def test_a_stub_keeps_every_task_signature_and_docstring_and_raises_naming_the_task(lab):
    spec = labs.load(lab)
    solution = ast.parse(solution_path(REPO, spec).read_text())
    stub = ast.parse(stub_path(REPO, spec).read_text())
    ref = {n.name: n for n in solution.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
    got = {n.name: n for n in stub.body if isinstance(n, ast.FunctionDef)}
    assert set(got) == set(ref) >= {t.function for t in spec.tasks}
    for name, node in got.items():
        assert ast.dump(node.args) == ast.dump(ref[name].args)
        assert ast.get_docstring(node) == ast.get_docstring(ref[name])
        raise_stmt = node.body[-1]
        assert isinstance(raise_stmt, ast.Raise) and f"{lab}.{name}" in ast.unparse(raise_stmt)


def test_private_helpers_and_their_code_are_removed():
    source = '''"""Doc."""
import numpy as np


def _helper(x):
    return x * 2


def task(x: int) -> int:
    """Twice x."""
    # double it
    return _helper(x)
'''
    out = stub_source(source, labs.load("lab3"))
    assert "_helper" not in out and "x * 2" not in out
    assert 'raise NotImplementedError("Task lab3.task: not implemented yet")' in out
    assert '"""Twice x."""' in out and "import numpy as np" in out


def test_a_section_left_empty_by_the_removed_helpers_loses_its_banner_in_either_banner_style():
    solution = '''"""A module."""

# ----------------------------------------------------------------------------- tasks


def add(a, b):
    """a + b."""
    return a + b


# ----------------------------------------------------------------------------- helpers


def _twice(x):
    return 2 * x


# ---------------------------------------------------------------------------
# More helpers
# ---------------------------------------------------------------------------

def _thrice(x):
    return 3 * x


# ---------------------------------------------------------------------------
# Products
# ---------------------------------------------------------------------------

# a comment that belongs to mul
def mul(a, b):
    """a * b."""
    return a * b
'''
    stub = stub_source(solution, labs.load("lab1"))
    assert "helpers" not in stub and "More helpers" not in stub and "_twice" not in stub
    assert "# ----------------------------------------------------------------------------- tasks" in stub
    assert "# Products\n" in stub and "# a comment that belongs to mul\ndef mul(a, b):" in stub
    assert 'raise NotImplementedError("Task lab1.mul: not implemented yet")' in stub
    compile(stub, "stub.py", "exec")
