"""How many threads a kernel call uses: the one place that decides it."""
import os

from fastimb._kernels._openmp cimport FASTIMB_HAVE_OPENMP, fastimb_max_threads


def openmp_enabled():
    """Whether fastimb's kernels were compiled with OpenMP."""
    return bool(FASTIMB_HAVE_OPENMP)


def max_threads():
    """The thread ceiling kernels honour: OpenMP's ``omp_get_max_threads()``.

    It follows ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits(user_api="openmp")``;
    when neither is set it is additionally capped at the CPUs this process may run on.
    """
    if not FASTIMB_HAVE_OPENMP:
        return 1
    cdef int ceiling = fastimb_max_threads()
    if not os.environ.get("OMP_NUM_THREADS") and hasattr(os, "sched_getaffinity"):
        ceiling = min(ceiling, len(os.sched_getaffinity(0)))
    return max(1, ceiling)


def effective_n_threads(n_jobs=None):
    """Threads for one kernel call.

    ``None`` means every usable core (see :func:`max_threads`), a positive ``n_jobs`` asks
    for that many threads (capped at the ceiling), ``-1`` means all and ``-k`` all but
    ``k - 1`` as in joblib. ``0`` is an error. Without OpenMP the answer is always 1.
    """
    if n_jobs is not None and int(n_jobs) == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, -1 or a positive integer.")
    ceiling = max_threads()
    if n_jobs is None:
        return ceiling
    n_jobs = int(n_jobs)
    if n_jobs < 0:
        return max(1, ceiling + 1 + n_jobs)
    return min(n_jobs, ceiling)
