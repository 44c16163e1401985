"""Brute-force exact k-NN in blocks: BLAS gemm for the dot products, fused k-selection.

For a block of queries and a block of data rows, ``||q||^2 - 2 q.x + ||x||^2`` gives an
approximate squared distance; the best ``n_candidates`` (> k) per query are kept in a
heap, and at the end their exact squared distances (difference-and-square in double,
the same formula as the KD-tree's) decide the final k and their order. Only a block of
``BLOCK_Q x BLOCK_X`` products per thread is ever in memory. Tie rule: at equal distance
the lower index first.

The products may be taken in float32 (``approx_t``) for float64 data: twice the gemm
throughput. The exact re-ranking then still decides, and each query is flagged
``unsure`` unless its k-th exact distance is below the approximate distance of the worst
candidate kept minus ``slack`` (a bound on the float32 error), in which case no point
outside the candidates can belong to its k nearest; the caller recomputes flagged
queries in float64.

The caller limits BLAS to one thread: the parallelism is over query blocks.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport fabs, sqrt
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport dgemm, sgemm

from fastimb._kernels._distance cimport rdist
from fastimb._kernels._heap cimport heap_init, heap_push, heap_sort
from fastimb._kernels._typedefs cimport intp_t

ctypedef fused approx_t:
    float
    double

DEF BLOCK_Q = 128
DEF BLOCK_X = 1024


cdef inline void dot_block(const approx_t* xb, int nx, const approx_t* qb, int nq, int d,
                           approx_t* out) noexcept nogil:
    """out[i * nx + j] = <q_i, x_j> for i < nq, j < nx (row-major blocks of width d)."""
    cdef char ta = b'T'
    cdef char tb = b'N'
    cdef approx_t alpha = 1.0
    cdef approx_t beta = 0.0
    if approx_t is double:
        dgemm(&ta, &tb, &nx, &nq, &d, &alpha, <double*> xb, &d, <double*> qb, &d,
              &beta, out, &nx)
    else:
        sgemm(&ta, &tb, &nx, &nq, &d, &alpha, <float*> xb, &d, <float*> qb, &d,
              &beta, out, &nx)


cdef extern from *:
    """
    /* Branch-free count of the j with ||x_j||^2 - 2 q.x_j <= bound. The compiler
       vectorises it; on x86-64 Linux with GCC an AVX2 clone is chosen at load time. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define FASTIMB_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define FASTIMB_CLONES
    #endif
    FASTIMB_CLONES static Py_ssize_t fastimb_count_below_d(
            const double* row, const double* xn, Py_ssize_t nx, double bound) {
        Py_ssize_t j, count = 0;
        for (j = 0; j < nx; j++) { if (xn[j] - 2.0 * row[j] <= bound) count++; }
        return count;
    }
    FASTIMB_CLONES static Py_ssize_t fastimb_count_below_f(
            const float* row, const double* xn, Py_ssize_t nx, double bound) {
        Py_ssize_t j, count = 0;
        for (j = 0; j < nx; j++) { if (xn[j] - 2.0 * (double)row[j] <= bound) count++; }
        return count;
    }
    """
    intp_t fastimb_count_below_d(const double* row, const double* xn, intp_t nx,
                                 double bound) noexcept nogil
    intp_t fastimb_count_below_f(const float* row, const double* xn, intp_t nx,
                                 double bound) noexcept nogil


cdef inline intp_t count_below(const approx_t* row, const double* xn, intp_t nx,
                              double bound) noexcept nogil:
    """How many j have ||x_j||^2 - 2 q.x_j <= bound (blocks without a candidate are
    skipped after this vectorised pass)."""
    if approx_t is double:
        return fastimb_count_below_d(row, xn, nx, bound)
    else:
        return fastimb_count_below_f(row, xn, nx, bound)


def query_knn(const floating[:, ::1] X,        # IN  (n, d) data (exact distances)
              const approx_t[:, ::1] XA,       # IN  (n, d) data for the products
              const double[::1] x_norms,       # IN  (n,) squared norms of XA rows
              const floating[:, ::1] Q,        # IN  (m, d) queries (exact distances)
              const approx_t[:, ::1] QA,       # IN  (m, d) queries for the products
              const double[::1] q_norms,       # IN  (m,) squared norms of QA rows
              const intp_t[::1] skip,          # IN  (m,) index never returned, or -1
              const double[::1] slack,         # IN  (m,) bound on the approximation error
              double[:, ::1] out_dist,         # OUT (m, k)
              intp_t[:, ::1] out_ind,          # OUT (m, k)
              unsigned char[::1] unsure,       # OUT (m,) 1 where the bound did not hold
              intp_t n_candidates,             # IN  approximate candidates kept (>= k)
              bint squared,                    # IN  squared distances out
              int n_threads):
    """k nearest neighbours of each row of Q among the rows of X (exact unless flagged)."""
    cdef intp_t n = X.shape[0], d = X.shape[1], m = Q.shape[0], k = out_ind.shape[1]
    cdef intp_t kc = n_candidates, n_blocks = (m + BLOCK_Q - 1) // BLOCK_Q
    cdef intp_t qb, q0, nq, x0, nx, i, j, c, jj, sk
    cdef double qn, thr, dd
    cdef approx_t* buf = NULL
    cdef double* hd = NULL
    cdef intp_t* hind = NULL
    cdef double* fd = NULL
    cdef intp_t* find_ = NULL
    cdef approx_t* row
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    if m == 0 or k == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        buf = <approx_t*> malloc(BLOCK_Q * BLOCK_X * sizeof(approx_t))
        hd = <double*> malloc(BLOCK_Q * kc * sizeof(double))
        hind = <intp_t*> malloc(BLOCK_Q * kc * sizeof(intp_t))
        fd = <double*> malloc(k * sizeof(double))
        find_ = <intp_t*> malloc(k * sizeof(intp_t))
        if buf == NULL or hd == NULL or hind == NULL or fd == NULL or find_ == NULL:
            p_failed[0] = 1
        else:
            for qb in prange(n_blocks, schedule="dynamic"):
                q0 = qb * BLOCK_Q
                nq = min(BLOCK_Q, m - q0)
                for i in range(nq):
                    heap_init(hd + i * kc, hind + i * kc, kc)
                x0 = 0
                while x0 < n:
                    nx = min(BLOCK_X, n - x0)
                    dot_block(&XA[x0, 0], <int> nx, &QA[q0, 0], <int> nq, <int> d, buf)
                    for i in range(nq):
                        qn = q_norms[q0 + i]
                        sk = skip[q0 + i]
                        thr = hd[i * kc]
                        row = buf + i * nx
                        # the pre-filter's bound is widened by far more than the rounding
                        # difference between its sum and the one below
                        if count_below(row, &x_norms[x0], nx,
                                       thr - qn + 1e-9 * (fabs(thr) + qn)) == 0:
                            continue
                        for j in range(nx):
                            dd = qn + x_norms[x0 + j] - 2.0 * row[j]
                            if dd <= thr:
                                jj = x0 + j
                                if jj != sk:
                                    heap_push(hd + i * kc, hind + i * kc, kc, dd, jj)
                                    thr = hd[i * kc]
                    x0 = x0 + nx
                # exact distances of the candidates decide the final k
                for i in range(nq):
                    heap_init(fd, find_, k)
                    for c in range(kc):
                        jj = hind[i * kc + c]
                        if jj >= 0 and jj < n:
                            heap_push(fd, find_, k, rdist(&Q[q0 + i, 0], &X[jj, 0], d), jj)
                    heap_sort(fd, find_, k)
                    # hd[i * kc] is the approximate distance of the worst candidate kept
                    # (+inf while fewer than kc points were seen: then all are candidates)
                    unsure[q0 + i] = not (fd[k - 1] < hd[i * kc] - slack[q0 + i])
                    for c in range(k):
                        out_dist[q0 + i, c] = fd[c] if squared else sqrt(fd[c])
                        out_ind[q0 + i, c] = find_[c]
        free(buf)
        free(hd)
        free(hind)
        free(fd)
        free(find_)
    if failed:
        raise MemoryError("brute-force k-NN: out of memory for per-thread buffers")
