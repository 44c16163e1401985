/* Fused distance scan for fastimb's brute-force neighbour search.
 *
 * The data rows are stored in "panels" of 16: panel p holds rows 16p..16p+15 as
 * P[(p * d + j) * 16 + l] = coordinate j of row 16p + l, and xh[16p + l] = |x|^2 / 2
 * (+inf for the padding rows of the last panel). For a tile of queries, one pass over
 * the panels computes t = xh - <q, x> for every (query, row) in SIMD registers, compares
 * it with the query's threshold and records only the (query, panel) pairs where some
 * lane passes, with the panel's 16 values of t. Nothing of size queries x rows is ever
 * written to memory, which is what makes this faster than a gemm followed by a filter
 * when the dimension is small (the gemm's output traffic dominates there).
 *
 * The caller pads the queries to a multiple of FASTIMB_SCAN_TILE rows (zero rows with a
 * threshold of -inf never pass; the AVX2 scan takes any count) and guarantees room for
 * n_queries * n_panels hits.
 *
 * Variants: AVX-512F (optionally screened with AVX512_VNNI 8-bit products, see
 * fastimb_scan_int8) and AVX2+FMA on x86 with GCC or Clang, chosen at run time from the
 * CPU; fastimb_scan_level() returns 0 where none exists, and the caller then uses its
 * BLAS gemm path instead. Every variant reports the same hits with the same values.
 */
#ifndef FASTIMB_PANEL_SCAN_H
#define FASTIMB_PANEL_SCAN_H

#include <stddef.h>

#define FASTIMB_PANEL 16
#define FASTIMB_SCAN_TILE 8

typedef struct {
    int qi;          /* query row within the tile buffer */
    int panel;       /* panel index, relative to the first panel scanned */
    unsigned mask;   /* lanes with t <= threshold */
    float t[FASTIMB_PANEL];
} fastimb_hit;

/* Index of the lowest set bit of a non-zero mask (a hit's lanes, visited set bit by set
   bit). */
static inline int fastimb_lowest_bit(unsigned m) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(m);
#else
    int l = 0;
    while (!(m & 1u)) {
        m >>= 1;
        l++;
    }
    return l;
#endif
}

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FASTIMB_HAVE_SIMD_SCAN 1
#include <immintrin.h>

__attribute__((target("avx512f")))
static ptrdiff_t fastimb_scan_avx512(const float* P, const float* xh, ptrdiff_t n_panels,
                                     int d, const float* q, int nq, const float* thr,
                                     fastimb_hit* hits) {
    ptrdiff_t nh = 0, p, j;
    int i0, i;
    for (i0 = 0; i0 < nq; i0 += 8) {
        const float* qr[8];  /* the tile's query rows (no index arithmetic in the loop) */
        __m512 th[8];
        for (i = 0; i < 8; i++) {
            qr[i] = q + (ptrdiff_t)(i0 + i) * d;
            th[i] = _mm512_set1_ps(thr[i0 + i]);
        }
        for (p = 0; p < n_panels; p++) {
            const float* xp = P + p * d * FASTIMB_PANEL;
            __m512 h = _mm512_loadu_ps(xh + p * FASTIMB_PANEL);
            __m512 a[8];
            for (i = 0; i < 8; i++) a[i] = h;
            for (j = 0; j < d; j++) {
                __m512 x = _mm512_loadu_ps(xp + j * FASTIMB_PANEL);
                for (i = 0; i < 8; i++)
                    a[i] = _mm512_fnmadd_ps(_mm512_set1_ps(qr[i][j]), x, a[i]);
            }
            for (i = 0; i < 8; i++) {
                __mmask16 m = _mm512_cmp_ps_mask(a[i], th[i], _CMP_LE_OQ);
                if (m) {
                    hits[nh].qi = i0 + i;
                    hits[nh].panel = (int)p;
                    hits[nh].mask = (unsigned)m;
                    _mm512_storeu_ps(hits[nh].t, a[i]);
                    nh++;
                }
            }
        }
    }
    return nh;
}

/* Fully unrolls a tile's loop over its queries (their accumulators then stay in
   registers; GCC keeps an array indexed in a loop it did not unroll in memory). */
#if defined(__clang__)
#define FASTIMB_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__) && __GNUC__ >= 8
#define FASTIMB_UNROLL _Pragma("GCC unroll 8")
#else
#define FASTIMB_UNROLL
#endif

/* Rows [start, stop) six at a time, then the rest in one call: ``nh = TILE(T)`` for tiles of
   T rows starting at row ``i`` (T a constant in each call, so each is specialised). */
#define FASTIMB_BY_SIX(i, start, stop, nh, TILE)                                       \
    for (i = (start); i + 6 <= (stop); i += 6) nh = TILE(6);                           \
    FASTIMB_REST(i, stop, nh, TILE)

/* The same, five at a time. */
#define FASTIMB_BY_FIVE(i, start, stop, nh, TILE)                                      \
    for (i = (start); i + 5 <= (stop); i += 5) nh = TILE(5);                           \
    FASTIMB_REST(i, stop, nh, TILE)

