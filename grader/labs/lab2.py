"""Lab 2, optimizers and learning-rate schedules: the tasks, their checks and the mistakes they recognise.

An optimizer is graded the way a training loop uses it: one worker request runs a loop of
calls in which the w and the state that one call returns are passed to the next, exactly
as the student's own loop would (so a state entry that aliases a gradient, or a count kept
outside the state, shows up as it would in training). Every step's w is compared with
``torch.optim`` driven by the same gradients, on every device present; a failure names the
first step that differs and which of torch's state entries the student's state stopped
following there. A run starts from ``{}``, or resumes mid-trajectory from the state the
student returned after a few steps (sent back to the grader and passed in again, as a
checkpoint is). Gradients are random, tiny (where eps placement shows), or have exact
zeros (where a missing eps gives 0/0). Properties: Adam's step is bounded by about lr,
Adagrad's effective rate never grows, a zero gradient leaves SGD's w unchanged (gates: a w
that never moves has them too). The schedules are checked against the handout's tables and
``torch.optim.lr_scheduler``.

The mistakes' step rules compute with PyTorch: the student release ships this file, and none
of it may run as a solution where the students' code runs (a NumPy lab's worker cannot import
torch).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections import defaultdict
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from hypothesis import strategies as st

from grader.declare import oracles
from grader.declare.checks import CPU_64, CPU_BOTH, DEVICES_BOTH, Formula, Matches, Property, Torch, Worked
from grader.declare.compare import difference, kind_of
from grader.declare.describe import describe_value
from grader.declare.context import CheckFailed, Context, dtype_hint
from grader.declare.spec import Aspect, Call, Lab, Mistake, Paths, Task, Tolerance, Variant, call
from grader.declare.strategies import float_arrays, reused, sizes
from grader.sandbox.wire import Unsupported


# Per step, |w - torch's w| <= atol * max(1, max|torch's w|) + rtol * |torch's w|: an absolute part
# scaled by the array's magnitude, since coordinates passing near 0 have large relative errors.
STEP_TOLERANCE = {"float64": Tolerance(1e-10, 1e-12), "float32": Tolerance(1e-5, 1e-6)}
SCHEDULE_TOLERANCE = Tolerance(1e-10, 0.0)

# The properties of moves (|w_new - w| per step): a relative slack, plus the rounding of the subtraction itself,
# MOVE_ULPS units in the last place of |w| before and after (a tiny move of a large w is known only to that).
MOVE_RTOL = 1e-6
MOVE_ULPS = 4.0


def move_rounding(before: np.ndarray, after: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """How far |after - before|, computed in ``dtype``, may be from the exact move: MOVE_ULPS ulps of |w|."""
    eps = float(np.finfo(dtype if np.dtype(dtype).kind == "f" else np.float64).eps)
    return MOVE_ULPS * eps * (np.abs(before) + np.abs(after))


MOVE_TOLERANCE = f"tolerance: rtol={MOVE_RTOL:g}, plus {MOVE_ULPS:g} ulps of |w| for the rounding of the move"

# The contract's defaults (CURRICULUM.md); a call that leaves a hyperparameter out tests the student's default.
DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"lr": 0.01},
    "momentum": {"lr": 0.01, "mu": 0.9},
    "nesterov": {"lr": 0.01, "mu": 0.9},
    "adagrad": {"lr": 0.01, "eps": 1e-10},
    "rmsprop": {"lr": 0.01, "alpha": 0.99, "eps": 1e-8},
    "adadelta": {"lr": 1.0, "rho": 0.9, "eps": 1e-6},
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
}
# Values drawn for the hyperparameters (Python floats: a NumPy float64 would turn float32 results into
# float64). Adadelta's lr is never 1 here: at lr = 1 dropping lr goes unseen.
LR = (0.1, 0.05, 0.2, 0.5)
HYPER: dict[str, dict[str, tuple[float, ...]]] = {
    "sgd": {"lr": LR},
    "momentum": {"lr": LR, "mu": (0.9, 0.5, 0.8, 0.95)},
    "nesterov": {"lr": LR, "mu": (0.9, 0.5, 0.8, 0.95)},
    "adagrad": {"lr": LR, "eps": (1e-10, 1e-6, 1e-3)},
    "rmsprop": {"lr": LR, "alpha": (0.99, 0.9, 0.7, 0.95), "eps": (1e-8, 1e-6, 1e-4)},
    "adadelta": {"lr": (0.5, 2.0, 0.1), "rho": (0.9, 0.7, 0.95, 0.99), "eps": (1e-6, 1e-4, 1e-8)},
    "adam": {"lr": (1e-3, 0.01, 0.05), "beta1": (0.9, 0.7, 0.8, 0.95), "beta2": (0.999, 0.95, 0.99, 0.9995),
             "eps": (1e-8, 1e-6, 1e-4)},
}
SHAPES = ((2,), (3,), (2, 3), (2, 2, 2), (7,))
# An optimizer is judged by its iterates: the state is right when the later steps are.
TRAJECTORY = (Aspect("w at every step"),)


# ----------------------------------------------------------------------------- runs: a loop of steps
#
# A run is a Call of one of three forms (the arguments say how the loop is driven):
#   (w0, grads)                  a fresh run: len(grads) steps from state {}
#   (w0, before, after)          resumed: after len(before) steps the returned state comes back to the
#                                grader and is passed in again, then len(after) more steps
#   (w0, dw, steps)              the same dw array object is passed at every one of `steps` steps
# and its kwargs are the hyperparameters, passed to every step.


def _plan(run: Call) -> tuple[np.ndarray, list[np.ndarray], int | None, bool]:
    """w0, the gradient of every step, the step after which the state is passed back in, same-object dw."""
    w0, second, *rest = run.args
    if isinstance(second, np.ndarray):
        return w0, [second] * int(rest[0]), None, True
    if rest:
        return w0, list(second) + list(rest[0]), len(second), False
    return w0, list(second), None, False


def _hyper(name: str, run: Call) -> dict[str, float]:
    return {**DEFAULTS[name], **run.kwargs}


ORACLES = {"sgd": "torch.optim.SGD", "momentum": "torch.optim.SGD(momentum=mu)",
           "nesterov": "torch.optim.SGD(momentum=mu, nesterov=True)", "adagrad": "torch.optim.Adagrad",
           "rmsprop": "torch.optim.RMSprop", "adadelta": "torch.optim.Adadelta", "adam": "torch.optim.Adam"}


def _torch_kwargs(name: str, h: Mapping[str, float]) -> dict[str, Any]:
    """torch.optim's keyword arguments for these hyperparameters (mu is its momentum, beta1 and beta2 its betas)."""
    if name == "adam":
        return {"lr": h["lr"], "betas": (h["beta1"], h["beta2"]), "eps": h["eps"]}
    kwargs: dict[str, Any] = {"momentum" if k == "mu" else k: v for k, v in h.items()}
    return kwargs | {"nesterov": True} if name == "nesterov" else kwargs


