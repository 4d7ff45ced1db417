"""How a lab is declared: one ``Task`` per student function, each with its checks.

A lab file (``grader/labs/labN.py``) is nothing but data built from these
classes. Everything else reads it: the engine runs the checks, ``dlkit list``
prints the tasks, the JSON report names them, the stub generator keeps their
signatures, and the nbgrader export turns each task into a test cell.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from grader.declare.checks import Torch
    from grader.declare.context import Context


@dataclass(frozen=True)
class Call:
    """One set of arguments for a student function, and where it came from."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # e.g. "the handout's worked example"
    expected: Any = None  # the value written down for a worked example

    def with_args(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> "Call":
        return Call(args, self.kwargs if kwargs is None else kwargs, self.note, self.expected)


def call(*args: Any, note: str = "", **kwargs: Any) -> Call:
    """Shorthand used in lab declarations: ``call(x, w, b, stride=2)``."""
    return Call(tuple(args), dict(kwargs), note)


@dataclass(frozen=True)
class Tolerance:
    """Elementwise closeness: |received - expected| <= atol + rtol * |expected|.

    With ``scaled``, atol is multiplied by the largest |expected| entry (when above 1): for
    results whose small entries come from cancelling large terms (a gradient through a
    normalization), where the rounding error follows the size of the terms, not of the entry.
    """

    rtol: float
    atol: float
    scaled: bool = False


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(1e-6, 1e-8),
    "float32": Tolerance(1e-4, 1e-5),
    "float16": Tolerance(1e-2, 1e-3),
}


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: when the student's output matches it, the hint is shown.

    ``name`` makes its id, ``task.name`` (``adam.eps_inside_square_root``): the JSON report lists the ids
    of the mistakes a failure confirms, and the kit's tests name the one each wrong implementation must get.

    ``produces`` computes what the mistake would return for a call (compared
    with the student's output at the check's tolerance); ``detects`` is for
    mistakes that are easier to recognise than to reproduce: it gets the call,
    the expected and the received value and answers True when it sees the mistake.
    ``raises`` is for mistakes that make the code raise: it gets the call and the
    error as "Type: message" and answers True when the error is this mistake's.
    """

    name: str  # stable within its task: the mistake's id is "task.name" (``Task.mistake_id``)
    hint: str
    produces: Callable[..., Any] | None = None
    detects: Callable[[Call, Any, Any], bool] | None = None
    raises: Callable[[Call, str], bool] | None = None


class Withheld(Exception):
    """A mistake's producer that the student release does not ship (its hint is given on submission)."""


