"""Probability calibration: isotonic regression (PAV), Platt scaling, prior-shift correction
and reliability measures.

* :func:`isotonic_regression` and :class:`IsotonicRegression`: drop-ins for scikit-learn's,
  on a compiled O(n) pool-adjacent-violators after one sort, and a compiled parallel
  interpolation for ``predict``;
* :class:`CalibratedClassifier`: isotonic or sigmoid (Platt) calibration on
  cross-validated or held-out scores, as scikit-learn's ``CalibratedClassifierCV`` does it
  (one-vs-rest for more than two classes);
* :func:`correct_prior_shift` and :class:`PriorCorrectedClassifier`: map probabilities
  learnt on resampled data (SMOTE, under-sampling...) back to the true class prior, the
  priors read from the data and from the fitted samplers of an imblearn ``Pipeline``;
* :func:`calibration_curve`, :func:`expected_calibration_error`,
  :func:`maximum_calibration_error`, :func:`brier_score` and :class:`ReliabilityDisplay`.
"""
import math
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.base import (BaseEstimator, RegressorMixin, TransformerMixin, _fit_context,
                          clone)
from sklearn.model_selection import check_cv
from sklearn.svm import LinearSVC
from sklearn.utils import indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (_num_samples, check_array, check_consistent_length,
                                      check_is_fitted, column_or_1d)

from fastimb._kernels import _isotonic, _sigmoid
from fastimb._kernels._openmp_helpers import effective_n_threads
from fastimb._plotting import get_axes
from fastimb.base import WrappingClassifierMixin, fit_on_rows, fold_buffers
from fastimb._rows import gather_rows
from fastimb._sorting import sorted_values
from fastimb._validation import check_sample_weight_nonneg, encode_labels


# ---------------------------------------------------------------------------------------
# isotonic regression
# ---------------------------------------------------------------------------------------
def _pav(y, w, increasing, copy=True):
    """Monotone weighted least-squares fit of ``y`` (a float64 copy unless ``copy=False``
    and ``y`` already is a float64 array of the caller's own), weights ``w`` > 0."""
    fit = np.array(y, dtype=np.float64, copy=copy)
    n = fit.shape[0]
    _isotonic.pav_inplace(fit, np.ascontiguousarray(w, dtype=np.float64), bool(increasing),
                          np.empty(n), np.empty(n), np.empty(n, dtype=np.intp))
    return fit


def isotonic_regression(y, *, sample_weight=None, y_min=None, y_max=None, increasing=True):
    """Weighted least-squares fit of ``y`` under an order constraint (pool-adjacent-violators).

    A drop-in for :func:`sklearn.isotonic.isotonic_regression`.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The data, in the order the fit must respect.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights (1 when None). A point of weight 0 does not pull the fit; it
        takes the value of the fit at its nearest positive-weight point before it (after
        it at the start).
    y_min, y_max : float, default=None
        Bounds the fitted values are clipped to.
    increasing : bool, default=True
        Non-decreasing (True) or non-increasing (False) fit.

    Returns
    -------
    ndarray of shape (n_samples,), in the dtype of ``y`` (float32 kept).
    """
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=[np.float64, np.float32],
                                 input_name="y"))
    w = check_sample_weight_nonneg(sample_weight, y.shape[0])
    positive = w > 0
    if not positive.any():
        raise ValueError("sample_weight must have at least one positive weight.")
    if positive.all():
        fit = _pav(y, w, increasing)
    else:
        where = np.flatnonzero(positive)
        sub = _pav(y[where], w[where], increasing)
        # each zero-weight point copies the nearest positive-weight point before it
        owner = np.maximum(np.searchsorted(where, np.arange(y.shape[0]), side="right") - 1, 0)
        fit = sub[owner]
    _clip(fit, y_min, y_max)
    return fit.astype(y.dtype, copy=False)


def _clip(fit, y_min, y_max):
    """Clip ``fit`` in place to the optional bounds."""
    if y_min is not None or y_max is not None:
        np.clip(fit, -np.inf if y_min is None else y_min, np.inf if y_max is None else y_max,
                out=fit)


