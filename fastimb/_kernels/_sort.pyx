"""Value sort of float arrays by least-significant-digit radix sort.

The float's bits become an unsigned key that orders like the value (sign bit flipped for
non-negative values, all bits flipped for negative ones), then the keys are distributed by
8-bit digits from the lowest; digits that are the same for every key (common in the
exponent) are skipped, which one counting pass over all digits tells beforehand. O(n) per
varying digit, independent of the data's order; the caller checks the values are finite.
"""
from cython cimport floating
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset

from fastimb._kernels._typedefs cimport intp_t

ctypedef fused key_t:
    uint32_t
    uint64_t


cdef inline key_t to_key(key_t u) noexcept nogil:
    cdef key_t top = (<key_t> 1) << (8 * sizeof(key_t) - 1)
    return ~u if u & top else u | top


cdef inline key_t from_key(key_t k) noexcept nogil:
    cdef key_t top = (<key_t> 1) << (8 * sizeof(key_t) - 1)
    return k & ~top if k & top else ~k


cdef bint lsd_sort(key_t* k, key_t* t, intp_t n) noexcept nogil:
    """Sort the float bit patterns ``k[:n]`` by value, using ``t`` as scratch; returns
    whether the result ended in ``t``."""
    cdef intp_t counts[8][256]
    cdef intp_t i, digit, pos, c, n_digits = sizeof(key_t)
    cdef int shift
    cdef key_t* s
    cdef bint in_t = False
    memset(&counts[0][0], 0, sizeof(counts))
    for i in range(n):
        k[i] = to_key(k[i])
        for digit in range(n_digits):
            counts[digit][(k[i] >> (8 * digit)) & 255] += 1
    for digit in range(n_digits):
        shift = 8 * digit
        if counts[digit][(k[0] >> shift) & 255] == n:
            continue  # a digit every key shares moves nothing
        pos = 0
        for i in range(256):
            c = counts[digit][i]
            counts[digit][i] = pos
            pos = pos + c
        for i in range(n):
            t[counts[digit][(k[i] >> shift) & 255]] = k[i]
            counts[digit][(k[i] >> shift) & 255] += 1
        s = k
        k = t
        t = s
        in_t = not in_t
    for i in range(n):
        k[i] = from_key(k[i])
    return in_t


def radix_sort(floating[::1] a,       # IN/OUT (n,) sorted in place, ascending
               floating[::1] work):   # scratch (n,)
    """Sort ``a`` in place (ascending; -0.0 before 0.0)."""
    cdef intp_t n = a.shape[0]
    cdef bint in_work
    if n < 2:
        return
    with nogil:
        if floating is double:
            in_work = lsd_sort(<uint64_t*> &a[0], <uint64_t*> &work[0], n)
        else:
            in_work = lsd_sort(<uint32_t*> &a[0], <uint32_t*> &work[0], n)
        if in_work:
            memcpy(&a[0], &work[0], n * sizeof(floating))
