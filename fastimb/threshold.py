"""Exact decision-threshold tuning for binary classifiers.

:func:`threshold_sweep` counts true and false positives at every distinct score in one
sort and one pass; :meth:`ThresholdSweep.best` (and :func:`best_threshold`) picks the
exact optimum of an objective over all of them; :class:`ThresholdClassifier` tunes the
threshold of any classifier on cross-validated scores, and :class:`ThresholdDisplay` plots
the metrics against the threshold.

Conventions (scikit-learn's): a sample is predicted positive when its score is
``>= threshold``; thresholds are the distinct scores, in decreasing order, ties grouped
with ``==`` as :func:`sklearn.metrics.precision_recall_curve` and
:func:`sklearn.metrics.roc_curve` group them; samples of zero weight are left out.
"""
import warnings
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.model_selection import StratifiedShuffleSplit, check_cv
from sklearn.utils import indexable
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (_num_samples, check_array, check_consistent_length,
                                      check_is_fitted, column_or_1d)

from fastimb._kernels import _threshold
from fastimb.base import WrappingClassifierMixin, fit_on_rows, fold_buffers
from fastimb._plotting import get_axes, thin
from fastimb._rows import gather_rows
from fastimb._sorting import sorted_values
from fastimb._validation import check_sample_weight_nonneg, encode_labels

OBJECTIVES = ("f1", "fbeta", "cost", "youden", "gmean", "balanced_accuracy",
              "recall_at_precision", "precision_at_recall", "alert_budget")


# ---------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------
def _two_classes(y, name="y_true"):
    """The two classes of a binary target (sorted), or a ValueError naming the problem.

    One pass for small-range integer labels; ``np.unique`` otherwise."""
    classes, _ = encode_labels(y)
    if classes.dtype.kind == "f" and not np.all(np.isfinite(classes)):
        raise ValueError(f"{name} contains NaN or infinity.")
    if classes.dtype.kind == "f" and np.any(classes != np.round(classes)):
        raise ValueError(f"{name} must be a binary target; got continuous values.")
    if classes.shape[0] != 2:
        raise ValueError(
            f"{name} must hold exactly two classes; found {classes.shape[0]} "
            f"class{'' if classes.shape[0] == 1 else 'es'}: {classes.tolist()[:10]}.")
    return classes


def _check_pos_label(classes, pos_label):
    """The positive label: given, or 1 when the labels are {0, 1} or {-1, 1}."""
    if pos_label is None:
        if classes.dtype.kind in "OUS" or not (
                np.array_equal(classes, [0, 1]) or np.array_equal(classes, [-1, 1])):
            raise ValueError(
                f"y_true takes value in {{{', '.join(repr(c) for c in classes.tolist())}}} "
                "and pos_label is not specified: either make y_true take value in {0, 1} "
                "or {-1, 1} or pass pos_label explicitly.")
        return 1
    if pos_label not in classes.tolist():
        raise ValueError(f"pos_label={pos_label!r} is not a class of y_true; the classes "
                         f"are {classes.tolist()}.")
    return pos_label


def _check_scores(y_true, y_score, pos_label, sample_weight):
    """``(is_positive, scores, weights or None, pos_label)``, zero-weight samples removed."""
    y_true = column_or_1d(y_true)
    y_score = column_or_1d(check_array(y_score, ensure_2d=False, dtype=[np.float64, np.float32],
                                       input_name="y_score"))
    check_consistent_length(y_true, y_score, sample_weight)
    pos_label = _check_pos_label(_two_classes(y_true), pos_label)
    positive = np.asarray(y_true == pos_label)
    if sample_weight is not None:
        w = check_sample_weight_nonneg(sample_weight, y_score.shape[0])
        keep = w != 0
        if not keep.all():
            positive, y_score, w = positive[keep], y_score[keep], w[keep]
        if not w[positive].sum() > 0 or not w[~positive].sum() > 0:
            raise ValueError("Both classes need a positive total sample_weight.")
        return positive, y_score, w, pos_label
    return positive, y_score, None, pos_label


