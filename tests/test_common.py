"""imbalanced-learn's and scikit-learn's estimator checks on fastimb's samplers.

The SMOTE family has its own file (test_common_smote.py), with neighbours objects too.
"""
import pytest
from imblearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
)
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks

from fastimb import (
    SMOTEENN,
    EditedNearestNeighbours,
    RandomOverSampler,
    RandomUnderSampler,
    SMOTETomek,
    TomekLinks,
)

# constructed as imbalanced-learn constructs its own for these checks
SAMPLERS = [
    RandomOverSampler(random_state=42),
    RandomUnderSampler(random_state=42),
    TomekLinks(),
    EditedNearestNeighbours(),
    EditedNearestNeighbours(kind_sel="mode"),
    SMOTEENN(random_state=42),
    SMOTETomek(random_state=42),
]


@sklearn_checks(SAMPLERS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@imblearn_checks(SAMPLERS)
def test_imblearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", SAMPLERS, ids=lambda e: type(e).__name__)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", SAMPLERS, ids=lambda e: type(e).__name__)
def test_dataframe_column_names_consistency(estimator):
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
