"""Comparison messages: the first thing wrong is named, in words a student can act on."""

from __future__ import annotations

import numpy as np
import pytest

from grader.compare import difference, generic_hint
from grader.wire import TensorValue, Unsupported

A = np.arange(6, dtype=np.float64).reshape(2, 3)


@pytest.mark.parametrize(("received", "words"), [
    ([[0, 1, 2], [3, 4, 5]], "should be a numpy.ndarray, received list"),
    (A.T.copy(), "shape (3, 2), expected (2, 3) (a shape mismatch)"),
    (A.astype(np.float32), "dtype float32, expected float64"),
    (np.where(A == 4, np.nan, A), "NaN or infinite where finite values were expected"),
    (Unsupported("conv.Liar"), "is a conv.Liar"),
])
def test_the_first_thing_wrong_is_named(received, words):
    assert words in difference(A, received)


def test_wrong_values_list_first_entries_and_largest_errors():
    received = A.copy()
    received[1, 2] += 0.5
    received[0, 1] -= 2.0
    message = difference(A, received)
    assert "2 of 6 entries differ" in message
    assert "[0, 1]: expected 1, received -1" in message
    assert "largest absolute error: 2 at [0, 1]" in message
    assert "largest relative error" in message


def test_values_within_the_dtype_tolerance_match():
    assert difference(A, A + 1e-12) is None
    assert difference(A.astype(np.float32), (A + 1e-6).astype(np.float32)) is None
    assert difference(A, A + 1e-3) is not None


def test_tuples_are_compared_part_by_part_and_lists_are_accepted():
    assert difference((A, 1.0), [A, 1.0]) is None
    assert "result[1] is 2, expected 1" in difference((A, 1.0), (A, 2.0))
    assert "length 1, expected 2" in difference((A, 1.0), (A,))


def test_integers_must_be_integers():
    assert difference(7, 7) is None and difference(7, np.int64(7)) is None
    assert "should be an int, received float" in difference(7, 7.0)
    assert "should be an int, received bool" in difference(1, True)


def test_scalars_may_be_floats_or_zero_dimensional_arrays():
    assert difference(0.5, np.float64(0.5)) is None and difference(0.5, np.array(0.5)) is None
    assert "should be a number" in difference(0.5, np.array([0.5, 0.5]))


def test_tensors_must_keep_device_and_dtype():
    e = TensorValue(np.ones(2, np.float64), "float64", "cuda:0")
    assert "is on cpu, expected cuda:0" in difference(e, TensorValue(np.ones(2), "float64", "cpu"))
    assert "dtype float32" in difference(e, TensorValue(np.ones(2, np.float32), "float32", "cuda:0"))
    assert difference(e, TensorValue(np.ones(2), "float64", "cuda")) is None


@pytest.mark.parametrize(("received", "words"), [
    (-A, "negative"),
    (2 * A, "times 2"),
    (A.T.copy(), "transposed shape"),
])
def test_generic_hints_recognise_common_shapes_of_mistakes(received, words):
    assert words in generic_hint(A, received)