def torch_optimizer(name: str, param: Any, h: Mapping[str, float], **options: Any) -> Any:
    """torch.optim's optimizer of ``param`` with these hyperparameters (``options``: its own, such as foreach)."""
    optimizer = getattr(oracles.torch().optim, ORACLES[name].split("(")[0].split(".")[-1])
    return optimizer([param], **_torch_kwargs(name, h), **options)


def _torch_label(name: str, run: Call) -> str:
    """The oracle as the student would construct it, with this run's hyperparameters."""
    shown = {k: f"({v[0]:g}, {v[1]:g})" if isinstance(v, tuple) else v if isinstance(v, bool) else f"{v:g}"
             for k, v in _torch_kwargs(name, _hyper(name, run)).items()}
    return f"{ORACLES[name].split('(')[0]}({', '.join(f'{k}={v}' for k, v in shown.items())})"


def _torch_run(name: str, run: Call, variant: Variant) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """torch.optim's w and state after every step of the run, on the variant's device."""
    t = oracles.torch()
    w0, grads, _, _ = _plan(run)
    param = oracles.tensor(w0, variant.device).requires_grad_(True)
    ws, states = [], []
    with oracles.eager_only():
        optimizer = torch_optimizer(name, param, _hyper(name, run))
        for g in grads:
            param.grad = oracles.tensor(g, variant.device)
            optimizer.step()
            ws.append(param.detach().cpu().numpy().copy())
            states.append({k: (v.detach().cpu().numpy().copy() if v.dim() else float(v)) if isinstance(v, t.Tensor)
                           else v for k, v in optimizer.state[param].items()})
    return ws, states


def _mistake_run(name: str, update: Callable[..., Any], run: Call) -> list[Any]:
    """The w after every step (NumPy, in w0's dtype) when a mistake's rule ``update(w, dw, buffers, **hyper)``
    (in PyTorch, the contract's defaults filled in) is run as a loop over the run's gradients."""
    t = oracles.torch()
    w0, grads, _, _ = _plan(run)
    w, ws = t.as_tensor(w0.copy()), []
    # buffers read as zeros shaped like w until written; the step count "t" starts at 0
    buffers = defaultdict(functools.partial(t.zeros_like, w), t=0)
    for g in grads:
        w = update(w.clone(), t.as_tensor(g.copy()), buffers, **_hyper(name, run))
        ws.append(w.numpy().copy())
    return ws


def _student_run(ctx: Context, run: Call) -> list[Any]:
    """The student's result of every step, from loops run in the worker (two loops for a resumed run)."""
    w0, grads, resume, same = _plan(run)

    def loop(w: Any, state: Any, gs: Sequence[np.ndarray], offset: int) -> list[Any]:
        n = len(gs)
        calls = [Call((w, gs[0], state), run.kwargs)] + [Call((None, g, None), run.kwargs) for g in gs[1:]]
        links = [(i, 0, "result", i - 1, 0) for i in range(1, n)] + [(i, 2, "result", i - 1, 1) for i in range(1, n)]
        if same:
            links += [(i, 1, "arg", 0, 1) for i in range(1, n)]
        return ctx.student_chain(calls, links, lambda i: _describe_run(ctx, run, offset + i + 1))

    first = loop(w0, {}, grads[:resume], 0)
    if resume is None or len(first) < resume or _form_problem(first[-1]) is not None:
        return first
    w, state = first[-1]
    bad = Unsupported.within(state)
    if bad:
        raise CheckFailed(f"the state returned at step {resume} holds {bad}, which cannot be saved and passed back "
                          f"in: keep only arrays and numbers in state\n  input: {_describe_run(ctx, run, resume)}")
    return first + loop(w, state, grads[resume:], resume)


def _form_problem(result: Any) -> str | None:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return f"returned {kind_of(result)}; an optimizer returns the pair (w_new, state)"
    if not isinstance(result[1], dict):
        return f"returned {kind_of(result[1])} as the state; the second item must be the state dict"
    return None


def _describe_run(ctx: Context, run: Call, upto: int) -> str:
    """The run as a student would write the loop: hyperparameters, w0 and the gradients up to step ``upto``."""
    w0, grads, resume, same = _plan(run)
    hyper = "".join(f", {k}={describe_value(v)}" for k, v in run.kwargs.items())
    loop = "once, from state = {}" if len(grads) == 1 else (
        f"{len(grads)} times in a loop, from state = {{}}, each call given the w and the state the call "
        "before returned")
    lines = [f"{ctx.task.function}(w, dw, state{hyper}) called {loop}",
             f"    w before step 1 = {describe_value(w0)}"]
    if same:
        lines.append(f"    dw = {describe_value(grads[0])} at every step (the same array object each time)")
    else:
        shown = list(range(min(upto, len(grads))))
        if len(shown) > 8:
            shown = shown[:3] + [-1] + shown[-4:]
        lines += ["    ..." if i < 0 else f"    dw at step {i + 1} = {describe_value(grads[i])}" for i in shown]
    if resume is not None:
        lines.append(f"    after step {resume} the returned w and state came back to the grader and were passed in "
                     "again, as a saved checkpoint is")
    return "\n".join(lines)


def _tolerance(expected: np.ndarray) -> Tolerance:
    tol = STEP_TOLERANCE.get(expected.dtype.name, STEP_TOLERANCE["float64"])
    scale = float(np.abs(expected[np.isfinite(expected)]).max(initial=1.0))
    return Tolerance(tol.rtol, tol.atol * scale)


