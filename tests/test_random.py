"""The compiled RandomState replay gives NumPy's legacy draws, bit for bit."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastimb._kernels import _random
from fastimb._random import Draws

HIGHS = st.one_of(st.integers(1, 10), st.integers(1, 2**20),
                  st.sampled_from([2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**40 + 7,
                                   2**63 - 1]),
                  st.integers(1, 2**62))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), high=HIGHS, n=st.integers(0, 3000),
       lead=st.integers(0, 700))
def test_randint_and_uniform_match_randomstate(seed, high, n, lead):
    # a lead of draws puts the stream at every position of its 624-word block
    ref = np.random.RandomState(seed)
    ref.uniform(size=lead)
    ours = np.random.RandomState(seed)
    ours.uniform(size=lead)
    draws = Draws(ours)
    dtype = np.int32 if high <= 2**31 - 1 else np.int64
    got = draws.randint(high, n, dtype=dtype)
    assert np.array_equal(got, ref.randint(low=0, high=high, size=n))
    assert np.array_equal(draws.uniform(n), ref.uniform(size=n))
    assert np.array_equal(draws.uniform(5, high=0.5), ref.uniform(low=0.0, high=0.5, size=5))
    draws.commit()
    assert np.array_equal(ours.randint(0, 1000, 50), ref.randint(0, 1000, 50))


def test_fork_skip_and_commit():
    ref = np.random.RandomState(3)
    rs = np.random.RandomState(3)
    draws = Draws(rs)
    a = draws.randint(17, 100)
    twin = draws.fork()
    draws.skip_uniform(1000)
    steps = twin.uniform(1000)
    after = draws.uniform(10)
    draws.commit()
    assert np.array_equal(a, ref.randint(0, 17, 100))
    assert np.array_equal(steps, ref.uniform(size=1000))
    assert np.array_equal(after, ref.uniform(size=10))
    assert np.array_equal(rs.uniform(size=3), ref.uniform(size=3))


def test_gauss_cache_survives_commit():
    ref = np.random.RandomState(5)
    rs = np.random.RandomState(5)
    ref.standard_normal()       # odd count: a Gaussian stays cached
    rs.standard_normal()
    draws = Draws(rs)
    assert np.array_equal(draws.uniform(7), ref.uniform(size=7))
    draws.commit()
    assert rs.standard_normal() == ref.standard_normal()


def test_other_bit_generator_falls_back():
    ref = np.random.RandomState(np.random.PCG64(11))
    rs = np.random.RandomState(np.random.PCG64(11))
    draws = Draws(rs)
    assert np.array_equal(draws.randint(1000, 20), ref.randint(0, 1000, 20))
    twin = draws.fork()
    draws.skip_uniform(4)
    assert np.array_equal(twin.uniform(4), ref.uniform(size=4))
    assert np.array_equal(draws.uniform(3, high=0.5), ref.uniform(0.0, 0.5, size=3))


def test_bad_state_is_refused():
    key = np.zeros(100, dtype=np.uint32)
    with pytest.raises(ValueError, match="624 words"):
        _random.uniform(key, 0, 1.0, np.empty(3))
    key = np.zeros(624, dtype=np.uint32)
    with pytest.raises(ValueError, match="position"):
        _random.uniform(key, 625, 1.0, np.empty(3))
    with pytest.raises(ValueError, match="at least 1"):
        _random.randint(key, 0, 0, np.empty(3, dtype=np.int64))
