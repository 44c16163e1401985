"""The radix value sort behind the threshold sweep and the isotonic fit: NumPy's order."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal

import fastimb._sorting as sorting
from fastimb._kernels._sort import radix_sort


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_radix_sort_matches_numpy(dtype, data):
    a = data.draw(arrays(dtype, st.integers(0, 3000),
                         elements=st.floats(allow_nan=False, allow_infinity=True,
                                            width=32 if dtype == np.float32 else 64)))
    b = a.copy()
    radix_sort(b, np.empty_like(b))
    assert_array_equal(b, np.sort(a))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_radix_sort_edge_values_and_large_input(dtype):
    rng = np.random.RandomState(0)
    a = np.concatenate([rng.normal(size=200_000) * 1e3, np.round(rng.rand(100_000), 3),
                        [0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324]]).astype(dtype)
    b = a.copy()
    radix_sort(b, np.empty_like(b))
    assert_array_equal(b, np.sort(a))
    assert np.all(np.diff(b[np.isfinite(b)]) >= 0)
    const = np.full(100_000, 3.25, dtype=dtype)   # every digit shared: nothing moves
    radix_sort(const, np.empty_like(const))
    assert (const == 3.25).all()


@pytest.mark.parametrize("radix_faster", [True, False])
def test_sorted_values_either_way(monkeypatch, radix_faster):
    monkeypatch.setattr(sorting, "_radix_faster", radix_faster)
    a = np.random.RandomState(1).normal(size=sorting.MIN_SIZE + 5)
    original = a.copy()
    assert_array_equal(sorting.sorted_values(a), np.sort(original))
    assert_array_equal(a, original)                      # a copy unless overwrite
    out = sorting.sorted_values(a, overwrite=True)
    assert_array_equal(out, np.sort(original))
    a.setflags(write=False)
    assert_array_equal(sorting.sorted_values(a, overwrite=True), np.sort(original))
    assert_array_equal(sorting.sorted_values(a[:10]), np.sort(a[:10]))
