"""Calibration vs scikit-learn on the same data.

* ``IsotonicRegression.fit`` / ``predict`` on ``n`` (score, 0/1 label) pairs;
* ``CalibratedClassifier.fit`` (cv=5, isotonic and sigmoid) vs ``CalibratedClassifierCV``
  on the same classifier; ``extra_info['outside_estimator_share']`` is the share of the fit
  spent outside the classifier's own ``fit``/``predict_proba`` (target < 10%).
"""
import numpy as np
import pytest
from _timed import TimedClassifier, outside_share
from bench_threshold import score_data

from fastimb.calibration import CalibratedClassifier, IsotonicRegression


def _isotonic(impl):
    if impl == "fastimb":
        return IsotonicRegression(out_of_bounds="clip")
    from sklearn.isotonic import IsotonicRegression as SkIsotonicRegression

    return SkIsotonicRegression(out_of_bounds="clip")


@pytest.mark.parametrize("impl", ["fastimb", "sklearn"])
def test_isotonic_fit(benchmark, n_rows, impl):
    y, s = score_data(n_rows, minority=0.2)
    benchmark.group = f"IsotonicRegression fit n={n_rows}"
    benchmark.extra_info["impl"] = impl
    benchmark(lambda: _isotonic(impl).fit(s, y))


@pytest.mark.parametrize("impl", ["fastimb", "sklearn"])
def test_isotonic_predict(benchmark, n_rows, impl):
    y, s = score_data(n_rows, minority=0.2)
    model = _isotonic(impl).fit(s, y)
    queries = np.random.default_rng(1).permutation(s)
    benchmark.group = f"IsotonicRegression predict n={n_rows}"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["knots"] = int(model.X_thresholds_.shape[0])
    benchmark(model.predict, queries)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
@pytest.mark.parametrize("impl", ["fastimb", "sklearn"])
def test_calibrated_classifier_fit(benchmark, make_data, n_rows, impl, method):
    from sklearn.calibration import CalibratedClassifierCV

    X, y = make_data(n_rows, 20)
    benchmark.group = f"CalibratedClassifier fit {method} cv=5 n={n_rows} d=20"
    benchmark.extra_info["impl"] = impl
    cls = CalibratedClassifier if impl == "fastimb" else CalibratedClassifierCV
    est = cls(TimedClassifier(), method=method, cv=5)
    benchmark.extra_info["outside_estimator_share"] = outside_share(
        benchmark, lambda: est.fit(X, y))