def withheld(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, looked up when first called: for mistake producers that would read as a
    working solution (a cell built from the same primitives the student uses), kept in a module
    the student release leaves out (``Lab.withheld``). Where that module is absent the producer
    raises ``Withheld``, and the mistake's hint waits for the graded run."""
    def produce(*args: Any, **kwargs: Any) -> Any:
        try:
            found = importlib.import_module(module)
        except ImportError:
            raise Withheld(f"{module} is not part of this kit (graded on submission)") from None
        return getattr(found, name)(*args, **kwargs)

    produce.__name__ = produce.__qualname__ = name
    return produce


@dataclass(frozen=True)
class Variant:
    """Where a check runs: the device of the PyTorch oracle (and of the student's
    tensors in a PyTorch lab), and the floating dtype of the generated inputs."""

    device: str = "cpu"
    dtype: str | None = None

    @property
    def label(self) -> str:
        return ", ".join(p for p in (self.device, self.dtype) if p)


@dataclass(frozen=True, kw_only=True)
class Check:
    """One named verdict about a task. Subclasses say how a single call is judged; they declare their own
    fields (positional, first) and inherit these, which are keyword-only.

    A check is either a *value check*, which earns the task's points for the aspects it judges
    (``aspects``: names of the task's ``Aspect``s; None for every aspect its kind of evidence
    speaks for), or a *gate* (``gate=True``): something a trivial answer also passes (a shape,
    a device, raising on invalid input, no banned call), which earns nothing and costs points
    when it fails (see ``grader.run.results``).
    """

    if TYPE_CHECKING:  # a field of every subclass, after its own fields (it is often given positionally)
        @property
        def cases(self) -> SearchStrategy[Call] | None:
            """The drawn inputs (None: the examples alone)."""
    name: str = ""  # a subclass without a fixed name makes one in __post_init__
    examples: Sequence[Call] = ()  # fixed inputs, run before the drawn ones
    max_examples: int | None = None  # drawn inputs per run (None: the profile's number)
    variants: Sequence[Variant] = (Variant("cpu"),)  # each device and dtype the check runs on
    needs_reference: bool = False  # skipped where solutions/ is absent
    gate: bool = False
    aspects: Sequence[str] | None = None
    evidence: str = "result"  # what the check looks at: "result" (the returned values) or "gradients" (autograd)

    def verify(self, ctx: "Context", call: Call) -> None:
        """Raise ``CheckFailed`` (or let a ``StudentFailure`` through) when the call is judged wrong."""
        raise NotImplementedError

    def expectation(self, ctx: "Context", call: Call) -> Any:
        """The value a correct answer returns for ``call``, for a message when the student's code raised on
        it (None where the check has no single expected value)."""
        return None


@dataclass(frozen=True)
class Aspect:
    """A part of a task's answer that a student can get right on its own, and its share of the points.

    ``parts`` names the items of a tuple result it covers (from ``Task.returns``; empty for the whole
    result); ``evidence`` says which checks judge it: "result" (checks of the returned values) or
    "gradients" (autograd through the function, ``Gradients``).
    """

    name: str
    share: float = 1.0
    parts: Sequence[str] = ()
    evidence: str = "result"

    def covers(self, part: str) -> bool:
        return not self.parts or part in self.parts


@dataclass(frozen=True)
class Task:
    """One student function, its points, its checks and the mistakes it can recognise.

    The points are shared among the task's ``aspects`` (by default one per item of a tuple result,
    and, when autograd is checked, the gradients as much as all the values together).
    """

    name: str
    points: float
    checks: Sequence[Check]
    mistakes: Sequence[Mistake] = ()
    returns: Sequence[str] = ()  # names of the parts of a tuple result, for messages: ("dx", "dw", "db")
    may_modify: Sequence[str] = ()  # arguments the contract lets the function change in place
    timeout: float = 10.0
    summary: str = ""  # one line for `dlkit list`; defaults to the stub's docstring
    aspects: Sequence[Aspect] = ()  # how the points are shared; empty for the default (see ``shares``)

    @property
    def function(self) -> str:
        return self.name

    def mistake_id(self, mistake: Mistake) -> str:
        """The stable id of one of the task's mistakes: "task.name"."""
        return f"{self.name}.{mistake.name}"

    @property
    def shares(self) -> tuple[Aspect, ...]:
        """The task's aspects with their shares of the points (summing to 1)."""
        found = tuple(self.aspects) or self._default_aspects()
        total = sum(a.share for a in found)
        return tuple(Aspect(a.name, a.share / total, tuple(a.parts), a.evidence) for a in found)

    def _default_aspects(self) -> tuple[Aspect, ...]:
        results = tuple(Aspect(name, 1.0, (name,)) for name in self.returns) if len(self.returns) > 1 \
            else (Aspect("the result"),)
        if any(c.evidence == "gradients" and not c.gate for c in self.checks):
            return results + (Aspect("gradients", float(len(results)), (), "gradients"),)
        return results

    def judged(self, check: Check) -> tuple[str, ...]:
        """The aspects a check's verdict counts for (none for a gate)."""
        if check.gate:
            return ()
        names = [a.name for a in self.shares]
        if check.aspects is not None:
            unknown = [a for a in check.aspects if a not in names]
            if unknown:
                raise ValueError(f"{self.name}: check '{check.name}' judges unknown aspects {unknown}; "
                                 f"the task's aspects are {names}")
            return tuple(check.aspects)
        return tuple(a.name for a in self.shares if a.evidence == check.evidence)


@dataclass(frozen=True)
class Paths:
    """What ``dlkit plot`` draws for a lab (an extension of its declaration): each optimizer's path next to
    PyTorch's on 2-D loss surfaces, and each learning-rate schedule next to its PyTorch scheduler."""

    what: str  # one line for the command's output: what the picture shows
    optimizers: Mapping[str, Mapping[str, float]]  # each optimizer (the student's function) and its defaults
    torch_optimizer: Callable[[str, Any, Mapping[str, float]], Any]  # (name, parameter, hyperparameters)
    # each schedule (the student's function): the oracle its task checks, and the arguments before t it is traced with
    schedules: Mapping[str, tuple[Torch, Mapping[str, float]]]


@dataclass(frozen=True)
class Lab:
    """A lab: where its module lives, what kind of code it is, and its tasks."""

    name: str
    title: str
    module: str  # the module file's stem, e.g. "conv" for lab3/conv.py
    kind: str  # "numpy" or "torch"
    tasks: Sequence[Task]
    # dotted names replaced by tripwires in the worker (PyTorch labs); for a torch.* name, every PyTorch
    # function with its last part as name is refused too, however reached (torch._VF, torch.ops.aten, getattr)
    banned_calls: Sequence[str] = ()
    # dotted names refused when the module's source uses them; a lab that bans any also refuses, in every
    # task, the constructs that reach around a ban (grader.declare.source.CONSTRUCTS: torch._C, ctypes, eval, ...)
    banned_source: Sequence[str] = ()
    withheld: str = ""  # the module of mistake producers the student release leaves out ("" for none)
    plot: Paths | None = None  # what `dlkit plot` draws for the lab (None: nothing)

    def task(self, name: str) -> Task:
        return {task.name: task for task in self.tasks}[name]

    @property
    def max_score(self) -> float:
        return float(sum(t.points for t in self.tasks))

    @property
    def filename(self) -> str:
        """The module's file name: "conv.py"."""
        return f"{self.module}.py"

    @property
    def path(self) -> str:
        """Where the module sits in a submission, in ``assignments/`` and in ``solutions/``: "lab3/conv.py"."""
        return f"{self.name}/{self.filename}"

    @property
    def meta(self) -> bool:
        """Whether a check runs the student's code on the meta device (a worker then loads PyTorch's meta
        kernels beside the module's import, or its zygote before forking it: a quarter of a second)."""
        return any(v.device == "meta" for t in self.tasks for c in t.checks for v in c.variants)

    @property
    def banned_imports(self) -> dict[str, str]:
        if self.kind == "numpy":
            return {"torch": f"{self.name} is a NumPy lab: importing torch is not allowed here"}
        return {}
