"""disentanglement_lib's own test cases for DCI, MIG, SAP and modularity, rebuilt as plain arrays.

Source: google-research/disentanglement_lib, ``disentanglement_lib/evaluation/metrics/``
``dci_test.py``, ``mig_test.py``, ``sap_score_test.py``, ``modularity_explicitness_test.py``.
Their data set ``dummy_data.IdentityObservationsData`` has 10 factors, each drawn uniformly
from {1, ..., 10} with ``RandomState.random_integers(10)``, and the observations are the
factors themselves. Representations tested there, rebuilt here:

- identity codes (a perfectly disentangled, perfectly modular code);
- duplicated codes ``hstack([x, x])``;
- the "bad representation": every row's factors shuffled by its own random permutation
  (DCI and modularity), or all-zero codes (MIG and SAP).

Each assertion quotes the reference's ``assertBetween`` bounds and sample sizes. MIG and
modularity there use an identity discretiser; clipica's binning keeps a column with at
most ``n_bins`` distinct values as it is, which is the same thing for these 10 levels.
"""

import numpy as np
import pytest

from clipica.errors import InputError
from clipica.metrics import (
    dci,
    dci_from_importance,
    mig,
    modularity,
    modularity_from_mutual_info,
    sap,
)

# dci_test.test_duplicated_latent_space: completeness target for every factor in 2 codes of 20
DUP_COMPLETENESS = 1.0 - np.log(2) / np.log(10)


def identity_factors(n: int, seed: int = 0) -> np.ndarray:
    """IdentityObservationsData.sample_factors: (n, 10) integers uniform on 1..10."""
    return np.random.RandomState(seed).randint(1, 11, size=(n, 10)).astype(np.float64)


