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
 * threshold of -inf never pass) and guarantees room for n_queries * n_panels hits.
 *
 * Variants: AVX-512F (optionally screened with AVX512_BF16 products, see
 * fastimb_scan_bf16) and AVX2+FMA on x86 with GCC or Clang, chosen at run time from the
 * CPU; fastimb_scan_level() returns 0 where none exists, and the caller then uses its
 * BLAS gemm path instead. Every variant reports the same hits with the same values.
 */
#ifndef FASTIMB_PANEL_SCAN_H
#define FASTIMB_PANEL_SCAN_H

#include <stddef.h>
#include <string.h>

#define FASTIMB_PANEL 16
#define FASTIMB_SCAN_TILE 8

typedef struct {
    int qi;          /* query row within the tile buffer */
    int panel;       /* panel index, relative to the first panel scanned */
    unsigned mask;   /* lanes with t <= threshold */
    float t[FASTIMB_PANEL];
} fastimb_hit;

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

__attribute__((target("avx2,fma")))
static ptrdiff_t fastimb_scan_avx2(const float* P, const float* xh, ptrdiff_t n_panels,
                                   int d, const float* q, int nq, const float* thr,
                                   fastimb_hit* hits) {
    ptrdiff_t nh = 0, p;
    int i0, i, j;
    for (i0 = 0; i0 < nq; i0 += 4) {
        const float* qq = q + (ptrdiff_t)i0 * d;
        __m256 th[4];
        for (i = 0; i < 4; i++) th[i] = _mm256_set1_ps(thr[i0 + i]);
        for (p = 0; p < n_panels; p++) {
            const float* xp = P + p * d * FASTIMB_PANEL;
            __m256 h0 = _mm256_loadu_ps(xh + p * FASTIMB_PANEL);
            __m256 h1 = _mm256_loadu_ps(xh + p * FASTIMB_PANEL + 8);
            __m256 a0[4], a1[4];
            for (i = 0; i < 4; i++) { a0[i] = h0; a1[i] = h1; }
            for (j = 0; j < d; j++) {
                __m256 x0 = _mm256_loadu_ps(xp + (ptrdiff_t)j * FASTIMB_PANEL);
                __m256 x1 = _mm256_loadu_ps(xp + (ptrdiff_t)j * FASTIMB_PANEL + 8);
                for (i = 0; i < 4; i++) {
                    __m256 qv = _mm256_broadcast_ss(qq + i * d + j);
                    a0[i] = _mm256_fnmadd_ps(qv, x0, a0[i]);
                    a1[i] = _mm256_fnmadd_ps(qv, x1, a1[i]);
                }
            }
            for (i = 0; i < 4; i++) {
                unsigned m = (unsigned)_mm256_movemask_ps(
                                 _mm256_cmp_ps(a0[i], th[i], _CMP_LE_OQ)) |
                             ((unsigned)_mm256_movemask_ps(
                                 _mm256_cmp_ps(a1[i], th[i], _CMP_LE_OQ)) << 8);
                if (m) {
                    hits[nh].qi = i0 + i;
                    hits[nh].panel = (int)p;
                    hits[nh].mask = m;
                    _mm256_storeu_ps(hits[nh].t, a0[i]);
                    _mm256_storeu_ps(hits[nh].t + 8, a1[i]);
                    nh++;
                }
            }
        }
    }
    return nh;
}

#if (defined(__clang__) && __clang_major__ >= 11) || \
    (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11)
#define FASTIMB_HAVE_BF16_SCAN 1

/* Screen with bfloat16 products (AVX512_BF16: 32 multiply-adds per instruction, twice
 * float32's), then recompute in float32 the panels that pass.
 *
 * B holds the rows as bfloat16 pairs: B[(p * d2 + jj) * 16 + l] packs coordinates 2jj
 * (low half) and 2jj + 1 of row 16p + l, d2 = ceil(d / 2), a missing last coordinate 0;
 * qb[i * d2 + jj] packs the negated query coordinates the same way, so that
 * dpbf16(a, qb, x) accumulates -q.x onto a = xh. thr_bf[i] must exceed thr[i] by a bound
 * on |t_bf16 - t_float32| (see the caller): then every (query, panel) pair whose float32
 * t passes thr has a bfloat16 t passing thr_bf, and the float32 recomputation of exactly
 * those pairs, in the float32 scan's own order of operations, reports the same hits,
 * bit for bit, as fastimb_scan_avx512. */
