"""Value sorts for the sweep and isotonic kernels' callers.

fastimb's radix sort (``_kernels/_sort.pyx``) or NumPy's sort, whichever runs faster on this
machine: NumPy's SIMD sort, where its build and CPU have one, beats a radix sort; without
it, the radix sort is 2-3x faster on a million doubles. Decided once per process, on first
use, by timing both on 2^17 random doubles. Both give the same values in the same order.
"""
import time

import numpy as np

from fastimb._kernels._sort import radix_sort

MIN_SIZE = 1 << 16  # below this, np.sort
_radix_faster = None


def _time(func, a, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        b = a.copy()
        start = time.perf_counter()
        func(b)
        best = min(best, time.perf_counter() - start)
    return best


def radix_is_faster():
    global _radix_faster
    if _radix_faster is None:
        a = np.random.default_rng(0).random(1 << 17)
        work = np.empty_like(a)
        _radix_faster = _time(lambda b: radix_sort(b, work), a) < _time(np.ndarray.sort, a)
    return _radix_faster


def sorted_values(values, overwrite=False):
    """``values`` (1-D, finite) sorted: a sorted copy, or with ``overwrite=True`` the array
    itself sorted in place when it is a contiguous float array the caller owns."""
    values = np.asarray(values)
    if values.shape[0] < MIN_SIZE or values.dtype not in (np.float32, np.float64) or \
            not radix_is_faster():
        if overwrite and values.flags.writeable:
            values.sort()
            return values
        return np.sort(values)
    out = values if overwrite and values.flags.c_contiguous and values.flags.writeable \
        else np.array(values, order="C", copy=True)
    radix_sort(out, np.empty_like(out))
    return out
