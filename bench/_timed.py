"""A classifier that times its own fit/predict, to measure a wrapper's overhead."""
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class TimedClassifier(ClassifierMixin, BaseEstimator):
    """A LogisticRegression that adds the time spent in its own fit/predict to a shared
    counter (class attribute, so clones share it)."""

    spent = [0.0]

    def __init__(self, max_iter=100):
        self.max_iter = max_iter

    def fit(self, X, y):
        t0 = time.perf_counter()
        self.model_ = LogisticRegression(max_iter=self.max_iter).fit(X, y)
        self.classes_ = self.model_.classes_
        TimedClassifier.spent[0] += time.perf_counter() - t0
        return self

    def predict_proba(self, X):
        t0 = time.perf_counter()
        p = self.model_.predict_proba(X)
        TimedClassifier.spent[0] += time.perf_counter() - t0
        return p


def outside_share(benchmark, fit):
    """Time ``fit()`` in 3 rounds; return the median share of its time spent outside the
    TimedClassifier's own fit/predict_proba."""
    shares = []

    def run():
        TimedClassifier.spent[0] = 0.0
        t0 = time.perf_counter()
        fit()
        total = time.perf_counter() - t0
        shares.append((total - TimedClassifier.spent[0]) / total)

    benchmark.pedantic(run, rounds=3, iterations=1)
    return float(np.median(shares))
