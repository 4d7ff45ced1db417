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
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np

from grader import oracles
from grader.describe import describe_call
from grader.intake import BadSubmission, LabFiles, locate, read_lab
from grader.results import CheckResult, LabResult, TaskResult
from grader.sandbox import (Launcher, Limits, Reply, Sandbox, StudentFailure, WorkerConfig, end_strays, forget,
                            started)
from grader.signatures import Signature, read_signatures
from grader.spec import Call, Check, Lab, Task, Variant
from grader.wire import TensorValue

REPO = Path(__file__).resolve().parent.parent
FATAL = ("not_implemented", "timeout", "crash", "memory", "import", "missing", "banned", "sandbox")


class CheckFailed(Exception):
    """The student's answer is wrong; the message says how."""


class StudentRaised(Exception):
    """The student's code raised on an input (shrinkable, unlike a fatal failure)."""

    def __init__(self, failure: StudentFailure, where: str, call: Call | None = None):
        super().__init__(failure.describe())
        self.failure = failure
        self.where = where
        self.call = call  # the input it raised on, for the hints of mistakes that raise


class Abort(BaseException):
    """Stop the check at once: there is nothing to learn from more inputs.

    A BaseException, so that Hypothesis does not try to shrink it.
    """

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Skip(Exception):
    """The check cannot run here (no reference solutions, no CUDA)."""


@dataclass(frozen=True)
class Budget:
    """How hard to look: examples per check, and how long a shrink may take."""

    max_examples: int = 12
    shrink_calls: int = 200
    shrink_seconds: float = 4.0

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


