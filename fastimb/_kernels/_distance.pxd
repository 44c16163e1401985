# Squared Euclidean distance ("rdist") shared by the neighbour kernels.
#
# One formula everywhere: differences and squares in double, summed in feature order, so
# the KD-tree, the brute-force re-ranking and the radius counts give bit-identical
# distances for the same pair of points (a neighbour at distance r is never "strictly
# closer than r" in another query).
from cython cimport floating

from fastimb._kernels._typedefs cimport intp_t


cdef inline double rdist(const floating* a, const floating* b, intp_t d) noexcept nogil:
    cdef double acc = 0.0, t
    cdef intp_t j
    for j in range(d):
        t = <double>a[j] - <double>b[j]
        acc = acc + t * t
    return acc


cdef inline double rdist_bounded(const floating* a, const floating* b, intp_t d,
                                 double bound) noexcept nogil:
    """rdist, or a partial sum > bound as soon as one exceeds ``bound``."""
    cdef double acc = 0.0, t
    cdef intp_t j
    for j in range(d):
        t = <double>a[j] - <double>b[j]
        acc = acc + t * t
        if acc > bound:
            return acc
    return acc
