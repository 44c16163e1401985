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

from fastimb._kernels._blocks cimport block_stop, n_blocks_of
from fastimb._kernels._prefetch cimport prefetch_bytes
from fastimb._kernels._typedefs cimport index_t, intp_t

cdef extern from "_stream.h" nogil:
    void fastimb_stream_copy(void* dst, const void* src, size_t n)
    void fastimb_stream_fence()

# rows per task of the parallel copy (a few hundred KiB at typical widths)
cdef intp_t COPY_BLOCK = 4096
# the source rows are requested ahead of use (prefetch) from this size: smaller sources
# are cache-resident and the requests only cost (2 threads, 128k samples: 20k x 5
# doubles 11.8 ns per sample with them, 7.7 without; 20k x 20 the same, 22 ns; 70k x 20
# 34 ns with them, 77 without)
cdef intp_t PREFETCH_FROM_BYTES = 1 << 21


cdef enum:
    # samples whose indices are resolved together (independent loads of the neighbour
    # table, many misses in flight); the next block is resolved before this one is written
    SAMPLE_BLOCK = 256
    # samples between the one being written and the one whose rows are requested: enough
    # lead to cover a miss to the last-level cache, few enough that the rows requested are
    # still cached when they are read
    AHEAD = 8


cdef inline void resolve(const index_t* drawn, const intp_t* rows, const intp_t* base_map,
                         const intp_t* nns, intp_t k, intp_t a, intp_t e, intp_t* base,
                         intp_t* nbr) noexcept nogil:
    """The rows of X samples ``a <= i < e`` start at and move towards, into base and nbr
    (``rows`` and ``base_map`` are NULL when not given: nns row r starts at row r of X)."""
    cdef intp_t i, r, c
    for i in range(a, e):
        if rows != NULL:
            r = rows[i]
            c = drawn[i]
        else:
            r = drawn[i] // k
            c = drawn[i] - r * k
        nbr[i - a] = nns[r * k + c]
        base[i - a] = base_map[r] if base_map != NULL else r


cdef inline void interpolate_row(const floating* xb, const floating* xt, intp_t d, double s,
                                 const double* scale, intp_t i, floating* o) noexcept nogil:
    """One new sample: ``o = xb + s * diff`` (``scale`` NULL when not given)."""
    cdef intp_t j
    cdef double f
    cdef floating diff
    if scale != NULL:
        f = scale[i]
        for j in range(d):
            diff = <floating>(<double>(xt[j] - xb[j]) * f)
            o[j] = <floating>(<double>xb[j] + s * <double>diff)
    else:
        for j in range(d):
            diff = xt[j] - xb[j]
            o[j] = <floating>(<double>xb[j] + s * <double>diff)


cdef void interpolate_range(const floating* X, intp_t d, const index_t* drawn,
                            const intp_t* rows, const intp_t* base_map, const intp_t* nns,
                            intp_t k, const double* steps, const double* scale,
                            floating* out, intp_t a, intp_t e, bint ahead_rows) noexcept nogil:
    """Samples ``a <= i < e``, a block of indices at a time; with ``ahead_rows``, while
    sample i is written, the rows of sample i + AHEAD are requested (from the next
    block's indices near the end of a block), so a steady number of misses is in
    flight."""
    cdef intp_t idx[4 * SAMPLE_BLOCK]   # base and nbr of the current and the next block
    cdef intp_t* cur_base = idx
    cdef intp_t* cur_nbr = idx + SAMPLE_BLOCK
    cdef intp_t* nxt_base = idx + 2 * SAMPLE_BLOCK
    cdef intp_t* nxt_nbr = idx + 3 * SAMPLE_BLOCK
    cdef intp_t* t
    cdef intp_t i, b, stop, nxt_stop, ahead
    cdef intp_t row_bytes = d * sizeof(floating)
    if a >= e:
        return
    stop = min(a + SAMPLE_BLOCK, e)
    resolve(drawn, rows, base_map, nns, k, a, stop, cur_base, cur_nbr)
    for i in range(a, min(a + AHEAD, stop) if ahead_rows else a):
        prefetch_bytes(X + cur_base[i - a] * d, row_bytes)
        prefetch_bytes(X + cur_nbr[i - a] * d, row_bytes)
    b = a
    while b < e:
        stop = min(b + SAMPLE_BLOCK, e)
        nxt_stop = min(stop + SAMPLE_BLOCK, e)
        if stop < e:
            resolve(drawn, rows, base_map, nns, k, stop, nxt_stop, nxt_base, nxt_nbr)
        for i in range(b, stop):
            ahead = i + AHEAD
            if ahead_rows and ahead < stop:
                prefetch_bytes(X + cur_base[ahead - b] * d, row_bytes)
                prefetch_bytes(X + cur_nbr[ahead - b] * d, row_bytes)
            elif ahead_rows and ahead < nxt_stop:
                prefetch_bytes(X + nxt_base[ahead - stop] * d, row_bytes)
                prefetch_bytes(X + nxt_nbr[ahead - stop] * d, row_bytes)
            interpolate_row(X + cur_base[i - b] * d, X + cur_nbr[i - b] * d, d, steps[i],
                            scale, i, out + i * d)
        t = cur_base
        cur_base = nxt_base
        nxt_base = t
        t = cur_nbr
        cur_nbr = nxt_nbr
        nxt_nbr = t
        b = stop


def interpolate(const floating[:, ::1] X,      # IN  (n, d) data
                const index_t[::1] drawn,      # IN  (m,) the integers drawn (int32/64)
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
    cdef intp_t m = drawn.shape[0], d = X.shape[1], k = nns.shape[1], part, t
    cdef const intp_t* p_rows
    cdef const intp_t* p_base
    cdef const double* p_scale
    cdef bint ahead_rows = X.shape[0] * d * <intp_t> sizeof(floating) >= PREFETCH_FROM_BYTES
    if m == 0 or d == 0:
        return
    p_rows = &rows[0] if rows.shape[0] > 0 else NULL
    p_base = &base_map[0] if base_map.shape[0] > 0 else NULL
    p_scale = &scale[0] if scale.shape[0] > 0 else NULL
    n_threads = max(1, min(n_threads, <int> n_blocks_of(m, SAMPLE_BLOCK)))
    part = n_blocks_of(m, n_threads)      # samples per thread: one contiguous range each
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            interpolate_range(&X[0, 0], d, &drawn[0], p_rows, p_base, &nns[0, 0], k,
                              &steps[0], p_scale, &out[0, 0], t * part,
                              block_stop(t, part, m), ahead_rows)


def copy_rows(const floating[:, ::1] X,        # IN  (n, d) data
              floating[:, ::1] out,            # OUT (n, d) first rows of the output
              int n_threads):
    """``out[:] = X`` by blocks of rows in parallel, with non-temporal stores (the output
    is not read again here; shapes checked by the caller)."""
    cdef intp_t n = X.shape[0], d = X.shape[1], n_blocks, blk, start, stop
    if n == 0 or d == 0:
        return
    n_blocks = n_blocks_of(n, COPY_BLOCK)
    with nogil:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            start = blk * COPY_BLOCK
            stop = block_stop(blk, COPY_BLOCK, n)
            fastimb_stream_copy(&out[start, 0], &X[start, 0],
                                (stop - start) * d * sizeof(floating))
            fastimb_stream_fence()
