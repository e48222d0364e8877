"""The edit: move one component of an embedding, leaving everything else unchanged.

The math (shift mode, the default). With a fitted decomposition (any
:class:`~clipica.decompositions.LinearDecomposition`), ``W = components_`` of
shape (K, D) maps centred embeddings to unit-variance sources,
``s = W (x - mean_)``, and ``A = mixing_`` of shape (D, K) satisfies ``W A = I_K``
(``A`` is the pseudo-inverse of ``W``). An embedding splits into its part inside
the K-dimensional component subspace and a residual outside it::

    x = mean_ + A s + r,        r = (I - A W)(x - mean_)

Shifting component i by ``alpha`` standard deviations is::

    x' = x + alpha * sigma_i * A[:, i]

so that ``W (x' - mean_) = s + alpha * sigma_i * e_i`` (only source i moves, by
exactly ``alpha * sigma_i``) and ``(I - A W)(x' - mean_) = r`` (the residual is
untouched, because ``(I - A W) A = 0``). ``alpha = 0`` returns ``x`` bit for bit.

``sigma_i`` is the standard deviation of source i measured on reference rows (the
store's embeddings), never assumed from a whitening convention: scikit-learn's
``whiten`` default changed in 1.3 and silently rescaled every component by
``sqrt(N)``, which made the original papers' traversal ranges meaningless. With
clipica's unit-variance ICA ``sigma_i`` is about 1, and recording it keeps the
units honest.

Set mode replaces source i by ``c_i + alpha * sigma_i`` (``c_i`` its mean on the
reference rows): ``x' = x + (c_i + alpha * sigma_i - s_i) A[:, i]``; the other
sources and the residual are again unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipica.errors import InputError

DEFAULT_ALPHAS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


def decomposition_arrays(ica: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean_ (D,), components_ (K, D), mixing_ (D, K)) of a fitted decomposition, float64, validated.

    Only the :class:`~clipica.decompositions.LinearDecomposition` contract is read.
    """
    for name in ("mean_", "components_", "mixing_"):
        if not hasattr(ica, name):
            raise InputError(
                f"the decomposition has no {name!r}: pass a fitted clipica decomposition "
                "(or an object with mean_, components_ and mixing_)"
            )
    mean = np.asarray(ica.mean_, dtype=np.float64)
    W = np.asarray(ica.components_, dtype=np.float64)
    A = np.asarray(ica.mixing_, dtype=np.float64)
    K, D = W.shape
    if mean.shape != (D,) or A.shape != (D, K):
        raise InputError(
            f"inconsistent decomposition shapes: mean_ {mean.shape}, components_ {W.shape}, "
            f"mixing_ {A.shape}; expected (D,), (K, D), (D, K)"
        )
    return mean, W, A


def _check_component(component: int, K: int) -> int:
    if isinstance(component, bool) or not isinstance(component, (int, np.integer)):
        raise InputError(f"component must be an integer index, got {component!r}")
    if not 0 <= int(component) < K:
        raise InputError(
            f"component {component} is out of range: this decomposition has K={K} components, "
            f"so pass an index from 0 to {K - 1}"
        )
    return int(component)