def _same_run(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Two lists of per-step w agree at every step (at the per-step tolerance of the first)."""
    return len(a) == len(b) and all(
        isinstance(x, np.ndarray) and difference(x, y, _tolerance(x)) is None for x, y in zip(a, b))


def _hints(ctx: Context, run: Call, expected: Sequence[np.ndarray], received: Sequence[Any]) -> list[str]:
    """The known mistakes whose own run gives the student's w at every step the student ran."""
    found = []
    for mistake in ctx.task.mistakes:
        try:
            if mistake.produces is not None:
                wrong = _mistake_run(ctx.task.name, mistake.produces, run)[:len(received)]
                if _same_run(wrong, received) and not _same_run(wrong, expected[:len(received)]):
                    found.append(mistake.hint)
            elif mistake.detects is not None and mistake.detects(run, expected, received):
                found.append(mistake.hint)
        except Exception:  # noqa: BLE001 - a mistake that does not apply to this input says nothing
            continue
    slip = dtype_hint(list(expected), list(received))
    return found + [slip] if slip else found


# ----------------------------------------------------------------------------- state entries


def _factor(mine: Any, ref: np.ndarray) -> float | None:
    """c such that mine == c * ref (the lecture's velocity is -lr times torch's), or None."""
    if not isinstance(mine, np.ndarray) or mine.shape != ref.shape or mine.dtype.kind != "f":
        return None
    m, r = mine.astype(np.float64), ref.astype(np.float64)
    if not (np.isfinite(m).all() and np.isfinite(r).all()) or not np.abs(r).max() > 0:
        return None
    c = float((m * r).sum() / (r * r).sum())
    return c if c != 0 and _close(m, c * r) else None


def _close(mine: np.ndarray, ref: np.ndarray) -> bool:
    return bool(np.allclose(mine, ref, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(ref).max()))))


def _follows(mine: dict[str, Any], key: Any, factor: float | None, ref: Any) -> bool:
    value = mine.get(key)
    if factor is None:  # a step count
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and value == ref
    return isinstance(value, np.ndarray) and value.shape == ref.shape and _close(value.astype(np.float64), factor * ref)


# The step counts a rule reads (Adam's bias correction); any other count in torch's state is its bookkeeping.
COUNTED = {"adam": ("step",)}


def _state_story(torch_states: Sequence[dict[str, Any]], states: Sequence[Any], last: int,
                 torch_name: str = "") -> list[str]:
    """Which of torch's state entries the student's state followed up to step ``last`` (from 0), and where
    it stopped following one. Entries are matched by value, up to a constant factor, whatever their names."""
    lines, kept, used = [], [], set()
    for key in torch_states[0]:
        if not isinstance(torch_states[0][key], np.ndarray) and key not in COUNTED.get(torch_name, ()):
            continue  # torch's bookkeeping ('step' in Adagrad, RMSprop, Adadelta): the rule itself never reads it
        start = next((s for s in range(last + 1) if not isinstance(torch_states[s][key], np.ndarray)
                      or np.abs(torch_states[s][key]).max() > 0), None)
        if start is None or start >= len(states) or not isinstance(states[start], dict):
            continue
        ref = torch_states[start][key]
        mine = states[start]
        match: tuple[Any, Any] | None
        if isinstance(ref, np.ndarray):
            candidates = [(k, c) for k, v in mine.items() if k not in used and (c := _factor(v, ref)) is not None]
            # the same entry first; one scaled by a constant (the lecture's -lr * v) only where that is not
            # a coincidence of a single nonzero entry
            match = next((m for m in candidates if abs(m[1] - 1) <= 1e-6), None) or next(
                (m for m in candidates if np.count_nonzero(ref) > 1), None)
        else:
            match = next(((k, None) for k in mine if _follows(mine, k, None, ref)), None)
        if match is None:
            shown = describe_value(ref) if isinstance(ref, np.ndarray) else f"{ref:g}"
            lines.append(f"state: after step {start + 1} nothing in your state holds torch's '{key}' ({shown}); "
                         f"your state has {sorted(mine) or 'no entries'}")
            continue
        mine_key, c = match
        used.add(mine_key)
        times = f" times {c:.6g}" if c is not None and abs(c - 1) > 1e-6 else ""
        for s in range(start + 1, min(last + 1, len(states))):
            if not isinstance(states[s], dict) or not _follows(states[s], mine_key, c, torch_states[s][key]):
                ref_s = torch_states[s][key]
                got = states[s].get(mine_key) if isinstance(states[s], dict) else None
                want = describe_value(ref_s if c is None else c * ref_s)
                lines.append(f"state: your '{mine_key}' held torch's '{key}'{times} through step {s} and first differs "
                             f"from it after step {s + 1}: expected {want}, received {describe_value(got)}")
                break
        else:
            kept.append(f"'{mine_key}' = torch's '{key}'{times}")
    if kept:
        lines.append(f"state after step {last + 1} still matches torch: {', '.join(kept)}")
    return lines


# ----------------------------------------------------------------------------- the checks of a run


def _fail(ctx: Context, run: Call, problem: str, source: str, upto: int, extra: Sequence[str] = ()) -> CheckFailed:
    lines = [problem, f"  input: {_describe_run(ctx, run, upto)}", f"  expected values from {source}"]
    lines += [f"  {line}" for line in extra]
    return CheckFailed("\n".join(lines))


def _compare_run(ctx: Context, run: Call, expected: Sequence[np.ndarray], source: str,
                 torch_states: Sequence[dict[str, Any]]) -> None:
    """Run the student's loop and compare w after every step."""
    received = _student_run(ctx, run)
    steps = len(expected)
    for s in range(steps):
        problem = _form_problem(received[s]) if s < len(received) else "the loop stopped early"
        if problem:
            raise _fail(ctx, run, f"step {s + 1} of {steps} {problem}", source, s + 1)
        problem = difference(expected[s], received[s][0], _tolerance(expected[s]), f"w after step {s + 1} of {steps}")
        if problem:
            # every well-formed step the student took, so that later steps tell similar mistakes apart
            formed = list(itertools.takewhile(lambda r: _form_problem(r) is None, received))
            extra = _state_story(torch_states, [r[1] for r in formed], s, ctx.task.name) if torch_states else []
            extra += [f"hint: {h}" for h in _hints(ctx, run, expected, [r[0] for r in formed])]
            raise _fail(ctx, run, problem, source, s + 1, extra)


def _matches_torch(ctx: Context, run: Call) -> None:
    expected, states = _torch_run(ctx.task.name, run, ctx.variant)
    _compare_run(ctx, run, expected, f"{_torch_label(ctx.task.name, run)} on {ctx.variant.label}", states)


def _matches_handout(ctx: Context, run: Call) -> None:
    expected = [np.asarray(w, dtype=np.float64) for w in run.expected]
    _, states = _torch_run(ctx.task.name, run, ctx.variant)  # only to say which state entry went wrong
    _compare_run(ctx, run, expected, f"the handout's worked example ({run.note})", states)


