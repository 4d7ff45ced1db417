"""The kinds of check a task can declare.

- ``Matches``: the result equals an oracle's (the reference solution, PyTorch,
  a formula), within the tolerance of its dtype.
- ``Worked``: the result equals a value written down in the handout.
- ``Property``: a statement that holds for every correct answer.
- ``Raises``: invalid input raises the exception the contract names (a gate).
- ``Gradients`` (PyTorch labs): autograd through the student's function matches the oracle's.
- ``CentralDifferences`` (NumPy labs): the gradients a student returns are the derivative of a
  scalar function, along random directions that move every entry.
- ``NoBannedCalls``: the code the task runs names nothing the lab bans, and none of the constructs
  that reach around a ban (a gate the engine adds to every task of a lab that bans anything).

A check is a value check (it earns the points of the aspects it judges) unless it is declared a
gate (``gate=True``: something a trivial answer passes too, such as a device or a property that
zeros satisfy; it earns nothing and costs points when it fails).

Every failure message names the input, what was expected and received, where
the expectation came from, and a hint when the output matches a known mistake.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from grader.declare import oracles
from grader.declare.compare import GENERIC_HINTS, NEAR_MISS_FACTOR, difference, kind_of, lenient
from grader.declare.context import Abort, CheckFailed, Context, Parts, StudentRaised, compare_result
from grader.declare.describe import describe_value
from grader.declare.spec import Call, Check, Tolerance, Variant

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

# The named variant sets every lab draws from (devices absent on the machine are skipped).
CPU_64 = (Variant("cpu", "float64"),)
CPU_BOTH = (Variant("cpu", "float64"), Variant("cpu", "float32"))
DEVICES = tuple(Variant(d) for d in oracles.DEVICES)
DEVICES_BOTH = tuple(Variant(d, t) for d in oracles.DEVICES for t in ("float64", "float32"))


# ----------------------------------------------------------------------------- oracles


@dataclass(frozen=True)
class Reference:
    """The reference solution of the same task (run in the grader's process)."""

    label: str = "the reference solution"
    needs_reference: bool = True

    def __call__(self, ctx: Context, call: Call) -> Any:
        return ctx.expected(call)


@dataclass(frozen=True)
class Torch:
    """PyTorch on the check's device: ``compute`` is a plain function of the task's own arguments, given as the
    student's function gets them. In a PyTorch lab they are tensors on the variant's device already; in a NumPy
    lab ``oracles.in_torch`` brings the arrays to the variant's device as tensors (in float64 with ``float64``,
    the results cast back to the inputs' dtype) and the result back to NumPy."""

    label: str
    compute: Callable[..., Any]
    needs_reference: bool = False
    float64: bool = field(default=False, kw_only=True)
    # An oracle that would pass as the student's function, with no PyTorch built-in for it to lean on (lab 5's
    # split_heads, merge_heads, positional_encoding), takes the call instead, ``compute(call)``: the release's
    # grader then holds no working solution (grader.export.release.find_working_helpers).
    on_call: bool = field(default=False, kw_only=True)

    def __call__(self, ctx: Context, call: Call) -> Any:
        if self.on_call:
            return oracles.plain(self.compute(call))
        compute = self.compute
        if ctx.lab.kind == "numpy":
            compute = oracles.in_torch(compute, self.float64, ctx.variant.device)
        return oracles.plain(compute(*oracles.materialize(call.args), **oracles.materialize(call.kwargs)))


@dataclass(frozen=True)
class Formula:
    """A formula written out in the grader (for scalar facts such as sizes and counts)."""

    label: str
    compute: Callable[..., Any]
    needs_reference: bool = False

    def __call__(self, ctx: Context, call: Call) -> Any:
        return self.compute(*oracles.materialize(call.args), **oracles.materialize(call.kwargs))


Oracle = Reference | Torch | Formula


# ----------------------------------------------------------------------------- messages


# ----------------------------------------------------------------------------- check kinds


@dataclass(frozen=True)
class Matches(Check):
    """The student's result equals the oracle's on the examples and on generated inputs."""

    oracle: Oracle
    cases: "SearchStrategy[Call] | None" = None
    tolerance: Tolerance | dict[str, Tolerance] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or f"matches {self.oracle.label}")
        object.__setattr__(self, "needs_reference", self.oracle.needs_reference)

    def expectation(self, ctx: Context, call: Call) -> Any:
        return self.oracle(ctx, call)

    def verify(self, ctx: Context, call: Call) -> None:
        source = self.oracle.label + (f" on {ctx.variant.label}" if isinstance(self.oracle, Torch) else "")
        must_match(ctx, call, self.expectation(ctx, call), self.tolerance, source)


