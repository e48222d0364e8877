"""Few-shot probes (clipica.fewshot, clipica.probes.multinomial): solver, sampling, masking, planted answers, CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from clipica.errors import InputError
from clipica.fewshot import (
    FewShotResult,
    FewShotRuns,
    class_codes,
    fit_variant,
    masked_accuracy,
    run_fewshot,
    sample_fewshot,
    variant_dims,
)
from clipica.probes.multinomial import fit_multinomial_path


# ------------------------------------------------------------------------- the solver
def _blobs(seed, n=60, d=5, k=3, offset=4.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(k, d))[y] + rng.normal(size=(n, d)) + offset  # uncentred, like CLIP features
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("C", [1e-2, 1.0, 30.0])
def test_multinomial_matches_sklearn_optimum(seed, C):
    from sklearn.linear_model import LogisticRegression

    X, y = _blobs(seed)
    ours = fit_multinomial_path(X[None], y[None], [C], tol=1e-7, max_iter=5000)
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=20000).fit(X, y)
    assert ours.converged.all()
    np.testing.assert_allclose(ours.decision_function(X, 0, 0), ref.decision_function(X), atol=2e-4 * max(1, C))


@pytest.mark.parametrize("seed", [0, 1])
def test_separable_draw_at_large_c_reaches_the_minimiser(seed):
    """16 rows of 4 classes in 32-d are separable: at C = 1e6 the objective is ~1e-7. The
    earlier rule (largest gradient entry <= 1e-8 x its value at zero) stopped with weights
    ~3 % off and 1-2 % of the predictions below different (measured); the weight rule must
    give scikit-learn's newton-cg minimiser."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), 4)
    X = rng.normal(size=(4, 32))[y] * 0.5 + rng.laplace(size=(16, 32)) * np.linspace(2, 0.3, 32) + 3.0
    Xte = rng.normal(size=(500, 32)) * 2 + 3.0
    ours = fit_multinomial_path(X[None], y[None], [1e6], tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(C=1e6, solver="newton-cg", tol=1e-13, max_iter=10000).fit(X, y)
    assert ours.converged.all()
    W = ours.coef[0, 0]
    assert np.linalg.norm(W - ref.coef_.T) <= 1e-4 * np.linalg.norm(ref.coef_)
    assert (ours.decision_function(Xte, 0, 0).argmax(1) == ref.predict(Xte)).all()


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_objective_and_gradient_equal_the_textbook_formulas_even_at_huge_margins(scale):
    """At scale 1e4 rows are misclassified by margins far beyond exp's range (e_y underflows
    to 0): the objective must stay finite and exact, with no warning."""
    from scipy.special import logsumexp, softmax

    from clipica.probes.softmax import loss_grad as _loss_grad

    rng = np.random.default_rng(0)
    T, n, r, k = 2, 10, 3, 4
    Z = rng.normal(size=(T, n, r))
    y = rng.integers(0, k, size=(T, n))
    Y = np.eye(k)[y][:, :, None, :]
    W, b, inv = rng.normal(size=(T, 1, r, k)) * scale, rng.normal(size=(T, 1, k)), np.full((T, 1), 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f, gW, gb = _loss_grad(Z, Y, W, b, inv)
    z = np.einsum("tnr,tmrk->tnmk", Z, W) + b[:, None]
    ref = (logsumexp(z, -1) - np.take_along_axis(z, y[:, :, None, None], -1)[..., 0]).mean(1)
    np.testing.assert_allclose(f, ref + 0.5 * inv * (W * W).sum((2, 3)), rtol=1e-12)
    R = softmax(z, -1) - Y
    np.testing.assert_allclose(gW, np.einsum("tnr,tnmk->tmrk", Z, R) / n + inv[..., None, None] * W,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, R.mean(1), atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hessian_vector_products_equal_the_textbook_hessian(seed):
    """H (V, v) against the explicit Hessian of the softmax cross-entropy (sum_i (diag p_i - p_i p_i')
    kron z_i z_i', plus the penalty), with margins of 1e1 where 1 - p_y ~ 1e-5; and the diagonal."""
    from scipy.special import softmax

    from clipica.probes.softmax import hess_diag, hess_vec, loss_grad

    rng = np.random.default_rng(seed)
    T, n, r, k = 2, 9, 3, 4
    Z = rng.normal(size=(T, n, r))
    y = rng.integers(0, k, size=(T, n))
    Y = np.eye(k)[y][:, :, None, :]
    W, b, inv = rng.normal(size=(T, 1, r, k)) * 3, rng.normal(size=(T, 1, k)), np.full((T, 1), 0.1)
    V, v = rng.normal(size=(T, 1, r, k)), rng.normal(size=(T, 1, k))
    *_, terms = loss_grad(Z, Y, W, b, inv, curvature=True)
    HV, Hv = hess_vec(Z, Y, terms, inv, V, v)
    diag = hess_diag(Z, Y, terms, inv)
    for t in range(T):
        A = np.concatenate([Z[t], np.ones((n, 1))], axis=1)  # the intercept as a last column
        p = softmax(A @ np.vstack([W[t, 0], b[t, 0]]), axis=1)
        H = sum(np.kron(A[i][:, None] * A[i][None], np.diag(p[i]) - np.outer(p[i], p[i])) for i in range(n)) / n
        H[: r * k, : r * k] += inv[t, 0] * np.eye(r * k)
        ref = (H @ np.vstack([V[t, 0], v[t, 0]]).ravel()).reshape(r + 1, k)
        np.testing.assert_allclose(HV[t, 0], ref[:r], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Hv[t, 0], ref[r], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(diag[t, 0, : r * k], np.diag(H)[: r * k], rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_reaches_sklearns_minimiser_at_every_c_of_the_grid(seed):
    """The default (truncated Newton) solver against scikit-learn's newton-cg at tol 1e-12, from
    zero and C = 1e-4 ... 1e4, tasks of different ranks in one batch (the raw features and a
    2-column projection): the same objective and predictions; the padded columns stay unused."""
    from scipy.special import log_softmax
    from sklearn.linear_model import LogisticRegression

    X, y = _blobs(seed, n=48, d=6, k=4)
    X2 = np.pad(X[:, :2] * 3, ((0, 0), (0, 4)))
    Xb, yb = np.stack([X, X2]), np.stack([y, y])
    Cs = [1e-4, 1e-2, 1.0, 1e2, 1e4]
    ours = fit_multinomial_path(Xb, yb, Cs, tol=1e-8, max_iter=5000)
    assert ours.converged.all()
    assert (ours.coef[1, :, 2:] == 0).all()

    def objective(Xt, W, b, C):
        return -log_softmax(Xt @ W + b, axis=1)[np.arange(len(y)), y].mean() + (W * W).sum() / (2 * C * len(y))

    for t in range(2):
        for j, C in enumerate(Cs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = LogisticRegression(C=C, solver="newton-cg", tol=1e-12, max_iter=10000).fit(Xb[t], y)
            f_ours = objective(Xb[t], ours.coef[t, j], ours.intercept[t, j], C)
            f_ref = objective(Xb[t], ref.coef_.T, ref.intercept_, C)
            assert abs(f_ours - f_ref) <= 1e-9 * f_ref, (t, C, f_ours, f_ref)
            np.testing.assert_array_equal(ours.decision_function(Xb[t], t, j).argmax(1), ref.predict(Xb[t]))


def test_batched_problems_equal_separate_fits_and_warm_starts_do_not_move_the_optimum():
    X0, y0 = _blobs(0)
    X1, y1 = _blobs(1)
    Cs = [0.1, 3.0]
    both = fit_multinomial_path(np.stack([X0, X1]), np.stack([y0, y1]), Cs, tol=1e-7, max_iter=5000)
    one = fit_multinomial_path(X1[None], y1[None], Cs, tol=1e-7, max_iter=5000)
    np.testing.assert_allclose(both.coef[1], one.coef[0], atol=1e-5)
    # start C=3 from the C=0.1 solution: same minimiser
    warm = fit_multinomial_path(X1[None], y1[None], [3.0], coef0=one.coef[:, :1], intercept0=one.intercept[:, :1],
                                tol=1e-7, max_iter=5000)
    np.testing.assert_allclose(warm.coef[0, 0], one.coef[0, 1], atol=1e-5)
    np.testing.assert_allclose(warm.intercept[0, 0], one.intercept[0, 1], atol=1e-5)


# ------------------------------------------------------------------------- classes and sampling
def test_class_codes_from_a_combination_of_columns():
    import pandas as pd

    df = pd.DataFrame({"A": [0, 1, 0, 1, None], "B": [0, 0, 1, 1, 1]})
    codes, classes = class_codes(df, "A+B")
    assert classes == ["A=0,B=0", "A=0,B=1", "A=1,B=0", "A=1,B=1"]
    assert codes.tolist() == [0, 2, 1, 3, -1]
    with pytest.raises(InputError, match="no label column Smiling.*A, B"):
        class_codes(df, "A+Smiling")


def test_sampling_is_reproducible_per_class_and_nested_across_shots():
    codes = np.repeat(np.arange(4), 30)
    np.random.default_rng(0).shuffle(codes)
    tr, va = sample_fewshot(codes, 4, 4, 2, seed=3)
    tr2, va2 = sample_fewshot(codes, 4, 4, 2, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert np.bincount(codes[tr]).tolist() == [4] * 4 and np.bincount(codes[va]).tolist() == [2] * 4
    assert not set(tr) & set(va)
    other, _ = sample_fewshot(codes, 4, 4, 2, seed=4)
    assert not np.array_equal(tr, other)
    # nested: the 2-shot draw is the first 2 rows of each class's 4-shot draw
    small, _ = sample_fewshot(codes, 4, 2, 2, seed=3)
    assert np.array_equal(small, tr.reshape(4, 4)[:, :2].ravel())
    # per class: excluding rows of class 3 does not change the draws of classes 0-2
    cut = codes.copy()
    cut[np.flatnonzero(codes == 3)[:5]] = -1
    tr3, _ = sample_fewshot(cut, 4, 4, 2, seed=3)
    assert np.array_equal(tr3[:12], tr[:12])


def test_a_class_with_too_few_rows_is_one_clear_error():
    codes = np.array([0] * 10 + [1] * 3)
    with pytest.raises(InputError, match=r"class 'b' has 3 rows.*2 shots \+ 2 validation shots need 4"):
        sample_fewshot(codes, 2, 2, 2, 0, classes=["a", "b"])


def test_dims_follow_the_paper_when_rows_allow_and_scale_by_one_factor_otherwise():
    assert variant_dims(16 * 1000 + 4 * 1000, 512) == {"pca_dims": 500, "ica": 300, "pca+ica": 160, "pca": 300}
    d = variant_dims(16 * 20, 64)  # 16 classes, 16+4 shots, 64-d: f = 64/500
    assert d == {"pca_dims": 64, "ica": 38, "pca+ica": 20, "pca": 38}
    d = variant_dims(32, 64)  # f = 32 / 1200: at least 4 rows per ICA component
    assert d["ica"] <= 32 / 4 and d["pca+ica"] <= d["ica"] <= d["pca_dims"]


# ------------------------------------------------------------------------- masked evaluation
def test_masked_accuracy_ignores_classes_absent_from_the_test_set():
    logits = np.array([[0.0, 1.0, 5.0], [2.0, 1.0, 9.0], [0.0, 3.0, 4.0]])
    y = np.array([1, 0, 1])
    assert masked_accuracy(logits, y, np.array([True, True, True])) == 0.0
    assert masked_accuracy(logits, y, np.array([True, True, False])) == 1.0


def test_shifted_set_scores_only_its_classes_and_drops_unseen_ones():
    X, y = _blobs(0, n=300, d=6, k=3, offset=0.0)
    Xt, yt = _blobs(1, n=90, d=6, k=3, offset=0.0)
    unseen = np.where(yt == 2, -1, yt)  # class 2's rows marked as a class the probe never saw
    sub = yt < 2
    one = np.flatnonzero(yt == 2)[:1]
    both = np.concatenate([np.flatnonzero(sub), one])
    tests = {
        "in-domain": (Xt, yt),
        "unseen": (Xt, unseen),  # class 2's rows dropped, class 2 masked
        "masked": (Xt[sub], yt[sub]),  # class 2 absent: masked
        "unmasked": (Xt[both], yt[both]),  # the same rows plus one of class 2: nothing masked
    }
    res = run_fewshot(X, y, ["a", "b", "c"], tests, shots=(2,), val_shots=(2,), seeds=range(3),
                      variants=("linear",))
    assert res.test_info["unseen"] == {"rows": 60, "classes_present": 2, "rows_dropped": 30}
    assert res.test_info["unmasked"]["classes_present"] == 3
    acc = res.accuracy[:, 0, 0, :]
    np.testing.assert_array_equal(acc[:, 1], acc[:, 2])
    # masking only removes wrong answers: correct counts on the 60 shared rows never drop
    assert (np.round(acc[:, 2] * 60) >= np.round(acc[:, 3] * 61) - 1).all()
    assert (acc[:, 2] > acc[:, 3]).any()  # and it matters on these overlapping blobs


# ------------------------------------------------------------------------- planted answer
def _planted(n, seed, k=4, d=6):
    """Class = level of one 4-level source; d - 1 heavy Laplace nuisance sources (scale 3), mixed."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    S = np.empty((n, d))
    S[:, 0] = (y - (k - 1) / 2) + 0.15 * rng.normal(size=n)
    S[:, 1:] = rng.laplace(scale=3.0, size=(n, d - 1))
    A = np.random.default_rng(99).normal(size=(d, d))
    return S @ A.T, y, S


def test_ica_isolates_the_planted_class_source():
    X, y, S = _planted(600, 0)
    for seed in range(3):
        tr, va = sample_fewshot(y, 4, 32, 4, seed)
        rows = np.concatenate([tr, va])
        F = fit_variant("ica", X[rows], {"ica": 6}, seed)(X)
        corr = np.abs(np.corrcoef(F.T, S[:, 0])[-1, :-1])
        assert corr.max() > 0.9, corr


def test_whitening_variants_beat_the_raw_probe_on_planted_data_and_ica_equals_whitened_pca():
    X, y, _ = _planted(800, 0, d=8)
    Xt, yt, _ = _planted(800, 1, d=8)
    full = {"pca_dims": 8, "ica": 8, "pca+ica": 8, "pca": 8}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_fewshot(X, y, list("abcd"), {"in-domain": (Xt, yt)}, shots=(2, 4), val_shots=(2, 4),
                          seeds=range(3), variants=("linear", "ica", "pca"), dims=full)
    acc = res.accuracy[..., 0].mean(axis=0)  # (shots, variants)
    assert (acc[:, 1] > acc[:, 0] + 0.1).all(), acc
    # the L2 penalty is rotation invariant: ICA = whitened PCA of the same K, up to solver tolerance
    assert np.abs(res.accuracy[:, :, 1] - res.accuracy[:, :, 2]).mean() < 0.01


# ------------------------------------------------------------------------- result and CLI
def test_result_round_trips_and_tables_carry_the_shift_average(tmp_path):
    X, y = _blobs(0, n=120, d=4, k=2, offset=0.0)
    Xt, yt = _blobs(1, n=40, d=4, k=2, offset=0.0)
    res = run_fewshot(X, y, ["a", "b"], {"in-domain": (Xt, yt), "s1": (Xt + 1, yt), "s2": (Xt - 1, yt)},
                      shots=(1, 2), val_shots=(1, 1), seeds=range(2), variants=("linear", "pca"))
    res.save(tmp_path / "fewshot.json")
    back = FewShotResult.load(tmp_path / "fewshot.json")
    np.testing.assert_allclose(back.accuracy, res.accuracy)
    np.testing.assert_allclose(back.C, res.C)
    assert json.loads((tmp_path / "fewshot.json").read_text())["format"] == "clipica.fewshot/2"
    assert len(res.records()) == 2 * 2 * 2 * 3
    np.testing.assert_allclose(res.shift_average(), res.accuracy[..., 1:].mean(axis=-1))
    assert "shift average" in res.markdown() and "±" in res.markdown()


def _store(path, X, labels: dict):
    from clipica.embeddings.store import StoreWriter

    cols = list(labels)
    w = StoreWriter(path, {"model": "m", "data": "d"})
    w.begin({"schema_version": 1, "key": {"model": "m", "data": "d"}, "embed_dim": X.shape[1], "has_text": False,
             "label_columns": cols, "model": {"spec": "m"}, "data": {"spec": "d"}}, 0)
    rows = [{"id": f"r{i}", "source_index": i, "caption": "c", "split": None, "caption_truncated": False,
             **{c: int(labels[c][i]) for c in cols}} for i in range(len(X))]
    w.commit(X.astype(np.float32), None, rows, errors=[], next_position=len(X))
    w.finalize()
    return path


def test_cli_runs_on_stores_and_bad_inputs_exit_2(tmp_path, capsys):
    from clipica.cli import main

    X, y = _blobs(0, n=160, d=5, k=4, offset=2.0)
    lab = {"A": y % 2, "B": y // 2}
    train = _store(tmp_path / "train", X, lab)
    Xs, ys = _blobs(1, n=40, d=5, k=4, offset=2.5)
    keep = ys != 3  # one class absent from the shifted store
    shift = _store(tmp_path / "shift", Xs[keep], {"A": (ys % 2)[keep], "B": (ys // 2)[keep]})
    out = tmp_path / "out"
    args = ["fewshot", "--train", str(train), "--label", "A+B", "--shift", f"dark={shift}", "--out", str(out),
            "--shots", "1,2", "--seeds", "2", "--variants", "linear,pca"]
    assert main(args) == 0
    runs = FewShotRuns.load(out / "fewshot.json")
    assert [(r.penalty, r.fit_on) for r in runs.results] == [
        ("l2", "fewshot"), ("l2", "store"), ("l1", "fewshot"), ("l1", "store")]
    res = runs.results[0]
    assert res.test_sets == ["in-domain", "dark"] and res.test_info["dark"]["classes_present"] == 3
    # the store's model "m" cannot be loaded: one line says so, the rest of the table is written
    assert res.zeroshot is None and "Zero-shot skipped" in res.zeroshot_note and res.variants == ["linear", "pca"]
    assert res.fingerprints["store"] and res.fingerprints["shift:dark"] and res.fingerprints["params"]
    for name in ("table.md", "table.csv", "fewshot.png"):
        assert (out / name).stat().st_size > 0
    table = (out / "table.md").read_text()
    assert all(r.claim() in table for r in runs.results) and "Zero-shot skipped" in table
    capsys.readouterr()
    # stage semantics: the same stores and settings reuse fewshot.json, other settings recompute it
    mtime = (out / "fewshot.json").stat().st_mtime_ns
    assert main(args) == 0
    assert "reused" in capsys.readouterr().out and (out / "fewshot.json").stat().st_mtime_ns == mtime
    assert main([*args[:-2], "--variants", "linear"]) == 0
    assert "reused" not in capsys.readouterr().out
    assert FewShotResult.load(out / "fewshot.json").variants == ["linear"]
    assert main([*args[:-2], "--variants", "linear", "--penalty", "l1", "--fit-on", "store"]) == 0
    assert [(r.penalty, r.fit_on) for r in FewShotRuns.load(out / "fewshot.json").results] == [("l1", "store")]
    capsys.readouterr()
    bad = [
        (["--label", "Smiling"], "no label column Smiling"),
        (["--label", "A+B", "--shots", "30"], "rows in the training pool"),
        (["--label", "A+B", "--shift", f"x={tmp_path / 'nope'}"], "does not exist"),
        (["--label", "A+B", "--prompts", str(tmp_path / "nope.txt")], "--prompts file"),
    ]
    for extra, msg in bad:
        code = main(["fewshot", "--train", str(train), "--out", str(tmp_path / "o2"), "--seeds", "1", *extra])
        err = capsys.readouterr().err
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        main(["fewshot", "--train", str(train), "--out", str(tmp_path / "o2"), "--penalty", "l3"])
    assert exc.value.code == 2 and "expected some of l2,l1" in capsys.readouterr().err


def _small_result(fingerprints=None):
    X, y = _blobs(3, n=120, d=6, k=3)
    Xt, yt = _blobs(4, n=60, d=6, k=3)
    return run_fewshot(X, y, ["a", "b", "c"], {"in-domain": (Xt, yt), "dark": (Xt * 0.5, yt)},
                       shots=(1, 2), val_shots=(1, 1), seeds=range(3), variants=("linear", "ica", "pca+ica"),
                       fingerprints=fingerprints)


def test_claim_says_which_variant_helps_with_paired_numbers():
    res = _small_result()
    text = res.claim()
    assert "L2, decompositions fitted on few-shot rows" in text and "under shift" in text
    assert "ica" in text and "pca+ica" in text and "No zero-shot reference" in text
    gain = res.paired_gain("ica")["in-domain"]
    manual = 100 * np.mean(res.accuracy[:, :, 1, 0] - res.accuracy[:, :, 0, 0], axis=1)
    np.testing.assert_allclose(gain, manual)
    assert f"ica {{}} linear in-domain ({np.mean(gain):+.1f} ± {np.std(gain, ddof=1):.1f} points)".split("{}")[1] in text


def test_report_shows_the_fewshot_json_of_its_own_store_only(tmp_path):
    from types import SimpleNamespace

    import pandas as pd

    from clipica.pipeline.report import gather
    from clipica.report import build_report

    run = tmp_path / "run"
    _small_result({"store": "abc", "params": "p"}).save(run / "fewshot" / "fewshot.json")
    ica = SimpleNamespace(mean_=np.zeros(6), components_=np.eye(6)[:2])
    store = SimpleNamespace(path=tmp_path / "store", rows=pd.DataFrame({"id": ["a"]}))
    found = gather(store, ica, run, store_fp="abc", ica_dir=tmp_path / "ica", compute_missing=False)
    assert found["fewshot"]["settings"][0]["label"] == "" and found["fewshot"]["fingerprints"]["store"] == "abc"
    other = gather(store, ica, run, store_fp="xyz", ica_dir=tmp_path / "ica", compute_missing=False)
    assert other["fewshot"] is None
    html = build_report(tmp_path / "rep", fewshot=found["fewshot"]).read_text()
    assert "Few-shot probes with ICA" in html and "paired per seed" in html
    assert "shift average" in html and "data:image/png;base64" in html
