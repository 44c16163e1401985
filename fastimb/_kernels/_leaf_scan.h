/* Squared distances from a query to the points of a KD-tree leaf, several at a time.
 *
 * A leaf of L points is stored by coordinate: x[j * L + p] is coordinate j of its point
 * p. out[p] = sum over j, in feature order, of (q_j - x_j)^2, each term and sum in
 * double: fastimb's one distance formula (_distance.pxd), so the values are the same
 * bits as the scalar rdist whatever the variant. With AVX2 (chosen at run time) four
 * points are summed at once; the intrinsics below never fuse the multiply and the add
 * (and the build disables contraction). The "_below" variants keep only the points
 * within a threshold (out[c], pos[c]: the c-th such distance and its point), tested
 * four at a time: a k-NN search offers its heap only those.
 */
#ifndef FASTIMB_LEAF_SCAN_H
#define FASTIMB_LEAF_SCAN_H

#include <stddef.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FASTIMB_HAVE_LEAF_SIMD 1
#include <immintrin.h>
#endif

/* 1 when the AVX2 variant runs on this CPU (decided once, by the module's import). */
static int fastimb_leaf_simd = 0;

static void fastimb_leaf_scan_init(void) {
#ifdef FASTIMB_HAVE_LEAF_SIMD
    __builtin_cpu_init();
    fastimb_leaf_simd = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
}

/* For points [p0, L): the scalar sums (NAME##_scalar, one point's by NAME##_one), the
   AVX2 one (NAME##_avx2: four points at a time from LOAD4; for d up to
   FASTIMB_LEAF_MAX_D the last one to three by the masked MLOAD4, otherwise by the scalar
   sums) and the dispatch (NAME); the same for the points within a threshold
   (NAME##_below), for coordinates of type T. */
#define FASTIMB_LEAF_RDIST(NAME, T, LOAD4, MLOAD4)                                     \
    static inline double NAME##_one(const T* x, ptrdiff_t L, ptrdiff_t p, int d,       \
                                    const T* q) {                                      \
        double acc = 0.0;                                                              \
        int j;                                                                         \
        for (j = 0; j < d; j++) {                                                      \
            double t = (double)q[j] - (double)x[(ptrdiff_t)j * L + p];                 \
            acc = acc + t * t;                                                         \
        }                                                                              \
        return acc;                                                                    \
    }                                                                                  \
    static void NAME##_scalar(const T* x, ptrdiff_t L, ptrdiff_t p0, int d, const T* q, \
                              double* out) {                                           \
        ptrdiff_t p;                                                                   \
        for (p = p0; p < L; p++)                                                       \
            out[p] = NAME##_one(x, L, p, d, q);                                        \
    }                                                                                  \
    static ptrdiff_t NAME##_below_scalar(const T* x, ptrdiff_t L, ptrdiff_t p0, int d,  \
                                         const T* q, double thr, double* out,           \
                                         ptrdiff_t* pos, ptrdiff_t c) {                 \
        ptrdiff_t p;                                                                   \
        for (p = p0; p < L; p++) {                                                     \
            double acc = NAME##_one(x, L, p, d, q);                                    \
            if (acc <= thr) {                                                          \
                out[c] = acc;                                                          \
                pos[c++] = p;                                                          \
            }                                                                          \
        }                                                                              \
        return c;                                                                      \
    }                                                                                  \
    FASTIMB_LEAF_AVX2(NAME, T, LOAD4, MLOAD4)                                          \
    static inline void NAME(const T* x, ptrdiff_t L, int d, const T* q, double* out) {  \
        FASTIMB_LEAF_DISPATCH(NAME)                                                    \
        NAME##_scalar(x, L, 0, d, q, out);                                             \
    }                                                                                  \
    static inline ptrdiff_t NAME##_below(const T* x, ptrdiff_t L, int d, const T* q,    \
                                         double thr, double* out, ptrdiff_t* pos) {     \
        FASTIMB_LEAF_BELOW_DISPATCH(NAME)                                              \
        return NAME##_below_scalar(x, L, 0, d, q, thr, out, pos, 0);                   \
    }

#ifdef FASTIMB_HAVE_LEAF_SIMD
/* Up to this many coordinates, the scans are compiled once per d: the query's broadcast
   coordinates are hoisted into registers and the loop over them unrolled. */
#define FASTIMB_LEAF_MAX_D 8
/* Appends to (out, pos) from c the lanes of acc (points p .. p + 3) within limit and set
   in valid; returns the new count. */
