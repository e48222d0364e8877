"""Frozen invertible MLP mixings ``x = g(z)`` (numpy; no training, so no torch).

``g(z) = W_L lrelu(... lrelu(W_1 z))``: bias-free square layers with
leaky-ReLU (slope 0.2) between them, as in Daunhawer et al. and Zimmermann et
al. Every weight matrix is resampled until its condition number is below a
threshold, so the map is invertible and not numerically degenerate;
:meth:`InvertibleMLP.inverse` inverts it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipica.errors import InputError

__all__ = ["InvertibleMLP", "WEIGHTS", "make_mixing", "make_mixings"]


def _lrelu(x: np.ndarray, slope: float) -> np.ndarray:
    return np.where(x >= 0, x, slope * x)


def _lrelu_inv(y: np.ndarray, slope: float) -> np.ndarray:
    return np.where(y >= 0, y, y / slope)


@dataclass(frozen=True)
class InvertibleMLP:
    """A frozen invertible MLP.

    Attributes
    ----------
    weights : tuple of ndarrays, each of shape (dim, dim); layer l maps h -> h @ W_l.T.
    slope : negative slope of the leaky ReLU between layers.
    """

    weights: tuple
    slope: float = 0.2

    @property
    def dim(self) -> int:
        return int(self.weights[0].shape[0])

    def condition_numbers(self) -> list[float]:
        return [float(np.linalg.cond(w)) for w in self.weights]

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Map latents (n, dim) to observations (n, dim)."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise InputError(f"expected latents of shape (n, {self.dim}), got {z.shape}.")
        h = z
        for i, w in enumerate(self.weights):
            h = h @ w.T
            if i < len(self.weights) - 1:
                h = _lrelu(h, self.slope)
        return h

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Invert the mixing: observations (n, dim) -> latents (n, dim)."""
        h = np.asarray(x, dtype=np.float64)
        for i, w in reversed(list(enumerate(self.weights))):
            if i < len(self.weights) - 1:
                h = _lrelu_inv(h, self.slope)
            h = np.linalg.solve(w, h.T).T
        return h


def _condition_threshold(dim: int, rng: np.random.Generator, percentile: float) -> float:
    # the threshold is a percentile of the condition numbers of random
    # row-normalised Gaussian matrices of this size (the recipe of the original
    # code), so it scales sensibly with the dimension
    conds = [np.linalg.cond(_row_normalised(rng.standard_normal((dim, dim)))) for _ in range(1000)]
    return float(np.percentile(conds, percentile))


def _row_normalised(w: np.ndarray) -> np.ndarray:
    # unit-norm rows keep activations on a constant scale through the layers
    return w / np.linalg.norm(w, axis=1, keepdims=True)


WEIGHTS = ("gaussian", "orthogonal")


def make_mixing(dim: int, n_layers: int = 3, seed: int = 0, *, slope: float = 0.2,
                weights: str = "gaussian", cond_percentile: float = 25.0,
                max_cond: float | None = None) -> InvertibleMLP:
    """A random frozen invertible MLP on R^dim, reproducible by ``seed``.

    Parameters
    ----------
    dim : input = output dimension.
    n_layers : number of square weight matrices (>= 1).
    seed : the same seed gives the same weights.
    weights : "gaussian": i.i.d. normal entries, rows scaled to unit norm, the
        matrix resampled until its condition number is below the bound (the
        original papers' recipe); "orthogonal": Haar-random orthogonal matrices
        (condition number 1; the map stays nonlinear through the leaky ReLUs).
    cond_percentile : with "gaussian", accept a matrix only if its condition
        number is below this percentile of random matrices of the same size
        (ignored if ``max_cond`` is given).
    max_cond : explicit condition-number bound for "gaussian".
    """
    if dim < 1 or n_layers < 1:
        raise InputError(f"dim and n_layers must be >= 1, got dim={dim}, n_layers={n_layers}.")
    if not 0.0 < slope <= 1.0:
        raise InputError(f"slope must be in (0, 1], got {slope}.")
    if weights not in WEIGHTS:
        raise InputError(f"weights must be one of {list(WEIGHTS)}, got {weights!r}.")
    rng = np.random.default_rng([int(seed), 7003, dim])
    if dim == 1:
        return InvertibleMLP(tuple(np.ones((1, 1)) for _ in range(n_layers)), slope)
    if weights == "orthogonal":
        mats = []
        for _ in range(n_layers):
            q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
            mats.append(q * np.sign(np.diag(r)))  # sign fix makes q Haar-distributed
        return InvertibleMLP(tuple(mats), slope)
    bound = float(max_cond) if max_cond is not None else _condition_threshold(dim, rng, cond_percentile)
    weights = []
    for _ in range(n_layers):
        for _attempt in range(100_000):
            w = _row_normalised(rng.standard_normal((dim, dim)))
            if np.linalg.cond(w) <= bound:
                break
        else:  # pragma: no cover - only for absurd bounds
            raise InputError(f"could not draw a {dim}x{dim} matrix with condition number <= {bound}.")
        weights.append(w)
    return InvertibleMLP(tuple(weights), slope)


def make_mixings(dims: tuple[int, int], n_layers: int = 3, seed: int = 0,
                 share: bool = False, **kwargs) -> tuple[InvertibleMLP, InvertibleMLP]:
    """Two mixings, one per modality: distinct (different seeds) unless ``share``.

    Sharing needs equal dimensions. ``kwargs`` go to :func:`make_mixing`.
    """
    if share:
        if dims[0] != dims[1]:
            raise InputError(f"a shared mixing needs equal view dimensions, got {dims}.")
        g = make_mixing(dims[0], n_layers, seed, **kwargs)
        return g, g
    return (make_mixing(dims[0], n_layers, 2 * int(seed), **kwargs),
            make_mixing(dims[1], n_layers, 2 * int(seed) + 1, **kwargs))
