"""SMOTE, ADASYN and BorderlineSMOTE: imbalanced-learn's exact output on tie-free data."""
import copy

import imblearn.over_sampling as imb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from scipy import sparse
from sklearn.neighbors import NearestNeighbors as SkNN

import fastimb
from fastimb._kernels._smote import copy_rows, interpolate

from conftest import make_imbalanced

SAMPLERS = [("SMOTE", {}), ("ADASYN", {}), ("BorderlineSMOTE", {}),
            ("BorderlineSMOTE", {"kind": "borderline-2"})]
IDS = ["smote", "adasyn", "borderline1", "borderline2"]


def _pair(name, params, **more):
    return (getattr(fastimb, name)(**params, **more),
            getattr(imb, name)(**params, **copy.deepcopy(more)))


def _assert_same(a, b):
    for p, q in zip(a, b):
        assert type(p) is type(q)
        if sparse.issparse(p):
            assert p.format == q.format
            p, q = p.toarray(), q.toarray()
        assert_array_equal(np.asarray(p), np.asarray(q))
        assert np.asarray(p).dtype == np.asarray(q).dtype


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("seed", ["int", "RandomState"])
def test_matches_imblearn(name, params, classes, seed, dtype):
    kw = (dict(n_samples=700) if classes == 2 else
          dict(n_samples=900, n_classes=3, weights=(0.1, 0.3, 0.6)))
    X, y = make_imbalanced(dtype=dtype, **kw)
    rs = 11 if seed == "int" else np.random.RandomState(11)
    ours, ref = _pair(name, params, random_state=rs)
    _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y))
    assert not hasattr(ours, "sample_indices_")
    if name == "BorderlineSMOTE":
        assert ours.in_danger_indices.keys() == ref.in_danger_indices.keys()
        for k in ours.in_danger_indices:
            assert_array_equal(ours.in_danger_indices[k], ref.in_danger_indices[k])


def _callable(y):
    labels, counts = np.unique(y, return_counts=True)
    return {labels[0]: int(counts.max() * 0.8)}


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
@pytest.mark.parametrize("strategy", ["minority", "not majority", "all", 0.6,
                                      {0: 300, 1: 500}, _callable])
def test_strategies(name, params, strategy):
    X, y = make_imbalanced(n_samples=900, n_classes=3, weights=(0.1, 0.3, 0.6))
    if isinstance(strategy, float):
        X, y = make_imbalanced(n_samples=700)
    ours, ref = _pair(name, params, random_state=3, sampling_strategy=strategy)
    _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y))
    assert list(ours.sampling_strategy_.items()) == list(ref.sampling_strategy_.items())


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
def test_pandas_sparse_list_and_user_estimator(name, params):
    X, y = make_imbalanced(n_samples=500)
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    df["c0"] = df["c0"].astype(np.float32)
    ys = pd.Series(y, name="label")
    ours, ref = _pair(name, params, random_state=0)
    Xo, yo = ours.fit_resample(df, ys)
    Xr, yr = ref.fit_resample(df, ys)
    pd.testing.assert_frame_equal(Xo, Xr)
    pd.testing.assert_series_equal(yo, yr)
    Xs = X.copy()
    Xs[np.abs(Xs) < 0.7] = 0
    dense = getattr(fastimb, name)(random_state=0, **params).fit_resample(Xs, y)
    for fmt in ("csr", "csc"):
        ours, ref = _pair(name, params, random_state=0)
        a = ours.fit_resample(sparse.csr_matrix(Xs).asformat(fmt), y)
        assert a[0].format == fmt
        np.testing.assert_allclose(a[0].toarray(), dense[0], rtol=1e-12)
        assert_array_equal(a[1], dense[1])
        if params.get("kind") != "borderline-2":  # imblearn 0.14 fails on sparse kind 2
            b = ref.fit_resample(sparse.csr_matrix(Xs).asformat(fmt), y)
            np.testing.assert_allclose(a[0].toarray(), b[0].toarray(), rtol=1e-12)
    key = "n_neighbors" if name == "ADASYN" else "k_neighbors"
    ours, ref = _pair(name, params, random_state=0, **{key: SkNN(n_neighbors=4)})
    _assert_same(ours.fit_resample(X.tolist(), y.tolist()),
                 ref.fit_resample(X.tolist(), y.tolist()))


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
def test_threads_and_inputs_untouched(name, params, monkeypatch):
    import fastimb.over_sampling as fo

    monkeypatch.setattr(fo, "_SERIAL_BELOW", 0)     # parallel kernels even on small data
    monkeypatch.setattr(fo, "_CHUNK", 300)
    X, y = make_imbalanced(n_samples=800, n_features=20, dtype=np.float32)
    X0, y0 = X.copy(), y.copy()
    outs = []
    for threads in ("1", "2"):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(threads), user_api="openmp"):
            outs.append(getattr(fastimb, name)(random_state=5, **params).fit_resample(X, y))
    _assert_same(outs[0], outs[1])
    assert_array_equal(X, X0)
    assert_array_equal(y, y0)


