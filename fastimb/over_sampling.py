"""Over-samplers with imbalanced-learn's interface: ``fastimb.over_sampling.<Name>``."""
from collections.abc import Mapping
from numbers import Real

import numpy as np
from scipy import sparse
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.sparsefuncs import mean_variance_axis

from fastimb._docstring import RANDOM_STATE_DOC, SAMPLING_STRATEGY_DOCS, Substitution
from fastimb._rows import gather_rows
from fastimb.base import BaseOverSampler

__all__ = ["RandomOverSampler"]


@Substitution(sampling_strategy=SAMPLING_STRATEGY_DOCS["over-sampling"],
              random_state=RANDOM_STATE_DOC)
class RandomOverSampler(BaseOverSampler):
    """Over-sample by drawing samples at random with replacement (optionally smoothed).

    A drop-in for :class:`imblearn.over_sampling.RandomOverSampler`: same parameters,
    attributes and, for the same ``random_state``, the same output and ``sample_indices_``.

    Parameters
    ----------
    {sampling_strategy}

    {random_state}

    shrinkage : float or dict, default=None
        Parameter of the smoothed bootstrap: ``None`` gives a plain bootstrap; a float
        applies the same shrinkage to every class; a dict gives one factor per class
        resampled. The perturbation is Gaussian with a diagonal covariance scaled by the
        class's feature standard deviations. With a shrinkage the output is float64 (as in
        imbalanced-learn).

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of samples to generate for each class.
    sample_indices_ : ndarray of shape (n_new_samples,)
        Indices of the selected samples: the original samples, then the drawn ones.
    shrinkage_ : dict or None
        Per-class shrinkage factors used.
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during `fit_resample` (only when all are strings).

    Notes
    -----
    Accepts NaN, strings and any dtype (rows are only copied), sparse CSR/CSC input and
    pandas DataFrames. The copy of float rows runs in a parallel kernel.
    """

    _sample_indices = True
    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "shrinkage": [Interval(Real, 0, None, closed="left"), dict, None],
    }

    def __init__(self, *, sampling_strategy="auto", random_state=None, shrinkage=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.shrinkage = shrinkage

    def _check_X_y(self, X, y):
        return self._check_X_y_loose(X, y)

    def _resolve_shrinkage(self):
        if isinstance(self.shrinkage, Real):
            return {klass: self.shrinkage for klass in self.sampling_strategy_}
        if self.shrinkage is None:
            return None
        shrinkage = dict(self.shrinkage) if isinstance(self.shrinkage, Mapping) else None
        missing = self.sampling_strategy_.keys() - shrinkage.keys()
        if missing:
            raise ValueError(
                "`shrinkage` should contain a shrinkage factor for each class that will be "
                f"resampled. The missing classes are: {missing!r}"
            )
        for klass, factor in shrinkage.items():
            if factor < 0:
                raise ValueError(f"The shrinkage factor needs to be >= 0. Got {factor} "
                                 f"for class {klass}.")
        return self.shrinkage

    def _fit_resample(self, X, y):
        random_state = check_random_state(self.random_state)
        self.shrinkage_ = self._resolve_shrinkage()
        if self.shrinkage_ is not None:
            try:
                X = check_array(X, accept_sparse=["csr", "csc"], dtype="numeric")
            except ValueError as exc:
                raise ValueError(
                    "When shrinkage is not None, X needs to contain only numerical data to "
                    "later generate a smoothed bootstrap sample."
                ) from exc

        # draw exactly what imbalanced-learn draws, in its order
        n_samples, n_features = X.shape
        drawn, noise = [], []
        for klass, n_new in self.sampling_strategy_.items():
            class_indices = np.flatnonzero(y == klass)
            boot = random_state.choice(class_indices, size=n_new, replace=True)
            drawn.append(boot)
            if self.shrinkage_ is not None:
                noise.append((klass, class_indices, random_state.randn(n_new, n_features)))
        sample_indices = np.concatenate(
            [np.arange(n_samples, dtype=np.intp)] + [d.astype(np.intp) for d in drawn]
        )
        self.sample_indices_ = sample_indices
        y_res = y[sample_indices]

        if self.shrinkage_ is None:
            X_res = gather_rows(X, sample_indices)
            if hasattr(X_res, "iloc"):
                X_res = X_res.reset_index(drop=True)
            return X_res, y_res
        return self._smoothed(X, sample_indices, noise), y_res

    def _smoothed(self, X, sample_indices, noise):
        """Original rows, then bootstrap rows plus Gaussian noise scaled per class."""
        n_samples, n_features = X.shape
        constant = (4 / ((n_features + 2) * n_samples)) ** (1 / (n_features + 4))
        start = n_samples
        if sparse.issparse(X):
            blocks = [X]
            for klass, class_indices, z in noise:
                boot = sample_indices[start:start + z.shape[0]]
                start += z.shape[0]
                _, var = mean_variance_axis(X[class_indices, :], axis=0)
                scale = self.shrinkage_[klass] * constant * np.sqrt(var)
                new = z * scale.astype(np.float64) + X[boot, :]
                blocks.append(sparse.csr_matrix(new, dtype=X.dtype))
            return sparse.vstack(blocks, format=X.format)
        X = np.asarray(X)
        out = np.empty((sample_indices.shape[0], n_features),
                       dtype=np.result_type(X.dtype, np.float64))
        out[:n_samples] = X
        for klass, class_indices, z in noise:
            boot = sample_indices[start:start + z.shape[0]]
            scale = self.shrinkage_[klass] * constant * np.std(X[class_indices, :], axis=0)
            # z @ diag(scale) is z * scale, bit for bit: each entry has one non-zero term
            np.multiply(z, scale.astype(np.float64), out=z)
            np.add(z, X[boot, :], out=out[start:start + z.shape[0]])
            start += z.shape[0]
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags
