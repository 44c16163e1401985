"""The one k-nearest-neighbour front of fastimb.

Every sampler gets its neighbours here. :class:`NearestNeighbors` behaves as
scikit-learn's for what samplers use (``fit``, ``kneighbors``, ``kneighbors_graph``) and
can also be handed to imbalanced-learn samplers. Two exact engines sit behind it:

* a KD-tree (``fastimb._kernels._kdtree``) for low dimensions: median splits; the top
  levels cut at the medians of a strided sample and the rows placed under them by two
  parallel passes (count, then a stable scatter), then one task per subtree on its rows
  copied in tree order (a leaf's points contiguous), split at exact medians by
  branch-free partitions around sampled pivots,
  depth-first queries with incremental cell distances (Arya-Mount) and a tight-box check
  per leaf, parallel over query points taken in leaf order (neighbouring queries read the
  same leaves), optionally with a budget of points scanned per query;
* blocked brute force (``fastimb._kernels._brute``) for higher dimensions: the rows
  centred, rotated onto their principal axes and stored in a KD-tree's order, in chunks
  with bounding boxes; float32 ``||x||^2 / 2 - q.x`` with a per-query error bound,
  compared with the running k-th candidate distance in a fused AVX-512 / AVX2 scan
  (products and test in registers; from 8 features, with AVX512_VNNI, an exact-bounded
  8-bit screen first; BLAS sgemm plus a filter pass on other CPUs), exact re-ranking of
  the candidates in double, parallel over blocks of nearby queries, which visit the
  chunks nearest them first and skip those whose box lies beyond their k-th candidate
  (distances are unchanged by the rotation; the error bound keeps every skip exact).
  When a probe of the queries shows
  neighbours far closer than the data's spread (duplicates, queries taken from the data,
  clustered or resampled data), the queries go to a KD-tree first, each with a budget,
  and only those that exhaust it are scanned. The rows of the index as their own
  queries (the samplers' within-class call) take a symmetric self-join instead of the
  scan: tiles of two blocks of rows, each product serving both rows' candidates, so each
  pair is computed once.

``algorithm="auto"`` takes the KD-tree up to ``AUTO_KD_TREE_MAX_FEATURES`` features when
the index holds at least ``AUTO_KD_TREE_MIN_SAMPLES`` rows, and up to
``AUTO_KD_TREE_SMALL_MAX_FEATURES`` features below that: brute force is linear in the
number of rows, the tree's search nearly logarithmic, so the tree pays off at higher
dimension on larger data. Measured on make_classification data (1M rows, 5 informative
features, the rest Gaussian noise, 2% minority; 2 cores, AVX-512 scan with the 8-bit
screen; fit + query of the 20k minority points, seconds):

====  =====================  =====================
d     k=6 within minority    k=10 against all rows
      (20k rows) tree/brute  (1M rows) tree/brute
====  =====================  =====================
6     0.051 / 0.120          0.27 / 1.99
8     0.152 / 0.165          0.71 / 2.84
10    0.293 / 0.152          1.76 / 2.91
12    0.570 / 0.161          6.82 / 2.93
====  =====================  =====================

Distances are exact squared Euclidean sums in double (one formula in every kernel), and
results never depend on the number of threads. **Tie rule**: neighbours at equal
distance are ordered by increasing index. ``kneighbors(X=None)`` excludes each point
itself *by index*, so a duplicate of a point is still its neighbour (at distance 0).
"""
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, StrOptions
from threadpoolctl import ThreadpoolController

from fastimb._kernels import _brute, _kdtree
from fastimb._kernels._openmp_helpers import effective_n_threads
from fastimb._validation import check_float_X

__all__ = ["NearestNeighbors", "check_neighbors_object", "count_closer"]

AUTO_KD_TREE_MAX_FEATURES = 11
AUTO_KD_TREE_SMALL_MAX_FEATURES = 7
AUTO_KD_TREE_MIN_SAMPLES = 100_000
DEFAULT_LEAF_SIZE = 32
# brute force: 2 = fused AVX-512 scan, 1 = fused AVX2 scan, 0 = BLAS gemm + filter
_SCAN_LEVEL = _brute.scan_level()
_BLAS_CONTROLLER = []


def _by_blocks(func, n, block, n_threads):
    """``[func(a, b) for each block [a, b) of range(n)]``, the blocks shared among up to
    ``n_threads`` threads (``func`` runs NumPy / BLAS calls that release the GIL; with
    BLAS on one thread each, see _one_blas_thread)."""
    starts = range(0, n, block)
    if n_threads <= 1 or len(starts) <= 1:
        return [func(a, min(n, a + block)) for a in starts]
    with ThreadPoolExecutor(min(int(n_threads), len(starts))) as pool:
        return list(pool.map(lambda a: func(a, min(n, a + block)), starts))


