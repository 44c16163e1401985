/* Squared distances from a query to the points of a KD-tree leaf, several at a time.
 *
 * A leaf of L points is stored by coordinate: x[j * L + p] is coordinate j of its point
 * p. out[p] = sum over j, in feature order, of (q_j - x_j)^2, each term and sum in
 * double: fastimb's one distance formula (_distance.pxd), so the values are the same
 * bits as the scalar rdist whatever the variant. With AVX2 (chosen at run time) four
 * points are summed at once; the intrinsics below never fuse the multiply and the add
 * (and the build disables contraction).
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

/* For points [p0, L): the scalar sums (NAME##_scalar), the AVX2 one (NAME##_avx2, four
   points at a time from LOAD4, then the scalar sums for the rest) and the dispatch
   (NAME), for coordinates of type T. */
#define FASTIMB_LEAF_RDIST(NAME, T, LOAD4)                                             \
    static void NAME##_scalar(const T* x, ptrdiff_t L, ptrdiff_t p0, int d, const T* q, \
                              double* out) {                                           \
        ptrdiff_t p;                                                                   \
        int j;                                                                         \
        for (p = p0; p < L; p++) {                                                     \
            double acc = 0.0;                                                          \
            for (j = 0; j < d; j++) {                                                  \
                double t = (double)q[j] - (double)x[(ptrdiff_t)j * L + p];             \
                acc = acc + t * t;                                                     \
            }                                                                          \
            out[p] = acc;                                                              \
        }                                                                              \
    }                                                                                  \
    FASTIMB_LEAF_AVX2(NAME, T, LOAD4)                                                  \
    static inline void NAME(const T* x, ptrdiff_t L, int d, const T* q, double* out) {  \
        FASTIMB_LEAF_DISPATCH(NAME)                                                    \
        NAME##_scalar(x, L, 0, d, q, out);                                             \
    }

#ifdef FASTIMB_HAVE_LEAF_SIMD
#define FASTIMB_LEAF_AVX2(NAME, T, LOAD4)                                              \
    __attribute__((target("avx2")))                                                    \
    static void NAME##_avx2(const T* x, ptrdiff_t L, int d, const T* q, double* out) {  \
        ptrdiff_t p = 0;                                                               \
        int j;                                                                         \
        for (; p + 4 <= L; p += 4) {                                                   \
            __m256d acc = _mm256_setzero_pd();                                         \
            for (j = 0; j < d; j++) {                                                  \
                __m256d t = _mm256_sub_pd(_mm256_set1_pd((double)q[j]),                \
                                          LOAD4(x + (ptrdiff_t)j * L + p));            \
                acc = _mm256_add_pd(acc, _mm256_mul_pd(t, t));                         \
            }                                                                          \
            _mm256_storeu_pd(out + p, acc);                                            \
        }                                                                              \
        NAME##_scalar(x, L, p, d, q, out);                                             \
    }
#define FASTIMB_LEAF_DISPATCH(NAME)                                                    \
    if (fastimb_leaf_simd) {                                                           \
        NAME##_avx2(x, L, d, q, out);                                                  \
        return;                                                                        \
    }
#else
#define FASTIMB_LEAF_AVX2(NAME, T, LOAD4)
#define FASTIMB_LEAF_DISPATCH(NAME)
#endif

#define FASTIMB_LOAD4_D(ptr) _mm256_loadu_pd(ptr)
#define FASTIMB_LOAD4_S(ptr) _mm256_cvtps_pd(_mm_loadu_ps(ptr))
FASTIMB_LEAF_RDIST(fastimb_leaf_rdist_d, double, FASTIMB_LOAD4_D)
FASTIMB_LEAF_RDIST(fastimb_leaf_rdist_s, float, FASTIMB_LOAD4_S)
#undef FASTIMB_LOAD4_D
#undef FASTIMB_LOAD4_S
#undef FASTIMB_LEAF_RDIST
#undef FASTIMB_LEAF_AVX2
#undef FASTIMB_LEAF_DISPATCH

#endif
