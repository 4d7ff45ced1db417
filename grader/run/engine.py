"""Run a lab's checks against a submission and score them.

For every task, every check runs in every variant it declares (CPU and CUDA,
float32 and float64): first its explicit examples, then the inputs Hypothesis
draws, shrunk to the smallest failing one. The student's function is only ever
called through the sandbox; the reference solution and PyTorch run here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

from grader.declare import oracles
from grader.declare.checks import NoBannedCalls
from grader.declare.compare import near_misses_pass
from grader.declare.context import GRADED_ON_SUBMISSION, Abort, CheckFailed, Context, Skip, StudentRaised
from grader.declare.signatures import Signature, read_signatures
from grader.declare.source import findings
from grader.declare.spec import Call, Check, Lab, Task, Variant
from grader.run.results import CheckResult, LabResult, TaskResult
from grader.sandbox.host import Launcher, Limits, Sandbox, WorkerConfig, end_strays, forget, started
from grader.sandbox.intake import BadSubmission, LabFiles, discover, read_lab

REPO = Path(__file__).resolve().parents[2]

@dataclass(frozen=True)
class Budget:
    """How hard to look: examples per check, and how many calls a shrink may take. (Shrinking is bounded
    by calls, never by time, so that a slow machine or launcher never changes what a report shows.)"""

    max_examples: int = 12
    shrink_calls: int = 200
    shrink_seconds: float = 4.0  # no longer read: kept so that older callers still construct a Budget

    def examples(self, declared: int | None) -> int:
        """Examples for a check: the budget's own count, or a check's declared count (written for
        the default budget) scaled to this one."""
        if declared is None:
            return self.max_examples
        return max(1, round(declared * self.max_examples / PROFILE_DEFAULT_EXAMPLES))


PROFILE_DEFAULT_EXAMPLES = 12
PROFILES = {
    "default": Budget(),
    "ci": Budget(max_examples=8, shrink_calls=80, shrink_seconds=2.0),
    "thorough": Budget(max_examples=100, shrink_calls=500, shrink_seconds=20.0),
}


def load_reference(lab: Lab, solutions: Path | None) -> ModuleType | None:
    """The reference module from ``solutions/``, imported in the grader's process, or None."""
    if solutions is None:
        return None
    path = solutions / lab.name / f"{lab.module}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"_dlkit_reference_{lab.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _ShrinkBudget(BaseException):
    """Raised when shrinking has taken enough calls; carries the smallest failure so far."""

    def __init__(self, error: Exception):
        self.error = error


def _run_cases(check: Check, ctx: Context, seed: int, budget: Budget, shrink: bool = True) -> None:
    """Let Hypothesis drive ``check.verify`` over ``check.cases``; raise the smallest failure (the first one
    found when not ``shrink``ing). What Hypothesis draws depends on the seed alone (``pin_constants``), and
    shrinking stops after ``budget.shrink_calls`` calls, never after some time."""
    assert check.cases is not None
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fix_seed

    from grader.declare.strategies import pin_constants

    pin_constants()
    state: dict[str, Any] = {"failure": None, "calls": 0}

    def attempt(call: Call) -> None:
        if state["failure"] is not None:
            state["calls"] += 1
            if state["calls"] > budget.shrink_calls:
                raise _ShrinkBudget(state["failure"])
        try:
            check.verify(ctx, ctx.prepare(call))
        except (CheckFailed, StudentRaised) as error:
            state["failure"] = error
            raise
        except Skip as skip:  # nothing to shrink: the check cannot judge this code here
            raise _ShrinkBudget(skip) from None

    run = fix_seed(seed)(settings(
        max_examples=budget.examples(check.max_examples), deadline=None, database=None,
        verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate], print_blob=False,
    )(given(check.cases)(attempt)))
    try:
        run()
    except _ShrinkBudget as stop:
        raise stop.error from None
    except BaseExceptionGroup as group:  # Hypothesis' FlakyFailure: the code gave different answers on reruns
        for error in group.exceptions:
            if isinstance(error, (CheckFailed, StudentRaised, Abort)):
                raise error from None
        raise



def fixed_inputs(check: Check) -> bool:
    """Whether a value check runs on fixed inputs only (the handout's worked examples), none drawn."""
    return not check.gate and check.cases is None and bool(check.examples)


