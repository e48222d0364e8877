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
    x = rng.uniform(-2, 2, size=(1500, 2))
    y = np.column_stack([np.sin(2 * x[:, 0]), x[:, 1] ** 2]) + 0.05 * rng.normal(size=(1500, 2))
    lin = r2(x, y, model="linear", random_state=seed)
    ker = r2(x, y, model="kernel_ridge", random_state=seed, n_landmarks=200)
    assert np.all(lin.per_factor < 0.5)
    assert np.all(ker.per_factor > 0.95)
    assert len(ker.params) == 2 and "gamma" in ker.params[0]
    noise = r2(
        rng.normal(size=(1500, 3)), y, model="kernel_ridge", random_state=seed, n_landmarks=200
    )
    assert abs(noise.score) < 0.05


def test_r2_mlp_runs_and_beats_linear_on_nonlinear():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(1000, 2))
    y = np.sin(2 * x[:, :1]) + 0.05 * rng.normal(size=(1000, 1))
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


# ---------------------------------------------------------------- dci, mig, sap, modularity

from clipica.metrics import dci, dci_from_importance, mig, modularity, sap  # noqa: E402
from clipica.metrics._discrete import discretise, mutual_information  # noqa: E402


def _grid(levels=5, reps=40, binary=False):
    """Two factors on a full factorial grid: empirically exactly independent."""
    lv = [0, 1] if binary else range(levels)
    g = np.array([(a, b) for a in lv for b in lv] * reps, dtype=float)
    return g if binary else (g - g.mean(axis=0)) / g.std(axis=0)


ALL = {
    "dci": lambda c, f: dci(c, f).disentanglement,
    "dci_completeness": lambda c, f: dci(c, f).completeness,
    "mig": lambda c, f: mig(c, f).score,
    "sap": lambda c, f: sap(c, f).score,
    "modularity": lambda c, f: modularity(c, f).score,
}


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("binary", [False, True])
def test_identity_and_signed_permutation_score_one(name, binary):
    z = _grid(binary=binary)
    # binary SAP scores the second code on a random test subset, where the grid's
    # exact independence only holds approximately
    tol = 0.05 if (binary and name == "sap") else 1e-9
    assert ALL[name](z, z) == pytest.approx(1.0, abs=tol)
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        perm, s = _signed_perm(rng, 2)
        assert ALL[name](z[:, perm] * s, z) == pytest.approx(1.0, abs=tol)


@pytest.mark.parametrize("name", list(ALL))
def test_constant_codes_score_zero(name):
    z = _grid()
    assert ALL[name](np.ones((z.shape[0], 3)), z) == 0.0


def test_duplicated_factor_known_values():
    z = _grid()
    dup_f = z[:, [0, 0, 1]]
    res = dci(z, dup_f)
    # code 0 splits its importance evenly over 2 of 3 factors, and carries 2/3 of the total
    expected = 2 / 3 * (1 - np.log(2) / np.log(3)) + 1 / 3
    assert res.disentanglement == pytest.approx(expected, abs=1e-6)
    assert res.completeness == pytest.approx(1.0, abs=1e-9)
    # one code per factor, but the first code is about two factors: (1/2 + 1) / 2
    assert modularity(z, dup_f).score == pytest.approx(0.75, abs=1e-12)
    # a duplicated code leaves no gap for its factor: (0 + 1) / 2
    dup_c = z[:, [0, 0, 1]]
    assert mig(dup_c, z).score == pytest.approx(0.5, abs=1e-12)
    assert sap(dup_c, z).score == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_codes_score_near_zero(seed):
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(5000, 8))
    cont = rng.normal(size=(5000, 6))
    bins = (rng.random((5000, 6)) < 0.3).astype(float)
    for f in (cont, bins):
        # the linear model's BIC-selected lasso zeroes every code that carries nothing
        res = dci(codes, f, model="linear")
        assert res.disentanglement == 0.0 and res.completeness == 0.0
        # trees split on noise, but spread their importance evenly: D and C stay low
        gb = dci(codes[:1000], f[:1000], n_estimators=20)
        assert gb.disentanglement < 0.1 and gb.completeness < 0.1
        assert mig(codes, f).score < 0.02
        assert sap(codes, f).score < 0.03
        # modularity is not ~0 for random codes (documented); it stays far from 1
        assert modularity(codes, f).score < 0.75
    assert abs(dci(codes, cont, model="linear").informativeness) < 0.02
    assert dci(codes, bins, model="linear").informativeness == pytest.approx(0.5, abs=0.03)
    assert dci(codes[:1000], bins[:1000], n_estimators=20).informativeness == pytest.approx(
        0.5, abs=0.05
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_noisy_codes_ordering_and_invariance(seed):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(3000, 4))
    clean = f + 0.3 * rng.normal(size=f.shape)
    mixed = clean @ np.linalg.qr(rng.normal(size=(4, 4)))[0]
    perm, s = _signed_perm(rng, 4)
    for fn in (mig, sap, modularity):
        a, b = fn(clean, f).score, fn(clean[:, perm] * s, f).score
        assert a == pytest.approx(b, abs=1e-9)
        assert a > fn(mixed, f).score
    # trees compare float32 thresholds, so a sign flip moves their importances by ~1e-5
    for kw, n, tol in ((dict(model="linear"), 3000, 1e-6), (dict(n_estimators=20), 1000, 1e-3)):
        d1, d2 = dci(clean[:n], f[:n], **kw), dci(clean[:n, perm] * s, f[:n], **kw)
        assert d1.disentanglement == pytest.approx(d2.disentanglement, abs=tol)
        assert d1.completeness == pytest.approx(d2.completeness, abs=tol)
        dm = dci(mixed[:n], f[:n], **kw)
        assert d1.disentanglement > dm.disentanglement + 0.2
        assert d1.completeness > dm.completeness + 0.2
        if kw.get("model") == "linear":  # axis-aligned trees predict worse from a rotation
            assert d1.informativeness == pytest.approx(dm.informativeness, abs=0.02)


