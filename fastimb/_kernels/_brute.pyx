"""Brute-force exact k-NN and radius counts in blocks, with fused candidate selection.

The rows are compared with the queries through ``t = ||x||^2 / 2 - q.x`` in float32 (on
centred data), so ``||q||^2 + 2 t`` approximates the squared distance. For a block of
``BLOCK_Q`` queries and a chunk of ``BLOCK_X`` rows, the values of ``t`` come from either

* the fused SIMD scan of ``_panel_scan.h`` (AVX-512F or AVX2+FMA, chosen from the CPU):
  the rows stored in panels of 16, products and threshold test in registers; with
  AVX512_VNNI, panels are first screened with 8-bit products against the threshold
  widened by a per-pair error bound, and only those passing are computed in float32
  (the same hits, bit for bit, four times the multiply-adds per instruction); or
* BLAS ``sgemm`` for the products followed by a threshold pass (every other CPU),

and both report only the (query, 16-row panel) pairs where some row passes the query's
current threshold. The k-NN keeps the best ``n_candidates`` (> k) approximate distances
per query in a heap; at the end their exact squared distances (difference-and-square in
double, the KD-tree's formula) decide the final k and their order. Each query is flagged
``unsure`` unless its k-th exact distance is below the approximate distance of the worst
candidate kept minus ``slack`` (a bound on the float32 error): then no row outside the
candidates can belong to its k nearest. The caller recomputes flagged queries exactly.
The radius count decides each row surely inside / surely outside from the bound and
computes the exact distance in between; a query leaves the scan as soon as its count
reaches ``max_count``.

Only ``BLOCK_Q x BLOCK_X`` values per thread are ever in memory. Tie rule: at equal
distance the lower index first. The caller limits BLAS to one thread: the parallelism is
over query blocks.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, fabs, lrint, sqrt
from libc.stdlib cimport free, labs, malloc
from scipy.linalg.cython_blas cimport sgemm

from fastimb._kernels._distance cimport rdist
from fastimb._kernels._heap cimport heap_init, heap_push, heap_sort
from fastimb._kernels._typedefs cimport intp_t

import numpy as np

cdef extern from "_panel_scan.h" nogil:
    ctypedef struct fastimb_hit:
        int qi
        int panel
        unsigned mask
        float t[16]
    int fastimb_scan_level()
    int fastimb_lowest_bit(unsigned m)
    intp_t fastimb_scan(int level, const float* P, const unsigned* U, const float* R,
                        const float* xh, intp_t n_panels, int d, const float* q,
                        const unsigned* qu, const int* qinit, const float* qscale,
                        const float* qa, const float* qb, int nq, const float* thr,
                        const float* thr_s, fastimb_hit* hits)

DEF BLOCK_Q = 128    # queries per parallel task (a multiple of the scan tile, 8)
DEF BLOCK_X = 1024   # rows per chunk (a multiple of the panel width)
DEF PANEL = 16
DEF MAX_HITS = BLOCK_Q * (BLOCK_X // PANEL)


def scan_level():
    """The fused scan this CPU runs: 3 = AVX-512F screened with AVX512_VNNI 8-bit
    products, 2 = AVX-512F, 1 = AVX2+FMA, 0 = none (gemm path)."""
    return fastimb_scan_level()


def make_rows(const floating[:, ::1] X,      # IN  (n, d) data
              const double[::1] mean,        # IN  (d,) centre
              float[:, ::1] XA,              # OUT (n, d) centred float32 rows (or (0, d))
              float[:, :, ::1] P,            # OUT (ceil(n/16), d, 16) panels (or (0, d, 16))
              float[::1] xh,                 # OUT (16 ceil(n/16),) ||x||^2 / 2, +inf padding
              double[::1] norms,             # OUT (n,) squared norms of the float32 rows
              int n_threads):
    """The scan's copy of the data: centred, in float32, as rows (gemm path) and/or
    panels (fused scan), with their squared norms."""
    cdef intp_t n = X.shape[0], d = X.shape[1], i, j
    cdef bint rows = XA.shape[0] > 0, panels = P.shape[0] > 0
    cdef float v
    cdef double acc
    for i in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        acc = 0.0
        for j in range(d):
            v = <float> (<double> X[i, j] - mean[j])
            acc = acc + <double> v * <double> v
            if rows:
                XA[i, j] = v
            if panels:
                P[i // PANEL, j, i % PANEL] = v
        norms[i] = acc
        xh[i] = <float> (0.5 * acc)
    for i in range(n, xh.shape[0]):
        xh[i] = INFINITY
        for j in range(d):
            if panels:
                P[i // PANEL, j, i % PANEL] = 0.0


# panels per task of the two passes below
DEF SCREEN_BLOCK = 256


def panel_moments(const float[:, :, ::1] P,  # IN  (n_panels, d, 16) panels
                  int n_threads):
    """Per dimension, the largest |coordinate| and the sum of squares of the panels."""
    cdef intp_t n_panels = P.shape[0], d = P.shape[1], n_blocks, b, p, j, l
    cdef double v
    n_blocks = (n_panels + SCREEN_BLOCK - 1) // SCREEN_BLOCK
    part = np.zeros((max(n_blocks, 1), 2, d), dtype=np.float64)
    cdef double[:, :, ::1] pv = part
    for b in prange(n_blocks, nogil=True, num_threads=n_threads, schedule="static"):
        for p in range(b * SCREEN_BLOCK, min(n_panels, (b + 1) * SCREEN_BLOCK)):
            for j in range(d):
                for l in range(PANEL):
                    v = fabs(P[p, j, l])
                    pv[b, 1, j] += v * v
                    if v > pv[b, 0, j]:
                        pv[b, 0, j] = v
    return part[:, 0].max(axis=0), part[:, 1].sum(axis=0)


def quantize_rows(const float[:, :, ::1] P,       # IN  (n_panels, d, 16) panels
                  const double[::1] scale,        # IN  (d,) steps a_j (0: a zero column)
                  unsigned[:, :, ::1] U,          # OUT (n_panels, ceil(d/4), 16)
                  float[:, ::1] R,                # OUT (n_panels, 2) per panel: largest
                                                  #     norm of x - a * xq, and of xq, over
                                                  #     its rows (rounded up)
                  int n_threads):
    """The 8-bit screen's copy of the panels (layout in ``_panel_scan.h``): coordinate j
    as xq_j = round(x_j / a_j) clipped to [-127, 127], stored plus 128, and per panel the
    two norms its error bound needs."""
    cdef intp_t n_panels = P.shape[0], d = P.shape[1], d4 = U.shape[1], p, l, jj, k, j
    cdef long xq
    cdef unsigned word
    cdef double rr, qq, res, r_max, q_max
    for p in prange(n_panels, nogil=True, num_threads=n_threads, schedule="static"):
        r_max = 0.0
        q_max = 0.0
        for l in range(PANEL):
            rr = 0.0
            qq = 0.0
            for jj in range(d4):
                word = 0
                for k in range(4):
                    j = 4 * jj + k
                    xq = 0
                    if j < d:
                        if scale[j] > 0:
                            xq = max(-127, min(127, lrint(P[p, j, l] / scale[j])))
                        res = P[p, j, l] - scale[j] * xq
                        rr = rr + res * res
                        qq = qq + <double> (xq * xq)
                    word = word | (<unsigned> (xq + 128) << (8 * k))
                U[p, jj, l] = word
            r_max = max(r_max, rr)
            q_max = max(q_max, qq)
        R[p, 0] = <float> (sqrt(r_max) * (1.0 + 1e-6))
        R[p, 1] = <float> (sqrt(q_max) * (1.0 + 1e-6))


cdef inline float scan_threshold(double v, double scale) noexcept nogil:
    """A float32 threshold on t never below ``v`` (the rounding of v, and of its inputs of
    magnitude ``scale``, covered with a wide margin)."""
    return <float> (v + 1e-6 * scale + 1e-30)


cdef inline intp_t chunk_rows(intp_t x0, intp_t n) noexcept nogil:
    """Rows in the chunk starting at x0: 64, 64, 128, 256, 512, then BLOCK_X. The
    thresholds are fixed during a chunk, so small first chunks let the heaps fill (and
    the thresholds tighten) before the long ones."""
    return min(min(BLOCK_X, max(64, x0)), n - x0)


cdef inline intp_t query_block(intp_t m, int n_threads) noexcept nogil:
    """Queries per parallel task: BLOCK_Q, or fewer (a multiple of 8, at least 32: the
    rows are read once per task) so that a few queries still keep every thread busy."""
    cdef intp_t per_thread = (m + n_threads - 1) // max(n_threads, 1)
    return min(BLOCK_Q, max(32, (per_thread + 7) // 8 * 8))


cdef struct Rows:
    # the indexed rows, read-only
    intp_t n
    intp_t d
    int level               # 0: gemm path on XA; 1, 2: fused scan on P; 3: screened by U
    const float* XA
    const float* P
    const unsigned* U
    const float* R
    const float* xh
    # the 8-bit screen (level 3): per-dimension steps and the rows' largest norm
    const double* scale
    double x_len


cdef Rows rows_of(const float[:, ::1] XA, const float[:, :, ::1] P,
                  const unsigned[:, :, ::1] U, const float[:, ::1] R, const float[::1] xh,
                  intp_t n, int level, const double[::1] scale, double x_len):
    cdef Rows rows
    rows.n = n
    rows.d = XA.shape[1]
    rows.level = level
    rows.XA = &XA[0, 0] if XA.shape[0] > 0 else NULL
    rows.P = &P[0, 0, 0] if P.shape[0] > 0 else NULL
    rows.U = &U[0, 0, 0] if U.shape[0] > 0 else NULL
    rows.R = &R[0, 0] if R.shape[0] > 0 else NULL
    rows.scale = &scale[0] if scale.shape[0] > 0 else NULL
    rows.x_len = x_len
    rows.xh = &xh[0]
    return rows


cdef struct Work:
    # one thread's buffers
    float* qbuf             # (BLOCK_Q, d) the block's queries, padding rows zero
    float* thr              # (BLOCK_Q,) scan thresholds on t, -inf for padding rows
    # level 3 only: the queries quantised for the 8-bit screen (see _panel_scan.h)
    unsigned* qu            # (BLOCK_Q, ceil(d/4)) packed signed bytes
    int* qinit              # (BLOCK_Q,) -128 times the sum of each query's bytes
    float* qscale           # (BLOCK_Q,) each query's scale c
    float* qa               # (BLOCK_Q,) |q|, and c |q a / c - qq|: the pair's error
    float* qb               #   bound is qa |x - a xq| + qb |xq| + qmargin
    double* qmargin         # (BLOCK_Q,) rounding part of the bound
    float* thr_s            # (BLOCK_Q,) the screen's wider thresholds
    float* prod             # (BLOCK_Q, BLOCK_X) products (gemm path only)
    fastimb_hit* hits       # (MAX_HITS,)
    intp_t* qrows           # (BLOCK_Q,) the queries in the buffer
    intp_t lane_row[PANEL]  # one hit's rows and approximate squared distances (hit_lanes)
    double lane_dd[PANEL]


cdef Work work_alloc(intp_t d, int level) noexcept nogil:
    """A thread's buffers (any pointer NULL when out of memory: see work_ok)."""
    cdef Work w
    w.qbuf = <float*> malloc(BLOCK_Q * d * sizeof(float))
    w.thr = <float*> malloc(BLOCK_Q * sizeof(float))
    w.qu = <unsigned*> malloc(BLOCK_Q * ((d + 3) // 4) * sizeof(unsigned) + 1)
    w.qinit = <int*> malloc(BLOCK_Q * sizeof(int))
    w.qscale = <float*> malloc(BLOCK_Q * sizeof(float))
    w.qa = <float*> malloc(BLOCK_Q * sizeof(float))
    w.qb = <float*> malloc(BLOCK_Q * sizeof(float))
    w.qmargin = <double*> malloc(BLOCK_Q * sizeof(double))
    w.thr_s = <float*> malloc(BLOCK_Q * sizeof(float))
    w.prod = <float*> malloc(BLOCK_Q * BLOCK_X * sizeof(float)) if level == 0 else NULL
    w.hits = <fastimb_hit*> malloc(MAX_HITS * sizeof(fastimb_hit))
    w.qrows = <intp_t*> malloc(BLOCK_Q * sizeof(intp_t))
    return w


cdef bint work_ok(const Work* w, int level) noexcept nogil:
    return w.qbuf != NULL and w.thr != NULL and w.qu != NULL and w.qinit != NULL and \
        w.qscale != NULL and w.qa != NULL and w.qb != NULL and w.qmargin != NULL and \
        w.thr_s != NULL and \
        w.hits != NULL and w.qrows != NULL and \
        (level > 0 or w.prod != NULL)


cdef void work_free(Work* w) noexcept nogil:
    free(w.qbuf)
    free(w.thr)
    free(w.qu)
    free(w.qinit)
    free(w.qscale)
    free(w.qa)
    free(w.qb)
    free(w.qmargin)
    free(w.thr_s)
    free(w.prod)
    free(w.hits)
    free(w.qrows)


cdef intp_t scan_chunk(const Rows* r, Work* w, intp_t x0, intp_t nx,
                       int nq) noexcept nogil:
    """Hits of the ``nq`` buffered queries (a multiple of 8) on rows [x0, x0 + nx)."""
    cdef intp_t n_panels = (nx + PANEL - 1) // PANEL, nh = 0, p, l, stop
    cdef int i, inx = <int> nx, ind = <int> r.d
    cdef char ta = b'T'
    cdef char tb = b'N'
    cdef float one = 1.0, zero = 0.0, t, th
    cdef const float* prow
    cdef unsigned mask
    if r.level > 0:
        return fastimb_scan(r.level, r.P + (x0 // PANEL) * r.d * PANEL,
                            r.U + (x0 // PANEL) * ((r.d + 3) // 4) * PANEL if r.U != NULL
                            else NULL, r.R + (x0 // PANEL) * 2 if r.R != NULL
                            else NULL, r.xh + x0, n_panels, ind, w.qbuf, w.qu, w.qinit,
                            w.qscale, w.qa, w.qb, nq, w.thr, w.thr_s, w.hits)
    # prod[i * nx + j] = <q_i, x_j>, then the same threshold test per 16-row panel
    sgemm(&ta, &tb, &inx, &nq, &ind, &one, <float*> (r.XA + x0 * r.d), &ind, w.qbuf,
          &ind, &zero, w.prod, &inx)
    for i in range(nq):
        th = w.thr[i]
        prow = w.prod + i * nx
        for p in range(n_panels):
            stop = min(PANEL, nx - p * PANEL)
            mask = 0
            for l in range(stop):
                t = r.xh[x0 + p * PANEL + l] - prow[p * PANEL + l]
                w.hits[nh].t[l] = t
                if t <= th:
                    mask = mask | (<unsigned> 1 << l)
            if mask:
                w.hits[nh].qi = i
                w.hits[nh].panel = <int> p
                w.hits[nh].mask = mask
                nh = nh + 1
    return nh


cdef inline int hit_lanes(Work* w, const fastimb_hit* hit, intp_t x0, intp_t n,
                          double qn) noexcept nogil:
    """A hit's rows below n (lanes in increasing order) in ``w.lane_row``, and their
    approximate squared distances qn + 2 t in ``w.lane_dd``; returns their count."""
    cdef unsigned mask = hit.mask
    cdef int l, c = 0
    cdef intp_t jj
    while mask:
        l = fastimb_lowest_bit(mask)
        mask = mask & (mask - 1)
        jj = x0 + hit.panel * PANEL + l
        if jj >= n:
            break
        w.lane_row[c] = jj
        w.lane_dd[c] = qn + 2.0 * hit.t[l]
        c = c + 1
    return c


cdef void quantize_query(Work* w, intp_t i, intp_t d, const Rows* r) noexcept nogil:
    """Buffered query i for the 8-bit screen, q_j a_j = c (qq_j + e_j) with c = max_j
    |q_j a_j| / 127 (so |e_j| <= 1/2), and its error bound. For a row x = a xq + res
    (per coordinate), q.x = c qq.xq + c e.xq + q.res, so the integer sum misses q.x by at
    most c |e| |xq| + |q| |res| (Cauchy-Schwarz; R bounds the norms per panel); the float32 t
    and the screen's arithmetic round at most d + 10 times by 2^-23 relative to |x|^2/2 +
    |q| |x| (qmargin, a quarter more on top)."""
    cdef const float* qf = w.qbuf + i * d
    cdef intp_t d4 = (d + 3) // 4, jj, k, j
    cdef double c = 0.0, qn2 = 0.0, q_len, e, e2 = 0.0
    cdef long qq, total = 0
    cdef unsigned word
    for j in range(d):
        c = max(c, fabs(qf[j]) * r.scale[j])
        qn2 = qn2 + <double> qf[j] * qf[j]
    c = c / 127.0
    for jj in range(d4):
        word = 0
        for k in range(4):
            j = 4 * jj + k
            qq = 0
            if j < d and c > 0:
                e = qf[j] * r.scale[j] / c
                qq = max(-127, min(127, lrint(e)))
                e2 = e2 + (e - qq) * (e - qq)
            total = total + qq
            word = word | ((<unsigned> qq & 0xFF) << (8 * k))
        w.qu[i * d4 + jj] = word
    q_len = sqrt(qn2)
    w.qinit[i] = <int> (-128 * total)
    w.qscale[i] = <float> c
    w.qa[i] = <float> (q_len * (1.0 + 1e-5))
    w.qb[i] = <float> (c * sqrt(e2) * (1.0 + 1e-5))
    w.qmargin[i] = 1.25 * (d + 10) * 2.0 ** -23 * (0.5 * r.x_len * r.x_len + q_len * r.x_len) \
        + 1e-30 * (1.0 + q_len) * (1.0 + r.x_len)


cdef int load_queries(Work* w, const float* QA, intp_t nq, const Rows* r) noexcept nogil:
    """Copy the queries ``w.qrows[:nq]`` (rows of the (m, d) array QA) into the buffer
    (and quantise them at level 3), zero padding to a multiple of 8; returns the padded
    count."""
    cdef intp_t i, j, d = r.d
    cdef int nq_pad = <int> ((nq + 7) // 8 * 8)
    for i in range(nq_pad):
        for j in range(d):
            w.qbuf[i * d + j] = QA[w.qrows[i] * d + j] if i < nq else 0.0
        if r.level == 3:
            quantize_query(w, i, d, r)
        if i >= nq:
            w.thr[i] = -INFINITY
            w.thr_s[i] = -INFINITY
    return nq_pad


cdef inline void set_threshold(Work* w, intp_t i, double v, double scale) noexcept nogil:
    """Query i's scan threshold from ``v`` (see scan_threshold) and, for the 8-bit
    screen, that threshold plus the query's error bound, rounded up."""
    cdef double t
    w.thr[i] = scan_threshold(v, scale)
    t = <double> w.thr[i] + w.qmargin[i]
    w.thr_s[i] = scan_threshold(t, fabs(t))


def query_knn(const floating[:, ::1] X,        # IN  (n, d) data (exact distances)
              const float[:, ::1] XA,          # IN  (n, d) rows for the gemm path, or (0, d)
              const float[:, :, ::1] P,        # IN  panels for the fused scan, or (0, d, 16)
              const unsigned[:, :, ::1] U,     # IN  8-bit panels (level 3), or empty
              const float[::1] xh,             # IN  (16 ceil(n/16),) half squared norms
              const floating[:, ::1] Q,        # IN  (m, d) queries (exact distances)
              const float[:, ::1] QA,          # IN  (m, d) centred float32 queries
              const double[::1] q_norms,       # IN  (m,) squared norms of QA rows
              const intp_t[::1] skip,          # IN  (m,) index never returned, or -1
              const double[::1] slack,         # IN  (m,) bound on the approximation error
              const double[::1] scale,         # IN  (d,) the screen's scales (level 3)
              const float[:, ::1] R,           # IN  the screen's panel norms (level 3)
              double x_len,                    # IN  largest norm of a row
              double[:, ::1] out_dist,         # OUT (m, k)
              intp_t[:, ::1] out_ind,          # OUT (m, k)
              unsigned char[::1] unsure,       # OUT (m,) 1 where the bound did not hold
              intp_t n_candidates,             # IN  approximate candidates kept (>= k)
              bint squared,                    # IN  squared distances out
              int level,                       # IN  scan_level() or 0 (gemm path)
              int n_threads):
    """k nearest neighbours of each row of Q among the rows of X (exact unless flagged)."""
    cdef intp_t n = X.shape[0], d = X.shape[1], m = Q.shape[0], k = out_ind.shape[1]
    cdef intp_t kc = n_candidates, block_q = query_block(m, n_threads)
    cdef intp_t n_blocks = (m + block_q - 1) // block_q
    cdef intp_t qb, q0, nq, x0, nx, i, j, c, jj, sk, h, nh
    cdef int nq_pad
    cdef double qn
    cdef Rows rows
    cdef Work w
    cdef double* hd = NULL
    cdef intp_t* hind = NULL
    cdef double* fd = NULL
    cdef intp_t* find_ = NULL
    cdef fastimb_hit* hit
    cdef int e
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    if m == 0 or k == 0:
        return
    rows = rows_of(XA, P, U, R, xh, n, level, scale, x_len)
    with nogil, parallel(num_threads=n_threads):
        w = work_alloc(d, level)  # assigned here, so private to each thread
        hd = <double*> malloc(BLOCK_Q * kc * sizeof(double))
        hind = <intp_t*> malloc(BLOCK_Q * kc * sizeof(intp_t))
        fd = <double*> malloc(k * sizeof(double))
        find_ = <intp_t*> malloc(k * sizeof(intp_t))
        if not work_ok(&w, level) or hd == NULL or hind == NULL or fd == NULL or \
                find_ == NULL:
            p_failed[0] = 1
        else:
            for qb in prange(n_blocks, schedule="dynamic"):
                q0 = qb * block_q
                nq = min(block_q, m - q0)
                for i in range(nq):
                    w.qrows[i] = q0 + i
                    heap_init(hd + i * kc, hind + i * kc, kc)
                nq_pad = load_queries(&w, &QA[0, 0], nq, &rows)
                x0 = 0
                while x0 < n:
                    nx = chunk_rows(x0, n)
                    for i in range(nq):
                        qn = q_norms[q0 + i]
                        set_threshold(&w, i, 0.5 * (hd[i * kc] - qn), fabs(hd[i * kc]) + qn)
                    nh = scan_chunk(&rows, &w, x0, nx, nq_pad)
                    for h in range(nh):
                        hit = &w.hits[h]
                        i = hit.qi
                        sk = skip[q0 + i]
                        for e in range(hit_lanes(&w, hit, x0, n, q_norms[q0 + i])):
                            if w.lane_dd[e] <= hd[i * kc] and w.lane_row[e] != sk:
                                heap_push(hd + i * kc, hind + i * kc, kc, w.lane_dd[e],
                                          w.lane_row[e])
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
        work_free(&w)
        free(hd)
        free(hind)
        free(fd)
        free(find_)
    if failed:
        raise MemoryError("brute-force k-NN: out of memory for per-thread buffers")


def count_closer(const floating[:, ::1] X,        # IN  (n, d) data (exact distances)
                 const float[:, ::1] XA,          # IN  as in query_knn
                 const float[:, :, ::1] P,
                 const unsigned[:, :, ::1] U,
                 const float[::1] xh,
                 const floating[:, ::1] Q,        # IN  (m, d) queries (exact distances)
                 const float[:, ::1] QA,          # IN  (m, d) centred float32 queries
                 const double[::1] q_norms,       # IN  (m,) squared norms of QA rows
                 const double[::1] radius2,       # IN  (m,) squared radius, strict
                 const intp_t[::1] skip,          # IN  (m,) index never counted, or -1
                 const double[::1] slack,         # IN  (m,) bound on the approximation error
                 const double[::1] scale,         # IN  as in query_knn
                 const float[:, ::1] R,
                 double x_len,
                 intp_t max_count,                # IN  stop counting at this many
                 intp_t[::1] out_count,           # OUT (m,)
                 int level,                       # IN  scan_level() or 0 (gemm path)
                 int n_threads):
    """Per query, how many rows of X lie strictly within ``sqrt(radius2)`` (capped).

    Exact: an approximate distance below ``radius2 - slack`` is surely inside, one above
    ``radius2 + slack`` surely outside, and the rest are decided by ``rdist``. The rows
    are scanned chunk by chunk and a query leaves the block as soon as its count reaches
    ``max_count``, so "at least k closer" costs a fraction of a full scan when such points
    are common.
    """
    cdef intp_t n = X.shape[0], d = X.shape[1], m = Q.shape[0]
    cdef intp_t block_q = query_block(m, n_threads)
    cdef intp_t n_blocks = (m + block_q - 1) // block_q
    cdef intp_t qb, q0, nq, x0, nx, a, n_act, n_keep, n_loaded, qi, jj, cnt, h, nh
    cdef int nq_pad
    cdef double qn, r2, s, dd
    cdef Rows rows
    cdef Work w
    cdef fastimb_hit* hit
    cdef int e
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    if m == 0:
        return
    rows = rows_of(XA, P, U, R, xh, n, level, scale, x_len)
    with nogil, parallel(num_threads=n_threads):
        w = work_alloc(d, level)  # assigned here, so private to each thread
        if not work_ok(&w, level):
            p_failed[0] = 1
        else:
            for qb in prange(n_blocks, schedule="dynamic"):
                q0 = qb * block_q
                nq = min(block_q, m - q0)
                for a in range(nq):
                    w.qrows[a] = q0 + a
                    out_count[q0 + a] = 0
                n_act = nq
                n_loaded = -1
                x0 = 0
                while x0 < n and n_act > 0:
                    nx = chunk_rows(x0, n)
                    if n_act != n_loaded:  # (re)load after queries left
                        nq_pad = load_queries(&w, &QA[0, 0], n_act, &rows)
                        n_loaded = n_act
                        for a in range(n_act):
                            qi = w.qrows[a]
                            qn = q_norms[qi]
                            set_threshold(&w, a, 0.5 * (radius2[qi] + slack[qi] - qn),
                                          fabs(radius2[qi]) + slack[qi] + qn)
                    nh = scan_chunk(&rows, &w, x0, nx, nq_pad)
                    for h in range(nh):
                        hit = &w.hits[h]
                        qi = w.qrows[hit.qi]
                        cnt = out_count[qi]
                        if cnt >= max_count:
                            continue
                        r2 = radius2[qi]
                        s = slack[qi]
                        for e in range(hit_lanes(&w, hit, x0, n, q_norms[qi])):
                            jj = w.lane_row[e]
                            dd = w.lane_dd[e]
                            if dd <= r2 + s and jj != skip[qi] and (
                                    dd < r2 - s or rdist(&Q[qi, 0], &X[jj, 0], d) < r2):
                                cnt = cnt + 1
                                if cnt >= max_count:
                                    break
                        out_count[qi] = cnt
                    # the queries still counting go on to the next chunk
                    n_keep = 0
                    for a in range(n_act):
                        if out_count[w.qrows[a]] < max_count:
                            w.qrows[n_keep] = w.qrows[a]
                            n_keep = n_keep + 1
                    n_act = n_keep
                    x0 = x0 + nx
        work_free(&w)
    if failed:
        raise MemoryError("brute-force radius count: out of memory for per-thread buffers")
