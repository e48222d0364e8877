"""Mean correlation coefficient (MCC) between estimated codes and true factors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError
from clipica.metrics._common import check_pair, column_correlation, rank_columns


@dataclass(frozen=True)
class MCCResult:
    """Result of :func:`mcc`.

    Attributes
    ----------
    score : float
        Mean absolute correlation over the matched pairs, in [0, 1].
    correlations : ndarray of shape (n_matched,)
        Signed correlation of each matched (code, factor) pair.
    code_index, factor_index : ndarray of shape (n_matched,)
        The matching: code ``code_index[i]`` is paired with factor ``factor_index[i]``;
        sorted by factor index.
    matrix : ndarray of shape (n_codes, n_factors)
        Absolute correlation of every code with every factor.
    method : str
        ``"pearson"`` or ``"spearman"``.
    """

    score: float
    correlations: np.ndarray
    code_index: np.ndarray
    factor_index: np.ndarray
    matrix: np.ndarray
    method: str

    def to_dict(self) -> dict:
        return {
            "score": float(self.score),
            "method": self.method,
            "correlations": self.correlations.tolist(),
            "code_index": self.code_index.tolist(),
            "factor_index": self.factor_index.tolist(),
        }


def mcc(codes, factors, method: str = "pearson") -> MCCResult:
    """Mean correlation coefficient with one-to-one (Hungarian) matching.

    Definition: let ``C[i, j] = |corr(codes[:, i], factors[:, j])|`` (Pearson, or
    Spearman = Pearson on average ranks). Find the one-to-one matching between codes
    and factors that maximises the summed ``C`` (``scipy.optimize.linear_sum_assignment``);
    MCC is the mean of ``C`` over the matched pairs. With ``n_codes != n_factors`` the
    ``min(n_codes, n_factors)`` best-matched pairs count; the extra codes (or factors)
    are ignored. Invariant to permutation, sign and (for Spearman) monotone rescaling
    of the codes. A constant column correlates 0 with everything.

    Parameters
    ----------
    codes : array of shape (n_samples, n_codes)
    factors : array of shape (n_samples, n_factors)
    method : {"pearson", "spearman"}
    """
    from scipy.optimize import linear_sum_assignment

    if method not in ("pearson", "spearman"):
        raise InputError(f"method must be 'pearson' or 'spearman'; got {method!r}.")
    c, f = check_pair(codes, factors)
    if method == "spearman":
        c, f = rank_columns(c), rank_columns(f)
    signed = column_correlation(c, f)
    absolute = np.abs(signed)
    rows, cols = linear_sum_assignment(absolute, maximize=True)
    order = np.argsort(cols)
    rows, cols = rows[order], cols[order]
    return MCCResult(
        score=float(absolute[rows, cols].mean()),
        correlations=signed[rows, cols],
        code_index=rows.astype(np.int64),
        factor_index=cols.astype(np.int64),
        matrix=absolute,
        method=method,
    )
