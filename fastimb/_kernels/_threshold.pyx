"""Threshold-sweep kernels: cumulative true/false-positive counts at every distinct score.

Scores are visited from the highest to the lowest; each run of equal scores becomes one
threshold (``score >= threshold`` predicts the positive class), holding the counts of
everything at or above it. This is the grouping of scikit-learn's ``precision_recall_curve``
and ``roc_curve`` (distinct values compared with ``==``).

Two entry points, both one linear pass that fills preallocated outputs and returns the
number of thresholds written:

* ``sweep_split`` merges the ascending-sorted scores of the positives and of the negatives
  (two value sorts are much cheaper than one argsort); unit weights.
* ``sweep_order`` walks an ascending argsort of all scores and sums per-sample weights.
"""
from cython cimport floating

from fastimb._kernels._typedefs cimport intp_t


def sweep_split(const floating[::1] pos,     # IN  (n_pos,) positives' scores, ascending
                const floating[::1] neg,     # IN  (n_neg,) negatives' scores, ascending
                floating[::1] thresholds,    # OUT (>= n_pos + n_neg,) distinct scores, descending
                double[::1] tp,              # OUT same length: positives scoring >= threshold
                double[::1] fp,              # OUT same length: negatives scoring >= threshold
                intp_t[::1] n_predicted):    # OUT same length: samples scoring >= threshold
    """Merge the two sorted score lists from the top; return the number of thresholds."""
    cdef intp_t i = pos.shape[0] - 1, j = neg.shape[0] - 1, m = 0
    cdef intp_t ctp = 0, cfp = 0
    cdef floating v
    with nogil:
        while i >= 0 or j >= 0:
            if i >= 0 and (j < 0 or pos[i] >= neg[j]):
                v = pos[i]
            else:
                v = neg[j]
            while i >= 0 and pos[i] == v:
                ctp += 1
                i -= 1
            while j >= 0 and neg[j] == v:
                cfp += 1
                j -= 1
            thresholds[m] = v
            tp[m] = <double>ctp
            fp[m] = <double>cfp
            n_predicted[m] = ctp + cfp
            m += 1
    return m


def sweep_order(const floating[::1] scores,   # IN  (n,) scores
                const intp_t[::1] order,      # IN  (n,) argsort of scores, ascending
                const unsigned char[::1] positive,  # IN (n,) 1 for the positive class
                const double[::1] weights,    # IN  (n,) sample weights
                floating[::1] thresholds,     # OUT (>= n,) distinct scores, descending
                double[::1] tp,               # OUT weighted positives scoring >= threshold
                double[::1] fp,               # OUT weighted negatives scoring >= threshold
                intp_t[::1] n_predicted):     # OUT samples scoring >= threshold
    """Walk ``order`` from the top, summing weights; return the number of thresholds."""
    cdef intp_t n = order.shape[0], k = n - 1, m = 0, idx
    cdef double ctp = 0.0, cfp = 0.0
    cdef floating v
    with nogil:
        while k >= 0:
            idx = order[k]
            v = scores[idx]
            while True:
                if positive[idx]:
                    ctp = ctp + weights[idx]
                else:
                    cfp = cfp + weights[idx]
                k -= 1
                if k < 0:
                    break
                idx = order[k]
                if scores[idx] != v:
                    break
            thresholds[m] = v
            tp[m] = ctp
            fp[m] = cfp
            n_predicted[m] = n - 1 - k
            m += 1
    return m
