# Bounded max-heaps for k-nearest-neighbour selection, shared by the KD-tree and the
# brute-force kernels.
#
# A heap of size k holds (rdist, index) pairs ordered lexicographically: a pair is
# "better" when its squared distance is smaller or, at equal distance, its index is lower
# (fastimb's tie rule). The root (slot 0) is the worst pair kept, so a candidate enters
# iff it is better than the root. Empty slots hold (+inf, INTP_MAX), worse than any pair.
from fastimb._kernels._typedefs cimport intp_t

cdef extern from *:
    """
    #include <stdint.h>
    #define FASTIMB_INTP_MAX PTRDIFF_MAX
    """
    intp_t FASTIMB_INTP_MAX


cdef inline bint heap_better(double d1, intp_t i1, double d2, intp_t i2) noexcept nogil:
    return d1 < d2 or (d1 == d2 and i1 < i2)


cdef inline void heap_init(double* dist, intp_t* ind, intp_t k) noexcept nogil:
    cdef intp_t j
    for j in range(k):
        dist[j] = 1.0 / 0.0
        ind[j] = FASTIMB_INTP_MAX


cdef inline void heap_replace_root(double* dist, intp_t* ind, intp_t k,
                                   double d, intp_t i) noexcept nogil:
    """Put (d, i) in place of the root and sift it down (caller checked it is better)."""
    cdef intp_t pos = 0, child, right
    while True:
        child = 2 * pos + 1
        if child >= k:
            break
        right = child + 1
        if right < k and heap_better(dist[child], ind[child], dist[right], ind[right]):
            child = right          # the worse child of the two
        if heap_better(dist[child], ind[child], d, i):
            break                  # both children better than (d, i): it stays here
        dist[pos] = dist[child]
        ind[pos] = ind[child]
        pos = child
    dist[pos] = d
    ind[pos] = i


cdef inline void heap_push(double* dist, intp_t* ind, intp_t k,
                           double d, intp_t i) noexcept nogil:
    """Offer (d, i) to the heap: it enters when better than the worst pair kept."""
    if heap_better(d, i, dist[0], ind[0]):
        heap_replace_root(dist, ind, k, d, i)


cdef inline void heap_sort(double* dist, intp_t* ind, intp_t k) noexcept nogil:
    """Sort the heap in place, best pair first (heapsort on the max-heap)."""
    cdef intp_t end
    cdef double d
    cdef intp_t i
    for end in range(k - 1, 0, -1):
        d = dist[end]
        i = ind[end]
        dist[end] = dist[0]
        ind[end] = ind[0]
        heap_replace_root(dist, ind, end, d, i)
