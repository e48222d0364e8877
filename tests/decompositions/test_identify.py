"""ICA's identifiable part: m non-Gaussian sources recovered, the Gaussian rest one block."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from clipica.decompositions.ica import ICA
from clipica.metrics import amari_distance


def _planted(m: int, d: int, n: int, seed: int):
    """m non-Gaussian sources (Laplace, uniform, skewed binary in turn) among d - m Gaussian
    ones, mixed by a random (d, d) matrix. Returns X (n, d) and the mixing A (d, d)."""
    rng = np.random.default_rng(seed)
    kinds = [lambda: rng.laplace(size=n) / np.sqrt(2), lambda: rng.uniform(-np.sqrt(3), np.sqrt(3), size=n),
             lambda: ((rng.random(n) < 0.25) - 0.25) / np.sqrt(0.1875)]
    S = np.column_stack([kinds[j % 3]() for j in range(m)] + [rng.standard_normal((n, d - m))])
    A = rng.standard_normal((d, d))
    return S @ A.T, A


def _fit(X, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ica = ICA(n_components=X.shape[1], **kw).fit(X)
    return ica, [w for w in caught if "converge" in str(w.message)]


@pytest.mark.parametrize("m", [2, 4, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_sources_recovered_and_the_gaussian_rest_is_one_block(m, seed):
    d, n = 10, 6000
    X, A = _planted(m, d, n, seed)
    ica, warned = _fit(X, random_state=seed)
    assert int(ica.identifiable_.sum()) == m and list(ica.identifiable_[:m]) == [True] * m
    assert ica.converged_ and not warned  # judged on the identifiable part
    assert ica.gaussian_block_ == list(range(m, d))
    assert ica.blocks_ == [[i] for i in range(m)] + [list(range(m, d))]
    ours = amari_distance(ica.components_[:m], A[:, :m])
    # as well as today's symmetric fit of all K, on the same non-Gaussian part
    old, _ = _fit(X, random_state=seed, identify=False)
    best = np.argsort(-np.max(np.abs(np.corrcoef(old.transform(X).T, ica.transform(X)[:, :m].T)[:d, d:]), axis=1))
    theirs = amari_distance(old.components_[np.sort(best[:m])], A[:, :m])
    assert ours < 0.06 and ours <= theirs + 0.01
    # the block's codes are white and span the rest: reconstruction is exact at K = D
    S = ica.transform(X)
    np.testing.assert_allclose(np.cov(S[:, m:].T, ddof=0), np.eye(d - m), atol=1e-4)
    np.testing.assert_allclose(ica.inverse_transform(S), X, atol=1e-6 * np.abs(X).max())


def test_pure_gaussian_store_is_all_unidentifiable_and_converged():
    """Family-wise 5%: over 20 stores about one may show a spurious component; every other one
    is a single unidentifiable block, converged without a warning."""
    spurious = 0
    for seed in range(20):
        X = np.random.default_rng(seed).standard_normal((3000, 8)) @ np.random.default_rng(9).standard_normal((8, 8))
        ica, warned = _fit(X, random_state=seed)
        assert ica.converged_ and not warned
        if ica.identifiable_.any():
            spurious += 1
            continue
        assert ica.gaussian_block_ == list(range(8)) and ica.blocks_ == [list(range(8))]
        assert not ica.gaussianity_.significant.any()
    assert spurious <= 3  # P(>= 4 of 20 | 5%) = 0.016


def test_identifiability_survives_save_and_load(tmp_path):
    X, _ = _planted(3, 6, 4000, 0)
    ica, _ = _fit(X, random_state=0)
    ica.save(tmp_path / "ica")
    back = ICA.load(tmp_path / "ica")
    np.testing.assert_array_equal(back.identifiable_, ica.identifiable_)
    assert back.gaussian_block_ == ica.gaussian_block_ == [3, 4, 5]
    assert back.blocks_ == ica.blocks_
    np.testing.assert_array_equal(back.gaussianity_.p_value, ica.gaussianity_.p_value)
    assert back.fingerprint() == ica.fingerprint()


def test_other_solvers_get_the_same_split_from_the_test():
    X, A = _planted(3, 6, 5000, 1)
    ica, _ = _fit(X, random_state=0, solver="sklearn", max_iter=1000)
    assert int(ica.identifiable_.sum()) == 3 and ica.gaussian_block_ == [3, 4, 5]
    assert amari_distance(ica.components_[:3], A[:, :3]) < 0.06


def test_find_blocks_keeps_a_fixed_gaussian_block_apart():
    from clipica.decompositions.blocks import find_blocks

    rng = np.random.default_rng(0)
    S = np.column_stack([rng.laplace(size=3000), rng.uniform(-1, 1, size=3000), rng.standard_normal((3000, 3))])
    found = find_blocks(S, n_bootstrap=3, fixed_block=[2, 3, 4])
    assert found.blocks == [[0], [1], [2, 3, 4]]
    assert np.isnan(found.stability[-1]) and np.isnan(found.dependence[2, 3])
    assert found.co_membership[2, 4] == 1.0 and found.co_membership[0, 1] == 0.0
