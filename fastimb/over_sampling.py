"""Over-samplers with imbalanced-learn's interface: ``fastimb.over_sampling.<Name>``."""
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.sparsefuncs import mean_variance_axis

from fastimb._docstring import RANDOM_STATE_DOC, SAMPLING_STRATEGY_DOCS, Substitution
from fastimb._kernels._openmp_helpers import effective_n_threads
from fastimb._kernels._smote import copy_rows, interpolate
from fastimb._random import Draws
from fastimb._rows import OutputAhead, fresh_output, gather_rows
from fastimb._validation import as_index_array
from fastimb.base import BaseOverSampler
from fastimb.neighbors import NearestNeighbors, check_neighbors_object

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

_TIES_NOTE = """**Where fastimb can differ from imbalanced-learn.** The output is identical
    (same rows, order and bits) wherever neighbour distances have no ties. Where they tie
    (duplicated rows, repeated values on a grid), the neighbours chosen can differ:
    scikit-learn's search orders ties by its own traversal (and its brute force, used
    above 15 features, rounds distances through a matrix product, which can also reorder
    near-ties), while fastimb's exact search orders equal distances by increasing index.
    A new sample may then move towards another (equally near) neighbour, and for
    Borderline-SMOTE and ADASYN, which count neighbours of other classes, a tie can also
    move a sample in or out of danger or change its ADASYN weight (so ADASYN's rounded
    counts can differ by a few samples). The distribution of the new samples is the
    same; the individual rows are not.

    The output is allocated once at its final size; the new samples are drawn and written
    in chunks of 32768, so no temporary of the output's length is held. Float32 and float64
    data go through a parallel kernel; other numeric dtypes (integers: values truncated
    toward zero, as in imbalanced-learn) through the same NumPy expression imbalanced-learn
    evaluates. Sparse CSR/CSC input takes a slower path with SciPy's sparse arithmetic.

    Threads: imbalanced-learn 0.14's SMOTE family has no ``n_jobs``; an int neighbour
    count uses fastimb's neighbour engine and kernels on every core this process may use
    (``OMP_NUM_THREADS`` and threadpoolctl limits apply). To choose, pass
    ``fastimb.neighbors.NearestNeighbors(n_neighbors=k + 1, n_jobs=...)``. The output
    never depends on the number of threads."""

#: new samples drawn and written per pass: bounds the temporaries to a few MiB (the
#: steps and, for some samplers, rows and factors); fewer, longer passes keep both
#: threads busy longer per draw (32k: 46 ms to generate 960k x 5 samples, 91 ms for
#: 980k x 20; 128k: 40 and 79 ms)
_CHUNK = 1 << 17
#: below this many values a kernel call runs on one thread (a parallel region costs more)
_SERIAL_BELOW = 1 << 15


def _neighbors_of(nn, X_fit, X_query):
    """imbalanced-learn's neighbour call: fit on X_fit, query X_query, drop column 0
    (fastimb's engine answers the rows it was just fitted on by its self-join)."""
    nn.fit(X_fit)
    if X_query is X_fit and isinstance(nn, NearestNeighbors):
        return nn._self_query(nn.n_neighbors)[:, 1:]
    return nn.kneighbors(X_query, return_distance=False)[:, 1:]


def _chunks(n):
    for start in range(0, n, _CHUNK):
        yield start, min(n, start + _CHUNK)


def _rows_of_chunk(counts, ends, a, b):
    """``np.repeat(arange(len(counts)), counts)[a:b]`` without the full array (``ends`` is
    ``cumsum(counts)``)."""
    r0, r1 = np.searchsorted(ends, [a, b - 1], side="right")
    n = counts[r0:r1 + 1].astype(np.intp)
    if r1 == r0:
        n[0] = b - a
    else:
        n[0] = ends[r0] - a
        n[-1] = b - ends[r1 - 1]
    return np.repeat(np.arange(r0, r1 + 1, dtype=np.intp), n)