#define FASTIMB_REST(i, stop, nh, TILE)                                                \
    switch ((stop) - i) {                                                              \
        case 5: nh = TILE(5); break;                                                   \
        case 4: nh = TILE(4); break;                                                   \
        case 3: nh = TILE(3); break;                                                   \
        case 2: nh = TILE(2); break;                                                   \
        case 1: nh = TILE(1); break;                                                   \
        default: break;                                                                \
    }

/* AVX2+FMA: T queries (6, or fewer for the rest: any nq, no padding needed) against
 * panel p, 2T accumulators (6 x 16 keeps twelve multiply-add chains in flight, enough to
 * cover their latency with sixteen registers). The queries are rows i0 .. i0 + T - 1 of
 * q, or with ``rows`` (not NULL) rows rows[0] .. rows[T - 1]. */
__attribute__((always_inline, target("avx2,fma")))
static inline ptrdiff_t fastimb_avx2_tile(const int T, const float* P, const float* xh,
                                          ptrdiff_t p, int d, const float* q, int i0,
                                          const ptrdiff_t* rows, const float* thr,
                                          fastimb_hit* hits, ptrdiff_t nh) {
    const float* xp = P + p * d * FASTIMB_PANEL;
    __m256 h0 = _mm256_loadu_ps(xh + p * FASTIMB_PANEL);
    __m256 h1 = _mm256_loadu_ps(xh + p * FASTIMB_PANEL + 8);
    __m256 a0[6], a1[6];
    const float* qp[6];
    int qi[6];
    int i, j;
    for (i = 0; i < T; i++) {
        qi[i] = rows ? (int)rows[i] : i0 + i;
        qp[i] = q + (ptrdiff_t)qi[i] * d;
        a0[i] = h0;
        a1[i] = h1;
    }
    for (j = 0; j < d; j++) {
        __m256 x0 = _mm256_loadu_ps(xp + (ptrdiff_t)j * FASTIMB_PANEL);
        __m256 x1 = _mm256_loadu_ps(xp + (ptrdiff_t)j * FASTIMB_PANEL + 8);
        for (i = 0; i < T; i++) {
            __m256 qv = _mm256_broadcast_ss(qp[i] + j);
            a0[i] = _mm256_fnmadd_ps(qv, x0, a0[i]);
            a1[i] = _mm256_fnmadd_ps(qv, x1, a1[i]);
        }
    }
    for (i = 0; i < T; i++) {
        __m256 th = _mm256_broadcast_ss(thr + qi[i]);
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a0[i], th, _CMP_LE_OQ)) |
                     ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a1[i], th, _CMP_LE_OQ))
                      << 8);
        if (m) {
            hits[nh].qi = qi[i];
            hits[nh].panel = (int)p;
            hits[nh].mask = m;
            _mm256_storeu_ps(hits[nh].t, a0[i]);
            _mm256_storeu_ps(hits[nh].t + 8, a1[i]);
            nh++;
        }
    }
    return nh;
}

/* Panel by panel (a panel is read into the first-level cache once for all the tiles of
   queries), the queries six at a time. */
__attribute__((target("avx2,fma")))
static ptrdiff_t fastimb_scan_avx2(const float* P, const float* xh, ptrdiff_t n_panels,
                                   int d, const float* q, int nq, const float* thr,
                                   fastimb_hit* hits) {
    ptrdiff_t nh = 0, p;
    int i0;
    for (p = 0; p < n_panels; p++) {
#define FASTIMB_AVX2_TILE(T) fastimb_avx2_tile(T, P, xh, p, d, q, i0, NULL, thr, hits, nh)
        FASTIMB_BY_SIX(i0, 0, nq, nh, FASTIMB_AVX2_TILE)
#undef FASTIMB_AVX2_TILE
    }
    return nh;
}

/* fastimb_scan_avx2's hits of the queries rows[0..n) (rows of q) on panel p alone, in
   that order (the queries a screen kept for the panel). */
__attribute__((target("avx2,fma")))
static ptrdiff_t fastimb_scan_listed(const float* P, const float* xh, ptrdiff_t p, int d,
                                     const float* q, const ptrdiff_t* rows, ptrdiff_t n,
                                     const float* thr, fastimb_hit* hits, ptrdiff_t nh) {
    ptrdiff_t i;
#define FASTIMB_LISTED_TILE(T) fastimb_avx2_tile(T, P, xh, p, d, q, 0, rows + i, thr, hits, nh)
    FASTIMB_BY_SIX(i, 0, n, nh, FASTIMB_LISTED_TILE)
#undef FASTIMB_LISTED_TILE
    return nh;
}

#if (defined(__clang__) && __clang_major__ >= 8) || \
    (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 9)
#define FASTIMB_HAVE_INT8_SCAN 1

/* The float32 t of up to 8 (query, panel) pairs (query rows qi[e] of q, panels pn[e]),
 * each in fastimb_scan_avx512's order of operations (so the same bits), the 8 chains of
 * multiply-adds interleaved (one chain alone waits on each multiply-add's latency). A
 * hit is recorded, in the pairs' order, for each pair where a lane passes thr[qi[e]].
 * Returns the new hit count. */