def _student_ws(ctx: Context, run: Call) -> list[np.ndarray]:
    """The student's w per step, for a property; a malformed step is reported as such."""
    received = _student_run(ctx, run)
    steps = len(_plan(run)[1])
    for s in range(steps):
        problem = _form_problem(received[s]) if s < len(received) else "the loop stopped early"
        if problem is None and not isinstance(received[s][0], np.ndarray):
            problem = f"returned {kind_of(received[s][0])} as w; expected a numpy.ndarray"
        if problem:
            raise _fail(ctx, run, f"step {s + 1} of {steps} {problem}", "the calling convention", s + 1)
    return [r[0] for r in received[:steps]]


def _property_failure(ctx: Context, run: Call, problem: str, ws: list[np.ndarray], step: int) -> CheckFailed:
    expected, _ = _torch_run(ctx.task.name, run, ctx.variant)
    hints = [f"hint: {h}" for h in _hints(ctx, run, expected, ws)]
    return _fail(ctx, run, problem, "a property every correct answer has", step, hints)


# ----------------------------------------------------------------------------- generated runs


@reused
def hyperparameters(name: str) -> st.SearchStrategy[dict[str, float]]:
    """The contract's defaults (nothing passed: what Hypothesis shrinks to), or drawn values for all of them."""
    def pick(seed: int) -> dict[str, float]:
        if seed % 3 == 0:
            return {}
        rng = np.random.default_rng(seed)
        return {k: float(v[rng.integers(len(v))]) for k, v in HYPER[name].items()}
    return st.integers(0, 2**32 - 1).map(pick)


def runs(name: str, kind: str = "fresh", gradients: str = "any", steps: int = 12) -> st.SearchStrategy[Call]:
    """A run of ``name`` from a random w: ``kind`` fresh, resume (the state passed back in after 2 or more
    steps) or same (one dw object at every step); ``gradients`` any (random), tiny (1e-6 to 1e-3 in size)
    or zeros (many exact zeros, one of them on step 1). Few draws, since each costs Hypothesis time."""
    @st.composite
    def draw_run(draw: st.DrawFn) -> Call:
        shape = draw(st.sampled_from(SHAPES))
        n = draw(sizes(3 if kind == "resume" else 1, steps))
        values = draw(float_arrays((n + 1, *shape)))
        scale = draw(st.sampled_from((1e-4, 1e-6, 1e-5, 1e-3))) if gradients == "tiny" else 1.0
        w0, g = values[0], values[1:] * scale
        split = draw(st.integers(0, 2**16)) if kind == "resume" else 0
        hyper = draw(hyperparameters(name))
        if gradients == "zeros":
            g[np.random.default_rng(n).random(g.shape) < 0.4] = 0.0
            g.reshape(n, -1)[0, 0] = 0.0
        if kind == "same":
            return Call((w0, g[0], n), hyper)
        if kind == "resume":
            k = 2 + split % (n - 2)
            return Call((w0, list(g[:k]), list(g[k:])), hyper)
        return Call((w0, list(g)), hyper)
    return draw_run()


def _worked(w0: Sequence[float], grads: Sequence[Sequence[float]], ws: Sequence[Sequence[float]], note: str,
            **hyper: float) -> Call:
    return Call((np.array(w0, dtype=np.float64), [np.array(g, dtype=np.float64) for g in grads]), hyper, note, list(ws))


def optimizer(name: str, points: int, worked: Sequence[Call], mistakes: Sequence[Mistake],
              extra: Sequence[Property] = (), tiny: bool = True) -> Task:
    """An optimizer's task: the checks every optimizer has (tiny gradients and exact zeros only where eps matters),
    then its own properties, and the mistakes its hints name."""
    label = ORACLES[name]
    checks = [
        Property("reproduces the handout's worked examples", _matches_handout, examples=worked, variants=CPU_64),
        Property(f"matches {label} step by step from a fresh state", _matches_torch, runs(name),
                 variants=DEVICES_BOTH),
        Property(f"matches {label} resumed mid-run (the returned state passed back in)", _matches_torch,
                 runs(name, "resume"), variants=DEVICES_BOTH, max_examples=8),
        Property(f"matches {label} with one dw array passed at every step (and leaves it unchanged)",
                 _matches_torch, runs(name, "same"), variants=CPU_64, max_examples=6),
    ]
    if tiny:
        checks += [
            Property(f"matches {label} on tiny gradients (1e-6 to 1e-3: where eps matters)", _matches_torch,
                     runs(name, gradients="tiny"), variants=CPU_BOTH, max_examples=8),
            Property(f"matches {label} on gradients with exact zeros", _matches_torch,
                     runs(name, gradients="zeros"), variants=CPU_64, max_examples=6),
        ]
    return Task(name, points=points, returns=("w_new", "state"), may_modify=("w", "state"), aspects=TRAJECTORY,
                checks=checks + list(extra), mistakes=mistakes)


# ----------------------------------------------------------------------------- the optimizer tasks
#
# Each with its own properties and its mistakes' step rules: a rule takes one step, ``update(w, dw, buffers,
# **hyper) -> w_new`` on tensors, reading and writing its buffers (zeros before the first step, any names) and
# the step count ``buffers["t"]`` (0 before the first); the hint-finder runs it as a loop over the failing run
# (``_mistake_run``) and compares every step with the student's.


def _sgd_zero_gradient(ctx: Context, run: Call) -> None:
    w0, grads, _, _ = _plan(run)
    ws = _student_ws(ctx, run)
    for s, w in enumerate(ws):
        if w.shape != w0.shape or not np.array_equal(w, w0):
            problem = difference(w0, w, Tolerance(0.0, 0.0), f"w after step {s + 1}") or "w changed"
            raise _property_failure(ctx, run, f"a zero gradient moved w: {problem}", ws, s + 1)


SGD = optimizer(
    "sgd", 5, tiny=False,
    worked=[_worked([2.0], [[-0.2]], [[2.02]], "the lecture's step: w = 2, dw = -0.2, lr = 0.1", lr=0.1)],
    extra=[Property("a zero gradient leaves w unchanged", _sgd_zero_gradient,
                    runs("sgd").map(lambda r: r.with_args((r.args[0], [np.zeros_like(g) for g in r.args[1]]))),
                    variants=CPU_BOTH, max_examples=6, gate=True)],
    mistakes=[
        Mistake("w_moved_along_dw",
                "w moved along +dw (gradient ascent): descent subtracts, w_new = w - lr * dw; check the sign",
                produces=lambda w, dw, b, lr: w + lr * dw),
        Mistake("learning_rate_missing_step",
                "the learning rate is missing: the step is lr * dw, not dw",
                produces=lambda w, dw, b, lr: w - dw),
    ],
)


