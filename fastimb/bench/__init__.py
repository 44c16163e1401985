"""The side-by-side comparison of fastimb against imbalanced-learn: ``python -m fastimb.bench``.

Generates an imbalanced data set (1M rows by default), runs every fastimb sampler beside
its imbalanced-learn counterpart on the same data, checks that the outputs agree and
writes a table (Markdown and JSON) and a bar chart of the speed-ups.
"""
from fastimb.bench._runner import CASES, main, make_dataset, real_dataset, run

__all__ = ["CASES", "main", "make_dataset", "real_dataset", "run"]