def check_increasing(x, y):
    """Whether ``y`` rises with ``x`` (Spearman's rho >= 0), warning when the 95% Fisher
    interval of rho contains 0, as :func:`sklearn.isotonic.check_increasing` does."""
    rho = spearmanr(x, y).statistic
    n = len(x)
    if rho not in (-1.0, 1.0) and n > 3:
        z = math.atanh(rho)
        half = 1.96 / math.sqrt(n - 3)
        if math.tanh(z - half) < 0 < math.tanh(z + half):
            warnings.warn("Confidence interval of the Spearman correlation coefficient spans "
                          "zero. Determination of ``increasing`` may be suspect.")
    return bool(rho >= 0)


def _check_1d_input(X, dtype):
    X = check_array(X, input_name="X", dtype=dtype, ensure_2d=False)
    if not (X.ndim == 1 or (X.ndim == 2 and X.shape[1] == 1)):
        raise ValueError("Isotonic regression input X should be a 1d array or 2d array with "
                         "1 feature")
    return np.ascontiguousarray(X.reshape(-1))


def _pool_ties(X, y, w):
    """Sorted distinct ``X`` (within the dtype's resolution), the weighted mean of ``y`` and
    the summed weight of each."""
    n = X.shape[0]
    xs = np.empty(n, dtype=X.dtype)
    ys, ws = np.empty(n), np.empty(n)
    eps = float(np.finfo(X.dtype).resolution)
    one = y == 1
    if w is None and np.all(one | (y == 0)):
        # np.compress: much faster than boolean indexing on an unpredictable mask
        ones = sorted_values(np.compress(one, X), overwrite=True)
        zeros = sorted_values(np.compress(~one, X), overwrite=True)
        m = _isotonic.pool_ties_binary(ones, zeros, eps, xs, ys, ws)
    else:
        m = _isotonic.pool_ties(X, y, np.empty(0) if w is None else w,
                                np.argsort(X).astype(np.intp, copy=False), eps, xs, ys, ws)
    return xs[:m], ys[:m], ws[:m]


