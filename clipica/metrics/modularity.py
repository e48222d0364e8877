"""Modularity (Ridgeway & Mozer 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError
from clipica.metrics._common import check_pair
from clipica.metrics._discrete import check_n_bins, discretise, mutual_information


@dataclass(frozen=True)
class ModularityResult:
    """Result of :func:`modularity`.

    Attributes
    ----------
    score : float
        Mean of ``per_code``.
    per_code : ndarray of shape (n_codes,)
        ``1 - delta_i`` for each code (0 for a code with no information).
    mutual_info : ndarray of shape (n_codes, n_factors)
        Plug-in mutual information in nats between binned codes and factors.
    n_bins : int
    """

    score: float
    per_code: np.ndarray
    mutual_info: np.ndarray
    n_bins: int

    def to_dict(self) -> dict:
        return {
            "score": float(self.score),
            "per_code": self.per_code.tolist(),
            "n_bins": self.n_bins,
        }


def modularity(codes, factors, *, n_bins: int = 20) -> ModularityResult:
    """Modularity: does each code carry information about at most one factor?

    Definition (Ridgeway & Mozer 2018): with ``m_ij`` the mutual information between
    code ``i`` and factor ``j``, ``theta_i = max_j m_ij`` and the ideal template ``t_i``
    that keeps ``theta_i`` at the argmax and 0 elsewhere::

        delta_i = sum_j (m_ij - t_ij)^2 / (theta_i^2 (n_factors - 1)),   modularity_i = 1 - delta_i

    and the score is the mean over codes. A code with ``theta_i = 0`` (constant code,
    no information) scores 0 here (Ridgeway & Mozer leave it undefined). With a single
    factor every informative code scores 1. Same binning as :func:`~clipica.metrics.mig`:
    ``n_bins`` equal-frequency bins for continuous columns, discrete columns as they are.

    Note: modularity does not go to 0 for random codes: a code whose tiny, noisy
    mutual informations happen to peak on one factor scores well above 0. Read it
    together with an informativeness measure (DCI informativeness, MIG).
    """
    n_bins = check_n_bins(n_bins)
    c, f = check_pair(codes, factors)
    mi = mutual_information(discretise(c, n_bins), discretise(f, n_bins))
    per = modularity_from_mutual_info(mi)
    return ModularityResult(score=float(per.mean()), per_code=per, mutual_info=mi, n_bins=n_bins)


def modularity_from_mutual_info(mi) -> np.ndarray:
    """Per-code modularity ``1 - delta_i`` from a mutual information matrix (n_codes, n_factors).

    The pure core of :func:`modularity` (disentanglement_lib's ``modularity`` takes the
    same matrix; its score is the mean of this vector). Codes whose largest mutual
    information is 0 score 0; with a single factor every informative code scores 1.
    """
    mi = np.asarray(mi, dtype=np.float64)
    if mi.ndim != 2 or mi.size == 0:
        raise InputError(f"mi must be a non-empty (n_codes, n_factors) matrix; got shape {mi.shape}.")
    n_f = mi.shape[1]
    theta = mi.max(axis=1)
    per = np.zeros(mi.shape[0])
    informative = theta > 1e-12
    if n_f == 1:
        per[informative] = 1.0
    else:
        m = mi[informative]
        t = np.zeros_like(m)
        t[np.arange(m.shape[0]), np.argmax(m, axis=1)] = theta[informative]
        delta = np.sum((m - t) ** 2, axis=1) / (theta[informative] ** 2 * (n_f - 1))
        per[informative] = 1.0 - delta
    return per
