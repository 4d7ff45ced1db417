"""Run a lab's checks against a submission and score them.

For every task, every check runs in every variant it declares (CPU and CUDA,
float32 and float64): first its explicit examples, then the inputs Hypothesis
draws, shrunk to the smallest failing one. The student's function is only ever
called through the sandbox; the reference solution and PyTorch run here.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import pickle
import sys
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np

from grader.declare import oracles
from grader.declare.checks import NoBannedCalls
from grader.declare.compare import near_misses_pass
from grader.declare.context import (GRADED_ON_SUBMISSION, Abort, CheckFailed, Context, Hint, Parts, Skip, StudentRaised,
                                    hint_id, printed_lines)
from grader.declare.describe import describe_value
from grader.declare.signatures import Signature, read_signatures
from grader.declare.source import findings
from grader.declare.spec import Call, Check, Lab, Task, Variant
from grader.run.results import SEE_ABOVE, CheckResult, LabResult, TaskResult
from grader.sandbox.host import Launcher, Limits, Sandbox, WorkerConfig, ZygoteLauncher, end_strays, forget, started
from grader.sandbox.intake import BadSubmission, LabFiles, discover, read_lab
from grader.sandbox.wire import TensorValue

from grader import REPO

@dataclass(frozen=True)
class Budget:
    """How hard to look: examples per check, and how many calls a shrink may take. (Shrinking is bounded
    by calls, never by time, so that a slow machine or launcher never changes what a report shows.)"""

    max_examples: int = 12
    shrink_calls: int = 200

    def examples(self, declared: int | None) -> int:
        """Examples for a check: the budget's own count, or a check's declared count (written for
        the default budget) scaled to this one."""
        if declared is None:
            return self.max_examples
        return max(1, round(declared * self.max_examples / PROFILES["default"].max_examples))


PROFILES = {
    "default": Budget(),
    "ci": Budget(max_examples=8, shrink_calls=80),
    "thorough": Budget(max_examples=100, shrink_calls=500),
}


def load_reference(lab: Lab, solutions: Path | None) -> ModuleType | None:
    """The reference module from ``solutions/``, imported in the grader's process, or None."""
    if solutions is None or not (solutions / lab.path).is_file():
        return None
    if lab.kind == "torch":  # PyTorch imported the oracles' way (no collections during it), not by the reference
        oracles.torch()
    spec = importlib.util.spec_from_file_location(f"_dlkit_reference_{lab.name}", solutions / lab.path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _ShrinkBudget(BaseException):
    """Raised when shrinking has taken enough calls; carries the smallest failure so far."""

    def __init__(self, error: Exception):
        self.error = error


# The inputs Hypothesis drew for a check, by (check, seed, examples), from a run in which none failed.
# What it draws depends on the seed alone until an input fails (the strategies never look at an answer),
# so another submission graded with the same seed (a batch, a watch mode's next save) gets the very same
# inputs, in the same order: they are replayed without Hypothesis' engine (half the time of a check),
# and at the first one that fails the check is run by Hypothesis as before, which finds that same input
# first and shrinks it. Results are those of a run without the replay.
_DRAWN: dict[tuple[int, int, int], tuple[Check, tuple[Call, ...]]] = {}
_DRAWN_MAX = 4096


def _run_cases(check: Check, ctx: Context, seed: int, budget: Budget, shrink: bool = True) -> None:
    """Let Hypothesis drive ``check.verify`` over ``check.cases``; raise the smallest failure (the first one
    found when not ``shrink``ing). What Hypothesis draws depends on the seed alone (``pin_constants``), and
    shrinking stops after ``budget.shrink_calls`` calls, never after some time."""
    key = _drawn_key(check, seed, budget)
    drawn = _DRAWN.get(key)
    if drawn is not None and drawn[0] is check and _replay(check, ctx, drawn[1]):
        return
    state: dict[str, Any] = {"failure": None, "calls": 0, "first": None}
    seen: list[Call] = []

    def attempt(call: Call) -> None:
        if state["failure"] is not None:
            state["calls"] += 1
            if state["calls"] > budget.shrink_calls:
                raise _ShrinkBudget(_told_apart(state["failure"], state["first"]))
        try:
            check.verify(ctx, ctx.prepare(call))
        except (CheckFailed, StudentRaised) as error:
            state["failure"], state["first"] = error, state["first"] or error
            raise
        except Skip as skip:  # nothing to shrink: the check cannot judge this code here
            raise _ShrinkBudget(skip) from None
        seen.append(call)  # an input the oracle rejected (``assume``) raised above, and is not replayed

    try:
        _hypothesis(check, seed, budget, shrink, attempt)()
    except _ShrinkBudget as stop:
        raise stop.error from None
    except CheckFailed as failed:
        raise _told_apart(failed, state["first"]) from None
    except BaseExceptionGroup as group:  # Hypothesis' FlakyFailure: the code gave different answers on reruns
        for error in group.exceptions:
            if isinstance(error, (CheckFailed, StudentRaised, Abort)):
                raise error from None
        raise
    _remember(key, check, tuple(seen))


def _hypothesis(check: Check, seed: int, budget: Budget, shrink: bool, test: Callable[[Call], None]) -> Callable[[], None]:
    """``test`` run by Hypothesis on ``check.cases``, drawing from ``seed`` alone, unhurried and quiet."""
    assert check.cases is not None
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fix_seed

    from grader.declare.strategies import pin_constants

    pin_constants()
    return fix_seed(seed)(settings(
        max_examples=budget.examples(check.max_examples), deadline=None, database=None,
        verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate], print_blob=False,
    )(given(check.cases)(test)))