@pytest.mark.parametrize("classes", [2, 3])
def test_smote_output_prepared_ahead(classes, dtype, monkeypatch):
    # large outputs are allocated, filled with X and touched on a background thread
    # during the neighbour search: forced here on small data, the same output
    import fastimb._rows as rows

    monkeypatch.setattr(rows, "AHEAD_FROM_BYTES", 0)
    kw = (dict(n_samples=700) if classes == 2 else
          dict(n_samples=900, n_classes=3, weights=(0.1, 0.3, 0.6)))
    X, y = make_imbalanced(dtype=dtype, **kw)
    X0 = X.copy()
    results = []
    real_result = rows.OutputAhead.result
    monkeypatch.setattr(rows.OutputAhead, "result",
                        lambda self, n: results.append(real_result(self, n)) or results[-1])
    ours, ref = _pair("SMOTE", {}, random_state=3)
    _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y))
    assert len(results) == 1 and results[0] is not None
    assert_array_equal(X, X0)
    # not for other inputs; a wrong row count is refused; errors reach the caller
    assert rows.OutputAhead.start(X.astype(np.int64), 10) is None
    assert rows.OutputAhead.start(np.asfortranarray(X), 10) is None
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        assert rows.OutputAhead.start(X, 10) is None
    ahead = rows.OutputAhead.start(X, 10)
    assert real_result(ahead, X.shape[0] + 11) is None
    out = real_result(rows.OutputAhead.start(X, 10), X.shape[0] + 10)
    assert out.shape == (X.shape[0] + 10, X.shape[1]) and out.dtype == X.dtype
    assert_array_equal(out[:X.shape[0]], X)
    monkeypatch.setattr(rows, "copy_rows", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        real_result(rows.OutputAhead.start(X, 10), X.shape[0] + 10)


def test_integer_features_truncate_like_imblearn():
    X, y = make_imbalanced(n_samples=400)
    Xi = np.round(X * 1e6).astype(np.int64)   # large values: no distance ties
    ours, ref = _pair("SMOTE", {}, random_state=1)
    _assert_same(ours.fit_resample(Xi, y), ref.fit_resample(Xi, y))


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
def test_edge_cases_raise_like_imblearn(name, params):
    X, y = make_imbalanced(n_samples=300)
    y = y.copy()
    y[:] = 1
    y[:4] = 0                                   # a class of 4 samples
    key = "n_neighbors" if name == "ADASYN" else "k_neighbors"
    for bad in [
        (X, y, {key: 5}),                          # k_neighbors >= class size
        (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), y, {}),
        (np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X), y, {}),
    ]:
        Xb, yb, more = bad
        ours, ref = _pair(name, params, random_state=0, **more)
        try:
            expected = ref.fit_resample(Xb, yb)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            with pytest.raises(type(exc)):
                ours.fit_resample(Xb, yb)
            assert isinstance(exc, ValueError)
        else:  # e.g. Borderline with no sample in danger: nothing to raise
            _assert_same(ours.fit_resample(Xb, yb), expected)


def test_adasyn_runtime_error_when_no_neighbour_of_another_class():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(50, 2), rng.randn(10, 2) + 100])
    y = np.array([0] * 50 + [1] * 10)
    with pytest.raises(RuntimeError, match="Not any neigbours belong to the majority"):
        fastimb.ADASYN(random_state=0).fit_resample(X, y)


def test_borderline_skips_a_class_without_danger():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(200, 2), rng.randn(20, 2) + 50])
    y = np.array([0] * 200 + [1] * 20)
    ours, ref = _pair("BorderlineSMOTE", {}, random_state=0)
    _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y))
    assert ours.in_danger_indices == {}