def _check_objective(objective, beta=1.0, min_precision=None, min_recall=None,
                     max_alerts=None):
    if callable(objective):
        return
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES} or a callable; "
                         f"got {objective!r}.")
    if objective == "fbeta" and not (isinstance(beta, Real) and beta > 0):
        raise ValueError(f"beta must be a positive number; got {beta!r}.")
    needs = {"recall_at_precision": ("min_precision", min_precision),
             "precision_at_recall": ("min_recall", min_recall),
             "alert_budget": ("max_alerts", max_alerts)}
    if objective in needs:
        name, value = needs[objective]
        if value is None:
            raise ValueError(f"objective={objective!r} needs {name}.")
    for name, value in (("min_precision", min_precision), ("min_recall", min_recall)):
        if value is not None and not (isinstance(value, Real) and 0 <= value <= 1):
            raise ValueError(f"{name} must lie in [0, 1]; got {value!r}.")
    if max_alerts is not None and not (
            (isinstance(max_alerts, Integral) and max_alerts >= 0)
            or (isinstance(max_alerts, Real) and 0 < max_alerts < 1)):
        raise ValueError("max_alerts must be a count (int >= 0) or a fraction in (0, 1); "
                         f"got {max_alerts!r}.")


def _ratio(num, den):
    """``num / den`` with 0 where ``den == 0``."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


# ---------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------
class ThresholdSweep:
    """Confusion counts at every distinct score, from the highest score down.

    Row ``i`` describes the rule "predict positive when ``score >= thresholds[i]``".
    Counts are weighted (sample weights, or 1 per sample); ``n_predicted`` counts samples.
    Every metric is computed on demand from the counts.

    Attributes
    ----------
    thresholds : ndarray of shape (n_thresholds,)
        Distinct scores, decreasing, in the dtype of the scores.
    tp, fp : ndarray of shape (n_thresholds,)
        Weighted positives / negatives scoring ``>= threshold`` (float64).
    n_predicted : ndarray of shape (n_thresholds,)
        Number of samples scoring ``>= threshold`` (the alerts raised).
    n_positive, n_negative : float
        Total weight of each class.
    n_samples : int
        Samples in the sweep (those of non-zero weight).
    pos_label : int, float, bool or str
        The positive class.
    """

    def __init__(self, thresholds, tp, fp, n_predicted, n_positive, n_negative, n_samples,
                 pos_label=1):
        self.thresholds = thresholds
        self.tp = tp
        self.fp = fp
        self.n_predicted = n_predicted
        self.n_positive = float(n_positive)
        self.n_negative = float(n_negative)
        self.n_samples = int(n_samples)
        self.pos_label = pos_label

    def __len__(self):
        return self.thresholds.shape[0]

    def __repr__(self):
        return (f"ThresholdSweep(n_thresholds={len(self)}, n_samples={self.n_samples}, "
                f"n_positive={self.n_positive:g}, n_negative={self.n_negative:g})")

    # counts ------------------------------------------------------------------------
    @property
    def fn(self):
        """Weighted positives scoring below the threshold."""
        return self.n_positive - self.tp

    @property
    def tn(self):
        """Weighted negatives scoring below the threshold."""
        return self.n_negative - self.fp

    # rates -------------------------------------------------------------------------
    @property
    def precision(self):
        """``tp / (tp + fp)`` (0 where nothing is predicted positive)."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self):
        """``tp / (tp + fn)``, the true-positive rate."""
        return self.tp / self.n_positive

    tpr = recall

    @property
    def fpr(self):
        """``fp / (fp + tn)``, the false-positive rate."""
        return self.fp / self.n_negative

    @property
    def specificity(self):
        """``tn / (tn + fp)``, the true-negative rate."""
        return self.tn / self.n_negative

    tnr = specificity

    def f_beta(self, beta=1.0):
        """F-beta score ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)`` (0 when undefined)."""
        b2 = float(beta) ** 2
        return _ratio((1 + b2) * self.tp, (1 + b2) * self.tp + b2 * self.fn + self.fp)

    @property
    def f1(self):
        """F1 score."""
        return self.f_beta(1.0)

    def cost(self, fp_cost=1.0, fn_cost=1.0, tp_gain=0.0, tn_gain=0.0):
        """Expected cost per unit of sample weight:
        ``(fp_cost fp + fn_cost fn - tp_gain tp - tn_gain tn) / total weight``."""
        total = fp_cost * self.fp + fn_cost * self.fn - tp_gain * self.tp - tn_gain * self.tn
        return total / (self.n_positive + self.n_negative)

    @property
    def youden(self):
        """Youden's J, ``tpr - fpr``."""
        return self.recall - self.fpr

    @property
    def gmean(self):
        """Geometric mean of the true-positive and true-negative rates."""
        return np.sqrt(self.recall * self.specificity)

    @property
    def balanced_accuracy(self):
        """Mean of the true-positive and true-negative rates."""
        return 0.5 * (self.recall + self.specificity)

    # selection ---------------------------------------------------------------------
    def _with_empty(self):
        """This sweep with a first row that predicts nothing positive (threshold +inf)."""
        return ThresholdSweep(
            np.concatenate([[np.inf], self.thresholds]).astype(self.thresholds.dtype),
            np.concatenate([[0.0], self.tp]), np.concatenate([[0.0], self.fp]),
            np.concatenate([[0], self.n_predicted]), self.n_positive, self.n_negative,
            self.n_samples, self.pos_label)

    def best(self, objective="f1", *, beta=1.0, fp_cost=1.0, fn_cost=1.0, tp_gain=0.0,
             tn_gain=0.0, min_precision=None, min_recall=None, max_alerts=None):
        """The threshold that maximises ``objective`` over every row of the sweep.

        Parameters
        ----------
        objective : str or callable, default='f1'
            - ``'f1'``, ``'fbeta'`` (with ``beta``), ``'youden'``, ``'gmean'``,
              ``'balanced_accuracy'``: maximised;
            - ``'cost'``: the expected cost ``fp_cost fp + fn_cost fn - tp_gain tp -
              tn_gain tn`` is minimised (predicting nothing positive is a candidate);
            - ``'recall_at_precision'``: the highest recall with precision
              ``>= min_precision``;
            - ``'precision_at_recall'``: the highest precision with recall ``>= min_recall``;
            - ``'alert_budget'``: the highest recall with at most ``max_alerts`` samples
              predicted positive (an int, or a float in (0, 1): a fraction of the samples;
              predicting nothing is a candidate);
            - a callable ``f(sweep) -> array of len(sweep)`` to maximise.
        beta, fp_cost, fn_cost, tp_gain, tn_gain, min_precision, min_recall, max_alerts
            Parameters of the objectives above.

        Returns
        -------
        ThresholdChoice
            Ties are broken towards the highest threshold. When no threshold meets a
            constraint (only possible for ``'recall_at_precision'``), a
            :class:`ConstraintWarning` is issued and the threshold of highest precision is
            returned with ``feasible=False``.
        """
        _check_objective(objective, beta, min_precision, min_recall, max_alerts)
        sweep = self._with_empty() if objective in ("cost", "alert_budget") else self
        feasible = None
        if callable(objective):
            values = np.asarray(objective(sweep), dtype=np.float64)
            if values.shape != (len(sweep),):
                raise ValueError(f"The objective callable must return an array of shape "
                                 f"({len(sweep)},); got {values.shape}.")
        elif objective == "f1":
            values = sweep.f1
        elif objective == "fbeta":
            values = sweep.f_beta(beta)
        elif objective == "cost":
            values = -sweep.cost(fp_cost, fn_cost, tp_gain, tn_gain)
        elif objective in ("youden", "gmean", "balanced_accuracy"):
            values = getattr(sweep, objective)
        elif objective == "recall_at_precision":
            values, feasible = sweep.recall, sweep.precision >= min_precision
        elif objective == "precision_at_recall":
            values, feasible = sweep.precision, sweep.recall >= min_recall
        else:  # alert_budget
            limit = (max_alerts if isinstance(max_alerts, Integral)
                     else int(np.floor(max_alerts * sweep.n_samples)))
            values, feasible = sweep.tp, sweep.n_predicted <= limit
        if feasible is None or feasible.all():
            ok = True
            i = int(np.argmax(values))
        elif feasible.any():
            ok = True
            i = int(np.argmax(np.where(feasible, values, -np.inf)))
        else:
            ok = False
            i = int(np.argmax(sweep.precision))
            warnings.warn(
                f"No threshold reaches precision >= {min_precision}: the highest precision is "
                f"{sweep.precision[i]:.6g} (threshold {sweep.thresholds[i]!r}), which is "
                "returned with feasible=False.", ConstraintWarning, stacklevel=2)
        return ThresholdChoice._at(sweep, i, objective, float(values[i]), ok)

    def at(self, threshold):
        """The metrics of the rule "positive when ``score >= threshold``" for any threshold."""
        i = int(np.searchsorted(-self.thresholds, -threshold, side="right"))  # rows >= threshold
        return replace(ThresholdChoice._at(self._with_empty(), i, None, np.nan, True),
                       threshold=float(threshold))

    def as_dict(self):
        """Every column of the sweep as a dict of arrays (e.g. for ``pandas.DataFrame``)."""
        return {"threshold": self.thresholds, "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "tn": self.tn, "n_predicted": self.n_predicted, "precision": self.precision,
                "recall": self.recall, "fpr": self.fpr, "specificity": self.specificity,
                "f1": self.f1}


