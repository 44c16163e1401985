"""Row selection shared by the samplers: gather rows of dense, sparse or pandas data."""
import sys
import threading
import weakref

import numpy as np
from scipy import sparse

from fastimb._kernels._gather import take_rows, touch_pages
from fastimb._kernels._openmp_helpers import effective_n_threads
from fastimb._kernels._smote import copy_rows


def gather_rows(X, indices, n_jobs=None):
    """``X[indices]`` for ndarray, sparse matrix or DataFrame; ``indices`` are checked ints.

    Float arrays go through the parallel kernel; sparse results keep the input's format;
    a DataFrame keeps its index labels and dtypes.
    """
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    if sparse.issparse(X):
        return X[indices].asformat(X.format)
    X = np.asarray(X)
    if X.ndim == 2 and X.dtype in (np.float32, np.float64) and X.flags.c_contiguous:
        n_threads = effective_n_threads(n_jobs)
        out = fresh_output((indices.shape[0], X.shape[1]), X.dtype, n_threads)
        take_rows(X, np.ascontiguousarray(indices, dtype=np.intp), out, n_threads)
        return out
    return X[indices]


# outputs from this size have their pages mapped before the kernel writes them, by one
# thread per TOUCH_THREAD_CORES of the kernel's threads (at least one): first touches on
# many threads at once contend in the kernel's (and a hypervisor's) page-table locks. On
# a 2-core VM, SMOTE at 1M x 5 (78 MB out) took 93-109 ms per call with one thread
# touching, 130-170 ms with two, 126-170 ms with the kernels taking the faults.
TOUCH_FROM_BYTES = 1 << 22
TOUCH_THREAD_CORES = 4


def fresh_output(shape, dtype, n_threads):
    """``np.empty(shape, dtype)`` for a parallel kernel to fill, its pages first touched
    when it is large (see ``_kernels._gather.touch_pages``)."""
    out = np.empty(shape, dtype=dtype)
    if out.nbytes >= TOUCH_FROM_BYTES:
        touch_pages(out.reshape(-1).view(np.uint8),
                    max(1, int(n_threads) // TOUCH_THREAD_CORES))
    return out


# an over-sampler's output from this size is prepared beside its neighbour search (see
# OutputAhead). SMOTE on a 2-core VM, medians of 5 calls: 1M x 20 binary (314 MB out)
# 597-821 ms against 901-994 ms with the output's memory handed back to the host (3 s
# between calls), the same without; 3-class 1M x 20 (432 MB) 2.51 s against 2.73 s cold,
# 2.20 s against 2.24 s warm; but 1M x 5 (78-108 MB out, 35-200 ms of neighbour search)
# 10-25 ms slower: the touching thread then only contends with the search.
AHEAD_FROM_BYTES = 1 << 28


class OutputAhead:
    """The output of an over-sampler, ``X`` followed by ``n_new`` rows to fill, prepared on
    a background thread while the caller computes its neighbours: allocated, X copied
    into its first rows and the rest's pages touched, so those page faults (the costliest
    part of a large fresh output, above all on a VM that hands freed memory back to its
    host) run beside the search instead of after it. :meth:`result` waits for it.
    For C-contiguous float ``X``, outputs from AHEAD_FROM_BYTES and two threads or more
    allowed (OMP_NUM_THREADS, threadpoolctl); otherwise :meth:`start` returns None and
    the caller makes the output itself."""

    __slots__ = ("_out", "_n", "_thread", "_error")

    @classmethod
    def start(cls, X, n_new):
        if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.flags.c_contiguous
                and X.dtype in (np.float32, np.float64)):
            return None
        shape = (X.shape[0] + int(n_new), X.shape[1])
        if (shape[0] * shape[1] * X.dtype.itemsize < AHEAD_FROM_BYTES
                or effective_n_threads(None) < 2):
            return None
        return cls(X, shape)

    def __init__(self, X, shape):
        self._out = None
        self._n = shape[0]
        self._error = None
        self._thread = threading.Thread(target=self._prepare, args=(X, shape), daemon=True)
        self._thread.start()

    def _prepare(self, X, shape):
        try:
            out = np.empty(shape, dtype=X.dtype)
            copy_rows(X, out[:X.shape[0]], 1)
            touch_pages(out[X.shape[0]:].reshape(-1).view(np.uint8), 1)
            self._out = out
        except BaseException as exc:    # re-raised by result()
            self._error = exc

    def result(self, n_rows):
        """The output once ready, if it has ``n_rows`` rows (else None: the caller makes
        its own, and this one is dropped)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        out, self._out = self._out, None
        return out if self._n == n_rows else None


class RowBuffers:
    """``X[rows]`` for a sequence of folds, copied into buffers reused from one fold to the
    next.

    :meth:`apply` calls ``func(X[rows])``. For a C-contiguous float array the rows go into
    a leading slice of a buffer kept under ``key`` from the previous call; afterwards the
    buffer is kept for the next call only if nothing references it any more (``func`` —
    an estimator's ``fit``, say — kept neither the rows nor a view of them: checked with a
    weak reference and the buffer's reference count), otherwise it is left to its new
    owner and the next call allocates afresh, exactly as ``X[rows]`` would. Reuse saves a
    fresh allocation's page faults in every fold (0.02-0.15 s per 128 MB here). Only for
    calls made one after the other: with ``reuse=False`` (folds run in parallel) every
    call gets a fresh ``X[rows]``.
    """

    SLACK = 1.01  # folds differ by a few rows: room to reuse a buffer for a larger one

    def __init__(self, reuse=True, n_jobs=None):
        self.reuse = reuse
        self.n_jobs = n_jobs
        self._free = {}

    def apply(self, X, rows, key, func):
        if not (self.reuse and isinstance(X, np.ndarray) and X.ndim == 2 and
                X.flags.c_contiguous and X.dtype in (np.float32, np.float64)):
            return func(gather_rows(X, rows, self.n_jobs))
        rows = np.ascontiguousarray(rows, dtype=np.intp)
        m = rows.shape[0]
        buf = self._free.pop(key, None)
        if buf is None or buf.shape[0] < m or buf.shape[1] != X.shape[1] or \
                buf.dtype != X.dtype:
            buf = np.empty((int(m * self.SLACK) + 1, X.shape[1]), dtype=X.dtype)
        view = buf[:m]
        take_rows(X, rows, view, effective_n_threads(self.n_jobs))
        watcher = weakref.ref(view)
        held = sys.getrefcount(buf)
        result = func(view)
        del view
        if watcher() is None and sys.getrefcount(buf) == held - 1:
            self._free[key] = buf
        return result
