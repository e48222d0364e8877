"""``Varimax``: factor analysis with a varimax rotation (scikit-learn) as a LinearDecomposition.

Factor analysis models ``x = W' z + mean + e`` with ``z ~ N(0, I_K)`` and diagonal noise
``e ~ N(0, diag(psi))``; the varimax rotation of the loadings ``W`` (K, D) maximises the
variance of the squared loadings, the classic psychometric route to "one factor per
column" without ICA's non-Gaussianity. The codes are the posterior means
``E[z | x] = (x - mean) Psi^-1 W' (I + W Psi^-1 W')^-1``: a *linear* encoder, so
``components_`` (K, D) is that matrix and ``codes = (X - mean_) @ components_.T`` exactly
as scikit-learn's ``FactorAnalysis.transform``. ``mixing_ = W'`` (D, K) decodes codes to
the model's mean prediction ``codes @ mixing_.T + mean_``.

The EM runs on ``2D`` rows with the data's covariance (:func:`_covariance_rows`), not on
the n rows: same model, cost independent of n. Each factor's sign is fixed (largest
loading positive, :func:`canonical_signs`). With LAPACK's SVD the fit is
deterministic (``random_state`` is unused by it), so its seed-to-seed stability is 1.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from clipica.decompositions.base import LinearDecomposition


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

    _parameter_constraints: ClassVar[dict] = {**LinearDecomposition._parameter_constraints,
                                              "max_iter": ["positive_int"]}

    def _fit(self, X, k):
        from sklearn.decomposition import FactorAnalysis

        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        rows = _covariance_rows(X, mean)
        fa = FactorAnalysis(
            n_components=k, rotation="varimax", max_iter=self.max_iter,
            random_state=self.random_state, svd_method="lapack",
            # scikit-learn's log-likelihood (and its stopping rule, tol = 1e-2 on it) is a
            # sum over rows: scaled to the 2D rows, EM stops at the same iteration as on X
            tol=1e-2 * rows.shape[0] / X.shape[0],
        ).fit(rows)
        W = canonical_signs(fa.components_)  # (K, D), rotated
        psi = fa.noise_variance_
        Wpsi = W / psi
        cov_z = np.linalg.inv(np.eye(W.shape[0]) + Wpsi @ W.T)
        self.mean_ = mean
        self.components_ = np.ascontiguousarray((Wpsi.T @ cov_z).T)
        self.mixing_ = np.ascontiguousarray(W.T)
        self.noise_variance_ = psi.copy()


def canonical_signs(W: np.ndarray) -> np.ndarray:
    """Rows of ``W`` (K, D) flipped so that each row's largest-magnitude entry is positive.

    A factor's sign is arbitrary (the SVD inside EM picks one); fixing it makes the fit
    the same whichever rows the SVD saw.
    """
    idx = np.argmax(np.abs(W), axis=1)
    sign = np.where(W[np.arange(W.shape[0]), idx] < 0, -1.0, 1.0)
    return W * sign[:, None]


def _covariance_rows(X: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``2D`` rows (2D, D) with mean 0 and the same covariance (ddof 0) as ``X`` (n, D).

    Factor analysis is a Gaussian model: scikit-learn's EM sees the data only through
    the SVD of the scaled, centred rows, whose singular values and right vectors depend
    on the covariance alone. ``sqrt(D) * [L; -L]`` with ``L`` the symmetric square root of
    the covariance has that covariance, so the fit is the same as on ``X`` while every EM
    step costs O(D^3) instead of O(n D^2) (20 000 x 64 demo rows: ~1000x fewer flops per step).
    """
    d = X.shape[1]
    cov = np.zeros((d, d))
    for start in range(0, X.shape[0], 8192):  # chunks bound the centred copy
        C = X[start : start + 8192] - mean
        cov += C.T @ C
    cov /= X.shape[0]
    w, V = np.linalg.eigh(cov)
    L = (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T
    return np.sqrt(d) * np.vstack([L, -L])
