"""clipica.probe / ProbeReport and the batched logistic fast path, against known answers and sklearn."""

import json

import numpy as np
import pandas as pd
import pytest

from clipica.errors import InputError
from clipica.probes import (
    ProbeReport,
    auc_columns,
    auc_matrix,
    baseline_codes,
    fit_logistic,
    probe,
)


def _planted(seed, n=3000, n_attr=5, k=8, noise=0.3):
    """Component perm[j] = attribute j + noise; the remaining components are noise."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, n_attr)) < rng.uniform(0.2, 0.5, size=n_attr)).astype(float)
    perm = rng.permutation(k)[:n_attr]
    codes = rng.normal(size=(n, k)) * noise
    signs = rng.choice([-1.0, 1.0], size=n_attr)
    for j in range(n_attr):
        codes[:, perm[j]] += signs[j] * (Y[:, j] - Y[:, j].mean())
    labels = pd.DataFrame(Y.astype(int), columns=[f"attr{j}" for j in range(n_attr)])
    return codes, labels, perm, signs


# ---------------------------------------------------------------- rank statistics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matrix_equals_sklearn_with_ties_and_missing(seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(300, 4)), 1)  # many ties
    Y = (rng.random((300, 3)) < 0.3).astype(float)
    Y[rng.random(300) < 0.1, 2] = np.nan
    got = auc_matrix(scores, Y)
    for i in range(4):
        for j in range(3):
            ok = ~np.isnan(Y[:, j])
            assert got[i, j] == pytest.approx(roc_auc_score(Y[ok, j], scores[ok, i]), abs=1e-12)
    paired = auc_columns(scores[:, :3], Y)
    np.testing.assert_allclose(paired, np.diag(got[:3]), atol=1e-12)
    assert np.isnan(auc_matrix(scores, np.zeros((300, 1))))[0, 0]  # one class only


# ---------------------------------------------------------------- fast path vs sklearn


def _sklearn_aucs(X, Y, tr, te, C=1.0, cols=None, tol=1e-6):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    out = []
    for a in range(Y.shape[1]):
        use = np.arange(X.shape[1]) if cols is None else cols[a]
        ok_tr = tr[~np.isnan(Y[tr, a])]
        ok_te = te[~np.isnan(Y[te, a])]
        sc = StandardScaler().fit(X[ok_tr][:, use])
        m = LogisticRegression(C=C, tol=tol, max_iter=2000).fit(
            sc.transform(X[ok_tr][:, use]), Y[ok_tr, a]
        )
        out.append(roc_auc_score(Y[ok_te, a], m.decision_function(sc.transform(X[ok_te][:, use]))))
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("subsample", [8192, 400])  # all-rows L-BFGS; subsample + Newton
def test_fit_logistic_agrees_with_sklearn(seed, subsample):
    rng = np.random.default_rng(seed)
    n, p, A = 4000, 10, 6
    X = rng.normal(size=(n, p)) * rng.uniform(0.2, 5, size=p) + rng.normal(size=p)
    W = rng.normal(size=(p, A)) * (rng.random((p, A)) < 0.4)
    Y = (rng.random((n, A)) < 1 / (1 + np.exp(-(X - X.mean(0)) / X.std(0) @ W + 1.5))).astype(float)
    Y[rng.random(n) < 0.05, 0] = np.nan  # a label with missing rows
    tr, te = np.arange(3000), np.arange(3000, n)
    fit = fit_logistic(X[tr], Y[tr], C=0.5, subsample=subsample)
    assert fit.converged and fit.grad_norm <= 1e-4
    ours = auc_columns(fit.decision_function(X[te]), Y[te])
    ref = _sklearn_aucs(X, Y, tr, te, C=0.5)
    assert np.max(np.abs(ours - ref)) <= 0.005
    assert np.max(np.abs(ours - ref)) <= 1e-3  # in practice far inside the tolerance


def test_fit_logistic_feature_mask_equals_fit_on_columns():
    rng = np.random.default_rng(3)
    n, p, A = 3000, 8, 3
    X = rng.normal(size=(n, p))
    Y = (rng.random((n, A)) < 1 / (1 + np.exp(-X[:, :A] * 2))).astype(float)
    cols = [np.array([0, 5]), np.array([1]), np.array([2, 3, 7])]
    mask = np.zeros((p, A), dtype=bool)
    for a, c in enumerate(cols):
        mask[c, a] = True
    tr, te = np.arange(2000), np.arange(2000, n)
    fit = fit_logistic(X[tr], Y[tr], feature_mask=mask, subsample=300)
    assert np.all(fit.coef[~mask] == 0)
    ours = auc_columns(fit.decision_function(X[te]), Y[te])
    np.testing.assert_allclose(ours, _sklearn_aucs(X, Y, tr, te, cols=cols), atol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_logistic_supports_is_sklearns_minimiser_per_label(seed):
    from sklearn.linear_model import LogisticRegression

    from clipica.probes.logistic import fit_logistic_supports

    rng = np.random.default_rng(seed)
    n, p, A, k = 2500, 12, 5, 3
    X = rng.normal(size=(n, p)) * rng.uniform(0.2, 5, size=p) + rng.normal(size=p)
    Xs = (X - X.mean(0)) / X.std(0)
    supports = np.stack([rng.choice(p, size=k, replace=False) for _ in range(A)])
    logits = np.stack([Xs[:, s] @ rng.normal(scale=2.0, size=k) for s in supports], axis=1)
    Y = (rng.random((n, A)) < 1 / (1 + np.exp(-logits + 1.0))).astype(float)
    fit = fit_logistic_supports(X, Y, supports, C=0.3)
    assert fit.converged and fit.grad_norm <= 1e-4
    for a in range(A):
        off = np.setdiff1d(np.arange(p), supports[a])
        assert np.all(fit.coef[off, a] == 0)
        Z, w, c = Xs[:, supports[a]], fit.coef[supports[a], a], fit.intercept[a]
        # first-order optimality of (C * sum logloss + |w|^2 / 2) / (C n), and sklearn's minimiser (its
        # lbfgs stops ~1e-7 short of it, hence 1e-5)
        r = 1 / (1 + np.exp(-(Z @ w + c))) - Y[:, a]
        grad = np.append(0.3 * Z.T @ r + w, 0.3 * r.sum()) / (0.3 * n)  # fit_logistic's scaling
        assert np.abs(grad).max() < 1e-6
        ref = LogisticRegression(C=0.3, tol=1e-10, max_iter=5000).fit(Z, Y[:, a])
        np.testing.assert_allclose(w, ref.coef_[0], atol=1e-5)
        np.testing.assert_allclose(c, ref.intercept_[0], atol=1e-5)
    # logits of new rows use the same standardisation as the fit
    np.testing.assert_allclose(
        fit.decision_function(X[:7]), (Xs[:7] @ fit.coef) + fit.intercept, atol=1e-9
    )
    # warm start from nested supports (the sparse curve's k -> 2k) reaches the same minimiser
    wider = np.concatenate([supports, np.stack([np.setdiff1d(np.arange(p), s)[:2] for s in supports])], axis=1)
    cold = fit_logistic_supports(X, Y, wider, C=0.3)
    warm = fit_logistic_supports(X, Y, wider, C=0.3, init=fit)
    np.testing.assert_allclose(warm.coef, cold.coef, atol=1e-5)
    assert warm.n_iter < cold.n_iter


def test_fit_logistic_supports_skips_missing_rows_per_label():
    from clipica.probes.logistic import fit_logistic_supports

    rng = np.random.default_rng(4)
    n = 3000
    X = rng.normal(size=(n, 4))
    Y = (rng.random((n, 2)) < 1 / (1 + np.exp(-2 * X[:, :2]))).astype(float)
    Y[:500, 1] = np.nan
    supports = np.array([[0, 2], [1, 3]])
    fit = fit_logistic_supports(X[:2000], Y[:2000], supports)
    tr, te = np.arange(2000), np.arange(2000, n)
    ours = auc_columns(fit.decision_function(X[te]), Y[te])
    # sklearn standardises on the label's observed rows, we on all rows: same probe up to that
    np.testing.assert_allclose(ours, _sklearn_aucs(X, Y, tr, te, cols=list(supports)), atol=2e-3)
    with pytest.raises(InputError, match="supports"):
        fit_logistic_supports(X, Y, np.array([[0, 9], [1, 2]]))


# ---------------------------------------------------------------- the report


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_components_are_found(seed):
    codes, labels, perm, signs = _planted(seed)
    rep = probe(codes, labels)
    r = rep.codes["ica"]
    np.testing.assert_array_equal(r.best_component, perm)
    np.testing.assert_array_equal(r.pole, signs)
    assert np.all(r.best_auc > 0.95)
    assert np.all(np.abs(r.runner_up_auc - 0.5) < 0.05)
    # one component is enough: the sparse curve is flat from k = 1
    assert r.sparse_k[0] == 1 and r.sparse_k[-1] == 8
    assert np.all(r.sparse_auc[0] > 0.95)
    np.testing.assert_allclose(r.linear_probe_auc, r.sparse_auc[-1])
    assert np.all(r.linear_probe_balanced_accuracy > 0.85)
    table = rep.table()
    assert list(table.index) == list(labels.columns)
    assert (table["best_component"].to_numpy() == perm).all()


def test_rotated_codes_need_unmixing():
    """Mixing the planted codes hides the attributes from single components; ICA recovers them."""
    from sklearn.decomposition import FastICA

    codes, labels, perm, _ = _planted(0, n=4000, n_attr=4, k=4, noise=0.15)
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    mixed = codes @ Q
    unmixed = FastICA(n_components=4, whiten="unit-variance", random_state=0).fit_transform(mixed)
    rep = probe(unmixed, labels, baselines={"mixed": mixed})
    ica, mix = rep.codes["ica"], rep.codes["mixed"]
    assert np.all(ica.best_auc > 0.95)
    assert np.all(np.abs(ica.runner_up_auc - 0.5) < 0.06)  # exclusive after unmixing
    # mixed: every component carries several attributes, so runner-ups are strong too
    assert np.mean(mix.runner_up_auc) > 0.65
    assert np.mean(mix.best_auc) < np.mean(ica.best_auc)
    assert len(set(ica.best_component.tolist())) == 4  # one component per attribute
    # the full linear probe sees the same subspace either way
    np.testing.assert_allclose(ica.linear_probe_auc, mix.linear_probe_auc, atol=0.01)


def test_baselines_use_exactly_the_same_rows_and_split():
    codes, labels, *_ = _planted(1, n=1500)
    labels["split"] = np.where(np.arange(1500) % 5 == 0, "test", "train")
    rep = probe(codes, labels, baselines={"copy": codes.copy(), "neg": -codes})
    assert rep.split_source == "column"
    assert (rep.n_train, rep.n_test) == (1200, 300)
    main, copy, neg = rep.codes["ica"], rep.codes["copy"], rep.codes["neg"]
    np.testing.assert_array_equal(copy.auc, main.auc)
    np.testing.assert_allclose(neg.auc, 1 - main.auc, atol=1e-12)
    np.testing.assert_allclose(copy.linear_probe_auc, main.linear_probe_auc)
    np.testing.assert_allclose(neg.best_auc, main.best_auc)
    with pytest.raises(InputError, match="shape"):
        probe(codes, labels, baselines={"short": codes[:10]})


def test_split_column_with_val_only_and_seeded_default():
    codes, labels, *_ = _planted(2, n=1000)
    rep = probe(codes, labels)
    assert rep.split_source.startswith("seeded") and rep.n_test == 300
    labels["split"] = np.where(np.arange(1000) < 800, "train", "val")
    rep = probe(codes, labels)
    assert (rep.n_train, rep.n_test) == (800, 200)
    assert rep.split_info == {"rule": "column", "test_rows": "val"}


@pytest.mark.parametrize("only", ["train", "test"])
def test_store_with_one_split_gets_a_seeded_held_out_split_not_an_error(only):
    """A store extracted with one split (all rows 'train') is probed on seeded held-out rows,
    and probe.json says so (rule, seed, sizes, why)."""
    codes, labels, *_ = _planted(2, n=1000)
    seeded = probe(codes, labels, random_state=4)
    labels["split"] = only
    rep = probe(codes, labels, random_state=4)
    assert (rep.n_train, rep.n_test) == (700, 300)
    assert rep.split_info["rule"] == "seeded" and rep.split_info["random_state"] == 4
    assert "too few to hold rows out" in rep.split_info["reason"]
    np.testing.assert_array_equal(rep.codes["ica"].linear_probe_auc, seeded.codes["ica"].linear_probe_auc)
    d = rep.to_dict()["split"]
    assert d["rule"] == "seeded" and d["n_test"] == 300 and d["test_size"] == 0.3 and "reason" in d
    # an explicit split= that is unusable is the caller's error, named in API terms
    with pytest.raises(InputError, match="split= needs"):
        probe(codes, labels, split={"train": [0, 1, 2], "test": []})


def test_probe_report_round_trips_through_json():
    from clipica.errors import ArtifactError

    codes, labels, *_ = _planted(6, n=900, n_attr=3, k=5)
    labels["latent_x"] = np.random.default_rng(0).normal(size=900)
    labels.loc[3, "attr1"] = np.nan
    rep = probe(codes, labels, baselines={"neg": -codes})
    rep.metrics["mcc"] = {"score": 0.5}
    d = json.loads(json.dumps(rep.to_dict(fingerprints={"store": "s", "decomposition": "d"})))
    assert d["format"] == "clipica.probe/1" and d["fingerprints"]["decomposition"] == "d"
    back = ProbeReport.from_dict(d)
    assert back.to_dict() == rep.to_dict()
    assert back.attributes == rep.attributes and back.factors == ["latent_x"]
    for name in ("ica", "neg"):
        a, b = rep.codes[name], back.codes[name]
        for key in ("auc", "best_component", "best_auc", "pole", "runner_up_component", "sparse_auc",
                    "linear_probe_auc", "spearman", "factor_best_spearman"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    pd.testing.assert_frame_equal(back.table(), rep.table())
    assert back.metrics == {"mcc": {"score": 0.5}}
    with pytest.raises(ArtifactError, match="not a probe"):
        ProbeReport.from_dict({**d, "format": "clipica.names/1"})
    broken = {**d, "codes": {"ica": {"n_components": 5}}}
    with pytest.raises(ArtifactError, match="malformed"):
        ProbeReport.from_dict(broken)


def test_continuous_factors_get_spearman():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(2000, 2))
    codes = np.column_stack([rng.normal(size=2000), np.exp(z[:, 1]), -(z[:, 0] ** 3)])
    labels = pd.DataFrame({"latent_a": z[:, 0], "latent_b": z[:, 1], "id": np.arange(2000)})
    rep = probe(codes, labels)
    assert rep.attributes == [] and rep.factors == ["latent_a", "latent_b"]
    r = rep.codes["ica"]
    np.testing.assert_array_equal(r.factor_best_component, [2, 1])
    np.testing.assert_allclose(r.factor_best_spearman, [-1.0, 1.0])  # monotone maps: |rho| = 1
    assert rep.factor_table().loc["latent_a", "best_component"] == 2


def test_to_dict_json_schema_and_baseline_codes():
    codes, labels, perm, _ = _planted(5, n=1200, k=6)
    X = np.hstack([codes, np.random.default_rng(0).normal(size=(1200, 4)) * 0.1])
    bases = baseline_codes(X, 6)
    assert set(bases) == {"raw", "pca", "random_rotation"}
    # unit variance with ICA's convention (ddof=0)
    np.testing.assert_allclose(np.cov(bases["pca"].T, bias=True), np.eye(6), atol=1e-8)
    np.testing.assert_allclose(np.cov(bases["random_rotation"].T, bias=True), np.eye(6), atol=1e-8)
    rep = probe(codes, labels, baselines=bases)
    assert isinstance(rep, ProbeReport)
    d = json.loads(rep.to_json())
    entry = d["attributes"]["attr0"]
    for key in ("best_component", "best_auc", "runner_up_auc", "linear_probe_auc", "pole"):
        assert key in entry
    for base in ("raw", "pca", "random_rotation"):
        assert 0.5 <= entry[base]["best_auc"] <= 1.0
    assert entry["best_component"] == perm[0]
    assert set(d["summary"]) == {"ica", "raw", "pca", "random_rotation"}
    assert len(d["codes"]["raw"]["auc_matrix"]) == 10
    assert rep.matrix().shape == (6, 5)
    assert set(rep.sparse_curve()["codes"]) == {"ica", "raw", "pca", "random_rotation"}


def test_probe_rejects_bad_input():
    codes, labels, *_ = _planted(0, n=200)
    with pytest.raises(InputError, match="rows"):
        probe(codes[:100], labels)
    with pytest.raises(InputError, match="no label columns"):
        probe(codes, pd.DataFrame({"caption": ["a"] * 200}))
    with pytest.raises(InputError, match="0/1"):
        probe(codes, labels.assign(attr0=labels["attr0"] * 2), attributes=["attr0"])
    with pytest.raises(InputError, match="NaN or inf"):
        probe(np.full((200, 3), np.nan), labels)


# ---------------------------------------------------------------- heatmap and CLI


def test_diagonal_order_recovers_a_permuted_diagonal():
    from clipica.viz.probe import diagonal_order

    rng = np.random.default_rng(0)
    strength = rng.uniform(0, 0.1, size=(4, 7))
    cols = rng.permutation(7)[:4]
    for a, c in enumerate(cols):
        strength[a, c] = 0.5 - 0.05 * a
    rows, order = diagonal_order(strength)
    np.testing.assert_array_equal(rows, [0, 1, 2, 3])
    np.testing.assert_array_equal(order[:4], cols)
    assert sorted(order.tolist()) == list(range(7))


def test_plot_heatmap_returns_figure_with_attribute_names():
    from matplotlib.figure import Figure

    from clipica.viz.probe import plot_probe_heatmap

    codes, labels, perm, _ = _planted(3, n=800, n_attr=3, k=5)
    fig = plot_probe_heatmap(probe(codes, labels))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] != []
    assert {t.get_text() for t in ax.get_yticklabels()} == set(labels.columns)
    # the diagonal holds each attribute's best component
    xt = [int(t.get_text()) for t in ax.get_xticklabels()]
    yt = [t.get_text() for t in ax.get_yticklabels()]
    for i, a in enumerate(yt):
        assert xt[i] == perm[int(a[-1])]


@pytest.mark.filterwarnings("ignore:clipica FastICA did not converge")  # random-weight model
def test_cli_probe_writes_json_tables_and_heatmap(tmp_path, capsys):

    import clipica
    import tests.helpers.fake_models as fm
    from clipica.cli import main

    name = fm.register_tiny_open_clip(tmp_path)
    store = clipica.extract(
        model=name,
        pretrained="none",
        data="synthetic-faces:96",
        out=tmp_path / "store",
        progress=False,
        num_workers=0,
    )
    clipica.ICA(n_components=4, random_state=0).fit(store.image).save(tmp_path / "ica")
    args = ["probe", str(tmp_path / "store"), "--ica", str(tmp_path / "ica")]
    code = main([*args, "--out", str(tmp_path / "p"), "--metrics-rows", "96", "--dci-rows", "64",
                 "--dci-trees", "5"])
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "p"
    for f in ("probe.json", "attributes.csv", "auc_matrix.csv", "sparse_curve.csv", "heatmap.png"):
        assert (out / f).is_file(), f
    js = json.loads((out / "probe.json").read_text())
    attrs = [c for c in store.label_columns if not c.startswith("latent_")]
    some = next(a for a in attrs if a in js["attributes"])
    entry = js["attributes"][some]
    for key in ("best_component", "best_auc", "runner_up_auc", "linear_probe_auc"):
        assert key in entry
    for base in ("pca", "raw", "random_rotation"):
        assert "best_auc" in entry[base]
    assert {"dci", "mig", "sap", "modularity"} <= set(js)
    assert 0.0 <= js["dci"]["disentanglement"] <= 1.0
    # DCI's trees ran on a stated, seeded subsample of the metrics rows
    assert js["dci"]["model"] == "gradient_boosting" and js["dci"]["n_estimators"] == 5
    assert js["dci"]["n_rows"] == 64 and js["mig"]["n_rows"] == 96
    assert "subsample_seed" in js["dci"]
    if any(c.startswith("latent_") for c in store.label_columns):
        assert set(js["mcc"]) >= {"ica", "pca", "raw"}
    assert js["inputs"]["modality"] == "image" and js["inputs"]["n_components"] == 4
    # a second run refuses to overwrite; a wrong ICA dimension is a user error, exit 2
    assert main([*args, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "r"), "--dci-trees", "0"]) == 2
    assert "--dci-trees" in capsys.readouterr().err
    clipica.ICA(n_components=2, random_state=0).fit(
        np.random.default_rng(0).normal(size=(50, 5))
    ).save(tmp_path / "ica5")
    code = main(
        [
            "probe",
            str(tmp_path / "store"),
            "--ica",
            str(tmp_path / "ica5"),
            "--out",
            str(tmp_path / "q"),
        ]
    )
    assert code == 2 and "fitted on 5-d" in capsys.readouterr().err


def test_fit_logistic_wide_correlated_features_agree_with_sklearn():
    """More than 96 strongly correlated features: the preconditioned L-BFGS path."""
    rng = np.random.default_rng(7)
    n, p, A = 1500, 110, 2
    latent = rng.normal(size=(n, 6))
    X = latent @ rng.normal(size=(6, p)) + 0.3 * rng.normal(size=(n, p))
    Y = (rng.random((n, A)) < 1 / (1 + np.exp(-latent[:, :A] * 1.5))).astype(float)
    tr, te = np.arange(1000), np.arange(1000, n)
    fit = fit_logistic(X[tr], Y[tr])
    assert fit.converged
    ours = auc_columns(fit.decision_function(X[te]), Y[te])
    assert np.max(np.abs(ours - _sklearn_aucs(X, Y, tr, te, tol=1e-4))) <= 0.005


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_rotation_baseline_is_the_icas_whitening_rotated(dtype):
    """The decomposition-built baseline equals the one rotating ICA's own whitening_ (as before)."""
    from clipica.decompositions import ICA, RandomRotation

    rng = np.random.default_rng(3)
    X = (rng.laplace(size=(600, 8)) @ rng.normal(size=(8, 8))).astype(dtype)
    ica = ICA(5, random_state=0).fit(X)
    new = baseline_codes(X, 5, random_state=7)
    old = baseline_codes(X, 5, whitening=ica.whitening_, mean=ica.mean_, random_state=7)
    tol = 1e-9 if dtype == np.float64 else 2e-5  # codes come in X's dtype
    assert new["random_rotation"].dtype == old["random_rotation"].dtype == dtype
    np.testing.assert_allclose(new["random_rotation"], old["random_rotation"], rtol=tol, atol=tol)
    ref = RandomRotation(5, random_state=7).fit(X).transform(X)
    np.testing.assert_allclose(new["random_rotation"], ref, rtol=tol, atol=tol)
    assert new["raw"] is X  # the raw baseline is the data itself, never copied
    assert set(new) == {"raw", "pca", "random_rotation"}


