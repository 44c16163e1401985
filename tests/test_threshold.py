"""Threshold sweep, best threshold, ThresholdClassifier and ThresholdDisplay."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.pipeline import make_pipeline
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (confusion_matrix_at_thresholds, f1_score, fbeta_score,
                             precision_recall_curve, roc_curve)
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastimb.over_sampling import SMOTE
from fastimb.threshold import (ConstraintWarning, ThresholdClassifier, ThresholdDisplay,
                               best_threshold, threshold_sweep)
from tests.conftest import make_imbalanced


def _scores(n=2000, ties=True, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(int)
    s = rng.random(n) + 0.4 * y
    if ties:
        s = np.round(s, 2)
    return y, s.astype(dtype)


# ---------------------------------------------------------------------------------------
# the sweep against scikit-learn
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ties", [True, False])
def test_sweep_equals_sklearn_counts_and_curves(dtype, ties):
    y, s = _scores(ties=ties, dtype=dtype)
    sw = threshold_sweep(y, s)
    tns, fps, fns, tps, thr = confusion_matrix_at_thresholds(y, s)
    assert sw.thresholds.dtype == dtype
    assert_array_equal(sw.thresholds, thr)
    assert_array_equal(sw.tp, tps)
    assert_array_equal(sw.fp, fps)
    assert_array_equal(sw.fn, fns)
    assert_array_equal(sw.tn, tns)
    assert_array_equal(sw.n_predicted, tps + fps)
    precision, recall, pr_thr = precision_recall_curve(y, s)
    assert_array_equal(pr_thr, sw.thresholds[::-1])
    assert_allclose(precision[:-1], sw.precision[::-1], rtol=1e-15)
    assert_allclose(recall[:-1], sw.recall[::-1], rtol=1e-15)
    fpr, tpr, roc_thr = roc_curve(y, s, drop_intermediate=False)
    assert_array_equal(roc_thr[1:], sw.thresholds)
    assert_allclose(fpr[1:], sw.fpr, rtol=1e-15)
    assert_allclose(tpr[1:], sw.tpr, rtol=1e-15)


@pytest.mark.parametrize("labels, pos_label", [((0, 1), None), ((-1, 1), None),
                                               (("a", "b"), "a"), (("a", "b"), "b"),
                                               ((False, True), True), ((3, 7), 3)])
def test_sweep_label_encodings(labels, pos_label):
    y01, s = _scores()
    y = np.asarray(labels)[y01]
    sw = threshold_sweep(y, s, pos_label=pos_label)
    ref_pos = 1 if pos_label is None else pos_label
    _, fps, _, tps, thr = confusion_matrix_at_thresholds(y, s, pos_label=ref_pos)
    assert_array_equal(sw.thresholds, thr)
    assert_array_equal(sw.tp, tps)
    assert_array_equal(sw.fp, fps)
    assert sw.pos_label == ref_pos


def test_sweep_weighted_equals_sklearn():
    y, s = _scores()
    w = np.random.default_rng(1).random(y.shape[0]) * 3
    w[::7] = 0
    sw = threshold_sweep(y, s, sample_weight=w)
    tns, fps, fns, tps, thr = confusion_matrix_at_thresholds(y, s, sample_weight=w)
    assert_array_equal(sw.thresholds, thr)
    assert_allclose(sw.tp, tps, rtol=1e-12)
    assert_allclose(sw.fp, fps, rtol=1e-12)
    assert_allclose(sw.tn, tns, rtol=1e-9, atol=1e-9)
    assert sw.n_samples == np.count_nonzero(w)
    assert_array_equal(sw.n_predicted,
                       [np.count_nonzero((s >= t) & (w != 0)) for t in sw.thresholds])
    # unit weights give the unweighted sweep
    sw1, sw0 = threshold_sweep(y, s, sample_weight=np.ones_like(s)), threshold_sweep(y, s)
    for a in ("thresholds", "tp", "fp", "n_predicted"):
        assert_array_equal(getattr(sw1, a), getattr(sw0, a))


@st.composite
def _labelled_scores(draw):
    n = draw(st.integers(2, 60))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    if y.min() == y.max():
        y[0] = 1 - y[0]
    s = np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), dtype=float) / 2
    weighted = draw(st.booleans())
    w = (np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.5]), min_size=n,
                                max_size=n))) if weighted else None)
    if w is not None:
        w[np.flatnonzero(y == 1)[0]] = 1.0
        w[np.flatnonzero(y == 0)[0]] = 1.0
    signed = draw(st.booleans())
    return (2 * y - 1 if signed else y), s, w


def _brute_counts(y, s, w, pos=1):
    w = np.ones_like(s) if w is None else w
    keep = w != 0
    thr = np.unique(s[keep])[::-1]
    tp = np.array([w[(s >= t) & (y == pos)].sum() for t in thr])
    fp = np.array([w[(s >= t) & (y != pos)].sum() for t in thr])
    npred = np.array([np.count_nonzero((s >= t) & keep) for t in thr])
    return thr, tp, fp, npred


@settings(max_examples=150, deadline=None)
@given(_labelled_scores())
def test_sweep_equals_brute_force(data):
    y, s, w = data
    sw = threshold_sweep(y, s, sample_weight=w)
    thr, tp, fp, npred = _brute_counts(y, s, w)
    assert_array_equal(sw.thresholds, thr)
    assert_allclose(sw.tp, tp)
    assert_allclose(sw.fp, fp)
    assert_array_equal(sw.n_predicted, npred)


# ---------------------------------------------------------------------------------------
# best threshold against brute force
# ---------------------------------------------------------------------------------------
def _brute_best(y, s, objective, **p):
    """(threshold, value) maximising the objective by evaluating every candidate rule."""
    cands = list(np.unique(s)[::-1])
    if objective in ("cost", "alert_budget"):
        cands = [np.inf] + cands
    best = (None, -np.inf)
    for t in cands:
        pred = (s >= t).astype(int)
        tp = np.sum(pred & (y == 1))
        fp = np.sum(pred & (y == 0))
        fn = np.sum((1 - pred) & (y == 1))
        tn = np.sum((1 - pred) & (y == 0))
        tpr, tnr = tp / (tp + fn), tn / (tn + fp)
        prec = tp / (tp + fp) if tp + fp else 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = {
                "f1": lambda: f1_score(y, pred, zero_division=0),
                "fbeta": lambda: fbeta_score(y, pred, beta=p.get("beta", 1), zero_division=0),
                "cost": lambda: -(p["fp_cost"] * fp + p["fn_cost"] * fn) / len(y),
                "youden": lambda: tpr - (1 - tnr),
                "gmean": lambda: np.sqrt(tpr * tnr),
                "balanced_accuracy": lambda: (tpr + tnr) / 2,
                "recall_at_precision": lambda: tpr if prec >= p["min_precision"] else -np.inf,
                "precision_at_recall": lambda: prec if tpr >= p["min_recall"] else -np.inf,
                "alert_budget": lambda: tp if tp + fp <= p["max_alerts"] else -np.inf,
            }[objective]()
        if value > best[1] + 1e-12:
            best = (t, value)
    return best


@pytest.mark.parametrize("objective, params", [
    ("f1", {}), ("fbeta", {"beta": 2.0}), ("fbeta", {"beta": 0.5}),
    ("cost", {"fp_cost": 1.0, "fn_cost": 20.0}), ("cost", {"fp_cost": 50.0, "fn_cost": 1.0}),
    ("youden", {}), ("gmean", {}), ("balanced_accuracy", {}),
    ("recall_at_precision", {"min_precision": 0.6}),
    ("precision_at_recall", {"min_recall": 0.8}),
    ("alert_budget", {"max_alerts": 40}), ("alert_budget", {"max_alerts": 0}),
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_threshold_equals_brute_force(objective, params, seed):
    y, s = _scores(n=300, seed=seed)
    choice = best_threshold(y, s, objective, **params)
    t, value = _brute_best(y, s, objective, **params)
    assert choice.threshold == t
    assert choice.value == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert choice.feasible
    pred = s >= choice.threshold
    assert choice.tp == np.sum(pred & (y == 1))
    assert choice.n_predicted == pred.sum()
    assert choice.f1 == pytest.approx(f1_score(y, pred, zero_division=0))


def test_best_threshold_alert_budget_fraction_and_callable():
    y, s = _scores(n=500)
    c = best_threshold(y, s, "alert_budget", max_alerts=0.05)
    assert c.n_predicted <= 25
    assert c.threshold == _brute_best(y, s, "alert_budget", max_alerts=25)[0]
    # a callable objective: maximise tp - 3 fp
    c2 = best_threshold(y, s, lambda sw: sw.tp - 3 * sw.fp)
    tp = np.array([np.sum((s >= t) & (y == 1)) for t in np.unique(s)[::-1]])
    fp = np.array([np.sum((s >= t) & (y == 0)) for t in np.unique(s)[::-1]])
    assert c2.threshold == np.unique(s)[::-1][np.argmax(tp - 3 * fp)]


def test_infeasible_constraint_warns_and_says_so():
    y = np.array([0, 1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    with pytest.warns(ConstraintWarning, match="No threshold reaches precision >= 0.9"):
        c = best_threshold(y, s, "recall_at_precision", min_precision=0.9)
    assert not c.feasible
    assert c.precision == pytest.approx(0.5)


def test_sweep_at_any_threshold():
    y, s = _scores(n=200)
    sw = threshold_sweep(y, s)
    for t in (-1.0, 0.3, 0.305, 1.0, 5.0):
        c = sw.at(t)
        pred = s >= t
        assert c.tp == np.sum(pred & (y == 1)) and c.fp == np.sum(pred & (y == 0))


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("y, s, kwargs, match", [
    ([1, 1, 1], [0.1, 0.2, 0.3], {}, "exactly two classes"),
    ([0, 1, 2], [0.1, 0.2, 0.3], {}, "exactly two classes"),
    ([0, 1, 1], [0.1, np.nan, 0.3], {}, "NaN"),
    ([0, 1, 1], [0.1, np.inf, 0.3], {}, "infinity"),
    ([0, 1, 1], [0.1, 0.2], {}, "inconsistent numbers of samples"),
    ([0, 1, 1], [0.1, 0.2, 0.3], {"sample_weight": [1, -1, 1]}, "non-negative"),
    ([0, 1, 1], [0.1, 0.2, 0.3], {"sample_weight": [0, 1, 1]}, "positive total"),
    (["a", "b", "b"], [0.1, 0.2, 0.3], {}, "pos_label is not specified"),
    ([0, 1, 1], [0.1, 0.2, 0.3], {"pos_label": 2}, "not a class"),
    ([0.5, 1.5, 1.5], [0.1, 0.2, 0.3], {}, "continuous"),
    ([0, 1, 1], [[0.1, 0.2], [0.3, 0.1], [0.2, 0.2]], {}, "1d array"),
])
def test_sweep_bad_input(y, s, kwargs, match):
    with pytest.raises(ValueError, match=match):
        threshold_sweep(y, s, **kwargs)


@pytest.mark.parametrize("objective, kwargs, match", [
    ("nope", {}, "objective must be one of"),
    ("recall_at_precision", {}, "needs min_precision"),
    ("precision_at_recall", {}, "needs min_recall"),
    ("alert_budget", {}, "needs max_alerts"),
    ("alert_budget", {"max_alerts": 1.5}, "max_alerts must be"),
    ("recall_at_precision", {"min_precision": 2}, r"min_precision must lie in \[0, 1\]"),
    ("fbeta", {"beta": 0}, "beta must be a positive number"),
])
def test_best_threshold_bad_objective(objective, kwargs, match):
    y, s = _scores(n=50)
    with pytest.raises(ValueError, match=match):
        best_threshold(y, s, objective, **kwargs)


def test_inputs_untouched():
    y, s = _scores(n=300)
    w = np.random.default_rng(0).random(300)
    y0, s0, w0 = y.copy(), s.copy(), w.copy()
    for arr in (y, s, w):
        arr.setflags(write=False)
    best_threshold(y, s, "f1", sample_weight=w)
    assert_array_equal(y, y0)
    assert_array_equal(s, s0)
    assert_array_equal(w, w0)


# ---------------------------------------------------------------------------------------
# ThresholdClassifier
# ---------------------------------------------------------------------------------------
def _data(n=800):
    X, y = make_imbalanced(n_samples=n, weights=(0.85, 0.15), random_state=3)
    return X, y


def test_classifier_threshold_is_exact_on_cross_validated_scores():
    X, y = _data()
    est = LogisticRegression()
    clf = ThresholdClassifier(est, objective="f1", store_sweep=True).fit(X, y)
    oof = cross_val_predict(est, X, y, cv=StratifiedKFold(5), method="predict_proba")[:, 1]
    ref = best_threshold(y, oof, "f1")
    assert clf.best_threshold_ == pytest.approx(ref.threshold, rel=1e-12)
    assert clf.best_score_ == pytest.approx(ref.value, rel=1e-12)
    assert len(clf.sweep_) == len(threshold_sweep(y, oof))
    proba = clf.predict_proba(X)[:, 1]
    assert_array_equal(clf.predict(X), (proba >= clf.best_threshold_).astype(int))
    assert_allclose(proba, LogisticRegression().fit(X, y).predict_proba(X)[:, 1])
    assert clf.n_features_in_ == X.shape[1]


def test_classifier_string_labels_pos_label_and_decision_function():
    X, y = _data()
    labels = np.array(["fraud", "ok"])[1 - y]  # positive class 'fraud' sorts first
    clf = ThresholdClassifier(LinearSVC(), pos_label="fraud", objective="cost", fp_cost=1,
                              fn_cost=10).fit(X, labels)
    df = clf.decision_function(X)
    # LinearSVC's decision function favours classes_[1] = 'ok': the scores are negated
    assert_array_equal(clf.predict(X), np.where(-df >= clf.best_threshold_, "fraud", "ok"))
    assert set(clf.classes_) == {"fraud", "ok"}


def test_classifier_prefit_holdout_and_refit_false():
    X, y = _data()
    est = LogisticRegression().fit(X, y)
    clf = ThresholdClassifier(est, cv="prefit").fit(X, y)
    assert clf.estimator_ is est
    assert clf.best_threshold_ == best_threshold(y, est.predict_proba(X)[:, 1]).threshold
    clf = ThresholdClassifier(LogisticRegression(), cv=0.3, refit=False, random_state=0)
    clf.fit(X, y)
    assert clf.estimator_.coef_.shape == (1, X.shape[1])
    with pytest.raises(ValueError, match="refit=False needs a single"):
        ThresholdClassifier(LogisticRegression(), refit=False).fit(X, y)


def test_classifier_in_imblearn_pipeline_and_grid_search():
    X, y = _data()
    pipe = make_pipeline(SMOTE(random_state=0), LogisticRegression())
    clf = ThresholdClassifier(pipe, objective="fbeta", beta=2.0)
    assert clone(clf).get_params()["beta"] == 2.0
    gs = GridSearchCV(clf, {"beta": [0.5, 2.0]}, cv=3, scoring="f1").fit(X, y)
    assert gs.best_params_["beta"] in (0.5, 2.0)
    clf.fit(X, y)
    assert clf.predict(X).shape == y.shape


def test_classifier_sample_weight_and_bad_input():
    X, y = _data()
    w = np.random.default_rng(0).random(y.shape[0])
    ThresholdClassifier(LogisticRegression()).fit(X, y, sample_weight=w)
    pipe = make_pipeline(SMOTE(random_state=0), LogisticRegression())
    with pytest.warns(UserWarning, match="does not take sample_weight"):
        ThresholdClassifier(pipe).fit(X, y, sample_weight=w)
    y3 = y.copy()
    y3[:10] = 2
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        ThresholdClassifier(LogisticRegression()).fit(X, y3)
    with pytest.raises(ValueError, match="needs min_precision"):
        ThresholdClassifier(LogisticRegression(), objective="recall_at_precision").fit(X, y)
    with pytest.raises(ValueError, match="not a class"):
        ThresholdClassifier(LogisticRegression(), pos_label=5).fit(X, y)


def _expected_failures(estimator):
    # predict() thresholds at the tuned value, not at probability 0.5: by design it
    # disagrees with argmax(predict_proba) (scikit-learn's TunedThresholdClassifierCV too)
    reason = "the tuned threshold is not the probability 0.5 of argmax(predict_proba)"
    return {"check_classifiers_train": reason}


@parametrize_with_checks([ThresholdClassifier(LogisticRegression())],
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------
# display
# ---------------------------------------------------------------------------------------
def test_display():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    y, s = _scores(n=10000, ties=False)
    disp = ThresholdDisplay.from_predictions(y, s, objective="cost", fp_cost=1, fn_cost=10)
    assert {"precision", "recall", "f1", "cost", "chosen"} <= set(disp.lines_)
    assert len(disp.lines_["f1"].get_xdata()) <= 4001 + 1
    X, yy = _data()
    clf = ThresholdClassifier(LogisticRegression()).fit(X, yy)
    disp = ThresholdDisplay.from_estimator(clf, X, yy)
    assert disp.choice.threshold == pytest.approx(clf.best_threshold_)
    disp = ThresholdDisplay.from_estimator(LogisticRegression().fit(X, yy), X, yy)
    assert disp.ax_ is not None
