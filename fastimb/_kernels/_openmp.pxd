# OpenMP shim: the same kernels compile with or without OpenMP.
#
# Kernels never ``cimport openmp`` (Apple clang has no omp.h); they use prange/parallel,
# which Cython turns into serial loops when the compiler has no OpenMP, and these helpers.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FASTIMB_HAVE_OPENMP 1
    static inline int fastimb_max_threads(void) { return omp_get_max_threads(); }
    static inline int fastimb_thread_num(void) { return omp_get_thread_num(); }
    #else
    #define FASTIMB_HAVE_OPENMP 0
    static inline int fastimb_max_threads(void) { return 1; }
    static inline int fastimb_thread_num(void) { return 0; }
    #endif
    """
    bint FASTIMB_HAVE_OPENMP
    int fastimb_max_threads() noexcept nogil
    int fastimb_thread_num() noexcept nogil
