"""SMOTE-family kernels: batched interpolation and the copy of the original rows.

``interpolate`` writes ``out[i] = X[base[i]] + steps[i] * diff_i`` (base and neighbour
rows resolved from the drawn integers in the kernel; the samplers pass the rows of the
class alone, a compact array that stays in cache, rather than the whole input) with
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
from fastimb._kernels._prefetch cimport prefetch_bytes
from fastimb._kernels._typedefs cimport intp_t

# rows per task of the parallel copy (a few hundred KiB at typical widths)
cdef intp_t COPY_BLOCK = 4096


cdef enum:
    # samples per pass of the interpolation: their rows are first resolved and
    # prefetched (independent loads, many misses in flight), then written
    SAMPLE_BLOCK = 256


cdef void interpolate_block(const floating* X, intp_t d, const intp_t* drawn,
                            const intp_t* rows, const intp_t* base_map, const intp_t* nns,
                            intp_t k, const double* steps, const double* scale,
                            floating* out, intp_t a, intp_t e) noexcept nogil:
    """Samples ``a <= i < e`` (at most SAMPLE_BLOCK); ``rows``, ``base_map`` and ``scale``
    are NULL when not given (no map: nns row r starts at row r of X)."""
    cdef intp_t base[SAMPLE_BLOCK]
    cdef intp_t nbr[SAMPLE_BLOCK]
    cdef intp_t i, j, r, c, t
    cdef intp_t row_bytes = d * sizeof(floating)
    cdef const floating* xb
    cdef const floating* xt
    cdef floating* o
    cdef double s, f
    cdef floating diff
    for i in range(a, e):
        if rows != NULL:
            r = rows[i]
            c = drawn[i]
        else:
            r = drawn[i] // k
            c = drawn[i] - r * k
        t = nns[r * k + c]
        if base_map != NULL:
            r = base_map[r]
        base[i - a] = r
        nbr[i - a] = t
        prefetch_bytes(X + r * d, row_bytes)
        prefetch_bytes(X + t * d, row_bytes)
    for i in range(a, e):
        xb = X + base[i - a] * d
        xt = X + nbr[i - a] * d
        o = out + i * d
        s = steps[i]
        if scale != NULL:
            f = scale[i]
            for j in range(d):
                diff = <floating>(<double>(xt[j] - xb[j]) * f)
                o[j] = <floating>(<double>xb[j] + s * <double>diff)
        else:
            for j in range(d):
                diff = xt[j] - xb[j]
                o[j] = <floating>(<double>xb[j] + s * <double>diff)


def interpolate(const floating[:, ::1] X,      # IN  (n, d) data
                const intp_t[::1] drawn,       # IN  (m,) the integers drawn
                const intp_t[::1] rows,        # IN  (m,) row of nns per sample, or empty
                const intp_t[::1] base_map,    # IN  (r,) row of X each nns row starts at,
                                               #     or empty (row r)
                const intp_t[:, ::1] nns,      # IN  (r, k) neighbours (rows of X)
                const double[::1] steps,       # IN  (m,) step along the difference
                const double[::1] scale,       # IN  (m,) factor on the difference, or empty
                floating[:, ::1] out,          # OUT (m, d)
                int n_threads):
    """Fill ``out`` with the interpolated samples. Sample i uses nns row r and column c:
    ``divmod(drawn[i], k)``, or ``(rows[i], drawn[i])`` when rows are given; it starts at
    ``base_map[r]`` (``r`` itself with an empty map) and moves towards ``nns[r, c]``.
    Every index must already be in range."""
    cdef intp_t m = drawn.shape[0], d = X.shape[1], k = nns.shape[1], blk, n_blocks
    cdef const intp_t* p_rows
    cdef const intp_t* p_base
    cdef const double* p_scale
    if m == 0 or d == 0:
        return
    p_rows = &rows[0] if rows.shape[0] > 0 else NULL
    p_base = &base_map[0] if base_map.shape[0] > 0 else NULL
    p_scale = &scale[0] if scale.shape[0] > 0 else NULL
    n_blocks = n_blocks_of(m, SAMPLE_BLOCK)
    with nogil:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            interpolate_block(&X[0, 0], d, &drawn[0], p_rows, p_base, &nns[0, 0], k,
                              &steps[0], p_scale, &out[0, 0], blk * SAMPLE_BLOCK,
                              block_stop(blk, SAMPLE_BLOCK, m))


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