def _drawn_key(check: Check, seed: int, budget: Budget) -> tuple[int, int, int]:
    return id(check), seed, budget.examples(check.max_examples)


def _remember(key: tuple[int, int, int], check: Check, calls: tuple[Call, ...]) -> None:
    if len(_DRAWN) >= _DRAWN_MAX:
        _DRAWN.clear()
    _DRAWN[key] = (check, calls)


def draws_ahead(lab: Lab, jobs: int) -> bool:
    """Whether ``dlkit check`` draws the inputs in a process of their own (``draw_ahead``): where a core is free
    while the grader imports PyTorch, on a NumPy lab (its zygote imports NumPy alone) and on a lab whose zygote
    loads the meta kernels after PyTorch (lab 4: 1.60 s against 1.69). On lab 5 both cores import PyTorch, and
    drawing as well slowed the grader's import (1.42 s against 1.36)."""
    return jobs > 1 and (lab.kind == "numpy" or lab.meta)


def draw_ahead(lab: Lab, tasks: Sequence[Task], seed: int, budget: Budget) -> Callable[[], None]:
    """Draw, in a process forked now, the inputs of every drawn check of ``tasks`` that none has drawn yet, as a
    run in which none fails draws them (a test that accepts every input); return a function that waits for that
    process and keeps what it drew, to be replayed (``_replay``) as if Hypothesis had drawn it in this process.

    Forked before the oracles load (nothing of the reference nor of PyTorch is in it) and never near the
    student's code, it draws on the second core while this process imports PyTorch: a check then spends its
    time on the student's answers, not on Hypothesis' engine. Results are the same as without it: the first
    input that fails sends the check to Hypothesis, which draws that same input first."""
    keys = ((_drawn_key(check, check_seed(seed, lab.name, task.name, check.name, variant.label), budget),
             check) for task in tasks for check in task.checks for variant in check.variants
            if check.cases is not None and oracles.may_have(variant.device))
    wanted = {key: check for key, check in keys if key not in _DRAWN}
    if not wanted:
        return lambda: None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the drawer: draw, send it all, and leave without any cleanup
        try:
            os.closerange(3, write)  # nothing of this process's but its pipe: no worker's, no zygote's socket
            os.closerange(write + 1, 1 << 16)
            sys.modules["torch"] = None  # type: ignore[assignment]  # a strategy that needs it is drawn later
            records = []  # sent at the end: a pipe holds 64 KiB, and nobody reads it before PyTorch is in
            for key, check in wanted.items():
                seen: list[Call] = []

                def accept(call: Call) -> None:
                    seen.append(call)
                try:
                    _hypothesis(check, key[1], budget, False, accept)()
                    blob = pickle.dumps((key, seen))
                except Exception:  # noqa: BLE001 - undrawable or unpicklable here: Hypothesis draws it later
                    continue
                records.append(len(blob).to_bytes(8, "little") + blob)
            with os.fdopen(write, "wb") as out:
                out.write(b"".join(records))
        finally:
            os._exit(0)
    os.close(write)
    started(pid)
    kept: list[int] = []

    def keep() -> None:
        if pid in kept:
            return
        kept.append(pid)
        with os.fdopen(read, "rb") as stream:
            data = stream.read()
        os.waitpid(pid, 0)
        forget(pid)
        at = 0
        while at + 8 <= len(data):  # whole records only (a drawer stopped halfway, by Ctrl-C, sent part of one)
            size = int.from_bytes(data[at:at + 8], "little")
            if at + 8 + size > len(data):
                break
            key, calls = pickle.loads(data[at + 8:at + 8 + size])
            at += 8 + size
            if key in wanted:
                _remember(key, wanted[key], tuple(calls))
    return keep