def test_mutual_information_matches_sklearn():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(300, 3))
    b = (a[:, :2] + rng.integers(0, 2, size=(300, 2))) % 3
    mi = mutual_information(a, b)
    for i in range(3):
        for j in range(2):
            assert mi[i, j] == pytest.approx(mutual_info_score(a[:, i], b[:, j]), abs=1e-12)
    x = rng.normal(size=(1000, 1))
    counts = np.bincount(discretise(x, 20)[:, 0])
    assert counts.size == 20 and counts.min() == counts.max() == 50  # equal frequency


def test_dci_from_importance_matches_direct_formula():
    from scipy.stats import entropy

    rng = np.random.default_rng(1)
    R = np.abs(rng.normal(size=(5, 3)))
    D, C, per_code, rho, per_factor = dci_from_importance(R)
    d_i = [1 - entropy(R[i] / R[i].sum(), base=3) for i in range(5)]
    c_j = [1 - entropy(R[:, j] / R[:, j].sum(), base=5) for j in range(3)]
    np.testing.assert_allclose(per_code, d_i)
    np.testing.assert_allclose(per_factor, c_j)
    assert D == pytest.approx(np.dot(R.sum(axis=1) / R.sum(), d_i))
    # completeness weighted by each factor's share of importance, as disentanglement_lib
    assert C == pytest.approx(np.dot(R.sum(axis=0) / R.sum(), c_j))


def test_modularity_and_sap_match_direct_formulas():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(2000, 3))
    codes = f @ rng.normal(size=(3, 4)) + rng.normal(size=(2000, 4))
    res = modularity(codes, f)
    m = res.mutual_info
    expected = []
    for i in range(4):
        th, j = m[i].max(), m[i].argmax()
        dev = sum((m[i, k] - (th if k == j else 0.0)) ** 2 for k in range(3))
        expected.append(1 - dev / (th**2 * 2))
    assert res.score == pytest.approx(np.mean(expected))
    s = sap(codes, f)
    np.testing.assert_allclose(s.scores, np.corrcoef(codes.T, f.T)[:4, 4:] ** 2, atol=1e-12)
    srt = np.sort(s.scores, axis=0)
    assert s.score == pytest.approx(np.mean(srt[-1] - srt[-2]))


def test_sap_binary_stump_matches_bruteforce():
    from clipica.metrics.sap import _stump_youden

    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(200, 2)), 1)  # ties on purpose
    y = (x[:, 0] + rng.normal(size=200) > 0.3).astype(float)
    tr, te = np.arange(150), np.arange(150, 200)
    got = _stump_youden(x[tr], y[tr], x[te], y[te])

    def bal(pred, yy):
        return 0.5 * (pred[yy == 1].mean() + (~pred[yy == 0]).mean())

    for k in range(2):
        best, best_rule = -1.0, None
        vals = np.unique(x[tr, k])
        for t in (vals[:-1] + vals[1:]) / 2:
            for sgn in (1, -1):
                b = bal((x[tr, k] - t) * sgn > 0, y[tr])
                if b > best + 1e-12:
                    best, best_rule = b, (t, sgn)
        t, sgn = best_rule
        assert got[k] == pytest.approx(max(0.0, 2 * bal((x[te, k] - t) * sgn > 0, y[te]) - 1))
