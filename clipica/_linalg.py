"""Row normalisation: the one helper that scales embeddings to unit L2 norm (cosine space)."""

from __future__ import annotations

import numpy as np


def unit_rows(X, dtype=None) -> np.ndarray:
    """Rows of ``X`` (n_samples, n_features) divided by their L2 norm, in ``dtype`` (default:
    X's floating dtype). Norms below 1e-12 count as 1e-12, so an all-zero row stays zero."""
    X = np.asarray(X, dtype=dtype) if dtype is not None else np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
