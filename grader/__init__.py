"""dlkit's grading engine: task declarations, the sandboxed worker, oracles, checks and reports.

Start with ``docs/ENGINE.md``; ``grader.run.engine.grade_lab`` grades one submission.
"""