def _replay(check: Check, ctx: Context, calls: Sequence[Call]) -> bool:
    """Whether ``check`` passes on ``calls`` (the inputs an earlier run without a failure accepted). False
    at the first input that fails or breaks: Hypothesis then runs the check itself. A fatal failure
    (``Abort``, which Hypothesis never catches) ends the check here as it would there. An oracle's
    ``assume`` (true on these inputs) warns outside a Hypothesis run: that warning is silenced here, and
    were it ever an error, the check would fall back to Hypothesis."""
    from hypothesis.errors import HypothesisDeprecationWarning

    with warnings.catch_warnings(action="ignore", category=HypothesisDeprecationWarning):
        for call in calls:
            try:
                check.verify(ctx, ctx.prepare(call))
            except Exception:  # noqa: BLE001 - a failure is Hypothesis' to find again, and shrink
                return False
    return True


def _told_apart(failure: Exception, first: Exception | None) -> Exception:
    """The shrunk failure, keeping only the hints that the first failing input confirmed as well, when that
    input confirmed some of them: a small input can make two mistakes give the same output (a hidden size of
    1 makes r * (W h) and W (r * h) one number), and the larger input tells them apart."""
    if not isinstance(failure, CheckFailed) or not isinstance(first, CheckFailed) or failure.parts is None \
            or first.parts is None:
        return failure
    message, parts = narrowed(str(failure), failure.parts, {h.id for h in first.parts.hints})
    return CheckFailed(message, parts) if parts is not failure.parts else failure


def narrowed(message: str, parts: Parts, confirmed: set[str]) -> tuple[str, Parts]:
    """A failure's message and parts with only the hints that were ``confirmed`` elsewhere too (on another
    input), when some were; unchanged otherwise."""
    kept = tuple(h for h in parts.hints if h.id in confirmed)
    if not kept or len(kept) == len(parts.hints):
        return message, parts
    dropped = {f"  hint: {h.text}" for h in parts.hints if h not in kept}
    return "\n".join(line for line in message.split("\n") if line not in dropped), replace(parts, hints=kept)


