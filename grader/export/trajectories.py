"""Optimizer paths on 2-D loss surfaces: the student's lab-2 optimizers next to torch.optim's.

Two surfaces from the lecture's comparison of optimizers: an ill-conditioned quadratic
(a long, narrow valley, where plain gradient descent zig-zags across and momentum rolls
along) and Rosenbrock's banana-shaped valley (where the direction to the minimum keeps
turning). On each, every optimizer starts from the same point and takes its steps with
hyperparameters chosen so that its character shows in a picture.

The student's optimizer runs in the worker, one call per step, as a training loop would
call it: the grader computes the gradient at the current w, sends ``(w, dw, state)`` and
keeps the ``(w_new, state)`` it gets back for the next step. The reference path is
``torch.optim`` (float64, CPU) fed the same gradients at its own points, so it exists in a
student's release too, where the reference solutions do not. The lab's learning-rate
schedules are traced the same way, t = 0, 1, ..., next to the ``torch.optim.lr_scheduler``
each task is graded against. This module computes and compares; ``grader.export.plot`` draws.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from grader.declare import oracles
from grader.declare.checks import Torch
from grader.declare.spec import Paths
from grader.sandbox.host import Sandbox, StudentFailure
from grader.sandbox.wire import Unsupported

# The student's w is "on torch's path" at a step while |w - torch's w| <= GAP_TOLERANCE * max(1, |torch's w|)
# in both coordinates: float64 round-off stays below 1e-12 over these runs, a wrong rule departs at once.
GAP_TOLERANCE = 1e-9
# A coordinate beyond this has left any picture: the path stops there (it is diverging).
ESCAPE = 1e6
# The most seconds one path may take in the worker (a correct step takes well under a millisecond; each call
# also has the worker's own limit): a slow optimizer is cut short, not left to run for hours.
PATH_SECONDS = 30.0


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: there is one object per surface
class Surface:
    """A 2-D loss, where the optimizers start, and how each of them is tuned for it."""

    name: str
    title: str
    formula: str  # as printed in the report and the figure
    value: Callable[[Any], Any]  # f(w) for w of shape (2, ...): a float for one point, an array for a grid
    gradient: Callable[[np.ndarray], np.ndarray]
    start: tuple[float, float]
    minimum: tuple[float, float]
    window: tuple[tuple[float, float], tuple[float, float]]  # (x range, y range) drawn
    steps: int
    hyper: Mapping[str, Mapping[str, float]]  # per optimizer, the keyword arguments of every call
    log_levels: bool = False  # contour levels spaced on a log scale (for losses spanning decades)
    legend: str = "upper right"  # where the overview's legend covers no path (a matplotlib location)


def _quadratic(w: Any) -> Any:
    return w[0] ** 2 / 20 + w[1] ** 2


def _quadratic_gradient(w: np.ndarray) -> np.ndarray:
    return np.array([w[0] / 10, 2 * w[1]])


def _rosenbrock(w: Any) -> Any:
    return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2


def _rosenbrock_gradient(w: np.ndarray) -> np.ndarray:
    x, y = float(w[0]), float(w[1])
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


QUADRATIC = Surface(
    name="quadratic",
    title="ill-conditioned quadratic",
    formula="f(x, y) = x²/20 + y²",
    value=_quadratic,
    gradient=_quadratic_gradient,
    start=(-7.0, 2.0),
    minimum=(0.0, 0.0),
    window=((-8.0, 8.0), (-3.0, 3.0)),
    steps=40,
    hyper={
        "sgd": {"lr": 0.9},
        "momentum": {"lr": 0.1, "mu": 0.9},
        "nesterov": {"lr": 0.1, "mu": 0.9},
        "adagrad": {"lr": 1.5},
        "rmsprop": {"lr": 0.3, "alpha": 0.9},
        "adadelta": {"lr": 50.0, "rho": 0.9},
        "adam": {"lr": 0.3},
    },
)

ROSENBROCK = Surface(
    name="rosenbrock",
    title="Rosenbrock",
    formula="f(x, y) = (1 − x)² + 100 (y − x²)²",
    value=_rosenbrock,
    gradient=_rosenbrock_gradient,
    start=(-1.5, 2.0),
    minimum=(1.0, 1.0),
    window=((-2.0, 2.0), (-1.0, 3.0)),
    steps=1500,
    log_levels=True,
    legend="lower left",
    hyper={
        "sgd": {"lr": 1e-3},
        "momentum": {"lr": 2e-4, "mu": 0.9},
        "nesterov": {"lr": 2e-4, "mu": 0.9},
        "adagrad": {"lr": 0.3},
        "rmsprop": {"lr": 3e-3, "alpha": 0.999},
        "adadelta": {"lr": 1.0, "rho": 0.99},
        "adam": {"lr": 0.02},
    },
)

SURFACES = (QUADRATIC, ROSENBROCK)


def surface(name: str) -> Surface:
    return {s.name: s for s in SURFACES}[name]


@dataclass(frozen=True)
class Path:
    """Where an optimizer went: w0 and then w after every step it completed."""

    points: np.ndarray  # shape (steps + 1, 2), float64
    stopped: str = ""  # why the path ended before its last step ("" when it did not)
    brief: str = ""  # the same in a few words, as the figure shows it

    @property
    def steps(self) -> int:
        return len(self.points) - 1


@dataclass(frozen=True)
class Race:
    """One optimizer on one surface: the student's path next to torch.optim's."""

    surface: Surface
    optimizer: str
    reference: Path
    yours: Path
    departs: int | None  # the first step at which yours left torch's path (None: it never did)
    gap: float  # the largest distance between the two over the steps both took

    @property
    def hyper(self) -> Mapping[str, float]:
        return self.surface.hyper[self.optimizer]

    def verdict(self) -> str:
        """One line: did the student's path follow torch's, and where did it stop."""
        if self.yours.steps == 0 and self.yours.stopped:
            return self.yours.stopped
        if self.departs is None:
            said = f"on torch.optim's path at every step (largest gap {self.gap:.1e})"
        else:
            a, b = self.yours.points[self.departs], self.reference.points[self.departs]
            said = (f"leaves torch.optim's path at step {self.departs}: yours ({a[0]:.4g}, {a[1]:.4g}), "
                    f"torch ({b[0]:.4g}, {b[1]:.4g})")
        return f"{said}; stopped after step {self.yours.steps}: {self.yours.stopped}" if self.yours.stopped else said


# ----------------------------------------------------------------------------- the reference: torch.optim


def reference_path(paths: Paths, where: Surface, name: str) -> Path:
    """torch.optim's path (float64, CPU), stepped with the surface's gradient at each of its own points."""
    t = oracles.torch()
    param = t.tensor(where.start, dtype=t.float64, requires_grad=True)
    optimizer = paths.torch_optimizer(name, param, {**paths.optimizers[name], **where.hyper[name]})
    points = [np.array(where.start, dtype=np.float64)]
    for step in range(1, where.steps + 1):
        param.grad = t.from_numpy(where.gradient(points[-1]))
        optimizer.step()
        w = param.detach().numpy().copy()
        if not _inside(w):
            return Path(np.array(points), _escaped(w, step), f"diverged at step {step}")
        points.append(w)
    return Path(np.array(points))


# ----------------------------------------------------------------------------- the student's path, in the worker


def student_path(sandbox: Sandbox, where: Surface, name: str) -> Path:
    """The student's path: one worker call per step, w and state handed back as a training loop would."""
    w = np.array(where.start, dtype=np.float64)
    points = [w]
    state: Any = {}
    sandbox.ready()  # the worker's start (NumPy and the module imported) is not the optimizer's time
    started = time.monotonic()
    for step in range(1, where.steps + 1):
        spent = time.monotonic() - started
        if spent > PATH_SECONDS:
            pace = spent / max(step - 1, 1) * 1000
            return Path(np.array(points), f"too slow: {spent:.0f} s for {step - 1} steps ({pace:.0f} ms a step; "
                                          "a step on a 2-element w should take well under 1 ms)",
                        f"too slow: stopped at step {step}")
        try:
            reply = sandbox.call(name, (w.copy(), where.gradient(w), state), dict(where.hyper[name]),
                                 arg_names=("w", "dw", "state"))
        except StudentFailure as failure:
            return Path(np.array(points), *_failed(failure, step))
        problem, w_new, state = _read_step(reply.value)
        if problem:
            return Path(np.array(points), f"step {step} {problem}", f"bad result at step {step}")
        if not _inside(w_new):
            return Path(np.array(points), _escaped(w_new, step), f"diverged at step {step}")
        w = w_new
        points.append(w)
    return Path(np.array(points))