def _momentum(sign: float = 1.0, damp: bool = False, previous: bool = False, nesterov: bool = False,
              old_velocity: bool = False, ascent: bool = False) -> Callable[..., Any]:
    """A momentum rule with one mistake: the velocity v = mu * v + dw, then the step lr * v, or Nesterov's
    lr * (dw + mu * v) (``nesterov``)."""
    def update(w: Any, dw: Any, b: dict[str, Any], lr: float, mu: float) -> Any:
        old = b["v"]
        b["v"] = mu * old + ((1 - mu) if damp else sign) * dw
        step = (dw + mu * (old if old_velocity else b["v"])) if nesterov else (old if previous else b["v"])
        return w + lr * step if ascent else w - lr * step
    return update


MOMENTUM = optimizer(
    "momentum", 10,
    worked=[_worked([0.0], [[1.0]] * 4, [[-0.1], [-0.29], [-0.5609999999999999], [-0.9048999999999999]],
                    "g = 1 at every step", lr=0.1, mu=0.9)],
    mistakes=[
        Mistake("w_walks_uphill_lecture",
                "w walks uphill: the lecture's v = mu * v - dw (the minus sign inside the velocity) was combined with "
                "PyTorch's w -= lr * v; keep one convention's signs together: v = mu * v + dw; w = w - lr * v",
                produces=_momentum(sign=-1.0)),
        Mistake("velocity_kept_state_between",
                "the velocity is not kept in state between steps: after the first step every step is plain SGD; "
                "store v in state (state['v'] = v) and return the state",
                produces=lambda w, dw, b, lr, mu: w - lr * dw),
        Mistake("gradient_dampened_pytorch_s",
                "the gradient was dampened: PyTorch's velocity is v = mu * v + dw (dampening=0), not the moving "
                "average mu * v + (1 - mu) * dw", produces=_momentum(damp=True)),
        Mistake("w_moved_previous_step",
                "w moved with the previous step's velocity: update v = mu * v + dw first, then step w -= lr * v with "
                "the new v", produces=_momentum(previous=True)),
    ],
)


NESTEROV = optimizer(
    "nesterov", 10,
    worked=[_worked([0.0], [[1.0]] * 4, [[-0.19], [-0.461], [-0.8049000000000001], [-1.2144100000000002]],
                    "g = 1 at every step", lr=0.1, mu=0.9)],
    mistakes=[
        Mistake("step_lr_v_plain",
                "the step is lr * v: that is plain momentum; Nesterov steps by lr * (dw + mu * v) with the updated v",
                produces=_momentum()),
        Mistake("look_ahead_used_velocity",
                "the look-ahead used the velocity from before the update: first v = mu * v + dw, then step by "
                "lr * (dw + mu * v) with the updated velocity",
                produces=_momentum(nesterov=True, old_velocity=True)),
        Mistake("w_walks_uphill_cs231n",
                "w walks uphill: in CS231n's form (v holds -lr * dw) the step is added, w += -mu * v_prev + "
                "(1 + mu) * v; check the sign", produces=_momentum(nesterov=True, ascent=True)),
    ],
)


def _adagrad_rate_never_grows(ctx: Context, run: Call) -> None:
    """Each coordinate's rate |change of w| / |dw| (where |dw| > 1e-3) is at most its lowest so far. A rate
    is known to within the rounding of its move (``move_rounding``), so it fails only when even its smallest
    possible value exceeds the largest possible value of an earlier rate, by more than MOVE_RTOL."""
    w0, grads, _, _ = _plan(run)
    ws = _student_ws(ctx, run)
    before, where = w0.astype(np.float64), np.zeros(w0.shape, dtype=int)
    lowest, ceiling = np.full(w0.shape, np.inf), np.full(w0.shape, np.inf)
    for s, (w, g) in enumerate(zip(ws, grads)):
        after = np.asarray(w, dtype=np.float64)
        if after.shape != before.shape:
            return  # the trajectory checks report the shape
        g = np.abs(g.astype(np.float64))
        seen = g > 1e-3
        size = np.where(seen, g, 1.0)
        rate = np.where(seen, np.abs(after - before) / size, np.nan)
        error = move_rounding(before, after, np.asarray(w).dtype) / size
        grew = seen & ~(rate - error <= ceiling * (1 + MOVE_RTOL))
        if grew.any():
            i = tuple(int(j) for j in np.argwhere(grew)[0])
            problem = (f"the effective learning rate |change of w| / |dw| of w{list(i)} grew from {lowest[i]:.10g} "
                       f"(step {where[i] + 1}) to {rate[i]:.10g} at step {s + 1} ({MOVE_TOLERANCE}): Adagrad divides "
                       "by the square root of a sum that only grows, so each coordinate's rate can only shrink")
            raise _property_failure(ctx, run, problem, ws, s + 1)
        update = seen & (rate + error < ceiling)
        ceiling = np.where(update, rate + error, ceiling)
        lowest, where = np.where(update, rate, lowest), np.where(update, s, where)
        before = after


def _adagrad(accumulate: bool = True, root: bool = True, after: bool = False,
             eps_on: bool = True, eps_inside: bool = False) -> Callable[..., Any]:
    def update(w: Any, dw: Any, b: dict[str, Any], lr: float, eps: float) -> Any:
        old = b["h"]
        b["h"] = (old if accumulate else 0) + dw * dw
        h = old if after else b["h"]
        if eps_inside:
            return w - lr * dw / (h + eps).sqrt()
        return w - lr * dw / ((h.sqrt() if root else h) + (eps if eps_on else 0))
    return update


