"""grader/sandbox/eager.py and oracles.eager_only: PyTorch's eager path without importing its compiler,
with the same numbers as with it. Each case runs in a fresh interpreter (this one may have it loaded)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

ADAM = """
p = t.tensor([1.0, -2.0, 0.5], dtype=t.float64, requires_grad=True)
with oracles.eager_only():
    o = t.optim.Adam([p], lr=0.1)
    for g in ([0.3, -1.0, 2.0], [0.1, 0.2, -0.3]):
        p.grad = t.tensor(g, dtype=t.float64)
        o.step()
"""


def _run(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_meta_operations_and_an_optimizer_step_do_not_import_the_compiler() -> None:
    found = _run("import json, sys\nfrom grader.declare import oracles\nt = oracles.torch()\n"
                 "x = (t.zeros(2, 3, device='meta') @ t.zeros(3, 4, device='meta')).sigmoid() * 2 + 1\n" + ADAM +
                 "print(json.dumps({'dynamo': 'torch._dynamo' in sys.modules, 'shape': list(x.shape)}))")
    assert found["dynamo"] is False and found["shape"] == [2, 4]


def test_an_optimizer_stepped_without_the_compiler_gives_the_same_numbers_as_with_it() -> None:
    show = "\nprint(json.dumps({'p': p.tolist(), 'dynamo': 'torch._dynamo' in sys.modules}))"
    without = _run("import json, sys\nfrom grader.declare import oracles\nt = oracles.torch()\n" + ADAM + show)
    with_it = _run("import json, sys\nimport torch._dynamo\nfrom grader.declare import oracles\nt = oracles.torch()\n"
                   + ADAM + show)
    assert without["dynamo"] is False and with_it["dynamo"] is True
    assert without["p"] == with_it["p"]


def test_skip_compiler_import_finds_the_functions_pytorch_wraps() -> None:
    """If PyTorch stops wrapping them this way, nothing is marked: this test says so (grading still works)."""
    found = _run("import json, torch\nfrom grader.sandbox.eager import skip_compiler_import\n"
                 "print(json.dumps({'marked': skip_compiler_import()}))")
    assert isinstance(found["marked"], int) and found["marked"] > 50