class ConstraintWarning(UserWarning):
    """No threshold meets the constraint of a constrained objective."""


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen threshold and the metrics at it (rule: positive when ``score >= threshold``).

    ``threshold`` is ``+inf`` when predicting nothing positive is best (cost and alert-budget
    objectives). ``value`` is the objective's value (for ``'cost'``, minus the expected cost).
    """

    threshold: float
    objective: object
    value: float
    feasible: bool
    tp: float
    fp: float
    fn: float
    tn: float
    n_predicted: int
    precision: float
    recall: float
    fpr: float
    specificity: float
    f1: float

    @classmethod
    def _at(cls, sweep, i, objective, value, feasible):
        one = ThresholdSweep(sweep.thresholds[i:i + 1], sweep.tp[i:i + 1], sweep.fp[i:i + 1],
                             sweep.n_predicted[i:i + 1], sweep.n_positive, sweep.n_negative,
                             sweep.n_samples, sweep.pos_label)
        row = {k: v[0] for k, v in one.as_dict().items()}
        return cls(threshold=float(row.pop("threshold")), objective=objective, value=value,
                   feasible=feasible, n_predicted=int(row.pop("n_predicted")),
                   **{k: float(v) for k, v in row.items()})


def threshold_sweep(y_true, y_score, *, pos_label=None, sample_weight=None):
    """Confusion counts at every distinct score, in one sort and one pass.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary labels. Without ``pos_label`` they must be {0, 1} or {-1, 1}.
    y_score : array-like of shape (n_samples,)
        Scores (probabilities or decision values), float32 kept as float32. Finite.
    pos_label : int, float, bool or str, default=None
        The positive class (1 when None).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights; samples of weight 0 are left out, as scikit-learn does.

    Returns
    -------
    ThresholdSweep
        ``thresholds``, ``tp`` and ``fp`` equal ``confusion_matrix_at_thresholds`` /
        ``precision_recall_curve`` (reversed) / ``roc_curve(drop_intermediate=False)``.
    """
    positive, scores, w, pos_label = _check_scores(y_true, y_score, pos_label, sample_weight)
    n = scores.shape[0]
    thresholds = np.empty(n, dtype=scores.dtype)
    tp, fp = np.empty(n), np.empty(n)
    n_predicted = np.empty(n, dtype=np.intp)
    if w is None:
        # np.compress: much faster than boolean indexing on an unpredictable mask
        pos = sorted_values(np.compress(positive, scores), overwrite=True)
        neg = sorted_values(np.compress(~positive, scores), overwrite=True)
        m = _threshold.sweep_split(pos, neg, thresholds, tp, fp, n_predicted)
    else:
        m = _threshold.sweep_order(scores, np.argsort(scores).astype(np.intp, copy=False),
                                   positive.view(np.uint8), w, thresholds, tp, fp,
                                   n_predicted)
    n_pos, n_neg = tp[m - 1], fp[m - 1]
    shrink = (lambda a: a[:m].copy()) if m < n // 2 else (lambda a: a[:m])
    return ThresholdSweep(shrink(thresholds), shrink(tp), shrink(fp), shrink(n_predicted),
                          n_pos, n_neg, n, pos_label)


def best_threshold(y_true, y_score, objective="f1", *, pos_label=None, sample_weight=None,
                   **objective_params):
    """The exact best threshold for ``objective`` over every distinct score.

    ``threshold_sweep(y_true, y_score, ...).best(objective, **objective_params)``; see
    :func:`threshold_sweep` and :meth:`ThresholdSweep.best` for the parameters.

    Returns
    -------
    ThresholdChoice
    """
    return threshold_sweep(y_true, y_score, pos_label=pos_label,
                           sample_weight=sample_weight).best(objective, **objective_params)


# ---------------------------------------------------------------------------------------
# the meta-estimator
# ---------------------------------------------------------------------------------------
def _positive_scores(estimator, X, response_method, pos_label):
    """Scores of ``pos_label`` from a fitted binary classifier (higher = more positive)."""
    if response_method == "auto":
        response_method = ("predict_proba" if hasattr(estimator, "predict_proba")
                           else "decision_function")
    classes = list(estimator.classes_)
    if response_method == "predict_proba":
        return estimator.predict_proba(X)[:, classes.index(pos_label)]
    scores = np.asarray(estimator.decision_function(X)).ravel()
    return -scores if pos_label == classes[0] else scores


def _fit_and_score(estimator, X, y, train, test, fit_params, response_method, pos_label,
                   buffers):
    fit_on_rows(estimator, X, y, train, fit_params, buffers)

    def score(X_test):
        return _positive_scores(estimator, X_test, response_method, pos_label)

    return estimator, buffers.apply(X, test, "test", score)


def _estimator_has(attr):
    def check(self):
        return hasattr(self.estimator_ if hasattr(self, "estimator_") else self.estimator,
                       attr)
    return check


class ThresholdClassifier(WrappingClassifierMixin, BaseEstimator):
    """A binary classifier whose decision threshold is tuned exactly for an objective.

    The threshold is the exact optimum of ``objective`` over every distinct
    cross-validated score (the test-fold scores of all folds pooled into one sweep), not
    the best of a grid as in scikit-learn's ``TunedThresholdClassifierCV``. ``predict``
    returns the positive class when the score is ``>= best_threshold_``;
    ``predict_proba``, ``predict_log_proba`` and ``decision_function`` pass through.

    Parameters
    ----------
    estimator : estimator object
        A binary classifier with ``predict_proba`` or ``decision_function``; it may be an
        ``imblearn`` Pipeline that resamples with fastimb samplers.
    objective : str or callable, default='f1'
        See :meth:`ThresholdSweep.best`.
    beta, fp_cost, fn_cost, tp_gain, tn_gain, min_precision, min_recall, max_alerts
        Parameters of the objective (see :meth:`ThresholdSweep.best`).
    pos_label : int, float, bool or str, default=None
        The positive class; None means the second of ``classes_``.
    response_method : {'auto', 'predict_proba', 'decision_function'}, default='auto'
        The scores thresholded; 'auto' is ``predict_proba`` when available.
    cv : int, float, cross-validation generator, iterable or 'prefit', default=5
        Where the scores come from: an int or splitter as in ``cross_validate``
        (stratified k-fold for an int); a float in (0, 1): one stratified hold-out of
        that fraction; ``'prefit'``: ``estimator`` is already fitted and the threshold
        is tuned on the data given to ``fit``.
    refit : bool, default=True
        Refit the estimator on all the data after tuning. ``False`` keeps the estimator
        fitted on the training part of the split, and needs a single split.
    n_jobs : int, default=None
        Folds fitted in parallel by joblib (None: one at a time).
    random_state : int, RandomState instance or None, default=None
        Seed of the hold-out split when ``cv`` is a float.
    store_sweep : bool, default=False
        Keep the sweep over the cross-validated scores as ``sweep_``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted classifier that ``predict`` thresholds.
    best_threshold_ : float
        The tuned threshold.
    best_score_ : float
        The objective's value at it (minus the expected cost for 'cost').
    choice_ : ThresholdChoice
        The metrics at the tuned threshold on the cross-validated scores.
    classes_ : ndarray of shape (2,)
    sweep_ : ThresholdSweep
        Only with ``store_sweep=True``.
    n_features_in_, feature_names_in_
        From the fitted estimator, when it has them.
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "objective": [StrOptions(set(OBJECTIVES)), callable],
        "beta": [Interval(Real, 0, None, closed="neither")],
        "fp_cost": [Real], "fn_cost": [Real], "tp_gain": [Real], "tn_gain": [Real],
        "min_precision": [Interval(Real, 0, 1, closed="both"), None],
        "min_recall": [Interval(Real, 0, 1, closed="both"), None],
        "max_alerts": [Interval(Integral, 0, None, closed="left"),
                       Interval(RealNotInt, 0, 1, closed="neither"), None],
        "pos_label": [Real, str, "boolean", None],
        "response_method": [StrOptions({"auto", "predict_proba", "decision_function"})],
        "cv": ["cv_object", StrOptions({"prefit"}), Interval(RealNotInt, 0, 1, closed="neither")],
        "refit": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "store_sweep": ["boolean"],
    }

    def __init__(self, estimator, *, objective="f1", beta=1.0, fp_cost=1.0, fn_cost=1.0,
                 tp_gain=0.0, tn_gain=0.0, min_precision=None, min_recall=None,
                 max_alerts=None, pos_label=None, response_method="auto", cv=5, refit=True,
                 n_jobs=None, random_state=None, store_sweep=False):
        self.estimator = estimator
        self.objective = objective
        self.beta = beta
        self.fp_cost = fp_cost
        self.fn_cost = fn_cost
        self.tp_gain = tp_gain
        self.tn_gain = tn_gain
        self.min_precision = min_precision
        self.min_recall = min_recall
        self.max_alerts = max_alerts
        self.pos_label = pos_label
        self.response_method = response_method
        self.cv = cv
        self.refit = refit
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.store_sweep = store_sweep

    def _objective_params(self):
        return dict(beta=self.beta, fp_cost=self.fp_cost, fn_cost=self.fn_cost,
                    tp_gain=self.tp_gain, tn_gain=self.tn_gain,
                    min_precision=self.min_precision, min_recall=self.min_recall,
                    max_alerts=self.max_alerts)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Tune the threshold on cross-validated scores, then (by default) refit.

        ``sample_weight`` weights the objective; it is also passed to the estimator's
        ``fit`` when that accepts it (with a warning otherwise). Other ``fit_params`` go to
        the estimator's ``fit``, split by fold when they have one value per sample.
        """
        params = self._objective_params()
        _check_objective(self.objective, params["beta"], self.min_precision, self.min_recall,
                         self.max_alerts)
        X, y = indexable(X, self._check_target(y))
        check_consistent_length(X, y)
        type_y = type_of_target(y, input_name="y", raise_unknown=True)
        if type_y != "binary":
            raise ValueError("Only binary classification is supported. The type of the target "
                             f"is {type_y}.")
        classes = _two_classes(y, "y")
        pos_label = classes[1] if self.pos_label is None else _check_pos_label(
            classes, self.pos_label)
        sample_weight, fit_params = self._route_sample_weight(
            self.estimator, sample_weight, _num_samples(X), fit_params)

        if self.cv == "prefit":
            check_is_fitted(self.estimator)
            self.estimator_ = self.estimator
            scores = _positive_scores(self.estimator_, X, self.response_method, pos_label)
            y_eval, w_eval = y, sample_weight
        else:
            if isinstance(self.cv, Real) and not isinstance(self.cv, Integral):
                splitter = StratifiedShuffleSplit(n_splits=1, test_size=self.cv,
                                                  random_state=self.random_state)
            else:
                splitter = check_cv(self.cv, y, classifier=True)
            splits = list(splitter.split(X, y))
            if not self.refit and len(splits) != 1:
                raise ValueError("refit=False needs a single train/test split (cv a float or "
                                 f"a splitter with one split); cv gives {len(splits)}.")
            buffers = fold_buffers(self.n_jobs)
            fitted = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_and_score)(clone(self.estimator), X, y, train, test, fit_params,
                                        self.response_method, pos_label, buffers)
                for train, test in splits)
            tests = np.concatenate([test for _, test in splits])
            scores = np.concatenate([s for _, s in fitted])
            y_eval = gather_rows(y, tests)
            w_eval = None if sample_weight is None else sample_weight[tests]
            if self.refit:
                self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
            else:
                self.estimator_ = fitted[0][0]

        sweep = threshold_sweep(np.asarray(y_eval), scores, pos_label=pos_label,
                                sample_weight=w_eval)
        self.choice_ = sweep.best(self.objective, **params)
        self.best_threshold_ = self.choice_.threshold
        self.best_score_ = self.choice_.value
        self.classes_ = classes
        self._pos_label = pos_label
        if self.store_sweep:
            self.sweep_ = sweep
        self._copy_input_attributes(self.estimator_)
        return self

    def predict(self, X):
        """``pos_label`` where the score is ``>= best_threshold_``, the other class elsewhere."""
        check_is_fitted(self, "best_threshold_")
        scores = _positive_scores(self.estimator_, X, self.response_method, self._pos_label)
        neg_label = self.classes_[self.classes_ != self._pos_label][0]
        return np.where(scores >= self.best_threshold_, self._pos_label, neg_label).astype(
            self.classes_.dtype, copy=False)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """The estimator's ``predict_proba``."""
        check_is_fitted(self, "best_threshold_")
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """The estimator's ``predict_log_proba``."""
        check_is_fitted(self, "best_threshold_")
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """The estimator's ``decision_function``."""
        check_is_fitted(self, "best_threshold_")
        return self.estimator_.decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


