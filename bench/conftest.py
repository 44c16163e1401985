"""Shared benchmark machinery: data, sizes, environment record and the ratio table.

Every benchmark is parametrised by ``impl`` ("fastimb" and one or more incumbents) and
puts all implementations of one case in the same ``benchmark.group``; at the end of the
run a table gives, per group, each implementation's median time and the speed-up of
fastimb over it (ratios from the same run).

Sizes: ``--bench-size=smoke`` (seconds, used by the test suite), ``default`` (minutes on
a 2-core laptop) or ``full`` (the million-row cases the issues' targets refer to).
"""
import functools
import os
import statistics

import numpy as np
import pytest

SIZES = {"smoke": 2_000, "default": 100_000, "full": 1_000_000}


def pytest_addoption(parser):
    parser.addoption("--bench-size", choices=sorted(SIZES), default="default",
                     help="row count of the benchmark data sets (full = 1M rows)")


def bench_rows(config):
    return SIZES[config.getoption("--bench-size")]


@pytest.fixture(scope="session")
def n_rows(request):
    return bench_rows(request.config)


@functools.lru_cache(maxsize=8)
def _make_data(n_samples, n_features, weights, dtype_name, seed):
    from fastimb.bench import make_dataset

    return make_dataset(n_samples, n_features, weights, dtype=dtype_name, seed=seed)


def imbalanced_data(n_samples, n_features, minority=0.02, weights=None, dtype="float64",
                    seed=0):
    """Seeded make_classification data (read-only, cached): binary with ``minority``
    share, or ``weights`` for more classes."""
    if weights is None:
        weights = (1.0 - minority, minority)
    return _make_data(int(n_samples), int(n_features), tuple(weights), str(np.dtype(dtype)),
                      seed)


@pytest.fixture(scope="session")
def make_data():
    return imbalanced_data


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record threads, library versions and BLAS settings with saved results."""
    import threadpoolctl

    import fastimb

    info = {"fastimb": fastimb.show_config(file=open(os.devnull, "w"))}
    for mod in ("sklearn", "imblearn", "scipy", "numpy"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    info["threadpools"] = threadpoolctl.threadpool_info()
    info["env"] = {k: os.environ.get(k) for k in
                   ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                    "OPENBLAS_L2_SIZE", "MKL_NUM_THREADS")}
    machine_info["fastimb_bench"] = info


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups = {}
    for bench in session.benchmarks:
        if not bench.stats or not bench.stats.data:
            continue
        impl = bench.extra_info.get("impl") or bench.params.get("impl")
        groups.setdefault(bench.group, {})[impl] = statistics.median(bench.stats.data)
    lines = []
    for group in sorted(groups, key=str):
        times = groups[group]
        if "fastimb" not in times:
            continue
        ours = times["fastimb"]
        for impl, t in sorted(times.items()):
            if impl == "fastimb":
                continue
            lines.append(f"{group:<55} fastimb {ours:9.4f}s  {impl:<14} {t:9.4f}s  "
                         f"speed-up {t / ours:7.2f}x")
    if lines:
        terminalreporter.write_sep("=", "fastimb speed-up over incumbents (medians, same run)")
        for line in lines:
            terminalreporter.write_line(line)
    extras = []
    for bench in session.benchmarks:
        info = {k: v for k, v in bench.extra_info.items()
                if k != "impl" and isinstance(v, (int, float))}
        if info:
            impl = bench.extra_info.get("impl") or bench.params.get("impl")
            extras.append(f"{bench.group:<55} {impl:<14} " + "  ".join(
                f"{k}={v:.4g}" for k, v in sorted(info.items())))
    if extras:
        terminalreporter.write_sep("=", "fastimb extra measurements")
        for line in extras:
            terminalreporter.write_line(line)