def _told_apart_by_drawn(results: list[CheckResult]) -> list[CheckResult]:
    """Results on fixed inputs (the handout's small worked examples) keep, of several hints, those that the
    checks on drawn inputs confirmed too: a 1 x 1 example can make two mistakes give the same number."""
    drawn = {h.id for r in results if not r.fixed and r.parts is not None for h in r.parts.hints}
    found = []
    for result in results:
        if result.fixed and result.parts is not None and len(result.parts.hints) > 1:
            message, parts = narrowed(result.message, result.parts, drawn)
            result = replace(result, message=message, parts=parts)
        found.append(result)
    return found


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
    name = _label(check, ctx.variant)
    try:
        if not oracles.available(ctx.variant.device):
            raise Skip(f"no {ctx.variant.device} device on this machine")
        if check.needs_reference and ctx.reference is None:
            raise Skip(GRADED_ON_SUBMISSION, pending=True)
        for example in check.examples:
            try:
                check.verify(ctx, ctx.prepare(example))
            except (CheckFailed, StudentRaised) as failed:
                if _empty(example) and check.cases is not None:
                    _run_cases(check, ctx, seed, budget)  # a failure on a drawn input: emptiness is not the cause
                if isinstance(failed, StudentRaised):
                    raise
                raise CheckFailed(f"{example.note + ': ' if example.note else ''}{failed}", failed.parts) from None
        if check.cases is not None:
            _run_cases(check, ctx, seed, budget)
    except Skip as skip:
        return CheckResult(name, "skipped", str(skip), pending=skip.pending)
    except CheckFailed as failed:
        message = str(failed)
        if ctx.variant.device == "meta" and not _device_words(message.split("\n")[0]):
            message += f"\n  {NOT_A_DEVICE_PROBLEM}"
        return CheckResult(name, "failed", message, parts=failure_parts(ctx.task, message, failed.parts))
    except StudentRaised as raised:
        hints = _raised_hints(ctx.task, raised)
        expected = _expectation(check, ctx, raised.call)
        message = (f"{raised.failure.describe()}\n  input: {raised.where}"
                   + (f"\n  expected: {expected}" if expected is not None else "")
                   + "".join(f"\n  hint: {h.text}" for h in hints)
                   + (f"\n  {NOT_A_DEVICE_ERROR}" if ctx.variant.device == "meta" and not hints
                      and not _device_words(raised.failure.message) else "")
                   + "".join(f"\n{line}" for line in printed_lines(raised.failure.printed)))
        return CheckResult(name, "error", message, parts=Parts(raised.where, expected, None, None, tuple(hints)))
    except Abort as abort:
        return CheckResult(name, abort.status, abort.message, fatal=True)
    except Exception as bug:  # noqa: BLE001 - a bug in the grader must not look like the student's fault
        if os.environ.get("DLKIT_DEBUG"):
            raise
        return CheckResult(name, "error", f"internal grader error, please report it: {type(bug).__name__}: {bug}")
    return CheckResult(name, "passed", "")


def _empty(call: Call) -> bool:
    """Whether an input holds an empty array (N = 0, no ids): its failure is shown only when no drawn input fails."""
    arrays = [a.array if isinstance(a, TensorValue) else a for a in oracles.flatten(call.args, call.kwargs)]
    return any(isinstance(a, np.ndarray) and a.size == 0 for a in arrays)


def passes(check: Check, ctx: Context, seed: int, budget: Budget) -> bool:
    """Whether the check passes on the same inputs as its first run (no shrinking, no message)."""
    try:
        for example in check.examples:
            check.verify(ctx, ctx.prepare(example))
        if check.cases is not None:
            _run_cases(check, ctx, seed, budget, shrink=False)
    except (Abort, Exception):  # noqa: BLE001 - a failure, a skip or a rerun that breaks proves nothing
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


# Said when code fails on meta tensors for a reason that is not a device: a meta check's inputs have shapes too.
NOT_A_DEVICE_ERROR = ("this error is not about devices: it happened on meta tensors of the shapes above (a shape "
                      "the other checks may not have tried); call your function on CPU tensors of these shapes to see it")
NOT_A_DEVICE_PROBLEM = ("this is not about devices: the meta tensors above have shapes too, and the result is wrong "
                        "for them; call your function on CPU tensors of these shapes to see it")


def _device_words(message: str) -> bool:
    return any(word in message for word in ("device", "meta", "cuda", "cpu"))


