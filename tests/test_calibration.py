"""Isotonic regression (PAV), CalibratedClassifier, prior-shift correction, reliability."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.pipeline import make_pipeline
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.calibration import CalibratedClassifierCV
from sklearn.calibration import calibration_curve as sk_calibration_curve
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression as SkIsotonicRegression
from sklearn.isotonic import isotonic_regression as sk_isotonic_regression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastimb.calibration import (CalibratedClassifier, IsotonicRegression,
                                 PriorCorrectedClassifier, ReliabilityDisplay, brier_score,
                                 calibration_curve, correct_prior_shift,
                                 expected_calibration_error, isotonic_regression,
                                 maximum_calibration_error, resampled_target)
from fastimb.combine import SMOTEENN
from fastimb.over_sampling import SMOTE
from fastimb.under_sampling import RandomUnderSampler
from tests.conftest import make_imbalanced


# ---------------------------------------------------------------------------------------
# PAV
# ---------------------------------------------------------------------------------------
def _slow_isotonic(y, w):
    """The min-max formula: fit_i = max_{j<=i} min_{k>=i} weighted mean of y[j..k]."""
    n = len(y)
    out = np.empty(n)
    for i in range(n):
        out[i] = max(min(np.average(y[j:k + 1], weights=w[j:k + 1]) for k in range(i, n))
                     for j in range(i + 1))
    return out


@st.composite
def _series(draw, max_n=14):
    n = draw(st.integers(1, max_n))
    y = np.array(draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n)), float) / 2
    w = np.array(draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.5]), min_size=n,
                               max_size=n)))
    return y, w


@settings(max_examples=200, deadline=None)
@given(_series(), st.booleans())
def test_pav_is_monotone_optimal_and_equals_sklearn(data, increasing):
    y, w = data
    fit = isotonic_regression(y, sample_weight=w, increasing=increasing)
    d = np.diff(fit)
    assert np.all(d >= -1e-12) if increasing else np.all(d <= 1e-12)
    sign = 1 if increasing else -1
    assert_allclose(fit, sign * _slow_isotonic(sign * y, w), atol=1e-12)
    assert_allclose(fit, sk_isotonic_regression(y, sample_weight=w, increasing=increasing),
                    atol=1e-12)
    # no monotone perturbation does better
    sse = np.sum(w * (fit - y) ** 2)
    rng = np.random.default_rng(len(y))
    for _ in range(5):
        other = np.sort(fit + rng.normal(scale=0.3, size=fit.shape))
        other = other if increasing else other[::-1]
        assert np.sum(w * (other - y) ** 2) >= sse - 1e-12


def test_pav_edge_cases():
    assert_array_equal(isotonic_regression([3.0]), [3.0])
    with pytest.raises(ValueError, match="0 sample"):
        isotonic_regression(np.empty(0))
    assert_allclose(isotonic_regression([3, 2, 1]), [2, 2, 2])
    # zero weights: no pull, and the value of the fit before them
    fit = isotonic_regression([1.0, 100.0, 2.0, 0.0, 3.0], sample_weight=[1, 0, 1, 0, 1])
    assert_allclose(fit, [1, 1, 2, 2, 3])
    fit = isotonic_regression([9.0, 1.0, 2.0], sample_weight=[0, 1, 1])
    assert_allclose(fit, [1, 1, 2])
    assert_allclose(isotonic_regression([5, 1, 4], y_min=2, y_max=3.5), [3, 3, 3.5])
    assert isotonic_regression(np.array([2, 1], np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="at least one positive weight"):
        isotonic_regression([1.0, 2.0], sample_weight=[0, 0])


# ---------------------------------------------------------------------------------------
# IsotonicRegression against scikit-learn
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("out_of_bounds", ["nan", "clip"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("binary", [False, True])
def test_isotonic_regression_matches_sklearn(dtype, out_of_bounds, weighted, binary):
    rng = np.random.default_rng(0)
    n = 3000
    x = np.round(rng.random(n), 3).astype(dtype)          # many ties
    y = (rng.random(n) < x) if binary else x + rng.normal(scale=0.3, size=n)
    y = y.astype(dtype)
    w = rng.random(n) * 2 if weighted else None
    if weighted:
        w[::11] = 0
    ours = IsotonicRegression(out_of_bounds=out_of_bounds).fit(x, y, sample_weight=w)
    ref = SkIsotonicRegression(out_of_bounds=out_of_bounds).fit(x, y, sample_weight=w)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    assert_allclose(ours.X_thresholds_, ref.X_thresholds_)
    assert_allclose(ours.y_thresholds_, ref.y_thresholds_, rtol=tol, atol=tol)
    assert ours.X_min_ == ref.X_min_ and ours.X_max_ == ref.X_max_
    t = np.linspace(-0.2, 1.2, 1001).astype(dtype)
    pred = ours.predict(t)
    assert pred.dtype == ref.predict(t).dtype
    assert_allclose(pred, ref.predict(t), rtol=tol, atol=tol, equal_nan=True)
    assert_allclose(ours.transform(t.reshape(-1, 1)), ref.transform(t.reshape(-1, 1)),
                    rtol=tol, atol=tol, equal_nan=True)


def test_isotonic_regression_options():
    rng = np.random.default_rng(1)
    x = rng.random(500)
    y = -x + rng.normal(scale=0.1, size=500)
    for kw in ({"increasing": "auto"}, {"increasing": False}, {"y_min": -0.5, "y_max": -0.2}):
        ours = IsotonicRegression(**kw).fit(x, y)
        ref = SkIsotonicRegression(**kw).fit(x, y)
        assert_allclose(ours.predict(x), ref.predict(x), atol=1e-12)
    assert IsotonicRegression(increasing="auto").fit(x, y).increasing_ is False
    with pytest.warns(UserWarning, match="Confidence interval"):
        IsotonicRegression(increasing="auto").fit([1, 2, 3, 4, 5], [1, 3, 2, 0, 4])
    ours = IsotonicRegression(out_of_bounds="raise").fit(x, y)
    with pytest.raises(ValueError, match="below the interpolation range"):
        ours.predict([-1.0])
    with pytest.raises(ValueError, match="above the interpolation range"):
        ours.predict([2.0])
    single = IsotonicRegression().fit([1.0, 1.0], [2.0, 4.0])
    assert_allclose(single.predict([0.0, 1.0, 5.0]), [3.0, 3.0, 3.0])
    assert_array_equal(IsotonicRegression().fit(x, y).get_feature_names_out(),
                       ["isotonicregression0"])


@pytest.mark.parametrize("X, y, kwargs, match", [
    ([0.1, np.nan, 0.3], [0, 1, 1], {}, "NaN"),
    ([0.1, 0.2, 0.3], [0, 1], {}, "inconsistent numbers of samples"),
    ([0.1, 0.2, 0.3], [0, 1, 1], {"sample_weight": [1, -1, 1]}, "non-negative"),
    ([[0.1, 0.2], [0.3, 0.4]], [0, 1], {}, "1d array or 2d array with 1 feature"),
])
def test_isotonic_regression_bad_input(X, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        IsotonicRegression().fit(X, y, **kwargs)


def test_isotonic_regression_inputs_untouched():
    rng = np.random.default_rng(2)
    x, y, w = rng.random(300), rng.random(300), rng.random(300)
    copies = [a.copy() for a in (x, y, w)]
    for a in (x, y, w):
        a.setflags(write=False)
    IsotonicRegression().fit(x, y, sample_weight=w).predict(x)
    isotonic_regression(y, sample_weight=w)
    for a, c in zip((x, y, w), copies):
        assert_array_equal(a, c)


# ---------------------------------------------------------------------------------------
# CalibratedClassifier against scikit-learn
# ---------------------------------------------------------------------------------------
# KNeighborsClassifier keeps the rows it was fitted on: the fold-row buffers must not be
# reused under it
@pytest.mark.parametrize("estimator", [LogisticRegression(), GaussianNB(), LinearSVC(),
                                       KNeighborsClassifier(n_neighbors=15)],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("ensemble", [True, False])
def test_calibrated_classifier_matches_sklearn(estimator, method, ensemble):
    X, y = make_imbalanced(n_samples=1500, weights=(0.9, 0.1), random_state=0)
    ours = CalibratedClassifier(estimator, method=method, ensemble=ensemble).fit(X, y)
    ref = CalibratedClassifierCV(estimator, method=method, ensemble=ensemble).fit(X, y)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert_array_equal(ours.classes_, ref.classes_)
    assert len(ours.calibrated_classifiers_) == len(ref.calibrated_classifiers_)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("ensemble", [True, False])
def test_calibrated_classifier_sample_weight_matches_sklearn(method, ensemble):
    X, y = make_imbalanced(n_samples=1500, weights=(0.9, 0.1))
    w = np.random.default_rng(0).random(y.shape[0])
    ours = CalibratedClassifier(LogisticRegression(), method=method, ensemble=ensemble)
    ref = CalibratedClassifierCV(LogisticRegression(), method=method, ensemble=ensemble)
    assert_allclose(ours.fit(X, y, sample_weight=w).predict_proba(X),
                    ref.fit(X, y, sample_weight=w).predict_proba(X), atol=1e-6)
    pipe = make_pipeline(SMOTE(random_state=0), LogisticRegression())
    with pytest.warns(UserWarning, match="does not take sample_weight"):
        CalibratedClassifier(pipe, method=method).fit(X, y, sample_weight=w)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibrated_classifier_multiclass_and_prefit(method):
    X, y = make_imbalanced(n_samples=1500, n_classes=3, weights=(0.7, 0.2, 0.1))
    labels = np.array(["a", "b", "c"])[y]
    ours = CalibratedClassifier(LogisticRegression(), method=method).fit(X, labels)
    ref = CalibratedClassifierCV(LogisticRegression(), method=method).fit(X, labels)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert_array_equal(ours.predict(X), ref.predict(X))
    fitted = LogisticRegression().fit(X, labels)
    ours = CalibratedClassifier(FrozenEstimator(fitted), method=method).fit(X, labels)
    ref = CalibratedClassifierCV(FrozenEstimator(fitted), method=method).fit(X, labels)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    ours2 = CalibratedClassifier(fitted, method=method, cv="prefit").fit(X, labels)
    assert_allclose(ours2.predict_proba(X), ours.predict_proba(X))


def test_calibrated_classifier_in_pipeline_with_sampler():
    X, y = make_imbalanced(n_samples=1500, weights=(0.9, 0.1))
    pipe = make_pipeline(SMOTE(random_state=0), LogisticRegression())
    proba = CalibratedClassifier(pipe, method="isotonic").fit(X, y).predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    assert_allclose(proba.sum(axis=1), 1.0)


# (scikit-learn's checks skip IsotonicRegression: they cannot build 1-D inputs)
@parametrize_with_checks([CalibratedClassifier(LogisticRegression()),
                          PriorCorrectedClassifier(LogisticRegression())])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------
# prior shift
# ---------------------------------------------------------------------------------------
def test_correct_prior_shift_formula():
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    pi, pi_r = 0.02, 0.5
    expected = (pi / pi_r) * p / ((pi / pi_r) * p + ((1 - pi) / (1 - pi_r)) * (1 - p))
    assert_allclose(correct_prior_shift(p, pi_r, pi), expected)
    two = correct_prior_shift(np.column_stack([1 - p, p]), [1 - pi_r, pi_r], [1 - pi, pi])
    assert_allclose(two[:, 1], expected)
    assert_allclose(two.sum(axis=1), 1)
    # counts work as priors, and equal priors change nothing
    assert_allclose(correct_prior_shift(np.column_stack([1 - p, p]), [50, 50], [98, 2])[:, 1],
                    expected)
    q = np.random.default_rng(0).dirichlet([1, 1, 1], size=20)
    assert_allclose(correct_prior_shift(q, [0.2, 0.3, 0.5], [0.2, 0.3, 0.5]), q)


@pytest.mark.parametrize("proba, r, t, match", [
    ([0.2, 1.2], 0.5, 0.1, r"in \[0, 1\]"),
    ([0.2, 0.3], 1.5, 0.1, "positive class's share"),
    ([[0.2, 0.8]], [0.5, 0.5, 0.0], [0.1, 0.9], "must have 2 entries"),
    ([[0.2, 0.8]], [0.5, -0.5], [0.1, 0.9], "positive class shares"),
    ([[0.2, np.nan]], [0.5, 0.5], [0.1, 0.9], "NaN"),
])
def test_correct_prior_shift_bad_input(proba, r, t, match):
    with pytest.raises(ValueError, match=match):
        correct_prior_shift(proba, r, t)


def test_resampled_target_follows_the_samplers():
    X, y = make_imbalanced(n_samples=1000, weights=(0.9, 0.1))
    for sampler in (SMOTE(random_state=0), RandomUnderSampler(random_state=0),
                    SMOTEENN(random_state=0)):
        _, y_res = sampler.fit_resample(X, y)
        assert_array_equal(np.bincount(resampled_target(sampler, y)), np.bincount(y_res))
    with pytest.raises(ValueError, match="Cannot tell the class counts"):
        resampled_target(object(), y)


def test_prior_correction_lowers_calibration_error_after_smote():
    X, y = make_imbalanced(n_samples=20000, weights=(0.97, 0.03), random_state=5)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, stratify=y,
                                              random_state=0)
    pipe = make_pipeline(SMOTE(random_state=0), LogisticRegression())
    raw = pipe.fit(X_tr, y_tr).predict_proba(X_te)[:, 1]
    corrected = PriorCorrectedClassifier(pipe).fit(X_tr, y_tr)
    assert_allclose(corrected.true_prior_, np.bincount(y_tr) / len(y_tr))
    assert_allclose(corrected.resampled_prior_, [0.5, 0.5])
    fixed = corrected.predict_proba(X_te)[:, 1]
    ece_raw, ece_fixed = (expected_calibration_error(y_te, p) for p in (raw, fixed))
    brier_raw, brier_fixed = (brier_score(y_te, p) for p in (raw, fixed))
    assert ece_fixed < 0.5 * ece_raw
    assert brier_fixed < brier_raw
    # explicit priors are used as given; a plain classifier is left alone
    manual = PriorCorrectedClassifier(pipe, true_prior=[0.9, 0.1], resampled_prior=[1, 1])
    assert_allclose(manual.fit(X_tr, y_tr).true_prior_, [0.9, 0.1])
    plain = PriorCorrectedClassifier(LogisticRegression()).fit(X_tr, y_tr)
    assert_allclose(plain.predict_proba(X_te),
                    LogisticRegression().fit(X_tr, y_tr).predict_proba(X_te))


# ---------------------------------------------------------------------------------------
# reliability measures
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 5, 13])
def test_calibration_curve_matches_sklearn(strategy, n_bins):
    rng = np.random.default_rng(3)
    p = rng.random(2000) ** 2
    y = (rng.random(2000) < p).astype(int)
    ours = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    ref = sk_calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    assert_allclose(ours[0], ref[0])
    assert_allclose(ours[1], ref[1])


def test_calibration_errors_and_brier():
    rng = np.random.default_rng(4)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(int)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10)
    ids = np.minimum((p * 10).astype(int), 9)
    counts = np.bincount(ids, minlength=10)
    gaps = np.abs(prob_true - prob_pred)
    assert expected_calibration_error(y, p) == pytest.approx(
        np.sum(counts[counts > 0] / len(p) * gaps))
    assert maximum_calibration_error(y, p) == pytest.approx(gaps.max())
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p))
    w = rng.random(5000)
    assert brier_score(y, p, sample_weight=w) == pytest.approx(
        brier_score_loss(y, p, sample_weight=w))
    assert expected_calibration_error(y, np.clip(p * 3, 0, 1)) > expected_calibration_error(y, p)


@pytest.mark.parametrize("y, p, kwargs, match", [
    ([0, 1, 1], [0.1, 1.2, 0.3], {}, r"outside \[0, 1\]"),
    ([0, 1, 1], [0.1, np.nan, 0.3], {}, "NaN"),
    ([0, 1, 2], [0.1, 0.2, 0.3], {}, "exactly two classes"),
    ([0, 1, 1], [0.1, 0.2], {}, "inconsistent numbers of samples"),
    ([0, 1, 1], [0.1, 0.2, 0.3], {"n_bins": 0}, "n_bins must be a positive integer"),
    ([0, 1, 1], [0.1, 0.2, 0.3], {"strategy": "nope"}, "strategy must be"),
])
def test_reliability_bad_input(y, p, kwargs, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(y, p, **kwargs)


def test_reliability_display():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    X, y = make_imbalanced(n_samples=1000)
    clf = LogisticRegression().fit(X, y)
    disp = ReliabilityDisplay.from_estimator(clf, X, y, n_bins=8)
    assert disp.line_.get_label().startswith("LogisticRegression (ECE")
    disp = ReliabilityDisplay.from_predictions(y, clf.predict_proba(X)[:, 1], name="m")
    assert disp.ax_ is not None


def test_fit_sigmoid_start_changes_only_the_path():
    from fastimb.calibration import fit_sigmoid

    rng = np.random.RandomState(0)
    y = (rng.rand(5000) < 0.1).astype(int)
    s = rng.normal(size=5000) + 2 * y
    w = rng.uniform(0.5, 2.0, size=5000)
    for weights in (None, w):
        plain = fit_sigmoid(s, y, weights)
        for start in [(0.0, 0.0), (-3.0, 4.0), plain, (plain[0] * 1.1, plain[1] - 0.2)]:
            # the same optimum, to the precision the stopping rule asks for (a relative
            # Newton decrement of 1e-12 in the loss leaves ~1e-6 in the parameters)
            assert_allclose(fit_sigmoid(s, y, weights, start=start), plain, rtol=1e-5)
