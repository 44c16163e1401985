"""Input checks every sampler runs on the whole input: finiteness of X, counts of y.

* ``all_finite``: scikit-learn checks X by summing it (one serial pass of additions);
  this tests the exponent bits of every value instead, in SIMD and in parallel, and its
  caller asks scikit-learn for the error message only when something is not finite.
* ``count``: NumPy's ``bincount`` checks the range again and increments one counter per
  label, each increment waiting on the previous one when the labels repeat; this takes
  the range from the caller and counts into four histograms.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.stdint cimport uint64_t

from fastimb._kernels._blocks cimport block_stop, n_blocks_of
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


cdef intp_t FINITE_BLOCK = 1 << 16   # values per parallel task


def all_finite(const floating[::1] x,  # IN  (n,) values (an array's memory, flat)
               int n_threads):
    """Whether no value is NaN or infinite, i.e. has its exponent bits all set. Tested as
    integers, by and/add/or alone (SIMD on any x86-64): the exponent field plus one unit
    carries into the sign bit exactly when it is all ones."""
    cdef intp_t n = x.shape[0], blk, i, stop, bad = 0
    cdef const uint32_t* w32
    cdef const uint64_t* w64
    cdef uint32_t acc32
    cdef uint64_t acc64
    cdef uint32_t EXP32 = 0x7F800000u, UNIT32 = 0x00800000u, SIGN32 = 0x80000000u
    cdef uint64_t EXP64 = 0x7FF0000000000000u, UNIT64 = 0x0010000000000000u
    cdef uint64_t SIGN64 = 0x8000000000000000u
    if n == 0:
        return True
    w32 = <const uint32_t*> &x[0]
    w64 = <const uint64_t*> &x[0]
    for blk in prange(n_blocks_of(n, FINITE_BLOCK), nogil=True, schedule="static",
                      num_threads=n_threads):
        stop = block_stop(blk, FINITE_BLOCK, n)
        if floating is double:
            acc64 = 0
            for i in range(blk * FINITE_BLOCK, stop):
                acc64 = acc64 | ((w64[i] & EXP64) + UNIT64)
            bad += (acc64 & SIGN64) != 0
        else:
            acc32 = 0
            for i in range(blk * FINITE_BLOCK, stop):
                acc32 = acc32 | ((w32[i] & EXP32) + UNIT32)
            bad += (acc32 & SIGN32) != 0
    return bad == 0


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
