"""Comparison messages: the first thing wrong is named, in words a student can act on."""

from __future__ import annotations

import numpy as np
import pytest

from grader.declare.compare import difference, generic_hint
from grader.declare.spec import Tolerance
from grader.sandbox.wire import TensorValue, Unsupported

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


def test_meta_tensors_compare_by_shape_dtype_and_device_alone():
    e = TensorValue(np.zeros((2, 3)), "float64", "meta")
    assert difference(e, TensorValue(np.ones((2, 3)), "float64", "meta")) is None  # no data to disagree
    assert "shape (3, 2)" in difference(e, TensorValue(np.zeros((3, 2)), "float64", "meta"))
    assert "dtype float32" in difference(e, TensorValue(np.zeros((2, 3), np.float32), "float32", "meta"))
    assert "is on cpu, expected meta" in difference(e, TensorValue(np.zeros((2, 3)), "float64", "cpu"))
    square = TensorValue(np.zeros((2, 2)), "float64", "meta")
    assert generic_hint(square, TensorValue(np.zeros((2, 2), np.float32), "float32", "meta")) is None


@pytest.mark.parametrize(("received", "words"), [
    (-A, "negative"),
    (2 * A, "times 2"),
    (A.T.copy(), "transposed shape"),
])
def test_generic_hints_recognise_common_shapes_of_mistakes(received, words):
    assert words in generic_hint(A, received)[1]


def test_a_scaled_tolerance_measures_atol_against_the_largest_expected_entry():
    expected = np.array([1000.0, 1e-3], dtype=np.float32)
    received = np.array([1000.0, 1e-3 + 5e-4], dtype=np.float32)  # rounding of terms of size 1000 left in a tiny entry
    assert "1 of 2 entries differ" in difference(expected, received)
    assert difference(expected, received, {"float32": Tolerance(1e-4, 1e-5, scaled=True)}) is None
    message = difference(expected, received + np.float32(0.02), {"float32": Tolerance(1e-4, 1e-5, scaled=True)})
    assert "atol=0.01 (= 1e-05 x the largest |expected|)" in message


def test_a_scaled_tolerance_never_drops_below_atol_itself():
    zeros = np.zeros(3, dtype=np.float32)
    assert difference(zeros, zeros + np.float32(5e-6), Tolerance(1e-4, 1e-5, scaled=True)) is None


def test_numbers_that_differ_are_printed_with_enough_digits_to_differ():
    expected, received = np.array([-0.0010001]), np.array([-0.0010002])
    found = difference(expected, received, Tolerance(0.0, 0.0))
    assert "expected -0.0010001, received -0.0010002" in found
    assert "is -0.0010002, expected -0.0010001" in difference(-0.0010001, -0.0010002, Tolerance(0.0, 0.0))


def test_an_empty_array_is_described_with_its_shape():
    from grader.declare.describe import describe_value

    assert describe_value(np.zeros((0, 3))) == "np.empty((0, 3))"
    assert describe_value(np.zeros((2, 0), np.float32)) == "np.empty((2, 0), dtype=float32)"


def test_a_dropout_mask_is_not_called_a_transpose():
    # keeping with probability p instead of 1 - p: zeros where the expected has values; no transpose hint
    expected = np.array([[2.0, 0.0], [0.0, 2.0]])
    received = np.array([[0.0, 2.0], [2.0, 0.0]])
    assert generic_hint(expected, received) is None


def test_a_shape_alone_suggests_a_transpose_without_confirming_it():
    ident, _, confirmed = generic_hint(A, A.T.copy())
    assert ident == "generic.transposed_shape" and not confirmed
