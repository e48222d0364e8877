"""fit_logistic's Newton stage on all rows (clipica.probes._logistic_newton) against scikit-learn's
minimiser, on the shape that made the stacked L-BFGS slow: rare, nearly separable attributes."""

import numpy as np
import pytest

from clipica.probes import auc_columns, fit_logistic


def _nearly_separable(seed, n=6000, p=12, prevalence=(0.02, 0.04, 0.1, 0.3, 0.5), noise=0.15):
    """Each label is a clean direction of the features thresholded at its prevalence, plus a
    little noise (CelebA's attributes in the realistic bench store, in small)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + rng.normal(size=p)
    Xs = (X - X.mean(0)) / X.std(0)
    V = rng.normal(size=(p, len(prevalence)))
    score = Xs @ V / np.linalg.norm(V, axis=0) + noise * rng.normal(size=(n, len(prevalence)))
    cut = np.array([np.quantile(score[:, a], 1 - q) for a, q in enumerate(prevalence)])
    Y = (score > cut).astype(float)
    return X, Xs, Y


def _objective(Xs, y, w, c, C):
    """scikit-learn's objective divided by C n (fit_logistic's scaling)."""
    z = Xs @ w + c
    return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * (w @ w) / (C * y.size))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("C", [1.0, 0.05])
def test_newton_stage_reaches_sklearns_minimiser_on_rare_nearly_separable_labels(seed, C):
    from sklearn.linear_model import LogisticRegression

    X, Xs, Y = _nearly_separable(seed)
    # subsample=500 < n / 2: the subsample start, then the Newton stage on all rows
    fit = fit_logistic(X, Y, C=C, subsample=500, dtype=np.float64, tol=1e-9)
    assert fit.converged and fit.grad_norm <= 1e-9
    for a in range(Y.shape[1]):
        ref = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(Xs, Y[:, a])
        w, c = fit.coef[:, a], fit.intercept[a]
        # the same minimiser: objective equal to rounding, weights to the gradient tolerance's reach
        ours, theirs = _objective(Xs, Y[:, a], w, c, C), _objective(Xs, Y[:, a], ref.coef_[0], ref.intercept_[0], C)
        assert ours <= theirs + 1e-12
        scale = max(1.0, float(np.abs(ref.coef_[0]).max()))
        np.testing.assert_allclose(w, ref.coef_[0], atol=1e-5 * scale)
        np.testing.assert_allclose(c, ref.intercept_[0], atol=1e-5 * scale)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_float32_fit_on_nearly_separable_labels_agrees_with_sklearn(seed):
    """The probe's own setting (float32 passes, tol 1e-4): held-out AUCs as scikit-learn's."""
    from sklearn.linear_model import LogisticRegression

    X, Xs, Y = _nearly_separable(seed, n=8000)
    Y[np.random.default_rng(seed).random(len(Y)) < 0.05, 1] = np.nan  # a label with missing rows
    tr, te = np.arange(6000), np.arange(6000, 8000)
    fit = fit_logistic(X[tr], Y[tr], subsample=500)
    assert fit.converged and fit.grad_norm <= 1e-4
    ours = auc_columns(fit.decision_function(X[te]), Y[te])
    mean, sd = X[tr].mean(0), X[tr].std(0)
    ref = []
    for a in range(Y.shape[1]):
        ok = ~np.isnan(Y[tr, a])
        m = LogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=1000).fit(
            ((X[tr] - mean) / sd)[ok], Y[tr][ok, a])
        okt = ~np.isnan(Y[te, a])
        ref.append(auc_columns(m.decision_function((X[te][okt] - mean) / sd)[:, None], Y[te][okt, a : a + 1])[0])
    assert np.max(np.abs(ours - np.array(ref))) <= 1e-4


def test_newton_stage_needs_few_passes_over_the_rows(monkeypatch):
    """The regression that made the probe slow on the realistic store: the stacked L-BFGS needed
    ~120 passes per code set; on nearly separable labels the subsample-Hessian steps stall and
    per-label Newton finishes in a handful (counted, not timed)."""
    import clipica.probes.logistic as logistic
    from clipica.probes import _logistic_newton

    X, _, Y = _nearly_separable(0, n=20000, p=16)
    passes = {"per_label": 0, "lbfgs": 0}
    real_stage, real_finish = _logistic_newton.newton_stage, logistic._finish

    def stage(*args, **kwargs):
        n, g = real_stage(*args, **kwargs)
        passes["per_label"] += n
        return n, g

    def finish(*args, **kwargs):
        passes["lbfgs"] += 1
        return real_finish(*args, **kwargs)

    total = {}
    real_newton = logistic.newton

    def newton(*args, **kwargs):
        total["passes"], g = real_newton(*args, **kwargs)
        return total["passes"], g

    monkeypatch.setattr(_logistic_newton, "newton_stage", stage)
    monkeypatch.setattr(logistic, "_finish", finish)
    monkeypatch.setattr(logistic, "newton", newton)
    fit = fit_logistic(X, Y)
    assert fit.converged
    assert passes["lbfgs"] == 0  # no L-BFGS over all rows was needed
    assert total["passes"] <= 40  # <= 10 subsample-Hessian steps, then 2 per Newton step + 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_label_newton_alone_reaches_sklearns_minimiser(monkeypatch, seed):
    """Where the subsample-Hessian steps stall (CelebA-sized stores with rare attributes: their
    start is far from the optimum), per-label Newton carries the fit from the subsample's start:
    forced to do all of it here, it needs no L-BFGS and lands on scikit-learn's minimiser."""
    from sklearn.linear_model import LogisticRegression

    import clipica.probes.logistic as logistic
    from clipica.probes import _logistic_newton

    X, Xs, Y = _nearly_separable(seed)
    lbfgs = []
    real_finish = logistic._finish
    monkeypatch.setattr(_logistic_newton, "_newton_steps", lambda *a, **k: (0, np.inf))
    monkeypatch.setattr(logistic, "_finish", lambda *a, **k: lbfgs.append(1) or real_finish(*a, **k))
    fit = fit_logistic(X, Y, C=1.0, subsample=500, dtype=np.float64, tol=1e-9)
    assert fit.converged and fit.grad_norm <= 1e-9 and lbfgs == []
    for a in range(Y.shape[1]):
        ref = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(Xs, Y[:, a])
        w, c = fit.coef[:, a], fit.intercept[a]
        ours, theirs = _objective(Xs, Y[:, a], w, c, 1.0), _objective(Xs, Y[:, a], ref.coef_[0], ref.intercept_[0], 1.0)
        assert ours <= theirs + 1e-12
        np.testing.assert_allclose(w, ref.coef_[0], atol=1e-5 * max(1.0, float(np.abs(ref.coef_[0]).max())))