def _one_blas_thread():
    """A context in which BLAS runs on one thread: the kernels parallelise over queries
    themselves, and BLAS threads left spinning after a call would take their cores. The
    controller is made once (``threadpool_limits`` rescans the loaded libraries at every
    call: milliseconds)."""
    if not _BLAS_CONTROLLER:
        _BLAS_CONTROLLER.append(ThreadpoolController())
    return _BLAS_CONTROLLER[0].limit(limits=1, user_api="blas")


class _KDTreeIndex:
    """A KD-tree over the rows of X, stored as flat arrays. With ``copy_rows`` (the
    default) the rows are kept in tree order, a leaf's points contiguous and, with
    ``leaf_columns`` (the default), stored by coordinate (``_kdtree.leaf_columns``: the
    layout the queries read); without, the queries read X through the permutation
    (cheaper to build: for queries that visit few leaves)."""

    kind = "kd_tree"
    ORDER_MIN_QUERIES = 1024  # fewer queries are answered in their own order

    def __init__(self, X, leaf_size, n_threads, copy_rows=True, leaf_columns=True):
        n, d = X.shape
        n_levels = 1
        while (n >> (n_levels - 1)) > leaf_size:
            n_levels += 1
        n_nodes = 2 ** n_levels - 1
        self.X = X
        self.idx = np.empty(n, dtype=np.intp)
        self.node_start = np.zeros(n_nodes, dtype=np.intp)
        self.node_end = np.zeros(n_nodes, dtype=np.intp)
        self.node_lo = np.zeros((n_nodes, d), dtype=X.dtype)
        self.node_hi = np.zeros((n_nodes, d), dtype=X.dtype)
        self.split_dim = np.zeros(n_nodes, dtype=np.intp)
        self.split_val = np.zeros(n_nodes, dtype=X.dtype)
        Xt = np.empty_like(X) if copy_rows else np.empty((0, d), dtype=X.dtype)
        # the levels cut on a sample of the rows (see _kdtree.build)
        self.top_levels = _kdtree.build(X, self.idx, self.node_start, self.node_end,
                                        self.node_lo, self.node_hi, self.split_dim,
                                        self.split_val, Xt, n_threads)
        self.indirect = not copy_rows
        if copy_rows and leaf_columns:   # the queries sum 4 points at a time
            _kdtree.leaf_columns(Xt, self.node_start, self.node_end, n_threads)
        self.Xt = X if self.indirect else Xt

    def _order(self, Q, n_threads):
        """(leaf, order): the leaf each query falls in and the queries sorted by it (see
        ``_kdtree.leaf_order``); empty leaves and the identity for few queries."""
        m = Q.shape[0]
        if m < self.ORDER_MIN_QUERIES:
            return np.empty(0, dtype=np.intp), np.arange(m, dtype=np.intp)
        leaf = np.empty(m, dtype=np.intp)
        order = np.empty(m, dtype=np.intp)
        _kdtree.leaf_order(Q, self.split_dim, self.split_val, leaf, order, n_threads)
        return leaf, order

    def knn(self, Q, k, skip, squared, n_threads, max_visits=-1):
        """(dist, ind); with ``max_visits >= 0`` also the mask of the queries given up on
        after scanning that many points (their rows of dist/ind are then incomplete)."""
        dist = np.empty((Q.shape[0], k), dtype=np.float64)
        ind = np.empty((Q.shape[0], k), dtype=np.intp)
        unfinished = np.zeros(Q.shape[0] if max_visits >= 0 else 0, dtype=np.uint8)
        _kdtree.query_knn(self.Xt, self.idx, self.node_start, self.node_end, self.node_lo,
                          self.node_hi, self.split_dim, self.split_val, Q,
                          self._order(Q, n_threads)[1], skip, dist, ind, squared,
                          max_visits, unfinished, self.indirect, n_threads)
        return (dist, ind) if max_visits < 0 else (dist, ind, unfinished.view(bool))

    def self_knn(self, k, squared, n_threads):
        """``knn`` of the indexed rows themselves."""
        return self.knn(self.X, k, _skip_array(self.X.shape[0]), squared, n_threads)

    def count(self, Q, radius2, skip, max_count, n_threads, max_visits=-1):
        """Capped counts; -1 for the queries given up on when ``max_visits >= 0``."""
        out = np.empty(Q.shape[0], dtype=np.intp)
        leaf, order = self._order(Q, n_threads)
        _kdtree.count_within(self.Xt, self.idx, self.node_start, self.node_end, self.node_lo,
                             self.node_hi, Q, order, leaf, radius2, skip, max_count,
                             max_visits, out, self.indirect, n_threads)
        return out