class IsotonicRegression(RegressorMixin, TransformerMixin, BaseEstimator):
    """Isotonic regression: a drop-in for :class:`sklearn.isotonic.IsotonicRegression`.

    Same parameters, attributes and predictions (allclose: sums run in double and in
    another order). ``fit`` sorts once, pools points of equal ``X`` (within the dtype's
    resolution, as scikit-learn does) and runs a compiled pool-adjacent-violators;
    ``predict`` interpolates with a compiled parallel binary search.

    Parameters
    ----------
    y_min, y_max : float, default=None
        Bounds of the fitted values.
    increasing : bool or 'auto', default=True
        The direction; 'auto' picks it from the sign of Spearman's rho.
    out_of_bounds : {'nan', 'clip', 'raise'}, default='nan'
        Predictions for ``X`` outside the training range: NaN, the nearest end value, or
        a ValueError.

    Attributes
    ----------
    X_min_, X_max_ : float
    X_thresholds_, y_thresholds_ : ndarray
        The knots of the fitted step/linear function (redundant knots trimmed).
    increasing_ : bool
    """

    _parameter_constraints = {
        "y_min": [Interval(Real, None, None, closed="both"), None],
        "y_max": [Interval(Real, None, None, closed="both"), None],
        "increasing": ["boolean", StrOptions({"auto"})],
        "out_of_bounds": [StrOptions({"nan", "clip", "raise"})],
    }

    def __init__(self, *, y_min=None, y_max=None, increasing=True, out_of_bounds="nan"):
        self.y_min = y_min
        self.y_max = y_max
        self.increasing = increasing
        self.out_of_bounds = out_of_bounds

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on 1-D ``X`` (or one column) and ``y``."""
        X = _check_1d_input(X, [np.float64, np.float32])
        y = column_or_1d(check_array(y, input_name="y", dtype=X.dtype, ensure_2d=False))
        check_consistent_length(X, y, sample_weight)
        self.increasing_ = (check_increasing(X, y) if self.increasing == "auto"
                            else bool(self.increasing))
        w = None
        if sample_weight is not None:
            w = check_sample_weight_nonneg(sample_weight, X.shape[0])
            keep = w > 0
            if not keep.any():
                raise ValueError("sample_weight must have at least one positive weight.")
            if not keep.all():
                X, y, w = X[keep], y[keep], w[keep]
        xs, ys, ws = _pool_ties(X, y, w)
        fit = _pav(ys, ws, self.increasing_, copy=False)
        _clip(fit, self.y_min, self.y_max)
        fit = fit.astype(X.dtype, copy=False)
        self.X_min_, self.X_max_ = xs[0], xs[-1]
        # keep the ends and every knot where the fit changes on either side
        keep = np.ones(xs.shape[0], dtype=bool)
        keep[1:-1] = (fit[1:-1] != fit[:-2]) | (fit[1:-1] != fit[2:])
        self.X_thresholds_, self.y_thresholds_ = xs[keep], fit[keep]
        return self

    def _transform(self, T):
        check_is_fitted(self, "X_thresholds_")
        T = _check_1d_input(T, self.X_thresholds_.dtype)
        if self.out_of_bounds == "clip":
            T = np.clip(T, self.X_min_, self.X_max_)
        elif self.out_of_bounds == "raise" and T.size:
            if T.min() < self.X_min_:
                raise ValueError("A value in x_new is below the interpolation range.")
            if T.max() > self.X_max_:
                raise ValueError("A value in x_new is above the interpolation range.")
        xp, fp = self.X_thresholds_, self.y_thresholds_.astype(T.dtype, copy=False)
        if xp.shape[0] == 1:
            return np.full(T.shape, fp[0], dtype=T.dtype)
        out = np.empty_like(T)
        _isotonic.interpolate(T, xp.astype(T.dtype, copy=False), fp, out,
                              effective_n_threads(None))
        return out

    def predict(self, T):
        """The fitted function at ``T`` (1-D, or one column)."""
        return self._transform(T)

    def transform(self, T):
        """Same as :meth:`predict`."""
        return self._transform(T)

    def get_feature_names_out(self, input_features=None):
        """One output feature: ``['isotonicregression0']``."""
        check_is_fitted(self, "X_thresholds_")
        return np.asarray([f"{type(self).__name__.lower()}0"], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        return tags


# ---------------------------------------------------------------------------------------
# Platt scaling
# ---------------------------------------------------------------------------------------
def fit_sigmoid(scores, y, sample_weight=None, max_iter=100, tol=1e-12, start=None):
    """Platt's sigmoid ``P(y=1 | s) = 1 / (1 + exp(a s + b))``, fitted by Newton's method
    with backtracking (Lin, Lin and Weng, 2007) on Platt's smoothed targets
    ``(n+ + 1) / (n+ + 2)`` and ``1 / (n- + 2)``, as scikit-learn's sigmoid calibration does.
    Each step evaluates the loss, gradient and Hessian in one compiled parallel pass.
    ``start``: an ``(a, b)`` to start from (e.g. the previous fold's fit: the loss is
    convex, so only the number of steps changes), else Platt's ``(0, log((n- + 1) /
    (n+ + 1)))``.

    Returns ``(a, b)``.
    """
    f = np.ascontiguousarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(y) > 0
    w = (np.ones_like(f) if sample_weight is None
         else np.ascontiguousarray(sample_weight, dtype=np.float64))
    n_pos, n_neg = w[positive].sum(), w[~positive].sum()
    t = np.where(positive, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    partial = np.empty((_sigmoid.n_blocks(f.shape[0]), 6))
    terms = np.empty(6)
    # one pass is ~1 ms per 100k points: below a million, threads cost more than they save
    # (and wake up against the BLAS threads of the classifier just fitted)
    n_threads = effective_n_threads(None) if f.shape[0] >= 1 << 20 else 1

    def evaluate(a, b):
        _sigmoid.sigmoid_terms(f, t, w, a, b, partial, terms, n_threads)
        return terms.copy()

    a, b = (0.0, math.log((n_neg + 1.0) / (n_pos + 1.0))) if start is None else \
        (float(start[0]), float(start[1]))
    loss, g_a, g_b, h_aa, h_ab, h_bb = evaluate(a, b)
    for _ in range(max_iter):
        h_aa, h_bb = h_aa + 1e-12, h_bb + 1e-12
        det = h_aa * h_bb - h_ab * h_ab
        step_a = -(h_bb * g_a - h_ab * g_b) / det
        step_b = -(-h_ab * g_a + h_aa * g_b) / det
        decrease = g_a * step_a + g_b * step_b
        if abs(decrease) < tol * max(1.0, abs(loss)):
            break
        step = 1.0
        while step >= 1e-10:
            new = evaluate(a + step * step_a, b + step * step_b)
            if new[0] <= loss + 1e-4 * step * decrease:
                break
            step /= 2
        else:
            break
        a, b = a + step * step_a, b + step * step_b
        loss, g_a, g_b, h_aa, h_ab, h_bb = new
    return a, b


class _SigmoidCalibrator(RegressorMixin, BaseEstimator):
    """Platt scaling as a 1-D regressor (fit on scores and 0/1 targets); ``start``: the
    ``(a, b)`` Newton's method starts from (see :func:`fit_sigmoid`)."""

    def __init__(self, start=None):
        self.start = start

    def fit(self, X, y, sample_weight=None):
        self.a_, self.b_ = fit_sigmoid(column_or_1d(X), column_or_1d(y), sample_weight,
                                       start=self.start)
        return self

    def predict(self, T):
        return expit(-(self.a_ * np.asarray(T, dtype=np.float64).ravel() + self.b_))


