"""dlkit's grading engine: task declarations, the sandboxed worker, oracles, checks and reports.

Start with ``docs/ENGINE.md``; ``grader.run.engine.grade_lab`` grades one submission.
"""

import contextlib
import gc
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent  # the kit's checkout: assignments/, solutions/, grader/


@contextlib.contextmanager
def no_collections() -> Iterator[None]:
    """No garbage collection inside (as it was after): while large libraries import, their hundreds of thousands
    of new objects set off collections that free nothing (a tenth of PyTorch's import). The zygote and the
    worker, which import nothing of the grader, do the same by hand."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
