# Software prefetch, for kernels that read rows at random (gathers, interpolation): the
# rows of a few iterations ahead are requested while the current one is computed, so
# several cache misses are in flight at once instead of one after the other.
from fastimb._kernels._typedefs cimport intp_t

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <xmmintrin.h>
    #define FASTIMB_PREFETCH(p) _mm_prefetch((const char*)(p), _MM_HINT_T0)
    #define FASTIMB_PREFETCH_L2(p) _mm_prefetch((const char*)(p), _MM_HINT_T1)
    #else
    #define FASTIMB_PREFETCH(p) __builtin_prefetch((const void*)(p), 0, 3)
    #define FASTIMB_PREFETCH_L2(p) __builtin_prefetch((const void*)(p), 0, 2)
    #endif
    """
    void FASTIMB_PREFETCH(const void* p) noexcept nogil
    void FASTIMB_PREFETCH_L2(const void* p) noexcept nogil

# bytes per cache line (64 on x86-64 and most ARM cores; a wrong guess only costs speed)
cdef enum:
    CACHE_LINE = 64


cdef inline void prefetch_bytes(const void* p, intp_t nbytes, bint l2=False) noexcept nogil:
    """Request every cache line of ``[p, p + nbytes)``: into the first-level cache (what
    is read next), or with ``l2`` into the second-level one (a block read a little later,
    without evicting what is being read now)."""
    cdef const char* a = <const char*> p
    cdef const char* end = a + nbytes
    a = a - (<size_t> a) % CACHE_LINE
    while a < end:
        if l2:
            FASTIMB_PREFETCH_L2(a)
        else:
            FASTIMB_PREFETCH(a)
        a += CACHE_LINE
