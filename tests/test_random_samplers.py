"""RandomOverSampler / RandomUnderSampler: identical to imbalanced-learn, every strategy form."""
import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import RandomOverSampler as ImbROS
from imblearn.under_sampling import RandomUnderSampler as ImbRUS
from numpy.testing import assert_array_equal
from scipy import sparse

from fastimb import RandomOverSampler, RandomUnderSampler
from fastimb.over_sampling import RandomOverSampler as ROS2
from fastimb.under_sampling import RandomUnderSampler as RUS2

from conftest import make_imbalanced

BINARY = dict(n_samples=500, weights=(0.15, 0.85))
MULTI = dict(n_samples=600, n_classes=3, weights=(0.1, 0.3, 0.6))


def _ratio_callable(y):
    labels, counts = np.unique(y, return_counts=True)
    return {labels[0]: int(counts.max())}


def _under_callable(y):
    labels, counts = np.unique(y, return_counts=True)
    return {labels[-1]: int(counts.min())}


OVER_STRATEGIES = {
    "binary": ["auto", "minority", "not minority", "not majority", "all", 0.5, 1.0,
               {1: 450}, _ratio_callable],
    "multi": ["auto", "minority", "not minority", "not majority", "all",
              {0: 300, 1: 400}, _ratio_callable],
}
UNDER_STRATEGIES = {
    "binary": ["auto", "majority", "not minority", "not majority", "all", 0.5, 1.0,
               {1: 200}, _under_callable],
    "multi": ["auto", "majority", "not minority", "not majority", "all",
              {2: 100, 1: 80}, _under_callable],
}


def _data(kind, dtype=np.float64):
    return make_imbalanced(**(BINARY if kind == "binary" else MULTI), dtype=dtype)


def _assert_same(ours, ref, fitted_ours, fitted_ref):
    for a, b in zip(ours, ref):
        assert type(a) is type(b)
        if isinstance(a, (pd.DataFrame, pd.Series)):
            if isinstance(a, pd.DataFrame):
                pd.testing.assert_frame_equal(a, b)
            else:
                pd.testing.assert_series_equal(a, b)
        elif sparse.issparse(a):
            assert a.format == b.format
            assert_array_equal(a.toarray(), b.toarray())
        else:
            assert_array_equal(np.asarray(a), np.asarray(b))
            assert np.asarray(a).dtype == np.asarray(b).dtype
    assert_array_equal(fitted_ours.sample_indices_, fitted_ref.sample_indices_)
    assert dict(fitted_ours.sampling_strategy_) == dict(fitted_ref.sampling_strategy_)
    assert list(fitted_ours.sampling_strategy_) == list(fitted_ref.sampling_strategy_)


def test_public_paths():
    assert RandomOverSampler is ROS2 and RandomUnderSampler is RUS2


@pytest.mark.parametrize("kind", ["binary", "multi"])
@pytest.mark.parametrize("shrinkage", [None, 0.7])
def test_ros_matches_imblearn(kind, shrinkage, dtype):
    X, y = _data(kind, dtype)
    for strategy in OVER_STRATEGIES[kind]:
        ours = RandomOverSampler(sampling_strategy=strategy, random_state=7,
                                 shrinkage=shrinkage)
        ref = ImbROS(sampling_strategy=strategy, random_state=7, shrinkage=shrinkage)
        _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y), ours, ref)


@pytest.mark.parametrize("kind", ["binary", "multi"])
@pytest.mark.parametrize("replacement", [False, True])
def test_rus_matches_imblearn(kind, replacement, dtype):
    X, y = _data(kind, dtype)
    for strategy in UNDER_STRATEGIES[kind]:
        ours = RandomUnderSampler(sampling_strategy=strategy, random_state=3,
                                  replacement=replacement)
        ref = ImbRUS(sampling_strategy=strategy, random_state=3, replacement=replacement)
        _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y), ours, ref)


@pytest.mark.parametrize("Ours, Ref", [(RandomOverSampler, ImbROS),
                                       (RandomUnderSampler, ImbRUS)])
