"""KD-tree kernels: build a balanced tree in flat arrays, exact k-NN and radius counts.

The tree is an implicit complete binary tree of ``n_nodes = 2**n_levels - 1`` nodes: node
``i`` has children ``2i+1`` and ``2i+2`` and covers ``idx[node_start[i]:node_end[i]]``.
Every node is split at the median of its widest cell dimension: the top levels (nodes
larger than the cache) at the median of a strided sample of their rows, the levels below
exactly, so leaves hold about ``leaf_size`` points (at most that many with exact splits
throughout; a few percent more or fewer below sampled cuts). The search is exact whatever
the cuts. All arrays are allocated by the Python caller and filled here.
Queries read the data in tree order (``Xt[p] = X[idx[p]]``, a copy made by the build),
then stored by coordinate within each leaf (``leaf_columns``), so a leaf's distances are
summed several points at a time; or, without that copy (``indirect``), the data itself
through idx, for queries that visit few leaves.

Distances are squared Euclidean ("rdist"), accumulated in double in feature order by one
inline function, so every query in this module computes bit-identical values for the same
pair of points. Tie rule: at equal distance the lower index comes first.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from fastimb._kernels._blocks cimport block_stop, n_blocks_of
from fastimb._kernels._distance cimport box_rdist, pos, rdist
from fastimb._kernels._heap cimport FASTIMB_INTP_MAX, heap_init, heap_push, heap_sort
from fastimb._kernels._typedefs cimport intp_t

import numpy as np

cdef extern from "_leaf_scan.h" nogil:
    void fastimb_leaf_scan_init()
    void fastimb_leaf_rdist_d(const double* x, intp_t L, int d, const double* q,
                              double* out)
    void fastimb_leaf_rdist_s(const float* x, intp_t L, int d, const float* q, double* out)
    intp_t fastimb_leaf_rdist_d_below(const double* x, intp_t L, int d, const double* q,
                                      double thr, double* out, intp_t* pos)
    intp_t fastimb_leaf_rdist_s_below(const float* x, intp_t L, int d, const float* q,
                                      double thr, double* out, intp_t* pos)

fastimb_leaf_scan_init()


cdef inline void leaf_rdist(const floating* x, intp_t L, intp_t d, const floating* q,
                            double* out) noexcept nogil:
    """out[p] = rdist(q, point p) for the L points of a leaf stored by coordinate (see
    leaf_columns), several points at a time."""
    if floating is double:
        fastimb_leaf_rdist_d(x, L, <int> d, q, out)
    else:
        fastimb_leaf_rdist_s(x, L, <int> d, q, out)


cdef inline intp_t leaf_rdist_below(const floating* x, intp_t L, intp_t d,
                                    const floating* q, double thr, double* out,
                                    intp_t* pos) noexcept nogil:
    """The points of a leaf stored by coordinate that lie within ``thr`` (squared) of q:
    their distances into out and their positions in the leaf into pos; returns how
    many (several points tested at a time)."""
    if floating is double:
        return fastimb_leaf_rdist_d_below(x, L, <int> d, q, thr, out, pos)
    else:
        return fastimb_leaf_rdist_s_below(x, L, <int> d, q, thr, out, pos)


# ---------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------
# above this many keys, selection partitions around two pivots taken from a sample
cdef intp_t SAMPLE_SELECT_MIN = 4096
DEF SAMPLE_SIZE = 512
# bytes of a subtree the second build phase handles in one task (rows, keys, buffers)
cdef intp_t SUBTREE_BYTES = 1 << 21
# the top levels stop at this many subtrees once these fit SUBTREE_BYTES (a fixed number,
# so the tree does not depend on the thread count), and are cut on a strided sample of
# TOP_SAMPLE rows per subtree, TOP_SAMPLE_MAX rows at most
cdef intp_t MIN_SUBTREES = 64
cdef intp_t TOP_SAMPLE = 512
cdef intp_t TOP_SAMPLE_MAX = 1 << 17
# rows per task of the top levels' counting and scattering passes (at least)
cdef intp_t TOP_BLOCK = 16384


cdef inline intp_t partition_below(double* key, intp_t* idx, intp_t lo, intp_t hi, double a,
                                  bint or_equal) noexcept nogil:
    """One pass over [lo, hi): keys < a (<= a with ``or_equal``) first; returns where
    the others start. Branch-free (Lomuto's scheme with an unconditional swap): the
    outcome of each comparison only moves the boundary, so random keys cost no branch
    mispredictions."""
    cdef intp_t i = lo, j, ti
    cdef double v
    for j in range(lo, hi):
        v = key[j]
        ti = idx[j]
        key[j] = key[i]
        idx[j] = idx[i]
        key[i] = v
        idx[i] = ti
        i += (v <= a) if or_equal else (v < a)
    return i


cdef void sort_doubles(double* v, intp_t n) noexcept nogil:
    """Shell sort (small arrays: the selection's sample)."""
    cdef intp_t gap = 1, i, j
    cdef double t
    while gap < n // 3:
        gap = 3 * gap + 1
    while gap > 0:
        for i in range(gap, n):
            t = v[i]
            j = i
            while j >= gap and v[j - gap] > t:
                v[j] = v[j - gap]
                j -= gap
            v[j] = t
        gap = gap // 3


cdef void select_nth(double* key, intp_t* idx, intp_t n, intp_t nth) noexcept nogil:
    """Reorder the pairs (key, idx)[0:n] so that position nth holds the pair of rank nth,
    with smaller-or-equal keys before it and larger-or-equal after.

    Each step cuts the range around pivots a <= b into keys < a, keys in [a, b] and keys
    > b (a second pass over the part not below a), and keeps the part holding rank nth;
    when a == b that middle part is a band of equal keys, and nth in it ends the search
    (so equal keys cost two steps, however many): with a single pivot, the second pass
    runs only when no key is below a (otherwise the next pivot cuts the keys >= a). Large ranges take a and b bracketing the
    target rank in a strided sample (Floyd and Rivest's idea): the kept band holds a few
    percent of the keys; small ranges use a = b = the median of three."""
    cdef intp_t lo = 0, hi = n, m, lt, gt, i, r = 0
    cdef double a, b, x, y, z
    cdef double sample[SAMPLE_SIZE]
    cdef bint single = False  # next step: one pivot, the sample's key at rank r
    while hi - lo > 1:
        m = hi - lo
        if single:
            a = b = sample[r]
            single = False
        elif m >= SAMPLE_SELECT_MIN:
            for i in range(SAMPLE_SIZE):
                sample[i] = key[lo + (i * m) // SAMPLE_SIZE]
            sort_doubles(sample, SAMPLE_SIZE)
            r = ((nth - lo) * SAMPLE_SIZE) // m
            # 40 ranks: about 3.5 standard deviations of the sample rank at the median
            a = sample[max(r - 40, 0)]
            b = sample[min(r + 40, SAMPLE_SIZE - 1)]
        else:
            x = key[lo]
            y = key[lo + m // 2]
            z = key[hi - 1]
            a = max(min(x, y), min(max(x, y), z))  # the median of three
            b = a
        lt = partition_below(key, idx, lo, hi, a, False)
        if nth < lt:
            hi = lt
            continue
        if a == b and lt > lo:
            lo = lt  # keys >= a: the next pivot cuts them (no pass to find those equal to a)
            continue
        gt = partition_below(key, idx, lt, hi, b, True)
        if nth >= gt:
            lo = gt
        elif a == b:
            return  # rank nth lies in a band of keys equal to a
        elif gt - lt == m:
            single = True  # [a, b] held every key (many equal ones): cut at one key
        else:
            lo = lt
            hi = gt


cdef inline intp_t widest_side(intp_t node, const floating* lo, const floating* hi,
                               intp_t d) noexcept nogil:
    cdef intp_t j, dim = 0
    cdef double spread, best = -1.0
    for j in range(d):
        spread = <double>hi[node * d + j] - <double>lo[node * d + j]
        if spread > best:
            best = spread
            dim = j
    return dim


cdef inline void cut_node(intp_t node, intp_t dim, floating cut, intp_t mid,
                          intp_t* node_start, intp_t* node_end, floating* lo, floating* hi,
                          intp_t d, intp_t* split_dim, floating* split_val) noexcept nogil:
    """Record node's cut and give its children their ranges and cells (the parent's cell
    cut at ``cut``; tightened after the build)."""
    cdef intp_t c1 = 2 * node + 1, c2 = 2 * node + 2, j
    split_dim[node] = dim
    split_val[node] = cut
    for j in range(d):
        lo[c1 * d + j] = lo[node * d + j]
        hi[c1 * d + j] = hi[node * d + j]
        lo[c2 * d + j] = lo[node * d + j]
        hi[c2 * d + j] = hi[node * d + j]
    hi[c1 * d + dim] = cut
    lo[c2 * d + dim] = cut
    node_start[c1] = node_start[node]
    node_end[c1] = mid
    node_start[c2] = mid
    node_end[c2] = node_end[node]


cdef void tight_box(const floating* rows, intp_t n_rows, intp_t d, floating* lo,
                    floating* hi) noexcept nogil:
    """Bounding box of ``n_rows`` contiguous rows (n_rows >= 1)."""
    cdef intp_t i, j
    cdef floating v
    for j in range(d):
        lo[j] = rows[j]
        hi[j] = rows[j]
    for i in range(1, n_rows):
        for j in range(d):
            v = rows[i * d + j]
            if v < lo[j]:
                lo[j] = v
            elif v > hi[j]:
                hi[j] = v


cdef void union_box(intp_t node, const intp_t* node_start, const intp_t* node_end,
                    floating* lo, floating* hi, intp_t d) noexcept nogil:
    cdef intp_t c1 = 2 * node + 1, c2 = 2 * node + 2, j
    if node_end[c1] <= node_start[c1] or node_end[c2] <= node_start[c2]:
        return
    for j in range(d):
        lo[node * d + j] = min(lo[c1 * d + j], lo[c2 * d + j])
        hi[node * d + j] = max(hi[c1 * d + j], hi[c2 * d + j])


cdef int build_subtree(const floating* X, floating* Xt, intp_t* idx, intp_t root,
                       intp_t depth, intp_t d, intp_t* node_start, intp_t* node_end,
                       floating* lo, floating* hi, intp_t* split_dim,
                       floating* split_val) noexcept nogil:
    """Split the ``depth`` levels below ``root`` (positions ``node_start[root]:
    node_end[root]``) on a contiguous copy of its rows (they fit in cache): Xt's, already
    in place, or, with Xt NULL, one gathered from X through idx. Then idx (and Xt) take
    the subtree's order and its nodes get tight boxes. 0, or -1 when out of memory."""
    cdef intp_t s = node_start[root], m = node_end[root] - s, l, j, i, node, first, a, b
    cdef intp_t mid, dim
    cdef floating* rows = NULL
    cdef intp_t* loc = NULL
    cdef double* key = NULL
    cdef floating* tmp = NULL
    cdef intp_t* itmp = NULL
    cdef int status = 0
    if m == 0:
        return 0
    loc = <intp_t*> malloc(m * sizeof(intp_t))
    key = <double*> malloc(m * sizeof(double))
    tmp = <floating*> malloc(m * d * sizeof(floating))
    itmp = <intp_t*> malloc(m * sizeof(intp_t))
    rows = Xt + s * d if Xt != NULL else <floating*> malloc(m * d * sizeof(floating))
    if loc == NULL or key == NULL or tmp == NULL or itmp == NULL or rows == NULL:
        status = -1
    else:
        if Xt == NULL:
            for i in range(m):
                memcpy(rows + i * d, X + idx[s + i] * d, d * sizeof(floating))
        for i in range(m):
            loc[i] = i
        for l in range(depth):
            first = ((root + 1) << l) - 1
            for j in range(1 << l):
                node = first + j
                a = node_start[node] - s
                b = node_end[node] - s
                dim = widest_side(node, lo, hi, d)
                for i in range(a, b):
                    key[i] = rows[loc[i] * d + dim]
                mid = a + (b - a) // 2
                if b - a > 1:
                    select_nth(key + a, loc + a, b - a, mid - a)
                cut_node(node, dim, rows[loc[mid] * d + dim] if b > a else lo[node * d + dim],
                         s + mid, node_start, node_end, lo, hi, d, split_dim, split_val)
        # the rows and their indices in the subtree's final order
        for i in range(m):
            memcpy(tmp + i * d, rows + loc[i] * d, d * sizeof(floating))
            itmp[i] = idx[s + loc[i]]
        memcpy(idx + s, itmp, m * sizeof(intp_t))
        if Xt != NULL:
            memcpy(rows, tmp, m * d * sizeof(floating))
        first = ((root + 1) << depth) - 1
        for j in range(1 << depth):
            node = first + j
            if node_end[node] > node_start[node]:  # an empty leaf keeps its (valid) cell
                tight_box(tmp + (node_start[node] - s) * d, node_end[node] - node_start[node],
                          d, lo + node * d, hi + node * d)
        for l in range(depth - 1, -1, -1):
            first = ((root + 1) << l) - 1
            for j in range(1 << l):
                union_box(first + j, node_start, node_end, lo, hi, d)
    free(loc)
    free(key)
    free(tmp)
    free(itmp)
    if Xt == NULL:
        free(rows)
    return status


cdef inline bint goes_left(floating x, intp_t i, floating v, intp_t pivot) noexcept nogil:
    """A top-level cut sends (x, i) left when it precedes (v, pivot): x < v, or x == v
    and i < pivot (equal keys are split by index, so they cannot unbalance the cut).
    Without branches: every row takes a data-dependent turn at every level."""
    return (<int> (x < v)) | ((<int> (x == v)) & (<int> (i < pivot)))


DEF TOP_CHUNK = 64


cdef inline void top_subtrees(const floating* X, intp_t i0, intp_t m, intp_t d,
                              intp_t top_levels, const intp_t* split_dim,
                              const floating* split_val, const intp_t* pivot,
                              intp_t* sub) noexcept nogil:
    """``sub[u]``: the top-level subtree (0 .. 2**top_levels - 1) row ``i0 + u`` falls
    in, for u < m <= TOP_CHUNK. The rows descend level by level together: their turns
    are independent, so the CPU overlaps them (one row alone waits on each level's
    loads)."""
    cdef intp_t u, l, node, i
    for u in range(m):
        sub[u] = 0
    for l in range(top_levels):
        for u in range(m):
            node = sub[u]
            i = i0 + u
            sub[u] = 2 * node + 2 - goes_left(X[i * d + split_dim[node]], i, split_val[node],
                                              pivot[node])
    for u in range(m):
        sub[u] -= (1 << top_levels) - 1


cdef void place_block(const floating* X, intp_t start, intp_t stop, intp_t d,
                      intp_t top_levels, const intp_t* split_dim, const floating* split_val,
                      const intp_t* pivot, intp_t* slots, intp_t* idx, floating* Xt,
                      intp_t n_sub) noexcept nogil:
    """Rows ``start:stop`` by top-level subtree. Without idx: count them (``slots[b]``,
    the rows of subtree b). With idx: place them, in order: ``slots[b]`` is the next
    position of subtree b's rows, where each row's index goes (and its values in Xt,
    unless NULL)."""
    cdef intp_t sub[TOP_CHUNK]
    cdef intp_t i, m, u, p
    if idx == NULL:
        for u in range(n_sub):
            slots[u] = 0
    for i in range(start, stop, TOP_CHUNK):
        m = min(TOP_CHUNK, stop - i)
        top_subtrees(X, i, m, d, top_levels, split_dim, split_val, pivot, sub)
        if idx == NULL:
            for u in range(m):
                slots[sub[u]] += 1
            continue
        for u in range(m):
            p = slots[sub[u]]
            slots[sub[u]] = p + 1
            idx[p] = i + u
            if Xt != NULL:
                memcpy(Xt + p * d, X + (i + u) * d, d * sizeof(floating))


cdef void cut_sampled(intp_t node, const floating* X, intp_t d, floating* lo, floating* hi,
                      intp_t* node_start, intp_t* node_end, intp_t* split_dim,
                      floating* split_val, intp_t* pivot, intp_t* sidx, double* skey,
                      intp_t* tidx, double* tie, intp_t* srange) noexcept nogil:
    """Cut ``node`` at the (key, index) pair of median rank among its sample rows
    ``sidx[srange[2 node]:srange[2 node + 1]]`` (which it splits between its children);
    ``skey``, ``tidx`` and ``tie`` are scratch over the same range."""
    cdef intp_t a = srange[2 * node], b = srange[2 * node + 1], m = b - a, p, r, mid, c_lt
    cdef intp_t n_eq = 0, left = a, dim = widest_side(node, lo, hi, d)
    cdef double v
    split_dim[node] = dim
    if m == 0:
        v = lo[node * d + dim]
        pivot[node] = 0
    else:
        for p in range(a, b):
            skey[p] = X[sidx[p] * d + dim]
        mid = a + m // 2
        select_nth(skey + a, sidx + a, m, mid - a)
        v = skey[mid]
        # the pair of rank mid: among the keys equal to v, the index of rank
        # (mid - a) - #(keys < v)
        c_lt = 0
        for p in range(a, b):
            if skey[p] < v:
                c_lt += 1
            elif skey[p] == v:
                tie[a + n_eq] = <double> sidx[p]
                tidx[a + n_eq] = n_eq
                n_eq += 1
        select_nth(tie + a, tidx + a, n_eq, mid - a - c_lt)
        pivot[node] = <intp_t> tie[mid - c_lt]
    cut_node(node, dim, <floating> v, 0, node_start, node_end, lo, hi, d, split_dim,
             split_val)
    for p in range(a, b):
        if goes_left(X[sidx[p] * d + dim], sidx[p], split_val[node], pivot[node]):
            r = sidx[p]
            sidx[p] = sidx[left]
            sidx[left] = r
            left += 1
    srange[2 * (2 * node + 1)] = a
    srange[2 * (2 * node + 1) + 1] = left
    srange[2 * (2 * node + 2)] = left
    srange[2 * (2 * node + 2) + 1] = b


cdef int cut_top_levels(const floating* X, intp_t n, intp_t d, intp_t top_levels,
                        floating* lo, floating* hi, intp_t* node_start, intp_t* node_end,
                        intp_t* split_dim, floating* split_val, intp_t* pivot,
                        int n_threads) noexcept nogil:
    """Cut the top levels (cells, split dimensions, values and pivots) at the medians of
    a strided sample of the rows (all rows when they are few), a level's nodes in
    parallel. 0, or -1 when out of memory."""
    cdef intp_t n_sample = min(n, min(TOP_SAMPLE << top_levels, TOP_SAMPLE_MAX))
    cdef intp_t n_top = (1 << top_levels) - 1, r, l, node, first
    cdef intp_t* sidx = <intp_t*> malloc(n_sample * sizeof(intp_t))
    cdef intp_t* tidx = <intp_t*> malloc(n_sample * sizeof(intp_t))
    cdef double* skey = <double*> malloc(n_sample * sizeof(double))
    cdef double* tie = <double*> malloc(n_sample * sizeof(double))
    cdef intp_t* srange = <intp_t*> malloc((4 * n_top + 4) * sizeof(intp_t))
    cdef int status = 0
    if sidx == NULL or tidx == NULL or skey == NULL or tie == NULL or srange == NULL:
        status = -1
    else:
        for r in range(n_sample):
            sidx[r] = (r * n) // n_sample
        srange[0] = 0          # node i's sample rows: sidx[srange[2i]:srange[2i+1]]
        srange[1] = n_sample
        for l in range(top_levels):
            first = (1 << l) - 1
            for node in prange(first, 2 * first + 1, schedule="dynamic",
                               num_threads=n_threads):
                cut_sampled(node, X, d, lo, hi, node_start, node_end, split_dim, split_val,
                            pivot, sidx, skey, tidx, tie, srange)
    free(sidx)
    free(tidx)
    free(skey)
    free(tie)
    free(srange)
    return status


def build(const floating[:, ::1] X,      # IN  (n, d) data, n >= 1
          intp_t[::1] idx,               # OUT (n,) permutation of range(n)
          intp_t[::1] node_start,        # OUT (n_nodes,)
          intp_t[::1] node_end,          # OUT (n_nodes,)
          floating[:, ::1] node_lo,      # OUT (n_nodes, d) bounding-box minima
          floating[:, ::1] node_hi,      # OUT (n_nodes, d) bounding-box maxima
          intp_t[::1] split_dim,         # OUT (n_nodes,) cut dimension of internal nodes
          floating[::1] split_val,       # OUT (n_nodes,) cut value: left <= cut <= right
          floating[:, ::1] Xt,           # OUT (n, d) the data in tree order: Xt[p] = X[idx[p]],
                                         #     or (0, d): no copy (queries go through idx)
          int n_threads):
    """Fill the tree arrays, in two phases; returns the number of top levels.

    The top levels, whose nodes are too large for the cache, are cut at the medians of a
    strided sample of the rows (ties split by index); then two passes over X, in
    parallel by blocks, count the rows of each top-level subtree and scatter them, stably
    (each subtree's rows in increasing index), to their positions in idx (and Xt). Those
    nodes are balanced to the sample's precision (a few percent). Then each subtree is
    built in one task on a contiguous copy of its rows (in Xt, or a temporary one without
    Xt), at exact medians. Boxes end tight (leaves scanned, parents united). The result
    does not depend on the thread count."""
    cdef intp_t n = X.shape[0], d = X.shape[1], n_nodes = node_start.shape[0]
    cdef intp_t n_levels = 0, top_levels = 0, size, l, j, node, first, p, i, b, pos, t
    cdef intp_t n_blocks, blk, r0, r1, max_rows, n_sub, block, n_blk
    cdef floating* lo = &node_lo[0, 0]
    cdef floating* hi = &node_hi[0, 0]
    cdef intp_t* pivot
    cdef intp_t* counts
    cdef int status = 0
    cdef int* p_status = &status
    cdef bint copy = Xt.shape[0] > 0
    while (1 << n_levels) - 1 < n_nodes:
        n_levels += 1
    # the top phase ends where nodes fit in SUBTREE_BYTES (and gives MIN_SUBTREES
    # subtrees where they are worth a task each)
    max_rows = max(SUBTREE_BYTES // (d * <intp_t> sizeof(floating) + 3 * <intp_t> sizeof(intp_t)),
                   1)
    size = n
    while top_levels < n_levels - 1 and (size > max_rows or (
            (1 << top_levels) < MIN_SUBTREES and size > 4 * SAMPLE_SELECT_MIN)):
        size = (size + 1) // 2
        top_levels += 1
    n_sub = 1 << top_levels
    # the root's cell: the data's bounding box, by blocks in parallel
    n_blocks = (n + 8191) // 8192
    boxes = np.empty((2 * n_blocks, d), dtype=np.asarray(node_lo).dtype)
    cdef floating[:, ::1] bx = boxes
    # the top levels' passes: blocks of at least TOP_BLOCK rows, a few per thread
    block = max(TOP_BLOCK, (n + 4 * n_threads - 1) // (4 * n_threads))
    n_blk = n_blocks_of(n, block) if top_levels > 0 else 0
    pivot = <intp_t*> malloc(n_sub * sizeof(intp_t))
    counts = <intp_t*> malloc((n_blk * n_sub + 1) * sizeof(intp_t))
    if pivot == NULL or counts == NULL:
        free(pivot)
        free(counts)
        raise MemoryError("KD-tree build: out of memory")
    with nogil:
        for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
            r0 = blk * 8192
            r1 = min(n, r0 + 8192)
            tight_box(&X[r0, 0], r1 - r0, d, &bx[2 * blk, 0], &bx[2 * blk + 1, 0])
        for j in range(d):
            lo[j] = bx[0, j]
            hi[j] = bx[1, j]
        for blk in range(1, n_blocks):
            for j in range(d):
                lo[j] = min(lo[j], bx[2 * blk, j])
                hi[j] = max(hi[j], bx[2 * blk + 1, j])
        node_start[0] = 0
        node_end[0] = n
        if top_levels == 0:
            for p in range(n):
                idx[p] = p
            if copy:
                memcpy(&Xt[0, 0], &X[0, 0], n * d * sizeof(floating))
        elif cut_top_levels(&X[0, 0], n, d, top_levels, lo, hi, &node_start[0], &node_end[0],
                            &split_dim[0], &split_val[0], pivot, n_threads) != 0:
            status = -1
        else:
            # phase 1: count each block's rows per subtree, then place them (stable)
            for blk in prange(n_blk, schedule="static", num_threads=n_threads):
                place_block(&X[0, 0], blk * block, block_stop(blk, block, n), d, top_levels,
                            &split_dim[0], &split_val[0], pivot, counts + blk * n_sub, NULL,
                            NULL, n_sub)
            first = n_sub - 1
            pos = 0
            for b in range(n_sub):
                node_start[first + b] = pos
                for blk in range(n_blk):
                    t = counts[blk * n_sub + b]
                    counts[blk * n_sub + b] = pos
                    pos = pos + t
                node_end[first + b] = pos
            for blk in prange(n_blk, schedule="static", num_threads=n_threads):
                place_block(&X[0, 0], blk * block, block_stop(blk, block, n), d, top_levels,
                            &split_dim[0], &split_val[0], pivot, counts + blk * n_sub, &idx[0],
                            &Xt[0, 0] if copy else NULL, n_sub)
            for node in range(first - 1, -1, -1):
                node_start[node] = node_start[2 * node + 1]
                node_end[node] = node_end[2 * node + 2]
    free(pivot)
    free(counts)
    if status != 0:
        raise MemoryError("KD-tree build: out of memory")
    with nogil:
        # phase 2: one task per remaining subtree
        first = n_sub - 1
        for node in prange(first, 2 * first + 1, schedule="dynamic", num_threads=n_threads):
            if build_subtree(&X[0, 0], &Xt[0, 0] if copy else NULL, &idx[0], node,
                             n_levels - 1 - top_levels, d, &node_start[0], &node_end[0], lo,
                             hi, &split_dim[0], &split_val[0]) != 0:
                p_status[0] = -1
        for l in range(top_levels - 1, -1, -1):
            first = (1 << l) - 1
            for node in range(first, 2 * first + 1):
                union_box(node, &node_start[0], &node_end[0], lo, hi, d)
    if status != 0:
        raise MemoryError("KD-tree build: out of memory")
    return top_levels


# ---------------------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------------------
cdef intp_t largest_leaf(const intp_t[::1] node_start, const intp_t[::1] node_end):
    """The most points a leaf holds (at least 1: buffer sizes)."""
    cdef intp_t n_nodes = node_start.shape[0], node, most = 1
    for node in range(n_nodes // 2, n_nodes):
        most = max(most, node_end[node] - node_start[node])
    return most


def leaf_columns(floating[:, ::1] Xt,            # IN/OUT (n, d) rows in tree order, then
                                                 #     each leaf stored by coordinate
                 const intp_t[::1] node_start,   # IN  tree arrays (see build)
                 const intp_t[::1] node_end,
                 int n_threads):
    """Store each leaf's points by coordinate, in place: for the leaf of positions
    [s, s + L), coordinate j of its point p goes to flat position s d + j L + p (the
    layout the queries' leaf scans read several points at a time)."""
    cdef intp_t n_nodes = node_start.shape[0], d = Xt.shape[1], first = n_nodes // 2
    cdef intp_t max_leaf = largest_leaf(node_start, node_end), leaf, s, L, p, j
    cdef floating* base = &Xt[0, 0] if Xt.shape[0] > 0 else NULL
    cdef floating* tmp
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    tmp = NULL
    if base == NULL or d == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        tmp = <floating*> malloc(max_leaf * d * sizeof(floating))
        if tmp == NULL:
            p_failed[0] = 1
        else:
            for leaf in prange(first, n_nodes, schedule="static"):
                s = node_start[leaf]
                L = node_end[leaf] - s
                memcpy(tmp, base + s * d, L * d * sizeof(floating))
                for p in range(L):
                    for j in range(d):
                        base[s * d + j * L + p] = tmp[p * d + j]
        free(tmp)
    if failed:
        raise MemoryError("KD-tree leaf layout: out of memory")


cdef inline intp_t push_children(const floating* q, const floating* lo, const floating* hi,
                                 intp_t d, intp_t c1, intp_t* stack_node, double* stack_rd,
                                 intp_t top) noexcept nogil:
    """Push both children of a node with their box distances, the nearer one last (so it
    is visited first); returns the new stack top."""
    cdef intp_t c2 = c1 + 1
    cdef double r1 = box_rdist(q, lo + c1 * d, hi + c1 * d, d)
    cdef double r2 = box_rdist(q, lo + c2 * d, hi + c2 * d, d)
    if r1 <= r2:
        stack_node[top] = c2
        stack_rd[top] = r2
        stack_node[top + 1] = c1
        stack_rd[top + 1] = r1
    else:
        stack_node[top] = c1
        stack_rd[top] = r1
        stack_node[top + 1] = c2
        stack_rd[top + 1] = r2
    return top + 2


cdef struct Search:
    # one k-NN search: the read-only tree arrays and the query's state, bundled so the
    # recursion passes one pointer (the coordinates' pointers are cast back to the fused
    # type where read: structs cannot hold fused types)
    intp_t d
    intp_t n_nodes
    const intp_t* idx
    const intp_t* node_start
    const intp_t* node_end
    const intp_t* split_dim
    bint indirect           # the data in its own order: point idx[p] is at row idx[p]
    const void* Xt          # rows in tree order (leaves by column), or the data
    const void* lo          # (n_nodes, d) tight boxes
    const void* hi
    const void* split_val
    const void* q           # the query point
    intp_t skip             # index never returned, or -1
    intp_t k
    double* hd              # the heap of the k best (distance, index) pairs
    intp_t* hind
    double* off             # q's offset from the current cell, per dimension
    double* buf             # a leaf's distances
    intp_t* pos             # positions in the leaf of the distances in buf
    intp_t budget           # points left to scan before giving up


cdef inline intp_t leaf_distances(const floating* Xt, const intp_t* idx, intp_t start,
                                  intp_t stop, const floating* q, intp_t d, bint indirect,
                                  double* buf) noexcept nogil:
    """The squared distances from q to the points of positions [start, stop) into buf
    (a leaf by its columns in the tree-ordered rows Xt, or rows of the data Xt through
    idx); returns their count."""
    cdef intp_t p
    if not indirect:
        leaf_rdist(Xt + start * d, stop - start, d, q, buf)
    else:
        for p in range(start, stop):
            buf[p - start] = rdist(q, Xt + idx[p] * d, d)
    return stop - start


cdef inline intp_t leaf_within(const floating* Xt, const intp_t* idx, intp_t s, intp_t L,
                              const floating* q, intp_t d, bint indirect, double thr,
                              double* buf, intp_t* pos) noexcept nogil:
    """The points of the leaf at positions [s, s + L) within ``thr`` (squared) of q:
    their distances into buf and their positions in the leaf into pos (see
    leaf_distances for the two layouts); returns how many."""
    cdef intp_t p, n = 0
    cdef double v
    if not indirect:
        return leaf_rdist_below(Xt + s * d, L, d, q, thr, buf, pos)
    for p in range(L):
        v = rdist(q, Xt + idx[s + p] * d, d)
        if v <= thr:
            buf[n] = v
            pos[n] = p
            n += 1
    return n


cdef void knn_visit(Search* c, intp_t node, double rd, floating tag) noexcept nogil:
    """Depth-first search below ``node``, whose cell lies ``rd`` (squared) from q. The
    far child's cell distance is updated in O(1) from the cut (Arya and Mount's
    incremental distance; ``off`` holds q's offset from the current cell per dimension);
    a leaf is checked against its tight box before its points' distances are computed
    (into ``buf``, all at once). The search gives up once ``budget`` (points left to
    scan) falls below zero. ``tag`` only selects the coordinates' type."""
    cdef intp_t d = c.d, c1 = 2 * node + 1, near, far, dim, p, j, s, L, n_near
    cdef double old, new, rd_far, worst
    cdef const floating* q = <const floating*> c.q
    cdef double* hd = c.hd
    if c.budget < 0:
        return
    if c1 >= c.n_nodes:
        if box_rdist(q, <const floating*> c.lo + node * d, <const floating*> c.hi + node * d,
                     d) > hd[0]:
            return
        s = c.node_start[node]
        L = c.node_end[node] - s
        c.budget -= L
        worst = hd[0]
        n_near = leaf_within(<const floating*> c.Xt, c.idx, s, L, q, d, c.indirect, worst,
                             c.buf, c.pos)
        for p in range(n_near):     # only the points within the k-th distance
            if c.buf[p] <= worst:
                j = c.idx[s + c.pos[p]]
                if j != c.skip:
                    heap_push(hd, c.hind, c.k, c.buf[p], j)
                    worst = hd[0]
        return
    dim = c.split_dim[node]
    new = <double>q[dim] - <double>(<const floating*> c.split_val)[node]
    near = c1 + (new > 0)     # without a branch: either side is as likely
    far = 2 * c1 + 1 - near
    knn_visit(c, near, rd, tag)
    old = c.off[dim]
    rd_far = rd - old * old + new * new
    if rd_far <= hd[0]:
        c.off[dim] = new
        knn_visit(c, far, rd_far, tag)
        c.off[dim] = old


cdef bint knn_one(Search* c, const floating* q) noexcept nogil:
    """The k nearest of q into (c.hd, c.hind), sorted; False if the search scanned more
    than the budget and gave up (the heap is then incomplete)."""
    cdef intp_t j
    cdef double rd = 0.0
    cdef const floating* lo = <const floating*> c.lo
    cdef const floating* hi = <const floating*> c.hi
    c.q = q
    heap_init(c.hd, c.hind, c.k)
    for j in range(c.d):  # offsets from the root's box
        c.off[j] = pos(<double>lo[j] - <double>q[j]) - pos(<double>q[j] - <double>hi[j])
        rd = rd + c.off[j] * c.off[j]
    knn_visit(c, 0, rd, q[0])
    heap_sort(c.hd, c.hind, c.k)
    return c.budget >= 0


def query_knn(const floating[:, ::1] Xt,         # IN  (n, d) data in tree order: row p
                                                 #     is point idx[p] (leaves contiguous),
                                                 #     or the data itself (indirect)
              const intp_t[::1] idx,             # IN  tree arrays (see build)
              const intp_t[::1] node_start,
              const intp_t[::1] node_end,
              const floating[:, ::1] node_lo,
              const floating[:, ::1] node_hi,
              const intp_t[::1] split_dim,
              const floating[::1] split_val,
              const floating[:, ::1] Q,          # IN  (m, d) query points
              const intp_t[::1] order,           # IN  (m,) the order to answer them in
              const intp_t[::1] skip,            # IN  (m,) index never returned for q, or -1
              double[:, ::1] out_dist,           # OUT (m, k) distances (not squared)
              intp_t[:, ::1] out_ind,            # OUT (m, k) indices, by (distance, index)
              bint squared,                      # IN  return squared distances
              intp_t max_visits,                 # IN  give up after scanning this many
                                                 #     points (-1: never)
              unsigned char[::1] unfinished,     # OUT (m,) 1 where it gave up, or (0,)
              bint indirect,                     # IN  Xt is the data itself
              int n_threads):
    """Exact k nearest neighbours of every row of Q (k = out_ind.shape[1]), except for
    the queries flagged ``unfinished`` when a visit budget is set."""
    cdef intp_t m = Q.shape[0], d = Q.shape[1], k = out_ind.shape[1]
    cdef intp_t t, qi, j, budget = max_visits if max_visits >= 0 else FASTIMB_INTP_MAX
    cdef bint done
    cdef Search tree
    cdef Search search
    cdef double* hd
    cdef intp_t* hind
    cdef double* off
    cdef double* buf
    cdef intp_t* pos
    cdef intp_t max_leaf = largest_leaf(node_start, node_end)
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    hd = NULL
    hind = NULL
    off = NULL
    buf = NULL
    pos = NULL
    if m == 0 or k == 0:
        return
    tree.d = d
    tree.n_nodes = node_start.shape[0]
    tree.idx = &idx[0]
    tree.node_start = &node_start[0]
    tree.node_end = &node_end[0]
    tree.split_dim = &split_dim[0]
    tree.indirect = indirect
    tree.Xt = &Xt[0, 0]
    tree.lo = &node_lo[0, 0]
    tree.hi = &node_hi[0, 0]
    tree.split_val = &split_val[0]
    tree.k = k
    with nogil, parallel(num_threads=n_threads):
        hd = <double*> malloc(k * sizeof(double))
        hind = <intp_t*> malloc(k * sizeof(intp_t))
        off = <double*> malloc(d * sizeof(double))
        buf = <double*> malloc(max_leaf * sizeof(double))
        pos = <intp_t*> malloc(max_leaf * sizeof(intp_t))
        search = tree
        search.hd = hd
        search.hind = hind
        search.off = off
        search.buf = buf
        search.pos = pos
        if hd == NULL or hind == NULL or off == NULL or buf == NULL or pos == NULL:
            p_failed[0] = 1
        else:
            for t in prange(m, schedule="dynamic", chunksize=64):
                qi = order[t]
                search.skip = skip[qi]
                search.budget = budget
                done = knn_one(&search, &Q[qi, 0])
                if not done:
                    unfinished[qi] = 1
                for j in range(k):
                    out_dist[qi, j] = hd[j] if squared else sqrt(hd[j])
                    out_ind[qi, j] = hind[j]
        free(hd)
        free(hind)
        free(off)
        free(buf)
        free(pos)
    if failed:
        raise MemoryError("k-NN query: out of memory for per-thread buffers")


def leaf_order(const floating[:, ::1] Q,       # IN  (m, d) query points
               const intp_t[::1] split_dim,      # IN  tree arrays (see build)
               const floating[::1] split_val,
               intp_t[::1] out_leaf,             # OUT (m,) the leaf each query falls in
               intp_t[::1] out_order,            # OUT (m,) the queries sorted by leaf
               int n_threads):
    """The leaf each query descends to (the near child at every cut), and the queries in
    leaf order (counting sort, stable). Answering queries in that order makes consecutive
    queries read the same leaves: far fewer cache misses than the data's order."""
    cdef intp_t m = Q.shape[0], n_nodes = split_dim.shape[0], qi, node, i
    cdef intp_t first_leaf = n_nodes // 2, n_leaves = n_nodes - n_nodes // 2, total = 0, c
    cdef intp_t[::1] start = np.zeros(n_leaves + 1, dtype=np.intp)
    for qi in prange(m, nogil=True, num_threads=n_threads, schedule="static"):
        node = 0
        while 2 * node + 1 < n_nodes:
            if <double> Q[qi, split_dim[node]] - <double> split_val[node] <= 0:
                node = 2 * node + 1
            else:
                node = 2 * node + 2
        out_leaf[qi] = node
    with nogil:
        for qi in range(m):
            start[out_leaf[qi] - first_leaf] += 1
        for i in range(n_leaves):
            c = start[i]
            start[i] = total
            total = total + c
        for qi in range(m):
            i = out_leaf[qi] - first_leaf
            out_order[start[i]] = qi
            start[i] += 1


cdef intp_t count_one(const floating* Xt, intp_t d, const intp_t* idx,
                      const intp_t* node_start, const intp_t* node_end, const floating* lo,
                      const floating* hi, intp_t n_nodes, const floating* q, intp_t skip,
                      double r2,
                      intp_t max_count, intp_t budget, intp_t leaf, intp_t* stack_node,
                      double* stack_rd, double* buf, bint indirect) noexcept nogil:
    """Points strictly within r2 of q, nearer cells first, stopping at max_count; -1 if
    that needs scanning more than ``budget`` points. The leaf q falls in (``leaf``, or
    -1) is scanned first: when it alone reaches max_count, no descent is needed."""
    cdef intp_t top = 1, node, c1, p, s, L, count = 0
    if leaf >= 0:
        s = node_start[leaf]
        L = leaf_distances(Xt, idx, s, node_end[leaf], q, d, indirect, buf)
        for p in range(L):
            if buf[p] < r2 and idx[s + p] != skip:
                count += 1
                if count >= max_count:
                    return count
        count = 0  # not enough there: count everything from the root
    stack_node[0] = 0
    stack_rd[0] = box_rdist(q, lo, hi, d)
    while top > 0:
        top -= 1
        node = stack_node[top]
        if stack_rd[top] >= r2:
            continue
        c1 = 2 * node + 1
        if c1 >= n_nodes:
            budget -= node_end[node] - node_start[node]
            if budget < 0:
                return -1
            s = node_start[node]
            L = leaf_distances(Xt, idx, s, node_end[node], q, d, indirect, buf)
            for p in range(L):
                if buf[p] < r2 and idx[s + p] != skip:
                    count += 1
                    if count >= max_count:
                        return count
            continue
        top = push_children(q, lo, hi, d, c1, stack_node, stack_rd, top)
    return count


def count_within(const floating[:, ::1] Xt,       # IN  (n, d) data in tree order, or the
                                                  #     data itself (indirect)
                 const intp_t[::1] idx,           # IN  tree arrays (see build)
                 const intp_t[::1] node_start,
                 const intp_t[::1] node_end,
                 const floating[:, ::1] node_lo,
                 const floating[:, ::1] node_hi,
                 const floating[:, ::1] Q,        # IN  (m, d) query points
                 const intp_t[::1] order,         # IN  (m,) the order to answer them in
                 const intp_t[::1] leaf,          # IN  (m,) the leaf each falls in, or (0,)
                 const double[::1] radius2,       # IN  (m,) squared radius, strict
                 const intp_t[::1] skip,          # IN  (m,) index not counted, or -1
                 intp_t max_count,                # IN  stop counting at this many
                 intp_t max_visits,               # IN  give up after scanning this many
                                                  #     points (-1: never)
                 intp_t[::1] out_count,           # OUT (m,) the count, -1 where it gave up
                 bint indirect,                   # IN  Xt is the data itself
                 int n_threads):
    """Per query, how many points lie strictly within ``sqrt(radius2)`` (capped)."""
    cdef intp_t m = Q.shape[0], n_nodes = node_start.shape[0], t, qi, depth = 2 * 64 + 4
    cdef intp_t budget = max_visits if max_visits >= 0 else FASTIMB_INTP_MAX
    cdef bint has_leaf = leaf.shape[0] == m
    cdef intp_t* stack_node
    cdef double* stack_rd
    cdef double* buf
    cdef intp_t max_leaf = largest_leaf(node_start, node_end)
    cdef int failed = 0
    cdef int* p_failed = &failed  # written through a pointer: shared by the threads
    stack_node = NULL
    stack_rd = NULL
    buf = NULL
    if m == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        stack_node = <intp_t*> malloc(depth * sizeof(intp_t))
        stack_rd = <double*> malloc(depth * sizeof(double))
        buf = <double*> malloc(max_leaf * sizeof(double))
        if stack_node == NULL or stack_rd == NULL or buf == NULL:
            p_failed[0] = 1
        else:
            for t in prange(m, schedule="dynamic", chunksize=64):
                qi = order[t]
                out_count[qi] = count_one(&Xt[0, 0], Q.shape[1], &idx[0], &node_start[0],
                                          &node_end[0], &node_lo[0, 0], &node_hi[0, 0],
                                          n_nodes,
                                          &Q[qi, 0], skip[qi], radius2[qi], max_count,
                                          budget, leaf[qi] if has_leaf else -1,
                                          stack_node, stack_rd, buf, indirect)
        free(stack_node)
        free(stack_rd)
        free(buf)
    if failed:
        raise MemoryError("radius count: out of memory for per-thread buffers")