__attribute__((target("avx512f")))
static ptrdiff_t fastimb_recheck(const float* P, const float* xh, int d, const float* q,
                                 const float* thr, const int* qi, const ptrdiff_t* pn,
                                 int count, fastimb_hit* hits, ptrdiff_t nh) {
    const float* xp[8];
    const float* qf[8];
    __m512 c[8];
    ptrdiff_t j;
    int e;
    for (e = 0; e < 8; e++) {   /* missing pairs repeat the first (computed, not recorded) */
        int src = e < count ? e : 0;
        xp[e] = P + pn[src] * d * FASTIMB_PANEL;
        qf[e] = q + (ptrdiff_t)qi[src] * d;
        c[e] = _mm512_loadu_ps(xh + pn[src] * FASTIMB_PANEL);
    }
    for (j = 0; j < d; j++)
        for (e = 0; e < 8; e++)
            c[e] = _mm512_fnmadd_ps(_mm512_set1_ps(qf[e][j]),
                                    _mm512_loadu_ps(xp[e] + j * FASTIMB_PANEL), c[e]);
    for (e = 0; e < count; e++) {
        __mmask16 m = _mm512_cmp_ps_mask(c[e], _mm512_set1_ps(thr[qi[e]]), _CMP_LE_OQ);
        if (m) {
            hits[nh].qi = qi[e];
            hits[nh].panel = (int)pn[e];
            hits[nh].mask = (unsigned)m;
            _mm512_storeu_ps(hits[nh].t, c[e]);
            nh++;
        }
    }
    return nh;
}

/* Screen with 8-bit products (AVX512_VNNI: 64 multiply-adds per instruction, four times
 * float32's), then recompute in float32 the panels that pass.
 *
 * U holds the rows quantised per coordinate (x_j ~ a_j xq_j, xq_j in [-127, 127], stored
 * as xq_j + 128): U[(p * d4 + jj) * 16 + l] packs coordinates 4jj..4jj+3 of row 16p + l
 * (low byte first), d4 = ceil(d / 4), missing coordinates 128. Each query is quantised
 * against the same steps (q_j a_j ~ c qq_j, qq_j in [-127, 127]): qu[i * d4 + jj] packs
 * its signed bytes, qinit[i] = -128 sum(qq) cancels the offset of 128, and qscale[i] = c,
 * so the integer sum is exact and t_int8 = xh - c * sum(qq_j xq_j). The error of t_int8
 * for any row of panel p is at most qa[i] R[2p] + qb[i] R[2p + 1] (R: the panel's largest
 * norms) plus a part the caller adds to thr_s[i] - thr[i]; the screen widens the
 * threshold by the first two terms (once per panel for the tile's eight queries: the
 * per-query work is a conversion, one multiply-add and a compare), so every (query,
 * panel) pair whose float32 t passes thr is recomputed, and the recomputation reports
 * exactly the hits of fastimb_scan_avx512, bit for bit. */
#define FASTIMB_INT8_TEST(A, I)                                                          \
    if (_mm512_cmp_ps_mask(_mm512_fnmadd_ps(_mm512_set1_ps(qscale[i0 + (I)]),           \
                                            _mm512_cvtepi32_ps(A), h),                  \
                           _mm512_set1_ps(lim[I]), _CMP_LE_OQ)) {                        \
        pq[np_] = i0 + (I);                                                              \
        pp[np_++] = p;                                                                   \
        if (np_ == 8) {                                                                  \
            nh = fastimb_recheck(P, xh, d, q, thr, pq, pp, 8, hits, nh);                 \
            np_ = 0;                                                                     \
        }                                                                                \
    }