def _as_matrix(X: Any, D: int, what: str = "X") -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != D:
        raise InputError(f"{what} must have shape (n_samples, {D}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise InputError(f"{what} contains NaN or infinite values")
    return X


def component_stats(
    ica: Any, reference: Any, *, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every source on ``reference`` rows.

    Parameters
    ----------
    ica : fitted ICA (``mean_``, ``components_``).
    reference : array of shape (n_samples, D), e.g. the store's embeddings
        (streamed in chunks, so a memmap is fine).

    Returns
    -------
    mean, std : ndarrays of shape (K,), in source units.
    """
    mean, W, _ = decomposition_arrays(ica)
    K, D = W.shape
    n = len(reference)
    if n < 2:
        raise InputError(
            "need at least 2 reference rows to measure a component's standard deviation"
        )
    from clipica._linalg import row_chunks

    s1 = np.zeros(K)
    s2 = np.zeros(K)
    for _, block in row_chunks(reference, chunk):  # memory: one block, whatever n
        S = (np.asarray(_as_matrix(block, D, "reference"), dtype=np.float64) - mean) @ W.T
        s1 += S.sum(0)
        s2 += (S * S).sum(0)
    mu = s1 / n
    var = np.maximum(s2 / n - mu * mu, 0.0) * n / (n - 1)
    return mu, np.sqrt(var)


@dataclass
class Traversal:
    """Edited embeddings for one component swept over ``alphas``.

    Attributes
    ----------
    component : int
    alphas : ndarray (A,) -- steps in units of the component's standard deviation.
    sigma : float -- standard deviation of the component (source units) used as the unit.
    center : float -- mean of the component on the reference rows (used by set mode).
    mode : "shift" or "set".
    original : ndarray (N, D) -- the unedited embeddings.
    embeddings : ndarray (A, N, D) -- edited embeddings, float32 (or the input dtype).
    sources : ndarray (A, N, K) -- their ICA sources (float64).
    rows : ndarray (N,) of int or None -- store row indices of the originals.
    """

    component: int
    alphas: np.ndarray
    sigma: float
    center: float
    mode: str
    original: np.ndarray
    embeddings: np.ndarray
    sources: np.ndarray
    rows: np.ndarray | None = None


def edit_components(
    X: Any,
    ica: Any,
    component: int,
    alphas: Any = DEFAULT_ALPHAS,
    *,
    mode: str = "shift",
    sigma: float | None = None,
    center: float | None = None,
    reference: Any = None,
    rows: Any = None,
) -> Traversal:
    """Shift (or set) ICA component ``component`` of rows ``X`` by ``alpha`` std units.

    Shift: ``x' = x + alpha * sigma_i * A[:, i]``; set:
    ``x' = x + (c_i + alpha * sigma_i - s_i(x)) * A[:, i]`` (see the module
    docstring for why only source i moves and the residual outside the
    component subspace is unchanged).

    Parameters
    ----------
    X : array of shape (N, D) -- embeddings to edit (same space the ICA was fitted in).
    ica : fitted ICA with ``mean_`` (D,), ``components_`` (K, D), ``mixing_`` (D, K).
    component : index i in [0, K).
    alphas : sequence of A floats -- steps in units of the component's std.
    mode : "shift" (default) or "set".
    sigma, center : the unit and the set-mode origin, in source units. When None
        they are measured on ``reference`` (or on ``X`` when no reference is
        given and N >= 2; with a single row and no reference sigma defaults to
        1.0 and center to 0.0, the unit-variance convention).
    reference : array (M, D), optional -- rows defining the component's scale.
    rows : array (N,) of int, optional -- store indices of ``X``, kept for retrieval.

    Returns
    -------
    Traversal with ``embeddings`` of shape (A, N, D) in X's float dtype.
    """
    mean, W, A = decomposition_arrays(ica)
    K, D = W.shape
    i = _check_component(component, K)
    if mode not in ("shift", "set"):
        raise InputError(f"mode must be 'shift' or 'set', got {mode!r}")
    X = _as_matrix(X, D)
    alphas_arr = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if alphas_arr.size == 0 or not np.all(np.isfinite(alphas_arr)):
        raise InputError(f"alphas must be a non-empty list of finite numbers, got {alphas!r}")

    if sigma is None or (center is None and mode == "set"):
        ref = reference if reference is not None else (X if len(X) >= 2 else None)
        if ref is not None:
            mu_all, sd_all = component_stats(ica, ref)
            mu_i, sd_i = float(mu_all[i]), float(sd_all[i])
        else:
            mu_i, sd_i = 0.0, 1.0
        sigma = sd_i if sigma is None else sigma
        center = mu_i if center is None else center
    center = 0.0 if center is None else float(center)
    sigma = float(sigma)
    if not sigma > 0 or not math.isfinite(sigma):
        raise InputError(
            f"component {i} has standard deviation {sigma} on the reference rows; cannot use it as a unit"
        )

    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float32
    X64 = np.asarray(X, dtype=np.float64)
    S = (X64 - mean) @ W.T  # (N, K)
    a_i = A[:, i]
    out = np.empty((alphas_arr.size, *X.shape), dtype=dtype)
    src = np.empty((alphas_arr.size, X.shape[0], K))
    for j, alpha in enumerate(alphas_arr):
        if mode == "shift":
            step = np.full(len(X), alpha * sigma)  # (N,)
        else:
            step = center + alpha * sigma - S[:, i]
        out[j] = (X64 + step[:, None] * a_i[None, :]).astype(dtype, copy=False)
        Sj = S.copy()
        Sj[:, i] += step
        src[j] = Sj
    row_arr = None if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if row_arr is not None and row_arr.shape[0] != X.shape[0]:
        raise InputError(f"rows has {row_arr.shape[0]} entries but X has {X.shape[0]} rows")
    return Traversal(
        component=i,
        alphas=alphas_arr,
        sigma=sigma,
        center=center,
        mode=mode,
        original=np.asarray(X),
        embeddings=out,
        sources=src,
        rows=row_arr,
    )
