"""Over-sampling followed by cleaning, with imbalanced-learn's interface."""
from numbers import Integral

from sklearn.base import clone
from sklearn.utils import check_X_y
from sklearn.utils._param_validation import HasMethods

from fastimb._docstring import N_JOBS_DOC, RANDOM_STATE_DOC, SAMPLING_STRATEGY_DOCS
from fastimb._validation import check_target_type
from fastimb.base import BaseOverSampler
from fastimb.over_sampling import SMOTE
from fastimb.under_sampling import EditedNearestNeighbours, TomekLinks

__all__ = ["SMOTEENN", "SMOTETomek"]

_SAMPLER = [HasMethods(["fit_resample"]), None]


class _SMOTEThenClean(BaseOverSampler):
    """SMOTE, then a cleaning sampler on its output (both cloned at fit)."""

    _cleaner_param = None   # "enn" or "tomek"
    _default_cleaner = None

    def _validate_estimator(self):
        smote = self.smote
        self.smote_ = clone(smote) if smote is not None else SMOTE(
            sampling_strategy=self.sampling_strategy, random_state=self.random_state)
        cleaner = getattr(self, self._cleaner_param)
        cleaner_ = clone(cleaner) if cleaner is not None else self._default_cleaner(
            sampling_strategy="all", n_jobs=self.n_jobs)
        setattr(self, self._cleaner_param + "_", cleaner_)
        return self.smote_, cleaner_

    def _fit_resample(self, X, y):
        smote, cleaner = self._validate_estimator()
        y = check_target_type(y)
        X, y = check_X_y(X, y, accept_sparse=["csr", "csc"])
        # imbalanced-learn keeps the raw parameter here
        self.sampling_strategy_ = self.sampling_strategy
        X_res, y_res = smote.fit_resample(X, y)
        return cleaner.fit_resample(X_res, y_res)


_COMBINED_DOC = """{summary}

    A drop-in for :class:`imblearn.combine.{name}`: same parameters, attributes and, for
    the same ``random_state``, the same output on tie-free data.

    Parameters
    ----------
    {sampling_strategy}

    {random_state}

    smote : sampler object, default=None
        The over-sampler (fastimb's or imbalanced-learn's SMOTE); default
        ``SMOTE(sampling_strategy=sampling_strategy, random_state=random_state)``.
    {cleaner} : sampler object, default=None
        The cleaner; default ``{cleaner_class}(sampling_strategy='all')``.

    {n_jobs}

    Attributes
    ----------
    sampling_strategy_ : dict or str
        The ``sampling_strategy`` parameter as given (as imbalanced-learn sets it).
    smote_ : sampler object
        The fitted over-sampler.
    {cleaner}_ : sampler object
        The fitted cleaner.
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit_resample` (only when all are strings).
    """


def _combined_doc(cls):
    cls.__doc__ = _COMBINED_DOC.format(
        summary=cls.__doc__.strip(), name=cls.__name__, cleaner=cls._cleaner_param,
        cleaner_class=cls._default_cleaner.__name__,
        sampling_strategy=SAMPLING_STRATEGY_DOCS["over-sampling"],
        random_state=RANDOM_STATE_DOC, n_jobs=N_JOBS_DOC)
    return cls


@_combined_doc
class SMOTEENN(_SMOTEThenClean):
    """SMOTE over-sampling, then cleaning with edited nearest neighbours."""

    _cleaner_param = "enn"
    _default_cleaner = EditedNearestNeighbours
    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "smote": _SAMPLER,
        "enn": _SAMPLER,
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, sampling_strategy="auto", random_state=None, smote=None, enn=None,
                 n_jobs=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.smote = smote
        self.enn = enn
        self.n_jobs = n_jobs


@_combined_doc
class SMOTETomek(_SMOTEThenClean):
    """SMOTE over-sampling, then removal of Tomek links."""

    _cleaner_param = "tomek"
    _default_cleaner = TomekLinks
    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "smote": _SAMPLER,
        "tomek": _SAMPLER,
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, sampling_strategy="auto", random_state=None, smote=None,
                 tomek=None, n_jobs=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.smote = smote
        self.tomek = tomek
        self.n_jobs = n_jobs
