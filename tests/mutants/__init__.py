"""Known mistakes and correct alternatives, written as real student code.

A lab's file (``tests/mutants/labN.py``) holds plain functions, each marked with
one of the two decorators below. The test suite builds a submission from the
reference module with the marked function appended under the task's name, so
the function body is exactly what a student would have written:

    @mistake("conv2d_forward", expect="conv2d_forward.matches_true_convolution_kernel")
    def conv2d_forward_flipped_kernel(x, w, b=None, stride=1, padding=0, dilation=1):
        ...

A ``mistake`` marks its faulty line with a ``# mistake: ...`` comment (at the line's end, or on a line
of its own above it; for code that is missing, where that code belongs), so that a reader sees the bug
at once (``tests/labs/test_every_lab.py`` checks that each has one and no ``alternative`` does).

``mistake`` submissions must lose points on that task, and ``expect`` names exactly
what must catch them: the id of the known mistake the feedback must confirm
(``"adam.eps_inside_square_root"``, ``grader.declare.spec.Task.mistake_id``; or a
generic one, ``"generic.dtype_changed"``), or, where no declared mistake describes
the bug, ``"check:NAME"``, the check that must fail. ``alternative`` submissions must
keep full marks. The bodies may use only the names the reference module imports at
module level (e.g. ``np``, ``math``, ``torch``) or import what they need inside
the function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Mutant:
    task: str
    function: Callable[..., object]
    expect: str | None  # the mistake's id (or "check:NAME") the feedback must confirm; None for alternatives

    @property
    def id(self) -> str:
        return self.function.__name__


def mistake(task: str, expect: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Mark a realistic wrong implementation of ``task``."""

    def mark(fn: Callable[..., object]) -> Callable[..., object]:
        fn.__mutant__ = Mutant(task, fn, expect)  # type: ignore[attr-defined]
        return fn

    return mark


def alternative(task: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Mark a correct implementation of ``task`` that differs from the reference."""

    def mark(fn: Callable[..., object]) -> Callable[..., object]:
        fn.__mutant__ = Mutant(task, fn, None)  # type: ignore[attr-defined]
        return fn

    return mark


def collect(module: object) -> list[Mutant]:
    """All mutants declared in a lab's mutant module, in file order."""
    found = [getattr(v, "__mutant__") for v in vars(module).values() if hasattr(v, "__mutant__")]
    return found


def shown_words(mutant: Mutant, hints: dict[str, str]) -> str:
    """What a report must show for ``mutant``: the name of the check it names, or the advice of the mistake it
    names (``hints``: the task's mistake ids and the generic ones, with their advice)."""
    assert mutant.expect is not None
    if mutant.expect.startswith("check:"):
        return mutant.expect.removeprefix("check:")
    return hints[mutant.expect]