@pytest.mark.parametrize("seed_kind", ["int", "RandomState"])
@pytest.mark.parametrize("labels", ["int", "str", "one-hot"])
def test_seed_and_label_kinds(Ours, Ref, seed_kind, labels):
    X, y = _data("multi")
    if labels == "str":
        y = np.array(["cat", "dog", "emu"])[y]
    elif labels == "one-hot":
        y = np.eye(3, dtype=int)[y]
    seed = (lambda: 5) if seed_kind == "int" else (lambda: np.random.RandomState(5))
    ours, ref = Ours(random_state=seed()), Ref(random_state=seed())
    _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y), ours, ref)


@pytest.mark.parametrize("Ours, Ref", [(RandomOverSampler, ImbROS),
                                       (RandomUnderSampler, ImbRUS)])
def test_pandas_round_trip(Ours, Ref):
    X, y = _data("binary")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])],
                      index=np.arange(X.shape[0]) * 3 + 11)
    df["count"] = np.arange(X.shape[0], dtype=np.int32)
    df["f0"] = df["f0"].astype(np.float32)
    ys = pd.Series(np.where(y == 1, "pos", "neg"), name="target", index=df.index)
    ours, ref = Ours(random_state=1), Ref(random_state=1)
    Xo, yo = ours.fit_resample(df, ys)
    Xr, yr = ref.fit_resample(df, ys)
    pd.testing.assert_frame_equal(Xo, Xr)
    pd.testing.assert_series_equal(yo, yr)
    assert_array_equal(ours.feature_names_in_, df.columns)
    assert_array_equal(ours.get_feature_names_out(), df.columns)


@pytest.mark.parametrize("Ours, Ref", [(RandomOverSampler, ImbROS),
                                       (RandomUnderSampler, ImbRUS)])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_and_list(Ours, Ref, fmt):
    X, y = _data("multi")
    X[np.abs(X) < 0.8] = 0
    Xs = sparse.csr_matrix(X).asformat(fmt)
    ours, ref = Ours(random_state=2), Ref(random_state=2)
    _assert_same(ours.fit_resample(Xs, y), ref.fit_resample(Xs, y), ours, ref)
    ours, ref = Ours(random_state=2), Ref(random_state=2)
    out_o = ours.fit_resample(X.tolist(), y.tolist())
    out_r = ref.fit_resample(X.tolist(), y.tolist())
    assert out_o == out_r


@pytest.mark.parametrize("Ours, Ref", [(RandomOverSampler, ImbROS),
                                       (RandomUnderSampler, ImbRUS)])
def test_nan_strings_and_readonly_pass_through(Ours, Ref):
    # rows are only copied, so NaN and strings are accepted, as imbalanced-learn does
    X, y = _data("binary")
    X[y == 0, 1] = np.nan
    X.setflags(write=False)
    y.setflags(write=False)
    ours, ref = Ours(random_state=0), Ref(random_state=0)
    _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y), ours, ref)
    assert np.isnan(ours.fit_resample(X, y)[0]).any()
    Xs = np.array([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]], dtype=object)
    ours, ref = Ours(random_state=0), Ref(random_state=0)
    out_o, out_r = ours.fit_resample(Xs, [0, 0, 0, 1]), ref.fit_resample(Xs, [0, 0, 0, 1])
    assert out_o[0].dtype == object
    _assert_same(out_o, out_r, ours, ref)


@pytest.mark.parametrize("Sampler", [RandomOverSampler, RandomUnderSampler])
def test_inputs_not_modified(Sampler):
    X, y = _data("multi")
    X0, y0 = X.copy(), y.copy()
    Xr, _ = Sampler(random_state=0).fit_resample(X, y)
    if Sampler is RandomOverSampler:
        Xr[:] = 0  # the output never aliases the input
    assert_array_equal(X, X0)
    assert_array_equal(y, y0)


def test_ros_shrinkage_errors():
    X, y = _data("multi")
    with pytest.raises(ValueError, match="shrinkage factor for each class"):
        RandomOverSampler(shrinkage={0: 1.0}).fit_resample(X, y)
    with pytest.raises(ValueError, match="shrinkage factor needs to be >= 0"):
        RandomOverSampler(sampling_strategy={0: 300}, shrinkage={0: -1.0}).fit_resample(X, y)
    Xs = np.array([["a"], ["b"], ["c"], ["d"]], dtype=object)
    with pytest.raises(ValueError, match="numerical data"):
        RandomOverSampler(shrinkage=1.0).fit_resample(Xs, [0, 0, 0, 1])
