"""Build and run-time configuration report."""
import sys

from fastimb._kernels._brute import scan_level
from fastimb._kernels._openmp_helpers import effective_n_threads, max_threads, openmp_enabled

#: the brute-force neighbour scan each ``scan_level()`` runs
SCAN_NAMES = {0: "BLAS sgemm + filter", 1: "AVX2+FMA", 2: "AVX-512",
              3: "AVX-512 with 8-bit screen (AVX512_VNNI)"}


def _version():
    from fastimb import __version__

    return __version__


def show_config(file=None):
    """Print fastimb's version, whether its kernels have OpenMP and how many threads they use.

    Parameters
    ----------
    file : file-like, default=None
        Where to print; ``sys.stdout`` when None.

    Returns
    -------
    info : dict
        The same facts as a dictionary (``version``, ``openmp``, ``max_threads``,
        ``default_threads``, ``neighbor_scan``: the brute-force distance scan this CPU
        runs, and the versions of numpy, scipy and scikit-learn).
    """
    import numpy
    import scipy
    import sklearn

    info = {
        "version": _version(),
        "openmp": openmp_enabled(),
        "max_threads": max_threads(),
        "default_threads": effective_n_threads(None),
        "neighbor_scan": SCAN_NAMES[scan_level()],
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }
    out = sys.stdout if file is None else file
    width = max(len(k) for k in info)
    print("fastimb configuration", file=out)
    for key, value in info.items():
        print(f"  {key:<{width}} : {value}", file=out)
    return info
