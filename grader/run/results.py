"""What grading produces: check, task and lab results, their scores and their JSON form (GRADER.md).

The points policy (docs/ENGINE.md, "Points policy"):

- A task's points are shared among its aspects (``grader.declare.spec.Aspect``: ``dx``, ``dW``, ``db``; the
  values and the gradients), and an aspect's share is earned by the value checks that judge it, in
  proportion to the ones that pass. A check judges each aspect apart: a wrong ``db`` leaves ``dx``
  and ``dW`` their share.
- A near miss (right values in another dtype, or values within 100 times the tolerance) earns a
  check ``NEAR_MISS`` of its credit for that aspect, instead of nothing.
- Gates (shapes, devices, raising on invalid input, arguments left unchanged, no banned call) earn
  nothing: each one that fails multiplies the task's score by ``GATE``.
- A check skipped for want of a device costs nothing (its aspect's share goes to the checks that
  ran); a check pending for want of the reference solutions keeps its weight: locally it earns
  nothing yet, and the report says how many points it may still bring ("pending").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping, Sequence, get_args

from grader.declare.context import Hint, Parts, Status

STATUSES: tuple[Status, ...] = get_args(Status)
# A submission's: graded, or why it could not be (the batch adds its own: empty, timeout, grader_crash).
Graded = Literal["graded", "import_error", "missing_module", "bad_file"]
# When a task has several kinds of trouble, its status is the first of these that occurs.
_PRECEDENCE: tuple[Status, ...] = ("not_implemented", "timeout", "error", "failed")
NEAR_MISS = 0.75  # the credit of a near miss
# The message of a task stopped by what stops every task alike (``LabResult.error``), said once at the top.
SEE_ABOVE = "not run: see the problem with the whole module at the top of the report"
GATE = 0.75  # each failed gate multiplies the task's score by this


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    message: str
    fatal: bool = False  # the task's remaining checks are not run after this one
    gate: bool = False  # earns nothing; costs points when it fails
    # aspect -> its verdict (value checks): passed, near miss, failed, pending or skipped
    verdicts: Mapping[str, str] = field(default_factory=dict)
    pending: bool = False  # skipped here: it needs what only the graded run has (the reference solutions)
    points: float = 0.0  # what it earned (set by TaskResult.score_checks)
    pending_points: float = 0.0  # what it may still earn where it can run
    # Its inputs are fixed and public (the handout's worked examples): a table of their answers passes it,
    # so it earns only alongside the checks whose inputs are drawn from the seed (see _value_fractions).
    fixed: bool = False
    # a failure as data (grader.declare.context.Parts: input, expected, received, max_abs_error, hints, possible causes)
    parts: Parts | None = None

    @property
    def ran(self) -> bool:
        return self.status != "skipped"

    @property
    def failed_gate(self) -> bool:
        """A gate that ran and did not pass (a gate left unrun after a fatal failure is not counted)."""
        return self.gate and self.status not in ("passed", "skipped") and not self.message.startswith("not run:")

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "status": self.status, "message": self.message}
        if self.gate:
            found["gate"] = True
        else:
            found["points"] = _number(round(self.points, 2))
        if len(self.verdicts) > 1:
            found["aspects"] = dict(self.verdicts)
        if self.pending:
            found["pending"] = _number(round(self.pending_points, 2))
        if self.fixed:
            found["fixed"] = True
        if self.status not in ("passed", "skipped"):
            found.update(parts_to_json(self.parts))
        return found

    @property
    def mistakes(self) -> list[str]:
        """The ids of the known mistakes this check's failure confirmed."""
        return [h.id for h in self.parts.hints] if self.parts is not None else []

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CheckResult":
        return cls(str(data["name"]), status(data["status"]), str(data["message"]), gate=bool(data.get("gate", False)),
                   verdicts=dict(data.get("aspects", {})), pending="pending" in data,
                   points=float(data.get("points", 0.0)), pending_points=float(data.get("pending", 0.0)),
                   fixed=bool(data.get("fixed", False)), parts=parts_from_json(data) if "input" in data else None)


def parts_to_json(parts: Parts | None) -> dict[str, Any]:
    """A failure's parts as the JSON report writes them (GRADER.md); empty ones for a check that did not run."""
    parts = parts or Parts()
    return {"input": parts.input, "expected": parts.expected, "received": parts.received,
            "max_abs_error": parts.max_abs_error,
            "hint": [{"id": h.id, "text": h.text} for h in parts.hints],
            "possible_causes": [{"id": h.id, "text": h.text} for h in parts.possible_causes]}


def parts_from_json(data: Mapping[str, Any]) -> Parts:
    return Parts(str(data["input"]), data.get("expected"), data.get("received"), data.get("max_abs_error"),
                 tuple(Hint(h["id"], h["text"]) for h in data.get("hint", [])),
                 tuple(Hint(h["id"], h["text"]) for h in data.get("possible_causes", [])))


