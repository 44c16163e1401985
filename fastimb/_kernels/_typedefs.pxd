# Shared C types of fastimb's kernels.
#
# Indices and counts are ``intp_t`` (``np.intp`` on the Python side); data use Cython's
# fused ``floating`` (float32 / float64); drawn integers the fused ``index_t`` (int32 when
# they fit, int64 otherwise).
from libc.stdint cimport int32_t, int64_t

ctypedef Py_ssize_t intp_t
ctypedef double float64_t
ctypedef float float32_t

ctypedef fused index_t:
    int32_t
    int64_t
