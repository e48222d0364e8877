"""Row helpers: unit L2 norm (cosine space), and reading a large row matrix in chunks."""

from __future__ import annotations

import numpy as np


def unit_rows(X, dtype=None) -> np.ndarray:
    """Rows of ``X`` (n_samples, n_features) divided by their L2 norm, in ``dtype`` (default:
    X's floating dtype). Norms below 1e-12 count as 1e-12, so an all-zero row stays zero."""
    X = np.asarray(X, dtype=dtype) if dtype is not None else np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def row_chunks(X, chunk: int = 8192):
    """Yield ``(start, block)`` for consecutive blocks of at most ``chunk`` rows of ``X`` (N, D).

    A whole-file ``np.memmap`` (a store's ``image.f32``) is read with ``np.fromfile`` instead of
    through the mapping: the blocks come from the page cache, so a pass over a 200k-row store
    leaves the process's resident memory at one block (pages touched through a mapping stay
    counted in its RSS). Anything else is sliced. Blocks are plain arrays in X's dtype.
    """
    import mmap

    n = len(X)
    direct = (isinstance(X, np.memmap) and isinstance(getattr(X, "base", None), mmap.mmap)
              and X.ndim == 2 and X.flags.c_contiguous and getattr(X, "filename", None))
    if not direct:
        for start in range(0, n, chunk):
            yield start, np.asarray(X[start : start + chunk])
        return
    row_bytes = X.shape[1] * X.dtype.itemsize
    with open(X.filename, "rb") as f:
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            f.seek(X.offset + start * row_bytes)
            block = np.fromfile(f, dtype=X.dtype, count=rows * X.shape[1])
            yield start, block.reshape(rows, X.shape[1])