@dataclass(frozen=True)
class TaskResult:
    name: str
    status: Status
    score: float
    max_score: float
    message: str
    checks: Sequence[CheckResult] = field(default_factory=tuple)
    pending: float = 0.0  # points that checks graded on submission may still add
    flags: Sequence[str] = ()  # constructs in the code that an instructor should look at

    @classmethod
    def score_checks(cls, name: str, points: float, checks: Sequence[CheckResult],
                     shares: Mapping[str, float], flags: Sequence[str] = ()) -> "TaskResult":
        """Score a task's checks by the points policy (module docstring). ``shares``: the task's aspects
        and their shares of the points (as ``grader.declare.spec.Task.shares`` gives them)."""
        if not [c for c in checks if c.ran] and not any(c.pending for c in checks):
            return cls(name, "skipped", 0.0, points, "every check was skipped here", tuple(checks), flags=tuple(flags))
        earned, possible, weights = _value_fractions(checks, shares)
        factor = GATE ** sum(c.failed_gate for c in checks)
        scored = tuple(replace(c, points=points * factor * weights.get(i, (0.0, 0.0))[0],
                               pending_points=points * factor * weights.get(i, (0.0, 0.0))[1])
                       for i, c in enumerate(checks))
        pending = round(points * factor * (possible - earned), 2)
        trouble = [c for c in checks if c.ran and c.status != "passed"]
        if not trouble and not factor < 1:
            score = float(points) if not pending and earned == 1 else round(points * earned, 2)
            return cls(name, "passed", score, points, "", scored, pending, tuple(flags))
        worst = next(s for s in _PRECEDENCE if any(c.status == s for c in trouble))
        first = trouble[0]
        return cls(name, worst, round(points * factor * earned, 2), points, f"{first.name}: {first.message}", scored,
                   pending, tuple(flags))

    @classmethod
    def unrun(cls, name: str, points: float, status: Status, message: str) -> "TaskResult":
        return cls(name, status, 0.0, points, message, ())

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "status": self.status, "score": self.score,
                                 "max_score": self.max_score, "message": self.message,
                                 "checks": [c.to_json() for c in self.checks], "pending": _number(self.pending)}
        if self.flags:
            found["flags"] = list(self.flags)
        return found

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TaskResult":
        checks = tuple(CheckResult.from_json(c) for c in data["checks"])
        return cls(data["name"], status(data["status"]), float(data["score"]), float(data["max_score"]), data["message"], checks,
                   float(data.get("pending", 0.0)), tuple(str(f) for f in data.get("flags", [])))


def _value_fractions(checks: Sequence[CheckResult], shares: Mapping[str, float]
                     ) -> tuple[float, float, dict[int, tuple[float, float]]]:
    """The fraction of the task's value earned here, the fraction it would be with every pending check
    passing, and each check's (earned, pending) fraction. An aspect that no check judged here (every
    one skipped for want of a device) gives its share to the others. Fixed, public inputs (the handout's
    worked examples) earn nothing in an aspect where every check on drawn inputs failed: a table of the
    handout's answers is not the computation."""
    counted = {a: [i for i, c in enumerate(checks) if c.verdicts.get(a, "skipped") != "skipped"] for a in shares}
    present = {a: s for a, s in shares.items() if counted[a]}
    total = sum(present.values())
    weights: dict[int, tuple[float, float]] = {}
    if not present:  # every value check skipped here for want of a device (none at all: nothing to earn)
        everything = 1.0 if any(c.verdicts for c in checks) else 0.0
        return everything, everything, weights
    earned = possible = 0.0
    for aspect, share in present.items():
        each = share / total / len(counted[aspect])
        drawn = [checks[i].verdicts[aspect] for i in counted[aspect] if not checks[i].fixed]
        table_only = bool(drawn) and all(verdict == "failed" for verdict in drawn)
        for i in counted[aspect]:
            verdict = checks[i].verdicts[aspect]
            credit = {"passed": 1.0, "near miss": NEAR_MISS}.get(verdict, 0.0)
            if table_only and checks[i].fixed:
                credit = 0.0
            maybe = 1.0 if verdict == "pending" else 0.0
            earned += each * credit
            possible += each * (credit + maybe)
            got, pending = weights.get(i, (0.0, 0.0))
            weights[i] = (got + each * credit, pending + each * maybe)
    return earned, possible, weights


@dataclass(frozen=True)
class LabResult:
    lab: str
    submission: str
    seed: int
    tasks: Sequence[TaskResult]
    status: Graded = "graded"
    isolation: Sequence[str] = ()  # the walls the student's code ran behind ("landlock-v7", "seccomp", ...)
    token: str | None = None  # an official run's replay token (grader.seeds): students see it, not the seed
    error: str = ""  # what stopped every task alike (a module that fails to import, a banned import), said once

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tasks), 2)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tasks), 2)

    @property
    def pending(self) -> float:
        """Points that checks graded on submission may still add to ``score``."""
        return round(sum(t.pending for t in self.tasks), 2)

    @property
    def flags(self) -> list[str]:
        """Every construct of the submission an instructor should look at (banned or reaching around a ban),
        as "lab4/recurrent.py:12 getattr with a computed name", once each."""
        return list(dict.fromkeys(f for t in self.tasks for f in t.flags))

    @property
    def passed(self) -> bool:
        return all(t.status in ("passed", "skipped") for t in self.tasks)

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "submission": self.submission, "score": _number(self.score),
                "max_score": _number(self.max_score), "pending": _number(self.pending), "seed": self.seed,
                "status": self.status, "flags": self.flags, "isolation": list(self.isolation),
                **({"token": self.token} if self.token else {}), **({"error": self.error} if self.error else {}),
                "tasks": [t.to_json() for t in self.tasks]}


def status(value: Any) -> Status:
    """A status read back from JSON (a report, the feedback folder): one of STATUSES, or ValueError."""
    if value not in STATUSES:
        raise ValueError(f"not a status: {value!r}")
    return value  # type: ignore[no-any-return]


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x
