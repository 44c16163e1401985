"""Over-samplers with imbalanced-learn's interface: ``fastimb.over_sampling.<Name>``."""
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.sparsefuncs import mean_variance_axis

from fastimb._docstring import RANDOM_STATE_DOC, SAMPLING_STRATEGY_DOCS, Substitution
from fastimb._kernels._openmp_helpers import effective_n_threads
from fastimb._kernels._smote import interpolate
from fastimb._rows import gather_rows
from fastimb.base import BaseOverSampler
from fastimb.neighbors import check_neighbors_object

__all__ = ["ADASYN", "BorderlineSMOTE", "RandomOverSampler", "SMOTE"]


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


# ---------------------------------------------------------------------------------------
# SMOTE family
# ---------------------------------------------------------------------------------------
_NEIGHBORS_CONSTRAINT = [Interval(Integral, 1, None, closed="left"),
                         HasMethods(["kneighbors", "kneighbors_graph"])]

_TIES_NOTE = """Where neighbour distances tie (duplicated rows, repeated values), the
    neighbours chosen can differ from imbalanced-learn's, whose scikit-learn search orders
    ties by its own traversal; fastimb orders them by index. The output then differs in
    which neighbour a new sample moves towards, not in its distribution."""


class _Block:
    """New samples of one class: ``X[base] + steps * (X[nbr] - X[base])``."""

    __slots__ = ("label", "base", "nbr", "steps", "scale")

    def __init__(self, label, base, nbr, steps, scale=None):
        self.label = label
        self.base = np.ascontiguousarray(base, dtype=np.intp)
        self.nbr = np.ascontiguousarray(nbr, dtype=np.intp)
        self.steps = np.ascontiguousarray(steps, dtype=np.float64).reshape(-1)
        self.scale = None if scale is None else np.ascontiguousarray(scale, dtype=np.float64)


def _assemble(X, y, blocks):
    """Original samples, then each block's new samples, in one array allocated once."""
    n_new = sum(b.base.shape[0] for b in blocks)
    n = X.shape[0]
    y_out = np.empty(n + n_new, dtype=y.dtype)
    y_out[:n] = y
    pos = n
    for b in blocks:
        y_out[pos:pos + b.base.shape[0]] = b.label
        pos += b.base.shape[0]
    if sparse.issparse(X):
        return _assemble_sparse(X, blocks), y_out
    work = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    work = np.ascontiguousarray(work)
    out = np.empty((n + n_new, X.shape[1]), dtype=work.dtype)
    out[:n] = work
    n_threads = effective_n_threads(None)
    empty = np.empty(0, dtype=np.float64)
    pos = n
    for b in blocks:
        m = b.base.shape[0]
        interpolate(work, b.base, b.nbr, b.steps, empty if b.scale is None else b.scale,
                    out[pos:pos + m], n_threads)
        pos += m
    return (out if out.dtype == X.dtype else out.astype(X.dtype)), y_out


def _assemble_sparse(X, blocks):
    """The same samples for sparse input, with SciPy's sparse arithmetic (slower path)."""
    parts = [X]
    kind = type(X)
    for b in blocks:
        diffs = X[b.nbr] - X[b.base]
        if b.scale is not None:
            diffs = sparse.csr_matrix(diffs)
            diffs = diffs.multiply(sparse.csr_matrix(b.scale[:, None])).astype(X.dtype)
        steps = kind(b.steps[:, None])
        parts.append((X[b.base] + steps.multiply(diffs)).astype(X.dtype))
    return sparse.vstack(parts, format=X.format)


def _neighbors_of(nn, X_fit, X_query):
    """imbalanced-learn's neighbour call: fit on X_fit, query X_query, drop column 0."""
    nn.fit(X_fit)
    return nn.kneighbors(X_query, return_distance=False)[:, 1:]


class BaseSMOTE(BaseOverSampler):
    """Base class of the SMOTE family (shared neighbour handling and random draws)."""

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "k_neighbors": _NEIGHBORS_CONSTRAINT,
    }

    def __init__(self, sampling_strategy="auto", random_state=None, k_neighbors=5):
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.k_neighbors = k_neighbors

    def _validate_estimator(self):
        self.nn_k_ = check_neighbors_object("k_neighbors", self.k_neighbors,
                                            additional_neighbor=1)

    def _draw(self, n_candidates, k, n_samples):
        """imbalanced-learn's draws for ``n_samples`` new samples: a fresh stream for an
        int seed, one randint over the flattened neighbour table, then the steps."""
        random_state = check_random_state(self.random_state)
        flat = random_state.randint(low=0, high=n_candidates, size=n_samples)
        steps = 1.0 * random_state.uniform(size=n_samples)
        return np.floor_divide(flat, k), np.mod(flat, k), steps