def must_match(ctx: Context, call: Call, expected: Any, tolerance: Any, source: str) -> None:
    """Fail, citing ``source``, where the student's result for ``call`` is not ``expected``."""
    received = ctx.student(call)
    problem = compare_result(ctx, expected, received, tolerance)
    if problem:
        raise ctx.fail(call, problem, source, expected, received, tolerance)


def parity(label: str, compute: Callable[..., Any], cases: "SearchStrategy[Call]",
           examples: Sequence[Call] = (), **options: Any) -> list[Check]:
    """The usual pair: the result matches PyTorch on every device in float64 and float32, and the
    reference solution in float64."""
    return [Matches(Torch(label, compute), cases, examples=examples, variants=DEVICES_BOTH,
                    max_examples=8, **options),
            Matches(Reference(), cases, variants=CPU_64, max_examples=6, **options)]


def fails_on_none(positions: Sequence[int]) -> Callable[[Call, str], bool]:
    """A ``Mistake.raises`` for code that breaks on an optional argument given as None (a bias of a layer
    built with bias=False): the error is about NoneType and one of the arguments at ``positions`` is None."""
    def raises(call_: Call, error: str) -> bool:
        return "NoneType" in error and any(i < len(call_.args) and call_.args[i] is None for i in positions)
    return raises


@dataclass(frozen=True)
class Worked(Check):
    """The handout's worked examples: fixed inputs with the values written in the handout."""

    pairs: Sequence[tuple[Call, Any]]
    tolerance: Tolerance | dict[str, Tolerance] | None = None
    cases: None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "reproduces the handout's worked examples")
        object.__setattr__(self, "examples", [Call(c.args, c.kwargs, c.note, e) for c, e in self.pairs])

    def expectation(self, ctx: Context, call: Call) -> Any:
        return call.expected

    def verify(self, ctx: Context, call: Call) -> None:
        cited = not call.note or "handout" in call.note.split("(")[0]  # a note may say it is not the handout's
        source = "the handout's worked example" if cited else call.note
        must_match(ctx, call, self.expectation(ctx, call), self.tolerance, source)


@dataclass(frozen=True)
class Property(Check):
    """A statement every correct answer satisfies; ``holds(ctx, call)`` raises ``CheckFailed`` if not."""

    name: str = field()  # required here (field(): the base class's default does not carry over)
    holds: Callable[[Context, Call], None] = field()
    cases: "SearchStrategy[Call] | None" = None

    def verify(self, ctx: Context, call: Call) -> None:
        self.holds(ctx, call)


@dataclass(frozen=True)
class Raises(Check):
    """Invalid input raises ``exception`` (by name) instead of returning something."""

    exception: str
    cases: "SearchStrategy[Call] | None" = None
    gate: bool = field(default=True, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or f"raises {self.exception} for invalid arguments")

    def verify(self, ctx: Context, call: Call) -> None:
        given = ctx.describe(call)
        where = f"\n  input: {given}" + (f"\n  why invalid: {call.note}" if call.note else "")
        try:
            received = ctx.student(call)
        except StudentRaised as raised:
            if raised.failure.exception == self.exception:
                return
            failure = raised.failure
            raise CheckFailed(f"raised {failure.exception} ({failure.message}), expected {self.exception}{where}",
                              Parts(given, f"raises {self.exception}", f"raises {failure.exception}")) from None
        raise CheckFailed(f"returned {received!r} instead of raising {self.exception}{where}",
                          Parts(given, f"raises {self.exception}", describe_value(received)))