def _read_step(value: Any) -> tuple[str, np.ndarray, Any]:
    """(problem or "", w_new as float64 (2,), state) from what one call returned."""
    empty = np.zeros(0)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return f"returned {type(value).__name__}; an optimizer returns the pair (w_new, state)", empty, None
    w_new, state = value
    if not isinstance(state, dict):
        return f"returned a {type(state).__name__} as the state; the second item must be the state dict", empty, None
    bad = Unsupported.within(state)
    if bad:
        return f"kept {bad} in the state, which cannot be passed back in: keep only arrays and numbers", empty, None
    if not isinstance(w_new, np.ndarray) or w_new.shape != (2,) or w_new.dtype.kind != "f":
        shown = f"an array of shape {w_new.shape} and dtype {w_new.dtype}" if isinstance(w_new, np.ndarray) \
            else type(w_new).__name__
        return f"returned {shown} as w_new; expected a float array of shape (2,) like w", empty, None
    return "", w_new.astype(np.float64), state


def _failed(failure: StudentFailure, step: int | str) -> tuple[str, str]:
    """Why a call did not return, in full and in brief (``step``: a step number, or a label such as "t = 3")."""
    step = f"step {step}" if isinstance(step, int) else step
    if failure.kind == "not_implemented":
        return "not implemented yet", "not implemented yet"
    if failure.kind == "missing":
        return "no such function in the module", "no such function"
    where = f" (at {failure.where()})" if failure.where() else ""
    head = f"{failure.exception}: {failure.message}" if failure.exception else failure.message
    brief = {"timeout": "timed out", "memory": "ran out of memory", "banned": "made a refused call",
             "crash": "crashed the worker"}.get(failure.kind, f"raised {failure.exception or 'an error'}")
    return f"{step} did not return: {head.splitlines()[0] if head else failure.kind}{where}", f"{brief} at {step}"


