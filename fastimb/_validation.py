"""Array and target checks shared by every fastimb entry point.

Kernels trust their inputs (they are compiled without bounds checks), so every array that
reaches a kernel passes through one of these functions first.
"""
from collections import OrderedDict
from numbers import Real

import numpy as np
from scipy import sparse
from sklearn.utils import assert_all_finite, check_array, column_or_1d
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _num_samples

from fastimb._kernels import _checks
from fastimb._kernels._openmp_helpers import effective_n_threads

SAMPLING_TYPES = ("over-sampling", "under-sampling", "clean-sampling", "ensemble", "bypass")


# ---------------------------------------------------------------------------------------
# arrays for kernels
# ---------------------------------------------------------------------------------------
def check_float_X(X, *, name="X", copy=False):
    """A C-contiguous, finite float32/float64 2-D array (float32 stays float32).

    Other dtypes are converted to float64. Read-only input is accepted without a copy.
    """
    X = check_array(X, dtype=[np.float64, np.float32], order="C", copy=copy,
                    input_name=name, ensure_all_finite=False)
    check_all_finite(X, None, input_name=name)
    return X


def as_index_array(indices, upper, *, name="indices"):
    """``indices`` as a C-contiguous ``np.intp`` array with every value in ``[0, upper)``."""
    idx = np.ascontiguousarray(indices, dtype=np.intp)
    if idx.size and (idx.min() < 0 or idx.max() >= upper):
        raise ValueError(f"{name} must lie in [0, {upper}); got values in "
                         f"[{idx.min()}, {idx.max()}].")
    return idx


def check_sample_weight_nonneg(sample_weight, n_samples, dtype=np.float64):
    """A float copy of ``sample_weight`` (ones when None), finite and non-negative."""
    if sample_weight is None:
        return np.ones(n_samples, dtype=dtype)
    w = column_or_1d(check_array(sample_weight, ensure_2d=False, dtype=dtype,
                                 input_name="sample_weight"), warn=False).copy()
    if w.shape[0] != n_samples:
        raise ValueError(f"sample_weight has {w.shape[0]} elements, expected {n_samples}.")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative; found negative weights.")
    return w


# ---------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------
def _compiled(y):
    """Whether ``_checks.count`` reads y directly (contiguous, native byte order)."""
    return y.flags.c_contiguous and y.dtype.isnative


def _int_range(y):
    """``(lo, hi)`` of a non-empty 1-D integer ndarray whose values span fewer than 2**20
    (labels worth counting by ``bincount``), else None."""
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.size and
            (y.dtype.kind == "i" or (y.dtype.kind == "u" and y.dtype.itemsize < 8))):
        return None
    lo, hi = int(y.min()), int(y.max())
    return (lo, hi) if hi - lo < 1 << 20 else None


def _label_counts(y, span):
    """``bincount(y - lo)`` for the labels y of range ``span = (lo, hi)``."""
    lo, hi = span
    if _compiled(y):
        counts = np.zeros(hi - lo + 1, dtype=np.intp)
        _checks.count(y, lo, counts)
        return counts
    return np.bincount(_shifted(y, lo))


def _shifted(y, lo):
    """``y - lo`` as intp (y itself when that is already it)."""
    shifted = y.astype(np.intp, copy=False)
    return shifted - lo if lo else shifted


def target_type(y):
    """scikit-learn's ``type_of_target``; 1-D integer arrays of a small range are counted
    in one pass (``type_of_target`` hashes or sorts them, 10+ ms per million labels)."""
    span = _int_range(y)
    if span is None:
        return type_of_target(y)
    if span[1] - span[0] <= 1:   # at most two values: no need to count them
        return "binary"
    return "binary" if np.count_nonzero(_label_counts(y, span)) <= 2 else "multiclass"


def check_classification_target(y):
    """scikit-learn's ``check_classification_targets`` (integer arrays always pass)."""
    if _int_range(y) is None:
        check_classification_targets(y)


def check_target_type(y, indicate_one_vs_all=False):
    """A 1-D target; a one-hot (one-vs-all) target is turned into class indices.

    Multilabel targets (a row with more than one positive) are rejected.
    """
    type_y = target_type(y)
    if type_y == "multilabel-indicator":
        if np.any(y.sum(axis=1) > 1):
            raise ValueError(
                "fastimb supports binary, multiclass and one-hot encoded multiclass "
                "targets. Multilabel and multioutput targets are not supported."
            )
        y = y.argmax(axis=1)
    else:
        y = column_or_1d(y)
    return (y, type_y == "multilabel-indicator") if indicate_one_vs_all else y