@dataclass(frozen=True)
class Gradients(Check):
    """Autograd through the student's function (run in the worker) gives the oracle's gradients.

    ``forward`` is the oracle: PyTorch code computing the same output from the
    same arguments. Both sides are differentiated with the same random upstream
    gradients (seeded, so reruns agree) with respect to the arguments at ``wrt``.
    """

    label: str
    forward: Callable[..., Any]
    wrt: Sequence[int]
    cases: "SearchStrategy[Call] | None" = field(default=None, kw_only=True)
    tolerance: Tolerance | dict[str, Tolerance] | None = field(default=None, kw_only=True)
    evidence: str = field(default="gradients", kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or f"gradients match {self.label}")

    def verify(self, ctx: Context, call: Call) -> None:
        t = oracles.torch()
        args = list(oracles.materialize(call.args))
        for i in self.wrt:
            args[i].requires_grad_(True)
        result = self.forward(*args, **oracles.materialize(call.kwargs))
        outputs = [o for o in oracles.flatten(result) if isinstance(o, t.Tensor)]
        generator = t.Generator().manual_seed(len(outputs))
        seeds = [t.randn(o.shape, generator=generator, dtype=t.float64).to(o.device, o.dtype) for o in outputs]
        # sum(output * seed) as one scalar: as the worker does, and without autograd's first-use import of sympy
        loss = sum((o * s).sum() for o, s in zip(outputs, seeds))
        found = t.autograd.grad(loss, [args[i] for i in self.wrt], allow_unused=True)
        expected = [oracles.plain(g if g is not None else t.zeros_like(args[i])) for g, i in zip(found, self.wrt)]
        _, grads = ctx.student(call, grad={"wrt": list(self.wrt), "seeds": [oracles.plain(s) for s in seeds]})
        params = ctx.signature.params if ctx.signature else ()
        names = [f"the gradient for {params[i] if i < len(params) else f'argument {i}'}" for i in self.wrt]
        if isinstance(grads, str) or not isinstance(grads, list) or len(grads) != len(expected):
            problem = f"could not differentiate the result: {grads}" if isinstance(grads, str) else \
                "the result has no tensor that autograd can differentiate"
            raise ctx.fail(call, problem, self.label)
        for name, e, r in zip(names, expected, grads):
            if r is None:
                problem = f"no gradient reached {name.removeprefix('the gradient for ')}"
                raise ctx.fail(call, problem, self.label, hints=[GENERIC_HINTS["generic.detached"]])
            mismatch = difference(e, r, self.tolerance, name)
            if mismatch:
                raise ctx.fail(call, mismatch, f"{self.label} on {ctx.variant.label}")


@dataclass(frozen=True)
class NoBannedCalls(Check):
    """The code the task runs (its function, the module's helpers it uses, the module's top-level code)
    names none of the lab's banned built-ins and none of the constructs that reach around a ban
    (``grader.declare.source``: torch._C, torch._VF, torch.ops, ctypes, importlib, eval, open, a getattr of a
    computed name, ...). The worker's tripwires catch at run time what reading cannot. A gate that
    voids the task when it fails: the other checks are not run."""

    banned: Sequence[str]
    cases: None = None
    name: str = field(default="uses no banned built-in or construct", kw_only=True)
    examples: Sequence[Call] = field(default=(Call(()),), kw_only=True)
    gate: bool = field(default=True, kw_only=True)

    def verify(self, ctx: Context, call: Call) -> None:
        from grader.declare.source import findings

        found = findings(ctx.sandbox.lab_dir / ctx.lab.filename, ctx.task.function, self.banned)
        if found:
            listed = "; ".join(f"{f.what} (line {f.line})" for f in found[:4]) + (" ..." if len(found) > 4 else "")
            advice = ("build it from tensor operations instead" if all(f.banned_name for f in found) else
                      "honest solutions never need these: write the computation itself")
            # fatal: values computed by a banned route prove nothing, so the task's other checks do not run
            raise Abort("failed", f"{ctx.task.function} uses {listed}, banned in this lab: {advice}")