def run_check(check: Check, ctx: Context, seed: int, budget: Budget) -> CheckResult:
    """One check in one variant: explicit examples first, then generated cases. A value check that fails
    is run again, without shrinking, on the same inputs, to judge each aspect it covers on its own
    (``dx`` right, ``db`` wrong) and to tell a near miss (right values in another dtype, or within 100
    times the tolerance) from a wrong answer."""
    result = replace(_attempt(check, ctx, seed, budget), fixed=fixed_inputs(check))
    if check.gate:
        return replace(result, gate=True)
    judged = ctx.task.judged(check)
    if result.status == "passed":
        verdicts = {a: "passed" for a in judged}
    elif result.status == "skipped":
        verdicts = {a: "pending" if result.pending else "skipped" for a in judged}
    elif result.status == "failed" and not result.fatal and judged:
        verdicts = _aspect_verdicts(check, ctx, seed, budget, judged)
        credit = _credit_line(verdicts)
        if credit:
            return replace(result, verdicts=verdicts, message=f"{result.message}\n  {credit}")
    else:
        verdicts = {a: "failed" for a in judged}
    return replace(result, verdicts=verdicts)


def _attempt(check: Check, ctx: Context, seed: int, budget: Budget) -> CheckResult:
    name = f"{check.name} ({ctx.variant.label})" if len(check.variants) > 1 else check.name
    try:
        if not oracles.available(ctx.variant.device):
            raise Skip(f"no {ctx.variant.device} device on this machine")
        if check.needs_reference and ctx.reference is None:
            raise Skip(GRADED_ON_SUBMISSION, pending=True)
        for example in check.examples:
            try:
                check.verify(ctx, ctx.prepare(example))
            except CheckFailed as failed:
                raise CheckFailed(f"{example.note + ': ' if example.note else ''}{failed}") from None
        if check.cases is not None:
            _run_cases(check, ctx, seed, budget)
    except Skip as skip:
        return CheckResult(name, "skipped", str(skip), pending=skip.pending)
    except CheckFailed as failed:
        return CheckResult(name, "failed", str(failed))
    except StudentRaised as raised:
        hints = "".join(f"\n  hint: {h}" for h in _raised_hints(ctx.task, raised))
        return CheckResult(name, "error", f"{raised.failure.describe()}\n  input: {raised.where}{hints}")
    except Abort as abort:
        return CheckResult(name, abort.status, abort.message, fatal=True)
    except Exception as bug:  # noqa: BLE001 - a bug in the grader must not look like the student's fault
        if os.environ.get("DLKIT_DEBUG"):
            raise
        return CheckResult(name, "error", f"internal grader error, please report it: {type(bug).__name__}: {bug}")
    return CheckResult(name, "passed", "")


def passes(check: Check, ctx: Context, seed: int, budget: Budget) -> bool:
    """Whether the check passes on the same inputs as its first run (no shrinking, no message)."""
    try:
        for example in check.examples:
            check.verify(ctx, ctx.prepare(example))
        if check.cases is not None:
            _run_cases(check, ctx, seed, budget, shrink=False)
    except (CheckFailed, StudentRaised, Skip, Abort):
        return False
    except Exception:  # noqa: BLE001 - a rerun that breaks proves nothing
        return False
    return True


def _aspect_verdicts(check: Check, ctx: Context, seed: int, budget: Budget, judged: Sequence[str]) -> dict[str, str]:
    """Each judged aspect of a failed check: "passed" (its parts are right on every input), "near miss"
    or "failed". A check that never looks at ``ctx.focus`` judges the result as a whole."""
    aspects = {a.name: a for a in ctx.task.shares}
    right: dict[str, bool] = {a: False for a in judged}
    if len(judged) > 1:
        for name in judged:
            ctx.focus, ctx.focus_used = aspects[name], False
            right[name] = passes(check, ctx, seed, budget)
            if not ctx.focus_used:
                right = {a: False for a in judged}
                break
    verdicts: dict[str, str] = {}
    whole: bool | None = None  # the near-miss verdict of a check that judges the result as a whole
    for name in judged:
        if right[name]:
            verdicts[name] = "passed"
            continue
        if whole is None:
            ctx.focus, ctx.focus_used = (aspects[name] if len(judged) > 1 else None), False
            with near_misses_pass():
                near = passes(check, ctx, seed, budget)
            if not ctx.focus_used:
                whole = near
        else:
            near = whole
        verdicts[name] = "near miss" if near else "failed"
    ctx.focus, ctx.focus_used = None, False
    return verdicts


def _credit_line(verdicts: dict[str, str]) -> str:
    """What a failed check still credits, in words ("" when nothing)."""
    if all(v == "failed" for v in verdicts.values()):
        return ""
    if len(verdicts) == 1:
        return ("a near miss: the values are right but for a slip (another dtype, or a small error beyond the "
                "tolerance), which keeps most of this check's credit")
    words = {"passed": "right", "near miss": "nearly right (a near miss)", "failed": "wrong"}
    return "judged part by part: " + ", ".join(f"{a} {words[v]}" for a, v in verdicts.items())