def _inside(w: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(w)) and np.all(np.abs(w) < ESCAPE))


def _escaped(w: np.ndarray, step: int) -> str:
    return f"diverged: w = ({', '.join(f'{v:.3g}' for v in w)}) at step {step}"


# ----------------------------------------------------------------------------- the comparison


def compare(where: Surface, name: str, reference: Path, yours: Path) -> Race:
    """The race record: the first step at which the student's w left torch's, and the largest gap."""
    both = min(len(reference.points), len(yours.points))
    ref, mine = reference.points[:both], yours.points[:both]
    off = np.any(np.abs(mine - ref) > GAP_TOLERANCE * np.maximum(1.0, np.abs(ref)), axis=1)
    departs = int(np.argmax(off)) if off.any() else None
    gap = float(np.max(np.hypot(*(mine - ref).T))) if both else math.nan
    return Race(where, name, reference, yours, departs, gap)


def race(sandbox: Sandbox, paths: Paths, surfaces: Sequence[Surface], optimizers: Sequence[str],
         steps: int | None = None) -> list[Race]:
    """Every optimizer on every surface (``steps`` steps on each, if given): the student's path, torch's."""
    races = []
    for where in surfaces:
        where = replace(where, steps=steps) if steps else where
        for name in optimizers:
            yours = student_path(sandbox, where, name)
            races.append(compare(where, name, reference_path(paths, where, name), yours))
    return races


# ----------------------------------------------------------------------------- learning-rate schedules


@dataclass(frozen=True, eq=False)
class Schedule:
    """A schedule function of the student's, called as name(*args, t); its expected values come from the
    PyTorch scheduler that the lab's declaration of the task checks it against."""

    name: str
    args: Mapping[str, float]  # the arguments before t, by name, in order
    oracle: Torch

    @property
    def source(self) -> str:
        """Where the expected values come from, e.g. torch.optim.lr_scheduler.StepLR."""
        return self.oracle.label

    def expected(self, t: int) -> float:
        return float(self.oracle.compute(*self.args.values(), t))