@dataclass(frozen=True)
class CentralDifferences(Check):
    """The gradients a NumPy function returns are the derivative of a scalar function.

    ``point(call)`` gives the variables (float64 arrays, by name) at which to differentiate,
    ``scalar(call, values)`` computes the function in the grader from values of those variables,
    and ``claimed(call, result)`` picks the student's gradient of each variable out of the result.
    For every variable, along ``directions`` random directions v that move every entry at once
    (standard normal, so no entry is left out, unlike a check of one sampled index), the slope
    (f(p + h v) - f(p - h v)) / 2h must equal sum(gradient * v).
    """

    label: str  # the scalar function as a student would write it, e.g. "sum(dout * (x @ W + b))"
    point: Callable[[Call], dict[str, np.ndarray]]
    scalar: Callable[[Call, dict[str, np.ndarray]], float]
    claimed: Callable[[Call, Any], dict[str, Any]]
    cases: "SearchStrategy[Call] | None" = None
    variants: Sequence[Variant] = field(default=CPU_64, kw_only=True)
    directions: int = 2
    step: float = 1e-5  # h, relative to the largest entry of the variable (at least 1)
    rtol: float = 1e-5  # of |slope| + sum(|gradient * v|)
    atol: float = 1e-7

    def __post_init__(self) -> None:  # its aspects, if given, line up with point's variables: each judges its own
        object.__setattr__(self, "name", self.name or f"gradients match central differences of {self.label}")

    def verify(self, ctx: Context, call: Call) -> None:
        received = ctx.student(call)
        source = f"central differences of {self.label} (float64)"
        point = {k: np.asarray(v, dtype=np.float64) for k, v in self.point(call).items()}
        try:
            grads = self.claimed(call, received)
        except (TypeError, KeyError, IndexError, ValueError, AttributeError):
            raise ctx.fail(call, f"could not find the gradients in the result: received {kind_of(received)}",
                           source) from None
        focus = self._focused(ctx, len(point))
        for index, (name, p) in enumerate(point.items()):
            if focus is not None and index != focus:
                continue
            g = grads.get(name)
            if type(g) is not np.ndarray or g.shape != p.shape or g.dtype.kind not in "fiu":
                problem = f"the gradient for {name} should be an array of shape {p.shape}, received {kind_of(g)}"
                raise ctx.fail(call, problem, source)
            g = g.astype(np.float64)
            if not np.isfinite(g).all():
                raise ctx.fail(call, f"the gradient for {name} has NaN or infinite entries", source)
            rng = np.random.default_rng([zlib.crc32(p.tobytes()), index])
            h = self.step * max(1.0, float(np.abs(p).max(initial=0.0)))
            for _ in range(self.directions):
                v = rng.standard_normal(p.shape)
                plus = float(self.scalar(call, {**point, name: p + h * v}))
                minus = float(self.scalar(call, {**point, name: p - h * v}))
                slope = (plus - minus) / (2 * h)
                claim = float(np.sum(g * v))
                roundoff = 64 * np.finfo(np.float64).eps * (abs(plus) + abs(minus)) / h
                widen = NEAR_MISS_FACTOR if lenient() else 1.0
                allowed = widen * (self.atol + self.rtol * (abs(slope) + float(np.sum(np.abs(g * v))))) + roundoff
                if not abs(slope - claim) <= allowed:
                    problem = (f"the gradient for {name} disagrees with the slope of {self.label}: along a random "
                               f"direction v that moves all {p.size} entries of {name}, "
                               f"(f({name} + h v) - f({name} - h v)) / 2h = {slope:.6g} (h = {h:.0e}), "
                               f"but sum(gradient * v) = {claim:.6g} (they may differ by {allowed:.3g}: atol={self.atol:g} "
                               f"plus rtol={self.rtol:g} of |slope| + sum(|gradient * v|), plus the slope's rounding)")
                    raise ctx.fail(call, problem, source)

    def _focused(self, ctx: Context, variables: int) -> int | None:
        """The index of the one variable to check while the engine judges the aspect in ``ctx.focus``
        (the variables line up with ``aspects``), or None to check them all."""
        if ctx.focus is None or self.aspects is None or len(self.aspects) != variables:
            return None
        ctx.focus_used = True
        return list(self.aspects).index(ctx.focus.name) if ctx.focus.name in self.aspects else -1


def swap_blocks(weights: Sequence[Any], order: Sequence[int]) -> list[Any]:
    """The weights with their blocks along the first axis (a cell's gates; attention's query, key and value)
    rearranged to ``order``."""
    count = len(order)
    return [w.reshape(count, -1, *w.shape[1:])[list(order)].reshape(w.shape) for w in weights]


def blocks_in_wrong_order(oracle: Callable[..., Any], positions: Sequence[int], blocks: int,
                          tolerance: Tolerance | dict[str, Tolerance] | None,
                          named: Sequence[tuple[int, ...]] = ()) -> Callable[[Call, Any, Any], bool]:
    """A ``Mistake.detects`` for weights cut into ``blocks`` blocks in another order than PyTorch's: ``oracle``, with
    the blocks of the arguments at ``positions`` rearranged (in any other order but those ``named`` by a more
    specific mistake), gives what was received (within ``tolerance``) and not what was expected."""
    from itertools import permutations

    def detects(call_: Call, expected: Any, received: Any) -> bool:
        args, kwargs = list(oracles.materialize(call_.args)), oracles.materialize(call_.kwargs)
        for order in permutations(range(blocks)):
            if order == tuple(range(blocks)) or order in named:
                continue
            moved = [swap_blocks([a], order)[0] if i in positions else a for i, a in enumerate(args)]
            wrong = oracles.plain(oracle(*moved, **kwargs))
            if difference(wrong, received, tolerance) is None and difference(wrong, expected, tolerance) is not None:
                return True
        return False
    return detects