class _Plan:
    """Everything about one class's new samples except the random numbers.

    Sample ``i`` starts at row ``base_map[r]`` of ``source`` (row ``r`` when ``base_map``
    is None) and moves towards row ``nns[r, c]`` of ``source``: the rows of the class
    alone for SMOTE, ADASYN and Borderline-SMOTE-1 (a compact array the interpolation
    reads from cache, where rows of the whole input would miss it), X for
    Borderline-SMOTE-2. ``(r, c)`` comes from the draws: ``divmod(randint(0, nns.size),
    k)`` for SMOTE and Borderline, or ``r`` fixed by the ``per_sample`` counts and ``c =
    choice(k)`` for ADASYN. With ``other_of`` (Borderline-SMOTE-2: the targets),
    differences towards a neighbour of another class are shortened by a factor drawn in
    ``[0, 0.5)``.
    """

    __slots__ = ("label", "n_new", "source", "base_map", "nns", "per_sample", "other_of")

    def __init__(self, label, n_new, source, nns, base_map=None, per_sample=None,
                 other_of=None):
        self.label = label
        self.n_new = int(n_new)
        self.source = source
        self.base_map = None if base_map is None else \
            np.ascontiguousarray(base_map, dtype=np.intp)
        # a user's estimator may return any integer dtype: check once, kernels trust it
        self.nns = as_index_array(nns, source.shape[0], name="neighbour indices")
        self.per_sample = per_sample
        self.other_of = other_of

    def pairs(self, drawn, rows):
        """``(base, nbr)``: the rows of ``source`` a batch's samples start at and move
        towards."""
        if rows is None:
            rows, cols = np.divmod(drawn, self.nns.shape[1])
        else:
            cols = drawn
        return rows if self.base_map is None else self.base_map[rows], self.nns[rows, cols]

    def batches(self, seed, random_state=None):
        """Yield ``(drawn, rows, steps, scale)`` chunk by chunk (see ``pairs``; rows are
        None but for ADASYN), drawing exactly what imbalanced-learn draws, in its order.

        imbalanced-learn draws all ``n`` integers, then all ``n`` steps (then, for
        Borderline-2, one factor per neighbour of another class, from a second
        ``check_random_state``). The integers are drawn first (kept in int32 when they fit:
        a fraction of the output's size), then the steps a chunk at a time (from a fork of
        the stream at the steps' start when the factors follow them on the same stream);
        the caller's RandomState (or the global one) ends where imbalanced-learn leaves it.
        ``random_state`` is ADASYN's stream, shared by all classes; the others call
        ``check_random_state(seed)`` per class, as imblearn does.
        """
        n, k = self.n_new, self.nns.shape[1]
        rs = check_random_state(seed) if random_state is None else random_state
        draws = Draws(rs)
        high = self.nns.size if self.per_sample is None else k
        all_drawn = draws.randint(
            high, n, dtype=np.int32 if high <= np.iinfo(np.int32).max else np.intp)
        step_draws, factor_draws = draws, None
        if self.other_of is not None:
            factor_rs = check_random_state(seed)
            if factor_rs is rs:                      # one shared stream: factors after steps
                step_draws = draws.fork()
                draws.skip_uniform(n)
                factor_draws = draws
            else:
                factor_draws = Draws(factor_rs)
        ends = None if self.per_sample is None else np.cumsum(self.per_sample)
        try:
            for a, b in _chunks(n):
                drawn = all_drawn[a:b]
                steps = step_draws.uniform(b - a)
                rows = None if ends is None else _rows_of_chunk(self.per_sample, ends, a, b)
                scale = None
                if factor_draws is not None:
                    other = self.other_of[self.pairs(drawn, rows)[1]] != self.label
                    scale = np.ones(b - a)
                    scale[other] = factor_draws.uniform(np.count_nonzero(other), high=0.5)
                yield drawn, rows, steps, scale
        finally:
            draws.commit()
            if factor_draws is not None and factor_draws is not draws:
                factor_draws.commit()


def _interpolate_numpy(X, base, nbr, steps, scale, out):
    """imbalanced-learn's expression, for dtypes the kernel does not take (e.g. integers)."""
    diffs = X[nbr] - X[base]
    if scale is not None:
        diffs *= scale[:, None]
    out[...] = X[base] + steps[:, None] * diffs


def _generate(X, y, plans, seed, random_state=None, ahead=None):
    """``X`` and ``y`` followed by each plan's new samples, in arrays allocated once (or,
    with ``ahead``, an :class:`OutputAhead` of the same shape, prepared meanwhile)."""
    n = X.shape[0]
    n_new = sum(p.n_new for p in plans)
    y_out = np.empty(n + n_new, dtype=y.dtype)
    y_out[:n] = y
    pos = n
    for p in plans:
        y_out[pos:pos + p.n_new] = p.label
        pos += p.n_new
    if sparse.issparse(X):
        return _generate_sparse(X, plans, seed, random_state), y_out

    max_threads = effective_n_threads(None)

    def threads(n_values):
        return 1 if n_values < _SERIAL_BELOW else max_threads

    compiled = X.dtype in (np.float32, np.float64)
    out = None if ahead is None else ahead.result(n + n_new)
    if out is None:
        out = fresh_output((n + n_new, X.shape[1]), X.dtype, max_threads)
        if compiled:
            copy_rows(np.ascontiguousarray(X), out[:n], threads(X.size))
        else:
            out[:n] = X
    no_scale, no_index = np.empty(0, dtype=np.float64), np.empty(0, dtype=np.intp)
    pos = n
    for p in plans:
        source = np.ascontiguousarray(p.source) if compiled else p.source
        base_map = no_index if p.base_map is None else p.base_map
        for drawn, rows, steps, scale in p.batches(seed, random_state):
            dest = out[pos:pos + drawn.shape[0]]
            if compiled:
                interpolate(source, drawn, no_index if rows is None else rows, base_map,
                            p.nns, steps, no_scale if scale is None else scale, dest,
                            threads(dest.size))
            else:
                _interpolate_numpy(source, *p.pairs(drawn, rows), steps, scale, dest)
            pos += drawn.shape[0]
    return out, y_out


def _generate_sparse(X, plans, seed, random_state):
    """The same samples for sparse input, with SciPy's sparse arithmetic (slower path)."""
    parts = [X]
    for p in plans:
        drawn, rows, steps, scale = zip(*p.batches(seed, random_state))
        base, nbr = zip(*(p.pairs(a, r) for a, r in zip(drawn, rows)))
        base, nbr, steps = np.concatenate(base), np.concatenate(nbr), np.concatenate(steps)
        X_base = p.source[base]
        diffs = p.source[nbr] - X_base
        if scale[0] is not None:
            diffs = type(X)(diffs.multiply(np.concatenate(scale)[:, None])).astype(X.dtype)
        new = X_base + type(X)(steps[:, None]).multiply(diffs)
        parts.append(type(X)(new).astype(X.dtype))
    return sparse.vstack(parts, format=X.format)


class BaseSMOTE(BaseOverSampler):
    """Base class of the SMOTE family (shared neighbour handling and generation)."""

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
        The number of nearest neighbours used to construct synthetic samples, or an
        estimator with ``kneighbors`` and ``kneighbors_graph`` (e.g. scikit-learn's
        ``NearestNeighbors``) that is cloned and used instead of fastimb's engine. An int
        uses :class:`fastimb.neighbors.NearestNeighbors` on every core; pass one with
        ``n_jobs`` set to limit its threads.

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of samples to generate for each class.
    nn_k_ : estimator object
        The neighbours estimator used (``NearestNeighbors(n_neighbors=k_neighbors + 1)``
        for an int).
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit_resample` (only when all are strings).

    See Also
    --------
    BorderlineSMOTE : Over-sample from the samples near the class border.
    ADASYN : Over-sample more where the class is harder to learn.

    Notes
    -----
    New samples are ``x + u * (x_nn - x)`` for a random sample ``x`` of the class, one of
    its ``k_neighbors`` nearest neighbours in the class ``x_nn`` and ``u`` uniform in
    ``[0, 1)``. Output: the original samples, then each class's new samples in
    ``sampling_strategy_`` order.

    {ties}

    Examples
    --------
    >>> from collections import Counter
    >>> from sklearn.datasets import make_classification
    >>> from fastimb.over_sampling import SMOTE
    >>> X, y = make_classification(n_classes=2, weights=[0.1, 0.9], n_samples=1000,
    ...                            random_state=10)
    >>> X_res, y_res = SMOTE(random_state=42).fit_resample(X, y)
    >>> sorted(Counter(y_res).items())
    [(np.int64(0), 898), (np.int64(1), 898)]
    """

    def __init__(self, *, sampling_strategy="auto", random_state=None, k_neighbors=5):
        super().__init__(sampling_strategy=sampling_strategy, random_state=random_state,
                         k_neighbors=k_neighbors)

    def _fit_resample(self, X, y):
        self._validate_estimator()
        ahead = OutputAhead.start(X, sum(self.sampling_strategy_.values()))
        plans = []
        for label, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            class_idx = np.flatnonzero(y == label)
            X_class = gather_rows(X, class_idx)
            nns = _neighbors_of(self.nn_k_, X_class, X_class)
            plans.append(_Plan(label, n_samples, X_class, nns))
        return _generate(X, y, plans, self.random_state, ahead=ahead)


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
        Nearest neighbours used to construct synthetic samples (or an estimator with
        ``kneighbors`` and ``kneighbors_graph``, cloned).
    m_neighbors : int or object, default=10
        Nearest neighbours used to decide whether a sample is in danger (or an estimator).
    kind : {{"borderline-1", "borderline-2"}}, default="borderline-1"
        ``borderline-1`` interpolates towards neighbours of the same class;
        ``borderline-2`` towards any neighbour, with a difference shortened by a factor
        in ``[0, 0.5)`` towards neighbours of another class.

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of samples to generate for each class.
    nn_k_ : estimator object
        Neighbours estimator used to construct synthetic samples.
    nn_m_ : estimator object
        Neighbours estimator used to find the samples in danger (fitted on X, as
        imbalanced-learn's; fastimb's frees its index before generating the new samples,
        so the output is not written beside it, and rebuilds it if it is queried).
    in_danger_indices : dict of ndarray
        For each class resampled, the indices of its samples in danger.
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit_resample` (only when all are strings).

    See Also
    --------
    SMOTE : Over-sample from every sample of the class.

    Notes
    -----
    A sample is in danger when at least half, but not all, of its ``m_neighbors``
    nearest neighbours (in the whole data set) belong to another class. A class with no
    sample in danger gets no new sample, as in imbalanced-learn.

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
        plans = []
        fitted_on_X = set()  # imbalanced-learn refits on X for every class: same result
        for label, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            class_idx = np.flatnonzero(y == label)
            X_class = gather_rows(X, class_idx)
            if "m" not in fitted_on_X:
                self.nn_m_.fit(X)
                fitted_on_X.add("m")
            nn_m = self.nn_m_.kneighbors(X_class, return_distance=False)[:, 1:]
            n_other = np.count_nonzero(y[nn_m] != label, axis=1)
            m = self.nn_m_.n_neighbors - 1
            danger = np.flatnonzero((n_other >= m / 2) & (n_other < m))
            if danger.size == 0:
                continue
            danger_idx = class_idx[danger]
            self.in_danger_indices[label] = danger_idx
            if self.kind == "borderline-1":
                nns = _neighbors_of(self.nn_k_, X_class, X_class[danger])
                plans.append(_Plan(label, n_samples, X_class, nns, base_map=danger))
            else:  # neighbours among all samples; rows of X already
                if "k" not in fitted_on_X:
                    self.nn_k_.fit(X)
                    fitted_on_X.add("k")
                nns = self.nn_k_.kneighbors(X_class[danger], return_distance=False)[:, 1:]
                plans.append(_Plan(label, n_samples, X, nns, base_map=danger_idx,
                                   other_of=y))
        # nn_m_ (and Borderline-2's nn_k_) stay fitted on X as imbalanced-learn's do, but
        # fastimb's free their index before the output is allocated (rebuilt if queried)
        for nn in (self.nn_m_, self.nn_k_):
            if isinstance(nn, NearestNeighbors):
                nn._release_index()
        return _generate(X, y, plans, self.random_state)


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
        (or an estimator with ``kneighbors`` and ``kneighbors_graph``, cloned).

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

    See Also
    --------
    SMOTE : Over-sample from every sample of the class, uniformly.

    Notes
    -----
    Each sample of a class gets a number of new samples proportional to the share of
    its ``n_neighbors`` nearest neighbours (in the whole data set) that belong to another
    class. Raises imbalanced-learn's RuntimeError when no neighbour of a class belongs to
    another class, and its ValueError when the rounded counts are all zero.

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
        plans = []
        # imbalanced-learn refits nn_ on X for every class, then on the class: a twin
        # fitted on X once gives the same neighbours, and nn_ ends fitted as imblearn's
        nn_all = None
        for label, n_samples in self.sampling_strategy_.items():
            if n_samples == 0:
                continue
            class_idx = np.flatnonzero(y == label)
            X_class = gather_rows(X, class_idx)
            if nn_all is None:
                nn_all = clone(self.nn_)
                nn_all.fit(X)
            nns = nn_all.kneighbors(X_class, return_distance=False)[:, 1:]
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
            plans.append(_Plan(label, n_samples, X_class, nns, per_sample=per_sample))
        del nn_all   # free the index over X before the output is allocated
        return _generate(X, y, plans, self.random_state, random_state)