ADAGRAD = optimizer(
    "adagrad", 10,
    worked=[
        _worked([0.0], [[1.0]] * 4,
                [[-0.009999999999], [-0.017071067810365475], [-0.0228445705019284], [-0.0278445705016784]],
                "g = 1 at every step", lr=0.01),
        _worked([0.0, 0.0], [[0.1, 10.0]], [[-0.00999999999, -0.0099999999999]],
                "first step with g = (0.1, 10): both move by lr (less eps)", lr=0.01),
    ],
    extra=[Property("its effective learning rate |change of w| / |dw| never grows", _adagrad_rate_never_grows,
                    runs("adagrad"), variants=CPU_64, max_examples=8, gate=True)],
    mistakes=[
        Mistake("h_accumulate_running_sum",
                "h does not accumulate: it must be the running sum of every squared gradient so far (h = h + dw**2, "
                "kept in state); with only this step's dw**2 each coordinate moves by about lr at every step and the "
                "rate never decays", produces=_adagrad(accumulate=False)),
        Mistake("divided_h_instead_square",
                "divided by h instead of its square root: the step is lr * dw / (sqrt(h) + eps)",
                produces=_adagrad(root=False)),
        Mistake("eps_inside_square_root",
                "eps inside the square root: PyTorch's Adagrad divides by sqrt(h) + eps, not sqrt(h + eps); the two "
                "differ while h is small (the first steps, small gradients)", produces=_adagrad(eps_inside=True)),
        Mistake("divided_h_before_adding",
                "divided by h before adding dw**2 to it: add this step's squared gradient first, then divide "
                "(on the first step the old h is 0 and the step becomes lr * dw / eps)", produces=_adagrad(after=True)),
        Mistake("eps_missing_step_lr",
                "eps is missing: the step is lr * dw / (sqrt(h) + eps); without eps a coordinate whose gradients "
                "so far are all 0 gives 0 / 0 = nan", produces=_adagrad(eps_on=False)),
    ],
)


def _rmsprop(swapped: bool = False, root: bool = True, eps_inside: bool = False,
             from_first: bool = False) -> Callable[..., Any]:
    def update(w: Any, dw: Any, b: dict[str, Any], lr: float, alpha: float, eps: float) -> Any:
        old = dw * dw if from_first and "s" not in b else b["s"]
        b["s"] = alpha * dw * dw + (1 - alpha) * old if swapped else alpha * old + (1 - alpha) * dw * dw
        s = b["s"]
        return w - lr * dw / ((s + eps).sqrt() if eps_inside else (s.sqrt() if root else s) + eps)
    return update


RMSPROP = optimizer(
    "rmsprop", 10,
    worked=[_worked([0.0], [[1.0]] * 3, [[-0.09999999000000095], [-0.17088810547570926], [-0.22891301058529684]],
                    "g = 1 at every step, the defaults", lr=0.01)],
    mistakes=[
        Mistake("alpha_1_alpha_swapped",
                "alpha and 1 - alpha are swapped: s = alpha * s + (1 - alpha) * dw**2 (alpha weighs the old "
                "average)", produces=_rmsprop(swapped=True)),
        Mistake("divided_s_instead_square",
                "divided by s instead of its square root: the step is lr * dw / (sqrt(s) + eps)",
                produces=_rmsprop(root=False)),
        Mistake("eps_inside_square_root",
                "eps inside the square root: PyTorch divides by sqrt(s) + eps, not sqrt(s + eps); the two differ for "
                "small gradients", produces=_rmsprop(eps_inside=True)),
        Mistake("s_started_dw_2",
                "s started at dw**2: it starts at zeros, so the first s is (1 - alpha) * dw**2",
                produces=_rmsprop(from_first=True)),
    ],
)


def _adadelta(u_first: bool = False, numerator_eps: bool = True, use_lr: bool = True,
              inverted: bool = False) -> Callable[..., Any]:
    def update(w: Any, dw: Any, b: dict[str, Any], lr: float, rho: float, eps: float) -> Any:
        b["s"] = rho * b["s"] + (1 - rho) * dw * dw
        u = b["u"]
        top = (u + eps).sqrt() if numerator_eps else u.sqrt()
        delta = (b["s"] + eps).sqrt() / (u + eps).sqrt() * dw if inverted else top / (b["s"] + eps).sqrt() * dw
        b["u"] = rho * u + (1 - rho) * delta * delta
        if u_first:
            delta = (b["u"] + eps).sqrt() / (b["s"] + eps).sqrt() * dw
        return w - (lr if use_lr else 1.0) * delta
    return update


ADADELTA = optimizer(
    "adadelta", 14,
    worked=[_worked([0.0], [[1.0]] * 3, [[-0.0031622618488986636], [-0.0064066736225993435], [-0.009707462346758634]],
                    "g = 1 at every step, the defaults")],
    mistakes=[
        Mistake("u_updated_before_step",
                "u was updated before the step was computed: compute the step from the old u (u from the steps "
                "before), then fold its square into u", produces=_adadelta(u_first=True)),
        Mistake("eps_missing_numerator_step",
                "eps is missing from the numerator: the step is sqrt(u + eps) / sqrt(s + eps) * dw; with u = 0 at "
                "the start, sqrt(u) is 0 and w never moves", produces=_adadelta(numerator_eps=False)),
        Mistake("learning_rate_missing_pytorch",
                "the learning rate is missing: PyTorch multiplies Adadelta's step by lr (default 1.0)",
                produces=_adadelta(use_lr=False)),
        Mistake("ratio_inverted_step_sqrt",
                "the ratio is inverted: the step is sqrt(u + eps) / sqrt(s + eps) * dw, not "
                "sqrt(s + eps) / sqrt(u + eps) * dw", produces=_adadelta(inverted=True)),
    ],
)


def adam_bound(lr: float, beta1: float, beta2: float, t: int) -> float:
    """The largest |step| Adam can take at step t: lr * |m_hat| / sqrt(v_hat) by Cauchy-Schwarz (1 * lr at t = 1)."""
    ratio = beta1 * beta1 / beta2
    series = t if abs(ratio - 1) < 1e-12 else (1 - ratio**t) / (1 - ratio)
    return lr * (1 - beta1) / (1 - beta1**t) * math.sqrt((1 - beta2**t) / (1 - beta2) * series)


def _adam_step_bounded(ctx: Context, run: Call) -> None:
    h = _hyper("adam", run)
    ws = _student_ws(ctx, run)
    before = _plan(run)[0].astype(np.float64)
    for s, w in enumerate(ws):
        after = np.asarray(w, dtype=np.float64)
        move = np.abs(after - before) if after.shape == before.shape else np.full(before.shape, np.inf)
        bound = adam_bound(h["lr"], h["beta1"], h["beta2"], s + 1)
        over = ~(move <= bound * (1 + MOVE_RTOL) + move_rounding(before, after, np.asarray(w).dtype))
        if over.any():
            i = tuple(int(j) for j in np.argwhere(over)[0])
            what = ("the first step moves every coordinate by lr * |dw| / (|dw| + eps), at most lr" if s == 0 else
                    f"at step {s + 1} no Adam step can be larger than {bound / h['lr']:.4g} * lr (Cauchy-Schwarz on "
                    "m_hat / sqrt(v_hat))")
            problem = (f"step {s + 1} moved w{list(i)} by {float(move[i]):.6g}, more than Adam ever moves a "
                       f"coordinate: {what} = {bound:.6g} here ({MOVE_TOLERANCE})")
            raise _property_failure(ctx, run, problem, ws, s + 1)
        before = after