def _raised_hints(task: Task, raised: StudentRaised) -> list[Hint]:
    """The known mistakes that raise the error the student's code raised."""
    failure = raised.failure
    text = f"{failure.exception}: {failure.message}" if failure.exception else failure.message
    found = []
    for mistake in task.mistakes:
        try:
            if mistake.raises is not None and raised.call is not None and mistake.raises(raised.call, text):
                found.append(Hint(task.mistake_id(mistake), mistake.hint))
        except Exception:  # noqa: BLE001 - a mistake that does not apply to this input says nothing
            continue
    return found


def _expectation(check: Check, ctx: Context, call: Call | None) -> str | None:
    """What a correct answer returns for the input the student's code raised on, as written in a message
    (None where the check has no single expected value, or it cannot be computed here)."""
    if call is None:
        return None
    try:
        # an oracle that rejects inputs with Hypothesis' assume() warns out here
        with warnings.catch_warnings(action="ignore"):
            value = check.expectation(ctx, call)
    except Exception:  # noqa: BLE001 - no expectation here (no reference solution, an oracle that needs more)
        return None
    return None if value is None else describe_value(value)


def failure_parts(task: Task, message: str, parts: Parts | None) -> Parts:
    """A failure's parts: as the check gave them, or read back from a message a check wrote itself (its
    "input:" line, its "hint:" lines and its possible causes)."""
    if parts is not None:
        return parts
    lines = [line.strip() for line in message.splitlines()]
    given = next((line.removeprefix("input: ") for line in lines if line.startswith("input: ")), "")
    hints = tuple(Hint(hint_id(task, h), h) for h in (line.removeprefix("hint: ") for line in lines
                                                       if line.startswith("hint: ")))
    possible = tuple(Hint(hint_id(task, h), h) for h in (line.removeprefix("- ") for line in lines
                                                          if line.startswith("- ")))
    return Parts(given, hints=hints, possible_causes=possible)


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
            if fatal is not None:  # not run (skipped where the device is absent: whatever the code does)
                absent = not oracles.available(variant.device)
                message = f"no {variant.device} device on this machine" if absent else \
                    "not run: " + fatal.message.split("\n")[0]
                results.append(CheckResult(label, "skipped" if absent else fatal.status, message, gate=check.gate,
                                           verdicts={a: "skipped" if absent else "failed" for a in judged},
                                           fixed=fixed_inputs(check)))
                continue
            ctx = Context(lab, task, variant, sandbox, reference, signature, observed=observed)
            result = run_check(check, ctx, check_seed(seed, lab.name, task.name, check.name, variant.label), budget)
            results.append(result)
            if result.fatal:
                fatal = result
    results = _told_apart_by_drawn(results)
    # a gate failed along the way goes first: an argument modified in place is usually why values differ too
    results[:0] = [CheckResult(gate, "failed", message, gate=True, parts=failure_parts(task, message, None))
                   for gate, message in observed.items()]
    return TaskResult.score_checks(task.name, task.points, results, {a.name: a.share for a in task.shares},
                                   task_flags(lab, sandbox.lab_dir, task))


def task_flags(lab: Lab, lab_dir: Path, task: Task) -> tuple[str, ...]:
    """The banned names and the constructs that reach around a ban in the code the task runs, as
    "lab4/recurrent.py:12 getattr with a computed name" (for the instructor's review)."""
    return tuple(f"{lab.path}:{f.line} {f.what}"
                 for f in findings(lab_dir / lab.filename, task.function, tuple(lab.banned_source)))


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
                        cap_address_space=lab.kind == "numpy", cuda=cuda, meta=lab.meta)


