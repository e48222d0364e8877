"""Planted block structure for the block and categorical-factor tests.

Sources (n, 9): a 4-valued categorical at the vertices of a tetrahedron plus noise (3
dims: pairwise independent coordinates, only the triple is dependent, the XOR pattern
ICA leaves on hair colour), a 3-valued categorical at the vertices of a triangle plus noise
(2 dims: dependent through third-order pair cumulants), and
four independent singletons (Laplace, uniform, exponential, Bernoulli + noise); mixed
into 15 dimensions by a random matrix.
"""

from __future__ import annotations

import numpy as np

TETRAHEDRON = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)
#: a 3-valued categorical: an equilateral triangle in 2-D (dependence of 3rd order, pairwise)
TRIANGLE = np.array([[0.0, 1.0], [0.866, -0.5], [-0.866, -0.5]]) * 1.4
TRUE_BLOCKS = [[0, 1, 2], [3, 4], [5], [6], [7], [8]]


def planted(n: int, seed: int):
    """Return ``X (n, 15), S (n, 9), A (15, 9), block_of_source (9,), classes (n,)``."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 4, n)
    third = rng.integers(0, 3, n)
    S = np.hstack(
        [
            TETRAHEDRON[classes] + 0.15 * rng.normal(size=(n, 3)),
            TRIANGLE[third] + 0.15 * rng.normal(size=(n, 2)),
            rng.laplace(size=(n, 1)),
            rng.uniform(-1, 1, (n, 1)),
            rng.exponential(size=(n, 1)),
            (rng.random((n, 1)) < 0.3) + 0.2 * rng.normal(size=(n, 1)),
        ]
    )
    block_of = np.empty(S.shape[1], dtype=np.int64)
    for b, members in enumerate(TRUE_BLOCKS):
        block_of[members] = b
    A = rng.normal(size=(15, S.shape[1]))
    X = S @ A.T + 0.01 * rng.normal(size=(n, 15))
    return X, S, A, block_of, classes


def true_block_of_estimates(unmixing: np.ndarray, A: np.ndarray, block_of: np.ndarray) -> np.ndarray:
    """For each estimated component, the true block that carries most of its energy.

    ``unmixing`` (K, D) maps centred data to estimates, so ``unmixing @ A`` (K, n_sources)
    says how much of each true source every estimate holds.
    """
    M = unmixing @ A
    energy = np.stack([(M[:, block_of == b] ** 2).sum(axis=1) for b in range(block_of.max() + 1)], 1)
    return energy.argmax(axis=1)
