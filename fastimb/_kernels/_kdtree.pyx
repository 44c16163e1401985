"""KD-tree kernels: build a balanced tree in flat arrays, exact k-NN and radius counts.

The tree is an implicit complete binary tree of ``n_nodes = 2**n_levels - 1`` nodes: node
``i`` has children ``2i+1`` and ``2i+2`` and covers ``idx[node_start[i]:node_end[i]]``.
Every node is split at the median of its widest bounding-box dimension, so leaves hold at
most ``leaf_size`` points. All arrays are allocated by the Python caller and filled here.

Distances are squared Euclidean ("rdist"), accumulated in double in feature order by one
inline function, so every query in this module computes bit-identical values for the same
pair of points. Tie rule: at equal distance the lower index comes first.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc

from fastimb._kernels._distance cimport rdist_bounded
from fastimb._kernels._heap cimport heap_init, heap_push, heap_sort
from fastimb._kernels._typedefs cimport intp_t


cdef inline double box_rdist(const floating* q, const floating* lo, const floating* hi,
                             intp_t d) noexcept nogil:
    """Squared distance from q to the box [lo, hi] (0 inside)."""
    cdef double acc = 0.0, t
    cdef intp_t j
    for j in range(d):
        if q[j] < lo[j]:
            t = <double>lo[j] - <double>q[j]
            acc = acc + t * t
        elif q[j] > hi[j]:
            t = <double>q[j] - <double>hi[j]
            acc = acc + t * t
    return acc


# ---------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------
cdef inline void swap(intp_t* a, intp_t i, intp_t j) noexcept nogil:
    cdef intp_t t = a[i]
    a[i] = a[j]
    a[j] = t


cdef void select_nth(const floating[:, ::1] X, intp_t* idx, intp_t lo, intp_t hi,
                     intp_t nth, intp_t dim) noexcept nogil:
    """Reorder idx[lo:hi] so that idx[nth] holds the point whose coordinate ``dim`` has
    rank nth - lo, smaller-or-equal ones before it and larger-or-equal ones after."""
    cdef intp_t left = lo, right = hi - 1, i, j, mid
    cdef double pivot
    while right > left:
        mid = left + (right - left) // 2
        # median of three as the pivot, moved to idx[right]
        if X[idx[mid], dim] < X[idx[left], dim]:
            swap(idx, mid, left)
        if X[idx[right], dim] < X[idx[left], dim]:
            swap(idx, right, left)
        if X[idx[mid], dim] < X[idx[right], dim]:
            swap(idx, mid, right)
        pivot = X[idx[right], dim]
        i = left
        for j in range(left, right):
            if X[idx[j], dim] < pivot:
                swap(idx, i, j)
                i += 1
        swap(idx, i, right)
        if i == nth:
            return
        elif i < nth:
            left = i + 1
        else:
            right = i - 1


cdef void build_node(const floating[:, ::1] X, intp_t* idx, intp_t node, intp_t n_nodes,
                     intp_t* node_start, intp_t* node_end, floating* lo, floating* hi,
                     intp_t d) noexcept nogil:
    cdef intp_t start = node_start[node], end = node_end[node], i, j, dim, mid
    cdef floating* nlo = lo + node * d
    cdef floating* nhi = hi + node * d
    cdef floating v
    cdef double spread, best = -1.0
    for j in range(d):
        nlo[j] = X[idx[start], j]
        nhi[j] = X[idx[start], j]
    for i in range(start + 1, end):
        for j in range(d):
            v = X[idx[i], j]
            if v < nlo[j]:
                nlo[j] = v
            elif v > nhi[j]:
                nhi[j] = v
    if 2 * node + 1 >= n_nodes:
        return  # a leaf
    dim = 0
    for j in range(d):
        spread = <double>nhi[j] - <double>nlo[j]
        if spread > best:
            best = spread
            dim = j
    mid = start + (end - start) // 2
    if end - start > 1:
        select_nth(X, idx, start, end, mid, dim)
    node_start[2 * node + 1] = start
    node_end[2 * node + 1] = mid
    node_start[2 * node + 2] = mid
    node_end[2 * node + 2] = end


def build(const floating[:, ::1] X,      # IN  (n, d) data
          intp_t[::1] idx,               # OUT (n,) permutation of range(n)
          intp_t[::1] node_start,        # OUT (n_nodes,)
          intp_t[::1] node_end,          # OUT (n_nodes,)
          floating[:, ::1] node_lo,      # OUT (n_nodes, d) bounding-box minima
          floating[:, ::1] node_hi,      # OUT (n_nodes, d) bounding-box maxima
          int n_threads):
    """Fill the tree arrays; nodes of one level are built in parallel (deterministic)."""
    cdef intp_t n = X.shape[0], d = X.shape[1], n_nodes = node_start.shape[0]
    cdef intp_t i, level_first, level_size, node
    for i in range(n):
        idx[i] = i
    node_start[0] = 0
    node_end[0] = n
    level_first = 0
    level_size = 1
    with nogil:
        while level_first < n_nodes:
            for node in prange(level_first, level_first + level_size, schedule="dynamic",
                               num_threads=n_threads):
                build_node(X, &idx[0], node, n_nodes, &node_start[0], &node_end[0],
                           &node_lo[0, 0], &node_hi[0, 0], d)
            level_first = level_first + level_size
            level_size = level_size * 2


# ---------------------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------------------
cdef void knn_one(const floating[:, ::1] X, const intp_t* idx, const intp_t* node_start,
                  const intp_t* node_end, const floating* lo, const floating* hi,
                  intp_t n_nodes, const floating* q, intp_t skip, intp_t k,
                  double* hd, intp_t* hi_, intp_t* stack_node, double* stack_rd) noexcept nogil:
    cdef intp_t d = X.shape[1], top = 0, node, c1, c2, p, j
    cdef double nrd, r1, r2, dist
    heap_init(hd, hi_, k)
    stack_node[0] = 0
    stack_rd[0] = box_rdist(q, lo, hi, d)
    top = 1
    while top > 0:
        top -= 1
        node = stack_node[top]
        nrd = stack_rd[top]
        if nrd > hd[0]:
            continue
        c1 = 2 * node + 1
        if c1 >= n_nodes:
            for p in range(node_start[node], node_end[node]):
                j = idx[p]
                if j == skip:
                    continue
                dist = rdist_bounded(q, &X[j, 0], d, hd[0])
                heap_push(hd, hi_, k, dist, j)
            continue
        c2 = c1 + 1
        r1 = box_rdist(q, lo + c1 * d, hi + c1 * d, d)
        r2 = box_rdist(q, lo + c2 * d, hi + c2 * d, d)
        if r1 <= r2:   # nearer child pushed last, so it is visited first
            stack_node[top] = c2
            stack_rd[top] = r2
            stack_node[top + 1] = c1
            stack_rd[top + 1] = r1
        else:
            stack_node[top] = c1
            stack_rd[top] = r1
            stack_node[top + 1] = c2
            stack_rd[top + 1] = r2
        top += 2
    heap_sort(hd, hi_, k)


def query_knn(const floating[:, ::1] X,          # IN  (n, d) tree data
              const intp_t[::1] idx,             # IN  tree arrays (see build)
              const intp_t[::1] node_start,
              const intp_t[::1] node_end,
              const floating[:, ::1] node_lo,
              const floating[:, ::1] node_hi,
              const floating[:, ::1] Q,          # IN  (m, d) query points
              const intp_t[::1] skip,            # IN  (m,) index never returned for q, or -1
              double[:, ::1] out_dist,           # OUT (m, k) distances (not squared)
              intp_t[:, ::1] out_ind,            # OUT (m, k) indices, by (distance, index)
              bint squared,                      # IN  return squared distances
              int n_threads):
    """Exact k nearest neighbours of every row of Q (k = out_ind.shape[1])."""
    cdef intp_t m = Q.shape[0], k = out_ind.shape[1], n_nodes = node_start.shape[0]
    cdef intp_t qi, j, depth = 2 * 64 + 4
    cdef double* hd
    cdef intp_t* hind
    cdef intp_t* stack_node
    cdef double* stack_rd
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    hd = NULL
    hind = NULL
    stack_node = NULL
    stack_rd = NULL
    if m == 0 or k == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        hd = <double*> malloc(k * sizeof(double))
        hind = <intp_t*> malloc(k * sizeof(intp_t))
        stack_node = <intp_t*> malloc(depth * sizeof(intp_t))
        stack_rd = <double*> malloc(depth * sizeof(double))
        if hd == NULL or hind == NULL or stack_node == NULL or stack_rd == NULL:
            p_failed[0] = 1
        else:
            for qi in prange(m, schedule="static", chunksize=64):
                knn_one(X, &idx[0], &node_start[0], &node_end[0], &node_lo[0, 0],
                        &node_hi[0, 0], n_nodes, &Q[qi, 0], skip[qi], k, hd, hind,
                        stack_node, stack_rd)
                for j in range(k):
                    out_dist[qi, j] = hd[j] if squared else sqrt(hd[j])
                    out_ind[qi, j] = hind[j]
        free(hd)
        free(hind)
        free(stack_node)
        free(stack_rd)
    if failed:
        raise MemoryError("k-NN query: out of memory for per-thread buffers")


cdef intp_t count_one(const floating[:, ::1] X, const intp_t* idx, const intp_t* node_start,
                      const intp_t* node_end, const floating* lo, const floating* hi,
                      intp_t n_nodes, const floating* q, intp_t skip, double r2,
                      intp_t max_count, intp_t* stack_node) noexcept nogil:
    cdef intp_t d = X.shape[1], top = 1, node, c1, p, j, count = 0
    stack_node[0] = 0
    while top > 0:
        top -= 1
        node = stack_node[top]
        if box_rdist(q, lo + node * d, hi + node * d, d) >= r2:
            continue
        c1 = 2 * node + 1
        if c1 >= n_nodes:
            for p in range(node_start[node], node_end[node]):
                j = idx[p]
                if j == skip:
                    continue
                if rdist_bounded(q, &X[j, 0], d, r2) < r2:
                    count += 1
                    if count >= max_count:
                        return count
            continue
        stack_node[top] = c1 + 1
        stack_node[top + 1] = c1
        top += 2
    return count


def count_within(const floating[:, ::1] X,        # IN  (n, d) tree data
                 const intp_t[::1] idx,           # IN  tree arrays (see build)
                 const intp_t[::1] node_start,
                 const intp_t[::1] node_end,
                 const floating[:, ::1] node_lo,
                 const floating[:, ::1] node_hi,
                 const floating[:, ::1] Q,        # IN  (m, d) query points
                 const double[::1] radius2,       # IN  (m,) squared radius, strict
                 const intp_t[::1] skip,          # IN  (m,) index not counted, or -1
                 intp_t max_count,                # IN  stop counting at this many
                 intp_t[::1] out_count,           # OUT (m,)
                 int n_threads):
    """Per query, how many points lie strictly within ``sqrt(radius2)`` (capped)."""
    cdef intp_t m = Q.shape[0], n_nodes = node_start.shape[0], qi, depth = 2 * 64 + 4
    cdef intp_t* stack_node
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    stack_node = NULL
    if m == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        stack_node = <intp_t*> malloc(depth * sizeof(intp_t))
        if stack_node == NULL:
            p_failed[0] = 1
        else:
            for qi in prange(m, schedule="static", chunksize=64):
                out_count[qi] = count_one(X, &idx[0], &node_start[0], &node_end[0],
                                          &node_lo[0, 0], &node_hi[0, 0], n_nodes,
                                          &Q[qi, 0], skip[qi], radius2[qi], max_count,
                                          stack_node)
        free(stack_node)
    if failed:
        raise MemoryError("radius count: out of memory for per-thread buffers")