def shuffled_rows(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The reference's bad representation: each row permuted by its own random permutation."""
    rs = np.random.RandomState(seed)
    out = x.copy()
    for i in range(out.shape[0]):
        out[i] = rs.permutation(out[i])
    return out


def _dci(codes, factors, **kw):
    # the reference: num_train=1000, num_test=1000
    return dci(codes, factors, train=np.arange(1000), test=np.arange(1000, 2000), **kw)


# ------------------------------------------------------------------- DCI on importance matrices
# dci_test.DisentanglementTest / CompletenessTest, same matrices, same expected values


@pytest.mark.parametrize(
    "R, d, c",
    [
        (np.diag(5.0 * np.ones(5)), 1.0, 1.0),  # test_diagonal
        (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0),  # test_diagonal_empty_codes
        (np.zeros((10, 10)), 0.0, 0.0),  # test_zero
        (np.vstack([np.diag(5.0 * np.ones(5))] * 2), 1.0, DUP_COMPLETENESS),  # redundant codes
        (np.diag(5.0 * np.ones(5))[:2, :], 1.0, 1.0),  # test_missed_factors
        (np.hstack([np.diag(5.0 * np.ones(5))] * 2), 1.0 - np.log(2) / np.log(10), 1.0),
    ],
    ids=["diagonal", "empty_codes", "zero", "redundant_codes", "missed_factors", "one_code_two_factors"],
)
def test_dci_from_importance_matches_reference_cases(R, d, c):
    D, C, *_ = dci_from_importance(R)
    assert D == pytest.approx(d, abs=1e-7)
    assert C == pytest.approx(c, abs=1e-7)


# ------------------------------------------------------------------- DCI end to end
# dci_test.DCITest: test_metric D, C in [0.9, 1]; test_bad_metric D, C in [0, 0.2];
# test_duplicated_latent_space D in [0.9, 1], C in 1 - log 2 / log 10 +- 0.1.
# Default trees here are 10, not the reference's 100 (a 10-class classifier fits one tree per
# class and stage); the slow test below runs the reference's 100.

TREES_FAST = 10


@pytest.fixture(scope="module")
def factors():
    return identity_factors(2000)


def test_dci_identity_codes(factors):
    res = _dci(factors, factors, n_estimators=TREES_FAST)
    assert res.discrete.all()  # integer levels 1..10 are classes, as the reference's classifier
    assert 0.9 <= res.disentanglement <= 1.0
    assert 0.9 <= res.completeness <= 1.0


def test_dci_bad_representation_scores_low(factors):
    # the case today's lasso default failed (0.84 / 0.71): weak effects spread over all codes
    res = _dci(shuffled_rows(factors), factors, n_estimators=TREES_FAST)
    assert 0.0 <= res.disentanglement <= 0.2
    assert 0.0 <= res.completeness <= 0.2


def test_dci_duplicated_codes_halve_completeness(factors):
    res = _dci(np.hstack([factors, factors]), factors, n_estimators=TREES_FAST)
    assert 0.9 <= res.disentanglement <= 1.0
    assert DUP_COMPLETENESS - 0.1 <= res.completeness <= DUP_COMPLETENESS + 0.1


@pytest.mark.slow
@pytest.mark.parametrize("case", ["identity", "bad", "duplicated"])
def test_dci_reference_cases_with_reference_trees(factors, case):
    codes = {"identity": factors, "bad": shuffled_rows(factors),
             "duplicated": np.hstack([factors, factors])}[case]
    res = _dci(codes, factors, n_estimators=100)  # GradientBoostingClassifier() defaults
    lo, hi = {"identity": (0.9, 1.0), "bad": (0.0, 0.2), "duplicated": (0.9, 1.0)}[case]
    assert lo <= res.disentanglement <= hi
    clo, chi = {"identity": (0.9, 1.0), "bad": (0.0, 0.2),
                "duplicated": (DUP_COMPLETENESS - 0.1, DUP_COMPLETENESS + 0.1)}[case]
    assert clo <= res.completeness <= chi


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dci_linear_passes_the_same_cases(seed):
    f = identity_factors(2000, seed)
    ident = _dci(f, f, model="linear")
    assert 0.9 <= ident.disentanglement <= 1.0 and 0.9 <= ident.completeness <= 1.0
    bad = _dci(shuffled_rows(f, seed), f, model="linear")
    assert bad.disentanglement <= 0.2 and bad.completeness <= 0.2
    dup = _dci(np.hstack([f, f]), f, model="linear")
    assert 0.9 <= dup.disentanglement <= 1.0
    # documented caveat: the lasso keeps one of two identical codes, so redundancy does not
    # lower completeness under the linear model (trees give 1 - log 2 / log 10 = 0.70)
    assert dup.completeness >= 0.9


# ------------------------------------------------------------------- MIG
# mig_test: 3000 samples, identity discretiser with 10 bins


def test_mig_reference_cases():
    f = identity_factors(3000)
    assert 0.9 <= mig(f, f, n_bins=10).score <= 1.0  # test_metric
    assert 0.0 <= mig(np.zeros_like(f), f, n_bins=10).score <= 0.2  # test_bad_metric
    assert 0.0 <= mig(np.hstack([f, f]), f, n_bins=10).score <= 0.1  # duplicated


# ------------------------------------------------------------------- SAP
# sap_score_test: 3000 train / 3000 test, continuous_factors=True (squared correlation)


def test_sap_reference_cases():
    f = identity_factors(6000)
    kw = dict(train=np.arange(3000), test=np.arange(3000, 6000))
    assert 0.9 <= sap(f, f, **kw).score <= 1.0  # test_metric
    assert 0.0 <= sap(np.zeros_like(f), f, **kw).score <= 0.2  # test_bad_metric
    assert 0.0 <= sap(np.hstack([f, f]), f, **kw).score <= 0.2  # duplicated


# ------------------------------------------------------------------- modularity
# modularity_explicitness_test.ModularityTest: the same importance (MI) matrices


@pytest.mark.parametrize(
    "mi, expected",
    [
        (np.diag(5.0 * np.ones(5)), 1.0),  # test_diagonal
        (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 2.0 / 3.0),  # test_diagonal_empty_codes
        (np.zeros((10, 10)), 0.0),  # test_zero
        (np.vstack([np.diag(5.0 * np.ones(5))] * 2), 1.0),  # test_redundant_codes
        (np.diag(5.0 * np.ones(5))[:2, :], 1.0),  # test_missed_factors
        (np.hstack([np.diag(5.0 * np.ones(5))] * 2), 1.0 - 1.0 / 9),  # one code two factors
    ],
    ids=["diagonal", "empty_codes", "zero", "redundant_codes", "missed_factors", "one_code_two_factors"],
)
def test_modularity_from_mutual_info_matches_reference_cases(mi, expected):
    assert modularity_from_mutual_info(mi).mean() == pytest.approx(expected, abs=1e-12)


def test_modularity_reference_cases():
    # ModularityExplicitnessTest: 3000 rows for identity and duplicated, 20000 for the bad one
    f = identity_factors(3000)
    assert 0.9 <= modularity(f, f, n_bins=10).score <= 1.0  # test_metric (a perfectly modular code)
    assert 0.9 <= modularity(np.hstack([f, f]), f, n_bins=10).score <= 1.0  # duplicated
    big = identity_factors(20000)
    assert 0.0 <= modularity(shuffled_rows(big), big, n_bins=10).score <= 0.2  # test_bad_metric


# ------------------------------------------------------------------- parameter validation


@pytest.mark.parametrize("fn", [mig, modularity])
@pytest.mark.parametrize("n_bins", [0, 1, 2.5, "20", True, None])
def test_n_bins_must_be_an_integer_of_at_least_two(fn, n_bins):
    f = identity_factors(200)
    with pytest.raises(InputError, match="n_bins"):
        fn(f, f, n_bins=n_bins)


@pytest.mark.parametrize("kw, name", [
    (dict(n_estimators=0), "n_estimators"),
    (dict(n_estimators=2.5), "n_estimators"),
    (dict(n_estimators="100"), "n_estimators"),
    (dict(max_depth=0), "max_depth"),
    (dict(model="linear", alpha=0.0), "alpha"),
    (dict(model="linear", alpha="auto"), "alpha"),
    (dict(model="forest"), "model"),
    (dict(discrete=[True]), "discrete"),
])
def test_dci_rejects_bad_parameters_naming_them(kw, name):
    f = identity_factors(200)
    with pytest.raises(InputError, match=name):
        dci(f, f, **{"model": "gradient_boosting", **kw})