__attribute__((target("avx2"), always_inline))
static inline ptrdiff_t fastimb_leaf_keep(__m256d acc, __m256d limit, int valid,
                                          ptrdiff_t p, double* out, ptrdiff_t* pos,
                                          ptrdiff_t c) {
    double sums[4];
    int mask = _mm256_movemask_pd(_mm256_cmp_pd(acc, limit, _CMP_LE_OQ)) & valid;
    if (mask) {
        _mm256_storeu_pd(sums, acc);
        while (mask) {
            int b = __builtin_ctz(mask);
            out[c] = sums[b];
            pos[c++] = p + b;
            mask &= mask - 1;
        }
    }
    return c;
}
/* The sums of points [p, p + 4) (LOAD4) or of the r < 4 points [p, p + r) (MLOAD4 with
   lane mask m; the other lanes read as 0 and are ignored by the callers), from the
   query's coordinates broadcast in qv. */
#define FASTIMB_LEAF_FOUR(NAME, SUFFIX, T, LOADX)                                      \
    __attribute__((target("avx2"), always_inline))                                     \
    static inline __m256d NAME##SUFFIX(const T* x, ptrdiff_t L, ptrdiff_t p, int d,    \
                                       const __m256d* qv, int r) {                     \
        __m256d acc = _mm256_setzero_pd();                                             \
        int j;                                                                         \
        (void)r;                                                                       \
        for (j = 0; j < d; j++) {                                                      \
            __m256d t = _mm256_sub_pd(qv[j], LOADX(x + (ptrdiff_t)j * L + p, r));      \
            acc = _mm256_add_pd(acc, _mm256_mul_pd(t, t));                             \
        }                                                                              \
        return acc;                                                                    \
    }
