"""Where student code runs: the worker and its walls, the plain-data wire format, reading a submission.

``worker.py``, ``zygote.py``, ``wire.py`` and ``confine.py`` are loaded by path inside the confined worker
(standard library only); ``host.py`` is the grader's side of a worker process; ``intake.py`` reads a
submission's files. Nothing here imports the rest of the grader.
"""
