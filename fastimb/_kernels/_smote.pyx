"""SMOTE-family kernels: batched interpolation and the copy of the original rows.

``interpolate`` writes ``out[i] = X[base[i]] + steps[i] * diff_i`` (base and neighbour
rows resolved from the drawn integers in the kernel) with
``diff_i = X[nbr[i]] - X[base[i]]`` computed in the data's dtype, optionally scaled
(Borderline-SMOTE-2 shortens the step towards neighbours of another class) and rounded
back to that dtype; ``x + step * diff`` is evaluated in double and rounded once at the
store. This is the rounding sequence of the NumPy expression imbalanced-learn evaluates,
so the outputs are bit-identical (the build disables FMA contraction).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy

from fastimb._kernels._blocks cimport block_stop, n_blocks_of
from fastimb._kernels._typedefs cimport intp_t

# rows per task of the parallel copy (a few hundred KiB at typical widths)
cdef intp_t COPY_BLOCK = 4096


def interpolate(const floating[:, ::1] X,      # IN  (n, d) data
                const intp_t[::1] drawn,       # IN  (m,) the integers drawn
                const intp_t[::1] rows,        # IN  (m,) row of nns per sample, or empty
                const intp_t[::1] base_map,    # IN  (r,) row of X each nns row starts at
                const intp_t[:, ::1] nns,      # IN  (r, k) neighbours
                const intp_t[::1] nbr_map,     # IN  row of X of each neighbour, or empty
                const double[::1] steps,       # IN  (m,) step along the difference
                const double[::1] scale,       # IN  (m,) factor on the difference, or empty
                floating[:, ::1] out,          # OUT (m, d)
                int n_threads):
    """Fill ``out`` with the interpolated samples. Sample i uses nns row r and column c:
    ``divmod(drawn[i], k)``, or ``(rows[i], drawn[i])`` when rows are given; it starts at
    ``base_map[r]`` and moves towards ``nbr_map[nns[r, c]]`` (``nns[r, c]`` itself with
    an empty map). Every index must already be in range."""
    cdef intp_t m = drawn.shape[0], d = X.shape[1], k = nns.shape[1], i, j, r, c, b, t
    cdef bint scaled = scale.shape[0] > 0, given = rows.shape[0] > 0
    cdef bint mapped = nbr_map.shape[0] > 0
    cdef double s, f
    cdef floating diff
    if m == 0 or d == 0:
        return
    with nogil:
        for i in prange(m, schedule="static", num_threads=n_threads):
            if given:
                r = rows[i]
                c = drawn[i]
            else:
                r = drawn[i] // k
                c = drawn[i] - r * k
            b = base_map[r]
            t = nns[r, c]
            if mapped:
                t = nbr_map[t]
            s = steps[i]
            if scaled:
                f = scale[i]
                for j in range(d):
                    diff = <floating>(<double>(X[t, j] - X[b, j]) * f)
                    out[i, j] = <floating>(<double>X[b, j] + s * <double>diff)
            else:
                for j in range(d):
                    diff = X[t, j] - X[b, j]
                    out[i, j] = <floating>(<double>X[b, j] + s * <double>diff)


def copy_rows(const floating[:, ::1] X,        # IN  (n, d) data
              floating[:, ::1] out,            # OUT (n, d) first rows of the output
              int n_threads):
    """``out[:] = X`` by blocks of rows in parallel (shapes checked by the caller)."""
    cdef intp_t n = X.shape[0], d = X.shape[1], n_blocks, blk, start, stop
    if n == 0 or d == 0:
        return
    n_blocks = n_blocks_of(n, COPY_BLOCK)
    with nogil:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = blk * COPY_BLOCK
            stop = block_stop(blk, COPY_BLOCK, n)
            memcpy(&out[start, 0], &X[start, 0], (stop - start) * d * sizeof(floating))
