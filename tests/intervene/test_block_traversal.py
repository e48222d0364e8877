"""Block traversals: a 2-D grid of edits inside a block's subspace."""

from __future__ import annotations

import numpy as np
import pytest

from clipica.decompositions import make_decomposition
from clipica.errors import InputError
from clipica.intervene.block_traversal import edit_block, retrieve_grid


def _fit():
    rng = np.random.default_rng(0)
    X = (rng.laplace(size=(600, 4)) @ rng.normal(size=(8, 4)).T).astype(np.float32)
    return X, make_decomposition("ica", 4, random_state=0).fit(X)


def test_grid_moves_only_the_two_swept_codes_by_their_std_units():
    X, ica = _fit()
    tr = edit_block(X[:3], ica, [1, 2, 3], [-1.0, 0.0, 2.0], reference=X, rows=[0, 1, 2])
    assert tr.embeddings.shape == (3, 3, 3, 8) and tr.axes == (1, 2)
    S0 = ica.transform(X[:3].astype(np.float64))
    sd = ica.transform(X.astype(np.float64)).std(axis=0, ddof=1)  # component_stats: ddof=1
    np.testing.assert_allclose(tr.sigma, sd[[1, 2]], rtol=1e-6)
    S = ica.transform(tr.embeddings[2, 0].astype(np.float64))  # +2 sd on c1, -1 sd on c2
    delta = S - S0
    np.testing.assert_allclose(delta[:, 1], 2 * sd[1], rtol=1e-4)
    np.testing.assert_allclose(delta[:, 2], -1 * sd[2], rtol=1e-4)
    np.testing.assert_allclose(delta[:, [0, 3]], 0, atol=1e-4)
    np.testing.assert_allclose(tr.embeddings[1, 1], X[:3], atol=1e-5)  # (0, 0) is the original
    retrieve_grid(tr, X)
    assert tr.neighbours.shape == (3, 3, 3)
    assert np.all(tr.neighbours[:, :, 0] != 0)  # the row itself is excluded


def test_grid_figure_and_bad_input():
    from clipica.viz.traversal import plot_block_grid

    X, ica = _fit()
    with pytest.raises(InputError, match=">= 2 components"):
        edit_block(X[:2], ica, [1])
    with pytest.raises(InputError, match="axes"):
        edit_block(X[:2], ica, [0, 1], axes=(0, 3))
    fig = plot_block_grid(np.zeros((3, 3, 4, 4, 3)), [-1, 0, 1], (0, 1), title="t")
    assert len(fig.axes) == 9
