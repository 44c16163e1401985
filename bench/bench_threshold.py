"""Threshold tuning vs scikit-learn on the same (score, label) pairs.

* the full sweep (every count at every distinct score) vs ``precision_recall_curve`` and
  ``confusion_matrix_at_thresholds``, at ``n`` and ``10 n`` pairs;
* the exact best-F1 threshold vs the 100-threshold grid that ``TunedThresholdClassifierCV``
  evaluates (one ``f1_score`` per threshold, thresholds evenly spaced between the lowest
  and the highest score);
* ``ThresholdClassifier.fit`` with cv=5 vs ``TunedThresholdClassifierCV.fit`` with cv=5 on
  the same classifier; ``extra_info['outside_estimator_share']`` is the share of fastimb's
  fit spent outside the estimator's own ``fit``/``predict_proba`` (target < 10%).
"""
import time

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix_at_thresholds, f1_score, precision_recall_curve

from _timed import TimedClassifier, outside_share

from fastimb.threshold import ThresholdClassifier, best_threshold, threshold_sweep

GRID = 100


def score_data(n, minority=0.02, seed=0):
    """Scores of a noisy classifier: positives shifted up, rounded to 1e-6 (some ties)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < minority).astype(np.int64)
    s = np.round(1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 2.0))), 6)
    return y, s


def grid_best_f1(y, s):
    """What TunedThresholdClassifierCV does with thresholds=100 and scoring='f1'."""
    grid = np.linspace(s.min(), s.max(), GRID)
    scores = [f1_score(y, (s >= t).astype(np.int64), zero_division=0) for t in grid]
    return grid[int(np.argmax(scores))]


@pytest.mark.parametrize("scale", [1, 10], ids=["n", "10n"])
@pytest.mark.parametrize("impl", ["fastimb", "sklearn-pr-curve", "sklearn-cm-at-thresholds"])
def test_threshold_sweep(benchmark, n_rows, impl, scale):
    n = n_rows * scale
    y, s = score_data(n)
    benchmark.group = f"threshold sweep n={n}"
    benchmark.extra_info["impl"] = impl
    fn = {"fastimb": threshold_sweep, "sklearn-pr-curve": precision_recall_curve,
          "sklearn-cm-at-thresholds": confusion_matrix_at_thresholds}[impl]
    benchmark(fn, y, s)


@pytest.mark.parametrize("impl", ["fastimb", "sklearn-grid100"])
def test_best_f1_threshold(benchmark, n_rows, impl):
    y, s = score_data(n_rows)
    benchmark.group = f"best F1 threshold n={n_rows}"
    benchmark.extra_info["impl"] = impl
    if impl == "fastimb":
        benchmark(best_threshold, y, s, "f1")
    else:
        benchmark.pedantic(grid_best_f1, args=(y, s), rounds=3, iterations=1)


@pytest.mark.parametrize("impl", ["fastimb", "sklearn-tuned-cv"])
def test_threshold_classifier_fit(benchmark, make_data, n_rows, impl):
    from sklearn.model_selection import TunedThresholdClassifierCV

    X, y = make_data(n_rows, 20)
    benchmark.group = f"ThresholdClassifier fit cv=5 n={n_rows} d=20"
    benchmark.extra_info["impl"] = impl
    if impl == "fastimb":
        est = ThresholdClassifier(TimedClassifier(), objective="f1", cv=5)
    else:
        est = TunedThresholdClassifierCV(TimedClassifier(), scoring="f1", cv=5)
    benchmark.extra_info["outside_estimator_share"] = outside_share(
        benchmark, lambda: est.fit(X, y))
