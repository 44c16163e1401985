"""The sampler contract shared by every fastimb sampler.

``BaseSampler.fit_resample`` is a template: it validates the target and the data, resolves
``sampling_strategy`` into ``sampling_strategy_``, calls the subclass's ``_fit_resample`` on
plain arrays, and gives the result back in the caller's container type (NumPy, pandas,
list, sparse), exactly as imbalanced-learn's samplers do.
"""
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
from joblib import effective_n_jobs
from scipy import sparse
from sklearn.base import (BaseEstimator, ClassifierMixin, MetaEstimatorMixin,
                          OneToOneFeatureMixin, _fit_context)
from sklearn.preprocessing import label_binarize
from sklearn.utils import InputTags as _SkInputTags
from sklearn.utils import TargetTags, _safe_indexing, get_tags
from sklearn.utils import Tags as _SkTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (_num_samples, check_consistent_length, column_or_1d,
                                      has_fit_parameter, validate_data)

from fastimb._rows import RowBuffers, gather_rows
from fastimb._validation import (check_all_finite, check_classification_target,
                                 check_sample_weight_nonneg, check_sampling_strategy,
                                 check_target_type, check_X_any)

__all__ = [
    "BaseSampler",
    "BaseOverSampler",
    "BaseUnderSampler",
    "BaseCleaningSampler",
    "SamplerTags",
    "is_sampler",
]


# ---------------------------------------------------------------------------------------
# tags: sklearn's, plus the sampler fields imbalanced-learn's checks read
# ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class SamplerTags:
    """Sampler-specific tags: whether the sampler exposes ``sample_indices_``."""

    sample_indices: bool = False


@dataclass(slots=True)
class InputTags(_SkInputTags):
    """sklearn's input tags plus ``dataframe`` (pandas input is accepted and returned)."""

    dataframe: bool = False


@dataclass(slots=True)
class Tags(_SkTags):
    """sklearn's tags plus ``sampler_tags``."""

    input_tags: InputTags = field(default_factory=InputTags)
    sampler_tags: SamplerTags | None = None


def is_sampler(estimator):
    """Whether ``estimator`` is a sampler (has ``fit_resample`` and declares itself one)."""
    if getattr(estimator, "_estimator_type", None) == "sampler":
        return True
    try:
        return getattr(estimator.__sklearn_tags__(), "sampler_tags", None) is not None
    except AttributeError:
        return False


# ---------------------------------------------------------------------------------------
# container round trip (pandas / list in, same type out)
# ---------------------------------------------------------------------------------------
class _Container:
    """What the caller passed, so the output can be given back in the same form."""

    __slots__ = ("kind", "columns", "name", "dtypes")

    def __init__(self, obj):
        self.kind = type(obj).__name__.lower()
        self.columns = getattr(obj, "columns", None)
        self.name = getattr(obj, "name", None)
        self.dtypes = getattr(obj, "dtypes", None)

    def restore(self, array):
        if self.kind == "list":
            return array.tolist()
        if self.kind == "dataframe":
            import pandas as pd

            if isinstance(array, pd.DataFrame):  # a sampler that indexed the frame itself
                out = array
            elif sparse.issparse(array):
                out = pd.DataFrame.sparse.from_spmatrix(array, columns=self.columns)
            else:
                out = pd.DataFrame(array, columns=self.columns)
            return out.astype(self.dtypes)
        if self.kind == "series":
            import pandas as pd

            return pd.Series(array, dtype=self.dtypes, name=self.name)
        return array


def _restore_containers(X_info, y_info, X_res, y_res):
    X_out = X_info.restore(X_res)
    y_out = y_info.restore(y_res)
    if X_info.kind == "dataframe" and y_info.kind in ("series", "dataframe"):
        y_out.index = X_out.index
    return X_out, y_out