__attribute__((target("avx512f,avx512bf16")))
static ptrdiff_t fastimb_scan_bf16(const float* P, const unsigned* B, const float* xh,
                                   ptrdiff_t n_panels, int d, const float* q,
                                   const unsigned* qb, int nq, const float* thr,
                                   const float* thr_bf, fastimb_hit* hits) {
    ptrdiff_t nh = 0, p, j, d2 = (d + 1) / 2;
    int i0, i;
    for (i0 = 0; i0 < nq; i0 += 8) {
        const unsigned* qr[8];  /* the tile's query pairs (no index arithmetic in the loop) */
        __m512 th[8];
        for (i = 0; i < 8; i++) {
            qr[i] = qb + (ptrdiff_t)(i0 + i) * d2;
            th[i] = _mm512_set1_ps(thr_bf[i0 + i]);
        }
        for (p = 0; p < n_panels; p++) {
            const unsigned* bp = B + p * d2 * FASTIMB_PANEL;
            __m512 h = _mm512_loadu_ps(xh + p * FASTIMB_PANEL);
            __m512 a[8];
            for (i = 0; i < 8; i++) a[i] = h;
            for (j = 0; j < d2; j++) {
                __m512bh x = (__m512bh)_mm512_loadu_si512(bp + j * FASTIMB_PANEL);
                for (i = 0; i < 8; i++)
                    a[i] = _mm512_dpbf16_ps(
                        a[i], (__m512bh)_mm512_set1_epi32((int)qr[i][j]), x);
            }
            for (i = 0; i < 8; i++) {
                if (_mm512_cmp_ps_mask(a[i], th[i], _CMP_LE_OQ)) {
                    const float* xp = P + p * d * FASTIMB_PANEL;
                    const float* qf = q + (ptrdiff_t)(i0 + i) * d;
                    __m512 c = h;
                    __mmask16 m;
                    for (j = 0; j < d; j++)
                        c = _mm512_fnmadd_ps(_mm512_set1_ps(qf[j]),
                                             _mm512_loadu_ps(xp + j * FASTIMB_PANEL), c);
                    m = _mm512_cmp_ps_mask(c, _mm512_set1_ps(thr[i0 + i]), _CMP_LE_OQ);
                    if (m) {
                        hits[nh].qi = i0 + i;
                        hits[nh].panel = (int)p;
                        hits[nh].mask = (unsigned)m;
                        _mm512_storeu_ps(hits[nh].t, c);
                        nh++;
                    }
                }
            }
        }
    }
    return nh;
}
#endif
#endif

/* float32 -> bfloat16, round to nearest even (finite input). */
static inline unsigned fastimb_bf16(float f) {
    unsigned u;
    memcpy(&u, &f, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return u >> 16;
}

/* Two coordinates packed for the bfloat16 panels: lo in the low half. */
static inline unsigned fastimb_bf16_pair(float lo, float hi) {
    return fastimb_bf16(lo) | (fastimb_bf16(hi) << 16);
}

/* The best variant this CPU runs: 3 = AVX-512F with AVX512_BF16 screening,
   2 = AVX-512F, 1 = AVX2+FMA, 0 = none. */
static int fastimb_scan_level(void) {
#ifdef FASTIMB_HAVE_SIMD_SCAN
    __builtin_cpu_init();
#ifdef FASTIMB_HAVE_BF16_SCAN
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16")) return 3;
#endif
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

/* Scan with variant ``level`` (1 to 3, at most fastimb_scan_level()); returns the number
   of hits written. B, qb and thr_bf are read at level 3 only. */
static ptrdiff_t fastimb_scan(int level, const float* P, const unsigned* B, const float* xh,
                              ptrdiff_t n_panels, int d, const float* q, const unsigned* qb,
                              int nq, const float* thr, const float* thr_bf,
                              fastimb_hit* hits) {
#ifdef FASTIMB_HAVE_SIMD_SCAN
#ifdef FASTIMB_HAVE_BF16_SCAN
    if (level >= 3)
        return fastimb_scan_bf16(P, B, xh, n_panels, d, q, qb, nq, thr, thr_bf, hits);
#endif
    if (level >= 2) return fastimb_scan_avx512(P, xh, n_panels, d, q, nq, thr, hits);
    if (level == 1) return fastimb_scan_avx2(P, xh, n_panels, d, q, nq, thr, hits);
#endif
    (void)P; (void)B; (void)xh; (void)n_panels; (void)d; (void)q; (void)qb; (void)nq;
    (void)thr; (void)thr_bf; (void)hits;
    return 0;
}

#endif
