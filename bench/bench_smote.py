"""SMOTE, ADASYN and BorderlineSMOTE vs imbalanced-learn on the same data."""
import pytest

import fastimb

SAMPLERS = ["SMOTE", "ADASYN", "BorderlineSMOTE"]
DATA = {"binary-2%": None, "3-class-90/7/3": (0.90, 0.07, 0.03)}


def _sampler(impl, name):
    if impl == "fastimb":
        return getattr(fastimb, name)(random_state=0)
    import imblearn.over_sampling

    return getattr(imblearn.over_sampling, name)(random_state=0)


@pytest.mark.parametrize("d", [5, 20, 50])
@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("impl", ["fastimb", "imblearn"])
def test_smote_family(benchmark, make_data, n_rows, impl, name, data, d):
    X, y = make_data(n_rows, d, weights=DATA[data])
    benchmark.group = f"{name} {data} n={n_rows} d={d}"
    benchmark.extra_info["impl"] = impl
    benchmark.pedantic(lambda: _sampler(impl, name).fit_resample(X, y), rounds=3,
                       iterations=1)