# ---------------------------------------------------------------------------------------
# samplers
# ---------------------------------------------------------------------------------------
class BaseSampler(OneToOneFeatureMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of every fastimb sampler.

    Subclasses set ``_sampling_type`` and write ``_fit_resample(X, y)`` on validated
    arrays. Do not use this class directly.
    """

    _estimator_type = "sampler"
    _sampling_type = "bypass"
    #: whether the sampler sets ``sample_indices_``
    _sample_indices = False
    #: sparse formats accepted by ``_check_X_y``
    _accept_sparse = ("csr", "csc")

    def __init__(self, sampling_strategy="auto"):
        self.sampling_strategy = sampling_strategy

    def _check_X_y(self, X, y):
        """Validate ``X`` and ``y`` and set ``n_features_in_`` / ``feature_names_in_``."""
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        X, y = validate_data(self, X=X, y=y, reset=True,
                             accept_sparse=list(self._accept_sparse), ensure_all_finite=False)
        check_all_finite(X, type(self).__name__)
        return X, y, binarize_y

    def _check_X_y_loose(self, X, y):
        """For samplers that only index rows: no dtype conversion, NaN and strings allowed."""
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        X = check_X_any(X)
        # imbalanced-learn skips this check here and then crashes or mis-pairs rows
        check_consistent_length(X, y)
        validate_data(self, X=X, y=y, reset=True, skip_check_array=True)
        return X, y, binarize_y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, **params):
        """Check inputs and statistics of the sampler.

        You should use ``fit_resample`` in all cases.

        Parameters
        ----------
        X : {array-like, dataframe, sparse matrix} of shape (n_samples, n_features)
            Data array.
        y : array-like of shape (n_samples,)
            Target array.
        **params : dict
            Unused; accepted for compatibility.

        Returns
        -------
        self : object
            The instance itself.
        """
        X, y, _ = self._check_X_y(X, y)
        self.sampling_strategy_ = check_sampling_strategy(
            self.sampling_strategy, y, self._sampling_type
        )
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_resample(self, X, y, **params):
        """Resample the dataset.

        Parameters
        ----------
        X : {array-like, dataframe, sparse matrix} of shape (n_samples, n_features)
            Matrix containing the data which have to be sampled.
        y : array-like of shape (n_samples,)
            Corresponding label for each sample in X.
        **params : dict
            Extra parameters passed to the sampler.

        Returns
        -------
        X_resampled : {array-like, dataframe, sparse matrix} of shape (n_samples_new, n_features)
            The resampled data, in the container type of ``X``.
        y_resampled : array-like of shape (n_samples_new,)
            The corresponding labels, in the container type of ``y``.
        """
        check_classification_target(y)
        X_info, y_info = _Container(X), _Container(y)
        X, y, binarize_y = self._check_X_y(X, y)
        self.sampling_strategy_ = check_sampling_strategy(
            self.sampling_strategy, y, self._sampling_type
        )
        output = self._fit_resample(X, y, **params)
        y_res = label_binarize(output[1], classes=np.unique(y)) if binarize_y else output[1]
        X_res, y_res = _restore_containers(X_info, y_info, output[0], y_res)
        return (X_res, y_res) if len(output) == 2 else (X_res, y_res, output[2])

    @abstractmethod
    def _fit_resample(self, X, y, **params):
        """Resample validated arrays; return ``(X_resampled, y_resampled)``."""

    def _more_tags(self):
        return {"X_types": ["2darray", "sparse", "dataframe"],
                "sample_indices": self._sample_indices}

    def __sklearn_tags__(self):
        base = super().__sklearn_tags__()
        tags = Tags(
            estimator_type="sampler",
            target_tags=TargetTags(required=True),
            transformer_tags=None,
            regressor_tags=None,
            classifier_tags=None,
            array_api_support=base.array_api_support,
            no_validation=base.no_validation,
            non_deterministic=base.non_deterministic,
            requires_fit=base.requires_fit,
            _skip_test=base._skip_test,
            input_tags=InputTags(two_d_array=True, sparse=True, dataframe=True),
            sampler_tags=SamplerTags(sample_indices=self._sample_indices),
        )
        return tags


_STRATEGY_COMMON = [Interval(Real, 0, 1, closed="right")]


class BaseOverSampler(BaseSampler):
    """Base class of over-samplers (``sampling_strategy_`` counts samples to generate)."""

    _sampling_type = "over-sampling"
    _parameter_constraints: dict = {
        "sampling_strategy": [
            *_STRATEGY_COMMON,
            StrOptions({"auto", "minority", "not minority", "not majority", "all"}),
            Mapping,
            callable,
        ],
        "random_state": ["random_state"],
    }


class BaseUnderSampler(BaseSampler):
    """Base class of under-samplers (``sampling_strategy_`` counts samples to keep)."""

    _sampling_type = "under-sampling"
    _parameter_constraints: dict = {
        "sampling_strategy": [
            *_STRATEGY_COMMON,
            StrOptions({"auto", "majority", "not minority", "not majority", "all"}),
            Mapping,
            callable,
        ],
    }


class BaseCleaningSampler(BaseSampler):
    """Base class of cleaning samplers (``sampling_strategy_`` names the cleaned classes)."""

    _sampling_type = "clean-sampling"
    _parameter_constraints: dict = {
        "sampling_strategy": [
            *_STRATEGY_COMMON,
            StrOptions({"auto", "majority", "not minority", "not majority", "all"}),
            list,
            callable,
        ],
    }


# ---------------------------------------------------------------------------------------
# classifiers that wrap another estimator (threshold tuning, calibration)
# ---------------------------------------------------------------------------------------
def index_fit_params(params, indices, n_samples):
    """Fit parameters restricted to ``indices`` (those with one value per sample)."""
    return {k: (_safe_indexing(v, indices) if v is not None and hasattr(v, "__len__")
                and not isinstance(v, str) and _num_samples(v) == n_samples else v)
            for k, v in params.items()}


def fit_on_rows(estimator, X, y, rows, fit_params, buffers=None):
    """``estimator`` fitted on the rows ``rows`` of X and y (per-sample fit parameters
    restricted to them too); ``buffers`` (see :func:`fold_buffers`) may reuse the previous
    fold's copy of X."""
    y_rows = gather_rows(y, rows)
    params = index_fit_params(fit_params, rows, _num_samples(X))
    return (buffers or RowBuffers(reuse=False)).apply(
        X, rows, "train", lambda X_rows: estimator.fit(X_rows, y_rows, **params))


def fold_buffers(n_jobs):
    """Fold-row buffers for the folds of one fit: reused from fold to fold when joblib
    runs them one after the other, fresh copies otherwise."""
    return RowBuffers(reuse=effective_n_jobs(n_jobs) == 1)


class WrappingClassifierMixin(MetaEstimatorMixin, ClassifierMixin):
    """What fastimb's classifiers around an ``estimator`` share: the wrapped estimator's
    input tags, the check of ``y``, the routing of ``sample_weight`` and the fitted input
    attributes."""

    def _check_target(self, y):
        """``y`` as a 1-D array (a column vector warns, as scikit-learn does)."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             "y is None.")
        return column_or_1d(y, warn=True)

    def _route_sample_weight(self, estimator, sample_weight, n_samples, fit_params):
        """``(weights, fit_params)``: the checked weights (or None), also added to the fit
        parameters when ``estimator.fit`` takes them (with a warning otherwise)."""
        if sample_weight is None:
            return None, fit_params
        sample_weight = check_sample_weight_nonneg(sample_weight, n_samples)
        if has_fit_parameter(estimator, "sample_weight"):
            return sample_weight, {**fit_params, "sample_weight": sample_weight}
        warnings.warn(f"{type(estimator).__name__}.fit does not take sample_weight; the "
                      f"weights are used by {type(self).__name__} only.", UserWarning,
                      stacklevel=3)
        return sample_weight, fit_params

    def _copy_input_attributes(self, fitted):
        for attr in ("n_features_in_", "feature_names_in_"):
            if hasattr(fitted, attr):
                setattr(self, attr, getattr(fitted, attr))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if getattr(self, "estimator", None) is not None:
            inner = get_tags(self.estimator).input_tags
            tags.input_tags.sparse = inner.sparse
            tags.input_tags.allow_nan = inner.allow_nan
        return tags