def test_subsampled_curves_agree_with_the_full_computation_and_say_so():
    """curve_rows fits the sparse curves k < K on a subsample; best-single and linear-probe AUCs
    stay the full computation's exactly, the curve points stay close, probe.json says what was
    subsampled."""
    codes, labels, perm, _ = _planted(7, n=4000, n_attr=4, k=10)
    X = np.hstack([codes, np.random.default_rng(1).normal(size=(4000, 6))]).astype(np.float32)
    bases = baseline_codes(X, 10)
    full = probe(codes, labels, baselines=bases, curve_rows=None)
    fast = probe(codes, labels, baselines=bases, curve_rows=1000)
    assert fast.subsampling["curve_rows"] == 1000 and "seeded subsample" in fast.subsampling["curves"]
    assert full.subsampling["curve_rows"] == full.n_train
    for name in full.codes:
        f, g = full.codes[name], fast.codes[name]
        np.testing.assert_array_equal(f.best_component, g.best_component)
        np.testing.assert_array_equal(f.best_auc, g.best_auc)
        np.testing.assert_allclose(g.linear_probe_auc, f.linear_probe_auc, atol=1e-12)
        # k = 1: a one-feature probe ranks rows by that feature whatever its weight's size
        np.testing.assert_allclose(g.sparse_auc[0], f.sparse_auc[0], atol=1e-12)
        assert np.nanmax(np.abs(g.sparse_auc - f.sparse_auc)) <= 0.01
    assert np.all(fast.codes["ica"].best_component == perm[:4])
    d = json.loads(fast.to_json())
    assert d["subsampling"]["curve_rows"] == 1000
    assert ProbeReport.from_dict(d).subsampling == fast.subsampling
    # all training rows when a subsample would leave a label with fewer than 10 of a class
    rare = labels.copy()
    rare.loc[rare.index[20:], "attr0"] = 0
    few = probe(codes, rare, curve_rows=1000)
    assert "every training row" in few.subsampling["curves"]
    with pytest.raises(InputError, match="curve_rows"):
        probe(codes, labels, curve_rows=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_average_ranks_equal_scipy_rankdata_with_ties(dtype):
    from scipy.stats import rankdata

    from clipica.probes.scores import average_ranks

    rng = np.random.default_rng(0)
    S = rng.normal(size=(500, 6)).astype(dtype)
    S[:, 1] = np.round(S[:, 1])  # many ties
    S[:, 2] = 3.0  # one run
    S[::7, 3] = S[0, 3]  # some
    np.testing.assert_array_equal(average_ranks(S), rankdata(S, axis=0, method="average"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_sort_gives_the_subset_ranks_and_aucs(seed):
    """average_ranks(S, rows) and auc_matrix(subset=) equal ranking / scoring the rows alone."""
    from scipy.stats import rankdata
    from sklearn.metrics import roc_auc_score

    from clipica.probes.scores import average_ranks

    rng = np.random.default_rng(seed)
    S = rng.normal(size=(400, 5)).astype(np.float32)
    S[:, 1] = np.round(S[:, 1])  # ties inside and across the subset
    S[::5, 2] = S[0, 2]
    rows = np.sort(rng.choice(400, 250, replace=False))
    full, sub = average_ranks(S, rows)
    np.testing.assert_array_equal(full, rankdata(S, axis=0, method="average"))
    np.testing.assert_array_equal(sub, rankdata(S[rows], axis=0, method="average"))
    Y = (rng.random((400, 3)) < 0.3).astype(float)
    auc, auc_sub = auc_matrix(S, Y, subset=(rows, Y[rows][:, :2]), block=2)
    np.testing.assert_allclose(auc, auc_matrix(S, Y), atol=1e-12)
    for j in range(5):
        for a in range(2):
            assert auc_sub[j, a] == pytest.approx(roc_auc_score(Y[rows, a], S[rows, j]), abs=1e-12)
    Y[3, 0] = np.nan  # a missing label: two separate passes, the same answer
    auc, auc_sub = auc_matrix(S, Y, subset=(rows, Y[rows]))
    np.testing.assert_allclose(auc_sub, auc_matrix(S, Y[rows], rows=rows), atol=1e-12)


def test_fit_logistic_leaves_its_input_unchanged():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 3)) + 5.0
    Y = (rng.random((300, 2)) < 0.4).astype(float)
    before = X.copy()
    fit_logistic(X, Y)
    fit_logistic(X, Y[::2], rows=np.arange(0, 300, 2))
    np.testing.assert_array_equal(X, before)


def test_probe_with_an_executor_gives_the_same_report():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    codes = rng.normal(size=(600, 4))
    labels = pd.DataFrame({"a": (codes[:, 0] > 0).astype(float), "b": (codes[:, 2] > 0.5).astype(float)})
    bases = {"other": rng.normal(size=(600, 6))}
    plain = probe(codes, labels, baselines=bases).to_dict()
    with ThreadPoolExecutor(2) as pool:
        pooled = probe(codes, labels, baselines=bases, executor=pool).to_dict()
    assert list(pooled["codes"]) == ["ica", "other"]  # the given order, not the run order
    assert pooled == plain