__attribute__((target("avx512f,avx512vnni,fma")))
static ptrdiff_t fastimb_scan_int8(const float* P, const unsigned* U, const float* R,
                                   const float* xh, ptrdiff_t n_panels, int d, const float* q,
                                   const unsigned* qu, const int* qinit, const float* qscale,
                                   const float* qa, const float* qb, int nq, const float* thr,
                                   const float* thr_s, fastimb_hit* hits) {
    ptrdiff_t nh = 0, p, j, d4 = (d + 3) / 4, pp[8];
    int i0, i, pq[8], np_ = 0;  /* pairs that passed, rechecked 8 at a time, in order */
    for (i0 = 0; i0 < nq; i0 += 8) {
        const unsigned* qr[8];  /* the tile's packed queries (no index arithmetic in the loop) */
        const __m256 qa8 = _mm256_loadu_ps(qa + i0), qb8 = _mm256_loadu_ps(qb + i0),
                     th8 = _mm256_loadu_ps(thr_s + i0);
        for (i = 0; i < 8; i++) qr[i] = qu + (ptrdiff_t)(i0 + i) * d4;
        for (p = 0; p < n_panels; p++) {
            const unsigned* up = U + p * d4 * FASTIMB_PANEL;
            const __m512 h = _mm512_loadu_ps(xh + p * FASTIMB_PANEL);
            float lim[8];   /* the eight queries' thresholds widened by the panel's error */
            /* eight named accumulators, starting at the offsets' correction: GCC copies
               the elements of an array of them around the destructive vpdpbusd */
            __m512i a0 = _mm512_set1_epi32(qinit[i0]), a1 = _mm512_set1_epi32(qinit[i0 + 1]),
                    a2 = _mm512_set1_epi32(qinit[i0 + 2]),
                    a3 = _mm512_set1_epi32(qinit[i0 + 3]),
                    a4 = _mm512_set1_epi32(qinit[i0 + 4]),
                    a5 = _mm512_set1_epi32(qinit[i0 + 5]),
                    a6 = _mm512_set1_epi32(qinit[i0 + 6]),
                    a7 = _mm512_set1_epi32(qinit[i0 + 7]);
            _mm256_storeu_ps(lim, _mm256_fmadd_ps(
                qa8, _mm256_set1_ps(R[2 * p]),
                _mm256_fmadd_ps(qb8, _mm256_set1_ps(R[2 * p + 1]), th8)));
            for (j = 0; j < d4; j++) {
                __m512i x = _mm512_loadu_si512(up + j * FASTIMB_PANEL);
                a0 = _mm512_dpbusd_epi32(a0, x, _mm512_set1_epi32((int)qr[0][j]));
                a1 = _mm512_dpbusd_epi32(a1, x, _mm512_set1_epi32((int)qr[1][j]));
                a2 = _mm512_dpbusd_epi32(a2, x, _mm512_set1_epi32((int)qr[2][j]));
                a3 = _mm512_dpbusd_epi32(a3, x, _mm512_set1_epi32((int)qr[3][j]));
                a4 = _mm512_dpbusd_epi32(a4, x, _mm512_set1_epi32((int)qr[4][j]));
                a5 = _mm512_dpbusd_epi32(a5, x, _mm512_set1_epi32((int)qr[5][j]));
                a6 = _mm512_dpbusd_epi32(a6, x, _mm512_set1_epi32((int)qr[6][j]));
                a7 = _mm512_dpbusd_epi32(a7, x, _mm512_set1_epi32((int)qr[7][j]));
            }
            FASTIMB_INT8_TEST(a0, 0) FASTIMB_INT8_TEST(a1, 1) FASTIMB_INT8_TEST(a2, 2)
            FASTIMB_INT8_TEST(a3, 3) FASTIMB_INT8_TEST(a4, 4) FASTIMB_INT8_TEST(a5, 5)
            FASTIMB_INT8_TEST(a6, 6) FASTIMB_INT8_TEST(a7, 7)
        }
    }
    return np_ ? fastimb_recheck(P, xh, d, q, thr, pq, pp, np_, hits, nh) : nh;
}
#undef FASTIMB_INT8_TEST
#endif
#endif

/* The queries of a block whose squared distance to the box [lo, hi] may be within their
 * limit: writes their slots to sel and returns how many. qt holds the block's queries
 * transposed, qt[j * ldq + i] = coordinate j of query i (ldq a multiple of 8, padding
 * anything finite), lim_f their limits (-inf: never selected). The distance is summed in
 * float32 (d + 3 roundings of at most 2^-24 relative each, all on non-negative terms),
 * so a query is left out only when that sum exceeds its limit widened by (d + 4) 2^-23:
 * the exact distance then exceeds the limit too. */
static ptrdiff_t fastimb_select_scalar(const float* qt, ptrdiff_t ldq, int nq, int d,
                                       const float* lo, const float* hi, const float* lim_f,
                                       ptrdiff_t* sel) {
    ptrdiff_t k = 0;
    int i, j;
    for (i = 0; i < nq; i++) {
        float acc = 0.0f;
        for (j = 0; j < d; j++) {
            float q = qt[j * ldq + i], g = 0.0f;
            if (lo[j] - q > g) g = lo[j] - q;
            if (q - hi[j] > g) g = q - hi[j];
            acc += g * g;
        }
        if (!(acc > lim_f[i])) sel[k++] = i;
    }
    return k;
}

#ifdef FASTIMB_HAVE_SIMD_SCAN
__attribute__((target("avx2,fma")))
static ptrdiff_t fastimb_select_avx2(const float* qt, ptrdiff_t ldq, int nq, int d,
                                     const float* lo, const float* hi, const float* lim_f,
                                     ptrdiff_t* sel) {
    ptrdiff_t k = 0;
    int i, j, l;
    for (i = 0; i < nq; i += 8) {
        __m256 acc = _mm256_setzero_ps();
        unsigned m;
        for (j = 0; j < d; j++) {
            __m256 q = _mm256_loadu_ps(qt + j * ldq + i);
            __m256 g = _mm256_max_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_set1_ps(lo[j]), q),
                                                   _mm256_sub_ps(q, _mm256_set1_ps(hi[j]))),
                                     _mm256_setzero_ps());
            acc = _mm256_add_ps(acc, _mm256_mul_ps(g, g));
        }
        m = (unsigned)_mm256_movemask_ps(
            _mm256_cmp_ps(acc, _mm256_loadu_ps(lim_f + i), _CMP_NGT_UQ));
        for (l = 0; l < 8 && i + l < nq; l++)
            if (m & (1u << l)) sel[k++] = i + l;
    }
    return k;
}
#endif

