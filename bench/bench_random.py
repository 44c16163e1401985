"""RandomOverSampler / RandomUnderSampler and the row-gather kernel vs their incumbents."""
import numpy as np
import pytest

from fastimb._kernels._gather import take_rows
from fastimb._kernels._openmp_helpers import effective_n_threads

SAMPLERS = ["RandomOverSampler", "RandomUnderSampler"]


def _sampler(impl, name):
    if impl == "fastimb":
        import fastimb as mod
    elif name == "RandomOverSampler":
        import imblearn.over_sampling as mod
    else:
        import imblearn.under_sampling as mod
    return getattr(mod, name)(random_state=0)


@pytest.mark.parametrize("data", ["synthetic", "breast_cancer"])
@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("impl", ["fastimb", "imblearn"])
def test_random_sampler(benchmark, make_data, n_rows, impl, name, data):
    if data == "synthetic":
        X, y = make_data(n_rows, 20)
    else:
        from fastimb.bench import real_dataset

        X, y = real_dataset(data, n_rows)
    benchmark.group = f"{name} {data} n={n_rows} d={X.shape[1]}"
    benchmark.extra_info["impl"] = impl
    benchmark(lambda: _sampler(impl, name).fit_resample(X, y))


@pytest.mark.parametrize("impl", ["fastimb", "numpy"])
def test_take_rows(benchmark, make_data, n_rows, impl):
    X, _ = make_data(n_rows, 20)
    idx = np.random.RandomState(0).randint(0, X.shape[0], 2 * X.shape[0]).astype(np.intp)
    out = np.empty((idx.size, X.shape[1]))
    benchmark.group = f"take_rows n={n_rows} d=20 (2n rows out)"
    benchmark.extra_info["impl"] = impl
    if impl == "fastimb":
        benchmark(take_rows, X, idx, out, effective_n_threads(None))
    else:
        benchmark(np.take, X, idx, axis=0, out=out)
