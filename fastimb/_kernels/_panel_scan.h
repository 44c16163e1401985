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
 * Variants: AVX-512F and AVX2+FMA on x86 with GCC or Clang, chosen at run time from the
 * CPU; fastimb_scan_level() returns 0 where neither exists, and the caller then uses its
 * BLAS gemm path instead.
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

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FASTIMB_HAVE_SIMD_SCAN 1
#include <immintrin.h>

__attribute__((target("avx512f")))
static ptrdiff_t fastimb_scan_avx512(const float* P, const float* xh, ptrdiff_t n_panels,
                                     int d, const float* q, int nq, const float* thr,
                                     fastimb_hit* hits) {
    ptrdiff_t nh = 0, p;
    int i0, i, j;
    for (i0 = 0; i0 < nq; i0 += 8) {
        const float* qq = q + (ptrdiff_t)i0 * d;
        __m512 th[8];
        for (i = 0; i < 8; i++) th[i] = _mm512_set1_ps(thr[i0 + i]);
        for (p = 0; p < n_panels; p++) {
            const float* xp = P + p * d * FASTIMB_PANEL;
            __m512 h = _mm512_loadu_ps(xh + p * FASTIMB_PANEL);
            __m512 a[8];
            for (i = 0; i < 8; i++) a[i] = h;
            for (j = 0; j < d; j++) {
                __m512 x = _mm512_loadu_ps(xp + (ptrdiff_t)j * FASTIMB_PANEL);
                for (i = 0; i < 8; i++)
                    a[i] = _mm512_fnmadd_ps(_mm512_set1_ps(qq[i * d + j]), x, a[i]);
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
#endif

/* The best variant this CPU runs: 2 = AVX-512F, 1 = AVX2+FMA, 0 = none. */
static int fastimb_scan_level(void) {
#ifdef FASTIMB_HAVE_SIMD_SCAN
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

/* Scan with variant ``level`` (1 or 2, at most fastimb_scan_level()); returns the number
   of hits written. */
static ptrdiff_t fastimb_scan(int level, const float* P, const float* xh,
                              ptrdiff_t n_panels, int d, const float* q, int nq,
                              const float* thr, fastimb_hit* hits) {
#ifdef FASTIMB_HAVE_SIMD_SCAN
    if (level >= 2) return fastimb_scan_avx512(P, xh, n_panels, d, q, nq, thr, hits);
    if (level == 1) return fastimb_scan_avx2(P, xh, n_panels, d, q, nq, thr, hits);
#endif
    (void)P; (void)xh; (void)n_panels; (void)d; (void)q; (void)nq; (void)thr; (void)hits;
    return 0;
}

#endif
