"""``clipica bench fewshot`` on a small problem: both C searches agree on the same features."""

from clipica.bench.fewshot import run_benchmark, search_c_sklearn
from clipica.fewshot import search_c
from clipica.fewshot.protocol import sample_fewshot


def test_vectorised_search_picks_the_same_c_and_accuracy_as_the_sklearn_loop():
    import numpy as np

    from clipica.bench.fewshot import synthetic_stores

    X, codes, names, _ = synthetic_stores(seed=1, k=4, per_class=30)
    Xtr, Xva = [], []
    for seed in range(3):
        tr, va = sample_fewshot(codes, 4, 4, 4, seed)
        Xtr.append(X[tr])
        Xva.append(X[va])
    Xtr, Xva = np.stack(Xtr), np.stack(Xva)
    ytr = np.repeat(np.arange(4), 4)[None].repeat(3, 0)
    ours = search_c(Xtr, ytr, Xva, ytr, 4)
    ref = search_c_sklearn(Xtr, ytr, Xva, ytr, 4)
    # both reach the minimiser at every C (sklearn's newton-cg at tol 1e-12), so the two
    # searches see the same validation accuracies and keep the same C and predictions
    np.testing.assert_allclose(ours["val_accuracy"], ref["val_accuracy"])
    np.testing.assert_allclose(ours["C"], ref["C"], rtol=1e-9)
    X_test = X[:120]
    for t in range(3):
        a = (X_test @ ours["coef"][t] + ours["intercept"][t]).argmax(1)
        b = (X_test @ ref["coef"][t] + ref["intercept"][t]).argmax(1)
        assert (a == b).mean() >= 0.99


def test_bench_runs_small_and_reports_agreement_for_l2_and_l1():
    res = run_benchmark(seeds=1, classes=4, per_class=30, progress=lambda *a: None)
    assert set(res["penalties"]) == {"l2", "l1"} and "compared" in res
    for pen in ("l2", "l1"):
        r = res["penalties"][pen]
        assert r["max_abs_delta_per_draw"] <= 0.005, (pen, r)
        assert r["speedup_c_search"] > 0
    assert res["variants"] == ["linear", "ica", "pca+ica", "pca"]


def test_l1_reference_fit_reaches_the_batched_solvers_objective():
    """The bench's L1 reference (scipy L-BFGS-B on W = U - V) and clipica's OWL-QN: one minimum."""
    import numpy as np

    from clipica.bench.fewshot import _l1_reference_fit
    from clipica.fewshot import fit_logistic_batch

    rng = np.random.default_rng(0)
    y = np.arange(40) % 4
    X = rng.normal(size=(4, 6))[y] + rng.normal(size=(40, 6))
    Xc = X - X.mean(axis=0)
    for C in (0.3, 3.0):
        W, b, _ = _l1_reference_fit(Xc, y, 4, C, tol=1e-8)
        ours = fit_logistic_batch(Xc[None], y[None], [C], n_classes=4, penalty="l1", tol=1e-6)
        np.testing.assert_array_equal((Xc @ W + b).argmax(1), (Xc @ ours["coef"][0] + ours["intercept"][0]).argmax(1))
