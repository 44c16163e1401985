"""Platt-scaling kernel: the loss, gradient and Hessian of a sigmoid fit in one pass.

For the model ``P(y=1 | s) = 1 / (1 + exp(z))``, ``z = a s + b``, and soft targets ``t``,
the weighted log-loss is ``sum w (log(1 + e^z) - (1 - t) z)``; its derivative in ``z`` is
``t - p`` and its second derivative ``p (1 - p)``, with ``p = 1 / (1 + e^z)``.

The sums are taken over fixed blocks of ``BLOCK`` points in parallel, then the block sums
are added in block order, so the result does not depend on the number of threads.
"""
from cython.parallel cimport prange
from libc.math cimport exp, log1p

from fastimb._kernels._blocks cimport block_stop, n_blocks_of
from fastimb._kernels._typedefs cimport intp_t

cdef intp_t BLOCK = 16384


def sigmoid_terms(const double[::1] s,     # IN  (n,) scores
                  const double[::1] t,     # IN  (n,) soft targets in (0, 1)
                  const double[::1] w,     # IN  (n,) weights
                  double a, double b,      # IN  the sigmoid's parameters
                  double[:, ::1] partial,  # scratch (n_blocks, 6)
                  double[::1] out,         # OUT (6,) loss, d/da, d/db, d2/da2, d2/dadb, d2/db2
                  int n_threads):
    """Fill ``out`` with the loss and its first and second derivatives at ``(a, b)``."""
    cdef intp_t n = s.shape[0], n_blocks = partial.shape[0], blk, i, start, stop, j
    cdef double z, e, p, r, h, si, wi, l0, g0, g1, h0, h1, h2
    with nogil:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = blk * BLOCK
            stop = block_stop(blk, BLOCK, n)
            l0 = 0.0
            g0 = 0.0
            g1 = 0.0
            h0 = 0.0
            h1 = 0.0
            h2 = 0.0
            for i in range(start, stop):
                si = s[i]
                wi = w[i]
                z = a * si + b
                # one exp: p = 1 / (1 + e^z) and log(1 + e^z) = |z|+ + log1p(e^-|z|)
                e = exp(-z if z > 0 else z)
                if z > 0:
                    p = e / (1.0 + e)
                    l0 = l0 + wi * (z + log1p(e) - (1.0 - t[i]) * z)
                else:
                    p = 1.0 / (1.0 + e)
                    l0 = l0 + wi * (log1p(e) - (1.0 - t[i]) * z)
                r = wi * (t[i] - p)
                h = wi * p * (1.0 - p)
                g0 = g0 + r * si
                g1 = g1 + r
                h0 = h0 + h * si * si
                h1 = h1 + h * si
                h2 = h2 + h
            partial[blk, 0] = l0
            partial[blk, 1] = g0
            partial[blk, 2] = g1
            partial[blk, 3] = h0
            partial[blk, 4] = h1
            partial[blk, 5] = h2
        for j in range(6):
            out[j] = 0.0
        for blk in range(n_blocks):
            for j in range(6):
                out[j] = out[j] + partial[blk, j]


def n_blocks(intp_t n):
    """Rows of the ``partial`` scratch array for ``n`` points."""
    return n_blocks_of(n, BLOCK)
