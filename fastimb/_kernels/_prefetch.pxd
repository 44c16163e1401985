# Software prefetch, for kernels that read rows at random (gathers, interpolation): the
# rows of a few iterations ahead are requested while the current one is computed, so
# several cache misses are in flight at once instead of one after the other.
from fastimb._kernels._typedefs cimport intp_t

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <xmmintrin.h>
    #define FASTIMB_PREFETCH(p) _mm_prefetch((const char*)(p), _MM_HINT_T0)
    #else
    #define FASTIMB_PREFETCH(p) __builtin_prefetch((const void*)(p), 0, 3)
    #endif
    """
    void FASTIMB_PREFETCH(const void* p) noexcept nogil

# bytes per cache line (64 on x86-64 and most ARM cores; a wrong guess only costs speed)
cdef enum:
    CACHE_LINE = 64


cdef inline void prefetch_bytes(const void* p, intp_t nbytes) noexcept nogil:
    """Request every cache line of ``[p, p + nbytes)``."""
    cdef const char* a = <const char*> p
    cdef const char* end = a + nbytes
    a = a - (<size_t> a) % CACHE_LINE
    while a < end:
        FASTIMB_PREFETCH(a)
        a += CACHE_LINE
