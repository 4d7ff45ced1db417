"""The one home of the input generators: named, bounded, and quick to shrink.

Array values are drawn from a seeded NumPy generator rather than entry by
entry, which keeps generation fast; what Hypothesis shrinks is the shape and a
choice of value style, whose simplest form is small integers. So the smallest
failing input a student sees is small and readable: ``[[1., -2.], [0., 3.]]``
rather than ``[[0.41421356, ...]]``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, ParamSpec, Sequence, TypeVar

import numpy as np
from hypothesis import strategies as st

P = ParamSpec("P")
T = TypeVar("T")

# Value styles, simplest first: Hypothesis shrinks towards the first one.
STYLES = ("small integers", "normal", "wide")
# Values of size up to about 3, for results that sum or chain many of them: no float32 cancellation, no overflow.
MODERATE = ("small integers", "normal")


def reused(factory: Callable[P, T]) -> Callable[P, T]:
    """A strategy factory that builds each of its strategies once (for equal arguments, lists taken as tuples).
    Hypothesis checks a strategy the first time one is drawn from, walking all it is made of: a strategy built
    anew for every example pays that walk every time (a quarter of lab 4's drawing). What is drawn is the same."""
    cached = functools.lru_cache(maxsize=4096)(factory)

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        return cached(*(tuple(a) if isinstance(a, list) else a for a in args),
                      **{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
    return build  # type: ignore[return-value]


@reused
@st.composite
def float_arrays(draw: st.DrawFn, shape: Sequence[int], dtype: Any = np.float64,
                 styles: Sequence[str] = STYLES) -> np.ndarray:
    """An array of the given shape: small integers, standard normal, or wide-ranging values."""
    style = draw(st.sampled_from(tuple(styles)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = tuple(shape)
    if style == "small integers":
        values = rng.integers(-3, 4, size=shape).astype(np.float64)
    elif style == "normal":
        values = rng.standard_normal(shape)
    else:
        values = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, size=shape)
    return values.astype(dtype)


def moderate(*shape: int) -> st.SearchStrategy[np.ndarray]:
    """``float_arrays`` of ``MODERATE`` values: sums and chains of them stay small."""
    return float_arrays(shape, styles=MODERATE)


@reused
@st.composite
def arrays_with_zeros(draw: st.DrawFn, shape: Sequence[int], zero_fraction: float = 0.3,
                      dtype: Any = np.float64) -> np.ndarray:
    """``float_arrays`` with about ``zero_fraction`` of the entries exactly 0, where sign, abs
    and ReLU have their kinks (random floats are never exactly 0)."""
    values = draw(float_arrays(shape, dtype))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values[rng.random(values.shape) < zero_fraction] = 0
    return values


@reused
def shapes(min_dims: int, max_dims: int, low: int, high: int) -> st.SearchStrategy[tuple[int, ...]]:
    """An array shape with min_dims to max_dims axes, each of a length in [low, high]."""
    return st.lists(st.integers(low, high), min_size=min_dims, max_size=max_dims).map(tuple)


def sizes(low: int, high: int) -> st.SearchStrategy[int]:
    """A plain int in [low, high]."""
    return st.integers(low, high)


def size_or_pair(low: int, high: int) -> st.SearchStrategy[int | tuple[int, int]]:
    """An int, or an (h, w) pair of ints, each in [low, high]; shrinks to the int."""
    return st.one_of(st.integers(low, high), st.tuples(st.integers(low, high), st.integers(low, high)))


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """An int-or-pair argument as an (h, w) pair."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def pin_constants() -> None:
    """Make what Hypothesis draws depend on the seed alone.

    Hypothesis (6.131 and later) now and then draws a constant found in the source of the "local"
    modules imported in the process (anything outside site-packages: the grader, the CLI, and the
    reference solutions when present). Which modules those are depends on how the grader was started
    (``dlkit check`` or ``dlkit grade``, with or without ``solutions/``, in a forked process), so the
    same seed drew different inputs. This empties that pool, once per process; draws of Hypothesis'
    own constants, which are the same everywhere, remain.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # a Hypothesis without the pool
        return
    if getattr(providers, "_dlkit_pinned", False) or not hasattr(providers, "_get_local_constants"):
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if cache is not None:
        cache.cache.clear()
    providers._dlkit_pinned = True  # type: ignore[attr-defined]