def check_all_finite(X, estimator_name, input_name="X"):
    """scikit-learn's check that X (validated: an ndarray or a sparse matrix) has no NaN or
    infinity, with its error message; float32/float64 values in one block of memory are
    tested by a parallel kernel first (scikit-learn sums them on one thread)."""
    data = X.data if sparse.issparse(X) else X
    if (data.dtype in (np.float32, np.float64) and data.dtype.isnative
            and (data.flags.c_contiguous or data.flags.f_contiguous)):
        # one block of memory: ravel in memory order is a view, not a copy
        if _checks.all_finite(data.ravel(order="K"), effective_n_threads(None)):
            return
    assert_all_finite(X, allow_nan=False, estimator_name=estimator_name,
                      input_name=input_name)


def check_X_any(X):
    """Check X loosely (no dtype conversion, NaN allowed); DataFrames pass through."""
    n_samples = _num_samples(X)
    if n_samples < 1:
        raise ValueError(
            f"Found array with {n_samples} sample(s) while a minimum of 1 is required."
        )
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        return X
    return check_array(X, dtype=None, accept_sparse=["csr", "csc"], ensure_all_finite=False)


def encode_labels(y):
    """``(labels, codes)``: labels as ``np.unique(y)`` gives them and ``codes[i]`` the
    position of ``y[i]`` among them. Integer labels of a small range take one counting
    pass instead of the sort ``np.unique`` would do."""
    y = np.asarray(y)
    span = _int_range(y)
    if span is not None:
        present = _label_counts(y, span) > 0
        labels = (np.flatnonzero(present) + span[0]).astype(y.dtype)
        return labels, (np.cumsum(present) - 1)[_shifted(y, span[0])]
    return np.unique(y, return_inverse=True)


def indices_by_class(y):
    """``(labels, [indices of each label])``: labels as ``np.unique(y)`` gives them, indices
    ascending."""
    labels, codes = encode_labels(y)
    if labels.size <= 16:
        return labels, [np.flatnonzero(codes == i) for i in range(labels.size)]
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=labels.size))[:-1]
    return labels, np.split(order, bounds)


def class_counts(y):
    """``{class: count}`` in ``np.unique`` order (same key and count types)."""
    span = _int_range(y)
    if span is None:
        labels, counts = np.unique(y, return_counts=True)
    else:
        counts = _label_counts(y, span)
        present = np.flatnonzero(counts)
        labels = (present + span[0]).astype(y.dtype)
        counts = counts[present]
    return dict(zip(labels, counts))


# ---------------------------------------------------------------------------------------
# sampling_strategy -> sampling_strategy_
# ---------------------------------------------------------------------------------------
def _strategy_from_string(strategy, counts, sampling_type):
    n_max, n_min = max(counts.values()), min(counts.values())
    c_max = max(counts, key=counts.get)  # first class in label order on ties
    c_min = min(counts, key=counts.get)
    if strategy == "auto":
        strategy = "not majority" if sampling_type == "over-sampling" else "not minority"
    if strategy == "majority" and sampling_type == "over-sampling":
        raise ValueError("'sampling_strategy'='majority' cannot be used with over-sampler.")
    if strategy == "minority" and sampling_type != "over-sampling":
        raise ValueError(
            "'sampling_strategy'='minority' cannot be used with under-sampler and "
            "clean-sampler."
        )
    selected = {
        "all": lambda c: True,
        "majority": lambda c: c == c_max,
        "minority": lambda c: c == c_min,
        "not majority": lambda c: c != c_max,
        "not minority": lambda c: c != c_min,
    }[strategy]
    if sampling_type == "over-sampling":
        return {c: n_max - n for c, n in counts.items() if selected(c)}
    return {c: n_min for c in counts if selected(c)}


def _missing_classes_error(requested, counts):
    missing = set(requested) - set(counts)
    if missing:
        raise ValueError(f"The {missing} target class is/are not present in the data.")


def _strategy_from_dict(strategy, counts, sampling_type):
    _missing_classes_error(strategy.keys(), counts)
    if any(n < 0 for n in strategy.values()):
        raise ValueError(
            "The number of samples in a class cannot be negative."
            f"'sampling_strategy' contains some negative value: {strategy}"
        )
    if sampling_type == "clean-sampling":
        raise ValueError(
            "'sampling_strategy' as a dict for cleaning methods is not supported. Please "
            "give a list of the classes to be targeted by the sampling."
        )
    out = {}
    for c, n in strategy.items():
        have = counts[c]
        if sampling_type == "over-sampling":
            if n < have:
                raise ValueError(
                    "With over-sampling methods, the number of samples in a class should "
                    f"be greater or equal to the original number of samples. Originally, "
                    f"there is {have} samples and {n} samples are asked."
                )
            out[c] = n - have
        else:
            if n > have:
                raise ValueError(
                    "With under-sampling methods, the number of samples in a class should "
                    "be less or equal to the original number of samples. Originally, "
                    f"there is {have} samples and {n} samples are asked."
                )
            out[c] = n
    return out


