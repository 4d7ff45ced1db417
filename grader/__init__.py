"""dlkit's grading engine: task declarations, the sandboxed worker, oracles, checks and reports.

Start with ``docs/ENGINE.md``; ``grader.run.engine.grade_lab`` grades one submission.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the kit's checkout: assignments/, solutions/, grader/
