"""Discretisation and plug-in mutual information shared by MIG and modularity."""

from __future__ import annotations

import numbers

import numpy as np

from clipica.errors import InputError


def check_n_bins(n_bins) -> int:
    """``n_bins`` as an int >= 2, or :class:`InputError` naming the parameter."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 2:
        raise InputError(
            f"n_bins must be an integer >= 2 (bins per continuous column); got {n_bins!r}."
        )
    return int(n_bins)


def discretise(x: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """Integer bin labels for each column of ``x`` (n_samples, n_columns).

    A column with at most ``n_bins`` distinct values keeps one bin per value (binary
    attributes and discrete factors stay exact). Otherwise it is cut into ``n_bins``
    equal-frequency bins at its empirical quantiles; tied values always share a bin,
    so heavily tied columns can end up with fewer bins.
    """
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        col = x[:, j]
        uniq, inv = np.unique(col, return_inverse=True)
        if uniq.size <= n_bins:
            out[:, j] = inv
            continue
        edges = np.quantile(col, np.arange(1, n_bins) / n_bins)
        out[:, j] = np.searchsorted(edges, col, side="right")
    return out


def entropy(labels: np.ndarray) -> np.ndarray:
    """Plug-in entropy in nats of each column of integer labels."""
    out = np.empty(labels.shape[1])
    for j in range(labels.shape[1]):
        p = np.bincount(labels[:, j]) / labels.shape[0]
        p = p[p > 0]
        out[j] = float(-(p * np.log(p)).sum())
    return out


def _one_hot(labels: np.ndarray):
    """Sparse one-hot (n, sum of levels) of integer label columns, and each column's offset."""
    from scipy import sparse

    n, p = labels.shape
    sizes = labels.max(axis=0) + 1
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cols = (labels + offsets).ravel()
    rows = np.repeat(np.arange(n), p)
    M = sparse.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(n, int(sizes.sum())))
    return M, offsets


def mutual_information(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plug-in mutual information (nats) of every column of ``a`` with every column of ``b``.

    ``a`` (n, p) and ``b`` (n, q) hold non-negative integer labels; returns (p, q).
    All contingency tables at once: one sparse product of the one-hot encodings gives
    every joint count, and each (code, factor) block sums to that pair's information.
    """
    n = a.shape[0]
    A, oa = _one_hot(a)
    B, ob = _one_hot(b)
    joint = (A.T @ B).toarray() / n
    pa = np.asarray(A.sum(axis=0)).ravel() / n
    pb = np.asarray(B.sum(axis=0)).ravel() / n
    nz = joint > 0
    terms = np.zeros_like(joint)
    terms[nz] = joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])
    out = np.add.reduceat(np.add.reduceat(terms, oa, axis=0), ob, axis=1)
    return np.maximum(out, 0.0)


def is_binary(col: np.ndarray) -> bool:
    """True when a column holds only the values 0 and 1 (both present or not)."""
    return bool(np.all((col == 0) | (col == 1)))