# ---------------------------------------------------------------------------------------
# CalibratedClassifier
# ---------------------------------------------------------------------------------------
def _class_scores(estimator, X, n_classes):
    """(n, 1) scores of the positive class for binary, (n, K) otherwise; decision_function
    first, as scikit-learn's calibration does."""
    if hasattr(estimator, "decision_function"):
        s = np.asarray(estimator.decision_function(X), dtype=np.float64)
        return s.reshape(-1, 1) if s.ndim == 1 else s
    p = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    return p[:, 1:] if n_classes == 2 else p


class _CalibratedModel:
    """A fitted classifier and one calibrator per column of its scores."""

    def __init__(self, estimator, calibrators, classes):
        self.estimator = estimator
        self.calibrators = calibrators
        self.classes = classes

    def predict_proba(self, X):
        n_classes = len(self.classes)
        scores = _class_scores(self.estimator, X, n_classes)
        # the estimator may have seen fewer classes than the whole target
        seen = np.searchsorted(self.classes, self.estimator.classes_)
        if n_classes == 2:
            proba = np.empty((scores.shape[0], 2))
            proba[:, 1] = self.calibrators[0].predict(scores[:, 0])
            proba[:, 0] = 1.0 - proba[:, 1]
            return proba
        proba = np.zeros((scores.shape[0], n_classes))
        for j, (col, cal) in enumerate(zip(seen, self.calibrators)):
            proba[:, col] = cal.predict(scores[:, j])
        total = proba.sum(axis=1, keepdims=True)
        out = np.full_like(proba, 1.0 / n_classes)
        np.divide(proba, total, out=out, where=total != 0)
        out[(out > 1.0) & (out <= 1.0 + 1e-5)] = 1.0
        return out


def _fit_calibrators(estimator, scores, y_enc, classes, method, sample_weight,
                     previous=None):
    """One calibrator per column of ``scores``; the sigmoids start from those of
    ``previous`` (the last fold's model: the folds' fits are close) when it has them."""
    n_classes = len(classes)
    seen = np.searchsorted(classes, estimator.classes_)
    columns = [1] if n_classes == 2 else list(seen)
    starts = ([(c.a_, c.b_) for c in previous.calibrators]
              if previous is not None and method == "sigmoid" and
              len(previous.calibrators) == len(columns) else [None] * len(columns))
    calibrators = []
    for j, col in enumerate(columns):
        cal = (IsotonicRegression(out_of_bounds="clip") if method == "isotonic"
               else _SigmoidCalibrator(start=starts[j]))
        cal.fit(scores[:, j], (y_enc == col).astype(np.float64), sample_weight=sample_weight)
        calibrators.append(cal)
    return _CalibratedModel(estimator, calibrators, classes)


