"""Input checks shared by the metrics: samples-first float arrays, matching rows."""

from __future__ import annotations

import numpy as np

from clipica.errors import InputError


def as_matrix(x, name: str) -> np.ndarray:
    """Return ``x`` as a finite float64 array of shape (n_samples, n_columns).

    A 1-d input is read as a single column.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be a 2-d array of shape (n_samples, n_columns); got shape {arr.shape}."
        )
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise InputError(f"{name} needs at least 2 samples and 1 column; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise InputError(
            f"{name} contains {bad} non-finite values (NaN or inf); drop or impute those rows first."
        )
    return arr


def check_pair(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``codes`` (n_samples, n_codes) and ``factors`` (n_samples, n_factors)."""
    c = as_matrix(codes, "codes")
    f = as_matrix(factors, "factors")
    if c.shape[0] != f.shape[0]:
        raise InputError(
            f"codes and factors must have the same number of rows (samples first); "
            f"got codes {c.shape} and factors {f.shape}. Transpose if you passed (n_features, n_samples)."
        )
    return c, f


def column_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``a`` with every column of ``b``.

    Returns (a.shape[1], b.shape[1]). A constant column correlates 0 with everything
    (not NaN): it carries no information about anything.
    """
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na = np.sqrt(np.sum(a * a, axis=0))
    nb = np.sqrt(np.sum(b * b, axis=0))
    # relative tolerance: a column that is constant up to rounding counts as constant
    sa = np.where(na > 1e-12 * max(1.0, float(np.max(na, initial=0.0))), na, np.inf)
    sb = np.where(nb > 1e-12 * max(1.0, float(np.max(nb, initial=0.0))), nb, np.inf)
    corr = (a.T @ b) / np.outer(sa, sb)
    return np.clip(corr, -1.0, 1.0)


def rank_columns(x: np.ndarray) -> np.ndarray:
    """Average ranks (1..n, ties share their mean rank) of each column, shape kept."""
    from scipy.stats import rankdata

    return rankdata(x, axis=0, method="average")


def split_indices(
    n: int, *, train=None, test=None, test_size: float = 0.25, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve a train/test split into two disjoint integer index arrays.

    ``train``/``test`` may be integer indices or boolean masks of length ``n``;
    if neither is given, a seeded random split holds out ``test_size`` of the rows.
    If only one is given, the other is its complement.
    """

    def _idx(v, what):
        v = np.asarray(v)
        if v.dtype == bool:
            if v.shape != (n,):
                raise InputError(f"{what} mask must have length {n}; got shape {v.shape}.")
            return np.flatnonzero(v)
        v = v.astype(np.int64).ravel()
        if v.size and (v.min() < 0 or v.max() >= n):
            raise InputError(f"{what} indices must lie in [0, {n}); got [{v.min()}, {v.max()}].")
        return np.unique(v)

    if train is None and test is None:
        if not 0.0 < test_size < 1.0:
            raise InputError(f"test_size must be in (0, 1); got {test_size}.")
        rng = np.random.default_rng(random_state)
        perm = rng.permutation(n)
        n_test = min(max(1, int(round(test_size * n))), n - 1)
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    all_idx = np.arange(n)
    tr = _idx(train, "train") if train is not None else None
    te = _idx(test, "test") if test is not None else None
    if tr is None:
        tr = np.setdiff1d(all_idx, te)
    if te is None:
        te = np.setdiff1d(all_idx, tr)
    if np.intersect1d(tr, te).size:
        raise InputError(
            "train and test rows overlap; a score on training rows is not a test score."
        )
    if tr.size < 2 or te.size < 2:
        raise InputError(f"need at least 2 train and 2 test rows; got {tr.size} and {te.size}.")
    return tr, te