SCHEDULE_STEPS = 60  # t = 0 .. 59


def schedules(paths: Paths) -> list[Schedule]:
    """The lab's schedules, each with the arguments it is traced with and the oracle its task checks."""
    return [Schedule(name, args, oracle) for name, (oracle, args) in paths.schedules.items()]


@dataclass(frozen=True)
class Curve:
    """One schedule: the student's learning rate for t = 0, 1, ... next to the expected one."""

    schedule: Schedule
    yours: list[float]  # for every t until the first call that did not give a finite number
    expected: list[float]
    departs: int | None  # the first t at which yours differs (None: never)
    stopped: str = ""
    brief: str = ""

    def verdict(self) -> str:
        if not self.yours and self.stopped:
            return self.stopped
        if self.departs is None:
            said = f"matches {self.schedule.source} at every t"
        else:
            t = self.departs
            said = f"differs from {self.schedule.source} from t = {t}: yours {self.yours[t]:.6g}, expected {self.expected[t]:.6g}"
        return f"{said}; stopped at t = {len(self.yours)}: {self.stopped}" if self.stopped else said


def schedule_curve(sandbox: Sandbox, schedule: Schedule, steps: int = SCHEDULE_STEPS) -> Curve:
    """The student's schedule at t = 0 .. steps - 1, one worker call each, and where it departs."""
    expected = [schedule.expected(t) for t in range(steps)]
    yours: list[float] = []
    stopped = brief = ""
    for t in range(steps):
        try:
            value = sandbox.call(schedule.name, (*schedule.args.values(), t), arg_names=(*schedule.args, "t")).value
        except StudentFailure as failure:
            stopped, brief = _failed(failure, f"t = {t}")
            break
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                or not math.isfinite(float(value)):
            stopped, brief = f"at t = {t} returned {value!r}; a schedule returns a finite float", f"bad result at t = {t}"
            break
        yours.append(float(value))
    off = [t for t, (a, b) in enumerate(zip(yours, expected)) if abs(a - b) > GAP_TOLERANCE * max(1.0, abs(b))]
    return Curve(schedule, yours, expected, off[0] if off else None, stopped, brief)


def curves(sandbox: Sandbox, paths: Paths) -> list[Curve]:
    """Every schedule of the lab, as the student wrote it."""
    return [schedule_curve(sandbox, schedule) for schedule in schedules(paths)]


def report(races: Sequence[Race], module: object, schedules: Sequence[Curve] = ()) -> str:
    """The races as text: per surface, each optimizer's steps, final loss next to torch's, and the verdict;
    then each schedule's verdict."""
    lines = [f"optimizer paths of {module}, next to torch.optim's"]
    settings = {id(r): ", ".join(f"{k}={v:g}" for k, v in r.hyper.items()) for r in races}
    losses = {id(r): f"loss {r.surface.value(r.yours.points[-1]):.3g} (torch {r.surface.value(r.reference.points[-1]):.3g})"
              if r.yours.steps else "no step taken" for r in races}
    wide = max((len(v) for v in settings.values()), default=0), max((len(v) for v in losses.values()), default=0)
    for where in dict.fromkeys(r.surface for r in races):
        start = ", ".join(f"{v:g}" for v in where.start)
        lines += ["", f"{where.title}: {where.formula}, {where.steps} steps from ({start})"]
        for r in (r for r in races if r.surface is where):
            lines.append(f"  {r.optimizer:<9} {settings[id(r)]:<{wide[0]}} {r.yours.steps:>5} steps  "
                         f"{losses[id(r)]:<{wide[1]}}  {r.verdict()}")
    if schedules:
        lines += ["", f"learning-rate schedules, t = 0 .. {len(schedules[0].expected) - 1}"]
        for c in schedules:
            called = f"{c.schedule.name}({', '.join(f'{k}={v:g}' for k, v in c.schedule.args.items())}, t)"
            lines.append(f"  {called:<52} {c.verdict()}")
    return "\n".join(lines)
