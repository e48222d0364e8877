"""Independent subspaces: planted blocks are recovered, independent sources stay singletons."""

from __future__ import annotations

import numpy as np
import pytest

from clipica.decompositions.blocks import BlockResult, dependence_matrix, find_blocks
from clipica.errors import InputError
from tests.helpers.planted import TETRAHEDRON, planted, true_block_of_estimates


def _ica(X, k, seed):
    from clipica.decompositions.ica import ICA

    return ICA(n_components=k, random_state=seed).fit(X)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_blocks_are_recovered_through_ica(seed):
    from sklearn.metrics import adjusted_rand_score

    X, S, A, block_of, _ = planted(4000, seed)
    ica = _ica(X, S.shape[1], seed)
    truth = true_block_of_estimates(ica.components_, A, block_of)
    assert sorted(np.bincount(truth).tolist()) == [1, 1, 1, 1, 2, 3]  # ICA kept the subspaces
    res = find_blocks(ica.transform(X), n_bootstrap=5, random_state=seed)
    assert adjusted_rand_score(truth, res.labels) >= 0.9
    assert sorted(len(b) for b in res.blocks) == [1, 1, 1, 1, 2, 3]
    assert min(res.stability) >= 0.6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_independent_sources_give_singletons(seed):
    rng = np.random.default_rng(seed)
    n = 4000
    S = np.hstack([rng.laplace(size=(n, 3)), rng.uniform(size=(n, 3)), rng.exponential(size=(n, 2))])
    X = S @ rng.normal(size=(8, 8)).T
    res = find_blocks(_ica(X, 8, seed).transform(X), n_bootstrap=3, random_state=seed)
    assert res.blocks == [[i] for i in range(8)]
    assert res.stability == [1.0] * 8


def test_xor_triple_is_found_although_every_pair_is_independent():
    # the exact XOR: each pair of coordinates is uniform on four sign patterns
    rng = np.random.default_rng(0)
    n = 3000
    V = TETRAHEDRON[rng.integers(0, 4, n)] + 0.2 * rng.normal(size=(n, 3))
    S = np.hstack([V, rng.laplace(size=(n, 2))])
    pair_energy = np.corrcoef(np.abs(V - V.mean(0)).T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(pair_energy) < 0.1)  # pairwise statistics see nothing
    D, _ = dependence_matrix(S)
    assert D[0, 1] > 0.4 and D[0, 2] > 0.4 and D[1, 2] > 0.4
    assert D[3, 4] < 0.15 and D[:3, 3:].max() < 0.15
    assert find_blocks(S, n_bootstrap=0).blocks == [[0, 1, 2], [3], [4]]


