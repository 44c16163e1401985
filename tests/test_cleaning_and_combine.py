"""TomekLinks, EditedNearestNeighbours, SMOTEENN, SMOTETomek: imbalanced-learn's answers."""
import copy

import imblearn.combine as imb_combine
import imblearn.over_sampling as imb_over
import imblearn.under_sampling as imb_under
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.neighbors import NearestNeighbors as SkNN

import fastimb

from conftest import make_imbalanced

BINARY = dict(n_samples=700)
MULTI = dict(n_samples=900, n_classes=3, weights=(0.1, 0.3, 0.6))


def _targeted(y):
    labels = np.unique(y)
    return {labels[-1]: 1}


CLEAN_STRATEGIES = ["auto", "all", "majority", "not minority", "not majority", [0], [0, 1],
                    _targeted]


def _same(ours, ref, X, y):
    try:
        b = ref.fit_resample(X, y)
    except ValueError as exc:  # e.g. a callable strategy with a cleaner: the same error
        with pytest.raises(ValueError, match="as a dict for cleaning methods"):
            ours.fit_resample(X, y)
        assert "as a dict for cleaning methods" in str(exc)
        return
    a = ours.fit_resample(X, y)
    for p, q in zip(a, b):
        if isinstance(p, pd.DataFrame):
            pd.testing.assert_frame_equal(p, q)
        elif isinstance(p, pd.Series):
            pd.testing.assert_series_equal(p, q)
        else:
            assert_array_equal(p, q)
            assert np.asarray(p).dtype == np.asarray(q).dtype
    if hasattr(ref, "sample_indices_"):
        assert_array_equal(ours.sample_indices_, ref.sample_indices_)


@pytest.mark.parametrize("data", [BINARY, MULTI], ids=["binary", "3-class"])
@pytest.mark.parametrize("strategy", CLEAN_STRATEGIES)
@pytest.mark.parametrize("name, params", [("TomekLinks", {}),
                                          ("EditedNearestNeighbours", {}),
                                          ("EditedNearestNeighbours", {"kind_sel": "mode"}),
                                          ("EditedNearestNeighbours", {"n_neighbors": 7})])
def test_cleaners_match_imblearn(name, params, strategy, data, dtype):
    X, y = make_imbalanced(dtype=dtype, **data)
    _same(getattr(fastimb, name)(sampling_strategy=strategy, **params),
          getattr(imb_under, name)(sampling_strategy=strategy, **params), X, y)


@pytest.mark.parametrize("name", ["TomekLinks", "EditedNearestNeighbours"])
def test_cleaners_threads_pandas_and_estimator(name):
    X, y = make_imbalanced(**MULTI)
    a = getattr(fastimb, name)(n_jobs=1).fit_resample(X, y)
    b = getattr(fastimb, name)(n_jobs=2).fit_resample(X, y)
    assert_array_equal(a[0], b[0])
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    _same(getattr(fastimb, name)(), getattr(imb_under, name)(), df, pd.Series(y, name="t"))
    if name == "EditedNearestNeighbours":
        _same(fastimb.EditedNearestNeighbours(n_neighbors=SkNN(n_neighbors=4)),
              imb_under.EditedNearestNeighbours(n_neighbors=SkNN(n_neighbors=4)), X, y)


def test_is_tomek_static_matches_imblearn():
    X, y = make_imbalanced(**MULTI)
    nn = SkNN(n_neighbors=2).fit(X).kneighbors(X, return_distance=False)[:, 1]
    for classes in ([0], [0, 2], [1, 2], []):
        assert_array_equal(fastimb.TomekLinks.is_tomek(y, nn, classes),
                           imb_under.TomekLinks.is_tomek(y, nn, classes))


def test_tomek_edge_cases():
    # no link at all: two far-apart clusters
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(50, 2), rng.randn(10, 2) + 100])
    y = np.array([0] * 50 + [1] * 10)
    t = fastimb.TomekLinks().fit(X, y)
    assert_array_equal(fastimb.TomekLinks().fit_resample(X, y)[1], y)
    # every minority point in a link: pairs at distance 0.01, pairs far apart
    base = rng.randn(20, 2) * 100
    X = np.vstack([base, base + 0.01])
    y = np.array([0] * 20 + [1] * 20)
    ours = fastimb.TomekLinks(sampling_strategy="all")
    Xr, yr = ours.fit_resample(X, y)
    assert yr.size == 0 and Xr.shape == (0, 2)   # every sample is in a link
    ref = imb_under.TomekLinks(sampling_strategy="all")
    ref.fit_resample(X, y)
    assert_array_equal(ours.sample_indices_, ref.sample_indices_)
    assert t.sampling_strategy_


