"""The check API: what a check sees (``Context``) and how it says what is wrong (``CheckFailed``).

A check's ``verify(ctx, call)`` calls the student through ``ctx.student(call)`` (or a loop of calls
through ``ctx.student_chain``), gets the reference's value with ``ctx.expected(call)``, and raises
``ctx.fail(call, problem, source, expected, received)`` on a mismatch: a ``CheckFailed`` whose message
names the input, where the expectation came from, and the hints of the known mistakes the received
value matches. ``StudentRaised`` (shrunk by Hypothesis) and ``Abort`` (not shrunk: nothing more to
learn) say how the student's code failed to return; ``Skip`` that a check cannot run here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np

from grader.declare import oracles
from grader.declare.compare import difference, generic_hint
from grader.declare.describe import describe_call
from grader.declare.signatures import Signature
from grader.declare.spec import Aspect, Call, Lab, Task, Variant, Withheld
from grader.sandbox.host import Reply, Sandbox, StudentFailure
from grader.sandbox.wire import TensorValue

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
    """The check cannot run here (no reference solutions, no CUDA). ``pending``: it runs in the graded
    run (it needs the reference solutions), so its points are pending here rather than waived."""

    def __init__(self, message: str, pending: bool = False):
        super().__init__(message)
        self.pending = pending


GRADED_ON_SUBMISSION = "needs the reference solutions (graded on submission)"

# What PyTorch says when code asks a meta tensor (a shape and a dtype, no data) for a value it does not have:
# reading one (.item(), bool(), `if` on a tensor) or an operation whose output shape depends on the values
# (nonzero, boolean indexing, unique). Correct on CPU and CUDA alike, so a meta check that meets it is inconclusive.
# (Copying data out, .cpu() or .tolist(), says "Cannot copy out of meta tensor" and stays a failure.)
META_CANNOT = ("cannot be called on meta tensors", "a correct data-independent implementation does not exist",
               "with Meta tensors, but there was no fake impl or Meta kernel")
INCONCLUSIVE_ON_META = ("inconclusive on meta tensors: the code reads tensor values ({error}), which meta tensors "
                        "do not have; it may be right on every real device, so this costs no points")

# The gate the engine adds to a task when a check saw an argument modified in place.
MODIFIED = "leaves its arguments unchanged"


@dataclass
class Context:
    """What a check sees: the task, the variant, and ways to call student and reference."""

    lab: Lab
    task: Task
    variant: Variant
    sandbox: Sandbox
    reference: ModuleType | None
    signature: Signature | None
    warnings: tuple[str, ...] = ()  # the warnings of the last student call ("RuntimeWarning: overflow ...")
    global_rng: bool = False  # the last student call changed NumPy's global random state
    # what every check of the task saw that a gate judges (an argument modified in place), shared by the task
    observed: dict[str, str] = field(default_factory=dict)
    focus: Aspect | None = None  # while set, a check compares only this aspect's parts of the result
    focus_used: bool = False  # a comparison consulted ``focus`` (a check that never does judges the whole)

    def in_focus(self, part: str) -> bool:
        """Whether the part of a tuple result named ``part`` is compared (every part, without a focus)."""
        if self.focus is None:
            return True
        self.focus_used = True
        return self.focus.covers(part)

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
        params = self.signature.params if self.signature and function is None else ()
        reply = self._ask(name, lambda: self.sandbox.call(name, call.args, call.kwargs, params, self.task.timeout, grad),
                          lambda step: (self.describe(call, name), call))
        illegal = [m for m in reply.modified if m not in self.task.may_modify]
        if illegal:
            self.observe(MODIFIED, f"{name} modified its argument '{illegal[0]}' in place; return a new array "
                                   f"instead\n  input: {self.describe(call, name)}")
        return (reply.value, reply.grads) if grad is not None else reply.value

    def observe(self, gate: str, message: str) -> None:
        """Record, for the task's gate ``gate``, the first thing that fails it."""
        self.observed.setdefault(gate, message)

    def student_chain(self, calls: Sequence[Call], links: Sequence[tuple[int, int, str, int, int]] = (),
                      describe: Callable[[int], str] | None = None) -> list[Any]:
        """The student's results for a loop of calls, run in one worker request as the student's own
        loop would run them: one result per step, fewer when a step's result lacked an item that a
        link passes on. ``links`` are ``(step, arg, source, from_step, index)``: argument ``arg`` of
        ``step`` is item ``index`` of step ``from_step``'s result (``source="result"``) or the very
        object passed as its argument ``index`` (``source="arg"``); steps count from 0.
        ``describe(step)`` says in messages what a step's input was (default: the step's call)."""
        name = self.task.function
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
                self.observe(MODIFIED, f"{name} modified its argument '{arg}' in place (at step {step + 1}); "
                                       f"return a new array instead\n  input: {where(step)}")
            else:
                self.observe(MODIFIED, f"the '{arg}' passed to {name} at step {step + 1} was modified in place after "
                                       "that call had returned, by a later step: a reference to it was kept (in a "
                                       f"returned value?) and changed later; keep a copy ({arg}.copy()) instead\n"
                                       f"  input: {where(step)}")
        return list(reply.value) if isinstance(reply.value, list) else []

    def _ask(self, name: str, send: Callable[[], Reply], at: Callable[[int | None], tuple[str, Call]]) -> Reply:
        """One worker request, with what it says about the student turned into the engine's outcomes: a
        failure to return (``at(step)`` names the input and call it happened on; step None outside a
        chain), a banned call. The warnings it raised are kept for the check's message."""
        try:
            reply = send()
        except StudentFailure as failure:
            where, call = at(failure.step)
            if self.variant.device == "meta" and any(s in failure.message for s in META_CANNOT):
                raise Skip(INCONCLUSIVE_ON_META.format(error=failure.describe().split("\n")[0])) from None
            if failure.kind in FATAL:
                raise Abort(failure.status, _fatal_message(failure, where)) from None
            raise StudentRaised(failure, where, call) from None
        self.warnings = reply.warnings
        self.global_rng = reply.global_rng
        if reply.banned:
            raise Abort("error", f"{name} called {', '.join(reply.banned)}, which this lab bans "
                                 "(the call was refused); write it from tensor operations")
        return reply

    def expected(self, call: Call, function: str | None = None) -> Any:
        """The reference solution's result for ``call``, computed in this process."""
        if self.reference is None:
            raise Skip(GRADED_ON_SUBMISSION, pending=True)
        fn: Callable[..., Any] = getattr(self.reference, function or self.task.function)
        return oracles.plain(fn(*oracles.materialize(call.args), **oracles.materialize(call.kwargs)))

    def fail(self, call: Call, problem: str, source: str, expected: Any = None, received: Any = None,
             tolerance: Any = None, hints: Sequence[str] = ()) -> CheckFailed:
        """The failure to raise: the problem, the input, where the expected values came from, and the hints
        of the known mistakes ``received`` matches (when an ``expected`` value is given) after ``hints``."""
        found = list(hints)
        if expected is not None:
            found += [h for h in hints_for(self, call, expected, received, tolerance) if h not in found]
        return CheckFailed(failure_message(self, call, problem, source, found))