class _BruteIndex:
    """Blocked brute force. The comparisons run in float32 with an error bound checked per
    query; the few queries the bound cannot clear (near-ties at the k-th neighbour) are
    answered by an exact KD-tree search, built on first need.

    The rows are centred and rotated onto their principal axes (distances unchanged, the
    variance in the leading coordinates), put in a KD-tree's order and cut into chunks
    with bounding boxes, so a block of nearby queries can skip the chunks beyond its
    neighbours (see ``_kernels/_brute.pyx``). They are kept in the layout of the
    comparison the CPU runs (``_SCAN_LEVEL``): 16-row panels for the fused AVX-512 / AVX2
    scan, plain rows for the BLAS gemm path.
    """

    kind = "brute"
    UNIT_ROUNDOFF_32 = 2.0 ** -24
    PANEL = 16
    ORDER_LEAF_SIZE = 64          # leaves of the tree that orders the rows and queries
    AXES_SAMPLE = 1 << 16         # rows (strided) the principal axes are estimated from
    ROTATE_BLOCK = 1 << 13        # rows centred or rotated per call (their temporaries
                                  # stay in the cache), the blocks shared among threads
    # Near neighbours even in high dimension (duplicates, queries that are rows of the
    # data, clustered or resampled data): a KD-tree finds them after a few leaves. For
    # at least TREE_MIN_QUERIES queries, TREE_PROBE of them are answered by the scan
    # first; when their median squared radius is under TREE_RADIUS_SHARE of the mean
    # squared distance between two rows, all queries go to the tree, each giving up
    # after scanning n / TREE_BUDGET_DIVISOR points (those are then scanned).
    TREE_MIN_QUERIES = 2048
    TREE_PROBE = 64
    TREE_RADIUS_SHARE = 0.01
    TREE_BUDGET_DIVISOR = 32
    # The symmetric self-join (each pair of rows computed once) keeps kc candidates per
    # row and thread: used up to this many rows, on as many threads as keep those heaps
    # within SELF_JOIN_HEAP_BYTES
    SELF_JOIN_MAX_ROWS = 1 << 18
    SELF_JOIN_HEAP_BYTES = 1 << 28
    # candidates kept per query beyond k for the exact re-ranking (scan and join): the
    # float32 bound then clears a query unless its k-th and (k + EXTRA)-th distances lie
    # within the error bound of each other
    EXTRA_CANDIDATES = 4
    # The 8-bit screen (scan level 3) runs from INT8_MIN_FEATURES features (below, the
    # products are too few for the cheaper multiply-adds to outweigh re-checking the
    # panels that pass) up to INT8_MAX_FEATURES (its 32-bit integer sums cannot
    # overflow), for norms below INT8_MAX_NORM (the float32 t it is checked against stays
    # finite) and for INT8_MIN_QUERIES queries at least (fewer do not pay for quantising
    # the rows). Steps are clipped at INT8_CLIP_RMS times a feature's rms.
    INT8_MIN_FEATURES = 8
    INT8_MAX_FEATURES = 4096
    INT8_MAX_NORM = 1e15
    INT8_MIN_QUERIES = 1024
    INT8_CLIP_RMS = 4.0
    # The 16-bit screen (AVX2 vpmaddwd: twice float32's multiply-adds per instruction),
    # of the self-join and, on CPUs without the 8-bit one, of the scan (for
    # INT8_MIN_QUERIES queries at least), from SCREEN16_MIN_FEATURES features (below, its
    # per-pair tests cost about what it saves), for norms below INT8_MAX_NORM. Its integer
    # sums cannot overflow: |xq| and |qq| are at most SCREEN16_SUM_MAX / (2 ceil(d/2)),
    # square-rooted
    SCREEN16_MIN_FEATURES = 8
    SCREEN16_SUM_MAX = 2 ** 31 - 1

    def __init__(self, X, leaf_size, n_threads):
        n, d = X.shape
        self.X = X
        self.level = _SCAN_LEVEL if (
            _SCAN_LEVEL < 3 or self.INT8_MIN_FEATURES <= d <= self.INT8_MAX_FEATURES) else 2
        self.n_threads = n_threads
        with _one_blas_thread():
            self.mean, self.axes = self._centre_and_axes(X)
            Z = self._rotate(X)
        # the scan order: a KD-tree's (of the rotated rows), whose cuts also order
        # queries; its build writes the rows in that order (the panels are then made from
        # consecutive rows: gathering them through the permutation misses the caches)
        tree = _KDTreeIndex(Z, self.ORDER_LEAF_SIZE, n_threads, leaf_columns=False)
        self.perm, self.split_dim, self.split_val = tree.idx, tree.split_dim, tree.split_val
        del Z
        Z = tree.Xt
        del tree
        n_panels = -(-n // self.PANEL)
        n_chunks = -(-n // _brute.chunk_rows())
        self.XA = np.empty((n if self.level == 0 else 0, d), dtype=np.float32)
        self.P = np.empty((n_panels if self.level > 0 else 0, d, self.PANEL),
                          dtype=np.float32)
        self.xh = np.empty(n_panels * self.PANEL, dtype=np.float32)
        self.norms = np.empty(n, dtype=np.float64)
        self.lo = np.empty((n_chunks, d), dtype=np.float32)
        self.hi = np.empty((n_chunks, d), dtype=np.float32)
        _brute.make_rows(Z, self.XA, self.P, self.xh, self.norms, self.lo, self.hi, n_threads)
        del Z
        self.max_norm = float(np.sqrt(self.norms.max())) if n else 0.0
        # the 8-bit screen's copy (U, R, steps), made on the first scan worth it
        self._no_screen = (np.empty((0, (d + 3) // 4, self.PANEL), dtype=np.uint32),
                           np.empty((0, 2), dtype=np.float32), np.empty(0))
        self._screen_rows = None
        self._screen16_rows = None
        # the mean squared distance between two rows is twice the total variance
        self.mean_pair_rdist = 2.0 * float(self.norms.mean()) if n else 0.0
        self._tree = None

    def _centre_and_axes(self, X):
        """``(mean, axes)``: the mean of (a strided sample of) the rows and the
        eigenvectors of their covariance, as columns, by decreasing variance. Any centre
        and any orthonormal basis keep the scan exact; these put the rows near the origin
        (small float32 errors) and the spread in the leading coordinates, which the row
        order's tree cuts first, so the chunks' boxes are narrow where the data are
        wide."""
        step = max(1, X.shape[0] // self.AXES_SAMPLE)
        S = np.asarray(X[::step], dtype=np.float64)
        mean = S.mean(axis=0) if S.shape[0] else np.zeros(X.shape[1])
        S = S - mean
        axes = np.linalg.eigh(S.T @ S / max(1, S.shape[0]))[1]
        return mean, np.ascontiguousarray(axes[:, ::-1])

    def _rotate(self, A):
        """A, centred and rotated onto the principal axes, as float32 (computed in double,
        rounded once), blocks of rows on the index's threads (BLAS on one each)."""
        out = np.empty(A.shape, dtype=np.float32)

        def rotate(a, b):
            out[a:b] = (np.asarray(A[a:b], dtype=np.float64) - self.mean) @ self.axes

        _by_blocks(rotate, A.shape[0], self.ROTATE_BLOCK, self.n_threads)
        return out

    def _screen(self, n_threads):
        """``(U, R, steps)``: the rows quantised for the 8-bit screen (made once, and
        published as one tuple, so concurrent queries see all of it or none): coordinate j
        in steps of a_j = min(max|x_j|, INT8_CLIP_RMS * rms_j) / 127; rows beyond the clip
        are still bounded exactly (through their residual norms), only less tightly."""
        if self._screen_rows is None:
            n, n_panels = self.X.shape[0], self.P.shape[0]
            absmax, sumsq = _brute.panel_moments(self.P, n_threads)
            steps = np.minimum(absmax, self.INT8_CLIP_RMS * np.sqrt(sumsq / n)) / 127.0
            U = np.empty((n_panels,) + self._no_screen[0].shape[1:], dtype=np.uint32)
            R = np.empty((n_panels,) + self._no_screen[1].shape[1:], dtype=np.float32)
            _brute.quantize_rows(self.P, steps, U, R, n_threads)
            self._screen_rows = (U, R, steps)
        return self._screen_rows

    def _screen16_pays(self):
        return self.X.shape[1] >= self.SCREEN16_MIN_FEATURES and \
            self.max_norm < self.INT8_MAX_NORM

    def _screen16(self, n_threads, as_queries=True):
        """``(U, Q, R, per_row, steps, q_max)``: the 16-bit screen of the rows (see
        ``_brute.quantize16``), steps a_j = max|x_j| / q_max, with (``as_queries``) each
        row quantised as a query too (the self-join's); empty arrays where it does not
        pay or its float32 tests could overflow."""
        n, d = self.X.shape
        n_panels, d2 = self.P.shape[0], (d + 1) // 2
        n_q = n if as_queries else 0
        if not self._screen16_pays():
            return (np.empty((0, d2, self.PANEL), dtype=np.uint32),
                    np.empty((0, d2), dtype=np.uint32), np.empty((0, 2), dtype=np.float32),
                    np.empty((5, 0), dtype=np.float32), np.empty(0), 0.0)
        q_max = float(min(32767, int(np.sqrt(self.SCREEN16_SUM_MAX / (2 * d2)))))
        absmax = _brute.panel_moments(self.P, n_threads)[0]
        steps = absmax / q_max
        U = np.empty((n_panels, d2, self.PANEL), dtype=np.uint32)
        Q = np.empty((n_q, d2), dtype=np.uint32)
        R = np.empty((n_panels, 2), dtype=np.float32)
        per_row = np.zeros((5, n_q + 8), dtype=np.float32)
        _brute.quantize16(self.P, self.xh, steps, q_max, self.max_norm, U, Q, R, per_row,
                          n_threads)
        return U, Q, R, per_row, steps, q_max

    def _scan_screen16(self, n_threads):
        """``(U, R, steps, q_max)``: the rows' 16-bit screen for the scan (made once and
        published as one tuple, as ``_screen``)."""
        if self._screen16_rows is None:
            U, _, R, _, steps, q_max = self._screen16(n_threads, as_queries=False)
            self._screen16_rows = (U, R, steps, q_max)
        return self._screen16_rows

    def _tree_index(self, n_threads):
        """A KD-tree over the rows, built on first need: for near neighbours (few leaves
        per query) and the rare queries the float32 bound leaves unsure; without a copy
        of the rows in tree order."""
        if self._tree is None:
            self._tree = _KDTreeIndex(self.X, DEFAULT_LEAF_SIZE, n_threads, copy_rows=False)
        return self._tree

    def _tree_first(self, m, probe_radius2):
        """Whether to send the queries to the KD-tree first (see TREE_RADIUS_SHARE);
        ``probe_radius2(rows)`` gives the squared radii of the probed queries."""
        if m < self.TREE_MIN_QUERIES:
            return False
        probe = np.linspace(0, m - 1, self.TREE_PROBE).astype(np.intp)
        return float(np.median(probe_radius2(probe))) <= \
            self.TREE_RADIUS_SHARE * self.mean_pair_rdist

    def _tree_budget(self):
        return max(4 * DEFAULT_LEAF_SIZE, self.X.shape[0] // self.TREE_BUDGET_DIVISOR)

    def _slack(self, q_len, d):
        """The error bound on the approximate squared distances of queries of norms
        q_len: |approx - exact| <= (d + 8) u (|q| + max|x|)^2 (float32 rounding of both
        points and of the half norms, then of the d-term dot product); the bound used is
        8 times wider."""
        return (2 * d + 8) * self.UNIT_ROUNDOFF_32 * 4.0 * (q_len + self.max_norm) ** 2

    def _queries(self, Q, n_threads):
        """What the kernels take besides Q: the queries rotated as the rows (float32),
        their squared norms, the order they are answered in (by the leaf of the row
        order's tree: nearby queries form the blocks), their error bounds, the scan level
        and the rows' arrays."""
        QA = self._rotate(Q)
        q_norms = np.einsum("ij,ij->i", QA, QA, dtype=np.float64)
        m = Q.shape[0]
        leaf, order = np.empty(m, dtype=np.intp), np.empty(m, dtype=np.intp)
        _kdtree.leaf_order(QA, self.split_dim, self.split_val, leaf, order, n_threads)
        q_len, x_len, d = np.sqrt(q_norms), self.max_norm, Q.shape[1]
        slack = self._slack(q_len, d)
        level = self.level
        screened = m >= self.INT8_MIN_QUERIES and \
            max(x_len, float(q_len.max(initial=0.0))) < self.INT8_MAX_NORM
        if level == 3 and not screened:
            level = 2
        if level == 3:
            U, R, steps = self._screen(n_threads)
            q_max = 127.0
        elif level == 1 and screened and self._screen16_pays():
            U, R, steps, q_max = self._scan_screen16(n_threads)
        else:
            (U, R, steps), q_max = self._no_screen, 0.0
        rows = (self.XA, self.P, U, R, steps, self.xh, self.perm, self.lo, self.hi,
                self.max_norm, q_max)
        return (QA, q_norms, order), slack, level, rows

    def count(self, Q, radius2, skip, max_count, n_threads):
        if self._tree_first(Q.shape[0], lambda rows: radius2[rows]):
            out = self._tree_index(n_threads).count(Q, radius2, skip, max_count, n_threads,
                                                    self._tree_budget())
            todo = np.flatnonzero(out < 0)
            if todo.size:
                out[todo] = self._scan_count(Q[todo], radius2[todo], skip[todo], max_count,
                                             n_threads)
            return out
        return self._scan_count(Q, radius2, skip, max_count, n_threads)

    def _scan_count(self, Q, radius2, skip, max_count, n_threads):
        out = np.empty(Q.shape[0], dtype=np.intp)
        with _one_blas_thread():
            queries, slack, level, rows = self._queries(Q, n_threads)
            _brute.count_closer(self.X, Q, *queries, radius2, skip, slack, *rows, max_count,
                                out, level, n_threads)
        return out

    def self_knn(self, k, squared, n_threads):
        """``knn`` of the indexed rows themselves (each its own first neighbour, unless a
        duplicate of lower index precedes it): by the symmetric self-join, which computes
        each pair of rows once (``_brute.self_knn``), when the neighbours are not near
        enough for the tree, the rows are few enough for a join and the CPU has the fused
        scan (AVX2+FMA or more)."""
        n = self.X.shape[0]
        skip = _skip_array(n)
        if n > self.SELF_JOIN_MAX_ROWS or self.level == 0:
            return self.knn(self.X, k, skip, squared, n_threads)
        if self._knn_tree_first(self.X, k, skip, n_threads):
            return self._tree_knn(self.X, k, skip, squared, n_threads)
        d, kc = self.X.shape[1], min(n, k + self.EXTRA_CANDIDATES)
        n_threads = max(1, min(int(n_threads), self.SELF_JOIN_HEAP_BYTES // (16 * n * kc)))
        # each block's box: its chunks' (a block is a whole number of chunks)
        per_block = _brute.self_block_rows() // _brute.chunk_rows()
        starts = np.arange(0, self.lo.shape[0], per_block)
        n_blocks = starts.size
        blo = np.minimum.reduceat(self.lo, starts, axis=0)
        bhi = np.maximum.reduceat(self.hi, starts, axis=0)
        # the tiles (I, J), I <= J, by increasing J - I (the diagonal first): blocks are
        # runs of the spatial order, so nearby rows meet first and thresholds tighten early
        pair_i = np.concatenate([np.arange(n_blocks - g) for g in range(n_blocks)])
        pair_j = pair_i + np.repeat(np.arange(n_blocks), np.arange(n_blocks, 0, -1))
        slack = self._slack(np.sqrt(self.norms), d)
        hd = np.empty((n_threads, n, kc))                  # set by the kernel's threads
        hind = np.empty((n_threads, n, kc), dtype=np.intp)
        thr = np.full(self.xh.shape[0] + 8, -np.inf, dtype=np.float32)
        thr[:n] = np.inf
        seed = np.full(n, np.inf)
        dist = np.empty((n, k), dtype=np.float64)
        ind = np.empty((n, k), dtype=np.intp)
        unsure = np.zeros(n, dtype=np.uint8)
        _brute.self_knn(self.X, self.P, self.xh, self.norms, self.perm, slack,
                        blo.astype(np.float64), bhi.astype(np.float64),
                        np.ascontiguousarray(blo), np.ascontiguousarray(bhi),
                        pair_i.astype(np.intp), pair_j.astype(np.intp), hd, hind, thr,
                        *self._screen16(n_threads)[:4], seed, dist, ind, unsure, squared,
                        n_threads)
        del hd, hind, thr
        redo = np.flatnonzero(unsure)
        if redo.size:
            dist[redo], ind[redo] = self._tree_index(n_threads).knn(
                np.ascontiguousarray(self.X[redo]), k, skip[redo], squared, n_threads)
        self.last_redone_ = int(redo.size)
        return dist, ind

    def knn(self, Q, k, skip, squared, n_threads):
        if self._knn_tree_first(Q, k, skip, n_threads):
            return self._tree_knn(Q, k, skip, squared, n_threads)
        return self._scan_knn(Q, k, skip, squared, n_threads)

    def _knn_tree_first(self, Q, k, skip, n_threads):
        """``_tree_first`` for a k-NN query: the probe's radii are its k-th distances."""
        return self._tree_first(Q.shape[0], lambda rows: self._scan_knn(
            Q[rows], k, skip[rows], True, n_threads)[0][:, -1])

    def _tree_knn(self, Q, k, skip, squared, n_threads):
        """The KD-tree with a budget per query, then the scan for those it gave up on."""
        dist, ind, todo = self._tree_index(n_threads).knn(Q, k, skip, squared, n_threads,
                                                          self._tree_budget())
        todo = np.flatnonzero(todo)
        if todo.size:
            dist[todo], ind[todo] = self._scan_knn(Q[todo], k, skip[todo], squared,
                                                   n_threads)
        return dist, ind

    def _scan_knn(self, Q, k, skip, squared, n_threads):
        m = Q.shape[0]
        dist = np.empty((m, k), dtype=np.float64)
        ind = np.empty((m, k), dtype=np.intp)
        unsure = np.zeros(m, dtype=np.uint8)
        n_candidates = min(self.X.shape[0], k + self.EXTRA_CANDIDATES)
        with _one_blas_thread():
            queries, slack, level, rows = self._queries(Q, n_threads)
            _brute.query_knn(self.X, Q, *queries, skip, slack, *rows, dist, ind, unsure,
                             n_candidates, squared, level, n_threads)
        redo = np.flatnonzero(unsure)
        if redo.size:
            dist[redo], ind[redo] = self._tree_index(n_threads).knn(Q[redo], k, skip[redo],
                                                                    squared, n_threads)
        self.last_redone_ = int(redo.size)
        return dist, ind


def _choose_algorithm(algorithm, n_samples, n_features):
    if algorithm != "auto":
        return algorithm
    limit = AUTO_KD_TREE_MAX_FEATURES if n_samples >= AUTO_KD_TREE_MIN_SAMPLES else \
        AUTO_KD_TREE_SMALL_MAX_FEATURES
    return "kd_tree" if n_features <= limit else "brute"


def _too_many_neighbors(n_neighbors, n_fit, n_queries):
    """scikit-learn's error for more neighbours than fitted points."""
    return ValueError(f"Expected n_neighbors <= n_samples_fit, but n_neighbors = "
                      f"{n_neighbors}, n_samples_fit = {n_fit}, n_samples = {n_queries}")


def _skip_array(n_queries, skip=None):
    if skip is None:
        return np.full(n_queries, -1, dtype=np.intp)
    return np.ascontiguousarray(skip, dtype=np.intp)


class NearestNeighbors(BaseEstimator):
    """Exact k-nearest neighbours (Euclidean), compiled and parallel.

    A drop-in for :class:`sklearn.neighbors.NearestNeighbors` for the calls samplers
    make, and a valid ``k_neighbors``/``n_neighbors`` object for imbalanced-learn
    samplers.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours returned by :meth:`kneighbors` by default.
    algorithm : {'auto', 'kd_tree', 'brute'}, default='auto'
        ``'kd_tree'`` for low dimension, ``'brute'`` (blocked scan) for high dimension,
        ``'auto'`` picks by the numbers of features and rows (see the module docstring).
    leaf_size : int, default=32
        Maximum points per KD-tree leaf.
    n_jobs : int, default=None
        Threads of the queries. ``None`` means every core this process may use
        (honouring ``OMP_NUM_THREADS`` and threadpoolctl limits); results never depend
        on it.

    Attributes
    ----------
    n_features_in_ : int
    n_samples_fit_ : int
    effective_algorithm_ : str
        The engine chosen at fit.

    Notes
    -----
    Equal distances are ordered by increasing index; ``kneighbors(X=None)`` excludes
    each training point itself by index (duplicates remain neighbours at distance 0).
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "algorithm": [StrOptions({"auto", "kd_tree", "brute"})],
        "leaf_size": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
    }

    def __init__(self, n_neighbors=5, *, algorithm="auto", leaf_size=DEFAULT_LEAF_SIZE,
                 n_jobs=None):
        self.n_neighbors = n_neighbors
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.n_jobs = n_jobs

    def fit(self, X, y=None):
        """Index the rows of X (float32 stays float32, other dtypes become float64)."""
        self._validate_params()
        if sparse.issparse(X):
            X = X.toarray()
        X = check_float_X(X)
        n_threads = effective_n_threads(self.n_jobs)
        self.n_features_in_ = X.shape[1]
        self.n_samples_fit_ = X.shape[0]
        self.effective_algorithm_ = _choose_algorithm(self.algorithm, *X.shape)
        self._fit_X = X
        self._index = self._build_index(n_threads)
        return self

    def _build_index(self, n_threads):
        engine = _KDTreeIndex if self.effective_algorithm_ == "kd_tree" else _BruteIndex
        return engine(self._fit_X, self.leaf_size, n_threads)

    def _release_index(self):
        """Free the index (it is rebuilt, identical, at the next query). For samplers
        whose fitted estimator must stay fitted on X but whose index would otherwise sit
        in memory beside the output while it is written."""
        if hasattr(self, "_index"):
            self._index = None
        return self

    def _fitted_index(self):
        """The index (NotFittedError before fit), rebuilt if it was released."""
        if not hasattr(self, "_index"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )
        index = self._index
        if index is None:
            index = self._index = self._build_index(effective_n_threads(self.n_jobs))
        return index

    def _query(self, X, n_neighbors, squared=False):
        """(dist, ind) for queries X, or for every training point without itself."""
        index = self._fitted_index()
        if n_neighbors is None:
            n_neighbors = self.n_neighbors
        if not isinstance(n_neighbors, Integral) or isinstance(n_neighbors, bool):
            raise TypeError(f"n_neighbors does not take {type(n_neighbors)} value, "
                            "enter integer value")
        if n_neighbors <= 0:
            raise ValueError(f"Expected n_neighbors > 0. Got {n_neighbors}")
        n_fit = self.n_samples_fit_
        if X is None:
            Q = self._fit_X
            skip = np.arange(n_fit, dtype=np.intp)
            available = n_fit - 1
        else:
            if sparse.issparse(X):
                X = X.toarray()
            Q = check_float_X(X)
            if Q.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {Q.shape[1]} features, but {type(self).__name__} "
                                 f"is expecting {self.n_features_in_} features as input.")
            if Q.dtype != self._fit_X.dtype:
                Q = Q.astype(self._fit_X.dtype)
            skip = _skip_array(Q.shape[0])
            available = n_fit
        if n_neighbors > available:
            raise _too_many_neighbors(n_neighbors + (X is None), n_fit, Q.shape[0])
        return index.knn(Q, int(n_neighbors), skip, squared, effective_n_threads(self.n_jobs))

    def _query_rows(self, rows, n_neighbors, squared=False):
        """Neighbours of the training points ``rows``, each excluding itself by index."""
        index = self._fitted_index()
        rows = np.ascontiguousarray(rows, dtype=np.intp)
        if n_neighbors > self.n_samples_fit_ - 1:
            raise _too_many_neighbors(n_neighbors + 1, self.n_samples_fit_, rows.shape[0])
        return index.knn(np.ascontiguousarray(self._fit_X[rows]), int(n_neighbors), rows,
                         squared, effective_n_threads(self.n_jobs))

    def _self_query(self, n_neighbors):
        """The ``n_neighbors`` nearest training points of every training point, itself
        included: ``kneighbors(X_fit, return_distance=False)`` for the X just fitted, the
        samplers' call (they fit on a class and query the same rows), answered by the
        index's self-join where it has one."""
        index = self._fitted_index()
        if n_neighbors > self.n_samples_fit_:
            raise _too_many_neighbors(n_neighbors, self.n_samples_fit_, self.n_samples_fit_)
        return index.self_knn(int(n_neighbors), False, effective_n_threads(self.n_jobs))[1]

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The k nearest neighbours of each query point.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Query points; ``None`` queries every training point and excludes the point
            itself from its own neighbours.
        n_neighbors : int, default=None
            Number of neighbours (default: the constructor's).
        return_distance : bool, default=True
            Whether to return the distances too.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors), float64
            Euclidean distances, ascending (only when ``return_distance``).
        neigh_ind : ndarray of shape (n_queries, n_neighbors), int
            Indices of the neighbours in the training data.
        """
        dist, ind = self._query(X, n_neighbors)
        return (dist, ind) if return_distance else ind

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Sparse (CSR) graph of the k nearest neighbours, as scikit-learn builds it."""
        if mode not in ("connectivity", "distance"):
            raise ValueError('Unsupported mode, must be one of "connectivity", or '
                             f'"distance" but got "{mode}" instead')
        dist, ind = self._query(X, n_neighbors)
        n_queries, k = ind.shape
        data = np.ones(n_queries * k) if mode == "connectivity" else dist.ravel()
        indptr = np.arange(0, n_queries * k + 1, k)
        return sparse.csr_matrix((data, ind.ravel(), indptr),
                                 shape=(n_queries, self.n_samples_fit_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags


def check_neighbors_object(nn_name, nn_object, additional_neighbor=0):
    """A neighbours estimator from an int or from an object with ``kneighbors``.

    An int ``k`` gives ``fastimb.neighbors.NearestNeighbors(n_neighbors=k +
    additional_neighbor)``; an object exposing ``kneighbors`` and ``kneighbors_graph`` is
    cloned (so scikit-learn's, cuML's or a user's own search can be plugged in).
    """
    if isinstance(nn_object, Integral) and not isinstance(nn_object, bool):
        return NearestNeighbors(n_neighbors=int(nn_object) + additional_neighbor)
    if hasattr(nn_object, "kneighbors") and hasattr(nn_object, "kneighbors_graph"):
        return clone(nn_object)
    raise ValueError(f"{nn_name} must be an int or an object with the methods 'kneighbors' "
                     f"and 'kneighbors_graph'; got {nn_object!r}.")


def count_closer(X_fit, Q, radius, *, max_count=1, exclude=None, n_jobs=None,
                 squared=False, algorithm="auto", leaf_size=DEFAULT_LEAF_SIZE, index=None):
    """How many rows of ``X_fit`` lie strictly closer to each query than its radius.

    For each row ``q`` of ``Q``, counts the rows ``j`` of ``X_fit`` with
    ``dist(q, X_fit[j]) < radius[q]`` and ``j != exclude[q]``, stopping at ``max_count``
    (so ``count_closer(...) > 0`` is an early-exit "is any point strictly closer" test).
    With ``squared=True`` the radii are squared distances, compared exactly with the
    squared distances the k-NN queries return (the same formula), so a neighbour found at
    squared distance ``r2`` is never counted as closer than ``r2``.

    The KD-tree prunes whole cells; brute force (``algorithm`` chosen as for
    :class:`NearestNeighbors`) scans blocks of rows and drops a query as soon as its count
    reaches ``max_count``. ``index`` may be a fitted :class:`NearestNeighbors` on
    ``X_fit``, to reuse its index.
    """
    n_threads = effective_n_threads(n_jobs)
    if index is not None and hasattr(index, "_index"):
        engine = index._fitted_index()
    else:
        X_fit = check_float_X(X_fit)
        kind = _choose_algorithm(algorithm, *X_fit.shape)
        engine = (_KDTreeIndex if kind == "kd_tree" else _BruteIndex)(X_fit, leaf_size,
                                                                     n_threads)
    Q = check_float_X(Q, name="Q")
    if Q.dtype != engine.X.dtype:
        Q = Q.astype(engine.X.dtype)
    radius = np.ascontiguousarray(radius, dtype=np.float64)
    if radius.shape != (Q.shape[0],):
        raise ValueError(f"radius must have shape ({Q.shape[0]},); got {radius.shape}.")
    radius2 = radius if squared else radius * radius
    skip = _skip_array(Q.shape[0], exclude)
    if max_count < 1:
        raise ValueError(f"max_count must be >= 1; got {max_count}.")
    return engine.count(Q, radius2, skip, int(max_count), n_threads)
