"""imbalanced-learn's random draws, replayed exactly, from compiled code when possible."""
import copy

import numpy as np

from fastimb._kernels import _random


class Draws:
    """A ``RandomState``'s stream, consumed exactly as its legacy methods consume it.

    ``randint(high, n)`` gives ``random_state.randint(0, high, size=n)`` and
    ``uniform(n, high)`` gives ``random_state.uniform(0.0, high, size=n)``, bit for bit
    and in stream order. On an MT19937 ``RandomState`` (every one made from a seed, and
    NumPy's global one) the words come from ``fastimb._kernels._random`` working on a copy
    of the state; :meth:`commit` writes that state back, so the ``RandomState`` ends
    exactly where NumPy's own calls would have left it. Any other bit generator is called
    directly.
    """

    def __init__(self, random_state, _state=None):
        self.random_state = random_state
        if _state is not None:
            self._key, self._pos = _state
            return
        state = random_state.get_state(legacy=False)
        if state.get("bit_generator") == "MT19937":
            self._key = np.array(state["state"]["key"], dtype=np.uint32)
            self._pos = int(state["state"]["pos"])
        else:
            self._key = None

    def randint(self, high, size, dtype=np.intp):
        """``size`` integers in ``[0, high)``, in an array of ``dtype`` (int32 or int64)."""
        out = np.empty(size, dtype=dtype)
        if self._key is None:
            out[:] = self.random_state.randint(low=0, high=high, size=size)
        else:
            self._pos = _random.randint(self._key, self._pos, int(high), out)
        return out

    def uniform(self, size, high=1.0):
        """``size`` floats in ``[0, high)``."""
        if self._key is None:
            return self.random_state.uniform(low=0.0, high=high, size=size)
        out = np.empty(size, dtype=np.float64)
        self._pos = _random.uniform(self._key, self._pos, float(high), out)
        return out

    def skip_uniform(self, size):
        """Advance past ``size`` uniform draws without making them."""
        if self._key is None:
            self.random_state.uniform(size=size)
        else:
            self._pos = _random.skip(self._key, self._pos, 2 * int(size))

    def fork(self):
        """Draws from the same point of the same stream, advancing independently (and
        never committed to the ``RandomState``)."""
        if self._key is None:
            return Draws(copy.deepcopy(self.random_state))
        return Draws(None, (self._key.copy(), self._pos))

    def commit(self):
        """Leave the ``RandomState`` where these draws ended."""
        if self._key is None or self.random_state is None:
            return
        state = self.random_state.get_state(legacy=False)
        state["state"] = {"key": self._key, "pos": self._pos}
        self.random_state.set_state(state)