def _fatal_message(failure: StudentFailure, where: str) -> str:
    if failure.kind == "not_implemented":
        return "not implemented yet (the function still raises NotImplementedError)"
    if failure.kind == "import":
        return f"the module could not be imported: {failure.describe()}"
    if failure.kind == "sandbox":
        return f"not graded: {failure.describe()} (a problem of the grading machine, not of your code)"
    return f"{failure.describe()}\n  input: {where}"


# ----------------------------------------------------------------------------- messages


def compare_result(ctx: Context, expected: Any, received: Any, tolerance: Any) -> str | None:
    """Compare a whole result, naming the parts of a tuple result as the task declares them (only the
    parts of the aspect in ``ctx.focus``, while the engine judges aspects one by one)."""
    names = ctx.task.returns
    if isinstance(expected, tuple) and names and len(names) == len(expected):
        if not isinstance(received, (tuple, list)) or len(received) != len(expected):
            return difference(expected, received, tolerance, f"the result (expected a tuple {tuple(names)})")
        for name, e, r in zip(names, expected, received):
            if not ctx.in_focus(name):
                continue
            found = difference(e, r, tolerance, name)
            if found:
                return found
        return None
    return difference(expected, received, tolerance)


def hints_for(ctx: Context, call: Call, expected: Any, received: Any, tolerance: Any) -> list[str]:
    """The known mistakes the received value matches, most specific first."""
    found = []
    withheld = False
    for mistake in ctx.task.mistakes:
        try:
            if mistake.produces is not None:
                wrong = oracles.plain(mistake.produces(*oracles.materialize(call.args), **oracles.materialize(call.kwargs)))
                if compare_result(ctx, wrong, received, tolerance) is None \
                        and compare_result(ctx, wrong, expected, tolerance) is not None:
                    found.append(mistake.hint)
            elif mistake.detects is not None and mistake.detects(call, expected, received):
                found.append(mistake.hint)
        except Withheld:
            withheld = True
        except Exception:  # noqa: BLE001 - a mistake that does not apply to this input says nothing
            continue
    slip = dtype_hint(expected, received)
    if slip:
        found.append(slip)
    if not found:
        parts = zip(expected, received) if isinstance(expected, tuple) and isinstance(received, (tuple, list)) \
            and len(expected) == len(received) else [(expected, received)]
        names = list(ctx.task.returns) or []
        for i, (e, r) in enumerate(parts):
            hint = generic_hint(e, r)
            if hint:
                found.append(f"{names[i]}: {hint}" if i < len(names) and isinstance(expected, tuple) else hint)
                break
    if not found and withheld:
        found.append("some known mistakes of this task are recognised only when it is graded on submission")
    return found


def failure_message(ctx: Context, call: Call, problem: str, source: str, hints: Sequence[str] = ()) -> str:
    lines = [problem, f"  input: {ctx.describe(call)}", f"  expected values from {source}"]
    lines += [f"  hint: {h}" for h in hints]
    return "\n".join(lines)


DTYPE_HINT = ("the dtype changed: float32 in must give float32 out; a buffer made with np.zeros(shape) is float64, "
              "so use np.zeros_like(x) or pass dtype=x.dtype, and copy with x.copy(), not np.array(x, dtype=float)")


def dtype_hint(expected: Any, received: Any) -> str | None:
    """The hint for a NumPy result (or an item of a tuple or list result) in another floating dtype than expected."""
    pairs = zip(expected, received) if isinstance(expected, (tuple, list)) and isinstance(received, (tuple, list)) \
        else [(expected, received)]
    slipped = any(type(e) is np.ndarray and type(r) is np.ndarray and e.dtype.kind == r.dtype.kind == "f"
                  and e.dtype != r.dtype for e, r in pairs)
    return DTYPE_HINT if slipped else None
