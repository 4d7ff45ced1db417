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
from typing import Any, Callable, Literal, Sequence

import numpy as np

from grader.declare import oracles
from grader.declare.compare import GENERIC_HINTS, KEEP_DTYPE, difference, generic_hint, tolerance_for
from grader.declare.describe import describe_call, describe_value
from grader.declare.signatures import Signature
from grader.declare.spec import Aspect, Call, Lab, Task, Variant, Withheld
from grader.sandbox.host import Reply, Sandbox, StudentFailure
from grader.sandbox.wire import TensorValue

FATAL = ("not_implemented", "timeout", "crash", "memory", "import", "missing", "banned", "sandbox")


class CheckFailed(Exception):
    """The student's answer is wrong; the message says how. ``parts`` holds the same story as data, for the
    JSON report (``Parts``); a check that writes its own message leaves it empty, and the engine reads the
    input and the hints back from the message."""

    def __init__(self, message: str, parts: "Parts | None" = None):
        super().__init__(message)
        self.parts = parts


@dataclass(frozen=True)
class Hint:
    """A known mistake a failure points to: its id (``task.name``, or ``generic.*`` for the mistakes any task can
    make) and its advice."""

    id: str
    text: str


@dataclass(frozen=True)
class Parts:
    """A failure as data: the input, the expected and received values as written in the message, the largest
    absolute error, the confirmed mistakes (``hints``: the received value is that mistake's output, within the
    tolerance) and the ``possible_causes`` (mistakes that would fail this way, none of them confirmed)."""

    input: str = ""
    expected: str | None = None
    received: str | None = None
    max_abs_error: float | None = None
    hints: tuple[Hint, ...] = ()
    possible_causes: tuple[Hint, ...] = ()


class StudentRaised(Exception):
    """The student's code raised on an input (shrinkable, unlike a fatal failure)."""

    def __init__(self, failure: StudentFailure, where: str, call: Call | None = None):
        super().__init__(failure.describe())
        self.failure = failure
        self.where = where
        self.call = call  # the input it raised on, for the hints of mistakes that raise


# A check's or a task's status in a report.
Status = Literal["passed", "failed", "error", "timeout", "not_implemented", "skipped"]


class Abort(BaseException):
    """Stop the check at once: there is nothing to learn from more inputs.

    A BaseException, so that Hypothesis does not try to shrink it.
    """

    def __init__(self, status: Status, message: str):
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
    printed: str = ""  # what the student's code printed during its last call
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
        return call.with_args(oracles.nested(call.args, self._convert), oracles.nested(call.kwargs, self._convert))

    def _convert(self, value: Any) -> Any:
        if not isinstance(value, np.ndarray):
            return value
        if self.variant.dtype and value.dtype.kind == "f":
            value = value.astype(self.variant.dtype)
        return TensorValue(value, value.dtype.name, self.variant.device) if self.lab.kind == "torch" else value

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
        self.printed = ""
        try:
            reply = send()
        except StudentFailure as failure:
            self.printed = failure.printed
            where, call = at(failure.step)
            if self.variant.device == "meta" and any(s in failure.message for s in META_CANNOT):
                raise Skip(INCONCLUSIVE_ON_META.format(error=failure.describe().split("\n")[0])) from None
            if failure.kind in FATAL:
                raise Abort(failure.status, _fatal_message(failure, where)) from None
            raise StudentRaised(failure, where, call) from None
        self.warnings = reply.warnings
        self.printed = reply.printed
        self.global_rng = reply.global_rng
        if reply.banned:
            raise Abort("error", f"{name} called {', '.join(reply.banned)}, which this lab bans "
                                 "(the call was refused); write it from tensor operations")
        return reply

    def expected(self, call: Call) -> Any:
        """The reference solution's result for ``call``, computed in this process."""
        if self.reference is None:
            raise Skip(GRADED_ON_SUBMISSION, pending=True)
        fn: Callable[..., Any] = getattr(self.reference, self.task.function)
        return oracles.plain(fn(*oracles.materialize(call.args), **oracles.materialize(call.kwargs)))

    def fail(self, call: Call, problem: str, source: str, expected: Any = None, received: Any = None,
             tolerance: Any = None, hints: Sequence[str] = ()) -> CheckFailed:
        """The failure to raise: the problem, the input, where the expected values came from, and the hints
        of the known mistakes ``received`` matches (when an ``expected`` value is given) after ``hints`` (the
        check's own findings); mistakes that would fail this way but are not confirmed follow as "possible
        causes"."""
        confirmed = [self.hint(h) for h in hints]
        possible: list[Hint] = []
        if expected is not None:
            found = diagnose(self, call, expected, received, tolerance)
            confirmed += [h for h in found.hints if h not in confirmed]
            possible = [h for h in found.possible_causes if h not in confirmed]
        if not any(isinstance(a, (np.ndarray, TensorValue)) for a in oracles.flatten(call.args, call.kwargs)):
            problem = problem.replace(f" {KEEP_DTYPE}", "")  # no array came in, so there is no dtype to keep
        parts = Parts(self.describe(call), None if expected is None else describe_value(expected),
                      None if expected is None else describe_value(received), max_abs_error(expected, received),
                      tuple(confirmed), tuple(possible))
        lines = [problem, f"  input: {self.describe(call)}", f"  expected values from {source}"]
        lines += [f"  hint: {h.text}" for h in confirmed]
        if possible:
            lines.append("  possible causes:" if len(possible) > 1 else "  a possible cause:")
            lines += [f"    - {h.text}" for h in possible]
        return CheckFailed("\n".join(lines + printed_lines(self.printed)), parts)

    def hint(self, text: str) -> Hint:
        """A hint given as text, with the id of the task's mistake (or the generic mistake) it is the advice of."""
        return Hint(hint_id(self.task, text), text)


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
        found = (difference(e, r, tolerance, name) for name, e, r in zip(names, expected, received)
                 if ctx.in_focus(name))
        return next(filter(None, found), None)
    return difference(expected, received, tolerance)