@dataclass
class Context:
    """What a check sees: the task, the variant, and ways to call student and reference."""

    lab: Lab
    task: Task
    variant: Variant
    sandbox: Sandbox
    reference: ModuleType | None
    signature: Signature | None
    calls: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # the warnings of the last student call ("RuntimeWarning: overflow ...")

    def prepare(self, call: Call) -> Call:
        """The call as this variant runs it: floating arrays in the variant's dtype and, in a
        PyTorch lab, every array as a tensor on the variant's device."""
        return call.with_args(tuple(self._convert(a) for a in call.args),
                              {k: self._convert(v) for k, v in call.kwargs.items()})

    def _convert(self, value: Any) -> Any:
        dtype = self.variant.dtype
        if isinstance(value, np.ndarray):
            if dtype and value.dtype.kind == "f":
                value = value.astype(dtype)
            if self.lab.kind == "torch":
                return TensorValue(value, value.dtype.name, self.variant.device)
            return value
        if isinstance(value, tuple):
            return tuple(self._convert(v) for v in value)
        if isinstance(value, list):
            return [self._convert(v) for v in value]
        if isinstance(value, dict):
            return {k: self._convert(v) for k, v in value.items()}
        return value

    def describe(self, call: Call, function: str | None = None) -> str:
        return describe_call(function or self.task.function, call, self.signature)

    def student(self, call: Call, function: str | None = None, grad: dict[str, Any] | None = None) -> Any:
        """The student's result for ``call`` (with ``grad``: ``(result, gradients)``)."""
        name = function or self.task.function
        self.calls += 1
        params = self.signature.params if self.signature and function is None else ()
        reply = self._ask(name, lambda: self.sandbox.call(name, call.args, call.kwargs, params, self.task.timeout, grad),
                          lambda step: (self.describe(call, name), call))
        illegal = [m for m in reply.modified if m not in self.task.may_modify]
        if illegal:
            raise CheckFailed(f"{name} modified its argument '{illegal[0]}' in place; return a new array instead\n"
                              f"  input: {self.describe(call, name)}")
        return (reply.value, reply.grads) if grad is not None else reply.value

    def student_chain(self, calls: Sequence[Call], links: Sequence[tuple[int, int, str, int, int]] = (),
                      describe: Callable[[int], str] | None = None) -> list[Any]:
        """The student's results for a loop of calls, run in one worker request as the student's own
        loop would run them: one result per step, fewer when a step's result lacked an item that a
        link passes on. ``links`` are ``(step, arg, source, from_step, index)``: argument ``arg`` of
        ``step`` is item ``index`` of step ``from_step``'s result (``source="result"``) or the very
        object passed as its argument ``index`` (``source="arg"``); steps count from 0.
        ``describe(step)`` says in messages what a step's input was (default: the step's call)."""
        name = self.task.function
        self.calls += len(calls)
        params = self.signature.params if self.signature else ()
        where = describe or (lambda i: f"{self.describe(calls[i])} (step {i + 1} of {len(calls)})")

        def at(step: int | None) -> tuple[str, Call]:
            i = step if step is not None and 0 <= step < len(calls) else 0
            return where(i), calls[i]

        reply = self._ask(name, lambda: self.sandbox.call(name, calls[0].args, calls[0].kwargs, params, self.task.timeout,
                                                          chain=[(c.args, c.kwargs) for c in calls], links=links), at)
        for arg, step, during in reply.modified_at:
            if arg in self.task.may_modify or not 0 <= step < len(calls):
                continue
            if during:
                raise CheckFailed(f"{name} modified its argument '{arg}' in place (at step {step + 1}); "
                                  f"return a new array instead\n  input: {where(step)}")
            raise CheckFailed(f"the '{arg}' passed to {name} at step {step + 1} was modified in place after that call "
                              "had returned, by a later step: a reference to it was kept (in a returned value?) and "
                              f"changed later; keep a copy ({arg}.copy()) instead\n  input: {where(step)}")
        return list(reply.value) if isinstance(reply.value, list) else []

    def _ask(self, name: str, send: Callable[[], Reply], at: Callable[[int | None], tuple[str, Call]]) -> Reply:
        """One worker request, with what it says about the student turned into the engine's outcomes: a
        failure to return (``at(step)`` names the input and call it happened on; step None outside a
        chain), a banned call. The warnings it raised are kept for the check's message."""
        try:
            reply = send()
        except StudentFailure as failure:
            where, call = at(failure.step)
            if failure.kind in FATAL:
                raise Abort(failure.status, _fatal_message(failure, where)) from None
            raise StudentRaised(failure, where, call) from None
        self.warnings = reply.warnings
        if reply.banned:
            raise Abort("error", f"{name} called {', '.join(reply.banned)}, which this lab bans "
                                 "(the call was refused); write it from tensor operations")
        return reply

    def expected(self, call: Call, function: str | None = None) -> Any:
        """The reference solution's result for ``call``, computed in this process."""
        if self.reference is None:
            raise Skip("needs the reference solutions (graded on submission)")
        fn: Callable[..., Any] = getattr(self.reference, function or self.task.function)
        return oracles.plain(fn(*oracles.materialize(call.args), **oracles.materialize(call.kwargs)))


def _fatal_message(failure: StudentFailure, where: str) -> str:
    if failure.kind == "not_implemented":
        return "not implemented yet (the function still raises NotImplementedError)"
    if failure.kind == "import":
        return f"the module could not be imported: {failure.describe()}"
    if failure.kind == "sandbox":
        return f"not graded: {failure.describe()} (a problem of the grading machine, not of your code)"
    return f"{failure.describe()}\n  input: {where}"


class _ShrinkBudget(BaseException):
    """Raised when shrinking has taken long enough; carries the smallest failure so far."""

    def __init__(self, error: Exception):
        self.error = error