def _raised_hints(task: Task, raised: StudentRaised) -> list[str]:
    """The hints of the known mistakes that raise the error the student's code raised."""
    failure = raised.failure
    text = f"{failure.exception}: {failure.message}" if failure.exception else failure.message
    found = []
    for mistake in task.mistakes:
        try:
            if mistake.raises is not None and raised.call is not None and mistake.raises(raised.call, text):
                found.append(mistake.hint)
        except Exception:  # noqa: BLE001 - a mistake that does not apply to this input says nothing
            continue
    return found


def check_seed(seed: int, *parts: str) -> int:
    """A stable per-check seed, so one task's checks do not shift another's inputs."""
    return zlib.crc32("/".join(parts).encode(), seed) & 0xFFFFFFFF


def lab_checks(lab: Lab) -> list[Check]:
    """The checks the lab applies to every task: where it bans anything, no banned name or construct in
    the code the task runs (``Lab.banned_source``)."""
    return [NoBannedCalls(tuple(lab.banned_source))] if lab.banned_source else []


def grade_task(task: Task, lab: Lab, sandbox: Sandbox, reference: ModuleType | None,
               signature: Signature | None, seed: int, budget: Budget) -> TaskResult:
    results: list[CheckResult] = []
    fatal: CheckResult | None = None
    observed: dict[str, str] = {}
    for check in [*lab_checks(lab), *task.checks]:  # the lab's static gate first: it may void the task
        judged = task.judged(check)
        for variant in check.variants:
            label = _label(check, variant)
            if fatal is not None and not oracles.available(variant.device):  # skipped here whatever the code does
                results.append(CheckResult(label, "skipped", f"no {variant.device} device on this machine",
                                           gate=check.gate, verdicts={a: "skipped" for a in judged},
                                           fixed=fixed_inputs(check)))
                continue
            if fatal is not None:
                results.append(CheckResult(label, fatal.status, "not run: " + fatal.message.split("\n")[0],
                                           gate=check.gate, verdicts={a: "failed" for a in judged},
                                           fixed=fixed_inputs(check)))
                continue
            ctx = Context(lab, task, variant, sandbox, reference, signature, observed=observed)
            result = run_check(check, ctx, check_seed(seed, lab.name, task.name, check.name, variant.label), budget)
            results.append(result)
            if result.fatal:
                fatal = result
    # a gate failed along the way goes first: an argument modified in place is usually why values differ too
    results[:0] = [CheckResult(gate, "failed", message, gate=True) for gate, message in observed.items()]
    return TaskResult.score_checks(task.name, task.points, results, {a.name: a.share for a in task.shares},
                                   task_flags(lab, sandbox.lab_dir, task))


def task_flags(lab: Lab, lab_dir: Path, task: Task) -> tuple[str, ...]:
    """The banned names and the constructs that reach around a ban in the code the task runs, as
    "lab4/recurrent.py:12 getattr with a computed name" (for the instructor's review)."""
    where = f"{lab.name}/{lab.module}.py"
    return tuple(f"{where}:{f.line} {f.what}"
                 for f in findings(lab_dir / f"{lab.module}.py", task.function, tuple(lab.banned_source)))


def _label(check: Check, variant: Variant) -> str:
    return f"{check.name} ({variant.label})" if len(check.variants) > 1 else check.name


def read_submission(lab: Lab, submission: Path, find_module: bool = False) -> LabFiles:
    """The lab's files from a submission folder laid out like ``assignments/`` (with ``find_module``: an
    upload, the module wherever ``grader.sandbox.intake.discover`` finds it), read by ``grader.sandbox.intake`` (no links,
    regular files only, within limits); raises ``BadSubmission`` with why not."""
    if find_module:
        return discover(submission, lab.name, lab.module).files
    return read_lab(submission, lab.name, lab.module)


def worker_config(lab: Lab) -> WorkerConfig:
    """How a worker is set up for the lab's module: what it may import and call."""
    cuda = lab.kind == "torch" and any(v.device.startswith("cuda") for t in lab.tasks for c in t.checks
                                       for v in c.variants) and oracles.available("cuda")
    return WorkerConfig(lab.module, lab.kind, lab.banned_imports, tuple(lab.banned_calls),
                        cap_address_space=lab.kind == "numpy", cuda=cuda)


