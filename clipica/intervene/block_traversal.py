"""Traversals inside a block: a 2-D grid over two components of an independent subspace.

A block (dependent components, e.g. the three that carry hair colour) has no single
axis to sweep: its factor lives in the plane (or space) the components span. A block
traversal moves rows of embeddings over a 2-D grid in that subspace,

    x'(a, b) = x + a * sigma_i * A[:, i] + b * sigma_j * A[:, j],

with ``i, j`` two components of the block (by default its first two; a 3-component
block keeps its third component fixed), ``A = mixing_`` and ``sigma`` each component's
standard deviation on reference rows (the same units as
:func:`clipica.intervene.edit_components`). Nearest store rows of every grid cell
(cosine, the row itself excluded) show what the grid means in images; ``clipica.viz``
draws them (:func:`plot_block_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clipica.errors import InputError

DEFAULT_GRID = (-2.0, -1.0, 0.0, 1.0, 2.0)


@dataclass
class BlockTraversal:
    """A 2-D grid of edits in a block's subspace.

    block : the block's components; axes : the two swept components (i, j);
    alphas : (A,) steps in std units on both axes; sigma : (2,) the units;
    embeddings : (A, A, N, D), cell ``[a, b]`` shifted by ``alphas[a]`` on ``i`` and
    ``alphas[b]`` on ``j``; rows : (N,) store indices of the originals or None;
    neighbours : (A, A, N) nearest store row of each edited embedding, or None.
    """

    block: list[int]
    axes: tuple[int, int]
    alphas: np.ndarray
    sigma: np.ndarray
    embeddings: np.ndarray
    rows: np.ndarray | None = None
    neighbours: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "block": [int(k) for k in self.block], "axes": [int(k) for k in self.axes],
            "alphas": self.alphas.tolist(), "sigma": self.sigma.tolist(),
            "rows": None if self.rows is None else self.rows.tolist(),
            "neighbours": None if self.neighbours is None else self.neighbours.tolist(),
        }


def edit_block(X, decomposition, block, alphas=DEFAULT_GRID, *, axes=None, reference=None,
               rows=None) -> BlockTraversal:
    """Shift rows ``X`` (N, D) over a 2-D grid in ``block``'s subspace (see the module docstring).

    ``axes``: the two components of the block to sweep (default its first two).
    ``reference``: rows giving each component's standard deviation (default ``X``).
    """
    from clipica.intervene import component_stats
    from clipica.intervene.edit import decomposition_arrays

    _, W, A = decomposition_arrays(decomposition)
    K, D = W.shape
    block = [int(k) for k in block]
    if len(block) < 2 or min(block) < 0 or max(block) >= K:
        raise InputError(f"a block traversal needs a block of >= 2 components in [0, {K}); got {block}.")
    axes = tuple(block[:2]) if axes is None else tuple(int(k) for k in axes)
    if len(axes) != 2 or axes[0] == axes[1] or not set(axes) <= set(block):
        raise InputError(f"axes must be two different components of the block {block}; got {axes}.")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != D:
        raise InputError(f"X must have shape (N, {D}); got {X.shape}.")
    al = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if al.size == 0 or not np.all(np.isfinite(al)):
        raise InputError(f"alphas must be a non-empty list of finite numbers; got {alphas!r}.")
    ref = X if reference is None else reference
    if len(ref) < 2:
        raise InputError("need at least 2 reference rows to measure the components' standard deviations.")
    _, sd = component_stats(decomposition, ref)
    sigma = np.array([sd[axes[0]], sd[axes[1]]], dtype=np.float64)
    if not np.all(sigma > 0):
        raise InputError(f"components {axes} have zero standard deviation on the reference rows.")
    X64 = np.asarray(X, dtype=np.float64)
    u, v = A[:, axes[0]] * sigma[0], A[:, axes[1]] * sigma[1]
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float32
    grid = (X64[None, None] + al[:, None, None, None] * u + al[None, :, None, None] * v).astype(dtype)
    row_arr = None if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if row_arr is not None and row_arr.shape[0] != X.shape[0]:
        raise InputError(f"rows has {row_arr.shape[0]} entries but X has {X.shape[0]} rows.")
    return BlockTraversal(block, axes, al, sigma, grid, row_arr)


def retrieve_grid(traversal: BlockTraversal, bank) -> BlockTraversal:
    """Fill ``traversal.neighbours`` with the nearest ``bank`` row of every edited embedding."""
    from clipica.intervene import retrieve_neighbours

    A1, A2, N, D = traversal.embeddings.shape
    q = traversal.embeddings.reshape(-1, D)
    exclude = None
    if traversal.rows is not None:
        exclude = np.broadcast_to(traversal.rows, (A1, A2, N)).reshape(-1)
    idx, _ = retrieve_neighbours(q, bank, k=1, exclude=exclude)
    traversal.neighbours = idx[:, 0].reshape(A1, A2, N)
    return traversal
