"""Varimax, dictionary learning, semi-NMF and sparse autoencoders behind LinearDecomposition."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from clipica.decompositions import load_decomposition, make_decomposition
from clipica.errors import DependencyError, InputError

FAST = {
    "varimax": {},
    "dict": {"max_iter": 3},
    "semi_nmf": {"max_iter": 60},
    "topk_sae": {"n_steps": 150, "batch_size": 128},
    "batchtopk_sae": {"n_steps": 150, "batch_size": 128},
}


def _data(seed=0, n=800, d=12, k=4):
    rng = np.random.default_rng(seed)
    S = rng.laplace(size=(n, k))
    X = S @ rng.normal(size=(d, k)).T + 2.0 + 0.05 * rng.normal(size=(n, d))
    return X.astype(np.float32), S


def _r2(X, R):
    X = X.astype(np.float64)
    return 1 - ((X - R) ** 2).sum() / ((X - X.mean(0)) ** 2).sum()


@pytest.mark.parametrize("kind", list(FAST))
def test_fit_transform_inverse_and_save_load_round_trip(kind, tmp_path):
    X, _ = _data()
    dec = make_decomposition(kind, 4, random_state=0, **FAST[kind]).fit(X)
    Z = dec.transform(X)
    assert Z.shape == (800, 4) and Z.dtype == np.float32
    assert dec.components_.shape == (4, 12) and dec.mixing_.shape == (12, 4)
    assert dec.mean_.shape == (12,)
    R = dec.inverse_transform(Z)
    assert R.shape == X.shape
    # K = 4 non-negative codes, 2 active, cannot span 4 signed dimensions: SAEs reconstruct less
    assert _r2(X, R) > {"topk_sae": 0.15, "batchtopk_sae": 0.15}.get(kind, 0.8)
    dec.save(tmp_path / kind)
    back = load_decomposition(tmp_path / kind)
    assert type(back) is type(dec)
    assert back.fingerprint() == dec.fingerprint()
    np.testing.assert_array_equal(back.transform(X), Z)
    np.testing.assert_array_equal(back.inverse_transform(Z), R)


def test_varimax_codes_are_scikit_learns_factor_scores():
    from sklearn.decomposition import FactorAnalysis

    X, _ = _data(1)
    dec = make_decomposition("varimax", 4, random_state=0).fit(X)
    ref = FactorAnalysis(4, rotation="varimax", random_state=0, svd_method="lapack").fit(
        X.astype(np.float64)
    )
    # the same model up to each factor's arbitrary sign, which clipica fixes
    from clipica.decompositions.factor_analysis import canonical_signs

    sign = np.sign((canonical_signs(ref.components_) * ref.components_).sum(axis=1))
    np.testing.assert_allclose(dec.mixing_.T, sign[:, None] * ref.components_, atol=1e-8)
    np.testing.assert_allclose(dec.transform(X.astype(np.float64)), sign * ref.transform(X), atol=1e-8)


def test_dictionary_codes_are_the_lasso_solution_and_readout_inverts_the_dictionary():
    from sklearn.decomposition import sparse_encode

    X, _ = _data(2)
    dec = make_decomposition("dict", 4, random_state=0, max_iter=3).fit(X)
    Y = (X.astype(np.float64) - dec.mean_) / dec.scale_
    ref = sparse_encode(Y, dec.dictionary_, algorithm="lasso_cd", alpha=1.0, max_iter=1000)
    np.testing.assert_allclose(dec.transform(X.astype(np.float64)), ref, atol=1e-6)
    np.testing.assert_allclose(dec.components_ @ dec.mixing_, np.eye(4), atol=1e-8)
    assert (dec.transform(X) == 0).mean() > 0.1  # sparse


def test_semi_nmf_codes_solve_the_nonnegative_least_squares_problem():
    from scipy.optimize import nnls

    X, _ = _data(3)
    dec = make_decomposition("semi_nmf", 4, random_state=0, max_iter=60).fit(X)
    assert np.all(dec.mean_ == 0)  # fitted on the uncentred data, as overcomplete does
    Z = dec.transform(X.astype(np.float64))
    assert Z.min() >= 0
    Y = X.astype(np.float64) / dec.scale_
    for i in range(5):
        ref, _ = nnls(dec.dictionary_.T, Y[i])
        np.testing.assert_allclose(Z[i], ref, atol=1e-4)


def test_topk_keeps_at_most_k_codes_and_batchtopk_about_k_on_average():
    X, _ = _data(4)
    topk = make_decomposition("topk_sae", 16, random_state=0, top_k=3, **FAST["topk_sae"]).fit(X)
    Z = topk.transform(X)
    assert Z.min() >= 0 and (Z > 0).sum(axis=1).max() <= 3
    assert topk.n_components_ == 16  # overcomplete (16 > 12 dimensions) is allowed
    bt = make_decomposition("batchtopk_sae", 16, random_state=0, top_k=3,
                            **FAST["batchtopk_sae"]).fit(X)
    l0 = (bt.transform(X) > 0).sum(axis=1)
    assert bt.threshold_ is not None and 1.0 <= l0.mean() <= 6.0


@pytest.mark.parametrize("kind", ["topk_sae", "batchtopk_sae"])
def test_numpy_encoder_and_decoder_equal_overcompletes_own(kind, monkeypatch):
    import torch

    from clipica.decompositions._overcomplete import import_overcomplete

    oc = import_overcomplete()
    trained = {}
    real = oc.sae.train_sae

    def spy(model, *args, **kwargs):
        trained["model"] = model
        return real(model, *args, **kwargs)

    monkeypatch.setattr(oc.sae, "train_sae", spy)
    X, _ = _data(7)
    dec = make_decomposition(kind, 8, random_state=0, **FAST[kind]).fit(X)
    model = trained["model"].eval()
    with torch.no_grad():
        _, z = model.encode(torch.as_tensor((X - dec.mean_) / dec.scale_, dtype=torch.float32))
        x_hat = model.decode(z).numpy() * dec.scale_ + dec.mean_
    Z = dec.transform(X.astype(np.float64))
    np.testing.assert_allclose(Z, z.numpy(), atol=1e-4)
    np.testing.assert_allclose(dec.inverse_transform(Z), x_hat, atol=1e-4)


def test_sae_seeds_reproduce_and_differ():
    X, _ = _data(5)
    a = make_decomposition("topk_sae", 4, random_state=1, **FAST["topk_sae"]).fit(X)
    b = make_decomposition("topk_sae", 4, random_state=1, **FAST["topk_sae"]).fit(X)
    c = make_decomposition("topk_sae", 4, random_state=2, **FAST["topk_sae"]).fit(X)
    np.testing.assert_array_equal(a.mixing_, b.mixing_)
    assert not np.allclose(a.mixing_, c.mixing_)


def test_missing_overcomplete_is_a_clear_dependency_error(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "overcomplete" or name.startswith("overcomplete."):
            raise ImportError("No module named 'overcomplete'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    X, _ = _data()
    with pytest.raises(DependencyError, match=r"clipica\[sae\]"):
        make_decomposition("topk_sae", 4, n_steps=5).fit(X)


@pytest.mark.parametrize(
    "kind, params, match",
    [("dict", {"alpha": 0}, "alpha"), ("topk_sae", {"top_k": 9}, "top_k"),
     ("topk_sae", {"n_steps": 0}, "n_steps"), ("varimax", {"max_iter": 0}, "max_iter")],
)
def test_bad_parameters_name_themselves(kind, params, match):
    X, _ = _data()
    with pytest.raises(InputError, match=match):
        make_decomposition(kind, 4, **params).fit(X)


@pytest.mark.parametrize("kind", ["varimax", "dict", "topk_sae"])
def test_new_methods_work_with_probes_naming_and_traversals(kind):
    import pandas as pd

    from clipica.intervene import edit_components
    from clipica.naming.names import name_from_embeddings
    from clipica.probes import probe

    X, S = _data(6)
    dec = make_decomposition(kind, 4, random_state=0, **FAST[kind]).fit(X)
    labels = pd.DataFrame({"a": (S[:, 0] > 0).astype(int), "b": (S[:, 1] > 0).astype(int)})
    rep = probe(dec.transform(X), labels, name=kind)
    assert rep.codes[kind].best_auc.min() > 0.6
    rng = np.random.default_rng(0)
    names = name_from_embeddings(["w1", "w2", "w3"], rng.normal(size=(3, 12)), dec)
    assert names.scores.shape == (3, 4) and np.all(np.isfinite(names.scores))
    tr = edit_components(X[:5], dec, 1, [-1.0, 0.0, 1.0], reference=X)
    E = np.asarray(tr.embeddings)
    assert E.shape == (3, 5, 12)
    np.testing.assert_allclose(E[1], X[:5], atol=1e-5)  # alpha 0 is the original
    step = (E[2] - E[1]) / tr.sigma  # one std along the code's atom
    np.testing.assert_allclose(step, np.broadcast_to(dec.mixing_[:, 1], step.shape), atol=1e-4)


def test_dictionary_gathers_sklearn_convergence_warnings_into_one():
    """scikit-learn's lasso warns per batch of rows; the fit says it once, with the count."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    # rank-3 data, 8 atoms: the lasso is ill-conditioned and stops short on many batches
    X = rng.laplace(size=(400, 3)) @ rng.standard_normal((3, 12)) + 1e-3 * rng.standard_normal((400, 12))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_decomposition("dict", 8, random_state=0, max_iter=2, alpha=0.01).fit(X)
    conv = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(conv) == 1, [str(w.message) for w in conv]
    n = int(str(conv[0].message).split("tolerance in ")[1].split()[0])
    assert n > 1  # the one warning stands for several of scikit-learn's
