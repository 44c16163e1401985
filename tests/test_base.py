"""The sampler contract: sampling_strategy rules, bad input, sklearn/imblearn integration."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.pipeline import make_pipeline
from imblearn.utils import check_sampling_strategy as imb_check_sampling_strategy
from imblearn.over_sampling import RandomOverSampler as ImbROS
from imblearn.under_sampling import RandomUnderSampler as ImbRUS
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.utils._param_validation import InvalidParameterError

import fastimb
from fastimb import RandomOverSampler, RandomUnderSampler
from fastimb._kernels._openmp_helpers import effective_n_threads, max_threads
from fastimb._validation import check_sampling_strategy, indices_by_class
from fastimb.base import is_sampler

from conftest import make_imbalanced

Y_BINARY = np.array([0] * 30 + [1] * 70 + [0] * 5)
Y_MULTI = np.array([0] * 10 + [1] * 25 + [2] * 60 + [1] * 5)
Y_STR = np.array(["b"] * 10 + ["a"] * 40 + ["c"] * 25)
Y_TIE = np.array([0] * 20 + [1] * 20 + [2] * 10)

STRATEGIES = ["auto", "minority", "majority", "not minority", "not majority", "all", "bogus",
              0.5, 1.0, 0.05, 1.5, 0, {0: 40}, {1: 200}, {0: 5}, {7: 3}, {0: -1},
              [0, 1], [9], lambda y: {0: 100}, lambda y: {0: 2}]
KINDS = ["over-sampling", "under-sampling", "clean-sampling", "ensemble", "bypass"]


def _outcome(fn):
    try:
        return "ok", fn()
    except Exception as exc:  # the exception type and message are part of the contract
        return type(exc), str(exc)


@pytest.mark.parametrize("y", [Y_BINARY, Y_MULTI, Y_STR, Y_TIE], ids=["bin", "multi", "str", "tie"])
@pytest.mark.parametrize("kind", KINDS)
def test_check_sampling_strategy_matches_imblearn(y, kind):
    for strategy in STRATEGIES:
        if isinstance(strategy, (dict, list)) and y is Y_STR:
            strategy = ({"a": 40} if isinstance(strategy, dict) else ["c"])
        ours = _outcome(lambda: check_sampling_strategy(strategy, y, kind))
        ref = _outcome(lambda: imb_check_sampling_strategy(strategy, y, kind))
        assert ours[0] == ref[0], (strategy, ours, ref)
        if ours[0] == "ok":
            if kind in ("ensemble", "bypass"):
                assert ours[1] is strategy
            else:
                assert list(ours[1].items()) == list(ref[1].items()), strategy
        elif ours[0] is ValueError:
            ours_msg, ref_msg = ours[1], ref[1]
            if "needs to be one of" in ref_msg:
                # imblearn lists its private function objects here; fastimb the option names
                assert ours_msg.split(" one of ")[0] == ref_msg.split(" one of ")[0]
                assert ours_msg.split(". ")[-1] == ref_msg.split(". ")[-1]
            else:
                assert ours_msg == ref_msg, strategy


def test_one_class_and_unknown_kind():
    with pytest.raises(ValueError, match="needs to have more than 1 class"):
        check_sampling_strategy("auto", np.zeros(5), "over-sampling")
    with pytest.raises(ValueError, match="'sampling_type' should be one of"):
        check_sampling_strategy("auto", Y_BINARY, "sideways")


BAD_INPUTS = {
    "one class": lambda X, y: (X, np.zeros_like(y)),
    "mismatched lengths": lambda X, y: (X, y[:-3]),
    "3-D X": lambda X, y: (X[:, :, None], y),
    "empty X": lambda X, y: (X[:0], y[:0]),
    "continuous y": lambda X, y: (X, np.linspace(0, 1, y.size)),
    "multilabel y": lambda X, y: (X, np.ones((y.size, 3), dtype=int)),
    "float strategy multiclass": None,
    "impossible dict": None,
}


@pytest.mark.parametrize("Ours, Ref", [(RandomOverSampler, ImbROS),
                                       (RandomUnderSampler, ImbRUS)])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_same_exception_as_imblearn(Ours, Ref, case):
    X, y = make_imbalanced(n_samples=120, n_classes=3, weights=(0.2, 0.3, 0.5))
    params = {}
    if case == "float strategy multiclass":
        params = {"sampling_strategy": 0.5}
    elif case == "impossible dict":
        params = {"sampling_strategy": {0: 10_000} if Ours is RandomUnderSampler else {0: 1}}
    else:
        X, y = BAD_INPUTS[case](X, y)
    X0, y0 = X.copy(), y.copy()
    ours = _outcome(lambda: Ours(random_state=0, **params).fit_resample(X, y))
    ref = _outcome(lambda: Ref(random_state=0, **params).fit_resample(X, y))
    if case == "mismatched lengths":
        # imbalanced-learn does not check this for the random samplers (it mis-pairs rows
        # or raises IndexError); fastimb raises sklearn's ValueError
        assert ours[0] is ValueError and "inconsistent numbers of samples" in ours[1]
    else:
        assert ref[0] != "ok" and ours[0] is ref[0], (ours, ref)
    assert issubclass(ours[0], ValueError)
    assert ours[1], "the message must name the problem"
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("Sampler", [RandomOverSampler, RandomUnderSampler])
def test_invalid_parameters(Sampler):
    X, y = make_imbalanced()
    with pytest.raises(InvalidParameterError, match="'sampling_strategy' parameter"):
        Sampler(sampling_strategy="bogus").fit_resample(X, y)
    with pytest.raises(InvalidParameterError, match="'random_state' parameter"):
        Sampler(random_state="x").fit_resample(X, y)


@pytest.mark.parametrize("Sampler", [RandomOverSampler, RandomUnderSampler])
def test_clone_pickle_params(Sampler):
    s = Sampler(random_state=4, sampling_strategy="all")
    c = clone(s)
    assert c.get_params() == s.get_params()
    X, y = make_imbalanced()
    a = s.fit_resample(X, y)
    b = pickle.loads(pickle.dumps(s)).fit_resample(X, y)
    np.testing.assert_array_equal(a[0], b[0])
    assert is_sampler(s)
    assert s.__sklearn_tags__().sampler_tags.sample_indices
    assert not hasattr(s, "transform")
    assert s.fit(X, y) is s and s.sampling_strategy_


def test_pipeline_cross_validate_and_grid_search():
    X, y = make_imbalanced(n_samples=400)
    pipe = make_pipeline(RandomUnderSampler(random_state=0), LogisticRegression())
    scores = cross_validate(pipe, X, y, cv=3, scoring="balanced_accuracy")
    ref = cross_validate(make_pipeline(ImbRUS(random_state=0), LogisticRegression()),
                         X, y, cv=3, scoring="balanced_accuracy")
    np.testing.assert_allclose(scores["test_score"], ref["test_score"])
    grid = GridSearchCV(make_pipeline(RandomOverSampler(random_state=0), LogisticRegression()),
                        {"randomoversampler__sampling_strategy": [0.5, 1.0]}, cv=3)
    grid.fit(X, y)
    assert grid.best_params_["randomoversampler__sampling_strategy"] in (0.5, 1.0)


def test_threads_follow_limits():
    assert effective_n_threads(1) == 1
    assert effective_n_threads(None) == max_threads() >= 1
    assert effective_n_threads(-1) == max_threads()
    assert effective_n_threads(10_000) == max_threads()
    with pytest.raises(ValueError, match="n_jobs == 0"):
        effective_n_threads(0)
    from threadpoolctl import threadpool_limits

    if fastimb.openmp_enabled():
        with threadpool_limits(limits=1, user_api="openmp"):
            assert effective_n_threads(None) == 1


def test_build_matches_promise():
    if os.environ.get("FASTIMB_EXPECT_OPENMP", "0") not in ("", "0"):
        assert fastimb.openmp_enabled(), "this build was expected to have OpenMP"
    info = fastimb.show_config(file=open(os.devnull, "w"))
    assert info["version"] == fastimb.__version__
    assert info["openmp"] == fastimb.openmp_enabled()
    from fastimb._config import SCAN_NAMES

    assert info["neighbor_scan"] in SCAN_NAMES.values()


def test_import_does_not_import_imblearn():
    code = "import sys, fastimb; assert 'imblearn' not in sys.modules, 'imblearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3) | st.integers(-10**12, 10**12), min_size=1, max_size=60),
       st.sampled_from([np.int64, np.int32, np.uint16, str]))
def test_indices_by_class_matches_unique(values, kind):
    if kind is np.uint16:
        values = [abs(v) % 60000 for v in values]
    elif kind is np.int32:
        values = [v % 2**31 for v in values]
    y = np.array([str(v) for v in values]) if kind is str else np.array(values, dtype=kind)
    labels, groups = indices_by_class(y)
    ref = np.unique(y)
    np.testing.assert_array_equal(labels, ref)
    assert labels.dtype == ref.dtype
    for label, group in zip(labels, groups):
        np.testing.assert_array_equal(group, np.flatnonzero(y == label))


def test_row_buffers_reused_only_when_nothing_keeps_the_rows():
    import weakref

    from numpy.testing import assert_array_equal

    from fastimb._rows import RowBuffers

    X = np.arange(60.0).reshape(20, 3)
    buffers = RowBuffers()
    seen = []
    kept = []
    assert_array_equal(buffers.apply(X, np.array([3, 1, 4]), "k", lambda r: r.copy()),
                       X[[3, 1, 4]])
    # (weak references: they do not keep the buffer)
    buffers.apply(X, np.array([5, 9]), "k", lambda r: seen.append(weakref.ref(r.base)))
    buffers.apply(X, np.array([2, 6]), "k", lambda r: seen.append(weakref.ref(r.base)))
    assert seen[0]() is not None and seen[0]() is seen[1]()   # nothing kept the rows
    buffers.apply(X, np.array([7, 8]), "k", kept.append)          # keeps the rows
    buffers.apply(X, np.array([0, 1]), "k", lambda r: kept.append(r[:, :2]))  # a view
    buffers.apply(X, np.array([10, 11]), "k", lambda r: None)
    assert_array_equal(kept[0], X[[7, 8]])         # never overwritten afterwards
    assert_array_equal(kept[1], X[[0, 1]][:, :2])
    assert kept[0].base is not kept[1].base
    # not reusing: a fresh copy every time; other containers go through gather_rows
    fresh = RowBuffers(reuse=False)
    bases = [fresh.apply(X, np.array([1, 2]), "k", lambda r: r.base) for _ in range(2)]
    assert bases[0] is None or bases[0] is not bases[1]
    assert_array_equal(buffers.apply(X.tolist(), np.array([1]), "k", np.asarray), X[[1]])


@pytest.mark.parametrize("n_threads", [1, 2, 8])
@pytest.mark.parametrize("shape, dtype", [((3, 2), np.float64), ((70_001, 9), np.float32),
                                          ((1 << 17, 8), np.float64), ((0, 5), np.float64)])
def test_fresh_output_and_touched_pages(shape, dtype, n_threads):
    # the outputs kernels fill: np.empty's shape, dtype and layout, large ones first
    # touched (a zero byte per page: the last page's first byte included) on any number
    # of threads; gather_rows through it gives X[rows]
    from fastimb._kernels._gather import touch_pages
    from fastimb._rows import TOUCH_FROM_BYTES, fresh_output, gather_rows

    out = fresh_output(shape, dtype, n_threads)
    assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous
    if out.nbytes >= TOUCH_FROM_BYTES:
        flat = out.reshape(-1).view(np.uint8)
        assert (flat[::4096] == 0).all()
    buf = np.full(3 * 4096 + 5, 7, dtype=np.uint8)
    touch_pages(buf, n_threads)
    assert (buf[::4096] == 0).all() and (np.delete(buf, [0, 4096, 8192, 12288]) == 7).all()
    X = np.random.RandomState(0).standard_normal((50, 4)).astype(dtype)
    rows = np.random.RandomState(1).randint(0, 50, 30)
    np.testing.assert_array_equal(gather_rows(X, rows, n_threads), X[rows])


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(-3, 6), min_size=1, max_size=40),
       dtype=st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint32"]),
       spread=st.sampled_from([1, 1000, 1 << 21]),
       layout=st.sampled_from(["contiguous", "strided", "byteswapped"]))
def test_target_type_and_class_counts_match_numpy_and_sklearn(values, dtype, spread, layout):
    # the counting fast path for integer labels gives type_of_target's answer and
    # np.unique's classes, counts (same key and value types) and inverse, for a few bins
    # (four histograms), many (one) and any memory layout; wide ranges fall back
    from sklearn.utils.multiclass import type_of_target

    from fastimb._validation import class_counts, encode_labels, target_type

    y = np.abs(np.asarray(values, dtype=np.int64)) if dtype.startswith("u") else \
        np.asarray(values, dtype=np.int64)
    if spread > 1 and np.dtype(dtype).itemsize >= 4:
        y = y * spread
    y = y.astype(dtype)
    if layout == "strided":
        y = np.repeat(y, 2)[::2]
    elif layout == "byteswapped":
        y = y.astype(y.dtype.newbyteorder())
    assert target_type(y) == type_of_target(y)
    codes = encode_labels(y)[1]
    assert np.array_equal(codes, np.unique(y, return_inverse=True)[1])
    labels, counts = np.unique(y, return_counts=True)
    ours = class_counts(y)
    assert list(ours) == list(labels) and list(ours.values()) == list(counts)
    assert {type(k) for k in ours} == {type(k) for k in labels}
    assert {type(v) for v in ours.values()} == {type(v) for v in counts}


@settings(max_examples=60, deadline=None)
@given(n=st.sampled_from([0, 1, 7, (1 << 16) - 1, 1 << 16, (1 << 16) + 3, 200_003]),
       dtype=st.sampled_from([np.float32, np.float64]),
       bad=st.sampled_from([None, np.nan, np.inf, -np.inf, "max", "tiny", "-0"]),
       where=st.floats(0, 1), threads=st.sampled_from([1, 2, 3]))
def test_finiteness_kernel_matches_numpy(n, dtype, bad, where, threads):
    # the exponent-bits test agrees with np.isfinite, in any block and on any thread count
    # (the largest finite value, subnormals and -0.0 are finite)
    from fastimb._kernels._checks import all_finite

    x = np.random.default_rng(n).standard_normal(n).astype(dtype)
    if n and bad is not None:
        info = np.finfo(dtype)
        x[min(n - 1, int(where * n))] = {"max": info.max, "tiny": info.smallest_subnormal,
                                         "-0": -0.0}.get(bad, bad)
    assert all_finite(x, threads) == bool(np.isfinite(x).all())


@pytest.mark.parametrize("layout", ["C", "F", "strided", "float32", "csr", "csc"])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf])
def test_finiteness_check_is_sklearns_in_every_layout(layout, bad):
    # the compiled test where X is one block of memory, scikit-learn's elsewhere; the
    # same message either way
    from scipy import sparse
    from sklearn.utils import check_array

    from fastimb._validation import check_all_finite

    X = np.random.default_rng(0).standard_normal((40, 6))
    if bad is not None:
        X[7, 3] = bad
    X = {"C": X, "F": np.asfortranarray(X), "strided": X[:, ::2] if bad is None else X[:, 1::2],
         "float32": X.astype(np.float32), "csr": sparse.csr_matrix(X),
         "csc": sparse.csc_matrix(X)}[layout]
    try:
        check_array(X, accept_sparse=["csr", "csc"], estimator="SMOTE", input_name="X")
        expected = None
    except ValueError as exc:
        expected = str(exc)
    if expected is None:
        check_all_finite(X, "SMOTE")
    else:
        with pytest.raises(ValueError) as info:
            check_all_finite(X, "SMOTE")
        assert str(info.value) == expected
