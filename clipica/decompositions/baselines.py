"""Baseline decompositions: a random rotation of the whitened data, and the raw dimensions.

``RandomRotation`` spans the same K-dimensional principal subspace as ICA and PCA with
the same unit variances, rotated by a seeded uniformly random orthogonal K x K matrix
(QR of a Gaussian matrix with the sign fix of Mezzadri 2007): everything ICA has except
the independence objective. ``Identity`` keeps every embedding dimension as its own code
(K = D, mean removed), the "raw" baseline.
"""

from __future__ import annotations

import numpy as np

from clipica.decompositions.base import LinearDecomposition
from clipica.decompositions.pca import _check_random_state, fit_whitening
from clipica.errors import InputError


def random_rotation(k: int, random_state) -> np.ndarray:
    """A uniformly random orthogonal (k, k) matrix from ``np.random.default_rng(random_state)``."""
    rng = np.random.default_rng(random_state)
    q, r = np.linalg.qr(rng.normal(size=(k, k)))
    return q * np.sign(np.diag(r))


class RandomRotation(LinearDecomposition):
    """The PCA-whitened top-K subspace, randomly rotated (seeded).

    Parameters
    ----------
    n_components : int or None, default=None
        K; None keeps every direction above the numerical rank.
    random_state : int or None, default=0
        Seeds the rotation.

    Attributes
    ----------
    mean_, components_ (K, D), mixing_ (D, K)
        ``components_ = rotation_.T @ W`` with ``W`` the PCA whitening (K, D), so
        ``codes = whitened @ rotation_``.
    rotation_ : ndarray of shape (n_components, n_components)
    """

    kind = "random_rotation"
    format_tag = "clipica.random_rotation/1"
    _array_names = ("mean_", "components_", "mixing_", "rotation_")

    def __init__(self, n_components=None, *, random_state=0):
        self.n_components = n_components
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        _check_random_state(self.random_state)

    def _fit(self, X, k):
        w = fit_whitening(X, k)
        q = random_rotation(w.matrix.shape[0], self.random_state)
        self.mean_ = w.mean.copy()
        self.rotation_ = q
        self.components_ = np.ascontiguousarray(q.T @ w.matrix)
        self.mixing_ = np.ascontiguousarray((w.matrix.T * w.eigenvalues) @ q)


class Identity(LinearDecomposition):
    """Every raw dimension is a code: ``codes = X - mean_`` (K = D).

    Parameters
    ----------
    n_components : int or None, default=None
        Must be None or n_features (raw dimensions cannot be fewer than the data's).
    """

    kind = "identity"
    format_tag = "clipica.identity/1"

    def __init__(self, n_components=None):
        self.n_components = n_components

    def _check_n_components(self, n, d):
        k = self.n_components
        if k is not None and k != d:
            raise InputError(
                f"Identity keeps every dimension: n_components must be None or n_features={d}; "
                f"got n_components={k}."
            )
        return d

    def _fit(self, X, k):
        n, d = X.shape
        total = np.zeros(d)
        for a in range(0, n, 65_536):  # streams a memmap
            total += np.asarray(X[a : a + 65_536]).sum(axis=0, dtype=np.float64)
        self.mean_ = total / n
        self.components_ = np.eye(d)
        self.mixing_ = np.eye(d)