def _adam(correct: bool = True, eps_inside: bool = False, t_shift: int = 0, swapped: bool = False,
          minus: bool = False, folded: bool = False) -> Callable[..., Any]:
    def update(w: Any, dw: Any, b: dict[str, Any], lr: float, beta1: float, beta2: float, eps: float) -> Any:
        b1, b2 = (beta2, beta1) if swapped else (beta1, beta2)
        b["t"] += 1
        t = b["t"] + t_shift
        b["m"] = b1 * b["m"] + (1 - b1) * (-dw if minus else dw)
        b["v"] = b2 * b["v"] + (1 - b2) * dw * dw
        if folded:  # the paper's "more efficient" order: the corrections folded into the rate, eps left as is
            return w - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * b["m"] / (b["v"].sqrt() + eps)
        m_hat, v_hat = (b["m"] / (1 - b1**t), b["v"] / (1 - b2**t)) if correct else (b["m"], b["v"])
        return w - lr * m_hat / ((v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps)
    return update


def _adam_count_carried_over(run: Call, expected: Sequence[np.ndarray], received: Sequence[Any]) -> bool:
    """The student's run is Adam's with the step count starting some steps late (2 to 400: a count kept
    between runs; 1 late is the off-by-one mistake)."""
    if not received or any(not isinstance(w, np.ndarray) for w in received):
        return False
    for shift in range(2, 401):
        wrong = _mistake_run("adam", _adam(t_shift=shift), run)[:len(received)]
        if _same_run(wrong[:1], received[:1]):
            return _same_run(wrong, received) and not _same_run(wrong, expected[:len(received)])
    return False


ADAM = optimizer(
    "adam", 20,
    worked=[
        _worked([0.0], [[1.0]] * 3, [[-0.0009999999900000003], [-0.001999999979999993], [-0.0029999999699999924]],
                "g = 1 at every step, the defaults: every step moves by lr"),
        _worked([0.0], [[1e-4]], [[-0.000999900009999]], "first step with g = 1e-4: still about lr"),
    ],
    extra=[Property("moves each coordinate by at most about lr per step", _adam_step_bounded, runs("adam"),
                    variants=CPU_64, max_examples=8, gate=True)],
    mistakes=[
        Mistake("bias_correction_divide_m",
                "no bias correction: divide m by (1 - beta1**t) and v by (1 - beta2**t), with t = 1 on the first "
                "step; without it the first step is about 3.16 * lr at the defaults", produces=_adam(correct=False)),
        Mistake("eps_inside_square_root",
                "eps inside the square root (the lecture's sqrt(v_hat + eps)): PyTorch divides by sqrt(v_hat) + eps; "
                "the two differ for small gradients", produces=_adam(eps_inside=True)),
        Mistake("step_count_off_one",
                "the step count is off by one: the bias correction used t = 0 on the first step (1 - beta**0 = 0); "
                "increment t before using it, so that t = 1 on the first step", produces=_adam(t_shift=-1)),
        Mistake("step_count_off_one_2",
                "the step count is off by one: t must be 1 on the first step of a fresh state ({}), then 2, 3, ...",
                produces=_adam(t_shift=1)),
        Mistake("eps_folded_into_rate",
                "eps was left as is when the bias corrections were folded into the rate (the paper's faster order, "
                "lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t) and w - lr_t * m / (sqrt(v) + eps)): that eps is "
                "eps * sqrt(1 - beta2**t) in PyTorch's form; divide by sqrt(v_hat) + eps as PyTorch does",
                produces=_adam(folded=True)),
        Mistake("step_count_shared_between_runs",
                "the step count outlived its optimizer: t was kept outside state (a global or a default argument), "
                "so a fresh state ({}) started at a later t; keep t in state, starting from 0 in a new state",
                detects=_adam_count_carried_over),
        Mistake("beta1_beta2_swapped_beta1",
                "beta1 and beta2 are swapped: beta1 (0.9) averages the gradient (m), beta2 (0.999) its square (v)",
                produces=_adam(swapped=True)),
        Mistake("w_walks_uphill_lecture",
                "w walks uphill: the lecture's form folds a minus sign into m (m = beta1 * m - (1 - beta1) * dw) and "
                "adds the step; with PyTorch's m subtract it, w - lr * m_hat / (sqrt(v_hat) + eps); check the sign",
                produces=_adam(minus=True)),
    ],
)


# ----------------------------------------------------------------------------- schedules


def _scheduler_lr(make: Callable[[Any, Any], Any], lr0: float, t: int) -> float:
    """The learning rate a torch scheduler gives at step t (after t calls of scheduler.step())."""
    torch = oracles.torch()
    with oracles.eager_only(), warnings.catch_warnings():
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
        scheduler = make(torch.optim.lr_scheduler, optimizer)
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": no training here
        for _ in range(t):
            scheduler.step()
        return float(optimizer.param_groups[0]["lr"])


def schedule(name: str, points: int, worked: Sequence[tuple[Call, float]], formula: str, fn: Callable[..., Any],
             scheduler: Torch, cases: st.SearchStrategy[Call], mistakes: Sequence[Mistake]) -> Task:
    """A schedule's task: the handout's table, the formula evaluated by PyTorch in float64 (``fn(torch, *args)``
    with the arguments as float64 tensors, so that it cannot run where a student's NumPy code runs), and torch's
    scheduler."""
    def compute(*args: float) -> float:
        torch = oracles.torch()
        return float(fn(torch, *(torch.tensor(float(a), dtype=torch.float64) for a in args)))
    return Task(name, points=points, mistakes=mistakes, checks=[
        Worked(worked, tolerance=SCHEDULE_TOLERANCE),
        Matches(Formula(formula, compute), cases, tolerance=SCHEDULE_TOLERANCE),
        Matches(scheduler, cases, tolerance=SCHEDULE_TOLERANCE, max_examples=8),
    ])


LR0 = st.one_of(st.sampled_from((0.1, 1.0, 0.01, 0.5, 3e-4)), st.floats(1e-4, 2.0))
RATES = st.one_of(st.sampled_from((0.1, 0.0, 0.01, 0.5, 1.0, 0.05)), st.floats(0.0, 1.0))
TIMES = sizes(0, 100)
decay_calls = st.builds(call, LR0, RATES, TIMES)
step_calls = st.builds(call, LR0, st.one_of(st.sampled_from((0.5, 0.1, 0.9)), st.floats(0.01, 0.99)), sizes(1, 12),
                       TIMES)

EXPONENTIAL_LR = Torch("torch.optim.lr_scheduler.ExponentialLR(gamma=exp(-k))", lambda lr0, k, t: _scheduler_lr(
    lambda s, o: s.ExponentialLR(o, gamma=math.exp(-k)), lr0, t))
EXPONENTIAL_DECAY = schedule(
    "exponential_decay", 7,
    worked=[(call(0.1, 0.1, t, note="the handout's table"), v) for t, v in
            ((0, 0.1), (1, 0.09048374180359596), (5, 0.06065306597126335), (10, 0.036787944117144235),
             (20, 0.013533528323661271), (50, 0.0006737946999085467))]
           + [(call(0.5, 0.0, 7, note="k = 0: no decay"), 0.5)],
    formula="the formula lr0 * exp(-k * t)", fn=lambda T, lr0, k, t: lr0 * T.exp(-k * t),
    scheduler=EXPONENTIAL_LR, cases=decay_calls,
    mistakes=[
        Mistake("rate_grows_exponent_k",
                "the rate grows: the exponent is -k * t (check the sign)",
                produces=lambda lr0, k, t: lr0 * math.exp(k * t)),
        Mistake("k_used_base_power",
                "k was used as the base of a power (lr0 * k**t): k is the rate in exp(-k * t), the base is e",
                produces=lambda lr0, k, t: lr0 * k**t),
        Mistake("off_one_t_counts",
                "off by one: t counts from 0, and at t = 0 the rate is lr0",
                produces=lambda lr0, k, t: lr0 * math.exp(-k * (t + 1))),
    ],
)


INVERSE_TIME_LR = Torch("torch.optim.lr_scheduler.LambdaLR(lambda t: 1 / (1 + k * t))", lambda lr0, k, t: _scheduler_lr(
    lambda s, o: s.LambdaLR(o, lambda step: 1 / (1 + k * step)), lr0, t))
INVERSE_TIME_DECAY = schedule(
    "inverse_time_decay", 6,
    worked=[(call(0.1, 0.1, t, note="the handout's table"), v) for t, v in
            ((0, 0.1), (1, 0.09090909090909091), (5, 0.06666666666666667), (10, 0.05), (20, 0.03333333333333333),
             (50, 0.016666666666666666))],
    formula="the formula lr0 / (1 + k * t)", fn=lambda T, lr0, k, t: lr0 / (1 + k * t),
    scheduler=INVERSE_TIME_LR, cases=decay_calls,
    mistakes=[
        Mistake("missing_parentheses_lr0_1",
                "missing parentheses: lr0 / 1 + k * t is lr0 + k * t; write lr0 / (1 + k * t)",
                produces=lambda lr0, k, t: lr0 / 1 + k * t),
        Mistake("off_one_t_counts",
                "off by one: t counts from 0, and at t = 0 the rate is lr0",
                produces=lambda lr0, k, t: lr0 / (1 + k * (t + 1))),
        Mistake("compounded_lr0_1_k",
                "compounded: lr0 / (1 + k)**t is exponential decay with base 1 / (1 + k); inverse time decay "
                "divides by 1 + k * t", produces=lambda lr0, k, t: lr0 / (1 + k) ** t),
    ],
)


STEP_LR = Torch("torch.optim.lr_scheduler.StepLR", lambda lr0, gamma, step_size, t: _scheduler_lr(
    lambda s, o: s.StepLR(o, step_size=step_size, gamma=gamma), lr0, t))
STEP_DECAY = schedule(
    "step_decay", 8,
    worked=[(call(0.1, 0.5, 5, t, note="the handout's table"), v) for t, v in
            ((0, 0.1), (1, 0.1), (5, 0.05), (10, 0.025), (20, 0.00625), (50, 9.765625e-05))]
           + [(call(0.01, 0.1, 30, t, note="the lecture's AlexNet recipe: divide by 10 every 30 epochs"), v)
              for t, v in ((0, 1e-2), (29, 1e-2), (30, 1e-3), (59, 1e-3), (60, 1.0000000000000002e-04),
                           (90, 1.0000000000000003e-05))],
    formula="the formula lr0 * gamma ** floor(t / step_size)", fn=lambda T, lr0, g, s, t: lr0 * g ** T.floor(t / s),
    scheduler=STEP_LR, cases=step_calls,
    mistakes=[
        Mistake("round_instead_floor_rate",
                "round() instead of floor: the rate drops only when a whole step_size has passed; use t // step_size",
                produces=lambda lr0, g, s, t: lr0 * g ** round(t / s)),
        Mistake("floor_gamma_t_step",
                "no floor: gamma ** (t / step_size) decays smoothly; the rate is constant for step_size steps, so "
                "floor the exponent (t // step_size)", produces=lambda lr0, g, s, t: lr0 * g ** (t / s)),
        Mistake("off_one_first_drop",
                "off by one: the first drop comes at t = step_size, not step_size - 1 (t counts from 0)",
                produces=lambda lr0, g, s, t: lr0 * g ** ((t + 1) // s)),
    ],
)


LAB = Lab(
    name="lab2",
    title="Optimizers and learning-rate schedules",
    module="optimizers",
    kind="numpy",
    banned_source=("torch",),
    tasks=[SGD, MOMENTUM, NESTEROV, ADAGRAD, RMSPROP, ADADELTA, ADAM,
           EXPONENTIAL_DECAY, INVERSE_TIME_DECAY, STEP_DECAY],
    plot=Paths("your optimizers' paths next to torch.optim's on two 2-D loss surfaces, and your schedules",
               optimizers=DEFAULTS, torch_optimizer=torch_optimizer,
               schedules={"exponential_decay": (EXPONENTIAL_LR, {"lr0": 0.1, "k": 0.05}),
                          "inverse_time_decay": (INVERSE_TIME_LR, {"lr0": 0.1, "k": 0.2}),
                          "step_decay": (STEP_LR, {"lr0": 0.1, "gamma": 0.5, "step_size": 10})}),
)
