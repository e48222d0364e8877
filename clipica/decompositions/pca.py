"""``PCA``: the top-K principal directions, whitened, as a :class:`LinearDecomposition`.

The same whitening ICA starts from (:func:`clipica.decompositions._whitening.whiten`:
covariance with ddof=0 accumulated in chunks, float64 eigendecomposition, each
eigenvector's largest-magnitude loading positive), so PCA codes are exactly ICA's
whitened data before its rotation: unit variance over the fit rows, ordered by
decreasing explained variance. The one PCA of clipica: the probes' PCA baseline and the
random-rotation baseline are built on it.
"""

from __future__ import annotations

import numpy as np

from clipica.decompositions.base import LinearDecomposition
from clipica.errors import InputError


def fit_whitening(X, n_components: int | None):
    """Mean, covariance and PCA whitening of ``X`` (n_samples, n_features) as ICA does it.

    Returns a :class:`clipica.decompositions._whitening.Whitening` (matrix (K, D),
    eigenvalues (K,), mean (D,), total variance, rank); InputError when K exceeds the
    numerical rank.
    """
    from clipica.decompositions import _whitening as F

    with F.Runner("cpu", n_entries=X.shape[0] * X.shape[1]) as runner:
        mean, cov = F.mean_and_covariance(X, runner)
    return F.whiten(mean, cov, n_components, dtype=X.dtype)


class PCA(LinearDecomposition):
    """Principal component analysis with unit-variance (whitened) codes.

    Parameters
    ----------
    n_components : int or None, default=None
        K. None keeps every direction above the numerical rank of the covariance.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    components_ : ndarray of shape (n_components, n_features)
        ``diag(explained_variance_)^-1/2 @ V_K'``: codes have unit variance (ddof=0).
    mixing_ : ndarray of shape (n_features, n_components)
        ``V_K @ diag(explained_variance_)^1/2``.
    explained_variance_ : ndarray of shape (n_components,)
        Variances (data units², ddof=0) of the K directions, descending.
    explained_variance_ratio_ : ndarray of shape (n_components,)
    """

    kind = "pca"
    format_tag = "clipica.pca/1"
    _array_names = ("mean_", "components_", "mixing_", "explained_variance_", "explained_variance_ratio_")

    def __init__(self, n_components=None):
        self.n_components = n_components

    def _fit(self, X, k):
        w = fit_whitening(X, k)
        lam = w.eigenvalues
        self.mean_ = w.mean.copy()
        self.components_ = np.ascontiguousarray(w.matrix)
        # whitening rows are v_i / sqrt(lam_i): the inverse on the subspace is v_i * sqrt(lam_i)
        self.mixing_ = np.ascontiguousarray(w.matrix.T * lam)
        self.explained_variance_ = lam.copy()
        tv = w.total_variance
        self.explained_variance_ratio_ = lam / tv if tv > 0 else np.zeros_like(lam)


def _check_random_state(rs) -> None:
    if not (rs is None or (isinstance(rs, (int, np.integer)) and not isinstance(rs, bool))):
        raise InputError(f"random_state must be an integer or None; got random_state={rs!r}.")