def test_tomek_duplicates_rule():
    # a duplicated point: its nearest neighbour is its copy (distance 0), never a link
    X = np.array([[0.0], [0.0], [1.0], [3.0]])
    y = np.array([0, 1, 1, 1])
    ours = fastimb.TomekLinks(sampling_strategy="all")
    ours.fit_resample(X, y)
    # 0 and 1 are mutual nearest neighbours of different classes: a link
    assert_array_equal(ours.sample_indices_, [2, 3])


def test_enn_can_empty_a_class_like_imblearn():
    rng = np.random.RandomState(1)
    X = rng.randn(60, 2)
    y = np.array([0] * 57 + [1] * 3)
    _same(fastimb.EditedNearestNeighbours(sampling_strategy="all"),
          imb_under.EditedNearestNeighbours(sampling_strategy="all"), X, y)


@pytest.mark.parametrize("name", ["SMOTEENN", "SMOTETomek"])
@pytest.mark.parametrize("data", [BINARY, MULTI], ids=["binary", "3-class"])
@pytest.mark.parametrize("strategy", ["auto", "all", "minority"])
def test_combined_match_imblearn(name, data, strategy, dtype):
    X, y = make_imbalanced(dtype=dtype, **data)
    ours = getattr(fastimb, name)(random_state=4, sampling_strategy=strategy)
    ref = getattr(imb_combine, name)(random_state=4, sampling_strategy=strategy)
    _same(ours, ref, X, y)
    assert ours.sampling_strategy_ == ref.sampling_strategy_ == strategy


@pytest.mark.parametrize("name, cleaner_key, cleaner", [
    ("SMOTEENN", "enn", "EditedNearestNeighbours"), ("SMOTETomek", "tomek", "TomekLinks")])
def test_combined_accept_imblearn_and_fastimb_parts(name, cleaner_key, cleaner):
    X, y = make_imbalanced(**MULTI)
    ref = getattr(imb_combine, name)(
        smote=imb_over.SMOTE(random_state=1, k_neighbors=3),
        **{cleaner_key: getattr(imb_under, cleaner)(sampling_strategy="all")})
    for smote, clean in [(fastimb.SMOTE(random_state=1, k_neighbors=3),
                          getattr(fastimb, cleaner)(sampling_strategy="all")),
                         (imb_over.SMOTE(random_state=1, k_neighbors=3),
                          getattr(imb_under, cleaner)(sampling_strategy="all"))]:
        ours = getattr(fastimb, name)(smote=smote, **{cleaner_key: clean})
        _same(ours, copy.deepcopy(ref), X, y)
        assert hasattr(ours, "smote_") and hasattr(ours, cleaner_key + "_")


@pytest.mark.parametrize("name", ["TomekLinks", "EditedNearestNeighbours", "SMOTEENN",
                                  "SMOTETomek"])
def test_bad_input(name):
    X, y = make_imbalanced(**BINARY)
    for Xb, yb in [(np.where(X > 2, np.nan, X), y), (X, np.zeros_like(y)), (X[:, :, None], y),
                   (X[:0], y[:0]), (X, y[:-1])]:
        with pytest.raises(ValueError):
            getattr(fastimb, name)().fit_resample(Xb, yb)
    with pytest.raises(ValueError, match="list"):
        fastimb.TomekLinks(sampling_strategy={0: 1}).fit_resample(X, y) if name == "TomekLinks" \
            else fastimb.EditedNearestNeighbours(sampling_strategy={0: 1}).fit_resample(X, y)


@pytest.mark.parametrize("d", [5, 20])
@pytest.mark.parametrize("name", ["EditedNearestNeighbours", "SMOTEENN"])
def test_enn_paths_on_larger_data_match_imblearn(name, d, dtype):
    # large enough for every route of ENN's 'all' rule: the 1-NN-then-count route for the
    # raw classes, the own-k-NN-then-count route for SMOTE's dense minority, and in high
    # dimension the brute-force index handing those near neighbours to its KD-tree
    X, y = make_imbalanced(n_samples=6000, n_features=d, weights=(0.05, 0.95), dtype=dtype)
    module = imb_combine if name == "SMOTEENN" else imb_under
    params = {"random_state": 0} if name == "SMOTEENN" else {"sampling_strategy": "all"}
    _same(getattr(fastimb, name)(**params), getattr(module, name)(**params), X, y)
