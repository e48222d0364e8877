"""Closed-form and reference checks for clipica.metrics (mcc, r2, amari_distance, dci, mig, sap, modularity)."""

import itertools

import numpy as np
import pytest

from clipica.errors import InputError
from clipica.metrics import amari_distance, mcc, r2

SEEDS = [0, 1, 2, 3]


def _signed_perm(rng, k):
    perm = rng.permutation(k)
    signs = rng.choice([-1.0, 1.0], size=k)
    scales = rng.uniform(0.5, 3.0, size=k)
    return perm, signs * scales


# ---------------------------------------------------------------- mcc


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_mcc_signed_scaled_permutation_is_one(seed, method):
    rng = np.random.default_rng(seed)
    z = rng.laplace(size=(500, 5))
    perm, s = _signed_perm(rng, 5)
    codes = z[:, perm] * s
    res = mcc(codes, z, method=method)
    assert res.score == pytest.approx(1.0, abs=1e-12)
    # codes column i holds factor perm[i]
    np.testing.assert_array_equal(perm[res.code_index], res.factor_index)
    np.testing.assert_allclose(np.sign(res.correlations), np.sign(s[res.code_index]))
    assert res.matrix.shape == (5, 5)


@pytest.mark.parametrize("seed", SEEDS)
def test_mcc_matches_bruteforce_over_permutations(seed):
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    z = rng.normal(size=(200, 4))
    codes = z @ rng.normal(size=(4, 4)) + rng.normal(size=(200, 4))
    pear = np.abs(np.corrcoef(codes.T, z.T)[:4, 4:])
    spear = np.abs(spearmanr(codes, z).statistic[:4, 4:])
    for method, C in (("pearson", pear), ("spearman", spear)):
        best = max(
            np.mean([C[p[j], j] for j in range(4)]) for p in itertools.permutations(range(4))
        )
        assert mcc(codes, z, method=method).score == pytest.approx(best, abs=1e-10)


def test_mcc_more_codes_than_factors_and_fewer():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(1000, 3))
    codes = np.hstack([rng.normal(size=(1000, 2)), z[:, [2, 0, 1]]])
    res = mcc(codes, z)
    assert res.score == pytest.approx(1.0)
    np.testing.assert_array_equal(res.code_index, [3, 4, 2])
    res2 = mcc(z[:, :2], z)  # fewer codes than factors: 2 pairs matched
    assert res2.score == pytest.approx(1.0)
    assert len(res2.code_index) == 2


def test_mcc_random_codes_near_zero_constant_code_zero():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5000, 3))
    assert mcc(rng.normal(size=(5000, 3)), z).score < 0.05
    codes = np.hstack([np.ones((5000, 1)), z[:, 1:]])
    res = mcc(codes, z)
    assert res.matrix[0].max() == 0.0
    assert res.score == pytest.approx(2 / 3)


def test_mcc_rejects_bad_input():
    with pytest.raises(InputError, match="same number of rows"):
        mcc(np.zeros((10, 2)), np.zeros((11, 2)))
    with pytest.raises(InputError, match="non-finite"):
        mcc(np.full((10, 2), np.nan), np.zeros((10, 2)))
    with pytest.raises(InputError, match="method"):
        mcc(np.zeros((10, 2)), np.zeros((10, 2)), method="kendall")


# ---------------------------------------------------------------- r2


@pytest.mark.parametrize("seed", SEEDS)
def test_r2_linear_exact_and_reference(seed):
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(400, 5)) * rng.uniform(0.1, 10, size=5)
    exact = codes @ rng.normal(size=(5, 2)) + 3.0
    res = r2(codes, exact, model="linear")
    np.testing.assert_allclose(res.per_factor, 1.0, atol=1e-10)
    noisy = exact + rng.normal(size=exact.shape) * exact.std(axis=0)
    res = r2(codes, noisy, model="linear", random_state=seed)
    from clipica.metrics._common import split_indices

    tr, te = split_indices(400, random_state=seed)
    ref = LinearRegression().fit(codes[tr], noisy[tr]).predict(codes[te])
    expected = [r2_score(noisy[te, j], ref[:, j]) for j in range(2)]
    np.testing.assert_allclose(res.per_factor, expected, atol=1e-10)
    assert res.n_train == tr.size and res.n_test == te.size


def test_r2_is_scored_on_held_out_rows_only():
    # 40 random codes, 60 rows: the training fit is near perfect, the held-out one is not
    rng = np.random.default_rng(0)
    codes, y = rng.normal(size=(60, 40)), rng.normal(size=(60, 1))
    assert r2(codes, y, model="linear").score < 0.0
    train = np.arange(60) < 45
    res = r2(codes, y, train=train)
    assert (res.n_train, res.n_test) == (45, 15)
    with pytest.raises(InputError, match="overlap"):
        r2(codes, y, train=np.arange(50), test=np.arange(40, 60))


@pytest.mark.parametrize("seed", [0, 1])
def test_r2_kernel_ridge_captures_nonlinear_factor(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(3000, 2))
    y = np.column_stack([np.sin(2 * x[:, 0]), x[:, 1] ** 2]) + 0.05 * rng.normal(size=(3000, 2))
    lin = r2(x, y, model="linear", random_state=seed)
    ker = r2(x, y, model="kernel_ridge", random_state=seed)
    assert np.all(lin.per_factor < 0.5)
    assert np.all(ker.per_factor > 0.95)
    assert len(ker.params) == 2 and "gamma" in ker.params[0]
    noise = r2(rng.normal(size=(3000, 3)), y, model="kernel_ridge", random_state=seed)
    assert abs(noise.score) < 0.05


def test_r2_mlp_runs_and_beats_linear_on_nonlinear():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(2000, 2))
    y = np.sin(2 * x[:, :1]) + 0.05 * rng.normal(size=(2000, 1))
    res = r2(x, y, model="mlp")
    assert res.score > 0.8 > r2(x, y).score


# ---------------------------------------------------------------- amari


def _amari_classic(P):
    P = np.abs(P)
    n = P.shape[0]
    rows = sum(P[i].sum() / P[i].max() - 1 for i in range(n))
    cols = sum(P[:, j].sum() / P[:, j].max() - 1 for j in range(n))
    return (rows + cols) / (2 * n * (n - 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_amari_zero_for_scaled_permutation_nonsquare(seed):
    rng = np.random.default_rng(seed)
    D, K = 12, 5
    A = rng.normal(size=(D, K))
    perm, s = _signed_perm(rng, K)
    W = (np.eye(K)[perm] * s[:, None]) @ np.linalg.pinv(A)  # (K, D)
    assert amari_distance(W, A) == pytest.approx(0.0, abs=1e-10)
    assert amari_distance(rng.normal(size=(K, D)), A) > 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_amari_matches_classic_formula(seed):
    rng = np.random.default_rng(seed)
    W, A = rng.normal(size=(4, 6)), rng.normal(size=(6, 4))
    assert amari_distance(W, A) == pytest.approx(_amari_classic(W @ A), rel=1e-12)


def test_amari_extremes_and_errors():
    assert amari_distance(np.ones((3, 3)), np.eye(3)) == pytest.approx(1.0)
    assert amari_distance(np.eye(3), np.eye(3)) == 0.0
    # a component that sees no source is the worst for its row
    W = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert 0 < amari_distance(W, np.eye(3)) <= 1
    with pytest.raises(InputError, match="n_features"):
        amari_distance(np.zeros((3, 4)), np.zeros((5, 3)))