def test_labels_the_subsample_hessian_fits_well_need_no_per_label_newton(monkeypatch):
    """Common, well-spread labels (the bench probe's kind): the steps with the subsample's Hessian
    converge on their own, and the costlier per-label stage never runs."""
    import clipica.probes.logistic as logistic
    from clipica.probes import _logistic_newton

    rng = np.random.default_rng(3)
    X = rng.standard_normal((30000, 12)).astype(np.float32)
    logits = X[:, :3] @ rng.standard_normal((3, 4))
    Y = (rng.random((30000, 4)) < 1 / (1 + np.exp(-logits))).astype(float)
    called = []
    monkeypatch.setattr(_logistic_newton, "newton_stage", lambda *a, **k: called.append(1) or (0, np.inf))
    monkeypatch.setattr(logistic, "_finish", lambda *a, **k: called.append(2))
    fit = fit_logistic(X, Y)
    assert fit.converged and called == []


@pytest.mark.parametrize("rows", [None, "every_other"])
def test_streamed_rows_are_the_standardised_copy(rows):
    from clipica.probes._logistic_solver import StreamedRows, _blocked_stats, _standardised

    rng = np.random.default_rng(5)
    X = (rng.normal(size=(3000, 130)) * rng.uniform(0.1, 4, size=130) + 3.0).astype(np.float32)
    idx = None if rows is None else np.arange(0, 3000, 2)
    mean, scale = _blocked_stats(X, idx)
    copy = _standardised(X, mean, scale, np.float32, idx)
    S = StreamedRows(X, idx, mean, scale, np.float32)
    assert S.shape == copy.shape and S.dtype == copy.dtype
    W = rng.normal(size=(130, 3)).astype(np.float32)
    R = rng.normal(size=(copy.shape[0], 3)).astype(np.float32)
    np.testing.assert_allclose(S @ W, copy @ W, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(S.T @ R, copy.T.astype(np.float64) @ R, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(S[np.array([4, 0, 7])], copy[[4, 0, 7]], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(S[10:20], copy[10:20], rtol=1e-6, atol=1e-6)


def test_a_wide_fit_on_a_memmap_never_holds_a_copy_of_it(tmp_path):
    """More than 96 features (raw embedding dimensions): the passes stream the rows, so the
    fit's peak memory stays a small fraction of the matrix (it was 0.7x for 70 % of the rows)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n, p = 200_000, 128
    X = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(n, p))
    for a in range(0, n, 20_000):
        X[a : a + 20_000] = rng.normal(size=(20_000, p))
    Y = (X[:, :2] + 0.5 * rng.normal(size=(n, 2)) > 1.0).astype(float)
    tr = np.sort(rng.choice(n, size=int(0.7 * n), replace=False))
    tracemalloc.start()
    try:
        fit = fit_logistic(X, Y[tr], rows=tr, subsample=2000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fit.converged
    assert peak < 0.2 * X.nbytes
    # the same fit as on an in-memory copy of the rows
    ref = fit_logistic(np.array(X[tr]), Y[tr], subsample=2000)
    np.testing.assert_allclose(fit.coef, ref.coef, atol=1e-3)
