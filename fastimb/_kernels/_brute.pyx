"""Brute-force exact k-NN and radius counts in blocks, with fused candidate selection.

The rows are compared with the queries through ``t = ||x||^2 / 2 - q.x`` in float32, so
``||q||^2 + 2 t`` approximates the squared distance. Rows and queries are centred and
rotated onto the data's principal axes by the caller (distances are unchanged; the
leading coordinates carry most of the variance), and the rows are kept in a spatial order
(a KD-tree's), cut into chunks of ``CHUNK`` positions with their bounding boxes. For a
block of up to ``BLOCK_Q`` nearby queries and a chunk, the values of ``t`` come from either

* the fused SIMD scan of ``_panel_scan.h`` (AVX-512F or AVX2+FMA, chosen from the CPU):
  the rows stored in panels of 16, products and threshold test in registers; with
  AVX512_VNNI, panels are first screened with 8-bit products against the threshold
  widened by a per-pair error bound, and only those passing are computed in float32
  (the same hits, bit for bit, four times the multiply-adds per instruction); with
  AVX2 alone, likewise with 16-bit products (vpmaddwd: twice float32's), once a block's
  thresholds are tight (after its first chunk); or
* BLAS ``sgemm`` for the products followed by a threshold pass (every other CPU),

and both report only the (query, 16-row panel) pairs where some row passes the query's
current threshold. A block visits the chunks nearest its centre first, and a chunk is
skipped for every query whose limit its bounding box lies beyond (for the whole block when
the block's box does). The k-NN keeps the best ``n_candidates`` (> k) approximate
distances per query in a heap; at the end their exact squared distances
(difference-and-square in double on the caller's data, the KD-tree's formula) decide the
final k and their order. Each query is flagged ``unsure`` unless its k-th exact distance
is below the approximate distance of the worst candidate kept minus ``slack`` (a bound on
the float32 error, which also covers the rotation and the rounding of the rows; every
skip above keeps a margin of ``slack``): then no row outside the candidates can belong
to its k nearest. The caller recomputes flagged queries exactly. The radius count decides
each row surely inside / surely outside from the bound and computes the exact distance in
between; a query leaves the scan as soon as its count reaches ``max_count``.

Only ``BLOCK_Q x CHUNK`` values per thread are ever in memory. Tie rule: at equal
distance the lower index first. The caller limits BLAS to one thread: the parallelism is
over query blocks; each block's work is the same whatever the number of threads.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY, fabs, lrint, sqrt
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport sgemm

from fastimb._kernels._distance cimport box_box_rdist, box_rdist, rdist
from fastimb._kernels._heap cimport (heap_better, heap_init, heap_push, heap_replace_root,
                                    heap_sort)
from fastimb._kernels._prefetch cimport prefetch_bytes
from fastimb._kernels._typedefs cimport intp_t

import numpy as np

cdef extern from "_panel_scan.h" nogil:
    ctypedef struct fastimb_hit:
        int qi
        int panel
        unsigned mask
        float t[16]
    int fastimb_scan_level()
    float fastimb_load_f(const float* p)
    void fastimb_store_f(float* p, float v)
    ctypedef struct fastimb_screen16:
        const unsigned* U
        const unsigned* Q
        const float* qscale
        const float* qa
        const float* qb
        const float* qm
        const float* xh
        const float* R
        int d2
    intp_t fastimb_scan_listed(const float* P, const float* xh, intp_t p, int d,
                               const float* q, const intp_t* rows, intp_t n,
                               const float* thr, fastimb_hit* hits, intp_t nh)
    intp_t fastimb_sym_rows(const float* P, const float* xh, intp_t pj, int d,
                            const intp_t* rows, intp_t n, const float* thr, int both,
                            fastimb_hit* hits, intp_t nh)
    void fastimb_sym_screen(const fastimb_screen16* s, const float* xh, const float* thr,
                            intp_t i0, intp_t ni, intp_t p0, intp_t n_p, int both,
                            unsigned* qb, int* count, intp_t* lists)
    int fastimb_lowest_bit(unsigned m)
    intp_t fastimb_select(int level, const float* qt, intp_t ldq, int nq, int d,
                          const float* lo, const float* hi, const float* lim_f, intp_t* sel)
    intp_t fastimb_scan(int level, const float* P, const unsigned* U, const float* R,
                        const float* xh, intp_t n_panels, int d, const float* q,
                        const unsigned* qu, const int* qinit, const float* qscale,
                        const float* qa, const float* qb, int nq, const float* thr,
                        const float* thr_s, fastimb_hit* hits)

DEF BLOCK_Q = 128    # queries per parallel task (a multiple of the scan tile, 8)
DEF CHUNK = 512      # rows per chunk, each with its bounding box (a multiple of PANEL)
DEF FIRST_ROWS = 64  # the k-NN's first piece of its first chunk (see query_knn)
DEF PANEL = 16
DEF SELF_BLOCK = 1024  # rows per block of the symmetric self-join (tiles of 1024 x 1024)
DEF SCREEN_ROWS = 60   # rows per pass of its 16-bit screen over a tile's panels
DEF SCREEN_BYTES = 20480   # and the bytes of panels per pass (read 12 times per pass)
DEF MAX_HITS = BLOCK_Q * (CHUNK // PANEL)


def chunk_rows():
    """Rows per chunk (the unit of the scan's bounding boxes)."""
    return CHUNK


def scan_level():
    """The fused scan this CPU runs: 3 = AVX-512F screened with AVX512_VNNI 8-bit
    products, 2 = AVX-512F, 1 = AVX2+FMA, 0 = none (gemm path)."""
    return fastimb_scan_level()


def make_rows(const float[:, ::1] Z,         # IN  (n, d) the rows, rotated and centred,
                                             #     in scan order
              float[:, ::1] XA,              # OUT (n, d) rows for the gemm path (or (0, d))
              float[:, :, ::1] P,            # OUT (ceil(n/16), d, 16) panels (or (0, d, 16))
              float[::1] xh,                 # OUT (16 ceil(n/16),) ||x||^2 / 2, +inf padding
              double[::1] norms,             # OUT (n,) squared norms
              float[:, ::1] lo,              # OUT (ceil(n/CHUNK), d) bounding box of each
              float[:, ::1] hi,              #     chunk of CHUNK positions
              int n_threads):
    """The scan's copy of the rows: as rows (gemm path) and/or panels (fused scan), with
    their half squared norms, their squared norms and each chunk's bounding box."""
    cdef intp_t n = Z.shape[0], d = Z.shape[1], n_chunks = lo.shape[0], j, c, x
    cdef bint rows = XA.shape[0] > 0, panels = P.shape[0] > 0
    cdef float v
    cdef double acc
    for x in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        acc = 0.0
        for j in range(d):
            v = Z[x, j]
            acc = acc + <double> v * <double> v
            if rows:
                XA[x, j] = v
            if panels:
                P[x // PANEL, j, x % PANEL] = v
        norms[x] = acc
        xh[x] = <float> (0.5 * acc)
    for x in range(n, xh.shape[0]):
        xh[x] = INFINITY
        for j in range(d):
            if panels:
                P[x // PANEL, j, x % PANEL] = 0.0
    for c in prange(n_chunks, nogil=True, num_threads=n_threads, schedule="static"):
        for j in range(d):
            lo[c, j] = Z[c * CHUNK, j]
            hi[c, j] = lo[c, j]
        for x in range(c * CHUNK + 1, min(n, (c + 1) * CHUNK)):
            for j in range(d):
                v = Z[x, j]
                if v < lo[c, j]:
                    lo[c, j] = v
                if v > hi[c, j]:
                    hi[c, j] = v


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


cdef inline long round_clipped(double x, double lim) noexcept nogil:
    """x clipped to [-lim, lim] (lim an integer) and rounded to the nearest integer,
    floor(x + 1/2), without a branch (the signs are random)."""
    cdef double y = max(-lim, min(lim, x)) + 0.5
    cdef long r = <long> y
    return r - (y < r)


cdef void quantize_as_query16(const float* v, intp_t stride, intp_t d, intp_t d2,
                              const double* steps, double q_max, double x_len,
                              unsigned* words, float* c_out, float* qa, float* qb,
                              float* qm) noexcept nogil:
    """The point v (coordinate j at v[j * stride]) quantised as a query of the 16-bit
    screen (see quantize16): its ``d2`` packed words, c, qa, qb and qm."""
    cdef intp_t j
    cdef long qq
    cdef unsigned word = 0
    cdef double c = 0.0, inv_c, t, ee, e2 = 0.0, qn2 = 0.0, q_len, vj
    cdef float cf
    for j in range(d):
        c = max(c, fabs(v[j * stride]) * steps[j])
    cf = <float> (c / q_max)
    inv_c = 1.0 / cf if cf > 0 else 0.0
    for j in range(2 * d2):
        qq = 0
        if j < d:
            vj = v[j * stride]
            t = vj * steps[j]
            if cf > 0:
                qq = round_clipped(t * inv_c, q_max)
            ee = t - <double> cf * qq
            e2 = e2 + ee * ee
            qn2 = qn2 + vj * vj
        if j % 2 == 0:
            word = <unsigned> (qq & 0xFFFF)
        else:
            words[j // 2] = word | (<unsigned> (qq & 0xFFFF) << 16)
    q_len = sqrt(qn2)
    c_out[0] = cf
    qa[0] = <float> (q_len * (1.0 + 1e-5))
    qb[0] = <float> (sqrt(e2) * (1.0 + 1e-5) + 1e-12 * c * q_max)
    qm[0] = <float> ((d + 32) * 2.0 ** -21 * (x_len * x_len + q_len * x_len) + 1e-30)


def quantize16(const float[:, :, ::1] P,      # IN  (n_panels, d, 16) panels
               const float[::1] xh,             # IN  (16 n_panels,) their half squared norms
               const double[::1] steps,         # IN  (d,) steps a_j (0: a zero column)
               double q_max,                    # IN  the largest |xq_j| and |qq_j|
               double x_len,                    # IN  the rows' largest norm
               unsigned[:, :, ::1] U,           # OUT (n_panels, ceil(d/2), 16)
               unsigned[:, ::1] Q,              # OUT (n, ceil(d/2)) the first n rows
               float[:, ::1] R,                 # OUT (n_panels, 2)
               float[:, ::1] per_row,           # OUT (5, n + 8): c, qa, qb, qm, xh
               int n_threads):
    """The self-join's 16-bit screen (layout and bound in ``_panel_scan.h``): each row
    quantised per coordinate, xq_j = round(x_j / a_j), and as a query, qq_j = round(x_j a_j
    / c) with c = max_j |x_j a_j| / q_max (a float32); per panel the largest residual
    norm |x - a xq| and quantised norm |xq| of its rows (both rounded up, with room for
    the double rounding of the residuals); per row c, qa = |x| and qb = |x a - c qq|
    rounded up, the rounding margin qm = (d + 32) 2^-21 (x_len^2 + |x| x_len) (many times
    the float32 roundings of t, of the second test and of the screen, each of at most
    2^-24 of a magnitude below 4 (x_len^2 + |x| x_len)), and xh. q_max^2 times 2 ceil(d/2)
    must fit in 32 bits (no product sum overflows)."""
    cdef intp_t n_panels = P.shape[0], d = P.shape[1], d2 = U.shape[1], n = Q.shape[0]
    cdef intp_t p, l, j, x
    cdef long xq
    cdef unsigned word
    cdef double v, rr, xx, qsq, res, r_max, q_max_seen
    # any integers give an exact identity (the residuals are measured): reciprocals do
    inv_steps = np.zeros(d)
    np.divide(1.0, steps, out=inv_steps, where=np.asarray(steps) > 0)
    cdef const double[::1] inv = inv_steps
    for p in prange(n_panels, nogil=True, num_threads=n_threads, schedule="static"):
        r_max = 0.0
        q_max_seen = 0.0
        for l in range(PANEL):
            x = p * PANEL + l
            rr = 0.0
            xx = 0.0
            qsq = 0.0
            for j in range(2 * d2):
                xq = 0
                if j < d:
                    v = P[p, j, l]
                    if steps[j] > 0:
                        xq = round_clipped(v * inv[j], q_max)
                    res = v - steps[j] * xq
                    rr = rr + res * res
                    xx = xx + v * v
                    qsq = qsq + <double> (xq * xq)
                if j % 2 == 0:
                    word = <unsigned> (xq & 0xFFFF)
                else:
                    U[p, j // 2, l] = word | (<unsigned> (xq & 0xFFFF) << 16)
            r_max = max(r_max, sqrt(rr) * (1.0 + 1e-6) + 1e-12 * sqrt(xx))
            q_max_seen = max(q_max_seen, qsq)
            if x < n:
                quantize_as_query16(&P[p, 0, l], PANEL, d, d2, &steps[0], q_max, x_len,
                                    &Q[x, 0], &per_row[0, x], &per_row[1, x],
                                    &per_row[2, x], &per_row[3, x])
                per_row[4, x] = xh[x]
        R[p, 0] = <float> (r_max * (1.0 + 1e-6))
        R[p, 1] = <float> (sqrt(q_max_seen) * (1.0 + 1e-6))


cdef inline float scan_threshold(double v, double scale) noexcept nogil:
    """A float32 threshold on t never below ``v`` (the rounding of v, and of its inputs of
    magnitude ``scale``, covered with a wide margin)."""
    return <float> (v + 1e-6 * scale + 1e-30)


cdef inline intp_t query_block(intp_t m, int n_threads) noexcept nogil:
    """Queries per parallel task: BLOCK_Q, or fewer (a multiple of 8, at least 32: the
    rows are read once per task) so that a few queries still keep every thread busy."""
    cdef intp_t per_thread = (m + n_threads - 1) // max(n_threads, 1)
    return min(BLOCK_Q, max(32, (per_thread + 7) // 8 * 8))


cdef struct Rows:
    # the indexed rows, read-only, in scan order (position x holds row perm[x])
    intp_t n
    intp_t d
    int level               # 0: gemm path on XA; 1, 2: fused scan on P; 3: screened by U
    bint screen16           # level 1 screened by U's 16-bit words (see scan_screened16)
    const float* XA
    const float* P
    const unsigned* U       # the screen's copy of the panels (8-bit or 16-bit words)
    const float* R          # and its per-panel norms
    const float* xh
    const intp_t* perm
    intp_t n_chunks         # chunks of CHUNK positions and their bounding boxes
    const float* lo
    const float* hi
    # the screens: per-dimension steps, the largest quantised value of the 16-bit
    # screen and the rows' largest norm
    const double* scale
    double q_max
    double x_len


cdef Rows rows_of(const float[:, ::1] XA, const float[:, :, ::1] P,
                  const unsigned[:, :, ::1] U, const float[:, ::1] R, const float[::1] xh,
                  const intp_t[::1] perm, const float[:, ::1] lo, const float[:, ::1] hi,
                  intp_t n, int level, const double[::1] scale, double x_len,
                  double q_max):
    cdef Rows rows
    rows.n = n
    rows.d = XA.shape[1]
    rows.level = level
    rows.screen16 = level == 1 and U.shape[0] > 0
    if rows.screen16 and (U.shape[0] != P.shape[0] or U.shape[1] != (rows.d + 1) // 2 or
                          R.shape[0] != P.shape[0] or scale.shape[0] != rows.d):
        raise ValueError("brute-force scan: 16-bit screen arrays of the wrong size")
    rows.q_max = q_max
    rows.XA = &XA[0, 0] if XA.shape[0] > 0 else NULL
    rows.P = &P[0, 0, 0] if P.shape[0] > 0 else NULL
    rows.U = &U[0, 0, 0] if U.shape[0] > 0 else NULL
    rows.R = &R[0, 0] if R.shape[0] > 0 else NULL
    rows.xh = &xh[0]
    rows.perm = &perm[0]
    rows.n_chunks = lo.shape[0]
    rows.lo = &lo[0, 0]
    rows.hi = &hi[0, 0]
    rows.scale = &scale[0] if scale.shape[0] > 0 else NULL
    rows.x_len = x_len
    return rows


cdef struct Queries:
    # up to BLOCK_Q queries as the scan reads them
    float* q                # (BLOCK_Q, d) float32 rows, padding rows zero
    # screened scans only: the queries quantised for the 8-bit screen (level 3) or the
    # 16-bit one (level 1), see _panel_scan.h; the float arrays have 8 more entries (the
    # 16-bit screen reads 8 at a time)
    unsigned* qu            # (BLOCK_Q, words) packed signed bytes (ceil(d/4) words) or
                            #   16-bit integers (ceil(d/2) words)
    int* qinit              # (BLOCK_Q,) -128 times the sum of each query's bytes (8-bit)
    float* qscale           # (BLOCK_Q,) each query's scale c
    float* qa               # (BLOCK_Q,) |q|, and c |q a / c - qq|: the pair's error
    float* qb               #   bound is qa |x - a xq| + qb |xq| + the rounding part:
    double* qmargin         # (BLOCK_Q,) 8-bit
    float* qm               # (BLOCK_Q,) 16-bit


cdef inline intp_t query_words(const Rows* r) noexcept nogil:
    """Packed words per quantised query: those of the rows' screen, else 0."""
    if r.level == 3:
        return (r.d + 3) // 4
    return (r.d + 1) // 2 if r.screen16 else 0


cdef Queries queries_alloc(intp_t d) noexcept nogil:
    cdef Queries s
    s.q = <float*> malloc(BLOCK_Q * d * sizeof(float) + 1)
    s.qu = <unsigned*> malloc(BLOCK_Q * ((d + 1) // 2) * sizeof(unsigned) + 1)
    s.qinit = <int*> malloc(BLOCK_Q * sizeof(int))
    s.qscale = <float*> malloc((BLOCK_Q + 8) * sizeof(float))
    s.qa = <float*> malloc((BLOCK_Q + 8) * sizeof(float))
    s.qb = <float*> malloc((BLOCK_Q + 8) * sizeof(float))
    s.qmargin = <double*> malloc(BLOCK_Q * sizeof(double))
    s.qm = <float*> malloc((BLOCK_Q + 8) * sizeof(float))
    return s


cdef bint queries_ok(const Queries* s) noexcept nogil:
    return s.q != NULL and s.qu != NULL and s.qinit != NULL and s.qscale != NULL and \
        s.qa != NULL and s.qb != NULL and s.qmargin != NULL and s.qm != NULL


cdef void queries_free(Queries* s) noexcept nogil:
    free(s.q)
    free(s.qu)
    free(s.qinit)
    free(s.qscale)
    free(s.qa)
    free(s.qb)
    free(s.qmargin)
    free(s.qm)


cdef void queries_copy(const Queries* src, intp_t a, Queries* dst, intp_t b, intp_t d,
                       intp_t words) noexcept nogil:
    """Query a of ``src`` into slot b of ``dst``, with its quantised form (``words``
    packed words, see query_words) if any."""
    cdef intp_t j
    for j in range(d):
        dst.q[b * d + j] = src.q[a * d + j]
    if words > 0:
        for j in range(words):
            dst.qu[b * words + j] = src.qu[a * words + j]
        dst.qinit[b] = src.qinit[a]
        dst.qscale[b] = src.qscale[a]
        dst.qa[b] = src.qa[a]
        dst.qb[b] = src.qb[a]
        dst.qmargin[b] = src.qmargin[a]
        dst.qm[b] = src.qm[a]


cdef struct Work:
    # one thread's buffers
    Queries blk             # the block's queries, quantised once (level 3)
    Queries tile            # the queries scanning the current chunk, padded to 8
    intp_t* act             # (BLOCK_Q,) block slot of each tile row
    float* thr              # (BLOCK_Q + 8,) tile rows' thresholds on t, -inf for padding
    float* thr_s            # (BLOCK_Q,) the 8-bit screen's wider thresholds
    double* lim             # (BLOCK_Q,) block queries' limits on the squared distance
    float* lim_f            # (BLOCK_Q,) the same for the float32 box test (widened)
    float* qt               # (d, BLOCK_Q) the block's queries transposed, for that test
    double* blo             # (d,) the block's bounding box
    double* bhi
    float* centre           # (d,) its centre
    double* ckey            # (n_chunks,) chunk order: distance from the centre
    intp_t* corder          # (n_chunks,) chunks by ckey
    double* clb             # (n_chunks,) lower bound from the block's box
    float* prod             # (BLOCK_Q, CHUNK) products (gemm path only)
    fastimb_hit* hits       # (MAX_HITS,)
    intp_t* qrows           # (BLOCK_Q,) the query of each block slot
    unsigned* qbuf          # (40 ceil(d/2),) the 16-bit screen's spread queries
    int* count              # (CHUNK / PANEL,) queries the 16-bit screen keeps per panel
    intp_t* lists           # (CHUNK / PANEL, BLOCK_Q) and which
    intp_t lane_row[PANEL]  # one hit's positions and approximate squared distances
    double lane_dd[PANEL]


cdef Work work_alloc(intp_t d, intp_t n_chunks, int level) noexcept nogil:
    """A thread's buffers (any pointer NULL when out of memory: see work_ok)."""
    cdef Work w
    w.blk = queries_alloc(d)
    w.tile = queries_alloc(d)
    w.act = <intp_t*> malloc(BLOCK_Q * sizeof(intp_t))
    w.thr = <float*> malloc((BLOCK_Q + 8) * sizeof(float))
    w.thr_s = <float*> malloc(BLOCK_Q * sizeof(float))
    w.lim = <double*> malloc(BLOCK_Q * sizeof(double))
    w.lim_f = <float*> malloc(BLOCK_Q * sizeof(float))
    w.qt = <float*> malloc(BLOCK_Q * d * sizeof(float) + 1)
    w.blo = <double*> malloc(d * sizeof(double) + 1)
    w.bhi = <double*> malloc(d * sizeof(double) + 1)
    w.centre = <float*> malloc(d * sizeof(float) + 1)
    w.ckey = <double*> malloc(n_chunks * sizeof(double))
    w.corder = <intp_t*> malloc(n_chunks * sizeof(intp_t))
    w.clb = <double*> malloc(n_chunks * sizeof(double))
    w.prod = <float*> malloc(BLOCK_Q * CHUNK * sizeof(float)) if level == 0 else NULL
    w.hits = <fastimb_hit*> malloc(MAX_HITS * sizeof(fastimb_hit))
    w.qrows = <intp_t*> malloc(BLOCK_Q * sizeof(intp_t))
    w.qbuf = <unsigned*> malloc(40 * ((d + 1) // 2) * sizeof(unsigned) + 1)
    w.count = <int*> malloc((CHUNK // PANEL) * sizeof(int))
    w.lists = <intp_t*> malloc((CHUNK // PANEL) * BLOCK_Q * sizeof(intp_t))
    return w


cdef bint work_ok(const Work* w, int level) noexcept nogil:
    return queries_ok(&w.blk) and queries_ok(&w.tile) and w.act != NULL and \
        w.thr != NULL and w.thr_s != NULL and w.lim != NULL and \
        w.lim_f != NULL and w.qt != NULL and \
        w.blo != NULL and w.bhi != NULL and w.centre != NULL and w.ckey != NULL and \
        w.corder != NULL and w.clb != NULL and w.hits != NULL and w.qrows != NULL and \
        w.qbuf != NULL and w.count != NULL and w.lists != NULL and \
        (level > 0 or w.prod != NULL)


cdef void work_free(Work* w) noexcept nogil:
    queries_free(&w.blk)
    queries_free(&w.tile)
    free(w.act)
    free(w.thr)
    free(w.thr_s)
    free(w.lim)
    free(w.lim_f)
    free(w.qt)
    free(w.blo)
    free(w.bhi)
    free(w.centre)
    free(w.ckey)
    free(w.corder)
    free(w.clb)
    free(w.prod)
    free(w.hits)
    free(w.qrows)
    free(w.qbuf)
    free(w.count)
    free(w.lists)


cdef intp_t scan_screened16(const Rows* r, Work* w, intp_t x0, intp_t nx,
                           int nq) noexcept nogil:
    """scan_rows with the 16-bit screen (level 1, see fastimb_sym_screen, one-sided):
    a pass screens the tile's queries against SCREEN_BYTES of the panels' words (which
    stay in the first-level cache), then computes in float32 only the (query, panel)
    pairs it keeps, panel by panel: the same hits in the same order."""
    cdef intp_t d = r.d, d2 = (r.d + 1) // 2, p0 = x0 // PANEL
    cdef intp_t n_panels = (nx + PANEL - 1) // PANEL, nh = 0, g, ng, k, group
    cdef const float* P = r.P + p0 * d * PANEL
    cdef const float* xh = r.xh + x0
    cdef fastimb_screen16 s
    s.U = r.U + p0 * d2 * PANEL
    s.R = r.R + p0 * 2
    s.Q = w.tile.qu
    s.qscale = w.tile.qscale
    s.qa = w.tile.qa
    s.qb = w.tile.qb
    s.qm = w.tile.qm
    s.xh = w.tile.qm     # read, used only by the two-sided test
    s.d2 = <int> d2
    group = max(4, min(n_panels, SCREEN_BYTES // (64 * d2)))
    g = 0
    while g < n_panels:
        ng = min(group, n_panels - g)
        fastimb_sym_screen(&s, xh, w.thr, 0, nq, g, ng, 0, w.qbuf, w.count, w.lists)
        for k in range(ng):
            if w.count[k]:
                nh = fastimb_scan_listed(P, xh, g + k, <int> d, w.tile.q, w.lists + k * nq,
                                         w.count[k], w.thr, w.hits, nh)
        g = g + ng
    return nh


cdef intp_t scan_rows(const Rows* r, Work* w, intp_t x0, intp_t nx, int nq,
                      bint screened) noexcept nogil:
    """Hits of the ``nq`` tile queries (padded, see tile_rows) on the ``nx`` positions from
    x0 (a multiple of the panel width; at most CHUNK of them); with ``screened``, through
    the 16-bit screen where the rows have one (it pays once thresholds are tight)."""
    cdef intp_t n_panels = (nx + PANEL - 1) // PANEL, nh = 0, p, l, stop
    cdef int i, inx = <int> nx, ind = <int> r.d
    cdef char ta = b'T'
    cdef char tb = b'N'
    cdef float one = 1.0, zero = 0.0, t, th
    cdef const float* prow
    cdef unsigned mask
    if screened and r.screen16:
        return scan_screened16(r, w, x0, nx, nq)
    if r.level > 0:
        return fastimb_scan(r.level, r.P + (x0 // PANEL) * r.d * PANEL,
                            r.U + (x0 // PANEL) * ((r.d + 3) // 4) * PANEL if r.U != NULL
                            else NULL, r.R + (x0 // PANEL) * 2 if r.R != NULL
                            else NULL, r.xh + x0, n_panels, ind, w.tile.q, w.tile.qu,
                            w.tile.qinit, w.tile.qscale, w.tile.qa, w.tile.qb, nq, w.thr,
                            w.thr_s, w.hits)
    # prod[i * nx + j] = <q_i, x_j>, then the same threshold test per 16-row panel
    sgemm(&ta, &tb, &inx, &nq, &ind, &one, <float*> (r.XA + x0 * r.d), &ind, w.tile.q,
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
    """A hit's positions below n (lanes in increasing order) in ``w.lane_row``, and their
    approximate squared distances qn + 2 t in ``w.lane_dd``; returns their count."""
    cdef unsigned mask = hit.mask
    cdef int l, k = 0
    cdef intp_t x
    while mask:
        l = fastimb_lowest_bit(mask)
        mask = mask & (mask - 1)
        x = x0 + hit.panel * PANEL + l
        if x >= n:
            break
        w.lane_row[k] = x
        w.lane_dd[k] = qn + 2.0 * hit.t[l]
        k = k + 1
    return k


cdef void quantize_query(Queries* s, intp_t i, intp_t d, const Rows* r) noexcept nogil:
    """Query i for the 8-bit screen, q_j a_j = c (qq_j + e_j) with c = max_j |q_j a_j| /
    127 (so |e_j| <= 1/2), and its error bound. For a row x = a xq + res (per
    coordinate), q.x = c qq.xq + c e.xq + q.res, so the integer sum misses q.x by at most
    c |e| |xq| + |q| |res| (Cauchy-Schwarz; R bounds the norms per panel); the float32 t
    and the screen's arithmetic round at most d + 10 times by 2^-23 relative to |x|^2/2 +
    |q| |x| (qmargin, a quarter more on top)."""
    cdef const float* qf = s.q + i * d
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
        s.qu[i * d4 + jj] = word
    q_len = sqrt(qn2)
    s.qinit[i] = <int> (-128 * total)
    s.qscale[i] = <float> c
    s.qa[i] = <float> (q_len * (1.0 + 1e-5))
    s.qb[i] = <float> (c * sqrt(e2) * (1.0 + 1e-5))
    s.qmargin[i] = 1.25 * (d + 10) * 2.0 ** -23 * (0.5 * r.x_len * r.x_len + q_len * r.x_len) \
        + 1e-30 * (1.0 + q_len) * (1.0 + r.x_len)


cdef void quantize_query16(Queries* s, intp_t i, intp_t d, const Rows* r) noexcept nogil:
    """Query i for the 16-bit screen, as the rows are quantised as queries (see
    quantize16)."""
    quantize_as_query16(s.q + i * d, 1, d, (d + 1) // 2, r.scale, r.q_max, r.x_len,
                        s.qu + i * ((d + 1) // 2), &s.qscale[i], &s.qa[i], &s.qb[i],
                        &s.qm[i])


cdef void load_block(Work* w, const float* QA, intp_t nq, const Rows* r) noexcept nogil:
    """The queries ``w.qrows[:nq]`` (rows of the (m, d) array QA) into the block's slots
    (quantised at level 3), their bounding box and centre, and the order the chunks are
    visited in: nearest the centre first (so the thresholds tighten early), each with the
    lower bound of its distance from the block's box."""
    cdef intp_t i, j, c, d = r.d
    cdef float v
    for j in range(d):
        w.blo[j] = INFINITY
        w.bhi[j] = -INFINITY
    for i in range(BLOCK_Q):
        for j in range(d):
            v = QA[w.qrows[i] * d + j] if i < nq else 0.0
            w.qt[j * BLOCK_Q + i] = v
            if i < nq:
                w.blk.q[i * d + j] = v
                w.blo[j] = min(w.blo[j], <double> v)
                w.bhi[j] = max(w.bhi[j], <double> v)
        if r.level == 3 and i < nq:
            quantize_query(&w.blk, i, d, r)
        elif r.screen16 and i < nq:
            quantize_query16(&w.blk, i, d, r)
    for j in range(d):
        w.centre[j] = <float> (0.5 * (w.blo[j] + w.bhi[j]))
    # a max-heap of all chunks, then sorted: increasing (distance, chunk)
    heap_init(w.ckey, w.corder, r.n_chunks)
    for c in range(r.n_chunks):
        w.clb[c] = box_box_rdist(w.blo, w.bhi, r.lo + c * d, r.hi + c * d, d)
        heap_push(w.ckey, w.corder, r.n_chunks,
                  box_rdist(w.centre, r.lo + c * d, r.hi + c * d, d), c)
    heap_sort(w.ckey, w.corder, r.n_chunks)


cdef inline void prefetch_chunk(const Rows* r, intp_t c) noexcept nogil:
    """Request chunk c's panels (their 16-bit words where the screen reads those) and
    half norms (the chunks are visited out of order: the next one is fetched while the
    current one is scanned)."""
    cdef intp_t x0 = c * CHUNK, nx = min(CHUNK, r.n - c * CHUNK)
    if r.screen16:
        prefetch_bytes(r.U + x0 * ((r.d + 1) // 2), nx * ((r.d + 1) // 2) * sizeof(unsigned),
                       True)
    elif r.P != NULL:
        prefetch_bytes(r.P + x0 * r.d, nx * r.d * sizeof(float), True)
    prefetch_bytes(r.xh + x0, nx * sizeof(float), True)


cdef inline bint beyond(double lb, double lim) noexcept nogil:
    """Whether every point at squared distance >= lb (computed in double, relative error
    far below 1e-12) lies beyond ``lim``."""
    return lb * (1.0 - 1e-12) > lim


cdef inline intp_t tile_rows(intp_t k, int level) noexcept nogil:
    """The padded count the scan takes for k queries: any at level 1 (AVX2), else a
    multiple of 8."""
    return k if level == 1 else (k + 7) // 8 * 8


cdef intp_t select_tile(Work* w, intp_t nq, intp_t c, const Rows* r) noexcept nogil:
    """The block's queries that may have rows of chunk c within their limit (its box is
    not beyond ``w.lim_f``) into the tile, then zero padding (threshold -inf) to the
    scan's multiple (see tile_rows); returns how many were selected (their thresholds
    are the caller's)."""
    cdef intp_t i, j, d = r.d, n_pad
    cdef intp_t k = fastimb_select(r.level, w.qt, BLOCK_Q, <int> nq, <int> d, r.lo + c * d,
                                   r.hi + c * d, w.lim_f, w.act)
    for i in range(k):
        queries_copy(&w.blk, w.act[i], &w.tile, i, d, query_words(r))
    n_pad = tile_rows(k, r.level)
    for i in range(k, n_pad):
        for j in range(d):
            w.tile.q[i * d + j] = 0.0
        if r.level == 3:
            quantize_query(&w.tile, i, d, r)
        w.thr[i] = -INFINITY
        w.thr_s[i] = -INFINITY
    return k


cdef double update_limits(Work* w, intp_t nq, intp_t d) noexcept nogil:
    """``w.lim_f`` from ``w.lim`` (widened for the float32 box test, see fastimb_select);
    returns the largest limit of the block."""
    cdef intp_t i
    cdef double top = -INFINITY, v
    for i in range(BLOCK_Q):
        v = w.lim[i] if i < nq else -INFINITY
        top = max(top, v)
        if v == INFINITY or v == -INFINITY:
            w.lim_f[i] = <float> v
        else:
            w.lim_f[i] = <float> (v + (d + 6) * 2.0 ** -23 * fabs(v) + 1e-30)
    return top


cdef intp_t next_chunk(Work* w, intp_t* ci, intp_t nq, double top, const Rows* r,
                       intp_t* n_act) noexcept nogil:
    """The next chunk, from position ``ci`` of the block's order, that some of its queries
    need (the block's box not beyond ``top``, its largest limit), with those queries
    selected into the tile (``n_act`` of them); -1 when none is left. The chunk after it
    is prefetched."""
    cdef intp_t c
    while ci[0] < r.n_chunks:
        c = w.corder[ci[0]]
        ci[0] += 1
        if beyond(w.clb[c], top):
            continue
        n_act[0] = select_tile(w, nq, c, r)
        if n_act[0] > 0:
            if ci[0] < r.n_chunks:
                prefetch_chunk(r, w.corder[ci[0]])
            return c
    return -1


cdef inline void set_threshold(Work* w, intp_t t, double lim, double qn,
                               bint screen) noexcept nogil:
    """Tile row t's thresholds for a query with squared norm qn and limit ``lim`` on its
    approximate squared distance: on t = (d2 - qn) / 2 (see scan_threshold) and, for the
    8-bit screen, that threshold widened by the query's error bound, rounded up."""
    cdef double v
    w.thr[t] = scan_threshold(0.5 * (lim - qn), fabs(lim) + qn)
    if screen:
        v = <double> w.thr[t] + w.tile.qmargin[t]
        w.thr_s[t] = scan_threshold(v, fabs(v))


cdef bint exact_k(const floating* X, intp_t n, intp_t d, const floating* q,
                  const intp_t* cand, intp_t kc, double clear, double* fd, intp_t* find_,
                  intp_t k, bint squared, double* out_dist, intp_t* out_ind) noexcept nogil:
    """The k nearest of q among the candidates (rows of X; entries of n or more are empty
    slots) by their exact distances, into out_dist / out_ind; returns whether q is unsure:
    its k-th exact distance is not below ``clear``, the approximate distance of the worst
    candidate kept minus the error bound (+inf while fewer than kc rows were seen: then
    all are candidates)."""
    cdef intp_t c
    heap_init(fd, find_, k)
    for c in range(kc):
        if cand[c] >= 0 and cand[c] < n:
            heap_push(fd, find_, k, rdist(q, X + cand[c] * d, d), cand[c])
    heap_sort(fd, find_, k)
    for c in range(k):
        out_dist[c] = fd[c] if squared else sqrt(fd[c])
        out_ind[c] = find_[c]
    return not (fd[k - 1] < clear)


def query_knn(const floating[:, ::1] X,        # IN  (n, d) data (exact distances)
              const floating[:, ::1] Q,        # IN  (m, d) queries (exact distances)
              const float[:, ::1] QA,          # IN  (m, d) queries in the scan's frame
              const double[::1] q_norms,       # IN  (m,) squared norms of QA rows
              const intp_t[::1] order,         # IN  (m,) the order of the queries (blocks
                                               #     of nearby queries scan alike)
              const intp_t[::1] skip,          # IN  (m,) index never returned, or -1
              const double[::1] slack,         # IN  (m,) bound on the approximation error
              const float[:, ::1] XA,          # IN  the rows (see make_rows): for the gemm
              const float[:, :, ::1] P,        #     path, or panels for the fused scan,
              const unsigned[:, :, ::1] U,     #     8-bit panels (level 3), 16-bit ones
                                               #     (level 1, see quantize16), or empty
              const float[:, ::1] R,           #     the screen's panel norms
              const double[::1] scale,         #     the screen's steps
              const float[::1] xh,             #     half squared norms
              const intp_t[::1] perm,          #     row of each scan position
              const float[:, ::1] lo,          #     chunks' bounding boxes
              const float[:, ::1] hi,
              double x_len,                    #     largest norm of a row
              double q_max,                    #     the 16-bit screen's largest value
              double[:, ::1] out_dist,         # OUT (m, k)
              intp_t[:, ::1] out_ind,          # OUT (m, k)
              unsigned char[::1] unsure,       # OUT (m,) 1 where the bound did not hold
              intp_t n_candidates,             # IN  approximate candidates kept (>= k)
              bint squared,                    # IN  squared distances out
              int level,                       # IN  scan_level() or 0 (gemm path)
              int n_threads):
    """k nearest neighbours of each row of Q among the rows of X (exact unless flagged).

    A block of queries visits the chunks nearest its centre first; a chunk is skipped for
    the queries whose k-th candidate so far (plus the error bound) lies nearer than the
    chunk's bounding box, and entirely when that holds for the block's box."""
    cdef intp_t n = X.shape[0], d = X.shape[1], m = Q.shape[0], k = out_ind.shape[1]
    cdef intp_t kc = n_candidates, block_q = query_block(m, n_threads)
    cdef intp_t n_blocks = (m + block_q - 1) // block_q
    cdef intp_t qb, q0, nq, i, b, c, ci, jj, sk, h, nh, qi, n_act, x0, x_end, nx
    cdef int nq_pad
    cdef bint first
    cdef double top
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
    rows = rows_of(XA, P, U, R, xh, perm, lo, hi, n, level, scale, x_len, q_max)
    with nogil, parallel(num_threads=n_threads):
        w = work_alloc(d, rows.n_chunks, level)  # assigned here, so private to each thread
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
                for b in range(nq):
                    w.qrows[b] = order[q0 + b]
                    heap_init(hd + b * kc, hind + b * kc, kc)
                    w.lim[b] = INFINITY
                load_block(&w, &QA[0, 0], nq, &rows)
                top = update_limits(&w, nq, d)
                first = True
                ci = 0
                n_act = 0   # assigned in the loop, so private to each thread (as ci)
                while True:
                    c = next_chunk(&w, &ci, nq, top, &rows, &n_act)
                    if c < 0:
                        break
                    nq_pad = <int> tile_rows(n_act, level)
                    # the block's first chunk in pieces of FIRST_ROWS, 2 FIRST_ROWS, ...
                    # rows (the heaps fill, and the thresholds tighten, on the first few)
                    x0 = c * CHUNK
                    x_end = min(n, x0 + CHUNK)
                    while x0 < x_end:
                        nx = x_end - x0 if not first else min(x_end - x0, max(
                            FIRST_ROWS, x0 - c * CHUNK))
                        for i in range(n_act):
                            qi = w.qrows[w.act[i]]
                            set_threshold(&w, i, hd[w.act[i] * kc], q_norms[qi],
                                          level == 3)
                        nh = scan_rows(&rows, &w, x0, nx, nq_pad, not first)
                        for h in range(nh):
                            hit = &w.hits[h]
                            b = w.act[hit.qi]
                            qi = w.qrows[b]
                            sk = skip[qi]
                            for e in range(hit_lanes(&w, hit, x0, n, q_norms[qi])):
                                jj = perm[w.lane_row[e]]
                                if w.lane_dd[e] <= hd[b * kc] and jj != sk:
                                    heap_push(hd + b * kc, hind + b * kc, kc, w.lane_dd[e],
                                              jj)
                        x0 = x0 + nx
                    first = False
                    for b in range(nq):
                        w.lim[b] = hd[b * kc] + slack[w.qrows[b]]
                    top = update_limits(&w, nq, d)
                # exact distances of the candidates decide the final k
                for b in range(nq):
                    qi = w.qrows[b]
                    unsure[qi] = exact_k(&X[0, 0], n, d, &Q[qi, 0], hind + b * kc, kc,
                                         hd[b * kc] - slack[qi], fd, find_, k, squared,
                                         &out_dist[qi, 0], &out_ind[qi, 0])
        work_free(&w)
        free(hd)
        free(hind)
        free(fd)
        free(find_)
    if failed:
        raise MemoryError("brute-force k-NN: out of memory for per-thread buffers")


def count_closer(const floating[:, ::1] X,        # IN  (n, d) data (exact distances)
                 const floating[:, ::1] Q,        # IN  (m, d) queries (exact distances)
                 const float[:, ::1] QA,          # IN  as in query_knn
                 const double[::1] q_norms,
                 const intp_t[::1] order,
                 const double[::1] radius2,       # IN  (m,) squared radius, strict
                 const intp_t[::1] skip,          # IN  (m,) index never counted, or -1
                 const double[::1] slack,         # IN  (m,) bound on the approximation error
                 const float[:, ::1] XA,          # IN  the rows, as in query_knn
                 const float[:, :, ::1] P,
                 const unsigned[:, :, ::1] U,
                 const float[:, ::1] R,
                 const double[::1] scale,
                 const float[::1] xh,
                 const intp_t[::1] perm,
                 const float[:, ::1] lo,
                 const float[:, ::1] hi,
                 double x_len,
                 double q_max,
                 intp_t max_count,                # IN  stop counting at this many
                 intp_t[::1] out_count,           # OUT (m,)
                 int level,                       # IN  scan_level() or 0 (gemm path)
                 int n_threads):
    """Per query, how many rows of X lie strictly within ``sqrt(radius2)`` (capped).

    Exact: an approximate distance below ``radius2 - slack`` is surely inside, one above
    ``radius2 + slack`` surely outside, and the rest are decided by ``rdist``. A block of
    queries visits the chunks nearest its centre first, skipping those whose box lies
    beyond a query's radius, and a query leaves as soon as its count reaches
    ``max_count``, so "at least k closer" costs a fraction of a full scan when such points
    are common.
    """
    cdef intp_t n = X.shape[0], d = X.shape[1], m = Q.shape[0]
    cdef intp_t block_q = query_block(m, n_threads)
    cdef intp_t n_blocks = (m + block_q - 1) // block_q
    cdef intp_t qb, q0, nq, i, b, c, ci, qi, jj, cnt, h, nh, n_act, n_left
    cdef int nq_pad
    cdef double r2, s, dd, top
    cdef Rows rows
    cdef Work w
    cdef fastimb_hit* hit
    cdef int e
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    if m == 0:
        return
    rows = rows_of(XA, P, U, R, xh, perm, lo, hi, n, level, scale, x_len, q_max)
    with nogil, parallel(num_threads=n_threads):
        w = work_alloc(d, rows.n_chunks, level)  # assigned here, so private to each thread
        if not work_ok(&w, level):
            p_failed[0] = 1
        else:
            for qb in prange(n_blocks, schedule="dynamic"):
                q0 = qb * block_q
                nq = min(block_q, m - q0)
                for b in range(nq):
                    qi = order[q0 + b]
                    w.qrows[b] = qi
                    out_count[qi] = 0
                    w.lim[b] = radius2[qi] + slack[qi]
                load_block(&w, &QA[0, 0], nq, &rows)
                top = update_limits(&w, nq, d)
                n_left = nq
                ci = 0
                n_act = 0   # assigned in the loop, so private to each thread (as ci)
                while n_left > 0:
                    c = next_chunk(&w, &ci, nq, top, &rows, &n_act)
                    if c < 0:
                        break
                    for i in range(n_act):
                        qi = w.qrows[w.act[i]]
                        set_threshold(&w, i, radius2[qi] + slack[qi], q_norms[qi],
                                      level == 3)
                    nq_pad = <int> tile_rows(n_act, level)
                    if ci + 1 < rows.n_chunks:
                        prefetch_chunk(&rows, w.corder[ci + 1])
                    nh = scan_rows(&rows, &w, c * CHUNK, min(CHUNK, n - c * CHUNK), nq_pad,
                                   True)
                    for h in range(nh):
                        hit = &w.hits[h]
                        qi = w.qrows[w.act[hit.qi]]
                        cnt = out_count[qi]
                        if cnt >= max_count:
                            continue
                        r2 = radius2[qi]
                        s = slack[qi]
                        for e in range(hit_lanes(&w, hit, c * CHUNK, n, q_norms[qi])):
                            jj = perm[w.lane_row[e]]
                            dd = w.lane_dd[e]
                            if dd <= r2 + s and jj != skip[qi] and (
                                    dd < r2 - s or rdist(&Q[qi, 0], &X[jj, 0], d) < r2):
                                cnt = cnt + 1
                                if cnt >= max_count:
                                    break
                        out_count[qi] = cnt
                    # the queries done counting leave the block
                    for b in range(nq):
                        if w.lim[b] != -INFINITY and out_count[w.qrows[b]] >= max_count:
                            w.lim[b] = -INFINITY
                            n_left = n_left - 1
                    top = update_limits(&w, nq, d)
        work_free(&w)
    if failed:
        raise MemoryError("brute-force radius count: out of memory for per-thread buffers")


def self_block_rows():
    """Rows per block of ``self_knn``'s tiles."""
    return SELF_BLOCK


cdef struct Join:
    # the symmetric self-join's read-only inputs (see self_knn)
    intp_t n
    intp_t d
    intp_t kc
    const float* P
    const float* xh
    const double* norms
    const double* slack
    const double* seed
    const double* blo_d     # the blocks' boxes, in double and float32
    const double* bhi_d
    const float* blo
    const float* bhi
    const fastimb_screen16* screen   # the 16-bit screen, or NULL


cdef inline double cap(const Join* s, const double* hd, intp_t x) noexcept nogil:
    """Row x's limit: its worst candidate in this thread's heap, or its seed if lower."""
    return min(hd[x * s.kc], s.seed[x])


cdef inline void offer(const Join* s, double* hd, intp_t* hind, float* thr, intp_t x,
                       double a, intp_t j) noexcept nogil:
    """Offer (a, j) to row x's candidate heap in this thread and, if it enters, lower the
    row's float32 threshold on t (shared by the threads) to the new limit if lower (see
    set_threshold)."""
    cdef double lim
    cdef float v
    if heap_better(a, j, hd[x * s.kc], hind[x * s.kc]):
        heap_replace_root(hd + x * s.kc, hind + x * s.kc, s.kc, a, j)
        lim = cap(s, hd, x)
        v = scan_threshold(0.5 * (lim - s.norms[x]), fabs(lim) + s.norms[x])
        if v < fastimb_load_f(thr + x):
            fastimb_store_f(thr + x, v)


cdef double block_top(const Join* s, const double* hd, intp_t x0, intp_t nx) noexcept nogil:
    """The largest (limit + twice the error bound) of the rows [x0, x0 + nx): a row at a
    squared distance beyond it (in the scan's frame) cannot enter any of their heaps (its
    approximate distance is within the bound of the exact one, which is within the bound
    of the frame's)."""
    cdef double top = -INFINITY, v
    cdef intp_t x
    for x in range(x0, x0 + nx):
        v = cap(s, hd, x) + 2.0 * s.slack[x]
        if v > top:
            top = v
    return top


cdef struct JoinWork:
    # one thread's buffers for join_tile
    fastimb_hit* hits       # (SELF_BLOCK,) one panel's hits
    intp_t* rows            # (SELF_BLOCK,) the rows of a block
    unsigned* qb            # (40 ceil(d / 2),) the screen's spread rows
    int* count              # (SELF_BLOCK / PANEL,) rows the screen keeps per panel
    intp_t* lists           # (SELF_BLOCK / PANEL, SCREEN_ROWS) and which


cdef JoinWork join_work_alloc(intp_t d) noexcept nogil:
    """A thread's buffers (any pointer NULL when out of memory: see join_work_ok)."""
    cdef JoinWork w
    w.hits = <fastimb_hit*> malloc(SELF_BLOCK * sizeof(fastimb_hit))
    w.rows = <intp_t*> malloc(SELF_BLOCK * sizeof(intp_t))
    w.qb = <unsigned*> malloc(40 * ((d + 1) // 2) * sizeof(unsigned))
    w.count = <int*> malloc((SELF_BLOCK // PANEL) * sizeof(int))
    w.lists = <intp_t*> malloc((SELF_BLOCK // PANEL) * SCREEN_ROWS * sizeof(intp_t))
    return w


cdef bint join_work_ok(const JoinWork* w) noexcept nogil:
    return w.hits != NULL and w.rows != NULL and w.qb != NULL and w.count != NULL and \
        w.lists != NULL


cdef void join_work_free(JoinWork* w) noexcept nogil:
    free(w.hits)
    free(w.rows)
    free(w.qb)
    free(w.count)
    free(w.lists)


cdef void take_hits(const Join* s, double* hd, intp_t* hind, float* thr,
                    const fastimb_hit* hits, intp_t nh) noexcept nogil:
    """A panel's hits (see fastimb_sym_tile) offered to both rows' candidates."""
    cdef intp_t h, i, j
    cdef unsigned mask
    cdef int l
    cdef float tf, c
    cdef const fastimb_hit* hit
    for h in range(nh):
        hit = &hits[h]
        i = hit.qi
        mask = hit.mask & 0xFFFF
        while mask:          # row i's candidates
            l = fastimb_lowest_bit(mask)
            mask = mask & (mask - 1)
            j = hit.panel * PANEL + l
            if j >= s.n:
                break
            tf = hit.t[l]
            if tf <= fastimb_load_f(thr + i):
                offer(s, hd, hind, thr, i, s.norms[i] + 2.0 * tf, j)
        mask = hit.mask >> 16
        while mask:          # row i as a candidate of the panel's rows
            l = fastimb_lowest_bit(mask)
            mask = mask & (mask - 1)
            j = hit.panel * PANEL + l
            if j >= s.n:
                break
            c = s.xh[i] - s.xh[j]
            tf = c + hit.t[l]
            if tf <= fastimb_load_f(thr + j):
                offer(s, hd, hind, thr, j, s.norms[j] + 2.0 * tf, i)


cdef void join_tile(const Join* s, intp_t bi, intp_t bj, double* hd, intp_t* hind,
                    float* thr, JoinWork* w) noexcept nogil:
    """Tile (bi, bj), bi <= bj, into this thread's heaps (hd, hind) and the thresholds:
    each panel of block bj against the rows of block bi in float32 (fastimb_sym_rows),
    or, with the 16-bit screen, SCREEN_ROWS rows at a time against all the panels
    (fastimb_sym_screen; SCREEN_BYTES of the panels, which stay in the first-level cache
    over the pass), then only the rows it keeps in float32."""
    cdef intp_t d = s.d, i0 = bi * SELF_BLOCK, j0 = bj * SELF_BLOCK, ni, nj, pj, x
    cdef intp_t p0 = j0 // PANEL, n_p, c0, cn, k, g, ng, group
    cdef bint both = bi != bj
    ni = min(SELF_BLOCK, s.n - i0)
    nj = min(SELF_BLOCK, s.n - j0)
    n_p = (nj + PANEL - 1) // PANEL
    if both and box_box_rdist(s.blo_d + bi * d, s.bhi_d + bi * d, s.blo + bj * d,
                              s.bhi + bj * d, d) * (1.0 - 1e-6) > max(
                                  block_top(s, hd, i0, ni), block_top(s, hd, j0, nj)):
        return
    if s.screen == NULL:
        for x in range(ni):
            w.rows[x] = i0 + x
        for pj in range(p0, p0 + n_p):
            take_hits(s, hd, hind, thr, w.hits,
                      fastimb_sym_rows(s.P, s.xh, pj, <int> d, w.rows, ni, thr, both,
                                       w.hits, 0))
        return
    # the panels a pass covers, SCREEN_BYTES of their words (first-level cache)
    group = max(4, min(n_p, SCREEN_BYTES // (64 * s.screen.d2)))
    for c0 in range(i0, i0 + ni, SCREEN_ROWS):
        cn = min(SCREEN_ROWS, i0 + ni - c0)
        g = p0
        while g < p0 + n_p:
            ng = min(group, p0 + n_p - g)
            fastimb_sym_screen(s.screen, s.xh, thr, c0, cn, g, ng, both, w.qb, w.count,
                               w.lists)
            for k in range(ng):
                if w.count[k]:
                    take_hits(s, hd, hind, thr, w.hits,
                              fastimb_sym_rows(s.P, s.xh, g + k, <int> d, w.lists + k * cn,
                                               w.count[k], thr, both, w.hits, 0))
            g += ng


def self_knn(const floating[:, ::1] X,        # IN  (n, d) data (exact distances)
             const float[:, :, ::1] P,        # IN  the rows' panels (see make_rows)
             const float[::1] xh,             # IN  (16 n_panels,) half squared norms
             const double[::1] norms,         # IN  (n,) their squared norms
             const intp_t[::1] perm,          # IN  (n,) row of X at each scan position
             const double[::1] slack,         # IN  (n,) error bound per scan position
             const double[:, ::1] blo_d,      # IN  (n_blocks, d) box of each SELF_BLOCK
             const double[:, ::1] bhi_d,      #     positions, in double
             const float[:, ::1] blo,         #     and in float32
             const float[:, ::1] bhi,
             const intp_t[::1] pair_i,        # IN  (n_pairs,) the tiles (I <= J): the
             const intp_t[::1] pair_j,        #     n_blocks diagonal ones first
             double[:, :, ::1] hd,            # WORK (T, n, kc) per-thread candidate heaps
             intp_t[:, :, ::1] hind,          #     (scan positions), set here
             float[::1] thr,                  # WORK (16 n_panels + 8,) thresholds on t:
                                              #     +inf, -inf for the padding
             const unsigned[:, :, ::1] U,     # IN  the 16-bit screen (see quantize16), or
             const unsigned[:, ::1] Q,        #     empty arrays for none
             const float[:, ::1] R,
             const float[:, ::1] per_row,
             double[::1] seed,                # WORK (n,) +inf
             double[:, ::1] out_dist,         # OUT (n, k) by rows of X
             intp_t[:, ::1] out_ind,          # OUT (n, k)
             unsigned char[::1] unsure,       # OUT (n,) 1 where the bound did not hold
             bint squared,                    # IN  squared distances out
             int n_threads):                  # IN  at most T
    """The k nearest rows of every row of X, itself included: query_knn's answer for X as
    its own queries (exact unless flagged ``unsure``), with each pair computed once.

    The positions are cut into blocks of SELF_BLOCK; for each tile (I, J), I <= J, the
    fused scan computes the products of the rows of I with those of J in registers, and
    each serves both rows: t = xh_j - <x_i, x_j> for row i's candidates, t' = (xh_i - xh_j)
    + t for row j's (only the first on the diagonal tiles, where both directions are in
    the tile); only the pairs within a threshold leave the registers.
    The tiles are shared among the threads, each with its own candidate heaps for every
    row, so no two threads write the same heap. The diagonal tiles come first: the worst
    of a row's kc candidates within its own block then caps its limit in every thread
    (the ``seed``: its final candidates can only be better). A row's pair is offered only
    within its float32 threshold, which any thread lowers to its own limit for the row
    (a valid limit for all: the merged candidates are at least as good as one thread's;
    a thread may read a value another is replacing, only ever a valid one), and a tile is skipped when the gap between its blocks' boxes lies
    beyond every row's limit plus twice its error bound on both sides. At the end, each
    row's heaps are merged into its best kc candidates overall (each pair was offered to
    one heap once), and their exact distances decide the final k as in query_knn, with
    the same test on the bound: every pair left out is beyond the merged worst candidate.
    With the 16-bit screen (``U`` not empty), each panel's rows are first compared in
    integers and only those it cannot rule out are computed in float32: the same hits
    (see fastimb_sym_screen)."""
    cdef intp_t n = X.shape[0], d = X.shape[1], k = out_ind.shape[1], kc = hd.shape[2]
    cdef intp_t n_pairs = pair_i.shape[0], T = hd.shape[0], n_diag = blo.shape[0]
    cdef intp_t pp, x, qi, jj, c, t, tid
    cdef double lim
    cdef Join s
    cdef JoinWork w
    cdef fastimb_screen16 screen
    cdef double* mh = NULL
    cdef intp_t* mi = NULL
    cdef double* fd = NULL
    cdef intp_t* find_ = NULL
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    if n == 0 or k == 0:
        return
    s.n = n
    s.d = d
    s.kc = kc
    s.P = &P[0, 0, 0]
    s.xh = &xh[0]
    s.norms = &norms[0]
    s.slack = &slack[0]
    s.seed = &seed[0]
    s.blo_d = &blo_d[0, 0]
    s.bhi_d = &bhi_d[0, 0]
    s.blo = &blo[0, 0]
    s.bhi = &bhi[0, 0]
    s.screen = NULL
    if thr.shape[0] < xh.shape[0] + 8 or (U.shape[0] > 0 and (
            U.shape[0] != P.shape[0] or U.shape[1] != (d + 1) // 2 or Q.shape[0] != n or
            R.shape[0] != P.shape[0] or per_row.shape[1] < n + 8)):
        raise ValueError("self_knn: thresholds or screen arrays of the wrong size")
    if U.shape[0] > 0:
        screen.U = &U[0, 0, 0]
        screen.Q = &Q[0, 0]
        screen.qscale = &per_row[0, 0]
        screen.qa = &per_row[1, 0]
        screen.qb = &per_row[2, 0]
        screen.qm = &per_row[3, 0]
        screen.xh = &per_row[4, 0]
        screen.R = &R[0, 0]
        screen.d2 = <int> U.shape[1]
        s.screen = &screen
    with nogil, parallel(num_threads=min(n_threads, <int> T)):
        tid = threadid()
        w = join_work_alloc(d)
        mh = <double*> malloc(kc * sizeof(double))
        mi = <intp_t*> malloc(kc * sizeof(intp_t))
        fd = <double*> malloc(k * sizeof(double))
        find_ = <intp_t*> malloc(k * sizeof(intp_t))
        if not join_work_ok(&w) or mh == NULL or mi == NULL or fd == NULL or find_ == NULL:
            p_failed[0] = 1
        else:
            for x in prange(n, schedule="static"):              # empty heaps
                for t in range(T):
                    heap_init(&hd[t, x, 0], &hind[t, x, 0], kc)
            for pp in prange(n_diag, schedule="dynamic"):       # the diagonal tiles
                join_tile(&s, pair_i[pp], pair_j[pp], &hd[tid, 0, 0], &hind[tid, 0, 0],
                          &thr[0], &w)
            for x in prange(n, schedule="static"):              # the seeds
                lim = INFINITY
                for t in range(T):
                    lim = min(lim, hd[t, x, 0])
                seed[x] = lim
                thr[x] = scan_threshold(0.5 * (lim - norms[x]), fabs(lim) + norms[x])
            for pp in prange(n_diag, n_pairs, schedule="dynamic"):   # the others
                join_tile(&s, pair_i[pp], pair_j[pp], &hd[tid, 0, 0], &hind[tid, 0, 0],
                          &thr[0], &w)
            for x in prange(n, schedule="static"):
                # the row's candidates over all threads, then their exact distances
                heap_init(mh, mi, kc)
                for t in range(T):
                    for c in range(kc):
                        if hind[t, x, c] < n:
                            heap_push(mh, mi, kc, hd[t, x, c], hind[t, x, c])
                for c in range(kc):   # positions to rows of X
                    if mi[c] < n:
                        mi[c] = perm[mi[c]]
                qi = perm[x]
                unsure[qi] = exact_k(&X[0, 0], n, d, &X[qi, 0], mi, kc, mh[0] - slack[x],
                                     fd, find_, k, squared, &out_dist[qi, 0],
                                     &out_ind[qi, 0])
        join_work_free(&w)
        free(mh)
        free(mi)
        free(fd)
        free(find_)
    if failed:
        raise MemoryError("brute-force self k-NN: out of memory for per-thread buffers")
