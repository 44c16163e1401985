"""fastimb: a compiled resampling engine with the imbalanced-learn sampler interface.

Swap ``imblearn`` for ``fastimb`` in an import and get the same samplers, compiled:

>>> from fastimb.over_sampling import RandomOverSampler  # doctest: +SKIP
"""
__version__ = "0.1.0.dev0"

from fastimb._config import show_config
from fastimb._kernels._openmp_helpers import openmp_enabled
from fastimb.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler
from fastimb.combine import SMOTEENN, SMOTETomek
from fastimb.under_sampling import EditedNearestNeighbours, RandomUnderSampler, TomekLinks

__all__ = [
    "ADASYN",
    "BorderlineSMOTE",
    "RandomOverSampler",
    "SMOTE",
    "EditedNearestNeighbours",
    "RandomUnderSampler",
    "SMOTEENN",
    "SMOTETomek",
    "TomekLinks",
    "openmp_enabled",
    "show_config",
]
