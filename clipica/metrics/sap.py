"""Separated attribute predictability (Kumar et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.metrics._common import check_pair, column_correlation, split_indices
from clipica.metrics._discrete import is_binary


@dataclass(frozen=True)
class SAPResult:
    """Result of :func:`sap`.

    Attributes
    ----------
    score : float
        Mean of ``per_factor``.
    per_factor : ndarray of shape (n_factors,)
        Gap between the best and second-best single-code score of each factor.
    scores : ndarray of shape (n_codes, n_factors)
        Single-code predictability: R^2 for continuous factors, Youden's J for binary ones.
    binary : ndarray of bool, shape (n_factors,)
    """

    score: float
    per_factor: np.ndarray
    scores: np.ndarray
    binary: np.ndarray

    def to_dict(self) -> dict:
        return {
            "score": float(self.score),
            "per_factor": self.per_factor.tolist(),
            "binary": self.binary.tolist(),
        }


def _stump_youden(xtr, ytr, xte, yte, order=None, xs=None) -> np.ndarray:
    """Youden's J (= 2 * balanced accuracy - 1) on test rows of the best threshold per code.

    For every code the threshold and direction that maximise balanced accuracy on the
    training rows are chosen (all cut points between distinct values at once, via
    cumulative counts), then balanced accuracy is measured on the test rows.
    """
    n_pos, n_neg = ytr.sum(), (1 - ytr).sum()
    out = np.zeros(xtr.shape[1])
    if n_pos == 0 or n_neg == 0 or yte.sum() == 0 or yte.sum() == yte.size:
        return out
    if order is None:  # callers scoring many factors sort the codes once
        order = np.argsort(xtr, axis=0, kind="stable")
    if xs is None:
        xs = np.take_along_axis(xtr, order, axis=0)
    ys = ytr[order]
    # cut after position i: predict positive for x > xs[i]
    pos_below = np.cumsum(ys, axis=0)[:-1]
    neg_below = np.arange(1, ys.shape[0])[:, None] - pos_below
    tpr = (n_pos - pos_below) / n_pos
    tnr = neg_below / n_neg
    bal = 0.5 * (tpr + tnr)
    valid = xs[1:] > xs[:-1]  # only cut between distinct values
    strength = np.where(valid, np.abs(bal - 0.5), -1.0)
    best = np.argmax(strength, axis=0)
    cols = np.arange(xtr.shape[1])
    has_cut = valid.any(axis=0)
    thr = 0.5 * (xs[best, cols] + xs[best + 1, cols])
    sign = np.where(bal[best, cols] >= 0.5, 1.0, -1.0)
    pred = (xte - thr) * sign > 0
    tp = (pred & (yte[:, None] == 1)).sum(axis=0) / yte.sum()
    tn = (~pred & (yte[:, None] == 0)).sum(axis=0) / (yte.size - yte.sum())
    # below chance on the test rows means no predictability, not negative predictability
    out = np.maximum(tp + tn - 1.0, 0.0)
    out[~has_cut] = 0.0  # a constant code predicts nothing
    return out


def sap(
    codes, factors, *, train=None, test=None, test_size: float = 0.25, random_state: int = 0
) -> SAPResult:
    """Separated attribute predictability.

    Definition (Kumar et al. 2018): ``S[i, k]`` is how well code ``i`` alone predicts
    factor ``k``; ``SAP_k = S_(1),k - S_(2),k`` (best minus second best over codes) and
    SAP is the mean over factors.

    Single-code scores: for a continuous factor, the R^2 of a 1-d linear regression,
    i.e. the squared Pearson correlation (all rows: two parameters cannot overfit).
    For a binary (0/1) factor, a threshold classifier on the code, with threshold and
    direction chosen on the training rows to maximise balanced accuracy, scored on the
    test rows as Youden's J = 2 * balanced accuracy - 1 (clipped at 0), so that chance is 0 and a
    perfect code is 1 on the same scale as R^2 (Kumar et al. use balanced accuracy).

    Invariant to permutation and sign of the codes. Constant codes score 0; random
    codes give a small gap.
    """
    c, f = check_pair(codes, factors)
    binary = np.array([is_binary(f[:, k]) for k in range(f.shape[1])])
    S = np.zeros((c.shape[1], f.shape[1]))
    if (~binary).any():
        S[:, ~binary] = column_correlation(c, f[:, ~binary]) ** 2
    if binary.any():
        tr, te = split_indices(
            c.shape[0], train=train, test=test, test_size=test_size, random_state=random_state
        )
        ctr, cte = c[tr], c[te]
        order = np.argsort(ctr, axis=0, kind="stable")
        xs = np.take_along_axis(ctr, order, axis=0)
        for k in np.flatnonzero(binary):
            S[:, k] = _stump_youden(ctr, f[tr, k], cte, f[te, k], order=order, xs=xs)
    srt = np.sort(S, axis=0)[::-1]
    second = srt[1] if S.shape[0] > 1 else np.zeros(S.shape[1])
    per = srt[0] - second
    return SAPResult(score=float(per.mean()), per_factor=per, scores=S, binary=binary)
