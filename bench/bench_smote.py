"""SMOTE, ADASYN and BorderlineSMOTE vs imbalanced-learn on the same data.

Cases: a binary problem with 2% minority and a 3-class 90/7/3 problem, d in {5, 20, 50}.
Besides the timed rounds, each fastimb case runs twice more, untimed, to record in
``extra_info``:

* ``peak_mb``: tracemalloc's peak of the allocations made during ``fit_resample`` (the
  output included, the input not), and ``peak_vs_in_out`` = (input + peak) / (input +
  output): the target is at most 1.15;
* ``neighbors_s`` / ``neighbors_share``: time inside the neighbour estimators' ``fit``,
  ``kneighbors`` and ``_self_query`` (the within-class call; the rest,
  ``generation_share``, is validation, draws and interpolation).
"""
import contextlib
import time
import tracemalloc

import numpy as np
import pytest

import fastimb

SAMPLERS = ["SMOTE", "ADASYN", "BorderlineSMOTE"]
DATA = {"binary-2%": None, "3-class-90/7/3": (0.90, 0.07, 0.03)}
BIG = 100_000   # from this many rows: 3 rounds of one call each


def _sampler(impl, name):
    if impl == "fastimb":
        return getattr(fastimb, name)(random_state=0)
    import imblearn.over_sampling

    return getattr(imblearn.over_sampling, name)(random_state=0)


def _nbytes(*arrays):
    return sum(a.nbytes for a in arrays)


def _peak_memory(impl, name, X, y):
    tracemalloc.start()
    try:
        X_res, y_res = _sampler(impl, name).fit_resample(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n_in, n_out = _nbytes(X, y), _nbytes(X_res, y_res)
    return {"peak_mb": round(peak / 2**20, 2), "input_mb": round(n_in / 2**20, 2),
            "output_mb": round(n_out / 2**20, 2),
            "peak_vs_in_out": round((n_in + peak) / (n_in + n_out), 4)}


@contextlib.contextmanager
def _timed_methods(cls, names, totals):
    """Add the time spent in ``cls.<name>`` (any instance) to ``totals['neighbors']``."""
    originals = {n: getattr(cls, n) for n in names}

    def wrap(func):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                totals["neighbors"] += time.perf_counter() - start
        return timed

    for n, func in originals.items():
        setattr(cls, n, wrap(func))
    try:
        yield totals
    finally:
        for n, func in originals.items():
            setattr(cls, n, func)


def _time_split(name, X, y):
    from fastimb.neighbors import NearestNeighbors

    totals = {"neighbors": 0.0}
    with _timed_methods(NearestNeighbors, ("fit", "kneighbors", "_self_query"), totals):
        start = time.perf_counter()
        _sampler("fastimb", name).fit_resample(X, y)
        total = time.perf_counter() - start
    share = totals["neighbors"] / total if total else 0.0
    return {"total_s": round(total, 4), "neighbors_s": round(totals["neighbors"], 4),
            "neighbors_share": round(share, 3), "generation_share": round(1 - share, 3)}


@pytest.mark.parametrize("d", [5, 20, 50])
@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("impl", ["fastimb", "imblearn"])
def test_smote_family(benchmark, make_data, n_rows, impl, name, data, d):
    X, y = make_data(n_rows, d, weights=DATA[data])
    benchmark.group = f"{name} {data} n={n_rows} d={d}"
    benchmark.extra_info["impl"] = impl
    if impl == "fastimb":   # untimed runs first: memory, then the neighbour/generation split
        benchmark.extra_info.update(_peak_memory(impl, name, X, y))
        benchmark.extra_info.update(_time_split(name, X, y))
    run = lambda: _sampler(impl, name).fit_resample(X, y)  # noqa: E731
    if n_rows >= BIG:
        benchmark.pedantic(run, rounds=3, iterations=1)
    else:
        benchmark(run)