def _fit_one_fold(estimator, X, y, train, test, n_classes, fit_params, buffers):
    """The estimator fitted on ``train`` and its scores on ``test``."""
    fit_on_rows(estimator, X, y, train, fit_params, buffers)
    return estimator, buffers.apply(X, test, "test",
                                    lambda X_test: _class_scores(estimator, X_test, n_classes))


def _is_frozen(estimator):
    return type(estimator).__name__ == "FrozenEstimator"


class CalibratedClassifier(WrappingClassifierMixin, BaseEstimator):
    """Probability calibration with isotonic regression or Platt's sigmoid.

    Comparable to scikit-learn's ``CalibratedClassifierCV`` (same parameters, the same
    folds give the same calibrated probabilities up to the calibrators' rounding), with
    fastimb's compiled isotonic regression. More than two classes: one calibrator per
    class (one-vs-rest) and the probabilities renormalised.

    Parameters
    ----------
    estimator : estimator object, default=None
        The classifier (``LinearSVC()`` when None). Its ``decision_function`` is
        calibrated when it has one, else ``predict_proba``.
    method : {'sigmoid', 'isotonic'}, default='sigmoid'
    cv : int, cross-validation generator, iterable or 'prefit', default=None
        None means 5-fold (stratified). 'prefit' (or a ``FrozenEstimator``): the estimator
        is already fitted and is calibrated on the data given to ``fit``.
    n_jobs : int, default=None
        Folds fitted in parallel by joblib.
    ensemble : bool or 'auto', default='auto'
        True: one (classifier, calibrator) pair per fold, probabilities averaged. False:
        the calibrator is fitted on the pooled test-fold scores and the classifier refitted
        on all the data. 'auto': True, except for a prefit/frozen estimator.

    Attributes
    ----------
    classes_ : ndarray
    calibrated_classifiers_ : list
        The (classifier, calibrators) pairs; each has ``estimator``, ``calibrators`` and
        ``predict_proba``.
    n_features_in_, feature_names_in_
        From the classifier, when it has them.
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"]), None],
        "method": [StrOptions({"sigmoid", "isotonic"})],
        "cv": ["cv_object", StrOptions({"prefit"})],
        "n_jobs": [Integral, None],
        "ensemble": ["boolean", StrOptions({"auto"})],
    }

    def __init__(self, estimator=None, *, method="sigmoid", cv=None, n_jobs=None,
                 ensemble="auto"):
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.n_jobs = n_jobs
        self.ensemble = ensemble

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the classifier(s) and the calibrators."""
        X, y = indexable(X, self._check_target(y))
        check_consistent_length(X, y)
        check_classification_targets(y)
        self.classes_, y_enc = encode_labels(y)
        n_classes = self.classes_.shape[0]
        if n_classes < 2:
            raise ValueError(f"Classifier can't train when only one class is present: "
                             f"{self.classes_.tolist()}.")
        estimator = LinearSVC(random_state=0) if self.estimator is None else self.estimator
        sample_weight, fit_params = self._route_sample_weight(
            estimator, sample_weight, _num_samples(X), fit_params)

        def calibrate(fitted, scores, rows, previous=None):
            return _fit_calibrators(fitted, scores, y_enc[rows], self.classes_, self.method,
                                    None if sample_weight is None else sample_weight[rows],
                                    previous)

        if self.cv == "prefit" or _is_frozen(estimator):
            check_is_fitted(estimator)
            self.calibrated_classifiers_ = [calibrate(
                estimator, _class_scores(estimator, X, n_classes), slice(None))]
        else:
            splits = list(check_cv(5 if self.cv is None else self.cv, y,
                                   classifier=True).split(X, y))
            buffers = fold_buffers(self.n_jobs)
            folds = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_one_fold)(clone(estimator), X, y, train, test, n_classes,
                                       fit_params, buffers)
                for train, test in splits)
            if self.ensemble in (True, "auto"):
                self.calibrated_classifiers_ = []
                previous = None
                for (fitted, scores), (_, test) in zip(folds, splits):
                    previous = calibrate(fitted, scores, test, previous)
                    self.calibrated_classifiers_.append(previous)
            else:
                self.calibrated_classifiers_ = [calibrate(
                    clone(estimator).fit(X, y, **fit_params),
                    np.concatenate([scores for _, scores in folds]),
                    np.concatenate([test for _, test in splits]))]
        self._copy_input_attributes(self.calibrated_classifiers_[0].estimator)
        return self

    def predict_proba(self, X):
        """Calibrated probabilities, averaged over the fold models."""
        check_is_fitted(self, "calibrated_classifiers_")
        proba = self.calibrated_classifiers_[0].predict_proba(X)
        for model in self.calibrated_classifiers_[1:]:
            proba += model.predict_proba(X)
        return proba / len(self.calibrated_classifiers_)

    def predict(self, X):
        """The class of highest calibrated probability."""
        check_is_fitted(self, "calibrated_classifiers_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# ---------------------------------------------------------------------------------------
# prior shift
# ---------------------------------------------------------------------------------------
def _as_prior(prior, n_classes, name):
    p = np.asarray(prior, dtype=np.float64).ravel()
    if p.shape[0] != n_classes:
        raise ValueError(f"{name} must have {n_classes} entries; got {p.shape[0]}.")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError(f"{name} must hold positive class shares (or counts); got "
                         f"{p.tolist()}.")
    return p / p.sum()


def correct_prior_shift(proba, resampled_prior, true_prior):
    """Map probabilities learnt under one class prior to another (Bayes' rule).

    With ``r_k = true_prior_k / resampled_prior_k``, ``p_k <- r_k p_k / sum_j r_j p_j``;
    for two classes, ``p = (pi/pi') p' / ((pi/pi') p' + ((1-pi)/(1-pi')) (1-p'))``.

    Parameters
    ----------
    proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        1-D: the positive-class probability of a binary problem (then the priors are the
        positive class's, scalars); 2-D: one column per class.
    resampled_prior : float or array-like of shape (n_classes,)
        The class shares (or counts) of the data the model learnt from (after resampling).
    true_prior : float or array-like of shape (n_classes,)
        The class shares (or counts) the probabilities should reflect.

    Returns
    -------
    ndarray of the shape of ``proba``.
    """
    p = check_array(proba, ensure_2d=False, dtype=np.float64, input_name="proba")
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError("proba must hold probabilities in [0, 1].")
    if p.ndim == 1:
        for name, v in (("resampled_prior", resampled_prior), ("true_prior", true_prior)):
            if not (isinstance(v, Real) and 0 < v < 1):
                raise ValueError(f"With 1-D proba, {name} must be the positive class's share "
                                 f"in (0, 1); got {v!r}.")
        pos = correct_prior_shift(np.column_stack([1 - p, p]),
                                  [1 - resampled_prior, resampled_prior],
                                  [1 - true_prior, true_prior])
        return pos[:, 1]
    k = p.shape[1]
    ratio = _as_prior(true_prior, k, "true_prior") / _as_prior(resampled_prior, k,
                                                              "resampled_prior")
    out = p * ratio
    total = out.sum(axis=1, keepdims=True)
    np.divide(out, total, out=out, where=total > 0)
    return out


def resampled_target(sampler, y):
    """The target a fitted sampler produced from ``y`` (its labels, in its output order).

    Works for samplers with ``sample_indices_`` (random, Tomek, ENN...), for over-samplers
    that append ``sampling_strategy_[c]`` samples of each class ``c`` (SMOTE, Borderline;
    ADASYN's count per class may differ by rounding) and for SMOTEENN / SMOTETomek
    (``smote_`` then the cleaner). Raises ValueError for anything else.
    """
    y = np.asarray(y)
    if hasattr(sampler, "smote_"):
        cleaner = getattr(sampler, "enn_", None) or getattr(sampler, "tomek_", None)
        return resampled_target(cleaner, resampled_target(sampler.smote_, y))
    if hasattr(sampler, "sample_indices_"):
        return y[sampler.sample_indices_]
    strategy = getattr(sampler, "sampling_strategy_", None)
    if getattr(sampler, "_sampling_type", None) == "over-sampling" and isinstance(strategy,
                                                                                dict):
        return np.concatenate([y] + [np.full(int(n), c, dtype=y.dtype)
                                     for c, n in strategy.items()])
    raise ValueError(f"Cannot tell the class counts after {type(sampler).__name__}; pass "
                     "resampled_prior explicitly.")


def _class_shares(y, classes, sample_weight=None):
    idx = np.searchsorted(classes, y)
    counts = np.bincount(idx, weights=sample_weight, minlength=len(classes))
    return counts / counts.sum()


class PriorCorrectedClassifier(WrappingClassifierMixin, BaseEstimator):
    """Probabilities of a model trained on resampled data, mapped back to the true prior.

    Fits ``estimator`` (typically an imblearn ``Pipeline`` with a fastimb or imblearn
    sampler), reads the class shares of the training target (``true_prior``) and of what
    the pipeline's fitted samplers passed on (``resampled_prior``), and applies
    :func:`correct_prior_shift` to ``predict_proba``. No held-out data is needed.

    Parameters
    ----------
    estimator : estimator object
        A classifier with ``predict_proba``.
    true_prior : array-like of shape (n_classes,), default=None
        The class shares to calibrate to; None: those of ``y`` in ``fit`` (weighted).
    resampled_prior : array-like of shape (n_classes,), default=None
        The class shares the model learnt from; None: read from the samplers of the
        fitted pipeline (:func:`resampled_target`); without samplers, ``true_prior``.

    Attributes
    ----------
    estimator_, classes_, true_prior_, resampled_prior_
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "true_prior": ["array-like", None],
        "resampled_prior": ["array-like", None],
    }

    def __init__(self, estimator, *, true_prior=None, resampled_prior=None):
        self.estimator = estimator
        self.true_prior = true_prior
        self.resampled_prior = resampled_prior

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the estimator and read the two priors."""
        y = self._check_target(y)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = check_sample_weight_nonneg(sample_weight, y.shape[0])
            fit_params = {**fit_params, "sample_weight": sample_weight}
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.classes_ = np.asarray(self.estimator_.classes_)
        k = len(self.classes_)
        if self.true_prior is None:
            self.true_prior_ = _class_shares(y, self.classes_, sample_weight)
        else:
            self.true_prior_ = _as_prior(self.true_prior, k, "true_prior")
        samplers = [step for _, step in getattr(self.estimator_, "steps", [])[:-1]
                    if hasattr(step, "fit_resample")]
        if self.resampled_prior is not None:
            self.resampled_prior_ = _as_prior(self.resampled_prior, k, "resampled_prior")
        elif not samplers:
            # nothing resampled: the model learnt the training prior itself
            self.resampled_prior_ = _class_shares(y, self.classes_, sample_weight)
        else:
            y_seen = y
            for sampler in samplers:
                y_seen = resampled_target(sampler, y_seen)
            self.resampled_prior_ = _class_shares(y_seen, self.classes_)
        self._copy_input_attributes(self.estimator_)
        return self

    def predict_proba(self, X):
        """The estimator's probabilities under the true prior."""
        check_is_fitted(self, "estimator_")
        return correct_prior_shift(self.estimator_.predict_proba(X), self.resampled_prior_,
                                   self.true_prior_)

    def predict(self, X):
        """The class of highest corrected probability."""
        check_is_fitted(self, "estimator_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# ---------------------------------------------------------------------------------------
# reliability measures
# ---------------------------------------------------------------------------------------
def _binary_prob(y_true, y_prob, pos_label, sample_weight):
    from fastimb.threshold import _check_scores

    positive, prob, w, _ = _check_scores(y_true, y_prob, pos_label, sample_weight)
    if prob.size and (prob.min() < 0 or prob.max() > 1):
        raise ValueError("y_prob has values outside [0, 1].")
    return positive.astype(np.float64), prob.astype(np.float64, copy=False), w


def _bins(y, p, w, n_bins, strategy):
    """Per non-empty bin: (weight, sum of w*y, sum of w*p)."""
    if not (isinstance(n_bins, Integral) and n_bins >= 1):
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}.")
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile'; got {strategy!r}.")
    ids = np.searchsorted(edges[1:-1], p)
    w = np.ones_like(p) if w is None else w
    tot = np.bincount(ids, weights=w, minlength=len(edges))
    true = np.bincount(ids, weights=w * y, minlength=len(edges))
    pred = np.bincount(ids, weights=w * p, minlength=len(edges))
    nz = tot != 0
    return tot[nz], true[nz], pred[nz]


def calibration_curve(y_true, y_prob, *, pos_label=None, n_bins=5, strategy="uniform",
                      sample_weight=None):
    """Observed positive share and mean predicted probability per non-empty bin.

    Same bins and outputs as :func:`sklearn.calibration.calibration_curve` (plus
    ``sample_weight``).

    Returns
    -------
    prob_true, prob_pred : ndarray of shape (n_nonempty_bins,)
    """
    y, p, w = _binary_prob(y_true, y_prob, pos_label, sample_weight)
    tot, true, pred = _bins(y, p, w, n_bins, strategy)
    return true / tot, pred / tot


def expected_calibration_error(y_true, y_prob, *, pos_label=None, n_bins=10,
                               strategy="uniform", sample_weight=None):
    """``sum_b (n_b / n) |observed_b - predicted_b|`` over the bins of
    :func:`calibration_curve`."""
    y, p, w = _binary_prob(y_true, y_prob, pos_label, sample_weight)
    tot, true, pred = _bins(y, p, w, n_bins, strategy)
    return float(np.sum(np.abs(true - pred)) / tot.sum())


def maximum_calibration_error(y_true, y_prob, *, pos_label=None, n_bins=10,
                              strategy="uniform", sample_weight=None):
    """``max_b |observed_b - predicted_b|`` over the non-empty bins."""
    y, p, w = _binary_prob(y_true, y_prob, pos_label, sample_weight)
    tot, true, pred = _bins(y, p, w, n_bins, strategy)
    return float(np.max(np.abs(true - pred) / tot))


def brier_score(y_true, y_prob, *, pos_label=None, sample_weight=None):
    """Mean squared difference between ``y_prob`` and the 0/1 outcome (weighted)."""
    y, p, w = _binary_prob(y_true, y_prob, pos_label, sample_weight)
    return float(np.average((p - y) ** 2, weights=w))


class ReliabilityDisplay:
    """Reliability diagram: observed positive share against mean predicted probability.

    Build it with :meth:`from_predictions` or :meth:`from_estimator`, draw with
    :meth:`plot` (matplotlib needed only for that).

    Parameters
    ----------
    prob_true, prob_pred : ndarray
        As returned by :func:`calibration_curve`.
    ece : float
        Expected calibration error (shown in the legend).
    name : str, default=None
    """

    def __init__(self, prob_true, prob_pred, ece, name=None):
        self.prob_true = prob_true
        self.prob_pred = prob_pred
        self.ece = ece
        self.name = name

    def plot(self, ax=None, *, name=None, ref_line=True, **kwargs):
        """Draw on ``ax`` (a new figure when None); sets ``ax_``, ``figure_``, ``line_``."""
        ax = get_axes(ax)
        name = name or self.name or "model"
        if ref_line:
            ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
        (self.line_,) = ax.plot(self.prob_pred, self.prob_true, "s-",
                                label=f"{name} (ECE {self.ece:.4f})", **kwargs)
        ax.set(xlabel="mean predicted probability", ylabel="fraction of positives",
               xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        ax.legend(loc="upper left")
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, n_bins=10, strategy="uniform",
                         pos_label=None, name=None, ax=None, **kwargs):
        """Bin ``y_prob`` and plot."""
        prob_true, prob_pred = calibration_curve(y_true, y_prob, pos_label=pos_label,
                                                 n_bins=n_bins, strategy=strategy)
        ece = expected_calibration_error(y_true, y_prob, pos_label=pos_label, n_bins=n_bins,
                                         strategy=strategy)
        return cls(prob_true, prob_pred, ece, name).plot(ax, **kwargs)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, pos_label=None, name=None, **kwargs):
        """Plot the positive-class ``predict_proba`` of a fitted binary classifier."""
        classes = list(estimator.classes_)
        pos_label = classes[-1] if pos_label is None else pos_label
        prob = estimator.predict_proba(X)[:, classes.index(pos_label)]
        return cls.from_predictions(y, prob, pos_label=pos_label,
                                    name=name or type(estimator).__name__, **kwargs)
