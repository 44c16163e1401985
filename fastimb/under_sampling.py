"""Under-samplers and cleaning samplers with imbalanced-learn's interface."""
import numpy as np
from sklearn.utils import check_random_state

from fastimb._docstring import RANDOM_STATE_DOC, SAMPLING_STRATEGY_DOCS, Substitution
from fastimb._rows import gather_rows
from fastimb._validation import indices_by_class
from fastimb.base import BaseUnderSampler

__all__ = ["RandomUnderSampler"]


@Substitution(sampling_strategy=SAMPLING_STRATEGY_DOCS["under-sampling"],
              random_state=RANDOM_STATE_DOC)
class RandomUnderSampler(BaseUnderSampler):
    """Under-sample the targeted classes by picking samples at random.

    A drop-in for :class:`imblearn.under_sampling.RandomUnderSampler`: same parameters,
    attributes and, for the same ``random_state``, the same ``sample_indices_``.

    Parameters
    ----------
    {sampling_strategy}

    {random_state}

    replacement : bool, default=False
        Whether the sample is drawn with replacement.

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of samples to keep for each targeted class.
    sample_indices_ : ndarray of shape (n_new_samples,)
        Indices of the kept samples, class by class in label order; within a targeted
        class in the order they were drawn.
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during `fit_resample` (only when all are strings).

    Notes
    -----
    Accepts NaN, strings and any dtype, sparse CSR/CSC input and pandas DataFrames (the
    output keeps the DataFrame's index labels, as imbalanced-learn does).
    """

    _sample_indices = True
    _parameter_constraints: dict = {
        **BaseUnderSampler._parameter_constraints,
        "random_state": ["random_state"],
        "replacement": ["boolean"],
    }

    def __init__(self, *, sampling_strategy="auto", random_state=None, replacement=False):
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.replacement = replacement

    def _check_X_y(self, X, y):
        return self._check_X_y_loose(X, y)

    def _fit_resample(self, X, y):
        random_state = check_random_state(self.random_state)
        kept = []
        for klass, class_indices in zip(*indices_by_class(y)):
            if klass in self.sampling_strategy_:
                pick = random_state.choice(class_indices.size,
                                           size=self.sampling_strategy_[klass],
                                           replace=self.replacement)
                class_indices = class_indices[pick]
            kept.append(class_indices)
        self.sample_indices_ = np.concatenate(kept).astype(np.intp, copy=False)
        return gather_rows(X, self.sample_indices_), y[self.sample_indices_]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags
