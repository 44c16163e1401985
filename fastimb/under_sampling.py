"""Under-samplers and cleaning samplers with imbalanced-learn's interface."""
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from fastimb._docstring import (
    N_JOBS_DOC,
    RANDOM_STATE_DOC,
    SAMPLING_STRATEGY_DOCS,
    Substitution,
)
from fastimb._rows import gather_rows
from fastimb._validation import check_float_X, indices_by_class
from fastimb.base import BaseCleaningSampler, BaseUnderSampler
from fastimb._kernels._openmp_helpers import effective_n_threads
from fastimb.neighbors import (
    NearestNeighbors,
    _skip_array,
    check_neighbors_object,
    count_closer,
)

__all__ = ["EditedNearestNeighbours", "RandomUnderSampler", "TomekLinks"]

_TIE_RULE = """Ties: fastimb's neighbour search orders points at equal distance by index
    and excludes a point from its own neighbours by index. imbalanced-learn takes the
    second column of a scikit-learn query instead, so with duplicated points or exactly
    equal distances the two can differ; on tie-free data ``sample_indices_`` is the
    same."""


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


@Substitution(sampling_strategy=SAMPLING_STRATEGY_DOCS["clean-sampling"],
              n_jobs=N_JOBS_DOC, ties=_TIE_RULE)
