"""The per-component Gaussianity test: calibrated for ICA's search, powerful on real sources."""

from __future__ import annotations

import numpy as np
import pytest

from clipica.decompositions.gaussianity import (
    GaussianityTest,
    component_significance,
    gumbel_fit,
    gumbel_sf,
    nongaussianity,
)
from clipica.errors import ArtifactError, InputError


def _rotated_by_fastica(X, k, seed):
    """Codes of clipica's FastICA (no canonical form needed) fitted to X."""
    import warnings

    from clipica.decompositions.ica import ICA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gaussian data never converges: expected here
        ica = ICA(n_components=k, random_state=seed, max_iter=100, identify=False).fit(X)
    return ica.transform(X)


def test_statistic_is_about_chi2_2_for_gaussian_columns_fixed_in_advance():
    rng = np.random.default_rng(0)
    T = nongaussianity(rng.standard_normal((4000, 300)))
    assert 1.7 < T.mean() < 2.3  # chi2(2) has mean 2
    assert np.mean(T > 5.99) < 0.1  # its 95% quantile


def test_statistic_sees_heavy_tails_light_tails_and_asymmetry():
    rng = np.random.default_rng(1)
    n = 3000
    cols = [rng.laplace(size=n), rng.uniform(-1, 1, size=n), (rng.random(n) < 0.2).astype(float),
            rng.standard_normal(n)]
    T = nongaussianity(np.column_stack(cols))
    assert T[:3].min() > 100 and T[3] < 15


@pytest.mark.parametrize("n,d,k", [(2000, 12, 6)])
def test_gaussian_sources_flagged_no_more_often_than_the_level_over_20_seeds(n, d, k):
    """Pure Gaussian data, ICA fitted (its search included): the family-wise level holds."""
    alpha = 0.05
    any_flag = 0
    flagged = 0
    for seed in range(20):
        X = np.random.default_rng(100 + seed).standard_normal((n, d))
        S = _rotated_by_fastica(X, k, seed)
        test = component_significance(S, n_features=d, alpha=alpha, cache=False)
        any_flag += bool(test.n_significant)
        flagged += test.n_significant
    # family-wise 5%: expected 1 of 20 data sets with any flag; P(>= 4 | 0.05) = 0.016
    assert any_flag <= 3
    assert flagged / (20 * k) <= alpha


def test_naive_chi2_test_would_flag_the_searched_gaussian_components():
    """The calibration matters: chi2(2) per component, Bonferroni, flags ICA's noise often."""
    from scipy.stats import chi2

    n, d, k = 2000, 12, 6
    hits = 0
    for seed in range(10):
        X = np.random.default_rng(200 + seed).standard_normal((n, d))
        T = nongaussianity(_rotated_by_fastica(X, k, seed))
        hits += bool(np.any(chi2.sf(T, 2) * k <= 0.05))
    assert hits >= 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_non_gaussian_sources_are_flagged_and_gaussian_ones_are_not(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    S = np.column_stack([rng.laplace(size=n), rng.uniform(-1, 1, size=n),
                         (rng.random(n) < 0.3) + 0.3 * rng.standard_normal(n),
                         rng.standard_normal((n, 5))])
    A = rng.standard_normal((8, 8))
    X = S @ A.T
    codes = _rotated_by_fastica(X, 8, seed)
    test = component_significance(codes, n_features=8, cache=False)
    # the three non-Gaussian sources are recovered and flagged; the 5 Gaussian ones are not
    assert test.n_significant == 3
    Ssig = codes[:, test.significant]
    corr = np.abs(np.corrcoef(np.column_stack([Ssig, S[:, :3]]).T)[:3, 3:])
    assert corr.max(axis=0).min() > 0.95


def test_round_trip_and_tag():
    rng = np.random.default_rng(3)
    test = component_significance(rng.laplace(size=(500, 3)), n_features=3, cache=False, replicates=5)
    again = GaussianityTest.from_dict(test.to_dict())
    np.testing.assert_array_equal(again.p_value, test.p_value)
    np.testing.assert_array_equal(again.significant, test.significant)
    assert again.method == test.method and again.alpha == test.alpha
    with pytest.raises(ArtifactError):
        GaussianityTest.from_dict({"format": "clipica.stability/1"})


def test_bad_input_is_refused_in_one_line():
    with pytest.raises(InputError, match="alpha must be"):
        component_significance(np.zeros((10, 2)) + np.arange(10)[:, None], alpha=1.5)
    with pytest.raises(InputError, match="2-D"):
        component_significance(np.zeros(10))
    with pytest.raises(InputError, match="NaN"):
        component_significance(np.full((10, 2), np.nan))


def test_gumbel_fit_recovers_known_parameters():
    rng = np.random.default_rng(4)
    loc, scale = gumbel_fit(rng.gumbel(10.0, 2.0, size=20000))
    assert abs(loc - 10) < 0.1 and abs(scale - 2) < 0.1
    assert gumbel_sf(10.0 + 2.0 * 2.970195, 10.0, 2.0) == pytest.approx(0.05, rel=1e-3)
