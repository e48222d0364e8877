"""Correlations between two code sets on the same rows: the matrix, the one-to-one
matching, and canonical correlations between subspaces (blocks).

Pure numpy/scipy, samples first. A code with no variance on the shared rows has
correlation 0 with everything (it carries nothing to agree on).
"""

from __future__ import annotations

import numpy as np


def _standardise(S: np.ndarray) -> np.ndarray:
    S = np.asarray(S, dtype=np.float64)
    S = S - S.mean(axis=0)
    sd = S.std(axis=0)
    # a constant code: zero, not NaN, so it matches nothing
    return np.divide(S, sd, out=np.zeros_like(S), where=sd > 0)


def cross_correlation(S_a: np.ndarray, S_b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every code of A with every code of B.

    Parameters
    ----------
    S_a : ndarray of shape (n_samples, k_a)
    S_b : ndarray of shape (n_samples, k_b)

    Returns
    -------
    ndarray of shape (k_a, k_b), values in [-1, 1]
    """
    if len(S_a) != len(S_b):
        raise ValueError(f"codes must hold the same rows: {len(S_a)} != {len(S_b)}")
    Za, Zb = _standardise(S_a), _standardise(S_b)
    R = Za.T @ Zb / len(Za)
    return np.clip(R, -1.0, 1.0)


def hungarian_pairs(R: np.ndarray) -> list[tuple[int, int, float]]:
    """One-to-one matching of rows to columns maximising the summed ``|R|``.

    Returns ``min(k_a, k_b)`` triples ``(a, b, r)`` (r signed), strongest ``|r|`` first;
    with different widths the surplus codes of the wider side stay unpaired.
    """
    from scipy.optimize import linear_sum_assignment

    A = np.abs(np.asarray(R, dtype=np.float64))
    rows, cols = linear_sum_assignment(-A)
    pairs = [(int(i), int(j), float(R[i, j])) for i, j in zip(rows, cols, strict=True)]
    return sorted(pairs, key=lambda p: (-abs(p[2]), p[0]))


def canonical_correlations(Xa: np.ndarray, Xb: np.ndarray) -> np.ndarray:
    """Canonical correlations between the column spans of ``Xa`` and ``Xb``.

    Parameters
    ----------
    Xa : ndarray of shape (n_samples, p)
    Xb : ndarray of shape (n_samples, q)

    Returns
    -------
    ndarray of shape (min(p, q),), descending, in [0, 1]
        The cosines of the principal angles between the two centred subspaces: 1 when
        one block is a linear map of the other, whatever rotation each side chose.
    """
    Qa = _orthonormal(Xa)
    Qb = _orthonormal(Xb)
    k = min(Qa.shape[1], Qb.shape[1])
    if k == 0:
        return np.zeros(0)
    s = np.linalg.svd(Qa.T @ Qb, compute_uv=False)[:k]
    return np.clip(s, 0.0, 1.0)


def _orthonormal(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    # an SVD, not QR: a rank-deficient block keeps only the directions it really spans
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    if len(s) == 0 or s[0] == 0:
        return U[:, :0]
    return U[:, s > s[0] * 1e-10]


def match_blocks(S_a: np.ndarray, S_b: np.ndarray, blocks_a, blocks_b,
                 pairs: list[tuple[int, int, float]]) -> list[dict]:
    """Match the multi-member blocks of A to subspaces of B by canonical correlations.

    Blocks of A and B (groups of dependent codes, each side's ``blocks_``) are paired
    one to one (Hungarian on the mean canonical correlation). A block of A left without a
    block partner is compared with the span of the B codes that the component matching
    (``pairs``) gave its members (``"partner": "components"``). Singletons are not blocks.

    Returns one dict per multi-member block of A: ``a``, ``b`` (component lists),
    ``partner`` (``"block"`` or ``"components"``), ``canonical`` (descending list) and
    ``mean``; strongest mean first.
    """
    from scipy.optimize import linear_sum_assignment

    ba = [sorted(int(i) for i in b) for b in (blocks_a or []) if len(b) > 1]
    bb = [sorted(int(i) for i in b) for b in (blocks_b or []) if len(b) > 1]
    out: list[dict] = []
    used = set()
    if ba and bb:
        C = [[canonical_correlations(S_a[:, x], S_b[:, y]) for y in bb] for x in ba]
        M = np.array([[c.mean() for c in row] for row in C])
        for i, j in zip(*linear_sum_assignment(-M), strict=True):
            out.append(_block(ba[i], bb[j], "block", C[i][j]))
            used.add(i)
    partner_of = {a: b for a, b, _ in pairs}
    for i, x in enumerate(ba):
        if i in used:
            continue
        y = sorted(partner_of[m] for m in x if m in partner_of)
        cc = canonical_correlations(S_a[:, x], S_b[:, y]) if y else np.zeros(0)
        out.append(_block(x, y, "components", cc))
    return sorted(out, key=lambda d: -(d["mean"] or 0.0))


def _block(a: list[int], b: list[int], partner: str, cc: np.ndarray) -> dict:
    return {"a": a, "b": b, "partner": partner, "canonical": [float(v) for v in cc],
            "mean": float(cc.mean()) if len(cc) else None}
