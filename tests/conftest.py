import numpy as np
import pytest
from sklearn.datasets import make_classification


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_jobs(request):
    return request.param


def make_imbalanced(n_samples=600, n_features=6, weights=(0.1, 0.9), n_classes=2,
                    random_state=0, dtype=np.float64):
    """Seeded, tie-free imbalanced data (continuous features)."""
    X, y = make_classification(
        n_samples=n_samples, n_features=n_features, n_informative=min(n_features, 4),
        n_redundant=0, n_repeated=0, n_classes=n_classes, n_clusters_per_class=1,
        weights=list(weights), flip_y=0.02, class_sep=0.8, random_state=random_state,
    )
    return X.astype(dtype), y


@pytest.fixture
def imbalanced_data():
    return make_imbalanced