def test_duplicates_and_constant_features_distribution():
    # with exact ties the neighbours may differ from imblearn; check the invariants
    X, y = make_imbalanced(n_samples=600)
    X = X.copy()
    X[:, 2] = 1.5                                # a constant feature
    minority = np.flatnonzero(y == np.argmin(np.bincount(y)))
    X[minority[1::2]] = X[minority[::2]][: minority[1::2].size]   # duplicated rows
    Xo, yo = fastimb.SMOTE(random_state=0).fit_resample(X, y)
    Xr, yr = imb.SMOTE(random_state=0).fit_resample(X, y)
    assert_array_equal(np.bincount(yo), np.bincount(yr))
    new = Xo[X.shape[0]:]
    assert (new[:, 2] == 1.5).all()
    lo, hi = X[minority].min(0), X[minority].max(0)
    assert ((new >= lo) & (new <= hi)).all()     # inside the minority's bounding box
    np.testing.assert_allclose(new.mean(0), Xr[X.shape[0]:].mean(0), atol=0.2)


def test_interpolate_kernel_rounding_float32():
    # both ways of resolving a sample's rows (divmod of the drawn integer, through a base
    # map; given rows with the drawn column, no map), and imbalanced-learn's float32
    # rounding
    rng = np.random.RandomState(0)
    X = rng.randn(500, 7).astype(np.float32)
    base_map = rng.randint(0, 500, 200).astype(np.intp)
    nns = rng.randint(0, 500, (200, 5)).astype(np.intp)
    drawn = rng.randint(0, 1000, 3000).astype(np.intp)
    given_rows, given_cols = rng.randint(0, 200, 3000), rng.randint(0, 5, 3000)
    no_index = np.empty(0, dtype=np.intp)
    steps = rng.uniform(size=3000)
    scale = rng.uniform(0, 0.5, size=3000)
    out = np.empty((3000, 7), np.float32)
    for mode in ("divmod", "rows"):
        if mode == "divmod":
            args = (drawn, no_index, base_map, nns)
            base, nbr = base_map[drawn // 5], nns[drawn // 5, drawn % 5]
        else:
            args = (given_cols.astype(np.intp), given_rows.astype(np.intp), no_index, nns)
            base, nbr = given_rows, nns[given_rows, given_cols]
        interpolate(X, *args, steps, np.empty(0), out, 2)
        expected = (X[base] + steps[:, None] * (X[nbr] - X[base])).astype(np.float32)
        assert_array_equal(out, expected)
        interpolate(X, *args, steps, scale, out, 2)
        diffs = X[nbr] - X[base]
        diffs *= scale[:, None]
        assert_array_equal(out, (X[base] + steps[:, None] * diffs).astype(np.float32))


@pytest.mark.parametrize("n_samples", [1, 255, 256, 257, 2049])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("drawn_dtype", [np.int32, np.int64])
def test_interpolate_kernel_any_length_and_thread_count(n_samples, n_threads, dtype,
                                                        drawn_dtype):
    # one contiguous range of samples per thread, resolved a block at a time with the
    # next block's rows requested ahead: the same values whatever the split; the drawn
    # integers read as drawn (int32 when they fit) or as int64
    rng = np.random.RandomState(n_samples)
    X = rng.randn(300, 11).astype(dtype)
    nns = rng.randint(0, 300, (300, 4)).astype(np.intp)
    drawn = rng.randint(0, nns.size, n_samples).astype(drawn_dtype)
    steps = rng.uniform(size=n_samples)
    out = np.full((n_samples + 1, 11), -1, dtype=dtype)
    no_index = np.empty(0, dtype=np.intp)
    interpolate(X, drawn, no_index, no_index, nns, steps, np.empty(0), out[:n_samples],
                n_threads)
    base, nbr = drawn // 4, nns[drawn // 4, drawn % 4]
    assert_array_equal(out[:n_samples], (X[base] + steps[:, None] * (X[nbr] - X[base]))
                       .astype(dtype))
    assert (out[n_samples] == -1).all()


@pytest.mark.parametrize("n_rows", [1, 5, 9001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_copy_rows_kernel(n_rows, dtype, offset):
    # blocks of rows copied in parallel with streaming stores, into destinations of any
    # alignment and of any length (shorter than a cache line too)
    X = np.random.RandomState(0).randn(n_rows, 3).astype(dtype)
    buf = np.full((X.shape[0] + offset + 1, 3), -1, dtype=dtype)
    copy_rows(X, buf[offset:offset + X.shape[0]], 2)
    assert_array_equal(buf[offset:offset + X.shape[0]], X)
    assert (buf[:offset] == -1).all() and (buf[offset + X.shape[0]:] == -1).all()


def _same_or_same_error(ours, ref, X, y):
    """Both succeed with equal outputs, or both raise an exception of the same type."""
    try:
        expected = ref.fit_resample(X, y)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        with pytest.raises(type(exc)):
            ours.fit_resample(X, y)
        return exc
    _assert_same(ours.fit_resample(X, y), expected)
    return None


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
@pytest.mark.parametrize("seed", ["int", "RandomState", "None"])
def test_chunked_draws_and_final_random_state(name, params, seed, monkeypatch):
    # small chunks: every class's draws span several chunks of twin streams
    import fastimb.over_sampling as fo

    monkeypatch.setattr(fo, "_CHUNK", 97)
    X, y = make_imbalanced(n_samples=900, n_classes=3, weights=(0.1, 0.3, 0.6))
    if seed == "int":
        rs_ours, rs_ref = 4, 4
    elif seed == "RandomState":
        rs_ours, rs_ref = np.random.RandomState(4), np.random.RandomState(4)
    else:
        rs_ours = rs_ref = None
    ours = getattr(fastimb, name)(random_state=rs_ours, **params)
    ref = getattr(imb, name)(random_state=rs_ref, **params)
    np.random.seed(4)
    expected = ref.fit_resample(X, y)
    ref_state = np.random.get_state() if seed == "None" else rs_ref
    ref_state = ref_state if seed != "RandomState" else rs_ref.get_state()
    np.random.seed(4)
    _assert_same(ours.fit_resample(X, y), expected)
    if seed == "None":   # the global stream ends where imblearn leaves it
        assert_array_equal(np.random.get_state()[1], ref_state[1])
        assert np.random.get_state()[2] == ref_state[2]
    elif seed == "RandomState":
        assert_array_equal(rs_ours.get_state()[1], ref_state[1])
        assert rs_ours.get_state()[2] == ref_state[2]


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
@pytest.mark.parametrize("classes", [2, 3])
def test_matches_imblearn_high_dimension(name, params, classes, dtype):
    # above 15 features both libraries switch to their brute-force search
    kw = (dict(n_samples=800) if classes == 2 else
          dict(n_samples=900, n_classes=3, weights=(0.1, 0.3, 0.6)))
    X, y = make_imbalanced(n_features=24, dtype=dtype, **kw)
    ours, ref = _pair(name, params, random_state=7)
    _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y))


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
def test_string_labels_and_fortran_input(name, params):
    X, y = make_imbalanced(n_samples=600, n_classes=3, weights=(0.15, 0.25, 0.6))
    labels = np.array(["low", "mid", "top"])[y]
    ours, ref = _pair(name, params, random_state=2)
    _assert_same(ours.fit_resample(np.asfortranarray(X), labels), ref.fit_resample(X, labels))


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
def test_class_with_one_sample(name, params):
    X, y = make_imbalanced(n_samples=400, n_classes=3, weights=(0.2, 0.3, 0.5))
    y = y.copy()
    y[y == 0] = 1
    y[np.flatnonzero(y == 1)[0]] = 0                  # class 0: one sample
    ours, ref = _pair(name, params, random_state=0)
    exc = _same_or_same_error(ours, ref, X, y)
    assert exc is None or isinstance(exc, ValueError)


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
def test_duplicated_rows_distribution(name, params):
    # with exact distance ties the chosen neighbours may differ from imblearn's: check
    # counts, labels, that new samples are convex combinations of data rows, and the mean
    X, y = make_imbalanced(n_samples=1500, n_classes=3, weights=(0.15, 0.25, 0.6),
                           random_state=1)
    X = np.round(X, 1)                               # many exact ties
    X[:, 1] = -2.0                                   # a constant feature
    X = np.vstack([X, X[y == 0][:40]])               # duplicated rows
    y = np.concatenate([y, y[y == 0][:40]])
    X0 = X.copy()
    ours, ref = _pair(name, params, random_state=0)
    Xo, yo = ours.fit_resample(X, y)
    Xr, yr = ref.fit_resample(X, y)
    assert_array_equal(X, X0)
    counts_o, counts_r = np.bincount(yo), np.bincount(yr)
    if name == "ADASYN":   # tied neighbours can change the rounded per-sample counts
        np.testing.assert_allclose(counts_o, counts_r, rtol=0.01)
    else:
        assert_array_equal(counts_o, counts_r)
        assert_array_equal(yo, yr)
    assert_array_equal(Xo[:X.shape[0]], X)
    new, new_y = Xo[X.shape[0]:], yo[X.shape[0]:]
    assert (new[:, 1] == -2.0).all()
    for label in np.unique(new_y):
        pts = new[new_y == label]
        # borderline-2 also moves towards other classes (by less than half the way)
        src = X if params.get("kind") == "borderline-2" else X[y == label]
        assert ((pts >= src.min(0) - 1e-12) & (pts <= src.max(0) + 1e-12)).all()
        ref_pts = Xr[X.shape[0]:][yr[X.shape[0]:] == label]
        spread = X[y == label].std(0) + 1e-9
        assert (np.abs(pts.mean(0) - ref_pts.mean(0)) < 0.25 * spread + 0.05).all()


def test_adasyn_value_error_when_nothing_to_generate():
    X, y = make_imbalanced(n_samples=300)
    minority = np.argmin(np.bincount(y))
    strategy = {minority: int(np.sum(y == minority)) + 1}   # one sample to spread
    ours, ref = _pair("ADASYN", {}, random_state=0, sampling_strategy=strategy)
    exc = _same_or_same_error(ours, ref, X, y)
    assert exc is None or isinstance(exc, ValueError)


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
def test_fastimb_neighbours_object_and_fitted_attributes(name, params):
    from fastimb.neighbors import NearestNeighbors

    X, y = make_imbalanced(n_samples=500)
    key = "n_neighbors" if name == "ADASYN" else "k_neighbors"
    ours, ref = _pair(name, params, random_state=0)
    ours.set_params(**{key: NearestNeighbors(n_neighbors=4)})
    ref.set_params(**{key: SkNN(n_neighbors=4)})
    _assert_same(ours.fit_resample(X, y), ref.fit_resample(X, y))
    attrs = {"SMOTE": ["nn_k_"], "ADASYN": ["nn_"],
             "BorderlineSMOTE": ["nn_k_", "nn_m_", "in_danger_indices"]}[name]
    for attr in attrs + ["sampling_strategy_", "n_features_in_"]:
        assert hasattr(ours, attr)
    assert ours.n_features_in_ == X.shape[1]
    assert not hasattr(ours, "sample_indices_")
    assert ours.__sklearn_tags__().sampler_tags.sample_indices is False
    if name == "BorderlineSMOTE":   # fitted as imblearn's (their indexes freed, rebuilt)
        for attr in ("nn_m_", "nn_k_"):
            nn, nn_ref = getattr(ours, attr), getattr(ref, attr)
            assert nn.n_samples_fit_ == nn_ref.n_samples_fit_
            assert_array_equal(nn.kneighbors(X[:20])[1], nn_ref.kneighbors(X[:20])[1])
    else:   # the estimator is fitted last on the class data
        nn = ours.nn_k_ if name == "SMOTE" else ours.nn_
        assert nn.n_samples_fit_ == ref.nn_k_.n_samples_fit_ if name == "SMOTE" \
            else nn.n_samples_fit_ == ref.nn_.n_samples_fit_


@pytest.mark.parametrize("name, params", SAMPLERS, ids=IDS)
def test_bad_parameters(name, params):
    X, y = make_imbalanced(n_samples=200)
    key = "n_neighbors" if name == "ADASYN" else "k_neighbors"
    for bad in (0, -1, 2.5, "five", object()):
        with pytest.raises(ValueError, match=key):
            getattr(fastimb, name)(**params, **{key: bad}).fit_resample(X, y)
    with pytest.raises(ValueError, match="sampling_strategy"):
        getattr(fastimb, name)(sampling_strategy="majority", **params).fit_resample(X, y)
    if name == "BorderlineSMOTE":
        with pytest.raises(ValueError, match="kind"):
            fastimb.BorderlineSMOTE(kind="borderline-3").fit_resample(X, y)


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 4), min_size=1, max_size=40), data=st.data())
def test_adasyn_rows_of_a_chunk(counts, data):
    # ADASYN's sample rows (each class row repeated by its count), one chunk at a time
    from fastimb.over_sampling import _rows_of_chunk

    counts = np.asarray(counts)
    full = np.repeat(np.arange(counts.size), counts)
    if full.size == 0:
        return
    a = data.draw(st.integers(0, full.size - 1))
    b = data.draw(st.integers(a + 1, full.size))
    assert_array_equal(_rows_of_chunk(counts, np.cumsum(counts), a, b), full[a:b])
