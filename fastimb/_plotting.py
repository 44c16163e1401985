"""What fastimb's Display classes share: the optional matplotlib import and point thinning."""
import numpy as np

# a curve with more points than this is thinned before plotting (the eye cannot tell)
MAX_PLOT_POINTS = 4000


def require_matplotlib(what):
    """``matplotlib.pyplot``, or an ImportError saying what to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{what} needs matplotlib: pip install matplotlib") from exc
    return plt


def get_axes(ax):
    """``ax`` or the current axes of a new figure."""
    plt = require_matplotlib("plotting")
    if ax is None:
        _, ax = plt.subplots()
    return ax


def thin(n, keep=()):
    """Indices of at most about ``MAX_PLOT_POINTS`` evenly spread points of ``n``, always
    including the ones in ``keep``."""
    if n <= MAX_PLOT_POINTS:
        return np.arange(n)
    idx = np.linspace(0, n - 1, MAX_PLOT_POINTS).astype(np.intp)
    extra = [k for k in keep if 0 <= k < n]
    return np.unique(np.concatenate([idx, np.asarray(extra, dtype=np.intp)]))