static ptrdiff_t fastimb_select(int level, const float* qt, ptrdiff_t ldq, int nq, int d,
                                const float* lo, const float* hi, const float* lim_f,
                                ptrdiff_t* sel) {
#ifdef FASTIMB_HAVE_SIMD_SCAN
    if (level >= 1) return fastimb_select_avx2(qt, ldq, nq, d, lo, hi, lim_f, sel);
#endif
    (void)level;
    return fastimb_select_scalar(qt, ldq, nq, d, lo, hi, lim_f, sel);
}

/* The best variant this CPU runs: 3 = AVX-512F with the AVX512_VNNI 8-bit screen,
   2 = AVX-512F, 1 = AVX2+FMA, 0 = none. */
static int fastimb_scan_level(void) {
#ifdef FASTIMB_HAVE_SIMD_SCAN
    __builtin_cpu_init();
#ifdef FASTIMB_HAVE_INT8_SCAN
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni")) return 3;
#endif
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

/* Scan with variant ``level`` (1 to 3, at most fastimb_scan_level()); returns the number
   of hits written. U, R, qu, qinit, qscale, qa, qb and thr_s are read at level 3 only. */
static ptrdiff_t fastimb_scan(int level, const float* P, const unsigned* U, const float* R,
                              const float* xh, ptrdiff_t n_panels, int d, const float* q,
                              const unsigned* qu, const int* qinit, const float* qscale,
                              const float* qa, const float* qb, int nq, const float* thr,
                              const float* thr_s, fastimb_hit* hits) {
#ifdef FASTIMB_HAVE_SIMD_SCAN
#ifdef FASTIMB_HAVE_INT8_SCAN
    if (level >= 3)
        return fastimb_scan_int8(P, U, R, xh, n_panels, d, q, qu, qinit, qscale, qa, qb, nq,
                                 thr, thr_s, hits);
#endif
    if (level >= 2) return fastimb_scan_avx512(P, xh, n_panels, d, q, nq, thr, hits);
    if (level == 1) return fastimb_scan_avx2(P, xh, n_panels, d, q, nq, thr, hits);
#endif
    (void)P; (void)U; (void)R; (void)xh; (void)n_panels; (void)d; (void)q; (void)qu;
    (void)qinit; (void)qscale; (void)qa; (void)qb; (void)nq; (void)thr; (void)thr_s;
    (void)hits;
    return 0;
}

/* A float shared by threads that only ever hold valid values (the self-join's
   thresholds): read and written whole, without tearing. */
static inline float fastimb_load_f(const float* p) {
#if defined(__GNUC__) || defined(__clang__)
    float v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
#else
    return *(volatile const float*)p;
#endif
}

static inline void fastimb_store_f(float* p, float v) {
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store(p, &v, __ATOMIC_RELAXED);
#else
    *(volatile float*)p = v;
#endif
}

/* The self-join's 16-bit screen. The rows are quantised per coordinate, x_j ~ a_j xq_j,
 * and, as queries, against the same steps: x_j a_j ~ c (qq_j + e_j) with one scale c per
 * row; xq and qq are 16-bit integers small enough that a pair's whole sum S = sum_j qq_j
 * xq_j fits in 32 bits (the caller's choice), summed by vpmaddwd, sixteen multiply-adds
 * per instruction, twice float32's. For rows i (as a query) and j,
 * <x_i, x_j> = c_i S + c_i e_i.xq_j + x_i.(x_j - a xq_j), so the error of c_i S is at most
 * E = qa_i R[2p] + qb_i R[2p + 1] with qa_i = |x_i|, qb_i = c_i |e_i| and R the largest
 * residual norm |x_j - a xq_j| and quantised norm |xq_j| of panel p; qm_i bounds the
 * rounding of the float32 t, of the second test's arithmetic and of the screen's own. A
 * query is screened out of panel p only when both of its tests fail by more than that:
 * xh_j - c_i S > thr_i + E + qm_i for every row j of the panel (row i's test) and, with
 * ``both``, xh_i - c_i S > thr_j + E + qm_i (row j's). Its float32 t could not have
 * passed either, so the queries left are recomputed in float32 by fastimb_sym_tile and
 * give exactly the hits the unscreened scan gives (in another order: the join's result
 * does not depend on it). */
typedef struct {            /* the per-row arrays are padded to n + 8 (read 8 at a time) */
    const unsigned* U;      /* (n_panels, d2, 16): U[(p d2 + jj) 16 + l] packs
                               xq_{2jj} (low half) and xq_{2jj+1} of row 16p + l */
    const unsigned* Q;      /* (n, d2): qq of each row, packed the same way */
    const float* qscale;    /* (n,) c */
    const float* qa;        /* (n,) |x| rounded up */
    const float* qb;        /* (n,) c |e| rounded up */
    const float* qm;        /* (n,) the rounding margin */
    const float* xh;        /* (n,) xh of the rows */
    const float* R;         /* (n_panels, 2) */
    int d2;                 /* ceil(d / 2) */
} fastimb_screen16;

/* The symmetric self-join's scan (AVX2+FMA): rows of the panels (the queries, read from
 * their own panels) against panel pj, six at a time. Per pair, t = xh_j - <x_i, x_j> (row
 * i's test, t <= thr[i], mask bits 0-15) and, with ``both``, t' = (xh_i - xh_j) + t (row
 * j's test, t' <= thr[j], bits 16-31); a query with some bit set is recorded with its 16
 * values of t. ``thr`` covers the panels' padding rows. The T queries of a tile are the
 * positions rows[0..T). */
#ifdef FASTIMB_HAVE_SIMD_SCAN
__attribute__((always_inline, target("avx2,fma")))
static inline ptrdiff_t fastimb_sym_tile(const int T, const float* P, const float* xh,
                                         ptrdiff_t pj, int d, const ptrdiff_t* rows,
                                         const float* thr, int both, fastimb_hit* hits,
                                         ptrdiff_t nh) {
    const float* xp = P + pj * d * FASTIMB_PANEL;
    const float* qp[6];
    __m256 h0 = _mm256_loadu_ps(xh + pj * FASTIMB_PANEL);
    __m256 h1 = _mm256_loadu_ps(xh + pj * FASTIMB_PANEL + 8);
    __m256 a0[6], a1[6];
    int i, j;
    for (i = 0; i < T; i++) {
        ptrdiff_t r = rows[i];
        a0[i] = h0;
        a1[i] = h1;
        qp[i] = P + (r / FASTIMB_PANEL) * d * FASTIMB_PANEL + r % FASTIMB_PANEL;
    }
    for (j = 0; j < d; j++) {
        __m256 x0 = _mm256_loadu_ps(xp + (ptrdiff_t)j * FASTIMB_PANEL);
        __m256 x1 = _mm256_loadu_ps(xp + (ptrdiff_t)j * FASTIMB_PANEL + 8);
        for (i = 0; i < T; i++) {
            __m256 qv = _mm256_broadcast_ss(qp[i] + (ptrdiff_t)j * FASTIMB_PANEL);
            a0[i] = _mm256_fnmadd_ps(qv, x0, a0[i]);
            a1[i] = _mm256_fnmadd_ps(qv, x1, a1[i]);
        }
    }
    __m256 r0 = _mm256_loadu_ps(thr + pj * FASTIMB_PANEL);
    __m256 r1 = _mm256_loadu_ps(thr + pj * FASTIMB_PANEL + 8);
    /* Row j's test, widened to a bound on t alone: t' = (xh_i - xh_j) + t <= thr_j (in
       float32) implies t <= thr_j + xh_j - xh_i + 2^-20 (|thr_j| + xh_j + xh_i), and
       w_j - xh_i (1 - 2^-18), rounded, is above that (w_j = thr_j + xh_j widened by
       2^-18 of their magnitudes; xh >= 0). So a query both of whose tests fail on every
       lane of max(thr_i, w_j - ...) fails them exactly too, and is settled with two
       compares; only the others compute the exact masks. A padding lane (thr -inf, xh
       +inf) gives NaN, which the max leaves out. */
    const __m256 sign = _mm256_set1_ps(-0.0f), wide = _mm256_set1_ps(0x1p-18f);
    __m256 w0 = _mm256_add_ps(_mm256_add_ps(r0, h0),
                              _mm256_mul_ps(wide, _mm256_add_ps(_mm256_andnot_ps(sign, r0), h0)));
    __m256 w1 = _mm256_add_ps(_mm256_add_ps(r1, h1),
                              _mm256_mul_ps(wide, _mm256_add_ps(_mm256_andnot_ps(sign, r1), h1)));
    FASTIMB_UNROLL
    for (i = 0; i < T; i++) {
        __m256 th = _mm256_broadcast_ss(thr + rows[i]), any;
        if (both) {
            __m256 xw = _mm256_set1_ps(xh[rows[i]] * (1.0f - 0x1p-18f));
            any = _mm256_or_ps(
                _mm256_cmp_ps(a0[i], _mm256_max_ps(_mm256_sub_ps(w0, xw), th), _CMP_LE_OQ),
                _mm256_cmp_ps(a1[i], _mm256_max_ps(_mm256_sub_ps(w1, xw), th), _CMP_LE_OQ));
        } else {
            any = _mm256_or_ps(_mm256_cmp_ps(a0[i], th, _CMP_LE_OQ),
                               _mm256_cmp_ps(a1[i], th, _CMP_LE_OQ));
        }
        if (!_mm256_testz_ps(any, any)) {
            unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a0[i], th, _CMP_LE_OQ)) |
                         ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a1[i], th, _CMP_LE_OQ))
                          << 8);
            if (both) {
                __m256 xi = _mm256_broadcast_ss(xh + rows[i]);
                __m256 c0 = _mm256_add_ps(_mm256_sub_ps(xi, h0), a0[i]);
                __m256 c1 = _mm256_add_ps(_mm256_sub_ps(xi, h1), a1[i]);
                m |= ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(c0, r0, _CMP_LE_OQ)) |
                      ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(c1, r1, _CMP_LE_OQ)) << 8))
                     << 16;
            }
            if (m) {
                hits[nh].qi = (int)rows[i];
                hits[nh].panel = (int)pj;
                hits[nh].mask = m;
                _mm256_storeu_ps(hits[nh].t, a0[i]);
                _mm256_storeu_ps(hits[nh].t + 8, a1[i]);
                nh++;
            }
        }
    }
    return nh;
}