def test_dependence_is_invariant_to_affine_maps_and_column_order():
    X, S, *_ = planted(2000, 3)
    D, _ = dependence_matrix(S)
    perm = np.random.default_rng(0).permutation(S.shape[1])
    T = S[:, perm].copy()
    T[:, 0] = 3.0 - 2.0 * T[:, 0]  # a sign flip and a scale move no row across the split
    D2, _ = dependence_matrix(T)
    np.testing.assert_allclose(D2, D[np.ix_(perm, perm)], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_independent_factors_whose_embedding_interacts_stay_singletons(seed):
    # two independent binary factors; the second's code moves and spreads with the first
    # (bangs drawn in the hair's colour): dependent sources, every combination occupied.
    # Moment statistics link them (corr(z_2, z_1^2) ~ 0.6); the occupancy rule must not.
    rng = np.random.default_rng(seed)
    n = 4000
    b1, b2 = (rng.random(n) < 0.5).astype(float), (rng.random(n) < 0.5).astype(float)
    S = np.column_stack([
        b1 + 0.15 * rng.normal(size=n),
        b2 * (1 + 0.8 * b1) + 0.15 * (1 + b1) * rng.normal(size=n),
        rng.laplace(size=n), rng.uniform(-1, 1, n),
    ])
    X = S @ rng.normal(size=(8, 4)).T
    res = find_blocks(_ica(X, 4, seed).transform(X), n_bootstrap=0)
    assert res.blocks == [[0], [1], [2], [3]]
    assert res.dependence.max() < 0.2


def test_a_missing_combination_scores_its_closed_form_lower_bound():
    # three values in two dims, one quadrant empty: D = 1 - z^2 / ((n + z^2) e) (the Wilson
    # upper bound of an empty cell over its share e = p0 p1 under independence), z the
    # Bonferroni quantile over the 4 cells; it rises towards 1 with n. The same marginals
    # drawn independently: 0.
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    got = []
    for n in (100, 3000):
        v = rng.integers(0, 3, n)
        S = np.column_stack([(v == 1) + 0.1 * rng.normal(size=n), (v == 2) + 0.1 * rng.normal(size=n)])
        D, n_cells = dependence_matrix(S, alpha=1e-3)
        assert n_cells == 4
        e = (v == 1).mean() * (v == 2).mean()
        z = norm.isf(1e-3 / 8)
        want = 1 - z**2 / ((n + z**2) * e)
        np.testing.assert_allclose(D[0, 1], want, rtol=1e-9)
        got.append(D[0, 1])
        indep = np.column_stack([rng.random(n) < 1 / 3, rng.random(n) < 1 / 3]) + 0.1 * rng.normal(size=(n, 2))
        assert dependence_matrix(indep)[0][0, 1] == 0.0
    assert 0 < got[0] < 0.5 < 0.95 < got[1]  # 100 rows are not enough to claim the block


def test_max_block_size_caps_blocks():
    X, S, *_ = planted(3000, 0)
    res = find_blocks(S, n_bootstrap=0, max_block_size=2)
    assert max(len(b) for b in res.blocks) == 2
    assert sorted(i for b in res.blocks for i in b) == list(range(S.shape[1]))


def test_result_round_trips_through_its_dict():
    import json

    X, S, *_ = planted(1500, 1)
    res = find_blocks(S, n_bootstrap=2, random_state=4)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["format"] == "clipica.blocks/1"
    back = BlockResult.from_dict(d)
    assert back.blocks == res.blocks and back.stability == res.stability
    np.testing.assert_allclose(back.dependence, res.dependence)
    from clipica.errors import ArtifactError

    with pytest.raises(ArtifactError):
        BlockResult.from_dict({**d, "format": "clipica.probe/1"})
    assert res.to_dict({"decomposition": "f00"})["fingerprints"] == {"decomposition": "f00"}


@pytest.mark.parametrize(
    "kwargs, match",
    [({"min_dependence": 2.0}, "min_dependence"), ({"alpha": 0.0}, "alpha"),
     ({"max_block_size": 0}, "max_block_size"), ({"n_bootstrap": -1}, "n_bootstrap")],
)
def test_bad_arguments_name_the_parameter(kwargs, match):
    S = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(InputError, match=match):
        find_blocks(S, **kwargs)


def test_bad_input_is_rejected():
    with pytest.raises(InputError, match="at least 20 rows"):
        find_blocks(np.zeros((5, 3)))
    with pytest.raises(InputError, match="NaN"):
        find_blocks(np.full((50, 3), np.nan))
    with pytest.raises(InputError, match="n_samples"):
        find_blocks(np.zeros(50))


def test_block_names_rank_words_by_their_norm_in_the_block():
    from clipica.naming.names import name_from_embeddings

    rng = np.random.default_rng(0)
    W = np.linalg.qr(rng.normal(size=(8, 8)))[0][:4]  # 4 orthonormal read-out directions

    class Dec:
        mean_ = np.zeros(8)
        components_ = W
        mixing_ = W.T

    words = ["block word a", "block word b", "other", "neutral 1", "neutral 2", "neutral 3"]
    T = 0.05 * rng.normal(size=(6, 8))
    T[0] += 3 * W[0] + 3 * W[1]
    T[1] += -3 * W[1]
    T[2] += 4 * W[3]
    names = name_from_embeddings(words, T, Dec())
    top = [w for w, _ in names.top_in_block([0, 1], 2)]
    assert top == ["block word a", "block word b"]
    assert names.block_names([[0, 1], [2], [3]], 1) == [
        {"block": [0, 1], "top": [{"text": "block word a", "norm": names.top_in_block([0, 1], 1)[0][1]}]}
    ]


def test_heatmap_draws_blocks_side_by_side():
    from clipica.viz.probe import _group_blocks

    cols = np.array([4, 0, 2, 3, 1, 5])
    assert _group_blocks(cols, [[1, 2, 5]]).tolist() == [4, 0, 2, 1, 5, 3]
    assert _group_blocks(cols, []).tolist() == cols.tolist()
