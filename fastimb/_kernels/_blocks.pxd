# Fixed-size blocks of a range, for loops that run in parallel over blocks.
from fastimb._kernels._typedefs cimport intp_t


cdef inline intp_t n_blocks_of(intp_t n, intp_t size) noexcept nogil:
    """Blocks of ``size`` covering ``range(n)`` (at least one)."""
    return (n + size - 1) // size if n > 0 else 1


cdef inline intp_t block_stop(intp_t blk, intp_t size, intp_t n) noexcept nogil:
    """End of block ``blk`` (its start is ``blk * size``)."""
    cdef intp_t stop = (blk + 1) * size
    return stop if stop < n else n
