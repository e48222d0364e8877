"""Mutual information gap (Chen et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.metrics._common import check_pair
from clipica.metrics._discrete import check_n_bins, discretise, entropy, mutual_information


@dataclass(frozen=True)
class MIGResult:
    """Result of :func:`mig`.

    Attributes
    ----------
    score : float
        Mean of ``per_factor`` over factors with non-zero entropy.
    per_factor : ndarray of shape (n_factors,)
        ``(I_top - I_second) / H(factor)``; NaN for a constant factor.
    mutual_info : ndarray of shape (n_codes, n_factors)
        Plug-in mutual information in nats between binned codes and factors.
    factor_entropy : ndarray of shape (n_factors,)
    top_code : ndarray of shape (n_factors,)
        The code with the largest mutual information for each factor.
    n_bins : int
    """

    score: float
    per_factor: np.ndarray
    mutual_info: np.ndarray
    factor_entropy: np.ndarray
    top_code: np.ndarray
    n_bins: int

    def to_dict(self) -> dict:
        return {
            "score": float(self.score),
            "per_factor": self.per_factor.tolist(),
            "top_code": self.top_code.tolist(),
            "n_bins": self.n_bins,
        }


def mig(codes, factors, *, n_bins: int = 20) -> MIGResult:
    """Mutual information gap.

    Definition: for factor ``k``, with ``I(c_i; v_k)`` the mutual information between
    code ``i`` and the factor, ``MIG_k = (I_(1) - I_(2)) / H(v_k)`` where ``I_(1) >= I_(2)``
    are the two largest values over codes; MIG is the mean over factors. With a single
    code, ``I_(2) = 0``.

    Estimator: codes are discretised into ``n_bins`` (default 20) equal-frequency bins
    per code (a code with at most ``n_bins`` distinct values keeps one bin per value);
    factors with at most ``n_bins`` distinct values (binary attributes, discrete
    factors) are used as they are, and continuous factors are binned the same way as
    codes. Entropies and mutual information are plug-in (empirical frequency) estimates
    in nats, so ``H(v_k)`` is the discrete factor's own entropy and ``MIG_k`` lies in
    [0, 1]. Invariant to permutation, sign and monotone transforms of the codes.
    Constant codes give 0; random codes give a small positive bias of order
    ``n_bins * n_levels / n_samples``.
    """
    n_bins = check_n_bins(n_bins)
    c, f = check_pair(codes, factors)
    cb, fb = discretise(c, n_bins), discretise(f, n_bins)
    mi = mutual_information(cb, fb)
    h = entropy(fb)
    srt = np.sort(mi, axis=0)[::-1]
    second = srt[1] if mi.shape[0] > 1 else np.zeros(mi.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(h > 0, (srt[0] - second) / np.where(h > 0, h, 1.0), np.nan)
    score = float(np.nanmean(per)) if np.any(~np.isnan(per)) else float("nan")
    return MIGResult(
        score=score,
        per_factor=per,
        mutual_info=mi,
        factor_entropy=h,
        top_code=np.argmax(mi, axis=0),
        n_bins=n_bins,
    )
