"""Sparse and non-negative coding as LinearDecompositions: dictionary learning, semi-NMF.

Both learn a dictionary (the decoder) and *encode by solving an optimisation*, so their
``transform`` is not a matrix product:

- ``DictionaryLearning`` (scikit-learn ``MiniBatchDictionaryLearning``): codes are the
  lasso solution ``argmin_z 0.5 ||x' - z D||^2 + alpha ||z||_1`` (coordinate descent,
  scikit-learn's ``sparse_encode``) on the centred data scaled to unit RMS per dimension;
- ``SemiNMF`` (the ``overcomplete`` package, Ding, Li & Jordan 2008; optional extra
  ``clipica[sae]``): non-negative codes, signed dictionary, fitted by multiplicative
  updates on the *uncentred* embeddings as overcomplete does (``mean_`` is zero, an atom
  absorbs the offset). ``transform`` is the non-negative least-squares solution
  ``argmin_{z >= 0} ||x' - z D||^2`` (unique for K <= D and a full-rank dictionary),
  computed in numpy by accelerated projected gradient, so loading and encoding need
  neither torch nor overcomplete.

What the contract's arrays mean here: ``mixing_`` (D, K) is the dictionary in data
units (``inverse_transform(codes) = codes @ mixing_.T + mean_``); ``components_`` (K, D)
is its pseudo-inverse, the least-squares *linear read-out* that naming and interventions
use (``components_ @ mixing_ = I`` when K <= D). The codes themselves come from the
sparse / non-negative solvers, never from ``components_``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import ClassVar

import numpy as np

from clipica.decompositions.base import LinearDecomposition
from clipica.errors import InputError


def _rms_scale(Xc: np.ndarray) -> float:
    """Root mean square per dimension of centred data (1.0 for all-zero data)."""
    s = float(np.sqrt(np.mean(Xc * Xc)))
    return s if s > 0 else 1.0


def nnls_codes(Y: np.ndarray, Dct: np.ndarray, n_iter: int = 300) -> np.ndarray:
    """``argmin_{Z >= 0} ||Y - Z Dct||_F^2`` for Y (n, D), Dct (K, D), by FISTA.

    Step 1/L with L the largest eigenvalue of ``Dct Dct'``; start from the clipped
    least-squares solution. Rows are independent problems solved together.
    """
    G = Dct @ Dct.T
    L = float(np.linalg.eigvalsh(G)[-1]) or 1.0
    B = Y @ Dct.T
    Z = np.maximum(Y @ np.linalg.pinv(Dct), 0.0)
    V, t = Z.copy(), 1.0
    for _ in range(n_iter):
        Z_new = np.maximum(V - (V @ G - B) / L, 0.0)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        V = Z_new + ((t - 1.0) / t_new) * (Z_new - Z)
        Z, t = Z_new, t_new
    return Z


class _CodingDecomposition(LinearDecomposition):
    """Shared parts: the data scale, the pseudo-inverse read-out, a solver-based transform."""

    linear_encoder = False
    exact_inverse = False  # K > D: the pseudo-inverse read-out cannot invert the dictionary

    def _set_dictionary(self, mean, scale, atoms) -> None:
        """``atoms`` (K, D) in scaled units -> mixing_ (D, K) in data units, read-out."""
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = float(scale)
        self.dictionary_ = np.ascontiguousarray(atoms, dtype=np.float64)
        self.mixing_ = np.ascontiguousarray(self.dictionary_.T * self.scale_)
        self.components_ = np.ascontiguousarray(np.linalg.pinv(self.mixing_))

    def transform(self, X):
        """Codes (n_samples, n_components) from the solver (see the module docstring)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        Y = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return self._encode(Y).astype(X.dtype, copy=False)


