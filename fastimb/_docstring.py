"""Shared parameter documentation, substituted into sampler docstrings."""


class Substitution:
    """Fill ``{name}`` fields of a docstring with the given texts (``{{``/``}}`` escape braces)."""

    def __init__(self, **texts):
        self.texts = texts

    def __call__(self, obj):
        if obj.__doc__:
            obj.__doc__ = obj.__doc__.format(**self.texts)
        return obj


_random_state_docstring = """random_state : int, RandomState instance, default=None
        Control the randomization of the algorithm, as in imbalanced-learn:

        - None: the global :mod:`numpy.random` singleton;
        - int: the seed of a new :class:`numpy.random.RandomState` (fastimb creates it at
          the same points imbalanced-learn does, so the same seed gives the same output);
        - RandomState instance: used, and advanced, as it is.""".rstrip()

_n_jobs_docstring = """n_jobs : int, default=None
        Threads used by fastimb's compiled kernels. ``None`` means every core this process
        may use, honouring ``OMP_NUM_THREADS`` and ``threadpoolctl`` limits (imbalanced-learn's
        ``None`` means one job; fastimb's kernels are parallel by default). ``-1`` also means
        all, ``-k`` all but ``k - 1``. Results never depend on the number of threads.""".rstrip()

_sampling_strategy_over = """sampling_strategy : float, str, dict or callable, default='auto'
        Sampling information to resample the data set.

        - When ``float``, it corresponds to the desired ratio of the number of samples in
          the minority class over the number of samples in the majority class after
          resampling (binary problems only).
        - When ``str``, the classes targeted by the resampling: ``'minority'``,
          ``'not minority'``, ``'not majority'``, ``'all'`` or ``'auto'``
          (= ``'not majority'``).
        - When ``dict``, the keys are the targeted classes and the values the desired
          number of samples for each of them.
        - When callable, a function taking ``y`` and returning such a ``dict``.""".rstrip()

_sampling_strategy_under = """sampling_strategy : float, str, dict or callable, default='auto'
        Sampling information to resample the data set.

        - When ``float``, it corresponds to the desired ratio of the number of samples in
          the minority class over the number of samples in the majority class after
          resampling (binary problems only).
        - When ``str``, the classes targeted by the resampling: ``'majority'``,
          ``'not minority'``, ``'not majority'``, ``'all'`` or ``'auto'``
          (= ``'not minority'``).
        - When ``dict``, the keys are the targeted classes and the values the desired
          number of samples for each of them.
        - When callable, a function taking ``y`` and returning such a ``dict``.""".rstrip()

_sampling_strategy_clean = """sampling_strategy : str, list or callable, default='auto'
        Sampling information to resample the data set.

        - When ``str``, the classes targeted by the cleaning: ``'majority'``,
          ``'not minority'``, ``'not majority'``, ``'all'`` or ``'auto'``
          (= ``'not minority'``).
        - When ``list``, the classes targeted by the cleaning.
        - When callable, a function taking ``y`` and returning a ``dict`` whose keys are
          the targeted classes.""".rstrip()

SAMPLING_STRATEGY_DOCS = {
    "over-sampling": _sampling_strategy_over,
    "under-sampling": _sampling_strategy_under,
    "clean-sampling": _sampling_strategy_clean,
}
RANDOM_STATE_DOC = _random_state_docstring
N_JOBS_DOC = _n_jobs_docstring