def grade_lab(lab: Lab, submission: Path, *, seed: int, tasks: Sequence[str] = (), solutions: Path | None = REPO / "solutions",
              budget: Budget = PROFILES["default"], limits: Limits | None = None, launcher: Launcher | None = None,
              jobs: int = 1, find_module: bool = False, files: LabFiles | None = None,
              ahead: bool = False) -> LabResult:
    """Grade one submission folder (laid out like ``assignments/``) on one lab.

    With ``jobs`` > 1 the tasks are shared among that many processes forked after PyTorch is
    imported, each with its own worker (with a pool of worker users, never more processes than
    users: concurrent workers run as distinct users); results do not depend on ``jobs`` (every
    check's inputs come from its own seed). Whatever the workers started is ended before this returns.
    ``files``: the lab's files when the caller has read them already (a notebook upload, found by an
    export's ``discover``). ``ahead``: draw the checks' inputs in a process of their own meanwhile
    (``draw_ahead``: for one submission on a machine with a core to spare).
    """
    selected = [lab.task(name) for name in tasks] if tasks else list(lab.tasks)
    try:
        files = files or read_submission(lab, submission, find_module)
    except BadSubmission as bad:
        return unread(lab, submission, seed, selected, bad)
    limits = limits or Limits()
    if launcher is not None and launcher.users:
        jobs = min(jobs, len(launcher.users))
    groups = _share(lab, selected, jobs, budget)
    config = worker_config(lab)
    drawn = draw_ahead(lab, selected, seed, budget) if ahead else (lambda: None)
    try:
        with Sandbox(files, config, limits, launcher) as sandbox:
            # A new worker imports NumPy and the module while this process imports the oracles. A zygote answers
            # a launch only once its own imports are done: ask it after this process's own, so that the two
            # overlap instead of following each other.
            if not isinstance(launcher, ZygoteLauncher):
                sandbox.start()
            oracle = Oracle.load(lab, solutions)
            if len(groups) > 1:
                oracles.torch()  # imported once, before the fork, so every process has it
            sandbox.start()
            drawn()  # what the drawer drew, before the fork, so every process has it

            def grade_apart(group: Sequence[Task], slot: int) -> tuple[int, int]:
                own = launcher.channel() if launcher is not None else None  # asked here, before the fork

                def work() -> tuple[list[TaskResult], bool, tuple[str, ...]]:
                    with Sandbox(files, config, limits, own, slot=slot) as box:
                        return oracle.grade(group, box, seed, budget), box.import_failure is not None, box.layers
                try:
                    return _fork(work)
                finally:
                    if own is not None:
                        own.close(wait=False)  # a zygote's: the child's socket, which only the child uses

            children = [grade_apart(group, slot) for slot, group in enumerate(groups[1:], start=1)]
            results = oracle.grade(groups[0], sandbox, seed, budget)
            broken, layers = sandbox.import_failure is not None, sandbox.layers
            for child in children:
                more, child_broken, _ = _join(child)
                results += more
                broken = broken or child_broken
    finally:
        drawn()  # waited for, whatever happened
        end_strays()
    return collect(lab, submission, seed, selected, results, broken, layers)


def unread(lab: Lab, submission: Path, seed: int, selected: Sequence[Task], bad: BadSubmission) -> LabResult:
    """The report of a submission whose files could not be read: every selected task unrun, and why."""
    results = [TaskResult.unrun(t.name, t.points, "error", bad.reason) for t in selected]
    return LabResult(lab.name, str(submission), seed, results, status=bad.status)


def collect(lab: Lab, submission: Path, seed: int, selected: Sequence[Task], results: list[TaskResult],
            broken: bool, layers: Sequence[str]) -> LabResult:
    """The lab's report from the results of its selected tasks, in the lab's order."""
    order = {t.name: i for i, t in enumerate(selected)}
    results, error = lift_shared(sorted(results, key=lambda r: order[r.name]))
    return LabResult(lab.name, str(submission), seed, results, status="import_error" if broken else "graded",
                     isolation=tuple(layers), error=error)