class DictionaryLearning(_CodingDecomposition):
    """Sparse dictionary learning (scikit-learn ``MiniBatchDictionaryLearning``).

    Parameters
    ----------
    n_components : int or None, default=None
        K atoms (None: n_features; K > D is an overcomplete dictionary).
    alpha : float, default=1.0
        L1 penalty, on data centred and scaled to unit RMS per dimension.
    max_iter : int, default=20
        Passes over the data.
    batch_size : int, default=256
    random_state : int or None, default=0

    Attributes
    ----------
    mean_ (D,), scale_ (float), dictionary_ (K, D) unit-norm atoms in scaled units,
    mixing_ (D, K) = ``dictionary_.T * scale_``, components_ (K, D) its pseudo-inverse.
    """

    kind = "dict"
    format_tag = "clipica.dict/1"
    _array_names = ("mean_", "components_", "mixing_", "dictionary_")
    _state_names = ("scale_",)

    def __init__(self, n_components=None, *, alpha=1.0, max_iter=20, batch_size=256, random_state=0):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state

    _parameter_constraints: ClassVar[dict] = {
        **LinearDecomposition._parameter_constraints,
        "alpha": ["positive_real"], "max_iter": ["positive_int"], "batch_size": ["positive_int"],
    }

    def _check_n_components(self, n: int, d: int) -> int:
        k = self.n_components if self.n_components is not None else d
        if k > n:
            raise InputError(f"n_components={k} is larger than n_samples={n}.")
        return k  # K > D allowed: an overcomplete dictionary

    def _fit(self, X, k):
        from sklearn.decomposition import MiniBatchDictionaryLearning

        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        scale = _rms_scale(X - mean)
        with _one_convergence_warning("dictionary learning"):
            dl = MiniBatchDictionaryLearning(
                n_components=k, alpha=self.alpha, max_iter=self.max_iter,
                batch_size=min(self.batch_size, X.shape[0]), random_state=self.random_state,
                fit_algorithm="cd", transform_algorithm="lasso_cd", transform_alpha=self.alpha,
            ).fit((X - mean) / scale)
        self.n_iter_ = int(dl.n_iter_)
        self._set_dictionary(mean, scale, dl.components_)

    def _encode(self, Y):
        from sklearn.decomposition import sparse_encode

        with _one_convergence_warning("sparse coding"):
            return sparse_encode(Y, self.dictionary_, algorithm="lasso_cd", alpha=self.alpha,
                                 max_iter=1000)


@contextlib.contextmanager
def _one_convergence_warning(what: str):
    """scikit-learn's lasso warns once per unconverged batch of rows (dozens of lines per
    fit); gather them into one warning that says how many, and pass other warnings on."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    n = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if n:
        warnings.warn(f"{what}: the lasso did not reach its tolerance in {n} coordinate-descent "
                      "call(s); the codes are approximate there (raise max_iter or alpha for "
                      "exact ones)", ConvergenceWarning, stacklevel=3)


class SemiNMF(_CodingDecomposition):
    """Semi-NMF from the ``overcomplete`` package: non-negative codes, signed atoms.

    Parameters
    ----------
    n_components : int or None, default=None
        K (None: n_features); at most n_features (the codes are then unique).
    max_iter : int, default=300
        Multiplicative-update iterations of the fit.
    random_state : int or None, default=0
        Seeds overcomplete's random initialisation (torch's generator).

    Attributes
    ----------
    mean_ (D,) zeros, scale_, dictionary_ (K, D), mixing_ (D, K), components_ (K, D).
    """

    kind = "semi_nmf"
    format_tag = "clipica.semi_nmf/1"
    _array_names = ("mean_", "components_", "mixing_", "dictionary_")
    _state_names = ("scale_",)

    def __init__(self, n_components=None, *, max_iter=300, random_state=0):
        self.n_components = n_components
        self.max_iter = max_iter
        self.random_state = random_state

    def _check_n_components(self, n: int, d: int) -> int:
        k = super()._check_n_components(n, d)
        return d if k is None else k

    def _fit(self, X, k):
        from clipica.decompositions._overcomplete import import_overcomplete

        oc = import_overcomplete()
        import torch

        X = np.asarray(X, dtype=np.float64)
        mean = np.zeros(X.shape[1])
        scale = _rms_scale(X)
        if self.random_state is not None:
            torch.manual_seed(int(self.random_state))
        model = oc.optimization.SemiNMF(nb_concepts=k, solver="mu")
        _, D = model.fit(torch.as_tensor(X / scale, dtype=torch.float32), max_iter=self.max_iter)
        atoms = D.detach().cpu().numpy().astype(np.float64)
        norms = np.linalg.norm(atoms, axis=1, keepdims=True)
        # unit-norm atoms: a code's size is then comparable across atoms (the scale moves to Z)
        self._set_dictionary(mean, scale, atoms / np.where(norms > 0, norms, 1.0))

    def _encode(self, Y):
        return nnls_codes(Y, self.dictionary_)
