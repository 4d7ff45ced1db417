"""Lab 0, vectors: the example lab of docs/ENGINE.md ("Declaring a lab").

Two functions on 1-D NumPy arrays, small enough to read the whole declaration beside them.
"""

from __future__ import annotations

import numpy as np


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """a . b = sum_i a_i * b_i, for two vectors of one length, as a Python float."""
    return float(np.sum(a * b))


def normalize(x: np.ndarray) -> np.ndarray:
    """x / ||x||_2 for a nonzero vector x, in x's dtype."""
    return x / np.sqrt(np.sum(x * x))
