"""Amari distance between an estimated unmixing and the true mixing."""

from __future__ import annotations

import numpy as np

from clipica.errors import InputError


def amari_distance(W, A) -> float:
    """Normalised Amari distance of ``P = W @ A`` from a scaled permutation, in [0, 1].

    Parameters
    ----------
    W : array of shape (n_components, n_features)
        Estimated unmixing (data -> sources), e.g. ``ica.components_``.
    A : array of shape (n_features, n_sources)
        True mixing (sources -> data).

    Definition (Amari et al. 1996, normalised): with ``P = |W A|`` of shape (m, n),
    ``r_i = sum_j P_ij / max_j P_ij`` and ``c_j = sum_i P_ij / max_i P_ij``::

        d = 1/2 * [ mean_i (r_i - 1) / (n - 1)  +  mean_j (c_j - 1) / (m - 1) ]

    For square ``P`` this is the classical index divided by its maximum ``2 n (n - 1)``.
    Each ratio lies in [1, n], so ``d`` lies in [0, 1]; ``d = 0`` iff every row and
    every column of ``P`` has exactly one non-zero entry, i.e. ``W A`` is a scaled
    permutation (recovery up to order, sign and scale). ``d = 1`` when every entry of
    ``P`` has the same magnitude. An all-zero row or column of ``P`` (a component that
    sees no source, or a source no component sees) counts as the worst value 1 for
    that row or column. With a single row (column) the column (row) term alone is used.
    """
    W = np.asarray(W, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    if W.ndim != 2 or A.ndim != 2:
        raise InputError(
            f"W must be (n_components, n_features) and A (n_features, n_sources); "
            f"got shapes {W.shape} and {A.shape}."
        )
    if W.shape[1] != A.shape[0]:
        raise InputError(
            f"W (n_components, n_features) and A (n_features, n_sources) disagree on n_features: "
            f"W {W.shape}, A {A.shape}. Pass the unmixing first and the mixing second."
        )
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(A))):
        raise InputError("W and A must be finite.")
    P = np.abs(W @ A)
    m, n = P.shape
    if m == 1 and n == 1:
        return 0.0 if P[0, 0] > 0 else 1.0

    def _term(M: np.ndarray) -> float | None:
        # rows of M: ratio of row sum to row max, normalised to [0, 1]
        k = M.shape[1]
        if k == 1:
            return None
        mx = M.max(axis=1)
        tiny = 1e-12 * max(float(M.max()), 1e-300)
        ok = mx > tiny
        vals = np.ones(M.shape[0])
        vals[ok] = (M[ok].sum(axis=1) / mx[ok] - 1.0) / (k - 1)
        return float(vals.mean())

    terms = [t for t in (_term(P), _term(P.T)) if t is not None]
    return float(np.clip(np.mean(terms), 0.0, 1.0))