# ---------------------------------------------------------------------------------------
# display
# ---------------------------------------------------------------------------------------
class ThresholdDisplay:
    """Metrics against the decision threshold, with the chosen threshold marked.

    Build it with :meth:`from_predictions` or :meth:`from_estimator` and call :meth:`plot`
    (matplotlib needed only for that). Curves with many thresholds are thinned for
    drawing.

    Parameters
    ----------
    sweep : ThresholdSweep
    choice : ThresholdChoice or None
        The point to mark.
    metrics : sequence of str, default=('precision', 'recall', 'f1')
        Attributes of the sweep to draw.
    cost : dict or None
        ``fp_cost``, ``fn_cost``, ``tp_gain``, ``tn_gain``: also draw the expected cost,
        on a second axis.
    """

    def __init__(self, sweep, choice=None, metrics=("precision", "recall", "f1"), cost=None):
        self.sweep = sweep
        self.choice = choice
        self.metrics = tuple(metrics)
        self.cost = cost

    def plot(self, ax=None, *, name=None):
        """Draw on ``ax`` (a new figure when None); sets ``ax_``, ``figure_``, ``lines_``."""
        ax = get_axes(ax)
        sweep = self.sweep
        chosen = -1
        if self.choice is not None and np.isfinite(self.choice.threshold):
            chosen = int(np.searchsorted(-sweep.thresholds, -self.choice.threshold,
                                         side="right")) - 1
        idx = thin(len(sweep), keep=(chosen,))
        x = sweep.thresholds[idx]
        self.lines_ = {}
        for metric in self.metrics:
            values = getattr(sweep, metric)
            (self.lines_[metric],) = ax.plot(x, values[idx], label=metric)
        if self.cost is not None:
            ax2 = ax.twinx()
            (self.lines_["cost"],) = ax2.plot(x, sweep.cost(**self.cost)[idx], color="0.4",
                                              linestyle="--", label="expected cost")
            ax2.set_ylabel("expected cost")
            self.ax_cost_ = ax2
        if chosen >= 0:
            t = self.choice.threshold
            self.lines_["chosen"] = ax.axvline(t, color="k", linewidth=0.8, linestyle=":",
                                               label=f"chosen threshold {t:.4g}")
            ax.scatter([t] * len(self.metrics),
                       [np.asarray(getattr(sweep, m))[chosen] for m in self.metrics],
                       color="k", zorder=3)
        ax.set_xlabel("threshold (positive when score >= threshold)")
        ax.set_ylabel("metric")
        ax.legend(loc="best")
        if name:
            ax.set_title(name)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_predictions(cls, y_true, y_score, *, objective="f1", pos_label=None,
                         sample_weight=None, metrics=("precision", "recall", "f1"),
                         cost=None, ax=None, name=None, **objective_params):
        """Sweep ``y_score``, pick the best threshold for ``objective`` and plot."""
        sweep = threshold_sweep(y_true, y_score, pos_label=pos_label,
                                sample_weight=sample_weight)
        if objective == "cost" and cost is None:
            cost = {k: objective_params[k] for k in ("fp_cost", "fn_cost", "tp_gain",
                                                     "tn_gain") if k in objective_params}
        choice = sweep.best(objective, **objective_params)
        return cls(sweep, choice, metrics, cost).plot(ax, name=name)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, response_method="auto", pos_label=None,
                       **kwargs):
        """As :meth:`from_predictions` with the scores of a fitted classifier; for a fitted
        :class:`ThresholdClassifier`, the scores of its ``estimator_``."""
        if not isinstance(estimator, ThresholdClassifier):
            if pos_label is None:
                pos_label = estimator.classes_[1]
            scores = _positive_scores(estimator, X, response_method, pos_label)
            return cls.from_predictions(y, scores, pos_label=pos_label, **kwargs)
        check_is_fitted(estimator, "best_threshold_")
        scores = _positive_scores(estimator.estimator_, X, estimator.response_method,
                                  estimator._pos_label)
        sweep = threshold_sweep(y, scores, pos_label=estimator._pos_label,
                                sample_weight=kwargs.get("sample_weight"))
        choice = sweep.at(estimator.best_threshold_)
        cost = kwargs.get("cost")
        if cost is None and estimator.objective == "cost":
            cost = {k: getattr(estimator, k) for k in ("fp_cost", "fn_cost", "tp_gain",
                                                       "tn_gain")}
        return cls(sweep, choice, kwargs.get("metrics", ("precision", "recall", "f1")),
                   cost).plot(kwargs.get("ax"), name=kwargs.get("name"))