class TomekLinks(BaseCleaningSampler):
    """Remove Tomek links: pairs of mutual nearest neighbours from different classes.

    A drop-in for :class:`imblearn.under_sampling.TomekLinks` with the same
    ``sample_indices_`` on tie-free data.

    Parameters
    ----------
    {sampling_strategy}

    {n_jobs}

    Attributes
    ----------
    sampling_strategy_ : dict
        The classes whose linked samples are removed.
    sample_indices_ : ndarray of shape (n_new_samples,)
        Indices of the samples kept, ascending.
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit_resample` (only when all are strings).

    Notes
    -----
    Every link joins two classes, so at most one of its ends is in the largest class.
    fastimb queries the nearest neighbour of the points outside the largest class only,
    then of the few points of the largest class that such a query returned, instead of a
    nearest-neighbour pass over every row.

    {ties}
    """

    _sample_indices = True
    _parameter_constraints: dict = {
        **BaseCleaningSampler._parameter_constraints,
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, sampling_strategy="auto", n_jobs=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.n_jobs = n_jobs

    @staticmethod
    def is_tomek(y, nn_index, class_type):
        """Boolean mask of the samples of the classes ``class_type`` in a Tomek link.

        Parameters
        ----------
        y : ndarray of shape (n_samples,)
            Target vector.
        nn_index : ndarray of shape (n_samples,)
            Index of the nearest neighbour of each sample.
        class_type : container of labels
            The classes whose samples may be flagged.

        Returns
        -------
        is_tomek : ndarray of shape (n_samples,), bool
        """
        y = np.asarray(y)
        nn_index = np.asarray(nn_index)
        targeted = np.isin(y, np.asarray(list(class_type), dtype=y.dtype))
        return targeted & (y[nn_index] != y) & (nn_index[nn_index] == np.arange(y.shape[0]))

    def _nearest(self, X, y):
        """Nearest neighbour (excluding itself) of every point that can be in a link; the
        points of the largest class that cannot be get themselves (never a link)."""
        labels, groups = indices_by_class(y)
        largest = int(np.argmax([g.size for g in groups]))
        nn = NearestNeighbors(n_neighbors=1, n_jobs=self.n_jobs).fit(X)
        outside = np.concatenate([g for i, g in enumerate(groups) if i != largest])
        nearest = np.arange(y.shape[0], dtype=np.intp)
        if outside.size:
            nearest[outside] = nn._query_rows(outside, 1)[1][:, 0]
            partners = nearest[outside]
            in_largest = np.unique(partners[y[partners] == labels[largest]])
            if in_largest.size:
                nearest[in_largest] = nn._query_rows(in_largest, 1)[1][:, 0]
        return nearest

    def _fit_resample(self, X, y):
        if X.shape[0] < 2:
            raise ValueError("Expected n_neighbors <= n_samples_fit, but n_neighbors = 2, "
                             f"n_samples_fit = {X.shape[0]}, n_samples = {X.shape[0]}")
        nearest = self._nearest(X if not hasattr(X, "toarray") else X.toarray(), y)
        links = self.is_tomek(y, nearest, self.sampling_strategy_)
        self.sample_indices_ = np.flatnonzero(~links)
        return gather_rows(X, self.sample_indices_, self.n_jobs), y[self.sample_indices_]


@Substitution(sampling_strategy=SAMPLING_STRATEGY_DOCS["clean-sampling"],
              n_jobs=N_JOBS_DOC, ties=_TIE_RULE)
class EditedNearestNeighbours(BaseCleaningSampler):
    """Edited nearest neighbours: remove samples whose neighbourhood disagrees with them.

    A drop-in for :class:`imblearn.under_sampling.EditedNearestNeighbours` with the same
    ``sample_indices_`` (class by class in label order, ascending within a class) on
    tie-free data.

    Parameters
    ----------
    {sampling_strategy}

    n_neighbors : int or object, default=3
        Size of the neighbourhood, or an estimator with ``kneighbors`` (cloned).
    kind_sel : {{'all', 'mode'}}, default='all'
        ``'all'``: keep a sample when all its neighbours share its class; ``'mode'``:
        when its class is the most frequent among them (ties: the smallest label).

    {n_jobs}

    Attributes
    ----------
    sampling_strategy_ : dict
        The classes cleaned.
    nn_ : estimator object
        The neighbours estimator used.
    sample_indices_ : ndarray of shape (n_new_samples,)
        Indices of the samples kept.
    n_features_in_ : int
        Number of features in the input dataset.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit_resample` (only when all are strings).

    Notes
    -----
    With an int ``n_neighbors`` the neighbours of all targeted samples come from one
    parallel query of fastimb's exact engine.

    {ties}
    """

    _sample_indices = True
    _parameter_constraints: dict = {
        **BaseCleaningSampler._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left"),
                        HasMethods(["kneighbors", "kneighbors_graph"])],
        "kind_sel": [StrOptions({"all", "mode"})],
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, sampling_strategy="auto", n_neighbors=3, kind_sel="all",
                 n_jobs=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.n_neighbors = n_neighbors
        self.kind_sel = kind_sel
        self.n_jobs = n_jobs

    def _validate_estimator(self):
        self.nn_ = check_neighbors_object("n_neighbors", self.n_neighbors,
                                          additional_neighbor=1)
        if "n_jobs" in self.nn_.get_params():
            self.nn_.set_params(n_jobs=self.n_jobs)

    def _neighbor_labels(self, X, y, rows):
        """Labels of the neighbours (excluding the sample itself) of the samples rows."""
        if isinstance(self.nn_, NearestNeighbors):
            k = self.nn_.n_neighbors - 1
            return y[self.nn_._query_rows(rows, k)[1]]
        return y[self.nn_.kneighbors(X[rows], return_distance=False)[:, 1:]]

    def _class_index(self, X, rows, key, cache):
        """A fitted index of the samples ``rows``, built once per fit under ``key`` (the
        frozenset of their labels: the other class of a binary problem is the next
        class's own)."""
        if key not in cache:
            cache[key] = NearestNeighbors(n_jobs=self.n_jobs).fit(
                gather_rows(X, rows, self.n_jobs))
        return cache[key]

    def _keep_all_same_class(self, X, y, label, class_idx, all_labels, cache):
        """kind_sel='all' without a k-NN query over all the data for most samples.

        A sample keeps all its k neighbours in its class exactly when no sample of another
        class lies within the distance of its k-th neighbour in its class, or, the other
        way round, when at least k samples of its class are strictly closer than the
        nearest sample of another class. Which way is cheaper depends on the data:

        * a class much denser than its surroundings (SMOTE's minority output): its own
          k-NN, then an early-exit radius count of the other classes within that small
          radius;
        * otherwise: a 1-NN query against the other classes, then an early-exit count of
          the class's points closer than that (it stops as soon as k are found).

        A probe of the class decides (``OWN_FIRST_RATIO``).

        Only the samples these tests cannot clear (near the border, and exact ties) get
        the full k-NN query, so the answer is the k-NN rule's exactly. Where that full
        query is a KD-tree search and the other classes are not much smaller than this
        one (``OTHERS_SMALL_RATIO``), the plain full query for every sample is cheaper
        (measured: SMOTEENN at 200k x 5, 0.53 s instead of 0.80 s).
        """
        k = self.nn_.n_neighbors - 1
        other = np.flatnonzero(y != label)
        keep = np.zeros(class_idx.size, dtype=bool)
        if other.size == 0 or class_idx.size <= k or (
                self.nn_.effective_algorithm_ == "kd_tree" and
                other.size * self.OTHERS_SMALL_RATIO > class_idx.size):
            undecided = np.arange(class_idx.size)
        else:
            n_threads = effective_n_threads(self.n_jobs)
            itself = np.arange(class_idx.size, dtype=np.intp)
            same = self._class_index(X, class_idx, frozenset([label]), cache)
            to_other = self._class_index(X, other, frozenset(all_labels) - {label}, cache)
            X_class, X_other = same._fit_X, to_other._fit_X
            if self._own_neighbours_first(same, to_other, X_class, k, n_threads):
                r2 = same._fitted_index().knn(X_class, k, itself, True, n_threads)[0][:, -1]
                # an other-class sample at distance <= r2: removed, or a tie to resolve
                within = count_closer(X_other, X_class, np.nextafter(r2, np.inf),
                                      squared=True, n_jobs=self.n_jobs, index=to_other)
                keep = within == 0
            else:
                r2 = to_other._fitted_index().knn(X_class, 1, _skip_array(class_idx.size),
                                                  True, n_threads)[0][:, 0]
                closer = count_closer(X_class, X_class, r2, max_count=k, squared=True,
                                      exclude=itself, n_jobs=self.n_jobs, index=same)
                keep = closer >= k
            undecided = np.flatnonzero(~keep)
        if undecided.size:
            labels = self._neighbor_labels(X, y, class_idx[undecided])
            keep[undecided] = np.all(labels == label, axis=1)
        return keep

    # the class's own k-th neighbour distance (squared) under this share of the distance
    # to the other classes, on a probe of the class: its own k-NN first (measured: SMOTE's
    # output has 0.002-0.013 in its minority class, raw classes 0.19-0.93)
    OWN_FIRST_RATIO = 0.05
    PROBE = 256
    # with a KD-tree, the per-class tests pay off when the other classes hold at most a
    # quarter as many samples as the class (raw imbalanced data: 0.20 s against 0.30 s
    # for the plain query at 200k x 5)
    OTHERS_SMALL_RATIO = 4

    def _own_neighbours_first(self, same, to_other, X_class, k, n_threads):
        m = X_class.shape[0]
        probe = np.unique(np.linspace(0, m - 1, min(m, self.PROBE)).astype(np.intp))
        Q = X_class[probe]
        r_own = same._fitted_index().knn(Q, k, probe, True, n_threads)[0][:, -1]
        r_other = to_other._fitted_index().knn(Q, 1, _skip_array(probe.size), True,
                                               n_threads)[0][:, 0]
        return np.median(r_own) <= self.OWN_FIRST_RATIO * np.median(r_other)

    def _fit_resample(self, X, y):
        self._validate_estimator()
        X_search = check_float_X(X.toarray() if hasattr(X, "toarray") else X)
        self.nn_.fit(X_search)
        labels, groups = indices_by_class(y)
        kept = []
        cache = {}
        for label, class_idx in zip(labels, groups):
            if label in self.sampling_strategy_:
                if self.kind_sel == "all" and isinstance(self.nn_, NearestNeighbors):
                    keep = self._keep_all_same_class(X_search, y, label, class_idx,
                                                     labels.tolist(), cache)
                elif self.kind_sel == "all":
                    keep = np.all(self._neighbor_labels(X_search, y, class_idx) == label,
                                  axis=1)
                else:
                    nbr_labels = self._neighbor_labels(X_search, y, class_idx)
                    codes = np.searchsorted(labels, nbr_labels)
                    counts = np.stack([(codes == c).sum(axis=1) for c in range(labels.size)],
                                      axis=1)
                    keep = labels[np.argmax(counts, axis=1)] == label
                class_idx = class_idx[keep]
            kept.append(class_idx)
        self.sample_indices_ = np.concatenate(kept).astype(np.intp, copy=False)
        return gather_rows(X, self.sample_indices_, self.n_jobs), y[self.sample_indices_]
