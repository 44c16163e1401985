"""The k-NN engine: exact, equal to scikit-learn on tie-free data, thread-count independent."""
import contextlib
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestNeighbors as SkNN

import fastimb.neighbors
from fastimb._kernels import _brute
from fastimb.neighbors import NearestNeighbors, check_neighbors_object, count_closer

ALGORITHMS = ["kd_tree", "brute", "auto"]
# brute force's comparison variants this CPU runs: 0 = BLAS gemm, 1 = AVX2, 2 = AVX-512,
# 3 = AVX-512 screened with 8-bit products (AVX512_VNNI)
SCAN_LEVELS = list(range(_brute.scan_level() + 1))


@contextlib.contextmanager
def scan_level(level):
    """Brute-force indexes built inside use the given comparison variant (the 8-bit
    screen, level 3, for any number of queries)."""
    index = fastimb.neighbors._BruteIndex
    saved = fastimb.neighbors._SCAN_LEVEL, index.INT8_MIN_QUERIES
    fastimb.neighbors._SCAN_LEVEL, index.INT8_MIN_QUERIES = level, 1
    try:
        yield
    finally:
        fastimb.neighbors._SCAN_LEVEL, index.INT8_MIN_QUERIES = saved


def _tie_free(n, d, seed, dtype=np.float64):
    return np.random.RandomState(seed).standard_normal((n, d)).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), d=st.integers(1, 100), k=st.integers(1, 50),
       m=st.integers(1, 60), seed=st.integers(0, 10_000),
       algorithm=st.sampled_from(["kd_tree"] + [f"brute{v}" for v in SCAN_LEVELS]),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_matches_sklearn(n, d, k, m, seed, algorithm, dtype):
    k = min(k, n)
    X, Q = _tie_free(n, d, seed, dtype), _tie_free(m, d, seed + 1, dtype)
    level = int(algorithm[5:]) if algorithm.startswith("brute") else 0
    ref = SkNN(n_neighbors=k).fit(X)
    rdist, rind = ref.kneighbors(Q)
    with scan_level(level):
        ours = NearestNeighbors(n_neighbors=k, algorithm=algorithm.rstrip("0123"),
                                leaf_size=4).fit(X)
        dist, ind = ours.kneighbors(Q)
        assert_array_equal(ind, rind)
        assert_allclose(dist, rdist, rtol=1e-5 if dtype == np.float32 else 1e-7, atol=1e-6)
        assert dist.dtype == np.float64
        if k < n:
            assert_array_equal(ours.kneighbors(n_neighbors=k)[1],
                               ref.kneighbors(n_neighbors=k)[1])


@pytest.mark.parametrize("level", SCAN_LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [3, 20, 50])
def test_brute_scan_variants_match_sklearn(level, dtype, d):
    # several query blocks and row chunks (the last one partial), k from 1 to 30
    X = _tie_free(5003, d, 0, dtype)
    Q = _tie_free(300, d, 1, dtype)
    ref = SkNN().fit(X)
    radius = np.random.RandomState(2).uniform(0.5, 2.0, 300) * np.sqrt(d)
    exclude = np.arange(300)
    with scan_level(level):
        ours = NearestNeighbors(algorithm="brute").fit(X)
        int8_too_narrow = level == 3 and d < fastimb.neighbors._BruteIndex.INT8_MIN_FEATURES
        assert ours._index.level == (2 if int8_too_narrow else level)
        for k in (1, 6, 30):
            assert_array_equal(ours.kneighbors(Q, k)[1], ref.kneighbors(Q, k)[1])
            assert_array_equal(ours.kneighbors(None, k)[1], ref.kneighbors(None, k)[1])
        for max_count in (1, 5, 10_000):
            expected = _count_closer_reference(X, Q, radius, exclude, max_count)
            assert_array_equal(count_closer(X, Q, radius, max_count=max_count,
                                            exclude=exclude, index=ours), expected)


