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


cdef inline double pos(double v) noexcept nogil:
    """max(v, 0) for finite v, as one maxsd (libm's fmax is a call: it handles NaN)."""
    return v if v > 0.0 else 0.0


cdef inline double box_rdist(const floating* q, const floating* lo, const floating* hi,
                             intp_t d) noexcept nogil:
    """Squared distance from q to the box [lo, hi] (0 inside)."""
    cdef double acc = 0.0, t
    cdef intp_t j
    for j in range(d):
        # branch-free: at most one of the two terms is non-zero (lo <= hi)
        t = pos(<double>lo[j] - <double>q[j]) + pos(<double>q[j] - <double>hi[j])
        acc = acc + t * t
    return acc


cdef inline double box_box_rdist(const double* lo1, const double* hi1, const float* lo2,
                                 const float* hi2, intp_t d) noexcept nogil:
    """Squared distance between the boxes [lo1, hi1] and [lo2, hi2] (0 if they meet)."""
    cdef double acc = 0.0, t
    cdef intp_t j
    for j in range(d):
        t = pos(<double>lo2[j] - hi1[j]) + pos(lo1[j] - <double>hi2[j])
        acc = acc + t * t
    return acc