/* fastimb_sym_tile for the positions rows[0..n), six at a time. */
__attribute__((target("avx2,fma")))
static ptrdiff_t fastimb_sym_rows(const float* P, const float* xh, ptrdiff_t pj, int d,
                                  const ptrdiff_t* rows, ptrdiff_t n, const float* thr,
                                  int both, fastimb_hit* hits, ptrdiff_t nh) {
    ptrdiff_t i;
#define FASTIMB_SYM_TILE(T) fastimb_sym_tile(T, P, xh, pj, d, rows + i, thr, both, hits, nh)
    FASTIMB_BY_SIX(i, 0, n, nh, FASTIMB_SYM_TILE)
#undef FASTIMB_SYM_TILE
    return nh;
}


/* acc += vpmaddwd(q, x), the two instructions kept together: left to itself GCC issues
   all the tile's products first and spills accumulators to the stack. */
#define FASTIMB_MADD_ACC(acc, q, x)                                                    \
    do {                                                                               \
        __m256i t_;                                                                    \
        __asm__("vpmaddwd %2, %3, %1\n\tvpaddd %1, %0, %0"                             \
                : "+x"(acc), "=&x"(t_)                                                 \
                : "x"(x), "x"(q));                                                     \
    } while (0)

/* T rows [i0, i0 + T) (as queries) against panels [p0, p0 + np): each row the screen
   keeps for panel p0 + k is appended to lists[k * ld + count[k]++]. The rows' packed
   words are first spread over whole registers in ``qb`` (room for 8 T d2 words), so the
   loop over a panel's coordinates loads them rather than broadcasting each (a broadcast
   takes a vector pipe the multiply-adds need), and the rows stay in the first-level cache
   while the panels stream by. */