@pytest.mark.parametrize("level", SCAN_LEVELS)
@pytest.mark.parametrize("case", ["clusters", "anisotropic", "few_rows", "one_feature"])
def test_brute_pruned_scan_matches_sklearn(level, case):
    # the rows are rotated onto their principal axes, put in a tree's order and cut into
    # boxed chunks that query blocks skip: far-apart clusters (most chunks skipped),
    # scales from 1e-3 to 1e3 with an offset (the rotation mixes them), fewer rows than
    # one chunk, one feature
    rng = np.random.RandomState(7)
    if case == "clusters":
        centres = rng.standard_normal((12, 16)) * 50
        X = np.repeat(centres, 700, axis=0) + rng.standard_normal((8400, 16))
        Q = centres[rng.randint(0, 12, 400)] + rng.standard_normal((400, 16))
    elif case == "anisotropic":
        X = rng.standard_normal((6000, 24)) * np.logspace(-3, 3, 24) + 1e3
        Q = rng.standard_normal((300, 24)) * np.logspace(-3, 3, 24) + 1e3
    elif case == "few_rows":
        X, Q = rng.standard_normal((37, 20)), rng.standard_normal((50, 20))
    else:
        X, Q = rng.standard_normal((3000, 1)), rng.standard_normal((200, 1))
    k = min(9, X.shape[0])
    ref = SkNN(n_neighbors=k).fit(X)
    with scan_level(level):
        ours = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X)
        assert_array_equal(ours.kneighbors(Q)[1], ref.kneighbors(Q)[1])
        assert_array_equal(ours.kneighbors()[1], ref.kneighbors()[1])
        radius = ref.kneighbors(Q)[0][:, k // 2] * 1.0000001
        inside = (cdist(Q, X, "sqeuclidean") < radius[:, None] ** 2).sum(1)
        for max_count in (1, 3, 10_000):
            assert_array_equal(count_closer(X, Q, radius, max_count=max_count, index=ours),
                               np.minimum(inside, max_count))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_larger_sizes_and_k(algorithm):
    X = _tie_free(20_000, 8, 0)
    Q = _tie_free(300, 8, 1)
    ours = NearestNeighbors(n_neighbors=50, algorithm=algorithm).fit(X)
    assert_array_equal(ours.kneighbors(Q)[1], SkNN(n_neighbors=50).fit(X).kneighbors(Q)[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("leaf_size", [1, 3, 5, 7, 32, 33])
def test_kdtree_exact_ties_at_every_leaf_size(dtype, leaf_size):
    # a grid: many points at exactly the k-th distance, in leaves of every length mod 4
    # (the leaf scan tests four points at a time against the k-th distance); the answer
    # is the k smallest (distance, index) pairs of a full sort
    rng = np.random.RandomState(leaf_size)
    X = np.indices((9, 8, 7)).reshape(3, -1).T[rng.permutation(504)].astype(dtype)
    Q = np.vstack([X[:40], X[:20] + 0.5]).astype(dtype)
    d2 = ((Q[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(axis=2)
    for k in (1, 6, 27):
        order = np.lexsort((np.broadcast_to(np.arange(X.shape[0]), d2.shape), d2), axis=1)
        nn = NearestNeighbors(n_neighbors=k, algorithm="kd_tree", leaf_size=leaf_size)
        dist, ind = nn.fit(X).kneighbors(Q)
        assert_array_equal(ind, order[:, :k])
        assert_array_equal(dist, np.sqrt(np.take_along_axis(d2, order[:, :k], axis=1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12])
def test_kdtree_ties_in_every_compiled_dimension(dtype, d):
    # the leaf scans are compiled once per d up to 8 (wider d share one loop) and read a
    # leaf's last one to three points with masked loads: small integer coordinates put
    # many points at exactly the k-th distance, in leaves of lengths 1 to 7 mod 4
    rng = np.random.RandomState(d)
    X = rng.randint(-2, 3, size=(700, d)).astype(dtype)
    Q = np.vstack([X[:30], X[:30] + 0.5]).astype(dtype)
    d2 = ((Q[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(axis=2)
    order = np.lexsort((np.broadcast_to(np.arange(X.shape[0]), d2.shape), d2), axis=1)
    for leaf_size in (3, 5, 7):
        nn = NearestNeighbors(n_neighbors=9, algorithm="kd_tree", leaf_size=leaf_size)
        dist, ind = nn.fit(X).kneighbors(Q)
        assert_array_equal(ind, order[:, :9])
        assert_array_equal(dist, np.sqrt(np.take_along_axis(d2, order[:, :9], axis=1)))
        radius2 = np.take_along_axis(d2, order[:, 4:5], axis=1)   # a distance: ties
        assert_array_equal(count_closer(X, Q, radius2[:, 0], max_count=50, squared=True,
                                        index=nn),
                           np.minimum((d2 < radius2).sum(axis=1), 50))


@pytest.mark.parametrize("algorithm", ["kd_tree", "brute"])
def test_duplicates_self_excluded_by_index_and_ties_by_index(algorithm):
    base = _tie_free(30, 3, 2)
    X = np.vstack([base, base, base])         # each point three times
    dist, ind = NearestNeighbors(n_neighbors=2, algorithm=algorithm).fit(X).kneighbors()
    n = base.shape[0]
    for i in range(X.shape[0]):
        twins = sorted({i % n, i % n + n, i % n + 2 * n} - {i})
        assert list(ind[i]) == twins            # the other copies, lower index first
        assert_array_equal(dist[i], 0.0)
    # equal distances: lower index first
    X = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0]])
    ind = NearestNeighbors(n_neighbors=4, algorithm=algorithm).fit(X).kneighbors([[0.0]])[1]
    assert list(ind[0]) == [0, 1, 2, 3]


@pytest.mark.parametrize("algorithm, d", [("kd_tree", 6), ("brute", 6), ("brute", 20)])
def test_thread_count_does_not_change_results(algorithm, d):
    X = _tie_free(5000, d, 3, np.float32)
    X[::7] = X[1::7][: X[::7].shape[0]]        # plenty of exact ties
    a = NearestNeighbors(n_neighbors=9, algorithm=algorithm, n_jobs=1).fit(X).kneighbors()
    for _ in range(3):  # both threads' blocks run at once, each with its own state
        b = NearestNeighbors(n_neighbors=9, algorithm=algorithm, n_jobs=2).fit(X).kneighbors()
        assert_array_equal(a[0], b[0])
        assert_array_equal(a[1], b[1])
    radius = a[0][:, 4] * 1.01
    counts = [count_closer(X, X, radius, max_count=6, algorithm=algorithm, n_jobs=j)
              for j in (1, 2, 2)]
    assert_array_equal(counts[0], counts[1])
    assert_array_equal(counts[0], counts[2])


def _self_query_data(kind, dtype):
    rng = np.random.RandomState(4)
    X = {"gaussian": lambda: rng.standard_normal((3000, 20)),
         "wide": lambda: rng.standard_normal((1500, 64)),
         "blocks": lambda: rng.standard_normal((3000, 13)) * np.r_[np.ones(3) * 5,
                                                                    np.ones(10) * 0.1],
         "ties": lambda: np.round(rng.standard_normal((2000, 12)), 1),
         "duplicates": lambda: np.repeat(rng.standard_normal((400, 16)), 3, axis=0)[
             rng.permutation(1200)],
         "grid": lambda: np.indices((6, 6, 6, 6)).reshape(4, -1).T.repeat(4, axis=1),
         "tiny": lambda: rng.standard_normal((7, 20)),
         "far": lambda: np.vstack([np.zeros((1, 20)), np.eye(20), -np.eye(20),
                                   2 * np.eye(20)]) * 1000 + 5e4}[kind]()
    return np.ascontiguousarray(X, dtype=dtype)


@pytest.mark.parametrize("algorithm", ["kd_tree", "brute"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["gaussian", "wide", "blocks", "ties", "duplicates", "grid",
                                  "tiny", "far"])
def test_self_query_is_kneighbors_of_the_fitted_rows(algorithm, dtype, kind):
    # the samplers' call (fit on a class, query the same rows): the brute index answers it
    # with its symmetric self-join, the tree with its query; either way kneighbors(X_fit)
    # bit for bit (itself included, equal distances by index), on any thread count, and
    # the rows the float32 bound leaves unsure are redone exactly ("far", "ties")
    X = _self_query_data(kind, dtype)
    for k in sorted({1, 6, min(11, X.shape[0])}):
        expected = None
        for n_jobs in (1, 2):
            nn = NearestNeighbors(n_neighbors=k, algorithm=algorithm, n_jobs=n_jobs).fit(X)
            ind = nn._self_query(k)
            if expected is None:
                expected = nn.kneighbors(X, return_distance=False)
                d2 = np.zeros((X.shape[0], X.shape[0]))
                for j in range(X.shape[1]):   # fastimb's formula: in feature order
                    d2 += (X[:, None, j].astype(np.float64) - X[None, :, j]) ** 2
                order = np.lexsort((np.broadcast_to(np.arange(X.shape[0]), d2.shape), d2),
                                   axis=1)
                assert_array_equal(expected, order[:, :k])
            assert_array_equal(ind, expected)
    with pytest.raises(ValueError, match="Expected n_neighbors <= n_samples_fit"):
        nn._self_query(X.shape[0] + 1)


def test_brute_self_join_on_clustered_data(monkeypatch):
    # clusters apart (tiles between blocks of different clusters are skipped by their
    # boxes) but not so near that the tree takes the queries: the join answers every row
    # (none redone) with scikit-learn's neighbours, on 1 and 2 threads
    rng = np.random.RandomState(0)
    centres = rng.standard_normal((6, 20)) * 6
    X = (centres[rng.randint(0, 6, 4000)] + rng.standard_normal((4000, 20))).astype(np.float32)
    expected = SkNN(n_neighbors=6, algorithm="brute").fit(X).kneighbors(X)[1]
    calls = []
    join = _brute.self_knn
    monkeypatch.setattr(_brute, "self_knn", lambda *a: calls.append(1) or join(*a))
    for n_jobs in (1, 2):
        nn = NearestNeighbors(n_neighbors=6, algorithm="brute", n_jobs=n_jobs).fit(X)
        index = nn._fitted_index()
        if index.level == 0:
            pytest.skip("the self-join needs the fused scan (AVX2+FMA)")
        ind = nn._self_query(6)
        assert index.last_redone_ == 0
        assert_array_equal(ind, expected)
    assert len(calls) == 2


@pytest.mark.parametrize("case", ["gaussian", "narrow", "float32", "anisotropic", "scales",
                                  "duplicates", "constant", "odd_features"])
def test_self_join_screen_changes_nothing(monkeypatch, case):
    # the self-join's 16-bit screen only leaves out (row, panel) pairs whose float32 test
    # fails: with and without it, the same neighbours and distances, bit for bit
    rng = np.random.RandomState(3)
    X = {"gaussian": lambda: rng.standard_normal((3000, 20)),
         "narrow": lambda: rng.standard_normal((2500, 8)),
         "float32": lambda: rng.standard_normal((2600, 33)).astype(np.float32),
         "anisotropic": lambda: rng.standard_normal((3000, 24)) * np.logspace(-3, 3, 24) + 1e3,
         "scales": lambda: rng.standard_normal((2000, 12)) * 1e-12,
         "duplicates": lambda: np.repeat(rng.standard_normal((600, 12)), 4, axis=0),
         "constant": lambda: np.hstack([rng.standard_normal((2000, 10)), np.ones((2000, 6))]),
         "odd_features": lambda: rng.standard_normal((2100, 17)) * 1e6,
         }[case]()
    index = fastimb.neighbors._BruteIndex
    results, calls = [], []
    join = _brute.self_knn
    monkeypatch.setattr(_brute, "self_knn", lambda *a: calls.append(1) or join(*a))
    for min_features in (index.SCREEN16_MIN_FEATURES, 10**9):
        monkeypatch.setattr(index, "SCREEN16_MIN_FEATURES", min_features)
        nn = NearestNeighbors(n_neighbors=7, algorithm="brute").fit(X)
        if nn._fitted_index().level == 0:
            pytest.skip("the self-join needs the fused scan (AVX2+FMA)")
        if min_features < 10**9:
            assert nn._fitted_index()._screen16(1)[0].shape[0] > 0
        results.append(nn._fitted_index().self_knn(7, True, 2))
    assert len(calls) == 2
    assert_array_equal(results[0][1], results[1][1])
    assert_array_equal(results[0][0], results[1][0])
    if case not in ("duplicates", "constant"):
        assert_array_equal(results[0][1], SkNN(n_neighbors=7).fit(X).kneighbors(X)[1])


@pytest.mark.parametrize("algorithm", ["kd_tree", "brute"])
def test_readonly_fortran_and_offset_input(algorithm):
    X = np.asfortranarray(_tie_free(500, 5, 4) + 1e4)   # far from the origin
    X.setflags(write=False)
    ours = NearestNeighbors(n_neighbors=3, algorithm=algorithm).fit(X)
    assert_array_equal(ours.kneighbors()[1], SkNN(n_neighbors=3).fit(X).kneighbors()[1])


def test_kneighbors_graph_matches_sklearn():
    X = _tie_free(200, 4, 5)
    for mode in ("connectivity", "distance"):
        ours = NearestNeighbors(n_neighbors=4).fit(X).kneighbors_graph(mode=mode)
        ref = SkNN(n_neighbors=4).fit(X).kneighbors_graph(mode=mode)
        assert_allclose(ours.toarray(), ref.toarray())


@pytest.mark.parametrize("bad, match", [
    (np.array([[np.nan, 1.0], [0.0, 1.0]]), "NaN"),
    (np.array([[np.inf, 1.0], [0.0, 1.0]]), "infinity"),
    (np.zeros((3, 2, 2)), "3-dimensional|dim 3"),
    (np.zeros((0, 2)), "0 sample"),
])
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        NearestNeighbors().fit(bad)


def test_bad_queries_and_params():
    X = _tie_free(10, 2, 6)
    nn = NearestNeighbors(n_neighbors=3).fit(X)
    with pytest.raises(ValueError, match="Expected n_neighbors <= n_samples_fit"):
        nn.kneighbors(X, n_neighbors=11)
    with pytest.raises(ValueError, match="Expected n_neighbors <= n_samples_fit"):
        nn.kneighbors(n_neighbors=10)
    with pytest.raises(ValueError, match="Expected n_neighbors > 0"):
        nn.kneighbors(X, n_neighbors=0)
    with pytest.raises(ValueError, match="features"):
        nn.kneighbors(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="n_neighbors"):
        NearestNeighbors(n_neighbors=0).fit(X)
    with pytest.raises(NotFittedError):
        NearestNeighbors().kneighbors(X)
    with pytest.raises(ValueError, match="k_neighbors must be an int"):
        check_neighbors_object("k_neighbors", "five")


def test_clone_pickle_and_check_neighbors_object():
    nn = check_neighbors_object("k", 5, additional_neighbor=1)
    assert isinstance(nn, NearestNeighbors) and nn.n_neighbors == 6
    sk = SkNN(n_neighbors=3)
    assert check_neighbors_object("k", sk) is not sk
    X = _tie_free(100, 3, 7)
    fitted = NearestNeighbors(n_neighbors=3).fit(X)
    again = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(again.kneighbors()[1], fitted.kneighbors()[1])
    assert clone(fitted).get_params() == fitted.get_params()


@pytest.mark.parametrize("algorithm", ["kd_tree", "brute"])
def test_released_index_is_rebuilt_with_the_same_answers(algorithm):
    X = _tie_free(300, 6, 3)
    nn = NearestNeighbors(n_neighbors=4, algorithm=algorithm).fit(X)
    expected = nn.kneighbors(X[:50]), nn.kneighbors()
    assert nn._release_index() is nn and nn._index is None
    for got, want in zip((nn.kneighbors(X[:50]), nn.kneighbors()), expected):
        assert_array_equal(got[0], want[0])
        assert_array_equal(got[1], want[1])
    assert nn._index is not None
    nn._release_index()
    radius = np.full(50, 0.5)
    assert_array_equal(count_closer(X, X[:50], radius, index=nn),
                       count_closer(X, X[:50], radius))
    with pytest.raises(NotFittedError):   # releasing does not fit an unfitted estimator
        NearestNeighbors()._release_index().kneighbors(X)


def test_imblearn_smote_accepts_the_engine():
    from imblearn.over_sampling import SMOTE

    from conftest import make_imbalanced

    X, y = make_imbalanced(n_samples=400)
    ref = SMOTE(random_state=0).fit_resample(X, y)
    ours = SMOTE(random_state=0, k_neighbors=NearestNeighbors(n_neighbors=6)).fit_resample(X, y)
    assert_array_equal(ours[0], ref[0])


def _count_closer_reference(X, Q, radius, exclude, max_count):
    d2 = ((Q[:, None, :].astype(float) - X[None, :, :].astype(float)) ** 2).sum(-1)
    closer = d2 < radius[:, None] ** 2
    m = Q.shape[0]
    closer[np.arange(m)[exclude >= 0], exclude[exclude >= 0]] = False
    return np.minimum(closer.sum(1), max_count)


@pytest.mark.parametrize("algorithm", ["kd_tree", "brute"])
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), d=st.integers(1, 30), m=st.integers(1, 40),
       seed=st.integers(0, 1000), max_count=st.integers(1, 20))
def test_count_closer_matches_numpy(algorithm, n, d, m, seed, max_count):
    rng = np.random.RandomState(seed)
    X = rng.randint(-3, 4, size=(n, d)).astype(float)   # many equal distances
    Q = rng.randint(-3, 4, size=(m, d)).astype(float)
    radius = rng.uniform(0, 4, size=m)
    radius[::3] = np.sqrt(rng.randint(0, 10, size=radius[::3].size))  # radius == a distance
    exclude = rng.randint(-1, n, size=m)
    got = count_closer(X, Q, radius, max_count=max_count, exclude=exclude, algorithm=algorithm)
    assert_array_equal(got, _count_closer_reference(X, Q, radius, exclude, max_count))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_count", [1, 3, 1000])
def test_brute_count_closer_over_many_blocks(dtype, max_count):
    # more queries than one query block and rows than one row block: queries leave the
    # block's products at different times and the rest are compacted
    rng = np.random.RandomState(3)
    X = (rng.normal(size=(5000, 24)) * 10).astype(dtype)
    Q = X[rng.randint(0, 5000, size=300)]
    radius = rng.uniform(5, 60, size=300)
    exclude = rng.randint(-1, 5000, size=300)
    got = count_closer(X, Q, radius, max_count=max_count, exclude=exclude, algorithm="brute")
    assert_array_equal(got, _count_closer_reference(X, Q, radius, exclude, max_count))
    assert_array_equal(got, count_closer(X, Q, radius, max_count=max_count, exclude=exclude,
                                         algorithm="kd_tree"))


@pytest.mark.parametrize("algorithm,d", [("kd_tree", 5), ("brute", 20)])
def test_count_closer_agrees_with_knn_distances(algorithm, d):
    X = _tie_free(3000, d, 8)
    nn = NearestNeighbors(n_neighbors=1, algorithm=algorithm).fit(X)
    dist, ind = nn._query(None, 1, squared=True)
    # nothing is strictly closer to a point than its nearest neighbour
    counts = count_closer(X, X, dist[:, 0], squared=True, exclude=np.arange(3000), index=nn)
    assert not counts.any()
    # and the neighbour itself is within anything slightly larger
    counts = count_closer(X, X, dist[:, 0] * (1 + 1e-9), squared=True,
                          exclude=np.arange(3000), index=nn)
    assert (counts == 1).all()


def test_brute_float32_products_fall_back_when_the_bound_fails():
    # exact ties at the k-th neighbour defeat the float32 error bound: those queries are
    # redone in float64, and the answer is still sklearn's / the KD-tree's
    eye = np.eye(20)
    X = np.vstack([np.zeros((1, 20)), eye, -eye, 2 * eye]) * 1000 + 5e4  # 40 at one distance
    nn = NearestNeighbors(n_neighbors=4, algorithm="brute").fit(X)
    ours = nn.kneighbors()
    assert nn._index.last_redone_ > 0
    ref = NearestNeighbors(n_neighbors=4, algorithm="kd_tree").fit(X).kneighbors()
    assert_array_equal(ours[1], ref[1])
    assert_allclose(ours[0], ref[0])
    # well-separated data: the bound clears every query
    Xs = _tie_free(3000, 30, 10)
    nn = NearestNeighbors(n_neighbors=5, algorithm="brute").fit(Xs)
    assert_array_equal(nn.kneighbors(Xs[:200])[1], SkNN(n_neighbors=5).fit(Xs).kneighbors(Xs[:200])[1])
    assert nn._index.last_redone_ == 0


def test_kdtree_visit_budget():
    from fastimb.neighbors import _KDTreeIndex

    X = _tie_free(4000, 6, 5)
    Q = _tie_free(1500, 6, 6)
    tree = _KDTreeIndex(X, 16, 2)
    skip = np.full(1500, -1, dtype=np.intp)
    dist, ind = tree.knn(Q, 5, skip, True, 2)
    d_b, i_b, unfinished = tree.knn(Q, 5, skip, True, 2, max_visits=400)
    assert unfinished.any() and not unfinished.all()
    assert_array_equal(i_b[~unfinished], ind[~unfinished])
    assert_array_equal(d_b[~unfinished], dist[~unfinished])
    assert not tree.knn(Q, 5, skip, True, 2, max_visits=10**9)[2].any()
    radius2 = dist[:, 2] * 1.5
    full = tree.count(Q, radius2, skip, 10, 2)
    capped = tree.count(Q, radius2, skip, 10, 2, max_visits=400)
    assert (capped == -1).any()
    assert_array_equal(capped[capped >= 0], full[capped >= 0])


def test_kdtree_leaf_order_is_a_stable_sort_by_leaf():
    from fastimb.neighbors import _KDTreeIndex

    X = _tie_free(3000, 4, 7)
    tree = _KDTreeIndex(X, 16, 2)
    leaf, order = tree._order(_tie_free(2500, 4, 8), 2)
    assert_array_equal(order, np.argsort(leaf, kind="stable"))
    assert (leaf >= tree.node_start.shape[0] // 2).all()


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_brute_hands_near_neighbours_to_the_tree(dtype, k):
    # high dimension, but the data are tight clusters and most queries are rows of the
    # data: the brute-force index probes, sends everything to its KD-tree with a visit
    # budget and scans the queries that ran out of it (the scattered ones); the answer is
    # sklearn's either way
    rng = np.random.RandomState(0)
    centres = _tie_free(600, 20, 9) * 10
    X = (np.repeat(centres, 10, axis=0) + 0.01 * _tie_free(6000, 20, 11)).astype(dtype)
    Q = np.vstack([X[rng.choice(6000, 2400, replace=False)],
                   (_tie_free(1200, 20, 10) * 10).astype(dtype)])
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X)
    ours = nn.kneighbors(Q)
    assert nn._index._tree is not None
    ref = SkNN(n_neighbors=k).fit(X).kneighbors(Q)
    assert_array_equal(ours[1], ref[1])
    # fastimb's distance of a point to itself is exactly 0; scikit-learn's expanded
    # formula (norms ~ 1e3 here) gives ~1e-6 there
    assert_allclose(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    # and a radius count with small radii goes the same way
    radius = np.where(np.arange(Q.shape[0]) < 2400, 0.05, 30.0)
    nn2 = NearestNeighbors(algorithm="brute").fit(X)
    got = count_closer(X, Q, radius, max_count=3, index=nn2)
    assert nn2._index._tree is not None
    assert_array_equal(got, _count_closer_reference(X, Q, radius, np.full(3600, -1), 3))


def _check_tree(tree, X, leaf_size):
    """Structural invariants of a built KD-tree."""
    ns, ne, sd, sv = tree.node_start, tree.node_end, tree.split_dim, tree.split_val
    assert_array_equal(np.sort(tree.idx), np.arange(X.shape[0]))
    rows = X[tree.idx]
    if tree.indirect:
        assert_array_equal(tree.Xt, X)
    else:  # in tree order, each leaf stored by coordinate
        flat = tree.Xt.reshape(-1)
        d = X.shape[1]
        for leaf in range(ns.shape[0] // 2, ns.shape[0]):
            s, e = ns[leaf], ne[leaf]
            assert_array_equal(flat[s * d:e * d], rows[s:e].T.reshape(-1))
    n_top = 2 ** tree.top_levels - 1
    for node in range(ns.shape[0] // 2):
        c1, c2 = 2 * node + 1, 2 * node + 2
        assert ns[c1] == ns[node] and ne[c1] == ns[c2] and ne[c2] == ne[node]
        imbalance = abs((ne[c1] - ns[c1]) - (ne[c2] - ns[c2]))
        if node < n_top:  # cut at the median of a sample of the rows
            assert imbalance <= 0.2 * (ne[node] - ns[node])
        else:             # exact median splits
            assert imbalance <= 1
        assert (rows[ns[c1]:ne[c1], sd[node]] <= sv[node]).all()
        assert (rows[ns[c2]:ne[c2], sd[node]] >= sv[node]).all()
    leaves = (ne - ns)[ns.shape[0] // 2:]
    assert leaves.max() <= 1.25 * leaf_size
    for node in range(ns.shape[0]):
        if ne[node] > ns[node]:  # boxes tight
            pts = rows[ns[node]:ne[node]]
            assert_array_equal(tree.node_lo[node], pts.min(axis=0))
            assert_array_equal(tree.node_hi[node], pts.max(axis=0))


@pytest.mark.parametrize("data", ["grid", "constant", "clusters", "uniform", "sorted",
                                  "wide"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kdtree_build_invariants_and_thread_independence(data, dtype):
    # sizes reach the sampled-pivot selection (ranges of 4096+ keys) and both build
    # phases; heavy duplicates (grid, constant, clusters of identical rows) exercise the
    # bands of equal keys and the top levels' cuts between equal keys (split by index);
    # sorted rows, the strided sample of the top levels; wide rows, top levels cut on
    # every row (small subtrees: few rows fit the cache)
    from fastimb.neighbors import _KDTreeIndex

    rng = np.random.RandomState(3)
    X = {"grid": lambda: rng.randint(0, 3, size=(60000, 3)),
         "constant": lambda: np.ones((20000, 4)),
         "clusters": lambda: np.repeat(rng.rand(7, 3), 5000, axis=0),
         "uniform": lambda: rng.rand(70000, 5),
         "sorted": lambda: np.sort(rng.rand(70000, 3), axis=0),
         "wide": lambda: rng.rand(3000, 600)}[data]().astype(dtype)
    trees = [_KDTreeIndex(X, 16, n_threads, copy_rows=copy)
             for n_threads, copy in ((1, True), (2, True), (2, False))]
    assert trees[0].top_levels > 0  # both phases ran
    for tree in trees[1:]:
        _check_tree(tree, X, 16)
    for name in ("idx", "node_start", "node_end", "node_lo", "node_hi", "split_dim",
                 "split_val"):
        for tree in trees[1:]:
            assert_array_equal(getattr(trees[0], name), getattr(tree, name))
    # queries through the permutation give the same answers as on the copy
    Q = X[::97] + 0.25
    skip = np.arange(0, X.shape[0], 97)
    for a, b in zip(trees[0].knn(Q, 3, skip, True, 2), trees[2].knn(Q, 3, skip, True, 2)):
        assert_array_equal(a, b)
    radius2 = np.full(Q.shape[0], 0.5)
    assert_array_equal(trees[0].count(Q, radius2, skip, 50, 2),
                       trees[2].count(Q, radius2, skip, 50, 2))


SCREEN_CASES = ["gaussian", "offset_and_scales", "odd_d", "outlier", "constant_column",
                "huge"]


def _screen_data(case, dtype):
    """Rows and queries (near rows, and drawn like them) for the screens' tests: an
    outlier coarsens a dimension's quantisation; huge norms fall back to the plain scan."""
    rng = np.random.RandomState(5)
    d = 9 if case == "odd_d" else 24
    X = rng.standard_normal((6000, d))
    if case == "offset_and_scales":
        X = X * np.logspace(-3, 3, d) + 1e4
    if case == "outlier":
        X[17, 3] = 1e4
    if case == "constant_column":
        X[:, 5] = 0.3
    if case == "huge":
        X = X * 1e17
    X = X.astype(dtype)
    Q = np.vstack([X[:150] + 0.01 * X.std(axis=0), rng.standard_normal((150, d)).astype(dtype)
                   * X.std(axis=0) + X.mean(axis=0)]).astype(dtype)
    return X, Q


def _scan_answers(X, Q):
    """The scan's k-NN (distances, indices, queries redone) and radius counts of Q, and
    the index."""
    nn = NearestNeighbors(algorithm="brute").fit(X)
    skip = np.full(Q.shape[0], -1, dtype=np.intp)
    dist, ind = nn._index._scan_knn(Q, 7, skip, True, 2)
    redone = nn._index.last_redone_
    counts = nn._index._scan_count(Q, dist[:, 3] * 1.01, skip, 1000, 2)
    return (dist, ind, redone, counts), nn._index


def _assert_same_answers(results, X, Q):
    for a, b in zip(*results):
        assert_array_equal(a, b)
    assert_array_equal(results[1][1], SkNN(n_neighbors=7).fit(X).kneighbors(Q)[1])


@pytest.mark.skipif(_brute.scan_level() < 3, reason="needs AVX512_VNNI")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SCREEN_CASES)
def test_int8_screen_reports_the_float32_scans_hits(case, dtype):
    # the 8-bit screen only decides which panels the float32 scan recomputes: answers,
    # re-check counts and radius counts equal the plain AVX-512 scan's
    X, Q = _screen_data(case, dtype)
    results = []
    for level in (2, 3):
        with scan_level(level):
            answers, index = _scan_answers(X, Q)
        assert index.level == level
        assert (index._screen_rows is not None) == (level == 3 and case != "huge")
        results.append(answers)
    _assert_same_answers(results, X, Q)


@pytest.mark.skipif(_brute.scan_level() < 1, reason="needs AVX2+FMA")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SCREEN_CASES)
def test_int16_screen_reports_the_float32_scans_hits(monkeypatch, case, dtype):
    # likewise the AVX2 scan's 16-bit screen (on any CPU with AVX2: level 1 forced)
    X, Q = _screen_data(case, dtype)
    index_class = fastimb.neighbors._BruteIndex
    results = []
    for min_features in (index_class.SCREEN16_MIN_FEATURES, 10**9):
        monkeypatch.setattr(index_class, "SCREEN16_MIN_FEATURES", min_features)
        with scan_level(1):
            answers, index = _scan_answers(X, Q)
        assert index.level == 1
        assert (index._screen16_rows is not None) == (min_features < 10**9 and
                                                      case != "huge")
        results.append(answers)
    _assert_same_answers(results, X, Q)
