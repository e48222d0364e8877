"""Row helpers: unit L2 norm (cosine space), reading a large row matrix in chunks, squared
distances, and the exact RBF kernel-ridge R² (public as :func:`clipica.metrics.r2.kernel_ridge_r2`;
it lives here, in the ground layer, because the tiny model's evaluation in ``models/`` calls it
and ``models/`` sits below ``metrics/``)."""

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

def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n_a, n_b) between the rows of ``a`` (n_a, d) and ``b``
    (n_b, d), clipped at 0 (the expansion can go slightly negative in floating point)."""
    d = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def kernel_ridge_r2(
    x: np.ndarray,
    y: np.ndarray,
    n_train: int,
    alphas=(1e-3, 1e-2, 1e-1, 1.0),
    gamma_factors=(0.3, 1.0, 3.0),
    n_folds: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Held-out R² of RBF kernel ridge regression, one value per target column.

    ``x``: (n, d) features (standardised on the fitting rows here); ``y``: (n, t)
    targets. Rows ``:n_train`` fit, rows ``n_train:`` score. ``gamma`` is
    ``factor / median squared distance``; ``alpha`` and ``gamma`` are chosen per
    target by ``n_folds``-fold CV on the fitting rows. Closed form through one
    eigendecomposition per (fold, gamma), so the whole grid costs a few
    ``n_train``-sized eigensolves (sklearn's GridSearchCV refits every cell).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    mu, sd = x[:n_train].mean(0), x[:n_train].std(0)
    x = (x - mu) / np.where(sd > 0, sd, 1.0)
    d2 = sq_distances(x, x)
    tr = np.arange(n_train)
    med = float(np.median(d2[np.ix_(tr, tr)][np.triu_indices(n_train, 1)])) or 1.0
    folds = np.array_split(np.random.default_rng(seed).permutation(n_train), n_folds)

    def fit_predict(k_fit, k_pred, y_fit):
        """Predictions for every alpha: (n_alpha, n_pred, t). Targets centred on the fit rows."""
        lam, u = np.linalg.eigh(k_fit)
        mean = y_fit.mean(0)
        uy = u.T @ (y_fit - mean)
        kp_u = k_pred @ u
        return np.stack([kp_u @ (uy / (lam + a)[:, None]) + mean for a in alphas])

    cv = np.zeros((len(gamma_factors), len(alphas), y.shape[1]))
    for g, factor in enumerate(gamma_factors):
        k = np.exp(-(factor / med) * d2)
        for va in folds:
            fi = np.setdiff1d(tr, va)
            pred = fit_predict(k[np.ix_(fi, fi)], k[np.ix_(va, fi)], y[fi])
            sse = ((pred - y[va]) ** 2).sum(1)
            cv[g] += sse
    best = cv.reshape(-1, y.shape[1]).argmin(0)
    te = np.arange(n_train, len(x))
    out = np.empty(y.shape[1])
    solved: dict = {}  # one eigendecomposition per chosen gamma, shared by its targets
    for col in range(y.shape[1]):
        g, a = divmod(int(best[col]), len(alphas))
        if g not in solved:
            k = np.exp(-(gamma_factors[g] / med) * d2)
            solved[g] = (k, *np.linalg.eigh(k[np.ix_(tr, tr)]))
        k, lam, u = solved[g]
        yc = y[tr, col] - y[tr, col].mean()
        pred = k[np.ix_(te, tr)] @ (u @ ((u.T @ yc) / (lam + alphas[a]))) + y[tr, col].mean()
        resid = ((y[te, col] - pred) ** 2).sum()
        total = ((y[te, col] - y[te, col].mean()) ** 2).sum()
        out[col] = 1.0 - resid / total if total > 0 else float("nan")
    return out