def hints_for(ctx: Context, call: Call, expected: Any, received: Any, tolerance: Any) -> list[str]:
    """The advice of the known mistakes the received value is confirmed to match, most specific first."""
    return [h.text for h in diagnose(ctx, call, expected, received, tolerance).hints]


WITHHELD = "some known mistakes of this task are recognised only when it is graded on submission"


def diagnose(ctx: Context, call: Call, expected: Any, received: Any, tolerance: Any) -> Parts:
    """The known mistakes behind a wrong ``received``: confirmed (``hints``: the mistake's own output on this
    input is the received value, within ``tolerance``; a ``detects`` mistake that recognises it; a floating
    dtype slip; a generic mistake the values prove, such as a flipped sign) and, when none is, the possible
    causes: mistakes whose output on this input is wrong in exactly the entries the received value is wrong
    in, and the shapes of mistakes that only a shape suggests (a transposed shape)."""
    found: list[Hint] = []
    possible: list[Hint] = []
    withheld = False
    for mistake in ctx.task.mistakes:
        ident = ctx.task.mistake_id(mistake)
        try:
            if mistake.produces is not None:
                wrong = oracles.plain(mistake.produces(*oracles.materialize(call.args), **oracles.materialize(call.kwargs)))
                if compare_result(ctx, wrong, expected, tolerance) is None:
                    continue  # this input cannot tell the mistake from a right answer
                if compare_result(ctx, wrong, received, tolerance) is None:
                    found.append(Hint(ident, mistake.hint))
                elif same_wrong_entries(expected, wrong, received, tolerance):
                    possible.append(Hint(ident, mistake.hint))
            elif mistake.detects is not None and mistake.detects(call, expected, received):
                found.append(Hint(ident, mistake.hint))
        except Withheld:
            withheld = True
        except Exception:  # noqa: BLE001 - a mistake that does not apply to this input says nothing
            continue
    slip = dtype_hint(expected, received)
    if slip:
        found.append(Hint(GENERIC_IDS[DTYPE_HINT], slip))
    if not found:
        parts = zip(expected, received) if isinstance(expected, tuple) and isinstance(received, (tuple, list)) \
            and len(expected) == len(received) else [(expected, received)]
        names = list(ctx.task.returns)
        for i, (e, r) in enumerate(parts):
            generic = generic_hint(e, r)
            if generic:
                ident, text, confirmed = generic
                named = f"{names[i]}: {text}" if i < len(names) and isinstance(expected, tuple) else text
                (found if confirmed else possible).append(Hint(ident, named))
                break
    if not found and withheld:
        possible.append(Hint("withheld", WITHHELD))
    return Parts(hints=tuple(found), possible_causes=() if found else tuple(possible))