#define FASTIMB_LEAF_AVX2(NAME, T, LOAD4, MLOAD4)                                      \
    FASTIMB_LEAF_FOUR(NAME, _four, T, LOAD4)                                           \
    FASTIMB_LEAF_FOUR(NAME, _part, T, MLOAD4)                                          \
    /* all L distances (d is a constant where inlined from the dispatch below) */      \
    __attribute__((target("avx2"), always_inline))                                     \
    static inline void NAME##_all_d(const T* x, ptrdiff_t L, int d, const T* q,        \
                                    double* out) {                                     \
        __m256d qv[FASTIMB_LEAF_MAX_D];                                                \
        double sums[4];                                                                \
        ptrdiff_t p = 0, i;                                                            \
        int j;                                                                         \
        for (j = 0; j < d; j++)                                                        \
            qv[j] = _mm256_set1_pd((double)q[j]);                                      \
        for (; p + 4 <= L; p += 4)                                                     \
            _mm256_storeu_pd(out + p, NAME##_four(x, L, p, d, qv, 4));                 \
        if (p < L) {                                                                   \
            _mm256_storeu_pd(sums, NAME##_part(x, L, p, d, qv, (int)(L - p)));         \
            for (i = p; i < L; i++)                                                    \
                out[i] = sums[i - p];                                                  \
        }                                                                              \
    }                                                                                  \
    /* the points within thr (d constant where inlined, as above) */                   \
    __attribute__((target("avx2"), always_inline))                                     \
    static inline ptrdiff_t NAME##_below_d(const T* x, ptrdiff_t L, int d, const T* q,  \
                                           double thr, double* out, ptrdiff_t* pos) {   \
        __m256d qv[FASTIMB_LEAF_MAX_D];                                                \
        const __m256d limit = _mm256_set1_pd(thr);                                     \
        ptrdiff_t p = 0, c = 0;                                                        \
        int j;                                                                         \
        for (j = 0; j < d; j++)                                                        \
            qv[j] = _mm256_set1_pd((double)q[j]);                                      \
        for (; p + 4 <= L; p += 4)                                                     \
            c = fastimb_leaf_keep(NAME##_four(x, L, p, d, qv, 4), limit, 15, p, out,   \
                                  pos, c);                                             \
        if (p < L)                                                                     \
            c = fastimb_leaf_keep(NAME##_part(x, L, p, d, qv, (int)(L - p)), limit,    \
                                  (1 << (L - p)) - 1, p, out, pos, c);                 \
        return c;                                                                      \
    }                                                                                  \
    /* more coordinates than registers: each broadcast where used */                   \
    __attribute__((target("avx2")))                                                    \
    static inline __m256d NAME##_wide(const T* x, ptrdiff_t L, ptrdiff_t p, int d,     \
                                      const T* q) {                                    \
        __m256d acc = _mm256_setzero_pd();                                             \
        int j;                                                                         \
        for (j = 0; j < d; j++) {                                                      \
            __m256d t = _mm256_sub_pd(_mm256_set1_pd((double)q[j]),                    \
                                      LOAD4(x + (ptrdiff_t)j * L + p, 4));             \
            acc = _mm256_add_pd(acc, _mm256_mul_pd(t, t));                             \
        }                                                                              \
        return acc;                                                                    \
    }                                                                                  \
    __attribute__((target("avx2")))                                                    \
    static void NAME##_avx2(const T* x, ptrdiff_t L, int d, const T* q, double* out) {  \
        ptrdiff_t p = 0;                                                               \
        switch (d) {                                                                   \
        FASTIMB_LEAF_CASES(NAME##_all_d(x, L, FASTIMB_D, q, out); return;)             \
        }                                                                              \
        for (; p + 4 <= L; p += 4)                                                     \
            _mm256_storeu_pd(out + p, NAME##_wide(x, L, p, d, q));                     \
        NAME##_scalar(x, L, p, d, q, out);                                             \
    }                                                                                  \
    __attribute__((target("avx2")))                                                    \
    static ptrdiff_t NAME##_below_avx2(const T* x, ptrdiff_t L, int d, const T* q,      \
                                       double thr, double* out, ptrdiff_t* pos) {       \
        ptrdiff_t p = 0, c = 0;                                                        \
        const __m256d limit = _mm256_set1_pd(thr);                                     \
        switch (d) {                                                                   \
        FASTIMB_LEAF_CASES(return NAME##_below_d(x, L, FASTIMB_D, q, thr, out, pos);)  \
        }                                                                              \
        for (; p + 4 <= L; p += 4)                                                     \
            c = fastimb_leaf_keep(NAME##_wide(x, L, p, d, q), limit, 15, p, out, pos,  \
                                  c);                                                  \
        return NAME##_below_scalar(x, L, p, d, q, thr, out, pos, c);                   \
    }
/* one case per d = 1 .. FASTIMB_LEAF_MAX_D, each with FASTIMB_D that constant */
#define FASTIMB_LEAF_CASE(D, STMT) case D: { enum { FASTIMB_D = D }; STMT }
#define FASTIMB_LEAF_CASES(STMT)                                                       \
    FASTIMB_LEAF_CASE(1, STMT) FASTIMB_LEAF_CASE(2, STMT) FASTIMB_LEAF_CASE(3, STMT)   \
    FASTIMB_LEAF_CASE(4, STMT) FASTIMB_LEAF_CASE(5, STMT) FASTIMB_LEAF_CASE(6, STMT)   \
    FASTIMB_LEAF_CASE(7, STMT) FASTIMB_LEAF_CASE(8, STMT)
#define FASTIMB_LEAF_DISPATCH(NAME)                                                    \
    if (fastimb_leaf_simd) {                                                           \
        NAME##_avx2(x, L, d, q, out);                                                  \
        return;                                                                        \
    }
#define FASTIMB_LEAF_BELOW_DISPATCH(NAME)                                              \
    if (fastimb_leaf_simd)                                                             \
        return NAME##_below_avx2(x, L, d, q, thr, out, pos);
#else
#define FASTIMB_LEAF_AVX2(NAME, T, LOAD4, MLOAD4)
#define FASTIMB_LEAF_DISPATCH(NAME)
#define FASTIMB_LEAF_BELOW_DISPATCH(NAME)
#endif

/* four coordinates as doubles; the masked loads read only the first r (lanes whose
   index is below r), the others as 0 */
#define FASTIMB_LOAD4_D(ptr, r) _mm256_loadu_pd(ptr)
#define FASTIMB_LOAD4_S(ptr, r) _mm256_cvtps_pd(_mm_loadu_ps(ptr))
#define FASTIMB_MLOAD4_D(ptr, r)                                                       \
    _mm256_maskload_pd(ptr, _mm256_cmpgt_epi64(_mm256_set1_epi64x(r),                  \
                                               _mm256_setr_epi64x(0, 1, 2, 3)))
#define FASTIMB_MLOAD4_S(ptr, r)                                                       \
    _mm256_cvtps_pd(_mm_maskload_ps(ptr, _mm_cmpgt_epi32(_mm_set1_epi32(r),            \
                                                         _mm_setr_epi32(0, 1, 2, 3))))
FASTIMB_LEAF_RDIST(fastimb_leaf_rdist_d, double, FASTIMB_LOAD4_D, FASTIMB_MLOAD4_D)
FASTIMB_LEAF_RDIST(fastimb_leaf_rdist_s, float, FASTIMB_LOAD4_S, FASTIMB_MLOAD4_S)
#undef FASTIMB_LOAD4_D
#undef FASTIMB_LOAD4_S
#undef FASTIMB_MLOAD4_D
#undef FASTIMB_MLOAD4_S
#undef FASTIMB_LEAF_RDIST
#undef FASTIMB_LEAF_AVX2
#undef FASTIMB_LEAF_FOUR
#undef FASTIMB_LEAF_CASE
#undef FASTIMB_LEAF_CASES
#undef FASTIMB_LEAF_DISPATCH
#undef FASTIMB_LEAF_BELOW_DISPATCH

#endif