def _strategy_from_list(strategy, counts, sampling_type):
    if sampling_type != "clean-sampling":
        raise ValueError(
            "'sampling_strategy' cannot be a list for samplers which are not cleaning "
            "methods."
        )
    _missing_classes_error(strategy, counts)
    n_min = min(counts.values())
    return {c: n_min for c in strategy}


def _strategy_from_float(ratio, y, counts, sampling_type):
    if target_type(y) != "binary":
        raise ValueError(
            '"sampling_strategy" can be a float only when the type of target is binary. '
            "For multi-class, use a dict."
        )
    if sampling_type == "over-sampling":
        n_max, c_max = max(counts.values()), max(counts, key=counts.get)
        out = {c: int(n_max * ratio - n) for c, n in counts.items() if c != c_max}
        if any(n <= 0 for n in out.values()):
            raise ValueError(
                "The specified ratio required to remove samples from the minority class "
                "while trying to generate new samples. Please increase the ratio."
            )
        return out
    if sampling_type == "under-sampling":
        n_min, c_min = min(counts.values()), min(counts, key=counts.get)
        out = {c: int(n_min / ratio) for c in counts if c != c_min}
        if any(n > counts[c] for c, n in out.items()):
            raise ValueError(
                "The specified ratio required to generate new sample in the majority "
                "class while trying to remove samples. Please increase the ratio."
            )
        return out
    raise ValueError("'clean-sampling' methods do let the user specify the sampling ratio.")


STRATEGY_STRINGS = ("auto", "minority", "majority", "not minority", "not majority", "all")


def check_sampling_strategy(sampling_strategy, y, sampling_type, **kwargs):
    """Resolve ``sampling_strategy`` into ``sampling_strategy_`` by imbalanced-learn's rules.

    Returns an ``OrderedDict`` sorted by class label whose values are the number of samples
    to generate (over-sampling), to keep (under-sampling), or the minority count for the
    targeted classes (cleaning).
    """
    if sampling_type not in SAMPLING_TYPES:
        raise ValueError(f"'sampling_type' should be one of {SAMPLING_TYPES}. "
                         f"Got '{sampling_type} instead.")
    counts = class_counts(y)  # one pass over y serves every check below
    if len(counts) <= 1:
        raise ValueError("The target 'y' needs to have more than 1 class. "
                         f"Got {len(counts)} class instead")
    if sampling_type in ("ensemble", "bypass"):
        return sampling_strategy
    if isinstance(sampling_strategy, str):
        if sampling_strategy not in STRATEGY_STRINGS:
            raise ValueError(
                "When 'sampling_strategy' is a string, it needs to be one of "
                f"{STRATEGY_STRINGS}. Got '{sampling_strategy}' instead."
            )
        out = _strategy_from_string(sampling_strategy, counts, sampling_type)
    elif isinstance(sampling_strategy, dict):
        out = _strategy_from_dict(sampling_strategy, counts, sampling_type)
    elif isinstance(sampling_strategy, list):
        out = _strategy_from_list(sampling_strategy, counts, sampling_type)
    elif isinstance(sampling_strategy, Real) and not isinstance(sampling_strategy, bool):
        if sampling_strategy <= 0 or sampling_strategy > 1:
            raise ValueError("When 'sampling_strategy' is a float, it should be in the "
                             f"range (0, 1]. Got {sampling_strategy} instead.")
        out = _strategy_from_float(sampling_strategy, y, counts, sampling_type)
    elif callable(sampling_strategy):
        out = _strategy_from_dict(sampling_strategy(y, **kwargs), counts, sampling_type)
    else:
        raise ValueError(f"Unsupported 'sampling_strategy': {sampling_strategy!r}.")
    return OrderedDict(sorted(out.items()))


def is_sparse(X):
    return sparse.issparse(X)


__all__ = [
    "as_index_array",
    "check_X_any",
    "check_classification_target",
    "check_float_X",
    "check_sample_weight_nonneg",
    "check_sampling_strategy",
    "check_target_type",
    "class_counts",
    "indices_by_class",
    "is_sparse",
    "target_type",
]