@dataclass(frozen=True)
class Oracle:
    """What the grader's side of a lab needs loaded: the lab, its reference module and the stubs' signatures."""

    lab: Lab
    reference: ModuleType | None
    signatures: dict[str, Signature]

    @classmethod
    def load(cls, lab: Lab, solutions: Path | None = REPO / "solutions") -> "Oracle":
        return cls(lab, load_reference(lab, solutions), read_signatures(REPO / "assignments" / lab.path))

    def grade(self, tasks: Sequence[Task], sandbox: Sandbox, seed: int, budget: Budget) -> list[TaskResult]:
        """Grade ``tasks`` in this one sandbox, in order."""
        return [grade_task(t, self.lab, sandbox, self.reference, self.signatures.get(t.function), seed, budget)
                for t in tasks]


def lift_shared(results: list[TaskResult]) -> tuple[list[TaskResult], str]:
    """Say once what stopped every task alike (a module that fails to import, a banned import at its top): the
    fatal failure that two or more tasks report in the same words (their names aside) becomes the lab's
    ``error``, and those tasks say only that they did not run."""
    def shared(task: TaskResult) -> str:
        trouble = [c for c in task.checks if c.status not in ("passed", "skipped")]
        if task.status == "passed" or not trouble or not all(c.message.startswith("not run:") for c in trouble[1:]):
            return ""  # no failure, or not one that stopped the task (the rest of its checks ran)
        shared = trouble[0].message.replace(f"{task.name} uses", "the module uses")
        # what the module does to every task alike: fail to import, or use a banned name at its top
        return shared if shared.startswith(("the module could not be imported", "the module uses")) else ""

    texts = [shared(t) for t in results]
    common = texts[0] if texts and all(texts) and len(set(texts)) == 1 and len(texts) > 1 else ""
    if not common:
        return results, ""
    quiet = [replace(t, message=f"{t.checks[0].name}: {SEE_ABOVE}" if t.checks else SEE_ABOVE,
                     checks=tuple(replace(c, message=SEE_ABOVE) if c.status not in ("passed", "skipped") else c
                                  for c in t.checks)) for t in results]
    return quiet, common


# Seconds each task takes to grade on the reference (scripts/measure_costs.py): which process grades which task.
COSTS = REPO / "grader" / "labs" / "costs.json"


@functools.cache
def measured_costs(lab: str) -> dict[str, float]:
    """The lab's measured seconds per task; empty for a lab never measured (the example lab)."""
    table: dict[str, dict[str, float]] = json.loads(COSTS.read_text()) if COSTS.is_file() else {}
    return table.get(lab, {})


def _share(lab: Lab, tasks: Sequence[Task], jobs: int, budget: Budget) -> list[list[Task]]:
    """Tasks in at most ``jobs`` groups of about equal cost: longest first into the lightest group, then moves
    and swaps of tasks between the heaviest and the lightest group while they bring the two closer. A task's
    cost is its measured seconds when every task has one, else its count of examples. Either way the groups
    depend on the declaration and the table alone, never on this run's timing."""
    measured = measured_costs(lab.name)
    use_measured = all(t.name in measured for t in tasks)

    def cost(task: Task | None) -> int:  # whole microseconds: sums are exact, so the moves below end
        if task is None:
            return 0
        if use_measured:
            return round(measured[task.name] * 1e6)
        return sum(len(c.variants) * (budget.examples(c.max_examples) if c.cases is not None else 1)
                   for c in task.checks)

    groups: list[list[Task]] = [[] for _ in range(max(1, min(jobs, len(tasks))))]
    for task in sorted(tasks, key=cost, reverse=True):
        min(groups, key=lambda g: sum(map(cost, g))).append(task)
    while True:  # each move lowers the sum of the squared loads, so this ends
        loads = [sum(map(cost, g)) for g in groups]
        heavy, light = groups[loads.index(max(loads))], groups[loads.index(min(loads))]
        gap = max(loads) - min(loads)
        moves = [(abs(gap - 2 * shift), i, j) for i, a in enumerate(heavy)
                 for j, b in enumerate([None, *light]) if 0 < (shift := cost(a) - cost(b)) < gap]
        if not moves:
            return [g for g in groups if g] or [[]]
        _, i, j = min(moves)
        moved = heavy.pop(i)
        if j:
            heavy.append(light.pop(j - 1))
        light.append(moved)


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
