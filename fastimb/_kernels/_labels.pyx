"""Counts of integer class labels of a known range.

Every sampler counts ``y`` (its classes and their sizes). NumPy's ``bincount`` checks the
range again and increments one counter per label, each increment waiting on the previous
one when the labels repeat; this takes the range from the caller and counts into four
histograms.
"""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t

from fastimb._kernels._typedefs cimport intp_t

import numpy as np

ctypedef fused label_t:
    int8_t
    int16_t
    int32_t
    int64_t
    uint8_t
    uint16_t
    uint32_t


cdef intp_t SPLIT_MAX_BINS = 4096   # above, one histogram (four would not stay in cache)


def count(const label_t[::1] y,        # IN  (n,) labels, all in [lo, lo + out.shape[0])
          int64_t lo,                  # IN  the smallest label (the first bin's)
          intp_t[::1] out):            # OUT (n_bins,) zeroed by the caller: the counts
    """``out[v - lo] += 1`` for every label v (the range checked by the caller). For a
    few bins, four labels at a time into four histograms, so that runs of one class do
    not wait on one counter's previous increment."""
    cdef intp_t n = y.shape[0], n_bins = out.shape[0], i, b
    cdef intp_t[:, ::1] part
    if n_bins > SPLIT_MAX_BINS:
        with nogil:
            for i in range(n):
                out[<intp_t> (<int64_t> y[i] - lo)] += 1
        return
    part = np.zeros((4, n_bins), dtype=np.intp)
    with nogil:
        for i in range(0, n - 3, 4):
            part[0, <intp_t> (<int64_t> y[i] - lo)] += 1
            part[1, <intp_t> (<int64_t> y[i + 1] - lo)] += 1
            part[2, <intp_t> (<int64_t> y[i + 2] - lo)] += 1
            part[3, <intp_t> (<int64_t> y[i + 3] - lo)] += 1
        for i in range(n - n % 4, n):
            part[0, <intp_t> (<int64_t> y[i] - lo)] += 1
        for b in range(n_bins):
            out[b] += part[0, b] + part[1, b] + part[2, b] + part[3, b]
