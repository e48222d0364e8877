"""Discretisation and plug-in mutual information shared by MIG and modularity."""

from __future__ import annotations

import numpy as np


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


def mutual_information(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plug-in mutual information (nats) of every column of ``a`` with every column of ``b``.

    ``a`` (n, p) and ``b`` (n, q) hold non-negative integer labels; returns (p, q).
    """
    n = a.shape[0]
    out = np.empty((a.shape[1], b.shape[1]))
    for i in range(a.shape[1]):
        ai = a[:, i]
        na = int(ai.max()) + 1
        pa = np.bincount(ai, minlength=na) / n
        for j in range(b.shape[1]):
            bj = b[:, j]
            nb = int(bj.max()) + 1
            joint = np.bincount(ai * nb + bj, minlength=na * nb).reshape(na, nb) / n
            pb = joint.sum(axis=0)
            nz = joint > 0
            out[i, j] = float(np.sum(joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])))
    return np.maximum(out, 0.0)


def is_binary(col: np.ndarray) -> bool:
    """True when a column holds only the values 0 and 1 (both present or not)."""
    return bool(np.all((col == 0) | (col == 1)))
