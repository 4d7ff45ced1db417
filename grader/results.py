"""What grading produces: check, task and lab results, and their JSON form (GRADER.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

STATUSES = ("passed", "failed", "error", "timeout", "not_implemented", "skipped")
# When a task has several kinds of trouble, its status is the first of these that occurs.
_PRECEDENCE = ("not_implemented", "timeout", "error", "failed")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    message: str
    fatal: bool = False  # the task's remaining checks are not run after this one

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class TaskResult:
    name: str
    status: str
    score: float
    max_score: float
    message: str
    checks: Sequence[CheckResult] = field(default_factory=tuple)

    @classmethod
    def score_checks(cls, name: str, points: float, checks: Sequence[CheckResult]) -> "TaskResult":
        """Partial credit by check: the share of the checks that ran and passed.

        Skipped checks (no CUDA, no reference) neither earn nor cost points.
        """
        ran = [c for c in checks if c.status != "skipped"]
        if not ran:
            return cls(name, "skipped", 0.0, points, "every check was skipped here", tuple(checks))
        passed = sum(c.status == "passed" for c in ran)
        score = round(points * passed / len(ran), 2)
        trouble = [c for c in ran if c.status != "passed"]
        if not trouble:
            return cls(name, "passed", float(points), points, "", tuple(checks))
        status = next(s for s in _PRECEDENCE if any(c.status == s for c in trouble))
        first = trouble[0]
        return cls(name, status, score, points, f"{first.name}: {first.message}", tuple(checks))

    @classmethod
    def unrun(cls, name: str, points: float, status: str, message: str) -> "TaskResult":
        return cls(name, status, 0.0, points, message, ())

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "score": self.score, "max_score": self.max_score,
                "message": self.message, "checks": [c.to_json() for c in self.checks]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TaskResult":
        checks = tuple(CheckResult(c["name"], c["status"], c["message"]) for c in data["checks"])
        return cls(data["name"], data["status"], float(data["score"]), float(data["max_score"]), data["message"], checks)


@dataclass(frozen=True)
class LabResult:
    lab: str
    submission: str
    seed: int
    tasks: Sequence[TaskResult]
    status: str = "graded"  # or why the submission could not be graded: missing_module, bad_file, import_error
    isolation: Sequence[str] = ()  # the walls the student's code ran behind ("landlock-v7", "seccomp", ...)

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tasks), 2)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tasks), 2)

    @property
    def passed(self) -> bool:
        return all(t.status in ("passed", "skipped") for t in self.tasks)

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "submission": self.submission, "score": _number(self.score),
                "max_score": _number(self.max_score), "seed": self.seed, "status": self.status,
                "isolation": list(self.isolation), "tasks": [t.to_json() for t in self.tasks]}


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x