@Substitution(sampling_strategy=SAMPLING_STRATEGY_DOCS["over-sampling"],
              random_state=RANDOM_STATE_DOC, ties=_TIES_NOTE)
class SMOTE(BaseSMOTE):
    """Synthetic Minority Over-sampling Technique, compiled.

    A drop-in for :class:`imblearn.over_sampling.SMOTE`: same parameters and attributes
    and, for the same ``random_state``, the same output (same rows, order and bits, in
    float32 and float64) wherever neighbour distances have no ties.

    Parameters
    ----------
    {sampling_strategy}

    {random_state}

    k_neighbors : int or object, default=5
        The number of nearest neighbours used to construct synthetic samples, or a
        fitted-style estimator with ``kneighbors`` (e.g. scikit-learn's
        ``NearestNeighbors``) that is cloned and used instead of fastimb's engine.

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of samples to generate for each class.
    nn_k_ : estimator object
        The neighbours estimator used (fastimb's ``NearestNeighbors(k_neighbors + 1)``
        for an int).
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit_resample` (only when all are strings).

    Notes
    -----
    The neighbour search runs in fastimb's parallel exact engine and the new samples are
    written by a parallel kernel straight into the output array, allocated once. Sparse
    CSR/CSC input takes a slower path with the same results.

    {ties}
    """

    def __init__(self, *, sampling_strategy="auto", random_state=None, k_neighbors=5):
        super().__init__(sampling_strategy=sampling_strategy, random_state=random_state,
                         k_neighbors=k_neighbors)

    def _fit_resample(self, X, y):
        self._validate_estimator()
        blocks = []
        for label, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            class_idx = np.flatnonzero(y == label)
            X_class = X[class_idx]
            nns = _neighbors_of(self.nn_k_, X_class, X_class)
            rows, cols, steps = self._draw(nns.size, nns.shape[1], n_samples)
            blocks.append(_Block(label, class_idx[rows], class_idx[nns[rows, cols]], steps))
        return _assemble(X, y, blocks)


@Substitution(sampling_strategy=SAMPLING_STRATEGY_DOCS["over-sampling"],
              random_state=RANDOM_STATE_DOC, ties=_TIES_NOTE)
class BorderlineSMOTE(BaseSMOTE):
    """Borderline-SMOTE (kinds 1 and 2): SMOTE from the samples in danger only.

    A drop-in for :class:`imblearn.over_sampling.BorderlineSMOTE`, with the same output for
    the same ``random_state`` wherever neighbour distances have no ties.

    Parameters
    ----------
    {sampling_strategy}

    {random_state}

    k_neighbors : int or object, default=5
        Nearest neighbours used to construct synthetic samples (or an estimator).
    m_neighbors : int or object, default=10
        Nearest neighbours used to decide whether a sample is in danger (or an estimator).
    kind : {{"borderline-1", "borderline-2"}}, default="borderline-1"
        ``borderline-1`` interpolates towards neighbours of the same class;
        ``borderline-2`` towards any neighbour, with a step of at most 0.5 towards
        neighbours of another class.

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of samples to generate for each class.
    nn_k_ : estimator object
        Neighbours estimator used to construct synthetic samples.
    nn_m_ : estimator object
        Neighbours estimator used to find the samples in danger.
    in_danger_indices : dict of ndarray
        For each class resampled, the indices of its samples in danger.
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit_resample` (only when all are strings).

    Notes
    -----
    A class with no sample in danger gets no new sample, as in imbalanced-learn.

    {ties}
    """

    _parameter_constraints: dict = {
        **BaseSMOTE._parameter_constraints,
        "m_neighbors": _NEIGHBORS_CONSTRAINT,
        "kind": [StrOptions({"borderline-1", "borderline-2"})],
    }

    def __init__(self, *, sampling_strategy="auto", random_state=None, k_neighbors=5,
                 m_neighbors=10, kind="borderline-1"):
        super().__init__(sampling_strategy=sampling_strategy, random_state=random_state,
                         k_neighbors=k_neighbors)
        self.m_neighbors = m_neighbors
        self.kind = kind

    def _validate_estimator(self):
        super()._validate_estimator()
        self.nn_m_ = check_neighbors_object("m_neighbors", self.m_neighbors,
                                            additional_neighbor=1)

    def _fit_resample(self, X, y):
        self._validate_estimator()
        self.in_danger_indices = {}
        blocks = []
        for label, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            class_idx = np.flatnonzero(y == label)
            X_class = X[class_idx]
            nn_m = _neighbors_of(self.nn_m_, X, X_class)
            n_other = np.count_nonzero(y[nn_m] != label, axis=1)
            m = self.nn_m_.n_neighbors - 1
            danger = (n_other >= m / 2) & (n_other < m)
            if not danger.any():
                continue
            danger_idx = class_idx[danger]
            self.in_danger_indices[label] = danger_idx
            if self.kind == "borderline-1":
                nns = _neighbors_of(self.nn_k_, X_class, X[danger_idx])
                rows, cols, steps = self._draw(nns.size, nns.shape[1], n_samples)
                blocks.append(_Block(label, danger_idx[rows], class_idx[nns[rows, cols]],
                                     steps))
            else:
                nns = _neighbors_of(self.nn_k_, X, X[danger_idx])
                rows, cols, steps = self._draw(nns.size, nns.shape[1], n_samples)
                nbr = nns[rows, cols]
                other = y[nbr] != label
                scale = np.ones(n_samples)
                # a second fresh stream for an int seed, as imbalanced-learn draws it
                random_state = check_random_state(self.random_state)
                scale[other] = random_state.uniform(low=0.0, high=0.5,
                                                    size=(other.sum(), 1)).reshape(-1)
                blocks.append(_Block(label, danger_idx[rows], nbr, steps, scale))
        return _assemble(X, y, blocks)