__attribute__((always_inline, target("avx2,fma")))
static inline void fastimb_screen16_tile(const int T, const fastimb_screen16* s,
                                         const float* xh, const float* thr, ptrdiff_t i0,
                                         ptrdiff_t p0, ptrdiff_t np, int both, unsigned* qb,
                                         int* count, ptrdiff_t* lists, ptrdiff_t ld) {
    const int d2 = s->d2;
    ptrdiff_t k;
    int i, jj;
    for (jj = 0; jj < d2; jj++)
        for (i = 0; i < T; i++)
            _mm256_storeu_si256((__m256i*)(qb + (jj * T + i) * 8),
                                _mm256_set1_epi32((int)s->Q[(i0 + i) * d2 + jj]));
    /* the rows' constants (lanes beyond T are read, never used: ``thr`` and the per-row
       arrays have 8 more entries); thresholds read once per call only ever lag */
    const __m256 qa = _mm256_loadu_ps(s->qa + i0), qbn = _mm256_loadu_ps(s->qb + i0),
                 qm = _mm256_loadu_ps(s->qm + i0), th = _mm256_loadu_ps(thr + i0),
                 xi = _mm256_loadu_ps(s->xh + i0);
    float c[8];
    _mm256_storeu_ps(c, _mm256_loadu_ps(s->qscale + i0));
    for (k = 0; k < np; k++) {
        const ptrdiff_t p = p0 + k;
        const unsigned* up = s->U + p * d2 * FASTIMB_PANEL;
        const unsigned* qr = qb;
        __m256i a0[5], a1[5];
        float l1[8], l2[8];
        FASTIMB_UNROLL
        for (i = 0; i < T; i++) {
            a0[i] = _mm256_setzero_si256();
            a1[i] = _mm256_setzero_si256();
        }
        for (jj = 0; jj < d2; jj++, qr += 8 * T) {
            __m256i x0 = _mm256_loadu_si256((const __m256i*)(up + jj * FASTIMB_PANEL));
            __m256i x1 = _mm256_loadu_si256((const __m256i*)(up + jj * FASTIMB_PANEL + 8));
            FASTIMB_UNROLL
            for (i = 0; i < T; i++) {
                __m256i qv = _mm256_loadu_si256((const __m256i*)(qr + 8 * i));
                FASTIMB_MADD_ACC(a0[i], qv, x0);
                FASTIMB_MADD_ACC(a1[i], qv, x1);
            }
        }
        {   /* Row i's test on lane j is v = xh_j - c_i S <= l1_i = thr_i + e_i; row j's,
               xh_i - e_i - c_i S <= thr_j, is v <= (thr_j + xh_j) - l2_i with l2_i = xh_i -
               e_i: one compare of v with the larger limit settles both (a padding lane's
               NaN is left out by the max). */
            const __m256 e = _mm256_fmadd_ps(
                qa, _mm256_set1_ps(s->R[2 * p]),
                _mm256_fmadd_ps(qbn, _mm256_set1_ps(s->R[2 * p + 1]), qm));
            const __m256 h0 = _mm256_loadu_ps(xh + p * FASTIMB_PANEL);
            const __m256 h1 = _mm256_loadu_ps(xh + p * FASTIMB_PANEL + 8);
            __m256 w0 = h0, w1 = h1;   /* the panel's rows' thresholds: only with both */
            if (both) {
                w0 = _mm256_add_ps(_mm256_loadu_ps(thr + p * FASTIMB_PANEL), h0);
                w1 = _mm256_add_ps(_mm256_loadu_ps(thr + p * FASTIMB_PANEL + 8), h1);
                _mm256_storeu_ps(l2, _mm256_sub_ps(xi, e));
            }
            _mm256_storeu_ps(l1, _mm256_add_ps(th, e));
            FASTIMB_UNROLL
            for (i = 0; i < T; i++) {
                const __m256 cs = _mm256_broadcast_ss(c + i), lim = _mm256_broadcast_ss(l1 + i);
                __m256 v0 = _mm256_fnmadd_ps(cs, _mm256_cvtepi32_ps(a0[i]), h0),
                       v1 = _mm256_fnmadd_ps(cs, _mm256_cvtepi32_ps(a1[i]), h1), m;
                if (both) {
                    const __m256 b = _mm256_broadcast_ss(l2 + i);
                    m = _mm256_or_ps(
                        _mm256_cmp_ps(v0, _mm256_max_ps(_mm256_sub_ps(w0, b), lim), _CMP_LE_OQ),
                        _mm256_cmp_ps(v1, _mm256_max_ps(_mm256_sub_ps(w1, b), lim), _CMP_LE_OQ));
                } else {
                    m = _mm256_or_ps(_mm256_cmp_ps(v0, lim, _CMP_LE_OQ),
                                     _mm256_cmp_ps(v1, lim, _CMP_LE_OQ));
                }
                if (!_mm256_testz_ps(m, m)) lists[k * ld + count[k]++] = i0 + i;
            }
        }
    }
}