def grade_lab(lab: Lab, submission: Path, *, seed: int, tasks: Sequence[str] = (), solutions: Path | None = REPO / "solutions",
              budget: Budget = PROFILES["default"], limits: Limits | None = None, launcher: Launcher | None = None,
              jobs: int = 1, find_module: bool = False, files: LabFiles | None = None) -> LabResult:
    """Grade one submission folder (laid out like ``assignments/``) on one lab.

    With ``jobs`` > 1 the tasks are shared among that many processes forked after PyTorch is
    imported, each with its own worker (with a pool of worker users, never more processes than
    users: concurrent workers run as distinct users); results do not depend on ``jobs`` (every
    check's inputs come from its own seed). Whatever the workers started is ended before this returns.
    ``files``: the lab's files when the caller has read them already (a notebook upload, found by an
    export's ``discover``).
    """
    selected = [lab.task(name) for name in tasks] if tasks else list(lab.tasks)
    try:
        files = files or read_submission(lab, submission, find_module)
    except BadSubmission as bad:
        results = [TaskResult.unrun(t.name, t.points, "error", bad.reason) for t in selected]
        return LabResult(lab.name, str(submission), seed, results, status=bad.status)
    config = worker_config(lab)
    limits = limits or Limits()
    if launcher is not None and launcher.users:
        jobs = min(jobs, len(launcher.users))
    groups = _share(selected, jobs, budget)
    try:
        with Sandbox(files, config, limits, launcher) as sandbox:
            sandbox.start()  # the worker imports NumPy and the module while this process imports the oracles
            signatures = read_signatures(REPO / "assignments" / lab.name / f"{lab.module}.py")
            reference = load_reference(lab, solutions)

            def grade_group(group: Sequence[Task], box: Sandbox) -> tuple[list[TaskResult], bool, tuple[str, ...]]:
                done = [grade_task(t, lab, box, reference, signatures.get(t.function), seed, budget) for t in group]
                return done, box.import_failure is not None, box.layers

            if len(groups) > 1:
                oracles.torch()  # imported once, before the fork, so every process has it

            def grade_apart(group: Sequence[Task], slot: int) -> Callable[[], tuple[list[TaskResult], bool, tuple[str, ...]]]:
                def work() -> tuple[list[TaskResult], bool, tuple[str, ...]]:
                    with Sandbox(files, config, limits, launcher, slot=slot) as box:
                        return grade_group(group, box)
                return work

            children = [_fork(grade_apart(group, slot)) for slot, group in enumerate(groups[1:], start=1)]
            results, broken, layers = grade_group(groups[0], sandbox)
            for child in children:
                more, child_broken, _ = _join(child)
                results += more
                broken = broken or child_broken
    finally:
        end_strays()
    order = {t.name: i for i, t in enumerate(selected)}
    results.sort(key=lambda r: order[r.name])
    return LabResult(lab.name, str(submission), seed, results, status="import_error" if broken else "graded",
                     isolation=layers)


def _share(tasks: Sequence[Task], jobs: int, budget: Budget) -> list[list[Task]]:
    """Tasks in at most ``jobs`` groups of about equal cost (longest first into the lightest group)."""
    def cost(task: Task) -> int:
        return sum(len(c.variants) * (budget.examples(c.max_examples) if c.cases is not None else 1)
                   for c in task.checks)

    groups: list[list[Task]] = [[] for _ in range(max(1, min(jobs, len(tasks))))]
    loads = [0] * len(groups)
    for task in sorted(tasks, key=cost, reverse=True):
        lightest = loads.index(min(loads))
        groups[lightest].append(task)
        loads[lightest] += cost(task)
    return [g for g in groups if g] or [[]]


def _fork(work: Callable[[], tuple[list[TaskResult], bool, tuple[str, ...]]]) -> tuple[int, int]:
    """Run ``work`` in a forked child; return (pid, read end of the pipe its JSON result comes through)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: grade, report, and leave without running the parent's cleanup
        os.close(read)
        try:
            results, broken, layers = work()
            payload = json.dumps({"results": [r.to_json() for r in results], "broken": broken, "layers": layers})
        except BaseException as error:  # noqa: BLE001 - reported to the parent as a grader error
            payload = json.dumps({"error": f"{type(error).__name__}: {error}"})
        with os.fdopen(write, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write)
    return started(pid), read


def _join(child: tuple[int, int]) -> tuple[list[TaskResult], bool, tuple[str, ...]]:
    pid, read = child
    with os.fdopen(read) as stream:
        text = stream.read()
    os.waitpid(pid, 0)
    data: dict[str, Any] = json.loads(text) if text else {"error": "the grading process ended without a report"}
    forget(pid)
    if "error" in data:
        raise RuntimeError(f"a grading process failed: {data['error']}")
    return [TaskResult.from_json(r) for r in data["results"]], bool(data["broken"]), tuple(data["layers"])
