"""PyTorch without its compiler's import on the eager path (the grader and the worker both use it).

Many of PyTorch's own functions (every elementwise operation on the meta device, an optimizer's
``add_param_group``...) are wrapped by ``torch._disable_dynamo``, which imports ``torch._dynamo`` (and
sympy: a second or more) the first time one is called, only to mark the function as one the
compiler must not trace, and caches the marked function on the original as ``__dynamo_disable``.
Nothing here compiles, so ``skip_compiler_import`` gives each wrapped function that cache up front:
the function itself, which is what the marked one does when nothing is being compiled. Should
PyTorch change how it wraps them, nothing is found and the compiler is imported as before.

``no_collections`` makes the import itself cheaper: PyTorch's hundreds of thousands of new objects set off
garbage collections that free nothing (a tenth of the import, a quarter of the meta kernels' first load).

Standard library only: the worker loads this file by path, as it loads ``wire.py``.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from types import FunctionType


@contextlib.contextmanager
def no_collections() -> Iterator[None]:
    """No garbage collection inside, and the collector as it was after: for large imports (PyTorch's, a lab's
    declaration), whose new objects live for good."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def skip_compiler_import() -> int:
    """Mark every function ``torch._disable_dynamo`` wraps as already disabled; how many were marked.
    Call it after importing torch (and before ``gc.freeze``, whose objects it would not see)."""
    wrap = getattr(sys.modules.get("torch._compile"), "_disable_dynamo", None)
    if wrap is None:
        return 0
    code = getattr(wrap(lambda: None), "__code__", None)
    if code is None or "fn" not in code.co_freevars:
        return 0
    where = code.co_freevars.index("fn")
    marked = 0
    for obj in gc.get_objects():
        if type(obj) is FunctionType and obj.__code__ is code and obj.__closure__:
            fn = obj.__closure__[where].cell_contents
            if getattr(fn, "__dynamo_disable", None) is None:
                try:
                    setattr(fn, "__dynamo_disable", fn)
                except (AttributeError, TypeError):
                    continue
                marked += 1
    return marked