@Substitution(sampling_strategy=SAMPLING_STRATEGY_DOCS["over-sampling"],
              random_state=RANDOM_STATE_DOC, ties=_TIES_NOTE)
class ADASYN(BaseOverSampler):
    """Adaptive Synthetic sampling: more new samples where the class is harder to learn.

    A drop-in for :class:`imblearn.over_sampling.ADASYN`, with the same output for the
    same ``random_state`` wherever neighbour distances have no ties.

    Parameters
    ----------
    {sampling_strategy}

    {random_state}

    n_neighbors : int or object, default=5
        Nearest neighbours used to measure difficulty and to construct synthetic samples
        (or an estimator with ``kneighbors``).

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of samples to generate for each class (the number generated can differ
        slightly: the per-sample counts are rounded, as in imbalanced-learn).
    nn_ : estimator object
        The neighbours estimator used.
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit_resample` (only when all are strings).

    Notes
    -----
    Raises imbalanced-learn's RuntimeError when no neighbour of a class belongs to
    another class.

    {ties}
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "n_neighbors": _NEIGHBORS_CONSTRAINT,
    }

    def __init__(self, *, sampling_strategy="auto", random_state=None, n_neighbors=5):
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.n_neighbors = n_neighbors

    def _validate_estimator(self):
        self.nn_ = check_neighbors_object("n_neighbors", self.n_neighbors,
                                          additional_neighbor=1)

    def _fit_resample(self, X, y):
        self._validate_estimator()
        random_state = check_random_state(self.random_state)  # one stream for all classes
        blocks = []
        for label, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            class_idx = np.flatnonzero(y == label)
            X_class = X[class_idx]
            nns = _neighbors_of(self.nn_, X, X_class)
            k = self.nn_.n_neighbors - 1
            ratio = np.sum(y[nns] != label, axis=1) / k
            if not np.sum(ratio):
                raise RuntimeError(
                    "Not any neigbours belong to the majority class. This case will induce "
                    "a NaN case with a division by zero. ADASYN is not suited for this "
                    "specific dataset. Use SMOTE instead."
                )
            ratio /= np.sum(ratio)
            per_sample = np.rint(ratio * n_samples).astype(int)
            n_samples = int(np.sum(per_sample))
            if not n_samples:
                raise ValueError("No samples will be generated with the provided ratio "
                                 "settings.")
            nns = _neighbors_of(self.nn_, X_class, X_class)
            rows = np.repeat(np.arange(class_idx.size), per_sample)
            cols = random_state.choice(k, size=n_samples)
            steps = random_state.uniform(size=(n_samples, 1))
            blocks.append(_Block(label, class_idx[rows], class_idx[nns[rows, cols]], steps))
        return _assemble(X, y, blocks)
