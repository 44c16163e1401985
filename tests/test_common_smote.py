"""imbalanced-learn's and scikit-learn's estimator checks, in full, on the SMOTE family.

Run the way imbalanced-learn runs them on its own samplers (its ``tests/test_common.py``):
both ``parametrize_with_checks``, with the expected failures imbalanced-learn declares for
these samplers (none), then ``check_param_validation`` and the pandas column-name check.
The samplers are also checked with a fastimb and a scikit-learn neighbours object.
"""
import warnings

import pytest
from imblearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
)
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.neighbors import NearestNeighbors as SkNN
from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks

from fastimb.neighbors import NearestNeighbors
from fastimb.over_sampling import ADASYN, SMOTE, BorderlineSMOTE

# constructed as imbalanced-learn constructs its own instances for these checks
SAMPLERS = [
    SMOTE(random_state=42),
    ADASYN(random_state=42),
    BorderlineSMOTE(random_state=42),
    BorderlineSMOTE(random_state=42, kind="borderline-2"),
    SMOTE(random_state=42, k_neighbors=NearestNeighbors(n_neighbors=4)),
    ADASYN(random_state=42, n_neighbors=SkNN(n_neighbors=4)),
    BorderlineSMOTE(random_state=42, k_neighbors=NearestNeighbors(n_neighbors=4),
                    m_neighbors=SkNN(n_neighbors=8)),
]


def _expected_failed_checks(estimator):
    return {}   # imbalanced-learn declares none for SMOTE, ADASYN and BorderlineSMOTE


@sklearn_checks(SAMPLERS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@imblearn_checks(SAMPLERS, expected_failed_checks=_expected_failed_checks)
def test_imblearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        check(estimator)


@pytest.mark.parametrize("estimator", SAMPLERS, ids=repr)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", SAMPLERS, ids=repr)
def test_pandas_column_name_consistency(estimator):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
    for warning in record:
        assert "was fitted without feature names" not in str(warning.message)