/* The screen for rows [i0, i0 + ni) against panels [p0, p0 + np): count[k] (zeroed here)
   and lists[k * ni ...] give, for panel p0 + k, the rows it keeps, in order; only those
   are then computed in float32 (fastimb_sym_rows). qb: room for 40 ceil(d / 2) words.
   Without ``both`` (a one-sided screen: the query scan's), thr holds the rows' thresholds
   alone and s->xh is read but not used. */
__attribute__((target("avx2,fma")))
static void fastimb_sym_screen(const fastimb_screen16* s, const float* xh, const float* thr,
                               ptrdiff_t i0, ptrdiff_t ni, ptrdiff_t p0, ptrdiff_t np,
                               int both, unsigned* qb, int* count, ptrdiff_t* lists) {
    ptrdiff_t i, k;
    int unused = 0;
    for (k = 0; k < np; k++) count[k] = 0;
#define FASTIMB_SCREEN_TILE(T) \
    (fastimb_screen16_tile(T, s, xh, thr, i, p0, np, both, qb, count, lists, ni), 0)
    FASTIMB_BY_FIVE(i, i0, i0 + ni, unused, FASTIMB_SCREEN_TILE)
#undef FASTIMB_SCREEN_TILE
    (void)unused;
}
#else
static ptrdiff_t fastimb_scan_listed(const float* P, const float* xh, ptrdiff_t p, int d,
                                     const float* q, const ptrdiff_t* rows, ptrdiff_t n,
                                     const float* thr, fastimb_hit* hits, ptrdiff_t nh) {
    (void)P; (void)xh; (void)p; (void)d; (void)q; (void)rows; (void)n; (void)thr;
    (void)hits;
    return nh;   /* never called: the 16-bit screen needs scan level 1 or more */
}

static ptrdiff_t fastimb_sym_rows(const float* P, const float* xh, ptrdiff_t pj, int d,
                                  const ptrdiff_t* rows, ptrdiff_t n, const float* thr,
                                  int both, fastimb_hit* hits, ptrdiff_t nh) {
    (void)P; (void)xh; (void)pj; (void)d; (void)rows; (void)n; (void)thr; (void)both;
    (void)hits;
    return nh;   /* never called: the self-join needs scan level 1 or more */
}

static void fastimb_sym_screen(const fastimb_screen16* s, const float* xh, const float* thr,
                               ptrdiff_t i0, ptrdiff_t ni, ptrdiff_t p0, ptrdiff_t np,
                               int both, unsigned* qb, int* count, ptrdiff_t* lists) {
    (void)s; (void)xh; (void)thr; (void)i0; (void)ni; (void)p0; (void)np; (void)both;
    (void)qb; (void)count; (void)lists;
}
#endif

#endif
