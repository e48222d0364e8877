"""``Varimax``: factor analysis with a varimax rotation (scikit-learn) as a LinearDecomposition.

Factor analysis models ``x = W' z + mean + e`` with ``z ~ N(0, I_K)`` and diagonal noise
``e ~ N(0, diag(psi))``; the varimax rotation of the loadings ``W`` (K, D) maximises the
variance of the squared loadings, the classic psychometric route to "one factor per
column" without ICA's non-Gaussianity. The codes are the posterior means
``E[z | x] = (x - mean) Psi^-1 W' (I + W Psi^-1 W')^-1``: a *linear* encoder, so
``components_`` (K, D) is that matrix and ``codes = (X - mean_) @ components_.T`` exactly
as scikit-learn's ``FactorAnalysis.transform``. ``mixing_ = W'`` (D, K) decodes codes to
the model's mean prediction ``codes @ mixing_.T + mean_``.
"""

from __future__ import annotations

import numpy as np

from clipica.decompositions.base import LinearDecomposition
from clipica.errors import InputError


class Varimax(LinearDecomposition):
    """Factor analysis (scikit-learn ``FactorAnalysis``) with a varimax rotation.

    Parameters
    ----------
    n_components : int or None, default=None
        K factors (None: n_features).
    max_iter : int, default=1000
        EM iterations of the factor analysis.
    random_state : int or None, default=0
        Seeds scikit-learn's randomized SVD.

    Attributes
    ----------
    mean_ (D,), components_ (K, D) the posterior-mean encoder, mixing_ (D, K) the rotated
    loadings, noise_variance_ (D,) ``psi``.
    """

    kind = "varimax"
    exact_inverse = False  # posterior means shrink: components_ @ mixing_ != I
    format_tag = "clipica.varimax/1"
    _array_names = ("mean_", "components_", "mixing_", "noise_variance_")

    def __init__(self, n_components=None, *, max_iter=1000, random_state=0):
        self.n_components = n_components
        self.max_iter = max_iter
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise InputError(f"max_iter must be a positive integer; got max_iter={self.max_iter!r}.")

    def _fit(self, X, k):
        from sklearn.decomposition import FactorAnalysis

        fa = FactorAnalysis(
            n_components=k, rotation="varimax", max_iter=self.max_iter,
            random_state=self.random_state, svd_method="lapack",
        ).fit(np.asarray(X, dtype=np.float64))
        W = fa.components_  # (K, D), rotated
        psi = fa.noise_variance_
        Wpsi = W / psi
        cov_z = np.linalg.inv(np.eye(W.shape[0]) + Wpsi @ W.T)
        self.mean_ = fa.mean_.copy()
        self.components_ = np.ascontiguousarray((Wpsi.T @ cov_z).T)
        self.mixing_ = np.ascontiguousarray(W.T)
        self.noise_variance_ = psi.copy()
