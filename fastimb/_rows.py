"""Row selection shared by the samplers: gather rows of dense, sparse or pandas data."""
import numpy as np
from scipy import sparse

from fastimb._kernels._gather import take_rows
from fastimb._kernels._openmp_helpers import effective_n_threads


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
        out = np.empty((indices.shape[0], X.shape[1]), dtype=X.dtype)
        take_rows(X, np.ascontiguousarray(indices, dtype=np.intp), out,
                  effective_n_threads(n_jobs))
        return out
    return X[indices]