def _run_cases(check: Check, ctx: Context, seed: int, budget: Budget) -> None:
    """Let Hypothesis drive ``check.verify`` over ``check.cases``; raise the smallest failure."""
    assert check.cases is not None
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fix_seed

    state: dict[str, Any] = {"failure": None, "calls": 0, "since": 0.0}

    def attempt(call: Call) -> None:
        if state["failure"] is not None:
            state["calls"] += 1
            if state["calls"] > budget.shrink_calls or time.monotonic() - state["since"] > budget.shrink_seconds:
                raise _ShrinkBudget(state["failure"])
        try:
            check.verify(ctx, ctx.prepare(call))
        except (CheckFailed, StudentRaised) as error:
            if state["failure"] is None:
                state["since"] = time.monotonic()
            state["failure"] = error
            raise

    run = fix_seed(seed)(settings(
        max_examples=budget.examples(check.max_examples), deadline=None, database=None,
        verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
        phases=[Phase.generate, Phase.shrink], print_blob=False,
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


def run_check(check: Check, ctx: Context, seed: int, budget: Budget) -> CheckResult:
    """One check in one variant: explicit examples first, then generated cases."""
    name = f"{check.name} ({ctx.variant.label})" if len(check.variants) > 1 else check.name
    try:
        if check.needs_reference and ctx.reference is None:
            raise Skip("needs the reference solutions (graded on submission)")
        if not oracles.available(ctx.variant.device):
            raise Skip(f"no {ctx.variant.device} device on this machine")
        for example in check.examples:
            try:
                check.verify(ctx, ctx.prepare(example))
            except CheckFailed as failed:
                raise CheckFailed(f"{example.note + ': ' if example.note else ''}{failed}") from None
        if check.cases is not None:
            _run_cases(check, ctx, seed, budget)
    except Skip as skip:
        return CheckResult(name, "skipped", str(skip))
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


def grade_task(task: Task, lab: Lab, sandbox: Sandbox, reference: ModuleType | None,
               signature: Signature | None, seed: int, budget: Budget) -> TaskResult:
    results: list[CheckResult] = []
    fatal: CheckResult | None = None
    for check in task.checks:
        for variant in check.variants:
            if fatal is not None and not oracles.available(variant.device):  # skipped here whatever the code does
                results.append(CheckResult(_label(check, variant), "skipped", f"no {variant.device} device on this machine"))
                continue
            if fatal is not None:
                results.append(CheckResult(_label(check, variant), fatal.status, "not run: " + fatal.message.split("\n")[0]))
                continue
            ctx = Context(lab, task, variant, sandbox, reference, signature)
            result = run_check(check, ctx, check_seed(seed, lab.name, task.name, check.name, variant.label), budget)
            results.append(result)
            if result.fatal:
                fatal = result
    return TaskResult.score_checks(task.name, task.points, results)


def _label(check: Check, variant: Variant) -> str:
    return f"{check.name} ({variant.label})" if len(check.variants) > 1 else check.name


def read_submission(lab: Lab, submission: Path, find_module: bool = False) -> LabFiles:
    """The lab's files from a submission folder laid out like ``assignments/`` (with ``find_module``: an
    upload, the module wherever ``grader.intake.locate`` finds it), read by ``grader.intake`` (no links,
    regular files only, within limits); raises ``BadSubmission`` with why not."""
    if find_module:
        return locate(submission, lab.name, lab.module)[1]
    return read_lab(submission, lab.name, lab.module)


def worker_config(lab: Lab) -> WorkerConfig:
    """How a worker is set up for the lab's module: what it may import and call."""
    cuda = lab.kind == "torch" and any(v.device.startswith("cuda") for t in lab.tasks for c in t.checks
                                       for v in c.variants) and oracles.available("cuda")
    return WorkerConfig(lab.module, lab.kind, lab.banned_imports, tuple(lab.banned_calls),
                        cap_address_space=lab.kind == "numpy", cuda=cuda)


def grade_lab(lab: Lab, submission: Path, *, seed: int, tasks: Sequence[str] = (), solutions: Path | None = REPO / "solutions",
              budget: Budget = PROFILES["default"], limits: Limits | None = None, launcher: Launcher | None = None,
              jobs: int = 1, find_module: bool = False) -> LabResult:
    """Grade one submission folder (laid out like ``assignments/``) on one lab.

    With ``jobs`` > 1 the tasks are shared among that many processes forked after PyTorch is
    imported, each with its own worker (with a pool of worker users, never more processes than
    users: concurrent workers run as distinct users); results do not depend on ``jobs`` (every
    check's inputs come from its own seed). Whatever the workers started is ended before this returns.
    """
    selected = [lab.task(name) for name in tasks] if tasks else list(lab.tasks)
    try:
        files = read_submission(lab, submission, find_module)
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
