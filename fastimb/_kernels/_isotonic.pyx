"""Isotonic-regression kernels: tie pooling, weighted pool-adjacent-violators, interpolation.

* ``pool_ties`` walks the points in the order of ``x`` and merges consecutive points whose
  ``x`` is within ``eps`` of the first point of the current group (scikit-learn's rule,
  with ``eps`` the resolution of the dtype): each group becomes one point at that first
  ``x``, with the weighted mean of ``y`` and the summed weight (sums in double).
* ``pool_ties_binary`` does the same for unit weights and 0/1 targets from the two
  sorted lists of ``x`` (one per target value).
* ``pav_inplace`` replaces ``y`` by its weighted least-squares monotone fit in O(n): blocks
  live on a stack (mean, weight, first index); a new point is pushed and merged with the
  block below while the two violate the order. Weights must be positive.
* ``interpolate`` evaluates the piecewise-linear function through ``(xp, fp)`` with a
  binary search per point, in parallel; ``x`` outside ``[xp[0], xp[-1]]`` gives NaN (the
  caller clips first when it wants clipping).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport NAN

from fastimb._kernels._typedefs cimport intp_t


cdef inline intp_t _pool_add(floating xv, double yv, double wv, double eps,
                             floating* cur_x, double* sums, intp_t m, floating* x_out,
                             double* y_out, double* w_out) noexcept nogil:
    """Add a point to the current group (``sums`` = [weight, weighted y]), first closing
    the group when ``xv`` lies ``eps`` or more beyond its first ``x``; return the number
    of closed groups."""
    if xv - cur_x[0] >= eps:
        m = _pool_close(cur_x[0], sums, m, x_out, y_out, w_out)
        cur_x[0] = xv
    sums[0] = sums[0] + wv
    sums[1] = sums[1] + wv * yv
    return m


cdef inline intp_t _pool_close(floating cur_x, double* sums, intp_t m, floating* x_out,
                               double* y_out, double* w_out) noexcept nogil:
    x_out[m] = cur_x
    y_out[m] = sums[1] / sums[0]
    w_out[m] = sums[0]
    sums[0] = 0.0
    sums[1] = 0.0
    return m + 1


def pool_ties(const floating[::1] x,      # IN  (n,) positions
              const floating[::1] y,      # IN  (n,) targets
              const double[::1] w,        # IN  (n,) weights, or empty for unit weights
              const intp_t[::1] order,    # IN  (n,) argsort of x, ascending
              double eps,                 # IN  group width (see module docstring)
              floating[::1] x_out,        # OUT (>= groups,) first x of each group
              double[::1] y_out,          # OUT weighted mean of y per group
              double[::1] w_out):         # OUT summed weight per group
    """Pool the points of (nearly) equal ``x``; return the number of groups."""
    cdef intp_t n = order.shape[0], j, k, m = 0
    cdef bint unit = w.shape[0] == 0
    cdef floating cur_x
    cdef double sums[2]
    if n == 0:
        return 0
    sums[0] = 0.0
    sums[1] = 0.0
    with nogil:
        cur_x = x[order[0]]
        for j in range(n):
            k = order[j]
            m = _pool_add(x[k], <double>y[k], 1.0 if unit else w[k], eps, &cur_x, sums, m,
                          &x_out[0], &y_out[0], &w_out[0])
        m = _pool_close(cur_x, sums, m, &x_out[0], &y_out[0], &w_out[0])
    return m


def pool_ties_binary(const floating[::1] x1,   # IN  (n1,) x of the points with y = 1, ascending
                     const floating[::1] x0,   # IN  (n0,) x of the points with y = 0, ascending
                     double eps,               # IN  group width
                     floating[::1] x_out,      # OUT (>= groups,) first x of each group
                     double[::1] y_out,        # OUT share of y = 1 per group
                     double[::1] w_out):       # OUT points per group
    """``pool_ties`` for unit weights and 0/1 targets, merging the two sorted lists (two
    value sorts are much cheaper than one argsort); return the number of groups."""
    cdef intp_t n1 = x1.shape[0], n0 = x0.shape[0], i = 0, j = 0, m = 0
    cdef floating cur_x
    cdef double sums[2]
    if n1 + n0 == 0:
        return 0
    sums[0] = 0.0
    sums[1] = 0.0
    with nogil:
        cur_x = x1[0] if n0 == 0 or (n1 > 0 and x1[0] <= x0[0]) else x0[0]
        while i < n1 or j < n0:
            if i < n1 and (j >= n0 or x1[i] <= x0[j]):
                m = _pool_add(x1[i], 1.0, 1.0, eps, &cur_x, sums, m, &x_out[0], &y_out[0],
                              &w_out[0])
                i += 1
            else:
                m = _pool_add(x0[j], 0.0, 1.0, eps, &cur_x, sums, m, &x_out[0], &y_out[0],
                              &w_out[0])
                j += 1
        m = _pool_close(cur_x, sums, m, &x_out[0], &y_out[0], &w_out[0])
    return m


def pav_inplace(double[::1] y,            # IN/OUT (n,) targets -> monotone fit
                const double[::1] w,      # IN     (n,) positive weights
                bint increasing,
                double[::1] total,        # scratch (n,) block sums of w * y
                double[::1] weight,       # scratch (n,) block sums of w
                intp_t[::1] start):       # scratch (n,) block first indices
    """Weighted pool-adjacent-violators; ``y`` is overwritten with the fit.

    Blocks keep sums, and means are compared by cross-multiplication (weights > 0), so
    the loop divides only when it writes the fit out."""
    cdef intp_t n = y.shape[0], i, j, top = -1, first, stop
    cdef double s, wt, mu
    with nogil:
        for i in range(n):
            wt = w[i]
            s = y[i] * wt
            first = i
            # merge with the blocks below while they violate the order:
            # mean(below) >= mean(new)  <=>  total[top] * wt >= s * weight[top]
            while top >= 0 and ((total[top] * wt >= s * weight[top]) if increasing
                                else (total[top] * wt <= s * weight[top])):
                s = s + total[top]
                wt = wt + weight[top]
                first = start[top]
                top -= 1
            top += 1
            total[top] = s
            weight[top] = wt
            start[top] = first
        # expand the blocks, last to first
        stop = n
        while top >= 0:
            mu = total[top] / weight[top]
            for j in range(start[top], stop):
                y[j] = mu
            stop = start[top]
            top -= 1


def interpolate(const floating[::1] x,     # IN  (n,) points to evaluate
                const floating[::1] xp,    # IN  (m,) increasing knots, m >= 2
                const floating[::1] fp,    # IN  (m,) values at the knots
                floating[::1] out,         # OUT (n,)
                int n_threads):
    """Piecewise-linear interpolation, NaN outside ``[xp[0], xp[m - 1]]``."""
    cdef intp_t n = x.shape[0], m = xp.shape[0], i, lo, hi, mid
    cdef double xi, slope
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            xi = x[i]
            if not (xi >= xp[0] and xi <= xp[m - 1]):
                out[i] = NAN
                continue
            # first knot >= xi (branch-free lower bound), kept in [1, m - 1]
            lo = 0
            hi = m
            while hi > 1:
                mid = hi >> 1
                lo = lo + mid * <intp_t>(xp[lo + mid] < xi)
                hi = hi - mid
            lo = lo + <intp_t>(xp[lo] < xi)
            if lo < 1:
                lo = 1
            slope = (<double>fp[lo] - <double>fp[lo - 1]) / (<double>xp[lo] - <double>xp[lo - 1])
            out[i] = <floating>(slope * (xi - <double>xp[lo - 1]) + <double>fp[lo - 1])
