"""How a lab is declared: one ``Task`` per student function, each with its checks.

A lab file (``grader/labs/labN.py``) is nothing but data built from these
classes. Everything else reads it: the engine runs the checks, ``dlkit list``
prints the tasks, the JSON report names them, the stub generator keeps their
signatures, and the nbgrader export turns each task into a test cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from grader.engine import Context


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

    ``produces`` computes what the mistake would return for a call (compared
    with the student's output at the check's tolerance); ``detects`` is for
    mistakes that are easier to recognise than to reproduce: it gets the call,
    the expected and the received value and answers True when it sees the mistake.
    ``raises`` is for mistakes that make the code raise: it gets the call and the
    error as "Type: message" and answers True when the error is this mistake's.
    """

    hint: str
    produces: Callable[..., Any] | None = None
    detects: Callable[[Call, Any, Any], bool] | None = None
    raises: Callable[[Call, str], bool] | None = None


@dataclass(frozen=True)
class Variant:
    """Where a check runs: the device of the PyTorch oracle (and of the student's
    tensors in a PyTorch lab), and the floating dtype of the generated inputs."""

    device: str = "cpu"
    dtype: str | None = None

    @property
    def label(self) -> str:
        return ", ".join(p for p in (self.device, self.dtype) if p)


class Check:
    """One named verdict about a task. Subclasses say how a single call is judged."""

    name: str
    examples: Sequence[Call]
    cases: "SearchStrategy[Call] | None"
    max_examples: int | None
    variants: Sequence[Variant]
    needs_reference: bool = False

    def verify(self, ctx: "Context", call: Call) -> None:
        """Raise ``CheckFailed`` (or let a ``StudentFailure`` through) when the call is judged wrong."""
        raise NotImplementedError


@dataclass(frozen=True)
class Task:
    """One student function, its points, its checks and the mistakes it can recognise."""

    name: str
    points: float
    checks: Sequence[Check]
    mistakes: Sequence[Mistake] = ()
    returns: Sequence[str] = ()  # names of the parts of a tuple result, for messages: ("dx", "dw", "db")
    may_modify: Sequence[str] = ()  # arguments the contract lets the function change in place
    timeout: float = 10.0
    summary: str = ""  # one line for `dlkit list`; defaults to the stub's docstring

    @property
    def function(self) -> str:
        return self.name


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
    banned_source: Sequence[str] = ()  # names refused when they appear in the module's source

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    @property
    def max_score(self) -> float:
        return float(sum(t.points for t in self.tasks))

    @property
    def banned_imports(self) -> dict[str, str]:
        if self.kind == "numpy":
            return {"torch": f"{self.name} is a NumPy lab: importing torch is not allowed here"}
        return {}