def same_wrong_entries(expected: Any, wrong: Any, received: Any, tolerance: Any) -> bool:
    """Whether a mistake's output and the received value (both arrays of the expected shape) are wrong in
    exactly the same entries, some but not all, and the mistake's output is nearer the received value than the
    expected one is: the mistake would fail this way, though not by these values."""
    e, w, r = (oracles.plain_array(v) for v in (expected, wrong, received))
    if e is None or w is None or r is None or not e.shape == w.shape == r.shape or e.dtype.kind != "f" or e.size < 2:
        return False
    tol = tolerance_for(str(e.dtype), tolerance)
    with np.errstate(invalid="ignore", over="ignore"):
        allowed = tol.atol + tol.rtol * np.abs(e)
        off_w = ~(np.abs(w.astype(np.float64) - e) <= allowed)
        off_r = ~(np.abs(r.astype(np.float64) - e) <= allowed)
        if not off_r.any() or off_r.all() or not np.array_equal(off_w, off_r):
            return False
        nearer = np.linalg.norm((w - r)[off_r].astype(np.float64)) < 0.5 * np.linalg.norm((e - r)[off_r].astype(np.float64))
    return bool(nearer)


def max_abs_error(expected: Any, received: Any) -> float | None:
    """The largest |received - expected| over the entries of two arrays (or numbers) of one shape, else None."""
    if isinstance(expected, (tuple, list)) and isinstance(received, (tuple, list)) and len(expected) == len(received):
        errors = [x for x in (max_abs_error(a, b) for a, b in zip(expected, received)) if x is not None]
        return max(errors) if errors else None
    e, r = oracles.plain_array(expected), oracles.plain_array(received)
    if e is None or r is None or e.shape != r.shape or e.size == 0 or e.dtype.kind not in "biuf" \
            or r.dtype.kind not in "biuf":
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(r.astype(np.float64) - e.astype(np.float64))
    return float(np.nanmax(err)) if np.isfinite(err).any() else float("inf")


def hint_id(task: Task, text: str) -> str:
    """The id of the mistake whose advice ``text`` is: one of the task's (``task.name``), a generic one, or
    ``task.note`` for advice a check writes itself."""
    for mistake in task.mistakes:
        if mistake.hint == text:
            return task.mistake_id(mistake)
    bare = text.split(": ", 1)[1] if ": " in text and text.split(": ", 1)[0] in task.returns else text
    for known, ident in GENERIC_IDS.items():
        if bare == known or bare.startswith(known.split(":")[0]):
            return ident
    return f"{task.name}.note"


PRINTED_LINES = 6


def printed_lines(text: str) -> list[str]:
    """The student's own printed output under a failure: its last lines, each shortened, marked as theirs."""
    if not text.strip():
        return []
    lines = text.rstrip("\n").split("\n")
    shown = [line if len(line) <= 160 else line[:160] + " ..." for line in lines[-PRINTED_LINES:]]
    more = f" (the last {PRINTED_LINES} of {len(lines)} lines)" if len(lines) > PRINTED_LINES else ""
    return [f"  your code printed{more}:"] + [f"    | {line}" for line in shown]


DTYPE_HINT = ("the dtype changed: float32 in must give float32 out; a buffer made with np.zeros(shape) is float64, "
              "so use np.zeros_like(x) or pass dtype=x.dtype, and copy with x.copy(), not np.array(x, dtype=float)")


def dtype_hint(expected: Any, received: Any) -> str | None:
    """The hint for a NumPy result (or an item of a tuple or list result) in another floating dtype than expected."""
    pairs = zip(expected, received) if isinstance(expected, (tuple, list)) and isinstance(received, (tuple, list)) \
        else [(expected, received)]
    slipped = any(type(e) is np.ndarray and type(r) is np.ndarray and e.dtype.kind == r.dtype.kind == "f"
                  and e.dtype != r.dtype for e, r in pairs)
    return DTYPE_HINT if slipped else None


# The ids of the mistakes any task can make, by their advice.
GENERIC_IDS = {DTYPE_HINT: "generic.dtype_changed", **{text: ident for ident, text in GENERIC_HINTS.items()}}
